"""The benchmark's baselines as their anchors document them: static-max, CLUES (as deployed for OSCAR and with
upstream defaults), Cluster-Autoscaler-like, Karpenter-like, the oracle, and the controller of our policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import FrozenInstanceError, replace

import pytest

from oscar_deploy.autoscaler.baselines import (
    ALWAYS_ON,
    CLUES_OSCAR,
    CLUES_UPSTREAM,
    OURS,
    POLICIES,
    REFERENCE,
    Clues,
    ClusterAutoscalerLike,
    KarpenterLike,
    Oracle,
    PolicyController,
    StaticMax,
    policy_config,
)
from oscar_deploy.autoscaler.model import (
    ClusterSnapshot,
    Decision,
    NodeInfo,
    NodeTemplate,
    PendingPod,
    PodInfo,
    PowerState,
    Resources,
)
from oscar_deploy.autoscaler.policy import decide
from oscar_deploy.autoscaler.simulator import Job, NodePool, Scenario
from tests.unit.autoscaler.test_policy import ARM, WN, config, job, knative, node, pending

OFF, ON, BOOTING = PowerState.OFF, PowerState.ON, PowerState.BOOTING
STOPPING, FAILED = PowerState.STOPPING, PowerState.FAILED
BIG = NodeTemplate("big", "amd64", Resources.node(4000, 8192))


def snap(now: float, *nodes: NodeInfo, pods: Sequence[PendingPod] = ()) -> ClusterSnapshot:
    return ClusterSnapshot(now=now, nodes=tuple(nodes), pending=tuple(pods))


def said(decisions: Sequence[Decision]) -> list[tuple[str, str, str]]:
    return [(d.action.value, d.node, d.reason) for d in decisions]


def acts(decisions: Sequence[Decision]) -> list[tuple[str, str]]:
    return [(d.action.value, d.node) for d in decisions]


def scenario(*pools: NodePool, jobs: Sequence[Job] = (), min_nodes: int = 0) -> Scenario:
    return Scenario("unit", "hand-built", pools, tuple(jobs), min_nodes=min_nodes)


def offs(count: int, template: NodeTemplate = WN, first: int = 1) -> list[NodeInfo]:
    return [node(f"{template.name}-{i}", OFF, template=template) for i in range(first, first + count)]


# Registry, static-max, ours ------------------------------------------------------------------------------------


def test_the_registry_names_each_policy_with_its_knob_default_and_sweep() -> None:
    table = {name: (e.knob, e.default, e.sweep) for name, e in POLICIES.items()}
    assert table == {
        "static-max": ("", None, ()),
        "clues-oscar": ("IDLE_TIME", 300.0, (60.0, 120.0, 300.0, 600.0, 1800.0)),
        "clues-upstream": ("IDLE_TIME", 1800.0, (60.0, 120.0, 300.0, 600.0, 1800.0)),
        "ca-evict": ("scale-down-unneeded-time", 600.0, (60.0, 120.0, 300.0, 600.0)),
        "ca-safe": ("scale-down-unneeded-time", 600.0, (60.0, 120.0, 300.0, 600.0)),
        "karpenter": ("consolidateAfter", 0.0, (0.0, 30.0, 300.0)),
        "karpenter-dnd": ("consolidateAfter", 0.0, (0.0, 30.0, 300.0)),
        "oracle": ("", None, ()),
        "oscar-deploy": ("idle_time", 300.0, (60.0, 120.0, 180.0, 300.0, 600.0, 900.0)),
    }
    assert (OURS, REFERENCE, ALWAYS_ON) == ("oscar-deploy", "clues-oscar", "static-max")
    built = scenario(NodePool(WN, 2))
    assert {name: e.build(built, None).name for name, e in POLICIES.items()} == {name: name for name in POLICIES}


def test_the_clues_settings_and_registry_entries_cannot_be_changed_in_place() -> None:
    with pytest.raises(FrozenInstanceError):
        CLUES_OSCAR.idle_time = 60.0  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        POLICIES["clues-oscar"].default = 60.0  # type: ignore[misc]


def test_each_builder_sets_the_policys_knob_or_keeps_its_default() -> None:
    built = scenario(NodePool(WN, 2))
    assert POLICIES["clues-oscar"].build(built, None).s == CLUES_OSCAR
    assert POLICIES["clues-oscar"].build(built, 60.0).s == replace(CLUES_OSCAR, idle_time=60.0)
    assert POLICIES["clues-upstream"].build(built, None).s == CLUES_UPSTREAM
    assert POLICIES["clues-upstream"].build(built, 120.0).s == replace(CLUES_UPSTREAM, idle_time=120.0)
    assert POLICIES["ca-evict"].build(built, None).unneeded_time == 600.0
    assert POLICIES["ca-safe"].build(built, 60.0).unneeded_time == 60.0
    assert POLICIES["karpenter"].build(built, None).consolidate_after == 0.0
    assert POLICIES["karpenter-dnd"].build(built, 30.0).consolidate_after == 30.0
    assert POLICIES["oscar-deploy"].build(built, None).config == policy_config(built)
    assert POLICIES["oscar-deploy"].build(built, 600.0).config == policy_config(built, idle_time=600.0)


def test_static_max_starts_every_worker_and_never_decides() -> None:
    static = StaticMax()
    assert (static.starts_all_on, static.observe_every, static.decide_every, static.reaction_delay) == (
        True,
        3600.0,
        3600.0,
        None,
    )
    assert static.decide(snap(0.0, node("wn-1", ON), pods=[pending("a")]), 0.0) == ()


def test_policy_config_takes_the_scenarios_limits_and_its_slowest_pools_median_boot_as_measured() -> None:
    pools = (NodePool(WN, 2, boot_median=120.0), NodePool(ARM, 3, boot_median=240.0))
    cfg = policy_config(scenario(*pools, min_nodes=1))
    assert (cfg.templates, cfg.min_nodes, cfg.max_nodes) == ((WN, ARM), 1, 5)
    assert (cfg.idle_time, cfg.period, cfg.boot_time_estimate, cfg.boot_time_measured) == (300.0, 20.0, 240.0, True)
    tuned = policy_config(scenario(*pools), idle_time=60.0, period=10.0)
    assert (tuned.idle_time, tuned.period) == (60.0, 10.0)


def test_our_controller_runs_the_policy_every_period_and_carries_its_state() -> None:
    cfg = config(period=30.0, reaction_delay=2.0)
    ours = PolicyController(cfg)
    assert (ours.name, ours.observe_every, ours.decide_every, ours.reaction_delay, ours.starts_all_on) == (
        "oscar-deploy",
        30.0,
        30.0,
        2.0,
        False,
    )
    first = snap(0.0, *offs(2), pods=[pending("a")])
    expected = decide(first, cfg)
    assert ours.decide(first, 0.0) == expected.decisions
    assert ours.state == expected.state
    later = snap(30.0, node("wn-1", BOOTING, since=0.0), node("wn-2", OFF), pods=[pending("a")])
    assert ours.decide(later, 30.0) == decide(later, cfg, expected.state).decisions
    assert PolicyController(cfg, name="tuned").name == "tuned"


# CLUES ---------------------------------------------------------------------------------------------------------


def test_clues_settings_are_the_anchors_defaults() -> None:
    oscar, upstream = CLUES_OSCAR, CLUES_UPSTREAM
    assert (oscar.name, oscar.monitoring_period, oscar.idle_time, oscar.max_booting_nodes) == (
        "clues-oscar",
        20.0,
        300.0,
        0,
    )
    assert (oscar.max_wait_poweron, oscar.extra_nodes_free, oscar.schedule_period) == (3000.0, 0, 5.0)
    assert (oscar.reconsider_job_time, oscar.extra_nodes_period, oscar.cooldown_served_requests) == (60.0, 30.0, 120.0)
    assert (upstream.name, upstream.monitoring_period, upstream.idle_time, upstream.max_booting_nodes) == (
        "clues-upstream",
        5.0,
        1800.0,
        2,
    )
    assert (upstream.max_wait_poweron, upstream.extra_nodes_free) == (300.0, 0)
    clues = Clues(CLUES_OSCAR, (WN,))
    assert (clues.observe_every, clues.decide_every, clues.reaction_delay, clues.starts_all_on) == (
        20.0,
        5.0,
        None,
        False,
    )


def test_clues_requests_a_node_only_once_a_pod_has_been_seen_pending_over_60s() -> None:
    clues = Clues(CLUES_OSCAR, (WN,))
    seen = snap(20.0, node("wn-2", OFF), node("wn-1", OFF), pods=[pending("a", cpu=1500, created=-500.0)])
    assert clues.decide(seen, 20.0) == []
    assert clues.decide(seen, 80.0) == []
    assert said(clues.decide(seen, 81.0)) == [("power-on", "wn-1", "request")]
    assert clues.decide(seen, 86.0) == []  # the request is attended: no second node for it


def test_clues_powers_on_the_first_off_node_by_name_that_admits_and_fits_the_pod() -> None:
    nodes = (*offs(1, WN), *offs(1, ARM))
    clues = Clues(CLUES_OSCAR, (WN, ARM))
    seen = snap(0.0, *nodes, pods=[pending("big", cpu=3000), pending("x86", arch="amd64")])
    assert acts(clues.decide(seen, 61.0)) == [("power-on", "board-1"), ("power-on", "wn-1")]


def test_clues_serves_requests_in_fifo_order_and_one_that_fits_nowhere_blocks_the_rest() -> None:
    clues = Clues(CLUES_OSCAR, (WN,))
    seen = snap(0.0, *offs(3), pods=[pending("huge", cpu=5000), pending("small")])
    assert clues.decide(seen, 61.0) == []
    assert clues.decide(seen, 300.0) == []


def test_clues_books_room_on_ready_and_booting_nodes_before_powering_on_another() -> None:
    clues = Clues(CLUES_OSCAR, (WN,))
    pods = [pending(name, cpu=1000) for name in "abcde"]
    seen = snap(0.0, node("wn-1", ON), *offs(3, first=2), pods=pods)
    # a and b fill the ready wn-1; c boots wn-2 and d takes its other half; e boots wn-3.
    assert acts(clues.decide(seen, 61.0)) == [("power-on", "wn-2"), ("power-on", "wn-3")]


def test_clues_counts_a_booting_node_with_its_templates_room_and_skips_stopping_nodes() -> None:
    clues = Clues(CLUES_OSCAR, (WN,))
    nodes = (node("wn-1", BOOTING), node("wn-2", STOPPING), node("wn-3", FAILED), node("wn-4", OFF))
    seen = snap(0.0, *nodes, pods=[pending(name, cpu=1000) for name in "abc"])
    assert acts(clues.decide(seen, 61.0)) == [("power-on", "wn-3")]  # a failed boot (OFF_ERR) may be retried


def test_clues_judges_a_node_with_a_template_by_the_templates_room_not_what_it_reports() -> None:
    booting = replace(node("wn-1", BOOTING), allocatable=Resources())
    off = [replace(n, allocatable=Resources()) for n in offs(2, first=2)]
    clues = Clues(CLUES_OSCAR, (WN,))
    seen = snap(0.0, booting, *off, pods=[pending("a", cpu=2000), pending("b", cpu=2000)])
    assert acts(clues.decide(seen, 61.0)) == [("power-on", "wn-2")]


def test_clues_without_a_template_uses_the_nodes_own_room_and_only_for_pods_without_selector() -> None:
    bare = NodeInfo("vnode-1", "amd64", Resources.node(3000, 4096), OFF)
    booting = NodeInfo("vnode-0", "amd64", Resources.node(1000, 4096), BOOTING)
    clues = Clues(CLUES_OSCAR, ())
    seen = snap(0.0, booting, bare, pods=[pending("a", cpu=2500), pending("b", cpu=1000), pending("c", arch="amd64")])
    assert acts(clues.decide(seen, 61.0)) == [("power-on", "vnode-1")]


def test_clues_upstream_boots_at_most_two_nodes_at_a_time() -> None:
    clues = Clues(CLUES_UPSTREAM, (WN,))
    seen = snap(0.0, *offs(4), pods=[pending(name, cpu=1500) for name in "abc"])
    assert acts(clues.decide(seen, 61.0)) == [("power-on", "wn-1"), ("power-on", "wn-2")]
    assert clues.decide(seen, 66.0) == []
    already = Clues(CLUES_UPSTREAM, (WN,))
    seen = snap(0.0, node("wn-0", BOOTING, job("x", cpu=2000)), *offs(3), pods=[pending(n, cpu=1500) for n in "ab"])
    assert acts(already.decide(seen, 61.0)) == [("power-on", "wn-1")]


def test_clues_stops_serving_requests_once_max_booting_nodes_is_reached() -> None:
    """Even a later request that a ready node could take waits, so that node stays idle to CLUES."""
    clues = Clues(replace(CLUES_OSCAR, max_booting_nodes=1), (WN, BIG))
    nodes = (node("wn-0", BOOTING), node("wn-1", ON), node("big-1", OFF, template=BIG))
    seen = snap(0.0, *nodes, pods=[pending("a", cpu=3000), pending("b", cpu=500)])
    assert acts(clues.decide(seen, 301.0)) == [("power-off", "wn-1")]


def test_clues_oscar_does_not_limit_boots() -> None:
    clues = Clues(CLUES_OSCAR, (WN,))
    seen = snap(0.0, *offs(4), pods=[pending(name, cpu=1500) for name in "abc"])
    assert acts(clues.decide(seen, 61.0)) == [("power-on", "wn-1"), ("power-on", "wn-2"), ("power-on", "wn-3")]


def test_clues_powers_off_a_node_only_after_it_was_seen_empty_for_over_idle_time() -> None:
    clues = Clues(CLUES_OSCAR, (WN,))
    clues.decide(snap(0.0, node("wn-1", ON), node("wn-2", ON, job("j"))), 0.0)
    later = snap(20.0, node("wn-1", ON), node("wn-2", ON, idle_since=0.0), node("wn-3", ON, job("k")))
    assert clues.decide(later, 300.0) == []
    assert said(clues.decide(later, 301.0)) == [("power-off", "wn-1", "IDLE for over IDLE_TIME (300s)")]
    assert clues.decide(later, 320.0) == []
    assert acts(clues.decide(later, 321.0)) == [("power-off", "wn-2")]
    assert clues.decide(later, 3600.0) == []


def test_clues_idle_time_is_its_knob() -> None:
    clues = POLICIES["clues-oscar"].build(scenario(NodePool(WN, 1)), 60.0)
    clues.decide(snap(0.0, node("wn-1", ON)), 0.0)
    assert clues.decide(snap(0.0, node("wn-1", ON)), 60.0) == []
    assert said(clues.decide(snap(0.0, node("wn-1", ON)), 61.0)) == [
        ("power-off", "wn-1", "IDLE for over IDLE_TIME (60s)")
    ]


def test_clues_keeps_a_served_requests_room_booked_for_120s() -> None:
    def second_request(now: float) -> list[tuple[str, str]]:
        clues = Clues(CLUES_OSCAR, (WN,))
        assert clues.decide(snap(0.0, node("wn-1", ON), node("wn-2", OFF), pods=[pending("a", cpu=1500)]), 61.0) == []
        later = snap(80.0, node("wn-1", ON), node("wn-2", OFF), pods=[pending("b", cpu=1500)])
        clues.decide(later, 80.0)
        return acts(clues.decide(later, now))

    assert second_request(180.0) == [("power-on", "wn-2")]
    assert second_request(181.0) == []


def test_clues_forgets_a_served_request_at_the_first_look_120s_after_and_then_powers_its_node_off() -> None:
    def idle_check(looked_at: float) -> list[tuple[str, str]]:
        clues = Clues(CLUES_OSCAR, (WN,))
        assert clues.decide(snap(0.0, node("wn-1", ON), pods=[pending("a")]), 61.0) == []
        return acts(clues.decide(snap(looked_at, node("wn-1", ON)), 301.0))

    assert idle_check(180.0) == []  # the booked node is not idle for CLUES yet
    assert idle_check(181.0) == [("power-off", "wn-1")]


def test_clues_forgets_a_served_request_after_the_cooldown_even_while_its_pod_is_pending() -> None:
    clues = Clues(CLUES_OSCAR, (WN,))
    first = snap(0.0, node("wn-0", ON, job("x", cpu=2000)), node("wn-1", ON), pods=[pending("a", cpu=1500)])
    assert clues.decide(first, 61.0) == []  # served on wn-1
    later = snap(200.0, node("wn-0", ON, idle_since=200.0), node("wn-1", ON), pods=[pending("a", cpu=1500)])
    assert acts(clues.decide(later, 301.0)) == [("power-off", "wn-1")]  # asked again, served on wn-0


def test_clues_asks_again_for_a_pod_still_pending_60s_after_its_request_was_served() -> None:
    def after(now: float) -> list[tuple[str, str]]:
        clues = Clues(CLUES_OSCAR, (WN,))
        seen = snap(0.0, node("wn-1", ON), node("wn-2", OFF), pods=[pending("a", cpu=1500)])
        assert clues.decide(seen, 61.0) == []
        return acts(clues.decide(seen, now))

    assert after(120.0) == []
    assert after(121.0) == [("power-on", "wn-2")]  # its own booking still holds wn-1


def test_clues_keeps_the_room_of_attended_requests_booked_while_their_node_boots() -> None:
    clues = Clues(CLUES_OSCAR, (WN,))
    pods = [pending("a", cpu=1000), pending("b", cpu=1000)]
    assert acts(clues.decide(snap(0.0, *offs(2), pods=pods), 61.0)) == [("power-on", "wn-1")]
    later = snap(80.0, node("wn-1", BOOTING, since=61.0), node("wn-2", OFF), pods=[*pods, pending("c", cpu=1000)])
    clues.decide(later, 80.0)
    assert clues.decide(later, 140.0) == []
    assert acts(clues.decide(later, 141.0)) == [("power-on", "wn-2")]


def test_clues_asks_again_for_a_pod_behind_the_requests_made_meanwhile() -> None:
    """A pod still pending 60 s after its request was served gets a new request at the back of the queue: here
    behind one that fits nowhere, so nothing is powered on for it."""
    clues = Clues(CLUES_OSCAR, (WN,))
    first = snap(0.0, node("wn-1", ON), node("wn-2", OFF), pods=[pending("z", cpu=1500)])
    assert clues.decide(first, 61.0) == []
    meanwhile = snap(20.0, node("wn-1", ON), node("wn-2", OFF), pods=[pending("z", cpu=1500), pending("y", 5000)])
    assert clues.decide(meanwhile, 81.0) == []
    assert clues.decide(replace(meanwhile, now=100.0), 121.0) == []


def test_clues_drops_the_request_of_a_pod_no_longer_pending_and_frees_its_booking() -> None:
    clues = Clues(CLUES_OSCAR, (WN,))
    assert acts(clues.decide(snap(0.0, *offs(2), pods=[pending("a", cpu=1500)]), 61.0)) == [("power-on", "wn-1")]
    later = snap(80.0, node("wn-1", BOOTING, since=61.0), node("wn-2", OFF), pods=[pending("b", cpu=1500)])
    clues.decide(later, 80.0)
    assert clues.decide(later, 141.0) == []  # b goes to the booting wn-1, as a is gone


def test_clues_gives_up_a_boot_after_max_wait_poweron_and_retries_the_request_elsewhere() -> None:
    clues = Clues(CLUES_OSCAR, (WN,))
    assert acts(clues.decide(snap(0.0, *offs(2), pods=[pending("a")]), 61.0)) == [("power-on", "wn-1")]
    stuck = snap(80.0, node("wn-1", BOOTING, since=61.0), node("wn-2", OFF), pods=[pending("a")])
    assert clues.decide(stuck, 3061.0) == []
    assert said(clues.decide(stuck, 3062.0)) == [
        ("power-off", "wn-1", "MAX_WAIT_POWERON exceeded (OFF_ERR)"),
        ("power-on", "wn-2", "request"),
    ]
    assert clues.decide(stuck, 3067.0) == []


def test_clues_with_extra_nodes_free_keeps_one_idle_node_checked_every_30s() -> None:
    clues = Clues(replace(CLUES_OSCAR, extra_nodes_free=1), (WN,))
    assert clues.decide(snap(0.0, node("wn-1", ON), node("wn-2", OFF)), 0.0) == []
    busy = snap(20.0, node("wn-1", ON, job("j")), node("wn-2", OFF))
    assert clues.decide(busy, 20.0) == []
    assert clues.decide(busy, 29.0) == []
    assert said(clues.decide(busy, 30.0)) == [("power-on", "wn-2", "request")]
    assert clues.decide(busy, 60.0) == []  # the booting wn-2 counts as free


def test_clues_keeps_its_free_node_whenever_nodes_are_about_to_be_powered_off() -> None:
    """PowOn_Free runs every 30 s and also whenever there are power-off candidates: two nodes idle since 0 s,
    looked at every 5 s, reach IDLE_TIME at 305 s, 5 s after PowOn_Free's last periodic run; one stays on."""
    clues = Clues(replace(CLUES_OSCAR, extra_nodes_free=1, monitoring_period=5.0), (WN,))
    idle = snap(0.0, node("wn-1", ON), node("wn-2", ON))
    decided = [d for now in range(0, 310, 5) for d in clues.decide(idle, float(now))]
    assert acts(decided) == [("power-off", "wn-1")]


