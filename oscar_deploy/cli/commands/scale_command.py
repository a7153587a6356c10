"""`scale --workers N`: add workers (new nodes joined by scale.yml) or remove them (drained first)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer

from oscar_deploy.cli.options import (
    BREAK_LOCK_OPTION,
    CLUSTER_NAME_OPTION,
    OPTIONAL_SPEC_OPTION,
    open_cluster,
    spec_file_given,
)
from oscar_deploy.nodes.inventory import write_inventory
from oscar_deploy.nodes.model import node_sort_key
from oscar_deploy.nodes.volumes import LostClaim
from oscar_deploy.pipeline.cluster import cluster_context, cluster_provider
from oscar_deploy.pipeline.node_phases import Removal, layer_for, lost_claims_report, scale_in
from oscar_deploy.providers.cloud import CloudProvider
from oscar_deploy.spec.models import ClusterSpec, load_spec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.progress import Progress

WORKERS_OPTION = typer.Option(..., "--workers", "-w", help="Number of workers (k3s agents) wanted.", min=0)
LOCAL_VOLUME_LOSS_OPTION = typer.Option(
    False,
    "--allow-local-volume-loss",
    help=(
        "Remove a worker even when bound local volumes (k3s local-path) live on its disk; their data is lost, and "
        "the claims left behind are named with the command that releases each."
    ),
)


def scale(
    workers: int = WORKERS_OPTION,
    file: Path | None = OPTIONAL_SPEC_OPTION,
    cluster: str | None = CLUSTER_NAME_OPTION,
    allow_local_volume_loss: bool = LOCAL_VOLUME_LOSS_OPTION,
    break_lock: bool = BREAK_LOCK_OPTION,
) -> None:
    """Grow or shrink the workers to N; removed ones are drained first.

    N must be within the spec's workers.min and workers.max. New workers are created and joined without
    touching running nodes; removed workers are drained first (their pods move elsewhere, the OSCAR jobs they
    run are waited for), then deleted from Kubernetes and destroyed; one holding bound local volumes is
    refused, or with --allow-local-volume-loss removed all the same, naming the claims it leaves dead. A worker
    whose VM was deleted outside oscar-deploy is deleted from Kubernetes without a drain, naming the jobs and
    claims lost with it. The
    count is kept as the cluster's desired state, so `up` keeps it. Only the workers change: a spec file that
    differs from the one `up` applied elsewhere is refused (run `up` first).
    """
    spec, state = open_cluster(file, cluster)
    _check_range(spec, workers)
    source = spec_file_given(file, cluster)
    if source is not None:
        _check_applied(spec, state, source)
    progress = Progress()
    removal = Removal()
    provider = cluster_provider(spec, state, progress, break_lock)
    if provider.scaling == "inventory":
        raise UserInputError(
            f"cluster {spec.name}: target {spec.target} scales by its inventory; add or remove hosts there "
            "and run `oscar-deploy up` again"
        )
    if not state.journal.completed("kubernetes"):
        raise UserInputError(f"cluster {spec.name}: k3s is not installed yet; run `oscar-deploy up` first")
    with state.operation(f"scale --workers {workers}", progress.note):
        context = cluster_context(spec, state, progress, provider=provider, break_lock=break_lock)
        # Workers whose VM was deleted outside oscar-deploy and whose removal from Kubernetes failed: they are no
        # workers to count, and the inventory still lists them for that removal, which `up` finishes.
        leaving = [node.name for node in context.nodes if node.state == "missing"]
        if leaving:
            raise UserInputError(
                f"cluster {spec.name}: {', '.join(leaving)} (VM deleted outside oscar-deploy) still to leave "
                "Kubernetes after a removal that failed; run `oscar-deploy up` to finish it, then scale"
            )
        agents = sorted(
            (node for node in context.nodes if node.role == "agent"), key=lambda node: node_sort_key(node.name)
        )
        names = {node.name for node in context.nodes}
        # Workers an earlier scale made without seeing them join (it was stopped, or scale.yml failed).
        unjoined = [name for name in state.desired.joining() if name in names]
        done: list[str] = []
        joins = False
        if workers > len(agents):
            plan = provider.plan(spec, workers)
            # Recorded before they exist: a stop from here on leaves workers that the next `scale` or `up` joins.
            state.desired.set_joining(unjoined + [node.name for node in plan if node.name not in names])
            applied = provider.apply(plan)
            state.desired.set_workers(workers)
            write_inventory(state, applied.nodes, provider.ssh_common_args)
            context.nodes = applied.nodes
            layer_for(context, verify_bundle=True).run("scale.yml")
            joins = True
            done.append(f"added {', '.join(applied.created) or 'no new node'}")
        elif workers < len(agents):
            victims = [node.name for node in reversed(agents)][: len(agents) - workers]
            if isinstance(provider, CloudProvider):
                context.nodes = provider.live_nodes()  # a worker the autoscaler stopped is not reset over SSH
            try:
                remaining = len(agents)

                def left_cluster() -> None:
                    # What left the cluster stays gone: `up` after a later failure (even that of this victim's VM
                    # deletion) removes it rather than keeping it, or making it again.
                    nonlocal remaining
                    remaining -= 1
                    state.desired.set_workers(remaining)

                for victim in victims:
                    scale_in(
                        context,
                        [victim],
                        allow_local_volume_loss=allow_local_volume_loss,
                        removal=removal,
                        left_cluster=left_cluster,
                    )
            except BaseException:
                _report_lost_claims(spec.name, state.kubeconfig_file, removal.lost_claims)  # gone all the same
                raise
            done += removal.summary(victims)
        waiting = [name for name in unjoined if any(node.name == name for node in context.nodes)]
        if waiting:
            if not joins:
                layer_for(context, verify_bundle=True).run("scale.yml")  # it joins only nodes without k3s
            done.append(f"joined {', '.join(waiting)} (made by an earlier scale that was stopped)")
        state.desired.set_joining([])
        state.desired.set_workers(workers)
    typer.echo(f"cluster {spec.name}: {workers} worker(s); {'; '.join(done) or 'nothing to do'}")
    _report_lost_claims(spec.name, state.kubeconfig_file, removal.lost_claims)


def _report_lost_claims(cluster: str, kubeconfig: Path, claims: Sequence[LostClaim]) -> None:
    lines, warnings = lost_claims_report(cluster, kubeconfig, claims)
    for line in lines:
        typer.echo(line)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


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


def _check_applied(spec: ClusterSpec, state: ClusterState, source: Path) -> None:
    """`scale` changes the worker count only: a spec edit `up` has not applied yet (an image, a flavor, the
    allowed addresses) would otherwise reach the cluster's nodes with it, unplanned and unseen."""
    if not state.spec_file.is_file():
        return
    applied = load_spec(state.spec_file).model_dump(mode="json", exclude={"workers"})
    given = spec.model_dump(mode="json", exclude={"workers"})
    edited = _changed_keys(applied, given)
    if edited:
        shown = ", ".join(edited[:3]) + (f" and {len(edited) - 3} more" if len(edited) > 3 else "")
        verb = "differs" if len(edited) == 1 else "differ"
        raise UserInputError(
            f"{source}: {shown} {verb} from the spec `up` last applied to cluster {spec.name}, and `scale` changes "
            f"only the workers; run `oscar-deploy up` to apply the edit first (`oscar-deploy plan` shows it), or "
            f"scale with -c {spec.name}"
        )


def _changed_keys(before: object, after: object, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two JSON-like values."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            key
            for name in sorted(set(before) | set(after))
            for key in _changed_keys(before.get(name), after.get(name), f"{prefix}{name}.")
        ]
    return [] if before == after else [prefix.rstrip(".") or "(the whole spec)"]
