"""`plan`, `up`, `status`, `ssh` and `down`: the cluster a spec describes, what `up` would do, looking at it,
logging in, removing it."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import typer

from oscar_deploy.cli.interrupts import changes_nothing
from oscar_deploy.cli.options import (
    BREAK_LOCK_OPTION,
    BUNDLE_OPTION,
    CLUSTER_NAME_OPTION,
    JSON_OPTION,
    OPTIONAL_SPEC_OPTION,
    SPEC_OPTION,
    UNTIL_OPTION,
    YES_OPTION,
    confirm_or_refuse,
    open_cluster,
    print_json,
    print_outcomes,
    print_table,
)
from oscar_deploy.nodes.model import Node, node_sort_key
from oscar_deploy.pipeline.cluster import (
    applied_spec_text,
    check_teardown,
    cluster_context,
    converge,
    left_in_cloud,
    remove_platform,
    teardown,
)
from oscar_deploy.pipeline.cluster import plan as plan_phases
from oscar_deploy.pipeline.phases import PhaseContext
from oscar_deploy.pipeline.platform_phases import platform_status
from oscar_deploy.spec.models import DEFAULT_SPEC_FILE, load_spec
from oscar_deploy.spec.template import render_spec, settings_from_environment
from oscar_deploy.state.folder import cluster_state
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import write_user_file
from oscar_deploy.support.progress import Progress

NODE_ARGUMENT = typer.Argument(..., help="Node name as `status` shows it, e.g. server-0 or agent-1.")
COMMAND_ARGUMENT = typer.Argument(
    None,
    help="Command to run on the node, after `--`: several words run as they are (`-- sh -c 'exit 7'`), "
    "one word is a shell line (`-- 'ls | wc -l'`); a login shell when empty.",
)
COLUMNS = ("node", "role", "arch", "state", "address", "ssh")
# Targets `up --cloud` makes a spec for; hosts you own come from an inventory (`edge install -i FILE`).
CLOUD_TARGETS = ("local", "openstack", "aws")
CLOUD_OPTION = typer.Option(
    None,
    "--cloud",
    help="local, openstack or aws. Without the spec file, writes the default spec for it first (cluster "
    "`oscar`; the cloud from $OS_CLOUD, the profile and region from $AWS_PROFILE and $AWS_REGION); with one, it "
    "must be the spec's target.",
)
CHECK_DRIFT_OPTION = typer.Option(
    False,
    "--check-drift",
    help="Also run prepare, kubernetes, platform and verify when nothing changed, to repair what was changed by "
    "hand and name it: every role on every node (a config file, the k3s binary, a stopped service), and the "
    "platform stack read back from the cluster first (an object deleted or edited with kubectl; a claim made again "
    "is empty); then the smoke test.",
)
PLAN_CHECK_DRIFT_OPTION = typer.Option(
    False,
    "--check-drift",
    help="Decide as `up --check-drift` would: prepare, kubernetes, platform and verify run anyway.",
)


@changes_nothing
def plan(
    file: Path = SPEC_OPTION,
    bundle: Path | None = BUNDLE_OPTION,
    until: str | None = UNTIL_OPTION,
    check_drift: bool = PLAN_CHECK_DRIFT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show which phases `up` would run and why; changes nothing."""
    spec = load_spec(file)
    context = cluster_context(spec, cluster_state(spec.name, "name"), Progress(), bundle)
    context.check_drift = check_drift
    decisions = plan_phases(context, until)
    if as_json:
        print_json([{"phase": d.phase, "runs": d.run, "reason": d.reason} for d in decisions])
        return
    for decision in decisions:
        typer.echo(f"{decision.phase}: {'runs' if decision.run else 'skipped'}: {decision.reason}")


