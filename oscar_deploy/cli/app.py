"""The `oscar-deploy` command line: the glue that runs each layer in order and keeps the cluster's state.

Commands are loaded lazily: `COMMANDS` names each one with its module and one-line summary, so `--help` lists
them without importing any command module (and nothing heavy: pydantic, Ansible, Pulumi, cloud SDKs); a
command's module is imported only when that command runs or shows its own help. Command modules therefore
import what they need at their top, like any module.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from oscar_deploy import __version__
from oscar_deploy.cli.interrupts import interrupted_line
from oscar_deploy.support.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    InvalidDocumentError,
    OscarDeployError,
    Terminated,
    printable,
)

# typer re-exports click's exception types under its own names; their common base is click's ClickException,
# whichever click typer uses (its own copy from typer 0.26, the click package before).
CLICK_EXCEPTION: type[Exception] = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException")
COMMANDS_PACKAGE = "oscar_deploy.cli.commands"


@dataclass(frozen=True)
class LazyCommand:
    """A command (a function) or command group (a `typer.Typer`) in a module of `oscar_deploy.cli.commands`."""

    name: str
    module: str
    attribute: str
    # The first line of the command's docstring (or the group's help); a test keeps them equal.
    summary: str

    def load(self) -> Any:
        return getattr(importlib.import_module(f"{COMMANDS_PACKAGE}.{self.module}"), self.attribute)


COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand("init", "spec_commands", "init", "Write a commented cluster spec and its JSON Schema, to edit."),
    LazyCommand("validate", "spec_commands", "validate", "Check a cluster spec: one line per problem; exit 2 if any."),
    LazyCommand("doctor", "doctor_command", "doctor", "Check the tools and host quirks each target needs, with fixes."),
    LazyCommand("plan", "cluster_commands", "plan", "Show which phases `up` would run and why; changes nothing."),
    LazyCommand("up", "cluster_commands", "up", "Make the cluster the spec describes; runs only what is not done yet."),
    LazyCommand("status", "cluster_commands", "status", "List the cluster's nodes with role, arch, state and address."),
    LazyCommand("ssh", "cluster_commands", "ssh", "Open a shell on a node, or run `-- COMMAND` there."),
    LazyCommand("scale", "scale_command", "scale", "Grow or shrink the workers to N; removed ones are drained first."),
    LazyCommand("kubeconfig", "kubeconfig_command", "kubeconfig", "Print the path of the cluster's admin kubeconfig."),
    LazyCommand(
        "credentials",
        "credentials_command",
        "credentials",
        "Print the cluster's OSCAR, dashboard and MinIO URLs and credentials.",
    ),
    LazyCommand(
        "down", "cluster_commands", "down", "Remove the cluster: its nodes (k3s from hosts you own), its state."
    ),
    LazyCommand("edge", "edge_commands", "edge_app", "k3s on boards and hosts you already own, from an inventory."),
    LazyCommand(
        "bundle",
        "bundle_command",
        "bundle_app",
        "Air-gap bundles: k3s and the OSCAR platform for clusters without internet access.",
    ),
    LazyCommand("versions", "versions_command", "versions", "Print every pinned external artefact and its source."),
    LazyCommand(
        "autoscaler",
        "autoscaler_command",
        "autoscaler_app",
        "Elasticity: run the autoscaler, see what it decided and why, or simulate its policy against baselines.",
    ),
    LazyCommand(
        "render",
        "render_command",
        "render",
        "Write the platform's Kubernetes objects as YAML for GitOps; Secrets only on request.",
    ),
    LazyCommand("spec", "spec_commands", "spec_app", "Describe the cluster spec format."),
    LazyCommand(
        "service",
        "service_commands",
        "service_app",
        "OSCAR services from FDL files: validate, render, apply, list, delete, run, logs, cli-config.",
    ),
    LazyCommand(
        "files", "files_commands", "files_app", "Files in the cluster's MinIO buckets (BUCKET/PATH, as in FDL paths)."
    ),
    LazyCommand(
        "verify",
        "verify_command",
        "verify",
        "Smoke-test a running cluster: health, info, a service's async and sync paths, job log, clean-up.",
    ),
)
COMMANDS_BY_NAME = {command.name: command for command in COMMANDS}


def click_command(entry: LazyCommand) -> Any:
    """The click object of one command, made the way typer makes it for an app holding only that command."""
    loaded = entry.load()
    command: Any
    if isinstance(loaded, typer.Typer):
        command = typer.main.get_group(loaded)
    else:
        # Shell completion is the root command's: its options do not belong on each command.
        holder = typer.Typer(add_completion=False, context_settings={"help_option_names": ["-h", "--help"]})
        holder.command(name=entry.name)(loaded)
        command = typer.main.get_command(holder)
    _refuse_empty_values(command)
    _unwrap_help(command)
    return command


# A line break inside a paragraph, unless the next line starts a list item.
WRAPPED_LINE = re.compile(r"\n(?!\s*(?:[-*]|[0-9]+\.)\s)")


def _unwrap_help(command: Any) -> None:
    """Docstrings are wrapped at the source's width, and typer keeps their line breaks, which the terminal's
    own wrapping then breaks mid-sentence: each paragraph of `command`'s help (and its sub-commands') becomes
    one line for the terminal to wrap."""
    if command.help:
        paragraphs = inspect.cleandoc(command.help).split("\n\n")
        command.help = "\n\n".join(WRAPPED_LINE.sub(" ", paragraph) for paragraph in paragraphs)
    for sub_command in (getattr(command, "commands", None) or {}).values():
        _unwrap_help(sub_command)


def _refuse_empty_values(command: Any) -> None:
    """An empty option value or argument is a usage error for every parameter of `command` and its
    sub-commands: `-f ''` would otherwise become the current folder, `service delete ''` a request for nothing."""
    for param in command.params:
        param.process_value = _non_empty(param, param.process_value)
    for sub_command in (getattr(command, "commands", None) or {}).values():
        _refuse_empty_values(sub_command)


def _non_empty(param: Any, process_value: Any) -> Any:
    def checked(ctx: Any, value: Any) -> Any:
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(item, str) and item == "" for item in values):
            raise typer.BadParameter("is empty; give a value", ctx=ctx, param=param)
        return process_value(ctx, value)

    return checked


def usage_line(exc: Exception) -> str:
    """A click/typer usage error as one line: `error: <what>; see oscar-deploy COMMAND -h`."""
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    message = " ".join(message.split()).rstrip(".") or type(exc).__name__
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command_path", None) or "oscar-deploy"
    return printable(f"error: {message}; see {command} -h")


class LazyGroup(TyperGroup):
    """Lists commands from `COMMANDS`; imports a command's module only when it is asked for by name.

    Turns domain errors into one line each on stderr and their exit code; tracebacks only with --debug.
    """

    listing = False

    # `ctx` is typer's click Context, which has no public name that fits every typer version this supports.
    def list_commands(self, ctx: Any) -> list[str]:
        return [command.name for command in COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = COMMANDS_BY_NAME.get(cmd_name)
        if entry is None:
            return None
        if self.listing:  # the root's help only needs each name and summary
            return typer.core.TyperCommand(name=entry.name, help=entry.summary)
        command = click_command(entry)
        command.name = entry.name
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False

    def main(  # type: ignore[override]
        self, args: Any = None, prog_name: str | None = None, standalone_mode: bool = True, **kwargs: Any
    ) -> Any:
        """click's `main`, with each usage error (ours and click's own, at any level) as one line and exit 2
        instead of click's boxed usage text, and SIGTERM handled as a Ctrl-C is (see `Terminated`)."""
        try:
            with _sigterm_as_interrupt():
                result = super().main(args, prog_name, standalone_mode=False, **kwargs)
        except BrokenPipeError:
            if not standalone_mode:
                raise
            _reader_gone()
        except CLICK_EXCEPTION as exc:
            if not standalone_mode:
                raise
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has shown the help already
                sys.stderr.write(usage_line(exc) + "\n")
            sys.exit(getattr(exc, "exit_code", EXIT_BAD_INPUT))
        except typer.Abort:
            if not standalone_mode:
                raise
            sys.stderr.write("aborted\n")
            sys.exit(EXIT_FAILED)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except OscarDeployError as exc:
            if _debug_requested(ctx):
                raise
            # A document's problems are escaped lines already; other messages may hold several (a playbook's).
            lines = exc.lines if isinstance(exc, InvalidDocumentError) else str(exc).split("\n")
            lines = [line for line in lines if line] or [type(exc).__name__]
            for line in lines:
                sys.stderr.write(f"error: {printable(line)}\n")
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            if _debug_requested(ctx):
                raise
            ended, code = (
                ("terminated", EXIT_TERMINATED) if isinstance(exc, Terminated) else ("interrupted", EXIT_INTERRUPTED)
            )
            sys.stderr.write(interrupted_line(exc, ended) + "\n")
            ctx.exit(code)
        except (typer.Exit, typer.Abort, CLICK_EXCEPTION):
            raise
        except BrokenPipeError:
            _reader_gone()
        except Exception as exc:
            if _debug_requested(ctx):
                raise
            line = printable(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
            sys.stderr.write(line + "\n")
            ctx.exit(EXIT_FAILED)


def _reader_gone() -> NoReturn:
    """The output's reader went away (`oscar-deploy ... | head`): end quietly with exit code 1, as rich does when
    it meets this while printing a table, and point stdout at /dev/null so that flushing it at exit raises
    nothing more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(EXIT_FAILED)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs in the main thread, SIGTERM raises `Terminated` there; the handler before is restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _debug_requested(ctx: typer.Context) -> bool:
    return bool(ctx.find_root().params.get("debug"))


app = typer.Typer(
    cls=LazyGroup,
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


def main() -> None:
    app(prog_name="oscar-deploy")  # also under `python -m oscar_deploy`, so messages name the command users type
