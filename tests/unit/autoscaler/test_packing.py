"""First-fit-decreasing packing, on its own: classes and their order, bins and what room is left on them, new
bins from the cheapest template within the caps, and why pods stay unplaced."""

from __future__ import annotations

import dataclasses

import pytest

from oscar_deploy.autoscaler.model import NodeInfo, NodeTemplate, PowerState, Resources
from oscar_deploy.autoscaler.packing import (
    Bin,
    PackResult,
    PodClass,
    classes_of,
    node_bin,
    nodes_needed,
    pack,
    selector_key,
    template_bin,
)

SMALL = NodeTemplate("small", "amd64", Resources(2000, 4000, 0, 110), cost_per_hour=1.0)
GPU = NodeTemplate("gpu", "amd64", Resources(4000, 16000, 2, 110), labels={"gpu": "yes"}, cost_per_hour=3.0)
ARM = NodeTemplate("arm", "arm64", Resources(4000, 8000, 0, 110), cost_per_hour=0.5)


def one_class(cpu: int, memory: int, count: int, gpus: int = 0, new_only: bool = False, **selector: str) -> PodClass:
    return PodClass(Resources(cpu, memory, gpus, 1), selector_key(selector), count, new_only)


def test_equal_pods_form_one_class_and_classes_go_largest_first() -> None:
    demand = [
        (Resources(1000, 512, 0, 1), {}, False, 1),
        (Resources(1000, 1024, 0, 1), {}, False, 1),
        (Resources(500, 256, 1, 1), {}, False, 1),
        (Resources(1000, 512, 0, 1), {}, False, 2),
        (Resources(1000, 512, 0, 1), {}, True, 1),
        (Resources(1000, 512, 0, 1), {"zone": "b"}, False, 1),
        (Resources(1000, 512, 0, 1), {"zone": "a"}, False, 1),
    ]
    assert [
        (c.requests.gpu, c.requests.cpu_milli, c.requests.memory_mib, c.selector, c.count, c.new_only)
        for c in classes_of(demand)
    ] == [
        (1, 500, 256, (), 1, False),  # GPUs first
        (0, 1000, 1024, (), 1, False),  # then CPU, then memory, largest first
        (0, 1000, 512, (), 3, False),
        (0, 1000, 512, (), 1, True),
        (0, 1000, 512, (("zone", "a"),), 1, False),
        (0, 1000, 512, (("zone", "b"),), 1, False),
    ]


def test_a_bin_admits_its_arch_and_labels_only() -> None:
    board = Bin("b", "arm64", {"disk": "ssd"}, Resources(), "ready")
    assert board.admits(selector_key({"kubernetes.io/arch": "arm64", "disk": "ssd"}))
    assert not board.admits(selector_key({"kubernetes.io/arch": "amd64"}))
    assert not board.admits(selector_key({"disk": "hdd"}))
    assert not board.admits(selector_key({"zone": "a"})), "a label the node lacks"


def test_a_node_bin_has_the_node_s_free_room_unless_told_otherwise() -> None:
    node = NodeInfo("wn-1", "amd64", Resources(2000, 4000, 0, 110), PowerState.ON, labels={"disk": "ssd"})
    assert node_bin(node, "ready").free == Resources(2000, 4000, 0, 110)
    assert node_bin(node, "booting", Resources(1, 2, 0, 3)).free == Resources(1, 2, 0, 3)


def test_pods_fill_the_bins_in_order_and_leave_the_exact_room() -> None:
    first = Bin("a", "amd64", {}, Resources(2500, 4000, 3, 4), "ready")
    second = Bin("b", "amd64", {}, Resources(4000, 8000, 0, 110), "ready")
    result = pack([one_class(1000, 1000, 3, gpus=1)], [first, second], [])
    assert (first.free, first.placed) == (Resources(500, 2000, 1, 2), 2)
    assert result.used == [first] and result.new == []
    assert result.unplaced[0][1:] == (1, "no node template admits and fits it"), "b has no GPU, no template"
    both = pack([one_class(1000, 1000, 1), one_class(500, 500, 3)], [first, second], [])
    assert [b.name for b in both.used] == ["b", "a"], "each bin listed once, in the order it was first used"
    assert (second.free, second.placed) == (Resources(2000, 6000, 0, 107), 3)
    assert (first.free, first.placed) == (Resources(0, 1500, 1, 1), 3), "one more 500m pod, then a is full"