def up(
    file: Path = SPEC_OPTION,
    bundle: Path | None = BUNDLE_OPTION,
    until: str | None = UNTIL_OPTION,
    cloud: str | None = CLOUD_OPTION,
    check_drift: bool = CHECK_DRIFT_OPTION,
    break_lock: bool = BREAK_LOCK_OPTION,
) -> None:
    """Make the cluster the spec describes; runs only what is not done yet.

    Each phase runs when it never completed or when one of its inputs changed (the message says which), so a
    re-run after a failure resumes, a spec edit does what it needs (a new k3s version upgrades node by node),
    and a converged cluster is left alone (`--check-drift` looks at every node and the platform's objects anyway,
    and repairs what was changed by hand). `--cloud openstack`
    without a spec file writes the default one first.
    """
    if cloud is not None:
        _spec_for_cloud(file, cloud)
    spec = load_spec(file)
    context = cluster_context(spec, cluster_state(spec.name, "name"), Progress(), bundle, break_lock=break_lock)
    context.check_drift = check_drift
    outcomes = converge(context, applied_spec_text(spec, str(file.resolve())), until)
    print_outcomes(outcomes)
    _print_nodes(_with_missing(context))
    typer.echo(f"inventory: {context.state.inventory_file}")
    spec_flag = "" if file == Path(DEFAULT_SPEC_FILE) else f" -f {file}"
    first = next((node.name for node in context.nodes if node.role == "server"), "server-0")
    typer.echo(f"log in with: oscar-deploy ssh{spec_flag} {first}")


def _spec_for_cloud(file: Path, cloud: str) -> None:
    """`up --cloud T`: write T's default spec when `file` does not exist; refuse a spec of another target."""
    if cloud not in CLOUD_TARGETS:
        raise UserInputError(
            f"--cloud {cloud}: use one of {', '.join(CLOUD_TARGETS)} (hosts you own: `oscar-deploy edge install -i "
            "INVENTORY`)"
        )
    if not os.path.lexists(file):  # False, not OSError, for a name too long: the write below refuses it in one line
        text = render_spec("oscar", cloud, file.name, settings_from_environment(cloud))
        write_user_file(file, text, "cluster spec", 0o644)
        typer.echo(f"wrote {file} (target {cloud}, cluster oscar); edit it and run `up` again to change the cluster")
        return
    spec = load_spec(file)
    if spec.target != cloud:
        raise UserInputError(
            f"--cloud {cloud}: {file} describes a cluster on target {spec.target}; drop --cloud, set `target: {cloud}` "
            f"in {file}, or pass another spec with -f"
        )


