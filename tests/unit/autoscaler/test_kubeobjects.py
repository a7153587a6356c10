"""API objects read into the policy's terms: quantities, effective pod requests, who may be interrupted, which pods
wait for a node, and which Kueue workloads are demand."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from oscar_deploy.autoscaler.kubeobjects import (
    NodeView,
    ObjectError,
    belongs_to_node,
    cluster_queue_headroom,
    cpu_milli,
    interruptible,
    is_finished,
    is_pending,
    kind_labels,
    kueue_workload,
    local_queue_target,
    memory_mib,
    node_selector,
    node_view,
    pending_pod,
    pod_requests,
    quantity,
    resource_list,
    running_pod,
    timestamp,
    workload_state,
)
from oscar_deploy.autoscaler.model import UNBOUNDED, KueueWorkload, PodSet, Resources


@pytest.mark.parametrize(
    ("text", "milli"),
    [
        ("2", 2000),
        ("500m", 500),
        ("0.5", 500),
        ("1.25", 1250),
        ("100u", 1),
        ("1e3", 1_000_000),
        ("0", 0),
        ("2k", 2_000_000),
    ],
)
def test_cpu_quantities_round_up_to_millicores(text: str, milli: int) -> None:
    assert cpu_milli(text, "cpu") == milli


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        ("3911824Ki", 3821),
        ("1Gi", 1024),
        ("512Mi", 512),
        ("1G", 954),
        ("129M", 124),
        ("1048576", 1),
        ("1", 1),
        ("1.5Gi", 1536),
    ],
)
def test_memory_quantities_round_up_to_mib(text: str, mib: int) -> None:
    assert memory_mib(text, "memory") == mib


@pytest.mark.parametrize("text", ["", "one", "1 Gi", "1gi", "--1", "1e99", "Gi", "1" * 70])
def test_bad_quantities_name_their_field(text: str) -> None:
    with pytest.raises(ObjectError) as caught:
        memory_mib(text, "pod a/b: spec.containers[0].resources.memory")
    assert str(caught.value).startswith("pod a/b: spec.containers[0].resources.memory: ")


def container(cpu: str | None = None, memory: str | None = None, **extra: Any) -> dict[str, Any]:
    requests = {key: value for key, value in (("cpu", cpu), ("memory", memory)) if value}
    return {"name": "c", "resources": {"requests": requests}, **extra}


def test_effective_request_follows_the_scheduler() -> None:
    spec = {
        "containers": [container("500m", "256Mi"), container("250m", "128Mi")],
        "initContainers": [
            container("2", "64Mi"),  # one-shot, before the sidecar: 2000m alone
            container("100m", "32Mi", restartPolicy="Always"),  # a sidecar: runs beside the app containers
            container("1", "1Gi"),  # one-shot after the sidecar: 1100m, 1056Mi
        ],
        "overhead": {"cpu": "10m", "memory": "16Mi"},
    }
    # cpu: max(750 + 100, 2000, 1100) + 10; memory: max(384 + 32, 64, 1056) + 16
    assert pod_requests(spec, "pod") == Resources(2010, 1072, 0, 1)


def test_limits_stand_for_missing_requests_and_gpus_count() -> None:
    spec = {"containers": [{"name": "gpu", "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}}]}
    assert pod_requests(spec, "pod") == Resources(1000, 0, 1, 1)
    assert pod_requests({}, "pod") == Resources(0, 0, 0, 1), "a pod without requests still takes a pod slot"


def pod(owner: str | None = None, namespace: str = "oscar-svc", **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": namespace, "annotations": annotations}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "o", "controller": True}]
    return {"metadata": meta, "spec": {}, "status": {"phase": "Running"}}


def test_who_may_be_interrupted() -> None:
    assert interruptible(pod("Job")) is False, "an OSCAR job would start over"
    assert interruptible(pod("Job", namespace="batch")) is False
    assert interruptible(pod(None)) is False, "nothing would recreate a bare pod"
    assert interruptible(pod("ReplicaSet")) is True
    assert interruptible(pod("StatefulSet")) is True
    assert interruptible(pod("SparkApplication")) is False, "an unknown controller may not recreate it"
    safe = "cluster-autoscaler.kubernetes.io/safe-to-evict"
    assert interruptible(pod("Job", **{safe: "true"})) is True
    assert interruptible(pod("ReplicaSet", **{safe: "false"})) is False


def test_pending_means_unbound_ungated_and_not_deleted() -> None:
    waiting = {"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending"}}
    assert is_pending(waiting)
    assert not is_pending({**waiting, "spec": {"nodeName": "agent-0"}})
    assert not is_pending({**waiting, "spec": {"schedulingGates": [{"name": "kueue.x-k8s.io/admission"}]}})
    assert not is_pending({**waiting, "metadata": {"name": "p", "deletionTimestamp": "2026-05-04T10:00:00Z"}})
    assert not is_pending({**waiting, "status": {"phase": "Running"}})


def test_node_selector_takes_single_valued_required_affinity() -> None:
    term = {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]}
    spec = {
        "nodeSelector": {"disk": "ssd"},
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}},
    }
    assert node_selector(spec) == {"disk": "ssd", "kubernetes.io/arch": "arm64"}
    either = {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64", "amd64"]}]}
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] = [either]
    assert node_selector(spec) == {"disk": "ssd"}, "two allowed values are not one selector"


def condition(kind: str, status: str, reason: str = "") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason}


@pytest.mark.parametrize(
    ("status", "spec", "state"),
    [
        ({}, {}, "waiting"),
        ({"conditions": [condition("QuotaReserved", "False", "Pending")]}, {}, "quota"),
        ({"conditions": [condition("QuotaReserved", "False", "Inadmissible")]}, {}, "quota"),
        (
            {"conditions": [condition("QuotaReserved", "True"), condition("Admitted", "False", "UnsatisfiedChecks")]},
            {},
            "waiting",
        ),
        ({"conditions": [condition("QuotaReserved", "True"), condition("Admitted", "True")]}, {}, "done"),
        ({"conditions": [condition("Finished", "True", "Succeeded")]}, {}, "done"),
        ({}, {"active": False}, "done"),
    ],
)
def test_which_kueue_workloads_are_demand(status: dict[str, Any], spec: dict[str, Any], state: str) -> None:
    assert workload_state({"metadata": {"name": "w"}, "spec": spec, "status": status}) == state


def test_a_kind_keeps_only_the_labels_all_its_nodes_share() -> None:
    first = {"kubernetes.io/arch": "arm64", "kubernetes.io/hostname": "board-1", "disk": "ssd", "zone": "a"}
    second = {"kubernetes.io/arch": "arm64", "kubernetes.io/hostname": "board-2", "disk": "ssd", "zone": "b"}
    assert kind_labels([first, second]) == {"kubernetes.io/arch": "arm64", "disk": "ssd"}
    assert kind_labels([first]) == {"kubernetes.io/arch": "arm64", "disk": "ssd", "zone": "a"}
    assert kind_labels([]) == {}


def cluster_queue(flavors: list[dict[str, str]], reserved: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A ClusterQueue with one resource group: one flavor per entry of `flavors` (resource -> nominalQuota,
    or `resource/borrow` -> borrowingLimit)."""
    quotas = []
    for index, quota in enumerate(flavors):
        resources = []
        for name, value in quota.items():
            if name.endswith("/borrow"):
                continue
            entry = {"name": name, "nominalQuota": value}
            if f"{name}/borrow" in quota:
                entry["borrowingLimit"] = quota[f"{name}/borrow"]
            resources.append(entry)
        quotas.append({"name": f"flavor-{index}", "resources": resources})
    status: dict[str, Any] = {}
    if reserved is not None:
        used = [{"name": name, "total": total} for name, total in reserved.items()]
        status["flavorsReservation"] = [{"name": "flavor-0", "resources": used}]
    return {
        "metadata": {"name": "oscar-cq-alice"},
        "spec": {"resourceGroups": [{"flavors": quotas}], **spec},
        "status": status,
    }


