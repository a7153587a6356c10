"""The guard that runs ansible-playbook and pulumi (oscar_deploy.support.guard): every process a tool starts,
detached or not, ends when the tool ends, when the CLI asks, or when the CLI dies, even by `kill -9`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oscar_deploy.support.guard import descendants, guarded, read_pid, stop_leftover
from tests.processes import alive, wait_for

# A tool that leaves a detached process behind (as ssh's ControlPersist master does), records a SIGINT, and
# then ends in its own time: `exec` keeps the pid the guard started.
TOOL = """
import os, signal, subprocess, sys, time
out = sys.argv[1]
subprocess.Popen(["sleep", "600"], start_new_session=True)
subprocess.Popen(["sleep", "601"])
def interrupted(signum, frame):
    open(os.path.join(out, "sigint"), "w").close()
    time.sleep(float(sys.argv[2]))
    sys.exit(3)
signal.signal(signal.SIGINT, signal.SIG_IGN if sys.argv[2] == "ignore" else interrupted)
open(os.path.join(out, "started"), "w").close()
time.sleep(float(sys.argv[3]))
sys.exit(4)
"""


@pytest.fixture
def tool(tmp_path: Path) -> Iterator[Callable[[str, float], list[str]]]:
    """The command line of TOOL: its folder for markers, what it does on SIGINT, how long it runs."""
    script = tmp_path / "tool.py"
    script.write_text(TOOL)
    before = set(descendants(os.getpid()))

    def command(on_sigint: str, runs_for: float) -> list[str]:
        return [sys.executable, str(script), str(tmp_path), on_sigint, str(runs_for)]

    yield command
    for pid in set(descendants(os.getpid())) - before:  # a failed test leaves nothing running
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start(command: list[str], grace: float, pid_file: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(guarded(command, grace=grace, pid_file=pid_file), stdin=subprocess.DEVNULL)


def test_a_tool_that_ends_leaves_nothing_behind_and_its_exit_code_passes(tool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    guard = start(tool("0", 0.5), grace=5)
    wait_for(lambda: (tmp_path / "started").exists(), 30, "the tool to start")
    below = descendants(guard.pid)
    assert len(below) == 3, "the tool, its child and its detached child"
    assert guard.wait(timeout=30) == 4
    assert [pid for pid in below if alive(pid)] == [], "the detached sleep was ended too"


def test_a_stop_request_interrupts_the_tool_then_ends_everything(tool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "guard.pid"
    guard = start(tool("0.2", 600), grace=10, pid_file=pid_file)
    wait_for(lambda: (tmp_path / "started").exists(), 30, "the tool to start")
    assert read_pid(pid_file) == guard.pid
    below = descendants(guard.pid)
    guard.send_signal(signal.SIGTERM)
    assert guard.wait(timeout=15) == 3, "the tool stopped in its own way on SIGINT"
    assert (tmp_path / "sigint").exists()
    assert [pid for pid in below if alive(pid)] == []
    assert not pid_file.exists()


def test_a_tool_ignoring_sigint_is_killed_after_the_grace_or_at_a_second_request(tool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    guard = start(tool("ignore", 600), grace=1)
    wait_for(lambda: (tmp_path / "started").exists(), 30, "the tool to start")
    below = descendants(guard.pid)
    began = time.monotonic()
    guard.send_signal(signal.SIGTERM)
    assert guard.wait(timeout=15) == 128 + signal.SIGTERM
    assert 1 <= time.monotonic() - began < 10
    assert [pid for pid in below if alive(pid)] == []

    (tmp_path / "started").unlink()
    guard = start(tool("ignore", 600), grace=60)
    wait_for(lambda: (tmp_path / "started").exists(), 30, "the tool to start")
    began = time.monotonic()
    guard.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    guard.send_signal(signal.SIGTERM)
    assert guard.wait(timeout=15) == 128 + signal.SIGKILL
    assert time.monotonic() - began < 10, "a second request does not wait for the grace"


def test_the_tools_end_with_a_parent_killed_by_sigkill(tool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "guard.pid"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, threading, time\n"
            "from oscar_deploy.support.guard import guarded\n"
            f"subprocess.Popen(guarded({tool('0.2', 600)!r}, grace=10, pid_file={str(pid_file)!r}))\n"
            # Threads, as the CLI has (ansible-runner's, pulumi's output readers): the kernel sends the
            # parent-death signal again as each one ends, which must still be one request.
            "for _ in range(4):\n"
            "    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
            "time.sleep(600)\n",
        ],
        start_new_session=True,
    )
    wait_for(lambda: (tmp_path / "started").exists(), 30, "the tool to start")
    guard_pid = read_pid(pid_file)
    assert guard_pid is not None
    below = [guard_pid, *descendants(guard_pid)]
    os.killpg(parent.pid, signal.SIGKILL)  # the whole process group of the parent, as `kill -9 -PGID` does
    parent.wait()
    wait_for(lambda: not any(alive(pid) for pid in below), 20, "every process of the run to end")
    assert (tmp_path / "sigint").exists(), "the tool was given its orderly stop, not killed at once"


def test_stop_leftover_ends_a_guard_and_never_a_stranger(tool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stranger = subprocess.Popen(["sleep", "600"])
    (tmp_path / "stranger.pid").write_text(f"{stranger.pid}\n")
    try:
        assert stop_leftover(tmp_path / "stranger.pid") is True
        assert stranger.poll() is None, "a pid file naming another process is ignored"
    finally:
        stranger.kill()
        stranger.wait()
    assert stop_leftover(tmp_path / "missing.pid") is True

    pid_file = tmp_path / "guard.pid"
    guard = start(tool("ignore", 600), grace=600, pid_file=pid_file)
    wait_for(lambda: (tmp_path / "started").exists(), 30, "the tool to start")
    below = [guard.pid, *descendants(guard.pid)]
    os.kill(guard.pid, signal.SIGTERM)  # it now waits out a long grace: what a crashed run's guard may be doing
    time.sleep(0.3)
    assert alive(guard.pid)
    assert stop_leftover(pid_file) is True
    guard.wait(timeout=10)
    assert [pid for pid in below if alive(pid)] == []


def test_the_process_table_from_ps_agrees_with_proc() -> None:
    """Systems without /proc read the table from `ps`; both must name this process and its parent alike."""
    from oscar_deploy.support.guard import _from_ps, processes

    child = subprocess.Popen(["sleep", "30"])
    try:
        for table in (processes(), _from_ps()):
            assert table[os.getpid()].parent == os.getppid()
            assert table[child.pid].parent == os.getpid()
            assert table[child.pid].command == "sleep 30"
            assert table[child.pid].group == os.getpgid(0)
    finally:
        child.kill()
        child.wait()