@changes_nothing
def status(
    file: Path | None = OPTIONAL_SPEC_OPTION, cluster: str | None = CLUSTER_NAME_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """List the cluster's nodes with role, arch, state and address.

    A node the cluster should have but that does not exist is listed as `missing`.
    """
    context = _context(file, cluster)
    nodes = _with_missing(context)
    spec = context.spec
    platform = platform_status(context.state)
    if as_json:
        print_json(
            {
                "cluster": spec.name,
                "target": spec.target,
                "nodes": [node.as_dict() for node in nodes],
                "platform": platform.as_dict() if platform else None,
            }
        )
        return
    typer.echo(f"cluster {spec.name} (target {spec.target})")
    _print_nodes(nodes)
    broken = [node.name for node in nodes if node.state != "running"]
    if broken:
        typer.echo(f"not running: {', '.join(broken)}; `oscar-deploy up` recreates or restarts them")
    if platform is None:
        typer.echo("platform: not installed; `oscar-deploy up` installs it")
        return
    for line in platform.lines():
        typer.echo(line)


def ssh(
    node: str = NODE_ARGUMENT,
    command: list[str] | None = COMMAND_ARGUMENT,
    file: Path | None = OPTIONAL_SPEC_OPTION,
    cluster: str | None = CLUSTER_NAME_OPTION,
) -> None:
    """Open a shell on a node, or run `-- COMMAND` there.

    Exits with the command's exit code.
    """
    context = _context(file, cluster)
    spec, state = context.spec, context.state
    match = next((candidate for candidate in context.nodes if candidate.name == node), None)
    if match is None:
        known = ", ".join(candidate.name for candidate in context.nodes) or "none; run `oscar-deploy up`"
        raise UserInputError(f"node {node!r}: not in cluster {spec.name} (nodes: {known})")
    if match.state != "running":
        raise UserInputError(f"node {match.name}: {match.state}; run `oscar-deploy up` to start it")
    if context.provider.scaling == "count" and not state.ssh_private_key.is_file():
        raise UserInputError(f"cluster {spec.name}: no SSH key in {state.ssh_dir}; run `oscar-deploy up`")
    result = subprocess.run(context.provider.ssh_command(match, remote_command(command or [])), check=False)
    raise typer.Exit(result.returncode)


def remote_command(words: list[str]) -> list[str]:
    """What ssh sends: ssh joins its arguments with spaces for the remote shell, so several words are quoted
    to arrive as the same words; a single word is passed as a shell line."""
    return words if len(words) <= 1 else [shlex.join(words)]


KEEP_NODES_OPTION = typer.Option(
    False, "--keep-nodes", help="Remove only the platform (its stack and every object it made); nodes and k3s stay."
)


def down(
    file: Path | None = OPTIONAL_SPEC_OPTION,
    cluster: str | None = CLUSTER_NAME_OPTION,
    yes: bool = YES_OPTION,
    keep_nodes: bool = KEEP_NODES_OPTION,
    break_lock: bool = BREAK_LOCK_OPTION,
) -> None:
    """Remove the cluster: its nodes (k3s from hosts you own), its state.

    Nodes a provider made are deleted with their network, volumes and keys; hosts you own are reset (k3s and
    everything the playbooks added is removed) and stay yours. The state folder goes last. With --keep-nodes
    only the platform goes (MinIO's data with it), for a reinstall by the next `up`.
    """
    context = _context(file, cluster, break_lock)
    spec, state = context.spec, context.state
    if not keep_nodes:
        from oscar_deploy.autoscaler.service import refuse_while_running

        refuse_while_running("down", state)
        check_teardown(context)
    if keep_nodes:
        confirm_or_refuse(
            yes,
            f"down --keep-nodes: the platform of cluster {spec.name} would be deleted (MinIO's data too) but there is "
            "no terminal to confirm on; pass --yes to delete it",
            f"Delete the platform of cluster {spec.name}: OSCAR, its services, MinIO and every bucket in it?",
        )
        removed = remove_platform(context)
        typer.echo(f"removed {removed[0]}" if removed else f"cluster {spec.name}: no platform to remove")
        return
    owned = context.provider.scaling == "inventory"
    what = (
        f"reset k3s and its data on {len(context.nodes)} host(s) you own"
        if owned
        else "every node with its disks (MinIO's buckets among them), its network, keys, secrets"
    )
    confirm_or_refuse(
        yes,
        f"down: cluster {spec.name} would be deleted but there is no terminal to confirm on; pass --yes to delete it",
        f"Delete cluster {spec.name}: {what} and its state folder?",
    )
    for item in teardown(context):
        typer.echo(f"removed {item}")
    typer.echo(f"removed key material and state folder {state.path}")
    left = left_in_cloud(context)
    for line in left:
        typer.echo(line, err=True)
    if left:
        # Not deleted here: the tag names only the cluster, and another state folder may own a cluster of that name.
        raise OperationError(
            f"down: cluster {spec.name}: down did NOT remove everything: {len(left)} VM(s) named above still carry "
            "its tag and are billed; the stack never held them, so down leaves them: delete each with its command "
            f"once you know no other cluster named {spec.name} owns it"
        )
    if owned:
        typer.echo(
            f"a context merged into your kubeconfig stays until you delete it (`kubectl config delete-context "
            f"{spec.name}`)"
        )


def _context(file: Path | None, cluster: str | None, break_lock: bool = False) -> PhaseContext:
    spec, state = open_cluster(file, cluster)
    return cluster_context(spec, state, Progress(), node_phases=False, break_lock=break_lock)


def _with_missing(context: PhaseContext) -> list[Node]:
    """The provider's nodes plus a `missing` line for each node the cluster should have that does not exist."""
    present = {node.name for node in context.nodes}
    wanted = context.provider.plan(context.spec, context.workers)
    missing = [Node(node.name, node.role, node.arch, "missing") for node in wanted if node.name not in present]
    return sorted([*context.nodes, *missing], key=lambda node: node_sort_key(node.name))


def _print_nodes(nodes: list[Node]) -> None:
    print_table(
        COLUMNS,
        [
            (
                node.name,
                node.role,
                node.arch or "-",
                node.state,
                node.address or "-",
                f"{node.ssh_host}:{node.ssh_port}" if node.ssh_host and node.state == "running" else "-",
            )
            for node in nodes
        ],
    )
