"""`up` and `plan` for one cluster: its phases in order, run (or only decided) against its provider.

The spec is recorded as applied (`spec.yaml` in the state folder) only once every phase completed, so
commands that read the applied spec never see one that was not reached.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from oscar_deploy.nodes.inventory import write_inventory
from oscar_deploy.nodes.model import Node
from oscar_deploy.pipeline.node_phases import NODE_PHASES, layer_for
from oscar_deploy.pipeline.phases import Decision, Phase, PhaseContext, PhaseOutcome, decide, run_phases
from oscar_deploy.providers.base import Provider
from oscar_deploy.providers.registry import provider_for
from oscar_deploy.spec.models import ClusterSpec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.progress import Progress

PHASES: tuple[Phase, ...] = NODE_PHASES


def cluster_context(
    spec: ClusterSpec,
    state: ClusterState,
    progress: Progress,
    bundle: Path | None = None,
    node_phases: bool = True,
    provider: Provider | None = None,
) -> PhaseContext:
    """The context phases run in, with the nodes the provider reports now. With `node_phases`, the bundle is
    `bundle`, else the one an earlier `up` was given (it is remembered when `up` runs)."""
    remembered = state.desired.bundle() if node_phases else None
    if bundle is None and remembered is not None:
        bundle = Path(remembered)
        if not bundle.is_dir():
            raise UserInputError(
                f"bundle {bundle}: remembered from an earlier `up --bundle` but gone; pass --bundle DIR again"
            )
    provider = provider or provider_for(spec, state, progress)
    context = PhaseContext(spec, state, progress, provider, bundle=bundle)
    context.nodes = context.provider.nodes()
    return context


def converge(context: PhaseContext, spec_text: str, operation: str = "up") -> list[PhaseOutcome]:
    """Run every phase that is not done; record the spec (and the bundle) as applied once all completed.
    Holds the cluster's lock meanwhile, in the name of `operation` (the command, for whoever is refused)."""
    with context.state.operation(operation, context.progress.note):
        if context.bundle is not None:
            context.state.desired.set_bundle(str(context.bundle.resolve()))
        outcomes = run_phases(context, PHASES)
        context.state.save_spec(spec_text)
    return outcomes


def plan(context: PhaseContext) -> list[Decision]:
    """The decisions `up` would take now, without creating, starting or configuring anything."""
    provider, journal = context.provider, context.state.journal
    wanted = provider.plan(context.spec, context.workers)
    existing = {node.name: node for node in context.nodes}
    create = [node.name for node in wanted if node.name not in existing]
    start = [node.name for node in wanted if node.name in existing and existing[node.name].state != "running"]
    wanted_names = {node.name for node in wanted}
    remove = [name for name in existing if name not in wanted_names]
    provision = [f"create {', '.join(create)}" if create else "", f"start {', '.join(start)}" if start else ""]
    provision.append(f"drain and remove {', '.join(remove)}" if remove else "")
    work = "; ".join(item for item in provision if item) or f"all {len(wanted)} node(s) present, nothing to do"
    decisions = [Decision("provision", bool(create or start or remove), work)]
    # The later phases see the node list provision would leave: new nodes have no instance yet.
    context.nodes = [existing.get(node.name) or Node(node.name, node.role, node.arch, "running") for node in wanted]
    context.nodes = [replace(node, instance=node.instance or "(new)") for node in context.nodes]
    for phase in PHASES[1:]:
        decisions.append(decide(phase, phase.inputs(context), journal.get(phase.name)))
    return decisions


def teardown(context: PhaseContext, operation: str = "down") -> list[str]:
    """Remove the cluster: hosts you own get k3s reset (and stay yours), nodes a provider made are destroyed
    with everything made for them; then the key material and the state folder go. Returns what was removed.
    Holds the cluster's lock meanwhile, in the name of `operation`."""
    provider, state = context.provider, context.state
    removed: list[str] = []
    with state.operation(operation, context.progress.note):
        if provider.scaling == "inventory" and context.nodes:
            # The cluster's own inventory may be missing (hosts set up by hand, or a first `up` that stopped
            # early).
            write_inventory(state, context.nodes, provider.ssh_common_args, private_key=False)
            layer_for(context).run("reset.yml", {"reset_confirmation": "yes"})
            removed += [f"k3s from {node.name}" for node in context.nodes]
        with context.progress.step(f"removing cluster {context.spec.name}"):
            removed += provider.destroy()
            state.remove_key_material()
            state.destroy()
    return removed
