"""Running the playbooks under `playbooks/` through ansible-runner, with progress, a full log and clear errors.

`run_playbook` is the only way the CLI starts Ansible. It

- passes every variable through a 0600 file in a private folder (`-e @file`), so secrets such as the k3s
  token never appear on a command line, in the environment of other processes or in our logs; the folder
  (inside the cluster's state folder when the caller gives one, with ansible-runner's artefacts, which hold
  task results and facts, Ansible's temporary files and ssh's control sockets) is deleted after the run;
- runs ansible-playbook under `oscar_deploy.support.guard`, so it and everything it starts die with the CLI,
  and a Ctrl-C stops them, waits for them, and ends in KeyboardInterrupt (the CLI's `interrupted`, exit 130);
- follows ansible-runner's events to show the current play, task and host counts on stderr;
- writes the complete output to a log file in the cluster's state folder;
- keeps one SSH connection per host for the whole run (ansible.cfg: ControlMaster, ControlPersist, pipelining),
  with its control sockets in the run's private folder, so that no run reuses a connection another one opened
  (a node of a destroyed cluster can leave a stale one behind, and its port can be given to a new node);
- turns a failed run into an `OperationError` with one line per failed host (`host (address): task: msg`),
  and one per unreachable host (`host (address): unreachable: msg; check SSH to it`, or, for a host whose
  key ssh refused, what that means and the fix: `nodes/hostkeys.py`). Ansible carries on with the other hosts,
  so their work is kept; running the same command again continues from there.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from oscar_deploy.nodes.hostkeys import RefusedHostKey, known_key_refused, pinned_key_refused, refused_host_key
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.guard import GUARD_PID_FILE, guarded, read_pid, stop_and_wait
from oscar_deploy.support.layers import layer_dir
from oscar_deploy.support.progress import QuietDisplay, TaskDisplay

MESSAGE_LIMIT = 300
# Seconds ansible-playbook gets to stop on its own after a Ctrl-C before everything it started is killed.
STOP_GRACE = 10.0
# In the run's private folder: ssh's control sockets.
CONTROL_DIR = "cp"
# Results a host can have in one task, in the order the progress line shows them.
OUTCOMES = ("ok", "changed", "failed", "unreachable", "skipped")


@dataclass(frozen=True)
class HostStats:
    """One host's totals from the run's final `playbook_on_stats` event (the PLAY RECAP line)."""

    ok: int = 0
    changed: int = 0
    failures: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0


@dataclass(frozen=True)
class HostProblem:
    host: str
    task: str
    message: str
    unreachable: bool = False
    # What ssh said of the host key it refused, when that is why the host was unreachable.
    refused_key: RefusedHostKey | None = None

    def line(self, address: str | None, pinned_keys: Path | None = None) -> str:
        """The problem in one line; `pinned_keys` is the known_hosts where oscar-deploy pinned the host's key, if
        it did (cloud nodes; other hosts' keys are checked against the user's own known_hosts)."""
        where = f"{self.host} ({address})" if address and address != self.host else self.host
        if self.unreachable and self.refused_key:
            if pinned_keys:
                return f"{where}: unreachable: {pinned_key_refused(self.refused_key, address, pinned_keys)}"
            return f"{where}: unreachable: {known_key_refused(self.refused_key, address)}"
        if self.unreachable:
            return f"{where}: unreachable: {self.message}; check SSH to it"
        return f"{where}: {self.task}: {self.message}"


@dataclass
class PlaybookResult:
    playbook: str
    status: str
    rc: int
    stats: dict[str, HostStats]
    problems: list[HostProblem]
    log_file: Path
    # The tasks that reported a change, by host, in the order they ran. A task whose result is hidden (no_log)
    # is missing where the event hides its `changed` too (ansible-core 2.19 does, 2.16 does not); `stats`
    # counts it either way.
    changed_tasks: dict[str, list[str]] = field(default_factory=dict)
    # What the plays handed back with set_stats (per_host false), aggregated over the run: ansible-runner's
    # `artifact_data` of the playbook_on_stats event. Read only from a run that succeeded.
    custom_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "successful" and self.rc == 0

    def changed_hosts(self) -> dict[str, int]:
        return {host: stats.changed for host, stats in self.stats.items() if stats.changed}

    def completed_hosts(self) -> list[str]:
        """Hosts that finished every task they were given (their work is kept when others fail)."""
        return sorted(host for host, s in self.stats.items() if not s.failures and not s.unreachable)


def one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    line = " / ".join(lines[:3]) if lines else "no message"
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 3] + "..."


def result_message(res: Mapping[str, Any]) -> str:
    """The most useful single line of a task result: its msg, else stderr or stdout, else a failed item's."""
    for key in ("msg", "reason", "stderr", "stdout", "module_stderr", "module_stdout"):
        value = res.get(key)
        if value:
            return one_line(value)
    for item in res.get("results") or []:
        if isinstance(item, Mapping) and (item.get("failed") or item.get("unreachable")):
            return one_line(result_message(item))
    if res.get("rc") is not None:
        return f"exit code {res['rc']}"
    return "failed without a message"


