"""Tools run as plain children end with everything they started: `oscar_deploy.support.process_group.run` on
Ctrl-C, on the CLI's `Terminated` (SIGTERM) and on a timeout, in-process and through its callers (podman,
skopeo, the static power commands, the ssh probe, node_image's logged commands), and a SIGTERM to a real CLI
process. Processes are identified by pid (from the labelled stand-in tests/doubles/stalling_tool.py, or as
descendants of the test), never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oscar_deploy.nodes.model import Node
from oscar_deploy.providers.base import probe_ssh
from oscar_deploy.providers.local import node_image
from oscar_deploy.providers.local.engine import ContainerEngine
from oscar_deploy.providers.static.power import CommandPower
from oscar_deploy.support import process_group
from oscar_deploy.support.errors import OperationError, Terminated
from oscar_deploy.support.guard import descendants
from oscar_deploy.support.oci import Skopeo
from tests.processes import alive, wait_for

DOUBLE = Path(__file__).resolve().parents[1] / "doubles" / "stalling_tool.py"
GRACE = 1.0  # STOP_GRACE in the in-process tests: the stand-in's helper ignores SIGINT and waits out the grace


class Stalling:
    """The stand-in's surroundings: a folder for its records and a bin folder of wrappers named after tools."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "records"
        self.bin = root / "bin"
        self.folder.mkdir()
        self.bin.mkdir()

    def tool(self, name: str) -> Path:
        wrapper = self.bin / name
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{DOUBLE}" "$@"\n')
        wrapper.chmod(0o755)
        return wrapper

    def pids(self) -> list[int]:
        """The tool's pid and its helper's, once the tool has written them."""
        wait_for((self.folder / "pids").exists, 30, "the stand-in to start its helper")
        return [int(line) for line in (self.folder / "pids").read_text().split()]

    def signals(self) -> str:
        path = self.folder / "signals"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def stalling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stalling]:
    made = Stalling(tmp_path)
    monkeypatch.setenv("STALLING_TOOL_DIR", str(made.folder))
    monkeypatch.setattr(process_group, "STOP_GRACE", GRACE)
    before = set(descendants(os.getpid()))
    yield made
    recorded = made.folder / "pids"  # the helper, orphaned, is no descendant of the test any more
    started = [int(pid) for pid in recorded.read_text().split()] if recorded.exists() else []
    for pid in (set(descendants(os.getpid())) - before) | set(started):  # a failed test leaves nothing running
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def interrupt_when(ready: Callable[[], bool], exc: type[BaseException], times: int = 1) -> Callable[[], None]:
    """Start a thread that, once `ready()`, makes the main thread raise `exc` from a signal handler, as the
    CLI's SIGINT (KeyboardInterrupt) and SIGTERM (`Terminated`) handlers do, `times` times half a second apart;
    returns the undo, which waits for the thread to be done."""

    def raise_it(_signum: int, _frame: object) -> None:
        raise exc

    previous = signal.signal(signal.SIGUSR1, raise_it)

    def interrupt() -> None:
        wait_for(ready, 30, "the child to be ready")
        for time_ in range(times):
            if time_:
                time.sleep(0.5)
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()

    def undo() -> None:
        signal.signal(signal.SIGUSR1, lambda _signum, _frame: None)  # a late one no longer interrupts anything
        thread.join(35)
        signal.signal(signal.SIGUSR1, previous)

    return undo


def assert_ended(pids: list[int]) -> None:
    # The helper is re-parented once the tool ends; whoever reaps it, it must not run any more.
    wait_for(lambda: not any(alive(pid) for pid in pids), 5, "the killed group's processes to be reaped")


@pytest.mark.parametrize("exc", [KeyboardInterrupt, Terminated])
def test_an_interrupt_stops_the_tool_in_order_and_ends_what_it_started(
    stalling: Stalling, exc: type[BaseException]
) -> None:
    tool = stalling.tool("tool")
    undo = interrupt_when((stalling.folder / "pids").exists, exc)
    started = time.monotonic()
    try:
        with pytest.raises(exc):
            process_group.run([str(tool)], capture_output=True, text=True)
    finally:
        undo()
    took = time.monotonic() - started
    pids = stalling.pids()
    assert [pid for pid in pids if alive(pid)] == [], "the tool and its helper end before the interrupt goes on"
    assert stalling.signals() == "SIGINT\n", "the tool was given its orderly stop first, once"
    assert took < GRACE + 5, f"took {took:.1f} s"


