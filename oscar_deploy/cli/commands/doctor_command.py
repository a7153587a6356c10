"""`doctor`: what this machine has for each target, the quirks it works around, and how to fix what is missing."""

from __future__ import annotations

from pathlib import Path

import typer

from oscar_deploy.cli.options import JSON_OPTION, load_spec_file, print_json

DOCTOR_SPEC_OPTION = typer.Option(
    None,
    "--file",
    "-f",
    help="Cluster spec: check what its target needs and exit 1 if something is missing. "
    "Without it every target is checked and the exit code is 0.",
    dir_okay=False,
)
COLUMNS = ("check", "status", "detail")


def doctor(file: Path | None = DOCTOR_SPEC_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Check the tools, host quirks and credentials each target needs; one fix command per problem."""
    from oscar_deploy.providers.base import planned_nodes
    from oscar_deploy.providers.local.host import blocking, doctor_checks

    spec = load_spec_file(file) if file is not None else None
    arches = {node.arch for node in planned_nodes(spec)} if spec is not None and spec.target == "local" else set()
    checks = doctor_checks(arches)
    stopping = blocking(checks, spec.target) if spec is not None else []
    if as_json:
        print_json(
            {
                "target": spec.target if spec is not None else None,
                "checks": [check.as_dict() for check in checks],
                "blocking": [check.name for check in stopping],
            }
        )
    else:
        rows = [{"check": check.name, "status": check.status, "detail": check.detail} for check in checks]
        widths = {column: max([len(column), *(len(row[column]) for row in rows)]) for column in COLUMNS}
        typer.echo("  ".join(column.upper().ljust(widths[column]) for column in COLUMNS).rstrip())
        for row in rows:
            typer.echo("  ".join(row[column].ljust(widths[column]) for column in COLUMNS).rstrip())
        for check in checks:
            if check.status != "ok" and check.fix:
                needed = f" (needed for {', '.join(check.needed_for)})" if check.needed_for else ""
                typer.echo(f"{check.name}: {check.status}{needed}; fix: {check.fix}")
        if spec is None:
            typer.echo("no spec given (-f): every target checked; `missing` lines only matter for their targets")
        elif stopping:
            names = ", ".join(check.name for check in stopping)
            typer.echo(f"target {spec.target} (cluster {spec.name}) cannot work until fixed: {names}")
        else:
            typer.echo(f"target {spec.target} (cluster {spec.name}): everything it needs is here")
    if stopping:
        raise typer.Exit(1)
