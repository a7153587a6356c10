"""Re-runs of site.yml over SSH on amd64 local nodes: a converged node is left alone after one call (the roles
recorded what they converged it to), a node that drifted since (a configuration file edited by hand, the k3s
binary replaced, the service stopped) is found, repaired and then left alone again, and `k3s_check_drift=true`
runs every role on every node. The tests run in file order on the same two nodes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oscar_deploy.nodes.model import PlannedNode
from tests.nodes.k3s_nodes import NodeCluster, changes, describe, file_sha256, role_tasks

pytestmark = pytest.mark.nodes

VERSION = "v1.33.3+k3s1"
NODES = ("server-0", "agent-0")
UNITS = {"server-0": "k3s", "agent-0": "k3s-agent"}
ROLES = {
    "server-0": {"prereq", "raspberrypi", "airgap", "k3s_server"},
    "agent-0": {"prereq", "raspberrypi", "airgap", "k3s_agent"},
}
# What runs on a converged node: the one call of the probe, the checks, the plan.
CHECK_ROLES = {"k3s", "validate"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    nodes = NodeCluster("pbconv", tmp_path_factory.mktemp("pbconv"))
    try:
        nodes.apply([PlannedNode("server-0", "server", "amd64"), PlannedNode("agent-0", "agent", "amd64")])
        first = nodes.playbook("site.yml", VERSION)
        assert first.succeeded, describe(first)
        yield nodes
    finally:
        assert nodes.destroy() == []


def main_pids(cluster: NodeCluster) -> dict[str, str]:
    return {node: cluster.service(node, UNITS[node])["MainPID"] for node in NODES}


def test_the_roles_record_what_they_converged_each_node_to(cluster: NodeCluster) -> None:
    for node in NODES:
        records = cluster.ssh(node, "ls /var/lib/oscar-deploy/converged").stdout.split()
        assert set(records) == ROLES[node]
        record = cluster.read(
            node, f"/var/lib/oscar-deploy/converged/{'k3s_server' if node == 'server-0' else 'k3s_agent'}"
        )
        assert record.splitlines()[0].startswith("inputs ") and len(record.splitlines()[0]) == len("inputs ") + 64
        assert f"service {UNITS[node]} active enabled" in record.splitlines()


def test_a_converged_node_is_left_alone_after_one_call(cluster: NodeCluster) -> None:
    before = main_pids(cluster)
    logins = {node: cluster.ssh_logins(node) for node in NODES}
    result = cluster.playbook("site.yml", VERSION)
    # One SSH connection per node for the whole run (multiplexing); counting adds its own.
    assert {node: cluster.ssh_logins(node) - logins[node] for node in NODES} == {"server-0": 2, "agent-0": 2}
    assert result.succeeded, describe(result)
    assert changes(result) == {"server-0": 0, "agent-0": 0}
    for node in NODES:
        assert role_tasks(result, node) <= CHECK_ROLES, role_tasks(result, node)
    assert main_pids(cluster) == before
    assert "k3s : Read the node and what the roles recorded on it" in result.log_file.read_text()


def test_a_configuration_edited_by_hand_is_put_back(cluster: NodeCluster) -> None:
    config = "/etc/rancher/k3s/config.yaml"
    wanted = cluster.read("agent-0", config)
    cluster.ssh("agent-0", f"echo 'node-label: [edited=by-hand]' >> {config}")
    starts = len(cluster.starts("agent-0"))
    result = cluster.playbook("site.yml", VERSION)
    assert result.succeeded, describe(result)
    log = result.log_file.read_text()
    assert f"agent-0: k3s_agent was file {config} " in log  # the drift report names the file
    assert cluster.read("agent-0", config) == wanted
    assert len(cluster.starts("agent-0")) == starts + 1  # restarted once, with the right configuration
    assert role_tasks(result, "agent-0") == CHECK_ROLES | {"k3s_agent"}
    # On server-0 only the wait for the restarted agent to be Ready again.
    assert role_tasks(result, "server-0") == CHECK_ROLES | {"k3s_server"}
    assert "TASK [k3s_server : Write the k3s server configuration]" not in log
    assert changes(result)["server-0"] == 0

    again = cluster.playbook("site.yml", VERSION)
    assert again.succeeded, describe(again)
    assert changes(again) == {"server-0": 0, "agent-0": 0}
    assert role_tasks(again, "agent-0") <= CHECK_ROLES


def test_a_replaced_binary_is_put_back_and_k3s_restarted_on_it(cluster: NodeCluster) -> None:
    bundled = file_sha256(cluster.bundle(VERSION) / "amd64" / "k3s")
    # Another k3s build in its place (here the stand-in of another version): what a hand-made upgrade does.
    other = (cluster.bundle("v1.33.4+k3s1") / "amd64" / "k3s").read_bytes()
    cluster.upload("server-0", "/usr/local/bin/k3s.other", other, mode="0755")
    cluster.ssh("server-0", "mv /usr/local/bin/k3s.other /usr/local/bin/k3s")
    starts = len(cluster.starts("server-0"))
    result = cluster.playbook("site.yml", VERSION)
    assert result.succeeded, describe(result)
    assert "server-0: airgap was file /usr/local/bin/k3s " in result.log_file.read_text()
    assert cluster.sha256("server-0", "/usr/local/bin/k3s") == bundled
    new_starts = cluster.starts("server-0")[starts:]
    assert len(new_starts) == 1 and f" {VERSION} " in new_starts[0], new_starts
    assert role_tasks(result, "server-0") == CHECK_ROLES | {"airgap", "k3s_server"}

    again = cluster.playbook("site.yml", VERSION)
    assert again.succeeded, describe(again)
    assert changes(again) == {"server-0": 0, "agent-0": 0}


def test_a_stopped_service_is_started_again(cluster: NodeCluster) -> None:
    cluster.ssh("agent-0", "systemctl stop k3s-agent")
    result = cluster.playbook("site.yml", VERSION)
    assert result.succeeded, describe(result)
    drift = "agent-0: k3s_agent was service k3s-agent active enabled | k3s_agent now service k3s-agent inactive enabled"
    assert drift in result.log_file.read_text()
    assert cluster.service("agent-0", "k3s-agent")["ActiveState"] == "active"
    assert changes(result)["agent-0"] > 0 and changes(result)["server-0"] == 0

    again = cluster.playbook("site.yml", VERSION)
    assert again.succeeded, describe(again)
    assert changes(again) == {"server-0": 0, "agent-0": 0}


def test_the_drift_check_runs_every_role_and_finds_what_the_records_hide(cluster: NodeCluster) -> None:
    """A change the records cannot show (here the record rewritten to match a hand-edited file) is invisible to
    a normal run; `k3s_check_drift=true` runs every role and puts it right, first in check mode (report only)."""
    config = "/etc/rancher/k3s/config.yaml"
    wanted = cluster.read("server-0", config)
    record = "/var/lib/oscar-deploy/converged/k3s_server"
    identity = cluster.ssh("server-0", f"stat -c 'file %n %i %s %Y %Z %a %u %g' {config}").stdout.strip()
    cluster.ssh(
        "server-0",
        f"echo 'node-label: [hidden=drift]' >> {config}"
        f" && new=$(stat -c 'file %n %i %s %Y %Z %a %u %g' {config})"
        f' && sed -i "s|^{identity}$|$new|" {record}',
    )
    unnoticed = cluster.playbook("site.yml", VERSION)
    assert unnoticed.succeeded, describe(unnoticed)
    assert changes(unnoticed) == {"server-0": 0, "agent-0": 0}
    assert "hidden=drift" in cluster.read("server-0", config)

    before = main_pids(cluster)
    reported = cluster.playbook("site.yml", VERSION, {"k3s_check_drift": True}, check=True)
    assert reported.succeeded, describe(reported)
    assert changes(reported)["server-0"] > 0 and changes(reported)["agent-0"] == 0
    assert "hidden=drift" in cluster.read("server-0", config)
    assert main_pids(cluster) == before

    repaired = cluster.playbook("site.yml", VERSION, {"k3s_check_drift": True})
    assert repaired.succeeded, describe(repaired)
    for node in NODES:
        assert role_tasks(repaired, node) >= ROLES[node] - {"raspberrypi"}, role_tasks(repaired, node)
    assert changes(repaired)["agent-0"] == 0
    assert cluster.read("server-0", config) == wanted

    after = main_pids(cluster)
    assert after["server-0"] != before["server-0"] and after["agent-0"] == before["agent-0"]
    again = cluster.playbook("site.yml", VERSION)
    assert again.succeeded, describe(again)
    assert changes(again) == {"server-0": 0, "agent-0": 0}
    assert main_pids(cluster) == after


def test_modules_are_pipelined_no_file_is_left_on_the_node_for_them(cluster: NodeCluster) -> None:
    """With pipelining a module goes to the node's Python on standard input: no temporary folder is made for it
    (without pipelining Ansible makes ~/.ansible/tmp and copies each module there first)."""
    cluster.ssh("server-0", "rm -rf /root/.ansible")
    cluster.kubeconfig.unlink()
    result = cluster.playbook("kubernetes.yml", VERSION, tags="kubeconfig")
    assert result.succeeded, describe(result)
    assert "TASK [k3s_server : Read the admin kubeconfig]" in result.log_file.read_text()
    assert cluster.kubeconfig.is_file()
    assert not cluster.exists("server-0", "/root/.ansible")
