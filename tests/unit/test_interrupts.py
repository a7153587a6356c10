"""Ctrl-C, SIGTERM and `kill -9` in the middle of an operation: exit 130 with `interrupted` (143 with
`terminated` for SIGTERM), nothing of the run left running, the journal true (a phase interrupted is not
recorded), the run's private folder inside the cluster's state folder, and the next run taking over and
cleaning up.

The operations run as real processes: `edge install` through tests/unit/cli_with_slow_prepare.py (the real CLI
with prepare's playbook swapped for a slow stand-in, hosts on `connection: local`), `bundle build` against the
release server on 127.0.0.1, and the Pulumi CLI runner with the labelled stand-in `pulumi`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oscar_deploy.nodes.ansible import run_playbook
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import Terminated
from oscar_deploy.support.guard import GUARD_PID_FILE, descendants, read_pid
from tests.checkout import REPOSITORY
from tests.processes import alive, wait_for
from tests.unit.iac.pulumi_release import wrapper
from tests.unit.release_server import ReleaseServer, Route

DRIVER = Path(__file__).parent / "cli_with_slow_prepare.py"
SLOW_PLAYBOOKS = Path(__file__).parent / "runner_playbooks" / "slow"
INTERRUPTED = "interrupted; what completed is recorded, run the command again to resume"
TERMINATED = "terminated; what completed is recorded, run the command again to resume"
# Ctrl-C, and SIGTERM (`kill`, a service manager stopping a unit): the same orderly stop, each its own ending.
STOPS = [
    pytest.param(signal.SIGINT, 130, INTERRUPTED, id="SIGINT"),
    pytest.param(signal.SIGTERM, 143, TERMINATED, id="SIGTERM"),
]


def tree(pid: int) -> list[int]:
    return [pid, *descendants(pid)]


class Scratch:
    """A run's surroundings: the state home, a marker folder, and a TMPDIR nothing may be left in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "state"
        self.markers = root / "markers"
        self.tmp = root / "tmp"
        # The hosts are this machine (`connection: local`): their side's temporary files go to this HOME (remote_tmp)
        # and its tmp/ (module payloads, through the slow playbook's TMPDIR).
        self.user_home = root / "user-home"
        self.slow_flag = root / "slow"
        self.state = ClusterState("intr", root=self.home)
        for folder in (self.home, self.markers, self.tmp, self.user_home / "tmp"):
            folder.mkdir(parents=True)
        self.slow_flag.touch()
        (root / "hosts.yml").write_text(
            f"server:\n  hosts:\n    node-a:\n      ansible_connection: local\n"
            f"      ansible_python_interpreter: {sys.executable}\n"
        )

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "OSCAR_DEPLOY_HOME": str(self.home),
            "OSCAR_TEST_MARKERS": str(self.markers),
            "OSCAR_TEST_SLOW": str(self.slow_flag),
            "OSCAR_TEST_REMOTE_TMP": str(self.user_home / "tmp"),
            "TMPDIR": str(self.tmp),
            "HOME": str(self.user_home),
        }

    def edge_install(self) -> subprocess.Popen[str]:
        """`edge install` in a session of its own (so its process group can be signalled as a terminal would)."""
        return subprocess.Popen(
            [sys.executable, str(DRIVER), "edge", "install", "-i", str(self.root / "hosts.yml"), "--name", "intr"],
            cwd=self.root,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def run_folders(self) -> list[Path]:
        runs = self.state.runs_dir
        return sorted(runs.iterdir()) if runs.is_dir() else []

    def wait_until_in_the_long_task(self) -> list[int]:
        """Waits for the slow task; returns the pids of the run below the CLI: guard, ansible-playbook, its
        worker, the module and `sleep`."""
        wait_for(lambda: (self.markers / "node-a.started").exists(), 120, "the playbook's long task")
        [folder] = self.run_folders()
        guard = read_pid(folder / GUARD_PID_FILE)
        assert guard is not None
        wait_for(lambda: any(_command(pid).startswith("sleep 600") for pid in descendants(guard)), 30, "sleep")
        return tree(guard)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Scratch]:
    made = Scratch(tmp_path)
    before = set(descendants(os.getpid()))
    yield made
    for pid in set(descendants(os.getpid())) - before:  # a failed test leaves nothing running
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_the_private_folder_is_made_under_the_given_root_and_removed(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    scratch_tmp = tmp_path / "tmp"
    scratch_tmp.mkdir()
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch_tmp))
    monkeypatch.setenv("OSCAR_TEST_MARKERS", str(markers))
    monkeypatch.setenv("OSCAR_TEST_SLOW", str(tmp_path / "absent"))
    monkeypatch.setenv("OSCAR_TEST_REMOTE_TMP", str(markers))
    hosts = tmp_path / "hosts.ini"
    hosts.write_text(f"[all]\nnode-a ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    runs = tmp_path / "state" / "lab" / "run"
    result = run_playbook("prepare.yml", hosts, tmp_path / "run.log", playbook_dir=SLOW_PLAYBOOKS, private_root=runs)
    assert result.succeeded
    local_temp, control_dir, control_path = (markers / "node-a.where").read_text().splitlines()
    folder = Path(local_temp).parent
    assert folder.parent == runs and "-prepare-" in folder.name
    assert (local_temp, control_dir) == (f"{folder}/tmp", f"{folder}/cp"), "Ansible's files of the run stay there"
    assert control_path == "cp/%%C", "ssh's sockets relative to the run's folder, where ansible-playbook works"
    assert oct(runs.stat().st_mode & 0o777) == "0o700"
    assert list(runs.iterdir()) == [], "the run's folder goes when it ends"
    assert list(scratch_tmp.iterdir()) == [], "nothing of the run in the system's temporary folder"


def test_a_ctrl_c_returns_only_once_nothing_of_the_run_is_left(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """In-process, so the moment KeyboardInterrupt comes out of run_playbook can be checked: by then the guard
    and everything below it have ended and been reaped, and the private folder is gone."""
    markers = tmp_path / "markers"
    markers.mkdir()
    (tmp_path / "slow").touch()
    monkeypatch.setenv("OSCAR_TEST_MARKERS", str(markers))
    monkeypatch.setenv("OSCAR_TEST_SLOW", str(tmp_path / "slow"))
    monkeypatch.setenv("OSCAR_TEST_REMOTE_TMP", str(markers))
    hosts = tmp_path / "hosts.ini"
    hosts.write_text(f"[all]\nnode-a ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    runs = tmp_path / "run"
    before = set(descendants(os.getpid()))

    def press_ctrl_c() -> None:
        wait_for(lambda: any(_command(pid).startswith("sleep 600") for pid in descendants(os.getpid())), 120, "sleep")
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_playbook("prepare.yml", hosts, tmp_path / "run.log", playbook_dir=SLOW_PLAYBOOKS, private_root=runs)
    assert [_command(pid) for pid in set(descendants(os.getpid())) - before] == []
    assert list(runs.iterdir()) == []


@pytest.mark.parametrize(("signum", "code", "last_line"), STOPS)
def test_ctrl_c_or_sigterm_stops_the_playbook_and_the_journal_stays_true(
    scratch: Scratch, signum: int, code: int, last_line: str
) -> None:
    cli = scratch.edge_install()
    run = scratch.wait_until_in_the_long_task()
    [folder] = scratch.run_folders()
    playbook = run[1]  # the guard's one child
    assert "/ansible-playbook -i " in _command(playbook)
    assert Path(f"/proc/{playbook}/cwd").readlink() == folder, "ansible-playbook works in the run's folder"
    started = time.monotonic()
    os.kill(cli.pid, signum)  # the CLI process alone: the guard must pass it on
    _, stderr = cli.communicate(timeout=60)
    took = time.monotonic() - started
    assert cli.returncode == code, stderr
    lines = stderr.splitlines()
    assert lines[-1] == last_line
    assert "interrupted: stopping ansible-playbook (up to 10 s; press Ctrl-C again to stop it at once)" in lines
    assert "Traceback" not in stderr and "events directory" not in stderr
    assert took < 15, f"stopping took {took:.1f} s"
    assert [pid for pid in run if alive(pid)] == [], "nothing of the run is left running"
    assert sorted(scratch.state.journal.records()) == ["provision"], "the interrupted prepare is not recorded"
    assert scratch.run_folders() == [], [str(path) for path in folder.rglob("*")]
    assert list(scratch.tmp.iterdir()) == []

    scratch.slow_flag.unlink()
    again = scratch.edge_install()
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert "ended without releasing its lock" not in stderr, "an interrupted run released its lock"
    assert sorted(scratch.state.journal.records()) == ["prepare", "provision"]


def test_kill_9_of_the_process_group_leaves_nothing_running_and_the_next_run_cleans_up(scratch: Scratch) -> None:
    cli = scratch.edge_install()
    run = scratch.wait_until_in_the_long_task()
    [folder] = scratch.run_folders()
    os.killpg(cli.pid, signal.SIGKILL)
    cli.wait(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in run), 30, "every process of the killed run to end")
    assert scratch.run_folders() == [folder], "a killed run leaves its private folder, in the state folder"
    assert list(scratch.tmp.iterdir()) == [], "and nothing in the system's temporary folder"
    assert sorted(scratch.state.journal.records()) == ["provision"]

    scratch.slow_flag.unlink()
    again = scratch.edge_install()
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert f"note: cluster intr: `edge install` (pid {cli.pid}) since " in stderr
    assert "ended without releasing its lock (it crashed or was killed); taking over" in stderr
    assert scratch.run_folders() == [], "the leftover folder (the token file, variables, facts) is removed"
    assert sorted(scratch.state.journal.records()) == ["prepare", "provision"]


@pytest.mark.parametrize(("signum", "code", "last_line"), STOPS)
def test_ctrl_c_or_sigterm_during_a_download_leaves_no_partial_file(
    tmp_path: Path, signum: int, code: int, last_line: str
) -> None:
    server = ReleaseServer()
    try:
        server.routes["/download/v1.33.3%2Bk3s1/sha256sum-amd64.txt"] = Route(b"x" * 200_000, behaviour="stall")
        bundle = tmp_path / "bundle"
        cli = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "oscar_deploy",
                "bundle",
                "build",
                "--k3s-version",
                "v1.33.3+k3s1",
                "--download-url",
                f"{server.base}/download",
                str(bundle),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: any(bundle.rglob("*.part")), 60, "the download to begin")
        os.kill(cli.pid, signum)
        _, stderr = cli.communicate(timeout=30)
    finally:
        server.close()
    assert cli.returncode == code, stderr
    assert stderr.splitlines()[-1] == last_line
    assert "Traceback" not in stderr
    assert [path for path in bundle.rglob("*") if path.is_file()] == [], "no partial download is left"


@pytest.fixture
def pulumi(tmp_path: Path) -> Path:
    """The labelled stand-in `pulumi` (tests/doubles/pulumi_cli.py), holding an update until interrupted."""
    folder = tmp_path / "stand-in"
    folder.mkdir()
    stack = {"config": {}, "deployment": {}, "outputs": {}}
    scenario = {"up": {"hold": True, "exit": 255, "stderr": "error: update canceled"}}
    (folder / "state.json").write_text(json.dumps({"stacks": {"organization/p/s": stack}, "scenario": scenario}))
    binary = tmp_path / "bin" / "pulumi"
    binary.parent.mkdir()
    binary.write_bytes(wrapper())
    binary.chmod(0o755)
    return binary


PULUMI_UP = """
import sys
from pathlib import Path
from oscar_deploy.iac.pulumi_runner import PulumiCli
try:
    PulumiCli(Path(sys.argv[1])).run(["up", "--stack", "organization/p/s"], sys.argv[2], {})
except KeyboardInterrupt:
    sys.stderr.write("interrupted\\n")
    sys.exit(130)
"""


@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_pulumi_is_stopped_in_order_and_its_plugins_with_it(tmp_path: Path, pulumi: Path, how: str) -> None:
    folder = tmp_path / "stand-in"
    cli = subprocess.Popen(
        [sys.executable, "-c", PULUMI_UP, str(pulumi), str(tmp_path)],
        env={**os.environ, "PULUMI_STAND_IN_DIR": str(folder)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    held = folder / "held"
    wait_for(held.exists, 60, "the stand-in to hold the update")
    update = json.loads(held.read_text())
    run = [update["pid"], update["plugin"]]
    if how == "ctrl-c":
        os.kill(cli.pid, signal.SIGINT)
        _, stderr = cli.communicate(timeout=30)
        assert cli.returncode == 130, stderr
        assert "interrupted: stopping pulumi (up to 30 s; press Ctrl-C again to stop it at once)" in stderr
    else:
        os.killpg(cli.pid, signal.SIGKILL)
        cli.wait(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in run), 30, "pulumi and its plugin to end")
    signals = folder / "signals"
    assert signals.is_file() and signals.read_text() == "SIGINT\n", "pulumi was given its orderly cancel, and only it"
    assert (folder / "interrupted").read_text() == "SIGINT"


def test_ctrl_c_at_a_confirmation_is_an_interrupt_and_no_is_a_refusal(cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    state = ClusterState("lab")
    state.save_spec("name: lab\ntarget: local\n")
    monkeypatch.setattr("oscar_deploy.cli.options.stdin_is_terminal", lambda: True)
    interrupted = cli("down", "-c", "lab", input="")  # the question gets no answer: Ctrl-C or end of input
    assert interrupted.exit_code == 130
    assert interrupted.stderr.splitlines()[-1] == INTERRUPTED
    declined = cli("down", "-c", "lab", input="n\n")
    assert declined.exit_code == 1
    assert "interrupted" not in declined.stderr, "a no is an answer, not an interrupt"
    assert state.spec_file.is_file(), "nothing was removed"


def stopped_by(exc: KeyboardInterrupt):  # type: ignore[no-untyped-def]
    def stop(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise exc

    return stop


@pytest.mark.parametrize(
    ("command", "patched", "stop"),
    [
        (["versions"], "cli.commands.versions_command.load_catalogue", KeyboardInterrupt()),
        (["versions"], "cli.commands.versions_command.load_catalogue", Terminated()),
        (["service", "validate", "f.yaml"], "cli.commands.service_commands.load_fdl", KeyboardInterrupt()),
        (["service", "list"], "cli.access.AccessOptions.resolve", KeyboardInterrupt()),
        (["autoscaler", "simulate", "-s", "sparse"], "autoscaler.compare.compare", Terminated()),
        (["files", "get", "photos/k"], "cli.access.AccessOptions.resolve", KeyboardInterrupt()),
        (["credentials", "-c", "lab"], "cli.commands.credentials_command.access_from_state", KeyboardInterrupt()),
    ],
    ids=["top-level", "sigterm", "sub-command", "with-cluster-access", "simulate", "download", "credentials"],
)
def test_a_command_that_changes_nothing_says_so_when_stopped(  # type: ignore[no-untyped-def]
    cli, monkeypatch, command: list[str], patched: str, stop: KeyboardInterrupt
) -> None:
    monkeypatch.setattr(f"oscar_deploy.{patched}", stopped_by(stop))
    ClusterState("lab").ensure()
    result = cli(*command)
    code, ended = (143, "terminated") if isinstance(stop, Terminated) else (130, "interrupted")
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (code, f"{ended}; nothing was changed")
    assert "Traceback" not in result.stderr


def test_a_command_that_changes_something_says_how_to_resume(cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("oscar_deploy.cli.commands.service_commands.load_fdl", stopped_by(KeyboardInterrupt()))
    result = cli("service", "apply", "f.yaml")
    assert (result.exit_code, result.stderr) == (130, INTERRUPTED + "\n")


def commands_marked_changes_nothing() -> set[str]:
    """Every command (and sub-command) marked `changes_nothing`, as `group name`."""
    from oscar_deploy.cli.app import COMMANDS, click_command

    found = set()
    for entry in COMMANDS:
        command = click_command(entry)
        subcommands = getattr(command, "commands", None)
        named = (
            {f"{entry.name} {name}": sub for name, sub in subcommands.items()} if subcommands else {entry.name: command}
        )
        for name, each in named.items():
            wrapped = each.callback.__wrapped__  # the command's function, under typer's wrapper
            if wrapped.__code__.co_qualname == "changes_nothing.<locals>.reading":
                found.add(name)
    return found


def test_the_readme_names_every_command_that_changes_nothing() -> None:
    text = " ".join((REPOSITORY / "README.md").read_text().split())
    listed = text.split("A command that changes no cluster and no state (")[1].split(")")[0]
    named = set()
    for item in listed.replace("`", "").split(", "):
        group, _, names = item.rpartition(" ")
        named |= {f"{group} {name}".strip() for name in names.split("|")}
    assert named == commands_marked_changes_nothing()
    assert {"up", "down", "scale", "service apply", "autoscaler run", "bundle build"}.isdisjoint(named)
