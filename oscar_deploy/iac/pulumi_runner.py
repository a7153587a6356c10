"""`StackRunner` over the Automation API (`pulumi.automation`, LocalWorkspace), and the CLI runner under it.

`PulumiRunner` drives LocalWorkspace with `PulumiCli`, a `PulumiCommand` that runs the binary oscar-deploy
found or installed, and keeps secrets off every command line and out of the environment:

* the passphrase reaches Pulumi as a file (PULUMI_CONFIG_PASSPHRASE_FILE), and a PULUMI_CONFIG_PASSPHRASE
  inherited from the user's shell is withheld, since Pulumi would prefer it;
* a secret config value is written to `pulumi config set KEY --secret` on stdin, which the command reads when
  no value is given and stdin is not a terminal (pkg/cmd/pulumi/config/config_set.go); the Automation API's
  own `set_config` would put it on argv;
* state is exported and imported without `--show-secrets`: secrets stay encrypted, and the file handed to
  `stack import` lives in a private folder removed right after;
* `up`, `refresh` and `destroy` run with `show_secrets=False`, so the summary Pulumi prints holds no config
  secret.

Each project of a cluster has a working folder in the state folder (`pulumi/projects/<project>`), which holds
Pulumi.yaml and the stack's config file; a project folder from `stacks/` is copied there before each run, so
the installed package is never written to and clusters never share a config file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from pulumi.automation import (
    CommandResult,
    LocalWorkspaceOptions,
    ProjectSettings,
    PulumiCommand,
    Stack,
    create_or_select_stack,
    select_stack,
)
from pulumi.automation import ConfigValue as AutoConfigValue
from pulumi.automation.errors import CommandError, ConcurrentUpdateError, StackNotFoundError, create_command_error
from semver import VersionInfo

from oscar_deploy.iac.pulumi_cli import cli_version
from oscar_deploy.iac.recovery import parse_lock_holders
from oscar_deploy.iac.runner import (
    ConfigValue,
    EventHandler,
    OutputValue,
    StackError,
    StackLocked,
    StackTarget,
    UpdateResult,
)
from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.files import parse_json
from oscar_deploy.support.guard import guarded, stop_and_wait

T = TypeVar("T")
# Variables of the user's environment Pulumi must not see: it reads PULUMI_CONFIG_PASSPHRASE before the file.
WITHHELD_VARIABLES = ("PULUMI_CONFIG_PASSPHRASE",)
# Files of a project folder that belong to one stack or to a local run, never copied into a cluster's project.
NOT_COPIED = ("Pulumi.*.yaml", "Pulumi.*.yml", "__pycache__", "venv", ".venv")
DETAIL_LIMIT = 300
# Seconds pulumi gets to finish the resource operations under way after a Ctrl-C (its own orderly cancel, which
# keeps the checkpoint true) before it and its plugins are killed; what a kill leaves, iac.recovery mends.
STOP_GRACE = 30.0


class PulumiCli(PulumiCommand):
    """`pulumi.automation.PulumiCommand` for a known binary, with the environment and stdin oscar-deploy needs.

    Every command the Automation API runs goes through `run`, like upstream's: `--non-interactive` first,
    PULUMI_AUTOMATION_API set, the binary's folder first on PATH (plugins shipped beside it), output streamed
    to the callbacks line by line, a failure raised as the Automation API's own error classes. What differs:
    the user's PULUMI_CONFIG_PASSPHRASE is withheld, stdin is empty unless a value is passed to it, the
    version comes from the binary we were given rather than from `pulumi` on PATH, and pulumi runs under
    `oscar_deploy.support.guard`: it and its plugins die with the CLI, and a Ctrl-C lets pulumi cancel in
    order (a second one kills it), waits for it, and goes on as KeyboardInterrupt.
    """

    def __init__(self, binary: Path) -> None:
        found = cli_version(binary)
        if found is None:
            raise OperationError(f"{binary}: `pulumi version` fails; reinstall the Pulumi CLI")
        self.command = str(binary)
        self.version = VersionInfo(*found)

    def environment(self, additional_env: Mapping[str, str]) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in WITHHELD_VARIABLES}
        env.update(additional_env)
        env["PULUMI_AUTOMATION_API"] = "true"
        env["PATH"] = os.pathsep.join(filter(None, (str(Path(self.command).parent), env.get("PATH"))))
        return env

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: Callable[[str], Any] | None = None,
        on_error: Callable[[str], Any] | None = None,
        *,
        stdin: str | None = None,
    ) -> CommandResult:
        arguments = list(args)
        options_end = arguments.index("--") if "--" in arguments else len(arguments)
        if "--non-interactive" not in arguments[:options_end]:
            arguments.insert(0, "--non-interactive")
        stdout: list[str] = []
        stderr: list[str] = []
        with subprocess.Popen(
            guarded([self.command, *arguments], grace=STOP_GRACE),
            cwd=cwd,
            env=self.environment(additional_env),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            encoding="utf-8",
        ) as process:
            # Events, not Thread.join: on Python 3.11 a join interrupted by Ctrl-C marks the thread as ended while
            # it still runs (threading.Thread._wait_for_tstate_lock).
            read = [threading.Event(), threading.Event()]
            for stream, callback, lines, done in (
                (process.stdout, on_output, stdout, read[0]),
                (process.stderr, on_error, stderr, read[1]),
            ):
                threading.Thread(target=_read_lines, args=(stream, callback, lines, done), daemon=True).start()
            try:
                _feed(process, stdin)
                for done in read:
                    done.wait()
                code = process.wait()
            except KeyboardInterrupt:
                stop_and_wait(lambda: process.pid, lambda timeout: _ended(process, timeout), "pulumi", STOP_GRACE)
                for done in read:
                    done.wait(5)  # everything that held the pipes has ended: they are at their end
                raise
        result = CommandResult(stdout="\n".join(stdout), stderr="\n".join(stderr), code=code)
        if code != 0:
            raise create_command_error(result)
        return result


def _feed(process: subprocess.Popen[str], stdin: str | None) -> None:
    if stdin is not None and process.stdin is not None:
        try:
            with process.stdin:
                process.stdin.write(stdin)
        except BrokenPipeError:
            pass  # it stopped before reading; its exit code and stderr say why


def _ended(process: subprocess.Popen[str], timeout: float) -> bool:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def _read_lines(
    stream: IO[str] | None, callback: Callable[[str], Any] | None, lines: list[str], done: threading.Event
) -> None:
    try:
        if stream is None:
            return
        for line in iter(stream.readline, ""):
            stripped = line.rstrip()
            if callback is not None:
                callback(stripped)
            lines.append(stripped)
        stream.close()
    finally:
        done.set()


class PulumiSession:
    """A stack selected through `pulumi.automation`; see the module docstring for what it keeps off argv."""

    def __init__(self, stack: Stack, target: StackTarget, cli: PulumiCli, env: Mapping[str, str], work_dir: Path):
        self._stack = stack
        self._target = target
        self._cli = cli
        self._env = dict(env)
        self._work_dir = work_dir

    @property
    def target(self) -> StackTarget:
        return self._target

    def _call(self, command: str, action: Callable[[], T]) -> T:
        return call_pulumi(self._target, command, action)

    def _run(self, *args: str, stdin: str | None = None) -> str:
        result = self._call(
            " ".join(args[:2]), lambda: self._cli.run(list(args), str(self._work_dir), self._env, stdin=stdin)
        )
        return str(result.stdout)

    def set_config(self, config: Mapping[str, ConfigValue]) -> None:
        plain = {key: AutoConfigValue(value=item.value) for key, item in config.items() if not item.secret}
        if plain:
            self._call("config set-all", lambda: self._stack.set_all_config(plain))
        for key, item in config.items():
            if item.secret:
                # `config set` drops one trailing newline from what it reads (cmdutil.RemoveTrailingNewline):
                # one more keeps a value that ends in a newline (a PEM key) exactly as it is.
                self._run("config", "set", key, "--secret", "--stack", self._stack.name, stdin=item.value + "\n")

    def preview(self, on_event: EventHandler) -> dict[str, int]:
        result = self._call("preview", lambda: self._stack.preview(on_event=on_event, color="never"))
        return _changes(result.change_summary)

    def up(self, on_event: EventHandler, *, refresh: bool = False) -> UpdateResult:
        result = self._call(
            "up", lambda: self._stack.up(on_event=on_event, refresh=refresh, show_secrets=False, color="never")
        )
        outputs = {key: OutputValue(item.value, bool(item.secret)) for key, item in result.outputs.items()}
        return UpdateResult(_changes(result.summary.resource_changes), outputs)

    def refresh(self, on_event: EventHandler) -> dict[str, int]:
        result = self._call(
            "refresh", lambda: self._stack.refresh(on_event=on_event, show_secrets=False, color="never")
        )
        return _changes(result.summary.resource_changes)

    def destroy(self, on_event: EventHandler) -> dict[str, int]:
        result = self._call(
            "destroy", lambda: self._stack.destroy(on_event=on_event, show_secrets=False, color="never")
        )
        return _changes(result.summary.resource_changes)

    def outputs(self) -> dict[str, OutputValue]:
        found = self._call("stack output", self._stack.outputs)
        return {key: OutputValue(item.value, bool(item.secret)) for key, item in found.items()}

    def export_state(self) -> dict[str, Any]:
        text = self._run("stack", "export", "--stack", self._stack.name)
        try:
            state = parse_json(text)
        except json.JSONDecodeError as exc:
            raise StackError(self._target, "stack export", f"printed no JSON ({exc.msg})") from None
        if not isinstance(state, dict):
            raise StackError(self._target, "stack export", "printed no JSON object")
        return state

    def import_state(self, state: Mapping[str, Any]) -> None:
        with _private_folder(self._work_dir) as folder:
            path = folder / "state.json"
            path.write_text(json.dumps(state))
            path.chmod(0o600)
            self._run("stack", "import", "--file", str(path), "--stack", self._stack.name)

    def cancel(self) -> None:
        self._call("cancel", self._stack.cancel)

    def remove(self, force: bool = False) -> None:
        self._call("stack rm", lambda: self._stack.workspace.remove_stack(self._stack.name, force=force or None))
        shutil.rmtree(self._work_dir, ignore_errors=True)


@contextmanager
def _private_folder(parent: Path) -> Iterator[Path]:
    """A 0700 folder inside `parent` (the stack's working folder, in the cluster's 0700 state folder), so a file
    a crash leaves behind is never in the system's /tmp; `down` removes it with the stack's folder."""
    folder = Path(tempfile.mkdtemp(prefix=".import-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _changes(summary: Mapping[Any, int] | None) -> dict[str, int]:
    return {str(getattr(op, "value", op)): int(count) for op, count in (summary or {}).items()}


def call_pulumi(target: StackTarget, command: str, action: Callable[[], T]) -> T:
    """Run `action`, turning the Automation API's errors into ours: `StackLocked` with the lock holders, or a
    `StackError` naming the stack, the command and the most telling line Pulumi printed."""
    try:
        return action()
    except ConcurrentUpdateError as exc:
        stdout, stderr = _streams(exc)
        holders = parse_lock_holders(stderr + "\n" + stdout)
        raise StackLocked(target, command, holders, _telling_line(stderr, stdout)) from None
    except CommandError as exc:
        stdout, stderr = _streams(exc)
        raise StackError(target, command, _telling_line(stderr, stdout)) from None


def _streams(error: Exception) -> tuple[str, str]:
    """(stdout, stderr) from an Automation API error, whose text is `CommandResult.__str__`'s."""
    text = str(error)
    before, found, stderr = text.rpartition("\n stderr: ")
    if not found:
        return "", text
    return before.partition("\n stdout: ")[2], stderr