@pytest.mark.parametrize(
    ("queue", "headroom"),
    [
        (cluster_queue([{"cpu": "2", "memory": "2Gi"}]), Resources(2000, 2048, UNBOUNDED)),
        (
            cluster_queue([{"cpu": "2", "memory": "2Gi"}], {"cpu": "1500m", "memory": "2Gi"}),
            Resources(500, 0, UNBOUNDED),
        ),
        (cluster_queue([{"cpu": "1"}], {"cpu": "3"}), Resources(0, UNBOUNDED, UNBOUNDED)),
        # Flavors add up; GPUs of every vendor count together.
        (
            cluster_queue(
                [{"cpu": "1", "nvidia.com/gpu": "1"}, {"cpu": "2", "amd.com/gpu": "2"}], {"nvidia.com/gpu": "1"}
            ),
            Resources(3000, UNBOUNDED, 2),
        ),
        # In a cohort it may borrow up to its borrowingLimit; without one, without bound.
        (
            cluster_queue([{"cpu": "1", "cpu/borrow": "2", "memory": "1Gi"}], cohort="team"),
            Resources(3000, UNBOUNDED, UNBOUNDED),
        ),
        (
            cluster_queue(
                [{"cpu": "1", "cpu/borrow": "2", "memory": "1Gi", "memory/borrow": "1Gi"}], cohortName="team"
            ),
            Resources(3000, 2048, UNBOUNDED),
        ),
        # Outside a cohort a borrowingLimit means nothing (Kueue refuses one there).
        (cluster_queue([{"cpu": "1", "cpu/borrow": "2"}]), Resources(1000, UNBOUNDED, UNBOUNDED)),
        (cluster_queue([{"cpu": "4"}], stopPolicy="Hold"), Resources()),
        (cluster_queue([{"cpu": "4"}], stopPolicy="HoldAndDrain"), Resources()),
        (cluster_queue([{"cpu": "4"}], stopPolicy="None"), Resources(4000, UNBOUNDED, UNBOUNDED)),
    ],
)
def test_what_a_cluster_queue_may_still_reserve(queue: dict[str, Any], headroom: Resources) -> None:
    assert cluster_queue_headroom(queue) == headroom


