"""`oscar-deploy service ...`: OSCAR services described in FDL files (Jinja2 templates), and their invocations."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict
from pathlib import Path

import typer

from oscar_deploy.cli.access import (
    AccessOptions,
    cluster_access,
    connect,
)
from oscar_deploy.cli.interrupts import changes_nothing
from oscar_deploy.cli.options import JSON_OPTION, confirm_replace, print_json, print_table
from oscar_deploy.cli.several import failures_and_summary, try_each
from oscar_deploy.services.client import ServiceNotFound, checked_name
from oscar_deploy.services.fdl import FdlDocument, mask_secrets, to_yaml
from oscar_deploy.services.oscar_cli_config import is_cli_config, write_cluster_entry
from oscar_deploy.services.templating import load_fdl
from oscar_deploy.support.errors import OperationError, OscarDeployError, UserInputError, printable
from oscar_deploy.support.files import check_data_target, check_write_target, read_user_bytes, write_user_file

service_app = typer.Typer(
    help="OSCAR services from FDL files: validate, render, apply, list, delete, run, logs, cli-config.",
    no_args_is_help=True,
)

FDL_ARGUMENT = typer.Argument(..., help="FDL file; a Jinja2 template (see templates/services/).", dir_okay=False)
VALUES_OPTION = typer.Option(None, "--values", "-f", help="Template values file (YAML); repeatable, later wins.")
SET_OPTION = typer.Option(None, "--set", help="Template value NAME=VALUE (NAME may be dotted); repeatable, wins.")
CLUSTER_KEY_OPTION = typer.Option(
    None, "--cluster-id", help="Only the services listed under this functions.oscar key (needed if several)."
)
SHOW_SECRETS_OPTION = typer.Option(False, "--show-secrets", help="Print credentials instead of masking them.")
NAMES_ARGUMENT = typer.Argument(..., help="Service name(s).")
NAME_ARGUMENT = typer.Argument(..., help="Service name.")
JOB_ARGUMENT = typer.Argument(None, help="Job name; without it, the service's jobs are listed.")
INPUT_OPTION = typer.Option(None, "--input", "-i", dir_okay=False, help="Input file (default: standard input).")
OUTPUT_OPTION = typer.Option(None, "--output", "-o", dir_okay=False, help="Write the result here (default: stdout).")
ASYNC_OPTION = typer.Option(False, "--async", help="Start a job (POST /job) instead of waiting for the result.")
FORCE_OPTION = typer.Option(False, "--force", help="Replace the --output file if it exists (else refused, or asked).")
RAW_OPTION = typer.Option(False, "--raw", help="Print the answer as received, without base64 decoding.")
MAX_TIMEOUT = 86400.0


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a number of seconds; give 1 to {MAX_TIMEOUT:.0f}")
    return value


TIMEOUT_OPTION = typer.Option(
    300.0, "--timeout", min=1.0, max=MAX_TIMEOUT, callback=_finite, help="Seconds to wait for a synchronous result."
)
CONFIG_FILE_OPTION = typer.Option(
    Path("~/.oscar-cli/config.yaml"), "--config-file", dir_okay=False, help="oscar-cli configuration file."
)
DEFAULT_OPTION = typer.Option(False, "--default", help="Make this cluster oscar-cli's default.")


@service_app.command("validate")
@changes_nothing
def validate(
    fdl: Path = FDL_ARGUMENT, values: list[Path] | None = VALUES_OPTION, sets: list[str] | None = SET_OPTION
) -> None:
    """Render and check an FDL file: every problem is one line with file, line and key; exit code 2 if any."""
    document = _loaded(fdl, values, sets)
    typer.echo(f"{fdl}: valid, {len(document.services)} service(s)")
    for definition in document.services:
        typer.echo(f"  {definition.name} ({definition.service.image}) for cluster {definition.cluster_key}")


@service_app.command("render")
@changes_nothing
def render(
    fdl: Path = FDL_ARGUMENT,
    values: list[Path] | None = VALUES_OPTION,
    sets: list[str] | None = SET_OPTION,
    as_json: bool = JSON_OPTION,
    show_secrets: bool = SHOW_SECRETS_OPTION,
) -> None:
    """Print the FDL after templating and validation (scripts inlined), or with --json the API request bodies."""
    document = _loaded(fdl, values, sets)

    def shown(data: object) -> object:
        return data if show_secrets else document.masked(data)

    if as_json:
        print_json([shown(definition.body) for definition in document.services])
    else:
        typer.echo(to_yaml(shown(document.normalised())), nl=False)


@service_app.command("apply")
@cluster_access
def apply(
    fdl: Path = FDL_ARGUMENT,
    values: list[Path] | None = VALUES_OPTION,
    sets: list[str] | None = SET_OPTION,
    cluster_key: str | None = CLUSTER_KEY_OPTION,
    *,
    reach: AccessOptions,
) -> None:
    """Create the FDL file's services, or update those that exist and differ (safe to run again)."""
    document = _loaded(fdl, values, sets)
    keys = document.cluster_keys()
    if cluster_key is not None and cluster_key not in keys:
        raise UserInputError(f"--cluster-id {cluster_key}: {fdl} lists services for {', '.join(keys)} only")
    if cluster_key is None and len(keys) > 1:
        raise UserInputError(f"{fdl}: lists services for clusters {', '.join(keys)}; pick one with --cluster-id")
    chosen = [item for item in document.services if cluster_key in (None, item.cluster_key)]
    access = reach.resolve()
    with connect(access) as client:
        for number, definition in enumerate(chosen, start=1):
            try:
                outcome = client.apply_service(definition.body)
            except OscarDeployError as exc:
                # A POST or PUT names no service in its URL: say which one of the file's services failed.
                # The error keeps its type (and so its exit code); only its message gains the file and the service.
                which = f" ({number} of {len(chosen)})" if len(chosen) > 1 else ""
                message = f"{fdl}: service {definition.name!r}{which} not applied: {exc}"
                if number > 1:
                    message += "; the services before it are applied, and `service apply` again goes on from here"
                exc.args = (message,)
                raise
            typer.echo(f"{definition.name}: {outcome.action} on {access.oscar.url}" + _changed(outcome.changed))


