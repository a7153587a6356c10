"""`scale --workers N`: add workers (new nodes joined by scale.yml) or remove them (drained first)."""

from __future__ import annotations

from pathlib import Path

import typer

from oscar_deploy.cli.options import CLUSTER_NAME_OPTION, OPTIONAL_SPEC_OPTION, open_cluster
from oscar_deploy.nodes.inventory import write_inventory
from oscar_deploy.nodes.model import node_sort_key
from oscar_deploy.pipeline.cluster import cluster_context, cluster_provider
from oscar_deploy.pipeline.node_phases import layer_for, scale_in
from oscar_deploy.spec.models import ClusterSpec
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.progress import Progress

WORKERS_OPTION = typer.Option(..., "--workers", "-w", help="Number of workers (k3s agents) wanted.", min=0)


def scale(
    workers: int = WORKERS_OPTION,
    file: Path | None = OPTIONAL_SPEC_OPTION,
    cluster: str | None = CLUSTER_NAME_OPTION,
) -> None:
    """Grow or shrink the workers to N; removed ones are drained first.

    N must be within the spec's workers.min and workers.max. New workers are created and joined without
    touching running nodes; removed workers are drained first (their pods move elsewhere), then deleted from
    Kubernetes and destroyed. The count is kept as the cluster's desired state, so `up` keeps it.
    """
    spec, state = open_cluster(file, cluster)
    _check_range(spec, workers)
    progress = Progress()
    provider = cluster_provider(spec, state, progress)
    if provider.scaling == "inventory":
        raise UserInputError(
            f"cluster {spec.name}: target {spec.target} scales by its inventory; add or remove hosts there "
            "and run `oscar-deploy up` again"
        )
    if not state.journal.completed("kubernetes"):
        raise UserInputError(f"cluster {spec.name}: k3s is not installed yet; run `oscar-deploy up` first")
    with state.operation(f"scale --workers {workers}", progress.note):
        context = cluster_context(spec, state, progress, provider=provider)
        agents = sorted(
            (node for node in context.nodes if node.role == "agent"), key=lambda node: node_sort_key(node.name)
        )
        # More workers than the count last set: a scale out stopped before its workers joined (Ctrl-C, a failure)
        # left them made but not joined, and scale.yml joins them now.
        if workers > len(agents) or context.workers < workers == len(agents):
            applied = provider.apply(provider.plan(spec, workers))
            write_inventory(state, applied.nodes, provider.ssh_common_args)
            context.nodes = applied.nodes
            layer_for(context, verify_bundle=True).run("scale.yml")
            made_before = [node.name for node in agents[context.workers :]]
            done = (
                f"added {', '.join(applied.created)}"
                if applied.created
                else f"joined {', '.join(made_before)} (made by an earlier scale that was stopped)"
            )
        elif workers < len(agents):
            victims = [node.name for node in reversed(agents)][: len(agents) - workers]
            scale_in(context, victims)
            done = f"drained and removed {', '.join(victims)}"
        else:
            done = "nothing to do"
        state.desired.set_workers(workers)
    typer.echo(f"cluster {spec.name}: {workers} worker(s); {done}")


def _check_range(spec: ClusterSpec, workers: int) -> None:
    if workers > spec.workers.max:
        raise UserInputError(
            f"--workers {workers}: above workers.max ({spec.workers.max}) of cluster {spec.name}; raise "
            f"workers.max in its spec or ask for at most {spec.workers.max}"
        )
    if workers < spec.workers.min:
        raise UserInputError(
            f"--workers {workers}: below workers.min ({spec.workers.min}) of cluster {spec.name}; lower "
            f"workers.min in its spec or ask for at least {spec.workers.min}"
        )
