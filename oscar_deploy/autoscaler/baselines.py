"""The policies the benchmark compares, as simulator controllers: ours, and baselines re-implemented from the
documented behaviour of CLUES, Cluster Autoscaler and Karpenter (no code of theirs is used), plus static-max
and a clairvoyant oracle. Each baseline keeps the defaults of its anchor; its main knob can be swept.

- static-max: every worker on all the time (the floor for wait, the ceiling for cost).
- clues-oscar: CLUES as the IM Dashboard's "Make OSCAR Virtual Cluster Elastic" template deploys it
  (grycap/tosca `oscar_elastic.yaml`): nodes and jobs observed every 20 s, the schedulers every 5 s on that
  view; a job pending over RECONSIDER_JOB_TIME (60 s) becomes a request; requests are served in FIFO order,
  first fit over the nodes in name order (ready, then booting with booked room, then powered off), with
  head-of-line blocking when one cannot be served; resources stay booked while a node boots and 120 s after
  (COOLDOWN_SERVED_REQUESTS); a node IDLE (no pod) for IDLE_TIME (300 s) is powered off, after the
  `kubectl drain` hook; PowOn_Free keeps EXTRA_NODES_FREE idle nodes (checked every 30 s and whenever nodes
  are about to be powered off); boots not limited;
  a boot not Ready after MAX_WAIT_POWERON (3000 s) is powered off and may be retried.
- clues-upstream: the same daemon with `etc/clues2.cfg-full-example` (what the Ansible role installs): 5 s
  monitoring, IDLE_TIME 1800 s, MAX_BOOTING_NODES 2, MAX_WAIT_POWERON 300 s, no PowOn_Free.
- ca-evict / ca-safe: Cluster Autoscaler's FAQ: 10 s scan; unschedulable pods packed first-fit-decreasing on
  a template node, booting ("upcoming") nodes counted, least-waste expander; a node is unneeded when its CPU
  and memory requests are each under 0.5 of allocatable and its pods fit elsewhere, and is removed after
  10 min unneeded (no scale-down in a scan that scales up, nor for 10 min after it or 3 min after a failure,
  but unneeded nodes are tracked meanwhile, so one unneeded all along goes when the pause ends); empty nodes
  up to 10 at once, one drain at a time; a node not Ready 15 min after the request is dropped and its group
  backed off 5 min (doubling up to 30, reset 3 h after the group's last failure). ca-evict treats OSCAR job
  pods as movable (Job is a replicated kind, so CA may evict them by default); ca-safe marks them
  `safe-to-evict: "false"`.
- karpenter / karpenter-dnd: pending pods batched (1 s), packed first-fit-decreasing by CPU then memory onto
  ready, in-flight and new nodes of the cheapest fitting type; disruption every 10 s with
  `WhenEmptyOrUnderutilized` and `consolidateAfter: 0s` (no pod change on the node for that long), a 15 s
  validation before acting, a budget of 10% of the initialised nodes, rounded up (booting nodes and those
  whose instance is terminating are not counted; those marked for deletion count and use it up), empty
  nodes in parallel and one underutilised node at a time when its pods fit on the others. karpenter-dnd
  puts `karpenter.sh/do-not-disrupt` on job pods, so only nodes without jobs are consolidated.
- oracle: knows every arrival in advance and packs the jobs of the next boot time as if they were pending,
  so boots start one boot time early; empty nodes that no foreseen job needs power off at once. A reference
  point near the lower bound of cost and wait, not a proven optimum (it does not know boot outcomes).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from oscar_deploy.autoscaler.model import (
    Action,
    ClusterSnapshot,
    Decision,
    NodeInfo,
    NodeTemplate,
    PendingPod,
    PolicyConfig,
    PolicyState,
    PowerState,
    Resources,
)
from oscar_deploy.autoscaler.packing import Bin, Demand, PodClass, classes_of, node_bin, pack
from oscar_deploy.autoscaler.policy import decide
from oscar_deploy.autoscaler.simulator import Controller, Scenario

ON, OFF, BOOTING, STOPPING = PowerState.ON, PowerState.OFF, PowerState.BOOTING, PowerState.STOPPING


def _template_of(node: NodeInfo, templates: Sequence[NodeTemplate]) -> NodeTemplate | None:
    return next((t for t in templates if t.describes(node)), None)


def _demand(pods: Sequence[PendingPod]) -> list[PodClass]:
    entries: list[Demand] = [(p.requests, p.node_selector, False, 1) for p in pods]
    return classes_of(entries)


# Ours ----------------------------------------------------------------------------------------------------------


class PolicyController:
    """`policy.decide` driven every `period` and `reaction_delay` after a pod becomes unschedulable."""

    starts_all_on = False

    def __init__(self, config: PolicyConfig, name: str = "oscar-deploy") -> None:
        self.name = name
        self.config = config
        self.observe_every = self.decide_every = config.period
        self.reaction_delay: float | None = config.reaction_delay
        self.state = PolicyState()

    def decide(self, snapshot: ClusterSnapshot, now: float) -> Sequence[Decision]:
        result = decide(snapshot, self.config, self.state)
        self.state = result.state
        return result.decisions


def policy_config(scenario: Scenario, idle_time: float = 300.0, period: float = 20.0) -> PolicyConfig:
    """The spec's defaults (`platform.autoscaler`, `workers.min/max` = the scenario's) for a scenario. The
    boot-time estimate is the slowest pool's median boot, taken as measured: the runtime measures its own boots
    and trusts their median after the first few, a negligible part of a simulated day."""
    return PolicyConfig(
        templates=scenario.templates,
        min_nodes=scenario.min_nodes,
        max_nodes=scenario.max_nodes,
        idle_time=idle_time,
        period=period,
        boot_time_estimate=max(pool.boot_median for pool in scenario.pools),
        boot_time_measured=True,
    )


# Static ---------------------------------------------------------------------------------------------------------


class StaticMax:
    name = "static-max"
    observe_every = decide_every = 3600.0
    reaction_delay: float | None = None
    starts_all_on = True

    def decide(self, snapshot: ClusterSnapshot, now: float) -> Sequence[Decision]:
        return ()


# CLUES ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CluesSettings:
    name: str
    monitoring_period: float
    idle_time: float
    max_booting_nodes: int
    max_wait_poweron: float
    extra_nodes_free: int = 0
    schedule_period: float = 5.0
    reconsider_job_time: float = 60.0
    extra_nodes_period: float = 30.0
    cooldown_served_requests: float = 120.0


CLUES_OSCAR = CluesSettings(
    "clues-oscar", monitoring_period=20.0, idle_time=300.0, max_booting_nodes=0, max_wait_poweron=3000.0
)
CLUES_UPSTREAM = CluesSettings(
    "clues-upstream", monitoring_period=5.0, idle_time=1800.0, max_booting_nodes=2, max_wait_poweron=300.0
)

_IDLE, _USED, _POW_ON, _POW_OFF, _OFF, _OFF_ERR = "IDLE", "USED", "POW_ON", "POW_OFF", "OFF", "OFF_ERR"


@dataclass(slots=True)
class _Request:
    job: str
    pod: PendingPod
    state: str  # PENDING, ATTENDED, SERVED
    since: float
    nodes: tuple[str, ...] = ()


class Clues:
    """The CLUES daemon's Kubernetes scheduling pipeline (Reconsider_Jobs, PowOn_Requests, PowOff_IDLE,
    PowOn_Free) on its own, periodically refreshed view of the cluster."""

    reaction_delay: float | None = None
    starts_all_on = False

    def __init__(self, settings: CluesSettings, templates: Sequence[NodeTemplate]) -> None:
        self.s = settings
        self.name = settings.name
        self.templates = list(templates)
        self.observe_every = settings.monitoring_period
        self.decide_every = settings.schedule_period
        self.observed_at = -math.inf
        self.node_state: dict[str, tuple[str, float]] = {}
        self.powered_on_at: dict[str, float] = {}
        self.job_since: dict[str, float] = {}
        self.job_pod: dict[str, PendingPod] = {}
        self.requests: list[_Request] = []
        self.last_free_check = -math.inf

    def _observe(self, snapshot: ClusterSnapshot) -> None:
        now = snapshot.now
        for node in snapshot.nodes:
            if node.power is ON:
                state = _USED if node.pods else _IDLE
            elif node.power is BOOTING:
                state = _POW_ON
            elif node.power is STOPPING:
                state = _POW_OFF
            elif node.power is OFF:
                state = _OFF
            else:
                state = _OFF_ERR
            old = self.node_state.get(node.name)
            if old is None or old[0] != state:
                self.node_state[node.name] = (state, now)
        pending = {pod.name: pod for pod in snapshot.pending}
        self.job_since = {name: self.job_since.get(name, now) for name in pending}
        self.job_pod = pending
        keep_served = max(self.s.cooldown_served_requests, self.s.reconsider_job_time)
        self.requests = [
            r
            for r in self.requests
            if (r.job in pending and r.state != "SERVED") or (r.state == "SERVED" and now - r.since < keep_served)
        ]
        self.nodes = {node.name: node for node in snapshot.nodes}
        self.observed_at = now

    def decide(self, snapshot: ClusterSnapshot, now: float) -> Sequence[Decision]:
        if snapshot.now != self.observed_at:
            self._observe(snapshot)
        decisions: list[Decision] = []
        self._timeouts(now, decisions)
        self._reconsider(now)
        power_on = self._serve_requests(now)
        power_off = self._idle_nodes(now, power_on)
        # As upstream's PowOn_Free: every EXTRA_NODES_PERIOD, and whenever nodes are about to be powered off.
        if self.s.extra_nodes_free and (power_off or now - self.last_free_check >= self.s.extra_nodes_period):
            self.last_free_check = now
            self._keep_free(power_on, power_off)
        for name in power_off:
            decisions.append(Decision(Action.POWER_OFF, name, f"IDLE for over IDLE_TIME ({self.s.idle_time:.0f}s)"))
            self.node_state[name] = (_POW_OFF, now)
        for name in power_on:
            decisions.append(Decision(Action.POWER_ON, name, "request"))
            self.node_state[name] = (_POW_ON, now)
            self.powered_on_at[name] = now
        return decisions

    def _timeouts(self, now: float, decisions: list[Decision]) -> None:
        for name, (state, _) in list(self.node_state.items()):
            if state == _POW_ON and now - self.powered_on_at.get(name, now) > self.s.max_wait_poweron:
                decisions.append(Decision(Action.POWER_OFF, name, "MAX_WAIT_POWERON exceeded (OFF_ERR)"))
                self.node_state[name] = (_POW_OFF, now)

    def _reconsider(self, now: float) -> None:
        live = {r.job for r in self.requests if r.state != "SERVED" or now - r.since < self.s.reconsider_job_time}
        for job, since in self.job_since.items():  # in the order CLUES first saw them pending
            if job not in live and now - since > self.s.reconsider_job_time:
                self.requests.append(_Request(job, self.job_pod[job], "PENDING", now))

    def _free_view(self, now: float) -> dict[str, Resources]:
        free: dict[str, Resources] = {}
        for name, node in sorted(self.nodes.items()):
            state = self.node_state[name][0]
            if state in (_IDLE, _USED):
                free[name] = node.free
            elif state == _POW_ON:
                template = _template_of(node, self.templates)
                free[name] = template.allocatable if template else node.allocatable
        for request in self.requests:
            booked = request.state == "ATTENDED" or (
                request.state == "SERVED" and now - request.since < self.s.cooldown_served_requests
            )
            if booked:
                for name in request.nodes:
                    if name in free:
                        free[name] = free[name] - request.pod.requests
        return free

    def _serve_requests(self, now: float) -> list[str]:
        free = self._free_view(now)
        off = sorted(n for n, (state, _) in self.node_state.items() if state in (_OFF, _OFF_ERR))
        booting = sum(1 for state, _ in self.node_state.values() if state == _POW_ON)
        chosen: list[str] = []
        for request in self.requests:
            if request.state == "ATTENDED":
                if all(self.node_state[n][0] != _POW_ON for n in request.nodes):
                    request.state, request.since = "PENDING", now  # its nodes are up: reconsider it
                else:
                    continue
            if request.state != "PENDING":
                continue
            req = request.pod.requests
            target = self._first_fit(request, free, (_IDLE, _USED))
            if target is not None:
                request.state, request.since, request.nodes = "SERVED", now, (target,)
                free[target] = free[target] - req
                continue
            target = self._first_fit(request, free, (_POW_ON,))
            if target is not None:
                request.state, request.since, request.nodes = "ATTENDED", now, (target,)
                free[target] = free[target] - req
                continue
            if self.s.max_booting_nodes and booting + len(chosen) >= self.s.max_booting_nodes:
                break
            target = next((n for n in off if self._admits(n, request.pod) and req.fits_in(self._capacity(n))), None)
            if target is None:
                break  # head-of-line blocking: later requests wait for this one
            off.remove(target)
            chosen.append(target)
            self.node_state[target] = (_POW_ON, now)
            free[target] = self._capacity(target) - req
            request.state, request.since, request.nodes = "ATTENDED", now, (target,)
        return chosen

    def _first_fit(self, request: _Request, free: dict[str, Resources], states: tuple[str, ...]) -> str | None:
        for name, room in free.items():
            if (
                self.node_state[name][0] in states
                and self._admits(name, request.pod)
                and request.pod.requests.fits_in(room)
            ):
                return name
        return None

    def _admits(self, name: str, pod: PendingPod) -> bool:
        node = self.nodes[name]
        template = _template_of(node, self.templates)
        return template.admits(pod.node_selector) if template else not pod.node_selector

    def _capacity(self, name: str) -> Resources:
        node = self.nodes[name]
        template = _template_of(node, self.templates)
        return template.allocatable if template else node.allocatable

    def _idle_nodes(self, now: float, power_on: list[str]) -> list[str]:
        booked = {n for r in self.requests if r.state in ("ATTENDED", "SERVED") for n in r.nodes}
        return sorted(
            name
            for name, (state, since) in self.node_state.items()
            if state == _IDLE and now - since > self.s.idle_time and name not in booked and name not in power_on
        )

    def _keep_free(self, power_on: list[str], power_off: list[str]) -> None:
        free_nodes = sum(
            1
            for name, (state, _) in self.node_state.items()
            if (state == _IDLE and name not in power_off) or state == _POW_ON
        )
        while free_nodes < self.s.extra_nodes_free and power_off:
            power_off.pop()
            free_nodes += 1
        off = sorted(n for n, (state, _) in self.node_state.items() if state in (_OFF, _OFF_ERR) and n not in power_on)
        while free_nodes < self.s.extra_nodes_free and off:
            power_on.append(off.pop(0))
            free_nodes += 1


# Cluster Autoscaler --------------------------------------------------------------------------------------------


class ClusterAutoscalerLike:
    reaction_delay: float | None = None
    starts_all_on = False

    def __init__(
        self,
        scenario: Scenario,
        evict_jobs: bool,
        unneeded_time: float = 600.0,
        scan_interval: float = 10.0,
        threshold: float = 0.5,
        delay_after_add: float = 600.0,
        delay_after_failure: float = 180.0,
        provision_timeout: float = 900.0,
    ) -> None:
        self.name = "ca-evict" if evict_jobs else "ca-safe"
        self.templates = list(scenario.templates)
        self.min_nodes, self.max_nodes = scenario.min_nodes, scenario.max_nodes
        self.evict_jobs = evict_jobs
        self.unneeded_time = unneeded_time
        self.observe_every = self.decide_every = scan_interval
        self.threshold = threshold
        self.delay_after_add, self.delay_after_failure = delay_after_add, delay_after_failure
        self.provision_timeout = provision_timeout
        self.unneeded_since: dict[str, float] = {}
        self.last_scale_up = -math.inf
        self.last_failure = -math.inf
        self.backoff_until: dict[str, float] = {}
        self.backoff: dict[str, float] = {}
        self.failed_at: dict[str, float] = {}

    def _back_off(self, group: str, now: float) -> None:
        """CA's node-group backoff: 5 min, doubled (to at most 30 min) by a failure after the last backoff
        ended, kept by one during it; forgotten once the group's last failure is 3 h old."""
        wait = 300.0
        if now - self.failed_at.get(group, -math.inf) <= 3 * 3600.0:
            wait = self.backoff[group] if self.backoff_until[group] > now else min(2 * self.backoff[group], 1800.0)
        self.backoff[group], self.backoff_until[group], self.failed_at[group] = wait, now + wait, now

    def decide(self, snapshot: ClusterSnapshot, now: float) -> Sequence[Decision]:
        decisions: list[Decision] = []
        nodes = snapshot.nodes
        template_of = {n.name: _template_of(n, self.templates) for n in nodes}
        for node in nodes:
            if node.power is BOOTING and now - node.power_since > self.provision_timeout:
                decisions.append(Decision(Action.POWER_OFF, node.name, "not registered within max-node-provision-time"))
                template = template_of[node.name]
                if template is not None:
                    self._back_off(template.name, now)
                self.last_failure = now
        if self._scale_up(snapshot, template_of, decisions, now):
            self.last_scale_up = now  # and no scale-down in this scan
        else:
            since_add, since_failure = now - self.last_scale_up, now - self.last_failure
            cooling = since_add < self.delay_after_add or since_failure < self.delay_after_failure
            self._scale_down(snapshot, decisions, now, remove=not cooling)
        return decisions

    def _scale_up(
        self,
        snapshot: ClusterSnapshot,
        template_of: dict[str, NodeTemplate | None],
        decisions: list[Decision],
        now: float,
    ) -> bool:
        if not snapshot.pending:
            return False
        ready = [node_bin(n, "ready") for n in snapshot.nodes if n.power is ON and not n.cordoned]
        upcoming = []
        for n in snapshot.nodes:
            template = template_of[n.name]
            if n.power is BOOTING and template is not None:
                upcoming.append(Bin(n.name, n.arch, n.labels, template.allocatable, "booting"))
        usable = [t for t in self.templates if self.backoff_until.get(t.name, -math.inf) <= now]
        off = [n for n in snapshot.nodes if n.power is OFF]
        occupied = sum(1 for n in snapshot.nodes if n.power in (ON, BOOTING))
        bins = ready + upcoming
        powered: list[str] = []
        for pod_class in _demand(snapshot.pending):
            fitting = [
                t for t in usable if t.admits(dict(pod_class.selector)) and pod_class.requests.copies_in(t.allocatable)
            ]
            if not fitting:
                continue
            chosen = min(fitting, key=lambda t: (_waste(t, pod_class), self.templates.index(t)))
            available = {chosen.name: sum(1 for n in off if template_of[n.name] == chosen and n.name not in powered)}
            result = pack([pod_class], bins, [chosen], available, self.max_nodes - occupied - len(powered))
            for fresh in result.new:
                node = next(n for n in off if template_of[n.name] == chosen and n.name not in powered)
                powered.append(node.name)
                fresh.name = node.name
                bins.append(fresh)
                decisions.append(Decision(Action.POWER_ON, node.name, "unschedulable pods (binpacking estimate)"))
        return bool(powered)

    def _scale_down(self, snapshot: ClusterSnapshot, decisions: list[Decision], now: float, remove: bool) -> None:
        """Track unneeded nodes (in the cooldown after a scale-up or a failure too, as CA's planner does) and,
        when `remove`, remove those unneeded long enough."""
        ready = [n for n in snapshot.nodes if n.power is ON and not n.cordoned]
        active = sum(1 for n in snapshot.nodes if n.power in (ON, BOOTING))
        bins = {n.name: node_bin(n, "ready") for n in ready}
        unneeded: dict[str, float] = {}
        candidates = []
        for node in sorted(ready, key=lambda n: (n.requested.share_of(n.allocatable), n.name)):
            if not self._underutilised(node):
                continue
            if any(not pod.interruptible for pod in node.pods) and not self.evict_jobs:
                continue
            others = [b for name, b in bins.items() if name != node.name]
            pods: list[Demand] = [(p.requests, {}, False, 1) for p in node.pods]
            trial = [Bin(b.name, b.arch, b.labels, b.free, b.kind) for b in others]
            if pack(classes_of(pods), trial, []).unplaced:
                continue
            unneeded[node.name] = self.unneeded_since.get(node.name, now)
            candidates.append(node)
        self.unneeded_since = unneeded
        if not remove:
            return
        empty_removed = drained = 0
        for node in candidates:
            if now - unneeded[node.name] < self.unneeded_time or active <= self.min_nodes:
                continue
            if not node.pods and empty_removed < 10:
                decisions.append(Decision(Action.POWER_OFF, node.name, "empty and unneeded"))
                empty_removed += 1
            elif node.pods and drained < 1:
                pods = [(p.requests, {}, False, 1) for p in node.pods]
                others = [b for name, b in bins.items() if name != node.name]
                if pack(classes_of(pods), others, []).unplaced:
                    continue
                decisions.append(Decision(Action.DRAIN, node.name, "underutilised; pods fit elsewhere"))
                drained += 1
            else:
                continue
            bins.pop(node.name, None)
            active -= 1

    def _underutilised(self, node: NodeInfo) -> bool:
        req, alloc = node.requested, node.allocatable
        if alloc.gpu:
            return req.gpu / alloc.gpu < self.threshold
        return req.cpu_milli < self.threshold * alloc.cpu_milli and req.memory_mib < self.threshold * alloc.memory_mib


