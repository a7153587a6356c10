"""Recovery of an interrupted update: pending operations dropped from recorded state, stale locks told apart."""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime, timedelta

import pytest

from oscar_deploy.iac.recovery import (
    STALE_LOCK_AGE,
    LockHolder,
    PendingOperation,
    Recovery,
    StaleLock,
    parse_lock_holders,
    pending_operations,
    process_alive,
    resource_label,
    sort_locks,
    stale_reason,
    without_pending_operations,
)
from oscar_deploy.support.errors import OperationError
from tests.unit.iac.conftest import load

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
W4 = "urn:pulumi:lab::oscar-openstack::openstack:compute/instance:Instance::lab-w4"
W3 = "urn:pulumi:lab::oscar-openstack::openstack:compute/instance:Instance::lab-w3"
W2 = "urn:pulumi:lab::oscar-openstack::openstack:compute/instance:Instance::lab-w2"
# pkg/backend/diy/lock.go (checkForLock): the error and one line per lock, time in RFC 3339.
LOCKED = (
    "error: the stack is currently locked by 2 lock(s). Either wait for the other process(es) to end or delete "
    "the lock file with `pulumi cancel`.\n"
    "  file:///home/u/state/lab/pulumi/.pulumi/locks/organization/oscar-openstack/lab/3f1c.json: created by "
    "ana@ws-17 (pid 4242) at 2026-11-30T08:20:11Z\n"
    "  s3://team-bucket/.pulumi/locks/organization/oscar-openstack/lab/9a0b.json: created by "
    "ci@runner.example.org (pid 77) at 2026-11-30T11:59:00+01:00\n"
)


def test_pending_operations_are_read_in_checkpoint_order() -> None:
    state = load("interrupted-state.json")
    assert pending_operations(state) == [PendingOperation("creating", W4), PendingOperation("deleting", W3)]
    assert [operation.label for operation in pending_operations(state)] == ["Instance lab-w4", "Instance lab-w3"]


def test_clearing_keeps_everything_else_exactly_and_leaves_the_input_alone() -> None:
    state = load("interrupted-state.json")
    original = copy.deepcopy(state)
    cleared = without_pending_operations(state)
    assert state == original, "the exported state is not modified in place"
    assert "pending_operations" not in cleared["deployment"]
    expected = copy.deepcopy(original)
    del expected["deployment"]["pending_operations"]
    assert cleared == expected
    # The secret output stays in its encrypted exported form.
    outputs = cleared["deployment"]["resources"][0]["outputs"]["admin_password"]
    assert outputs["ciphertext"].startswith("v1:")
    assert pending_operations(cleared) == []


def test_a_new_stack_has_nothing_pending() -> None:
    assert pending_operations({"version": 3, "deployment": {"manifest": {}}}) == []


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"version": 4, "deployment": {}}, "pulumi state: format version 4, oscar-deploy reads version 3"),
        ({"version": 3}, "pulumi state: no deployment in the exported state; the checkpoint is damaged"),
        (
            {"version": 3, "deployment": {"pending_operations": [{"type": "creating"}]}},
            "pulumi state: pending operation 0 names no resource; the checkpoint is damaged",
        ),
    ],
)
def test_a_state_we_cannot_read_is_an_error_not_a_guess(state: dict, message: str) -> None:
    with pytest.raises(OperationError, match=f"^{message}"):
        pending_operations(state)


def test_resource_labels_come_from_the_urn_only() -> None:
    assert resource_label(W4) == "Instance lab-w4"
    nested = "urn:pulumi:lab::oscar-platform::oscar:Platform$kubernetes:apps/v1:Deployment::oscar"
    assert resource_label(nested) == "Deployment oscar"
    assert resource_label("not-a-urn") == "not-a-urn"


def test_lock_lines_are_parsed_as_upstream_writes_them() -> None:
    holders = parse_lock_holders(LOCKED)
    assert holders == [
        LockHolder(
            "file:///home/u/state/lab/pulumi/.pulumi/locks/organization/oscar-openstack/lab/3f1c.json",
            "ana",
            "ws-17",
            4242,
            datetime(2026, 11, 30, 8, 20, 11, tzinfo=UTC),
        ),
        LockHolder(
            "s3://team-bucket/.pulumi/locks/organization/oscar-openstack/lab/9a0b.json",
            "ci",
            "runner.example.org",
            77,
            datetime(2026, 11, 30, 10, 59, tzinfo=UTC),
        ),
    ]
    assert parse_lock_holders("error: update failed\n") == []