def test_clues_with_extra_nodes_free_cancels_the_last_power_off_and_powers_on_in_name_order() -> None:
    clues = Clues(replace(CLUES_OSCAR, extra_nodes_free=1), (WN,))
    idle = snap(0.0, node("wn-1", ON), node("wn-2", ON))
    assert clues.decide(idle, 0.0) == []
    assert acts(clues.decide(idle, 330.0)) == [("power-off", "wn-1")]
    three = snap(0.0, node("wn-1", ON), node("wn-2", ON), node("wn-3", ON))
    two = Clues(replace(CLUES_OSCAR, extra_nodes_free=2), (WN,))
    assert two.decide(three, 0.0) == []
    assert acts(two.decide(three, 330.0)) == [("power-off", "wn-1")]
    one_idle = Clues(replace(CLUES_OSCAR, extra_nodes_free=2), (WN,))
    assert acts(one_idle.decide(snap(0.0, node("wn-1", ON), *offs(2, first=2)), 0.0)) == [("power-on", "wn-2")]
    two = Clues(replace(CLUES_OSCAR, extra_nodes_free=2), (WN,))
    assert acts(two.decide(snap(0.0, node("wn-1", ON, job("j")), *offs(3, first=2)), 0.0)) == [
        ("power-on", "wn-2"),
        ("power-on", "wn-3"),
    ]