def _waste(template: NodeTemplate, pod_class: PodClass) -> float:
    alloc, req = template.allocatable, pod_class.requests
    count = min(req.copies_in(alloc), pod_class.count)
    cpu = (alloc.cpu_milli - count * req.cpu_milli) / alloc.cpu_milli if alloc.cpu_milli else 0.0
    mem = (alloc.memory_mib - count * req.memory_mib) / alloc.memory_mib if alloc.memory_mib else 0.0
    return cpu + mem


# Karpenter -----------------------------------------------------------------------------------------------------


class KarpenterLike:
    starts_all_on = False

    def __init__(
        self,
        scenario: Scenario,
        do_not_disrupt_jobs: bool,
        consolidate_after: float = 0.0,
        validation: float = 15.0,
        budget: float = 0.10,
        registration_ttl: float = 900.0,
    ) -> None:
        self.name = "karpenter-dnd" if do_not_disrupt_jobs else "karpenter"
        self.templates = list(scenario.templates)
        self.max_nodes = scenario.max_nodes
        self.min_nodes = scenario.min_nodes
        self.dnd = do_not_disrupt_jobs
        self.consolidate_after = consolidate_after
        self.validation = validation
        self.budget = budget
        self.registration_ttl = registration_ttl
        self.observe_every = self.decide_every = 10.0
        self.reaction_delay: float | None = 1.0
        self.commands: dict[str, float] = {}

    def decide(self, snapshot: ClusterSnapshot, now: float) -> Sequence[Decision]:
        decisions: list[Decision] = []
        nodes = snapshot.nodes
        for node in nodes:
            if node.power is BOOTING and now - node.power_since > self.registration_ttl:
                decisions.append(Decision(Action.POWER_OFF, node.name, "registration TTL"))
        self._provision(snapshot, decisions)
        self._disrupt(snapshot, decisions, now)
        return decisions

    def _provision(self, snapshot: ClusterSnapshot, decisions: list[Decision]) -> None:
        if not snapshot.pending:
            return
        template_of = {n.name: _template_of(n, self.templates) for n in snapshot.nodes}
        bins = [node_bin(n, "ready") for n in snapshot.nodes if n.power is ON and not n.cordoned]
        for n in snapshot.nodes:
            template = template_of[n.name]
            if n.power is BOOTING and template is not None:
                bins.append(Bin(n.name, n.arch, n.labels, template.allocatable, "booting"))
        off = [n for n in snapshot.nodes if n.power is OFF]
        available: dict[str, int] = {}
        for n in off:
            template = template_of[n.name]
            if template is not None:
                available[template.name] = available.get(template.name, 0) + 1
        occupied = sum(1 for n in snapshot.nodes if n.power in (ON, BOOTING))
        result = pack(_demand(snapshot.pending), bins, self.templates, available, self.max_nodes - occupied)
        for fresh in result.new:
            node = next(n for n in off if template_of[n.name] == fresh.template)
            off.remove(node)
            decisions.append(Decision(Action.POWER_ON, node.name, "pending pods (batch)"))

    def _disrupt(self, snapshot: ClusterSnapshot, decisions: list[Decision], now: float) -> None:
        nodes = snapshot.nodes
        # The budget's total is the initialised nodes: neither booting ones nor those whose instance is already
        # terminating. Those marked for deletion (cordoned) count in it and use it up.
        initialised = [n for n in nodes if n.power is ON]
        allowed = math.ceil(len(initialised) * self.budget) - sum(1 for n in initialised if n.cordoned)
        ready = [n for n in initialised if not n.cordoned]
        settled = [n for n in ready if now - n.pods_changed_at >= self.consolidate_after]
        valid: dict[str, str] = {}
        for node in settled:
            if not node.pods:
                valid[node.name] = "empty"
        movable = [
            n
            for n in settled
            if n.pods and all(p.interruptible or not self.dnd for p in n.pods) and n.name not in valid
        ]
        for node in sorted(movable, key=lambda n: (len(n.pods), n.requested.share_of(n.allocatable), n.name)):
            others = [node_bin(o, "ready") for o in ready if o.name != node.name and o.name not in valid]
            pods: list[Demand] = [(p.requests, {}, False, 1) for p in node.pods]
            if not pack(classes_of(pods), others, []).unplaced:
                valid[node.name] = "underutilized"
                break  # single-node consolidation: one command at a time
        self.commands = {name: self.commands.get(name, now) for name in valid}
        removable = sum(1 for n in nodes if n.power in (ON, BOOTING)) - self.min_nodes
        for name, kind in sorted(valid.items(), key=lambda item: (item[1] != "empty", item[0])):
            if allowed <= 0 or removable <= 0:
                break
            if now - self.commands[name] < self.validation:
                continue
            action = Action.POWER_OFF if kind == "empty" else Action.DRAIN
            decisions.append(Decision(action, name, f"consolidation ({kind})"))
            del self.commands[name]
            allowed -= 1
            removable -= 1


