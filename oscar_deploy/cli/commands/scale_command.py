"""`scale --workers N`: add workers (new nodes, then scale.yml) or remove them (drained first) on a local cluster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from oscar_deploy.cli.options import SPEC_OPTION, load_spec_file, state_for

if TYPE_CHECKING:
    from oscar_deploy.nodes.k3s import K3sLayer
    from oscar_deploy.providers.base import Node, PlannedNode, Provider
    from oscar_deploy.spec.models import ClusterSpec

WORKERS_OPTION = typer.Option(..., "--workers", "-w", help="Number of workers (k3s agents) wanted.", min=0)
BUNDLE_OPTION = typer.Option(
    None,
    "--bundle",
    envvar="OSCAR_DEPLOY_BUNDLE",
    help="Air-gap bundle folder for the new workers (`oscar-deploy bundle build`).",
    file_okay=False,
)
SCALE_TARGETS = ("local",)


def scale(
    workers: int = WORKERS_OPTION,
    file: Path = SPEC_OPTION,
    bundle: Path | None = BUNDLE_OPTION,
) -> None:
    """Grow or shrink the cluster's workers to N, within the spec's workers.min and workers.max.

    New workers are created and joined without touching running nodes; removed workers are drained first
    (their pods move elsewhere), then deleted from Kubernetes and destroyed.
    """
    from oscar_deploy.nodes.inventory import write_inventory
    from oscar_deploy.nodes.k3s import layer_for_cluster
    from oscar_deploy.pipeline.phases import PhaseContext, provider_for
    from oscar_deploy.support.errors import UserInputError
    from oscar_deploy.support.progress import Progress

    spec = load_spec_file(file)
    _check_range(spec, workers, file)
    if spec.target not in SCALE_TARGETS:
        raise UserInputError(
            f"{file}: target {spec.target}: `scale` handles {', '.join(SCALE_TARGETS)} clusters; for boards you own, "
            "edit the inventory and run `oscar-deploy edge install -i INVENTORY` again"
        )
    state = state_for(spec).require()
    if not state.journal.completed("kubernetes"):
        raise UserInputError(f"cluster {spec.name}: k3s is not installed yet; run `oscar-deploy up -f {file}` first")

    progress = Progress()
    provider = provider_for(spec, state, progress)
    context = PhaseContext(spec, state, progress, provider, bundle=bundle)
    layer = layer_for_cluster(context)
    agents = [node for node in provider.nodes() if node.role == "agent"]
    if workers > len(agents):
        plan = _grown_plan(spec, provider.nodes(), workers)
        applied = provider.apply(plan)
        write_inventory(state, applied.nodes, provider.ssh_common_args)
        layer.run("scale.yml")
        done = f"added {', '.join(applied.created) or 'no new node'}"
    elif workers < len(agents):
        removed = _shrink(provider, layer, agents, workers)
        done = f"drained and removed {', '.join(removed)}"
    else:
        done = "nothing to do"
    state.journal.record("scale", workers=workers)
    typer.echo(f"cluster {spec.name}: {workers} worker(s); {done}")


def _check_range(spec: ClusterSpec, workers: int, file: Path) -> None:
    from oscar_deploy.support.errors import UserInputError

    if workers > spec.workers.max:
        raise UserInputError(
            f"--workers {workers}: above workers.max ({spec.workers.max}) in {file}; raise workers.max there "
            f"or ask for at most {spec.workers.max}"
        )
    if workers < spec.workers.min:
        raise UserInputError(
            f"--workers {workers}: below workers.min ({spec.workers.min}) in {file}; lower workers.min there "
            f"or ask for at least {spec.workers.min}"
        )


def _grown_plan(spec: ClusterSpec, nodes: list[Node], workers: int) -> list[PlannedNode]:
    """Every node that exists (kept as it is) plus new agents with the lowest free numbers."""
    from oscar_deploy.providers.base import PlannedNode, planned_nodes
    from oscar_deploy.spec.models import LocalSpec

    settings = spec.target_settings()
    worker_arch = settings.worker_arch if isinstance(settings, LocalSpec) else "amd64"
    plan = [node for node in planned_nodes(spec) if node.role == "server"]
    plan += [PlannedNode(node.name, "agent", node.arch) for node in nodes if node.role == "agent"]
    taken = {node.name for node in plan}
    number = 0
    while sum(node.role == "agent" for node in plan) < workers:
        name = f"agent-{number}"
        if name not in taken:
            plan.append(PlannedNode(name, "agent", worker_arch))
        number += 1
    return plan


def _shrink(provider: Provider, layer: K3sLayer, agents: list[Node], workers: int) -> list[str]:
    """Drain, delete from Kubernetes and destroy the highest-numbered agents, one at a time."""
    from oscar_deploy.nodes.inventory import write_inventory
    from oscar_deploy.providers.base import node_sort_key

    victims = sorted((node.name for node in agents), key=node_sort_key, reverse=True)[: len(agents) - workers]
    for name in victims:
        layer.run("remove-node.yml", {"remove_node": name, "skip_confirmation": True})
        provider.remove(name)
        write_inventory(layer.state, provider.nodes(), provider.ssh_common_args)
    return victims
