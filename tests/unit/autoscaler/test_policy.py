"""The scaling policy, one rule at a time: packing, boots, job safety, demand gaps, consolidation, Kueue, limits."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import pytest

from oscar_deploy.autoscaler.model import (
    ARCH_LABEL,
    UNBOUNDED,
    Action,
    ClusterSnapshot,
    Decision,
    KueueWorkload,
    NodeInfo,
    NodeTemplate,
    PendingPod,
    PodInfo,
    PodSet,
    PolicyConfig,
    PolicyResult,
    PolicyState,
    PowerState,
    Resources,
)
from oscar_deploy.autoscaler.policy import decide

WN = NodeTemplate("wn", "amd64", Resources.node(2000, 4096))
ARM = NodeTemplate("board", "arm64", Resources.node(4000, 8192), cost_per_hour=0.5)
ON, OFF, BOOTING = PowerState.ON, PowerState.OFF, PowerState.BOOTING


def job(name: str, cpu: int = 500, memory: int = 512) -> PodInfo:
    return PodInfo(name, Resources.request(cpu, memory), interruptible=False)


def knative(name: str, cpu: int = 200, memory: int = 256) -> PodInfo:
    return PodInfo(name, Resources.request(cpu, memory), interruptible=True)


def node(
    name: str,
    power: PowerState = ON,
    *pods: PodInfo,
    since: float = 0.0,
    idle_since: float | None = None,
    cordoned: bool = False,
    template: NodeTemplate = WN,
    our_boot: bool = False,
) -> NodeInfo:
    if power is ON and not pods and idle_since is None:
        idle_since = since
    return NodeInfo(
        name,
        template.arch,
        template.allocatable,
        power,
        power_since=since,
        pods=tuple(pods),
        cordoned=cordoned,
        idle_since=idle_since if not pods else None,
        template=template.name,
        our_boot=our_boot,
    )


def pending(name: str, cpu: int = 500, memory: int = 512, created: float = 0.0, arch: str | None = None) -> PendingPod:
    selector = {ARCH_LABEL: arch} if arch else {}
    return PendingPod(name, Resources.request(cpu, memory), created=created, node_selector=selector)


def applying_cordons(n: NodeInfo, state: PolicyState) -> NodeInfo:
    """The node as the cluster shows it after the policy's cordons were applied."""
    return node(n.name, n.power, *n.pods, since=n.power_since, cordoned=n.name in state.cordoned_by_us)


def rounds(
    nodes: Sequence[NodeInfo], cfg: PolicyConfig, until: int, state: PolicyState | None = None
) -> tuple[PolicyState, list[tuple[int, Decision]]]:
    """Decides every 20 s from t=0 to before `until` on `nodes` with the policy's cordons applied; returns the
    last state and each decision with its time."""
    state = PolicyState() if state is None else state
    decided = []
    for now in range(0, until, 20):
        nodes_now = tuple(applying_cordons(n, state) for n in nodes)
        result = decide(ClusterSnapshot(now=float(now), nodes=nodes_now), cfg, state)
        state = result.state
        decided += [(now, d) for d in result.decisions]
    return state, decided


def config(**overrides: object) -> PolicyConfig:
    values: dict[str, object] = {
        "templates": (WN,),
        "min_nodes": 0,
        "max_nodes": 5,
        "idle_time": 300.0,
        "boot_time_estimate": 180.0,
    }
    values.update(overrides)
    return PolicyConfig(**values)  # type: ignore[arg-type]


def actions(result) -> list[tuple[str, str]]:
    return [(d.action.value, d.node) for d in result.decisions]


def test_pending_pods_are_packed_first_fit_decreasing_onto_new_nodes() -> None:
    nodes = tuple(node(f"wn-{i}", OFF) for i in range(1, 6))
    pods = (pending("a", 1500), pending("b", 1000), pending("c", 500), pending("d", 500), pending("e", 400))
    result = decide(ClusterSnapshot(now=10, nodes=nodes, pending=pods), config())
    # FFD: [1500+500], [1000+500+400] -> two nodes, not one per pod.
    assert actions(result) == [("power-on", "wn-1"), ("power-on", "wn-2")]
    assert result.decisions[0].reason == (
        "2 pending pod(s) fit on no ready or booting node; a new wn node (amd64) holds them"
    )
    assert result.decisions[1].reason.startswith("3 pending pod(s)")


def test_booting_nodes_count_as_capacity() -> None:
    nodes = (node("wn-1", BOOTING, since=0), node("wn-2", OFF))
    result = decide(ClusterSnapshot(now=60, nodes=nodes, pending=(pending("a", 1000), pending("b", 1000))), config())
    assert actions(result) == []
    one_more = decide(
        ClusterSnapshot(now=60, nodes=nodes, pending=(pending("a", 1000), pending("b", 1000), pending("c"))), config()
    )
    assert actions(one_more) == [("power-on", "wn-2")]


def test_a_boot_far_beyond_the_estimate_stops_counting_and_times_out() -> None:
    nodes = (node("wn-1", BOOTING, since=0), node("wn-2", OFF))
    stuck = decide(ClusterSnapshot(now=361, nodes=nodes, pending=(pending("a"),)), config())
    assert actions(stuck) == [("power-on", "wn-2")]
    assert "wn-1: booting for over 360s (estimate 180s); not counted as coming capacity" in stuck.notes
    timed_out = decide(ClusterSnapshot(now=3001, nodes=(node("wn-3", BOOTING, since=0), *nodes)), config())
    assert actions(timed_out) == [("power-off", "wn-1"), ("power-off", "wn-3")], "in name order"
    assert timed_out.decisions[0].reason == "booting for 3001s, longer than max_wait_poweron (3000s)"


def test_boot_limits_at_their_exact_values() -> None:
    """A boot of exactly 2 x the estimate still counts as capacity; one of exactly max_wait_poweron still runs."""
    nodes = (node("wn-1", BOOTING, since=0), node("wn-2", OFF))
    counted = decide(ClusterSnapshot(now=360, nodes=nodes, pending=(pending("a"),)), config())
    assert (actions(counted), counted.notes) == ([], ())
    assert actions(decide(ClusterSnapshot(now=3000, nodes=nodes), config())) == []
    failed = decide(ClusterSnapshot(now=10, nodes=(node("wn-1", PowerState.FAILED),)), config())
    assert [d.reason for d in failed.decisions] == ["its last power-on failed; powering it off so it can be retried"]


@pytest.mark.parametrize(
    ("measured", "our_boot", "pods", "now", "given_up"),
    [
        (True, True, (), 721, True),
        (True, True, (), 720, False),  # exactly 4 x the estimate
        (False, True, (), 721, False),  # a default estimate: the boot gets max_wait_poweron
        (True, False, (), 721, False),  # a worker that was Ready and is not: not a boot we started
        (True, True, (knative("web"),), 721, False),
    ],
)
def test_a_boot_beyond_the_give_up_factor_of_a_measured_estimate_is_given_up(
    measured: bool, our_boot: bool, pods: tuple[PodInfo, ...], now: int, given_up: bool
) -> None:
    nodes = (node("wn-1", BOOTING, *pods, since=0, our_boot=our_boot),)
    result = decide(ClusterSnapshot(now=now, nodes=nodes), config(boot_time_measured=measured))
    assert actions(result) == ([("power-off", "wn-1")] if given_up else [])
    if given_up:
        assert result.decisions[0].reason == (
            "booting for 721s, over 4x the measured boot time (180s); given up as failed"
        )


def test_the_give_up_factor_is_a_setting_of_at_least_the_stuck_boot_factor() -> None:
    cfg = config(boot_time_measured=True, give_up_boot_factor=2.5)
    nodes = (node("wn-1", BOOTING, since=0, our_boot=True),)
    assert actions(decide(ClusterSnapshot(now=450, nodes=nodes), cfg)) == []
    result = decide(ClusterSnapshot(now=451, nodes=nodes), cfg)
    assert result.decisions[0].reason == "booting for 451s, over 2.5x the measured boot time (180s); given up as failed"
    assert config(give_up_boot_factor=2.0).give_up_boot_factor == 2.0
    short = config(boot_time_measured=True, boot_time_estimate=10.0)
    assert actions(decide(ClusterSnapshot(now=60, nodes=nodes), short)) == [], "never sooner than a minute"
    assert actions(decide(ClusterSnapshot(now=61, nodes=nodes), short)) == [("power-off", "wn-1")]
    with pytest.raises(ValueError, match=r"^give_up_boot_factor: must be at least stuck_boot_factor$"):
        config(give_up_boot_factor=1.9)


