"""Tools that end with everything they started: `run` is `subprocess.run` with the child in a process group of
its own, and that whole group stopped when the wait for it is cut short.

`subprocess.run` ends only its direct child, and only with SIGKILL, when a timeout or an exception (Ctrl-C, the
CLI's `Terminated` on SIGTERM) ends its wait: what the child started (debootstrap's and chroot's scripts,
podman's helpers, a power command's shell pipeline) is left running. `run` starts the child as the leader of a
new process group (`process_group=0`); when the wait ends early it

- sends the group SIGINT, the tool's own orderly stop (what a Ctrl-C in a terminal sends);
- waits up to `STOP_GRACE` seconds for every member of the group to end (a second interrupt meanwhile: no more
  waiting);
- sends the group SIGKILL, reaps the child, waits (up to `KILL_WAIT` seconds) until no process of the group
  runs, and re-raises (a timeout as the `subprocess.TimeoutExpired` that `subprocess.run` raises).

A group's number is not given to a new process while any member of the group lives, so the signals reach this
group only.

Since the child is not in the terminal's foreground group, a Ctrl-C in the terminal reaches the CLI only: the
CLI's KeyboardInterrupt is what passes it on (within subprocess's own quarter-second wait for a child that got
the same Ctrl-C). For the same reason the child's stdin is /dev/null unless `input` or `stdin` is given: a
process of a background group that reads the terminal is stopped (SIGTTIN). Processes that leave the group
(`setsid`, daemons such as podman's conmon) are not followed; ansible-playbook and pulumi, which start such
processes, run under `oscar_deploy.support.guard` instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal, overload

from oscar_deploy.support.guard import processes

# Seconds the tool's process group gets, after SIGINT, to stop in order before it is killed.
STOP_GRACE = 5.0
# Seconds to wait, after SIGKILL, for the group's processes to be gone (one in uninterruptible sleep may take long).
KILL_WAIT = 5.0
_POLL = 0.05

Stream = int | IO[Any] | None


@overload
def run(
    command: Sequence[str],
    *,
    text: Literal[True],
    input: str | None = None,
    capture_output: bool = False,
    timeout: float | None = None,
    check: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    stdin: Stream = None,
    stdout: Stream = None,
    stderr: Stream = None,
    grace: float | None = None,
) -> subprocess.CompletedProcess[str]: ...


@overload
def run(
    command: Sequence[str],
    *,
    text: Literal[False] = False,
    input: bytes | None = None,
    capture_output: bool = False,
    timeout: float | None = None,
    check: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    stdin: Stream = None,
    stdout: Stream = None,
    stderr: Stream = None,
    grace: float | None = None,
) -> subprocess.CompletedProcess[bytes]: ...


def run(
    command: Sequence[str],
    *,
    text: bool = False,
    input: str | bytes | None = None,
    capture_output: bool = False,
    timeout: float | None = None,
    check: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    stdin: Stream = None,
    stdout: Stream = None,
    stderr: Stream = None,
    grace: float | None = None,
) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run(command, ...)` with the same meaning of each argument, the child in a process group of its
    own and that group stopped (see the module docstring) on a timeout or any exception during the wait; `grace`
    is `STOP_GRACE` unless given."""
    grace = STOP_GRACE if grace is None else grace
    if input is not None:
        if stdin is not None:
            raise ValueError("stdin and input arguments may not both be used")
        stdin = subprocess.PIPE
    elif stdin is None:
        stdin = subprocess.DEVNULL
    if capture_output:
        if stdout is not None or stderr is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output")
        stdout = stderr = subprocess.PIPE
    with subprocess.Popen(
        list(command), stdin=stdin, stdout=stdout, stderr=stderr, text=text, env=env, cwd=cwd, process_group=0
    ) as process:
        try:
            output, errors = process.communicate(input, timeout=timeout)
        except BaseException:  # a timeout (TimeoutExpired holds the bytes read so far, as subprocess.run's does)
            _stop_group(process, grace)
            raise
    completed = subprocess.CompletedProcess(process.args, process.returncode, output, errors)
    if check:
        completed.check_returncode()
    return completed


def _stop_group(process: subprocess.Popen[Any], grace: float = STOP_GRACE) -> None:
    """End `process`'s group (`process` its leader, not yet reaped): SIGINT, up to `grace` seconds for the whole
    group to end, SIGKILL; then reap `process`. A further interrupt meanwhile cuts the grace short."""
    group = process.pid
    try:
        _signal_group(group, signal.SIGINT)
        deadline = time.monotonic() + grace
        while _members(group) and time.monotonic() < deadline:
            time.sleep(_POLL)
    except BaseException:  # noqa: S110 (a second Ctrl-C or SIGTERM: stop at once; the first one is re-raised)
        pass
    finally:
        _signal_group(group, signal.SIGKILL)
        _reap(process, group)


def _reap(process: subprocess.Popen[Any], group: int) -> None:
    """Wait for the killed `process`, and (up to `KILL_WAIT` seconds) for the rest of its `group` to be gone, even
    through further interrupts (SIGKILL makes it short)."""
    deadline = time.monotonic() + KILL_WAIT
    while True:
        try:
            process.wait()
            while _members(group) and time.monotonic() < deadline:
                time.sleep(_POLL / 5)
            return
        except BaseException:  # noqa: S112
            continue


def _members(group: int) -> bool:
    """Whether a process (zombies aside) still belongs to `group`."""
    return any(listed.group == group for listed in processes().values())


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)
