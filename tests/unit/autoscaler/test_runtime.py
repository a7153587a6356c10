"""The runtime loop, end to end but for the machines: the real observer and node actions against the Kubernetes
API double, the real policy, a recording power manager (tests/doubles/power.py), a clock the test moves, and
the decisions log it writes."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import config as kube_config

from oscar_deploy.autoscaler import runtime as runtime_module
from oscar_deploy.autoscaler.decisions import DecisionsLog, RuntimeMemory, load_memory, save_memory
from oscar_deploy.autoscaler.drain import NodeActions
from oscar_deploy.autoscaler.model import NodeTemplate, PolicyConfig, config_from_values
from oscar_deploy.autoscaler.observer import ClusterObserver
from oscar_deploy.autoscaler.runtime import Runtime, Settings
from oscar_deploy.autoscaler.snapshot import PowerRecord
from tests.doubles.kube_api import KubeApi
from tests.doubles.power import RecordingPower
from tests.unit.autoscaler.cluster_objects import node, pod

T0 = 1_780_000_000.0
PERIOD = 5.0


def config(templates: tuple[NodeTemplate, ...], boot_estimate: float) -> PolicyConfig:
    return config_from_values(
        templates=templates,
        min_nodes=0,
        max_nodes=4,
        idle_time=30,
        reconsider_job_time=60,
        max_wait_poweron=600,
        period=PERIOD,
        extra_nodes_free=0,
        boot_time_estimate=boot_estimate,
    )


@dataclass
class Loop:
    api: KubeApi
    power: RecordingPower
    runtime: Runtime
    observer: ClusterObserver
    folder: Path
    now: list[float]

    def settle(self, *kinds_versions: tuple[str, int]) -> None:
        for kind, version in kinds_versions:
            assert self.observer.reflectors[kind].wait_for_version(str(version), 10), kind

    def rounds(self, count: int) -> list[dict[str, Any]]:
        """`count` rounds, one period apart; returns what each decided and did, as logged."""
        done = []
        for _ in range(count):
            result = self.runtime.round()
            done += [{"at": self.now[0] - T0, **d} for d in result.decisions]
            done += [{"at": self.now[0] - T0, **step} for step in result.steps]
            self.now[0] += PERIOD
            self.caught_up()
        return done

    def caught_up(self) -> None:
        """Wait until the watches hold what the round's actions changed (cordons, evictions)."""
        for kind, name in (("Node", "nodes"), ("Pod", "pods")):
            reflector = self.observer.reflectors[name]
            versions = [version for version, of_kind, _ in self.api.events if of_kind == kind]
            if versions and reflector._thread.is_alive():
                assert reflector.wait_for_version(str(max(versions)), 10), name

    def restart(self) -> None:
        """A new runtime on the same folder, watches and machines, as after a restart of the process."""
        old = self.runtime
        self.runtime = Runtime(
            self.observer, self.power, old.actions, old.settings, self.folder, old.log, clock=old.clock
        )

    def log(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.folder / "decisions.jsonl").read_text().splitlines()]