def test_a_worker_not_ready_with_a_job_bound_is_never_powered_off() -> None:
    """A worker that lost its network keeps its pods bound: past max_wait_poweron it is powered off only when
    none of them is a job."""
    with_job = (node("wn-1", BOOTING, job("job-a"), knative("web"), since=0),)
    kept = decide(ClusterSnapshot(now=3001, nodes=with_job), config())
    assert actions(kept) == []
    assert kept.notes == (
        "wn-1: not Ready for longer than max_wait_poweron (3000s), but a job pod is still bound to it; not powered off",
    )
    assert decide(ClusterSnapshot(now=9000, nodes=with_job), config()).notes == kept.notes
    at_limit = decide(ClusterSnapshot(now=3000, nodes=with_job), config())
    assert at_limit.notes == ("wn-1: booting for over 360s (estimate 180s); not counted as coming capacity",)
    movable = (node("wn-1", BOOTING, knative("web"), since=0),)
    assert actions(decide(ClusterSnapshot(now=3001, nodes=movable), config())) == [("power-off", "wn-1")]


def test_empty_node_powers_off_after_exactly_idle_time() -> None:
    nodes = (node("wn-1", ON, idle_since=100.0),)
    assert actions(decide(ClusterSnapshot(now=399, nodes=nodes), config())) == []
    result = decide(ClusterSnapshot(now=400, nodes=nodes), config())
    assert actions(result) == [("power-off", "wn-1")]
    assert result.decisions[0].reason == "empty for 300s (idle_time 300s)"


def gaps_state(*gaps: float) -> PolicyState:
    return PolicyState(demand_gaps={"wn": gaps})


def test_an_empty_node_stays_on_while_demand_came_back_within_a_power_cycle_and_not_longer() -> None:
    """Gaps of 400-500 s: a node empty for 300 s would be needed again within boot + shutdown (180 + 60 s)."""
    nodes = (node("wn-1", ON, idle_since=100.0),)
    state = gaps_state(2000, 400, 420, 500)
    kept = decide(ClusterSnapshot(now=400, nodes=nodes), config(), state)
    assert actions(kept) == []
    assert kept.notes == (
        "wn-1: kept on past idle_time (300s): 3 of the 4 latest wn demand gaps longer than its empty time ended "
        "within 240s more, what a shutdown and a boot cost",
    )
    assert actions(decide(ClusterSnapshot(now=500, nodes=nodes), config(), state)) == []  # 2 of 420, 500, 2000
    # Empty for 420 s: only the 500 s and 2000 s gaps lasted longer, too few to go by.
    assert actions(decide(ClusterSnapshot(now=520, nodes=nodes), config(), state)) == [("power-off", "wn-1")]
    # Long gaps: powering off pays; the break-even follows the configured boot and shutdown times.
    long_gaps = gaps_state(900, 1000, 1200)
    assert actions(decide(ClusterSnapshot(now=400, nodes=nodes), config(), long_gaps)) == [("power-off", "wn-1")]
    slow_boots = config(boot_time_estimate=600.0, shutdown_time_estimate=300.0)
    assert actions(decide(ClusterSnapshot(now=400, nodes=nodes), slow_boots, long_gaps)) == []
    # Only the latest 20 gaps count, however many a restored state holds.
    restored = gaps_state(*([900.0] * 21), *([400.0] * 20))
    assert actions(decide(ClusterSnapshot(now=400, nodes=nodes), config(), restored)) == []


@pytest.mark.parametrize(
    ("gaps", "kept"),
    [
        ((400.0, 400.0, 400.0), True),  # exactly GAP_MIN_SAMPLES
        ((400.0, 400.0), False),  # one sample short
        ((300.0, 400.0, 400.0), False),  # a gap as long as the empty time did not outlast it
        ((540.0, 540.0, 900.0, 900.0), True),  # exactly half ended right at 300 + 240 s
        ((540.0, 541.0, 900.0), False),  # fewer than half ended in time
    ],
)
def test_keeping_an_empty_node_needs_enough_gaps_and_half_of_them_short(gaps: tuple[float, ...], kept: bool) -> None:
    nodes = (node("wn-1", ON, idle_since=100.0),)
    result = decide(ClusterSnapshot(now=400, nodes=nodes), config(), gaps_state(*gaps))
    assert actions(result) == ([] if kept else [("power-off", "wn-1")])


@pytest.mark.parametrize(
    ("min_nodes", "extra_nodes_free", "powered_off", "kept"),
    [
        (0, 0, ["board-1", "wn-2"], ["wn-1"]),
        (1, 0, ["board-1", "wn-2"], ["wn-1"]),
        (2, 0, ["board-1"], []),  # one node may go: the others are not looked at
        (0, 1, ["board-1", "wn-2"], ["wn-1"]),
        (0, 2, ["board-1"], []),
    ],
)
def test_a_kept_node_leaves_the_others_to_the_usual_rule_and_limits(
    min_nodes: int, extra_nodes_free: int, powered_off: list[str], kept: list[str]
) -> None:
    """wn-1 (empty 500 s) is kept: half the gaps longer than 500 s end by 740 s; for wn-2 (empty 300 s) none
    end by 540 s. board-1's template is not configured, so no gaps speak for it."""
    nodes = (
        node("wn-1", ON, idle_since=0.0),
        node("wn-2", ON, idle_since=200.0),
        node("board-1", ON, idle_since=0.0, template=ARM),
    )
    cfg = config(min_nodes=min_nodes, extra_nodes_free=extra_nodes_free)
    result = decide(ClusterSnapshot(now=500, nodes=nodes), cfg, gaps_state(600, 600, 600, 2000, 2000, 2000))
    assert actions(result) == [("power-off", name) for name in powered_off]
    assert [note.split(":")[0] for note in result.notes] == kept


def needed_state(*samples: tuple[float, dict[str, int]]) -> PolicyState:
    return PolicyState(needed_history=samples)


@pytest.mark.parametrize(
    ("peak", "powered_off", "kept"),
    [
        (0, ["wn-1", "wn-2"], []),
        (1, ["wn-1"], ["wn-2"]),  # the node empty longest goes; the other is as many as the peak needed
        (2, [], ["wn-1", "wn-2"]),
        (3, [], ["wn-1", "wn-2"]),
    ],
)
def test_empty_nodes_stay_while_the_demand_window_needed_as_many_of_their_template(
    peak: int, powered_off: list[str], kept: list[str]
) -> None:
    """Both workers empty past idle_time; the peak sample is at exactly now - 2 x idle_time, still in the window."""
    nodes = (node("wn-1", ON, idle_since=0.0), node("wn-2", ON, idle_since=100.0))
    state = needed_state((0.0, {"wn": peak}), (400.0, {"wn": 0}))
    result = decide(ClusterSnapshot(now=600, nodes=nodes), config(), state)
    assert actions(result) == [("power-off", name) for name in powered_off]
    assert [note.split(":")[0] for note in result.notes] == kept
    if peak == 1:
        assert result.notes == (
            "wn-2: kept on past idle_time (300s): the demand of the last 600s needed 1 wn node(s) at its peak and "
            "1 are ready",
        )
    # One second later the peak sample has left the window.
    later = decide(ClusterSnapshot(now=601, nodes=nodes), config(), state)
    assert actions(later) == [("power-off", "wn-1"), ("power-off", "wn-2")]


