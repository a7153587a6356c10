"""The policy's snapshot from what the watches hold, what the power manager reports and what the runtime did.

Pure: the same inputs give the same snapshot. Which workers count: those the power manager can power (its
`machines()`); servers and nodes it does not manage are left out, so the policy never decides about them.

A worker's power state combines three sources:
* the machine layer: `off`, `stopping`, `failed` are taken as they are;
* Kubernetes: a powered worker is ON once its node is Ready, BOOTING until then: since the runtime's power-on
  when it has not been seen Ready after it (our boot), or else since it was first seen not Ready (a worker that
  crashed or lost its network is given up after max_wait_poweron like a boot, unless a job pod is bound to it);
* the runtime's own record, where the machine layer cannot tell (`unknown`, a board woken by wake-on-LAN): a
  worker is booting after our power-on until Ready, stopping after our power-off while its node still looks
  Ready (the kubelet's last heartbeat), and off otherwise when not Ready.
A worker whose last power action failed is left out of the snapshot until its retry pause ends, so the policy
turns to another worker meanwhile (a worker we cordoned stays cordoned: nothing new lands on it).

Node templates (what a new worker of a kind brings) are learnt from the workers registered with Kubernetes, one
per architecture: the smallest allocatable of that kind (so packing never overestimates a node) and the
labels all of them share. A worker never registered takes the template of its architecture.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from oscar_deploy.autoscaler.kubeobjects import (
    NodeView,
    ObjectError,
    belongs_to_node,
    cluster_queue_headroom,
    is_finished,
    is_pending,
    key_of,
    kind_labels,
    kueue_workload,
    local_queue_target,
    node_of,
    node_view,
    pending_pod,
    running_pod,
    workload_state,
)
from oscar_deploy.autoscaler.model import (
    ClusterSnapshot,
    KueueWorkload,
    NodeInfo,
    NodeTemplate,
    PendingPod,
    PodInfo,
    PowerState,
    Resources,
    is_json_number,
)
from oscar_deploy.providers.power import Machine

# How long a worker may still look Ready after its power-off command before we take the command as not done.
STOPPING_GRACE = 300.0


@dataclass
class PowerRecord:
    """What the runtime did to each worker (seconds since the epoch); kept in the runtime's state file."""

    powered_on: dict[str, float] = field(default_factory=dict)
    powered_off: dict[str, float] = field(default_factory=dict)
    failed_until: dict[str, float] = field(default_factory=dict)
    cordoned: set[str] = field(default_factory=set)
    # Workers powered on whose cordon (ours) could not be lifted yet: tried again each round.
    uncordon_pending: set[str] = field(default_factory=set)
    boot_seconds: list[float] = field(default_factory=list)

    def boot_estimate(self, default: float) -> float:
        """The boot time to plan with: the median of the boots measured on this cluster, else `default`."""
        return float(statistics.median(self.boot_seconds)) if self.boot_seconds else default

    def last_action(self, name: str) -> str | None:
        on, off = self.powered_on.get(name), self.powered_off.get(name)
        if on is None and off is None:
            return None
        return "on" if (on or 0.0) >= (off or 0.0) and on is not None else "off"

    def as_data(self) -> dict[str, Any]:
        return {
            "powered_on": dict(sorted(self.powered_on.items())),
            "powered_off": dict(sorted(self.powered_off.items())),
            "failed_until": dict(sorted(self.failed_until.items())),
            "cordoned": sorted(self.cordoned),
            "uncordon_pending": sorted(self.uncordon_pending),
            "boot_seconds": list(self.boot_seconds),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PowerRecord:
        def names(key: str) -> set[str]:
            values = data.get(key)
            return {str(name) for name in values} if isinstance(values, list) else set()

        boots = data.get("boot_seconds")
        return cls(
            powered_on=_times(data, "powered_on"),
            powered_off=_times(data, "powered_off"),
            failed_until=_times(data, "failed_until"),
            cordoned=names("cordoned"),
            uncordon_pending=names("uncordon_pending"),
            boot_seconds=[float(v) for v in boots if is_json_number(v) and v >= 0] if isinstance(boots, list) else [],
        )


def _times(data: Mapping[str, Any], key: str) -> dict[str, float]:
    """`data[key]` as name -> seconds, without the entries that are not numbers."""
    values = data.get(key)
    if not isinstance(values, Mapping):
        return {}
    return {str(k): float(v) for k, v in values.items() if is_json_number(v)}


@dataclass
class NodeHistory:
    """What the observer remembers between rounds: when each worker's pods last changed, since when it is
    empty and Ready, since when it is seen powered but not Ready, and when it was last seen Ready."""

    pods: dict[str, frozenset[str]] = field(default_factory=dict)
    changed_at: dict[str, float] = field(default_factory=dict)
    idle_since: dict[str, float] = field(default_factory=dict)
    not_ready_since: dict[str, float] = field(default_factory=dict)
    ready_at: dict[str, float] = field(default_factory=dict)

    def as_data(self) -> dict[str, Any]:
        return {
            "pods": {name: sorted(pods) for name, pods in sorted(self.pods.items())},
            "changed_at": dict(sorted(self.changed_at.items())),
            "idle_since": dict(sorted(self.idle_since.items())),
            "not_ready_since": dict(sorted(self.not_ready_since.items())),
            "ready_at": dict(sorted(self.ready_at.items())),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> NodeHistory:
        pods = data.get("pods")
        return cls(
            pods=(
                {str(k): frozenset(str(p) for p in v) for k, v in pods.items() if isinstance(v, list)}
                if isinstance(pods, Mapping)
                else {}
            ),
            changed_at=_times(data, "changed_at"),
            idle_since=_times(data, "idle_since"),
            not_ready_since=_times(data, "not_ready_since"),
            ready_at=_times(data, "ready_at"),
        )


@dataclass(frozen=True)
class Observation:
    snapshot: ClusterSnapshot
    templates: tuple[NodeTemplate, ...]
    views: Mapping[str, NodeView]
    notes: tuple[str, ...] = ()
    quota_held: int = 0


def template_name(arch: str) -> str:
    return f"workers-{arch or 'unknown'}"


def learn_templates(views: Sequence[NodeView]) -> tuple[NodeTemplate, ...]:
    """One template per architecture of the registered workers (see the module's docstring)."""
    by_arch: dict[str, list[NodeView]] = {}
    for view in views:
        if view.allocatable.cpu_milli and view.allocatable.memory_mib:
            by_arch.setdefault(view.arch, []).append(view)
    templates = []
    for arch, members in sorted(by_arch.items()):
        smallest = Resources(
            min(m.allocatable.cpu_milli for m in members),
            min(m.allocatable.memory_mib for m in members),
            min(m.allocatable.gpu for m in members),
            min(m.allocatable.pods for m in members),
        )
        templates.append(NodeTemplate(template_name(arch), arch, smallest, kind_labels(m.labels for m in members)))
    return tuple(templates)


def _power(
    machine: Machine, view: NodeView | None, record: PowerRecord, history: NodeHistory, now: float
) -> tuple[PowerState, float, str | None]:
    """The worker's power state, since when, and a note when something looks wrong. Updates when the worker
    was last seen Ready."""
    name = machine.name
    ready = view is not None and view.ready
    if machine.power == "failed":
        return PowerState.FAILED, now, None
    if machine.power == "off":
        return PowerState.OFF, record.powered_off.get(name, 0.0), None
    if machine.power == "stopping":
        return PowerState.STOPPING, record.powered_off.get(name, now), None
    last = record.last_action(name)
    if machine.power == "unknown" and last == "off":
        off_at = record.powered_off[name]
        if not ready:
            return PowerState.OFF, off_at, None
        if now - off_at < STOPPING_GRACE:
            return PowerState.STOPPING, off_at, None
        note = f"{name}: still Ready {now - off_at:.0f}s after its power-off command; taken as on"
        return PowerState.ON, view.ready_since if view else now, note
    if ready:
        assert view is not None
        history.ready_at[name] = now
        return PowerState.ON, view.ready_since or now, None
    if machine.power == "unknown" and last != "on":
        return PowerState.OFF, 0.0, None
    if _our_boot(name, record, history):
        return PowerState.BOOTING, record.powered_on[name], None
    return PowerState.BOOTING, history.not_ready_since.setdefault(name, now), None


def _our_boot(name: str, record: PowerRecord, history: NodeHistory) -> bool:
    """Whether the worker's last power action was our power-on and it has not been seen Ready since."""
    if record.last_action(name) != "on":
        return False
    return history.ready_at.get(name, -1.0) < record.powered_on[name]


def build_observation(
    nodes: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    workloads: Sequence[Mapping[str, Any]],
    machines: Sequence[Machine],
    record: PowerRecord,
    history: NodeHistory,
    now: float,
    cluster_queues: Sequence[Mapping[str, Any]] = (),
    local_queues: Sequence[Mapping[str, Any]] = (),
) -> Observation:
    """The snapshot of the managed workers, the pending pods and the Kueue workloads (with the headroom of their
    ClusterQueues); updates `history`."""
    notes: list[str] = []
    views: dict[str, NodeView] = {}
    for node in nodes:
        try:
            registered = node_view(node)
        except ObjectError as exc:
            notes.append(f"{exc}; node left out")
            continue
        views[registered.name] = registered
    managed = {machine.name: machine for machine in machines}
    templates = learn_templates([views[name] for name in managed if name in views and not views[name].control_plane])
    by_arch = {template.arch: template for template in templates}

    running: dict[str, list[PodInfo]] = {name: [] for name in managed}
    pending: list[PendingPod] = []
    for pod in pods:
        if is_finished(pod) or belongs_to_node(pod):
            continue
        try:
            host = node_of(pod)
            if host is None:
                if is_pending(pod):
                    pending.append(pending_pod(pod))
            elif host in running:
                running[host].append(running_pod(pod))
        except ObjectError as exc:
            notes.append(f"{exc}; pod left out")

    feeds = dict(local_queue_target(queue) for queue in local_queues)
    headroom: dict[str, Resources] = {}
    for queue in cluster_queues:
        try:
            headroom[key_of(queue)] = cluster_queue_headroom(queue)
        except ObjectError as exc:
            notes.append(f"{exc}; its quota is not counted")
    waiting: list[KueueWorkload] = []
    quota_held = 0
    for workload in workloads:
        state = workload_state(workload)
        if state == "quota":
            quota_held += 1
        elif state == "waiting":
            try:
                found = kueue_workload(workload)
            except ObjectError as exc:
                notes.append(f"{exc}; workload left out")
                continue
            namespace = found.name.split("/", 1)[0]
            waiting.append(replace(found, queue=feeds.get(f"{namespace}/{found.queue}", "")))

    infos: list[NodeInfo] = []
    for name, machine in sorted(managed.items()):
        view = views.get(name)
        if view is not None and view.control_plane:
            notes.append(f"{name}: a control-plane node; the autoscaler never powers it")
            continue
        arch = (view.arch if view else "") or machine.arch
        template = by_arch.get(arch) or (templates[0] if len(templates) == 1 and not arch else None)
        if template is None:
            if templates:
                notes.append(f"{name}: no registered worker of its architecture ({arch or 'unknown'}); left out")
            continue
        paused = record.failed_until.get(name, 0.0)
        if paused > now:
            until = datetime.fromtimestamp(paused, UTC).strftime("%H:%M:%SZ")
            notes.append(f"{name}: left out until {until}: its last power action failed")
            continue
        power, since, note = _power(machine, view, record, history, now)
        if note:
            notes.append(note)
        if power is not PowerState.BOOTING:
            history.not_ready_since.pop(name, None)
        node_pods = tuple(sorted(running[name], key=lambda p: p.name))
        keys = frozenset(pod.name for pod in node_pods)
        if history.pods.get(name) != keys:
            history.pods[name] = keys
            history.changed_at[name] = now
        if power is PowerState.ON and not node_pods:
            idle_since: float | None = history.idle_since.setdefault(name, now)
        else:
            history.idle_since.pop(name, None)
            idle_since = None
        infos.append(
            NodeInfo(
                name=name,
                arch=template.arch,
                allocatable=view.allocatable if view and view.allocatable.cpu_milli else template.allocatable,
                power=power,
                power_since=since,
                pods=node_pods,
                capacity=view.capacity if view else template.allocatable,
                labels=dict(view.labels) if view else dict(template.labels),
                cordoned=view.cordoned if view else False,
                idle_since=idle_since,
                pods_changed_at=history.changed_at[name],
                template=template.name,
                our_boot=power is PowerState.BOOTING and _our_boot(name, record, history),
            )
        )
    if quota_held:
        notes.append(f"{quota_held} Kueue workload(s) wait for quota, not for nodes; not counted as demand")
    if not templates and managed:
        notes.append(
            "no worker has registered with Kubernetes yet: the size of a worker is learnt from a registered one"
        )
    snapshot = ClusterSnapshot(
        now=now,
        nodes=tuple(infos),
        pending=tuple(sorted(pending, key=lambda p: (p.created, p.name))),
        workloads=tuple(waiting),
        queue_headroom=headroom,
    )
    return Observation(snapshot, templates, views, tuple(notes), quota_held)
