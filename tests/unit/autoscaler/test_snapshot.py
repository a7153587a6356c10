"""The snapshot's power states: what the machine layer reports, the node's Ready condition and the runtime's
own record, in particular for boards, whose power manager reports nothing (`unknown`)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from oscar_deploy.autoscaler.model import NodeInfo, PowerState
from oscar_deploy.autoscaler.snapshot import NodeHistory, PowerRecord, build_observation, template_name
from oscar_deploy.providers.power import Machine, MachinePower
from tests.unit.autoscaler.cluster_objects import RECORDED, node, pod

T0 = 1_780_000_000.0
ON, OFF, BOOTING, STOPPING = PowerState.ON, PowerState.OFF, PowerState.BOOTING, PowerState.STOPPING


def seen(
    machine: MachinePower,
    record: PowerRecord,
    ready: bool | None,
    history: NodeHistory | None = None,
) -> tuple[NodeInfo, tuple[str, ...]]:
    """agent-1 as the snapshot shows it at T0; `ready` None: no Node object registered yet."""
    nodes: list[dict[str, Any]] = [node("agent-0", since=T0 - 9000)]
    if ready is not None:
        nodes.append(node("agent-1", ready=ready, since=T0 - 40))
    machines = [Machine("agent-0", "on", "amd64"), Machine("agent-1", machine, "amd64")]
    observation = build_observation(nodes, [], [], machines, record, history or NodeHistory(), T0)
    (info,) = [n for n in observation.snapshot.nodes if n.name == "agent-1"]
    return info, observation.notes


@pytest.mark.parametrize(
    ("record", "ready", "power", "since", "our_boot"),
    [
        (PowerRecord(), False, OFF, 0.0, False),  # never powered by us, not Ready: off
        (PowerRecord(), True, ON, T0 - 40, False),
        (PowerRecord(powered_on={"agent-1": T0 - 50}), False, BOOTING, T0 - 50, True),
        (PowerRecord(powered_on={"agent-1": T0 - 50}), None, BOOTING, T0 - 50, True),  # not registered yet
        # powered off and still Ready (the kubelet's last heartbeat): stopping, for up to 300 s
        (PowerRecord(powered_off={"agent-1": T0 - 299}), True, STOPPING, T0 - 299, False),
        (PowerRecord(powered_off={"agent-1": T0 - 100}), False, OFF, T0 - 100, False),
        # the last action counts; at the same instant, the power-on
        (PowerRecord(powered_on={"agent-1": T0 - 200}, powered_off={"agent-1": T0 - 100}), False, OFF, T0 - 100, False),
        (
            PowerRecord(powered_on={"agent-1": T0 - 100}, powered_off={"agent-1": T0 - 100}),
            False,
            BOOTING,
            T0 - 100,
            True,
        ),
    ],
)
def test_a_board_is_on_once_ready_booting_after_our_power_on_and_off_otherwise(
    record: PowerRecord, ready: bool | None, power: PowerState, since: float, our_boot: bool
) -> None:
    info, notes = seen("unknown", record, ready)
    assert (info.power, info.power_since, info.our_boot, notes) == (power, since, our_boot, ())


def test_a_board_still_ready_300s_after_its_power_off_is_taken_as_on() -> None:
    info, notes = seen("unknown", PowerRecord(powered_off={"agent-1": T0 - 300}), True)
    assert (info.power, info.power_since) == (ON, T0 - 40)
    assert notes == ("agent-1: still Ready 300s after its power-off command; taken as on",)


@pytest.mark.parametrize(
    ("machine", "record", "power", "since"),
    [
        ("failed", PowerRecord(), PowerState.FAILED, T0),
        ("off", PowerRecord(), OFF, 0.0),
        ("off", PowerRecord(powered_off={"agent-1": T0 - 70}), OFF, T0 - 70),
        ("stopping", PowerRecord(), STOPPING, T0),
        ("stopping", PowerRecord(powered_off={"agent-1": T0 - 70}), STOPPING, T0 - 70),
    ],
)
def test_what_the_machine_layer_reports_is_taken_as_it_is(
    machine: MachinePower, record: PowerRecord, power: PowerState, since: float
) -> None:
    info, _ = seen(machine, record, True)
    assert (info.power, info.power_since) == (power, since)


def test_a_worker_seen_ready_since_our_power_on_is_not_in_our_boot() -> None:
    record = PowerRecord(powered_on={"agent-1": T0 - 7200})
    history = NodeHistory()
    assert seen("on", record, True, history)[0].power is ON
    assert history.ready_at["agent-1"] == T0
    history.ready_at["agent-1"] = T0 - 7200  # seen Ready at the very time of the power-on
    info, _ = seen("on", record, False, history)
    assert (info.power, info.power_since, info.our_boot) == (BOOTING, T0, False)
    assert history.not_ready_since == {"agent-1": T0}


def test_templates_are_learnt_from_workers_with_allocatable_cpu_and_memory() -> None:
    no_memory = node("agent-1", since=T0 - 40, memory="0")
    machines = [Machine("agent-1", "on", "amd64")]
    observation = build_observation([no_memory], [], [], machines, PowerRecord(), NodeHistory(), T0)
    assert observation.templates == ()
    assert template_name("") == "workers-unknown"


def test_a_worker_we_powered_off_that_its_machine_reports_on_is_not_in_our_boot() -> None:
    info, _ = seen("on", PowerRecord(powered_off={"agent-1": T0 - 100}), False)
    assert (info.power, info.power_since, info.our_boot) == (BOOTING, T0, False)


def test_an_unregistered_worker_takes_its_machines_arch_and_an_unknown_arch_the_only_template() -> None:
    nodes = [node("agent-0", since=T0 - 9000), node("board-0", since=T0 - 9000, arch="arm64")]
    machines = [
        Machine("agent-0", "on", "amd64"),
        Machine("board-0", "on", "arm64"),
        Machine("board-1", "off", "arm64"),
        Machine("mystery-1", "off", ""),
        Machine("riscv-1", "off", "riscv64"),
    ]
    observation = build_observation(nodes, [], [], machines, PowerRecord(), NodeHistory(), T0)
    infos = {n.name: n for n in observation.snapshot.nodes}
    assert sorted(infos) == ["agent-0", "board-0", "board-1"]
    assert (infos["board-1"].template, infos["board-1"].cordoned) == ("workers-arm64", False)
    assert observation.notes == (
        "mystery-1: no registered worker of its architecture (unknown); left out",
        "riscv-1: no registered worker of its architecture (riscv64); left out",
    )
    alone = build_observation(nodes[:1], [], [], [machines[0], machines[3]], PowerRecord(), NodeHistory(), T0)
    assert [(n.name, n.template) for n in alone.snapshot.nodes] == [
        ("agent-0", "workers-amd64"),
        ("mystery-1", "workers-amd64"),
    ]


def test_servers_broken_objects_and_paused_workers_are_left_out_with_a_note() -> None:
    nodes = [
        node("server-0", since=T0 - 9000, server=True),
        node("wn-0", since=T0 - 9000, cpu="lots"),
        node("wn-1", since=T0 - 9000),
        node("wn-2", since=T0 - 9000),
        node("wn-3", since=T0 - 9000),
    ]
    pods = [
        pod("oscar-svc", "broken", "wn-1", cpu="x"),
        pod("oscar-svc", "job-b", None, created=T0 - 10),
        pod("oscar-svc", "job-a", None, created=T0 - 10),
        pod("oscar-svc", "job-c", None, created=T0 - 20),
    ]
    machines = [Machine(name, "on", "amd64") for name in ("server-0", "wn-0", "wn-1", "wn-2", "wn-3")]
    record = PowerRecord(failed_until={"wn-2": T0, "wn-3": T0 + 1})
    observation = build_observation(nodes, pods, [], machines, record, NodeHistory(), T0)
    # wn-0's Node object is broken: it counts as a worker not registered yet.
    assert [n.name for n in observation.snapshot.nodes] == ["wn-0", "wn-1", "wn-2"]
    assert [p.name for p in observation.snapshot.pending] == ["oscar-svc/job-c", "oscar-svc/job-a", "oscar-svc/job-b"]
    # Workers in name order: the server sorts before them, and they are still looked at.
    assert observation.notes == (
        "node wn-0: status.allocatable.cpu: 'lots' is not a Kubernetes quantity; node left out",
        "pod oscar-svc/broken: spec.containers[0].resources.cpu: 'x' is not a Kubernetes quantity; pod left out",
        "server-0: a control-plane node; the autoscaler never powers it",
        "wn-3: left out until 20:26:41Z: its last power action failed",
    )


def test_no_registered_worker_is_noted() -> None:
    machines = [Machine("agent-1", "off", "amd64")]
    observation = build_observation([], [], [], machines, PowerRecord(), NodeHistory(), T0)
    assert observation.snapshot.nodes == ()
    assert observation.notes == (
        "no worker has registered with Kubernetes yet: the size of a worker is learnt from a registered one",
    )


def recorded(kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((RECORDED / f"{kind}.json").read_text())["items"]
    return items


def test_broken_kueue_objects_are_left_out_with_a_note_and_held_workloads_counted() -> None:
    waiting, held, _admitted = recorded("workloads")
    broken_count = copy.deepcopy(waiting)
    broken_count["metadata"]["name"] = "job-count"
    broken_count["spec"]["podSets"][0]["count"] = -1
    held_too = copy.deepcopy(held)
    held_too["metadata"]["name"] = "job-held-too"
    grayify, plants = recorded("clusterqueues")
    plants["spec"]["resourceGroups"][0]["flavors"][0]["resources"][1]["nominalQuota"] = "lots"
    observation = build_observation(
        [],
        [],
        [waiting, broken_count, held, held_too],
        [],
        PowerRecord(),
        NodeHistory(),
        T0,
        [grayify, plants],
        recorded("localqueues"),
    )
    assert [(w.name, w.queue) for w in observation.snapshot.workloads] == [
        ("oscar-svc/job-5d0e9a27-1b4c-4f83-a6e2-9c7d3b1f0e58-2c9f1", "grayify-cq")
    ]
    assert list(observation.snapshot.queue_headroom) == ["grayify-cq"]
    assert observation.quota_held == 2
    assert observation.notes == (
        "clusterqueue plants-cq: spec.resourceGroups[0].flavors[0].resources[1].nominalQuota: 'lots' is not a "
        "Kubernetes quantity; its quota is not counted",
        "workload oscar-svc/job-count: spec.podSets[0].count -1 is not a pod count; workload left out",
        "2 Kueue workload(s) wait for quota, not for nodes; not counted as demand",
    )
