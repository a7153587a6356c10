"""API objects read into the policy's terms: quantities, effective pod requests, who may be interrupted, which pods
wait for a node, and which Kueue workloads are demand."""

from __future__ import annotations

from typing import Any

import pytest

from oscar_deploy.autoscaler.kubeobjects import (
    ObjectError,
    cluster_queue_headroom,
    cpu_milli,
    interruptible,
    is_pending,
    kind_labels,
    local_queue_target,
    memory_mib,
    node_selector,
    pod_requests,
    workload_state,
)
from oscar_deploy.autoscaler.model import UNBOUNDED, Resources


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