def test_the_demand_window_keeps_nodes_per_template_and_counts_no_cordoned_node() -> None:
    """The wn peak of 1 keeps the empty wn-2 (the administrator's cordoned wn-1 is not capacity), not the board."""
    nodes = (
        node("wn-1", ON, job("a"), cordoned=True),
        node("wn-2", ON, idle_since=0.0),
        node("board-1", ON, idle_since=0.0, template=ARM),
    )
    state = needed_state((0.0, {"wn": 1, "board": 0}))
    result = decide(ClusterSnapshot(now=500, nodes=nodes), config(templates=(WN, ARM)), state)
    assert actions(result) == [("power-off", "board-1")]
    assert [note.split(":")[0] for note in result.notes] == ["wn-2"]


def test_demand_gaps_are_measured_per_level_of_needed_nodes_and_only_the_latest_kept() -> None:
    """Two nodes' worth of jobs, then none from t=40, then one pod at t=440: level 1 was vacant 400 s, level
    2 stays vacant; the oldest of 20 recorded gaps makes room for the new one."""
    off = (node("wn-1", OFF), node("wn-2", OFF))
    busy = (node("wn-1", ON, job("a", 1500)), node("wn-2", ON, job("b", 1500)))
    cfg = config(idle_time=3600.0)
    state = gaps_state(*[float(n) for n in range(1, 21)])
    for now, nodes, pods in [(0, busy, ()), (20, busy, ()), (40, off, ()), (240, off, ()), (440, off, (pending("c"),))]:
        state = decide(ClusterSnapshot(now=float(now), nodes=nodes, pending=pods), cfg, state).state
        if now == 40:
            assert state.vacated_at == {"wn": {1: 40.0, 2: 40.0}}
    assert state.vacated_at == {"wn": {2: 40.0}}
    assert state.demand_gaps == {"wn": (*[float(n) for n in range(2, 21)], 400.0)}


def test_a_booting_node_no_pod_waits_for_counts_toward_the_warm_buffer() -> None:
    """Two idle workers and one booting for nothing: with extra_nodes_free 2, exactly one idle worker may go."""
    nodes = (node("wn-1", ON, idle_since=0.0), node("wn-2", ON, idle_since=100.0), node("wn-3", BOOTING, since=450))
    result = decide(ClusterSnapshot(now=500, nodes=nodes), config(extra_nodes_free=2))
    assert actions(result) == [("power-off", "wn-1")]


def test_never_powers_off_or_drains_a_node_running_a_job() -> None:
    cfg = config(idle_time=60.0)
    busy = node("wn-1", ON, job("j1", 100))
    idle = node("wn-2", ON, idle_since=0.0)
    state = PolicyState()
    seen: list[tuple[str, str]] = []
    for now in range(0, 3600, 20):
        result = decide(ClusterSnapshot(now=float(now), nodes=(busy, idle)), cfg, state)
        state = result.state
        seen += actions(result)
    assert ("power-off", "wn-1") not in seen
    assert ("drain", "wn-1") not in seen
    assert ("power-off", "wn-2") in seen


def test_surplus_node_with_a_job_is_cordoned_not_drained_and_powers_off_once_empty() -> None:
    cfg = config(idle_time=60.0)
    loaded = [node(f"wn-{i}", ON, job(f"j{i}a", 800), job(f"j{i}b", 800)) for i in (1, 2)]
    light = [node(f"wn-{i}", ON, job(f"j{i}", 100)) for i in (3, 4)]
    _, decided = rounds((*loaded, *light), cfg, 400)
    assert decided == []  # demand fits on 2 nodes, +2 slack: 4 ready nodes are not a surplus
    extra = node("wn-5", ON, job("j5", 100))
    state, decided = rounds((*loaded, *light, extra), cfg, 400)
    assert [(now, d.action, d.node) for now, d in decided] == [(100, Action.CORDON, "wn-3")]
    assert decided[0][1].reason == (
        "the last 120s of demand fit on 2 wn node(s) (+2 slack) and 5 are ready; no new pods here, it powers off "
        "once its 1 pod(s) finish"
    )
    assert state.cordoned_by_us == frozenset({"wn-3"})
    # Still running its job: nothing more. Once empty, it powers off at once.
    still = node("wn-3", ON, job("j3", 100), cordoned=True)
    assert actions(decide(ClusterSnapshot(now=420, nodes=(*loaded, still, light[1], extra)), cfg, state)) == []
    empty = node("wn-3", ON, cordoned=True, idle_since=430)
    done = decide(ClusterSnapshot(now=440, nodes=(*loaded, empty, light[1], extra)), cfg, state)
    assert actions(done) == [("power-off", "wn-3")]
    assert done.decisions[0].reason == "cordoned to consolidate and now empty"


@pytest.mark.parametrize(
    ("fresh_since", "min_nodes", "pressure_at", "cordon"),
    [
        (40.0, 0, None, [(100, "wn-5")]),  # Ready exactly idle_time before: settled, and the least loaded
        (41.0, 0, None, [(100, "wn-3")]),  # Ready less than idle_time before: left alone
        (40.0, 4, None, [(100, "wn-5")]),  # min_nodes 4 leaves exactly one to give back
        (40.0, 5, None, []),
        (40.0, 0, -20.0, [(120, "wn-5")]),  # pods pending exactly one window before t=100: not yet quiet
    ],
)
def test_consolidation_waits_for_settled_nodes_min_nodes_and_quiet(
    fresh_since: float, min_nodes: int, pressure_at: float | None, cordon: list[tuple[int, str]]
) -> None:
    cfg = config(idle_time=60.0, min_nodes=min_nodes)
    loaded = [node(f"wn-{i}", ON, job(f"j{i}a", 800), job(f"j{i}b", 800)) for i in (1, 2)]
    light = [node(f"wn-{i}", ON, job(f"j{i}", 100)) for i in (3, 4)]
    fresh = node("wn-5", ON, job("j5", 50, 256), since=fresh_since)
    _, decided = rounds((*loaded, *light, fresh), cfg, 200, PolicyState(pressure_at=pressure_at))
    assert [(now, d.node) for now, d in decided if d.action is Action.CORDON] == cordon


def test_our_cordon_is_lifted_when_running_demand_rises_again() -> None:
    cfg = config(idle_time=60.0)
    loaded = [node(f"wn-{i}", ON, job(f"j{i}a", 800), job(f"j{i}b", 800)) for i in (1, 2)]
    light = [node(f"wn-{i}", ON, job(f"j{i}", 100)) for i in (3, 4, 5)]
    state, _ = rounds((*loaded, *light), cfg, 120)
    assert state.cordoned_by_us == frozenset({"wn-3"})
    heavy = [node(f"wn-{i}", ON, job(f"j{i}", 100), job(f"h{i}", 1800)) for i in (4, 5)]
    nodes = (*loaded, applying_cordons(light[0], state), *heavy)
    result = decide(ClusterSnapshot(now=120.0, nodes=nodes), cfg, state)
    assert actions(result) == [("uncordon", "wn-3")]
    assert result.decisions[0].reason == "4 wn node(s) needed (+2 slack) and 4 ready without it"
    assert result.state.cordoned_by_us == frozenset()


@pytest.mark.parametrize(("min_nodes", "powered_off"), [(4, ["wn-3"]), (5, [])])
def test_our_cordoned_node_powers_off_once_empty_unless_min_nodes_needs_it(
    min_nodes: int, powered_off: list[str]
) -> None:
    loaded = [node(f"wn-{i}", ON, job(f"j{i}a", 800), job(f"j{i}b", 800)) for i in (1, 2)]
    light = [node(f"wn-{i}", ON, job(f"j{i}", 100)) for i in (4, 5)]
    empty = node("wn-3", ON, cordoned=True, idle_since=90.0)
    state = PolicyState(cordoned_by_us=frozenset({"wn-3"}))
    result = decide(ClusterSnapshot(now=100.0, nodes=(*loaded, empty, *light)), config(min_nodes=min_nodes), state)
    assert actions(result) == [("power-off", name) for name in powered_off]
    assert result.state.cordoned_by_us == frozenset({"wn-3"}) - set(powered_off)


