"""site.yml over SSH on an amd64 server and an arm64 agent (the Raspberry Pi-class board, under qemu-user):
the first run installs k3s for each node's own architecture from the bundle, the second changes nothing."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest
import yaml

from oscar_deploy.nodes.ansible import PlaybookResult
from oscar_deploy.nodes.model import PlannedNode
from tests.nodes.k3s_nodes import NodeCluster, describe, file_sha256

pytestmark = pytest.mark.nodes

VERSION = "v1.33.3+k3s1"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    cluster = NodeCluster("pbmixed", tmp_path_factory.mktemp("pbmixed"))
    try:
        cluster.apply([PlannedNode("server-0", "server", "amd64"), PlannedNode("agent-0", "agent", "arm64")])
        yield cluster
    finally:
        assert cluster.destroy() == []


@pytest.fixture(scope="module")
def first_run(mixed: NodeCluster) -> PlaybookResult:
    return mixed.playbook("site.yml", VERSION)


def test_first_run_installs_k3s_for_each_architecture(mixed: NodeCluster, first_run: PlaybookResult) -> None:
    assert first_run.succeeded, describe(first_run)
    bundle = mixed.bundle(VERSION)
    assert mixed.sha256("server-0", "/usr/local/bin/k3s") == file_sha256(bundle / "amd64" / "k3s")
    assert mixed.sha256("agent-0", "/usr/local/bin/k3s") == file_sha256(bundle / "arm64" / "k3s-arm64")
    assert f"k3s version {VERSION} (stand-in linux/arm64)" in mixed.ssh("agent-0", "k3s --version").stdout
    assert mixed.exists("agent-0", "/var/lib/rancher/k3s/agent/images/k3s-airgap-images-arm64.tar.zst")
    assert not mixed.exists("agent-0", "/usr/local/bin/k3s-install.sh")  # upstream's installer is not used
    assert mixed.ssh("agent-0", "readlink /usr/local/bin/kubectl").stdout.strip() == "k3s"

    nodes = mixed.node_table()
    assert nodes["server-0"] == ["Ready", "control-plane,master", "1m", VERSION]
    assert nodes["agent-0"] == ["Ready", "<none>", "1m", VERSION]
    assert mixed.service("server-0", "k3s")["ActiveState"] == "active"
    assert mixed.service("agent-0", "k3s-agent")["ActiveState"] == "active"
    assert mixed.service("agent-0", "k3s-agent")["UnitFileState"] == "enabled"


def test_first_run_writes_configs_that_keep_the_token_private(mixed: NodeCluster, first_run: PlaybookResult) -> None:
    assert first_run.succeeded, describe(first_run)
    server = yaml.safe_load(mixed.read("server-0", "/etc/rancher/k3s/config.yaml"))
    address = mixed.nodes["server-0"].address
    assert server["node-ip"] == address
    assert "cluster-init" not in server and "server" not in server  # one server: no embedded etcd
    assert address in server["tls-san"] and "127.0.0.1" in server["tls-san"]
    assert server["disable"] == ["traefik", "metrics-server"]
    agent = yaml.safe_load(mixed.read("agent-0", "/etc/rancher/k3s/config.yaml"))
    assert agent["server"] == f"https://{address}:6443"
    assert agent["node-label"] == ["oscar-deploy/role=agent", "oscar-deploy/arch=arm64"]
    for node in ("server-0", "agent-0"):
        assert mixed.token not in mixed.read(node, "/etc/rancher/k3s/config.yaml")
        assert mixed.ssh(node, "stat -c %a /etc/rancher/k3s/cluster-token").stdout.strip() == "600"
        assert mixed.read(node, "/etc/rancher/k3s/cluster-token").strip() == mixed.token
    log = first_run.log_file.read_text()
    assert mixed.token not in log


def test_first_run_fetches_a_kubeconfig_for_the_controller(mixed: NodeCluster, first_run: PlaybookResult) -> None:
    assert first_run.succeeded, describe(first_run)
    kubeconfig = yaml.safe_load(mixed.kubeconfig.read_text())
    assert stat.S_IMODE(mixed.kubeconfig.stat().st_mode) == 0o600
    api_port = mixed.nodes["server-0"].api_port
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{api_port}"
    assert kubeconfig["current-context"] == mixed.name
    assert kubeconfig["contexts"][0] == {"context": {"cluster": mixed.name, "user": mixed.name}, "name": mixed.name}
    assert kubeconfig["users"][0]["name"] == mixed.name


def test_first_run_installs_no_package_from_the_network(first_run: PlaybookResult) -> None:
    """Test nodes talk to nothing but this machine: what prereq needs must already be in the node image."""
    log = first_run.log_file.read_text()
    task = log.split("TASK [prereq : Install missing packages]", 1)[1].split("TASK [", 1)[0]
    assert "changed:" not in task and "ok:" not in task, task


def test_second_run_changes_nothing_and_restarts_nothing(mixed: NodeCluster, first_run: PlaybookResult) -> None:
    assert first_run.succeeded, describe(first_run)
    starts = {node: mixed.starts(node) for node in ("server-0", "agent-0")}
    second = mixed.playbook("site.yml", VERSION)
    assert second.succeeded, describe(second)
    assert set(second.stats) == {"server-0", "agent-0"}
    assert {host: stats.changed for host, stats in second.stats.items()} == {"server-0": 0, "agent-0": 0}
    assert {node: mixed.starts(node) for node in ("server-0", "agent-0")} == starts
    assert all(len(lines) == 1 for lines in starts.values()), starts


def test_kubeconfig_tag_fetches_the_kubeconfig_again(mixed: NodeCluster, first_run: PlaybookResult) -> None:
    """`--tags kubeconfig` fetches it again (k3s-ansible #467): a deleted kubeconfig comes back, nothing else runs."""
    assert first_run.succeeded, describe(first_run)
    mixed.kubeconfig.unlink()
    result = mixed.playbook("kubernetes.yml", VERSION, tags="kubeconfig")
    assert result.succeeded, describe(result)
    assert yaml.safe_load(mixed.kubeconfig.read_text())["current-context"] == mixed.name
    assert result.stats["server-0"].changed == 1
