"""`init`, `validate` and `spec schema`: write, check and describe the cluster spec."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from oscar_deploy.cli.interrupts import changes_nothing
from oscar_deploy.cli.options import SPEC_OPTION, confirm_replace
from oscar_deploy.spec.models import (
    DEFAULT_SPEC_FILE,
    NAME_RULE,
    SCHEMA_FILE_NAME,
    TARGETS,
    is_cluster_name,
    load_spec,
    shown_name,
)
from oscar_deploy.spec.template import is_schema_text, is_spec_text, json_schema, render_spec, settings_from_environment
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.files import check_write_target, write_user_file

spec_app = typer.Typer(help="Describe the cluster spec format.", no_args_is_help=True)


def init(
    target: str = typer.Option("local", "--target", "-t", help="local, openstack, aws or static."),
    name: str = typer.Option("oscar", "--name", "-n", help="Cluster name."),
    file: Path = SPEC_OPTION,
    force: bool = typer.Option(False, "--force", help="Overwrite an existing spec file."),
) -> None:
    """Write a commented cluster spec and its JSON Schema, to edit."""
    if target not in TARGETS:
        raise UserInputError(f"--target {target}: unknown target; use one of {', '.join(TARGETS)}")
    if not is_cluster_name(name):
        raise UserInputError(f"--name {shown_name(name)}: {NAME_RULE}")
    # os.path: False, not OSError, for a name too long to look up (the check below names that).
    if os.path.exists(file) and not force:  # noqa: PTH110
        raise UserInputError(f"{file}: already exists; edit it, pass --force to overwrite, or choose -f FILE")
    schema_file = file.parent / SCHEMA_FILE_NAME
    # Both targets are checked before either is written, so a bad one leaves no partial output.
    for path, what, of_kind in ((file, "cluster spec", is_spec_text), (schema_file, "spec schema", is_schema_text)):
        check_write_target(path, what, of_kind=of_kind, confirm=confirm_replace)
    spec_text = render_spec(name, target, file.name, settings_from_environment(target))
    write_user_file(file, spec_text, "cluster spec", 0o644)
    write_user_file(schema_file, json_schema(), "spec schema", 0o644)
    spec_flag = "" if file == Path(DEFAULT_SPEC_FILE) else f" -f {file}"
    typer.echo(
        f"wrote {file} (target {target}, cluster {name}) and its schema {schema_file}; edit it, then run "
        f"`oscar-deploy validate{spec_flag}`"
    )


@changes_nothing
def validate(file: Path = SPEC_OPTION) -> None:
    """Check a cluster spec: one line per problem; exit 2 if any.

    Each line names the file, line and key, and says what to do.
    """
    spec = load_spec(file)
    workers = spec.workers
    typer.echo(
        f"{file}: valid (cluster {spec.name}, target {spec.target}, {spec.servers.count} server(s), "
        f"workers {workers.initial} initial, {workers.min}..{workers.max})"
    )


@spec_app.command("schema")
@changes_nothing
def schema() -> None:
    """Print the JSON Schema of the cluster spec (for editors and other tools)."""
    typer.echo(json_schema(), nl=False)
