"""`up`, `status`, `ssh` and `down`: make the cluster a spec describes, look at it, log in, remove it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from oscar_deploy.cli.options import (
    JSON_OPTION,
    SPEC_OPTION,
    confirm_or_refuse,
    load_spec_file,
    print_json,
    state_for,
)

if TYPE_CHECKING:
    from oscar_deploy.providers.base import Node, Provider
    from oscar_deploy.spec.models import ClusterSpec
    from oscar_deploy.state.folder import ClusterState
    from oscar_deploy.support.progress import Progress

YES_OPTION = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
NODE_ARGUMENT = typer.Argument(..., help="Node name as `status` shows it, e.g. server-0 or agent-1.")
COMMAND_ARGUMENT = typer.Argument(
    None,
    help="Command to run on the node, after `--`: several words run as they are (`-- sh -c 'exit 7'`), "
    "one word is a shell line (`-- 'ls | wc -l'`); a login shell when empty.",
)
BUNDLE_OPTION = typer.Option(
    None,
    "--bundle",
    envvar="OSCAR_DEPLOY_BUNDLE",
    help="Air-gap bundle folder (`oscar-deploy bundle build`); without it the nodes download k3s from upstream.",
    file_okay=False,
)
COLUMNS = ("node", "role", "arch", "state", "address", "ssh")


def _open(file: Path) -> tuple[ClusterSpec, ClusterState, Progress, Provider]:
    from oscar_deploy.pipeline.phases import provider_for
    from oscar_deploy.support.progress import Progress

    spec = load_spec_file(file)
    state = state_for(spec)
    progress = Progress()
    return spec, state, progress, provider_for(spec, state, progress)


def _rows(nodes: list[Node]) -> list[dict[str, str]]:
    return [
        {
            "node": node.name,
            "role": node.role,
            "arch": node.arch,
            "state": node.state,
            "address": node.address or "-",
            "ssh": f"{node.ssh_host}:{node.ssh_port}" if node.ssh_host and node.state == "running" else "-",
        }
        for node in nodes
    ]


def _print_table(rows: list[dict[str, str]]) -> None:
    widths = {column: max([len(column), *(len(row[column]) for row in rows)]) for column in COLUMNS}
    typer.echo("  ".join(column.upper().ljust(widths[column]) for column in COLUMNS).rstrip())
    for row in rows:
        typer.echo("  ".join(row[column].ljust(widths[column]) for column in COLUMNS).rstrip())


def _with_missing(spec: ClusterSpec, state: ClusterState, nodes: list[Node]) -> list[Node]:
    """The provider's nodes plus a `missing` line for each node the cluster should have that does not exist."""
    from oscar_deploy.pipeline.phases import wanted_nodes
    from oscar_deploy.providers.base import Node, node_sort_key

    present = {node.name for node in nodes}
    missing = [
        Node(planned.name, planned.role, planned.arch, "missing")
        for planned in wanted_nodes(spec, state)
        if planned.name not in present
    ]
    return sorted([*nodes, *missing], key=lambda node: node_sort_key(node.name))


def up(file: Path = SPEC_OPTION, bundle: Path | None = BUNDLE_OPTION) -> None:
    """Make the cluster in the spec: nodes, their OS, k3s; resumable, and a no-op on a finished cluster."""
    from oscar_deploy.pipeline.phases import PhaseContext, run_phases

    spec, state, progress, provider = _open(file)
    state.ensure()
    state.save_spec(file.read_text())
    outcomes = run_phases(PhaseContext(spec, state, progress, provider, bundle=bundle))
    for outcome in outcomes:
        if outcome.result is not None:
            for line in outcome.result.summary:
                typer.echo(f"{outcome.phase}: {line}")
    _print_table(_rows(_with_missing(spec, state, provider.nodes())))
    typer.echo(f"inventory: {state.inventory_file}")
    spec_flag = "" if file == Path("cluster.yaml") else f" -f {file}"
    typer.echo(f"log in with: oscar-deploy ssh{spec_flag} server-0")


def status(file: Path = SPEC_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List the cluster's nodes with role, arch, state (running, stopped, missing) and address."""
    spec, state, _, provider = _open(file)
    nodes = _with_missing(spec, state, provider.nodes())
    if as_json:
        print_json({"cluster": spec.name, "target": spec.target, "nodes": [node.as_dict() for node in nodes]})
        return
    typer.echo(f"cluster {spec.name} (target {spec.target})")
    _print_table(_rows(nodes))
    broken = [node.name for node in nodes if node.state != "running"]
    if broken:
        typer.echo(f"not running: {', '.join(broken)}; `oscar-deploy up` recreates or restarts them")


def remote_command(words: list[str]) -> list[str]:
    """What ssh sends: ssh joins its arguments with spaces for the remote shell, so several words are quoted
    to arrive as the same words; a single word is passed as a shell line."""
    import shlex

    return words if len(words) <= 1 else [shlex.join(words)]


def ssh(node: str = NODE_ARGUMENT, command: list[str] | None = COMMAND_ARGUMENT, file: Path = SPEC_OPTION) -> None:
    """Open a shell on a node, or run `-- COMMAND` there; exits with the command's exit code."""
    import subprocess

    from oscar_deploy.support.errors import UserInputError

    spec, state, _, provider = _open(file)
    nodes = provider.nodes()
    prefix = f"oscar-{spec.name}-"
    wanted = node.removeprefix(prefix)
    match = next((candidate for candidate in nodes if candidate.name == wanted), None)
    if match is None:
        known = ", ".join(candidate.name for candidate in nodes) or "none; run `oscar-deploy up`"
        raise UserInputError(f"node {node!r}: not in cluster {spec.name} (nodes: {known})")
    if match.state != "running":
        raise UserInputError(f"node {match.name}: {match.state}; run `oscar-deploy up` to start it")
    if not state.ssh_private_key.is_file():
        raise UserInputError(f"cluster {spec.name}: no SSH key in {state.ssh_dir}; run `oscar-deploy up`")
    result = subprocess.run(provider.ssh_command(match, remote_command(command or [])), check=False)
    raise typer.Exit(result.returncode)


def down(file: Path = SPEC_OPTION, yes: bool = YES_OPTION) -> None:
    """Remove every node, the cluster's network and volumes, its key material and its state folder."""
    spec, state, progress, provider = _open(file)
    confirm_or_refuse(
        yes,
        f"down: cluster {spec.name} would be deleted but there is no terminal to confirm on; pass --yes to delete it",
        f"Delete cluster {spec.name}: every node, its network, keys, secrets and state folder?",
    )
    with progress.step(f"removing cluster {spec.name}"):
        removed = provider.destroy()
        state.remove_key_material()
        state.destroy()
    for item in removed:
        typer.echo(f"removed {item}")
    typer.echo(f"removed key material and state folder {state.path}")
