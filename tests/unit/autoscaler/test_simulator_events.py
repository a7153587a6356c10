"""The simulator event by event: where pods go, what a controller sees and when, what each decision does to a
node, how a run is billed and when it ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import FrozenInstanceError, replace

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
from oscar_deploy.autoscaler.simulator import (
    LEAST_ALLOCATED,
    MOST_ALLOCATED,
    Job,
    NodePool,
    Scenario,
    Simulator,
    _Node,
    percentile,
    simulate,
)
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


def scenario(
    jobs: Sequence[Job],
    count: int = 1,
    template: NodeTemplate = OSCAR_WN,
    horizon: float = 100.0,
    most_allocated: bool = False,
) -> Scenario:
    pools = (replace(EXACT_POOL, template=template, count=count),)
    return Scenario("events", "events", pools, tuple(jobs), horizon, most_allocated=most_allocated)


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
    assert (both.most_allocated, both.scoring) == (False, "LeastAllocated")
    assert replace(both, most_allocated=True).scoring == MOST_ALLOCATED == "MostAllocated"
    assert LEAST_ALLOCATED == "LeastAllocated"


def test_a_pod_goes_to_the_node_with_the_most_free_room_and_ties_go_to_the_first() -> None:
    controller = Script(starts_all_on=True)
    jobs = [job(1, 500), job(2, 1000, 1024), job(3, 200, 256), job(4, 1000, 1024)]
    metrics = simulate(scenario(jobs, count=3, horizon=20.0), controller)
    assert placed(controller.looks[10.0]) == {"wn-1": ["job-0"], "wn-2": ["job-1"], "wn-3": ["job-2", "job-3"]}
    # Idle until the first pod (1 + 2 + 3 s) and from the last pod's end to the end at 1004 (3 + 2 + 0 s).
    assert metrics.idle_node_hours * 3600 == pytest.approx(11.0)


@pytest.mark.parametrize(
    ("first", "second"),
    [(job(0, 100, 3000), job(1, 1500, 50)), (job(0, 1500, 100), job(1, 50, 750))],
    ids=["wn-1 has more cpu free", "wn-1 has more memory free"],
)
def test_the_free_shares_of_cpu_and_of_memory_count_alike(first: Job, second: Job) -> None:
    """After two pods wn-1 has more of one resource free, wn-2 more of the other and more in sum of the free
    shares: the third pod goes to wn-2."""
    controller = Script(starts_all_on=True)
    simulate(scenario([first, second, job(2, 100, 100)], count=2, horizon=20.0), controller)
    assert placed(controller.looks[10.0]) == {"wn-1": ["job-0"], "wn-2": ["job-1", "job-2"]}


def test_most_allocated_puts_a_pod_on_the_fullest_node_it_fits_and_ties_go_to_the_first() -> None:
    """The first three pods (500m, 1000m, 200m) fill wn-1 to 1700m; the fourth (1000m) fits only an empty node,
    and of the two the first wins."""
    controller = Script(starts_all_on=True)
    jobs = [job(1, 500), job(2, 1000, 1024), job(3, 200, 256), job(4, 1000, 1024)]
    simulate(scenario(jobs, count=3, horizon=20.0, most_allocated=True), controller)
    assert placed(controller.looks[10.0]) == {"wn-1": ["job-0", "job-1", "job-2"], "wn-2": ["job-3"]}


MORE_CPU_ON_WN_1 = [job(0, 1500, 100), job(1, 600, 3000)]  # requested: wn-1 75% CPU, 3% memory; wn-2 30%, 79%
MORE_MEMORY_ON_WN_1 = [job(0, 100, 2800), job(1, 1850, 1100)]  # wn-1 5% CPU, 74% memory; wn-2 93%, 29%


@pytest.mark.parametrize(
    ("first_two", "most_allocated", "third_on"),
    [
        (MORE_CPU_ON_WN_1, False, "wn-1"),
        (MORE_CPU_ON_WN_1, True, "wn-2"),
        (MORE_MEMORY_ON_WN_1, False, "wn-1"),
        (MORE_MEMORY_ON_WN_1, True, "wn-2"),
    ],
    ids=["wn-1 more cpu, spread", "wn-1 more cpu, packed", "wn-1 more memory, spread", "wn-1 more memory, packed"],
)
def test_the_requested_shares_of_cpu_and_of_memory_count_alike(
    first_two: list[Job], most_allocated: bool, third_on: str
) -> None:
    """The second pod does not fit beside the first. Then wn-1 has more of one resource requested and wn-2 more
    of the other and more in sum: a small third pod goes to wn-2 when the scheduler packs, to wn-1 when it
    spreads."""
    controller = Script(starts_all_on=True)
    simulate(scenario([*first_two, job(2, 100, 100)], count=2, horizon=20.0, most_allocated=most_allocated), controller)
    assert placed(controller.looks[10.0])[third_on][-1] == "job-2"
    assert placed(controller.looks[10.0])["wn-2"][0] == "job-1"


@pytest.mark.parametrize("most_allocated", [False, True])
def test_a_resource_a_node_has_none_of_adds_nothing_to_its_score(most_allocated: bool) -> None:
    """As kube-scheduler scores a resource of capacity 0: neither free nor requested. Half the CPU is requested
    on a node with no memory to offer, so either way its score is the CPU's half."""
    node = _Node(0, "n-1", 0, NodeTemplate("cpu-only", "amd64", Resources.node(2000, 0)), most_allocated)
    node.free_cpu = 1000
    assert node.score() == 0.5


