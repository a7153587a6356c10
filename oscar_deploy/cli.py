"""The `oscar-deploy` command line: the glue that runs each layer in order and keeps the cluster's state.

Only typer and the standard library are imported here and in the command modules' top level: everything
heavy (pydantic, Ansible, Pulumi, cloud SDKs) is imported inside the command that needs it, so `--help`
stays as fast as typer itself.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer._click import ClickException, Context  # typer vendors click: its own types
from typer.core import TyperGroup

from oscar_deploy import __version__
from oscar_deploy.errors import EXIT_FAILED, OscarDeployError


class _ErrorReportingGroup(TyperGroup):
    """Turns domain errors into one line each on stderr and their exit code; tracebacks only with --debug."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except OscarDeployError as exc:
            if _debug_requested(ctx):
                raise
            for line in str(exc).splitlines() or [type(exc).__name__]:
                sys.stderr.write(f"error: {line}\n")
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            if _debug_requested(ctx):
                raise
            sys.stderr.write("interrupted; what completed is recorded, run the command again to resume\n")
            ctx.exit(130)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except Exception as exc:
            if _debug_requested(ctx):
                raise
            sys.stderr.write(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)\n")
            ctx.exit(EXIT_FAILED)


def _debug_requested(ctx: Context) -> bool:
    return bool(ctx.find_root().params.get("debug"))


app = typer.Typer(
    cls=_ErrorReportingGroup,
    name="oscar-deploy",
    help="Deploy and operate the OSCAR serverless platform on OpenStack, AWS, edge boards or local nodes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"oscar-deploy {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug output."),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Exit codes: 0 done, 1 an operation failed, 2 bad input (the message names the file/key/host)."""


def _register() -> None:
    from oscar_deploy.commands import bundle_command, kubeconfig_command, spec_commands, versions_command

    app.command("init")(spec_commands.init)
    app.command("validate")(spec_commands.validate)
    app.command("versions")(versions_command.versions)
    app.add_typer(spec_commands.spec_app, name="spec")
    app.add_typer(bundle_command.bundle_app, name="bundle")
    app.command("kubeconfig")(kubeconfig_command.kubeconfig)

    from oscar_deploy.commands import files_commands, service_commands, verify_command

    app.add_typer(service_commands.service_app, name="service")
    app.add_typer(files_commands.files_app, name="files")
    app.command("verify")(verify_command.verify)

    from oscar_deploy.commands import cluster_commands, doctor_command

    app.command("up")(cluster_commands.up)
    app.command("status")(cluster_commands.status)
    app.command("ssh")(cluster_commands.ssh)
    app.command("down")(cluster_commands.down)
    app.command("doctor")(doctor_command.doctor)

    from oscar_deploy.commands import edge_commands, scale_command

    app.add_typer(edge_commands.edge_app, name="edge")
    app.command("scale")(scale_command.scale)

    from oscar_deploy.commands import autoscaler_command

    app.add_typer(autoscaler_command.autoscaler_app, name="autoscaler")


_register()


def main() -> None:
    app()
