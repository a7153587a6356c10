"""One operation per cluster at a time (oscar_deploy.state.lock): a second `up`/`scale`/`down`/`edge install`/
`edge reset` is refused in one line naming the holder, a holder that died is taken over with a note, and the
read-only commands never wait for the lock."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oscar_deploy.nodes.ansible import PlaybookResult
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.state.lock import ClusterBusyError, LockNote, OperationLock, hold

HOLDER = """
import sys
from pathlib import Path
from oscar_deploy.state.lock import hold
with hold(Path(sys.argv[1]), sys.argv[2], sys.argv[3]):
    print("held", flush=True)
    sys.stdin.read()
"""
INVENTORY = "server:\n  hosts:\n    192.0.2.10:\nagent:\n  hosts:\n    192.0.2.11:\n"


class Holder:
    """Another process holding a cluster's lock until `release` (or `kill`)."""

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


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    made: list[Holder] = []
    yield made
    for holder in made:
        if holder.process.poll() is None:
            holder.kill()


def note_of(path: Path) -> LockNote:
    note = OperationLock(path, "lab").note()
    assert note is not None
    return note


def test_a_second_operation_is_refused_in_one_line_naming_the_holder(tmp_path: Path, holders: list[Holder]) -> None:
    lock = tmp_path / "lab" / "lock"
    holder = Holder(lock, "lab", "up")
    holders.append(holder)
    note = note_of(lock)
    assert (note.pid, note.command) == (holder.pid, "up")
    with pytest.raises(ClusterBusyError) as refused, hold(lock, "lab", "scale --workers 2"):
        pytest.fail("the lock was taken twice")
    assert str(refused.value) == (
        f"cluster lab: busy with `up` (pid {holder.pid}) since {note.since}; wait for it to end (or stop it), "
        "then run this again"
    )
    assert refused.value.exit_code == 2
    holder.release()
    assert lock.read_text() == "", "a holder that ends normally clears its note"
    warnings: list[str] = []
    with hold(lock, "lab", "scale --workers 2", warnings.append):
        assert note_of(lock).command == "scale --workers 2"
    assert warnings == [], "nothing to take over after a clean release"


def test_a_holder_that_died_is_taken_over_with_a_note(tmp_path: Path, holders: list[Holder]) -> None:
    lock = tmp_path / "lab" / "lock"
    holder = Holder(lock, "lab", "edge install")
    holders.append(holder)
    since = note_of(lock).since
    holder.kill()  # kill -9: the kernel drops its flock, its note stays
    warnings: list[str] = []
    with hold(lock, "lab", "down", warnings.append):
        assert json.loads(lock.read_text())["command"] == "down"
    assert warnings == [
        f"note: cluster lab: `edge install` (pid {holder.pid}) since {since} ended without releasing its lock "
        "(it crashed or was killed); taking over"
    ]


def test_the_lock_outlives_its_folder_being_removed_by_down(tmp_path: Path) -> None:
    state = ClusterState("lab", root=tmp_path)
    with state.operation("down"):
        state.destroy()
    assert not state.path.exists()
    with state.operation("up"):
        assert note_of(state.lock_file).command == "up"


@pytest.fixture
def recorded_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """TEST DOUBLE for oscar_deploy.nodes.ansible.run_playbook (the real one is run in test_playbooks.py and
    test_interrupts.py): records which playbook ran and reports success."""
    runs: list[str] = []

    def run_playbook(playbook: str, inventory: Path, log_file: Path, extravars: Any = None, **options: Any) -> Any:
        runs.append(playbook)
        return PlaybookResult(playbook, "successful", 0, {}, [], log_file)

    monkeypatch.setattr("oscar_deploy.nodes.k3s.run_playbook", run_playbook)
    return runs


def test_operations_wait_for_no_one_and_read_only_commands_ignore_the_lock(
    cli, recorded_runs: list[str], holders: list[Holder]
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "boards.yml").write_text(INVENTORY)
    installed = cli("edge", "install", "-i", "boards.yml", "--name", "pis", "--until", "kubernetes")
    assert installed.exit_code == 0
    assert installed.stderr.startswith("installing k3s on 1 server(s) and 1 agent(s) from boards.yml\n")
    state = ClusterState("pis")
    state.write_file(state.kubeconfig_file, "apiVersion: v1\nkind: Config\n")
    journal = state.journal.path.read_text()
    recorded_runs.clear()
    holder = Holder(state.lock_file, "pis", "up")
    holders.append(holder)
    busy = (
        f"error: cluster pis: busy with `up` (pid {holder.pid}) since {note_of(state.lock_file).since}; wait for "
        "it to end (or stop it), then run this again\n"
    )

    for command in (
        ("edge", "install", "-i", "boards.yml", "--name", "pis"),
        ("edge", "reset", "-i", "boards.yml", "--name", "pis", "--yes"),
        ("down", "-c", "pis", "--yes"),
        ("up", "-f", str(state.spec_file)),
    ):
        refused = cli(*command)
        assert (refused.exit_code, refused.stderr) == (2, busy), command
    assert recorded_runs == [], "a refused operation runs nothing"
    assert state.journal.path.read_text() == journal and state.spec_file.is_file()

    status = cli("status", "-c", "pis")
    assert status.exit_code == 0, status.output
    assert "192.0.2.11" in status.stdout
    plan = cli("plan", "-f", str(state.spec_file))
    assert plan.exit_code == 0, plan.output
    phases = ["provision", "prepare", "kubernetes", "platform", "verify"]
    assert [line.split(":")[0] for line in plan.stdout.splitlines()] == phases
    kubeconfig = cli("kubeconfig", "-c", "pis")
    assert (kubeconfig.exit_code, kubeconfig.stdout) == (0, f"{state.kubeconfig_file}\n")
    holder.release()
    assert cli("edge", "reset", "-i", "boards.yml", "--name", "pis", "--yes").exit_code == 0
    assert recorded_runs == ["reset.yml"]


def test_scale_is_refused_while_another_operation_runs(cli, holders: list[Holder]) -> None:  # type: ignore[no-untyped-def]
    spec = "name: lab\ntarget: local\nworkers:\n  initial: 1\n  min: 1\n  max: 3\n"
    state = ClusterState("lab")
    state.save_spec(spec)
    state.journal.record("kubernetes", {})
    holder = Holder(state.lock_file, "lab", "down")
    holders.append(holder)
    refused = cli("scale", "--workers", "2", "-c", "lab")
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: cluster lab: busy with `down` (pid {holder.pid}) since ")
    assert state.desired.workers() is None