@dataclass
class RunProgress:
    """What the run is doing, built from ansible-runner's events (see ansible-runner's `event_handler`)."""

    playbook: str
    play: str = ""
    task: str = ""
    task_number: int = 0
    plays: list[str] = field(default_factory=list)
    task_counts: Counter[str] = field(default_factory=Counter)
    totals: Counter[str] = field(default_factory=Counter)
    hosts: set[str] = field(default_factory=set)
    problems: list[HostProblem] = field(default_factory=list)
    changed_tasks: dict[str, list[str]] = field(default_factory=dict)
    final_stats: dict[str, Any] = field(default_factory=dict)
    custom_stats: dict[str, Any] = field(default_factory=dict)

    def handle(self, event: Mapping[str, Any]) -> str | None:
        """Update from one event; returns what happened when it is worth a line of its own."""
        kind = event.get("event", "")
        data: Mapping[str, Any] = event.get("event_data") or {}
        host = str(data.get("host") or "")
        res: Mapping[str, Any] = data.get("res") or {}
        if kind == "playbook_on_play_start":
            self.play = str(data.get("play") or data.get("play_pattern") or "")
            self.plays.append(self.play)
            self.task, self.task_counts = "", Counter()
            return f"play: {self.play}"
        if kind == "playbook_on_task_start" or kind == "playbook_on_handler_task_start":
            self.task = str(data.get("task") or data.get("task_action") or "")
            self.task_number += 1
            self.task_counts = Counter()
            return None
        outcome = {
            "runner_on_ok": "ok",
            "runner_on_failed": "failed",
            "runner_on_unreachable": "unreachable",
            "runner_on_skipped": "skipped",
        }.get(kind)
        if outcome is None:
            if kind == "playbook_on_stats":
                self.final_stats = {key: data.get(key) or {} for key in _STATS_KEYS}
                self.custom_stats = dict(data.get("artifact_data") or {})
            return None
        self.hosts.add(host)
        if outcome == "ok" and res.get("changed"):
            outcome = "changed"
        if outcome == "failed" and data.get("ignore_errors"):
            outcome = "ok"
        self.task_counts[outcome] += 1
        self.totals[outcome] += 1
        task = str(data.get("task") or self.task)
        if outcome == "changed":
            self.changed_tasks.setdefault(host, []).append(task)
        if outcome == "failed":
            self.problems.append(HostProblem(host, task, result_message(res)))
            return f"{host}: {task}: failed"
        if outcome == "unreachable":
            refused = refused_host_key(str(res.get("msg") or ""))
            self.problems.append(HostProblem(host, task, result_message(res), unreachable=True, refused_key=refused))
            return f"{host}: unreachable"
        return None

    def status_line(self) -> str:
        counts = " ".join(f"{name} {self.task_counts[name]}" for name in OUTCOMES if self.task_counts[name])
        task = f"task {self.task_number}: {self.task}" if self.task else "starting"
        play = f"play {self.play} | " if self.play else ""
        return f"{self.playbook}: {play}{task}" + (f" | hosts: {counts}" if counts else "")

    def recap(self) -> str:
        totals = ", ".join(f"{self.totals[name]} {name}" for name in OUTCOMES if self.totals[name]) or "no results"
        return f"{self.playbook}: {len(self.hosts)} host(s), {self.task_number} task(s): {totals}"


_STATS_KEYS = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")


def ansible_config(playbook_dir: Path) -> Path | None:
    config = playbook_dir / "ansible.cfg"
    return config if config.is_file() else None


