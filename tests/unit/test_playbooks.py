"""The ansible-runner wiring: real ansible-playbook runs of tiny test playbooks with `connection: local`."""

from __future__ import annotations

import socket
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from oscar_deploy.nodes import ansible
from oscar_deploy.nodes.ansible import PlaybookResult, RunProgress, result_message, run_playbook
from oscar_deploy.nodes.inventory import read_inventory
from oscar_deploy.support.errors import InvalidDocumentError, OperationError, UserInputError
from oscar_deploy.support.progress import LiveDisplay
from tests.unit.conftest import InventoryRuns

PLAYBOOKS = Path(__file__).parent / "runner_playbooks"
SECRET = "s3cr3t-Token-value-never-logged"
FILE_SECRET = "f1le-Secret-value-never-logged"


def local_host(name: str) -> str:
    return f"{name} ansible_connection=local ansible_python_interpreter={sys.executable}"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def inventory(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "hosts.ini"
    path.write_text("[all]\n" + "\n".join(lines) + "\n")
    return path


class Recorder:
    """Keeps every progress update, to assert on what the display was told."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.notables: list[str] = []
        self.closed = False

    def update(self, progress: RunProgress, notable: str | None) -> None:
        self.lines.append(progress.status_line())
        if notable:
            self.notables.append(notable)

    def close(self, progress: RunProgress) -> None:
        self.closed = True


@pytest.fixture
def captured_commands(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The command lines ansible-runner actually ran (the guard's, with ansible-playbook's after `--`)."""
    import ansible_runner

    commands: list[list[str]] = []
    real_run = ansible_runner.Runner.run

    def run(self: Any) -> Any:
        commands.append(list(self.config.command))
        return real_run(self)

    monkeypatch.setattr(ansible_runner.Runner, "run", run)
    return commands


def test_run_reports_progress_logs_privately_and_is_idempotent(tmp_path: Path, captured_commands: list) -> None:
    hosts = inventory(tmp_path, local_host("alpha"), local_host("beta"))
    markers = tmp_path / "markers"
    markers.mkdir()
    log_file = tmp_path / "logs" / "ansible-changes.log"
    recorder = Recorder()
    variables = {"marker_dir": str(markers), "test_token": SECRET}

    secrets = {"test_token_file": FILE_SECRET}
    first = run_playbook(
        "changes.yml", hosts, log_file, variables, secret_files=secrets, playbook_dir=PLAYBOOKS, display=recorder
    )

    assert first.succeeded
    assert first.changed_hosts() == {"alpha": 3, "beta": 3}
    # By name; the tasks whose results are hidden (no_log) only where the event still says they changed.
    hidden = ["Store the token", "Store the token read from its private file"]
    for host in ("alpha", "beta"):
        assert first.changed_tasks[host] in (["Write a marker file"], ["Write a marker file", *hidden])
    assert first.stats["alpha"].ok == 5 and first.stats["alpha"].failures == 0
    assert (markers / "alpha.token").read_text() == SECRET
    assert (markers / "beta.filetoken").read_text() == FILE_SECRET
    # Progress: each play, each task and the per-task host counts, from the runner's events.
    assert recorder.notables == ["play: Configure the test hosts", "play: Second play"]
    assert "changes.yml: play Configure the test hosts | task 2: Write a marker file | hosts: changed 2" in (
        recorder.lines
    )
    assert "changes.yml: play Second play | task 5: Check the marker | hosts: ok 2" in recorder.lines
    assert recorder.closed
    # The full log is in the given file, private, and never holds the secret; neither does the command line.
    log = log_file.read_text()
    assert "TASK [Write a marker file]" in log and "PLAY RECAP" in log
    assert "variables (values in a private file, never logged): marker_dir, test_token, test_token_file" in log
    assert SECRET not in log and FILE_SECRET not in log
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert SECRET not in " ".join(captured_commands[0]) and FILE_SECRET not in " ".join(captured_commands[0])
    assert any(arg.startswith("@") and arg.endswith("env/extravars") for arg in captured_commands[0])
    assert not Path(captured_commands[0][captured_commands[0].index("-e") + 1][1:]).exists(), "vars file deleted"

    second = run_playbook("changes.yml", hosts, log_file, variables, secret_files=secrets, playbook_dir=PLAYBOOKS)
    assert second.succeeded
    assert second.changed_hosts() == {} and second.changed_tasks == {}


def test_check_mode_changes_nothing(tmp_path: Path) -> None:
    hosts = inventory(tmp_path, local_host("alpha"))
    markers = tmp_path / "markers"
    markers.mkdir()
    variables = {"marker_dir": str(markers), "test_token": SECRET, "test_token_file": "/dev/null"}
    result = run_playbook("changes.yml", hosts, tmp_path / "check.log", variables, playbook_dir=PLAYBOOKS, check=True)
    assert result.succeeded
    assert result.changed_hosts() == {"alpha": 3}
    assert list(markers.iterdir()) == []


def test_failure_names_host_task_and_message_and_keeps_other_hosts_work(tmp_path: Path) -> None:
    hosts = inventory(tmp_path, local_host("broken"), local_host("healthy"))
    markers = tmp_path / "markers"
    markers.mkdir()
    log_file = tmp_path / "fails.log"
    recorder = Recorder()
    with pytest.raises(OperationError) as caught:
        run_playbook(
            "fails.yml", hosts, log_file, {"marker_dir": str(markers)}, playbook_dir=PLAYBOOKS, display=recorder
        )
    lines = str(caught.value).splitlines()
    assert lines[0] == "broken: Check the disk: disk /var is full on broken"
    assert lines[1] == "the other hosts completed and keep their work: healthy"
    assert lines[2] == f"full log: {log_file}; fix the cause and run the same command again"
    assert "broken: Check the disk: failed" in recorder.notables
    assert (markers / "healthy.txt").is_file()


def test_unreachable_host_is_named_with_its_address(tmp_path: Path) -> None:
    port = closed_port()
    hosts = inventory(
        tmp_path,
        local_host("here"),
        f"ghost ansible_host=127.0.0.1 ansible_port={port} ansible_connection=ssh ansible_user=nobody",
    )
    markers = tmp_path / "markers"
    markers.mkdir()
    result = run_playbook(
        "changes.yml",
        hosts,
        tmp_path / "unreachable.log",
        {"marker_dir": str(markers), "test_token": SECRET},
        secret_files={"test_token_file": FILE_SECRET},
        playbook_dir=PLAYBOOKS,
        raise_on_failure=False,
    )
    assert not result.succeeded
    assert result.stats["ghost"].unreachable == 1
    assert result.completed_hosts() == ["here"]
    assert (markers / "here.txt").is_file()
    lines = str(ansible.playbook_error(result, read_inventory(hosts).address)).splitlines()
    assert lines[0].startswith(f"ghost (127.0.0.1:{port}): unreachable: ")
    assert lines[0].endswith("; check SSH to it")
    assert "Connection refused" in lines[0] or "connect to host" in lines[0]
    assert lines[1] == "the other hosts completed and keep their work: here"


# What Ansible's ssh connection plugin reports for a host whose pinned key ssh refused (ansible-core's ssh.py
# _handle_error: `Failed to connect to the host via ssh: ` and ssh's standard error, as OpenSSH words it).
REFUSED_KEY_MESSAGE = (
    "Failed to connect to the host via ssh: @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n"
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
    "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\r\n"
    "Add correct host key in /state/lab/ssh/known_hosts to get rid of this message.\r\n"
    "Offending ED25519 key in /state/lab/ssh/known_hosts:2\r\n"
    "Host key for 203.0.113.7 has changed and you have requested strict checking.\r\n"
    "Host key verification failed."
)


def _unreachable(host: str, message: str) -> PlaybookResult:
    progress = RunProgress(playbook="prepare.yml")
    events = [
        {"event": "playbook_on_play_start", "event_data": {"play": "Prepare the nodes"}},
        {"event": "playbook_on_task_start", "event_data": {"task": "Read the node"}},
        {
            "event": "runner_on_unreachable",
            "event_data": {"host": host, "task": "Read the node", "res": {"msg": message, "unreachable": True}},
        },
    ]
    for event in events:
        progress.handle(event)
    return PlaybookResult("prepare.yml", "failed", 4, {}, progress.problems, Path("/state/lab/logs/prepare.log"))


def test_a_node_whose_pinned_host_key_ssh_refused_gets_what_happened_and_the_fix_in_one_line() -> None:
    result = _unreachable("agent-1", REFUSED_KEY_MESSAGE)
    lines = str(
        ansible.playbook_error(result, {"agent-1": "203.0.113.7"}.get, Path("/state/lab/ssh/known_hosts"))
    ).splitlines()
    assert lines == [
        "agent-1 (203.0.113.7): unreachable: 203.0.113.7 answers SSH with a host key other than the one pinned for it "
        "in /state/lab/ssh/known_hosts when oscar-deploy made its VM: the VM was rebuilt or replaced outside "
        "oscar-deploy, or another machine holds that address; check in the cloud's console which VM holds it: if "
        "another VM, give the address back to the cluster's VM; if the cluster's VM was rebuilt, delete it and run "
        "`oscar-deploy up` (a worker is made again under its pinned key; for a server, up says how to make the cluster "
        "anew); editing known_hosts does not help: up writes the pinned keys there again",
        "full log: /state/lab/logs/prepare.log; fix the cause and run the same command again",
    ]


def test_a_host_you_own_whose_key_changed_is_told_how_to_forget_the_old_one_and_other_failures_keep_sshs_words() -> (
    None
):
    """Hosts you own (static) are checked against your own known_hosts: a refused key gets the way to forget the
    old one; a node whose key is pinned but which failed otherwise keeps ssh's words."""
    result = _unreachable("pi-1", REFUSED_KEY_MESSAGE)
    lines = str(ansible.playbook_error(result, {"pi-1": "203.0.113.7"}.get)).splitlines()
    assert lines[0] == (
        "pi-1 (203.0.113.7): unreachable: 203.0.113.7 answers SSH with a host key other than the one your known_hosts "
        "holds for it: if you re-installed or replaced that machine, remove its old key with `ssh-keygen -R "
        "'203.0.113.7'` and run again (the next connection records the new one); if not, find out what else answers "
        "at that address before you do"
    )
    no_route = _unreachable(
        "agent-1", "Failed to connect to the host via ssh: connect to host 203.0.113.7 port 22: No route to host"
    )
    for pinned in (Path("/state/lab/ssh/known_hosts"), None):
        assert no_route.problems[0].line("203.0.113.7", pinned) == (
            "agent-1 (203.0.113.7): unreachable: Failed to connect to the host via ssh: connect to host 203.0.113.7 "
            "port 22: No route to host; check SSH to it"
        )


def test_read_inventory_takes_k3s_ansible_inventories_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text(
        "k3s_cluster:\n"
        "  children:\n"
        "    server:\n"
        "      hosts:\n"
        "        192.0.2.10:\n"
        "    agent:\n"
        "      hosts:\n"
        "        pi-1:\n"
        "          ansible_host: 192.0.2.11\n"
        "          ansible_port: 2222\n"
        "  vars:\n"
        "    k3s_version: v1.31.12+k3s1\n"
    )
    view = read_inventory(path)
    assert view.hosts("server") == ["192.0.2.10"]
    assert view.hosts("agent") == ["pi-1"]
    assert view.hosts("k3s_cluster") == ["192.0.2.10", "pi-1"]
    assert view.hostvars["192.0.2.10"]["k3s_version"] == "v1.31.12+k3s1"
    assert view.address("192.0.2.10") == "192.0.2.10"
    assert view.address("pi-1") == "192.0.2.11:2222"
    assert view.address("absent") == "absent"


def test_read_inventory_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"missing.yml: no such inventory; pass an Ansible inventory file"):
        read_inventory(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("k3s_cluster: [unclosed\n")
    with pytest.raises(UserInputError) as raised:
        read_inventory(bad)
    assert str(raised.value) == (
        f"{bad}:2: not valid YAML (expected ',' or ']', but got '<stream end>'); fix the syntax at that line"
    )
    bad.write_text("k3s_cluster:\n  hosts: [pi-1]\n  children:\n    server: 5\n  vars:\n")
    with pytest.raises(InvalidDocumentError) as shapes:
        read_inventory(bad)
    assert shapes.value.lines == [
        f"{bad}:2: group 'k3s_cluster': `hosts` maps host names to their variables, not a list",
        f"{bad}:4: group 'server' maps hosts, children and vars, not a value",
    ]
    ansible_only = tmp_path / "ansible_only.yml"  # what only Ansible refuses: its own message, on one line
    ansible_only.write_text("k3s_cluster:\n  children:\n    server:\n      hosts:\n        pi: 5\n")
    with pytest.raises(UserInputError) as refused:
        read_inventory(ansible_only)
    assert str(refused.value).startswith(f"{ansible_only}: not a valid Ansible inventory (")
    assert "\n" not in str(refused.value)


def test_read_inventory_runs_ansible_again_only_when_what_it_reads_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inventory_runs: InventoryRuns
) -> None:
    runs = inventory_runs
    path = tmp_path / "boards.yml"
    path.write_text("server:\n  hosts:\n    pi-0: {ansible_host: 192.0.2.10}\n")
    first = read_inventory(path)
    first.hostvars["pi-0"]["ansible_host"] = "changed by a caller"
    first.groups["server"].append("intruder")
    again = read_inventory(path)
    assert runs.count == 1
    assert again.hostvars["pi-0"]["ansible_host"] == "192.0.2.10"
    assert again.hosts("server") == ["pi-0"]

    path.write_text("server:\n  hosts:\n    pi-0: {ansible_host: 192.0.2.11}\n")  # same size, in place
    assert read_inventory(path).address("pi-0") == "192.0.2.11"
    replaced = tmp_path / "new.yml"
    replaced.write_text("server:\n  hosts:\n    pi-0: {ansible_host: 192.0.2.12}\n")
    replaced.replace(path)
    assert read_inventory(path).address("pi-0") == "192.0.2.12"
    assert runs.count == 3

    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "pi-0.yml").write_text("ansible_port: 2222\n")
    assert read_inventory(path).address("pi-0") == "192.0.2.12:2222"
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "server.yml").write_text("k3s_version: v1.33.3+k3s1\n")
    assert read_inventory(path).hostvars["pi-0"]["k3s_version"] == "v1.33.3+k3s1"
    assert runs.count == 5
    read_inventory(path)
    assert runs.count == 5
    monkeypatch.setenv("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "1")  # a setting Ansible reads
    read_inventory(path)
    assert runs.count == 6


def test_read_inventory_of_a_folder_runs_ansible_again_when_a_file_is_added_and_keeps_no_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inventory_runs: InventoryRuns
) -> None:
    from oscar_deploy.nodes import inventory

    runs = inventory_runs
    monkeypatch.setattr(inventory, "_LISTED", {})
    monkeypatch.setattr(inventory, "_LISTED_KEPT", 2)
    folder = tmp_path / "inventory"
    folder.mkdir()
    (folder / "servers.yml").write_text("server:\n  hosts:\n    pi-0:\n")
    assert read_inventory(folder).hosts("server") == ["pi-0"]
    (folder / "agents.yml").write_text("agent:\n  hosts:\n    pi-1:\n")
    view = read_inventory(folder)
    assert (view.hosts("server"), view.hosts("agent")) == (["pi-0"], ["pi-1"])
    (folder / "group_vars").mkdir()
    (folder / "group_vars" / "agent.yml").write_text("ansible_port: 2200\n")
    assert read_inventory(folder).address("pi-1") == "pi-1:2200"
    (folder / "group_vars" / "agent.yml").write_text("ansible_port: 2201\n")  # in place, in a subfolder
    assert read_inventory(folder).address("pi-1") == "pi-1:2201"
    read_inventory(folder)
    assert runs.count == 4
    assert len(inventory._LISTED) == 2, "only the latest outputs are kept"

    bad = tmp_path / "bad.yml"
    bad.write_text("k3s_cluster:\n  children:\n    server:\n      hosts:\n        pi: 5\n")  # Ansible refuses it
    for _ in range(2):
        with pytest.raises(UserInputError, match="not a valid Ansible inventory"):
            read_inventory(bad)
    read_inventory(folder)
    assert runs.count == 6