def test_a_lock_is_stale_only_when_its_holder_is_gone() -> None:
    here = LockHolder("x", "ana", "ws-17", 4242, NOW - timedelta(minutes=5))
    assert stale_reason(here, NOW, "ws-17", alive=lambda pid: False) == "pid 4242 on ws-17, no longer running"
    assert stale_reason(here, NOW, "ws-17", alive=lambda pid: True) is None
    # Another machine: its processes cannot be looked at, only the age counts; the bound itself is not stale.
    elsewhere = LockHolder("x", "ci", "runner", 77, NOW - STALE_LOCK_AGE)
    assert stale_reason(elsewhere, NOW, "ws-17", alive=lambda pid: False) is None
    older = LockHolder("x", "ci", "runner", 77, NOW - STALE_LOCK_AGE - timedelta(seconds=1))
    assert stale_reason(older, NOW, "ws-17", alive=lambda pid: True) == "pid 77 on runner, older than 6 hours"


def test_break_lock_takes_only_the_locks_of_other_machines() -> None:
    elsewhere = LockHolder("x", "ci", "runner", 77, NOW)
    assert stale_reason(elsewhere, NOW, "ws-17", break_elsewhere=True) == "pid 77 on runner, broken by --break-lock"
    here = LockHolder("x", "ana", "ws-17", 4242, NOW)
    assert stale_reason(here, NOW, "ws-17", alive=lambda pid: True, break_elsewhere=True) is None
    assert stale_reason(here, NOW, "ws-17", alive=lambda pid: False, break_elsewhere=True) == (
        "pid 4242 on ws-17, no longer running"
    )
    holders = [here, elsewhere]
    stale, live = sort_locks(holders, NOW, "ws-17", alive=lambda pid: True, break_elsewhere=True)
    assert stale == [StaleLock(elsewhere, "pid 77 on runner, broken by --break-lock")]
    assert live == [here]


def test_sort_locks_separates_stale_from_live() -> None:
    holders = parse_lock_holders(LOCKED)
    stale, live = sort_locks(holders, NOW, "ws-17", alive=lambda pid: True)
    assert stale == [] and live == holders
    stale, live = sort_locks(holders, NOW, "ws-17", alive=lambda pid: False)
    assert stale == [StaleLock(holders[0], "pid 4242 on ws-17, no longer running")]
    assert live == [holders[1]]


def test_process_alive_looks_at_real_processes() -> None:
    assert process_alive(os.getpid())
    assert not process_alive(0)
    assert not process_alive(-5)
    assert process_alive(1), "pid 1 exists (permission denied still proves it)"
    child = os.fork() if hasattr(os, "fork") else None
    if child == 0:
        os._exit(0)
    assert child is not None
    os.waitpid(child, 0)
    assert not process_alive(child), "a reaped child no longer exists"


def test_the_recovery_line_says_what_was_recovered() -> None:
    state = load("interrupted-state.json")
    lock = StaleLock(LockHolder("x", "ana", "ws-17", 4242, datetime(2026, 11, 30, 8, 20, 11, tzinfo=UTC)), "gone")
    recovery = Recovery(pending=pending_operations(state), stale_locks=[lock])
    assert recovery.message() == (
        "recovered: 2 pending operations from an interrupted update (created: Instance lab-w4; deleted: Instance "
        "lab-w3), a stale lock of 2026-11-30 08:20 UTC (gone); an interrupted create may have left its resource "
        "outside the stack: if the cloud holds two copies of Instance lab-w4, delete the older one (`up`, `scale` and "
        "`down` name a VM carrying the cluster's tag that the stack does not hold, with the command that deletes it)"
    )
    two = Recovery(pending=[PendingOperation("creating", W3), PendingOperation("creating", W4)])
    assert two.message() == (
        "recovered: 2 pending operations from an interrupted update (created: Instance lab-w3, Instance lab-w4); "
        "interrupted creates may have left their resources outside the stack: for each of Instance lab-w3 and "
        "Instance lab-w4: if the cloud holds two, delete the older one (`up`, `scale` and `down` name a VM carrying "
        "the cluster's tag that the stack does not hold, with the command that deletes it)"
    )
    three = Recovery(pending=[PendingOperation("creating", urn) for urn in (W2, W3, W4)])
    assert three.message() == (
        "recovered: 3 pending operations from an interrupted update (created: Instance lab-w2, Instance lab-w3, "
        "Instance lab-w4); interrupted creates may have left their resources outside the stack: for each of Instance "
        "lab-w2, Instance lab-w3 and Instance lab-w4: if the cloud holds two, delete the older one (`up`, `scale` and "
        "`down` name a VM carrying the cluster's tag that the stack does not hold, with the command that deletes it)"
    )
    one = Recovery(pending=[PendingOperation("updating", W3)])
    assert one.message() == "recovered: 1 pending operation from an interrupted update (updated: Instance lab-w3)"
    assert not Recovery()