# Cluster Autoscaler --------------------------------------------------------------------------------------------

TALL = NodeTemplate("tall", "amd64", Resources.node(2000, 8192))
TWIN = NodeTemplate("twin", "amd64", Resources.node(2000, 4096))
GPU = NodeTemplate("gpu", "amd64", Resources.node(2000, 4096, gpu=4))
WIDE = NodeTemplate("wide", "amd64", Resources.node(4000, 4096))
CPU_ONLY = NodeTemplate("cpu", "amd64", Resources.node(2000, 0))
MEMORY_ONLY = NodeTemplate("memory", "amd64", Resources.node(0, 4096))


def ca(evict: bool = True, *pools: NodePool, min_nodes: int = 0) -> ClusterAutoscalerLike:
    return ClusterAutoscalerLike(scenario(*(pools or (NodePool(WN, 5),)), min_nodes=min_nodes), evict)


def after_unneeded(controller: ClusterAutoscalerLike, *nodes: NodeInfo) -> Sequence[Decision]:
    """What the controller decides on `nodes` at 0 s and 599 s (nothing) and at 600 s."""
    assert controller.decide(snap(0.0, *nodes), 0.0) == []
    assert controller.decide(snap(599.0, *nodes), 599.0) == []
    return controller.decide(snap(600.0, *nodes), 600.0)