def test_nearly_idle_node_of_movable_pods_is_drained_after_idle_time() -> None:
    cfg = config(idle_time=60.0)
    others = [node(f"wn-{i}", ON, job(f"j{i}", 600)) for i in (1, 2, 3)]
    light = node("wn-4", ON, knative("k1"))
    state = PolicyState()
    drained_at = None
    for now in range(0, 400, 20):
        result = decide(ClusterSnapshot(now=float(now), nodes=(*others, light)), cfg, state)
        state = result.state
        if ("drain", "wn-4") in actions(result):
            drained_at = now
            reason = result.decisions[0].reason
            break
    assert drained_at is not None
    assert drained_at == 160  # once 2 x idle_time of history is seen (t=100), unneeded for idle_time (60 s)
    assert reason.startswith("its 1 pod(s) may move, use 10% of it and fit on the other nodes; unneeded for")


def test_a_light_node_of_movable_pods_is_cordoned_first_then_drained_once_unneeded_for_idle_time() -> None:
    cfg = config(idle_time=60.0)
    others = [node(f"wn-{i}", ON, job(f"j{i}", 600)) for i in (1, 2, 3)]
    light = node("wn-4", ON, knative("k1"))
    _, decided = rounds((*others, light), cfg, 180)
    seen = [(now, d.action.value, d.reason) for now, d in decided if d.node == "wn-4"]
    assert [(now, action) for now, action, _ in seen] == [(100, "cordon"), (160, "drain")]
    assert seen[1][2] == "its 1 pod(s) may move, use 10% of it and fit on the other nodes; unneeded for 60s"


@pytest.mark.parametrize(("extra_nodes_free", "cordoned"), [(0, ["wn-3", "wn-4"]), (1, ["wn-3"]), (2, [])])
def test_consolidation_keeps_the_warm_buffer(extra_nodes_free: int, cordoned: list[str]) -> None:
    cfg = config(idle_time=60.0, extra_nodes_free=extra_nodes_free, max_nodes=6)
    loaded = [node(f"wn-{i}", ON, job(f"j{i}a", 800), job(f"j{i}b", 800)) for i in (1, 2)]
    light = [node(f"wn-{i}", ON, job(f"j{i}", 100, 256)) for i in (3, 4, 5, 6)]
    _, decided = rounds((*loaded, *light), cfg, 200)
    assert [d.node for _, d in decided if d.action is Action.CORDON] == cordoned


def test_workers_booting_or_powered_on_this_round_count_toward_min_nodes() -> None:
    idle = node("wn-1", ON, idle_since=0.0)
    booting = decide(ClusterSnapshot(now=1000, nodes=(idle, node("wn-2", BOOTING, since=990.0))), config(min_nodes=1))
    assert actions(booting) == [("power-off", "wn-1")]
    arm_pod = pending("a", arch="arm64", created=990.0)
    nodes = (idle, node("board-1", OFF, template=ARM))
    cfg = config(min_nodes=1, templates=(WN, ARM))
    powering_on = decide(ClusterSnapshot(now=1000, nodes=nodes, pending=(arm_pod,)), cfg)
    assert actions(powering_on) == [("power-on", "board-1"), ("power-off", "wn-1")]


def consolidating(min_nodes: int) -> PolicyConfig:
    """Two templates, idle_time 60 s; with `settled_state`, the window is covered and quiet."""
    return config(idle_time=60.0, templates=(WN, ARM), max_nodes=10, min_nodes=min_nodes)


def settled_state(**fields: object) -> PolicyState:
    """Demand of one node per template over the last window (120 s before t=1000)."""
    return PolicyState(needed_history=((880.0, {"wn": 1, "board": 1}),), first_seen=0.0, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("wn_nodes", "min_nodes", "pod", "expected"),
    [
        (4, 7, job, [("cordon", "wn-1")]),  # one node may go: the first template's
        (4, 6, job, [("cordon", "wn-1"), ("cordon", "board-1")]),
        (4, 8, job, []),
        (3, 0, job, [("cordon", "board-1")]),  # no surplus of wn: the next template is still looked at
        (4, 7, knative, [("drain", "wn-1")]),
        (4, 6, knative, [("drain", "wn-1"), ("drain", "board-1")]),
        (3, 0, knative, [("drain", "board-1")]),
        (5, 0, knative, [("drain", "wn-1"), ("drain", "wn-2"), ("drain", "board-1")]),
    ],
)
def test_consolidation_gives_back_at_most_what_min_nodes_leaves_across_templates(
    wn_nodes: int, min_nodes: int, pod: Callable[[str, int], PodInfo], expected: list[tuple[str, str]]
) -> None:
    """Light pods on 4 boards and `wn_nodes` wn workers: demand needs 1 of each, +2 slack."""
    nodes = (
        *(node(f"wn-{i}", ON, pod(f"w{i}", 100)) for i in range(1, wn_nodes + 1)),
        *(node(f"board-{i}", ON, pod(f"b{i}", 100), template=ARM) for i in range(1, 5)),
    )
    unneeded = {n.name: 900.0 for n in nodes}
    result = decide(
        ClusterSnapshot(now=1000.0, nodes=nodes), consolidating(min_nodes), settled_state(unneeded_since=unneeded)
    )
    assert actions(result) == expected


@pytest.mark.parametrize(
    ("movable", "min_nodes", "expected", "still_ours"),
    [
        (False, 7, [("power-off", "wn-4")], {"board-4"}),
        (False, 6, [("power-off", "wn-4"), ("power-off", "board-4")], set()),
        (False, 8, [], {"wn-4", "board-4"}),
        (True, 7, [("drain", "wn-4")], {"board-4"}),
        (True, 6, [("drain", "wn-4"), ("drain", "board-4")], set()),
        (True, 8, [], {"wn-4", "board-4"}),
    ],
)
def test_our_cordoned_workers_are_powered_off_or_drained_within_what_min_nodes_leaves(
    movable: bool, min_nodes: int, expected: list[tuple[str, str]], still_ours: set[str]
) -> None:
    def ours(name: str, template: NodeTemplate) -> NodeInfo:
        pods = (knative(f"{name}-web"),) if movable else ()
        return node(name, ON, *pods, cordoned=True, template=template, idle_since=None if movable else 900.0)

    nodes = (
        *(node(f"wn-{i}", ON, job(f"w{i}", 100)) for i in range(1, 4)),
        ours("wn-4", WN),
        *(node(f"board-{i}", ON, job(f"b{i}", 100), template=ARM) for i in range(1, 4)),
        ours("board-4", ARM),
    )
    unneeded = {"wn-4": 900.0, "board-4": 900.0}
    state = settled_state(cordoned_by_us=frozenset({"wn-4", "board-4"}), unneeded_since=unneeded)
    result = decide(ClusterSnapshot(now=1000.0, nodes=nodes), consolidating(min_nodes), state)
    assert actions(result) == expected
    assert result.state.cordoned_by_us == still_ours
    if movable:
        assert result.state.unneeded_since == unneeded


def test_every_empty_worker_we_cordoned_powers_off_and_the_warm_buffer_is_the_first_templates() -> None:
    nodes = (
        *(node(f"wn-{i}", ON, job(f"w{i}", 100)) for i in range(1, 5)),
        node("wn-5", ON, cordoned=True, idle_since=900.0),
        node("wn-6", ON, cordoned=True, idle_since=900.0),
        *(node(f"board-{i}", ON, job(f"b{i}", 100), template=ARM) for i in range(1, 5)),
    )
    state = settled_state(cordoned_by_us=frozenset({"wn-5", "wn-6"}))
    cfg = config(idle_time=60.0, templates=(WN, ARM), max_nodes=12, extra_nodes_free=1)
    result = decide(ClusterSnapshot(now=1000.0, nodes=nodes), cfg, state)
    # wn keeps 1 + 2 slack + the buffer: its 4 active workers; the boards keep 1 + 2 slack of 4.
    assert actions(result) == [("power-off", "wn-5"), ("power-off", "wn-6"), ("cordon", "board-1")]