def test_a_cluster_queue_reads_its_admitted_usage_without_reservations_and_admits_nothing_when_inactive() -> None:
    queue = cluster_queue([{"cpu": "2"}])
    queue["status"] = {"flavorsUsage": [{"name": "flavor-0", "resources": [{"name": "cpu", "total": "500m"}]}]}
    assert cluster_queue_headroom(queue) == Resources(1500, UNBOUNDED, UNBOUNDED)
    queue["status"]["conditions"] = [{"type": "Active", "status": "False", "reason": "FlavorNotFound"}]
    assert cluster_queue_headroom(queue) == Resources()
    queue["status"]["conditions"] = [{"type": "Active", "status": "True"}]
    assert cluster_queue_headroom(queue) == Resources(1500, UNBOUNDED, UNBOUNDED)


def test_a_quota_or_usage_without_an_amount_counts_as_none() -> None:
    queue = cluster_queue([{"cpu": "2"}], {"cpu": "1"})
    del queue["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"]
    assert cluster_queue_headroom(queue) == Resources(0, UNBOUNDED, UNBOUNDED)
    queue = cluster_queue([{"cpu": "2"}], {"cpu": "1"})
    del queue["status"]["flavorsReservation"][0]["resources"][0]["total"]
    assert cluster_queue_headroom(queue) == Resources(2000, UNBOUNDED, UNBOUNDED)


def test_a_bad_quota_names_its_place() -> None:
    with pytest.raises(ObjectError) as caught:
        cluster_queue_headroom(cluster_queue([{"cpu": "2"}, {"cpu": "lots"}]))
    assert str(caught.value) == (
        "clusterqueue oscar-cq-alice: spec.resourceGroups[0].flavors[1].resources[0].nominalQuota: "
        "'lots' is not a Kubernetes quantity"
    )
    with pytest.raises(ObjectError, match=r"status.flavorsReservation\[0\].resources\[0\].total: 'x'"):
        cluster_queue_headroom(cluster_queue([{"cpu": "2"}], {"cpu": "x"}))
    with pytest.raises(ObjectError) as caught:
        cluster_queue_headroom(cluster_queue([{"cpu": "2", "cpu/borrow": "some"}], cohortName="team"))
    assert str(caught.value) == (
        "clusterqueue oscar-cq-alice: spec.resourceGroups[0].flavors[0].resources[0].borrowingLimit: "
        "'some' is not a Kubernetes quantity"
    )


