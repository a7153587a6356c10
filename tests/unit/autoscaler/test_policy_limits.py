"""The policy at the edges of its rules: the room a booting node offers, the pressure a boot for late pods
records, the slack kept for a template without demand, and whether a light node's pods fit on the others."""

from __future__ import annotations

import dataclasses

import pytest

from oscar_deploy.autoscaler.model import ClusterSnapshot, NodeInfo, PolicyState, Resources
from oscar_deploy.autoscaler.policy import decide
from tests.unit.autoscaler.test_policy import (
    BOOTING,
    OFF,
    ON,
    actions,
    config,
    job,
    knative,
    node,
    pending,
)


@pytest.mark.parametrize(
    ("allocatable", "booted"),
    [
        (Resources(), False),  # not known yet: the template's
        (Resources.node(500, 4096), False),  # known: its own, exactly enough
        (Resources.node(499, 4096), True),
    ],
)
def test_a_booting_node_offers_its_own_allocatable_or_its_template_s_until_known(
    allocatable: Resources, booted: bool
) -> None:
    booting = dataclasses.replace(node("wn-1", BOOTING, since=990.0), allocatable=allocatable)
    snapshot = ClusterSnapshot(now=1000.0, nodes=(booting, node("wn-2", OFF)), pending=(pending("a", 500),))
    assert actions(decide(snapshot, config())) == ([("power-on", "wn-2")] if booted else [])


@pytest.mark.parametrize(("bound_cpu", "booted"), [(1500, False), (1501, True)])
def test_a_booting_node_offers_its_allocatable_less_what_its_pods_request(bound_cpu: int, booted: bool) -> None:
    booting = node("wn-1", BOOTING, job("j", bound_cpu), since=990.0)
    snapshot = ClusterSnapshot(now=1000.0, nodes=(booting, node("wn-2", OFF)), pending=(pending("a", 500),))
    assert actions(decide(snapshot, config())) == ([("power-on", "wn-2")] if booted else [])


def test_a_node_booted_for_pods_pending_too_long_is_pressure() -> None:
    snapshot = ClusterSnapshot(now=1000.0, nodes=(node("wn-1", OFF),), pending=(pending("a", created=0.0),))
    result = decide(snapshot, config())
    assert actions(result) == [("power-on", "wn-1")]
    assert result.state.pressure_at == 1000.0


@pytest.mark.parametrize("history", [(), ((880.0, {"wn": 0}),)], ids=["no-sample", "zero-sample"])
def test_a_template_without_demand_keeps_two_active_nodes_of_slack_and_no_more(
    history: tuple[tuple[float, dict[str, int]], ...],
) -> None:
    """No pod runs or waits: the slack is two wn nodes, so our empty cordoned third one powers off."""
    nodes = (
        node("wn-1", ON, idle_since=990.0),
        node("wn-2", ON, idle_since=990.0),
        node("wn-3", ON, cordoned=True, idle_since=900.0),
    )
    state = PolicyState(needed_history=history, first_seen=0.0, cordoned_by_us=frozenset({"wn-3"}))
    result = decide(ClusterSnapshot(now=1000.0, nodes=nodes), config(), state)
    assert actions(result) == [("power-off", "wn-3")]
    assert result.decisions[0].reason == "cordoned to consolidate and now empty"
    one_active = decide(ClusterSnapshot(now=1000.0, nodes=(nodes[0], nodes[2])), config(), state)
    assert actions(one_active) == [("uncordon", "wn-3")], "one active node is less than the slack"


def light_beside(other_cpu: int) -> tuple[NodeInfo, ...]:
    """Two full wn nodes, one running a job of `other_cpu`, and wn-4 with one 700m service pod (35% of it)."""
    return (
        node("wn-1", ON, job("j1", 2000)),
        node("wn-2", ON, job("j2", 2000)),
        node("wn-3", ON, job("j3", other_cpu)),
        node("wn-4", ON, knative("k4", 700)),
    )


@pytest.mark.parametrize(
    ("other_cpu", "expected", "reason"),
    [
        (
            1300,
            "drain",
            "its 1 pod(s) may move, use 35% of it and fit on the other nodes; unneeded for 100s",
        ),
        (
            1301,
            "cordon",
            "the last 120s of demand fit on 1 wn node(s) (+2 slack) and 4 are ready; no new pods here, it powers "
            "off once its 1 pod(s) finish",
        ),
    ],
)
def test_a_light_node_is_drained_only_when_its_pods_fit_on_the_other_nodes_not_on_itself(
    other_cpu: int, expected: str, reason: str
) -> None:
    """Demand of one wn node sampled 10 s ago (no new sample yet) and the window covered: wn-4 is the surplus
    node; its 700m pod fits on wn-3 (2000m less `other_cpu`) or on nothing else but wn-4 itself."""
    state = PolicyState(
        needed_history=((880.0, {"wn": 1}), (990.0, {"wn": 1})), first_seen=0.0, unneeded_since={"wn-4": 900.0}
    )
    result = decide(ClusterSnapshot(now=1000.0, nodes=light_beside(other_cpu)), config(idle_time=60.0), state)
    assert actions(result) == [(expected, "wn-4")]
    assert result.decisions[0].reason == reason


@pytest.mark.parametrize(("other_cpu", "drained"), [(1300, True), (1301, False)])
def test_our_light_cordoned_node_is_not_drained_onto_a_node_uncordoned_in_the_same_round(
    other_cpu: int, drained: bool
) -> None:
    """Demand of one wn node (+2 slack) and two active nodes: wn-3, ours with the most pods, is uncordoned; the
    700m service pod of wn-4, ours too, may move to wn-2 (2000m less `other_cpu`) but not to wn-3."""
    nodes = (
        node("wn-1", ON, job("j1", 2000)),
        node("wn-2", ON, job("j2", other_cpu)),
        node("wn-3", ON, job("j3a", 500), job("j3b", 500), cordoned=True),
        node("wn-4", ON, knative("k4", 700), cordoned=True),
    )
    state = PolicyState(
        needed_history=((880.0, {"wn": 1}), (990.0, {"wn": 1})),
        first_seen=0.0,
        cordoned_by_us=frozenset({"wn-3", "wn-4"}),
        unneeded_since={"wn-4": 900.0},
    )
    result = decide(ClusterSnapshot(now=1000.0, nodes=nodes), config(idle_time=60.0), state)
    assert actions(result) == [("uncordon", "wn-3"), *([("drain", "wn-4")] if drained else [])]
    assert result.decisions[0].reason == "1 wn node(s) needed (+2 slack) and 2 ready without it"
    assert result.state.cordoned_by_us == (frozenset() if drained else frozenset({"wn-4"}))
    assert result.state.unneeded_since == {"wn-4": 900.0}
