"""What the CLI says when Ctrl-C (or SIGTERM) stops a command: a command that changes a cluster or its state records
what it completed and resumes when run again; one that changes neither (marked with `changes_nothing`: it only
reads, or writes one file whole as its last step) says that nothing was changed."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

Command = TypeVar("Command", bound=Callable[..., Any])

RESUMABLE = "what completed is recorded, run the command again to resume"
NOTHING_CHANGED = "nothing was changed"
# Set on the KeyboardInterrupt that stopped a command marked `changes_nothing`.
_NOTHING_CHANGED_MARK = "oscar_deploy_changed_nothing"


def changes_nothing(command: Command) -> Command:
    """Mark `command` as one that changes no cluster and no state: stopped, it says that nothing was changed."""

    @functools.wraps(command)
    def reading(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt as exc:
            setattr(exc, _NOTHING_CHANGED_MARK, True)
            raise

    return reading  # type: ignore[return-value]


def interrupted_line(exc: KeyboardInterrupt, ended: str) -> str:
    """The last line of a command `exc` stopped; `ended` says how ("interrupted", "terminated")."""
    return f"{ended}; {NOTHING_CHANGED if getattr(exc, _NOTHING_CHANGED_MARK, False) else RESUMABLE}"
