"""The life of a cluster through the playbooks, over SSH on amd64 local nodes, one scenario after the other on
the same nodes: install (with the Raspberry Pi path on the agent, whose model file says "Raspberry Pi 4"),
check mode, a version bump through site.yml, a rolling upgrade, scale out, remove a node (refused while a bound
local volume lives on it, stopped while a job still runs on it after node_drain_job_timeout; first in check mode),
reset (first in check mode).
The pods and PersistentVolumes the k3s stand-in's API serves are the ones each test writes on server-0.

The tests run in file order and each starts from the state the previous one left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oscar_deploy.nodes.ansible import PlaybookResult
from oscar_deploy.nodes.model import PlannedNode
from oscar_deploy.support.layers import layer_dir
from tests.nodes.k3s_nodes import PI_CMDLINE, PI_CMDLINE_FILE, PI_MODEL_FILE, NodeCluster, describe, file_sha256

pytestmark = pytest.mark.nodes

FIRST, SECOND, THIRD = "v1.33.3+k3s1", "v1.33.4+k3s1", "v1.34.1+k3s1"
PI_PARAMS = "cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1"
UNITS = {"server-0": "k3s", "agent-0": "k3s-agent", "agent-1": "k3s-agent"}
REMOVE_FILES = "Remove k3s files, units, configuration, data and the commands linked to k3s"
# Everything the roles put on a node, and what k3s itself makes there.
K3S_PATHS = (
    "/usr/local/bin/k3s",
    "/usr/local/bin/k3s-install.sh",
    "/usr/local/bin/kubectl",
    "/usr/local/bin/crictl",
    "/usr/local/bin/ctr",
    "/etc/systemd/system/k3s.service",
    "/etc/systemd/system/k3s-agent.service",
    "/etc/rancher",
    "/var/lib/rancher/k3s",
    "/var/lib/oscar-deploy",
    "/etc/modules-load.d/k3s.conf",
    "/etc/sysctl.d/90-k3s.conf",
    "/run/k3s",
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    nodes = NodeCluster("pblife", tmp_path_factory.mktemp("pblife"))
    try:
        nodes.apply([PlannedNode("server-0", "server", "amd64"), PlannedNode("agent-0", "agent", "amd64")])
        # agent-0 plays a Raspberry Pi 4: the device tree's model and a kernel command line to edit.
        nodes.ssh(
            "agent-0",
            f"mkdir -p /etc/oscar-test && printf 'Raspberry Pi 4 Model B Rev 1.4\\0' > {PI_MODEL_FILE}"
            f" && printf '%s' '{PI_CMDLINE}' > {PI_CMDLINE_FILE}",
        )
        yield nodes
    finally:
        assert nodes.destroy() == []


def changes(result: PlaybookResult) -> dict[str, int]:
    return {host: stats.changed for host, stats in result.stats.items()}


def pids(cluster: NodeCluster) -> dict[str, tuple[str, str]]:
    """Main PID and start time of each node's k3s unit."""
    found = {}
    for node in cluster.nodes:
        properties = cluster.service(node, UNITS[node])
        found[node] = (properties["MainPID"], properties["ExecMainStartTimestamp"])
    return found


def job_pod(name: str, node: str, phase: str = "Running") -> dict[str, Any]:
    """An OSCAR asynchronous invocation as the API shows it: the pod of a batch Job in oscar-svc."""
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "controller": True}
    return {
        "metadata": {"name": f"{name}-x7k2p", "namespace": "oscar-svc", "ownerReferences": [owner]},
        "spec": {"nodeName": node},
        "status": {"phase": phase},
    }


def deployment_pod(name: str, node: str) -> dict[str, Any]:
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{name}-5d8f", "controller": True}
    return {
        "metadata": {"name": f"{name}-5d8f-q2w", "namespace": "oscar", "ownerReferences": [owner]},
        "spec": {"nodeName": node},
        "status": {"phase": "Running"},
    }


def local_pv(name: str, node: str, claim: str | None, phase: str = "Bound") -> dict[str, Any]:
    """A volume of k3s' local-path StorageClass: its data is in a folder on `node`'s disk."""
    expression = {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
    spec: dict[str, Any] = {
        "storageClassName": "local-path",
        "hostPath": {"path": f"/var/lib/rancher/k3s/storage/{name}"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [expression]}]}},
    }
    if claim:
        spec["claimRef"] = {
            "kind": "PersistentVolumeClaim",
            "namespace": claim.split("/")[0],
            "name": claim.split("/")[1],
        }
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": phase}}


