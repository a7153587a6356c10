"""StackOperations over the recording fake runner: recovery first, progress from events, one line per problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oscar_deploy.iac.operations import StackOperations
from oscar_deploy.iac.recovery import LockHolder
from oscar_deploy.iac.runner import ConfigValue, OutputValue, StackTarget
from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.progress import RunState
from tests.doubles.stack_runner import RecordingRunner, install
from tests.unit.iac.conftest import load

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOST = "ws-17"
TARGET = StackTarget("oscar-openstack", "lab", program=lambda: None)
NAME = "oscar-openstack/lab"
SECRET = "S3cretValueFromConfig42"


class RecordingDisplay:
    """Keeps what a TaskDisplay is given, as LiveDisplay would show it."""

    def __init__(self) -> None:
        self.notable: list[str] = []
        self.status: list[str] = []
        self.recaps: list[str] = []

    def update(self, progress: RunState, notable: str | None) -> None:
        self.status.append(progress.status_line())
        if notable:
            self.notable.append(notable)

    def close(self, progress: RunState) -> None:
        self.recaps.append(progress.recap())


def operations(runner: RecordingRunner, alive: bool = False) -> tuple[StackOperations, RecordingDisplay, list[str]]:
    display = RecordingDisplay()
    notes: list[str] = []
    ops = StackOperations(
        runner.select(TARGET), display, notes.append, hostname=HOST, clock=lambda: NOW, alive=lambda pid: alive
    )
    return ops, display, notes


def test_up_sets_config_and_shows_progress() -> None:
    runner = RecordingRunner()
    scripted = runner.stack("oscar-openstack", "lab")
    scripted.events["up"] = load("up-events.json")
    scripted.outputs = {"ip": OutputValue("203.0.113.10")}
    ops, display, notes = operations(runner)
    result = ops.up({"oscar:cloud": ConfigValue("lab"), "oscar:password": ConfigValue(SECRET, secret=True)})
    assert result.outputs == {"ip": OutputValue("203.0.113.10")}
    assert runner.operations() == ["select", "export_state", "set_config", "up"]
    assert runner.calls[-1].detail == {"refresh": False}
    assert display.notable == ["replaced: Port lab-w1-port", "deleted: Instance lab-w0"]
    assert display.recaps == [f"pulumi up {NAME}: 3 created, 1 replaced, 1 deleted, 2 unchanged"]
    assert notes == [], "nothing to recover"
    assert repr(runner.calls[2].detail["config"]["oscar:password"]) == "ConfigValue([secret], secret=True)"
    assert [(step.op, step.label) for step in result.steps] == [
        ("create", "Network lab-net"),
        ("create", "Instance lab-w1"),
        ("create", "Instance lab-w2"),
        ("replace", "Port lab-w1-port"),
        ("delete", "Instance lab-w0"),
    ], "the result lists what the update acted on, from its events"


def test_an_update_asked_to_refresh_first_refreshes_and_lists_what_the_refresh_found_gone() -> None:
    runner = RecordingRunner()
    runner.stack("oscar-openstack", "lab").events["up"] = load("platform-drift-up-events.json")
    ops, _display, _notes = operations(runner)
    result = ops.up(refresh=True)
    assert runner.calls[-1].detail == {"refresh": True}
    assert [(step.op, step.id) for step in result.steps] == [
        ("missing", "minio/minio-data"),
        ("create", "minio/minio-data"),
        ("update", "minio/minio"),
        ("update", "minio/minio-root"),
    ]


def test_an_update_not_asked_to_refresh_lists_no_refresh_step() -> None:
    runner = RecordingRunner()
    runner.stack("oscar-openstack", "lab").events["up"] = load("platform-drift-up-events.json")
    ops, _display, _notes = operations(runner)
    result = ops.up()
    assert runner.calls[-1].detail == {"refresh": False}
    assert [(step.op, step.id) for step in result.steps] == [
        ("create", "minio/minio-data"),
        ("update", "minio/minio"),
        ("update", "minio/minio-root"),
    ], "without a refresh nothing is found gone"


def test_pending_operations_are_cleared_then_the_update_refreshes() -> None:
    runner = RecordingRunner()
    scripted = runner.stack("oscar-openstack", "lab")
    scripted.deployment = load("interrupted-state.json")["deployment"]
    ops, _display, notes = operations(runner)
    ops.up()
    assert runner.operations() == ["select", "export_state", "import_state", "up"]
    imported = runner.calls[2].detail["state"]
    assert "pending_operations" not in imported["deployment"]
    assert imported["deployment"]["resources"] == load("interrupted-state.json")["deployment"]["resources"]
    assert runner.calls[3].detail == {"refresh": True}
    assert notes == [
        "recovered: 2 pending operations from an interrupted update (created: Instance lab-w4; deleted: Instance "
        "lab-w3); an interrupted create may have left its resource outside the stack: if the cloud holds two copies of "
        "Instance lab-w4, delete the older one (`up`, `scale` and `down` name a VM carrying the cluster's tag that "
        "the stack does not hold, with the command that deletes it)"
    ]


def test_a_stale_lock_is_removed_and_the_operation_runs_again() -> None:
    runner = RecordingRunner()
    runner.stack("oscar-openstack", "lab").lock(4242, HOST, NOW - timedelta(minutes=3))
    ops, _display, notes = operations(runner, alive=False)
    ops.up()
    assert runner.operations() == ["select", "export_state", "up", "cancel", "up"]
    assert notes == ["recovered: a stale lock of 2026-11-30 11:57 UTC (pid 4242 on ws-17, no longer running)"]


def test_an_interrupted_update_with_pending_operations_and_its_lock_is_resumed() -> None:
    runner = RecordingRunner()
    scripted = runner.stack("oscar-openstack", "lab")
    urn = "urn:pulumi:lab::oscar-openstack::openstack:compute/instance:Instance::lab-w2"
    dead = LockHolder("file:///state/lock.json", "ana", HOST, 999_999, NOW - timedelta(hours=1))
    scripted.fail_next("up", "interrupted", pending=(("creating", urn),), lock=dead)
    ops, _display, notes = operations(runner, alive=False)
    with pytest.raises(OperationError):
        ops.up()
    ops.up()
    assert runner.operations() == [
        "select",
        "export_state",
        "up",
        "export_state",
        "import_state",
        "cancel",
        "import_state",
        "up",
    ]
    assert notes == [
        "recovered: a stale lock of 2026-11-30 11:00 UTC (pid 999999 on ws-17, no longer running)",
        "recovered: 1 pending operation from an interrupted update (created: Instance lab-w2); an interrupted create "
        "may have left its resource outside the stack: if the cloud holds two copies of Instance lab-w2, delete the "
        "older one (`up`, `scale` and `down` name a VM carrying the cluster's tag that the stack does not hold, with "
        "the command that deletes it)",
    ]
    assert runner.calls[-1].detail == {"refresh": True}


def test_a_live_holder_is_never_interrupted() -> None:
    runner = RecordingRunner()
    runner.stack("oscar-openstack", "lab").lock(4242, HOST, NOW - timedelta(minutes=3))
    ops, _display, notes = operations(runner, alive=True)
    with pytest.raises(OperationError) as caught:
        ops.up()
    assert str(caught.value) == (
        f"{NAME}: another Pulumi run holds the stack (pid 4242 on ws-17 since 2026-11-30 11:57 UTC); let it "
        "finish, then run the command again"
    )
    assert "cancel" not in runner.operations()
    assert notes == []


def test_a_lock_from_another_machine_waits_for_the_age_bound() -> None:
    runner = RecordingRunner()
    scripted = runner.stack("oscar-openstack", "lab")
    scripted.lock(77, "runner.example.org", NOW - timedelta(hours=5))
    ops, _display, _notes = operations(runner, alive=False)
    with pytest.raises(OperationError, match="another Pulumi run holds the stack"):
        ops.up()
    scripted.locks.clear()
    scripted.lock(77, "runner.example.org", NOW - timedelta(hours=7))
    ops.up()
    assert runner.operations()[-2:] == ["cancel", "up"]


def test_a_failure_is_one_line_per_error_with_secrets_masked() -> None:
    runner = RecordingRunner()
    scripted = runner.stack("oscar-openstack", "lab")
    scripted.events["up"] = load("failed-up-events.json")
    scripted.fail_next("up", "update failed")
    ops, display, _notes = operations(runner)
    with pytest.raises(OperationError) as caught:
        ops.up({"oscar:key": ConfigValue(SECRET, secret=True)})
    assert str(caught.value).splitlines() == [
        f"{NAME}: Instance lab-w1: creating server: Bad request with: [POST https://compute.example.org/v2.1/servers]"
        ', error message: {"badRequest": {"message": "Invalid key_name [secret] provided."}}',
        f"{NAME}: Stack oscar-openstack-lab: ValueError: image 'Ubuntu 24.04' not found in cloud lab",
    ]
    assert display.recaps == [f"pulumi up {NAME}: 1 created, 1 unchanged, 1 failed"]
    assert all(SECRET not in line for line in display.notable + display.status)


def test_preview_never_writes_the_state() -> None:
    runner = RecordingRunner()
    scripted = runner.stack("oscar-openstack", "lab")
    scripted.deployment = load("interrupted-state.json")["deployment"]
    scripted.changes = {"create": 2}
    ops, _display, notes = operations(runner)
    assert ops.preview({"oscar:cloud": ConfigValue("lab")}) == {"create": 2}
    assert runner.operations() == ["select", "set_config", "preview"]
    assert notes == []


def test_destroy_and_refresh_recover_first() -> None:
    runner = RecordingRunner()
    runner.stack("oscar-openstack", "lab").deployment = load("interrupted-state.json")["deployment"]
    ops, _display, notes = operations(runner)
    ops.destroy()
    assert runner.operations() == ["select", "export_state", "import_state", "destroy"]
    ops.refresh()
    assert runner.operations()[-2:] == ["export_state", "refresh"]
    assert len(notes) == 1


def test_install_replaces_the_runner_factory(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from oscar_deploy.iac import factory as runner_module
    from oscar_deploy.state.folder import ClusterState

    fake = install(monkeypatch)
    made = runner_module.create_runner(ClusterState("lab", root=tmp_path), "s3://team-bucket")
    assert made is fake
    assert fake.created_for == [("lab", "s3://team-bucket")]


def test_the_terminal_display_shows_removals_and_the_recap(capsys: pytest.CaptureFixture[str]) -> None:
    from oscar_deploy.support.progress import LiveDisplay

    runner = RecordingRunner()
    runner.stack("oscar-openstack", "lab").events["up"] = load("up-events.json")
    ops = StackOperations(runner.select(TARGET), LiveDisplay(), hostname=HOST)
    ops.up()
    assert capsys.readouterr().err.splitlines() == [
        "  replaced: Port lab-w1-port",
        "  deleted: Instance lab-w0",
        f"  pulumi up {NAME}: 3 created, 1 replaced, 1 deleted, 2 unchanged",
    ]
