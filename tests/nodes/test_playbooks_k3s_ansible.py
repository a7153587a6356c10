"""site.yml over SSH with the settings of k3s-io/k3s-ansible's inventory-sample.yml that a k3s-ansible user
sets: `api_port` (the API's port, also in the firewall rules), `cluster_context` (the kubeconfig's names),
`manage_firewall` (false: the firewall is left alone), `registries_config_yaml` and `extra_manifests`. The nodes
run the labelled ufw stand-in (tests/doubles/ufw), enabled, so that the firewall rules can be read back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from oscar_deploy.nodes.model import PlannedNode
from tests.nodes.k3s_nodes import NodeCluster, changes, describe

pytestmark = pytest.mark.nodes

VERSION = "v1.33.3+k3s1"
UFW_STAND_IN = Path(__file__).resolve().parent.parent / "doubles" / "ufw"
REGISTRIES = "mirrors:\n  docker.io:\n    endpoint:\n      - https://registry.lab.internal:5000\n"
MANIFEST = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: lab-extra\n"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    home = tmp_path_factory.mktemp("pbk3sa")
    nodes = NodeCluster("pbk3sa", home)
    try:
        nodes.apply([PlannedNode("server-0", "server", "amd64"), PlannedNode("agent-0", "agent", "amd64")])
        for node in nodes.nodes:
            nodes.upload(node, "/usr/sbin/ufw", UFW_STAND_IN.read_bytes(), mode="0755")
            nodes.upload(node, "/etc/ufw/ufw.conf", b"ENABLED=yes\nLOGLEVEL=low\n")
        manifest = home / "lab-extra.yaml"
        manifest.write_text(MANIFEST)
        # A k3s-ansible inventory names no oscar-deploy cluster: cluster_context names the kubeconfig's entries.
        data = yaml.safe_load(nodes.state.inventory_file.read_text())
        del data["k3s_cluster"]["vars"]["cluster_name"]
        nodes.state.write_file(nodes.state.inventory_file, yaml.safe_dump(data, sort_keys=False))
        nodes.set_cluster_vars(
            {
                "api_port": 7443,
                "cluster_context": "lab",
                "registries_config_yaml": REGISTRIES,
                "extra_manifests": [str(manifest)],
            }
        )
        nodes.set_host_vars("agent-0", {"manage_firewall": False})
        yield nodes
    finally:
        assert nodes.destroy() == []


def ufw_rules(cluster: NodeCluster, node: str) -> list[str]:
    return cluster.ssh(node, "cat /etc/ufw/standin-rules 2>/dev/null || true").stdout.splitlines()


def test_the_sample_settings_are_honoured(cluster: NodeCluster) -> None:
    result = cluster.playbook("site.yml", VERSION)
    assert result.succeeded, describe(result)
    address = cluster.nodes["server-0"].address

    # api_port: the servers listen there, the agents join there, the firewall opens it (and not 6443).
    server = yaml.safe_load(cluster.read("server-0", "/etc/rancher/k3s/config.yaml"))
    assert server["https-listen-port"] == 7443
    agent = yaml.safe_load(cluster.read("agent-0", "/etc/rancher/k3s/config.yaml"))
    assert agent["server"] == f"https://{address}:7443"
    listening = [line.split()[3] for line in cluster.ssh("server-0", "ss -ltnH").stdout.splitlines()]
    assert "0.0.0.0:7443" in listening and "0.0.0.0:6443" not in listening
    assert {name: row[:1] for name, row in cluster.node_table().items()} == {
        "server-0": ["Ready"],
        "agent-0": ["Ready"],
    }
    assert sorted(ufw_rules(cluster, "server-0")) == sorted(
        ["10250/tcp", "8472/udp", "7443/tcp", "2379:2380/tcp", "from 10.42.0.0/16", "from 10.43.0.0/16"]
    )
    # manage_firewall: false on agent-0: its firewall is left as it was.
    assert ufw_rules(cluster, "agent-0") == []

    # cluster_context: the kubeconfig's cluster, user and context.
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    assert kubeconfig["current-context"] == "lab"
    assert kubeconfig["contexts"][0] == {"context": {"cluster": "lab", "user": "lab"}, "name": "lab"}

    # registries_config_yaml on every node, private; extra_manifests in the servers' auto-deploy folder.
    for node in ("server-0", "agent-0"):
        assert yaml.safe_load(cluster.read(node, "/etc/rancher/k3s/registries.yaml")) == yaml.safe_load(REGISTRIES)
        assert cluster.ssh(node, "stat -c %a /etc/rancher/k3s/registries.yaml").stdout.strip() == "600"
    assert cluster.read("server-0", "/var/lib/rancher/k3s/server/manifests/lab-extra.yaml") == MANIFEST
    assert not cluster.exists("agent-0", "/var/lib/rancher/k3s/server/manifests/lab-extra.yaml")

    again = cluster.playbook("site.yml", VERSION)
    assert again.succeeded, describe(again)
    assert changes(again) == {"server-0": 0, "agent-0": 0}


def test_a_changed_registry_setting_reaches_the_nodes_and_restarts_k3s_once(cluster: NodeCluster) -> None:
    starts = {node: len(cluster.starts(node)) for node in ("server-0", "agent-0")}
    changed = REGISTRIES.replace("5000", "5443")
    cluster.set_cluster_vars({"registries_config_yaml": changed})
    result = cluster.playbook("site.yml", VERSION)
    assert result.succeeded, describe(result)
    for node in ("server-0", "agent-0"):
        assert yaml.safe_load(cluster.read(node, "/etc/rancher/k3s/registries.yaml")) == yaml.safe_load(changed)
        assert len(cluster.starts(node)) == starts[node] + 1


def test_reset_removes_the_firewall_rules_and_the_settings(cluster: NodeCluster) -> None:
    result = cluster.playbook("reset.yml", VERSION, {"reset_confirmation": "yes"})
    assert result.succeeded, describe(result)
    assert ufw_rules(cluster, "server-0") == []
    for node in ("server-0", "agent-0"):
        assert not cluster.exists(node, "/etc/rancher/k3s")
        assert not cluster.exists(node, "/var/lib/rancher/k3s/server/manifests")