def test_a_local_queue_names_its_cluster_queue() -> None:
    local = {"metadata": {"name": "oscar-lq-grayify", "namespace": "alice"}, "spec": {"clusterQueue": "oscar-cq-alice"}}
    assert local_queue_target(local) == ("alice/oscar-lq-grayify", "oscar-cq-alice")
    assert local_queue_target({"metadata": {"name": "q", "namespace": "n"}}) == ("n/q", "")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1Ki", Fraction(2**10)),
        ("1Mi", Fraction(2**20)),
        ("1Gi", Fraction(2**30)),
        ("1Ti", Fraction(2**40)),
        ("1Pi", Fraction(2**50)),
        ("1Ei", Fraction(2**60)),
        ("1n", Fraction(1, 10**9)),
        ("1u", Fraction(1, 10**6)),
        ("1m", Fraction(1, 1000)),
        ("1", Fraction(1)),
        ("1k", Fraction(10**3)),
        ("1M", Fraction(10**6)),
        ("1G", Fraction(10**9)),
        ("1T", Fraction(10**12)),
        ("1P", Fraction(10**15)),
        ("1E", Fraction(10**18)),
        ("2e3", Fraction(2000)),
        ("2E-3", Fraction(2, 1000)),
        ("1e30", Fraction(10**30)),
        ("1e-30", Fraction(1, 10**30)),
        ("-1.5Gi", Fraction(-3 * 2**29)),
        ("+2", Fraction(2)),
        (".5", Fraction(1, 2)),
        ("1" * 64, Fraction(int("1" * 64))),
    ],
)
def test_every_quantity_suffix_is_read_exactly(text: str, value: Fraction) -> None:
    assert quantity(text, "q") == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1" * 65, f"{'1' * 40!r} is not a Kubernetes quantity"),
        ("1e31", "'1e31' is out of range"),
        ("1e-31", "'1e-31' is out of range"),
        ("0" * 40 + "1e31", f"{'0' * 40!r} is out of range"),
    ],
)
def test_quantities_beyond_the_limits_are_refused_naming_their_start(text: str, message: str) -> None:
    with pytest.raises(ObjectError) as caught:
        quantity(text, "node n: status.allocatable.memory")
    assert str(caught.value) == f"node n: status.allocatable.memory: {message}"


def test_times_are_rfc_3339_and_errors_name_their_field() -> None:
    assert timestamp("2026-05-04T10:00:00Z", "t") == 1_777_888_800.0
    with pytest.raises(ObjectError) as not_text:
        timestamp(5, "pod a/b: metadata.creationTimestamp")
    assert str(not_text.value) == "pod a/b: metadata.creationTimestamp: 5 is not a time"
    with pytest.raises(ObjectError) as not_a_time:
        timestamp("soon" * 20, "pod a/b: metadata.creationTimestamp")
    assert str(not_a_time.value) == f"pod a/b: metadata.creationTimestamp: {'soon' * 10!r} is not an RFC 3339 time"


def error_of(call: Any, *args: Any) -> str:
    with pytest.raises(ObjectError) as caught:
        call(*args)
    return str(caught.value)


def test_each_bad_resource_names_its_place() -> None:
    assert resource_list({"pods": "110", "amd.com/gpu": "2"}, "r") == Resources(0, 0, 2, 110)
    assert resource_list({}, "r") == Resources(0, 0, 0, 0)
    for name in ("memory", "pods", "nvidia.com/gpu"):
        assert error_of(resource_list, {name: "x"}, "node n: status.capacity") == (
            f"node n: status.capacity.{name}: 'x' is not a Kubernetes quantity"
        )
    init = {"initContainers": [container("x")]}
    assert error_of(pod_requests, init, "pod a/b: spec") == (
        "pod a/b: spec.initContainers[0].resources.cpu: 'x' is not a Kubernetes quantity"
    )
    assert error_of(pod_requests, {"overhead": {"cpu": "x"}}, "pod a/b: spec") == (
        "pod a/b: spec.overhead.cpu: 'x' is not a Kubernetes quantity"
    )
    # A container cannot ask for pod slots: a `pods` entry is ignored, whatever it says.
    slots = {"name": "c", "resources": {"requests": {"cpu": "1", "pods": "lots"}}}
    assert pod_requests({"containers": [slots]}, "pod") == Resources(1000, 0, 0, 1)


def test_sidecars_add_to_the_app_containers() -> None:
    spec = {"containers": [container("500m")], "initContainers": [container("100m", restartPolicy="Always")]}
    assert pod_requests(spec, "pod") == Resources(600, 0, 0, 1)


def object_pod(phase: str = "Running", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "n", **meta}, "spec": {}, "status": {"phase": phase}}


def test_node_owned_and_finished_pods() -> None:
    assert belongs_to_node(object_pod(annotations={"kubernetes.io/config.mirror": "abc"})), "a static pod"
    assert belongs_to_node(object_pod(ownerReferences=[{"kind": "DaemonSet", "name": "d"}]))
    assert not belongs_to_node(object_pod(ownerReferences=[{"kind": "ReplicaSet", "name": "r"}]))
    assert [is_finished(object_pod(phase)) for phase in ("Succeeded", "Failed", "Running", "Pending")] == [
        True,
        True,
        False,
        False,
    ]
    assert interruptible(pod("ReplicationController")) is True
    job_and_replicas = object_pod(ownerReferences=[{"kind": "Job", "name": "j"}, {"kind": "ReplicaSet", "name": "r"}])
    assert interruptible(job_and_replicas) is False, "a job's pod, whatever else owns it"
    assert interruptible(pod("Job", **{"cluster-autoscaler.kubernetes.io/safe-to-evict": "maybe"})) is False


