"""`doctor`: what this machine has for each target, the quirks it works around, and how to fix what is missing."""

from __future__ import annotations

from pathlib import Path

import typer

from oscar_deploy.cli.interrupts import changes_nothing
from oscar_deploy.cli.options import JSON_OPTION, print_json, print_table
from oscar_deploy.pipeline.doctor import blocking, doctor_checks
from oscar_deploy.spec.models import load_spec

DOCTOR_SPEC_OPTION = typer.Option(
    None,
    "--file",
    "-f",
    help="Cluster spec: check what its target needs and exit 1 if something is missing. "
    "Without it every target is checked and the exit code is 0.",
    dir_okay=False,
)


@changes_nothing
def doctor(file: Path | None = DOCTOR_SPEC_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Check the tools and host quirks each target needs, with fixes."""
    spec = load_spec(file) if file is not None else None
    arches: set[str] = set()
    if spec is not None:
        settings = spec.target_settings()
        arches = {settings.node_arch("server"), settings.node_arch("agent")}
        if spec.workers.max == 0:
            arches = {settings.node_arch("server")}
    checks = doctor_checks(spec.target if spec is not None else None, arches)
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
        print_table(("check", "status", "detail"), [(check.name, check.status, check.detail) for check in checks])
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