def ansible_environment(playbook_dir: Path, private_dir: Path | None = None) -> dict[str, str]:
    """Variables ansible-playbook runs with; with `private_dir` (the run's working folder), Ansible's own files
    of the run live there too: its local temporary folders and ssh's control sockets."""
    # ansible-playbook sits beside the interpreter running us (a virtualenv need not be on PATH).
    path = os.pathsep.join(filter(None, (str(Path(sys.executable).parent), os.environ.get("PATH"))))
    env = {"PATH": path, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_RETRY_FILES_ENABLED": "0"}
    config = ansible_config(playbook_dir)
    if config is not None:
        env["ANSIBLE_CONFIG"] = str(config)
    if private_dir is not None:
        env["ANSIBLE_LOCAL_TEMP"] = str(private_dir / "tmp")
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(private_dir / CONTROL_DIR)
        # Relative to the run's working folder: a socket path must stay under 108 bytes (less the 17 ssh adds
        # while it creates one), which a state folder's absolute path can exceed on its own.
        env["ANSIBLE_SSH_CONTROL_PATH"] = f"{CONTROL_DIR}/%%C"
    return env


def private_run_dir(private_root: Path | None, playbook: str) -> Path:
    """A new private (0700) folder for one run: under `private_root` (the CLI passes the cluster's `run/`),
    else a temporary folder of the system's, for callers without a state folder."""
    if private_root is None:
        return Path(tempfile.mkdtemp(prefix="oscar-deploy-ansible-"))
    private_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_root.chmod(0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return Path(tempfile.mkdtemp(prefix=f"{stamp}-{Path(playbook).stem}-", dir=private_root))


def _host_stats(final: Mapping[str, Mapping[str, int]]) -> dict[str, HostStats]:
    hosts: set[str] = set()
    for per_host in final.values():
        hosts.update(per_host)
    return {
        host: HostStats(
            ok=final.get("ok", {}).get(host, 0),
            changed=final.get("changed", {}).get(host, 0),
            failures=final.get("failures", {}).get(host, 0),
            unreachable=final.get("dark", {}).get(host, 0),
            skipped=final.get("skipped", {}).get(host, 0),
            rescued=final.get("rescued", {}).get(host, 0),
            ignored=final.get("ignored", {}).get(host, 0),
        )
        for host in sorted(hosts)
    }


def run_playbook(
    playbook: str,
    inventory: Path,
    log_file: Path,
    extravars: Mapping[str, Any] | None = None,
    *,
    secret_files: Mapping[str, str] | None = None,
    playbook_dir: Path | None = None,
    private_root: Path | None = None,
    limit: str | None = None,
    tags: str | None = None,
    check: bool = False,
    forks: int | None = None,
    display: TaskDisplay | None = None,
    raise_on_failure: bool = True,
    host_address: Callable[[str], str | None] | None = None,
    pinned_keys: Path | None = None,
) -> PlaybookResult:
    """Run `playbook` (a file in `playbook_dir`, default the bundled `playbooks/`) against `inventory`.

    `secret_files` maps a variable to a secret: the secret is written to a private file for the run's length
    and the variable set to that file's path (e.g. `k3s_token_file`), so the value is never a variable at all.
    The run's private folder is made under `private_root` (the cluster's `run/`; a system temporary folder
    without it) and removed afterwards. Raises `OperationError` naming each failed or unreachable host (with
    its address from `host_address`; a host whose key ssh refused with the fix, when `pinned_keys`, the
    known_hosts where oscar-deploy pinned the hosts' keys, is given) unless `raise_on_failure` is false. A Ctrl-C
    stops ansible-playbook and everything it started, waits for that, and raises KeyboardInterrupt.
    """
    from ansible_runner import Runner, RunnerConfig

    directory = (playbook_dir or layer_dir("playbooks")).resolve()
    if not (directory / playbook).is_file():
        raise OperationError(f"{directory / playbook}: playbook not found; reinstall oscar-deploy")
    if not inventory.is_file() and not inventory.is_dir():
        raise UserInputError(f"{inventory}: no such inventory; pass an Ansible inventory file")
    display = display or QuietDisplay()
    progress = RunProgress(playbook=playbook)
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_dir = private_run_dir(private_root, playbook)
    try:
        env_dir = private_dir / "env"
        env_dir.mkdir(mode=0o700)
        variables = dict(extravars or {})
        for index, (name, secret) in enumerate((secret_files or {}).items()):
            variables[name] = str(_write_private(private_dir / f"secret-{index}", secret))
        if variables:
            # ansible-runner hands env/extravars to ansible-playbook as `-e @file`: values stay off argv.
            _write_private(env_dir / "extravars", json.dumps(variables))
        with _open_log(log_file) as log:
            log.write(
                f"# ansible-playbook {playbook} -i {inventory}"
                + (f" --limit {limit}" if limit else "")
                + (f" --tags {tags}" if tags else "")
                + (" --check" if check else "")
                + "\n"
            )
            if variables:
                log.write(f"# variables (values in a private file, never logged): {', '.join(sorted(variables))}\n")

            def on_event(event: dict[str, Any]) -> bool:
                stdout = event.get("stdout")
                if stdout:
                    log.write(stdout + "\n")
                    log.flush()
                display.update(progress, progress.handle(event))
                return False  # nothing reads ansible-runner's own copy of the events

            config = RunnerConfig(
                private_data_dir=str(private_dir),
                # ansible-playbook works in the private folder (ssh's control sockets are relative to it) and
                # is given the playbook by its full path.
                project_dir=str(private_dir),
                playbook=str(directory / playbook),
                inventory=str(inventory.resolve()),
                envvars=ansible_environment(directory, private_dir),
                suppress_env_files=True,
                limit=limit,
                tags=tags,
                forks=forks,
                cmdline="--check --diff" if check else None,
                quiet=True,
                settings={"suppress_ansible_output": True},
            )
            config.prepare()
            # Runner itself, not ansible_runner.run: that one replaces the SIGINT and SIGTERM handlers when given no
            # cancel callback (utils.signal_handler), and a Ctrl-C would then only be noticed between pexpect polls.
            runner = Runner(config, event_handler=on_event)
            try:
                status, rc = _run_guarded(runner, private_dir / GUARD_PID_FILE)
            finally:
                display.close(progress)
            log.write(f"# {progress.recap()}; status {status}, rc {rc}\n")
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)

    result = PlaybookResult(
        playbook=playbook,
        status=str(status),
        rc=int(rc if rc is not None else -1),
        stats=_host_stats(progress.final_stats),
        problems=progress.problems,
        log_file=log_file,
        changed_tasks=progress.changed_tasks,
        custom_stats=progress.custom_stats,
    )
    if raise_on_failure and not result.succeeded:
        raise playbook_error(result, host_address, pinned_keys)
    return result


def _run_guarded(runner: Any, pid_file: Path) -> tuple[str, int | None]:
    """Run ansible-runner's `runner` with ansible-playbook under the guard (it dies with us), in a thread so
    that a Ctrl-C reaches this one: then the guard stops ansible-playbook and all it started, the runner sees
    it end, and KeyboardInterrupt is raised once nothing of the run is left."""
    runner.config.command = guarded(runner.config.command, grace=STOP_GRACE, pid_file=pid_file)
    outcome: list[tuple[str, int | None]] = []
    failure: list[BaseException] = []
    # An event, not Thread.join: on Python 3.11 a join interrupted by Ctrl-C marks the thread as ended while it
    # still runs (threading.Thread._wait_for_tstate_lock releases the lock the running thread holds).
    finished = threading.Event()

    def work() -> None:
        try:
            outcome.append(runner.run())
        except BaseException as exc:  # handed to the calling thread
            failure.append(exc)
        finally:
            finished.set()

    threading.Thread(target=work, name="ansible-runner", daemon=True).start()
    try:
        finished.wait()
    except KeyboardInterrupt:
        stop_and_wait(lambda: read_pid(pid_file), finished.wait, "ansible-playbook", STOP_GRACE)
        raise
    if failure:
        raise failure[0]
    return outcome[0]


def playbook_error(
    result: PlaybookResult,
    host_address: Callable[[str], str | None] | None = None,
    pinned_keys: Path | None = None,
) -> OperationError:
    """One line per failed or unreachable host (`HostProblem.line`), then what was kept and where the full log is."""
    last_by_host: dict[str, HostProblem] = {}
    for problem in result.problems:
        last_by_host[problem.host] = problem  # a host stops at its first failure; retries only repeat it
    address = host_address or (lambda host: None)
    lines = [problem.line(address(host), pinned_keys) for host, problem in last_by_host.items()]
    if not lines:
        lines = [f"{result.playbook}: ansible-playbook ended with status {result.status} (rc {result.rc})"]
    kept = [host for host in result.completed_hosts() if host not in last_by_host]
    if kept and last_by_host:
        lines.append(f"the other hosts completed and keep their work: {', '.join(kept)}")
    lines.append(f"full log: {result.log_file}; fix the cause and run the same command again")
    return OperationError("\n".join(lines))


def _write_private(path: Path, content: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    return path


@contextmanager
def _open_log(path: Path) -> Iterator[TextIO]:
    """The run's log file, private (0600) from its first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yield handle
