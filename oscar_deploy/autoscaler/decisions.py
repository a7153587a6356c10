"""The autoscaler's files: its decisions log (JSON lines, bounded), its state file and the lock of a running one.

All live in `<state folder>/autoscaler/` (0700; files 0600):

    decisions.jsonl     one JSON object per line: `start`, `round` (decisions with reasons and outcomes, steps of
                        earlier ones such as drain progress, notes, the workers seen), `error` and `stop`
                        events, each with its UTC `time`
    decisions.jsonl.1   the previous part: when the log passes its size limit it is renamed here (replacing
                        the older part), so both together never exceed twice the limit
    state.json          what the runtime did to each worker (power actions, its cordons, boot durations) and
                        what its policy and observer remember between rounds, with the time it was saved: a
                        restart within `MEMORY_SECONDS` (or three periods) goes on with those timers instead
                        of starting them again
    run.lock            held (flock) by the running autoscaler, with its pid: one per cluster at a time
    kubeconfig          its own least-privilege kubeconfig (the oscar-autoscaler ServiceAccount)
    aws-credentials, clouds.yaml   its own cloud credentials, when given (see the README)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oscar_deploy.autoscaler.model import PolicyState, is_json_number
from oscar_deploy.autoscaler.snapshot import NodeHistory, PowerRecord
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.files import atomic_write, parse_json, read_user_bytes, read_user_tail

LOG_NAME = "decisions.jsonl"
STATE_NAME = "state.json"
LOCK_NAME = "run.lock"
MAX_LOG_BYTES = 1_000_000
# How old the saved timers may be for a restarted runtime to go on with them: past that, pods may have come and
# gone unseen, so a node's idle or unneeded time would be counted from before what it did meanwhile.
MEMORY_SECONDS = 120.0
# The state file of 200 workers running 100 pods each is about 5 MB; a larger one is not ours.
MAX_STATE_BYTES = 16 * 1024 * 1024


def utc_stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DecisionsLog:
    """Append-only JSON lines with one rotation: the file never grows past `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int = MAX_LOG_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes

    def write(self, entry: dict[str, Any], now: float) -> None:
        line = (json.dumps({"time": utc_stamp(now), **entry}, sort_keys=False) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_size + len(line) > self.max_bytes:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(descriptor, 0o600)
            os.write(descriptor, line)
        finally:
            os.close(descriptor)

    def entries(self) -> list[dict[str, Any]]:
        """Every entry still kept, oldest first; a damaged line, or one not an object with a time, is skipped."""
        found: list[dict[str, Any]] = []
        for path in (self.path.with_name(self.path.name + ".1"), self.path):
            if not path.is_file():
                continue
            # Each part holds at most max_bytes; should one be longer (a line longer than that, a file put
            # there), its newest max_bytes are read, the first line cut short dropped.
            data = read_user_tail(path, "decisions log", self.max_bytes + 1)
            if len(data) > self.max_bytes:
                data = data.partition(b"\n")[2]
            for line in data.decode(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    entry = parse_json(line)
                    if isinstance(entry, dict) and isinstance(entry.get("time"), str):
                        found.append(entry)
        return found


@dataclass
class RuntimeMemory:
    """The content of state.json: the power record, and the policy's and observer's memory as of `saved_at`."""

    record: PowerRecord = field(default_factory=PowerRecord)
    policy: PolicyState = field(default_factory=PolicyState)
    history: NodeHistory = field(default_factory=NodeHistory)
    saved_at: float | None = None


def load_memory(path: Path) -> RuntimeMemory:
    """What state.json holds; a missing or damaged file (or part of it) counts as nothing remembered."""
    try:
        data = parse_json(read_user_bytes(path, "autoscaler state file", MAX_STATE_BYTES))
    except (UserInputError, ValueError):  # missing, not a regular file, too large; not JSON (or UTF-8)
        return RuntimeMemory()
    if not isinstance(data, dict):
        return RuntimeMemory()
    policy, history, saved_at = data.get("policy"), data.get("history"), data.get("saved_at")
    return RuntimeMemory(
        record=PowerRecord.from_data(data),
        policy=PolicyState.from_data(policy) if isinstance(policy, dict) else PolicyState(),
        history=NodeHistory.from_data(history) if isinstance(history, dict) else NodeHistory(),
        saved_at=float(saved_at) if is_json_number(saved_at) else None,
    )


def save_memory(path: Path, memory: RuntimeMemory) -> None:
    data = memory.record.as_data()
    data.update(policy=memory.policy.as_data(), history=memory.history.as_data(), saved_at=memory.saved_at)
    atomic_write(path, json.dumps(data, indent=2) + "\n", 0o600)


@contextlib.contextmanager
def run_lock(folder: Path, cluster: str) -> Iterator[None]:
    """Hold the cluster's autoscaler lock while the body runs; refuse when another process holds it."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / LOCK_NAME
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Path(path).read_text().strip() or "another process"
            raise UserInputError(
                f"cluster {cluster}: an autoscaler already runs for it (pid {holder}); stop that one first"
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, str(os.getpid()).encode())
        yield
    finally:
        os.close(descriptor)


def running_pid(folder: Path) -> int | None:
    """The pid of the autoscaler running for this state folder, or None when none holds the lock."""
    path = folder / LOCK_NAME
    if not path.is_file():
        return None
    descriptor = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = path.read_text().strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return None
    finally:
        os.close(descriptor)
