"""`oscar-deploy autoscaler run` and `status` end to end on a static cluster: the Kubernetes API double, power
commands that record their arguments, the decisions log, SIGTERM, the lock, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oscar_deploy.state.folder import ClusterState
from tests.conftest import Cli
from tests.doubles.kube_api import KubeApi
from tests.processes import Holder, alive, wait_for
from tests.unit.autoscaler.cluster_objects import node, pod

RECORDER = """import json, sys
with open(sys.argv[1], "a") as log:
    log.write(json.dumps(sys.argv[2:]) + "\\n")
"""


def spec_text(folder: Path, enabled: bool = True) -> str:
    command = f"['{sys.executable}', '{folder / 'record.py'}', '{folder / 'calls.jsonl'}'"
    return (
        "name: edge\ntarget: static\nworkers: {initial: 0, min: 0, max: 2}\n"
        "static:\n  inventory: boards.yml\n"
        f"  power_on_command: {command}, wake, '{{mac_address}}']\n"
        f"  power_off_command: {command}, halt, '{{ansible_host}}']\n"
        f"platform:\n  autoscaler: {{enabled: {str(enabled).lower()}, period: 5}}\n"
    )


@pytest.fixture
def api() -> Iterator[KubeApi]:
    double = KubeApi()
    now = time.time()
    for obj in (
        node("server-0", since=now - 3600, server=True, arch="arm64"),
        node("board-1", since=now - 3600, arch="arm64", cpu="4", memory="8Gi"),
        node("board-2", ready=False, since=now - 900, arch="arm64", cpu="4", memory="8Gi"),
        pod("oscar-svc", "job-a", "board-1", cpu="3500m", owner="Job", created=now - 300),
        pod("oscar-svc", "job-b", None, cpu="2", owner="Job", created=now - 120),
    ):
        double.put(obj)
    yield double
    double.stop()


@pytest.fixture
def edge(cli: Cli, api: KubeApi, state_home: Path) -> Cli:
    (cli.cwd / "record.py").write_text(RECORDER)
    (cli.cwd / "boards.yml").write_text(
        "server:\n  hosts:\n    server-0: {ansible_host: 192.0.2.10, arch: arm64}\n"
        "agent:\n  hosts:\n"
        "    board-1: {ansible_host: 192.0.2.11, arch: arm64, mac_address: 'dc:a6:32:00:00:01'}\n"
        "    board-2: {ansible_host: 192.0.2.12, arch: arm64, mac_address: 'dc:a6:32:00:00:02'}\n"
    )
    (cli.cwd / "cluster.yaml").write_text(spec_text(cli.cwd))
    state = ClusterState("edge").ensure()
    api.write_kubeconfig(state.path / "autoscaler" / "kubeconfig")
    return cli


def log_entries(state_home: Path) -> list[dict[str, object]]:
    path = state_home / "edge" / "autoscaler" / "decisions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_once_powers_on_a_board_for_a_pending_job_and_status_shows_why(edge: Cli, state_home: Path) -> None:
    result = edge("autoscaler", "run", "--once")
    assert result.exit_code == 0, result.output
    calls = [json.loads(line) for line in (edge.cwd / "calls.jsonl").read_text().splitlines()]
    assert calls == [["wake", "dc:a6:32:00:00:02"]]
    events = [entry["event"] for entry in log_entries(state_home)]
    assert events == ["start", "round", "stop"]
    start = log_entries(state_home)[0]
    assert start["credentials"] == (
        "power: the commands of static.power_on_command and static.power_off_command; "
        f"Kubernetes: {state_home / 'edge' / 'autoscaler' / 'kubeconfig'}"
    )

    status = edge("autoscaler", "status")
    assert status.exit_code == 0, status.output
    lines = status.stdout.splitlines()
    assert lines[0] == "autoscaler of cluster edge: not running"
    assert lines[1].startswith("last start: ") and lines[1].endswith(" (target static, every 5.0s)")
    assert lines[2].startswith("last stop: ") and lines[2].endswith(" (done)")
    assert lines[3] == "boot-time estimate: 120s, the static target's default until a boot is measured"
    assert lines[4] == "workers at the last round: 1 on, 1 off, 1 pending pods"
    assert lines[5].split() == ["TIME", "ACTION", "NODE", "OUTCOME", "REASON"]
    row = lines[6]
    assert " power-on " in row and " board-2 " in row and " powered on " in row
    assert row.endswith("1 pending pod(s) fit on no ready or booting node; a new workers-arm64 node (arm64) holds them")

    data = json.loads(edge("autoscaler", "status", "--json", "--last", "1").stdout)
    assert (data["cluster"], data["running"], data["pid"]) == ("edge", False, None)
    (decision,) = data["decisions"]
    assert (decision["action"], decision["node"], decision["outcome"]) == ("power-on", "board-2", "powered on")


def test_status_escapes_what_the_cluster_said(edge: Cli, state_home: Path) -> None:
    from oscar_deploy.autoscaler.decisions import DecisionsLog

    log = DecisionsLog(state_home / "edge" / "autoscaler" / "decisions.jsonl")
    log.write({"event": "start", "target": "static", "period": 5}, time.time())
    said = "500 Internal Server Error: \x1b[2J\x1b]0;owned\x07"
    decision = {"action": "cordon", "node": "board-1", "reason": "unneeded", "outcome": f"failed: {said}"}
    log.write({"event": "round", "decisions": [decision], "notes": [f"board-1: {said}"]}, time.time())
    status = edge("autoscaler", "status")
    assert status.exit_code == 0, status.output
    assert "\x1b" not in status.stdout and "\x07" not in status.stdout
    escaped = "500 Internal Server Error: \\x1b[2J\\x1b]0;owned\\x07"
    assert f" failed: {escaped} " in status.stdout.splitlines()[-2]
    assert status.stdout.splitlines()[-1] == f"note: board-1: {escaped}"


def test_status_tells_the_boot_estimate_measured_on_the_cluster(edge: Cli, state_home: Path) -> None:
    from oscar_deploy.autoscaler.decisions import DecisionsLog

    folder = state_home / "edge" / "autoscaler"
    DecisionsLog(folder / "decisions.jsonl").write({"event": "start", "target": "static", "period": 5}, time.time())
    (folder / "state.json").write_text('{"boot_seconds": [80.4, 110.0]}')
    status = edge("autoscaler", "status")
    assert status.exit_code == 0, status.output
    assert status.stdout.splitlines()[2] == (
        "boot-time estimate: 95s, the median of the 2 boot(s) measured on this cluster"
    )


def test_status_without_a_log_and_bad_input(edge: Cli) -> None:
    status = edge("autoscaler", "status", "-c", "edge")
    assert status.exit_code == 0
    log = Path(os.environ["OSCAR_DEPLOY_HOME"]) / "edge" / "autoscaler" / "decisions.jsonl"
    assert status.stdout.splitlines() == [
        "autoscaler of cluster edge: not running",
        f"no decisions yet: {log} does not exist; start it with `oscar-deploy autoscaler run`",
    ]
    last = edge("autoscaler", "status", "--last", "0")
    assert (last.exit_code, last.stderr) == (2, "error: --last 0: must be 1 or more\n")
    ghost = edge("autoscaler", "status", "-c", "ghost")
    assert (ghost.exit_code, ghost.stdout) == (2, "")
    assert ghost.stderr == "error: cluster ghost: no such cluster here (clusters: none yet); check the name\n"
    (edge.cwd / "cluster.yaml").write_text(spec_text(edge.cwd, enabled=False))
    disabled = edge("autoscaler", "run", "--once")
    assert (disabled.exit_code, disabled.stderr) == (
        2,
        "error: cluster edge: platform.autoscaler.enabled is false; set it to true in the spec (and run "
        "`oscar-deploy up` so the cluster has the autoscaler's ServiceAccount)\n",
    )


def test_a_kubeconfig_others_may_read_is_refused(edge: Cli) -> None:
    kubeconfig = Path(os.environ["OSCAR_DEPLOY_HOME"]) / "edge" / "autoscaler" / "kubeconfig"
    kubeconfig.chmod(0o644)
    result = edge("autoscaler", "run", "--once")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {kubeconfig}: mode 0644 lets other users read or change the autoscaler's Kubernetes token; "
        f"run `chmod 600 {kubeconfig}` (and replace the credentials if others may have copied them)\n"
    )


def test_a_broken_kubeconfig_is_one_line(edge: Cli) -> None:
    kubeconfig = Path(os.environ["OSCAR_DEPLOY_HOME"]) / "edge" / "autoscaler" / "kubeconfig"
    kubeconfig.write_text("clusters: []\n")
    result = edge("autoscaler", "run", "--once")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {kubeconfig}: not a usable kubeconfig (")
    assert result.stderr.endswith("); remove it and run again to write it anew from the cluster\n")
    assert len(result.stderr.splitlines()) == 1


def started_service(edge: Cli, state_home: Path, event: str = "round") -> subprocess.Popen[str]:
    """`autoscaler run` as a service process, once it has logged its first `event`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    service = subprocess.Popen(
        [sys.executable, "-m", "oscar_deploy", "autoscaler", "run"],
        cwd=edge.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    log = state_home / "edge" / "autoscaler" / "decisions.jsonl"
    while not (log.is_file() and f'"event": "{event}"' in log.read_text()):
        if service.poll() is not None or time.monotonic() > deadline:
            service.kill()
            raise AssertionError(f"no {event} logged in 60 s: {service.communicate()}")
        time.sleep(0.1)
    return service


def test_the_service_stops_cleanly_on_sigterm_and_runs_once_per_cluster(edge: Cli, state_home: Path) -> None:
    service = started_service(edge, state_home)
    try:
        status = json.loads(edge("autoscaler", "status", "--json").stdout)
        assert (status["running"], status["pid"]) == (True, service.pid)
        second = edge("autoscaler", "run", "--once")
        assert (second.exit_code, second.stderr) == (
            2,
            f"error: cluster edge: an autoscaler already runs for it (pid {service.pid}); stop that one first\n",
        )
        service.send_signal(signal.SIGTERM)
        output, errors = service.communicate(timeout=30)
    finally:
        if service.poll() is None:
            service.kill()
    assert service.returncode == 0, errors
    assert (output, errors) == ("", ""), "the service prints nothing: its decisions go to the log"
    entries = log_entries(state_home)
    assert entries[-1]["event"] == "stop" and entries[-1]["reason"] == "SIGTERM"
    assert json.loads(edge("autoscaler", "status", "--json").stdout)["running"] is False


def test_the_service_powers_nothing_while_an_operation_holds_the_cluster(edge: Cli, state_home: Path) -> None:
    holder = Holder(ClusterState("edge").lock_file, "edge", "up")
    service: subprocess.Popen[str] | None = None
    try:
        since = json.loads(ClusterState("edge").lock_file.read_text())["since"]
        service = started_service(edge, state_home, "pause")
        assert not (edge.cwd / "calls.jsonl").exists(), "no round ran"
        assert edge("autoscaler", "status").stdout.splitlines()[0] == (
            f"autoscaler of cluster edge: running (pid {service.pid}), paused: the cluster is busy with `up` "
            f"(pid {holder.pid}) since {since}: no round until it ends"
        )
        holder.release()
        log = state_home / "edge" / "autoscaler" / "decisions.jsonl"
        wait_for(lambda: '"event": "round"' in log.read_text(), 60, "the round after the pause")
        service.send_signal(signal.SIGTERM)
        service.communicate(timeout=30)
    finally:
        if holder.process.poll() is None:
            holder.kill()
        if service is not None and service.poll() is None:
            service.kill()
    assert service.returncode == 0
    entries = log_entries(state_home)
    assert [entry["event"] for entry in entries] == ["start", "pause", "resume", "round", "stop"]
    assert (
        entries[1]["reason"]
        == f"the cluster is busy with `up` (pid {holder.pid}) since {since}: no round until it ends"
    )
    assert entries[2]["reason"] == f"`up` (pid {holder.pid}) since {since} ended"
    calls = [json.loads(line) for line in (edge.cwd / "calls.jsonl").read_text().splitlines()]
    assert calls == [["wake", "dc:a6:32:00:00:02"]]
    assert ClusterState("edge").lock_file.read_text() == "", "the round released the lock"


def test_ctrl_c_stops_the_service_cleanly_and_ends_as_interrupted(edge: Cli, state_home: Path) -> None:
    service = started_service(edge, state_home)
    try:
        service.send_signal(signal.SIGINT)
        output, errors = service.communicate(timeout=30)
    finally:
        if service.poll() is None:
            service.kill()
    assert (service.returncode, output) == (130, "")
    assert errors == (
        "stopping once the round under way ends (Ctrl-C again stops it at once)\n"
        "interrupted; what completed is recorded, run the command again to resume\n"
    )
    last = log_entries(state_home)[-1]
    assert (last["event"], last["reason"]) == ("stop", "SIGINT")
    assert json.loads(edge("autoscaler", "status", "--json").stdout)["running"] is False


SLOW_RECORDER = """import json, os, sys, time
with open(sys.argv[1], "a") as log:
    log.write(json.dumps([os.getpid(), *sys.argv[2:]]) + "\\n")
time.sleep(120)
"""


def test_a_second_ctrl_c_stops_the_service_in_the_middle_of_a_round(edge: Cli, state_home: Path) -> None:
    (edge.cwd / "record.py").write_text(SLOW_RECORDER)  # the power-on of board-2 takes two minutes
    service = subprocess.Popen(
        [sys.executable, "-m", "oscar_deploy", "autoscaler", "run"],
        cwd=edge.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    calls = edge.cwd / "calls.jsonl"
    try:
        wait_for(calls.is_file, 60, "the power-on command")
        (pid, *arguments) = json.loads(calls.read_text())
        assert arguments == ["wake", "dc:a6:32:00:00:02"]
        service.send_signal(signal.SIGINT)
        time.sleep(1)
        assert service.poll() is None, "the first Ctrl-C waits for the round"
        started = time.monotonic()
        service.send_signal(signal.SIGINT)
        output, errors = service.communicate(timeout=30)
    finally:
        if service.poll() is None:
            service.kill()
    assert time.monotonic() - started < 10, "the second Ctrl-C stopped the round's power command"
    assert not alive(pid)
    assert (service.returncode, output) == (130, "")
    assert errors == (
        "stopping once the round under way ends (Ctrl-C again stops it at once)\n"
        "interrupted; what completed is recorded, run the command again to resume\n"
    )
    start, cut_short, stop = log_entries(state_home)
    assert [entry["event"] for entry in (start, cut_short, stop)] == ["start", "round", "stop"]
    assert [(d["action"], d["node"], d["outcome"]) for d in cut_short["decisions"]] == [  # type: ignore[union-attr]
        ("power-on", "board-2", "interrupted before it ended: the next run sees whether it took effect")
    ]
    assert stop["reason"] == "SIGINT"
    saved = json.loads((state_home / "edge" / "autoscaler" / "state.json").read_text())
    assert saved["saved_at"] == pytest.approx(time.time(), abs=60), "the round's state was saved before it stopped"
    assert ClusterState("edge").lock_file.read_text() == "", "the round's hold on the cluster was released"
    assert json.loads(edge("autoscaler", "status", "--json").stdout)["running"] is False
