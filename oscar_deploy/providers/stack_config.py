"""Typed reads of a stack's Pulumi config for `stacks/<cloud>/__main__.py` (plain `pulumi up`).

Every problem stops the program with one line naming the config key and the `pulumi config set` that fixes it
(pulumi.RunError: Pulumi prints it without a Python traceback).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from oscar_deploy.providers.vm import HostKey, host_keys_from_json
from oscar_deploy.support.files import parse_json

Choice = TypeVar("Choice", bound=str)
Spec = TypeVar("Spec")
_UNSET = object()


class StackConfig:
    """`pulumi.Config()` of the project, read with checks."""

    def __init__(self, config: Any) -> None:
        self._config = config

    def _fail(self, key: str, problem: str, example: str) -> Exception:
        import pulumi

        return pulumi.RunError(f"stack config {key}: {problem}; run: pulumi config set {key} {example}")

    def text(self, key: str, default: Any = _UNSET) -> str:
        value = self._config.get(key)
        if value is None or value == "":
            if default is _UNSET:
                raise self._fail(key, "not set", "VALUE")
            return str(default)
        return str(value)

    def count(self, key: str, default: int, *, minimum: int) -> int:
        raw = self._config.get(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self._fail(key, f"{raw!r} is not a whole number", str(default)) from None
        if value < minimum:
            raise self._fail(key, f"{value} is below {minimum}", str(max(default, minimum)))
        return value

    def choice(self, key: str, choices: Sequence[Choice], default: Choice) -> Choice:
        raw = self._config.get(key)
        if raw is None:
            return default
        for choice in choices:
            if raw == choice:
                return choice
        raise self._fail(key, f"{raw!r} is not one of {', '.join(choices)}", default)

    def texts(self, key: str, default: Any = _UNSET) -> list[str]:
        raw = self._config.get(key)
        if raw is None:
            if default is _UNSET:
                raise self._fail(key, "not set", "'[\"203.0.113.7/32\"]'")
            return list(default)
        try:
            value = parse_json(raw)
        except ValueError:
            value = None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._fail(key, "must be a JSON list of strings", "'[\"203.0.113.7/32\"]'")
        return value

    def host_keys(self) -> dict[str, HostKey]:
        raw = self._config.get("hostKeys")
        if raw is None:
            return {}
        try:
            return host_keys_from_json(raw)
        except ValueError as exc:
            raise self._fail("hostKeys", str(exc).split(": ", 1)[-1], "--secret < host-keys.json") from None

    def check(self, checker: Callable[[Spec], None], spec: Spec) -> None:
        """Run the program's own input check, reporting its first problem as a config problem."""
        import pulumi

        try:
            checker(spec)
        except ValueError as exc:
            raise pulumi.RunError(f"stack config: {exc}") from None
