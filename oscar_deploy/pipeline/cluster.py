"""`up` and `plan` for one cluster: its phases in order, run (or only decided) against its provider.

The spec is recorded as applied (`spec.yaml` in the state folder) only once every phase completed, so
commands that read the applied spec never see one that was not reached.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from oscar_deploy.iac.backend import projects_dir
from oscar_deploy.nodes.bundle import load_manifest
from oscar_deploy.nodes.inventory import write_inventory
from oscar_deploy.nodes.model import Node
from oscar_deploy.pipeline.infrastructure import PulumiStacks
from oscar_deploy.pipeline.node_phases import NODE_PHASES, layer_for
from oscar_deploy.pipeline.phases import Decision, Phase, PhaseContext, PhaseOutcome, decide, run_phases
from oscar_deploy.pipeline.platform_phases import CA_FILE_NAME, PLATFORM_PHASES, platform_stack
from oscar_deploy.platform.model import STACK_PROJECT
from oscar_deploy.platform.probe import ClusterProbe
from oscar_deploy.providers.base import Provider
from oscar_deploy.providers.cloud import CloudProvider, change_summary
from oscar_deploy.providers.registry import provider_for
from oscar_deploy.spec.models import ClusterSpec
from oscar_deploy.state.endpoints import ENDPOINTS_FILE_NAME
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.progress import Progress

PHASES: tuple[Phase, ...] = NODE_PHASES + PLATFORM_PHASES
PHASE_NAMES = tuple(phase.name for phase in PHASES)


def phases_until(last: str | None) -> tuple[Phase, ...]:
    """The phases of `up` up to and including `last` (all of them when None)."""
    if last is None:
        return PHASES
    if last not in PHASE_NAMES:
        raise UserInputError(f"--until {last}: not a phase; use one of {', '.join(PHASE_NAMES)}")
    return PHASES[: PHASE_NAMES.index(last) + 1]


def cluster_provider(spec: ClusterSpec, state: ClusterState, progress: Progress, break_lock: bool = False) -> Provider:
    """The provider of the spec's target; cloud providers get the cluster's stacks on the Pulumi runner."""
    return provider_for(spec, state, progress, PulumiStacks(spec, state, progress, break_lock))


def cluster_context(
    spec: ClusterSpec,
    state: ClusterState,
    progress: Progress,
    bundle: Path | None = None,
    node_phases: bool = True,
    provider: Provider | None = None,
    break_lock: bool = False,
) -> PhaseContext:
    """The context phases run in, with the nodes the provider reports now. With `node_phases`, the bundle is
    `bundle`, else the one an earlier `up` was given (it is remembered when `up` runs). `break_lock` goes to the
    provider made here; a `provider` passed in was made with its own."""
    remembered = state.desired.bundle() if node_phases else None
    if bundle is None and remembered is not None:
        bundle = Path(remembered)
        if not bundle.is_dir():
            raise UserInputError(
                f"bundle {bundle}: remembered from an earlier `up --bundle` but gone; pass --bundle DIR again"
            )
    if bundle is not None:
        load_manifest(bundle)  # a folder that is no bundle is one line now, not when a phase gets to it
    provider = provider or cluster_provider(spec, state, progress, break_lock)
    context = PhaseContext(spec, state, progress, provider, bundle=bundle, break_lock=break_lock)
    context.nodes = context.provider.nodes()
    return context


def applied_spec_text(spec: ClusterSpec, source: str) -> str:
    """The spec as `up` records it applied: every key, paths absolute (commands that read it run from any
    folder), and where it came from."""
    data = spec.model_dump(mode="json", exclude_none=True)
    return f"# Applied by oscar-deploy to cluster {spec.name}, from {source}.\n" + yaml.safe_dump(data, sort_keys=False)


def converge(
    context: PhaseContext, spec_text: str, until: str | None = None, operation: str = "up", start_note: str = ""
) -> list[PhaseOutcome]:
    """Run every phase (up to `until`) that is not done; record the spec as applied once they all completed.
    Holds the cluster's lock meanwhile, in the name of `operation` (the command, for whoever is refused);
    `start_note` is shown once the lock is held, so a refusal stays the only line."""
    phases = phases_until(until)
    context.state.ensure()
    with context.state.operation(operation, context.progress.note):
        if start_note:
            context.progress.note(start_note)
        if context.bundle is not None:
            context.state.desired.set_bundle(str(context.bundle.resolve()))
        outcomes = run_phases(context, phases)
        context.state.save_spec(spec_text)
    return outcomes


def plan(context: PhaseContext, until: str | None = None) -> list[Decision]:
    """The decisions `up` would take now (`up --check-drift` when the context checks drift), without creating,
    starting or configuring anything."""
    provider, journal = context.provider, context.state.journal
    if isinstance(provider, CloudProvider):
        context.nodes = provider.live_nodes()  # a worker the autoscaler stopped is started by `up`: say so here
    wanted = provider.plan(context.spec, context.workers)
    existing = {node.name: node for node in context.nodes}
    # A worker whose VM was deleted outside oscar-deploy (missing) is made again by `up`.
    create = [node.name for node in wanted if node.name not in existing or existing[node.name].state == "missing"]
    start = [node.name for node in wanted if node.name in existing and existing[node.name].state == "stopped"]
    wanted_names = {node.name for node in wanted}
    remove = [name for name in existing if name not in wanted_names and existing[name].state != "missing"]
    # One no longer wanted whose VM was deleted is not made again: it leaves Kubernetes without a drain.
    gone = [name for name in existing if name not in wanted_names and existing[name].state == "missing"]
    provision = [f"create {', '.join(create)}" if create else "", f"start {', '.join(start)}" if start else ""]
    provision.append(f"drain and remove {', '.join(remove)}" if remove else "")
    provision.append(f"remove {', '.join(gone)} (VM deleted outside oscar-deploy)" if gone else "")
    work = "; ".join(item for item in provision if item) or f"all {len(wanted)} node(s) present, nothing to do"
    runs = bool(create or start or remove or gone)
    if isinstance(provider, CloudProvider):
        # The stack may differ from the spec where the node list does not show it (an edited allowed_cidrs).
        changes = provider.preview(wanted)
        runs = runs or any(count for operation, count in changes.items() if operation != "same")
        work += f"; pulumi preview of stack {provider.project}/{context.spec.name}: {change_summary(changes)}"
    decisions = [Decision("provision", runs, work)]
    # The later phases see the node list provision would leave: new nodes have no instance yet.
    context.nodes = [existing.get(node.name) or Node(node.name, node.role, node.arch, "running") for node in wanted]
    context.nodes = [replace(node, instance=node.instance or "(new)") for node in context.nodes]
    for phase in phases_until(until)[1:]:
        decisions.append(decide(phase, phase.inputs(context), journal.get(phase.name), context.check_drift))
    return decisions


def remove_platform(context: PhaseContext) -> list[str]:
    """Destroy the platform stack (every object it made in the cluster) and its state; the nodes and k3s stay,
    and the next `up` installs the platform again."""
    state = context.state
    if not state.journal.completed("platform") and not (state.path / "pulumi").is_dir():
        return []
    with state.operation("down --keep-nodes", context.progress.note):
        return _destroy_platform(context)


def _destroy_platform(context: PhaseContext, with_nodes: bool = False) -> list[str]:
    """Destroy the platform stack and remove it from its backend. `with_nodes` (the whole cluster goes): when the
    Kubernetes API does not answer (a server deleted or stopped), the objects go with the nodes and a destroy
    could only fail, so the stack is removed from the backend as it stands, and the nodes are removed next. The
    same when the API refuses the state folder's credentials."""
    state = context.state
    # Forgotten before the destroy: one stopped half-way (Ctrl-C, a failure) leaves a platform that the next
    # `up` installs again instead of skipping as done; the stack's working folder goes last (`platform_may_exist`).
    state.journal.forget("platform", "verify")
    operations = platform_stack(context)
    unusable = _api_unusable(state) if with_nodes else None
    if unusable is None:
        changes = operations.destroy()
        operations.session.remove()
        removed = f"platform stack ({changes.get('delete', 0)} resource(s))"
    else:
        context.progress.note(
            f"platform stack: {unusable}; its objects go with the nodes, so the stack leaves its backend without "
            "a destroy"
        )
        operations.session.remove(force=True)
        removed = "platform stack (from its backend only, without a destroy)"
    for leftover in (state.path / ENDPOINTS_FILE_NAME, state.path / CA_FILE_NAME):
        leftover.unlink(missing_ok=True)
    return [f"{removed}, endpoints and cluster CA"]


