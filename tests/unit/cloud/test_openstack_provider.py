"""`up`, `plan`, `scale`, `down` and power on target openstack through typer's runner.

openstacksdk logs in and runs the preflight for real against the OpenStack API double on 127.0.0.1 (EGI
FedCloud's OIDC access-token login, from a temporary clouds.yaml); the Pulumi runner is the recording fake
(tests/doubles/stack_runner.py) whose responder stands for the program; Ansible runs are recorded
(tests/unit/pipeline_env.py). The phases after provision run for real on local nodes in the nodes tier.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from oscar_deploy.autoscaler.decisions import run_lock
from oscar_deploy.autoscaler.service import folder_of
from oscar_deploy.iac.runner import ConfigValue
from oscar_deploy.nodes.k3s import K3sLayer
from oscar_deploy.nodes.volumes import LOST_CLAIMS_STAT, LOST_JOBS_STAT, LostClaim
from oscar_deploy.pipeline import node_phases
from oscar_deploy.pipeline.cluster import cluster_provider
from oscar_deploy.providers.cloud import CloudProvider
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.progress import Progress
from tests.doubles import stack_runner
from tests.doubles.openstack_api import PROJECT_ID, FakeOpenStack
from tests.unit.cloud.cloud_env import NovaServers, ProgramResponder, SshWaits, nova_server
from tests.unit.cloud.test_openstack_preflight import ACCESS_TOKEN, cloud_content, egi_cloud
from tests.unit.pipeline_env import PlaybookRun

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
STACK = "oscar-openstack/lab"
SPEC = "name: lab\ntarget: openstack\nworkers: {initial: 1, max: 3}\nopenstack: {cloud: egi}\n"


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenStack]:
    server = FakeOpenStack(**cloud_content(), access_tokens={("egi.eu", "openid"): {ACCESS_TOKEN}})  # type: ignore[arg-type]
    clouds = {"clouds": {"egi": egi_cloud(server.auth_url)}}
    config = tmp_path / "clouds.yaml"
    config.write_text(yaml.safe_dump(clouds))
    for name in [name for name in os.environ if name.startswith("OS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(config))
    yield server
    server.stop()


@pytest.fixture
def runner(cloud: FakeOpenStack, monkeypatch: pytest.MonkeyPatch) -> stack_runner.RecordingRunner:
    """The recording runner; the program's stand-in makes and deletes the servers of the OpenStack double."""
    runner = stack_runner.install(monkeypatch)
    runner.stack("oscar-openstack", "lab").responder = ProgramResponder(cloud=NovaServers(cloud))
    runner.stack("oscar-openstack", "oscar").responder = ProgramResponder(cloud=NovaServers(cloud))
    return runner


@pytest.fixture
def ssh_waits(monkeypatch: pytest.MonkeyPatch) -> SshWaits:
    waits = SshWaits()
    monkeypatch.setattr(CloudProvider, "wait_for_ssh", waits.method())
    return waits


def responder(runner: stack_runner.RecordingRunner, stack: str = STACK) -> ProgramResponder:
    found = runner.stacks[stack].responder
    assert isinstance(found, ProgramResponder)
    return found


def decisions(stdout: str) -> list[str]:
    """The decision lines `plan` prints on stdout."""
    return stdout.splitlines()


def inventory_hosts(state: ClusterState) -> dict[str, dict[str, object]]:
    data = yaml.safe_load(state.inventory_file.read_text())
    groups = data["k3s_cluster"]["children"]
    return {**groups["server"]["hosts"], **groups["agent"]["hosts"]}


