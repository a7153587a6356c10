"""Options and helpers the commands share: the spec file option, JSON output, the cluster's state folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from oscar_deploy.spec.models import ClusterSpec
    from oscar_deploy.state.folder import ClusterState

SPEC_OPTION = typer.Option(
    Path("cluster.yaml"), "--file", "-f", help="Cluster spec file.", show_default=True, dir_okay=False
)
JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON.")


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def load_spec_file(path: Path) -> ClusterSpec:
    from oscar_deploy.spec.models import load_spec

    return load_spec(path)


def state_for(spec: ClusterSpec) -> ClusterState:
    from oscar_deploy.state.folder import ClusterState

    return ClusterState(spec.name)


def stdin_is_terminal() -> bool:
    return bool(sys.stdin) and sys.stdin.isatty()


def confirm_or_refuse(yes: bool, refusal: str, question: str) -> None:
    """Go ahead with a destructive action: at once with --yes, after a yes on a terminal; without a terminal
    to ask on, refuse with `refusal` (exit 2) so nothing is removed by a script that forgot --yes."""
    from oscar_deploy.support.errors import UserInputError

    if yes:
        return
    if not stdin_is_terminal():
        raise UserInputError(refusal)
    typer.confirm(question, abort=True)
