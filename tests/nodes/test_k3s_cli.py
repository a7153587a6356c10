"""The k3s layer through the CLI, for real over SSH against local nodes: `up`'s prepare and kubernetes phases,
`kubeconfig`, `scale --workers N` out and in, `edge reset` and `edge install` with an unreachable host.

k3s on the nodes is the labelled stand-in tests/doubles/k3s, from the air-gap bundle the harness builds.
"""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from oscar_deploy.providers.local.engine import CLUSTER_LABEL
from tests.nodes.harness import ClusterFactory, LocalCluster, engine

pytestmark = [pytest.mark.nodes, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def k3s_cluster(cluster_factory: ClusterFactory) -> LocalCluster:
    """server-0 and agent-0 with k3s, made by `up` (workers 0..3)."""
    return cluster_factory.create("k3scli", servers=1, workers=1)


def on_node(cluster: LocalCluster, node: str, command: str) -> str:
    result = cluster.cli("ssh", node, "--", command)
    assert result.returncode == 0, f"{node}: {command}: {result.stdout}{result.stderr}"
    return result.stdout.strip()


def test_up_installs_k3s_and_kubeconfig_merges(k3s_cluster: LocalCluster, tmp_path: Path) -> None:
    cluster = k3s_cluster
    journal = cluster.state.journal
    assert journal.completed("prepare") and journal.completed("kubernetes")
    assert on_node(cluster, "server-0", "systemctl is-active k3s") == "active"
    assert on_node(cluster, "agent-0", "systemctl is-active k3s-agent") == "active"
    logs = sorted(path.name for path in cluster.state.logs_dir.iterdir())
    assert any(name.endswith("-ansible-prepare.log") for name in logs)
    assert any(name.endswith("-ansible-kubernetes.log") for name in logs)
    token = cluster.state.secret("k3s_token")
    assert all(token not in path.read_text() for path in cluster.state.logs_dir.iterdir())

    printed = cluster.cli("kubeconfig")
    assert printed.returncode == 0, printed.stderr
    kubeconfig = Path(printed.stdout.strip())
    assert kubeconfig == cluster.state.kubeconfig_file
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    api_port = cluster.provider().nodes()[0].api_port
    assert server == f"https://127.0.0.1:{api_port}"

    home = tmp_path / "home"
    home.mkdir()
    merged = subprocess.run(
        [sys.executable, "-m", "oscar_deploy", "kubeconfig", "--merge"],
        cwd=cluster.workdir,
        env={**cluster.env, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert merged.returncode == 0, merged.stderr
    contexts = yaml.safe_load((home / ".kube" / "config").read_text())["contexts"]
    assert [context["name"] for context in contexts] == [cluster.name]

    again = cluster.cli("up", "--until", "kubernetes")
    assert again.returncode == 0, again.stderr
    assert "phase prepare: up to date (completed " in again.stderr
    assert "phase kubernetes: up to date (completed " in again.stderr
    assert "play:" not in again.stderr, "a converged cluster runs no playbook"


def test_scale_out_and_in_within_the_spec_range(k3s_cluster: LocalCluster) -> None:
    cluster = k3s_cluster
    too_many = cluster.cli("scale", "--workers", "4")
    assert too_many.returncode == 2
    assert f"--workers 4: above workers.max (3) of cluster {cluster.name}" in too_many.stderr

    starts_before = on_node(cluster, "agent-0", "cat /var/lib/rancher/k3s/standin-starts.log")
    grown = cluster.cli("scale", "--workers", "2")
    assert grown.returncode == 0, grown.stdout + grown.stderr
    assert f"cluster {cluster.name}: 2 worker(s); added agent-1" in grown.stdout
    assert "play: Join the new agents" in grown.stderr
    assert on_node(cluster, "agent-1", "systemctl is-active k3s-agent") == "active"
    nodes = on_node(cluster, "server-0", "k3s kubectl get nodes --no-headers")
    assert "agent-1" in nodes and "agent-0" in nodes
    # The running agent was not touched: the stand-in records one line per start of the service.
    assert on_node(cluster, "agent-0", "cat /var/lib/rancher/k3s/standin-starts.log") == starts_before

    shrunk = cluster.cli("scale", "--workers", "1")
    assert shrunk.returncode == 0, shrunk.stdout + shrunk.stderr
    assert "drained and removed agent-1" in shrunk.stdout
    kubectl_calls = on_node(cluster, "server-0", "cat /var/lib/rancher/k3s/standin-kubectl.log")
    drain = next(i for i, line in enumerate(kubectl_calls.splitlines()) if "drain agent-1" in line)
    delete = next(i for i, line in enumerate(kubectl_calls.splitlines()) if "delete node agent-1" in line)
    assert drain < delete, "drained before it was deleted"
    assert "agent-1" not in on_node(cluster, "server-0", "k3s kubectl get nodes --no-headers")
    assert [node.name for node in cluster.provider().nodes()] == ["server-0", "agent-0"]
    assert f"oscar-{cluster.name}-agent-1-data" not in engine().volumes(f"{CLUSTER_LABEL}={cluster.name}")

    listed = cluster.cli("status", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(node["name"], node["state"]) for node in json.loads(listed.stdout)["nodes"]] == [
        ("server-0", "running"),
        ("agent-0", "running"),
    ]

    kept = cluster.cli("up", "--until", "kubernetes")
    assert kept.returncode == 0, kept.stderr
    assert "provision: all 2 node(s) present" in kept.stdout
    assert "phase prepare: up to date" in kept.stderr, "the scaled count is desired state: up keeps it"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_edge_reset_then_install_with_an_unreachable_host(k3s_cluster: LocalCluster) -> None:
    cluster = k3s_cluster
    edge_name = f"{cluster.name}-edge"
    refused = cluster.cli("edge", "reset", "-i", str(cluster.inventory), "--name", edge_name)
    assert refused.returncode == 2
    assert "no terminal to confirm on, pass --yes" in refused.stderr

    reset = cluster.cli("edge", "reset", "-i", str(cluster.inventory), "--name", edge_name, "--yes")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert cluster.cli("ssh", "server-0", "--", "systemctl is-active k3s").stdout.strip() != "active"

    # A k3s-io/k3s-ansible style inventory, as users write them: the server is a real node, the agent a host
    # whose SSH port nobody listens on.
    server = yaml.safe_load(cluster.inventory.read_text())["k3s_cluster"]["children"]["server"]["hosts"]["server-0"]
    port = closed_port()
    inventory = cluster.workdir / "boards.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "k3s_cluster": {
                    "children": {
                        "server": {"hosts": {"server-0": server}},
                        "agent": {"hosts": {"ghost": {"ansible_host": "127.0.0.1", "ansible_port": port}}},
                    },
                    "vars": {"ansible_user": "root"},
                }
            }
        )
    )
    installed = cluster.cli("edge", "install", "-i", "boards.yml", "--name", edge_name, "--until", "kubernetes")
    assert installed.returncode == 1, installed.stdout + installed.stderr
    errors = [line for line in installed.stderr.splitlines() if line.startswith("error: ")]
    assert errors[0].startswith(f"error: ghost (127.0.0.1:{port}): unreachable: ")
    assert errors[0].endswith("; check SSH to it")
    assert errors[1] == "error: the other hosts completed and keep their work: server-0"
    assert errors[2].startswith("error: full log: ")
    assert not (cluster.home / edge_name / "kubeconfig").is_file(), "k3s waits until every host is prepared"

    # Fixed by taking the dead host out of the inventory: the next run resumes and converges.
    data = yaml.safe_load(inventory.read_text())
    del data["k3s_cluster"]["children"]["agent"]["hosts"]["ghost"]
    inventory.write_text(yaml.safe_dump(data))
    fixed = cluster.cli("edge", "install", "-i", "boards.yml", "--name", edge_name, "--until", "kubernetes")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert on_node(cluster, "server-0", "systemctl is-active k3s") == "active"
    assert (cluster.home / edge_name / "kubeconfig").is_file()
    listed = cluster.cli("status", "-c", edge_name)
    assert listed.returncode == 0, listed.stderr
    nodes = [line.split()[:2] for line in listed.stdout.splitlines()[2:] if not line.startswith("platform:")]
    assert nodes == [["server-0", "server"]]
