"""What `oscar-deploy autoscaler status` reads from the decisions log: rows, notes, counts, starts and stops."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from oscar_deploy.autoscaler.decisions import DecisionsLog, run_lock
from oscar_deploy.autoscaler.service import folder_of, status_data
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import UserInputError

T0 = 1_780_000_000.0
POWER_ON = {"action": "power-on", "node": "agent-1", "reason": "1 pending pod(s)", "outcome": "powered on"}
DRAIN_STEP = {"action": "drain-step", "node": "agent-2", "outcome": "1 pod(s) evicted"}


@pytest.fixture
def cluster(tmp_path: Path) -> ClusterState:
    return ClusterState("demo", root=tmp_path)


def write(cluster: ClusterState, *entries: dict[str, Any]) -> None:
    log = DecisionsLog(folder_of(cluster) / "decisions.jsonl")
    for offset, entry in enumerate(entries):
        log.write(entry, T0 + offset)


def test_without_a_log_nothing_runs_and_nothing_was_decided(cluster: ClusterState) -> None:
    assert status_data(cluster, 10) == {
        "cluster": "demo",
        "running": False,
        "pid": None,
        "paused": None,
        "log": str(cluster.path / "autoscaler" / "decisions.jsonl"),
        "last_start": None,
        "last_stop": None,
        "decisions": [],
        "notes": [],
        "nodes": {},
        "boot": None,
    }


def test_decisions_steps_and_errors_in_order_with_the_last_rounds_notes_and_counts(cluster: ClusterState) -> None:
    write(
        cluster,
        {"event": "start", "period": 30},
        {"event": "round", "decisions": [POWER_ON], "notes": ["old note"], "counts": {"on": 1}},
        {"event": "error", "error": "EC2: could not reach the endpoint"},
        {"event": "round", "decisions": [], "steps": [DRAIN_STEP], "counts": {"on": 2, "off": 0, "odd": "3"}},
        {"event": "stop", "reason": "SIGTERM"},
    )
    data = status_data(cluster, 10)
    assert data["decisions"] == [
        {"time": "2026-05-28T20:26:41Z", **POWER_ON},
        {
            "time": "2026-05-28T20:26:42Z",
            "action": "error",
            "node": "",
            "reason": "",
            "outcome": "EC2: could not reach the endpoint",
        },
        {"time": "2026-05-28T20:26:43Z", "reason": "", **DRAIN_STEP},
    ]
    assert (data["notes"], data["nodes"]) == ([], {"on": 2, "off": 0}), "the last round's, not an older one's"
    assert data["last_start"] == {"time": "2026-05-28T20:26:40Z", "event": "start", "period": 30}
    assert data["last_stop"] == {"time": "2026-05-28T20:26:44Z", "event": "stop", "reason": "SIGTERM"}
    assert [row["action"] for row in status_data(cluster, 1)["decisions"]] == ["drain-step"]
    assert [row["action"] for row in status_data(cluster, 2)["decisions"]] == ["error", "drain-step"]


def test_pauses_for_another_command_and_the_resume_are_rows(cluster: ClusterState) -> None:
    busy = "the cluster is busy with `up` (pid 7) since T1: no round until it ends"
    write(
        cluster,
        {"event": "pause", "reason": busy},
        {"event": "resume", "reason": "`up` (pid 7) since T1 ended"},
        {"event": "pause"},
    )
    assert status_data(cluster, 10)["decisions"] == [
        {"time": "2026-05-28T20:26:40Z", "action": "pause", "node": "", "reason": busy, "outcome": ""},
        {
            "time": "2026-05-28T20:26:41Z",
            "action": "resume",
            "node": "",
            "reason": "`up` (pid 7) since T1 ended",
            "outcome": "",
        },
        {"time": "2026-05-28T20:26:42Z", "action": "pause", "node": "", "reason": "", "outcome": ""},
    ]


def test_the_latest_start_and_stop_are_shown(cluster: ClusterState) -> None:
    write(cluster, {"event": "start", "n": 1}, {"event": "stop", "n": 1}, {"event": "start", "n": 2})
    data = status_data(cluster, 10)
    assert (data["last_start"]["n"], data["last_stop"]["n"]) == (2, 1)


def test_a_running_autoscaler_is_shown_with_its_pid(cluster: ClusterState) -> None:
    with run_lock(folder_of(cluster), "demo"):
        assert (status_data(cluster, 1)["running"], status_data(cluster, 1)["pid"]) == (True, os.getpid())


BUSY = "the cluster is busy with `up` (pid 7) since T1: no round until it ends"


@pytest.mark.parametrize(
    ("events", "paused"),
    [
        ([{"event": "start"}, {"event": "pause", "reason": BUSY}], BUSY),
        ([{"event": "pause", "reason": BUSY}, {"event": "round"}], BUSY),
        ([{"event": "start"}, {"event": "pause"}], "paused"),
        ([{"event": "pause", "reason": BUSY}, {"event": "resume"}], ""),
        ([{"event": "pause", "reason": BUSY}, {"event": "stop"}], ""),
        ([{"event": "pause", "reason": BUSY}, {"event": "start"}], ""),
        ([{"event": "start"}], ""),
    ],
)
def test_a_running_autoscaler_says_why_its_rounds_wait(
    cluster: ClusterState, events: list[dict[str, Any]], paused: str
) -> None:
    write(cluster, *events)
    assert status_data(cluster, 1)["paused"] is None, "not running: nothing waits"
    with run_lock(folder_of(cluster), "demo"):
        assert status_data(cluster, 1)["paused"] == paused


def test_damaged_parts_of_a_round_show_nothing_instead_of_failing(cluster: ClusterState) -> None:
    write(
        cluster,
        {"event": "round", "decisions": [POWER_ON, "x", 3, None], "steps": {"node": "agent-2"}, "notes": ["ok", 2]},
        {"event": "round", "decisions": "power-on", "steps": [None, DRAIN_STEP, {}], "notes": "n", "counts": [1]},
        {"event": "round", "decisions": [{"action": 7}], "counts": {"on": True, "off": 1.5, "failed": 1}},
    )
    data = status_data(cluster, 10)
    assert data["decisions"] == [
        {"time": "2026-05-28T20:26:40Z", **POWER_ON},
        {"time": "2026-05-28T20:26:41Z", "reason": "", **DRAIN_STEP},
        {"time": "2026-05-28T20:26:41Z", "reason": "", "action": "", "node": "", "outcome": ""},
        {"time": "2026-05-28T20:26:42Z", "action": "7", "node": "", "reason": "", "outcome": ""},
    ]
    assert (data["notes"], data["nodes"]) == ([], {"failed": 1})
    write(cluster, {"event": "round", "notes": ["ok", 2], "counts": "none"})
    assert (status_data(cluster, 1)["notes"], status_data(cluster, 1)["nodes"]) == (["ok", "2"], {})


@pytest.mark.parametrize("last", [0, -1])
def test_last_must_be_one_or_more(cluster: ClusterState, last: int) -> None:
    with pytest.raises(UserInputError, match=rf"^--last {last}: must be 1 or more$"):
        status_data(cluster, last)


@pytest.mark.parametrize(
    ("target", "seconds"), [("local", 30.0), ("aws", 120.0), ("openstack", 180.0), ("static", 120.0)]
)
def test_before_any_boot_is_measured_the_boot_estimate_is_the_targets_default(
    cluster: ClusterState, target: str, seconds: float
) -> None:
    write(cluster, {"event": "start", "target": target})
    boot = {"estimate_seconds": seconds, "measured_boots": 0, "target_default_seconds": seconds}
    assert status_data(cluster, 10)["boot"] == boot


def state_file(cluster: ClusterState, text: str) -> None:
    (folder_of(cluster) / "state.json").write_text(text)


def test_the_boot_estimate_is_the_median_of_the_boots_measured(cluster: ClusterState) -> None:
    write(cluster, {"event": "start", "target": "aws"})
    state_file(cluster, '{"boot_seconds": [200.0, 95, 140.5]}')
    assert status_data(cluster, 10)["boot"] == {
        "estimate_seconds": 140.5,
        "measured_boots": 3,
        "target_default_seconds": 120.0,
    }
    state_file(cluster, '{"boot_seconds": [200.0, 100.0]}')
    assert status_data(cluster, 10)["boot"]["estimate_seconds"] == 150.0


def test_boot_times_that_are_no_durations_are_left_out(cluster: ClusterState) -> None:
    write(cluster, {"event": "start", "target": "local"})
    state_file(cluster, '{"boot_seconds": [NaN, Infinity, -Infinity, -1, true, "90", null, 1%s, 0, 40]}' % ("0" * 400))
    assert status_data(cluster, 10)["boot"] == {
        "estimate_seconds": 20.0,
        "measured_boots": 2,
        "target_default_seconds": 30.0,
    }


def test_without_a_known_target_only_measured_boots_give_an_estimate(cluster: ClusterState) -> None:
    write(cluster, {"event": "start", "target": "vsphere"}, {"event": "start", "target": ["local"]})
    assert status_data(cluster, 10)["boot"] is None
    state_file(cluster, '{"boot_seconds": [75.0]}')
    assert status_data(cluster, 10)["boot"] == {
        "estimate_seconds": 75.0,
        "measured_boots": 1,
        "target_default_seconds": None,
    }
