"""Desired state that commands set, apart from the spec: the worker count `scale --workers N` chose, the
workers a scale made that have not joined yet, and the air-gap bundle `up --bundle` was given.

`desired.json` is read by `up`, `status` and `plan`, so none of them undoes or misreads a scale; the spec's
`workers.initial` applies only while no scale has set a count. A remembered bundle keeps an offline cluster
offline when a later `up` is run without `--bundle`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.files import atomic_write, parse_json


class DesiredState:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            data = parse_json(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OperationError(f"{self.path}: unreadable ({exc}); delete it to go back to the spec's values") from exc
        if not isinstance(data, dict):
            raise OperationError(f"{self.path}: not a JSON object; delete it to go back to the spec's values")
        return data

    def workers(self) -> int | None:
        """The worker count a scale set, or None when the spec's `workers.initial` applies."""
        value = self._load().get("workers")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def set_workers(self, count: int) -> None:
        self._set("workers", count)

    def joining(self) -> list[str]:
        """Workers a `scale` made (or was about to make) whose join it did not see finish: stopped, or failed."""
        value = self._load().get("joining")
        return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []

    def set_joining(self, names: list[str]) -> None:
        self._set("joining", sorted(names) or None)

    def bundle(self) -> str | None:
        value = self._load().get("bundle")
        return value if isinstance(value, str) else None

    def set_bundle(self, folder: str) -> None:
        self._set("bundle", folder)

    def _set(self, key: str, value: Any) -> None:
        data = self._load()
        if data.get(key) != value:
            if value is None:
                del data[key]
            else:
                data[key] = value
            atomic_write(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")