# Oracle --------------------------------------------------------------------------------------------------------


class Oracle:
    """Our policy with perfect knowledge of arrivals: the jobs of the next boot time count as pending."""

    name = "oracle"
    starts_all_on = False

    def __init__(self, scenario: Scenario) -> None:
        self.config = policy_config(scenario, idle_time=0.0, period=10.0)
        self.lookahead = max(pool.boot_median for pool in scenario.pools) + self.config.period
        self.observe_every = self.decide_every = self.config.period
        self.reaction_delay: float | None = 1.0
        self.jobs = scenario.jobs
        self.submits = [job.submit for job in scenario.jobs]
        self.state = PolicyState()

    def decide(self, snapshot: ClusterSnapshot, now: float) -> Sequence[Decision]:
        start = bisect.bisect_right(self.submits, now)
        stop = bisect.bisect_right(self.submits, now + self.lookahead)
        future = tuple(
            PendingPod(f"future-{i}", self.jobs[i].requests, now, self.jobs[i].selector) for i in range(start, stop)
        )
        seen = replace(snapshot, pending=snapshot.pending + future)
        result = decide(seen, self.config, self.state)
        self.state = result.state
        return result.decisions


# Registry ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """A policy of the benchmark: how to build it for a scenario with its main knob set (None: default)."""

    name: str
    knob: str
    default: float | None
    sweep: tuple[float, ...]
    build: Callable[[Scenario, float | None], Controller]


