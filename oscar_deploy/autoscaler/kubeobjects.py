"""Kubernetes API objects (nodes, pods, Kueue workloads, as the JSON the API serves) read into the policy's terms.

Pure functions, no I/O: the observer feeds them what its watches hold. What they follow, from the Kubernetes
API reference and the scheduler's rules:

* Quantities (`500m`, `2`, `3920436Ki`, `1Gi`, `1e3`) are parsed exactly; CPU is rounded up to whole
  millicores and memory up to whole MiB, so a sum of requests never comes out smaller than the real one.
* A pod's effective request is what the scheduler reserves: the larger of its app containers plus its sidecars
  (init containers with `restartPolicy: Always`) and the peak of its one-shot init containers (each plus the
  sidecars started before it), plus the pod overhead. A container that gives only limits requests its limits.
* DaemonSet pods and mirror (static) pods belong to the node, not to the workload: they are ignored, and never
  evicted. Finished pods (Succeeded, Failed) take no room.
* Whether a pod may be interrupted: OSCAR runs each asynchronous invocation as a batch Job in `oscar-svc`, and a
  Job's pod evicted is a job restarted from the beginning (OSCAR sets backoffLimit 0, so it is simply lost):
  never. Pods of ReplicaSets (Deployments, Knative revisions), StatefulSets and ReplicationControllers are
  recreated by their controller elsewhere: yes. A pod without a controller would be gone for good: never. The
  annotation `cluster-autoscaler.kubernetes.io/safe-to-evict` ("true"/"false") overrides all of this, as it
  does for Cluster Autoscaler.
  The Ansible role node_drain applies the same rule (playbooks/roles/node_drain/templates/job_pods.j2) to wait
  for a node's jobs before `kubectl drain`; tests/unit/test_node_drain.py keeps the two alike.
* A Kueue workload is demand for nodes while Kueue may still admit it: not finished, not admitted, active, and
  not held back by quota (QuotaReserved=False means the ClusterQueue has no room: more nodes would not help).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from oscar_deploy.autoscaler.model import (
    ARCH_LABEL,
    UNBOUNDED,
    KueueWorkload,
    PendingPod,
    PodInfo,
    PodSet,
    Resources,
)

Obj = Mapping[str, Any]

CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# Owners that recreate an evicted pod elsewhere.
RECREATING_OWNERS = ("ReplicaSet", "StatefulSet", "ReplicationController")
# Labels that name one node and so never describe a kind of node.
PER_NODE_LABELS = ("kubernetes.io/hostname", "k3s.io/hostname", "k3s.io/internal-ip", "k3s.io/external-ip")

_QUANTITY = re.compile(r"^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}


class ObjectError(ValueError):
    """An API object this code cannot read (a malformed quantity or timestamp); the message names the field."""


def quantity(text: object, where: str) -> Fraction:
    """A Kubernetes resource quantity, exactly."""
    match = _QUANTITY.match(str(text).strip()) if isinstance(text, str | int | float) else None
    if match is None or len(str(text)) > 64:
        raise ObjectError(f"{where}: {str(text)[:40]!r} is not a Kubernetes quantity")
    sign, number, suffix = match.group(1), match.group(2), match.group(3) or ""
    value = Fraction(number)
    if suffix in _BINARY:
        value *= _BINARY[suffix]
    elif suffix in _DECIMAL:
        value *= _DECIMAL[suffix]
    else:
        exponent = int(suffix[1:])
        if abs(exponent) > 30:
            raise ObjectError(f"{where}: {str(text)[:40]!r} is out of range")
        value *= Fraction(10) ** exponent
    return -value if sign == "-" else value


def cpu_milli(text: object, where: str) -> int:
    return math.ceil(quantity(text, where) * 1000)


def memory_mib(text: object, where: str) -> int:
    return math.ceil(quantity(text, where) / 2**20)


def whole(text: object, where: str) -> int:
    return math.ceil(quantity(text, where))


def timestamp(text: object, where: str) -> float:
    """An RFC 3339 time as the API writes it (`2026-05-04T10:00:00Z`), in seconds since the epoch."""
    if not isinstance(text, str):
        raise ObjectError(f"{where}: {text!r} is not a time")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ObjectError(f"{where}: {text[:40]!r} is not an RFC 3339 time") from None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: object) -> dict[str, str]:
    return {str(key): str(item) for key, item in _mapping(value).items()}


def key_of(obj: Obj) -> str:
    """`namespace/name` (or `name` for cluster-scoped objects): how objects are told apart here."""
    meta = _mapping(obj.get("metadata"))
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


# --- resources ------------------------------------------------------------------------------------------------


def resource_list(values: object, where: str) -> Resources:
    """cpu, memory, GPUs and pods of a ResourceList (a node's allocatable or capacity, a container's requests)."""
    data = _mapping(values)
    gpu = sum(whole(data[name], f"{where}.{name}") for name in GPU_RESOURCES if name in data)
    return Resources(
        cpu_milli(data["cpu"], f"{where}.cpu") if "cpu" in data else 0,
        memory_mib(data["memory"], f"{where}.memory") if "memory" in data else 0,
        gpu,
        whole(data["pods"], f"{where}.pods") if "pods" in data else 0,
    )


def _container_request(container: Obj, where: str) -> Resources:
    resources = _mapping(container.get("resources"))
    merged = dict(_mapping(resources.get("limits")))
    merged.update(_mapping(resources.get("requests")))
    merged.pop("pods", None)
    return resource_list(merged, f"{where}.resources")


def _peak(first: Resources, second: Resources) -> Resources:
    return Resources(
        max(first.cpu_milli, second.cpu_milli),
        max(first.memory_mib, second.memory_mib),
        max(first.gpu, second.gpu),
        0,
    )


def pod_requests(pod_spec: Obj, where: str) -> Resources:
    """The pod's effective request (see the module's docstring), with the one pod slot it takes."""
    app = Resources()
    for index, container in enumerate(_list(pod_spec.get("containers"))):
        app = app + _container_request(_mapping(container), f"{where}.containers[{index}]")
    sidecars = Resources()
    init_peak = Resources()
    for index, container in enumerate(_list(pod_spec.get("initContainers"))):
        request = _container_request(_mapping(container), f"{where}.initContainers[{index}]")
        if _mapping(container).get("restartPolicy") == "Always":
            sidecars = sidecars + request
            init_peak = _peak(init_peak, sidecars)
        else:
            init_peak = _peak(init_peak, sidecars + request)
    total = _peak(app + sidecars, init_peak)
    overhead = resource_list(pod_spec.get("overhead"), f"{where}.overhead")
    return Resources(total.cpu_milli + overhead.cpu_milli, total.memory_mib + overhead.memory_mib, total.gpu, 1)


def node_selector(pod_spec: Obj) -> dict[str, str]:
    """The labels a node needs for this pod: its nodeSelector, plus every single-valued `In` requirement of a
    required node affinity with one term (what an equality selector can say; other forms are left out)."""
    selector = _strings(pod_spec.get("nodeSelector"))
    affinity = _mapping(_mapping(pod_spec.get("affinity")).get("nodeAffinity"))
    required = _mapping(affinity.get("requiredDuringSchedulingIgnoredDuringExecution"))
    terms = _list(required.get("nodeSelectorTerms"))
    if len(terms) == 1:
        for expression in _list(_mapping(terms[0]).get("matchExpressions")):
            entry = _mapping(expression)
            values = _list(entry.get("values"))
            if entry.get("operator") == "In" and len(values) == 1 and isinstance(entry.get("key"), str):
                selector.setdefault(str(entry["key"]), str(values[0]))
    return selector


# --- pods -----------------------------------------------------------------------------------------------------


def _owner_kinds(pod: Obj) -> list[str]:
    return [str(_mapping(owner).get("kind")) for owner in _list(_mapping(pod.get("metadata")).get("ownerReferences"))]


def belongs_to_node(pod: Obj) -> bool:
    """DaemonSet and mirror pods: part of the node itself; they neither keep it busy nor block its drain."""
    annotations = _mapping(_mapping(pod.get("metadata")).get("annotations"))
    return "DaemonSet" in _owner_kinds(pod) or MIRROR_ANNOTATION in annotations


def is_finished(pod: Obj) -> bool:
    return _mapping(pod.get("status")).get("phase") in ("Succeeded", "Failed")


def interruptible(pod: Obj) -> bool:
    """Whether evicting the pod loses no work (see the module's docstring)."""
    annotations = _mapping(_mapping(pod.get("metadata")).get("annotations"))
    override = str(annotations.get(SAFE_TO_EVICT, ""))
    if override in ("true", "false"):
        return override == "true"
    kinds = _owner_kinds(pod)
    if "Job" in kinds:
        return False
    return any(kind in RECREATING_OWNERS for kind in kinds)


def node_of(pod: Obj) -> str | None:
    name = _mapping(pod.get("spec")).get("nodeName")
    return str(name) if name else None


def is_pending(pod: Obj) -> bool:
    """Waiting for a node: Pending, not bound, not being deleted and not held by a scheduling gate (a gated pod
    is not the scheduler's yet; Kueue's own gate is counted through its workload)."""
    spec, meta = _mapping(pod.get("spec")), _mapping(pod.get("metadata"))
    return (
        _mapping(pod.get("status")).get("phase", "Pending") == "Pending"
        and not spec.get("nodeName")
        and not meta.get("deletionTimestamp")
        and not _list(spec.get("schedulingGates"))
    )


def running_pod(pod: Obj) -> PodInfo:
    key = key_of(pod)
    return PodInfo(key, pod_requests(_mapping(pod.get("spec")), f"pod {key}: spec"), interruptible(pod))


def pending_pod(pod: Obj) -> PendingPod:
    key = key_of(pod)
    spec, meta = _mapping(pod.get("spec")), _mapping(pod.get("metadata"))
    created = meta.get("creationTimestamp")
    return PendingPod(
        key,
        pod_requests(spec, f"pod {key}: spec"),
        created=timestamp(created, f"pod {key}: metadata.creationTimestamp") if created else 0.0,
        node_selector=node_selector(spec),
        interruptible=interruptible(pod),
    )


# --- nodes ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeView:
    """What a Node object says about one node."""

    name: str
    arch: str
    labels: Mapping[str, str]
    allocatable: Resources
    capacity: Resources
    ready: bool
    ready_since: float
    cordoned: bool
    control_plane: bool


def node_view(node: Obj) -> NodeView:
    meta, spec, status = _mapping(node.get("metadata")), _mapping(node.get("spec")), _mapping(node.get("status"))
    name = str(meta.get("name"))
    labels = _strings(meta.get("labels"))
    arch = labels.get(ARCH_LABEL) or str(_mapping(status.get("nodeInfo")).get("architecture") or "")
    ready, since = False, 0.0
    for condition in _list(status.get("conditions")):
        entry = _mapping(condition)
        if entry.get("type") == "Ready":
            ready = entry.get("status") == "True"
            changed = entry.get("lastTransitionTime")
            since = timestamp(changed, f"node {name}: Ready condition") if changed else 0.0
    return NodeView(
        name=name,
        arch=arch,
        labels=labels,
        allocatable=resource_list(status.get("allocatable"), f"node {name}: status.allocatable"),
        capacity=resource_list(status.get("capacity"), f"node {name}: status.capacity"),
        ready=ready,
        ready_since=since,
        cordoned=bool(spec.get("unschedulable")),
        control_plane=any(label in labels for label in CONTROL_PLANE_LABELS),
    )


def kind_labels(label_sets: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The labels every node of a kind carries with the same value, without those that name one node."""
    common: dict[str, str] | None = None
    for labels in label_sets:
        if common is None:
            common = {key: value for key, value in labels.items() if key not in PER_NODE_LABELS}
        else:
            common = {key: value for key, value in common.items() if labels.get(key) == value}
    return common or {}


# --- Kueue ----------------------------------------------------------------------------------------------------


def _condition(obj: Obj, kind: str) -> Mapping[str, Any] | None:
    for condition in _list(_mapping(obj.get("status")).get("conditions")):
        if _mapping(condition).get("type") == kind:
            return _mapping(condition)
    return None


def workload_state(workload: Obj) -> str:
    """`waiting` (Kueue may admit it: demand for nodes), `quota` (held back by its ClusterQueue's quota or an
    inadmissible queue) or `done` (admitted, finished or deactivated: its pods, if any, are seen as pods)."""
    spec, status = _mapping(workload.get("spec")), _mapping(workload.get("status"))
    finished = _condition(workload, "Finished")
    admitted = _condition(workload, "Admitted")
    if spec.get("active") is False or (finished and finished.get("status") == "True"):
        return "done"
    if admitted and admitted.get("status") == "True":
        return "done"
    reserved = _condition(workload, "QuotaReserved")
    if reserved is not None and reserved.get("status") == "False":
        return "quota"
    if status.get("admission") and reserved is None:
        return "done"
    return "waiting"


def kueue_workload(workload: Obj) -> KueueWorkload:
    key = key_of(workload)
    spec, meta = _mapping(workload.get("spec")), _mapping(workload.get("metadata"))
    pod_sets = []
    for index, entry in enumerate(_list(spec.get("podSets"))):
        pod_set = _mapping(entry)
        template = _mapping(_mapping(pod_set.get("template")).get("spec"))
        count = pod_set.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 100_000:
            raise ObjectError(f"workload {key}: spec.podSets[{index}].count {count!r} is not a pod count")
        pod_sets.append(
            PodSet(count, pod_requests(template, f"workload {key}: spec.podSets[{index}]"), node_selector(template))
        )
    created = meta.get("creationTimestamp")
    return KueueWorkload(
        key,
        str(spec.get("queueName") or ""),
        tuple(pod_sets),
        created=timestamp(created, f"workload {key}: metadata.creationTimestamp") if created else 0.0,
    )


# --- Kueue queues -------------------------------------------------------------------------------------------


def local_queue_target(local_queue: Obj) -> tuple[str, str]:
    """(`namespace/name` of a LocalQueue, the name of the ClusterQueue its workloads go to)."""
    return key_of(local_queue), str(_mapping(local_queue.get("spec")).get("clusterQueue") or "")


def cluster_queue_headroom(cluster_queue: Obj) -> Resources:
    """How much more of cpu, memory and GPUs the ClusterQueue may still reserve for workloads: its nominal quota
    over every flavor, plus what it may borrow in a cohort (its borrowingLimit; without one, no bound), less
    what its workloads reserve now. A resource it does not cover is not bounded here (`UNBOUNDED`); a queue
    stopped by its stopPolicy, or not Active, admits nothing."""
    key = key_of(cluster_queue)
    spec, status = _mapping(cluster_queue.get("spec")), _mapping(cluster_queue.get("status"))
    active = _condition(cluster_queue, "Active")
    if spec.get("stopPolicy") in ("Hold", "HoldAndDrain") or (active is not None and active.get("status") == "False"):
        return Resources()
    in_cohort = bool(spec.get("cohortName") or spec.get("cohort"))  # v1beta2 names it cohortName, v1beta1 cohort
    limit: dict[str, Fraction] = {}
    unbounded: set[str] = set()
    for group_index, group in enumerate(_list(spec.get("resourceGroups"))):
        for flavor_index, flavor in enumerate(_list(_mapping(group).get("flavors"))):
            for index, entry in enumerate(_list(_mapping(flavor).get("resources"))):
                quota = _mapping(entry)
                name = str(quota.get("name"))
                where = (
                    f"clusterqueue {key}: spec.resourceGroups[{group_index}].flavors[{flavor_index}].resources[{index}]"
                )
                limit[name] = limit.get(name, Fraction(0)) + quantity(
                    quota.get("nominalQuota", "0"), f"{where}.nominalQuota"
                )
                if in_cohort:
                    if quota.get("borrowingLimit") is None:
                        unbounded.add(name)
                    else:
                        limit[name] += quantity(quota["borrowingLimit"], f"{where}.borrowingLimit")
    reserved: dict[str, Fraction] = {}
    usage_field = "flavorsReservation" if "flavorsReservation" in status else "flavorsUsage"
    for flavor_index, flavor in enumerate(_list(status.get(usage_field))):
        for index, entry in enumerate(_list(_mapping(flavor).get("resources"))):
            used = _mapping(entry)
            name = str(used.get("name"))
            where = f"clusterqueue {key}: status.{usage_field}[{flavor_index}].resources[{index}].total"
            reserved[name] = reserved.get(name, Fraction(0)) + quantity(used.get("total", "0"), where)

    def free(name: str) -> Fraction | None:
        if name not in limit or name in unbounded:
            return None
        return max(Fraction(0), limit[name] - reserved.get(name, Fraction(0)))

    cpu, memory = free("cpu"), free("memory")
    gpus = [free(name) for name in GPU_RESOURCES if name in limit]
    return Resources(
        UNBOUNDED if cpu is None else math.floor(cpu * 1000),
        UNBOUNDED if memory is None else math.floor(memory / 2**20),
        UNBOUNDED if not gpus or None in gpus else math.floor(sum(g for g in gpus if g is not None)),
    )
