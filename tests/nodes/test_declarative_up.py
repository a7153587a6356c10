"""`up` as a declarative command on local nodes over real SSH: a k3s version edited in the spec rolls through
the nodes once, servers first, and `--check-drift` repairs a node edited by hand; and the static provider
(hosts you own, from an inventory) end to end: up, status, ssh, scale by inventory edit, down.

k3s on the nodes is the labelled stand-in tests/doubles/k3s, from air-gap bundles of stand-ins.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from oscar_deploy.nodes.model import PlannedNode
from tests.doubles.bundle import build_test_bundle
from tests.nodes.harness import VENV_BIN, ClusterFactory, LocalCluster
from tests.nodes.k3s_nodes import NodeCluster

pytestmark = [pytest.mark.nodes, pytest.mark.timeout(2400)]
SECOND = "v1.33.4+k3s1"


def run(cluster: LocalCluster, command: str) -> str:
    result = cluster.cli("ssh", *command.split(" ", 1)[:1], "--", command.split(" ", 1)[1])
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_k3s_version_edited_in_the_spec_rolls_through_each_node_once_servers_first(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory.create("bump", servers=1, workers=1)
    starts_before = {
        node: run(cluster, f"{node} cat /var/lib/rancher/k3s/standin-starts.log") for node in ("server-0", "agent-0")
    }
    kubectl_before = len(run(cluster, "server-0 cat /var/lib/rancher/k3s/standin-kubectl.log").splitlines())
    bundle = cluster.workdir / "second-bundle"
    build_test_bundle(bundle, SECOND, ("amd64",))
    cluster.spec_file.write_text(cluster.spec_file.read_text() + f"versions:\n  k3s: {SECOND}\n")

    planned = cluster.cli("plan", "--until", "kubernetes", "--bundle", str(bundle))
    assert planned.returncode == 0, planned.stderr
    assert "prepare: skipped: up to date" in planned.stdout
    assert "kubernetes: runs: changed: bundle" in planned.stdout
    assert f"k3s_version (v1.33.3+k3s1 -> {SECOND})" in planned.stdout

    bumped = cluster.cli("up", "--until", "kubernetes", "--bundle", str(bundle))
    assert bumped.returncode == 0, bumped.stdout + bumped.stderr
    assert f"kubernetes: upgraded k3s v1.33.3+k3s1 -> {SECOND} on agent-0, server-0" in bumped.stdout
    for node in ("server-0", "agent-0"):
        after = run(cluster, f"{node} cat /var/lib/rancher/k3s/standin-starts.log").splitlines()
        new = after[len(starts_before[node].splitlines()) :]
        assert len(new) == 1 and f" {SECOND} " in new[0], (node, new)
    calls = run(cluster, "server-0 cat /var/lib/rancher/k3s/standin-kubectl.log").splitlines()[kubectl_before:]
    steps = [" ".join(line.split()[2:4]) for line in calls if line.split()[2] in ("cordon", "drain", "uncordon")]
    assert steps == [
        "cordon server-0",
        "drain server-0",
        "uncordon server-0",
        "cordon agent-0",
        "drain agent-0",
        "uncordon agent-0",
    ]

    again = cluster.cli("up", "--until", "kubernetes", "--bundle", str(bundle))
    assert again.returncode == 0, again.stderr
    assert "phase kubernetes: up to date" in again.stderr

    # A converged `up` does not look at the nodes; `--check-drift` does, and puts back a file edited by hand.
    config = "/etc/rancher/k3s/config.yaml"
    wanted = run(cluster, f"agent-0 cat {config}")
    run(cluster, f"agent-0 echo 'node-label: [edited=by-hand]' >> {config}")
    checked = cluster.cli("up", "--until", "kubernetes", "--bundle", str(bundle), "--check-drift")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "phase kubernetes: drift check (--check-drift): every role on every node" in checked.stderr
    assert "prepare: 2 node(s) checked for drift: nothing had drifted\n" in checked.stdout
    assert "kubernetes: 2 node(s) checked for drift: repaired agent-0\n" in checked.stdout
    assert run(cluster, f"agent-0 cat {config}") == wanted


@pytest.fixture
def owned_hosts(tmp_path: Path) -> Iterator[NodeCluster]:
    """Three local nodes without k3s, standing for boards someone owns (reached as their inventory says)."""
    nodes = NodeCluster("owned", tmp_path / "nodes-state")
    try:
        nodes.apply(
            [
                PlannedNode(name, role, "amd64")
                for name, role in (("server-0", "server"), ("agent-0", "agent"), ("agent-1", "agent"))
            ]
        )
        yield nodes
    finally:
        nodes.destroy()


def test_static_provider_up_status_ssh_scale_by_inventory_and_down(
    owned_hosts: NodeCluster, cluster_factory: ClusterFactory, tmp_path: Path
) -> None:
    workdir = tmp_path / "owner"
    workdir.mkdir()
    boards = workdir / "boards.yml"
    boards.write_text(owned_hosts.state.inventory_file.read_text())
    name = f"ot{os.getpid()}-boards"
    (workdir / "cluster.yaml").write_text(f"name: {name}\ntarget: static\nstatic:\n  inventory: boards.yml\n")
    env = {
        **os.environ,
        "OSCAR_DEPLOY_HOME": str(tmp_path / "state"),
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        "OSCAR_DEPLOY_BUNDLE": str(cluster_factory.bundle),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "oscar_deploy", *args],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=1500,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    made = cli("up", "--until", "kubernetes")
    assert made.returncode == 0, made.stdout + made.stderr
    status = cli("status", "-c", name)
    assert status.returncode == 0, status.stderr
    rows = [line.split()[:4] for line in status.stdout.splitlines()[2:] if not line.startswith("platform:")]
    assert "platform: not installed; `oscar-deploy up` installs it" in status.stdout
    assert rows == [
        ["server-0", "server", "amd64", "running"],
        ["agent-0", "agent", "amd64", "running"],
        ["agent-1", "agent", "amd64", "running"],
    ]
    hostname = cli("ssh", "-c", name, "agent-1", "--", "hostname")
    assert (hostname.returncode, hostname.stdout.strip()) == (0, "agent-1")
    assert "agent-1" in owned_hosts.node_table()

    refused = cli("scale", "--workers", "1")
    assert refused.returncode == 2 and "scales by its inventory" in refused.stderr

    data = yaml.safe_load(boards.read_text())
    del data["k3s_cluster"]["children"]["agent"]["hosts"]["agent-1"]
    boards.write_text(yaml.safe_dump(data))
    shrunk = cli("up", "--until", "kubernetes")
    assert shrunk.returncode == 0, shrunk.stdout + shrunk.stderr
    assert "provision: drained and removed agent-1 (no longer wanted)" in shrunk.stdout
    assert "agent-1" not in owned_hosts.node_table()
    assert owned_hosts.service("agent-1", "k3s-agent")["ActiveState"] != "active"
    assert owned_hosts.service("agent-0", "k3s-agent")["ActiveState"] == "active"

    gone = cli("down", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "removed k3s from server-0" in gone.stdout
    assert owned_hosts.service("server-0", "k3s")["ActiveState"] != "active"
    assert not (tmp_path / "state" / name).exists()
    assert owned_hosts.ssh("server-0", "hostname").stdout.strip() == "server-0", "the hosts stay yours"