def test_cluster_autoscaler_scans_every_10s_and_names_its_variant() -> None:
    evict, safe = ca(True), ca(False)
    assert (evict.name, safe.name) == ("ca-evict", "ca-safe")
    assert (evict.observe_every, evict.decide_every, evict.reaction_delay, evict.starts_all_on) == (
        10.0,
        10.0,
        None,
        False,
    )


def test_cluster_autoscaler_packs_pending_pods_first_fit_decreasing_on_its_template() -> None:
    pods = [pending("a", 1500), pending("b", 1000), pending("c", 500), pending("d", 500), pending("e", 400)]
    assert said(ca().decide(snap(0.0, *offs(5), pods=pods), 0.0)) == [
        ("power-on", "wn-1", "unschedulable pods (binpacking estimate)"),
        ("power-on", "wn-2", "unschedulable pods (binpacking estimate)"),
    ]


def test_cluster_autoscaler_counts_room_on_ready_and_upcoming_nodes_but_not_cordoned_ones() -> None:
    nodes = (node("wn-1", ON, job("j", cpu=1000)), node("wn-2", BOOTING), *offs(2, first=4))
    pods = [pending("a", 1000), pending("b", 2000), pending("c", 1500)]
    assert acts(ca().decide(snap(0.0, *nodes, pods=pods), 0.0)) == [("power-on", "wn-4")]
    cordoned = (node("wn-3", ON, cordoned=True), node("wn-4", OFF))
    assert acts(ca().decide(snap(0.0, *cordoned, pods=[pending("a")]), 0.0)) == [("power-on", "wn-4")]


def test_cluster_autoscaler_powers_on_only_off_nodes_up_to_the_scenarios_max() -> None:
    nodes = (node("wn-1", ON, job("j", cpu=2000)), node("wn-2", STOPPING), *offs(2, first=3))
    pods = [pending(name, 2000) for name in "abc"]
    assert acts(ca(True, NodePool(WN, 2)).decide(snap(0.0, *nodes, pods=pods), 0.0)) == [("power-on", "wn-3")]
    assert acts(ca(True, NodePool(WN, 3)).decide(snap(0.0, *nodes, pods=pods), 0.0)) == [
        ("power-on", "wn-3"),
        ("power-on", "wn-4"),
    ]
    two_shapes = [pending("a", 2000), pending("b", 2000), pending("c", 1500)]
    assert acts(ca(True, NodePool(WN, 2)).decide(snap(0.0, *offs(3), pods=two_shapes), 0.0)) == [
        ("power-on", "wn-1"),
        ("power-on", "wn-2"),
    ]


