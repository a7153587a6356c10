"""The autoscaler's local power manager on real local nodes: it stops and starts a worker's container, never a
server's, and the worker's k3s agent (the labelled stand-in tests/doubles/k3s) registers with the server again
after the restart. Uses the tier's shared cluster (server-0, agent-0)."""

from __future__ import annotations

import json
import time

import pytest

from oscar_deploy.providers.power import Machine, ProviderPower
from oscar_deploy.support.errors import OperationError
from tests.nodes.harness import LocalCluster

pytestmark = [pytest.mark.nodes, pytest.mark.timeout(1500)]
NODES_FILE = "/var/lib/rancher/k3s/server/standin-nodes.json"
STARTS_LOG = "/var/lib/rancher/k3s/standin-starts.log"


def on_node(cluster: LocalCluster, node: str, command: str) -> str:
    result = cluster.cli("ssh", node, "--", command)
    assert result.returncode == 0, f"{node}: {command}: {result.stdout}{result.stderr}"
    return result.stdout.strip()


def registration(cluster: LocalCluster, node: str) -> dict[str, object]:
    nodes: dict[str, dict[str, object]] = json.loads(on_node(cluster, "server-0", f"cat {NODES_FILE}"))
    return nodes[node]


def agent_starts(cluster: LocalCluster) -> int:
    return sum(" agent " in line for line in on_node(cluster, "agent-0", f"cat {STARTS_LOG}").splitlines())


def test_local_power_manager_stops_and_starts_a_worker_whose_agent_registers_again(
    local_cluster: LocalCluster,
) -> None:
    power = ProviderPower(local_cluster.provider())
    power.power_on("agent-0")  # a no-op unless an earlier test left it stopped
    before = registration(local_cluster, "agent-0")
    starts = agent_starts(local_cluster)
    assert power.machines() == [Machine("agent-0", "on", "amd64")], "servers are never offered to the autoscaler"

    power.power_off("agent-0")
    assert local_cluster.inspect("agent-0")["State"]["Running"] is False
    assert power.machines() == [Machine("agent-0", "off", "amd64")]
    with pytest.raises(OperationError) as refused:
        power.power_off("server-0")
    assert str(refused.value) == "node server-0: a server; only workers are powered on and off"
    assert local_cluster.inspect("server-0")["State"]["Running"] is True

    power.power_on("agent-0")
    assert power.machines() == [Machine("agent-0", "on", "amd64")]
    deadline = time.monotonic() + 180
    while True:
        after = registration(local_cluster, "agent-0")
        if int(str(after["joins"])) > int(str(before["joins"])):
            break
        assert time.monotonic() < deadline, f"agent-0 did not register again after its restart: {after}"
        time.sleep(2)
    assert after["registered"] == before["registered"], "the same node, registered again, not a new one"
    assert str(after["joined"]) > str(before["joined"])
    assert agent_starts(local_cluster) == starts + 1
    assert on_node(local_cluster, "agent-0", "systemctl is-active k3s-agent") == "active"
