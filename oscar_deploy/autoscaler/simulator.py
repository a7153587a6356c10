"""A deterministic discrete-event simulator of an elastic cluster, to judge scaling policies on workloads.

Time jumps from event to event (a heap of job completions, boots, shutdowns and controller ticks; arrivals are
read in order from the sorted job list), so a day of 100k jobs costs what its events cost, not 86 400 steps.
The scheduler mimics kube-scheduler's NodeResourcesFit scoring over Ready, uncordoned nodes: by default
LeastAllocated (the node with the most free CPU and memory, as fractions, wins), or, for a scenario with
`most_allocated`, MostAllocated (the node with the most of them requested wins, which packs pods so that other
nodes empty); ties go to the first node. It retries pending pods whenever a node gains room: shape by shape
(same requests and selector), the shape whose oldest pod came first first, each shape's pods in arrival order.
So a younger pod of an older shape may start before an older pod of another shape, where kube-scheduler would
try the older pod first. Per-pool heaps with lazy invalidation and "this shape did not fit since the last
release of capacity" marks keep each placement near O(log nodes) under LeastAllocated; under MostAllocated a
placement may first pass over the fullest nodes.

Boots take a lognormal time around the pool's median and fail with the pool's probability; a failed boot
never becomes Ready (it stays booting until the controller gives up on it). Every random draw comes from a
generator seeded by (seed, node, boot number), so all policies meet the same boots and the same seed gives
the same numbers. Node-hours run from the power-on request to the end of the shutdown, as a cloud bills.
Evicting an OSCAR job pod kills the job: it restarts from the beginning. Evicting an interruptible pod moves
it: it continues elsewhere with the time it had left.

The wait statistics are those of the jobs that finished: each job's wait runs from its submission to the start
of the run that finished (a killed job's restart; a moved pod's first start). Jobs that never finished are
counted in `unfinished` instead.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from oscar_deploy.autoscaler.model import (
    ARCH_LABEL,
    Action,
    ClusterSnapshot,
    Decision,
    NodeInfo,
    NodeTemplate,
    PendingPod,
    PodInfo,
    PowerState,
    Resources,
)

_EMPTY: Mapping[str, str] = MappingProxyType({})


def _no_selector() -> Mapping[str, str]:
    return _EMPTY


@dataclass(frozen=True, slots=True)
class Job:
    """One pod to run: an OSCAR job (not interruptible) or a Knative/Deployment pod (interruptible)."""

    submit: float
    duration: float
    requests: Resources
    selector: Mapping[str, str] = field(default_factory=_no_selector)
    interruptible: bool = False
    service: str = ""


@dataclass(frozen=True, slots=True)
class NodePool:
    """`count` workers made from `template`, with their boot-time distribution and failure rate."""

    template: NodeTemplate
    count: int
    boot_median: float = 180.0
    boot_sigma: float = 0.3
    boot_failure: float = 0.05
    shutdown: tuple[float, float] = (30.0, 90.0)


# kube-scheduler's NodeResourcesFit scoring strategies the simulated scheduler follows (its default first).
LEAST_ALLOCATED = "LeastAllocated"
MOST_ALLOCATED = "MostAllocated"
SCORING_STRATEGIES = (LEAST_ALLOCATED, MOST_ALLOCATED)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    pools: tuple[NodePool, ...]
    jobs: tuple[Job, ...]
    horizon: float = 86_400.0
    min_nodes: int = 0
    most_allocated: bool = False  # kube-scheduler scores nodes MostAllocated (packing), not LeastAllocated

    @property
    def scoring(self) -> str:
        """The name kube-scheduler gives the scoring strategy (NodeResourcesFit's `scoringStrategy.type`)."""
        return MOST_ALLOCATED if self.most_allocated else LEAST_ALLOCATED

    @property
    def max_nodes(self) -> int:
        return sum(pool.count for pool in self.pools)

    @property
    def templates(self) -> tuple[NodeTemplate, ...]:
        return tuple(pool.template for pool in self.pools)


class Controller(Protocol):
    """A scaling policy as the simulator drives it: it looks every `observe_every` seconds, decides every
    `decide_every` seconds on its latest look, and, if `reaction_delay` is set, also looks and decides that
    long after a pod becomes unschedulable (as a watch-based controller does)."""

    name: str
    observe_every: float
    decide_every: float
    reaction_delay: float | None
    starts_all_on: bool

    def decide(self, snapshot: ClusterSnapshot, now: float) -> Sequence[Decision]: ...


@dataclass(frozen=True, slots=True)
class RunMetrics:
    policy: str
    scenario: str
    jobs: int
    node_hours: float
    idle_node_hours: float
    wait_mean: float
    wait_p50: float
    wait_p95: float
    wait_p99: float
    wait_max: float
    power_ons: int
    power_offs: int
    failed_boots: int
    jobs_killed: int
    pods_moved: int
    unfinished: int
    simulated_seconds: float


_FINISH, _BOOTED, _STOPPED, _TICK, _TRIGGER = range(5)
_ON, _OFF, _BOOTING, _STOPPING = PowerState.ON, PowerState.OFF, PowerState.BOOTING, PowerState.STOPPING


class _Node:
    __slots__ = (
        "alloc_cpu",
        "alloc_gpu",
        "alloc_mem",
        "alloc_pods",
        "billed_from",
        "boots",
        "cordoned",
        "free_cpu",
        "free_gpu",
        "free_mem",
        "free_pods",
        "idle_since",
        "index",
        "info",
        "info_version",
        "name",
        "packs",
        "pods",
        "pods_changed_at",
        "pool",
        "since",
        "state",
        "template",
        "token",
        "version",
    )

    def __init__(self, index: int, name: str, pool: int, template: NodeTemplate, packs: bool) -> None:
        a = template.allocatable
        self.index, self.name, self.pool, self.template = index, name, pool, template
        self.packs = packs
        self.alloc_cpu, self.alloc_mem, self.alloc_gpu, self.alloc_pods = a.cpu_milli, a.memory_mib, a.gpu, a.pods
        self.free_cpu, self.free_mem, self.free_gpu, self.free_pods = self.alloc_cpu, self.alloc_mem, a.gpu, a.pods
        self.state = _OFF
        self.since = 0.0
        self.cordoned = False
        self.pods: dict[int, None] = {}
        self.billed_from: float | None = None
        self.boots = 0
        self.idle_since: float | None = None
        self.pods_changed_at = 0.0
        self.version = 0
        self.token = 0
        self.info: NodeInfo | None = None
        self.info_version = -1

    def score(self) -> float:
        """The scheduler's preference, highest first: the shares of CPU and memory free (LeastAllocated) or
        requested (MostAllocated). A resource the node has none of scores 0 either way, as upstream."""
        cpu = _share(self.free_cpu, self.alloc_cpu, self.packs)
        mem = _share(self.free_mem, self.alloc_mem, self.packs)
        return cpu + mem


def _share(free: int, allocatable: int, requested: bool) -> float:
    if not allocatable:
        return 0.0
    return (allocatable - free) / allocatable if requested else free / allocatable


class Simulator:
    """Runs one scenario under one controller; `run()` returns the metrics. Use a new instance per run."""

    def __init__(self, scenario: Scenario, controller: Controller, seed: int = 1) -> None:
        self.scenario = scenario
        self.controller = controller
        self.seed = seed
        self.jobs = scenario.jobs
        self.nodes: list[_Node] = []
        for pool_index, pool in enumerate(scenario.pools):
            for number in range(1, pool.count + 1):
                name = f"{pool.template.name}-{number}"
                self.nodes.append(_Node(len(self.nodes), name, pool_index, pool.template, scenario.most_allocated))
        self.by_name = {node.name: node for node in self.nodes}
        self.heaps: list[list[tuple[float, int, int]]] = [[] for _ in scenario.pools]
        self.events: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.now = 0.0
        self.epoch = 0
        n = len(self.jobs)
        self.finish_at = [0.0] * n
        self.remaining = [job.duration for job in self.jobs]
        self.token = [0] * n
        self.node_of = [-1] * n
        self.wait = [-1.0] * n  # submit to the start of the job's current run (a moved pod keeps its first)
        self.finished_waits: list[float] = []
        self.pod_info: list[PodInfo | None] = [None] * n
        self.done = 0
        self.killed = 0
        self.moved = 0
        self.power_ons = 0
        self.power_offs = 0
        self.failed_boots = 0
        self.node_seconds = 0.0
        self.idle_seconds = 0.0
        self.last_finish = 0.0
        self.trigger_pending = False
        self.snapshot: ClusterSnapshot | None = None
        self.last_observed = -math.inf
        self._classify_jobs()

    # Set-up --------------------------------------------------------------------------------------------------

    def _classify_jobs(self) -> None:
        """Gives each job a shape index; each shape knows the pools whose template admits and fits it."""
        shapes: dict[tuple[tuple[tuple[str, str], ...], int, int, int], int] = {}
        self.shape_of = [0] * len(self.jobs)
        self.shape_pools: list[tuple[int, ...]] = []
        selectors: dict[int, tuple[tuple[str, str], ...]] = {}
        for index, job in enumerate(self.jobs):
            selector = selectors.get(id(job.selector))
            if selector is None:
                selector = tuple(sorted(job.selector.items()))
                selectors[id(job.selector)] = selector
            r = job.requests
            key = (selector, r.cpu_milli, r.memory_mib, r.gpu)
            shape = shapes.get(key)
            if shape is None:
                shape = len(self.shape_pools)
                shapes[key] = shape
                self.shape_pools.append(
                    tuple(
                        p
                        for p, pool in enumerate(self.scenario.pools)
                        if pool.template.admits(job.selector) and r.copies_in(pool.template.allocatable)
                    )
                )
            self.shape_of[index] = shape
        self.failed_at: list[int] = [-1] * len(self.shape_pools)
        self.pending: list[dict[int, PendingPod]] = [{} for _ in self.shape_pools]
        self.pending_count = 0
        self.shapes_of_pool: list[list[int]] = [
            [s for s, pools in enumerate(self.shape_pools) if p in pools] for p in range(len(self.scenario.pools))
        ]
        self.min_cpu = min((job.requests.cpu_milli for job in self.jobs), default=0)
        self.min_mem = min((job.requests.memory_mib for job in self.jobs), default=0)
        self.unservable = sum(1 for index in range(len(self.jobs)) if not self.shape_pools[self.shape_of[index]])

    def _push(self, time: float, kind: int, a: int = 0, b: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.events, (time, self.seq, kind, a, b))

    # Main loop -----------------------------------------------------------------------------------------------

    def run(self) -> RunMetrics:
        scenario = self.scenario
        first_on = scenario.max_nodes if self.controller.starts_all_on else scenario.min_nodes
        for node in self.nodes[:first_on]:
            self._become_ready(node, booted_at=0.0)
        self._push(0.0, _TICK)
        jobs = self.jobs
        total = len(jobs) - self.unservable
        cap = scenario.horizon + 7 * 86_400.0
        pointer = 0
        events = self.events
        while True:
            arrival = jobs[pointer].submit if pointer < len(jobs) else math.inf
            if events and events[0][0] <= arrival:
                time, _, kind, a, b = heapq.heappop(events)
                if time > cap:
                    break
                self.now = time
                if kind == _FINISH:
                    self._finish(a, b)
                elif kind == _TICK:
                    self._tick()
                elif kind == _TRIGGER:
                    self.trigger_pending = False
                    self._decide(fresh=True)
                elif kind == _BOOTED:
                    self._booted(a, b)
                else:
                    self._stopped(a, b)
            elif pointer < len(jobs):
                self.now = arrival
                if self.shape_pools[self.shape_of[pointer]]:
                    self._arrive(pointer)
                pointer += 1
            else:
                break
            if self.done >= total and pointer >= len(jobs) and self.now >= scenario.horizon:
                break
        end = max(scenario.horizon, self.last_finish if self.done >= total else self.now)
        return self._metrics(end, total)

    def _tick(self) -> None:
        controller = self.controller
        looks_each_time = controller.observe_every <= controller.decide_every
        self._decide(fresh=looks_each_time or self.now - self.last_observed >= controller.observe_every - 1e-9)
        self._push(self.now + self.controller.decide_every, _TICK)

    def _decide(self, fresh: bool) -> None:
        if fresh or self.snapshot is None:
            self.snapshot = self._observe()
            self.last_observed = self.now
        for decision in self.controller.decide(self.snapshot, self.now):
            self._apply(decision)

    # Jobs ----------------------------------------------------------------------------------------------------

    def _arrive(self, job: int) -> None:
        if not self._place_anywhere(job):
            self._enqueue(job)

    def _enqueue(self, job: int) -> None:
        spec = self.jobs[job]
        pod = PendingPod(f"job-{job}", spec.requests, self.now, spec.selector, spec.interruptible)
        self.pending[self.shape_of[job]][job] = pod
        self.pending_count += 1
        if self.controller.reaction_delay is not None and not self.trigger_pending:
            self.trigger_pending = True
            self._push(self.now + self.controller.reaction_delay, _TRIGGER)

    def _place_anywhere(self, job: int) -> bool:
        shape = self.shape_of[job]
        if self.failed_at[shape] == self.epoch:
            return False
        r = self.jobs[job].requests
        cpu, mem, gpu = r.cpu_milli, r.memory_mib, r.gpu
        best: tuple[float, int] | None = None
        nodes = self.nodes
        for pool in self.shape_pools[shape]:
            heap = self.heaps[pool]
            put_back = []
            while heap:
                negscore, index, version = heap[0]
                node = nodes[index]
                if version != node.version or node.state is not _ON or node.cordoned:
                    heapq.heappop(heap)
                    continue
                if node.free_cpu >= cpu and node.free_mem >= mem and node.free_gpu >= gpu and node.free_pods >= 1:
                    if best is None or (negscore, index) < best:
                        best = (negscore, index)
                    break
                put_back.append(heapq.heappop(heap))
            for entry in put_back:
                heapq.heappush(heap, entry)
        if best is None:
            self.failed_at[shape] = self.epoch
            return False
        self._start(job, nodes[best[1]])
        return True

    def _start(self, job: int, node: _Node) -> None:
        spec = self.jobs[job]
        r = spec.requests
        node.free_cpu -= r.cpu_milli
        node.free_mem -= r.memory_mib
        node.free_gpu -= r.gpu
        node.free_pods -= 1
        if not node.pods and node.idle_since is not None:
            self.idle_seconds += self.now - node.idle_since
            node.idle_since = None
        node.pods[job] = None
        node.pods_changed_at = self.now
        self._changed(node)
        self.node_of[job] = node.index
        if self.wait[job] < 0:
            self.wait[job] = self.now - spec.submit
        self.token[job] += 1
        self.finish_at[job] = self.now + self.remaining[job]
        self._push(self.finish_at[job], _FINISH, job, self.token[job])

    def _finish(self, job: int, token: int) -> None:
        if token != self.token[job]:
            return
        node = self.nodes[self.node_of[job]]
        self._release(job, node)
        self.node_of[job] = -1
        self.done += 1
        self.finished_waits.append(self.wait[job])
        self.last_finish = self.now
        self._gained_room(node)

    def _release(self, job: int, node: _Node) -> None:
        r = self.jobs[job].requests
        node.free_cpu += r.cpu_milli
        node.free_mem += r.memory_mib
        node.free_gpu += r.gpu
        node.free_pods += 1
        del node.pods[job]
        node.pods_changed_at = self.now
        if not node.pods and node.state is _ON:
            node.idle_since = self.now
        self._changed(node)

    def _gained_room(self, node: _Node) -> None:
        self.epoch += 1
        if not self.pending_count or node.state is not _ON or node.cordoned:
            return
        groups = [
            (next(iter(self.pending[s].values())).created, s) for s in self.shapes_of_pool[node.pool] if self.pending[s]
        ]
        groups.sort()
        for _, shape in groups:
            queue = self.pending[shape]
            r = self.jobs[next(iter(queue))].requests
            fits = min(
                node.free_pods,
                node.free_cpu // r.cpu_milli if r.cpu_milli else node.free_pods,
                node.free_mem // r.memory_mib if r.memory_mib else node.free_pods,
                node.free_gpu // r.gpu if r.gpu else node.free_pods,
            )
            if fits <= 0:
                continue
            started = list(itertools.islice(queue, fits))
            for job in started:
                del queue[job]
                self._start(job, node)
            self.pending_count -= len(started)
            if node.free_cpu < self.min_cpu or node.free_mem < self.min_mem or node.free_pods < 1:
                break

    def _changed(self, node: _Node) -> None:
        node.version += 1
        if node.state is _ON and not node.cordoned:
            heap = self.heaps[node.pool]
            heapq.heappush(heap, (-node.score(), node.index, node.version))
            if len(heap) > 8 * self.scenario.pools[node.pool].count + 64:
                self._rebuild_heap(node.pool)

    def _rebuild_heap(self, pool: int) -> None:
        heap = [
            (-n.score(), n.index, n.version) for n in self.nodes if n.pool == pool and n.state is _ON and not n.cordoned
        ]
        heapq.heapify(heap)
        self.heaps[pool] = heap

    def _evict_all(self, node: _Node) -> None:
        for job in list(node.pods):
            self._release(job, node)
            self.node_of[job] = -1
            self.token[job] += 1
            if self.jobs[job].interruptible:
                self.moved += 1
                self.remaining[job] = max(self.finish_at[job] - self.now, 0.0)
            else:
                self.killed += 1
                self.remaining[job] = self.jobs[job].duration
                self.wait[job] = -1.0
            self.epoch += 1
            if not self._place_anywhere(job):
                self._enqueue(job)

    # Nodes ---------------------------------------------------------------------------------------------------

    def _apply(self, decision: Decision) -> None:
        node = self.by_name.get(decision.node)
        if node is None:
            return
        action = decision.action
        if action is Action.POWER_ON:
            if node.state is _OFF:
                self._power_on(node)
        elif action is Action.POWER_OFF or action is Action.DRAIN:
            if node.state is _ON or node.state is _BOOTING:
                self._power_off(node)
        elif action is Action.CORDON:
            if node.state is _ON and not node.cordoned:
                node.cordoned = True
                self._changed(node)
        elif action is Action.UNCORDON and node.state is _ON and node.cordoned:
            node.cordoned = False
            self._changed(node)
            self._gained_room(node)

    def _power_on(self, node: _Node) -> None:
        pool = self.scenario.pools[node.pool]
        node.boots += 1
        draw = random.Random(f"{self.seed}/{node.name}/{node.boots}")
        duration = draw.lognormvariate(math.log(pool.boot_median), pool.boot_sigma)
        fails = draw.random() < pool.boot_failure
        node.state = _BOOTING
        node.since = self.now
        node.billed_from = self.now
        node.token += 1
        self._changed(node)
        self.power_ons += 1
        if fails:
            self.failed_boots += 1
        else:
            self._push(self.now + duration, _BOOTED, node.index, node.token)

    def _booted(self, index: int, token: int) -> None:
        node = self.nodes[index]
        if token == node.token and node.state is _BOOTING:
            self._become_ready(node, self.now)

    def _become_ready(self, node: _Node, booted_at: float) -> None:
        if node.billed_from is None:
            node.billed_from = booted_at
        node.state = _ON
        node.since = booted_at
        node.cordoned = False
        node.idle_since = booted_at
        self._changed(node)
        self._gained_room(node)

    def _power_off(self, node: _Node) -> None:
        if node.state is _ON:
            node.cordoned = True  # out of the scheduler's view before its pods are placed elsewhere
            self._changed(node)
            self._evict_all(node)
            if node.idle_since is not None:
                self.idle_seconds += self.now - node.idle_since
                node.idle_since = None
        pool = self.scenario.pools[node.pool]
        low, high = pool.shutdown
        delay = random.Random(f"{self.seed}/{node.name}/{node.boots}/stop").uniform(low, high)
        node.state = _STOPPING
        node.since = self.now
        node.cordoned = False
        node.token += 1
        self._changed(node)
        self.power_offs += 1
        self._push(self.now + delay, _STOPPED, node.index, node.token)

    def _stopped(self, index: int, token: int) -> None:
        node = self.nodes[index]
        if token != node.token or node.state is not _STOPPING:
            return
        node.state = _OFF
        node.since = self.now
        if node.billed_from is not None:
            self.node_seconds += self.now - node.billed_from
            node.billed_from = None
        self._changed(node)

    # Observation ---------------------------------------------------------------------------------------------

    def _observe(self) -> ClusterSnapshot:
        infos = tuple(self._node_info(node) for node in self.nodes)
        pending: list[PendingPod] = []
        for queue in self.pending:
            pending.extend(queue.values())
        pending.sort(key=lambda pod: pod.created)
        return ClusterSnapshot(now=self.now, nodes=infos, pending=tuple(pending))

    def _node_info(self, node: _Node) -> NodeInfo:
        if node.info is not None and node.info_version == node.version:
            return node.info
        template = node.template
        labels = dict(template.labels)
        labels[ARCH_LABEL] = template.arch
        node.info = NodeInfo(
            name=node.name,
            arch=template.arch,
            allocatable=template.allocatable,
            power=node.state,
            power_since=node.since,
            pods=tuple(self._pod_info(job) for job in node.pods),
            capacity=template.allocatable,
            labels=labels,
            cordoned=node.cordoned,
            idle_since=node.idle_since if node.state is _ON and not node.pods else None,
            pods_changed_at=node.pods_changed_at,
            template=template.name,
            our_boot=node.state is _BOOTING,
        )
        node.info_version = node.version
        return node.info

    def _pod_info(self, job: int) -> PodInfo:
        info = self.pod_info[job]
        if info is None:
            spec = self.jobs[job]
            info = PodInfo(f"job-{job}", spec.requests, spec.interruptible)
            self.pod_info[job] = info
        return info

    # Results -------------------------------------------------------------------------------------------------

    def _metrics(self, end: float, total: int) -> RunMetrics:
        node_seconds = self.node_seconds
        idle_seconds = self.idle_seconds
        for node in self.nodes:
            if node.billed_from is not None:
                node_seconds += end - node.billed_from
            if node.state is _ON and node.idle_since is not None:
                idle_seconds += end - node.idle_since
        waits = sorted(self.finished_waits)
        return RunMetrics(
            policy=self.controller.name,
            scenario=self.scenario.name,
            jobs=total,
            node_hours=node_seconds / 3600.0,
            idle_node_hours=idle_seconds / 3600.0,
            wait_mean=sum(waits) / len(waits) if waits else 0.0,
            wait_p50=percentile(waits, 0.50),
            wait_p95=percentile(waits, 0.95),
            wait_p99=percentile(waits, 0.99),
            wait_max=waits[-1] if waits else 0.0,
            power_ons=self.power_ons,
            power_offs=self.power_offs,
            failed_boots=self.failed_boots,
            jobs_killed=self.killed,
            pods_moved=self.moved,
            unfinished=total - self.done,
            simulated_seconds=end,
        )


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when it is empty)."""
    if not ordered:
        return 0.0
    rank = max(math.ceil(q * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


def simulate(scenario: Scenario, controller: Controller, seed: int = 1) -> RunMetrics:
    return Simulator(scenario, controller, seed).run()


__all__ = [
    "LEAST_ALLOCATED",
    "MOST_ALLOCATED",
    "SCORING_STRATEGIES",
    "Controller",
    "Job",
    "NodePool",
    "RunMetrics",
    "Scenario",
    "Simulator",
    "percentile",
    "simulate",
]
