"""What `up` did: each phase that completed, when, and the inputs it completed with.

`journal.json` only records what happened. A phase's record holds its declared inputs (never secrets) and
their digest, so the next `up` can tell whether the phase is still done and, when it is not, which input
changed. Desired state that commands set lives elsewhere (`desired.json`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.files import atomic_write, parse_json


def inputs_digest(inputs: dict[str, Any]) -> str:
    """A stable digest of JSON-serialisable inputs (key order does not matter)."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class PhaseRecord:
    """One completed phase: when, with which inputs, whether it changed anything, and what it reported."""

    completed_at: str
    digest: str
    inputs: dict[str, Any] = field(default_factory=dict)
    changed: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhaseRecord:
        return cls(
            completed_at=str(data.get("completed_at", "")),
            digest=str(data.get("digest", "")),
            inputs=dict(data.get("inputs") or {}),
            changed=bool(data.get("changed", False)),
            details=dict(data.get("details") or {}),
        )


class Journal:
    """The completed phases of one cluster, read and written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"phases": {}}
        try:
            data: dict[str, Any] = parse_json(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OperationError(
                f"{self.path}: journal is unreadable ({exc}); delete it to re-run every phase"
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("phases", {}), dict):
            raise OperationError(f"{self.path}: journal has no `phases` mapping; delete it to re-run every phase")
        data.setdefault("phases", {})
        return data

    def _save(self, data: dict[str, Any]) -> None:
        atomic_write(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def records(self) -> dict[str, PhaseRecord]:
        return {name: PhaseRecord.from_json(entry) for name, entry in self._load()["phases"].items()}

    def get(self, phase: str) -> PhaseRecord | None:
        return self.records().get(phase)

    def completed(self, phase: str) -> bool:
        return phase in self._load()["phases"]

    def record(
        self, phase: str, inputs: dict[str, Any], changed: bool = False, details: dict[str, Any] | None = None
    ) -> PhaseRecord:
        record = PhaseRecord(
            completed_at=datetime.now(UTC).isoformat(timespec="seconds"),
            digest=inputs_digest(inputs),
            inputs=inputs,
            changed=changed,
            details=details or {},
        )
        data = self._load()
        data["phases"][phase] = {
            "completed_at": record.completed_at,
            "digest": record.digest,
            "inputs": record.inputs,
            "changed": record.changed,
            "details": record.details,
        }
        self._save(data)
        return record

    def forget(self, *phases: str) -> None:
        """Drop the records of `phases` (their work was undone), so the next `up` runs them again."""
        data = self._load()
        for phase in phases:
            data["phases"].pop(phase, None)
        self._save(data)
