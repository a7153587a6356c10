"""Power for hosts you own: the configured commands, run as argument lists (never a shell) with per-host values,
and the spec settings that name them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from oscar_deploy.autoscaler.service import power_manager_for
from oscar_deploy.providers.power import Machine
from oscar_deploy.providers.static.power import CommandPower
from oscar_deploy.providers.static.provider import StaticProvider
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import OperationError, SpecError, UserInputError
from tests.unit.conftest import InventoryRuns

RECORDER = """import json, sys
with open(sys.argv[1], "a") as log:
    log.write(json.dumps(sys.argv[2:]) + "\\n")
sys.exit(int(sys.argv[2]) if sys.argv[2].isdigit() else 0)
"""


@pytest.fixture
def hosts(tmp_path: Path) -> StaticProvider:
    inventory = tmp_path / "boards.yml"
    inventory.write_text(
        "server:\n  hosts:\n    server-0: {ansible_host: 192.0.2.10, arch: arm64}\n"
        "agent:\n  hosts:\n"
        "    board-1: {ansible_host: 192.0.2.11, ansible_user: pi, arch: arm64, mac_address: 'dc:a6:32:01:02:03', "
        "room: 'lab 2; rm -rf /'}\n"
        "    board-2: {ansible_host: 192.0.2.12, ansible_user: pi, arch: arm64, mac_address: '-oProxyCommand=sh'}\n"
    )
    return StaticProvider(ClusterState("edge", root=tmp_path / "state"), inventory)


def recorder(tmp_path: Path) -> tuple[list[str], Path]:
    script = tmp_path / "record.py"
    script.write_text(RECORDER)
    log = tmp_path / "calls.jsonl"
    return [sys.executable, str(script), str(log)], log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


def test_each_round_lists_the_workers_without_running_ansible_again_until_an_inventory_changes(
    hosts: StaticProvider, inventory_runs: InventoryRuns
) -> None:
    power = CommandPower(hosts.nodes, [], [])
    workers = [Machine("board-1", "unknown", "arm64"), Machine("board-2", "unknown", "arm64")]
    assert power.machines() == workers
    assert power.machines() == workers
    assert inventory_runs.count == 1, "the cluster's own inventory is not written yet; the user's is read once"
    hosts.inventory.write_text(hosts.inventory.read_text().replace("board-2", "board-3"))
    assert [machine.name for machine in power.machines()] == ["board-1", "board-3"]
    assert inventory_runs.count == 2


def test_commands_run_as_argument_lists_with_each_hosts_values(hosts: StaticProvider, tmp_path: Path) -> None:
    base, log = recorder(tmp_path)
    power = CommandPower(
        hosts.nodes,
        [*base, "wake", "{mac_address}", "{room}"],
        [*base, "halt", "{ansible_user}@{ansible_host}", "port={ansible_port}", "{node}"],
    )
    power.power_on("board-1")
    power.power_off("board-1")
    assert calls(log) == [
        ["wake", "dc:a6:32:01:02:03", "lab 2; rm -rf /"],
        ["halt", "pi@192.0.2.11", "port=22", "board-1"],
    ], "a value with spaces and a semicolon stays one argument: no shell ever sees it"
    assert power.machines() == [Machine("board-1", "unknown", "arm64"), Machine("board-2", "unknown", "arm64")]


def test_a_value_that_would_become_an_option_is_refused(hosts: StaticProvider, tmp_path: Path) -> None:
    base, log = recorder(tmp_path)
    power = CommandPower(hosts.nodes, [*base, "wake", "{mac_address}"], [*base, "halt"])
    with pytest.raises(UserInputError) as refused:
        power.power_on("board-2")
    assert str(refused.value) == (
        "static.power_on_command for host board-2: {mac_address} is '-oProxyCommand=sh'; a value may not start "
        "with '-' nor hold control characters"
    )
    assert calls(log) == []


def test_unknown_variables_hosts_and_programs_and_a_failing_command(hosts: StaticProvider, tmp_path: Path) -> None:
    base, log = recorder(tmp_path)
    power = CommandPower(hosts.nodes, [*base, "wake", "{serial}"], [*base, "3", "{node}"])
    with pytest.raises(UserInputError) as variable:
        power.power_on("board-1")
    assert str(variable.value) == (
        "static.power_on_command for host board-1: {serial} is not a variable of this host; add it to the inventory"
    )
    with pytest.raises(OperationError) as server:
        power.power_off("server-0")
    assert str(server.value) == "node server-0: not a worker of the inventory; only workers are powered"
    with pytest.raises(OperationError) as failed:
        power.power_off("board-1")
    assert str(failed.value) == "node board-1: static.power_off_command exited 3: no output"
    assert calls(log) == [["3", "board-1"]], "only the command that could be filled in ran"
    missing = CommandPower(hosts.nodes, ["wakeonlan-not-installed", "{mac_address}"], [])
    with pytest.raises(UserInputError) as program:
        missing.power_on("board-1")
    assert str(program.value) == (
        "static.power_on_command: program 'wakeonlan-not-installed' not found on PATH; install it or give its path"
    )
    with pytest.raises(UserInputError) as unset:
        missing.power_off("board-1")
    assert str(unset.value) == "static.power_off_command: not set; give the command that switches a worker off"


SPEC = """name: edge
target: static
static:
  inventory: boards.yml
{commands}platform:
  autoscaler:
    enabled: true