def test_a_pod_asking_exactly_the_room_left_runs_and_the_next_one_waits() -> None:
    controller = Script(starts_all_on=True)
    metrics = simulate(scenario([job(0, 1000, 1000), job(1, 1000, 2800), job(2, 1, 1, duration=10.0)]), controller)
    assert placed(controller.looks[10.0]) == {"wn-1": ["job-0", "job-1"]}
    assert (metrics.wait_p50, metrics.wait_max, metrics.simulated_seconds) == (0, 98.0, 110.0)


def test_a_node_runs_no_more_pods_than_it_allows() -> None:
    controller = Script(starts_all_on=True)
    jobs = [job(0, 1, 1), job(1, 1, 1), job(2, 1, 1, duration=10.0), job(3, 1, 1, duration=10.0)]
    metrics = simulate(scenario(jobs, template=TWO_PODS), controller)
    assert placed(controller.looks[10.0]) == {"small-1": ["job-0", "job-1"]}
    # One slot frees at 100 and one at 101: the last pod starts at 101.
    assert (metrics.wait_mean, metrics.wait_max, metrics.simulated_seconds) == (49.0, 98.0, 111.0)


def test_a_node_that_becomes_ready_takes_the_oldest_pending_shape_first_and_fills_up() -> None:
    """At 180 the first 1500m pod leaves exactly the room of the 500m pod (cpu, memory and a pod slot); the
    second 1500m pod waits for the first to end."""
    controller = Script({0.0: [(ON, "small-1")]})
    jobs = [job(1, 1500, 3288), job(2, 500, 512), job(3, 1500, 3288)]
    metrics = simulate(scenario(jobs, template=TWO_PODS), controller)
    assert placed(controller.looks[190.0]) == {"small-1": ["job-0", "job-1"]}
    assert (metrics.wait_p50, metrics.wait_max, metrics.simulated_seconds) == (179.0, 277.0, 380.0)


def test_a_node_that_becomes_ready_takes_as_many_pending_pods_as_its_memory_holds() -> None:
    controller = Script({0.0: [(ON, "wn-1")]})
    metrics = simulate(scenario([job(1, 100, 1500), job(2, 100, 1500), job(3, 100, 1500)]), controller)
    assert placed(controller.looks[190.0]) == {"wn-1": ["job-0", "job-1"]}
    assert (metrics.wait_max, metrics.simulated_seconds) == (277.0, 380.0)


def test_each_evicted_job_and_pod_is_counted() -> None:
    """Two jobs and two Knative pods on wn-1, drained at 50 while wn-2 boots: all four start on wn-2 at 180,
    the jobs from scratch (to 280), the pods with the 52 s and 53 s they had left."""
    knative = Resources.request(100, 512)
    jobs = [
        job(0, 100),
        job(1, 100),
        Job(2, 100.0, knative, interruptible=True),
        Job(3, 100.0, knative, interruptible=True),
    ]
    controller = Script({0.0: [(ON, "wn-2")], 50.0: [(Action.DRAIN, "wn-1")]})
    metrics = simulate(replace(scenario(jobs, count=2), min_nodes=1), controller)
    assert placed(controller.looks[190.0]) == {"wn-2": ["job-0", "job-1", "job-2", "job-3"]}
    assert (metrics.jobs_killed, metrics.pods_moved, metrics.simulated_seconds) == (2, 2, 280.0)


