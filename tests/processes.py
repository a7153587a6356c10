"""Waiting on conditions and looking at processes, for the tests that start, stop and kill real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `condition` every `interval` seconds; fail naming `what` once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def alive(pid: int) -> bool:
    """Whether `pid` runs: it exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


# Holds the lock as `hold` does, or, for an empty command, takes the flock without writing a note yet.
HOLDER = """
import fcntl, sys
from pathlib import Path
from oscar_deploy.state.lock import hold
if sys.argv[3]:
    with hold(Path(sys.argv[1]), sys.argv[2], sys.argv[3]):
        print("held", flush=True)
        sys.stdin.read()
else:
    Path(sys.argv[1]).parent.mkdir(parents=True, exist_ok=True)
    with open(sys.argv[1], "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        print("held", flush=True)
        sys.stdin.read()
"""


class Holder:
    """Another process holding a cluster's lock (oscar_deploy.state.lock) until `release` (or `kill`)."""

    def __init__(self, path: Path, cluster: str, command: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), cluster, command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stdout.readline() == "held\n"
        self.pid = self.process.pid

    def release(self) -> None:
        self.process.communicate("", timeout=30)
        assert self.process.returncode == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def release_in(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self.release)
        timer.start()
        return timer