def _api_unusable(state: ClusterState) -> str | None:
    """None when the cluster's Kubernetes API answers and takes the state folder's kubeconfig, else why not."""
    if not state.kubeconfig_file.is_file():
        return f"no kubeconfig in {state.path}"
    with ClusterProbe(state.kubeconfig_file) as probe:
        return probe.unusable()


def platform_may_exist(state: ClusterState) -> bool:
    """Whether the platform stack may hold resources: its phase completed, or a destroy of it did not finish (the
    stack's working folder in the state folder goes only once the stack is removed)."""
    return state.journal.completed("platform") or (projects_dir(state) / STACK_PROJECT).is_dir()


def check_teardown(context: PhaseContext) -> None:
    """Refuse to tear down a cloud cluster whose state folder and stack backend disagree (the message says how
    to resolve it); other targets have nothing to compare."""
    if isinstance(context.provider, CloudProvider):
        context.provider.check_teardown()


def left_in_cloud(context: PhaseContext) -> list[str]:
    """After `teardown`: a line for each VM still carrying the cluster's tag (the stack, destroyed, held none of
    them); none for a target with no cloud."""
    provider = context.provider
    if not isinstance(provider, CloudProvider):
        return []
    try:
        strays = provider.strays()
    except OperationError as exc:
        raise OperationError(
            f"down: cluster {context.spec.name}: removed, but the check for VMs left with its tag failed: {exc}"
        ) from None
    return [provider.stray_line(vm) for vm in strays]


def teardown(context: PhaseContext, operation: str = "down") -> list[str]:
    """Remove the cluster: hosts you own get k3s reset (and stay yours), nodes a provider made are destroyed
    with everything made for them; then the key material and the state folder go. Returns what was removed.
    Holds the cluster's lock meanwhile, in the name of `operation`.

    A platform whose stack state lives outside the state folder (a shared backend) is destroyed first, so no
    stack is left behind there; in the state folder it goes with the folder."""
    provider, state = context.provider, context.state
    removed: list[str] = []
    with state.operation(operation, context.progress.note):
        check_teardown(context)  # again under the lock: an `up` may have changed the stack since `down` asked
        if context.spec.iac.backend and platform_may_exist(state):
            removed += _destroy_platform(context, with_nodes=True)
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