def test_cluster_autoscaler_powers_on_no_more_nodes_of_a_group_than_are_off() -> None:
    controller = ca(True, NodePool(WN, 5), NodePool(ARM, 1))
    nodes = (*offs(2), node("board-1", OFF, template=ARM))
    pods = [pending(name, 2000) for name in "abc"]
    assert acts(controller.decide(snap(0.0, *nodes, pods=pods), 0.0)) == [("power-on", "wn-1"), ("power-on", "wn-2")]


def test_cluster_autoscaler_skips_pods_no_template_fits_and_scales_for_the_others() -> None:
    pods = [pending("huge", 5000), pending("small")]
    assert acts(ca().decide(snap(0.0, *offs(2), pods=pods), 0.0)) == [("power-on", "wn-1")]


@pytest.mark.parametrize(
    ("pools", "pods", "chosen"),
    [
        ((TALL, WN), [pending("a", 1000, 1024)], "wn-1"),  # waste 0.5 + 0.75 beats 0.5 + 0.875
        ((WN, TALL), [pending("a", 1000, 4096), pending("b", 1000, 4096)], "tall-1"),  # both on one tall node
        ((WN, TALL), [pending("a", 1000, 4096)], "wn-1"),  # one pod wastes half of either
        ((TWIN, WN), [pending("a", 1000, 2048)], "twin-1"),  # a tie goes to the first node group
        ((TALL, WIDE), [pending("a", 1000, 4096)], "wide-1"),  # CPU 0.75 + memory 0 beats 0.5 + 0.5
        ((WIDE, TALL), [pending("a", 2000, 2048)], "tall-1"),  # CPU 0 + memory 0.75 beats 0.5 + 0.5
        ((WN, CPU_ONLY), [pending("a", 1000, 0)], "cpu-1"),  # memory it does not have, it cannot waste
        ((WN, MEMORY_ONLY), [pending("a", 0, 2048)], "memory-1"),
    ],
)
def test_cluster_autoscaler_expands_the_node_group_that_wastes_least(pools, pods, chosen) -> None:
    controller = ca(True, *(NodePool(t, 2) for t in pools))
    nodes = [n for t in pools for n in offs(2, t)]
    assert acts(controller.decide(snap(0.0, *nodes, pods=pods), 0.0)) == [("power-on", chosen)]


def test_cluster_autoscaler_drops_a_boot_after_15_min_and_backs_its_group_off_5_min_doubling_to_30() -> None:
    controller = ca()
    start = 0.0
    for backoff in (300.0, 600.0, 1200.0, 1800.0, 1800.0):
        booting = snap(start, node("wn-1", BOOTING, since=start), node("wn-2", OFF), pods=[pending("a")])
        assert controller.decide(booting, start + 900.0) == []
        failed = start + 901.0
        assert said(controller.decide(booting, failed)) == [
            ("power-off", "wn-1", "not registered within max-node-provision-time")
        ]
        stopped = snap(failed, node("wn-1", STOPPING), node("wn-2", OFF), pods=[pending("a")])
        assert controller.decide(stopped, failed + backoff - 1.0) == []
        assert acts(controller.decide(stopped, failed + backoff)) == [("power-on", "wn-2")]
        start = failed + backoff


def failing_boot(controller: ClusterAutoscalerLike, dropped: float) -> None:
    """A wn-1 boot that CA drops, 15 min after it began, at `dropped`."""
    booting = snap(
        dropped - 901.0, node("wn-1", BOOTING, since=dropped - 901.0), node("wn-2", OFF), pods=[pending("a")]
    )
    assert acts(controller.decide(booting, dropped)) == [("power-off", "wn-1")]


def backoff_after(controller: ClusterAutoscalerLike, dropped: float) -> float:
    """How long after `dropped` CA scales the group up again."""
    stopped = snap(dropped, node("wn-1", STOPPING), node("wn-2", OFF), pods=[pending("a")])
    return next(t for t in range(1, 4000) if controller.decide(stopped, dropped + t))


def test_cluster_autoscaler_forgets_a_groups_backoff_3_h_after_its_last_failure() -> None:
    controller = ca()
    failing_boot(controller, 1000.0)
    assert backoff_after(controller, 1000.0) == 300
    failing_boot(controller, 1000.0 + 3 * 3600.0)
    assert backoff_after(controller, 1000.0 + 3 * 3600.0) == 600, "3 h after the last failure: still doubled"
    failing_boot(controller, 1001.0 + 6 * 3600.0)
    assert backoff_after(controller, 1001.0 + 6 * 3600.0) == 300, "over 3 h after it: 5 min again"


def test_cluster_autoscaler_does_not_double_the_backoff_for_a_failure_during_it() -> None:
    controller = ca(True, NodePool(WN, 3))
    three = snap(0.0, node("wn-1", BOOTING), node("wn-2", BOOTING), node("wn-3", OFF), pods=[pending("a")])
    assert acts(controller.decide(three, 901.0)) == [("power-off", "wn-1"), ("power-off", "wn-2")]
    stopped = snap(901.0, node("wn-1", STOPPING), node("wn-2", STOPPING), node("wn-3", OFF), pods=[pending("a")])
    assert controller.decide(stopped, 901.0 + 299.0) == []
    assert acts(controller.decide(stopped, 901.0 + 300.0)) == [("power-on", "wn-3")]


def test_cluster_autoscaler_removes_an_empty_node_after_10_min_unneeded() -> None:
    for evict in (True, False):
        assert said(after_unneeded(ca(evict), node("wn-1", ON))) == [("power-off", "wn-1", "empty and unneeded")]


RECEIVER = node("big-1", ON, job("r", cpu=2100, memory=4200), template=BIG)  # over half used: 1900m, 3992Mi free


@pytest.mark.parametrize(
    ("cpu", "memory", "drained"), [(999, 512, True), (1000, 512, False), (100, 2047, True), (100, 2048, False)]
)
def test_cluster_autoscaler_drains_a_node_whose_cpu_and_memory_requests_are_each_under_half(
    cpu, memory, drained
) -> None:
    decided = after_unneeded(
        ca(True, NodePool(WN, 1), NodePool(BIG, 1)), node("wn-1", ON, knative("k", cpu, memory)), RECEIVER
    )
    assert said(decided) == ([("drain", "wn-1", "underutilised; pods fit elsewhere")] if drained else [])