def test_each_node_powered_off_adds_its_idle_time_and_is_billed_to_its_shutdown_end() -> None:
    controller = Script({100.0: [(OFF, "wn-1")], 200.0: [(OFF, "wn-2")]}, starts_all_on=True)
    metrics = simulate(scenario([], count=2, horizon=300.0), controller)
    assert (metrics.idle_node_hours * 3600, metrics.node_hours * 3600) == (100 + 200, 130 + 230)


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


def test_a_pod_arriving_or_ending_at_a_tick_is_seen_so_at_the_next_one() -> None:
    controller = Script({110.0: [(ON, "wn-1")]})
    simulate(scenario([job(100, 500, duration=1.0)]), controller)
    assert (controller.looks[100.0].pending, [pod.name for pod in controller.looks[110.0].pending]) == ((), ["job-0"])
    running = Script(starts_all_on=True)
    simulate(scenario([job(15, 500, duration=5.0)]), running)
    assert (placed(running.looks[20.0]), placed(running.looks[30.0])) == ({"wn-1": ["job-0"]}, {})


def test_a_watching_controller_looks_once_a_reaction_delay_after_the_first_unschedulable_pod() -> None:
    controller = Script({13.0: [(ON, "wn-1")]}, every=1000.0, reaction_delay=3.0)
    metrics = simulate(scenario([job(10, 500), job(11, 600), job(12, 500), job(100, 100)], horizon=20.0), controller)
    assert [(now, [pod.name for pod in look.pending]) for now, look in controller.looks.items()] == [
        (0.0, []),
        (13.0, ["job-0", "job-1", "job-2"]),
        (103.0, ["job-0", "job-1", "job-2", "job-3"]),
    ]
    assert metrics.wait_max == 183.0  # powered on at 13, Ready 180 s later


def test_a_boot_given_up_is_billed_until_its_shutdown_ends_and_its_late_ready_is_ignored() -> None:
    """wn-2 is powered off 10 s into its boot and on again at 50: Ready at 230, not at 180 from the first boot."""
    controller = Script({0.0: [(ON, "wn-1"), (ON, "wn-2")], 10.0: [(OFF, "wn-2")], 50.0: [(ON, "wn-2")]})
    metrics = simulate(scenario([], count=2, horizon=1000.0), controller)

    def power(at: float) -> list[tuple[PowerState, float, bool, bool, float | None]]:
        return [(n.power, n.power_since, n.cordoned, n.our_boot, n.idle_since) for n in controller.looks[at].nodes]

    assert [(n.power, n.power_since, n.cordoned, n.pods_changed_at) for n in controller.looks[0.0].nodes] == [
        (PowerState.OFF, 0.0, False, 0.0)
    ] * 2
    assert power(10.0) == [(PowerState.BOOTING, 0.0, False, True, None)] * 2
    assert power(20.0)[1] == (PowerState.STOPPING, 10.0, False, False, None)
    assert power(40.0)[1] == (PowerState.OFF, 40.0, False, False, None)
    assert power(180.0) == [(PowerState.ON, 180.0, False, False, 180.0), (PowerState.BOOTING, 50.0, False, True, None)]
    assert power(230.0)[1] == (PowerState.ON, 230.0, False, False, 230.0)
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
    off = Script({10.0: [(CORDON, "wn-1")]})
    simulate(scenario([]), off)
    assert off.node(20.0, "wn-1").cordoned is False  # only a Ready node is cordoned
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


def test_min_nodes_are_on_and_billed_from_the_start_to_the_horizon_not_to_the_tick_after_it() -> None:
    metrics = simulate(replace(scenario([], count=2, horizon=95.0), min_nodes=1), Script())
    assert (metrics.node_hours * 3600, metrics.idle_node_hours * 3600, metrics.power_ons) == (95.0, 95.0, 0)
    assert (metrics.simulated_seconds, metrics.wait_mean, metrics.wait_max) == (95.0, 0.0, 0.0)
    assert simulate(scenario([], horizon=0.0), Script()).simulated_seconds == 0.0


def test_a_run_that_cannot_finish_stops_a_week_after_the_horizon_without_the_waits_of_unfinished_jobs() -> None:
    """A ten-day job holds the only node, never empty since Ready at 180, and a 1500m pod never fits beside it;
    the tick at exactly horizon + 7 days is still run. Only the 10 s pod's wait counts."""
    controller = Script({0.0: [(ON, "wn-1")]}, every=1000.0)
    jobs = [job(0, 1000, duration=10 * 86_400.0), job(1, 1000, duration=10.0), job(2, 1500)]
    metrics = simulate(scenario(jobs, horizon=200.0), controller)
    assert (metrics.simulated_seconds, metrics.unfinished, metrics.jobs) == (605_000.0, 2, 3)
    assert (metrics.wait_mean, metrics.wait_max) == (179.0, 179.0)
    assert (metrics.node_hours * 3600, metrics.idle_node_hours) == (605_000.0, 0.0)
    earlier = simulate(scenario(jobs, horizon=195.0), Script({0.0: [(ON, "wn-1")]}, every=1000.0))
    assert earlier.simulated_seconds == 604_000.0  # the tick at 605 000 is 5 s past horizon + 7 days