def messages(result: PlaybookResult) -> str:
    return "\n".join(problem.message for problem in result.problems)


def test_check_mode_on_fresh_nodes_reports_changes_and_makes_none(cluster: NodeCluster) -> None:
    result = cluster.playbook("site.yml", FIRST, check=True)
    assert result.succeeded, describe(result)
    assert all(changed > 0 for changed in changes(result).values()), changes(result)
    for node in cluster.nodes:
        assert [path for path in K3S_PATHS if cluster.exists(node, path)] == []
    assert cluster.read("agent-0", PI_CMDLINE_FILE) == PI_CMDLINE
    assert not cluster.kubeconfig.exists()


def test_install_prepares_the_raspberry_pi(cluster: NodeCluster) -> None:
    result = cluster.playbook("site.yml", FIRST)
    assert result.succeeded, describe(result)
    assert cluster.read("agent-0", PI_CMDLINE_FILE) == PI_CMDLINE.rstrip("\n") + f" {PI_PARAMS}\n"
    recorded = json.loads(cluster.read("agent-0", "/var/lib/oscar-deploy/raspberrypi-cmdline.json"))
    assert recorded == {"file": PI_CMDLINE_FILE, "added": PI_PARAMS.split()}
    # The reboot handler ran in its no-reboot form (raspberrypi_reboot=false): the board is marked instead.
    assert "RUNNING HANDLER [raspberrypi : Mark the board as needing a reboot]" in result.log_file.read_text()
    assert "kernel command line changed for k3s" in cluster.read("agent-0", "/run/reboot-required")
    # server-0 has no model file: not a Pi, nothing touched.
    assert not cluster.exists("server-0", "/run/reboot-required")
    assert not cluster.exists("server-0", "/var/lib/oscar-deploy/raspberrypi-cmdline.json")
    assert set(cluster.node_table()) == {"server-0", "agent-0"}


def test_check_mode_on_the_converged_cluster_reports_no_change(cluster: NodeCluster) -> None:
    before = pids(cluster)
    result = cluster.playbook("site.yml", FIRST, check=True)
    assert result.succeeded, describe(result)
    assert changes(result) == {"server-0": 0, "agent-0": 0}
    assert pids(cluster) == before


def test_check_mode_reports_a_version_bump_without_doing_it(cluster: NodeCluster) -> None:
    before = pids(cluster)
    result = cluster.playbook("site.yml", SECOND, check=True)
    assert result.succeeded, describe(result)
    assert all(changed > 0 for changed in changes(result).values()), changes(result)
    assert pids(cluster) == before
    assert cluster.sha256("agent-0", "/usr/local/bin/k3s") == file_sha256(cluster.bundle(FIRST) / "amd64" / "k3s")


def test_version_bump_reinstalls_and_restarts_each_node_once(cluster: NodeCluster) -> None:
    before = pids(cluster)
    starts = {node: len(cluster.starts(node)) for node in cluster.nodes}
    result = cluster.playbook("site.yml", SECOND)
    assert result.succeeded, describe(result)
    after = pids(cluster)
    for node in cluster.nodes:
        assert after[node] != before[node], node
        new_starts = cluster.starts(node)[starts[node] :]
        assert len(new_starts) == 1 and f" {SECOND} " in new_starts[0], new_starts
        assert cluster.sha256(node, "/usr/local/bin/k3s") == file_sha256(cluster.bundle(SECOND) / "amd64" / "k3s")
    assert {name: row[3] for name, row in cluster.node_table().items()} == {"server-0": SECOND, "agent-0": SECOND}

    again = cluster.playbook("site.yml", SECOND)
    assert again.succeeded, describe(again)
    assert changes(again) == {"server-0": 0, "agent-0": 0}
    assert pids(cluster) == after