@pytest.mark.parametrize(
    ("cpu", "memory", "gpu", "drained"), [(1900, 3900, 0, True), (100, 100, 1, True), (100, 100, 2, False)]
)
def test_cluster_autoscaler_judges_a_gpu_node_by_its_gpu_requests_only(cpu, memory, gpu, drained) -> None:
    pod = PodInfo("g", Resources.request(cpu, memory, gpu), interruptible=True)
    other = node("gpu-2", ON, PodInfo("h", Resources.request(100, 100, 2), interruptible=True), template=GPU)
    decided = after_unneeded(ca(True, NodePool(GPU, 2)), node("gpu-1", ON, pod, template=GPU), other)
    assert acts(decided) == ([("drain", "gpu-1")] if drained else [])


def test_ca_evict_drains_a_node_running_a_job_and_ca_safe_does_not() -> None:
    nodes = (node("wn-1", ON, job("j", cpu=500)), node("wn-2", ON, job("k", cpu=1500)))
    assert acts(after_unneeded(ca(True), *nodes)) == [("drain", "wn-1")]
    assert said(after_unneeded(ca(False), *nodes)) == []
    behind = (node("wn-1", ON, job("j", cpu=100, memory=100)), node("wn-2", ON, knative("k", cpu=200)), RECEIVER)
    assert acts(after_unneeded(ca(False, NodePool(WN, 2), NodePool(BIG, 1)), *behind)) == [("drain", "wn-2")]


def test_cluster_autoscaler_keeps_a_node_whose_pods_fit_nowhere_else() -> None:
    nodes = (node("wn-1", ON, knative("k", cpu=500)), node("wn-2", ON, job("j", cpu=1800)))
    assert said(after_unneeded(ca(), *nodes)) == []


def test_cluster_autoscaler_looks_past_a_node_whose_pods_fit_nowhere_else() -> None:
    nodes = (node("big-1", ON, knative("k", cpu=1900), template=BIG), node("wn-1", ON, knative("l", cpu=990)))
    assert acts(after_unneeded(ca(True, NodePool(WN, 1), NodePool(BIG, 1)), *nodes)) == [("drain", "wn-1")]
    nodes = (node("wn-0", ON), *nodes)
    assert acts(after_unneeded(ca(True, NodePool(WN, 2), NodePool(BIG, 1)), *nodes)) == [
        ("power-off", "wn-0"),
        ("drain", "wn-1"),
    ]


def test_cluster_autoscaler_drains_one_node_at_a_time_the_least_used_first() -> None:
    nodes = (node("wn-1", ON, knative("k", cpu=600)), node("wn-2", ON, knative("l", cpu=400)), RECEIVER)
    assert acts(after_unneeded(ca(True, NodePool(WN, 2), NodePool(BIG, 1)), *nodes)) == [("drain", "wn-2")]


def test_cluster_autoscaler_removes_up_to_ten_empty_nodes_at_once_and_still_drains_one() -> None:
    nodes = [node(f"wn-{i:02}", ON) for i in range(12, 0, -1)]
    nodes.append(node("wn-13", ON, knative("k", cpu=500)))
    assert acts(after_unneeded(ca(True, NodePool(WN, 13)), *nodes)) == [
        *(("power-off", f"wn-{i:02}") for i in range(1, 11)),
        ("drain", "wn-13"),
    ]


def test_cluster_autoscaler_drains_no_pod_onto_a_node_it_removes() -> None:
    nodes = (node("wn-1", ON), node("wn-2", ON, knative("k", cpu=500)))
    assert acts(after_unneeded(ca(), *nodes)) == [("power-off", "wn-1")]


def test_cluster_autoscaler_keeps_min_nodes_counting_booting_ones() -> None:
    nodes = (node("wn-1", ON), node("wn-2", ON), node("wn-3", BOOTING, since=0.0))
    assert acts(after_unneeded(ca(True, NodePool(WN, 3), min_nodes=2), *nodes)) == [("power-off", "wn-1")]
    nodes = tuple(node(f"wn-{i}", ON) for i in range(1, 5))
    assert acts(after_unneeded(ca(True, NodePool(WN, 4), min_nodes=1), *nodes)) == [
        ("power-off", "wn-1"),
        ("power-off", "wn-2"),
        ("power-off", "wn-3"),
    ]


def test_cluster_autoscaler_restarts_the_unneeded_clock_when_a_node_is_needed_again() -> None:
    controller = ca()
    assert controller.decide(snap(0.0, node("wn-1", ON)), 0.0) == []
    assert controller.decide(snap(300.0, node("wn-1", ON, job("j", cpu=1500))), 300.0) == []
    assert controller.decide(snap(310.0, node("wn-1", ON)), 310.0) == []
    assert controller.decide(snap(909.0, node("wn-1", ON)), 909.0) == []
    assert acts(controller.decide(snap(910.0, node("wn-1", ON)), 910.0)) == [("power-off", "wn-1")]
    controller = ca()
    assert controller.decide(snap(0.0, node("wn-1", ON, job("j", cpu=1500)), node("wn-2", ON)), 0.0) == []
    assert controller.decide(snap(300.0, node("wn-1", ON), node("wn-2", ON)), 300.0) == []
    assert acts(controller.decide(snap(600.0, node("wn-1", ON), node("wn-2", ON)), 600.0)) == [("power-off", "wn-2")]


def test_cluster_autoscaler_removes_nothing_for_10_min_after_a_scale_up_and_tracks_from_the_next_scan() -> None:
    controller = ca(True, NodePool(WN, 1), NodePool(ARM, 1))
    up = snap(0.0, node("wn-1", ON), node("board-1", OFF, template=ARM), pods=[pending("a", arch="arm64")])
    assert acts(controller.decide(up, 0.0)) == [("power-on", "board-1")]
    nodes = (node("wn-1", ON), node("board-1", ON, job("j", cpu=4000), template=ARM))
    for now in (10.0, 600.0, 609.0):
        assert controller.decide(snap(now, *nodes), now) == []
    assert acts(controller.decide(snap(610.0, *nodes), 610.0)) == [("power-off", "wn-1")]


def scaled_up_at_300_beside_an_empty_node() -> ClusterAutoscalerLike:
    """A controller that saw wn-1 empty at 0 and powered board-1 on for an arm64 pod at 300."""
    controller = ca(True, NodePool(WN, 1), NodePool(ARM, 1))
    board_off = node("board-1", OFF, template=ARM)
    assert controller.decide(snap(0.0, node("wn-1", ON), board_off), 0.0) == []
    up = snap(300.0, node("wn-1", ON), board_off, pods=[pending("a", arch="arm64")])
    assert acts(controller.decide(up, 300.0)) == [("power-on", "board-1")]
    return controller