def test_pods_pass_over_bins_that_do_not_admit_them() -> None:
    board = Bin("board", "arm64", {}, Resources(4000, 8000, 0, 110), "ready")
    server = Bin("server", "amd64", {}, Resources(4000, 8000, 0, 110), "ready")
    result = pack([one_class(1000, 1000, 1, **{"kubernetes.io/arch": "amd64"})], [board, server], [])
    assert (board.placed, server.placed, result.unplaced) == (0, 1, [])


def test_pods_for_new_nodes_skip_ready_bins_but_take_booting_ones() -> None:
    ready = Bin("r", "amd64", {}, Resources(2000, 4000, 0, 110), "ready")
    booting = Bin("b", "amd64", {}, Resources(2000, 4000, 0, 110), "booting")
    result = pack([one_class(1000, 1000, 2, new_only=True)], [ready, booting], [SMALL])
    assert (ready.placed, booting.placed, result.new) == (0, 2, [])


def test_new_bins_come_from_the_cheapest_template_that_admits_the_pods() -> None:
    result = pack([one_class(1500, 1000, 3, **{"kubernetes.io/arch": "amd64"})], [], [GPU, SMALL, ARM])
    assert [(b.name, b.template, b.placed, b.free) for b in result.new] == [
        ("small#1", SMALL, 1, Resources(500, 3000, 0, 109)),
        ("small#2", SMALL, 1, Resources(500, 3000, 0, 109)),
        ("small#3", SMALL, 1, Resources(500, 3000, 0, 109)),
    ]
    gpu = pack([one_class(1000, 1000, 3, gpus=1, gpu_label="x")], [], [SMALL, GPU])
    assert gpu.unplaced[0][1:] == (3, "no node template admits and fits it")
    fits = pack([one_class(1000, 1000, 3, gpus=1, gpu="yes")], [], [SMALL, GPU])
    assert [(b.name, b.placed, b.free) for b in fits.new] == [
        ("gpu#1", 2, Resources(2000, 14000, 0, 108)),
        ("gpu#2", 1, Resources(3000, 15000, 1, 109)),
    ]


def test_new_bins_stay_within_each_template_s_pool_and_the_total_limit() -> None:
    pods = [one_class(1500, 1000, 5, **{"kubernetes.io/arch": "amd64"})]
    pooled = pack(pods, [], [SMALL, GPU], available={"small": 2, "gpu": 1})
    assert [b.name for b in pooled.new] == ["small#1", "small#2", "gpu#3"]
    assert pooled.unplaced[0][1:] == (1, "pool"), "gpu#3 holds 2 of the 3 left"
    assert [b.name for b in pack(pods, [], [SMALL, GPU], available={"small": 1}).new] == ["small#1"]
    limited = pack(pods, [], [SMALL], new_limit=2)
    assert (len(limited.new), limited.unplaced[0][1:]) == (2, (3, "limit"))
    assert pack(pods, [], [SMALL], new_limit=0).unplaced[0][1:] == (5, "limit")
    assert len(pack(pods, [], [SMALL], new_limit=5).new) == 5


def test_new_bins_take_later_classes_too() -> None:
    result = pack([one_class(1500, 1000, 1), one_class(500, 500, 1)], [], [SMALL])
    assert [(b.name, b.placed, b.free) for b in result.new] == [("small#1", 2, Resources(0, 2500, 0, 108))]