def test_upgrade_drains_and_restarts_one_node_at_a_time(cluster: NodeCluster) -> None:
    """A bound local volume on a node does not hold its upgrade back: the node comes back with its disk."""
    cluster.set_api_objects("pvs", [local_pv("pvc-3f1a", "agent-0", "oscar/oscar-pvc")])
    calls_before = len(cluster.kubectl_calls("server-0"))
    result = cluster.playbook("upgrade.yml", THIRD)
    assert result.succeeded, describe(result)
    assert "local volume" not in result.log_file.read_text()
    calls = [" ".join(line.split()[2:4]) for line in cluster.kubectl_calls("server-0")[calls_before:]]
    steps = [call for call in calls if call.split()[0] in ("cordon", "drain", "uncordon")]
    # Servers first (serial 1), then the agents; each node cordoned, drained and uncordoned before the next.
    assert steps == [
        "cordon server-0",
        "drain server-0",
        "uncordon server-0",
        "cordon agent-0",
        "drain agent-0",
        "uncordon agent-0",
    ]
    assert {name: row for name, row in cluster.node_table().items()} == {
        "server-0": ["Ready", "control-plane,master", "1m", THIRD],
        "agent-0": ["Ready", "<none>", "1m", THIRD],
    }
    for node in cluster.nodes:
        assert sum(f" {THIRD} " in line for line in cluster.starts(node)) == 1

    again = cluster.playbook("upgrade.yml", THIRD)
    assert again.succeeded, describe(again)
    assert changes(again) == {"server-0": 0, "agent-0": 0}
    cluster.set_api_objects("pvs", [])


def test_scale_adds_a_node_without_touching_the_others(cluster: NodeCluster) -> None:
    before = pids(cluster)
    cluster.apply(
        [PlannedNode(name, node.role, node.arch) for name, node in cluster.nodes.items()]
        + [PlannedNode("agent-1", "agent", "amd64")]
    )
    result = cluster.playbook("scale.yml", THIRD)
    assert result.succeeded, describe(result)
    assert changes(result)["server-0"] == 0 and changes(result)["agent-0"] == 0
    assert changes(result)["agent-1"] > 0
    assert {node: pids(cluster)[node] for node in before} == before
    assert cluster.node_table()["agent-1"] == ["Ready", "<none>", "1m", THIRD]
    assert cluster.service("agent-1", "k3s-agent")["ActiveState"] == "active"

    again = cluster.playbook("scale.yml", THIRD)
    assert again.succeeded, describe(again)
    assert changes(again) == {"server-0": 0, "agent-0": 0, "agent-1": 0}


def present(cluster: NodeCluster, node: str) -> list[str]:
    """Which of K3S_PATHS exist on the node (one SSH call)."""
    paths = " ".join(K3S_PATHS)
    found = cluster.ssh(node, f'for p in {paths}; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done')
    return found.stdout.split()


def snapshot(cluster: NodeCluster) -> dict[str, Any]:
    """What a check-mode run of reset.yml or remove-node.yml must leave as it was: each node's files of K3S_PATHS,
    its k3s unit (main PID and start), its /etc/hosts and kernel command line, the API's node list, the kubeconfig."""
    return {
        "paths": {node: present(cluster, node) for node in cluster.nodes},
        "units": pids(cluster),
        "hosts": {node: cluster.read(node, "/etc/hosts") for node in cluster.nodes},
        "cmdline": cluster.read("agent-0", PI_CMDLINE_FILE),
        "nodes": cluster.node_table(),
        "kubeconfig": cluster.kubeconfig.is_file(),
    }


def assert_left_in_place(cluster: NodeCluster, node: str) -> None:
    """Nothing was removed: the node is in the API, schedulable, and its k3s runs."""
    assert cluster.node_table()[node] == ["Ready", "<none>", "1m", THIRD]
    assert cluster.exists(node, "/usr/local/bin/k3s")
    assert cluster.service(node, UNITS[node])["ActiveState"] == "active"