def test_cluster_autoscaler_removes_a_node_unneeded_all_through_the_pause_when_it_ends() -> None:
    controller = scaled_up_at_300_beside_an_empty_node()
    nodes = (node("wn-1", ON), node("board-1", ON, job("j", cpu=4000), template=ARM))
    assert controller.decide(snap(899.0, *nodes), 899.0) == []
    assert acts(controller.decide(snap(900.0, *nodes), 900.0)) == [("power-off", "wn-1")]


def test_cluster_autoscaler_restarts_the_unneeded_clock_of_a_node_needed_during_the_pause() -> None:
    controller = scaled_up_at_300_beside_an_empty_node()
    board = node("board-1", ON, job("j", cpu=4000), template=ARM)
    assert controller.decide(snap(500.0, node("wn-1", ON, job("k", cpu=1500)), board), 500.0) == []
    assert controller.decide(snap(510.0, node("wn-1", ON), board), 510.0) == []
    assert controller.decide(snap(1109.0, node("wn-1", ON), board), 1109.0) == []
    assert acts(controller.decide(snap(1110.0, node("wn-1", ON), board), 1110.0)) == [("power-off", "wn-1")]


def test_cluster_autoscaler_waits_3_min_after_a_failed_boot_before_scaling_down() -> None:
    controller = ca()
    assert controller.decide(snap(0.0, node("wn-1", ON), node("wn-2", BOOTING, since=0.0)), 0.0) == []
    assert acts(controller.decide(snap(901.0, node("wn-1", ON), node("wn-2", BOOTING, since=0.0)), 901.0)) == [
        ("power-off", "wn-2")
    ]
    stopping = snap(1080.0, node("wn-1", ON), node("wn-2", STOPPING))
    assert controller.decide(stopping, 1080.0) == []
    assert acts(controller.decide(stopping, 1081.0)) == [("power-off", "wn-1")]


# Karpenter -----------------------------------------------------------------------------------------------------


def karpenter(dnd: bool = False, *pools: NodePool, min_nodes: int = 0, **knobs: float) -> KarpenterLike:
    return KarpenterLike(scenario(*(pools or (NodePool(WN, 12),)), min_nodes=min_nodes), dnd, **knobs)


def validated(controller: KarpenterLike, *nodes: NodeInfo, at: float = 100.0) -> Sequence[Decision]:
    """What the controller decides on `nodes` at `at` and 14 s later (nothing), and 15 s later."""
    assert controller.decide(snap(at, *nodes), at) == []
    assert controller.decide(snap(at + 14.0, *nodes), at + 14.0) == []
    return controller.decide(snap(at + 15.0, *nodes), at + 15.0)


def test_karpenter_batches_for_1s_polls_disruption_every_10s_and_names_its_variant() -> None:
    plain, dnd = karpenter(False), karpenter(True)
    assert (plain.name, dnd.name) == ("karpenter", "karpenter-dnd")
    assert (plain.observe_every, plain.decide_every, plain.reaction_delay, plain.starts_all_on) == (
        10.0,
        10.0,
        1.0,
        False,
    )


def test_karpenter_packs_pending_pods_onto_nodes_of_the_cheapest_type_that_admits_them() -> None:
    controller = karpenter(False, NodePool(WN, 2), NodePool(ARM, 2))
    pods = [pending("a", 1000), pending("b", 1000), pending("c", 1000), pending("d", 1000, arch="amd64")]
    nodes = (*offs(2, WN), *offs(2, ARM))
    assert said(controller.decide(snap(0.0, *nodes, pods=pods), 0.0)) == [
        ("power-on", "board-1", "pending pods (batch)"),
        ("power-on", "wn-1", "pending pods (batch)"),
    ]


def test_karpenter_counts_ready_and_in_flight_room_and_takes_only_off_nodes() -> None:
    controller = karpenter(False, NodePool(WN, 2), NodePool(ARM, 3))
    nodes = (node("board-2", BOOTING, template=ARM), node("wn-1", ON, job("j", cpu=1500)), *offs(1, ARM, first=3))
    assert controller.decide(snap(0.0, *nodes, pods=[pending("a", 500), pending("b", 4000)]), 0.0) == []
    nodes = (node("board-1", ON, cordoned=True, template=ARM), node("board-2", STOPPING, template=ARM), *nodes[2:])
    assert acts(controller.decide(snap(0.0, *nodes, pods=[pending("b", 4000)]), 0.0)) == [("power-on", "board-3")]
    full = (node("board-1", ON, job("j", cpu=4000), template=ARM), node("board-2", STOPPING, template=ARM), *offs(2))
    limited = karpenter(False, NodePool(WN, 1), NodePool(ARM, 1))
    assert acts(limited.decide(snap(0.0, *full, pods=[pending(n, 2000) for n in "ab"]), 0.0)) == [("power-on", "wn-1")]


def test_karpenter_takes_no_more_nodes_of_a_type_than_are_off() -> None:
    controller = karpenter(False, NodePool(ARM, 5))
    pods = [pending(name, 4000) for name in "abc"]
    assert acts(controller.decide(snap(0.0, *offs(2, ARM), pods=pods), 0.0)) == [
        ("power-on", "board-1"),
        ("power-on", "board-2"),
    ]


def test_karpenter_gives_up_a_node_not_registered_after_15_min() -> None:
    controller = karpenter()
    assert controller.decide(snap(1000.0, node("wn-1", BOOTING, since=100.0)), 1000.0) == []
    assert said(controller.decide(snap(1001.0, node("wn-1", BOOTING, since=100.0)), 1001.0)) == [
        ("power-off", "wn-1", "registration TTL")
    ]


def test_karpenter_removes_an_empty_node_15s_after_it_became_a_candidate() -> None:
    just_emptied = replace(node("wn-1", ON), pods_changed_at=100.0)
    assert said(validated(karpenter(), just_emptied)) == [("power-off", "wn-1", "consolidation (empty)")]


def test_karpenter_restarts_validation_when_a_node_stops_being_a_candidate() -> None:
    controller = karpenter()
    assert controller.decide(snap(100.0, node("wn-1", ON)), 100.0) == []
    assert controller.decide(snap(105.0, node("wn-1", ON, job("j", cpu=1500))), 105.0) == []
    assert said(validated(controller, node("wn-1", ON), at=110.0)) == [("power-off", "wn-1", "consolidation (empty)")]