def test_when_demand_rises_the_cordoned_worker_with_most_pods_comes_back_first() -> None:
    nodes = (
        node("wn-1", ON, job("w1", 100)),
        node("wn-2", ON, job("w2", 100)),
        node("wn-3", ON, job("w3", 100), cordoned=True),
        node("wn-4", ON, job("w4a", 100), job("w4b", 100), cordoned=True),
    )
    state = PolicyState(
        needed_history=((880.0, {"wn": 1}),), first_seen=0.0, cordoned_by_us=frozenset({"wn-3", "wn-4"})
    )
    result = decide(ClusterSnapshot(now=1000.0, nodes=nodes), config(idle_time=60.0), state)
    assert actions(result) == [("uncordon", "wn-4")]
    assert (result.state.cordoned_by_us, result.state.unneeded_since) == (frozenset({"wn-3"}), {"wn-3": 1000.0})


def test_min_equals_max_keeps_every_worker_on() -> None:
    cfg = config(min_nodes=2, max_nodes=2)
    nodes = (node("wn-1", ON, idle_since=0.0), node("wn-2", OFF))
    result = decide(ClusterSnapshot(now=10_000, nodes=nodes), cfg)
    assert actions(result) == [("power-on", "wn-2")]
    assert result.decisions[0].reason == "workers.min is 2; 1 running or booting"
    both = (node("wn-1", ON, idle_since=0.0), node("wn-2", ON, idle_since=0.0))
    assert actions(decide(ClusterSnapshot(now=10_000, nodes=both), cfg)) == []


def test_max_nodes_is_never_exceeded() -> None:
    cfg = config(max_nodes=2)
    nodes = (node("wn-1", ON, job("j", 1900)), node("wn-2", BOOTING, since=0.0), node("wn-3", OFF))
    result = decide(ClusterSnapshot(now=10, nodes=nodes, pending=(pending("a", 1900), pending("b", 1900))), cfg)
    assert actions(result) == []
    assert "1 pending pod(s) of 1900m CPU, 512Mi wait: max_nodes (2) reached" in result.notes


def test_max_concurrent_boots_limits_power_ons() -> None:
    cfg = config(max_concurrent_boots=2)
    nodes = (node("wn-1", BOOTING, since=0.0), *(node(f"wn-{i}", OFF) for i in range(2, 6)))
    pods = tuple(pending(f"p{i}", 1900) for i in range(4))
    result = decide(ClusterSnapshot(now=10, nodes=nodes, pending=pods), cfg)
    assert actions(result) == [("power-on", "wn-2")]
    assert "2 pending pod(s) of 1900m CPU, 512Mi wait: max_concurrent_boots (2) nodes are booting" in result.notes


def test_warm_buffer_keeps_extra_nodes_free() -> None:
    cfg = config(extra_nodes_free=1)
    result = decide(ClusterSnapshot(now=0, nodes=(node("wn-1", OFF), node("wn-2", OFF))), cfg)
    assert actions(result) == [("power-on", "wn-1")]
    assert result.decisions[0].reason == "keeping 1 idle worker(s) ready (extra_nodes_free); 0 idle now"
    two_idle = (node("wn-1", ON, idle_since=0.0), node("wn-2", ON, idle_since=10.0))
    assert actions(decide(ClusterSnapshot(now=1000, nodes=two_idle), cfg)) == [("power-off", "wn-1")]


def test_max_nodes_is_named_when_it_binds_even_with_a_boot_limit() -> None:
    cfg = config(max_nodes=2, max_concurrent_boots=5)
    nodes = (node("wn-1", ON, job("j", 1900)), node("wn-2", BOOTING, since=0.0), node("wn-3", OFF))
    result = decide(ClusterSnapshot(now=10, nodes=nodes, pending=(pending("a", 1900), pending("b", 1900))), cfg)
    assert "1 pending pod(s) of 1900m CPU, 512Mi wait: max_nodes (2) reached" in result.notes
    # The worker powered on this round fills max_nodes, though it also fills max_concurrent_boots.
    limit_both = config(max_nodes=2, max_concurrent_boots=1)
    nodes = (node("wn-1", ON, job("j", 1900)), node("wn-2", OFF), node("wn-3", OFF))
    pods = (pending("a", 1900), pending("b", 1900))
    both = decide(ClusterSnapshot(now=10, nodes=nodes, pending=pods), limit_both)
    assert (actions(both), both.notes) == (
        [("power-on", "wn-2")],
        ("1 pending pod(s) of 1900m CPU, 512Mi wait: max_nodes (2) reached",),
    )


def test_minimum_and_warm_buffer_count_the_workers_they_power_on() -> None:
    """min 2 with one idle worker: one more; the warm buffer of 4 counts both, then adds two."""
    nodes = (node("wn-1", ON, idle_since=0.0), *(node(f"wn-{i}", OFF) for i in range(2, 7)))
    result = decide(ClusterSnapshot(now=10, nodes=nodes), config(min_nodes=2, extra_nodes_free=4, max_nodes=6))
    assert actions(result) == [("power-on", "wn-2"), ("power-on", "wn-3"), ("power-on", "wn-4")]
    assert [d.reason for d in result.decisions] == [
        "workers.min is 2; 1 running or booting",
        "keeping 4 idle worker(s) ready (extra_nodes_free); 2 idle now",
        "keeping 4 idle worker(s) ready (extra_nodes_free); 3 idle now",
    ]
    minimum = decide(ClusterSnapshot(now=10, nodes=nodes), config(min_nodes=3, max_nodes=6))
    assert actions(minimum) == [("power-on", "wn-2"), ("power-on", "wn-3")]


def test_a_node_used_at_exactly_the_consolidation_threshold_is_not_drained() -> None:
    cfg = config(idle_time=60.0, consolidation_threshold=0.1)
    others = [node(f"wn-{i}", ON, job(f"j{i}", 600)) for i in (1, 2, 3)]
    light = node("wn-4", ON, knative("k1"))  # 200m of 2000m: exactly 10%
    _, decided = rounds((*others, light), cfg, 400)
    seen = [(d.action.value, d.node) for _, d in decided]
    assert ("drain", "wn-4") not in seen
    assert ("cordon", "wn-4") in seen


def test_why_pods_stay_pending_is_noted_per_cause() -> None:
    full = (node("wn-1", ON, job("j1", 1900)), node("wn-2", ON, job("j2", 1900)))
    two_labels = {ARCH_LABEL: "arm64", "zone": "a"}
    pods = (pending("a", 1900), pending("b", 5000), PendingPod("c", Resources.request(500, 512), 0.0, two_labels))
    result = decide(ClusterSnapshot(now=10, nodes=full, pending=pods), config(max_nodes=5))
    assert actions(result) == []
    assert set(result.notes) == {
        "1 pending pod(s) of 5000m CPU, 512Mi (no selector) fit no node template; they stay pending",
        "1 pending pod(s) of 1900m CPU, 512Mi wait: no powered-off node of a template that admits them is left",
        "1 pending pod(s) of 500m CPU, 512Mi (kubernetes.io/arch=arm64, zone=a) fit no node template; they stay "
        "pending",
    }


def test_the_warm_buffer_counts_a_booting_worker_and_stops_at_max_nodes() -> None:
    nodes = (node("wn-1", ON, idle_since=0.0), node("wn-2", BOOTING, since=5.0), node("wn-3", OFF), node("wn-4", OFF))
    result = decide(ClusterSnapshot(now=10, nodes=nodes), config(extra_nodes_free=3))
    assert actions(result) == [("power-on", "wn-3")]
    three_idle = (node("wn-1", ON, idle_since=0.0), *(node(f"wn-{i}", OFF) for i in (2, 3, 4)))
    result = decide(ClusterSnapshot(now=10, nodes=three_idle), config(extra_nodes_free=4, max_nodes=3))
    assert actions(result) == [("power-on", "wn-2"), ("power-on", "wn-3")]  # the workers powering on count
    at_max = (node("wn-1", ON, job("j", 1000)), node("wn-2", OFF))
    assert actions(decide(ClusterSnapshot(now=10, nodes=at_max), config(extra_nodes_free=1, max_nodes=1))) == []


