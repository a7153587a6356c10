"""Options and helpers the commands share, declared once: which cluster, JSON output, tables, confirmation.

A command that works on a cluster's nodes finds it by `--file` (a spec file, default ./cluster.yaml) or by
`--cluster NAME` (the spec `up` last applied to that cluster, kept in its state folder).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from oscar_deploy.iac.recovery import BREAK_LOCK_FLAG, STALE_LOCK_AGE
from oscar_deploy.spec.models import DEFAULT_SPEC_FILE, ClusterSpec, load_spec
from oscar_deploy.state.endpoints import CLUSTER_ENV, default_cluster_name
from oscar_deploy.state.folder import ClusterState, cluster_state
from oscar_deploy.support.errors import UserInputError, printable

if TYPE_CHECKING:
    from oscar_deploy.pipeline.phases import PhaseOutcome

SPEC_OPTION = typer.Option(
    Path(DEFAULT_SPEC_FILE), "--file", "-f", help="Cluster spec file.", show_default=True, dir_okay=False
)
OPTIONAL_SPEC_OPTION = typer.Option(
    None, "--file", "-f", help=f"Cluster spec file (default ./{DEFAULT_SPEC_FILE}).", dir_okay=False
)
CLUSTER_NAME_OPTION = typer.Option(
    None,
    "--cluster",
    "-c",
    help=f"A cluster by name, with the spec `up` last applied to it (instead of --file; default ${CLUSTER_ENV}, "
    f"./{DEFAULT_SPEC_FILE}, or the only cluster there is).",
)
JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON.")
YES_OPTION = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
BREAK_LOCK_OPTION = typer.Option(
    False,
    BREAK_LOCK_FLAG,
    help="Remove a Pulumi lock that a run on another machine left on the cluster's stacks: only when that run is "
    f"known to be dead (its machine crashed). Without it such a lock counts as stale after "
    f"{STALE_LOCK_AGE.total_seconds() / 3600:g} hours.",
)
BUNDLE_OPTION = typer.Option(
    None,
    "--bundle",
    envvar="OSCAR_DEPLOY_BUNDLE",
    help="Air-gap bundle folder (`oscar-deploy bundle build`); remembered for later runs. Without one, the "
    "nodes download k3s from upstream.",
    file_okay=False,
)


UNTIL_OPTION = typer.Option(
    None,
    "--until",
    help="Stop after this phase (provision, prepare, kubernetes, platform or verify), e.g. `--until kubernetes` "
    "for a bare k3s cluster.",
)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def print_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain table on stdout: upper-case headers, columns padded to their widest cell, no trailing blanks.
    Cells often hold what a cluster or a remote service said: characters that are not printable are escaped, so
    none can move the cursor or rewrite the terminal."""
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max([len(column), *(len(row[index]) for row in rows)]) for index, column in enumerate(columns)]
    typer.echo("  ".join(column.upper().ljust(width) for column, width in zip(columns, widths, strict=True)).rstrip())
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def print_outcomes(outcomes: Sequence[PhaseOutcome]) -> None:
    """What each phase that ran did, one `phase: line` each on stdout, then its warnings on stderr."""
    ran = [(outcome.phase, outcome.result) for outcome in outcomes if outcome.result is not None]
    for phase, result in ran:
        for line in result.summary:
            typer.echo(f"{phase}: {line}")
    for phase, result in ran:
        for warning in result.warnings:
            typer.echo(f"warning: {phase}: {warning}", err=True)


def spec_file_given(file: Path | None, cluster: str | None) -> Path | None:
    """The spec file `open_cluster` reads (`--file`, else ./cluster.yaml when no cluster is named), or None when
    it reads the spec `up` last applied."""
    if file is not None and cluster:
        raise UserInputError("--file and --cluster: give one of them, not both")
    if file is None and not cluster and not os.environ.get(CLUSTER_ENV) and Path(DEFAULT_SPEC_FILE).is_file():
        return Path(DEFAULT_SPEC_FILE)
    return file


def open_cluster(file: Path | None, cluster: str | None) -> tuple[ClusterSpec, ClusterState]:
    """The spec and state folder a command works on: the spec file `--file`, or the spec `up` last applied
    to the cluster `--cluster` names, else the cluster `default_cluster_name` picks."""
    file = spec_file_given(file, cluster)
    if file is not None:
        spec = load_spec(file)
        return spec, cluster_state(spec.name, "name")
    state = cluster_state(cluster or default_cluster_name())
    if not state.spec_file.is_file():
        raise UserInputError(
            f"cluster {state.name}: no applied spec in {state.path} (its first `up` never finished); "
            "pass its spec with --file"
        )
    return load_spec(state.spec_file), state


def cluster_name(file: Path | None, cluster: str | None) -> str:
    """The name of the cluster `--file` or `--cluster` designate, as `open_cluster` chooses it, without
    needing an applied spec."""
    if file is not None and cluster:
        raise UserInputError("--file and --cluster: give one of them, not both")
    if cluster:
        return cluster_state(cluster).name
    if file is not None or (not os.environ.get(CLUSTER_ENV) and Path(DEFAULT_SPEC_FILE).is_file()):
        return load_spec(file or Path(DEFAULT_SPEC_FILE)).name
    return cluster_state(default_cluster_name()).name


def stdin_is_terminal() -> bool:
    return bool(sys.stdin) and sys.stdin.isatty()


def confirm_or_refuse(yes: bool, refusal: str, question: str) -> None:
    """Go ahead with a destructive action: at once with --yes, after a yes on a terminal; without a terminal
    to ask on, refuse with `refusal` (exit 2) so nothing is removed by a script that forgot --yes."""
    if yes:
        return
    if not stdin_is_terminal():
        raise UserInputError(refusal)
    try:
        agreed = typer.confirm(question)
    except typer.Abort:
        raise KeyboardInterrupt from None  # Ctrl-C (or end of input) at the question: an interrupt like any other
    if not agreed:
        raise typer.Abort()


def confirm_replace(question: str) -> bool:
    """Whether to replace a file of another kind: asked on a terminal (default no); never without one."""
    return stdin_is_terminal() and typer.confirm(question, default=False)
