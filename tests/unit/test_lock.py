"""One operation per cluster at a time (oscar_deploy.state.lock): a second `up`/`scale`/`down`/`edge install`/
`edge reset` is refused in one line naming the holder, a holder that died is taken over with a note, the
read-only commands never wait for the lock, and an autoscaler round is waited for (and waits for no one)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from oscar_deploy.nodes.ansible import PlaybookResult
from oscar_deploy.state import lock as lock_module
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.state.lock import AUTOSCALER_ROUND, ClusterBusyError, LockNote, OperationLock, hold, hold_if_free
from oscar_deploy.support.errors import OperationError
from tests.processes import Holder

INVENTORY = "server:\n  hosts:\n    192.0.2.10:\nagent:\n  hosts:\n    192.0.2.11:\n"


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    made: list[Holder] = []
    yield made
    for holder in made:
        if holder.process.poll() is None:
            holder.kill()


def open_descriptors() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


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


def test_an_operation_waits_for_an_autoscaler_round_and_says_so_once(
    tmp_path: Path, holders: list[Holder], monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "lab" / "lock"
    holder = Holder(lock, "lab", AUTOSCALER_ROUND)
    holders.append(holder)
    end_the_round_at_the_third_wait(holder, monkeypatch)
    warnings: list[str] = []
    with hold(lock, "lab", "scale --workers 2", warnings.append):
        assert note_of(lock).command == "scale --workers 2"
    assert warnings == [f"cluster lab: waiting for the autoscaler's round (pid {holder.pid}) to end"]


def end_the_round_at_the_third_wait(holder: Holder, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            holder.release()
        time.sleep(seconds)

    monkeypatch.setattr(lock_module, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep))


def test_a_round_that_does_not_end_within_round_wait_is_refused_like_any_holder(
    tmp_path: Path, holders: list[Holder], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_module, "ROUND_WAIT", 0.5)
    lock = tmp_path / "lab" / "lock"
    holder = Holder(lock, "lab", AUTOSCALER_ROUND)
    holders.append(holder)
    warnings: list[str] = []
    started = time.monotonic()
    descriptors = open_descriptors()
    with pytest.raises(ClusterBusyError) as refused, hold(lock, "lab", "up", warnings.append):
        pytest.fail("the lock was taken twice")
    assert 0.5 <= time.monotonic() - started < 5
    assert open_descriptors() == descriptors, "the refused lock file is closed"
    assert str(refused.value) == (
        f"cluster lab: busy with `autoscaler round` (pid {holder.pid}) since {note_of(lock).since}; wait for it to "
        "end (or stop it), then run this again"
    )
    assert len(warnings) == 1


def test_a_lock_whose_note_is_not_written_yet_is_waited_for_briefly(
    tmp_path: Path, holders: list[Holder], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_module, "NOTE_GRACE", 0.5)
    lock = tmp_path / "lab" / "lock"
    holder = Holder(lock, "lab", "")
    holders.append(holder)
    started = time.monotonic()
    with pytest.raises(ClusterBusyError) as refused, hold(lock, "lab", "up"):
        pytest.fail("the lock was taken twice")
    assert 0.5 <= time.monotonic() - started < 5
    assert str(refused.value) == (
        "cluster lab: busy with another oscar-deploy command; wait for it to end (or stop it), then run this again"
    )
    timer = holder.release_in(0.2)
    with hold(lock, "lab", "up"):
        assert note_of(lock).command == "up"
    timer.join()


def test_an_autoscaler_round_takes_a_free_lock_and_never_waits_for_a_held_one(
    tmp_path: Path, holders: list[Holder]
) -> None:
    lock = tmp_path / "lab" / "lock"
    lock.parent.mkdir()
    with hold_if_free(lock, "lab", AUTOSCALER_ROUND) as holder_seen:
        assert holder_seen is None
        assert note_of(lock).command == AUTOSCALER_ROUND
    assert lock.read_text() == ""
    holder = Holder(lock, "lab", "up")
    holders.append(holder)
    started = time.monotonic()
    with hold_if_free(lock, "lab", AUTOSCALER_ROUND) as holder_seen:
        assert holder_seen == f"`up` (pid {holder.pid}) since {note_of(lock).since}"
    assert time.monotonic() - started < 0.5
    assert note_of(lock).command == "up", "the holder's note is left alone"
    holder.release()
    unnoted = Holder(lock, "lab", "")  # a holder that has not written its note yet is not waited for either
    holders.append(unnoted)
    started = time.monotonic()
    with hold_if_free(lock, "lab", AUTOSCALER_ROUND) as holder_seen:
        assert holder_seen == "another oscar-deploy command"
    assert time.monotonic() - started < 0.5


def test_a_round_leaves_the_note_of_a_crashed_operation_for_the_next_one(tmp_path: Path, holders: list[Holder]) -> None:
    lock = tmp_path / "lab" / "lock"
    holder = Holder(lock, "lab", "up")
    holders.append(holder)
    crashed = note_of(lock)
    holder.kill()
    with hold_if_free(lock, "lab", AUTOSCALER_ROUND) as holder_seen:
        assert holder_seen is None
        assert note_of(lock).command == AUTOSCALER_ROUND
    assert note_of(lock) == crashed
    warnings: list[str] = []
    with hold(lock, "lab", "up", warnings.append):
        pass
    assert warnings == [
        f"note: cluster lab: `up` (pid {holder.pid}) since {crashed.since} ended without releasing its lock (it "
        "crashed or was killed); taking over"
    ]


def test_a_round_never_makes_a_removed_state_folder_again(tmp_path: Path) -> None:
    lock = tmp_path / "lab" / "lock"
    with pytest.raises(OperationError) as gone, hold_if_free(lock, "lab", AUTOSCALER_ROUND):
        pytest.fail("a round ran without its cluster")
    assert str(gone.value) == f"{tmp_path / 'lab'}: the cluster's state folder is gone; was cluster lab removed?"
    assert not (tmp_path / "lab").exists()


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


def test_an_operation_started_during_an_autoscaler_round_runs_once_it_ends(
    cli, recorded_runs: list[str], holders: list[Holder], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "boards.yml").write_text(INVENTORY)
    holder = Holder(ClusterState("pis").lock_file, "pis", AUTOSCALER_ROUND)
    holders.append(holder)

    end_the_round_at_the_third_wait(holder, monkeypatch)
    installed = cli("edge", "install", "-i", "boards.yml", "--name", "pis", "--until", "kubernetes")
    assert installed.exit_code == 0, installed.output
    assert installed.stderr.startswith(
        f"cluster pis: waiting for the autoscaler's round (pid {holder.pid}) to end\ninstalling k3s on 1 server(s)"
    )
    assert recorded_runs == ["prepare.yml", "kubernetes.yml"]


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