def _ours(scenario: Scenario, idle_time: float | None) -> Controller:
    config = policy_config(scenario) if idle_time is None else policy_config(scenario, idle_time=idle_time)
    return PolicyController(config)


def _clues(settings: CluesSettings) -> Callable[[Scenario, float | None], Controller]:
    def build(scenario: Scenario, idle_time: float | None) -> Controller:
        chosen = settings if idle_time is None else replace(settings, idle_time=idle_time)
        return Clues(chosen, scenario.templates)

    return build


def _ca(evict: bool) -> Callable[[Scenario, float | None], Controller]:
    def build(scenario: Scenario, unneeded: float | None) -> Controller:
        return ClusterAutoscalerLike(scenario, evict, unneeded_time=600.0 if unneeded is None else unneeded)

    return build


def _karpenter(dnd: bool) -> Callable[[Scenario, float | None], Controller]:
    def build(scenario: Scenario, after: float | None) -> Controller:
        return KarpenterLike(scenario, dnd, consolidate_after=0.0 if after is None else after)

    return build


CLUES_SWEEP = (60.0, 120.0, 300.0, 600.0, 1800.0)
POLICIES: dict[str, PolicyEntry] = {
    entry.name: entry
    for entry in (
        PolicyEntry("static-max", "", None, (), lambda scenario, _: StaticMax()),
        PolicyEntry("clues-oscar", "IDLE_TIME", 300.0, CLUES_SWEEP, _clues(CLUES_OSCAR)),
        PolicyEntry("clues-upstream", "IDLE_TIME", 1800.0, CLUES_SWEEP, _clues(CLUES_UPSTREAM)),
        PolicyEntry("ca-evict", "scale-down-unneeded-time", 600.0, (60.0, 120.0, 300.0, 600.0), _ca(True)),
        PolicyEntry("ca-safe", "scale-down-unneeded-time", 600.0, (60.0, 120.0, 300.0, 600.0), _ca(False)),
        PolicyEntry("karpenter", "consolidateAfter", 0.0, (0.0, 30.0, 300.0), _karpenter(False)),
        PolicyEntry("karpenter-dnd", "consolidateAfter", 0.0, (0.0, 30.0, 300.0), _karpenter(True)),
        PolicyEntry("oracle", "", None, (), lambda scenario, _: Oracle(scenario)),
        PolicyEntry("oscar-deploy", "idle_time", 300.0, (60.0, 120.0, 180.0, 300.0, 600.0, 900.0), _ours),
    )
}
OURS = "oscar-deploy"
REFERENCE = "clues-oscar"
ALWAYS_ON = "static-max"  # every worker on all the time: the least wait any policy can reach