def test_kueue_workloads_within_quota_are_demand() -> None:
    nodes = tuple(node(f"wn-{i}", OFF) for i in range(1, 5))
    workload = KueueWorkload("w1", "user-a", (PodSet(3, Resources.request(1000, 1024)),), created=5)
    snapshot = ClusterSnapshot(now=10, nodes=nodes, workloads=(workload,))
    assert actions(decide(snapshot, config())) == [("power-on", "wn-1"), ("power-on", "wn-2")]
    exact = ClusterSnapshot(
        now=10, nodes=nodes, workloads=(workload,), queue_headroom={"user-a": Resources(3000, 3072, UNBOUNDED)}
    )
    assert actions(decide(exact, config())) == [("power-on", "wn-1"), ("power-on", "wn-2")], "quota left = asked"
    held = ClusterSnapshot(now=10, nodes=nodes, workloads=(workload,), queue_headroom={"user-a": Resources(2000, 2048)})
    result = decide(held, config())
    assert actions(result) == []
    assert result.notes == ("1 Kueue workload(s) wait for quota, not for nodes; not counted as demand",)


def test_kueue_workloads_share_their_queues_quota_in_creation_order() -> None:
    """3000m of quota: w1 (2 x 1000m) fits, w2 (2 x 1000m) waits, w3 (1000m) takes the rest, w4 waits."""
    nodes = (node("wn-1", ON, idle_since=0.0), *(node(f"wn-{i}", OFF) for i in range(2, 6)))
    pods = PodSet(2, Resources.request(1000, 1024))
    one = PodSet(1, Resources.request(1000, 1024))
    workloads = (
        KueueWorkload("w4", "q", (one,), created=8),
        KueueWorkload("w1", "q", (pods,), created=5),
        KueueWorkload("w3", "q", (one,), created=7),
        KueueWorkload("w2", "q", (pods,), created=6),
    )
    headroom = {"q": Resources(3000, 3072, UNBOUNDED)}
    snapshot = ClusterSnapshot(now=10, nodes=nodes, workloads=workloads, queue_headroom=headroom)
    result = decide(snapshot, config())
    assert actions(result) == [("power-on", "wn-2")]  # two pods on the idle wn-1, the third on a new node
    assert result.notes == ("2 Kueue workload(s) wait for quota, not for nodes; not counted as demand",)


def test_pods_are_packed_per_arch_and_template() -> None:
    cfg = config(templates=(WN, ARM))
    nodes = (node("wn-1", OFF), node("board-1", OFF, template=ARM))
    result = decide(ClusterSnapshot(now=10, nodes=nodes, pending=(pending("a", arch="arm64"),)), cfg)
    assert actions(result) == [("power-on", "board-1")]
    amd = decide(ClusterSnapshot(now=10, nodes=nodes, pending=(pending("b", arch="amd64"),)), cfg)
    assert actions(amd) == [("power-on", "wn-1")]
    # Without a selector the cheapest template that fits wins.
    anyarch = decide(ClusterSnapshot(now=10, nodes=nodes, pending=(pending("c"),)), cfg)
    assert actions(anyarch) == [("power-on", "board-1")]
    nowhere = decide(ClusterSnapshot(now=10, nodes=nodes, pending=(pending("d", arch="riscv64"),)), cfg)
    assert actions(nowhere) == []
    assert nowhere.notes == (
        "1 pending pod(s) of 500m CPU, 512Mi (kubernetes.io/arch=riscv64) fit no node template; they stay pending",
    )


@pytest.mark.parametrize(("cpu", "booted"), [(360, False), (361, True)])
def test_young_pods_that_freed_room_will_hold_within_a_boot_do_not_boot_a_node(cpu: int, booted: bool) -> None:
    """720m and 720Mi freed over the last 360 s (2 x the boot estimate): 360m within the next 180 s."""
    nodes = (node("wn-1", ON, job("j", 2000)), node("wn-2", OFF))
    state = PolicyState(released=((900.0, 720, 720),), first_seen=0.0)
    pods = (pending("a", cpu, 256, created=990.0),)
    result = decide(ClusterSnapshot(now=1000.0, nodes=nodes, pending=pods), config(), state)
    assert actions(result) == ([("power-on", "wn-2")] if booted else [])
    if not booted:
        assert result.notes == (
            "1 pending pod(s) should start within 180s as running pods finish, before a new node could be Ready; "
            "a node is booted for them if they still wait after 60s",
        )


@pytest.mark.parametrize(
    ("first_seen", "released", "requests", "booted"),
    [
        # 360m and 720Mi freed over the 360 s window (2 x the boot estimate): 180m and 360Mi within a boot
        (0.0, ((900.0, 360, 720),), (180, 360), False),
        (0.0, ((900.0, 360, 720),), (181, 360), True),
        (0.0, ((900.0, 360, 720),), (180, 361), True),
        # a release at exactly the window's start still counts, one a second older does not
        (0.0, ((640.0, 360, 720),), (180, 360), False),
        (0.0, ((639.0, 360, 720),), (180, 360), True),
        # watched for 100 s only: the rate is over those 100 s
        (900.0, ((950.0, 100, 200),), (180, 360), False),
        # watched for 1 s: a rate; for 0 s: none
        (999.0, ((1000.0, 1, 2),), (180, 360), False),
        (1000.0, ((1000.0, 1, 2),), (180, 360), True),
    ],
)
def test_the_rate_running_pods_free_room_at_is_measured_over_the_window_and_what_was_seen(
    first_seen: float, released: tuple[tuple[float, int, int], ...], requests: tuple[int, int], booted: bool
) -> None:
    nodes = (node("wn-1", ON, job("j", 2000)), node("wn-2", OFF))
    state = PolicyState(released=released, first_seen=first_seen)
    pods = (pending("a", *requests, created=990.0),)
    result = decide(ClusterSnapshot(now=1000.0, nodes=nodes, pending=pods), config(), state)
    assert actions(result) == ([("power-on", "wn-2")] if booted else [])


@pytest.mark.parametrize(("released_at", "booted"), [(920.0, False), (919.0, True)])
def test_the_release_window_is_four_periods_when_that_is_longer_than_two_boots(
    released_at: float, booted: bool
) -> None:
    """A 30 s boot and a 20 s period: the window is 80 s, so 80m freed in it is 1m/s, 30m within a boot."""
    nodes = (node("wn-1", ON, job("j", 2000)), node("wn-2", OFF))
    state = PolicyState(released=((released_at, 80, 160),), first_seen=0.0)
    cfg = config(boot_time_estimate=30.0, period=20.0)
    result = decide(
        ClusterSnapshot(now=1000.0, nodes=nodes, pending=(pending("a", 30, 60, created=990.0),)), cfg, state
    )
    assert actions(result) == ([("power-on", "wn-2")] if booted else [])


def test_pods_that_finished_since_the_last_round_are_released_room_summed() -> None:
    state = PolicyState(running={"a": (500, 512), "b": (300, 256), "c": (0, 128)}, first_seen=0.0)
    nodes = (node("wn-1", ON, job("b", 300, 256)),)
    result = decide(ClusterSnapshot(now=100.0, nodes=nodes), config(), state)
    assert (result.state.released, result.state.running) == (((100.0, 500, 640),), {"b": (300, 256)})
    assert decide(ClusterSnapshot(now=120.0, nodes=nodes), config(), result.state).state.released == (
        (100.0, 500, 640),
    ), "nothing finished: nothing released"
    memory_only = PolicyState(running={"c": (0, 128)}, first_seen=0.0)
    assert decide(ClusterSnapshot(now=100.0, nodes=nodes), config(), memory_only).state.released == ((100.0, 0, 128),)


LATELY = (30.0, 34.0, 36.0, 40.0, 900.0)  # how long the latest jobs ran: a median of 36 s
TWO_JOBS = (job("j1", 1000), job("j2", 1000))


def young_pod_beside(
    running: tuple[PodInfo, ...] = TWO_JOBS,
    durations: tuple[float, ...] = LATELY,
    created: float = 990.0,
    holder: NodeTemplate = WN,
    cordoned: bool = False,
) -> PolicyResult:
    """At t=1000 a pod created at `created` fits only on a new wn node; the ready node wn-1 (of `holder`) runs
    `running`; no room was released lately, so only the jobs' run times can keep the pod from booting wn-2."""
    nodes = (node("wn-1", ON, *running, template=holder, cordoned=cordoned), node("wn-2", OFF))
    started = {p.name: 900.0 for p in running if not p.interruptible}
    state = PolicyState(first_seen=0.0, job_durations=durations, job_started=started)
    snapshot = ClusterSnapshot(now=1000.0, nodes=nodes, pending=(pending("a", 500, 512, created=created),))
    return decide(snapshot, config(templates=(WN,) if holder is WN else (WN, holder)), state)


