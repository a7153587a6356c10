"""The phases of `up`: each declares its inputs, and runs only when it never completed or an input changed.

A phase's inputs are the parts of the spec, the catalogue pins, the bundle and the node list it uses, as
JSON-serialisable data without secrets. When a phase completes, the journal records them with their digest;
the next `up` compares and runs the phase again only when they differ, saying which input changed. So `up`
after a crash or Ctrl-C resumes where it stopped, `up` after a spec edit does what the edit needs, and `up`
on a converged cluster skips every phase without touching a node. A phase marked `always` looks at the world
each time (provision asks the provider which nodes exist: cheap, and it repairs what went missing).
`up --check-drift` also runs, when nothing changed, the phases that can look for changes made by hand, which
no input shows: the node phases run every role on every node, the platform reads every object back from the
cluster before its update; each repairs what it finds and names it.

`plan` makes the same decisions without running anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oscar_deploy.nodes.model import Node
from oscar_deploy.providers.base import Provider
from oscar_deploy.spec.models import ClusterSpec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.state.journal import PhaseRecord, inputs_digest
from oscar_deploy.support.progress import Progress


@dataclass
class PhaseContext:
    """What phases share: the spec, the state folder, progress output, the provider and the nodes it reports."""

    spec: ClusterSpec
    state: ClusterState
    progress: Progress
    provider: Provider
    # Air-gap bundle folder (`up --bundle DIR`): the k3s phases take k3s from it instead of upstream.
    bundle: Path | None = None
    # The nodes as the provider reports them; provision refreshes them, later phases read them.
    nodes: list[Node] = field(default_factory=list)
    # `up --check-drift`: the phases with a `drift_check` run even with unchanged inputs, and look for drift.
    check_drift: bool = False
    # `--break-lock`: a Pulumi lock held from another machine is taken as its dead run's and removed.
    break_lock: bool = False

    @property
    def workers(self) -> int:
        """Workers the cluster should have: what `scale` set last, else the spec's `workers.initial`."""
        scaled = self.state.desired.workers()
        return self.spec.workers.initial if scaled is None else scaled


@dataclass
class PhaseResult:
    changed: bool
    summary: list[str] = field(default_factory=list)
    # Recorded in the journal with the phase (JSON-serialisable, never secrets).
    details: dict[str, Any] = field(default_factory=dict)
    # What the person running it must know (data lost, say); shown on stderr after the summary.
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Phase:
    name: str
    inputs: Callable[[PhaseContext], dict[str, Any]]
    # Runs the phase; gets the phase's previous record (None when it never completed), so it can pick a path
    # (a new k3s version upgrades in place instead of installing).
    run: Callable[[PhaseContext, PhaseRecord | None], PhaseResult]
    # Why the phase runs on every `up` (its decision's reason); a phase without one runs when its inputs changed.
    always: str = ""
    # What the phase does in a drift check (`up --check-drift`), which runs it even with unchanged inputs; a phase
    # without one is not run by a drift check.
    drift_check: str = ""


@dataclass(frozen=True)
class Decision:
    phase: str
    run: bool
    reason: str


@dataclass
class PhaseOutcome:
    phase: str
    decision: Decision
    result: PhaseResult | None = None


def changed_inputs(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names of the inputs that differ, with old and new value when they are short enough to read."""
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, str | int | None) and isinstance(new, str | int | None):
            changes.append(f"{key} ({_short(old)} -> {_short(new)})")
        else:
            changes.append(key)
    return changes


def _short(value: object) -> str:
    text = "none" if value is None else str(value)
    return text if len(text) <= 40 else text[:12] + "..." + text[-12:]


def up_to_date(inputs: dict[str, Any], record: PhaseRecord | None) -> bool:
    """Whether the phase of `record` completed with exactly `inputs`."""
    return record is not None and record.digest == inputs_digest(inputs)


def decide(phase: Phase, inputs: dict[str, Any], record: PhaseRecord | None, check_drift: bool = False) -> Decision:
    """Whether `phase` runs with `inputs`, given its last record, and why; `check_drift` runs the phases that have
    a drift check."""
    if phase.always:
        return Decision(phase.name, True, phase.always)
    if record is None:
        return Decision(phase.name, True, "never completed")
    if not up_to_date(inputs, record):
        changes = changed_inputs(record.inputs, inputs) or ["inputs"]
        return Decision(phase.name, True, f"changed: {', '.join(changes)}")
    if check_drift and phase.drift_check:
        return Decision(phase.name, True, f"drift check (--check-drift): {phase.drift_check}")
    return Decision(phase.name, False, f"up to date (completed {record.completed_at})")


def run_phases(context: PhaseContext, phases: Sequence[Phase]) -> list[PhaseOutcome]:
    """Run the phases in order, each only when `decide` says so; every run is journalled with its inputs."""
    journal = context.state.journal
    outcomes: list[PhaseOutcome] = []
    for phase in phases:
        inputs = phase.inputs(context)
        record = journal.get(phase.name)
        decision = decide(phase, inputs, record, context.check_drift)
        context.progress.note(f"phase {phase.name}: {decision.reason}")
        if not decision.run:
            outcomes.append(PhaseOutcome(phase.name, decision))
            continue
        result = phase.run(context, record)
        # Inputs are read again: a phase that changes its own inputs (provision creates nodes) records the
        # world as it left it.
        journal.record(phase.name, phase.inputs(context), changed=result.changed, details=result.details)
        outcomes.append(PhaseOutcome(phase.name, decision, result))
    return outcomes
