"""A stack operation the way every phase needs it: recovery first, progress while it runs, one line per problem.

`StackOperations` wraps a `StackSession` (the real runner's or the tests' fake):

* before `up` and `destroy`, pending operations left by an interrupted update are dropped from the state
  (export, `recovery.without_pending_operations`, import) and the update refreshes from the provider;
* when the backend reports a lock, the lock is removed (`cancel`) only if every holder is gone (or, with
  `break_lock`, on another machine), and the operation runs again; a live holder stops the command with a line
  naming it;
* each recovery is announced in one line starting with "recovered:";
* engine events drive `PulumiProgress` and a `TaskDisplay` (the same displays as Ansible's runs);
* a failure becomes an `OperationError` with one line per error diagnostic, secrets masked.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from oscar_deploy.iac.progress import PulumiProgress
from oscar_deploy.iac.recovery import (
    BREAK_LOCK_FLAG,
    Recovery,
    pending_operations,
    process_alive,
    sort_locks,
    without_pending_operations,
)
from oscar_deploy.iac.runner import ConfigValue, StackError, StackLocked, StackSession, UpdateResult
from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.progress import Progress, QuietDisplay, TaskDisplay

if TYPE_CHECKING:
    from pulumi.automation.events import EngineEvent

T = TypeVar("T")


def _stderr_note(line: str) -> None:
    Progress().note(line)


class StackOperations:
    """Preview, up, refresh and destroy of one stack, with recovery, progress and clear errors."""

    def __init__(
        self,
        session: StackSession,
        display: TaskDisplay | None = None,
        notify: Callable[[str], None] = _stderr_note,
        secrets: Iterable[str] = (),
        hostname: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        alive: Callable[[int], bool] = process_alive,
        break_lock: bool = False,
    ) -> None:
        self.session = session
        self.display = display or QuietDisplay()
        self.notify = notify
        self.secrets = set(secrets)
        self.hostname = hostname or socket.gethostname()
        self.clock = clock
        self.alive = alive
        self.break_lock = break_lock

    @property
    def name(self) -> str:
        return self.session.target.name

    def configure(self, config: Mapping[str, ConfigValue]) -> None:
        self.secrets.update(item.value for item in config.values() if item.secret)
        self.session.set_config(config)

    def preview(self, config: Mapping[str, ConfigValue] | None = None) -> dict[str, int]:
        """What `up` would change; reads the state, never writes it (recovery waits for the next `up`)."""
        if config:
            self.configure(config)
        return self._observed(self._progress("preview"), self.session.preview)

    def up(self, config: Mapping[str, ConfigValue] | None = None, refresh: bool = False) -> UpdateResult:
        """The update; it refreshes from the provider first when asked (`refresh`) or after a recovery. The result
        lists the resources it acted on, from the engine events."""
        recovered = self._recover_pending()
        if config:
            self.configure(config)
        progress = self._progress("up")
        result = self._observed(progress, lambda on_event: self.session.up(on_event, refresh=refresh or recovered))
        return replace(result, steps=tuple(progress.steps))

    def refresh(self) -> dict[str, int]:
        self._recover_pending()
        return self._observed(self._progress("refresh"), self.session.refresh)

    def destroy(self) -> dict[str, int]:
        self._recover_pending()
        return self._observed(self._progress("destroy"), self.session.destroy)

    def _progress(self, operation: str) -> PulumiProgress:
        return PulumiProgress.start(operation, self.name, self.secrets)

    def _recover_pending(self) -> bool:
        """Drop the pending operations of an interrupted update; True when there were some."""
        state = self.session.export_state()
        pending = pending_operations(state)
        if not pending:
            return False
        cleared = without_pending_operations(state)
        self._unlocked("stack import", lambda: self.session.import_state(cleared))
        self.notify(Recovery(pending=pending).message())
        return True

    def _unlocked(self, command: str, action: Callable[[], T]) -> T:
        """Run `action`; if a lock stops it and every holder is gone, remove the lock and run it once more."""
        try:
            return action()
        except StackLocked as locked:
            stale, live = sort_locks(locked.holders, self.clock(), self.hostname, self.alive, self.break_lock)
            if live or not stale:
                holders = "; ".join(holder.describe() for holder in live) or "a holder Pulumi did not name"
                advice = "let it finish, then run the command again"
                if any(holder.host != self.hostname for holder in live):
                    # Its process cannot be looked at from here: only the user can tell that the run died.
                    advice += f" (if that run died with its machine, run the command again with {BREAK_LOCK_FLAG})"
                raise OperationError(f"{self.name}: another Pulumi run holds the stack ({holders}); {advice}") from None
            self.session.cancel()
            self.notify(Recovery(stale_locks=stale).message())
        return action()

    def _observed(self, progress: PulumiProgress, action: Callable[[Callable[[EngineEvent], None]], T]) -> T:
        lock = threading.Lock()

        def on_event(event: EngineEvent) -> None:
            with lock:
                notable = progress.handle(event)
                self.display.update(progress, notable)

        try:
            return self._unlocked(progress.operation, lambda: action(on_event))
        except StackError as exc:
            failures = progress.failure_lines()
            if not failures:
                raise
            raise OperationError("\n".join(f"{self.name}: {line}" for line in failures)) from exc
        finally:
            with lock:
                self.display.close(progress)