"""


def spec_problems(commands: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(SPEC.format(commands=commands), "cluster.yaml")
    return caught.value.lines


def test_the_spec_needs_both_commands_for_the_autoscaler_on_static() -> None:
    assert spec_problems("  power_off_command: [ssh, '{ansible_host}', poweroff]\n") == [
        "cluster.yaml:3: static.power_on_command: platform.autoscaler needs it on target static; give the command "
        "(e.g. wake-on-LAN to switch on, SSH poweroff to switch off) or disable the autoscaler"
    ]
    spec = parse_spec(
        SPEC.format(
            commands="  power_on_command: [wakeonlan, '{mac_address}']\n"
            "  power_off_command: [ssh, '{ansible_user}@{ansible_host}', sudo, systemctl, poweroff]\n"
        )
    )
    assert spec.static is not None and spec.static.power_on_command == ["wakeonlan", "{mac_address}"]


def test_the_autoscaler_of_a_static_cluster_runs_the_spec_commands(
    hosts: StaticProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = parse_spec(
        SPEC.format(
            commands="  power_on_command: [wakeonlan, '{mac_address}']\n"
            "  power_off_command: [ssh, '{ansible_host}', poweroff]\n"
        )
    )
    monkeypatch.chdir(tmp_path)  # the spec's inventory, boards.yml, is there
    power, credentials = power_manager_for(spec, ClusterState("edge", root=tmp_path / "state"))
    assert isinstance(power, CommandPower)
    assert power.commands == {"on": ["wakeonlan", "{mac_address}"], "off": ["ssh", "{ansible_host}", "poweroff"]}
    assert [node.name for node in power.nodes()] == ["server-0", "board-1", "board-2"]
    assert credentials == "the commands of static.power_on_command and static.power_off_command"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            "['{program}', x]",
            "static.power_on_command: the first item is the program to run: a plain name or path, without "
            "{placeholders}",
        ),
        ("[]", "static.power_on_command: give the program and its arguments, or leave the key out"),
        ("[wakeonlan, '{mac']", "static.power_on_command: item 1 ('{mac'): braces only as {name} placeholders"),
        (
            "[wakeonlan, '{0.__class__}']",
            "static.power_on_command: item 1 ('{0.__class__}'): braces only as {name} placeholders",
        ),
        (
            "[sshpass, '-p', '{ansible_become_password}', ssh, '{ansible_host}']",
            "static.power_on_command: item 2: {ansible_become_password} names a secret, which a command line shows "
            "to every user of this machine; let the command read it from a file of its own",
        ),
        (
            "[curl, 'https://pdu.example.org/on?node={node}&auth={K3S_Token}']",
            "static.power_on_command: item 1: {K3S_Token} names a secret, which a command line shows to every user "
            "of this machine; let the command read it from a file of its own",
        ),
    ],
)
def test_malformed_commands_are_refused_with_their_key(command: str, message: str) -> None:
    problems = spec_problems(f"  power_on_command: {command}\n  power_off_command: [ssh, x, poweroff]\n")
    assert [problem.split(": ", 1)[1] for problem in problems] == [message]