def test_karpenter_consolidate_after_counts_from_the_nodes_last_pod_change() -> None:
    controller = POLICIES["karpenter"].build(scenario(NodePool(WN, 1)), 30.0)
    changed = replace(node("wn-1", ON), pods_changed_at=100.0)
    assert controller.decide(snap(129.0, changed), 129.0) == []
    assert said(validated(controller, changed, at=130.0)) == [("power-off", "wn-1", "consolidation (empty)")]


@pytest.mark.parametrize(
    ("ready", "cordoned", "booting", "stopping", "min_nodes", "removed"),
    [
        (11, 0, 0, 0, 0, 2),
        (10, 0, 0, 0, 0, 1),
        (11, 0, 1, 0, 0, 2),
        (10, 0, 1, 0, 0, 1),
        (11, 0, 0, 1, 0, 2),
        (10, 1, 0, 0, 0, 1),
        (19, 1, 0, 0, 0, 1),
        (9, 1, 0, 0, 0, 0),
        (11, 0, 0, 0, 9, 2),
        (11, 0, 0, 0, 10, 1),
        (2, 0, 0, 0, 2, 0),
        (2, 0, 1, 0, 2, 1),
    ],
)
def test_karpenter_disrupts_at_most_10_percent_of_initialised_nodes_rounded_up_less_those_marked(
    ready, cordoned, booting, stopping, min_nodes, removed
) -> None:
    nodes = [node(f"wn-{i:02}", ON) for i in range(ready, 0, -1)]
    nodes += [node(f"marked-{i}", ON, cordoned=True) for i in range(cordoned)]
    nodes += [node(f"boot-{i}", BOOTING, since=100.0) for i in range(booting)]
    nodes += [node(f"stop-{i}", STOPPING) for i in range(stopping)]
    decided = validated(karpenter(min_nodes=min_nodes), *nodes)
    assert acts(decided) == [("power-off", f"wn-{i:02}") for i in range(1, removed + 1)]


def test_karpenter_acts_on_each_candidate_once_its_own_validation_is_over() -> None:
    controller = karpenter(budget=1.0)
    assert controller.decide(snap(100.0, node("wn-1", ON, job("j")), node("wn-2", ON)), 100.0) == []
    both = snap(105.0, node("wn-1", ON), node("wn-2", ON))
    assert controller.decide(both, 105.0) == []
    assert acts(controller.decide(both, 115.0)) == [("power-off", "wn-2")]
    assert acts(controller.decide(both, 120.0)) == [("power-off", "wn-1")]


def test_karpenter_drains_an_underutilised_node_whose_pods_fit_on_the_others() -> None:
    nodes = (node("wn-1", ON, job("j", cpu=500)), node("wn-2", ON, job("k", cpu=1200)))
    assert said(validated(karpenter(False), *nodes)) == [("drain", "wn-1", "consolidation (underutilized)")]


def test_karpenter_dnd_disrupts_no_node_running_a_job_but_still_moves_knative_pods() -> None:
    jobs = (node("wn-1", ON, job("j", cpu=500)), node("wn-2", ON, job("k", cpu=1200)))
    assert said(validated(karpenter(True), *jobs)) == []
    mixed = (node("wn-1", ON, knative("j", cpu=500)), node("wn-2", ON, job("k", cpu=1200)))
    assert acts(validated(karpenter(True), *mixed)) == [("drain", "wn-1")]


def test_karpenter_removes_empty_nodes_first_and_moves_no_pod_onto_them() -> None:
    nodes = (node("wn-1", ON, knative("k", cpu=500)), node("wn-2", ON))
    assert acts(validated(karpenter(budget=1.0), *nodes)) == [("power-off", "wn-2")]
    nodes = (*nodes, node("wn-3", ON, job("j", cpu=1500)))
    assert acts(validated(karpenter(budget=1.0), *nodes)) == [("power-off", "wn-2"), ("drain", "wn-1")]


def test_karpenter_consolidates_one_node_at_a_time_fewest_pods_then_least_used_first() -> None:
    nodes = (
        node("wn-1", ON, knative("a", cpu=100), knative("b", cpu=100)),
        node("wn-2", ON, knative("c", cpu=900)),
        node("wn-3", ON, job("j", cpu=1000)),
    )
    assert acts(validated(karpenter(True, budget=1.0), *nodes)) == [("drain", "wn-2")]
    nodes = (node("wn-1", ON, knative("a", cpu=900)), node("wn-2", ON, knative("c", cpu=300)), nodes[2])
    assert acts(validated(karpenter(True, budget=1.0), *nodes)) == [("drain", "wn-2")]


# Oracle --------------------------------------------------------------------------------------------------------


def oracle(
    *submits: float, pools: Sequence[NodePool] = (NodePool(WN, 2, boot_median=180.0),), arch: str = ""
) -> Oracle:
    selector = {"kubernetes.io/arch": arch} if arch else {}
    jobs = [Job(at, 60.0, Resources.request(1000, 1024), selector) for at in submits]
    return Oracle(scenario(*pools, jobs=jobs))


def test_the_oracle_is_our_policy_with_no_idle_time_every_10s() -> None:
    seer = oracle()
    assert (seer.name, seer.observe_every, seer.decide_every, seer.reaction_delay, seer.starts_all_on) == (
        "oracle",
        10.0,
        10.0,
        1.0,
        False,
    )
    assert seer.config == policy_config(scenario(NodePool(WN, 2, boot_median=180.0)), idle_time=0.0, period=10.0)


def test_the_oracle_sees_the_jobs_submitted_within_a_boot_time_and_a_period_as_pending() -> None:
    assert acts(oracle(190.0).decide(snap(0.0, *offs(2)), 0.0)) == [("power-on", "wn-1")]
    assert oracle(191.0).decide(snap(0.0, *offs(2)), 0.0) == ()
    assert oracle(0.0).decide(snap(0.0, *offs(2)), 0.0) == ()  # arrived: the snapshot shows it if pending
    pools = (NodePool(WN, 1, boot_median=100.0), NodePool(ARM, 1, boot_median=300.0))
    foreseen = oracle(300.0, 310.0, pools=pools, arch="arm64")
    assert acts(foreseen.decide(snap(0.0, *offs(1), *offs(1, ARM)), 0.0)) == [("power-on", "board-1")]


def test_the_oracle_carries_the_policys_state_between_decisions() -> None:
    seer = oracle(100.0)
    first = snap(0.0, *offs(2))
    future = PendingPod("future-0", Resources.request(1000, 1024), 0.0, {})
    expected = decide(replace(first, pending=(future,)), seer.config)
    assert seer.decide(first, 0.0) == expected.decisions
    assert seer.state == expected.state