def _loaded(fdl: Path, values: list[Path] | None, sets: list[str] | None) -> FdlDocument:
    """The rendered FDL; a warning on stderr for each env() credential that became a plain environment variable."""
    document = load_fdl(fdl, values, sets)
    for where in document.plain_credentials():
        typer.echo(
            f"warning: {fdl}: {where} holds a credential read with env(), which the service's pods show to anyone "
            "who can read them; put it under environment.secrets",
            err=True,
        )
    return document


def _changed(keys: tuple[str, ...]) -> str:
    return f" (changed: {', '.join(keys)})" if keys else ""


@service_app.command("list")
@changes_nothing
@cluster_access
def list_services(
    as_json: bool = JSON_OPTION,
    *,
    reach: AccessOptions,
) -> None:
    """List the cluster's services."""
    access = reach.resolve()
    with connect(access) as client:
        services = client.list_services()
    if as_json:
        print_json([mask_secrets(service) for service in services])
        return
    if not services:
        typer.echo(f"no services on {access.oscar.url}")
        return
    rows = []
    for service in sorted(services, key=lambda item: str(item.get("name"))):
        rows.append(
            (
                str(service.get("name", "")),
                str(service.get("image", "")),
                str(service.get("cpu", "")),
                str(service.get("memory", "")),
                ",".join(str(item.get("path", "")) for item in service.get("input") or []) or "-",
                ",".join(str(item.get("path", "")) for item in service.get("output") or []) or "-",
            )
        )
    print_table(("name", "image", "cpu", "memory", "input", "output"), rows)


@service_app.command("delete")
@cluster_access
def delete(
    names: list[str] = NAMES_ARGUMENT,
    *,
    reach: AccessOptions,
) -> None:
    """Delete services by name; a name that fails does not keep the others from being deleted."""
    names = list(dict.fromkeys(names))  # a name given twice is deleted once
    for name in names:  # every name is checked before anything is deleted
        checked_name(name)
    access = reach.resolve()
    deleted: list[str] = []

    def delete_one(name: str) -> None:
        client.delete_service(name)
        deleted.append(name)
        typer.echo(f"{name}: deleted from {access.oscar.url}")

    with connect(access) as client:
        failed, untried = try_each(names, delete_one)
    if failed:
        raise _not_deleted(names, deleted, failed, untried, access.oscar.url)


