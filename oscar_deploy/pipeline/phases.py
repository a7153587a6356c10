"""The phases of `up`, run in order, each recorded in the cluster's journal when it completes.

A phase is skipped when the journal says it completed, unless it must always look (provision checks the
nodes every time: it is cheap and repairs nodes removed or stopped behind our back). When a phase changes
something (for instance provision recreates a node), every later phase runs again, because its earlier
result no longer describes the cluster. `up` after a crash or Ctrl-C therefore resumes where it stopped,
and `up` on a finished cluster changes nothing.

Later layers add their phases to `PHASES` in order (prepare, kubernetes, platform, services, verify).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.progress import Progress

if TYPE_CHECKING:
    from oscar_deploy.providers.base import PlannedNode, Provider
    from oscar_deploy.spec.models import ClusterSpec
    from oscar_deploy.state.folder import ClusterState

UP_TARGETS = ("local",)


@dataclass
class PhaseContext:
    """What phases share: the spec, the state folder, progress output and the provider's handle."""

    spec: ClusterSpec
    state: ClusterState
    progress: Progress
    provider: Provider
    # Air-gap bundle folder (`up --bundle DIR`): the k3s phases take k3s from it instead of upstream.
    bundle: Path | None = None


@dataclass
class PhaseResult:
    changed: bool
    summary: list[str] = field(default_factory=list)
    # Recorded in the journal with the phase (JSON-serialisable, never secrets).
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Phase:
    name: str
    description: str
    run: Callable[[PhaseContext], PhaseResult]
    always: bool = False


@dataclass
class PhaseOutcome:
    phase: str
    ran: bool
    result: PhaseResult | None = None


def provider_for(spec: ClusterSpec, state: ClusterState, progress: Progress) -> Provider:
    """The provider of the spec's target; targets other than those `up` supports so far stop here."""
    if spec.target not in UP_TARGETS:
        raise UserInputError(
            f"target {spec.target}: this version makes clusters only on target {', '.join(UP_TARGETS)} "
            "(nodes as containers on this machine); set `target: local` to try the platform here"
        )
    from oscar_deploy.providers.local.engine import ContainerEngine
    from oscar_deploy.providers.local.provider import LocalProvider

    return LocalProvider(state, ContainerEngine.find(), progress)


def wanted_nodes(spec: ClusterSpec, state: ClusterState) -> list[PlannedNode]:
    """The nodes the cluster should have: the spec's servers, and its initial workers or, once
    `scale --workers N` ran, N workers (so neither `up` nor `status` undoes or misreads a scale)."""
    from oscar_deploy.providers.base import planned_nodes

    scaled = state.journal.phases().get("scale", {}).get("workers")
    if isinstance(scaled, int):
        spec = spec.model_copy(update={"workers": spec.workers.model_copy(update={"initial": scaled})})
    return planned_nodes(spec)


def provision(context: PhaseContext) -> PhaseResult:
    """Create or repair the nodes the spec asks for and write the inventory from what exists."""
    from oscar_deploy.nodes.inventory import write_inventory

    plan = wanted_nodes(context.spec, context.state)
    applied = context.provider.apply(plan)
    write_inventory(context.state, applied.nodes, context.provider.ssh_common_args)
    summary = [
        f"{verb} {', '.join(names)}"
        for verb, names in (("created", applied.created), ("started", applied.started))
        if names
    ]
    if applied.extra:
        summary.append(f"not in the spec, left as they are: {', '.join(applied.extra)}")
    if not applied.changed:
        summary.append(f"all {len(plan)} node(s) already running")
    return PhaseResult(
        changed=applied.changed,
        summary=summary,
        details={
            "nodes": [node.name for node in applied.nodes],
            "created": applied.created,
            "started": applied.started,
        },
    )


def prepare(context: PhaseContext) -> PhaseResult:
    from oscar_deploy.nodes.k3s import prepare_phase

    return prepare_phase(context)


def kubernetes(context: PhaseContext) -> PhaseResult:
    from oscar_deploy.nodes.k3s import kubernetes_phase

    return kubernetes_phase(context)


PHASES: tuple[Phase, ...] = (
    Phase("provision", "create or repair the nodes and write the inventory", provision, always=True),
    Phase("prepare", "prepare the nodes' operating system and the k3s files (playbook prepare.yml)", prepare),
    Phase("kubernetes", "install k3s on servers and agents, fetch the kubeconfig (kubernetes.yml)", kubernetes),
)


def run_phases(context: PhaseContext, phases: Sequence[Phase] = PHASES) -> list[PhaseOutcome]:
    journal = context.state.journal
    outcomes: list[PhaseOutcome] = []
    for index, phase in enumerate(phases):
        if journal.completed(phase.name) and not phase.always:
            context.progress.note(f"phase {phase.name}: already completed")
            outcomes.append(PhaseOutcome(phase.name, ran=False))
            continue
        context.progress.note(f"phase {phase.name}: {phase.description}")
        result = phase.run(context)
        journal.record(phase.name, changed=result.changed, **result.details)
        if result.changed:
            later = [other.name for other in phases[index + 1 :]]
            if later:
                journal.forget(*later)
        outcomes.append(PhaseOutcome(phase.name, ran=True, result=result))
    return outcomes