def test_a_young_pod_waits_for_a_job_that_should_end_within_a_tenth_of_a_boot() -> None:
    """A median of 36 s over 2 jobs: one should end within 18 s, a tenth of the 180 s boot."""
    result = young_pod_beside()
    assert actions(result) == []
    assert result.notes == (
        "1 pending pod(s) wait for a job to end on a ready node that can hold them: jobs here lately ran 36s "
        "(median of 5), so with the jobs running there one should end within 18s; a node is booted for them if "
        "they still wait after 60s",
    )
    assert actions(young_pod_beside(cordoned=True)) == [("power-on", "wn-2")], "a cordoned node takes no pod"


@pytest.mark.parametrize(
    ("durations", "booted"),
    [
        (LATELY, False),
        ((30.0, 34.0, 36.01, 40.0, 900.0), True),  # 18.005 s: beyond a tenth of a boot
        (LATELY[:4], True),  # 4 jobs ended: too few to tell how long jobs run
        ((0.0,) + (36.0, 37.0) * 25, True),  # the latest 50 (median 36.5 s) count, not the oldest
    ],
)
def test_how_long_jobs_run_is_the_median_of_the_latest_fifty_once_five_ended(
    durations: tuple[float, ...], booted: bool
) -> None:
    assert actions(young_pod_beside(durations=durations)) == ([("power-on", "wn-2")] if booted else [])


@pytest.mark.parametrize(
    ("running", "created", "holder", "booted"),
    [
        ((job("j1", 2000),), 990.0, WN, True),  # one job of 36 s should end in 36 s, not within 18 s
        ((job("j1", 1000), knative("k1", 1000)), 990.0, WN, True),  # jobs end; services do not
        (TWO_JOBS, 939.0, WN, True),  # pending for longer than reconsider_job_time: it gets a node
        (TWO_JOBS, 940.0, WN, False),
        (TWO_JOBS, 990.0, NodeTemplate("big", "amd64", Resources.node(2000, 4096)), True),  # another template
    ],
)
def test_only_jobs_on_ready_nodes_of_the_template_that_could_hold_the_pod_are_waited_for(
    running: tuple[PodInfo, ...], created: float, holder: NodeTemplate, booted: bool
) -> None:
    result = young_pod_beside(running, created=created, holder=holder)
    assert actions(result) == ([("power-on", "wn-2")] if booted else [])


def test_a_node_that_could_not_hold_the_pod_even_empty_is_not_waited_on() -> None:
    """A wn node whose kubelet keeps more back: 400m allocatable, less than the pending pod's 500m."""
    small = dataclasses.replace(node("wn-1", ON, job("j1", 200), job("j2", 200)), allocatable=Resources.node(400, 4096))
    state = PolicyState(first_seen=0.0, job_durations=LATELY, job_started={"j1": 900.0, "j2": 900.0})
    snapshot = ClusterSnapshot(now=1000.0, nodes=(small, node("wn-2", OFF)), pending=(pending("a", created=990.0),))
    assert actions(decide(snapshot, config(), state)) == [("power-on", "wn-2")]


def test_job_run_times_are_measured_from_when_each_job_was_first_seen_running() -> None:
    def look(now: float, *pods: PodInfo, state: PolicyState | None = None) -> PolicyState:
        return decide(ClusterSnapshot(now=now, nodes=(node("wn-1", ON, *pods),)), config(), state).state

    first = look(0.0, job("old"))
    assert first.job_started == {}, "running before the first look: its start is unknown"
    second = look(20.0, job("old"), job("new"), knative("k"), state=first)
    assert second.job_started == {"new": 20.0}, "a service pod is no job"
    third = look(40.0, job("new"), state=second)
    assert (third.job_started, third.job_durations) == ({"new": 20.0}, ()), "how long the old job ran is unknown"
    fourth = look(95.0, state=third)
    assert (fourth.job_started, fourth.job_durations) == ({}, (75.0,))
    full = PolicyState(first_seen=0.0, job_started={"last": 50.0}, job_durations=tuple(float(n) for n in range(50)))
    assert look(100.0, state=full).job_durations == (*(float(n) for n in range(1, 50)), 50.0), "the latest 50 kept"


def test_pods_on_a_worker_that_drops_out_of_ready_have_not_ended() -> None:
    pods = (job("j", 300, 256), job("old", 400, 512), knative("k", 500, 1024))

    def look(now: float, power: PowerState, state: PolicyState) -> PolicyState:
        return decide(ClusterSnapshot(now=now, nodes=(node("wn-1", power, *pods),)), config(), state).state

    seen = {"j": (300, 256), "old": (400, 512), "k": (500, 1024)}
    known = PolicyState(first_seen=0.0, running=seen, job_started={"j": 20.0})
    away = look(100.0, BOOTING, known)
    assert (away.running, away.released) == (seen, ()), "their room was not freed"
    assert (away.job_started, away.job_durations) == ({"j": 20.0}, ())
    back = look(200.0, ON, away)
    assert (back.job_started, back.job_durations, back.released) == ({"j": 20.0}, (), ())
    assert "old" not in back.job_started, "running before the first look: its start is still unknown"
    gone = decide(ClusterSnapshot(now=300.0, nodes=(node("wn-1", OFF),)), config(), back).state
    assert (gone.job_started, gone.job_durations) == ({}, (280.0,)), "no longer bound to any node: ended"
    assert (gone.running, gone.released) == ({}, ((300.0, 1200, 1792),))
    unseen = look(400.0, BOOTING, gone)
    assert (unseen.running, unseen.job_started) == ({}, {}), "pods first seen on a node not Ready are not counted"


@pytest.mark.parametrize(
    ("headroom", "held"),
    [
        (Resources(1200, 2048, 2), False),
        (Resources(1199, 2048, 2), True),
        (Resources(1200, 2047, 2), True),
        (Resources(1200, 2048, 1), True),
    ],
)
def test_a_kueue_workload_needs_quota_for_every_pod_of_its_pod_sets(headroom: Resources, held: bool) -> None:
    gpu_node = NodeTemplate("gpu", "amd64", Resources.node(4000, 8192, gpu=2))
    workloads = (KueueWorkload("w", "q", (PodSet(2, Resources.request(600, 1024, gpu=1)),), created=5),)
    nodes = (node("gpu-1", OFF, template=gpu_node),)
    snapshot = ClusterSnapshot(now=10, nodes=nodes, workloads=workloads, queue_headroom={"q": headroom})
    result = decide(snapshot, config(templates=(gpu_node,)))
    assert actions(result) == ([] if held else [("power-on", "gpu-1")])
    assert result.notes == (
        ("1 Kueue workload(s) wait for quota, not for nodes; not counted as demand",) if held else ()
    )


def test_pods_pending_too_long_and_young_ones_share_the_powered_off_workers() -> None:
    nodes = tuple(node(f"wn-{i}", OFF) for i in range(1, 4))
    pods = (pending("late", 2000, created=0.0), *(pending(f"young-{i}", 2000, created=95.0) for i in range(3)))
    result = decide(ClusterSnapshot(now=100.0, nodes=nodes, pending=pods), config())
    assert actions(result) == [("power-on", "wn-1"), ("power-on", "wn-2"), ("power-on", "wn-3")]
    assert result.notes == (
        "1 pending pod(s) of 2000m CPU, 512Mi wait: no powered-off node of a template that admits them is left",
    )
    limited = decide(ClusterSnapshot(now=100.0, nodes=nodes, pending=pods[:3]), config(max_nodes=2))
    assert actions(limited) == [("power-on", "wn-1"), ("power-on", "wn-2")]
    assert limited.notes == ("1 pending pod(s) of 2000m CPU, 512Mi wait: max_nodes (2) reached",)