def test_a_second_interrupt_during_the_grace_ends_the_group_at_once(stalling: Stalling) -> None:
    tool = stalling.tool("tool")
    undo = interrupt_when((stalling.folder / "pids").exists, Terminated, times=2)
    started = time.monotonic()
    try:
        with pytest.raises(Terminated):
            process_group.run([str(tool)], grace=60)
    finally:
        undo()
    assert time.monotonic() - started < 20, "the second interrupt cut the grace short"
    assert stalling.signals() == "SIGINT\n"
    assert_ended(stalling.pids())


def test_a_timeout_ends_the_group_and_keeps_what_was_written(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f'echo started; sleep 600 & first=$!; sleep 601 & echo $$ $first $! > "{pids}"; wait'
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        process_group.run(["sh", "-c", script], capture_output=True, text=True, timeout=1, grace=0.5)
    assert caught.value.stdout == b"started\n", "read so far, bytes whatever `text` says, as subprocess.run keeps it"
    started = [int(pid) for pid in pids.read_text().split()]
    try:
        assert_ended(started)
    finally:
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_reviewers_reproduction_through_node_images_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sh -c "sleep 600 & sleep 601; wait"` run by node_image's logged runner, the CLI's SIGTERM meanwhile."""
    monkeypatch.setattr(process_group, "STOP_GRACE", GRACE)
    before = set(descendants(os.getpid()))
    seen: list[int] = []

    def started() -> bool:  # sh and its two sleeps; once sh is gone, an orphaned sleep is no descendant any more
        seen[:] = [pid for pid in descendants(os.getpid()) if pid not in before]
        return len(seen) >= 3

    undo = interrupt_when(started, Terminated)
    try:
        with pytest.raises(Terminated):
            node_image._logged(["sh", "-c", "sleep 600 & sleep 601; wait"], tmp_path / "log", "test")
    finally:
        undo()
    leftover = [pid for pid in seen if alive(pid)]
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert leftover == [], "no descendant survives"


def test_it_keeps_subprocess_runs_results(tmp_path: Path) -> None:
    echo = "import os, sys; data = sys.stdin.read(); print(data.upper()); print('to stderr', file=sys.stderr)"
    done = process_group.run(
        [sys.executable, "-c", echo + "; sys.exit(3)"], input="abc", capture_output=True, text=True
    )
    assert isinstance(done, subprocess.CompletedProcess)
    assert (done.args, done.returncode, done.stdout, done.stderr) == (
        [sys.executable, "-c", echo + "; sys.exit(3)"],
        3,
        "ABC\n",
        "to stderr\n",
    )
    raw = process_group.run([sys.executable, "-c", echo], input=b"x", capture_output=True)
    assert (raw.stdout, raw.stderr) == (b"X\n", b"to stderr\n")
    with pytest.raises(subprocess.CalledProcessError) as failed:
        process_group.run([sys.executable, "-c", echo + "; sys.exit(4)"], capture_output=True, text=True, check=True)
    assert (failed.value.returncode, failed.value.stdout, failed.value.stderr) == (4, "\n", "to stderr\n")
    where = "import os; print(os.getcwd(), os.environ['PG_TEST'], os.getpgid(0) == os.getpid())"
    shown = process_group.run(
        [sys.executable, "-c", where], capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PG_TEST": "v"}
    )
    assert shown.stdout == f"{tmp_path} v True\n", "cwd and env as given, the child leads a group of its own"
    uncaptured = process_group.run([sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"])
    assert (uncaptured.stdout, uncaptured.stderr, uncaptured.returncode) == (None, None, 0)
    log = tmp_path / "log"
    with log.open("w") as handle:
        process_group.run([sys.executable, "-c", echo], stdout=handle, stderr=subprocess.STDOUT)
    assert sorted(log.read_text().splitlines()) == ["", "to stderr"], "stdin is /dev/null unless given"
    with pytest.raises(FileNotFoundError):
        process_group.run([str(tmp_path / "absent")])
    with pytest.raises(ValueError, match="stdin and input"):
        process_group.run(["true"], input="x", stdin=subprocess.DEVNULL)
    with pytest.raises(ValueError, match="capture_output"):
        process_group.run(["true"], capture_output=True, stdout=subprocess.DEVNULL)


TERMINAL_SCRIPT = """
import sys
from oscar_deploy.support import process_group
try:
    process_group.run([sys.argv[1]], capture_output=True, grace=1)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_a_ctrl_c_in_the_terminal_reaches_the_tool_promptly(stalling: Stalling) -> None:
    """A terminal's Ctrl-C goes to its foreground process group, the CLI's; the tool, in a group of its own,
    gets SIGINT from the CLI only."""
    cli = subprocess.Popen(
        [sys.executable, "-c", TERMINAL_SCRIPT, str(stalling.tool("tool"))],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        pids = stalling.pids()
        assert os.getpgid(pids[0]) not in (cli.pid, os.getpgid(0)), "the tool leads a group of its own"
        pressed = time.monotonic()
        os.killpg(cli.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        wait_for(lambda: stalling.signals() != "", 5, "the tool to get SIGINT")
        assert time.monotonic() - pressed < 2, "the tool saw the Ctrl-C promptly"
        assert cli.wait(30) == 130
    finally:
        if cli.poll() is None:
            cli.kill()
    assert stalling.signals() == "SIGINT\n"
    assert_ended(pids)


def _agent(name: str) -> Node:
    return Node(name, "agent", "amd64", "unknown", ssh_host="127.0.0.1")


CALLERS: dict[str, Callable[[Path], object]] = {
    "podman (ContainerEngine.run)": lambda tool: ContainerEngine(str(tool)).run(["build", "."]),
    "skopeo (Skopeo.inspect_raw)": lambda tool: Skopeo(str(tool)).inspect_raw("docker://x/y:1", "image x/y:1"),
    "static power command": lambda tool: CommandPower(lambda: [_agent("w1")], [str(tool), "{node}"], []).power_on("w1"),
    "ssh probe (probe_ssh)": lambda tool: probe_ssh([str(tool), "root@127.0.0.1", "true"], 5, 600),
}


@pytest.mark.parametrize("caller", list(CALLERS))
def test_sigterm_during_a_callers_tool_ends_the_tool_and_its_helper(stalling: Stalling, caller: str) -> None:
    tool = stalling.tool("tool")
    undo = interrupt_when((stalling.folder / "pids").exists, Terminated)
    try:
        with pytest.raises(Terminated):
            CALLERS[caller](tool)
    finally:
        undo()
    assert stalling.signals() == "SIGINT\n"
    assert_ended(stalling.pids())


def test_the_engines_timeout_ends_the_group_and_says_so(stalling: Stalling) -> None:
    engine = ContainerEngine(str(stalling.tool("podman")))
    with pytest.raises(OperationError, match=r"^podman build \.: no answer after 1s$"):
        engine.run(["build", "."], timeout=1)
    assert_ended(stalling.pids())


def test_the_engine_still_returns_the_tools_answer(stalling: Stalling, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STALLING_TOOL_ANSWER", "abc123\n")
    engine = ContainerEngine(str(stalling.tool("podman")))
    assert engine.run(["ps", "-q"]).stdout == "abc123\n"
    assert engine.image_id("x") == "abc123"


def test_sigterm_to_the_cli_leaves_nothing_of_its_tools_running(stalling: Stalling, tmp_path: Path) -> None:
    """`oscar-deploy status` of a local cluster asks podman (here the stand-in) for the cluster's containers; a
    SIGTERM to the CLI process alone (`kill PID`, a service manager) stops podman and what podman started."""
    stalling.tool("podman")
    spec = tmp_path / "cluster.yaml"
    spec.write_text("name: lab\ntarget: local\n")
    cli = subprocess.Popen(
        [sys.executable, "-m", "oscar_deploy", "status", "-f", str(spec)],
        env={
            **os.environ,
            "PATH": f"{stalling.bin}{os.pathsep}{os.environ['PATH']}",
            "OSCAR_DEPLOY_HOME": str(tmp_path / "home"),
        },
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pids = stalling.pids()
        started = time.monotonic()
        os.kill(cli.pid, signal.SIGTERM)
        _, stderr = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 143, stderr
    assert stderr.splitlines()[-1].startswith("terminated; "), stderr
    assert time.monotonic() - started < 20, "SIGINT, the grace (5 s), SIGKILL"
    assert stalling.signals() == "SIGINT\n", "podman was given its orderly stop"
    assert_ended(pids)
