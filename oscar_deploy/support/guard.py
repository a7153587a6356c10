"""Children that die with the CLI: a small guard process between oscar-deploy and a long-running tool.

ansible-playbook and pulumi run as `python -m oscar_deploy.support.guard [options] -- COMMAND...`. The guard

- runs in a session of its own (ansible-runner's pty already gives it one), so a Ctrl-C in the terminal reaches
  the CLI only, and the CLI decides what happens to the tool;
- asks the kernel for SIGHUP when the CLI dies, even by `kill -9` (PR_SET_PDEATHSIG);
- is a child subreaper (PR_SET_CHILD_SUBREAPER): processes that leave the tool's process group or session
  (Ansible's workers call setsid, ssh's ControlPersist master daemonises) are re-parented to the guard instead
  of init, so it can find and end every descendant;
- on a stop request, SIGTERM or SIGINT (the CLI asking after a Ctrl-C), or SIGHUP (the CLI is gone), sends the
  tool's process group SIGINT, the tool's own orderly stop (what a Ctrl-C in a terminal sends), waits `--grace`
  seconds, then ends every descendant; a second SIGTERM or SIGINT ends them at once. SIGHUP only ever counts
  once: the kernel sends the parent-death signal again for each thread of the CLI that ends, and a pty's
  hangup says the same;
- when the tool ends on its own, ends what it left behind (ssh control masters) and exits with its exit code.

The CLI side: `guarded` builds the command line, `stop_and_wait` handles a Ctrl-C while a guarded tool runs,
`stop_leftover` ends the guard of a run whose CLI crashed before it could.

The parent-death signal and the subreaper are Linux's (prctl(2)); elsewhere the guard still stops the tool and
its descendants when asked, reading the process table from `ps`, but neither notices the CLI's death nor adopts
processes that detach.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
# Each a request to stop; a second one, to stop at once.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# The CLI is gone (the parent-death signal, or the hangup of ansible-runner's pty): a first request, never a second.
PARENT_GONE = signal.SIGHUP
# After the tool itself ended (or the grace ran out): how long what is left gets to act on SIGTERM.
TERM_GRACE = 2.0
GUARD_MODULE = "oscar_deploy.support.guard"
# The usual name of a guard's pid file, in the private folder of the run it guards.
GUARD_PID_FILE = "guard.pid"


def guarded(command: Sequence[str], *, grace: float, pid_file: Path | None = None) -> list[str]:
    """`command` run under the guard, which dies with this process; `pid_file` receives the guard's pid."""
    options = ["--parent", str(os.getpid()), "--grace", f"{grace:g}"]
    if pid_file is not None:
        options += ["--pid-file", str(pid_file)]
    # -P: the working folder (a run's, a project's) is not put on the module path.
    return [sys.executable, "-P", "-m", GUARD_MODULE, *options, "--", *command]


def stop_and_wait(guard_pid: Callable[[], int | None], ended: Callable[[float], bool], what: str, grace: float) -> None:
    """After a Ctrl-C: ask the guard (whose pid `guard_pid` gives once it is known) to stop `what`, and wait
    until `ended(timeout)` says the run is over. A further Ctrl-C makes the guard end everything at once."""
    sys.stderr.write(f"interrupted: stopping {what} (up to {grace:g} s; press Ctrl-C again to stop it at once)\n")
    requested, sent = 1, 0
    while True:
        try:
            pid = guard_pid() if sent < requested else None
            if pid is not None:
                while sent < requested:
                    _signal(pid, signal.SIGTERM)
                    sent += 1
            if ended(0.1):
                return
        except KeyboardInterrupt:
            requested = 2


def read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def stop_leftover(pid_file: Path, timeout: float = 15.0) -> bool:
    """End the guard named in `pid_file` (of a run whose CLI died) and all it guards; True once none is left.

    The pid is only signalled when it still is that guard (its command line names `pid_file`), never a process
    that reused the number.
    """
    pid = read_pid(pid_file)
    if pid is None or not _is_guard_of(pid, pid_file):
        return True
    for _ in range(2):  # two requests: end everything at once, the run is already abandoned
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_guard_of(pid, pid_file):
            return True
        time.sleep(0.05)
    return False


def _is_guard_of(pid: int, pid_file: Path) -> bool:
    listed = processes().get(pid)
    if listed is None:
        return False
    return GUARD_MODULE in listed.command and str(pid_file) in listed.command


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


# --- the process table ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    parent: int
    group: int
    command: str


def processes() -> dict[int, Listed]:
    """The living processes (zombies left out) by pid: from /proc on Linux, else from `ps`."""
    if not Path("/proc/self/stat").is_file():
        return _from_ps()
    table: dict[int, Listed] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(encoding="utf-8", errors="replace")
            command = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue  # ended meanwhile
        fields = stat.rpartition(")")[2].split()  # after the command name: state, ppid, pgrp, ...
        if len(fields) > 2 and fields[0] != "Z":
            text = os.fsdecode(command.replace(b"\0", b" ")).strip()
            table[int(entry.name)] = Listed(int(fields[1]), int(fields[2]), text)
    return table