def test_pod_fields_and_their_errors() -> None:
    bad_time = {**object_pod("Pending", creationTimestamp="yesterday"), "spec": {"containers": [container("1")]}}
    assert error_of(pending_pod, bad_time) == (
        "pod n/p: metadata.creationTimestamp: 'yesterday' is not an RFC 3339 time"
    )
    undated = {**object_pod("Pending"), "spec": {"containers": [container("1")]}}
    assert (pending_pod(undated).created, pending_pod(undated).requests) == (0.0, Resources(1000, 0, 0, 1))
    assert is_pending({"metadata": {"name": "p"}, "spec": {}}), "a pod without a status yet is pending"
    bad_request = {**object_pod(), "spec": {"containers": [container("x")]}}
    for read in (running_pod, pending_pod):
        assert error_of(read, bad_request) == (
            "pod n/p: spec.containers[0].resources.cpu: 'x' is not a Kubernetes quantity"
        )


def test_a_node_view_reads_arch_readiness_capacity_cordon_and_role() -> None:
    bare = {"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/master": "true"}}}
    assert node_view(bare) == NodeView(
        "n", "", {"node-role.kubernetes.io/master": "true"}, Resources(), Resources(), False, 0.0, False, True
    )
    full = {
        "metadata": {"name": "n"},
        "spec": {"unschedulable": True},
        "status": {
            "nodeInfo": {"architecture": "arm64"},
            "conditions": [{"type": "Ready", "status": "True"}],
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        },
    }
    view = node_view(full)
    assert (view.arch, view.ready, view.ready_since, view.cordoned, view.control_plane) == (
        "arm64",
        True,
        0.0,
        True,
        False,
    )
    assert view.capacity == Resources(4000, 8192, 0, 110)
    full["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": "now"}]
    assert error_of(node_view, full) == "node n: Ready condition: 'now' is not an RFC 3339 time"
    full["status"]["capacity"] = {"cpu": "lots"}
    full["status"]["conditions"] = []
    assert error_of(node_view, full) == "node n: status.capacity.cpu: 'lots' is not a Kubernetes quantity"


def test_per_node_labels_never_describe_a_kind() -> None:
    labels = {name: "x" for name in ("k3s.io/hostname", "k3s.io/internal-ip", "k3s.io/external-ip")}
    assert kind_labels([{**labels, "disk": "ssd"}]) == {"disk": "ssd"}


def test_an_admitted_workload_without_a_quota_condition_is_done() -> None:
    assert workload_state({"metadata": {"name": "w"}, "spec": {}, "status": {"admission": {"clusterQueue": "q"}}}) == (
        "done"
    )
    reserved = {"admission": {"clusterQueue": "q"}, "conditions": [condition("QuotaReserved", "True")]}
    assert workload_state({"metadata": {"name": "w"}, "spec": {}, "status": reserved}) == "waiting"


def workload(pod_set: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "w", "namespace": "n", **meta}, "spec": {"podSets": [pod_set]}}


@pytest.mark.parametrize("count", [0, 100_000])
def test_a_pod_set_count_at_its_limits_is_read(count: int) -> None:
    template = {"spec": {"containers": [container("1")], "nodeSelector": {"disk": "ssd"}}}
    read = kueue_workload(workload({"count": count, "template": template}, creationTimestamp="2026-05-04T10:00:00Z"))
    assert read == KueueWorkload(
        "n/w", "", (PodSet(count, Resources(1000, 0, 0, 1), {"disk": "ssd"}),), created=1_777_888_800.0
    )


@pytest.mark.parametrize("count", [-1, 100_001, True, "2"])
def test_a_pod_set_count_beyond_its_limits_is_refused(count: object) -> None:
    assert error_of(kueue_workload, workload({"count": count})) == (
        f"workload n/w: spec.podSets[0].count {count!r} is not a pod count"
    )


def test_a_workload_without_count_queue_or_creation_time() -> None:
    read = kueue_workload(workload({"template": {"spec": {}}}))
    assert (read.queue, read.created, read.pod_sets[0].count) == ("", 0.0, 1)
    assert error_of(kueue_workload, workload({"template": {"spec": {"containers": [container("x")]}}})) == (
        "workload n/w: spec.podSets[0].containers[0].resources.cpu: 'x' is not a Kubernetes quantity"
    )
    assert error_of(kueue_workload, workload({}, creationTimestamp="soon")) == (
        "workload n/w: metadata.creationTimestamp: 'soon' is not an RFC 3339 time"
    )