def _not_deleted(
    names: list[str], deleted: list[str], failed: dict[str, OscarDeployError], untried: list[str], url: str
) -> OscarDeployError:
    """The error `service delete` ends with: the server's answer for each name that failed, then a summary."""
    gone = [name for name, exc in failed.items() if isinstance(exc, ServiceNotFound)]
    if len(names) == 1 or len(gone) == 1 == len(failed):
        return next(iter(failed.values()))  # the server's answer says it all, as for a single name
    if len(gone) == len(failed):
        return OperationError(
            f"no services {', '.join(map(repr, gone))} on {url} to delete (the server answered 404 Not Found for "
            "each)" + ("; the other names were deleted" if deleted else "")
        )
    summary = [f"not deleted: {', '.join(name for name in failed if name not in gone)}"]
    summary += [f"already gone: {', '.join(gone)}"] if gone else []
    summary += [f"not tried: {', '.join(untried)}"] if untried else []
    summary += [f"deleted: {', '.join(deleted) or 'none'}", "`service delete` again is safe once fixed"]
    return failures_and_summary(failed, summary)


@service_app.command("run")
@cluster_access
def run(
    name: str = NAME_ARGUMENT,
    input_file: Path | None = INPUT_OPTION,
    output_file: Path | None = OUTPUT_OPTION,
    asynchronous: bool = ASYNC_OPTION,
    raw: bool = RAW_OPTION,
    timeout: float = TIMEOUT_OPTION,
    force: bool = FORCE_OPTION,
    *,
    reach: AccessOptions,
) -> None:
    """Invoke a service with a file or standard input: synchronously (POST /run) or as a job (--async)."""
    replace = force
    if output_file is not None:
        # Before the service runs: its result must not be lost, nor put over a file that is there (unless asked).
        replace = check_data_target(output_file, "--output file", force, confirm_replace)
    if input_file is not None:
        data = read_user_bytes(input_file, "--input file", limit=None)
    elif sys.stdin.isatty():
        raise UserInputError("no input: pass --input FILE or pipe the data into standard input")
    access = reach.resolve(stdin_is_data=input_file is None)
    if input_file is None:
        data = sys.stdin.buffer.read()
    with connect(access) as client:
        if asynchronous:
            client.submit_job(name, data)
            typer.echo(f"{name}: job started; follow it with `oscar-deploy service logs {name}`", err=True)
            return
        result = client.run(name, data, timeout=timeout, decode=not raw)
    if output_file is not None:
        write_user_file(output_file, result, "--output file", 0o644, replace_existing=replace)
        typer.echo(f"{name}: {len(result)} bytes written to {output_file}", err=True)
    else:
        typer.echo(result, nl=False)


@service_app.command("logs")
@changes_nothing
@cluster_access
def logs(
    name: str = NAME_ARGUMENT,
    job: str | None = JOB_ARGUMENT,
    as_json: bool = JSON_OPTION,
    *,
    reach: AccessOptions,
) -> None:
    """List a service's jobs, or print the log of one job."""
    access = reach.resolve()
    with connect(access) as client:
        if job is not None:
            typer.echo(client.job_log(name, job), nl=False)
            return
        jobs = client.list_jobs(name)
    if as_json:
        print_json([asdict(item) for item in jobs])
        return
    if not jobs:
        typer.echo(f"{name}: no jobs")
        return
    for item in jobs:
        times = f"created {item.creation_time or '-'}  finished {item.finish_time or '-'}"
        typer.echo(printable(f"{item.name}  {item.status or '-'}  {times}"))  # the server's words, escaped


@service_app.command("cli-config")
@cluster_access
def cli_config(
    config_file: Path = CONFIG_FILE_OPTION,
    make_default: bool = DEFAULT_OPTION,
    *,
    reach: AccessOptions,
) -> None:
    """Add the cluster to upstream's oscar-cli config (file 0600; the password never touches a command line)."""
    # Checked before anything is asked: a spec or a device at that path is refused first.
    target = check_write_target(
        config_file.expanduser(),
        "oscar-cli configuration",
        create_parents=True,
        of_kind=is_cli_config,
        confirm=confirm_replace,
    )
    access = reach.resolve()
    is_default = write_cluster_entry(target, access.oscar, make_default, confirm=lambda _question: True)
    path = config_file.expanduser()
    typer.echo(
        f"{path}: cluster {access.oscar.cluster_id} ({access.oscar.url})" + (", the default" if is_default else "")
    )
    if access.oscar.ca_file is not None:
        typer.echo(f"the cluster's CA is not public: run oscar-cli with SSL_CERT_FILE={access.oscar.ca_file}")
