"""The simulator event by event: where pods go, what a controller sees and when, what each decision does to a
node, how a run is billed and when it ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from oscar_deploy.autoscaler.model import (
    ARCH_LABEL,
    Action,
    ClusterSnapshot,
    Decision,
    NodeInfo,
    NodeTemplate,
    PodInfo,
    PowerState,
    Resources,
)
from oscar_deploy.autoscaler.simulator import Job, NodePool, Scenario, percentile, simulate
from oscar_deploy.autoscaler.workloads import OSCAR_WN
from tests.unit.autoscaler.test_simulator import EXACT_POOL

ON, OFF, CORDON, UNCORDON = Action.POWER_ON, Action.POWER_OFF, Action.CORDON, Action.UNCORDON
TWO_PODS = NodeTemplate("small", "amd64", Resources.node(2000, 3800, pods=2))


class Script:
    """A controller that takes the actions set for given times and keeps every look it is given."""

    name = "script"

    def __init__(
        self,
        plan: dict[float, list[tuple[Action, str]]] | None = None,
        every: float = 10.0,
        observe_every: float | None = None,
        reaction_delay: float | None = None,
        starts_all_on: bool = False,
    ) -> None:
        self.plan = dict(plan or {})
        self.decide_every = every
        self.observe_every = every if observe_every is None else observe_every
        self.reaction_delay = reaction_delay
        self.starts_all_on = starts_all_on
        self.looks: dict[float, ClusterSnapshot] = {}

    def decide(self, snapshot: ClusterSnapshot, now: float) -> Sequence[Decision]:
        self.looks[now] = snapshot
        return [Decision(action, node, "script") for action, node in self.plan.pop(now, [])]

    def node(self, at: float, name: str) -> NodeInfo:
        return next(node for node in self.looks[at].nodes if node.name == name)


def scenario(jobs: Sequence[Job], count: int = 1, template: NodeTemplate = OSCAR_WN, horizon: float = 100.0):
    return Scenario("events", "events", (replace(EXACT_POOL, template=template, count=count),), tuple(jobs), horizon)


def job(at: float, cpu: int, memory: int = 512, duration: float = 100.0) -> Job:
    return Job(at, duration, Resources.request(cpu, memory))


def placed(snapshot: ClusterSnapshot) -> dict[str, list[str]]:
    return {node.name: [pod.name for pod in node.pods] for node in snapshot.nodes if node.pods}


def test_pools_jobs_and_scenarios_default_to_the_documented_values() -> None:
    assert NodePool(OSCAR_WN, 3) == NodePool(OSCAR_WN, 3, 180.0, 0.3, 0.05, (30.0, 90.0))
    plain = Job(1.0, 2.0, Resources.request(1, 1))
    assert (plain.selector, plain.interruptible, plain.service) == ({}, False, "")
    both = Scenario("s", "d", (NodePool(OSCAR_WN, 3), NodePool(TWO_PODS, 2)), ())
    assert (both.horizon, both.min_nodes, both.max_nodes, both.templates) == (86_400.0, 0, 5, (OSCAR_WN, TWO_PODS))


def test_a_pod_goes_to_the_node_with_the_most_free_room_and_ties_go_to_the_first() -> None:
    controller = Script(starts_all_on=True)
    jobs = [job(1, 500), job(2, 1000, 1024), job(3, 200, 256), job(4, 1000, 1024)]
    simulate(scenario(jobs, count=3, horizon=20.0), controller)
    assert placed(controller.looks[10.0]) == {"wn-1": ["job-0"], "wn-2": ["job-1"], "wn-3": ["job-2", "job-3"]}


def test_a_pod_asking_exactly_the_room_left_runs_and_the_next_one_waits() -> None:
    controller = Script(starts_all_on=True)
    metrics = simulate(scenario([job(0, 1000, 1000), job(1, 1000, 2800), job(2, 1, 1, duration=10.0)]), controller)
    assert placed(controller.looks[10.0]) == {"wn-1": ["job-0", "job-1"]}
    assert (metrics.wait_p50, metrics.wait_max, metrics.simulated_seconds) == (0, 98.0, 110.0)


def test_a_node_runs_no_more_pods_than_it_allows() -> None:
    controller = Script(starts_all_on=True)
    metrics = simulate(
        scenario([job(0, 1, 1), job(1, 1, 1), job(2, 1, 1, duration=10.0)], template=TWO_PODS), controller
    )
    assert placed(controller.looks[10.0]) == {"small-1": ["job-0", "job-1"]}
    assert (metrics.wait_max, metrics.simulated_seconds) == (98.0, 110.0)


def test_a_node_that_becomes_ready_takes_the_oldest_pending_shape_first_and_fills_up() -> None:
    """At 180 the first 1500m pod leaves exactly the room of the 500m pod (cpu, memory and a pod slot); the
    second 1500m pod waits for the first to end."""
    controller = Script({0.0: [(ON, "small-1")]})
    jobs = [job(1, 1500, 3288), job(2, 500, 512), job(3, 1500, 3288)]
    metrics = simulate(scenario(jobs, template=TWO_PODS), controller)
    assert placed(controller.looks[190.0]) == {"small-1": ["job-0", "job-1"]}
    assert (metrics.wait_p50, metrics.wait_max, metrics.simulated_seconds) == (179.0, 277.0, 380.0)


def test_a_controller_decides_every_decide_every_on_its_latest_look() -> None:
    controller = Script(every=5.0, observe_every=20.0)
    simulate(scenario([], horizon=40.0), controller)
    assert [(now, look.now) for now, look in controller.looks.items()] == [
        (0.0, 0.0),
        (5.0, 0.0),
        (10.0, 0.0),
        (15.0, 0.0),
        (20.0, 20.0),
        (25.0, 20.0),
        (30.0, 20.0),
        (35.0, 20.0),
        (40.0, 40.0),
    ]


def test_a_look_is_due_even_when_the_added_up_ticks_fall_a_hair_short() -> None:
    """Eight ticks of 0.1 s add up to 0.7999999999999999, not 0.8."""
    controller = Script(every=0.1, observe_every=0.8)
    simulate(scenario([], horizon=1.0), controller)
    looks = sorted({look.now for look in controller.looks.values()})
    assert looks == [0.0, pytest.approx(0.8)]


def test_a_pod_arriving_at_a_tick_is_seen_at_the_next_one() -> None:
    controller = Script({110.0: [(ON, "wn-1")]})
    simulate(scenario([job(100, 500, duration=1.0)]), controller)
    assert (controller.looks[100.0].pending, [pod.name for pod in controller.looks[110.0].pending]) == ((), ["job-0"])


def test_a_watching_controller_looks_once_a_reaction_delay_after_the_first_unschedulable_pod() -> None:
    controller = Script({13.0: [(ON, "wn-1")]}, every=1000.0, reaction_delay=3.0)
    metrics = simulate(scenario([job(10, 500), job(11, 600), job(12, 500)], horizon=20.0), controller)
    assert [(now, [pod.name for pod in look.pending]) for now, look in controller.looks.items()] == [
        (0.0, []),
        (13.0, ["job-0", "job-1", "job-2"]),
    ]
    assert metrics.wait_max == 183.0  # powered on at 13, Ready 180 s later


def test_a_boot_given_up_is_billed_until_its_shutdown_ends_and_its_late_ready_is_ignored() -> None:
    """wn-2 is powered off 10 s into its boot and on again at 50: Ready at 230, not at 180 from the first boot."""
    controller = Script({0.0: [(ON, "wn-1"), (ON, "wn-2")], 10.0: [(OFF, "wn-2")], 50.0: [(ON, "wn-2")]})
    metrics = simulate(scenario([], count=2, horizon=1000.0), controller)

    def power(at: float) -> list[tuple[PowerState, float, bool, float | None]]:
        return [(n.power, n.power_since, n.our_boot, n.idle_since) for n in controller.looks[at].nodes]

    assert power(10.0) == [(PowerState.BOOTING, 0.0, True, None)] * 2
    assert power(20.0)[1] == (PowerState.STOPPING, 10.0, False, None)
    assert power(40.0)[1] == (PowerState.OFF, 40.0, False, None)
    assert power(180.0) == [(PowerState.ON, 180.0, False, 180.0), (PowerState.BOOTING, 50.0, True, None)]
    assert power(230.0)[1] == (PowerState.ON, 230.0, False, 230.0)
    # Billed 0-1000 and 0-40 plus 50-1000; idle once Ready: 180-1000 and 230-1000.
    assert metrics.node_hours * 3600 == pytest.approx(1000 + 40 + 950)
    assert metrics.idle_node_hours * 3600 == pytest.approx(820 + 770)
    assert (metrics.power_ons, metrics.power_offs, metrics.simulated_seconds) == (3, 1, 1000.0)


def test_a_cordoned_node_takes_no_new_pod_until_uncordoned_and_moot_decisions_do_nothing() -> None:
    plan = {
        10.0: [(ON, "wn-1"), (CORDON, "wn-1"), (CORDON, "wn-9")],
        100.0: [(UNCORDON, "wn-1"), (OFF, "wn-2")],
    }
    controller = Script(plan, starts_all_on=True)
    metrics = simulate(scenario([job(5, 1000), job(20, 500)]), controller)
    assert [controller.node(at, "wn-1").cordoned for at in (10.0, 20.0, 100.0, 110.0)] == [False, True, True, False]
    assert metrics.wait_max == 80.0  # the 500m pod fits from 20 but starts at the uncordon, at 100
    assert (metrics.power_ons, metrics.power_offs, metrics.node_hours * 3600) == (0, 0, 200.0)
    assert metrics.idle_node_hours * 3600 == pytest.approx(5.0)


def test_the_look_shows_each_node_with_its_labels_pods_and_when_they_last_changed() -> None:
    labelled = NodeTemplate("gpu", "arm64", Resources.node(2000, 3800), labels={"zone": "a"})
    controller = Script(starts_all_on=True)
    simulate(scenario([job(5, 1000)], template=labelled, horizon=200.0), controller)
    assert controller.node(10.0, "gpu-1") == NodeInfo(
        name="gpu-1",
        arch="arm64",
        allocatable=labelled.allocatable,
        power=PowerState.ON,
        power_since=0.0,
        pods=(PodInfo("job-0", Resources.request(1000, 512), False),),
        capacity=labelled.allocatable,
        labels={"zone": "a", ARCH_LABEL: "arm64"},
        cordoned=False,
        idle_since=None,
        pods_changed_at=5,
        template="gpu",
        our_boot=False,
    )
    assert controller.node(110.0, "gpu-1").idle_since == 105.0


def test_min_nodes_are_on_and_billed_from_the_start() -> None:
    metrics = simulate(replace(scenario([], count=2), min_nodes=1), Script())
    assert (metrics.node_hours * 3600, metrics.idle_node_hours * 3600, metrics.power_ons) == (100.0, 100.0, 0)


def test_a_run_that_cannot_finish_stops_a_week_after_the_horizon_without_the_waits_of_unfinished_jobs() -> None:
    """A ten-day job holds the only node; the tick at exactly horizon + 7 days is still run."""
    controller = Script({0.0: [(ON, "wn-1")]}, every=1000.0)
    metrics = simulate(scenario([job(0, 2000, duration=10 * 86_400.0), job(1, 1000)], horizon=200.0), controller)
    assert (metrics.simulated_seconds, metrics.unfinished, metrics.jobs) == (605_000.0, 2, 2)
    assert (metrics.wait_mean, metrics.wait_max, metrics.node_hours * 3600) == (0.0, 0.0, 605_000.0)


def test_percentile_ranks_at_least_the_first_value() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (0.0, 0.01, 0.011, 1.0)] == [1.0, 1.0, 2.0, 100.0]
    assert percentile([7.0], 0.5) == 7.0


def test_boot_and_shutdown_times_are_drawn_per_seed_node_and_boot() -> None:
    """The numbers the benchmark's results rest on: a boot of the pool's lognormal, a shutdown of its uniform."""
    drawn = NodePool(OSCAR_WN, 1, boot_failure=0.0)
    jobs = (job(0, 500, duration=10.0), job(2000, 500, duration=10.0))
    plan = {0.0: [(ON, "wn-1")], 1000.0: [(OFF, "wn-1")], 2000.0: [(ON, "wn-1")], 3000.0: [(OFF, "wn-1")]}
    twice = simulate(Scenario("draws", "d", (drawn,), jobs, 4000.0), Script(plan, every=1000.0), seed=1)
    assert (twice.wait_p50, twice.wait_max) == pytest.approx((189.111405, 199.908787))
    assert twice.node_hours * 3600 == pytest.approx(2105.944348)  # 2000 s on, 105.9 s of two shutdowns
    other = simulate(Scenario("draws", "d", (drawn,), jobs[:1], 100.0), Script({0.0: [(ON, "wn-1")]}), seed=2)
    assert other.wait_max == pytest.approx(108.970945)
