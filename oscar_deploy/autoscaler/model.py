"""The autoscaler's data: what the policy sees (a cluster snapshot), how it is configured, and what it decides.

Everything is a frozen dataclass of plain values, so a snapshot can come from the Kubernetes API, from the
simulator or from a test, and a decision can be applied by a power manager, by the simulator or only printed.
Resources are integers (millicores, MiB, whole GPUs, pod slots) so sums and fits are exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeGuard

ARCH_LABEL = "kubernetes.io/arch"
# An amount no request reaches: what a Kueue queue's headroom holds for a resource its quota does not bound.
UNBOUNDED = 10**15


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of CPU (millicores), memory (MiB), GPUs and pod slots: a request, a capacity or what is free."""

    cpu_milli: int = 0
    memory_mib: int = 0
    gpu: int = 0
    pods: int = 0

    @classmethod
    def request(cls, cpu_milli: int, memory_mib: int, gpu: int = 0) -> Resources:
        """A pod's requests: the given amounts plus the one pod slot every pod takes on its node."""
        return cls(cpu_milli, memory_mib, gpu, 1)

    @classmethod
    def node(cls, cpu_milli: int, memory_mib: int, gpu: int = 0, pods: int = 110) -> Resources:
        """A node's capacity or allocatable; 110 pod slots is the kubelet's default."""
        return cls(cpu_milli, memory_mib, gpu, pods)

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_milli + other.cpu_milli,
            self.memory_mib + other.memory_mib,
            self.gpu + other.gpu,
            self.pods + other.pods,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_milli - other.cpu_milli,
            self.memory_mib - other.memory_mib,
            self.gpu - other.gpu,
            self.pods - other.pods,
        )

    def fits_in(self, free: Resources) -> bool:
        return (
            self.cpu_milli <= free.cpu_milli
            and self.memory_mib <= free.memory_mib
            and self.gpu <= free.gpu
            and self.pods <= free.pods
        )

    def copies_in(self, free: Resources) -> int:
        """How many pods with these requests fit in `free` (at most `free.pods`, so empty requests stay finite)."""
        count = free.pods // self.pods if self.pods else free.pods
        if self.cpu_milli:
            count = min(count, free.cpu_milli // self.cpu_milli)
        if self.memory_mib:
            count = min(count, free.memory_mib // self.memory_mib)
        if self.gpu:
            count = min(count, free.gpu // self.gpu)
        return max(count, 0)

    def share_of(self, allocatable: Resources) -> float:
        """The largest fraction of `allocatable` this uses among CPU, memory and GPU (the dominant share)."""
        shares = [0.0]
        if allocatable.cpu_milli:
            shares.append(self.cpu_milli / allocatable.cpu_milli)
        if allocatable.memory_mib:
            shares.append(self.memory_mib / allocatable.memory_mib)
        if allocatable.gpu:
            shares.append(self.gpu / allocatable.gpu)
        return max(shares)

    def describe(self) -> str:
        text = f"{self.cpu_milli}m CPU, {self.memory_mib}Mi"
        return f"{text}, {self.gpu} GPU" if self.gpu else text


NOTHING = Resources()


class PowerState(StrEnum):
    """A worker's power state as the power manager and the node's Ready condition report it."""

    ON = "on"  # powered and Ready
    OFF = "off"
    BOOTING = "booting"  # powered on, not Ready yet
    STOPPING = "stopping"  # power-off requested, not off yet
    FAILED = "failed"  # the power manager reported that the last power-on failed


@dataclass(frozen=True, slots=True)
class PodInfo:
    """A pod running on a node. OSCAR job pods (batch Jobs in oscar-svc) are not interruptible: evicting one
    restarts the job from the beginning. Knative and Deployment pods are: their controller recreates them."""

    name: str
    requests: Resources
    interruptible: bool = False


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A worker node. `power_since` is when it entered its power state (for BOOTING, when the boot started);
    `idle_since` is when a Ready node last became empty (None while it runs pods or is not Ready).
    `our_boot`: a BOOTING node is in a boot the autoscaler started (powered on, not Ready since); otherwise it
    was Ready and went not Ready, or nobody knows why it is not Ready, and `power_since` is when it was first
    seen so."""

    name: str
    arch: str
    allocatable: Resources
    power: PowerState
    power_since: float = 0.0
    pods: tuple[PodInfo, ...] = ()
    capacity: Resources = NOTHING
    labels: Mapping[str, str] = field(default_factory=dict)
    cordoned: bool = False
    idle_since: float | None = None
    pods_changed_at: float = 0.0
    template: str = ""
    our_boot: bool = False
    requested: Resources = field(init=False, compare=False)

    def __post_init__(self) -> None:
        cpu = memory = gpu = 0
        for pod in self.pods:
            cpu += pod.requests.cpu_milli
            memory += pod.requests.memory_mib
            gpu += pod.requests.gpu
        object.__setattr__(self, "requested", Resources(cpu, memory, gpu, len(self.pods)))

    @property
    def free(self) -> Resources:
        return self.allocatable - self.requested

    @property
    def runs_job(self) -> bool:
        """True when at least one pod may not be interrupted: the node must not be drained or powered off."""
        return any(not pod.interruptible for pod in self.pods)


@dataclass(frozen=True, slots=True)
class PendingPod:
    """A pod the scheduler could not place (PodScheduled=False, reason Unschedulable)."""

    name: str
    requests: Resources
    created: float = 0.0
    node_selector: Mapping[str, str] = field(default_factory=dict)
    interruptible: bool = False


@dataclass(frozen=True, slots=True)
class PodSet:
    """One pod set of a Kueue workload: `count` pods with the same requests and node selector."""

    count: int
    requests: Resources
    node_selector: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KueueWorkload:
    """A Kueue workload waiting for admission. OSCAR creates its jobs suspended when Kueue is on, so until
    admission they have no pods and a pod-watching autoscaler does not see them."""

    name: str
    queue: str
    pod_sets: tuple[PodSet, ...]
    created: float = 0.0


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """What the policy sees at time `now` (seconds on any monotonic clock shared by all timestamps here).

    `queue_headroom` is what each ClusterQueue may still reserve (its free quota, `UNBOUNDED` for a resource it
    does not bound); a queue that is not listed has no limit. A workload's `queue` names its ClusterQueue.
    """

    now: float
    nodes: tuple[NodeInfo, ...]
    pending: tuple[PendingPod, ...] = ()
    workloads: tuple[KueueWorkload, ...] = ()
    queue_headroom: Mapping[str, Resources] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeTemplate:
    """A kind of worker the cluster can power on: its architecture, labels and allocatable resources."""

    name: str
    arch: str
    allocatable: Resources
    labels: Mapping[str, str] = field(default_factory=dict)
    cost_per_hour: float = 1.0

    def admits(self, selector: Mapping[str, str]) -> bool:
        """Whether a pod with this node selector may run on nodes of this template."""
        for key, value in selector.items():
            if key == ARCH_LABEL:
                if value != self.arch:
                    return False
            elif self.labels.get(key) != value:
                return False
        return True

    def describes(self, node: NodeInfo) -> bool:
        if node.template:
            return node.template == self.name
        return node.arch == self.arch and all(node.labels.get(key) == value for key, value in self.labels.items())


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """How the policy scales. Times are seconds; `max_concurrent_boots` 0 means no limit.

    The first six values come from the cluster spec (`workers.min/max`, `platform.autoscaler`); the rest are
    properties of the nodes (templates, boot time) or tuning with documented defaults. `boot_time_measured`
    says the boot-time estimate comes from this cluster's own boots, not from a default: only then is a boot
    that outlasts `give_up_boot_factor` x the estimate taken as failed before `max_wait_poweron`.
    """

    templates: tuple[NodeTemplate, ...]
    min_nodes: int = 0
    max_nodes: int = 3
    idle_time: float = 300.0
    extra_nodes_free: int = 0
    max_wait_poweron: float = 3000.0
    reconsider_job_time: float = 60.0
    period: float = 20.0
    boot_time_estimate: float = 180.0
    shutdown_time_estimate: float = 60.0
    max_concurrent_boots: int = 0
    reaction_delay: float = 1.0
    consolidation_threshold: float = 0.5
    stuck_boot_factor: float = 2.0
    give_up_boot_factor: float = 4.0
    boot_time_measured: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not self.templates:
            problems.append("templates: at least one node template is needed")
        if self.min_nodes < 0 or self.max_nodes < self.min_nodes:
            problems.append(f"min_nodes/max_nodes: need 0 <= min <= max (got {self.min_nodes}, {self.max_nodes})")
        for name in (
            "idle_time",
            "max_wait_poweron",
            "reconsider_job_time",
            "boot_time_estimate",
            "shutdown_time_estimate",
            "reaction_delay",
        ):
            if getattr(self, name) < 0:
                problems.append(f"{name}: must not be negative")
        if self.period <= 0:
            problems.append("period: must be positive")
        if self.extra_nodes_free < 0 or self.max_concurrent_boots < 0:
            problems.append("extra_nodes_free/max_concurrent_boots: must not be negative")
        if not 0 < self.consolidation_threshold <= 1:
            problems.append("consolidation_threshold: must be in (0, 1]")
        if self.stuck_boot_factor < 1:
            problems.append("stuck_boot_factor: must be at least 1")
        if self.give_up_boot_factor < self.stuck_boot_factor:
            problems.append("give_up_boot_factor: must be at least stuck_boot_factor")
        if problems:
            raise ValueError("; ".join(problems))


def config_from_values(
    *,
    templates: tuple[NodeTemplate, ...],
    min_nodes: int,
    max_nodes: int,
    idle_time: float,
    reconsider_job_time: float,
    max_wait_poweron: float,
    period: float,
    extra_nodes_free: int,
    boot_time_estimate: float = 180.0,
    max_concurrent_boots: int = 0,
) -> PolicyConfig:
    """The configuration from the plain values of a cluster spec's `workers` and `platform.autoscaler`."""
    return PolicyConfig(
        templates=templates,
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        idle_time=float(idle_time),
        extra_nodes_free=extra_nodes_free,
        max_wait_poweron=float(max_wait_poweron),
        reconsider_job_time=float(reconsider_job_time),
        period=float(period),
        boot_time_estimate=float(boot_time_estimate),
        max_concurrent_boots=max_concurrent_boots,
    )


class Action(StrEnum):
    POWER_ON = "power-on"
    POWER_OFF = "power-off"  # the node runs no pod (or never became Ready)
    DRAIN = "drain"  # evict its pods (all interruptible), then power it off
    CORDON = "cordon"  # no new pods; it powers off once empty
    UNCORDON = "uncordon"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    node: str
    reason: str

    def __str__(self) -> str:
        return f"{self.action} {self.node}: {self.reason}"


@dataclass(frozen=True, slots=True)
class PolicyState:
    """What the policy remembers between two decisions (it returns a new one each time; nothing is mutated).

    `needed_history` holds (time, nodes needed per template) over the last 2 x `idle_time`, so capacity is
    only given back after demand has stayed low that long. `vacated_at` (per template, level -> time) says
    since when each level of needed nodes above the current one has been vacant, and `demand_gaps` (per
    template, oldest first) how long the latest vacant levels stayed so before demand needed them again.
    `pressure_at` is the last time pods were pending beyond the ready capacity; `unneeded_since` times drain
    candidates; `cordoned_by_us` tells our cordons apart from an administrator's, which the policy never
    undoes. `running` (pod -> CPU, memory requests) and `released` ((time, CPU, memory) of pods that finished
    recently) measure how fast running pods free room; `job_started` (job pod -> when it was first seen
    running) and `job_durations` (how long the latest job pods that ended ran, oldest first) how long jobs
    run.
    """

    needed_history: tuple[tuple[float, Mapping[str, int]], ...] = ()
    pressure_at: float | None = None
    unneeded_since: Mapping[str, float] = field(default_factory=dict)
    cordoned_by_us: frozenset[str] = frozenset()
    running: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    released: tuple[tuple[float, int, int], ...] = ()
    first_seen: float | None = None
    vacated_at: Mapping[str, Mapping[int, float]] = field(default_factory=dict)
    demand_gaps: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    job_started: Mapping[str, float] = field(default_factory=dict)
    job_durations: tuple[float, ...] = ()

    def as_data(self) -> dict[str, Any]:
        """The state as JSON values, for the runtime's state file (`cordoned_by_us` is kept there already)."""
        return {
            "needed_history": [[at, dict(sorted(needed.items()))] for at, needed in self.needed_history],
            "pressure_at": self.pressure_at,
            "unneeded_since": dict(sorted(self.unneeded_since.items())),
            "running": {pod: list(requests) for pod, requests in sorted(self.running.items())},
            "released": [list(entry) for entry in self.released],
            "first_seen": self.first_seen,
            "vacated_at": {
                name: {str(level): at for level, at in sorted(levels.items())}
                for name, levels in sorted(self.vacated_at.items())
            },
            "demand_gaps": {name: list(gaps) for name, gaps in sorted(self.demand_gaps.items())},
            "job_started": dict(sorted(self.job_started.items())),
            "job_durations": list(self.job_durations),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PolicyState:
        """The state `as_data` wrote; an entry of the wrong shape is dropped (the file is read, never trusted)."""
        history = []
        for entry in _items(data.get("needed_history")):
            if (
                isinstance(entry, list)
                and len(entry) == 2
                and is_json_number(entry[0])
                and isinstance(entry[1], Mapping)
            ):
                counts = {str(k): v for k, v in entry[1].items() if _count(v)}
                history.append((float(entry[0]), counts))
        unneeded = data.get("unneeded_since")
        running = data.get("running")
        vacated = data.get("vacated_at")
        gaps = data.get("demand_gaps")
        started = data.get("job_started")
        return cls(
            needed_history=tuple(history),
            pressure_at=float(data["pressure_at"]) if is_json_number(data.get("pressure_at")) else None,
            unneeded_since=(
                {str(k): float(v) for k, v in unneeded.items() if is_json_number(v)}
                if isinstance(unneeded, Mapping)
                else {}
            ),
            running=(
                {str(k): (v[0], v[1]) for k, v in running.items() if isinstance(v, list) and _counts(v, 2)}
                if isinstance(running, Mapping)
                else {}
            ),
            released=tuple(
                (float(e[0]), e[1], e[2])
                for e in _items(data.get("released"))
                if isinstance(e, list) and len(e) == 3 and is_json_number(e[0]) and _counts(e[1:], 2)
            ),
            first_seen=float(data["first_seen"]) if is_json_number(data.get("first_seen")) else None,
            vacated_at=(
                {
                    str(name): {
                        int(level): float(at) for level, at in levels.items() if _level(level) and is_json_number(at)
                    }
                    for name, levels in vacated.items()
                    if isinstance(levels, Mapping)
                }
                if isinstance(vacated, Mapping)
                else {}
            ),
            demand_gaps=(
                {
                    str(name): tuple(float(gap) for gap in values if is_json_number(gap) and gap >= 0)
                    for name, values in gaps.items()
                    if isinstance(values, list)
                }
                if isinstance(gaps, Mapping)
                else {}
            ),
            job_started=(
                {str(k): float(v) for k, v in started.items() if is_json_number(v)}
                if isinstance(started, Mapping)
                else {}
            ),
            job_durations=tuple(float(v) for v in _items(data.get("job_durations")) if is_json_number(v) and v >= 0),
        )


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def is_json_number(value: Any) -> TypeGuard[int | float]:
    """Whether a value read from JSON is a number a float holds: not JSON's true and false (Python's bool is an
    int), nor the NaN and Infinity that Python's json reads, nor an integer too large for a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _level(key: Any) -> bool:
    """Whether a key read from JSON names a level of needed nodes: a short run of ASCII digits."""
    return isinstance(key, str) and len(key) <= 6 and key.isascii() and key.isdigit()


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _counts(values: list[Any], length: int) -> bool:
    return len(values) == length and all(_count(value) for value in values)


@dataclass(frozen=True, slots=True)
class PolicyResult:
    decisions: tuple[Decision, ...]
    state: PolicyState
    notes: tuple[str, ...] = ()