def test_up_cloud_openstack_without_a_spec_writes_one_and_makes_the_cluster(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OS_CLOUD", "egi")
    result = cli("up", "--cloud", "openstack", "--until", "kubernetes")
    assert result.exit_code == 0, result.output
    spec = parse_spec((cli.cwd / "cluster.yaml").read_text())
    assert (spec.target, spec.name, spec.openstack.cloud) == ("openstack", "oscar", "egi")  # type: ignore[union-attr]
    assert result.output.splitlines()[0] == (
        "wrote cluster.yaml (target openstack, cluster oscar); edit it and run `up` again to change the cluster"
    )
    assert [run.playbook for run in playbooks] == ["prepare.yml", "kubernetes.yml"]
    assert ssh_waits.waited == [["server-0", "agent-0"]]
    assert "provision: created server-0, agent-0" in result.output


def test_up_passes_the_keystone_token_only_through_the_environment_and_pins_host_keys(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    result = cli("up", "--until", "kubernetes")
    assert result.exit_code == 0, result.output
    state = ClusterState("lab")

    # The token of the preflight's login reaches the pulumi process's environment, never the stack config.
    token = runner.environments[-1]["OS_TOKEN"]
    assert cloud._tokens.get(token) is True, "a project-scoped token the cloud issued"
    assert runner.environments[-1]["OS_CLOUD"] == ""
    configs = [call.detail["config"] for call in runner.calls if call.operation == "set_config"]
    assert configs and all(token not in str(item.value) for config in configs for item in config.values())
    assert configs[-1] == {
        "openstack:authUrl": ConfigValue(cloud.auth_url),
        "openstack:tenantId": ConfigValue(PROJECT_ID),
        "openstack:region": ConfigValue("RegionOne"),
    }
    assert token not in result.output
    for path in state.path.rglob("*"):
        if path.is_file():
            assert token not in path.read_text(errors="replace"), path

    # The program got a host key per node; their public halves are pinned under every address of the node.
    program_input = responder(runner).last
    assert [node.name for node in program_input.nodes] == ["server-0", "agent-0"]
    keys = program_input.host_keys
    known = (state.ssh_dir / "known_hosts").read_text().splitlines()
    assert known == [
        f"127.0.11.10,127.0.1.10 {keys['server-0'].public}",
        f"127.0.2.10 {keys['agent-0'].public}",
    ]
    assert oct((state.ssh_dir / "host_keys.json").stat().st_mode & 0o777) == "0o600"
    config = (state.ssh_dir / "config").read_text()
    assert "  StrictHostKeyChecking yes\n" in config
    assert f"  UserKnownHostsFile {state.ssh_dir / 'known_hosts'}\n" in config
    assert "  GlobalKnownHostsFile /dev/null\n" in config

    # The same inventory the local target writes; the worker is reached through the first server.
    hosts = inventory_hosts(state)
    assert hosts["server-0"] == {
        "ansible_host": "127.0.11.10",
        "ansible_port": 22,
        "ansible_user": "ubuntu",
        "ansible_ssh_private_key_file": str(state.ssh_private_key),
        "arch": "amd64",
        "node_address": "127.0.1.10",
        "ansible_ssh_common_args": f"-F {state.ssh_dir / 'config'}",
        "ansible_ssh_host_key_checking": True,
    }
    assert hosts["agent-0"]["ansible_host"] == "127.0.2.10"
    assert hosts["agent-0"]["ansible_ssh_common_args"] == (
        f"-F {state.ssh_dir / 'config'} -o ProxyJump=ubuntu@127.0.11.10"
    )

    # `status` reads the recorded nodes: no stack call, no cloud call.
    calls, requests = len(runner.calls), len(cloud.requests)
    status = cli("status", "--json")
    assert status.exit_code == 0, status.output
    nodes = {node["name"]: node for node in json.loads(status.output)["nodes"]}
    assert (nodes["agent-0"]["state"], nodes["agent-0"]["address"]) == ("running", "127.0.2.10")
    assert (len(runner.calls), len(cloud.requests)) == (calls, requests)


def test_the_preflight_runs_once_per_plan_change_and_its_gaps_stop_up(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    assert any("/flavors" in request for request in cloud.requests)
    cloud.requests.clear()
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert not any("/flavors" in request or "/limits" in request for request in cloud.requests), "no preflight"
    assert "provision: all 2 node(s) present" in again.output
    assert runner.operations(STACK).count("up") == 2, "up keeps the stack as the spec says"

    cloud.compute_limits.update(maxTotalInstances=2, totalInstancesUsed=2)
    grown = cli("scale", "--workers", "2")
    assert grown.exit_code == 2, grown.output
    assert "error: workers.initial: the nodes need 1 instances, the quota leaves 0 of 2;" in grown.output
    assert runner.operations(STACK).count("up") == 2, "nothing was created"


def test_an_expired_access_token_is_one_line_saying_how_to_get_a_new_one(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    cloud.access_tokens.clear()
    result = cli("up")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].startswith(
        "error: openstack.cloud: the OIDC access token of cloud 'egi' is expired or revoked (Keystone answered 401)"
    )
    assert "up" not in runner.operations(STACK)


def test_plan_shows_the_pulumi_preview_in_the_provision_decision_and_changes_nothing(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    state = ClusterState("lab")
    before = {path: path.read_bytes() for path in state.path.rglob("*") if path.is_file()}
    runner.stacks[STACK].changes = {"same": 14, "update": 1}
    planned = cli("plan", "--until", "kubernetes")
    assert planned.exit_code == 0, planned.output
    assert decisions(planned.stdout)[:3] == [
        "provision: runs: all 2 node(s) present, nothing to do; pulumi preview of stack oscar-openstack/lab: "
        "1 to update, 14 unchanged",
        "prepare: skipped: up to date (completed " + state.journal.get("prepare").completed_at + ")",  # type: ignore[union-attr]
        "kubernetes: skipped: up to date (completed " + state.journal.get("kubernetes").completed_at + ")",  # type: ignore[union-attr]
    ]
    assert runner.operations(STACK)[-1] == "preview"
    assert "OS_TOKEN" in runner.environments[-1]
    after = {path: path.read_bytes() for path in state.path.rglob("*") if path.is_file()}
    assert after == before

    runner.stacks[STACK].changes = {"same": 15}
    scaled = cli("plan", "--until", "provision", "--json")
    assert json.loads(scaled.stdout) == [
        {
            "phase": "provision",
            "runs": False,
            "reason": "all 2 node(s) present, nothing to do; pulumi preview of stack oscar-openstack/lab: 15 unchanged",
        }
    ]


def test_scale_out_and_in_drains_before_the_vm_goes(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    state = ClusterState("lab")
    grown = cli("scale", "--workers", "2")
    assert grown.exit_code == 0, grown.output
    assert grown.output.splitlines()[-1] == "cluster lab: 2 worker(s); added agent-1"
    assert [node.name for node in responder(runner).last.nodes] == ["server-0", "agent-0", "agent-1"]
    assert playbooks[-1].playbook == "scale.yml"
    assert "127.0.2.11 " in (state.ssh_dir / "known_hosts").read_text()

    playbooks.clear()
    ups_before = runner.operations(STACK).count("up")
    shrunk = cli("scale", "--workers", "1")
    assert shrunk.exit_code == 0, shrunk.output
    assert shrunk.output.splitlines()[-1] == "cluster lab: 1 worker(s); drained and removed agent-1"
    assert [run.playbook for run in playbooks] == ["remove-node.yml"]
    assert runner.operations(STACK).count("up") == ups_before + 1, "the VM went after the drain, by a stack up"
    assert [node.name for node in responder(runner).last.nodes] == ["server-0", "agent-0"]
    assert "agent-1" not in inventory_hosts(state)
    assert "127.0.2.11 " not in (state.ssh_dir / "known_hosts").read_text()
    assert "agent-1" not in json.loads((state.ssh_dir / "host_keys.json").read_text())


def test_scale_out_stopped_before_the_new_worker_joined_is_finished_by_the_next_scale(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C in scale.yml: the VM exists and the count is recorded, but the worker has not joined; the same
    `scale` again joins it instead of finding the count reached."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    with monkeypatch.context() as patch:
        _stopped_in_scale_yml(patch)
        stopped = cli("scale", "--workers", "2")
    assert stopped.exit_code == 130
    desired = ClusterState("lab").desired
    assert (desired.workers(), desired.joining()) == (2, ["agent-1"])
    playbooks.clear()
    again = cli("scale", "--workers", "2")
    assert again.exit_code == 0, again.output
    assert [run.playbook for run in playbooks] == ["scale.yml"]
    assert again.output.splitlines()[-1] == (
        "cluster lab: 2 worker(s); joined agent-1 (made by an earlier scale that was stopped)"
    )
    playbooks.clear()
    done = cli("scale", "--workers", "2")
    assert done.output.splitlines()[-1] == "cluster lab: 2 worker(s); nothing to do"
    assert playbooks == []
    assert desired.joining() == []


def _stopped_in_scale_yml(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = K3sLayer.run

    def stopped_in_scale(self: K3sLayer, playbook: str, *args: Any, **kwargs: Any) -> Any:
        result = recorded(self, playbook, *args, **kwargs)
        if playbook == "scale.yml":
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(K3sLayer, "run", stopped_in_scale)


def test_up_after_a_stopped_scale_out_joins_the_new_workers(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    with monkeypatch.context() as patch:
        _stopped_in_scale_yml(patch)
        assert cli("scale", "--workers", "3").exit_code == 130
    desired = ClusterState("lab").desired
    assert desired.joining() == ["agent-1", "agent-2"]
    playbooks.clear()
    up = cli("up", "--until", "kubernetes")
    assert up.exit_code == 0, up.output
    assert "kubernetes.yml" in [run.playbook for run in playbooks]
    assert (desired.workers(), desired.joining()) == (3, [])
    playbooks.clear()
    again = cli("scale", "--workers", "3")
    assert again.output.splitlines()[-1] == "cluster lab: 3 worker(s); nothing to do"
    assert playbooks == []


def test_scale_in_after_a_stopped_scale_out_joins_the_workers_it_keeps(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    with monkeypatch.context() as patch:
        _stopped_in_scale_yml(patch)
        assert cli("scale", "--workers", "3").exit_code == 130
    playbooks.clear()
    smaller = cli("scale", "--workers", "2")
    assert smaller.exit_code == 0, smaller.output
    assert [run.playbook for run in playbooks] == ["remove-node.yml", "scale.yml"]
    assert smaller.output.splitlines()[-1] == (
        "cluster lab: 2 worker(s); drained and removed agent-2; joined agent-1 (made by an earlier scale that was "
        "stopped)"
    )
    desired = ClusterState("lab").desired
    assert (desired.workers(), desired.joining()) == (2, [])


def test_an_interrupted_update_is_resumed_by_the_next_up(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    urn = "urn:pulumi:lab::oscar-openstack::openstack:compute/instance:Instance::lab-agent-0"
    runner.stack("oscar-openstack", "lab").fail_next(
        "up", "creating Instance lab-agent-0: the server did not boot", pending=(("creating", urn),)
    )
    failed = cli("up", "--until", "kubernetes")
    assert failed.exit_code == 1
    assert (
        "error: oscar-openstack/lab: Stack oscar-openstack/lab: creating Instance lab-agent-0: the server did not boot"
        in failed.output
    )
    assert playbooks == []
    # Nova made the server before the CLI died; the stack never got its id.
    cloud.servers["lost-1"] = nova_server("lost-1", "lab", "agent-0", created="2026-02-03T04:05:06Z")
    resumed = cli("up", "--until", "kubernetes")
    assert resumed.exit_code == 0, resumed.output
    # The update makes the VM again under the same name; the one the stack lost is named with its delete command.
    assert (
        "recovered: 1 pending operation from an interrupted update (created: Instance lab-agent-0); an interrupted "
        "create may have left its resource outside the stack: if the cloud holds two copies of Instance lab-agent-0, "
        "delete the older one (`up`, `scale` and `down` name a VM carrying the cluster's tag that the stack does not "
        "hold, with the command that deletes it)"
    ) in resumed.output.splitlines()
    assert stray_line("lost-1", "2026-02-03 04:05") in resumed.output.splitlines()
    assert "lost-1" not in responder(runner).ids.values()
    ups = [call for call in runner.calls if call.stack == STACK and call.operation == "up"]
    assert [call.detail["refresh"] for call in ups] == [False, True]
    assert [run.playbook for run in playbooks] == ["prepare.yml", "kubernetes.yml"]


def test_up_after_an_update_that_failed_half_way_does_not_count_the_vms_it_made_against_the_quota(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """The first update made server-0 and agent-0 and then failed: the stack's state holds their VMs (its outputs,
    written at the end of an update, do not), and the quota counts them as used. The next `up` checks the quota
    for agent-1 only and finishes the cluster; it makes no VM twice."""
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("initial: 1", "initial: 2"))
    cloud.compute_limits.update(maxTotalInstances=3, totalInstancesUsed=0)
    runner.stack("oscar-openstack", "lab").fail_next("up", "creating Instance lab-agent-1: 500 Internal Server Error")
    failed = cli("up", "--until", "kubernetes")
    assert failed.exit_code == 1, failed.output
    made = [
        {"urn": f"urn:pulumi:lab::oscar-openstack::{kind}::lab-{name}", "type": kind.split("$")[-1]}
        for kind, name in (
            ("pulumi:pulumi:Stack", "oscar-openstack-lab"),
            ("openstack:networking/port:Port", "server-0-port"),
            ("openstack:compute/instance:Instance", "server-0"),
            ("openstack:compute/instance:Instance", "agent-0"),
        )
    ]
    runner.stacks[STACK].deployment["resources"] = made
    cloud.compute_limits.update(totalInstancesUsed=2)
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert (
        "stack oscar-openstack/lab already holds the VMs of server-0, agent-0 from an update that did not finish; "
        "they are kept, not made again"
    ) in again.output
    assert "preflight: can openstack hold 1 new node(s)" in again.output
    assert [node.name for node in responder(runner).last.nodes] == ["server-0", "agent-0", "agent-1"]
    assert "provision: created server-0, agent-0, agent-1" in again.output


def test_down_asks_then_destroys_the_stack_and_removes_it(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    refused = cli("down")
    assert refused.exit_code == 2
    assert "no terminal to confirm on; pass --yes" in refused.output
    assert "destroy" not in runner.operations(STACK)
    with run_lock(folder_of(ClusterState("lab")), "lab"):
        beside = cli("down", "--yes")
    assert beside.exit_code == 2
    assert beside.output == (
        f"error: down: the autoscaler of cluster lab runs (pid {os.getpid()}) and would power workers on while they "
        "are removed; stop it first (`systemctl --user stop oscar-autoscaler@lab` for the service)\n"
    )
    assert "destroy" not in runner.operations(STACK)
    done = cli("down", "--yes")
    assert done.exit_code == 0, done.output
    operations = runner.operations(STACK)
    assert operations[-1] == "remove" and "destroy" in operations
    assert STACK not in runner.stacks
    assert "removed stack oscar-openstack/lab" in done.output
    assert not ClusterState("lab").path.exists()


def stray_line(instance: str, launched: str, node: str = "agent-0", which: str = "") -> str:
    """The line naming server `instance` of cluster lab that the stack does not hold, by its node unless `which`
    says how it is named."""
    return (
        f"warning: {which or f'node {node}: VM {instance}'}, launched {launched} UTC, carries metadata "
        "oscar-deploy-cluster=lab but is not a VM of stack oscar-openstack/lab: a copy an interrupted update left "
        "behind (or a VM of another cluster named lab in this project), billed until deleted: openstack --os-cloud egi "
        f"server delete {instance}"
    )


def test_up_scale_and_down_name_each_vm_of_the_cluster_the_stack_does_not_hold(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """A server carrying the cluster's metadata whose id the stack does not hold is named by `up` and `scale`, and
    by `down`, which removes all it owns, then ends with an error: the server is left running. Servers on their way
    out, and other clusters' servers, are not named."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    made = cli("up", "--until", "kubernetes")
    assert made.exit_code == 0, made.output
    assert "warning:" not in made.output
    cloud.servers["soft"] = {**nova_server("soft", "lab", "agent-0"), "status": "SOFT_DELETED"}
    cloud.servers["gone"] = {**nova_server("gone", "lab", "agent-0"), "status": "DELETED"}
    cloud.servers["going"] = {**nova_server("going", "lab", "agent-0"), "OS-EXT-STS:task_state": "deleting"}
    cloud.servers["other"] = nova_server("other", "lab2", "agent-0")
    quiet = cli("up", "--until", "kubernetes")
    assert quiet.exit_code == 0, quiet.output
    assert "warning:" not in quiet.output

    cloud.servers["dup-2"] = {
        **nova_server("dup-2", "lab", "agent-1", created="2026-01-02T10:00:00Z"),
        "status": "ERROR",
    }
    cloud.servers["dup-1"] = nova_server("dup-1", "lab", "server-0", created="2026-01-02T09:30:00+00:00")
    named = [stray_line("dup-1", "2026-01-02 09:30", "server-0"), stray_line("dup-2", "2026-01-02 10:00", "agent-1")]
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert [line for line in again.output.splitlines() if line.startswith("warning:")] == named
    grown = cli("scale", "--workers", "2")
    assert grown.exit_code == 0, grown.output
    assert [line for line in grown.output.splitlines() if line.startswith("warning:")] == named

    held = set(responder(runner).ids.values())
    done = cli("down", "--yes")
    assert done.exit_code == 1, done.output
    lines = done.output.splitlines()
    assert (
        "removed stack oscar-openstack/lab (0 resource(s): VMs, addresses, network, security group, key pair)" in lines
    )
    assert lines[-3:] == [
        *named,
        "error: down: cluster lab: down did NOT remove everything: 2 VM(s) named above still carry its tag and are "
        "billed; the stack never held them, so down leaves them: delete each with its command once you know no other "
        "cluster named lab owns it",
    ]
    assert not held & set(cloud.servers), "the stack's servers were deleted"
    assert {"dup-1", "dup-2", "other", "soft", "gone", "going"} <= set(cloud.servers), "nothing else was"
    assert not ClusterState("lab").path.exists()

    still = cli("down", "--yes")
    assert (still.exit_code, still.output.splitlines()[-3:]) == (1, lines[-3:]), "down again checks again"
    del cloud.servers["dup-1"], cloud.servers["dup-2"]
    checked = cli("down", "--yes")
    assert checked.exit_code == 0, checked.output
    assert "warning:" not in checked.output


def test_down_whose_check_for_vms_left_with_its_tag_fails_says_it_removed_the_cluster(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """The check runs once everything is removed: its failure says so, in one line, exit 1."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    program = responder(runner)
    destroy = program.destroy

    def destroy_then_fail_listings() -> None:
        destroy()
        cloud.failures["GET /compute/v2.1/servers/detail"] = [500]

    monkeypatch.setattr(program, "destroy", destroy_then_fail_listings)
    failed = cli("down", "--yes")
    assert failed.exit_code == 1, failed.output
    assert failed.output.splitlines()[-1] == (
        "error: down: cluster lab: removed, but the check for VMs left with its tag failed: the servers carrying "
        "metadata oscar-deploy-cluster=lab: cloud 'egi' answered 500 (Internal Server Error); the cloud is busy or "
        "failing: run this again later"
    )
    assert not ClusterState("lab").path.exists()


def test_a_destroy_that_fails_names_the_vms_the_stack_does_not_hold(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """Such a VM can be why the destroy fails (on AWS it sits in the stack's subnet and security group, which then
    cannot be deleted): it is named before the error."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    cloud.servers["dup-1"] = nova_server("dup-1", "lab", "agent-0", created="2026-01-02T09:30:00Z")
    message = "deleting Subnet lab-subnet: DependencyViolation: the subnet has dependencies and cannot be deleted"
    runner.stack("oscar-openstack", "lab").fail_next("destroy", message)
    failed = cli("down", "--yes")
    assert failed.exit_code == 1, failed.output
    lines = failed.output.splitlines()
    assert lines[-2:] == [stray_line("dup-1", "2026-01-02 09:30"), f"error: {STACK}: Stack {STACK}: {message}"]
    assert ClusterState("lab").path.exists(), "kept for the next down"


def test_a_lock_left_by_a_run_on_another_machine_is_broken_only_when_asked(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """Another machine's processes cannot be looked at from here: its lock stays until it is 6 hours old, unless
    the user says that run died; up, scale and down all take the word."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    stack = runner.stack("oscar-openstack", "lab")
    since = datetime.now(UTC) - timedelta(minutes=20)
    stack.lock(77, "laptop.example.org", since)
    held = cli("up", "--until", "kubernetes")
    assert held.exit_code == 1
    assert held.output.splitlines()[-1] == (
        f"error: {STACK}: another Pulumi run holds the stack (pid 77 on laptop.example.org since "
        f"{since:%Y-%m-%d %H:%M} UTC); let it finish, then run the command again (if that run died with its "
        "machine, run the command again with --break-lock)"
    )
    assert "cancel" not in runner.operations(STACK)
    broken = cli("up", "--until", "kubernetes", "--break-lock")
    assert broken.exit_code == 0, broken.output
    assert (
        f"recovered: a stale lock of {since:%Y-%m-%d %H:%M} UTC (pid 77 on laptop.example.org, broken by --break-lock)"
    ) in broken.output
    assert runner.operations(STACK)[-2:] == ["cancel", "up"]
    for command in (("scale", "--workers", "2"), ("down", "--yes")):
        stack.lock(78, "laptop.example.org", since)
        assert cli(*command).exit_code == 1, command
        done = cli(*command, "--break-lock")
        assert done.exit_code == 0, done.output
        assert "broken by --break-lock" in done.output
    assert STACK not in runner.stacks


def test_break_lock_never_takes_the_lock_of_a_run_alive_on_this_machine(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    runner.stack("oscar-openstack", "lab").lock(os.getpid(), socket.gethostname(), datetime.now(UTC))
    held = cli("up", "--until", "kubernetes", "--break-lock")
    assert held.exit_code == 1
    assert held.output.splitlines()[-1].endswith("let it finish, then run the command again")
    assert "cancel" not in runner.operations(STACK)


def test_down_refuses_when_the_state_folder_and_the_backend_disagree(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    state = ClusterState("lab")
    scripted = runner.stacks.pop(STACK)
    missing = cli("down", "--yes")
    assert missing.exit_code == 2
    assert missing.output.strip() == (
        "error: down: cluster lab: the state folder records nodes server-0, agent-0 but the state folder's Pulumi "
        "backend has no stack oscar-openstack/lab; if `up` used another backend, set iac.backend in the spec to it "
        f"and run down again; if the VMs are gone already, delete {state.path} by hand"
    )
    runner.stacks[STACK] = scripted
    (state.path / "infrastructure.json").unlink()
    unrecorded = cli("down", "--yes")
    assert unrecorded.exit_code == 2
    assert unrecorded.output.strip() == (
        "error: down: cluster lab: stack oscar-openstack/lab in the state folder's Pulumi backend has nodes "
        "server-0, agent-0 that the state folder does not record; run `oscar-deploy up` to read them back (or "
        "rename this cluster if that stack is another cluster's), then down"
    )
    assert "destroy" not in runner.operations(STACK)
    assert state.path.exists()
    assert cli("up", "--until", "kubernetes").exit_code == 0, "up reads the nodes back"
    assert cli("down", "--yes").exit_code == 0


def test_a_state_folder_without_the_keys_of_a_shared_stack_refuses_up_and_down(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """The state folder is lost (or this is another machine) while the shared backend still holds the stack: the
    nodes' SSH keys and the stack's passphrase were in that folder. `up` must not make new keys the VMs do not
    have, nor remove the worker a `scale` added without draining it; `down` must not send the user to such an
    `up`. Both say what to do, and nothing is changed."""
    (cli.cwd / "cluster.yaml").write_text(SPEC + "iac: {backend: 's3://team-state?region=eu-west-1'}\n")
    assert cli("up", "--until", "kubernetes").exit_code == 0
    assert cli("scale", "--workers", "2").exit_code == 0
    state = ClusterState("lab")
    shutil.rmtree(state.path)
    calls = len(runner.calls)
    playbooks.clear()
    expected = (
        "cluster lab: stack oscar-openstack/lab in backend s3://team-state?region=eu-west-1 has nodes server-0, "
        f"agent-0, agent-1 that another state folder made ({state.path} holds no SSH host key of theirs); copy "
        f"that state folder (it holds their SSH keys and the stack's Pulumi passphrase) to {state.path} and run "
        "this again (if it is lost for good, the stack cannot be opened: delete the VMs named lab-* with the cloud's "
        "own tools)"
    )
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 2, again.output
    assert again.output.splitlines()[-1] == f"error: {expected}"
    planned = cli("plan", "--until", "provision")
    assert planned.exit_code == 2, planned.output
    assert planned.output.splitlines()[-1] == f"error: {expected}"
    down = cli("down", "--yes")
    assert down.exit_code == 2, down.output
    assert down.output.splitlines()[-1] == f"error: down: {expected}"
    assert [call.operation for call in runner.calls[calls:] if call.operation in ("up", "destroy", "remove")] == []
    assert playbooks == []


def test_up_cloud_must_agree_with_the_spec(cli, runner: stack_runner.RecordingRunner) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    result = cli("up", "--cloud", "aws")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --cloud aws: cluster.yaml describes a cluster on target openstack; drop --cloud, set `target: aws` "
        "in cluster.yaml, or pass another spec with -f"
    )
    other = cli("up", "--cloud", "static")
    assert other.exit_code == 2
    assert other.output.strip() == (
        "error: --cloud static: use one of local, openstack, aws (hosts you own: `oscar-deploy edge install -i "
        "INVENTORY`)"
    )
    assert runner.calls == []


def test_power_off_and_on_go_through_nova_server_actions(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    ids = responder(runner).ids
    cloud.servers.update({ids[name]: {"id": ids[name], "name": f"lab-{name}", "status": "ACTIVE"} for name in ids})
    spec = parse_spec(SPEC)
    provider = cluster_provider(spec, ClusterState("lab"), Progress())
    provider.power_off("agent-0")
    assert cloud.servers[ids["agent-0"]]["status"] == "SHUTOFF"
    assert f"POST /compute/v2.1/servers/{ids['agent-0']}/action" in cloud.requests
    status = cli("status", "--json")
    assert {node["name"]: node["state"] for node in json.loads(status.output)["nodes"]} == {
        "server-0": "running",
        "agent-0": "stopped",
    }
    planned = cli("plan", "--until", "provision")
    assert decisions(planned.stdout)[0].startswith("provision: runs: start agent-0;")
    waited = len(ssh_waits.waited)
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert "provision: started agent-0" in again.output
    assert cloud.servers[ids["agent-0"]]["status"] == "ACTIVE"
    assert ssh_waits.waited[waited:] == [["agent-0"]]
    node = provider.power_on("agent-0")
    assert node.state == "running" and ssh_waits.waited[-1] == ["agent-0"]


def test_up_unshelves_a_worker_the_autoscaler_shelved(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """With `worker_power_off: shelve` the autoscaler shelves idle workers, and records nothing here: `plan` and
    `up` read the servers from Nova, and `up` unshelves the worker (os-start would be refused)."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0, "Nova does not know the servers yet: no state read"
    ids = responder(runner).ids
    cloud.servers.update({ids[name]: {"id": ids[name], "name": f"lab-{name}", "status": "ACTIVE"} for name in ids})
    cloud.servers[ids["agent-0"]]["status"] = "SHELVED_OFFLOADED"
    assert cli("plan", "--until", "provision").stdout.startswith("provision: runs: start agent-0;")
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert "provision: started agent-0" in again.output
    assert cloud.actions[-1] == (f"v2.1/servers/{ids['agent-0']}/action", {"unshelve": None})
    assert cloud.servers[ids["agent-0"]]["status"] == "ACTIVE"
    assert cli("plan", "--until", "provision").stdout.startswith("provision: skipped: all 2 node(s) present")


def test_scale_in_does_not_reach_for_a_worker_the_autoscaler_stopped(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """The autoscaler drains a worker before it stops it, and records nothing here: scaling in reads the servers
    from Nova and removes a stopped worker from Kubernetes without the reset over SSH, which cannot reach it; a
    running one is reset as before."""
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("initial: 1", "initial: 3"))
    assert cli("up", "--until", "kubernetes").exit_code == 0
    ids = responder(runner).ids
    cloud.servers.update({ids[name]: {"id": ids[name], "name": f"lab-{name}", "status": "ACTIVE"} for name in ids})
    cloud.servers[ids["agent-2"]]["status"] = "SHUTOFF"
    playbooks.clear()
    shrunk = cli("scale", "--workers", "1")
    assert shrunk.exit_code == 0, shrunk.output
    assert shrunk.output.splitlines()[-1] == "cluster lab: 1 worker(s); drained and removed agent-2, agent-1"
    assert [(run.playbook, run.variables["remove_node"], run.variables["remove_node_reset"]) for run in playbooks] == [
        ("remove-node.yml", "agent-2", False),
        ("remove-node.yml", "agent-1", True),
    ]
    assert {run.variables["node_drain_allow_local_volume_loss"] for run in playbooks} == {False}


def test_scale_in_of_a_worker_whose_vm_was_deleted_neither_drains_nor_claims_a_drain(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """agent-2's server deleted in the dashboard: scaling in reads the servers from Nova and removes agent-2 from
    Kubernetes as gone (nothing run on it, no job wait, no drain); the claims of its local volumes come back as
    lost ones without --allow-local-volume-loss; agent-1 is drained as before, and the summary says which was
    which."""
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("initial: 1", "initial: 3"))
    assert cli("up", "--until", "kubernetes").exit_code == 0
    del cloud.servers[responder(runner).ids["agent-2"]]
    lost = {"agent-2": [POSTGRES_CLAIM, RAW_IMAGES_CLAIM, MINIO_CLAIM]}
    monkeypatch.setattr(node_phases.K3sLayer, "run", handing_back(node_phases.K3sLayer.run, lost, {"agent-2": []}))
    playbooks.clear()
    updates = len(runner.calls)
    shrunk = cli("scale", "--workers", "1")
    assert shrunk.exit_code == 0, shrunk.output
    # The stack still holds agent-2's server: its removal refreshes first (Pulumi forgets it, deletes nothing).
    assert [call.detail["refresh"] for call in runner.calls[updates:] if call.operation == "up"] == [True, False]
    assert shrunk.stdout.splitlines()[0] == (
        "cluster lab: 1 worker(s); drained and removed agent-1; removed agent-2 (its VM was deleted outside "
        "oscar-deploy; no job was running on it)"
    )
    assert shrunk.stdout.splitlines()[1:4] == LOST_REPORT[:3]
    assert [
        (run.variables["remove_node"], run.variables["remove_node_reset"], run.variables["remove_node_gone"])
        for run in playbooks
    ] == [("agent-2", False, True), ("agent-1", True, False)]
    assert {run.variables["node_drain_allow_local_volume_loss"] for run in playbooks} == {False}
    assert [node.name for node in responder(runner).last.nodes] == ["server-0", "agent-0"]


def test_scale_in_gives_local_volumes_up_only_when_asked(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """With the loss allowed, `scale` names each claim whose data went with a removed worker (what the role hands
    back: tests/unit/test_node_drain.py) and the command that releases it, and warns about the platform's own."""
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("initial: 1", "initial: 3"))
    assert cli("up", "--until", "kubernetes").exit_code == 0
    playbooks.clear()
    lost = {"agent-2": [POSTGRES_CLAIM, RAW_IMAGES_CLAIM, MINIO_CLAIM]}
    monkeypatch.setattr(node_phases.K3sLayer, "run", handing_back(node_phases.K3sLayer.run, lost))
    shrunk = cli("scale", "--workers", "1", "--allow-local-volume-loss")
    assert shrunk.exit_code == 0, shrunk.output
    assert [(run.playbook, run.variables["node_drain_allow_local_volume_loss"]) for run in playbooks] == [
        ("remove-node.yml", True),
        ("remove-node.yml", True),
    ]
    kubeconfig = ClusterState("lab").kubeconfig_file
    assert shrunk.stdout.splitlines() == [
        "cluster lab: 1 worker(s); drained and removed agent-2, agent-1",
        *LOST_REPORT,
        f"run these with KUBECONFIG={kubeconfig}, then delete the Pending pods that used the claim: a StatefulSet "
        "starts its pod again with a new claim from its template, other owners need the claim made again; a PV "
        "still listed afterwards (Released: its provisioner could not clean up on a node that is gone) goes with "
        "kubectl delete pv NAME",
    ]
    assert shrunk.stderr.splitlines()[-1] == MINIO_WARNING
    assert shrunk.stderr.count("warning:") == 1, "only the platform's claim is warned about"


POSTGRES_CLAIM = LostClaim("agent-2", "pvc-9e4b", "default", "data-postgres-0", "local-path", "Delete")
RAW_IMAGES_CLAIM = LostClaim("agent-2", "raw-images-agent-2", "science", "raw-images", "local-storage", "Retain")
MINIO_CLAIM = LostClaim("agent-2", "pvc-7c1d", "minio", "minio-data", "local-path", "Delete")
LOST_REPORT = [
    "cluster lab: agent-2 took the data of 3 bound local volume(s) with it; these claims still name the removed "
    "node, and every pod using one stays Pending until it is released:",
    "  default/data-postgres-0 (PV pvc-9e4b, storage class local-path, reclaim policy Delete): kubectl delete pvc "
    "-n default data-postgres-0",
    "  science/raw-images (PV raw-images-agent-2, storage class local-storage, reclaim policy Retain): kubectl "
    "delete pvc -n science raw-images && kubectl delete pv raw-images-agent-2",
    "  minio/minio-data (PV pvc-7c1d, storage class local-path, reclaim policy Delete): kubectl delete pvc -n minio "
    "minio-data",
]
MINIO_WARNING = (
    "warning: minio/minio-data held MinIO's data: every bucket of the cluster (the OSCAR services' input and "
    "output files); it is lost with agent-2, and OSCAR does not work without it"
)


def handing_back(recorded: Any, lost: dict[str, list[LostClaim]], jobs: dict[str, list[str]] | None = None) -> Any:
    """TEST DOUBLE around the recorded playbook runs: remove-node.yml hands back, as role node_drain does with
    set_stats, the claims whose volumes were on the node it removed, and (`jobs`, for a machine gone for good) the
    job pods lost with it."""

    def run(self, playbook, extra=None, limit=None, check=False):  # type: ignore[no-untyped-def]
        result = recorded(self, playbook, extra, limit, check)
        if playbook == "remove-node.yml":
            node = (extra or {}).get("remove_node")
            claims = lost.get(node, [])
            result.custom_stats = {LOST_CLAIMS_STAT: [asdict(claim) for claim in claims]} if claims else {}
            if jobs is not None and node in jobs:
                result.custom_stats[LOST_JOBS_STAT] = jobs[node]
        return result

    return run


def test_claims_given_up_are_named_when_a_later_removal_fails(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """agent-2 is gone with its volumes when the drain of agent-1 fails: its claims are dead all the same."""
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("initial: 1", "initial: 3"))
    assert cli("up", "--until", "kubernetes").exit_code == 0
    recorded = handing_back(node_phases.K3sLayer.run, {"agent-2": [POSTGRES_CLAIM, RAW_IMAGES_CLAIM, MINIO_CLAIM]})

    def drain_of_agent_1_fails(self, playbook, extra=None, limit=None, check=False):  # type: ignore[no-untyped-def]
        if playbook == "remove-node.yml" and (extra or {}).get("remove_node") == "agent-1":
            raise OperationError("remove-node.yml: agent-1: drain failed; the node is schedulable again")
        return recorded(self, playbook, extra, limit, check)

    monkeypatch.setattr(node_phases.K3sLayer, "run", drain_of_agent_1_fails)
    failed = cli("scale", "--workers", "1", "--allow-local-volume-loss")
    assert failed.exit_code == 1
    assert failed.stdout.splitlines()[: len(LOST_REPORT)] == LOST_REPORT
    assert failed.stderr.splitlines()[-2:] == [
        MINIO_WARNING,
        "error: remove-node.yml: agent-1: drain failed; the node is schedulable again",
    ]


def test_scale_refuses_a_spec_edit_up_has_not_applied(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """`scale` reads ./cluster.yaml by default: an edit there that `up` has not applied (another image or flavor)
    must not reach the stack through a scale, where no plan showed it."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    ups = runner.operations(STACK).count("up")
    playbooks.clear()
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("{cloud: egi}", "{cloud: egi, server_flavor: m1.xlarge}"))
    refused = cli("scale", "--workers", "2")
    assert refused.exit_code == 2
    assert refused.output == (
        "error: cluster.yaml: openstack.server_flavor differs from the spec `up` last applied to cluster lab, and "
        "`scale` changes only the workers; run `oscar-deploy up` to apply the edit first (`oscar-deploy plan` shows "
        "it), or scale with -c lab\n"
    )
    assert runner.operations(STACK).count("up") == ups and playbooks == [], "nothing changed"
    by_name = cli("scale", "--workers", "2", "-c", "lab")
    assert by_name.exit_code == 0, by_name.output
    assert [node.size for node in responder(runner).last.nodes] == ["m1.large", "m1.medium", "m1.medium"]
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("max: 3", "max: 4"))
    assert cli("scale", "--workers", "1").exit_code == 0, "workers.* may differ: they bound the count asked for"


def test_a_partial_scale_in_is_not_undone_by_the_next_up(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    assert cli("scale", "--workers", "3").exit_code == 0
    recorded = node_phases.K3sLayer.run

    def drain_of_agent_1_fails(self, playbook, extra=None, limit=None, check=False):  # type: ignore[no-untyped-def]
        if playbook == "remove-node.yml" and (extra or {}).get("remove_node") == "agent-1":
            raise OperationError("remove-node.yml: agent-1: drain failed; the node is schedulable again")
        return recorded(self, playbook, extra, limit, check)

    monkeypatch.setattr(node_phases.K3sLayer, "run", drain_of_agent_1_fails)
    failed = cli("scale", "--workers", "1")
    assert failed.exit_code == 1
    assert [node.name for node in responder(runner).last.nodes] == ["server-0", "agent-0", "agent-1"]
    assert ClusterState("lab").desired.workers() == 2
    planned = cli("plan", "--until", "provision")
    assert decisions(planned.stdout)[0].startswith("provision: skipped: all 3 node(s) present"), planned.output


def test_a_worker_reset_by_a_scale_whose_vm_deletion_failed_is_removed_by_the_next_up(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """remove-node.yml took agent-1 out of the cluster and reset it, then the stack update that deletes its VM
    failed: agent-1 is past the point of no return. The next `up` must finish its removal, not keep a worker
    without k3s as if the cluster were converged."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    assert cli("scale", "--workers", "2").exit_code == 0
    runner.stack("oscar-openstack", "lab").fail_next("up", "openstack:compute/instance:Instance lab-agent-1: 503")
    playbooks.clear()
    failed = cli("scale", "--workers", "1")
    assert failed.exit_code == 1, failed.output
    assert [run.playbook for run in playbooks] == ["remove-node.yml"]
    assert ClusterState("lab").desired.workers() == 1, "agent-1 no longer has k3s: it counts as removed"
    planned = cli("plan", "--until", "provision")
    assert "agent-1" in decisions(planned.stdout)[0], planned.output
    playbooks.clear()
    again = cli("up", "--until", "provision")
    assert again.exit_code == 0, again.output
    assert "provision: drained and removed agent-1 (no longer wanted)" in again.stdout.splitlines()
    assert [run.playbook for run in playbooks] == ["remove-node.yml"]
    assert [node.name for node in responder(runner).last.nodes] == ["server-0", "agent-0"]


def test_down_stopped_after_the_destroy_runs_again(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C after `pulumi destroy` but before the stack is removed: the stack is empty, and the next `down`
    finishes the job instead of asking for an `up` that would make every VM again."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0

    def interrupted(self: stack_runner.FakeSession) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(stack_runner.FakeSession, "remove", interrupted)
        stopped = cli("down", "--yes")
    assert stopped.exit_code == 130
    assert "destroy" in runner.operations(STACK) and STACK in runner.stacks
    again = cli("down", "--yes")
    assert again.exit_code == 0, again.output
    assert runner.operations(STACK)[-1] == "remove" and STACK not in runner.stacks
    assert not ClusterState("lab").path.exists()


def test_nova_errors_of_a_power_change_name_the_node_the_answer_and_the_fix(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    ids = responder(runner).ids
    cloud.servers.update({ids[name]: {"id": ids[name], "name": f"lab-{name}", "status": "ACTIVE"} for name in ids})
    provider = cluster_provider(parse_spec(SPEC), ClusterState("lab"), Progress())
    action = f"POST /compute/v2.1/servers/{ids['agent-0']}/action"
    login = "POST /identity/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/openid/auth"
    relogin = (
        "the OIDC access token of cloud 'egi' is expired or revoked (the cloud answered 401); get a new one (access "
        "tokens are short-lived; EGI Check-in: https://aai.egi.eu/token or oidc-agent) and put it in clouds.yaml "
        "under clouds.egi.auth.access_token"
    )
    cases: list[tuple[dict[str, list[int | None]], str]] = [
        # Nova refuses the token, and again after keystoneauth logged in anew.
        ({action: [401, 401]}, relogin),
        # Nova refuses the token, and the identity provider the access token: the new login fails.
        ({action: [401], login: [None, 401]}, relogin),
        (
            {action: [403]},
            "cloud 'egi' answered 403 (Forbidden); your role in the project may not do this: ask the cloud's support",
        ),
        (
            {action: [404]},
            "cloud 'egi' answered 404 (Not Found); the server was deleted outside oscar-deploy: `oscar-deploy up` "
            "makes a deleted worker again (a deleted server needs `oscar-deploy down --yes`, then `up`: a new cluster)",
        ),
        (
            {action: [503]},
            "cloud 'egi' answered 503 (Service Unavailable); the cloud is busy or failing: run this again later",
        ),
    ]
    for failures, expected in cases:
        cloud.failures = failures
        with pytest.raises(OperationError) as failure:
            provider.power_off("agent-0")
        assert str(failure.value) == f"node agent-0: stop server lab-agent-0: {expected}"
        assert all(not statuses for statuses in cloud.failures.values()), "each scripted failure was answered"
        assert cloud.servers[ids["agent-0"]]["status"] == "ACTIVE"
    cloud.servers[ids["agent-0"]]["OS-EXT-STS:task_state"] = "rebooting"
    with pytest.raises(OperationError) as busy:
        provider.power_off("agent-0")
    assert str(busy.value) == (
        f"node agent-0: stop server lab-agent-0: cloud 'egi' answered 409 (Cannot 'stop' instance {ids['agent-0']} "
        "while it is in vm_state); the server is busy: run this again once its task ended"
    )
    assert {node.name: node.state for node in provider.nodes()}["agent-0"] == "running", "nothing recorded as stopped"


def test_a_failed_power_state_read_stops_a_scale_out_before_the_stack_update(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """Nova fails the listing that says which recorded servers are stopped or deleted: the error is one line, the
    stack is not updated (no agent-1), and the state folder still agrees with the stack, so `down` is not refused."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    updates = runner.operations(STACK).count("up")
    cloud.failures = {"GET /compute/v2.1/servers/detail": [503]}
    failed = cli("scale", "--workers", "2")
    assert failed.exit_code == 1, failed.output
    assert failed.output.splitlines()[-1] == (
        "error: the servers' power states: cloud 'egi' answered 503 (Service Unavailable); the cloud is busy or "
        "failing: run this again later"
    )
    assert "Traceback" not in failed.output
    assert runner.operations(STACK).count("up") == updates
    assert [node.name for node in responder(runner).last.nodes] == ["server-0", "agent-0"]
    recorded = json.loads((ClusterState("lab").path / "infrastructure.json").read_text())["nodes"]
    assert [(entry["name"], entry["state"]) for entry in recorded] == [("server-0", "running"), ("agent-0", "running")]
    done = cli("down", "--yes")
    assert done.exit_code == 0, done.output


def compute_requests(cloud: FakeOpenStack, since: int) -> list[str]:
    """The Nova requests the double got since request number `since`."""
    return [request for request in cloud.requests[since:] if request.split()[1].startswith("/compute/")]


def test_up_makes_a_worker_deleted_behind_its_back_again(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """A worker's server deleted in the dashboard (gone from Nova's listing): `plan` and `up` see it in the one
    listing; `up` updates the stack with a refresh, so Pulumi forgets the server and makes it again, waits for its
    SSH and runs the node phases on it."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    ids = dict(responder(runner).ids)
    del cloud.servers[ids["agent-0"]]
    assert cli("plan", "--until", "provision").stdout.startswith("provision: runs: create agent-0;")
    waited, playbooks_before = len(ssh_waits.waited), len(playbooks)
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert "node agent-0: its VM lab-agent-0 was deleted outside oscar-deploy; making it again" in again.output
    assert "provision: created agent-0" in again.output
    assert [call.detail["refresh"] for call in runner.calls if call.operation == "up"] == [False, True]
    remade = responder(runner).ids["agent-0"]
    assert remade != ids["agent-0"] and responder(runner).ids["server-0"] == ids["server-0"]
    assert cloud.servers[remade]["status"] == "ACTIVE"
    assert ssh_waits.waited[waited:] == [["agent-0"]]
    assert "prepare.yml" in [run.playbook for run in playbooks[playbooks_before:]], "the new VM is prepared"
    recorded = {node["name"]: node for node in json.loads(cli("status", "--json").stdout)["nodes"]}
    assert (recorded["agent-0"]["state"], recorded["agent-0"]["instance"]) == ("running", remade)

    since, updates = len(cloud.requests), len(runner.calls)
    converged = cli("up", "--until", "kubernetes")
    assert converged.exit_code == 0, converged.output
    assert "deleted outside oscar-deploy" not in converged.output
    servers = [request for request in compute_requests(cloud, since) if "/servers" in request]
    assert servers == ["GET /compute/v2.1/servers/detail"], "one listing, no server read or action"
    assert [call.detail["refresh"] for call in runner.calls[updates:] if call.operation == "up"] == [False]


def test_up_removes_a_worker_no_longer_wanted_whose_vm_was_deleted_without_making_it_again(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """The servers of agent-0 and agent-2 deleted in the dashboard while the spec goes down to 2 workers: agent-0
    is made again, agent-2 is not (made only to be drained and deleted, minutes and money for nothing). The update
    refreshes and no longer declares agent-2; remove-node.yml then deletes it from Kubernetes with nothing run on
    it, no job wait and no drain (remove_node_gone), and `up` names the jobs and the claims of the local volumes
    lost with it, with the commands that release them, though it never gives volumes up otherwise."""
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("initial: 1", "initial: 3"))
    assert cli("up", "--until", "kubernetes").exit_code == 0
    ids = dict(responder(runner).ids)
    del cloud.servers[ids["agent-0"]], cloud.servers[ids["agent-2"]]
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("initial: 1", "initial: 2"))
    assert cli("plan", "--until", "provision").stdout.startswith(
        "provision: runs: create agent-0; remove agent-2 (VM deleted outside oscar-deploy); pulumi preview"
    )
    lost = {"agent-2": [POSTGRES_CLAIM, MINIO_CLAIM]}
    recorded = handing_back(node_phases.K3sLayer.run, lost, jobs={"agent-2": ["oscar-svc/job-7f3a"]})
    monkeypatch.setattr(node_phases.K3sLayer, "run", recorded)
    playbooks.clear()
    calls = len(runner.calls)
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert "node agent-0: its VM lab-agent-0 was deleted outside oscar-deploy; making it again" in again.output
    assert (
        "node agent-2: its VM lab-agent-2 was deleted outside oscar-deploy; no longer wanted, so not made again"
    ) in again.output
    assert [node.name for node in responder(runner).last.nodes] == ["server-0", "agent-0", "agent-1"]
    assert [call.detail["refresh"] for call in runner.calls[calls:] if call.operation == "up"] == [True]
    assert "agent-2" not in responder(runner).ids
    assert sorted(server["name"] for server in cloud.servers.values()) == ["lab-agent-0", "lab-agent-1", "lab-server-0"]
    removals = [run for run in playbooks if run.playbook == "remove-node.yml"]
    assert [
        (
            run.variables["remove_node"],
            run.variables["remove_node_reset"],
            run.variables["remove_node_gone"],
            run.variables["node_drain_allow_local_volume_loss"],
        )
        for run in removals
    ] == [("agent-2", False, True, False)]
    provision = [line for line in again.stdout.splitlines() if line.startswith("provision: ")]
    kubeconfig = ClusterState("lab").kubeconfig_file
    assert provision == [
        "provision: created agent-0",
        "provision: removed agent-2 (its VM was deleted outside oscar-deploy; the jobs running on it were lost: "
        "oscar-svc/job-7f3a)",
        "provision: cluster lab: agent-2 took the data of 2 bound local volume(s) with it; these claims still name "
        "the removed node, and every pod using one stays Pending until it is released:",
        "provision:   default/data-postgres-0 (PV pvc-9e4b, storage class local-path, reclaim policy Delete): "
        "kubectl delete pvc -n default data-postgres-0",
        "provision:   minio/minio-data (PV pvc-7c1d, storage class local-path, reclaim policy Delete): kubectl "
        "delete pvc -n minio minio-data",
        f"provision: run these with KUBECONFIG={kubeconfig}, then delete the Pending pods that used the claim: a "
        "StatefulSet starts its pod again with a new claim from its template, other owners need the claim made "
        "again; a PV still listed afterwards (Released: its provisioner could not clean up on a node that is gone) "
        "goes with kubectl delete pv NAME",
    ]
    assert (
        "warning: provision: minio/minio-data held MinIO's data: every bucket of the cluster (the OSCAR services' "
        "input and output files); it is lost with agent-2, and OSCAR does not work without it"
    ) in again.stderr.splitlines()
    assert sorted(inventory_hosts(ClusterState("lab"))) == ["agent-0", "agent-1", "server-0"]
    assert "gone" not in json.loads((ClusterState("lab").path / "infrastructure.json").read_text())
    assert [node["name"] for node in json.loads(cli("status", "--json").stdout)["nodes"]] == [
        "server-0",
        "agent-0",
        "agent-1",
    ]

    playbooks.clear()
    converged = cli("up", "--until", "kubernetes")
    assert converged.exit_code == 0, converged.output
    assert "deleted outside oscar-deploy" not in converged.output
    assert "remove-node.yml" not in [run.playbook for run in playbooks]


def test_a_worker_whose_vm_was_deleted_and_whose_removal_failed_is_removed_by_the_next_up(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """The update dropped agent-1 from the stack before remove-node.yml failed (the API did not answer): the state
    folder still knows it (status: missing), so the next `up` removes it from Kubernetes, and never makes it again."""
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("initial: 1", "initial: 2"))
    assert cli("up", "--until", "kubernetes").exit_code == 0
    del cloud.servers[responder(runner).ids["agent-1"]]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    recorded = node_phases.K3sLayer.run

    def api_down(self, playbook, extra=None, limit=None, check=False):  # type: ignore[no-untyped-def]
        if playbook == "remove-node.yml":
            raise OperationError("remove-node.yml: server-0: Find the node in the API: connection refused")
        return recorded(self, playbook, extra, limit, check)

    monkeypatch.setattr(node_phases.K3sLayer, "run", api_down)
    failed = cli("up", "--until", "kubernetes")
    assert failed.exit_code == 1, failed.output
    assert [node.name for node in responder(runner).last.nodes] == ["server-0", "agent-0"]
    states = {node["name"]: node["state"] for node in json.loads(cli("status", "--json").stdout)["nodes"]}
    assert states == {"server-0": "running", "agent-0": "running", "agent-1": "missing"}
    assert "agent-1" in inventory_hosts(ClusterState("lab")), "remove-node.yml needs it in the inventory"
    assert cli("plan", "--until", "provision").stdout.startswith(
        "provision: runs: remove agent-1 (VM deleted outside oscar-deploy); pulumi preview"
    )
    for workers in ("1", "3"):  # the leftover is no worker to count, and scale.yml could not reach it
        refused = cli("scale", "--workers", workers)
        assert (refused.exit_code, refused.stderr) == (
            2,
            "error: cluster lab: agent-1 (VM deleted outside oscar-deploy) still to leave Kubernetes after a removal "
            "that failed; run `oscar-deploy up` to finish it, then scale\n",
        )

    monkeypatch.setattr(node_phases.K3sLayer, "run", recorded)
    playbooks.clear()
    calls = len(runner.calls)
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert (
        "provision: removed agent-1 (its VM was deleted outside oscar-deploy; any job running on it was lost)"
    ) in again.stdout.splitlines()
    assert [(run.variables["remove_node"], run.variables["remove_node_gone"]) for run in playbooks[:1]] == [
        ("agent-1", True)
    ]
    assert [call.detail["refresh"] for call in runner.calls[calls:] if call.operation == "up"] == [False]
    assert [node.name for node in responder(runner).last.nodes] == ["server-0", "agent-0"]
    assert [node["name"] for node in json.loads(cli("status", "--json").stdout)["nodes"]] == ["server-0", "agent-0"]
    assert "agent-1" not in inventory_hosts(ClusterState("lab"))
    assert "agent-1" not in json.loads((ClusterState("lab").path / "ssh" / "host_keys.json").read_text())


def test_up_refuses_a_cluster_whose_server_was_deleted_behind_its_back(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    ids = dict(responder(runner).ids)
    del cloud.servers[ids["server-0"]]
    state = ClusterState("lab")
    recorded = (state.path / "infrastructure.json").read_text()
    calls = len(runner.calls)
    refused = cli("up", "--until", "kubernetes")
    assert refused.exit_code == 1, refused.output
    assert refused.output.splitlines()[-1] == (
        "error: node server-0: VM lab-server-0 was deleted outside oscar-deploy, and the control plane (and MinIO's "
        "data, which lives on the servers) went with it: nothing can be repaired in place; run `oscar-deploy down "
        "--yes`, then `oscar-deploy up` makes a new cluster lab"
    )
    assert "Traceback" not in refused.output
    assert "up" not in [call.operation for call in runner.calls[calls:]], "no stack update"
    assert (state.path / "infrastructure.json").read_text() == recorded
    assert responder(runner).ids == ids


def test_up_stopped_while_waiting_for_ssh_waits_for_those_nodes_next_time(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """The VMs exist once the update ended, so the next `up` finds them unchanged; they may still be booting."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    ssh_waits.interrupt_next = True
    stopped = cli("up", "--until", "kubernetes")
    assert stopped.exit_code == 130, stopped.output
    assert ssh_waits.waited == [["server-0", "agent-0"]]
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert "created" not in again.output
    assert ssh_waits.waited[-1] == ["server-0", "agent-0"], "waited for again, though unchanged"
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("initial: 1", "initial: 2"))
    assert cli("up", "--until", "kubernetes").exit_code == 0
    assert ssh_waits.waited[-1] == ["agent-1"], "only the new worker: the others answered last time"


def test_up_with_no_vm_of_the_cluster_in_sight_suspects_the_login_not_a_deletion(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """clouds.yaml now reaching another project shows the same empty listing as every VM deleted; `down` would then
    leave the real VMs running, so it is not the first advice."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    cloud.servers.clear()
    calls = len(runner.calls)
    refused = cli("up", "--until", "kubernetes")
    assert refused.exit_code == 1, refused.output
    assert refused.output.splitlines()[-1] == (
        "error: cluster lab: the cloud lists none of its 2 VM(s); check that openstack.cloud (and that cloud's project "
        "in clouds.yaml) still reach the project, region or account the cluster was made in (if its VMs were all "
        "deleted outside oscar-deploy, `oscar-deploy down --yes`, then `up`, makes a new cluster)"
    )
    assert "up" not in [call.operation for call in runner.calls[calls:]], "no stack update"


def test_a_server_in_error_being_built_or_soft_deleted_is_not_taken_for_deleted(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """Nova still has these servers (a SOFT_DELETED one until the cloud's reclaim interval ends, for `restore`):
    a refresh would keep them, so `up` neither says they were deleted nor asks for one."""
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("initial: 1", "initial: 3"))
    assert cli("up", "--until", "kubernetes").exit_code == 0
    ids = dict(responder(runner).ids)
    cloud.servers[ids["agent-0"]]["status"] = "ERROR"
    cloud.servers[ids["agent-1"]]["status"] = "BUILD"
    cloud.servers[ids["agent-2"]]["status"] = "SOFT_DELETED"
    cloud.servers[ids["server-0"]]["status"] = "ERROR"
    calls, waited = len(runner.calls), len(ssh_waits.waited)
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert "deleted outside oscar-deploy" not in again.output
    assert "created" not in again.output
    assert [call.detail["refresh"] for call in runner.calls[calls:] if call.operation == "up"] == [False]
    assert responder(runner).ids == ids
    assert not any(ssh_waits.waited[waited:]), "no SSH wait"


def test_vms_the_stack_does_not_hold_are_named_oldest_first_and_a_converged_up_lists_the_servers_once(
    cli,
    cloud: FakeOpenStack,
    runner: stack_runner.RecordingRunner,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
) -> None:  # type: ignore[no-untyped-def]
    """Nova's `created` is read in its own offset (UTC when it has none); a server whose time does not read is
    named last, launched at an unknown time; one without the node's metadata is named by its id and its name (by its
    id alone when it has none). With no such server, `up` asks the cloud once."""
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    listings = len(cloud.requests)
    quiet = cli("up", "--until", "kubernetes")
    assert quiet.exit_code == 0, quiet.output
    assert [request for request in cloud.requests[listings:] if "/servers" in request] == [
        "GET /compute/v2.1/servers/detail"
    ]

    cloud.servers["dup-0"] = nova_server("dup-0", "lab", "agent-0", created="not a time")
    cloud.servers["dup-a"] = nova_server("dup-a", "lab", "agent-0", created="2026-01-02T10:00:00")
    cloud.servers["dup-b"] = nova_server("dup-b", "lab", "server-0", created="2026-01-02T09:30:00+01:00")
    del cloud.servers["dup-b"]["metadata"]["oscar-deploy-node"]
    cloud.servers["dup-c"] = nova_server("dup-c", "lab", "agent-0", created="2026-01-02T11:00:00")
    del cloud.servers["dup-c"]["metadata"]["oscar-deploy-node"]
    cloud.servers["dup-c"]["name"] = ""  # Nova keeps a server's name as given, empty too
    named = cli("up", "--until", "kubernetes")
    assert named.exit_code == 0, named.output
    assert [line for line in named.output.splitlines() if line.startswith("warning:")] == [
        stray_line("dup-b", "2026-01-02 08:30", which="VM dup-b (named lab-server-0)"),
        stray_line("dup-a", "2026-01-02 10:00"),
        stray_line("dup-c", "2026-01-02 11:00", which="VM dup-c"),
        stray_line("dup-0", "TIME").replace("launched TIME UTC", "launched at an unknown time"),
    ]