def test_the_waits_are_those_of_finished_jobs_not_of_a_moved_pod_that_never_restarts() -> None:
    """The Knative pod waits from 1 to 20 beside the job; drained at 50 from the only node, it never runs again.
    Only the finished job's wait (0 s) counts."""
    jobs = [job(0, 1500, duration=20.0), Job(1, 100.0, Resources.request(1000, 512), interruptible=True)]
    controller = Script({50.0: [(Action.DRAIN, "wn-1")]}, starts_all_on=True)
    metrics = simulate(scenario(jobs), controller)
    assert placed(controller.looks[30.0]) == {"wn-1": ["job-1"]}
    assert (metrics.pods_moved, metrics.unfinished) == (1, 1)
    assert (metrics.wait_mean, metrics.wait_max) == (0.0, 0.0)


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


def test_a_drained_node_s_pods_go_to_another_node_or_wait_for_room() -> None:
    """At 50 wn-1 is drained: its Knative pod moves to wn-2 at once with the 52 s it had left, its job waits for
    room and restarts from scratch at 101, when wn-2's job ends."""
    jobs = [job(0, 1500), job(1, 1500), Job(2, 100.0, Resources.request(400, 512), interruptible=True)]
    controller = Script({50.0: [(Action.DRAIN, "wn-1")]}, starts_all_on=True)
    metrics = simulate(scenario(jobs, count=2), controller)
    assert placed(controller.looks[50.0]) == {"wn-1": ["job-0", "job-2"], "wn-2": ["job-1"]}
    assert placed(controller.looks[60.0]) == {"wn-2": ["job-1", "job-2"]}
    assert [pod.name for pod in controller.looks[60.0].pending] == ["job-0"]
    assert placed(controller.looks[110.0]) == {"wn-2": ["job-0"]}
    assert (metrics.jobs_killed, metrics.pods_moved, metrics.wait_max, metrics.simulated_seconds) == (
        1,
        1,
        101.0,
        201.0,
    )


def test_an_older_pod_that_does_not_fit_lets_a_younger_smaller_one_take_the_room() -> None:
    """At 50 the 500m pod's end frees 500m: the 2000m pod pending since 1 cannot use it, the 500m one since 2 can."""
    jobs = [job(0, 1500), job(0, 500, duration=50.0), job(1, 2000), job(2, 500)]
    metrics = simulate(scenario(jobs), Script(starts_all_on=True))
    # The second 500m pod runs 50-150 (waits 48 s); the 2000m pod starts when it and the first pod are done.
    assert (metrics.wait_mean, metrics.wait_max, metrics.simulated_seconds) == ((48 + 149) / 4, 149.0, 250.0)


def test_gpu_pods_need_a_free_gpu_and_cpu_pods_leave_it_alone() -> None:
    """One GPU: the GPU pods run one after the other (180-280, 280-380, 380-480, then 600-700), the cpu pod
    beside them (180-500)."""
    gpu_node = NodeTemplate("gpu", "amd64", Resources.node(4000, 7600, gpu=1))
    gpu = Resources.request(500, 512, 1)
    jobs = [job(0, 500, duration=320.0), Job(1, 100.0, gpu), Job(2, 100.0, gpu), Job(200, 100.0, gpu)]
    controller = Script({0.0: [(ON, "gpu-1")]})
    metrics = simulate(scenario([*jobs, Job(600, 100.0, gpu)], template=gpu_node), controller)
    assert placed(controller.looks[190.0]) == {"gpu-1": ["job-0", "job-1"]}
    assert (metrics.wait_mean, metrics.wait_max, metrics.simulated_seconds) == (
        (180 + 179 + 278 + 180) / 5,
        278.0,
        700.0,
    )