def _telling_line(stderr: str, stdout: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    chosen = errors[0] if errors else (lines[-1] if lines else "")
    if not chosen:
        out = [line.strip() for line in stdout.splitlines() if line.strip()]
        chosen = out[-1] if out else "no output"
    chosen = chosen.removeprefix("error:").strip()
    return chosen if len(chosen) <= DETAIL_LIMIT else chosen[: DETAIL_LIMIT - 3] + "..."


class PulumiRunner:
    """`StackRunner` over `pulumi.automation`, with one working folder per project under `projects_dir`."""

    def __init__(self, cli: PulumiCli, env: Mapping[str, str], projects_dir: Path) -> None:
        self.cli = cli
        self.env = dict(env)
        self.projects_dir = projects_dir

    def select(self, target: StackTarget) -> PulumiSession:
        work_dir, options, env = self._workspace(target)
        arguments = _stack_arguments(target, work_dir, options)
        stack = call_pulumi(target, "stack select", lambda: create_or_select_stack(**arguments))
        return PulumiSession(stack, target, self.cli, env, work_dir)

    def exists(self, target: StackTarget) -> bool:
        work_dir, options, _env = self._workspace(target)
        arguments = _stack_arguments(target, work_dir, options)
        try:
            call_pulumi(target, "stack select", lambda: select_stack(**arguments))
        except StackError as exc:
            if isinstance(exc.__context__, StackNotFoundError) or "no stack named" in exc.detail:
                return False
            raise
        return True

    def _workspace(self, target: StackTarget) -> tuple[Path, LocalWorkspaceOptions, dict[str, str]]:
        """The project's working folder and the workspace options; the target's own environment is added to
        the runner's for every command of that stack."""
        work_dir = self.projects_dir / target.project
        work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings = None
        if target.program_dir is not None:
            _copy_project(target.program_dir, work_dir)
        else:
            settings = ProjectSettings(name=target.project, runtime="python")
        env = {**self.env, **target.environment}
        options = LocalWorkspaceOptions(
            work_dir=str(work_dir), env_vars=env, pulumi_command=self.cli, project_settings=settings
        )
        return work_dir, options, env


def _stack_arguments(target: StackTarget, work_dir: Path, options: LocalWorkspaceOptions) -> dict[str, Any]:
    """How the Automation API selects the target's stack: an inline program by project name, a project folder
    (the platform's) by its working folder."""
    inline = target.program is not None
    return {
        "stack_name": target.stack,
        "project_name": target.project if inline else None,
        "program": target.program,
        "work_dir": None if inline else str(work_dir),
        "opts": options,
    }


def _copy_project(source: Path, work_dir: Path) -> None:
    """Make `work_dir` hold exactly `source`'s files, keeping only the stack config files Pulumi wrote there."""
    if not (source / "Pulumi.yaml").is_file():
        raise OperationError(f"{source}: no Pulumi.yaml; not a Pulumi project (reinstall oscar-deploy)")
    for entry in work_dir.iterdir():
        if entry.name.startswith("Pulumi.") and entry.name not in ("Pulumi.yaml", "Pulumi.yml"):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    shutil.copytree(source, work_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*NOT_COPIED))
