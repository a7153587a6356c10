"""The policy's vocabulary: resource arithmetic, what a node runs and may take, templates, and the configuration's
defaults and validation, each rule at its limit."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from oscar_deploy.autoscaler.model import (
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
    config_from_values,
)

WN = NodeTemplate("wn", "amd64", Resources.node(2000, 3800), labels={"disk": "ssd"})


def test_requests_take_one_pod_slot_and_nodes_110_by_default() -> None:
    assert Resources.request(500, 256) == Resources(500, 256, 0, 1)
    assert Resources.node(2000, 3800) == Resources(2000, 3800, 0, 110)


def test_arithmetic_covers_every_resource() -> None:
    big, small = Resources(5, 50, 3, 30), Resources(1, 10, 1, 10)
    assert big + small == Resources(6, 60, 4, 40)
    assert big - small == Resources(4, 40, 2, 20)


@pytest.mark.parametrize(
    ("free", "fits"),
    [
        (Resources(1, 10, 1, 1), True),  # every resource exactly enough
        (Resources(0, 10, 1, 1), False),
        (Resources(1, 9, 1, 1), False),
        (Resources(1, 10, 0, 1), False),
        (Resources(1, 10, 1, 0), False),
    ],
)
def test_a_request_fits_only_where_every_resource_suffices(free: Resources, fits: bool) -> None:
    assert Resources(1, 10, 1, 1).fits_in(free) is fits


@pytest.mark.parametrize(
    ("requests", "free", "copies"),
    [
        (Resources(300, 100, 0, 1), Resources(1000, 1000, 0, 110), 3),  # CPU binds: 1000 // 300
        (Resources(100, 300, 0, 1), Resources(1000, 1000, 0, 110), 3),  # memory binds
        (Resources(100, 100, 2, 1), Resources(1000, 1000, 5, 110), 2),  # GPUs bind
        (Resources(10, 10, 0, 2), Resources(1000, 1000, 0, 7), 3),  # pod slots bind: 7 // 2
        (Resources(), Resources(1000, 1000, 0, 7), 7),  # empty requests: the pod slots
        (Resources(300, 100, 0, 1), Resources(-100, 1000, 0, 110), 0),  # over-committed: none, never negative
    ],
)
def test_copies_are_whole_and_bound_by_the_scarcest_resource(requests: Resources, free: Resources, copies: int) -> None:
    count = requests.copies_in(free)
    assert (count, type(count)) == (copies, int)


def test_the_share_is_the_dominant_one_gpus_included() -> None:
    allocatable = Resources(2000, 4000, 4, 110)
    assert Resources(500, 1000, 3, 1).share_of(allocatable) == 0.75
    assert Resources(500, 3000, 1, 1).share_of(allocatable) == 0.75
    assert Resources(500, 1000, 1, 1).share_of(Resources()) == 0.0, "nothing allocatable: no share"


def test_describe_names_gpus_only_when_asked_for() -> None:
    assert Resources(500, 256, 0, 1).describe() == "500m CPU, 256Mi"
    assert Resources(500, 256, 2, 1).describe() == "500m CPU, 256Mi, 2 GPU"


def test_a_node_sums_its_pods_and_a_pod_is_a_job_unless_said_otherwise() -> None:
    pods = (
        PodInfo("web", Resources(100, 200, 1, 1), interruptible=True),
        PodInfo("job", Resources(300, 400, 2, 1)),
    )
    node = NodeInfo("wn-1", "amd64", Resources(2000, 4000, 4, 110), PowerState.ON, pods=pods)
    assert node.requested == Resources(400, 600, 3, 2)
    assert node.free == Resources(1600, 3400, 1, 108)
    assert node.runs_job, "a pod not marked interruptible is never evicted"
    assert not dataclasses.replace(node, pods=pods[:1]).runs_job
    bare = NodeInfo("wn-2", "amd64", Resources(), PowerState.OFF)
    assert (bare.cordoned, bare.our_boot, bare.idle_since, bare.requested) == (False, False, None, Resources())


def test_power_states_are_written_as_these_words() -> None:
    assert [state.value for state in PowerState] == ["on", "off", "booting", "stopping", "failed"]


def test_a_template_admits_selectors_it_satisfies_and_describes_its_nodes() -> None:
    assert WN.admits({"kubernetes.io/arch": "amd64", "disk": "ssd"})
    assert not WN.admits({"kubernetes.io/arch": "arm64"})
    assert not WN.admits({"disk": "hdd"})
    node = NodeInfo("wn-1", "amd64", Resources(), PowerState.ON, labels={"disk": "ssd", "zone": "a"})
    assert WN.describes(node)
    assert not WN.describes(dataclasses.replace(node, arch="arm64"))
    assert not WN.describes(dataclasses.replace(node, labels={"disk": "hdd"}))
    assert WN.describes(dataclasses.replace(node, arch="arm64", template="wn")), "a node's template name decides"
    assert not WN.describes(dataclasses.replace(node, template="big"))


def test_the_configuration_defaults() -> None:
    config = PolicyConfig(templates=(WN,))
    defaults = dataclasses.asdict(config)
    del defaults["templates"]
    assert defaults == {
        "min_nodes": 0,
        "max_nodes": 3,
        "idle_time": 300.0,
        "extra_nodes_free": 0,
        "max_wait_poweron": 3000.0,
        "reconsider_job_time": 60.0,
        "period": 20.0,
        "boot_time_estimate": 180.0,
        "shutdown_time_estimate": 60.0,
        "max_concurrent_boots": 0,
        "reaction_delay": 1.0,
        "consolidation_threshold": 0.5,
        "stuck_boot_factor": 2.0,
        "give_up_boot_factor": 4.0,
        "boot_time_measured": False,
    }
    from_spec = config_from_values(
        templates=(WN,),
        min_nodes=1,
        max_nodes=4,
        idle_time=300,
        reconsider_job_time=60,
        max_wait_poweron=3000,
        period=20,
        extra_nodes_free=1,
    )
    assert from_spec == dataclasses.replace(config, min_nodes=1, max_nodes=4, extra_nodes_free=1)


@pytest.mark.parametrize(
    "values",
    [
        {"min_nodes": 0, "max_nodes": 0},
        {"min_nodes": 2, "max_nodes": 2},
        {"period": 0.5},
        {"idle_time": 0.0, "max_wait_poweron": 0.0, "reaction_delay": 0.0, "shutdown_time_estimate": 0.0},
        {"consolidation_threshold": 1.0},
        {"consolidation_threshold": 0.01},
        {"stuck_boot_factor": 1.0, "give_up_boot_factor": 1.0},
    ],
)
def test_values_at_their_limits_are_accepted(values: dict[str, Any]) -> None:
    config = PolicyConfig(templates=(WN,), **values)
    assert {name: getattr(config, name) for name in values} == values


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_nodes": -1}, "min_nodes/max_nodes: need 0 <= min <= max (got -1, 3)"),
        ({"min_nodes": 3, "max_nodes": 2}, "min_nodes/max_nodes: need 0 <= min <= max (got 3, 2)"),
        ({"templates": ()}, "templates: at least one node template is needed"),
        ({"period": 0.0}, "period: must be positive"),
        ({"idle_time": -1.0}, "idle_time: must not be negative"),
        ({"max_wait_poweron": -1.0}, "max_wait_poweron: must not be negative"),
        ({"reconsider_job_time": -1.0}, "reconsider_job_time: must not be negative"),
        ({"boot_time_estimate": -1.0}, "boot_time_estimate: must not be negative"),
        ({"reaction_delay": -1.0}, "reaction_delay: must not be negative"),
        ({"shutdown_time_estimate": -0.5}, "shutdown_time_estimate: must not be negative"),
        ({"extra_nodes_free": -1}, "extra_nodes_free/max_concurrent_boots: must not be negative"),
        ({"max_concurrent_boots": -1}, "extra_nodes_free/max_concurrent_boots: must not be negative"),
        ({"consolidation_threshold": 0.0}, "consolidation_threshold: must be in (0, 1]"),
        ({"consolidation_threshold": 1.01}, "consolidation_threshold: must be in (0, 1]"),
        ({"stuck_boot_factor": 0.99, "give_up_boot_factor": 4.0}, "stuck_boot_factor: must be at least 1"),
        (
            {"templates": (), "period": 0.0},
            "templates: at least one node template is needed; period: must be positive",
        ),
    ],
)
def test_each_value_beyond_its_limit_is_refused_by_name(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        PolicyConfig(**{"templates": (WN,), **values})
    assert str(refused.value) == message


def test_the_policy_state_round_trips_through_json_but_for_our_cordons() -> None:
    state = PolicyState(
        needed_history=((100.5, {"wn": 2, "big": 0}), (120.5, {"wn": 3})),
        pressure_at=90.5,
        unneeded_since={"wn-2": 80.5, "wn-1": 70.5},
        cordoned_by_us=frozenset({"wn-3"}),
        running={"ns/b": (500, 256), "ns/a": (250, 128)},
        released=((110.5, 1000, 512), (115.5, 0, 0)),
        first_seen=10.5,
        vacated_at={"wn": {4: 60.5, 3: 50.5}, "big": {}},
        demand_gaps={"wn": (400.5, 0.0), "big": ()},
        job_started={"ns/b": 60.5, "ns/a": 30.0},
        job_durations=(36.5, 0.0, 900.0),
    )
    text = json.dumps(state.as_data())
    assert PolicyState.from_data(json.loads(text)) == dataclasses.replace(state, cordoned_by_us=frozenset())
    assert list(json.loads(text)["unneeded_since"]) == ["wn-1", "wn-2"], "written in name order"
    assert list(json.loads(text)["job_started"]) == ["ns/a", "ns/b"], "written in name order"


def test_a_damaged_policy_state_keeps_only_its_well_formed_entries() -> None:
    data = {
        "needed_history": [
            [1, {"wn": 2, "neg": -1, "flag": True, "half": 0.5}],
            [True, {"wn": 1}],
            ["2", {"wn": 1}],
            [3, ["wn"]],
            [4, {"wn": 1}, 5],
            [5],
        ],
        "pressure_at": True,
        "unneeded_since": {"wn-1": 5, "wn-2": "soon", "wn-3": False},
        "running": {"a": [1, 2], "b": [1], "c": [1, 2, 3], "d": [-1, 2], "e": [1, True], "f": "x"},
        "released": [[1, 2, 3], [1, 2], ["1", 2, 3], [1, -2, 3], [1, 2, 3, 4], [False, 2, 3]],
        "first_seen": False,
        "vacated_at": {"wn": {"1": 5, "123456": 6, "1234567": 7, "": 8, "-1": 9, "\u00b2": 10, "2": "x"}, "v": 3},
        "demand_gaps": {"wn": [1, -0.5, 0, True, "2"], "v": 5},
        "job_started": {"a": 5, "b": "soon", "c": None, "d": True, "e": -1.5},
        "job_durations": [36, -0.5, 0, True, "2", None, 1.5],
    }
    assert PolicyState.from_data(data) == PolicyState(
        needed_history=((1.0, {"wn": 2}),),
        unneeded_since={"wn-1": 5.0},
        running={"a": (1, 2)},
        released=((1.0, 2, 3),),
        vacated_at={"wn": {1: 5.0, 123456: 6.0}},
        demand_gaps={"wn": (1.0, 0.0)},
        job_started={"a": 5.0, "e": -1.5},
        job_durations=(36.0, 0.0, 1.5),
    )
    for broken in ({}, {key: "x" for key in data}):
        assert PolicyState.from_data(broken) == PolicyState()
    assert PolicyState.from_data(dict.fromkeys(data, 5)) == PolicyState(pressure_at=5.0, first_seen=5.0)


def test_defaults_that_keep_a_pod_safe_and_a_decision_readable() -> None:
    pending = PendingPod("ns/p", Resources.request(100, 100))
    assert (pending.interruptible, pending.created, dict(pending.node_selector)) == (False, 0.0, {})
    assert NodeTemplate("wn", "amd64", Resources()).cost_per_hour == 1.0
    assert str(Decision(Action.POWER_OFF, "wn-1", "empty for 300s")) == "power-off wn-1: empty for 300s"


@pytest.mark.parametrize(
    "value",
    [
        Resources(),
        PodInfo("ns/p", Resources()),
        NodeInfo("wn-1", "amd64", Resources(), PowerState.ON),
        PendingPod("ns/p", Resources()),
        PodSet(1, Resources()),
        KueueWorkload("w", "q", ()),
        ClusterSnapshot(0.0, ()),
        NodeTemplate("wn", "amd64", Resources()),
        PolicyConfig(templates=(WN,)),
        Decision(Action.CORDON, "wn-1", "surplus"),
        PolicyState(),
        PolicyResult((), PolicyState()),
    ],
    ids=lambda value: type(value).__name__,
)
def test_every_model_value_is_frozen_and_has_no_attribute_dict(value: object) -> None:
    first = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, first, getattr(value, first))
    assert not hasattr(value, "__dict__"), "slots: no attribute beyond the declared fields"


def test_a_node_s_requests_come_from_its_pods_and_cannot_be_given() -> None:
    with pytest.raises(TypeError, match="requested"):
        NodeInfo("wn-1", "amd64", Resources(), PowerState.ON, requested=Resources(1, 1, 0, 1))  # type: ignore[call-arg]


def test_the_defaults_of_a_bare_pod_node_workload_and_result() -> None:
    assert PodInfo("ns/p", Resources()).interruptible is False
    bare = NodeInfo("wn-1", "amd64", Resources(), PowerState.OFF)
    assert (bare.power_since, bare.pods, bare.capacity, bare.labels, bare.pods_changed_at, bare.template) == (
        0.0,
        (),
        Resources(0, 0, 0, 0),
        {},
        0.0,
        "",
    )
    assert KueueWorkload("w", "q", ()).created == 0.0
    assert PolicyResult((), PolicyState()).notes == ()


def test_the_unbounded_amount_is_ten_to_the_fifteenth_and_holds_any_real_request() -> None:
    assert UNBOUNDED == 10**15
    huge = Resources.request(10**9, 2**30, 10**6)  # a million cores, a pebibyte, a million GPUs
    assert huge.fits_in(Resources(UNBOUNDED, UNBOUNDED, UNBOUNDED, 1))