def test_a_job_no_pool_can_run_is_left_out_of_the_counts() -> None:
    arm = {ARCH_LABEL: "arm64"}
    jobs = [job(0, 500), job(1, 3000), Job(2, 10.0, Resources.request(500, 512), selector=arm), job(3, 500)]
    metrics = simulate(scenario(jobs), Script(starts_all_on=True))
    assert (metrics.jobs, metrics.unfinished, metrics.simulated_seconds) == (2, 0, 103.0)


def test_pods_of_the_same_size_with_different_selectors_are_placed_apart() -> None:
    """Sized alike, the amd64-only pod may not follow the unrestricted one onto the arm64 pool."""
    arm = NodeTemplate("arm", "arm64", Resources.node(2000, 3800))
    pools = (replace(EXACT_POOL, count=1), replace(EXACT_POOL, template=arm, count=1))
    jobs = (job(0, 500), job(1, 500), Job(2, 100.0, Resources.request(500, 512), selector={ARCH_LABEL: "amd64"}))
    controller = Script(starts_all_on=True)
    simulate(Scenario("two", "two pools", pools, jobs, 100.0), controller)
    assert placed(controller.looks[10.0]) == {"wn-1": ["job-0", "job-2"], "arm-1": ["job-1"]}


def test_waits_are_summed_up_by_nearest_rank() -> None:
    """101 one-second jobs on one node, one after the other: they wait 0, 1, ..., 100 s."""
    metrics = simulate(scenario([job(0, 2000, duration=1.0)] * 101), Script(starts_all_on=True))
    assert (metrics.wait_mean, metrics.wait_p50, metrics.wait_p95, metrics.wait_p99, metrics.wait_max) == (
        50.0,
        50.0,
        95.0,
        99.0,
        100.0,
    )


@pytest.mark.parametrize(
    ("most_allocated", "used", "short_on"), [(False, {"wn-1", "wn-2"}, "wn-2"), (True, {"wn-1"}, "wn-1")]
)
def test_placement_keeps_its_scoring_after_the_scheduler_compacts_its_queue(
    most_allocated: bool, used: set[str], short_on: str
) -> None:
    """120 short amd64 pods, one a second, next to a long one on wn-1: enough starts and ends that the amd64
    pool's queue of node scores is rebuilt; every short pod still goes to the emptier amd64 node (LeastAllocated)
    or beside the long one (MostAllocated), none to the empty arm64 one."""
    amd64 = {ARCH_LABEL: "amd64"}
    jobs = [Job(0, 200.0, Resources.request(1000, 512), amd64)]
    jobs += [Job(float(i), 0.5, Resources.request(500, 512), amd64) for i in range(1, 121)]
    arm = NodeTemplate("arm", "arm64", Resources.node(2000, 3800))
    pools = (replace(EXACT_POOL, template=arm, count=1), replace(EXACT_POOL, count=2))
    controller = Script(starts_all_on=True, every=0.25)
    simulate(Scenario("two", "two pools", pools, tuple(jobs), 100.0, most_allocated=most_allocated), controller)
    nodes = {node.name for look in controller.looks.values() for node in look.nodes for pod in node.pods}
    short = {n.name for look in controller.looks.values() for n in look.nodes for p in n.pods if p.name != "job-0"}
    assert (nodes, short) == (used, {short_on})


def test_a_pod_size_that_found_no_room_is_placed_at_once_after_room_was_freed() -> None:
    """The 500m pod at 1 finds no room and starts at 100; one alike at 150 starts at once beside it."""
    metrics = simulate(scenario([job(0, 2000), job(1, 500), job(150, 500)]), Script(starts_all_on=True))
    assert (metrics.wait_mean, metrics.wait_max, metrics.simulated_seconds) == (33.0, 99.0, 250.0)


def test_the_seed_is_1_unless_given() -> None:
    drawn = Scenario("draws", "d", (NodePool(OSCAR_WN, 1, boot_failure=0.0),), (job(0, 500, duration=10.0),), 100.0)
    plan = {0.0: [(ON, "wn-1")]}
    seeded = simulate(drawn, Script(plan), seed=1)
    assert simulate(drawn, Script(plan)) == seeded
    assert Simulator(drawn, Script(plan)).run() == seeded
    assert seeded != simulate(drawn, Script(plan), seed=2)


def test_jobs_pools_scenarios_and_metrics_cannot_be_changed() -> None:
    one = scenario([job(0, 500, duration=1.0)])
    metrics = simulate(one, Script(starts_all_on=True))
    for value, attribute in ((one.jobs[0], "duration"), (one.pools[0], "count"), (one, "horizon"), (metrics, "jobs")):
        with pytest.raises(FrozenInstanceError):
            setattr(value, attribute, 0)