def test_remove_node_refuses_a_node_whose_disk_holds_a_bound_volume(cluster: NodeCluster) -> None:
    cluster.set_api_objects(
        "pvs",
        [
            local_pv("pvc-9e2b", "agent-1", "minio/data-minio-0"),
            local_pv("pvc-3f1a", "agent-0", "oscar/oscar-pvc"),  # another node's
            local_pv("pvc-77aa", "agent-1", None, phase="Available"),  # no data yet
        ],
    )
    try:
        calls_before = len(cluster.kubectl_calls("server-0"))
        result = cluster.playbook("remove-node.yml", THIRD, {"remove_node": "agent-1", "skip_confirmation": True})
    finally:
        cluster.set_api_objects("pvs", [])
    assert not result.succeeded
    assert (
        "agent-1 holds 1 bound local volume(s) its removal would destroy; nothing was changed. Move their data to "
        "another node first, or give it up with -e node_drain_allow_local_volume_loss=true (oscar-deploy scale "
        "--allow-local-volume-loss): PV pvc-9e2b (claim minio/data-minio-0)"
    ) in messages(result), describe(result)
    assert "pvc-3f1a" not in messages(result) and "pvc-77aa" not in messages(result)
    calls = [" ".join(line.split()[2:4]) for line in cluster.kubectl_calls("server-0")[calls_before:]]
    assert [call for call in calls if call.split()[0] in ("cordon", "drain", "delete")] == []
    assert_left_in_place(cluster, "agent-1")


def test_remove_node_stops_when_a_job_outlasts_the_timeout(cluster: NodeCluster) -> None:
    cluster.set_api_objects(
        "pods",
        [job_pod("cowsay-0a1b", "agent-1"), deployment_pod("oscar-ui", "agent-1"), job_pod("grayify-c3d4", "agent-0")],
    )
    try:
        calls_before = len(cluster.kubectl_calls("server-0"))
        result = cluster.playbook(
            "remove-node.yml",
            THIRD,
            {"remove_node": "agent-1", "skip_confirmation": True, "node_drain_job_timeout": 3},
        )
    finally:
        cluster.set_api_objects("pods", [])
    assert not result.succeeded
    log = result.log_file.read_text()
    assert "waiting up to 3 s (node_drain_job_timeout) for 1 job pod(s) to finish before the drain" in log
    assert (
        "agent-1: drain failed, the node is schedulable again and nothing was removed: agent-1: 1 job pod(s) still "
        "running after 3 s, OSCAR jobs a drain would kill; let them finish and run again, or raise "
        "node_drain_job_timeout: oscar-svc/cowsay-0a1b-x7k2p"
    ) in messages(result), describe(result)
    assert "oscar-ui" not in messages(result) and "grayify" not in messages(result)
    calls = [" ".join(line.split()[2:4]) for line in cluster.kubectl_calls("server-0")[calls_before:]]
    steps = [call for call in calls if call.split()[0] in ("cordon", "drain", "uncordon", "delete")]
    assert steps == ["cordon agent-1", "uncordon agent-1"]
    assert_left_in_place(cluster, "agent-1")


