"""Three servers and an agent from a k3s-io/k3s-ansible-style inventory (its `token`, `server_config_yaml` and
`extra_server_args` variables, taken as they are): the first server initialises embedded etcd, the others join
it, every server's certificate names every server, and a second run changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from oscar_deploy.nodes.model import PlannedNode
from tests.nodes.k3s_nodes import NodeCluster, describe

pytestmark = pytest.mark.nodes

VERSION = "v1.33.3+k3s1"
TOKEN = "k3sAnsibleStyleTokenFromTheInventory42"
SERVERS = ("server-0", "server-1", "server-2")


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    cluster = NodeCluster("pbha", tmp_path_factory.mktemp("pbha"))
    try:
        cluster.apply(
            [PlannedNode(name, "server", "amd64") for name in SERVERS] + [PlannedNode("agent-0", "agent", "amd64")]
        )
        cluster.set_cluster_vars(
            {
                "token": TOKEN,
                "server_config_yaml": "kube-apiserver-arg:\n  - audit-log-maxage=7\n",
                "extra_server_args": "--snapshotter=native",
            }
        )
        yield cluster
    finally:
        assert cluster.destroy() == []


def test_first_server_initialises_and_the_others_join(ha: NodeCluster) -> None:
    result = ha.playbook("site.yml", VERSION)
    assert result.succeeded, describe(result)
    addresses = [ha.nodes[name].address for name in SERVERS]
    configs = {name: yaml.safe_load(ha.read(name, "/etc/rancher/k3s/config.yaml")) for name in SERVERS}
    assert configs["server-0"]["cluster-init"] is True and "server" not in configs["server-0"]
    for name in SERVERS[1:]:
        assert configs[name]["server"] == f"https://{addresses[0]}:6443" and "cluster-init" not in configs[name]
    for name, config in configs.items():
        assert set(addresses) <= set(config["tls-san"]), name
        assert config["kube-apiserver-arg"] == ["audit-log-maxage=7"]
        assert "ExecStart=/usr/local/bin/k3s server --snapshotter=native" in ha.read(
            name, "/etc/systemd/system/k3s.service"
        )
    for name in (*SERVERS, "agent-0"):
        assert ha.read(name, "/etc/rancher/k3s/cluster-token").strip() == TOKEN
    table = ha.node_table()
    assert {name: row[:2] for name, row in table.items()} == {
        "server-0": ["Ready", "control-plane,master"],
        "server-1": ["Ready", "control-plane,master"],
        "server-2": ["Ready", "control-plane,master"],
        "agent-0": ["Ready", "<none>"],
    }


def test_second_run_changes_nothing(ha: NodeCluster) -> None:
    result = ha.playbook("site.yml", VERSION)
    assert result.succeeded, describe(result)
    assert {host: stats.changed for host, stats in result.stats.items()} == dict.fromkeys((*SERVERS, "agent-0"), 0)