def _from_ps() -> dict[int, Listed]:
    import subprocess

    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid=,pgid=,stat=,command="], capture_output=True, text=True, check=False
    ).stdout
    table: dict[int, Listed] = {}
    for line in listing.splitlines():
        parts = line.split(None, 4)
        if len(parts) >= 4 and all(part.isdigit() for part in parts[:3]) and not parts[3].startswith("Z"):
            table[int(parts[0])] = Listed(int(parts[1]), int(parts[2]), parts[4] if len(parts) > 4 else "")
    return table


def descendants(root: int) -> list[int]:
    """Every living process below `root` in the process tree, parents before their children."""
    children: dict[int, list[int]] = {}
    for pid, listed in processes().items():
        children.setdefault(listed.parent, []).append(pid)
    found: list[int] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(option, value, 0, 0, 0)) == 0


class Guard:
    """Runs one command and keeps every process it starts within reach; see the module docstring."""

    def __init__(self, command: Sequence[str], grace: float) -> None:
        self.command = list(command)
        self.grace = grace
        self.requests = 0
        self.child: int | None = None
        self.status: int | None = None
        self.wake_read, wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_stop)
        signal.signal(PARENT_GONE, self._on_parent_gone)
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)  # only to wake the loop up

    def _on_stop(self, _signum: int, _frame: object) -> None:
        self.requests += 1

    def _on_parent_gone(self, _signum: int, _frame: object) -> None:
        self.requests = max(self.requests, 1)

    def start(self) -> None:
        # The tool gets default signal actions and no blocked signals, whatever the guard was started with.
        self.child = os.posix_spawnp(
            self.command[0],
            self.command,
            os.environ,
            setsigdef=(*STOP_SIGNALS, PARENT_GONE, signal.SIGPIPE, signal.SIGCHLD),
            setsigmask=(),
        )

    def run(self) -> int:
        """Wait for the tool, or for a stop request; then end what is left. Returns the exit code to use."""
        deadline: float | None = None
        while self.status is None:
            if self.requests >= 2 or (deadline is not None and time.monotonic() >= deadline):
                break
            if self.requests == 1 and deadline is None:
                self.interrupt()
                deadline = time.monotonic() + self.grace
            timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            select.select([self.wake_read], [], [], timeout)
            with contextlib.suppress(BlockingIOError):
                os.read(self.wake_read, 512)
            self._reap()
        self.end_all()
        if self.status is None:
            return 128 + signal.SIGKILL
        code = os.waitstatus_to_exitcode(self.status)
        return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell reports it

    def interrupt(self) -> None:
        """SIGINT to the tool's process group, as a Ctrl-C in a terminal would send it: the tool's orderly stop.
        The guard shares that group (ansible-runner's pty makes it the foreground one) and leaves itself out."""
        assert self.child is not None
        try:
            group = os.getpgid(self.child)
        except ProcessLookupError:
            return
        for pid, listed in processes().items():
            if listed.group == group and pid != os.getpid():
                _signal(pid, signal.SIGINT)

    def _reap(self) -> bool:
        """Collect every child that ended; False once the guard has no child left."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid == self.child:
                self.status = status

    def end_all(self) -> None:
        """SIGTERM to every descendant (unless a second request asked for haste), then SIGKILL until none is
        left; each is reaped (they are the guard's children by then, as it is their subreaper)."""
        if self.requests < 2:
            for pid in descendants(os.getpid()):
                _signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + TERM_GRACE
            while self._reap() and descendants(os.getpid()) and time.monotonic() < deadline:
                time.sleep(0.05)
        while True:
            left = descendants(os.getpid())
            if not left:
                break
            for pid in left:
                _signal(pid, signal.SIGKILL)
            self._reap()
            time.sleep(0.01)
        self._reap()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=GUARD_MODULE,
        description="Run COMMAND; end it and all it started when asked (SIGTERM, SIGINT) or when the parent "
        "process dies (SIGHUP).",
    )
    parser.add_argument("--parent", type=int, help="pid of the process this run belongs to")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds COMMAND gets to stop after SIGINT")
    parser.add_argument("--pid-file", type=Path, help="file to write the guard's pid to")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("no command given")
    if os.getsid(0) != os.getpid():
        os.setsid()
    guard = Guard(command, options.grace)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, PARENT_GONE)
    if options.parent is not None and os.getppid() != options.parent:
        return 1  # the parent died before the death signal was armed: start nothing
    if options.pid_file is not None:
        fd = os.open(options.pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(f"{os.getpid()}\n")
    try:
        if guard.requests:
            return 130  # asked to stop before the command started: start nothing
        try:
            guard.start()
        except OSError as exc:
            sys.stderr.write(f"{command[0]}: cannot start: {exc.strerror or exc}\n")
            return 127
        return guard.run()
    finally:
        if options.pid_file is not None:
            options.pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