def finish_the_job_once_waited_for(cluster: NodeCluster, calls_before: int, job: dict[str, Any]) -> None:
    """The job ends while the role waits: once it listed the node's pods twice, the pod is Succeeded."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        calls = cluster.kubectl_calls("server-0")[calls_before:]
        if sum(" kubectl get pods " in f" {line} " for line in calls) >= 2:
            cluster.set_api_objects("pods", [{**job, "status": {"phase": "Succeeded"}}])
            return
        time.sleep(1)


REMOVE_AGENT_1 = {
    "remove_node": "agent-1",
    "skip_confirmation": True,
    "node_drain_job_timeout": 120,
    "node_drain_allow_local_volume_loss": True,
}


def test_remove_node_in_check_mode_reports_and_changes_nothing(cluster: NodeCluster) -> None:
    """The removal below, in check mode: it reports the job, the volume and what the reset would remove, does not
    wait for the job (nothing finishes it: a wait would fail after 120 s), and changes nothing anywhere."""
    cluster.set_api_objects("pods", [job_pod("cowsay-0a1b", "agent-1")])
    cluster.set_api_objects("pvs", [local_pv("pvc-9e2b", "agent-1", "minio/data-minio-0")])
    try:
        before = snapshot(cluster)
        calls_before = len(cluster.kubectl_calls("server-0"))
        result = cluster.playbook("remove-node.yml", THIRD, REMOVE_AGENT_1, check=True)
    finally:
        cluster.set_api_objects("pods", [])
        cluster.set_api_objects("pvs", [])
    assert result.succeeded, describe(result)
    log = result.log_file.read_text()
    assert "in check mode, not waiting for 1 job pod(s) to finish before the drain: oscar-svc/cowsay-0a1b" in log
    assert "the data of PV pvc-9e2b (claim minio/data-minio-0) goes with the node" in log
    # Only reads reached the API: no cordon, drain, uncordon or delete.
    calls = [" ".join(line.split()[2:4]) for line in cluster.kubectl_calls("server-0")[calls_before:]]
    assert {call.split()[0] for call in calls} == {"get"}, calls
    assert snapshot(cluster) == before
    assert_left_in_place(cluster, "agent-1")
    # The reset's removals are reported as changes of agent-1; nothing else would change.
    assert {host: changed for host, changed in changes(result).items() if host != "agent-1"} == {
        "localhost": 0,
        "server-0": 0,
    }
    would = {"Stop and disable the k3s units", REMOVE_FILES, "Remove the cluster nodes from /etc/hosts"}
    assert would <= set(result.changed_tasks["agent-1"]), result.changed_tasks


def test_remove_node_waits_for_the_job_then_drains_deletes_and_wipes_it(cluster: NodeCluster) -> None:
    """A job running on the node finishes first; the bound volume on it goes, as the override allows."""
    job = job_pod("cowsay-0a1b", "agent-1")
    cluster.set_api_objects("pods", [job])
    cluster.set_api_objects("pvs", [local_pv("pvc-9e2b", "agent-1", "minio/data-minio-0")])
    calls_before = len(cluster.kubectl_calls("server-0"))
    finisher = threading.Thread(target=finish_the_job_once_waited_for, args=(cluster, calls_before, job))
    finisher.start()
    try:
        result = cluster.playbook("remove-node.yml", THIRD, REMOVE_AGENT_1)
    finally:
        finisher.join()
        cluster.set_api_objects("pods", [])
        cluster.set_api_objects("pvs", [])
    assert result.succeeded, describe(result)
    log = result.log_file.read_text()
    assert "waiting up to 120 s (node_drain_job_timeout) for 1 job pod(s) to finish before the drain: " in log
    assert "the data of PV pvc-9e2b (claim minio/data-minio-0) goes with the node" in log
    calls = [" ".join(line.split()[2:4]) for line in cluster.kubectl_calls("server-0")[calls_before:]]
    steps = [call for call in calls if call.split()[0] in ("cordon", "drain", "delete")]
    assert steps == ["cordon agent-1", "drain agent-1", "delete node"]
    waits = calls[calls.index("cordon agent-1") : calls.index("drain agent-1")]
    assert waits.count("get pods") >= 3, calls  # listed, waited for at least once more, then found it finished
    assert set(cluster.node_table()) == {"server-0", "agent-0"}
    assert_wiped(cluster, "agent-1")
    cluster.forget("agent-1")


def test_reset_asks_first_and_stops_without_a_yes(cluster: NodeCluster) -> None:
    """Without reset_confirmation=yes reset.yml asks; with no one to answer (stdin not a terminal) it stops."""
    playbooks = layer_dir("playbooks")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(cluster.state.inventory_file), "reset.yml"],
        cwd=playbooks,
        env={**os.environ, "ANSIBLE_CONFIG": str(playbooks / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "reset cancelled (pass -e reset_confirmation=yes to skip the question)" in result.stdout
    assert "PLAY [Reset the nodes]" not in result.stdout
    assert cluster.exists("server-0", "/usr/local/bin/k3s")


CLEANUP = "Stop what k3s left running and undo its network setup"


def test_reset_in_check_mode_reports_what_it_would_remove_and_removes_nothing(cluster: NodeCluster) -> None:
    # The interface flannel makes on a real node (the stand-in makes none), for the network cleanup to report.
    cluster.ssh("server-0", "ip link add cni0 type bridge")
    before = snapshot(cluster)
    assert before["kubeconfig"] and all(before["paths"].values()), before
    result = cluster.playbook("reset.yml", THIRD, {"reset_confirmation": "yes"}, check=True)
    assert result.succeeded, describe(result)
    assert snapshot(cluster) == before
    assert cluster.ssh("server-0", "ip link show cni0", check=False).returncode == 0, "check mode deleted it"
    assert CLEANUP in result.changed_tasks["server-0"], "the cleanup reports the interface it would delete"
    assert CLEANUP not in result.changed_tasks["agent-0"]
    would = {"Stop and disable the k3s units", REMOVE_FILES, "Remove the cluster nodes from /etc/hosts"}
    for node in cluster.nodes:
        assert would <= set(result.changed_tasks.get(node, [])), result.changed_tasks
    # agent-0's Raspberry Pi parameters would go from its kernel command line; server-0 is no Pi.
    assert "Remove the parameters added to the kernel command line" in result.changed_tasks["agent-0"]
    assert "Remove the parameters added to the kernel command line" not in result.changed_tasks["server-0"]
    assert result.changed_tasks["localhost"] == ["Remove the kubeconfig written on the controller"]


def test_reset_removes_everything_the_roles_added(cluster: NodeCluster) -> None:
    assert cluster.kubeconfig.is_file()
    result = cluster.playbook("reset.yml", THIRD, {"reset_confirmation": "yes"})
    assert result.succeeded, describe(result)
    for node in cluster.nodes:
        assert_wiped(cluster, node)
    assert result.changed_tasks["server-0"].count(CLEANUP) == 1
    assert cluster.ssh("server-0", "ip link show cni0", check=False).returncode != 0, "the cleanup deleted cni0"
    assert cluster.read("agent-0", PI_CMDLINE_FILE) == PI_CMDLINE
    assert not cluster.kubeconfig.exists()

    again = cluster.playbook("reset.yml", THIRD, {"reset_confirmation": "yes"})
    assert again.succeeded, describe(again)
    assert changes(again) == {"server-0": 0, "agent-0": 0, "localhost": 0}


def test_without_a_bundle_each_node_downloads_and_checks_the_binary(cluster: NodeCluster) -> None:
    """No bundle: each node downloads the pinned binary from the release URL and checks it against the release's
    sha256sum file. A release folder served by server-0 stands in for GitHub's (tests talk only to test nodes)."""
    good, bad = cluster.bundle(FIRST), cluster.bundle(SECOND)
    releases = "/srv/oscar-test-releases"
    cluster.upload("server-0", f"{releases}/{FIRST}/k3s", (good / "amd64" / "k3s").read_bytes())
    cluster.upload(
        "server-0", f"{releases}/{FIRST}/sha256sum-amd64.txt", (good / "amd64" / "sha256sum-amd64.txt").read_bytes()
    )
    # A release whose binary does not match its published checksum: a damaged or tampered download.
    cluster.upload("server-0", f"{releases}/{SECOND}/k3s", (bad / "amd64" / "k3s").read_bytes())
    cluster.upload("server-0", f"{releases}/{SECOND}/sha256sum-amd64.txt", b"0" * 64 + b"  k3s\n")
    cluster.ssh(
        "server-0", f"systemd-run --unit oscar-test-releases python3 -m http.server 8080 --directory {releases}"
    )
    url = {"k3s_airgap_dir": "", "k3s_release_url": f"http://{cluster.nodes['server-0'].address}:8080"}

    result = cluster.playbook("kubernetes.yml", FIRST, url)
    assert result.succeeded, describe(result)
    for node in cluster.nodes:
        assert cluster.sha256(node, "/usr/local/bin/k3s") == file_sha256(good / "amd64" / "k3s")
        assert not cluster.exists(node, "/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst")
        assert not cluster.exists(node, "/usr/local/bin/k3s-install.sh")

    refused = cluster.playbook("kubernetes.yml", SECOND, url, limit="agent-0")
    assert not refused.succeeded
    [problem] = refused.problems
    assert (problem.host, problem.task) == ("agent-0", "Download the pinned k3s binary")
    assert "checksum" in problem.message.lower(), problem.message
    assert cluster.sha256("agent-0", "/usr/local/bin/k3s") == file_sha256(good / "amd64" / "k3s")


def assert_wiped(cluster: NodeCluster, node: str) -> None:
    left = [path for path in K3S_PATHS if cluster.exists(node, path)]
    assert left == [], f"{node}: left behind {left}"
    units = cluster.ssh(node, "systemctl list-unit-files --no-legend 'k3s*'", check=False).stdout
    assert units.strip() == "", units
    assert "k3s cluster nodes" not in cluster.read(node, "/etc/hosts")
    processes = cluster.ssh(node, "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '").stdout
    assert "/usr/local/bin/k3s " not in processes