def test_pressure_is_pending_demand_the_ready_nodes_do_not_take() -> None:
    """Consolidation waits a window after the last pressure; pods that ready nodes take are none."""
    ready = (node("wn-1", ON, idle_since=0.0), node("wn-2", OFF))
    fits = decide(ClusterSnapshot(now=50, nodes=ready, pending=(pending("a"),)), config())
    assert (actions(fits), fits.state.pressure_at) == ([], None)
    booting = (node("wn-1", BOOTING, since=0.0), node("wn-2", OFF))
    on_boot = decide(ClusterSnapshot(now=50, nodes=booting, pending=(pending("a"),)), config())
    assert (actions(on_boot), on_boot.state.pressure_at) == ([], 50.0)
    for created in (0.0, -100.0):  # young, then pending past reconsider_job_time
        nowhere = decide(ClusterSnapshot(now=50, nodes=ready, pending=(pending("b", 5000, created=created),)), config())
        assert nowhere.state.pressure_at == 50.0


def test_a_booting_node_a_pending_pod_waits_for_is_not_the_warm_buffer() -> None:
    nodes = (node("wn-1", BOOTING, since=0.0), node("wn-2", OFF))
    result = decide(ClusterSnapshot(now=50, nodes=nodes, pending=(pending("a"),)), config(extra_nodes_free=1))
    assert actions(result) == [("power-on", "wn-2")]


def test_needed_nodes_count_every_pod_on_every_node_in_its_template() -> None:
    gpu = NodeTemplate("gpu", "amd64", Resources.node(2000, 4096), {"accelerator": "yes"}, cost_per_hour=3.0)
    nodes = (
        node("wn-1", ON, idle_since=0.0),
        node("wn-2", ON, job("a", 1500), knative("web", 100)),
        node("wn-3", ON, job("b", 1500)),
        node("gpu-1", ON, job("c", 1500), template=gpu),
    )
    result = decide(ClusterSnapshot(now=100.0, nodes=nodes), config(templates=(WN, gpu)))
    assert result.state.needed_history == ((100.0, {"wn": 2, "gpu": 1}),)


def test_needed_nodes_count_every_pending_pod() -> None:
    nodes = (node("wn-1", ON, job("a", 1500)),)
    pods = (pending("b", 1500), pending("c", 1500))
    result = decide(ClusterSnapshot(now=100.0, nodes=nodes, pending=pods), config())
    assert result.state.needed_history == ((100.0, {"wn": 3}),)


@pytest.mark.parametrize(
    ("requests", "released"),
    [
        # two new nodes' worth of CPU (4000m) when the rate frees 3600m within a boot
        ((2000, 512), (900.0, 7200, 14400)),
        # the same for memory: 2 x 2100Mi against 3600Mi within a boot
        ((1100, 2100), (900.0, 14400, 7200)),
    ],
)
def test_young_pods_are_weighed_against_the_freed_room_on_all_the_new_nodes_together(
    requests: tuple[int, int], released: tuple[float, int, int]
) -> None:
    nodes = (node("wn-1", ON, job("j", 2000)), node("wn-2", OFF), node("wn-3", OFF))
    state = PolicyState(released=(released,), first_seen=0.0)
    pods = (pending("a", *requests, created=990.0), pending("b", *requests, created=990.0))
    result = decide(ClusterSnapshot(now=1000.0, nodes=nodes, pending=pods), config(), state)
    assert actions(result) == [("power-on", "wn-2"), ("power-on", "wn-3")]


@pytest.mark.parametrize(("now", "sampled"), [(109.0, False), (110.0, True)])
def test_needed_nodes_are_sampled_once_a_period_and_kept_for_the_window(now: float, sampled: bool) -> None:
    """idle_time 300 s: the window is 600 s, so a sample at exactly now - 600 s is kept."""
    nodes = (node("wn-1", ON, job("a", 1500)),)
    state = PolicyState(needed_history=((now - 600.0, {"wn": 3}), (90.0, {"wn": 2})), first_seen=0.0)
    result = decide(ClusterSnapshot(now=now, nodes=nodes), config(), state)
    assert result.state.needed_history == (
        (now - 600.0, {"wn": 3}),
        (90.0, {"wn": 2}),
        *([(now, {"wn": 1})] if sampled else []),
    )


def test_the_most_loaded_ready_node_takes_a_pending_pod_so_an_idle_one_stays_the_warm_buffer() -> None:
    nodes = (node("wn-1", ON, idle_since=0.0), node("wn-2", ON, job("j", 1000)), node("wn-3", OFF))
    result = decide(ClusterSnapshot(now=10, nodes=nodes, pending=(pending("a"),)), config(extra_nodes_free=1))
    assert actions(result) == []


def test_a_pod_pending_past_reconsider_job_time_gets_a_new_node() -> None:
    nodes = (node("wn-1", ON, job("j", 1000)), node("wn-2", OFF))
    fresh = decide(ClusterSnapshot(now=40, nodes=nodes, pending=(pending("a", created=10),)), config())
    assert actions(fresh) == []  # it fits wn-1's free space: the scheduler will place it
    at_limit = decide(ClusterSnapshot(now=70, nodes=nodes, pending=(pending("a", created=10),)), config())
    assert actions(at_limit) == []  # pending exactly reconsider_job_time: not late yet
    late = decide(ClusterSnapshot(now=71, nodes=nodes, pending=(pending("a", created=10),)), config())
    assert actions(late) == [("power-on", "wn-2")]


def test_an_administrators_cordon_is_left_alone() -> None:
    nodes = (node("wn-1", ON, cordoned=True, idle_since=0.0), node("wn-2", OFF))
    result = decide(ClusterSnapshot(now=10_000, nodes=nodes, pending=(pending("a"),)), config())
    assert actions(result) == [("power-on", "wn-2")]


def test_our_cordoned_node_is_reused_before_booting_a_new_one() -> None:
    state = PolicyState(cordoned_by_us=frozenset({"wn-1"}))
    nodes = (node("wn-1", ON, job("j", 500), cordoned=True), node("wn-2", OFF))
    result = decide(ClusterSnapshot(now=10, nodes=nodes, pending=(pending("a"),)), config(), state)
    assert actions(result) == [("uncordon", "wn-1")]
    assert result.decisions[0].reason == "1 pending pod(s) fit here; reusing it before booting"
    assert result.state.cordoned_by_us == frozenset()


def test_flapping_demand_does_not_cycle_power() -> None:
    """Short jobs arriving every 200 s (less than idle_time) keep one node on; nothing is powered off."""
    cfg = config(idle_time=300.0)
    state = PolicyState()
    power_offs = 0
    power_ons = 0
    for now in range(0, 7200, 20):
        phase = now % 200
        if phase < 20:
            nodes = (node("wn-1", ON, job("j", 500), since=0), node("wn-2", OFF))
        else:
            nodes = (node("wn-1", ON, since=0, idle_since=float(now - phase + 20)), node("wn-2", OFF))
        result = decide(ClusterSnapshot(now=float(now), nodes=nodes), cfg, state)
        state = result.state
        power_offs += sum(d.action is Action.POWER_OFF for d in result.decisions)
        power_ons += sum(d.action is Action.POWER_ON for d in result.decisions)
    assert (power_ons, power_offs) == (0, 0)


def test_cordon_is_not_undone_and_redone_each_period() -> None:
    """Load oscillating between low and high every period changes the cordons at most once per window."""
    cfg = config(idle_time=120.0)
    state = PolicyState()
    changes = []
    for now in range(0, 1200, 20):
        heavy = (now // 20) % 2 == 0
        pods = [job(f"j{i}", 1800 if heavy else 200) for i in range(4)]
        nodes = tuple(
            node(f"wn-{i + 1}", ON, pods[i], cordoned=f"wn-{i + 1}" in state.cordoned_by_us) for i in range(4)
        )
        result = decide(ClusterSnapshot(now=float(now), nodes=nodes), cfg, state)
        state = result.state
        changes += [(now, d.action) for d in result.decisions]
    assert changes == []  # the peak over the window always needs all four nodes