def test_nodes_needed_counts_fresh_nodes_per_template_whoever_may_use_ready_ones() -> None:
    classes = [
        one_class(1500, 1000, 3, new_only=True, **{"kubernetes.io/arch": "amd64"}),
        one_class(3000, 1000, 1, **{"kubernetes.io/arch": "arm64"}),
        one_class(100, 100, 1, **{"kubernetes.io/arch": "riscv64"}),
    ]
    assert nodes_needed(classes, [SMALL, ARM]) == {"small": 3, "arm": 1}


def test_a_template_bin_starts_empty() -> None:
    fresh = template_bin(ARM, "arm#1")
    assert (fresh.arch, fresh.labels, fresh.free, fresh.kind, fresh.template, fresh.placed) == (
        "arm64",
        {},
        ARM.allocatable,
        "new",
        ARM,
        0,
    )


def test_a_bin_with_room_for_exactly_the_smallest_class_left_stays_open() -> None:
    """Every 8 classes, bins too full for any class left are set aside to save time; one with exactly the room
    of the smallest class left (and one pod slot) is not."""
    exact = Bin("exact", "amd64", {}, Resources(100, 100, 0, 1), "ready")
    larger = [one_class(200 + 10 * index, 100, 1) for index in range(8)]
    result = pack([*larger, one_class(100, 100, 1)], [exact], [])
    assert exact.placed == 1 and exact.free == Resources(0, 0, 0, 0)
    assert len(result.unplaced) == 8


def test_a_class_may_use_ready_nodes_unless_told_otherwise() -> None:
    pods = PodClass(Resources(1000, 1000, 0, 1), (), 1)
    assert pods.new_only is False
    ready = Bin("r", "amd64", {}, Resources(2000, 4000, 0, 110), "ready")
    assert (pack([pods], [ready], []).used, ready.placed) == ([ready], 1)


def test_a_node_bin_has_no_template() -> None:
    node = NodeInfo("wn-1", "amd64", Resources(2000, 4000, 0, 110), PowerState.ON)
    assert node_bin(node, "ready").template is None
    assert Bin("b", "amd64", {}, Resources(), "booting").template is None


def test_classes_are_frozen_and_packing_values_have_no_attribute_dict() -> None:
    pods = one_class(100, 100, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pods.count = 2  # type: ignore[misc]
    values = [pods, Bin("b", "amd64", {}, Resources(), "ready"), PackResult()]
    assert [hasattr(value, "__dict__") for value in values] == [False, False, False]


def test_pods_taking_several_slots_use_that_many_on_ready_and_new_bins() -> None:
    ready = Bin("r", "amd64", {}, Resources(4000, 8000, 0, 5), "ready")
    pods = PodClass(Resources(100, 100, 0, 2), (), 4)
    result = pack([pods], [ready], [SMALL])
    assert (ready.placed, ready.free) == (2, Resources(3800, 7800, 0, 1))
    assert [(b.name, b.placed, b.free) for b in result.new] == [("small#1", 2, Resources(1800, 3800, 0, 106))]


@pytest.mark.parametrize(
    ("free", "placed"),
    [
        (Resources(-100, 1000, 0, 110), ((0, 100), 10)),  # CPU over-committed: a pod that requests none still fits
        (Resources(1000, -100, 0, 110), ((100, 0), 10)),
        (Resources(-100, 1000, 0, 110), ((1, 100), 0)),
        (Resources(1000, -100, 0, 110), ((100, 1), 0)),
    ],
)
def test_a_resource_a_pod_does_not_request_is_not_looked_at_even_when_over_committed(
    free: Resources, placed: tuple[tuple[int, int], int]
) -> None:
    (cpu, memory), count = placed
    result = pack([one_class(cpu, memory, 10)], [Bin("wn-1", "amd64", {}, free, "ready")], [])
    assert sum(b.placed for b in result.used) == count
    assert [(unplaced.count, left) for unplaced, left, _ in result.unplaced] == ([] if count else [(10, 10)])