def test_result_message_picks_the_useful_line() -> None:
    assert result_message({"msg": "first\nsecond\n\nthird\nfourth"}) == "first / second / third"
    assert result_message({"stderr": "", "stdout": "out"}) == "out"
    assert result_message({"results": [{"failed": False}, {"failed": True, "msg": "item broke"}]}) == "item broke"
    assert result_message({"rc": 3}) == "exit code 3"
    assert len(result_message({"msg": "x" * 1000})) == 300


def test_live_display_prints_plays_failures_and_a_recap_outside_a_terminal() -> None:
    import io

    from rich.console import Console

    output = io.StringIO()
    display = LiveDisplay(Console(file=output, force_terminal=False, width=200))
    progress = RunProgress(playbook="site.yml")
    events = [
        {"event": "playbook_on_play_start", "event_data": {"play": "Prepare the nodes"}},
        {"event": "playbook_on_task_start", "event_data": {"task": "Install packages"}},
        {"event": "runner_on_ok", "event_data": {"host": "pi-1", "res": {"changed": True}}},
        {"event": "runner_on_failed", "event_data": {"host": "pi-2", "res": {"msg": "no space"}}},
        {"event": "runner_on_failed", "event_data": {"host": "pi-3", "ignore_errors": True, "res": {"msg": "x"}}},
    ]
    for event in events:
        display.update(progress, progress.handle(event))
    assert (
        progress.status_line()
        == "site.yml: play Prepare the nodes | task 1: Install packages | hosts: ok 1 changed 1 failed 1"
    )
    display.close(progress)
    assert output.getvalue().splitlines() == [
        "  play: Prepare the nodes",
        "  pi-2: Install packages: failed",
        "  site.yml: 3 host(s), 1 task(s): 1 ok, 1 changed, 1 failed",
    ]
    assert progress.problems == [ansible.HostProblem("pi-2", "Install packages", "no space")]


def test_runs_keep_one_ssh_connection_per_host_and_pipeline_modules() -> None:
    """The settings every run of the bundled playbooks gets (the project's ansible.cfg, through the runner's
    environment): SSH multiplexing (ControlMaster, ControlPersist) and pipelining. The local-node tier checks
    their effect (one sshd login per node and run, no module copied to a node)."""
    import os
    import subprocess

    from oscar_deploy.support.layers import layer_dir

    directory = layer_dir("playbooks")
    environment = {**os.environ, **ansible.ansible_environment(directory)}
    dump = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-config"), "dump", "--only-changed", "-t", "all"],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    settings = dict(
        (line.split("(", 1)[0].strip(), line.split(" = ", 1)[1].strip()) for line in dump.splitlines() if " = " in line
    )
    assert settings["CONFIG_FILE"] == str(directory / "ansible.cfg")
    assert settings["pipelining"] == "True"
    assert {"ControlMaster=auto", "ControlPersist=120s"} <= set(settings["ssh_args"].split())
