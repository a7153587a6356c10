"""Local nodes for real: podman containers booting systemd and sshd, reached by Ansible over SSH."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.nodes.harness import ClusterFactory, LocalCluster, engine, leftovers

pytestmark = [pytest.mark.nodes, pytest.mark.timeout(1800)]


def _status(cluster: LocalCluster) -> dict[str, dict[str, object]]:
    result = cluster.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    return {node["name"]: node for node in json.loads(result.stdout)["nodes"]}


def _container_ids(cluster: LocalCluster) -> dict[str, str]:
    return {node: str(cluster.inspect(node)["Id"]) for node in ("server-0", "agent-0")}


def test_amd64_and_arm64_nodes_answer_ansible_over_ssh_and_down_leaves_nothing(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory.create("arch", server_arch="amd64", worker_arch="arm64")
    key = cluster.state.ssh_private_key
    assert key.is_file()

    facts = cluster.ansible_facts()
    assert facts["server-0"]["ansible_architecture"] == "x86_64"
    assert facts["agent-0"]["ansible_architecture"] == "aarch64"

    # Privileged systemd nodes share the host's kernel: booting them must not unregister qemu-user.
    assert Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").read_text().startswith("enabled")

    # Only the cluster's key gets in: sshd offers public keys alone, so a password login is impossible.
    port = str(_status(cluster)["agent-0"]["ssh_port"])
    no_key_options = ["-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no", "-o", "StrictHostKeyChecking=no"]
    without_key = subprocess.run(
        ["ssh", *no_key_options, "-o", "UserKnownHostsFile=/dev/null", "-p", port, "root@127.0.0.1", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert without_key.returncode == 255
    assert "Permission denied (publickey)" in without_key.stderr

    down = cluster.cli("down", "--yes")
    assert down.returncode == 0, down.stderr
    assert leftovers(cluster.name) == []
    assert engine().run(["ps", "-a", "--format", "{{.Names}}"]).stdout.count(f"oscar-{cluster.name}-") == 0
    assert not key.exists()
    assert not cluster.state.path.exists()


def test_inventory_describes_the_running_nodes(local_cluster: LocalCluster) -> None:
    inventory = yaml.safe_load(local_cluster.inventory.read_text())
    groups = inventory["k3s_cluster"]["children"]
    assert list(groups["server"]["hosts"]) == ["server-0"]
    assert list(groups["agent"]["hosts"]) == ["agent-0"]
    for group in ("server", "agent"):
        for name, host in groups[group]["hosts"].items():
            data = local_cluster.inspect(name)
            network = data["NetworkSettings"]["Networks"][f"oscar-{local_cluster.name}"]
            assert host["node_address"] == network["IPAddress"]
            published = data["NetworkSettings"]["Ports"]["22/tcp"][0]
            assert (host["ansible_host"], str(host["ansible_port"])) == (published["HostIp"], published["HostPort"])
            assert host["ansible_ssh_private_key_file"] == str(local_cluster.state.ssh_private_key)
            assert host["arch"] == "amd64"
            assert data["Config"]["Hostname"] == name
    api = local_cluster.inspect("server-0")["NetworkSettings"]["Ports"]["6443/tcp"][0]
    assert groups["server"]["hosts"]["server-0"]["k3s_api_public_port"] == int(api["HostPort"])
    assert api["HostIp"] == "127.0.0.1"
    facts = local_cluster.ansible_facts(facts="ansible_hostname")
    assert {host: fact["ansible_hostname"] for host, fact in facts.items()} == {
        "server-0": "server-0",
        "agent-0": "agent-0",
    }
    assert local_cluster.state.journal.completed("provision")


def test_up_twice_creates_nothing(local_cluster: LocalCluster) -> None:
    before = _container_ids(local_cluster)
    inventory_before = local_cluster.inventory.read_text()
    again = local_cluster.cli("up", "--until", "kubernetes")
    assert again.returncode == 0, again.stderr
    assert "provision: all 2 node(s) present" in again.stdout
    assert "created" not in again.stdout
    assert _container_ids(local_cluster) == before
    containers = engine().containers(f"io.oscar-deploy.cluster={local_cluster.name}")
    assert len(containers) == 2
    assert local_cluster.inventory.read_text() == inventory_before


def test_node_deleted_behind_the_tools_back_is_reported_and_recreated(local_cluster: LocalCluster) -> None:
    address = _status(local_cluster)["agent-0"]["address"]
    engine().run(["rm", "--force", "--time", "0", local_cluster.container("agent-0")])

    status = local_cluster.cli("status")
    assert status.returncode == 0, status.stderr
    agent_line = next(line for line in status.stdout.splitlines() if line.startswith("agent-0"))
    assert agent_line.split()[:4] == ["agent-0", "agent", "amd64", "missing"]
    assert "not running: agent-0; `oscar-deploy up` recreates or restarts them" in status.stdout
    assert _status(local_cluster)["agent-0"]["state"] == "missing"

    repaired = local_cluster.cli("up", "--until", "kubernetes")
    assert repaired.returncode == 0, repaired.stderr
    assert "provision: created agent-0" in repaired.stdout
    nodes = _status(local_cluster)
    assert {name: node["state"] for name, node in nodes.items()} == {"server-0": "running", "agent-0": "running"}
    assert nodes["agent-0"]["address"] == address, "a recreated node keeps its cluster address"
    hostname = local_cluster.cli("ssh", "agent-0", "--", "hostname")
    assert (hostname.returncode, hostname.stdout.strip()) == (0, "agent-0")


def test_stopped_node_is_reported_and_restarted(local_cluster: LocalCluster) -> None:
    engine().run(["stop", "--time", "2", local_cluster.container("server-0")])
    assert _status(local_cluster)["server-0"]["state"] == "stopped"

    repaired = local_cluster.cli("up", "--until", "kubernetes")
    assert repaired.returncode == 0, repaired.stderr
    assert "provision: started server-0" in repaired.stdout
    assert _status(local_cluster)["server-0"]["state"] == "running"
    uptime = local_cluster.cli("ssh", "server-0", "--", "systemctl", "is-active", "ssh")
    assert (uptime.returncode, uptime.stdout.strip()) == (0, "active")


def test_ssh_runs_a_command_and_passes_its_exit_code(local_cluster: LocalCluster) -> None:
    arch = local_cluster.cli("ssh", "server-0", "--", "uname", "-m")
    assert (arch.returncode, arch.stdout.strip()) == (0, "x86_64")
    failing = local_cluster.cli("ssh", "agent-0", "--", "sh", "-c", "exit 7")
    assert failing.returncode == 7
    by_container = local_cluster.cli("ssh", f"oscar-{local_cluster.name}-agent-0", "--", "true")
    assert by_container.returncode == 2, "nodes are named as `status` shows them, not by the provider's resources"
    shell_line = local_cluster.cli("ssh", "server-0", "--", "echo one two | wc -w")
    assert (shell_line.returncode, shell_line.stdout.strip()) == (0, "2")
    unknown = local_cluster.cli("ssh", "agent-9", "--", "true")
    assert unknown.returncode == 2
    assert "node 'agent-9': not in cluster" in unknown.stderr


def test_down_without_yes_and_without_stdin_refuses_and_removes_nothing(local_cluster: LocalCluster) -> None:
    before = leftovers(local_cluster.name)
    refused = local_cluster.cli("down")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: down: cluster {local_cluster.name} would be deleted but there is no terminal to confirm on; "
        "pass --yes to delete it"
    )
    assert leftovers(local_cluster.name) == before
    assert len(before) == 5, before  # two containers, two data volumes, the network
    assert local_cluster.state.ssh_private_key.is_file()
    assert _status(local_cluster)["server-0"]["state"] == "running"


def test_power_off_and_on_keep_the_node_and_its_address(local_cluster: LocalCluster) -> None:
    provider = local_cluster.provider()
    before = {node.name: node for node in provider.nodes()}["agent-0"]
    container_id = local_cluster.inspect("agent-0")["Id"]
    provider.power_off("agent-0")
    assert _status(local_cluster)["agent-0"]["state"] == "stopped"
    after = provider.power_on("agent-0")
    assert after.state == "running"
    assert (after.address, after.ssh_port) == (before.address, before.ssh_port)
    assert local_cluster.inspect("agent-0")["Id"] == container_id
    echo = local_cluster.cli("ssh", "agent-0", "--", "echo", "back")
    assert (echo.returncode, echo.stdout.strip()) == (0, "back")


def test_image_source_follows_what_the_host_offers(monkeypatch: pytest.MonkeyPatch) -> None:
    from oscar_deploy.providers.local.node_image import BASE_IMAGE, SOURCE_ENV, NodeImageBuilder, image_tag
    from oscar_deploy.support.errors import UserInputError

    builder = NodeImageBuilder(engine())
    monkeypatch.setenv(SOURCE_ENV, "debootstrap")
    assert builder.choose_source("arm64") == ("debootstrap", f"{SOURCE_ENV}=debootstrap")
    monkeypatch.setenv(SOURCE_ENV, "kaniko")
    with pytest.raises(UserInputError, match=f"{SOURCE_ENV}=kaniko: unknown image source"):
        builder.choose_source("amd64")
    # A Debian image already in local storage means the Containerfile can be built without any registry.
    monkeypatch.setenv(SOURCE_ENV, "auto")
    stand_in_base = f"{BASE_IMAGE}-amd64"
    assert not engine().image_exists(stand_in_base)
    engine().run(["tag", image_tag("amd64"), stand_in_base])
    try:
        assert builder.choose_source("amd64") == ("containerfile", f"{stand_in_base} is in local storage")
    finally:
        engine().run(["untag", image_tag("amd64"), stand_in_base])
    assert builder.is_current("amd64")


def test_lost_key_material_is_replaced_and_let_into_surviving_nodes(local_cluster: LocalCluster) -> None:
    old_key = local_cluster.state.ssh_private_key.read_text()
    local_cluster.state.remove_key_material()
    again = local_cluster.cli("up", "--until", "kubernetes")
    assert again.returncode == 0, again.stderr
    assert local_cluster.state.ssh_private_key.read_text() != old_key
    for node in ("server-0", "agent-0"):
        reached = local_cluster.cli("ssh", node, "--", "hostname")
        assert (reached.returncode, reached.stdout.strip()) == (0, node)
