"""One operation per cluster at a time: `up`, `scale`, `down`, `edge install` and `edge reset` hold the cluster's
lock for their whole run; read-only commands (`status`, `plan`, `ssh`, `kubeconfig`) never take it. The
autoscaler takes it for each of its rounds, only when it is free (`hold_if_free`): while an operation runs, its
rounds wait; an operation that finds a round holding the lock waits for that round to end (`ROUND_WAIT`).

The lock is `fcntl.flock` on the file `lock` in the cluster's state folder. The kernel releases it when its
holder exits, however it exits (`kill -9` included), so a crashed run never blocks the next one. The file also
holds a small JSON note of the holder (pid, command, start time): a second operation names the holder in its
one-line refusal, and an operation that finds the note of a holder that never cleared it (it crashed or was
killed) says so as it takes over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from oscar_deploy.support.errors import EXIT_BAD_INPUT, OperationError, OscarDeployError
from oscar_deploy.support.files import parse_json

# Times a lock file can vanish under us (a `down` removed the folder between open and flock) before we give up.
ATTEMPTS = 5
NOTE_LIMIT = 4096
# The command an autoscaler round holds the lock as. Rounds are short (a few API calls and power requests), so an
# operation waits for one to end, for at most ROUND_WAIT seconds, instead of being refused.
AUTOSCALER_ROUND = "autoscaler round"
ROUND_WAIT = 300.0
POLL_SECONDS = 0.2
# A lock held with no note yet is being taken: its holder writes the note next.
NOTE_GRACE = 2.0


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")


class ClusterBusyError(OscarDeployError):
    """Another operation holds the cluster's lock. Exit code 2: nothing was done, run it again later."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class LockNote:
    """Who holds (or last held) a cluster's lock."""

    pid: int
    command: str
    since: str

    def describe(self) -> str:
        return f"`{self.command}` (pid {self.pid}) since {self.since}"

    @classmethod
    def parse(cls, text: str) -> LockNote | None:
        try:
            data = parse_json(text)
            return cls(pid=int(data["pid"]), command=str(data["command"]), since=str(data["since"]))
        except (ValueError, KeyError, TypeError):
            return None


class OperationLock:
    """The lock file of one cluster; `hold` is the way to use it."""

    def __init__(self, path: Path, cluster: str) -> None:
        self.path = path
        self.cluster = cluster
        self.fd: int | None = None

    def note(self) -> LockNote | None:
        """The note in the lock file, whoever holds it (None when there is none or it is being written)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            return LockNote.parse(handle.read(NOTE_LIMIT).decode("utf-8", errors="replace"))

    def acquire(
        self, command: str, warn: Callable[[str], None] = _stderr, wait_for_rounds: bool = True
    ) -> LockNote | None:
        """Take the lock for `command` or raise `ClusterBusyError` naming the holder; with `wait_for_rounds`, an
        autoscaler round holding it is waited for (`warn` says so once). Returns the note a previous holder left
        behind when it ended without releasing the lock (it crashed), else None."""
        for _ in range(ATTEMPTS):
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise OperationError(
                    f"{self.path}: cannot open the cluster's lock file ({exc.strerror}); check who owns the state "
                    "folder and its mode"
                ) from None
            try:
                self._lock_or_wait_for_a_round(fd, wait_for_rounds, warn)
            except BaseException:
                os.close(fd)
                raise
            if not self._still_the_file(fd):
                os.close(fd)  # removed (by `down`) between open and flock: lock the file that is there now
                continue
            stale = LockNote.parse(os.pread(fd, NOTE_LIMIT, 0).decode("utf-8", errors="replace"))
            note = LockNote(os.getpid(), command, datetime.now(UTC).isoformat(timespec="seconds"))
            os.ftruncate(fd, 0)
            _write_note(fd, note)
            self.fd = fd
            return stale
        raise OperationError(f"{self.path}: the lock file keeps disappearing; is a `down` of {self.cluster} running?")

    def _lock_or_wait_for_a_round(self, fd: int, wait_for_rounds: bool, warn: Callable[[str], None]) -> None:
        """flock `fd`; with `wait_for_rounds`, try again while an autoscaler round holds it (for up to ROUND_WAIT)
        or its holder is still writing its note. Anyone else holding it: `ClusterBusyError`."""
        started = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            holder = self.note()
            waited = time.monotonic() - started
            if not wait_for_rounds:
                raise ClusterBusyError(self._busy_message(holder))
            if holder is None and waited < NOTE_GRACE:
                pass
            elif holder is not None and holder.command == AUTOSCALER_ROUND and waited < ROUND_WAIT:
                if not told:
                    warn(f"cluster {self.cluster}: waiting for the autoscaler's round (pid {holder.pid}) to end")
                    told = True
            else:
                raise ClusterBusyError(self._busy_message(holder))
            time.sleep(POLL_SECONDS)

    def release(self, leave: LockNote | None = None) -> None:
        """Clear the note (or put back `leave`, a crashed holder's note someone else should see) and unlock (the
        file stays: removing it would let two runs lock two different files)."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            if self._still_the_file(self.fd):
                os.ftruncate(self.fd, 0)
                if leave is not None:
                    _write_note(self.fd, leave)
        os.close(self.fd)  # closing the last descriptor releases the flock
        self.fd = None

    def _still_the_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == self.path.lstat().st_ino
        except FileNotFoundError:
            return False

    def _busy_message(self, holder: LockNote | None) -> str:
        who = holder.describe() if holder else "another oscar-deploy command"
        return f"cluster {self.cluster}: busy with {who}; wait for it to end (or stop it), then run this again"


def _write_note(fd: int, note: LockNote) -> None:
    """The lock file's content: the note of its holder (the file was truncated first)."""
    os.pwrite(fd, (json.dumps(asdict(note)) + "\n").encode(), 0)


@contextlib.contextmanager
def hold(path: Path, cluster: str, command: str, warn: Callable[[str], None] | None = None) -> Iterator[OperationLock]:
    """Hold the lock at `path` for `command` while the block runs; refuse (exit 2) when someone else holds it.
    `warn` (default: stderr) gets the note about a crashed holder taken over, and that a round is waited for."""
    report = warn or _stderr
    lock = OperationLock(path, cluster)
    stale = lock.acquire(command, report)
    if stale is not None:
        report(
            f"note: cluster {cluster}: {stale.describe()} ended without releasing its lock (it crashed or was "
            "killed); taking over"
        )
    try:
        yield lock
    finally:
        lock.release()


@contextlib.contextmanager
def hold_if_free(path: Path, cluster: str, command: str) -> Iterator[str | None]:
    """Hold the lock at `path` for `command` while the block runs, if no one holds it: the block gets None.
    Held by someone: the block runs without it and gets who holds it. Never waits, and never makes the lock's
    folder again (the cluster's state folder, which `down` removes)."""
    if not path.parent.is_dir():
        raise OperationError(f"{path.parent}: the cluster's state folder is gone; was cluster {cluster} removed?")
    lock = OperationLock(path, cluster)
    try:
        stale = lock.acquire(command, wait_for_rounds=False)
    except ClusterBusyError:
        holder = lock.note()
        yield holder.describe() if holder else "another oscar-deploy command"
        return
    try:
        yield None
    finally:
        lock.release(leave=stale)  # the next operation still says that the one before it crashed