@pytest.fixture
def make_loop(tmp_path: Path) -> Iterator[Any]:
    started: list[tuple[KubeApi, ClusterObserver, Any]] = []

    def make(objects: list[dict[str, Any]], states: dict[str, str], record: PowerRecord | None = None) -> Loop:
        api = KubeApi()
        for obj in objects:
            api.put(obj)
        folder = tmp_path / "autoscaler"
        folder.mkdir(exist_ok=True)
        if record is not None:
            save_memory(folder / "state.json", RuntimeMemory(record))
        client = kube_config.new_client_from_config(config_file=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
        observer = ClusterObserver(client)
        observer.start(timeout=10)
        power = RecordingPower(states)  # type: ignore[arg-type]
        now = [T0]
        settings = Settings("demo", "local", PERIOD, config, 30.0)
        log = DecisionsLog(folder / "decisions.jsonl")
        runtime = Runtime(observer, power, NodeActions(client), settings, folder, log, clock=lambda: now[0])
        started.append((api, observer, client))
        return Loop(api, power, runtime, observer, folder, now)

    yield make
    for api, observer, client in started:
        observer.stop()
        client.close()
        api.stop()


def test_a_pending_job_powers_on_a_worker_which_is_uncordoned_and_its_boot_measured(make_loop: Any) -> None:
    objects = [
        node("server-0", since=T0 - 3600, server=True),
        node("agent-0", since=T0 - 3600),
        node("agent-1", ready=False, since=T0 - 1800, cordoned=True),
        pod("oscar-svc", "job-a", "agent-0", cpu="1500m", owner="Job", created=T0 - 600),
        pod("oscar-svc", "job-b", None, cpu="1", owner="Job", created=T0 - 90),
    ]
    # agent-1 was drained and powered off by the autoscaler earlier: its cordon is ours.
    record = PowerRecord(powered_off={"agent-1": T0 - 1800}, cordoned={"agent-1"})
    loop = make_loop(objects, {"agent-0": "on", "agent-1": "off"}, record)
    (decision,) = loop.rounds(1)
    assert decision == {
        "at": 0.0,
        "action": "power-on",
        "node": "agent-1",
        "reason": "1 pending pod(s) fit on no ready or booting node; a new workers-amd64 node (amd64) holds them",
        "outcome": "powered on; uncordoned",
    }
    assert loop.power.calls == [("on", "agent-1")]
    assert loop.api.patches == [
        ("agent-1", "application/json-patch+json", [{"op": "add", "path": "/spec/unschedulable", "value": False}])
    ]
    saved = load_memory(loop.folder / "state.json").record
    assert (saved.powered_on, saved.cordoned) == ({"agent-1": T0}, set())

    assert loop.rounds(2) == [], "while agent-1 boots, the pending job counts on it: nothing more is decided"
    node_version = loop.api.put(node("agent-1", since=T0 + 12))
    pod_version = loop.api.put(pod("oscar-svc", "job-b", "agent-1", cpu="1", owner="Job", created=T0 - 90))
    loop.settle(("nodes", node_version), ("pods", pod_version))
    loop.rounds(1)
    assert load_memory(loop.folder / "state.json").record.boot_seconds == [12.0], "power-on to Ready"
    rounds = [entry for entry in loop.log() if entry.get("event") == "round"]
    assert rounds[0]["time"] == "2026-05-28T20:26:40Z"
    assert rounds[0]["decisions"][0]["outcome"] == "powered on; uncordoned"
    assert rounds[0]["counts"] == {
        "on": 1,
        "off": 1,
        "booting": 0,
        "stopping": 0,
        "failed": 0,
        "pending_pods": 1,
        "kueue_workloads": 0,
    }
    assert len(rounds) == 1, "rounds that decide nothing and note nothing new are not logged"
    assert stat.S_IMODE((loop.folder / "decisions.jsonl").stat().st_mode) == 0o600
    assert stat.S_IMODE((loop.folder / "state.json").stat().st_mode) == 0o600


def uncordon_failing_at_power_on(make_loop: Any) -> Loop:
    """agent-1, off and cordoned by us, is needed for a pending job; lifting its cordon fails (PATCH 500)."""
    objects = [
        node("agent-0", since=T0 - 3600),
        node("agent-1", ready=False, since=T0 - 1800, cordoned=True),
        pod("oscar-svc", "job-a", "agent-0", cpu="1500m", owner="Job", created=T0 - 600),
        pod("oscar-svc", "job-b", None, cpu="1", owner="Job", created=T0 - 90),
    ]
    record = PowerRecord(powered_off={"agent-1": T0 - 1800}, cordoned={"agent-1"})
    loop: Loop = make_loop(objects, {"agent-0": "on", "agent-1": "off"}, record)
    loop.api.failing_patches.add("agent-1")
    return loop


def test_an_uncordon_that_fails_at_power_on_is_retried(make_loop: Any) -> None:
    loop = uncordon_failing_at_power_on(make_loop)
    (decision,) = loop.rounds(1)
    assert decision["outcome"] == (
        "powered on; uncordon failed (uncordon agent-1: 500 Internal Server Error: etcdserver: request timed out), "
        "retried next period"
    )
    assert load_memory(loop.folder / "state.json").record.uncordon_pending == {"agent-1"}
    assert loop.rounds(1) == []
    assert loop.log()[-1]["notes"] == [
        "agent-1: uncordon after power-on failed (uncordon agent-1: 500 Internal Server Error: etcdserver: request "
        "timed out)"
    ]
    loop.api.failing_patches.clear()
    assert loop.rounds(1) == [
        {"at": 10.0, "action": "uncordon", "node": "agent-1", "outcome": "uncordoned after its power-on"}
    ]
    saved = load_memory(loop.folder / "state.json").record
    assert (saved.uncordon_pending, saved.cordoned) == (set(), set())
    assert "unschedulable" not in loop.api.store["Node"][("", "agent-1")]["spec"]


def four_light_workers(make_loop: Any) -> Loop:
    """Four workers with a movable pod each, agent-2's the lightest: consolidation cordons it at t=55 and drains
    it at t=85. The autoscaler powered them on long ago, so its consolidation cordon must still hold."""
    objects = [node("server-0", since=T0 - 3600, server=True)]
    for index, cpu in enumerate(["300m", "400m", "200m", "500m"]):
        objects.append(node(f"agent-{index}", since=T0 - 3600))
        objects.append(pod("oscar-svc", f"web-{index}", f"agent-{index}", cpu=cpu, memory="256Mi", created=T0 - 3000))
    record = PowerRecord(powered_on={f"agent-{index}": T0 - 3600 for index in range(4)})
    loop: Loop = make_loop(objects, {f"agent-{index}": "on" for index in range(4)}, record)
    return loop


def test_consolidation_drains_through_a_disruption_budget_and_powers_off_once(make_loop: Any) -> None:
    loop = four_light_workers(make_loop)
    loop.api.guarded[("oscar-svc", "web-2")] = 1  # its budget refuses the first eviction
    done = loop.rounds(22)
    assert [(d["at"], d["action"], d["node"], d["outcome"]) for d in done] == [
        (55.0, "cordon", "agent-2", "cordoned"),
        (85.0, "drain", "agent-2", "cordoned; draining"),
        (
            85.0,
            "drain-step",
            "agent-2",
            "1 eviction(s) refused by a PodDisruptionBudget (oscar-svc/web-2); asked again next period",
        ),
        (90.0, "drain", "agent-2", "draining already"),
        (90.0, "drain-step", "agent-2", "1 pod(s) evicted"),
        (95.0, "power-off", "agent-2", "powered off"),
    ]
    assert done[0]["reason"] == (
        "the last 60s of demand fit on 1 workers-amd64 node(s) (+2 slack) and 4 are ready; no new pods here, "
        "it powers off once its 1 pod(s) finish"
    )
    assert done[1]["reason"] == "its 1 pod(s) may move, use 10% of it and fit on the other nodes; unneeded for 30s"
    assert loop.power.calls == [("off", "agent-2")]
    evictions = [call for call in loop.api.calls if call.startswith("POST ")]
    assert evictions == ["POST /api/v1/namespaces/oscar-svc/pods/web-2/eviction"] * 2
    assert not any(call.startswith("DELETE ") for call in loop.api.calls)
    assert loop.api.store["Node"][("", "agent-2")]["spec"]["unschedulable"] is True, "left cordoned while off"
    assert load_memory(loop.folder / "state.json").record.cordoned == {"agent-2"}


def test_a_job_arriving_before_the_power_off_keeps_the_node_up(make_loop: Any) -> None:
    objects = [node("server-0", since=T0 - 3600, server=True), node("agent-0", since=T0 - 3600)]
    loop = make_loop(objects, {"agent-0": "on"})
    assert loop.rounds(6) == []  # empty since the first look: idle_time (30 s) has not passed
    # The job is bound after the watch's last event reached the round (the pods watch is stopped first, so its
    # copy stays without it): the fresh look at the node before the power-off sees it.
    loop.observer.reflectors["pods"].stop()
    loop.api.put(pod("oscar-svc", "job-late", "agent-0", owner="Job", created=T0 + 29))
    (decision,) = loop.rounds(1)
    assert (decision["action"], decision["outcome"]) == (
        "power-off",
        "not powered off: pods arrived meanwhile (oscar-svc/job-late); cordoned, it powers off once they end",
    )
    assert decision["reason"] == "empty for 30s (idle_time 30s)"
    assert loop.power.calls == []


def test_a_failed_power_on_pauses_that_worker_and_another_is_used(make_loop: Any) -> None:
    objects = [
        node("server-0", since=T0 - 3600, server=True),
        node("agent-0", since=T0 - 3600),
        node("agent-1", ready=False, since=T0 - 900),
        node("agent-2", ready=False, since=T0 - 900),
        pod("oscar-svc", "job-a", "agent-0", cpu="1500m", owner="Job", created=T0 - 600),
        pod("oscar-svc", "job-b", None, cpu="1", owner="Job", created=T0 - 90),
    ]
    loop = make_loop(objects, {"agent-0": "on", "agent-1": "off", "agent-2": "off"})
    loop.power.failing.add("agent-1")
    done = loop.rounds(2)
    assert [(d["action"], d["node"], d["outcome"]) for d in done] == [
        (
            "power-on",
            "agent-1",
            "failed: node agent-1: the cloud refused to on it (quota exceeded); retried after 60s",
        ),
        ("power-on", "agent-2", "powered on"),
    ]
    assert load_memory(loop.folder / "state.json").record.failed_until == {"agent-1": T0 + 60}
    loop.rounds(3)
    notes = [entry["notes"] for entry in loop.log() if entry.get("event") == "round"]
    assert notes == [[], ["agent-1: left out until 20:27:40Z: its last power action failed"]], (
        "the same note is logged once, not every round"
    )


def test_a_boot_given_up_is_powered_off_even_when_its_cordon_fails(make_loop: Any) -> None:
    objects = [node("server-0", since=T0 - 3600, server=True), node("agent-1", ready=False, since=T0 - 900)]
    loop = make_loop(objects, {"agent-1": "on"}, PowerRecord(powered_on={"agent-1": T0 - 700}))
    loop.api.failing_patches.add("agent-1")
    (decision,) = loop.rounds(1)
    assert (decision["action"], decision["node"]) == ("power-off", "agent-1")
    assert decision["reason"] == "booting for 700s, longer than max_wait_poweron (600s)"
    assert decision["outcome"] == (
        "powered off; not cordoned (cordon agent-1: 500 Internal Server Error: etcdserver: request timed out)"
    )
    assert loop.power.calls == [("off", "agent-1")]
    assert load_memory(loop.folder / "state.json").record.cordoned == set()


def test_a_round_cut_short_by_a_second_signal_saves_and_logs_what_it_did(make_loop: Any) -> None:
    """The second Ctrl-C stops the power-off command: the cordon put on before it is saved as ours (else it would
    stay on for good: the next run would take it for someone else's), and the round is logged, then it stops."""
    objects = [node("server-0", since=T0 - 3600, server=True), node("agent-1", ready=False, since=T0 - 900)]
    loop = make_loop(objects, {"agent-1": "on"}, PowerRecord(powered_on={"agent-1": T0 - 700}))
    loop.power.interrupted.add("agent-1")
    with pytest.raises(KeyboardInterrupt):
        loop.runtime.round()
    assert loop.power.calls == [("off", "agent-1")]
    assert loop.api.store["Node"][("", "agent-1")]["spec"]["unschedulable"] is True
    memory = load_memory(loop.folder / "state.json")
    assert (memory.saved_at, memory.record.cordoned, memory.record.powered_off) == (T0, {"agent-1"}, {})
    (entry,) = loop.log()
    assert (entry["event"], entry["decisions"]) == (
        "round",
        [
            {
                "action": "power-off",
                "node": "agent-1",
                "reason": "booting for 700s, longer than max_wait_poweron (600s)",
                "outcome": "interrupted before it ended: the next run sees whether it took effect",
            }
        ],
    )
    loop.power.interrupted.clear()
    loop.restart()
    (decision,) = loop.rounds(1)
    assert (decision["action"], decision["outcome"]) == ("power-off", "powered off")


@pytest.mark.parametrize(("measured", "given_up"), [([20.0, 25.0, 30.0], True), ([20.0, 25.0], False)])
def test_a_boot_beyond_4x_the_measured_estimate_is_given_up_once_three_boots_were_measured(
    make_loop: Any, measured: list[float], given_up: bool
) -> None:
    objects = [node("server-0", since=T0 - 3600, server=True), node("agent-1", ready=False, since=T0 - 900)]
    record = PowerRecord(powered_on={"agent-1": T0 - 101}, boot_seconds=measured)
    loop = make_loop(objects, {"agent-1": "on"}, record)
    done = loop.rounds(1)
    if given_up:
        assert [(d["action"], d["node"], d["reason"]) for d in done] == [
            ("power-off", "agent-1", "booting for 101s, over 4x the measured boot time (25s); given up as failed")
        ]
    else:
        assert done == [], "an estimate from fewer than three boots waits for max_wait_poweron"


def test_a_worker_that_was_ready_and_is_not_counts_from_then_and_is_not_a_boot(make_loop: Any) -> None:
    """Powered on two hours ago, Ready, then not Ready with a job bound: neither given up at once as a boot
    older than max_wait_poweron, nor measured as a two-hour boot when it comes back."""
    objects = [
        node("server-0", since=T0 - 7200, server=True),
        node("agent-1", since=T0 - 7100),
        pod("oscar-svc", "job-a", "agent-1", cpu="1", owner="Job", created=T0 - 600),
    ]
    record = PowerRecord(powered_on={"agent-1": T0 - 7200}, boot_seconds=[90.0, 100.0, 110.0])
    loop = make_loop(objects, {"agent-1": "on"}, record)
    assert loop.rounds(1) == []
    loop.settle(("nodes", loop.api.put(node("agent-1", ready=False, since=T0 + 5))))
    assert loop.rounds(2) == []
    history = load_memory(loop.folder / "state.json").history
    assert (history.ready_at, history.not_ready_since) == ({"agent-1": T0}, {"agent-1": T0 + 5})
    loop.now[0] = T0 + 700
    assert loop.rounds(1) == []
    assert loop.log()[-1]["notes"] == [
        "agent-1: not Ready for longer than max_wait_poweron (600s), but a job pod is still bound to it; "
        "not powered off"
    ]
    loop.settle(("nodes", loop.api.put(node("agent-1", since=T0 + 705))))
    loop.rounds(1)
    assert load_memory(loop.folder / "state.json").record.boot_seconds == [90.0, 100.0, 110.0]


def test_a_ready_condition_older_than_the_power_on_measures_no_boot(make_loop: Any) -> None:
    objects = [node("server-0", since=T0 - 3600, server=True), node("agent-1", ready=False, since=T0 - 60)]
    loop = make_loop(objects, {"agent-1": "on"}, PowerRecord(powered_on={"agent-1": T0 - 30}, boot_seconds=[40.0]))
    loop.rounds(1)
    loop.settle(("nodes", loop.api.put(node("agent-1", since=T0 - 3600))))
    loop.rounds(1)
    assert load_memory(loop.folder / "state.json").record.boot_seconds == [40.0]
    loop.settle(("nodes", loop.api.put(node("agent-1", ready=False, since=T0 + 10))))
    loop.runtime.record.powered_on["agent-1"] = T0 + 10
    loop.rounds(1)
    loop.settle(("nodes", loop.api.put(node("agent-1", since=T0 + 10))))
    loop.rounds(1)
    assert load_memory(loop.folder / "state.json").record.boot_seconds == [40.0, 0.0], "a boot seen at once is 0s"


@pytest.mark.parametrize(
    ("machine", "outcome", "then"),
    [
        (
            "unknown",
            "power-off command failed (node agent-1: the cloud refused to off it (quota exceeded)); it never "
            "became Ready after its power-on, so it is taken as off and may be powered on again",
            [("power-on", "agent-1")],
        ),
        ("on", "failed: node agent-1: the cloud refused to off it (quota exceeded); retried after 60s", []),
    ],
)
def test_a_failed_power_off_of_a_given_up_boot_is_taken_as_off_only_where_power_is_not_reported(
    make_loop: Any, machine: str, outcome: str, then: list[tuple[str, str]]
) -> None:
    """A board whose wake-on-LAN packet was lost never came up, so its SSH power-off fails; a cloud reports
    the instance's state, so there the power-off is retried."""
    objects = [
        node("server-0", since=T0 - 3600, server=True),
        node("agent-1", ready=False, since=T0 - 900),
        pod("oscar-svc", "job-a", None, cpu="1", owner="Job", created=T0 - 900),
    ]
    loop = make_loop(objects, {"agent-1": machine}, PowerRecord(powered_on={"agent-1": T0 - 700}))
    loop.power.failing.add("agent-1")
    (decision,) = loop.rounds(1)
    assert (decision["action"], decision["outcome"]) == ("power-off", outcome)
    loop.power.failing.clear()
    assert [(d["action"], d["node"]) for d in loop.rounds(1)] == then


def test_run_logs_start_and_stop_and_stops_the_watches(make_loop: Any) -> None:
    loop = make_loop([node("agent-0", since=T0 - 3600)], {"agent-0": "on"})
    stop = threading.Event()
    worker = threading.Thread(target=loop.runtime.run, args=(stop,), kwargs={"reason": lambda: "SIGTERM"})
    worker.start()
    time.sleep(0.3)
    stop.set()
    worker.join(10)
    assert not worker.is_alive()
    entries = loop.log()
    assert entries[0] == {
        "time": "2026-05-28T20:26:40Z",
        "event": "start",
        "cluster": "demo",
        "target": "local",
        "period": 5.0,
        "credentials": "",
        "memory": "nothing remembered: timers start now",
    }
    assert entries[-1]["event"] == "stop" and entries[-1]["reason"] == "SIGTERM"
    assert all(not reflector._thread.is_alive() for reflector in loop.observer.reflectors.values())


@pytest.mark.parametrize(("saved_age", "power_off_at"), [(0.0, 30.0), (115.0, 30.0), (116.0, 50.0)])
def test_a_restart_goes_on_with_the_timers_it_saved_unless_they_are_stale(
    make_loop: Any, saved_age: float, power_off_at: float
) -> None:
    loop = make_loop(
        [node("server-0", since=T0 - 3600, server=True), node("agent-0", since=T0 - 3600)], {"agent-0": "on"}
    )
    assert loop.rounds(4) == []  # agent-0 empty since t=0; saved at t=15, restarted at t=20
    state = loop.folder / "state.json"
    memory = load_memory(state)
    assert memory.saved_at == T0 + 15 and memory.history.idle_since == {"agent-0": T0}
    memory.saved_at -= saved_age
    save_memory(state, memory)
    loop.restart()
    # However old, when each worker was last seen Ready is kept.
    assert loop.runtime.history.ready_at == {"agent-0": T0 + 15}
    done = loop.rounds(8)
    assert [(d["at"], d["action"], d["node"]) for d in done] == [(power_off_at, "power-off", "agent-0")]
    if power_off_at == 30.0:
        assert loop.runtime.memory_note.endswith(f"({5 + saved_age:.0f}s ago) go on")
    else:
        assert loop.runtime.memory_note == "timers saved at 2026-05-28T20:24:59Z are older than 120s: they start now"


def test_a_power_action_failing_again_and_again_pauses_the_worker_longer_each_time(make_loop: Any) -> None:
    objects = [
        node("server-0", since=T0 - 3600, server=True),
        node("agent-1", ready=False, since=T0 - 900),
        pod("oscar-svc", "job-b", None, cpu="1", owner="Job", created=T0 - 90),
    ]
    loop = make_loop(objects, {"agent-1": "off"})
    loop.power.failing.add("agent-1")
    outcomes = []
    for _ in range(6):
        (decision,) = loop.rounds(1)
        outcomes.append(decision["outcome"])
        loop.now[0] = load_memory(loop.folder / "state.json").record.failed_until["agent-1"]  # the pause's end
    assert outcomes == [
        f"failed: node agent-1: the cloud refused to on it (quota exceeded); retried after {pause}s"
        for pause in (60, 120, 240, 480, 900, 900)
    ]
    loop.power.failing.clear()
    (decision,) = loop.rounds(1)
    assert decision["outcome"] == "powered on"
    assert load_memory(loop.folder / "state.json").record.failed_until == {}


def test_the_last_ten_boots_are_kept(make_loop: Any) -> None:
    objects = [node("server-0", since=T0 - 3600, server=True), node("agent-1", ready=False, since=T0 - 60)]
    earlier = [float(seconds) for seconds in range(31, 41)]
    loop = make_loop(objects, {"agent-1": "on"}, PowerRecord(powered_on={"agent-1": T0 - 30}, boot_seconds=earlier))
    loop.rounds(1)
    loop.settle(("nodes", loop.api.put(node("agent-1", since=T0 + 12))))
    loop.rounds(1)
    assert load_memory(loop.folder / "state.json").record.boot_seconds == [*earlier[1:], 42.0]


def test_a_boot_that_ends_with_the_machine_off_measures_nothing(make_loop: Any) -> None:
    """The worker went off by itself while booting; Ready later (started by hand) is not our boot."""
    objects = [node("server-0", since=T0 - 3600, server=True), node("agent-1", ready=False, since=T0 - 60)]
    loop = make_loop(objects, {"agent-1": "on"}, PowerRecord(powered_on={"agent-1": T0 - 30}))
    loop.rounds(1)
    loop.power.states["agent-1"] = "off"
    loop.rounds(1)
    loop.power.states["agent-1"] = "on"
    loop.settle(("nodes", loop.api.put(node("agent-1", since=T0 + 12))))
    loop.rounds(1)
    assert load_memory(loop.folder / "state.json").record.boot_seconds == []


def test_a_failed_round_is_logged_once_until_it_changes_and_run_waits_a_period_between_rounds(
    make_loop: Any,
) -> None:
    loop = make_loop([node("agent-0", since=T0 - 3600)], {"agent-0": "on"})
    loop.runtime.settings = dataclasses.replace(loop.runtime.settings, period=0.05)
    loop.power.unreachable = "EC2: could not reach the endpoint\ntraceback details"
    stop = threading.Event()
    started = time.monotonic()
    worker = threading.Thread(target=loop.runtime.run, args=(stop,))
    worker.start()

    def looks_reach(count: int) -> None:
        deadline = time.monotonic() + 10
        while loop.power.looks < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert loop.power.looks >= count

    looks_reach(4)
    loop.power.unreachable = ""
    looks_reach(loop.power.looks + 2)
    loop.power.unreachable = "EC2: could not reach the endpoint"
    looks_reach(loop.power.looks + 2)
    stop.set()
    worker.join(10)
    assert not worker.is_alive()
    elapsed = time.monotonic() - started
    assert loop.power.looks <= elapsed / 0.05 + 2, "one round a period, not a busy loop"
    events = [(entry["event"], entry.get("error")) for entry in loop.log() if entry["event"] != "round"]
    assert events == [
        ("start", None),
        ("error", "EC2: could not reach the endpoint"),
        ("error", "EC2: could not reach the endpoint"),
        ("stop", None),
    ], "the same failure logged once, again after a round that worked"
    assert loop.log()[-1]["reason"] == "stopped"


def test_run_once_does_one_round(make_loop: Any) -> None:
    loop = make_loop([node("agent-0", since=T0 - 3600)], {"agent-0": "on"})
    worker = threading.Thread(target=loop.runtime.run, args=(threading.Event(),), kwargs={"once": True})
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    assert loop.power.looks == 1
    assert loop.log()[-1]["event"] == "stop" and loop.log()[-1]["reason"] == "done"


@pytest.mark.parametrize(
    ("saved_before", "note"),
    [
        (0.0, "timers saved at 2026-05-28T20:26:40Z (0s ago) go on"),
        (180.0, "timers saved at 2026-05-28T20:23:40Z (180s ago) go on"),
        (181.0, "timers saved at 2026-05-28T20:23:39Z are older than 180s: they start now"),
        (-1.0, "timers saved at 2026-05-28T20:26:41Z are older than 180s: they start now"),
    ],
)
def test_saved_timers_live_three_periods_when_that_is_longer_than_two_minutes(
    make_loop: Any, saved_before: float, note: str
) -> None:
    loop = make_loop([node("agent-0", since=T0 - 3600)], {"agent-0": "on"})
    save_memory(loop.folder / "state.json", RuntimeMemory(PowerRecord(), saved_at=T0 - saved_before))
    old = loop.runtime
    settings = dataclasses.replace(old.settings, period=60.0)
    runtime = Runtime(old.observer, old.power, old.actions, settings, loop.folder, old.log, clock=lambda: T0)
    assert runtime.memory_note == note


def test_a_refused_eviction_is_logged_once_and_the_drained_worker_powered_off(make_loop: Any) -> None:
    loop = four_light_workers(make_loop)
    loop.api.guarded[("oscar-svc", "web-2")] = 3
    done = loop.rounds(24)
    assert [(d["at"], d["action"], d["outcome"]) for d in done if d["action"] != "drain"] == [
        (55.0, "cordon", "cordoned"),
        (
            85.0,
            "drain-step",
            "1 eviction(s) refused by a PodDisruptionBudget (oscar-svc/web-2); asked again next period",
        ),
        (100.0, "drain-step", "1 pod(s) evicted"),
        (105.0, "power-off", "powered off"),
    ]
    rounds = [entry for entry in loop.log() if entry.get("event") == "round"]
    assert rounds[0]["counts"]["on"] == 4
    steps = [entry["steps"] for entry in rounds if "steps" in entry]
    assert steps[0] == [
        {
            "action": "drain-step",
            "node": "agent-2",
            "outcome": "1 eviction(s) refused by a PodDisruptionBudget (oscar-svc/web-2); asked again next period",
        }
    ]
    assert load_memory(loop.folder / "state.json").record.powered_off == {"agent-2": T0 + 105}


def test_a_pending_pod_that_fits_only_on_our_cordoned_worker_lifts_the_cordon(make_loop: Any) -> None:
    loop = four_light_workers(make_loop)
    assert [d["action"] for d in loop.rounds(12)] == ["cordon"]
    # 1.75 CPU: only agent-2 (200m used of 2) has the room
    loop.settle(("pods", loop.api.put(pod("oscar-svc", "big", None, cpu="1750m", owner="Job", created=T0 + 60))))
    (decision,) = loop.rounds(1)
    assert decision == {
        "at": 60.0,
        "action": "uncordon",
        "node": "agent-2",
        "reason": "1 pending pod(s) fit here; reusing it before booting",
        "outcome": "uncordoned",
    }
    assert load_memory(loop.folder / "state.json").record.cordoned == set()
    assert "unschedulable" not in loop.api.store["Node"][("", "agent-2")]["spec"]


def test_a_failed_cordon_is_reported_and_not_taken_as_ours(make_loop: Any) -> None:
    loop = four_light_workers(make_loop)
    loop.api.failing_patches.add("agent-2")
    done = loop.rounds(12)
    assert [(d["action"], d["outcome"]) for d in done] == [
        ("cordon", "failed: cordon agent-2: 500 Internal Server Error: etcdserver: request timed out")
    ]
    assert load_memory(loop.folder / "state.json").record.cordoned == set()


def test_movable_pods_arriving_before_the_power_off_are_drained_first(make_loop: Any) -> None:
    objects = [node("server-0", since=T0 - 3600, server=True), node("agent-0", since=T0 - 3600)]
    loop = make_loop(objects, {"agent-0": "on"})
    assert loop.rounds(6) == []
    assert not (loop.folder / "decisions.jsonl").exists(), "rounds that decide and note nothing are not logged"
    loop.observer.reflectors["pods"].stop()
    for index in range(4):
        loop.api.put(pod("oscar-svc", f"web-{index}", "agent-0", created=T0 + 29))
    decision, step = loop.rounds(1)
    assert decision["outcome"] == (
        "pods arrived meanwhile (oscar-svc/web-0, oscar-svc/web-1, oscar-svc/web-2); cordoned, draining them first"
    )
    assert (step["action"], step["outcome"]) == ("drain-step", "4 pod(s) evicted")
    assert loop.power.calls == []


def draining_agent_2(make_loop: Any) -> Loop:
    """agent-2 cordoned and its pod evicted at t=85, the pods watch stopped first: the policy's copy still shows
    the evicted pod, so the power-off comes from the drain's fresh look at the node."""
    loop = four_light_workers(make_loop)
    loop.rounds(16)
    loop.observer.reflectors["pods"].stop()
    assert [(d["action"], d["outcome"]) for d in loop.rounds(2)] == [
        ("drain", "cordoned; draining"),
        ("drain-step", "1 pod(s) evicted"),
    ]
    return loop


def test_a_drained_worker_whose_power_off_fails_is_paused_not_taken_as_off(make_loop: Any) -> None:
    loop = draining_agent_2(make_loop)
    loop.power.failing.add("agent-2")
    steps = [d for d in loop.rounds(1) if d["action"] == "drain-step"]
    assert [d["outcome"] for d in steps] == [
        "drained; failed: node agent-2: the cloud refused to off it (quota exceeded); retried after 60s"
    ]
    assert load_memory(loop.folder / "state.json").record.powered_off == {}


def test_a_job_bound_during_a_drain_stops_it(make_loop: Any) -> None:
    loop = draining_agent_2(make_loop)
    loop.api.put(pod("oscar-svc", "job-x", "agent-2", owner="Job", created=T0 + 88))
    steps = [d for d in loop.rounds(1) if d["action"] == "drain-step"]
    assert [d["outcome"] for d in steps] == [
        "drain stopped: 1 job pod(s) may not be interrupted (oscar-svc/job-x); it stays cordoned and powers off "
        "once they end"
    ]
    assert loop.power.calls == []


def test_a_drain_step_that_cannot_list_the_pods_says_why(make_loop: Any) -> None:
    loop = draining_agent_2(make_loop)
    loop.api.forbidden["/api/v1/pods"] = "pods"
    steps = [d for d in loop.rounds(1) if d["action"] == "drain-step"]
    assert [d["outcome"] for d in steps] == [
        'eviction failed: pods on agent-2: 403 Forbidden: pods is forbidden: User "system:serviceaccount:oscar:'
        'oscar-autoscaler" cannot list resource "pods" in API group "" at the cluster scope'
    ]


def test_a_pending_uncordon_is_dropped_once_the_worker_is_powered_off(make_loop: Any) -> None:
    loop = uncordon_failing_at_power_on(make_loop)
    loop.rounds(1)
    loop.runtime.record.powered_off["agent-1"] = loop.now[0]  # powered off again before the cordon was lifted
    patches = [call for call in loop.api.calls if call.startswith("PATCH ")]
    loop.rounds(1)
    assert [call for call in loop.api.calls if call.startswith("PATCH ")] == patches
    saved = load_memory(loop.folder / "state.json").record
    assert (saved.uncordon_pending, saved.cordoned) == (set(), {"agent-1"})


def test_each_pending_uncordon_is_looked_at_whatever_happened_to_the_one_before(make_loop: Any) -> None:
    objects = [node("server-0", since=T0 - 3600, server=True)]
    for index in (1, 2, 3):
        objects.append(node(f"agent-{index}", ready=False, since=T0 - 1800, cordoned=True))
        objects.append(pod("oscar-svc", f"job-{index}", None, cpu="1500m", owner="Job", created=T0 - 90))
    workers = {"agent-1", "agent-2", "agent-3"}
    record = PowerRecord(powered_off=dict.fromkeys(workers, T0 - 1800), cordoned=set(workers))
    loop = make_loop(objects, dict.fromkeys(workers, "off"), record)
    loop.api.failing_patches.update(workers)
    assert [d["action"] for d in loop.rounds(1)] == ["power-on"] * 3
    loop.runtime.record.powered_off["agent-1"] = loop.now[0]  # powered off again: its uncordon is dropped
    loop.api.failing_patches.discard("agent-3")  # agent-2's uncordon fails again, agent-3's works
    assert loop.rounds(1) == [
        {"at": 5.0, "action": "uncordon", "node": "agent-3", "outcome": "uncordoned after its power-on"}
    ]
    assert load_memory(loop.folder / "state.json").record.uncordon_pending == {"agent-2"}


def test_an_unchanged_drain_step_is_not_logged_and_the_next_worker_drains_on(make_loop: Any) -> None:
    loop = four_light_workers(make_loop)
    loop.api.guarded[("oscar-svc", "web-1")] = 5
    refused = "1 eviction(s) refused by a PodDisruptionBudget (oscar-svc/web-1); asked again next period"
    loop.runtime.draining.update({"agent-1": refused, "agent-2": "cordoned; draining"})
    assert [(d["node"], d["outcome"]) for d in loop.rounds(1)] == [("agent-2", "1 pod(s) evicted")]


class RecordingStop(threading.Event):
    """A stop event that records how long each wait between rounds would be, and stops after `rounds` of them."""

    def __init__(self, rounds: int = 2) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.rounds = rounds

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        if len(self.waits) == self.rounds:
            self.set()
        return self.is_set()


def test_run_waits_the_rest_of_the_period_after_a_slow_round(make_loop: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = make_loop([node("agent-0", since=T0 - 3600)], {"agent-0": "on"})
    readings = iter([100.0, 102.0, 200.0, 206.0])  # the first round takes 2 s, the second 6 s (over its period)
    monkeypatch.setattr(runtime_module, "time", SimpleNamespace(monotonic=lambda: next(readings)))
    stop = RecordingStop()
    loop.runtime.run(stop)
    assert stop.waits == [PERIOD - 2, 0.0]


def test_no_round_runs_while_another_command_holds_the_cluster_and_the_log_says_so_once(make_loop: Any) -> None:
    loop = make_loop([node("agent-0", since=T0 - 3600)], {"agent-0": "on"})
    holders = iter(["`up` (pid 7) since T1", "`up` (pid 7) since T1", "`scale` (pid 8) since T2", None, None, "x"])
    entered: list[str | None] = []

    @contextlib.contextmanager
    def guard() -> Iterator[str | None]:
        entered.append(next(holders))
        yield entered[-1]

    loop.runtime.round_guard = guard
    loop.runtime.run(RecordingStop(rounds=5))
    assert len(entered) == 5, "the guard is asked before every round"
    assert loop.power.looks == 2, "only the rounds the cluster was free for looked at the machines"
    events = [(entry["event"], entry.get("reason")) for entry in loop.log() if entry["event"] != "round"]
    assert events == [
        ("start", None),
        ("pause", "the cluster is busy with `up` (pid 7) since T1: no round until it ends"),
        ("pause", "the cluster is busy with `scale` (pid 8) since T2: no round until it ends"),
        ("resume", "`scale` (pid 8) since T2 ended"),
        ("stop", "stopped"),
    ]


def test_a_drained_worker_removed_meanwhile_is_given_up_and_forgotten(make_loop: Any) -> None:
    loop = draining_agent_2(make_loop)
    del loop.power.states["agent-2"]  # `scale` removed it between two rounds
    steps = [d for d in loop.rounds(1) if d["action"] == "drain-step"]
    assert [(d["node"], d["outcome"]) for d in steps] == [
        ("agent-2", "drain given up: no longer a worker of this cluster")
    ]
    assert loop.power.calls == []
    assert "agent-2" not in loop.runtime.draining
    assert "agent-2" not in load_memory(loop.folder / "state.json").record.cordoned
    assert [d for d in loop.rounds(1) if d["node"] == "agent-2"] == []
