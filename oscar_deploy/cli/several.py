"""Commands that act on several items in turn (`service delete a b c`, `files put a b c DEST`): one that fails does
not keep the others from being tried, unless its failure is one every later item would share (`SharedFailure`:
rejected credentials, a server not reached); the command ends with the failures and a summary."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from oscar_deploy.support.errors import OperationError, OscarDeployError, SharedFailure, printable

Item = TypeVar("Item")


def try_each(items: Sequence[Item], act: Callable[[Item], None]) -> tuple[dict[Item, OscarDeployError], list[Item]]:
    """`act` on each item in order, going on past a failure, stopping at a shared one: the failures by item, and the
    items not tried."""
    failed: dict[Item, OscarDeployError] = {}
    for number, item in enumerate(items):
        try:
            act(item)
        except OscarDeployError as exc:
            failed[item] = exc
            if isinstance(exc, SharedFailure):
                return failed, list(items[number + 1 :])
    return failed, []


def failures_and_summary(failed: Mapping[str, OscarDeployError], summary: Sequence[str]) -> OperationError:
    """The error such a command ends with: one line per failed item with the server's answer, then the summary."""
    lines = [printable(f"{item}: {exc}") for item, exc in failed.items()]
    return OperationError("\n".join([*lines, "; ".join(summary)]))
