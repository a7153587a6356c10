"""The scaling policy: a pure function from a cluster snapshot, a configuration and the previous state to
decisions (each with its reason) and the next state. No I/O, no clock, no randomness.

Rules, in the order they are applied:

1. Boots that outlast `max_wait_poweron` are given up (powered off), and so are boots we started that outlast
   `give_up_boot_factor` x a boot-time estimate measured on this cluster (and a minute): a healthy boot is
   rarely that slow, and a failed one would bill node time until `max_wait_poweron`. A boot older than
   `stuck_boot_factor` x the estimate is no longer counted as coming capacity, so replacements start early.
   A worker that is not Ready while a job pod is still bound to it is never powered off.
2. Pending pods and Kueue workloads that their ClusterQueue's free quota would admit are packed first-fit-
   decreasing onto ready nodes, then nodes we cordoned (uncordon), then booting nodes, then new nodes of the
   cheapest template that admits them (per architecture and labels), within `max_nodes` and
   `max_concurrent_boots`. Pods pending longer than `reconsider_job_time` skip ready nodes' free space: the
   scheduler has had its chance there. Younger pods do not boot a node when the room that running pods freed
   over the last two boot times, at the same rate, would hold them within one boot time: they would start
   before the node is Ready anyway. Nor do they when a job should end soon on a ready node that could hold
   them: at the median run time of the latest jobs that ended (measured from when each was first seen
   running), one of the jobs running on such nodes ends within a tenth of a boot time. They get a node once
   they have waited `reconsider_job_time`.
3. `min_nodes` workers run or boot at all times, and `extra_nodes_free` of them stay idle (the warm buffer).
4. A node that has been empty for `idle_time` is powered off, unless the demand of the last 2 x `idle_time`
   needed, at its peak, as many nodes of its template as are ready and uncordoned (so that capacity is given
   back only once demand stayed low that long, as consolidation does), or unless demand for its template has
   lately come back sooner than a power cycle pays off (the break-even of the ski-rental problem): of the last
   `GAP_SAMPLES` demand gaps (a level of needed nodes left vacant until demand needed it again) that outlasted
   the node's empty time, at least `GAP_MIN_SAMPLES` exist and half or more ended within
   `boot_time_estimate` + `shutdown_time_estimate` more, the node time a shutdown and the next boot bill. Then
   powering off would cost more than staying on and would make the returning pods wait for a boot. Once the
   node has been empty longer than such gaps last, it powers off. Scale-in never takes the cluster below
   `min_nodes`, never touches a node an administrator cordoned, and never powers off or drains a node that
   runs a pod which may not be interrupted (an OSCAR job).
5. Consolidation: when the nodes that the demand of the last 2 x `idle_time` needed at its peak (packed
   first-fit-decreasing, plus two nodes of slack) are fewer than the ready nodes, and no pod was pending
   beyond the ready capacity in that time, the least loaded surplus nodes are cordoned: their jobs finish,
   no new pod starts there, and they power off once empty. A surplus node whose pods may all move, that uses
   less than `consolidation_threshold` of its node and whose pods fit on the other nodes, is drained after
   being unneeded for `idle_time`. Our cordons are lifted as soon as demand needs the node again.

Flapping is damped by the peak-over-window demand (capacity is given back only after demand stayed low for
2 x `idle_time`), by not consolidating nodes that became Ready less than `idle_time` ago, by waiting as long
after the last pending pressure, by not booting for pods that running pods will make room for sooner than a
boot, by reusing cordoned nodes before booting new ones, and by keeping empty nodes through demand gaps
shorter than a power cycle.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping

from oscar_deploy.autoscaler.model import (
    ARCH_LABEL,
    Action,
    ClusterSnapshot,
    Decision,
    NodeInfo,
    NodeTemplate,
    PolicyConfig,
    PolicyResult,
    PolicyState,
    PowerState,
    Resources,
)
from oscar_deploy.autoscaler.packing import (
    Bin,
    Demand,
    PackResult,
    PodClass,
    Selector,
    classes_of,
    nodes_needed,
    pack,
    selector_key,
)

# Consolidation gives capacity back only below the peak of the last WINDOW_FACTOR x idle_time, plus slack.
SLACK_NODES = 2
WINDOW_FACTOR = 2.0
# An empty node outlives idle_time only on the evidence of this many of its template's latest demand gaps.
GAP_SAMPLES = 20
GAP_MIN_SAMPLES = 3
# A boot we started is never given up as failed sooner than this, whatever the estimate: the fixed parts of a
# short boot (the kubelet's first report, our next look) vary more than its median shows.
MIN_BOOT_GIVE_UP = 60.0
# Young pods wait for a job to end rather than for a boot when, at the median run time of the latest
# JOB_DURATION_SAMPLES jobs that ended (once JOB_DURATION_MIN_SAMPLES did), one of the jobs on the ready nodes
# that could hold them would end within NEXT_JOB_END_FRACTION of a boot time.
JOB_DURATION_SAMPLES = 50
JOB_DURATION_MIN_SAMPLES = 5
NEXT_JOB_END_FRACTION = 0.1


def decide(snapshot: ClusterSnapshot, config: PolicyConfig, state: PolicyState | None = None) -> PolicyResult:
    """The decisions for this snapshot and the state to pass to the next call."""
    return _Round(snapshot, config, state or PolicyState()).run()


class _Round:
    """One evaluation of the policy; holds the intermediate sets so each rule reads as a short method."""

    def __init__(self, snapshot: ClusterSnapshot, config: PolicyConfig, state: PolicyState) -> None:
        self.snapshot = snapshot
        self.config = config
        self.state = state
        self.now = snapshot.now
        self.templates = list(config.templates)
        self.named = {t.name: t for t in self.templates}
        self.decisions: list[Decision] = []
        self.notes: list[str] = []
        self.decided: set[str] = set()
        nodes = snapshot.nodes
        self.template_of: dict[str, NodeTemplate | None] = {n.name: self._template(n) for n in nodes}
        self.ready = [n for n in nodes if n.power is PowerState.ON]
        self.booting = [n for n in nodes if n.power is PowerState.BOOTING]
        self.off = sorted((n for n in nodes if n.power is PowerState.OFF), key=lambda n: n.name)
        ready_cordoned = {n.name for n in self.ready if n.cordoned}
        self.ours = state.cordoned_by_us & ready_cordoned
        self.healthy_booting: list[NodeInfo] = []
        self.powering_on: list[NodeInfo] = []
        self.used_by_demand: set[str] = set()
        self.pressure_at = state.pressure_at
        self.unneeded_since: dict[str, float] = {}

    def _template(self, node: NodeInfo) -> NodeTemplate | None:
        if node.template:
            return self.named.get(node.template)
        return next((t for t in self.templates if t.describes(node)), None)

    def _count_by_template(self, nodes: Iterable[NodeInfo]) -> dict[str, int]:
        """How many of `nodes` each configured template describes."""
        counts: dict[str, int] = {}
        for node in nodes:
            template = self.template_of[node.name]
            if template is not None:
                counts[template.name] = counts.get(template.name, 0) + 1
        return counts

    def _add(self, action: Action, node: NodeInfo, reason: str) -> None:
        self.decisions.append(Decision(action, node.name, reason))
        self.decided.add(node.name)

    def run(self) -> PolicyResult:
        self._track_releases()
        self._boots()
        self._demand()
        self._minimum_and_buffer()
        peak = self._needed_history()
        removable = len(self.ready) + len(self.healthy_booting) + len(self.powering_on) - self.config.min_nodes
        removable = self._empty_nodes(peak, removable)
        self._consolidate(peak, removable)
        state = PolicyState(
            needed_history=self.history,
            pressure_at=self.pressure_at,
            unneeded_since=self.unneeded_since,
            cordoned_by_us=self.ours,
            running=self.running,
            released=self.released,
            first_seen=self.first_seen,
            job_started=self.job_started,
            job_durations=self.job_durations,
            vacated_at=self.vacated_at,
            demand_gaps=self.demand_gaps,
        )
        return PolicyResult(tuple(self.decisions), state, tuple(self.notes))

    # Rule 1: boots -----------------------------------------------------------------------------------------

    def _boots(self) -> None:
        config = self.config
        stuck_after = config.boot_time_estimate * config.stuck_boot_factor
        give_up_after = max(config.boot_time_estimate * config.give_up_boot_factor, MIN_BOOT_GIVE_UP)
        for node in sorted(self.booting, key=lambda n: n.name):
            age = self.now - node.power_since
            if age > config.max_wait_poweron and node.runs_job:
                # No seconds that change each round: the decisions log records a note when it is new.
                self.notes.append(
                    f"{node.name}: not Ready for longer than max_wait_poweron ({config.max_wait_poweron:.0f}s), "
                    "but a job pod is still bound to it; not powered off"
                )
            elif age > config.max_wait_poweron:
                self._add(
                    Action.POWER_OFF,
                    node,
                    f"booting for {age:.0f}s, longer than max_wait_poweron ({config.max_wait_poweron:.0f}s)",
                )
            elif config.boot_time_measured and node.our_boot and not node.pods and age > give_up_after:
                self._add(
                    Action.POWER_OFF,
                    node,
                    f"booting for {age:.0f}s, over {config.give_up_boot_factor:g}x the measured boot time "
                    f"({config.boot_time_estimate:.0f}s); given up as failed",
                )
            elif age > stuck_after:
                self.notes.append(
                    f"{node.name}: booting for over {stuck_after:.0f}s (estimate {config.boot_time_estimate:.0f}s); "
                    "not counted as coming capacity"
                )
            else:
                self.healthy_booting.append(node)
        for node in self.snapshot.nodes:
            if node.power is PowerState.FAILED:
                self._add(Action.POWER_OFF, node, "its last power-on failed; powering it off so it can be retried")

    # Rule 2: pending demand --------------------------------------------------------------------------------

    def _demand(self) -> None:
        demand: list[Demand] = []
        for pod in self.snapshot.pending:
            late = self.now - pod.created > self.config.reconsider_job_time
            demand.append((pod.requests, pod.node_selector, late, 1))
        demand.extend(self._kueue_demand())
        if not demand:
            return
        classes = classes_of(demand)
        late_classes = [c for c in classes if c.new_only]
        young_classes = [c for c in classes if not c.new_only]
        # Most loaded ready nodes first, so the count of idle nodes left for the warm buffer is honest.
        ready_bins = [
            _bin(n, "ready")
            for n in sorted(self.ready, key=lambda n: (-n.requested.share_of(n.allocatable), n.name))
            if not n.cordoned
        ]
        cordoned_bins = [_bin(n, "cordoned") for n in sorted(self.ready, key=lambda n: n.name) if n.name in self.ours]
        booting_bins = [self._booting_bin(n) for n in self.healthy_booting]
        available = self._count_by_template(self.off)
        bins = ready_bins + cordoned_bins + booting_bins
        first = pack(late_classes, bins, self.templates, available, self._new_node_room())
        for fresh in first.new:
            assert fresh.template is not None
            available[fresh.template.name] -= 1
        second = pack(
            young_classes, bins + first.new, self.templates, available, self._new_node_room() - len(first.new)
        )
        new_bins = first.new + second.new
        waits = self._room_soon(second.new) if second.new else None
        if waits is not None:
            new_bins = first.new
            waiting = sum(b.placed for b in second.new)
            self.notes.append(
                f"{waiting} pending pod(s) {waits}; a node is booted for them if they still wait after "
                f"{self.config.reconsider_job_time:.0f}s"
            )
        kept = {id(b) for b in new_bins}
        used_bins = [b for b in first.used + second.used if b.kind != "new" or id(b) in kept]
        self.used_by_demand = {b.name for b in used_bins}
        if any(b.kind != "ready" for b in used_bins) or first.unplaced or second.unplaced or second.new:
            self.pressure_at = self.now
        result = PackResult(used_bins, new_bins, first.unplaced + second.unplaced)
        for used in result.used:
            if used.kind == "cordoned":
                node = next(n for n in self.ready if n.name == used.name)
                self.ours = self.ours - {node.name}
                self._add(Action.UNCORDON, node, f"{used.placed} pending pod(s) fit here; reusing it before booting")
        for fresh in result.new:
            assert fresh.template is not None
            node = self._take_off_node(fresh.template)
            self.used_by_demand.add(node.name)
            self._add(
                Action.POWER_ON,
                node,
                f"{fresh.placed} pending pod(s) fit on no ready or booting node; a new {fresh.template.name} "
                f"node ({fresh.template.arch}) holds them",
            )
        for pod_class, count, why in result.unplaced:
            self.notes.append(self._unplaced_note(pod_class, count, why))

    def _track_releases(self) -> None:
        """Updates which pods run and which finished since the last call (their requests are freed room). A pod
        seen running on a node that has since dropped out of Ready has not finished: it is carried over."""
        running: dict[str, tuple[int, int]] = {}
        jobs: list[str] = []
        held: set[str] = set()
        for node in self.ready:
            for pod in node.pods:
                running[pod.name] = (pod.requests.cpu_milli, pod.requests.memory_mib)
                if not pod.interruptible:
                    jobs.append(pod.name)
        for node in self.snapshot.nodes:
            if node.power is not PowerState.ON:
                for pod in node.pods:
                    if pod.name in self.state.running:
                        running[pod.name] = self.state.running[pod.name]
                        if not pod.interruptible:
                            held.add(pod.name)
        window = self._release_window()
        released = [entry for entry in self.state.released if entry[0] >= self.now - window]
        cpu = memory = 0
        for name, (pod_cpu, pod_memory) in self.state.running.items():
            if name not in running:
                cpu += pod_cpu
                memory += pod_memory
        if cpu or memory:
            released.append((self.now, cpu, memory))
        self.running = running
        self.released = tuple(released)
        self.first_seen = self.now if self.state.first_seen is None else self.state.first_seen
        self._track_jobs(jobs, held)

    def _track_jobs(self, jobs: list[str], held: set[str]) -> None:
        """When each job pod on a ready node (`jobs`) was first seen running, and how long the ones that ended
        ran. Jobs already running at the first look, or when their start was missed, have no known start and
        are left out. A job carried over on a node that is not Ready (`held`) has not ended: its start is kept."""
        started: dict[str, float] = {}
        for name in jobs:
            if name in self.state.job_started:
                started[name] = self.state.job_started[name]
            elif self.state.first_seen is not None and name not in self.state.running:
                started[name] = self.now
        for name in held & self.state.job_started.keys():
            started[name] = self.state.job_started[name]
        durations = list(self.state.job_durations)
        durations += [self.now - since for name, since in self.state.job_started.items() if name not in started]
        self.job_started = started
        self.job_durations = tuple(durations[-JOB_DURATION_SAMPLES:])

    def _release_window(self) -> float:
        return max(2 * self.config.boot_time_estimate, 4 * self.config.period)

    def _room_soon(self, new_bins: list[Bin]) -> str | None:
        """Why the pods of `new_bins` should start before a new node could be Ready, or None."""
        if self._absorbed_soon(new_bins):
            return (
                f"should start within {self.config.boot_time_estimate:.0f}s as running pods finish, before a new "
                "node could be Ready"
            )
        return self._job_ends_soon(new_bins)

    def _job_ends_soon(self, new_bins: list[Bin]) -> str | None:
        """Why a job on the ready nodes that could hold the pods of `new_bins` should end within a fraction of a
        boot time, at the median run time of the latest jobs that ended; None when it should not."""
        if len(self.job_durations) < JOB_DURATION_MIN_SAMPLES:
            return None
        typical = statistics.median(self.job_durations)
        horizon = NEXT_JOB_END_FRACTION * self.config.boot_time_estimate
        for fresh in new_bins:
            assert fresh.template is not None
            wanted = fresh.template.allocatable - fresh.free
            jobs = sum(
                1
                for node in self.ready
                if not node.cordoned
                and self.template_of[node.name] == fresh.template
                and wanted.fits_in(node.allocatable)
                for pod in node.pods
                if not pod.interruptible
            )
            if not jobs or typical / jobs > horizon:
                return None
        return (
            f"wait for a job to end on a ready node that can hold them: jobs here lately ran {typical:.0f}s (median "
            f"of {len(self.job_durations)}), so with the jobs running there one should end within {horizon:.0f}s"
        )

    def _absorbed_soon(self, new_bins: list[Bin]) -> bool:
        """Whether room freed at the recent rate would hold the pods of `new_bins` within one boot time."""
        assert self.first_seen is not None
        observed = min(self.now - self.first_seen, self._release_window())
        if observed <= 0:
            return False
        cpu_rate = sum(entry[1] for entry in self.released) / observed
        memory_rate = sum(entry[2] for entry in self.released) / observed
        need_cpu = need_memory = 0
        for fresh in new_bins:
            assert fresh.template is not None
            need_cpu += fresh.template.allocatable.cpu_milli - fresh.free.cpu_milli
            need_memory += fresh.template.allocatable.memory_mib - fresh.free.memory_mib
        horizon = self.config.boot_time_estimate
        return need_cpu <= cpu_rate * horizon and need_memory <= memory_rate * horizon

    def _kueue_demand(self) -> list[Demand]:
        headroom = dict(self.snapshot.queue_headroom)
        demand: list[Demand] = []
        held = 0
        for workload in sorted(self.snapshot.workloads, key=lambda w: (w.created, w.name)):
            total = Resources()
            for pod_set in workload.pod_sets:
                r = pod_set.requests
                total = total + Resources(
                    r.cpu_milli * pod_set.count, r.memory_mib * pod_set.count, r.gpu * pod_set.count
                )
            room = headroom.get(workload.queue)
            if room is not None:
                if not Resources(total.cpu_milli, total.memory_mib, total.gpu).fits_in(
                    Resources(room.cpu_milli, room.memory_mib, room.gpu)
                ):
                    held += 1
                    continue
                headroom[workload.queue] = room - total
            for pod_set in workload.pod_sets:
                demand.append((pod_set.requests, pod_set.node_selector, False, pod_set.count))
        if held:
            self.notes.append(f"{held} Kueue workload(s) wait for quota, not for nodes; not counted as demand")
        return demand

    def _booting_bin(self, node: NodeInfo) -> Bin:
        template = self.template_of[node.name]
        allocatable = (
            node.allocatable if node.allocatable.pods else template.allocatable if template else node.allocatable
        )
        return _bin(node, "booting", allocatable - node.requested)

    def _new_node_room(self) -> int:
        occupied = len(self.ready) + len(self.booting) + len(self.powering_on)
        room = self.config.max_nodes - occupied
        if self.config.max_concurrent_boots:
            room = min(room, self.config.max_concurrent_boots - len(self.booting) - len(self.powering_on))
        return max(room, 0)

    def _take_off_node(self, template: NodeTemplate | None) -> NodeInfo:
        node = next(n for n in self.off if template is None or self.template_of[n.name] == template)
        self.off.remove(node)
        self.powering_on.append(node)
        return node

    def _unplaced_note(self, pod_class: PodClass, count: int, why: str) -> str:
        what = f"{count} pending pod(s) of {pod_class.requests.describe()}"
        if why == "limit":
            if self.config.max_concurrent_boots and self._new_node_room() == 0 and self._below_max():
                return f"{what} wait: max_concurrent_boots ({self.config.max_concurrent_boots}) nodes are booting"
            return f"{what} wait: max_nodes ({self.config.max_nodes}) reached"
        if why == "pool":
            return f"{what} wait: no powered-off node of a template that admits them is left"
        selector = ", ".join(f"{k}={v}" for k, v in pod_class.selector) or "no selector"
        return f"{what} ({selector}) fit no node template; they stay pending"

    def _below_max(self) -> bool:
        return len(self.ready) + len(self.booting) + len(self.powering_on) < self.config.max_nodes

    # Rule 3: minimum and warm buffer -----------------------------------------------------------------------

    def _minimum_and_buffer(self) -> None:
        active = len(self.ready) + len(self.healthy_booting) + len(self.powering_on)
        while active < self.config.min_nodes and self._can_power_on():
            node = self._take_off_node(None)
            self._add(Action.POWER_ON, node, f"workers.min is {self.config.min_nodes}; {active} running or booting")
            active += 1
        spare = len(self._idle_ready()) + sum(1 for n in self.healthy_booting if n.name not in self.used_by_demand)
        spare += sum(1 for n in self.powering_on if n.name not in self.used_by_demand)
        while spare < self.config.extra_nodes_free and self._can_power_on():
            node = self._take_off_node(None)
            self._add(
                Action.POWER_ON,
                node,
                f"keeping {self.config.extra_nodes_free} idle worker(s) ready (extra_nodes_free); {spare} idle now",
            )
            spare += 1

    def _can_power_on(self) -> bool:
        return bool(self.off) and self._new_node_room() > 0

    def _idle_ready(self) -> list[NodeInfo]:
        return [
            n
            for n in self.ready
            if not n.pods and not n.cordoned and n.name not in self.used_by_demand and n.name not in self.decided
        ]

    # Rule 4: empty nodes -----------------------------------------------------------------------------------

    def _empty_nodes(self, peak: Mapping[str, int], removable: int) -> int:
        idle = self._idle_ready()
        spare = len(idle) + sum(1 for n in self.healthy_booting if n.name not in self.used_by_demand)
        may_remove = spare - self.config.extra_nodes_free
        active = self._count_by_template(n for n in self.ready if not n.cordoned)
        for node in sorted(idle, key=lambda n: (_idle_since(n), n.name)):
            if removable <= 0 or may_remove <= 0:
                break
            empty_for = self.now - _idle_since(node)
            if empty_for < self.config.idle_time:
                break
            template = self.template_of[node.name]
            if template is not None and active[template.name] <= peak.get(template.name, 0):
                self.notes.append(
                    f"{node.name}: kept on past idle_time ({self.config.idle_time:.0f}s): the demand of the last "
                    f"{self._window():.0f}s needed {peak[template.name]} {template.name} node(s) at its peak "
                    f"and {active[template.name]} are ready"
                )
                continue
            if self._demand_returns_soon(node, empty_for):
                continue
            self._add(Action.POWER_OFF, node, f"empty for {empty_for:.0f}s (idle_time {self.config.idle_time:.0f}s)")
            removable -= 1
            may_remove -= 1
            if template is not None:
                active[template.name] -= 1
        return removable

    def _demand_returns_soon(self, node: NodeInfo, empty_for: float) -> bool:
        """Whether the template's recent demand gaps say a node empty this long is needed again within a power
        cycle's cost (a note says so)."""
        template = self.template_of[node.name]
        if template is None:
            return False
        latest = self.demand_gaps.get(template.name, ())[-GAP_SAMPLES:]  # a restored state may hold more
        longer = [gap for gap in latest if gap > empty_for]
        if len(longer) < GAP_MIN_SAMPLES:
            return False
        cycle = self.config.boot_time_estimate + self.config.shutdown_time_estimate
        back = sum(1 for gap in longer if gap <= empty_for + cycle)
        if 2 * back < len(longer):
            return False
        # No seconds that change every round: the decisions log gets an entry only when the notes change.
        self.notes.append(
            f"{node.name}: kept on past idle_time ({self.config.idle_time:.0f}s): {back} of the {len(longer)} "
            f"latest {template.name} demand gaps longer than its empty time ended within {cycle:.0f}s more, "
            "what a shutdown and a boot cost"
        )
        return True

    # Rule 5: consolidation ---------------------------------------------------------------------------------

    def _needed_history(self) -> dict[str, int]:
        horizon = self.now - self._window()
        history = [(t, n) for t, n in self.state.needed_history if t >= horizon]
        self.vacated_at = self.state.vacated_at
        self.demand_gaps = self.state.demand_gaps
        if not history or self.now - history[-1][0] >= self.config.period:
            needed_now = self._needed_now()
            if self.state.needed_history:
                self._track_gaps(self.state.needed_history[-1][1], needed_now)
            history.append((self.now, needed_now))
        self.history = tuple(history)
        self.history_covers_window = bool(self.state.needed_history) and (
            self.state.needed_history[0][0] <= horizon + self.config.period
        )
        peak: dict[str, int] = {}
        for _, needed in history:
            for name, count in needed.items():
                peak[name] = max(peak.get(name, 0), count)
        return peak

    def _track_gaps(self, before: Mapping[str, int], after: Mapping[str, int]) -> None:
        """Levels of needed nodes that demand left are vacant from now on; a vacant level needed again ends a
        demand gap, whose length joins the template's latest `GAP_SAMPLES`."""
        vacated = {name: dict(levels) for name, levels in self.vacated_at.items()}
        gaps = dict(self.demand_gaps)
        for template in self.templates:
            old, new = before.get(template.name, 0), after.get(template.name, 0)
            levels = vacated.setdefault(template.name, {})
            for level in range(new + 1, old + 1):
                levels[level] = self.now
            ended = [self.now - levels.pop(level) for level in range(old + 1, new + 1) if level in levels]
            if ended:
                gaps[template.name] = (*gaps.get(template.name, ()), *ended)[-GAP_SAMPLES:]
        self.vacated_at = {name: levels for name, levels in vacated.items() if levels}
        self.demand_gaps = gaps

    def _window(self) -> float:
        return self.config.idle_time * WINDOW_FACTOR

    def _needed_now(self) -> dict[str, int]:
        """Fresh nodes of each template that the running and pending pods would fill, packed FFD."""
        counts: dict[tuple[Resources, Selector], int] = {}
        for node in self.ready + self.booting:
            if not node.pods:
                continue
            labels = {ARCH_LABEL: node.arch}
            template = self.template_of[node.name]
            if template is not None:
                labels.update(template.labels)
            selector = selector_key(labels)
            for pod in node.pods:
                key = (pod.requests, selector)
                counts[key] = counts.get(key, 0) + 1
        for pending in self.snapshot.pending:
            key = (pending.requests, selector_key(pending.node_selector))
            counts[key] = counts.get(key, 0) + 1
        demand: list[Demand] = [(req, dict(sel), False, count) for (req, sel), count in counts.items()]
        return nodes_needed(classes_of(demand), self.templates)

    def _consolidate(self, peak: Mapping[str, int], removable: int) -> None:
        quiet = self.pressure_at is None or self.pressure_at < self.now - self._window()
        may_shrink = quiet and self.history_covers_window
        for template in self.templates:
            members = [
                n
                for n in self.ready
                if self.template_of[n.name] == template
                and n.name not in self.decided
                and (not n.cordoned or n.name in self.ours)
            ]
            target = peak.get(template.name, 0) + SLACK_NODES
            active = [n for n in members if not n.cordoned]
            if self.config.extra_nodes_free and template is self.templates[0]:
                target += self.config.extra_nodes_free
            removable = self._settle_our_cordons(template, members, active, target, removable, may_shrink)
            surplus = len(active) - target
            if not may_shrink or surplus <= 0 or removable <= 0:
                continue
            settled = self.now - self.config.idle_time
            candidates = sorted(
                (n for n in active if n.pods and n.power_since <= settled and n.name not in self.used_by_demand),
                key=lambda n: (n.requested.share_of(n.allocatable), n.name),
            )[: min(surplus, removable)]
            keep = [n for n in active if n not in candidates]
            for node in candidates:
                if self._drain_if_movable(node, keep, target):
                    removable -= 1
                    continue
                self.ours = self.ours | {node.name}
                self.unneeded_since.setdefault(node.name, self.now)
                self._add(
                    Action.CORDON,
                    node,
                    f"the last {self._window():.0f}s of demand fit on {target - SLACK_NODES} "
                    f"{template.name} node(s) (+{SLACK_NODES} slack) and {len(active)} are ready; no new pods "
                    f"here, it powers off once its {len(node.pods)} pod(s) finish",
                )
                removable -= 1

    def _settle_our_cordons(
        self,
        template: NodeTemplate,
        members: list[NodeInfo],
        active: list[NodeInfo],
        target: int,
        removable: int,
        may_shrink: bool,
    ) -> int:
        ours = [n for n in members if n.name in self.ours]
        for node in sorted(ours, key=lambda n: (-len(n.pods), n.name)):
            if len(active) < target:
                needed = f"{target - SLACK_NODES} {template.name} node(s) needed (+{SLACK_NODES} slack)"
                self._add(Action.UNCORDON, node, f"{needed} and {len(active)} ready without it")
                self.ours = self.ours - {node.name}
                active.append(node)
                continue
            if not node.pods and removable > 0:
                self.ours = self.ours - {node.name}
                self._add(Action.POWER_OFF, node, "cordoned to consolidate and now empty")
                removable -= 1
                continue
            self.unneeded_since[node.name] = self.state.unneeded_since.get(node.name, self.now)
            if may_shrink and removable > 0 and self._drain_if_movable(node, active, target):
                self.ours = self.ours - {node.name}
                removable -= 1
        return removable

    def _drain_if_movable(self, node: NodeInfo, others: list[NodeInfo], target: int) -> bool:
        """Drains the node if all its pods may move, it is lightly used, its pods fit on `others` (which never
        hold the node itself) and it has been unneeded for idle_time; records when it became unneeded otherwise.
        True when drained."""
        if node.runs_job or node.requested.share_of(node.allocatable) >= self.config.consolidation_threshold:
            return False
        pods: list[Demand] = [(p.requests, {ARCH_LABEL: node.arch}, False, 1) for p in node.pods]
        bins = [_bin(n, "ready") for n in others if n.name not in self.decided]
        if pack(classes_of(pods), bins, []).unplaced:
            return False
        since = self.state.unneeded_since.get(node.name, self.now)
        self.unneeded_since[node.name] = since
        if self.now - since < self.config.idle_time:
            return False
        self._add(
            Action.DRAIN,
            node,
            f"its {len(node.pods)} pod(s) may move, use {node.requested.share_of(node.allocatable):.0%} of it and "
            f"fit on the other nodes; unneeded for {self.now - since:.0f}s",
        )
        return True


def _bin(node: NodeInfo, kind: str, free: Resources | None = None) -> Bin:
    return Bin(node.name, node.arch, node.labels, node.free if free is None else free, kind)


def _idle_since(node: NodeInfo) -> float:
    return node.idle_since if node.idle_since is not None else node.power_since


__all__ = ["decide", "selector_key"]
