"""The autoscaler's loop: observe -> `policy.decide` -> act, once per period, with every decision logged and why.

Each round:
1. reads the watches' copy of nodes, pods and Kueue workloads and the power manager's machines, and builds
   the policy's snapshot (`snapshot.build_observation`);
2. calls `policy.decide` with the configuration (the spec's values, the node templates learnt from registered
   workers, a boot-time estimate measured on this cluster's own boots, trusted to give up slow boots once
   `MEASURED_BOOTS` were measured) and the policy's state from the last round, with the runtime's own cordons
   as `cordoned_by_us`;
3. carries out the decisions:
   * power-on: start the worker through the power manager, and lift the cordon we left on it;
   * power-off: cordon, read the node's pods afresh, and power it off only if none but the node's own is left
     (if pods that may move arrived meanwhile it is drained instead; a job keeps it up, cordoned);
   * drain: cordon, then evict what may move, step by step over the following rounds (an eviction a
     PodDisruptionBudget refuses is asked again; the node stays up), and power off once empty;
   * cordon and uncordon as decided;
4. writes one line to the decisions log when something was decided, done or noted anew, and saves the power
   record with the policy's and observer's timers to state.json, which a restart soon after goes on with.

`run` holds the cluster's operation lock for each round, when it is free (`round_guard`): while `up`, `scale`
or `edge install` holds it, no round runs (the log says so once, and again when rounds go on), so the
autoscaler never powers a worker off under a playbook or on while `scale` removes it.

A power action that fails leaves the worker out of the policy's view for a pause that doubles at each failure
(1, 2, 4, 8, then 15 minutes), so the policy turns to another worker meanwhile. The loop stops between two rounds on
SIGTERM or SIGINT (the caller sets `stop`), stops its watches and logs why. A second signal cuts the round short
(KeyboardInterrupt, raised by the caller's handler): what the round did up to then is saved and logged first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, assert_never

from oscar_deploy.autoscaler.decisions import (
    MEMORY_SECONDS,
    STATE_NAME,
    DecisionsLog,
    RuntimeMemory,
    load_memory,
    save_memory,
    utc_stamp,
)
from oscar_deploy.autoscaler.drain import DrainStep, NodeCalls, drain_step, workload_pods
from oscar_deploy.autoscaler.kubeobjects import interruptible, key_of
from oscar_deploy.autoscaler.model import (
    Action,
    ClusterSnapshot,
    Decision,
    NodeInfo,
    NodeTemplate,
    PolicyConfig,
    PolicyState,
    PowerState,
)
from oscar_deploy.autoscaler.observer import KubeView
from oscar_deploy.autoscaler.policy import decide
from oscar_deploy.autoscaler.snapshot import NodeHistory, Observation, build_observation
from oscar_deploy.providers.power import PowerManager
from oscar_deploy.support.errors import OscarDeployError

RETRY_PAUSES = (60.0, 120.0, 240.0, 480.0, 900.0)
KEPT_BOOTS = 10
# Boots measured before the estimate is trusted to give up a slow boot early (the median of three already
# ignores one outlier).
MEASURED_BOOTS = 3
# The outcome of an action a second signal cut short: the power command was stopped, an API call may have landed.
INTERRUPTED = "interrupted before it ended: the next run sees whether it took effect"


class Observer(Protocol):
    def view(self) -> KubeView: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Settings:
    """What the loop needs besides its parts: `config_for(templates, boot_estimate)` gives the policy's
    configuration for this round; `default_boot` is the boot-time estimate before any boot was measured."""

    cluster: str
    target: str
    period: float
    config_for: Callable[[tuple[NodeTemplate, ...], float], PolicyConfig]
    default_boot: float
    credentials: str = ""


@contextlib.contextmanager
def always_free() -> Iterator[str | None]:
    """The round guard of a runtime that shares its cluster with no other command."""
    yield None


@dataclass
class Round:
    """What one round decided and did, as the decisions log records it."""

    decisions: list[dict[str, str]] = field(default_factory=list)
    # Progress of earlier decisions: drain steps, cordons lifted late (action, node, outcome).
    steps: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class Runtime:
    def __init__(
        self,
        observer: Observer,
        power: PowerManager,
        actions: NodeCalls,
        settings: Settings,
        folder: Path,
        log: DecisionsLog,
        clock: Callable[[], float] = time.time,
        round_guard: Callable[[], contextlib.AbstractContextManager[str | None]] = always_free,
    ) -> None:
        """`round_guard()` is entered around each round of `run`: it gives None when the round may run, else who
        holds the cluster meanwhile."""
        self.observer = observer
        self.power = power
        self.actions = actions
        self.settings = settings
        self.state_file = folder / STATE_NAME
        self.log = log
        self.clock = clock
        memory = load_memory(self.state_file)
        self.record = memory.record
        self.history = NodeHistory()
        self.policy_state = PolicyState()
        self.memory_note = self._restore(memory)
        self.draining: dict[str, str] = {}  # node -> the last drain progress logged
        self.failures: dict[str, int] = {}
        self.booting: dict[str, float] = {}
        # Workers whose power manager cannot report their power state (boards woken by wake-on-LAN).
        self.unreported: set[str] = set()
        self.last_notes: list[str] = []
        self.last_error = ""
        self.round_guard = round_guard
        self.paused_by = ""  # who held the cluster when the last round was skipped; "" while rounds run

    # --- the loop -----------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event, once: bool = False, reason: Callable[[], str] = lambda: "stopped") -> None:
        """Rounds every period until `stop` is set (or one round with `once`); the watches stop at the end."""
        self.log.write(
            {
                "event": "start",
                "cluster": self.settings.cluster,
                "target": self.settings.target,
                "period": self.settings.period,
                "credentials": self.settings.credentials,
                "memory": self.memory_note,
            },
            self.clock(),
        )
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self._guarded_round()
                    self.last_error = ""
                except (OscarDeployError, OSError) as exc:
                    error = str(exc).splitlines()[0]
                    if error != self.last_error:  # the same failure round after round is logged once
                        self.log.write({"event": "error", "error": error}, self.clock())
                    self.last_error = error
                if once:
                    break
                stop.wait(max(0.0, self.settings.period - (time.monotonic() - started)))
        finally:
            self.observer.stop()
            self.log.write({"event": "stop", "reason": reason() if stop.is_set() else "done"}, self.clock())

    def _guarded_round(self) -> None:
        with self.round_guard() as holder:
            if holder is None:
                if self.paused_by:
                    self.log.write({"event": "resume", "reason": f"{self.paused_by} ended"}, self.clock())
                    self.paused_by = ""
                self.round()
            elif holder != self.paused_by:
                reason = f"the cluster is busy with {holder}: no round until it ends"
                self.log.write({"event": "pause", "reason": reason}, self.clock())
                self.paused_by = holder

    def round(self) -> Round:
        now = self.clock()
        view = self.observer.view()
        machines = self.power.machines()
        self.unreported = {machine.name for machine in machines if machine.power == "unknown"}
        observation = build_observation(
            view.nodes,
            view.pods,
            view.workloads,
            machines,
            self.record,
            self.history,
            now,
            cluster_queues=view.cluster_queues,
            local_queues=view.local_queues,
        )
        done = Round(notes=list(view.errors) + list(observation.notes))
        try:
            self._decide_and_act(observation, {machine.name for machine in machines}, done, now)
        except KeyboardInterrupt:
            # A second signal, in the middle of an action: what the round did up to it is saved and logged (the
            # cordons it put on known as ours at the next start), then the loop stops. Both files are written
            # whole (a rename, one write), so a third signal cannot leave either half-written.
            self._save_and_log(done, observation, now)
            raise
        self._save_and_log(done, observation, now)
        return done

    def _decide_and_act(self, observation: Observation, workers: set[str], done: Round, now: float) -> None:
        self._measure_boots(observation.snapshot)
        self._finish_uncordons(observation, done)
        if observation.templates:
            config = dataclasses.replace(
                self.settings.config_for(observation.templates, self.record.boot_estimate(self.settings.default_boot)),
                boot_time_measured=len(self.record.boot_seconds) >= MEASURED_BOOTS,
            )
            state = dataclasses.replace(self.policy_state, cordoned_by_us=frozenset(self.record.cordoned))
            result = decide(observation.snapshot, config, state)
            self.policy_state = result.state
            done.notes += list(result.notes)
            nodes = {node.name: node for node in observation.snapshot.nodes}
            for decision in result.decisions:
                action, node = str(decision.action), decision.node
                # Logged as interrupted unless carrying it out ends.
                done.decisions.append(
                    {"action": action, "node": node, "reason": decision.reason, "outcome": INTERRUPTED}
                )
                done.decisions[-1]["outcome"] = self._carry_out(decision, nodes.get(node), observation, now)
        self._continue_drains(workers, done, now)

    def _save_and_log(self, done: Round, observation: Observation, now: float) -> None:
        done.counts = _counts(observation.snapshot)
        save_memory(self.state_file, RuntimeMemory(self.record, self.policy_state, self.history, now))
        if done.decisions or done.steps or done.notes != self.last_notes:
            entry: dict[str, Any] = {"event": "round", "decisions": done.decisions}
            if done.steps:
                entry["steps"] = done.steps
            entry.update(notes=done.notes, counts=done.counts)
            self.log.write(entry, now)
            self.last_notes = done.notes

    def _restore(self, memory: RuntimeMemory) -> str:
        """Go on with the timers a recent run saved (a restart loses no idle or unneeded time); says which."""
        if memory.saved_at is None:
            return "nothing remembered: timers start now"
        age = self.clock() - memory.saved_at
        lifetime = max(MEMORY_SECONDS, 3 * self.settings.period)
        saved = utc_stamp(memory.saved_at)
        if not 0 <= age <= lifetime:
            # When each worker was last seen Ready stays true however old: it tells a worker that went down
            # from one still in the boot we started.
            self.history.ready_at = dict(memory.history.ready_at)
            return f"timers saved at {saved} are older than {lifetime:.0f}s: they start now"
        self.history, self.policy_state = memory.history, memory.policy
        return f"timers saved at {saved} ({age:.0f}s ago) go on"

    # --- carrying out ---------------------------------------------------------------------------------------------

    def _carry_out(self, decision: Decision, node: NodeInfo | None, observation: Observation, now: float) -> str:
        name = decision.node
        registered = name in observation.views
        try:
            if decision.action is Action.POWER_ON:
                return self._power_on(name, registered, now)
            if decision.action is Action.POWER_OFF:
                return self._power_off(name, node, registered, now)
            if decision.action is Action.DRAIN:
                if name in self.draining:
                    return "draining already"
                self.actions.cordon(name)
                self.record.cordoned.add(name)
                self.draining.setdefault(name, "")
                return "cordoned; draining"
            if decision.action is Action.CORDON:
                self.actions.cordon(name)
                self.record.cordoned.add(name)
                return "cordoned"
            if decision.action is Action.UNCORDON:
                self.actions.uncordon(name)
                self.record.cordoned.discard(name)
                self.record.uncordon_pending.discard(name)
                self.draining.pop(name, None)
                return "uncordoned"
            assert_never(decision.action)
        except OscarDeployError as exc:
            return f"failed: {str(exc).splitlines()[0]}"

    def _power_on(self, name: str, registered: bool, now: float) -> str:
        self.draining.pop(name, None)
        try:
            self.power.power_on(name)
        except OscarDeployError as exc:
            return self._failed(name, exc, now)
        self.failures.pop(name, None)
        self.record.failed_until.pop(name, None)
        self.record.powered_on[name] = now
        if name in self.record.cordoned and registered:
            try:
                self.actions.uncordon(name)
            except OscarDeployError as exc:
                self.record.uncordon_pending.add(name)
                return f"powered on; uncordon failed ({str(exc).splitlines()[0]}), retried next period"
            self.record.cordoned.discard(name)
            return "powered on; uncordoned"
        return "powered on"

    def _power_off(self, name: str, node: NodeInfo | None, registered: bool, now: float) -> str:
        # A board whose wake-up was lost cannot run its power-off command (it is off, SSH fails): a failed
        # power-off of a boot we gave up is taken as off there, so the worker can be woken again.
        never_up = node is not None and node.our_boot and name in self.unreported
        if node is not None and node.power is PowerState.ON:
            self.actions.cordon(name)
            self.record.cordoned.add(name)
            busy = workload_pods(self.actions.pods_on(name))
            if busy:
                keys = ", ".join(key_of(pod) for pod in busy[:3])
                if all(interruptible(pod) for pod in busy):
                    self.draining.setdefault(name, "")
                    return f"pods arrived meanwhile ({keys}); cordoned, draining them first"
                return f"not powered off: pods arrived meanwhile ({keys}); cordoned, it powers off once they end"
        elif registered:
            try:
                self.actions.cordon(name)
                self.record.cordoned.add(name)
            except OscarDeployError as exc:
                # A node that never became Ready may already be gone from the API: powering it off matters more,
                # and the outcome says the cordon is missing.
                outcome = self._switch_off(name, now, never_up)
                return f"{outcome}; not cordoned ({str(exc).splitlines()[0]})"
        return self._switch_off(name, now, never_up)

    def _switch_off(self, name: str, now: float, never_up: bool = False) -> str:
        try:
            self.power.power_off(name)
        except OscarDeployError as exc:
            if never_up:
                self.record.powered_off[name] = now
                return (
                    f"power-off command failed ({str(exc).splitlines()[0]}); it never became Ready after its "
                    "power-on, so it is taken as off and may be powered on again"
                )
            return self._failed(name, exc, now)
        self.failures.pop(name, None)
        self.record.failed_until.pop(name, None)
        self.record.powered_off[name] = now
        self.draining.pop(name, None)
        return "powered off"

    def _failed(self, name: str, exc: OscarDeployError, now: float) -> str:
        count = self.failures.get(name, 0)
        pause = RETRY_PAUSES[min(count, len(RETRY_PAUSES) - 1)]
        self.failures[name] = count + 1
        self.record.failed_until[name] = now + pause
        return f"failed: {str(exc).splitlines()[0]}; retried after {pause:.0f}s"

    def _continue_drains(self, workers: set[str], done: Round, now: float) -> None:
        for name in sorted(self.draining):
            if name not in workers:  # removed meanwhile (`scale`): nothing left to drain or power off
                self.draining.pop(name)
                self.record.cordoned.discard(name)
                outcome = "drain given up: no longer a worker of this cluster"
                done.steps.append({"action": "drain-step", "node": name, "outcome": outcome})
                continue
            try:
                step = drain_step(self.actions, name)
            except OscarDeployError as exc:
                step = DrainStep(failed=(str(exc).splitlines()[0],))
            if step.empty:
                outcome = f"drained; {self._switch_off(name, now)}"
            elif step.jobs:
                self.draining.pop(name)
                outcome = f"drain stopped: {step.describe()}; it stays cordoned and powers off once they end"
            else:
                outcome = step.describe()
                if outcome == self.draining[name]:
                    continue
                self.draining[name] = outcome
            done.steps.append({"action": "drain-step", "node": name, "outcome": outcome})

    def _finish_uncordons(self, observation: Observation, done: Round) -> None:
        """Lift the cordons we left on workers we powered on, where that failed at power-on time."""
        for name in sorted(self.record.uncordon_pending):
            if self.record.last_action(name) != "on" or name not in observation.views:
                self.record.uncordon_pending.discard(name)
                continue
            try:
                self.actions.uncordon(name)
            except OscarDeployError as exc:
                done.notes.append(f"{name}: uncordon after power-on failed ({str(exc).splitlines()[0]})")
                continue
            self.record.uncordon_pending.discard(name)
            self.record.cordoned.discard(name)
            done.steps.append({"action": "uncordon", "node": name, "outcome": "uncordoned after its power-on"})

    # --- boot times -------------------------------------------------------------------------------------------------

    def _measure_boots(self, snapshot: ClusterSnapshot) -> None:
        """Boot durations of the workers we powered on, from power-on to Ready. A Ready condition older than
        the power-on (a worker back before Kubernetes noticed it was gone) measures nothing."""
        for node in snapshot.nodes:
            if node.power is PowerState.BOOTING and node.our_boot:
                self.booting[node.name] = self.record.powered_on[node.name]
            elif node.power is PowerState.ON and node.name in self.booting:
                started = self.booting.pop(node.name)
                if node.power_since >= started:
                    self.record.boot_seconds = [*self.record.boot_seconds, node.power_since - started][-KEPT_BOOTS:]
            elif node.power is not PowerState.BOOTING:
                self.booting.pop(node.name, None)


def _counts(snapshot: ClusterSnapshot) -> dict[str, int]:
    counts = {state.value: 0 for state in PowerState}
    for node in snapshot.nodes:
        counts[node.power.value] += 1
    counts["pending_pods"] = len(snapshot.pending)
    counts["kueue_workloads"] = len(snapshot.workloads)
    return counts
