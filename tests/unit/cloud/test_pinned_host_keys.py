"""A cloud node answering with a host key other than the pinned one, through the real ssh client and real Ansible.

The node is an SSH server on 127.0.0.1 (tests/doubles/ssh_server.py, a labelled asyncssh double of the VM's
sshd) with either the key oscar-deploy pinned for it or another one; the provider's own state folder files
(ssh/config, ssh/known_hosts, written by `CloudProvider._save` as after a stack update) are what ssh uses. The
node listens on a port other than 22, so ssh looks its key up under `[127.0.0.1]:PORT` first and then under the
pinned `127.0.0.1`: a key of another machine is then `No ED25519 host key is known for [127.0.0.1]:PORT`. The
changed-key banner (a key pinned under the very name ssh looks up, as for a VM on port 22) is checked too.
"""

from __future__ import annotations

import getpass
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from oscar_deploy.nodes.hostkeys import RefusedHostKey
from oscar_deploy.nodes.inventory import write_inventory
from oscar_deploy.nodes.k3s import K3sLayer
from oscar_deploy.nodes.model import Node
from oscar_deploy.pipeline.cluster import cluster_provider
from oscar_deploy.providers import cloud
from oscar_deploy.providers.base import SshProbe, probe_ssh
from oscar_deploy.providers.cloud import REFUSED_KEY_ANSWERS, CloudProvider
from oscar_deploy.providers.vm import HostKey, NodeRecord, generate_host_key
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.progress import Progress
from tests.doubles.ssh_server import SshServer

SPEC = "name: lab\ntarget: openstack\nworkers: {initial: 1, max: 3}\nopenstack: {cloud: egi}\n"


@dataclass
class Cluster:
    state: ClusterState
    provider: CloudProvider
    pinned: HostKey

    def serve(self, host_key: HostKey) -> SshServer:
        return SshServer(host_key.private, self.state.ssh_public_key.read_text())

    def node(self, server: SshServer) -> Node:
        """server-0 as the provider reports it, reached on the double's port."""
        return replace(self.provider.nodes()[0], ssh_port=server.port)

    def advice(self, port: int) -> str:
        return (
            f"127.0.0.1:{port} answers SSH with a host key other than the one pinned for it in "
            f"{self.state.known_hosts_file} when oscar-deploy made its VM: the VM was rebuilt or replaced outside "
            "oscar-deploy, or another machine holds that address; check in the cloud's console which VM holds it: if "
            "another VM, give the address back to the cluster's VM; if the cluster's VM was rebuilt, delete it and "
            "run `oscar-deploy up` (a worker is made again under its pinned key; for a server, up says how to make "
            "the cluster anew); editing known_hosts does not help: up writes the pinned keys there again"
        )


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """A cluster whose stack has server-0 at 127.0.0.1 with a pinned host key; polls 100 times a second."""
    monkeypatch.setattr(cloud, "SSH_POLL_SECONDS", 0.01)
    state = ClusterState("lab", root=tmp_path / "state")
    provider = cluster_provider(parse_spec(SPEC), state, Progress())
    assert isinstance(provider, CloudProvider)
    state.ensure_ssh_keypair()
    pinned = generate_host_key("root@lab-server-0")
    record = NodeRecord(
        name="server-0",
        vm_name="lab-server-0",
        role="server",
        arch="amd64",
        private_address="127.0.0.1",
        public_address="127.0.0.1",
        ssh_user=getpass.getuser(),
        jump_host=None,
        host_key=pinned.public,
        instance_id="vm-server-0",
    )
    provider._save([record], {"server-0": "running"})
    return Cluster(state, provider, pinned)


@pytest.fixture
def impostor(cluster: Cluster) -> Iterator[SshServer]:
    """Another machine at the node's address: same login, another host key."""
    server = cluster.serve(generate_host_key("root@impostor"))
    yield server
    server.stop()


@pytest.fixture
def counted_probes(monkeypatch: pytest.MonkeyPatch) -> list[SshProbe]:
    """Every probe `wait_for_ssh` makes, as it came back."""
    probes: list[SshProbe] = []
    probe = CloudProvider._probe_ssh

    def counting(provider: CloudProvider, node: Node) -> SshProbe:
        probes.append(probe(provider, node))
        return probes[-1]

    monkeypatch.setattr(CloudProvider, "_probe_ssh", counting)
    return probes


def test_the_wait_ends_when_the_node_answers_with_its_pinned_key(cluster: Cluster) -> None:
    server = cluster.serve(cluster.pinned)
    try:
        cluster.provider.wait_for_ssh([cluster.node(server)], timeout=30)
    finally:
        server.stop()
    assert server.logins == 1


def test_a_node_that_keeps_answering_with_another_key_is_named_at_once(
    cluster: Cluster, impostor: SshServer, counted_probes: list[SshProbe]
) -> None:
    with pytest.raises(OperationError) as refused:
        cluster.provider.wait_for_ssh([cluster.node(impostor)], timeout=600)
    assert str(refused.value) == f"node server-0 (127.0.0.1:{impostor.port}): {cluster.advice(impostor.port)}"
    # The key is pinned under the bare address, and ssh looks a host on another port up as [ADDRESS]:PORT.
    unknown = RefusedHostKey(f"127.0.0.1:{impostor.port}", f"[127.0.0.1]:{impostor.port}", unknown=True)
    assert counted_probes == [SshProbe(False, unknown)] * REFUSED_KEY_ANSWERS
    assert impostor.logins == 0
    assert cluster.state.known_hosts_file.read_text() == f"127.0.0.1 {cluster.pinned.public}\n", "nothing was added"


def test_at_the_deadline_a_node_whose_last_answer_refused_its_key_is_named_for_that(
    cluster: Cluster, impostor: SshServer, counted_probes: list[SshProbe]
) -> None:
    with pytest.raises(OperationError) as refused:
        cluster.provider.wait_for_ssh([cluster.node(impostor)], timeout=0)
    assert str(refused.value) == f"node server-0 (127.0.0.1:{impostor.port}): {cluster.advice(impostor.port)}"
    assert len(counted_probes) == 1


def test_at_the_deadline_a_node_that_never_answered_is_named_as_silent(cluster: Cluster) -> None:
    server = cluster.serve(cluster.pinned)
    node = cluster.node(server)
    server.stop()
    with pytest.raises(OperationError) as silent:
        cluster.provider.wait_for_ssh([node], timeout=0)
    assert str(silent.value) == (
        f"node server-0 (127.0.0.1:{node.ssh_port}): no SSH answer in 0 s; check the VM's console log in the "
        "cloud's dashboard and that 127.0.0.1 is reachable from here, then run `oscar-deploy up` again"
    )


def test_a_changed_key_pinned_under_the_name_ssh_looks_up_is_refused_as_changed(
    cluster: Cluster, impostor: SshServer
) -> None:
    known_hosts = cluster.state.known_hosts_file
    known_hosts.write_text(f"[127.0.0.1]:{impostor.port} {cluster.pinned.public}\n")
    command = cluster.provider.ssh_command(cluster.node(impostor), ["true"])
    said = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert said.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in said.stderr, said.stderr
    assert probe_ssh(command, connect_timeout=10, timeout=60) == SshProbe(
        False, RefusedHostKey(f"127.0.0.1:{impostor.port}", f"[127.0.0.1]:{impostor.port}")
    )


def test_ansible_names_the_node_whose_pinned_key_ssh_refused_with_the_fix(
    cluster: Cluster, impostor: SshServer
) -> None:
    """A real playbook run through the k3s layer, as `up` makes it, against the inventory `up` writes: Ansible's
    ssh keeps the pinned key's check (ansible-runner would turn it off), so nothing is run on the impostor."""
    write_inventory(cluster.state, [cluster.node(impostor)], cluster.provider.ssh_common_args)
    layer = K3sLayer(cluster.state, cluster.state.inventory_file, "v1.31.12+k3s1")
    with pytest.raises(OperationError) as refused:
        layer.run("prepare.yml")
    assert str(refused.value).splitlines()[0] == (
        f"server-0 (127.0.0.1:{impostor.port}): unreachable: {cluster.advice(impostor.port)}"
    )
    assert impostor.logins == 0
    assert cluster.state.known_hosts_file.read_text() == f"127.0.0.1 {cluster.pinned.public}\n", "nothing was added"


def test_without_keys_pinned_in_the_state_folder_ansibles_line_is_that_of_a_host_you_own(
    cluster: Cluster, impostor: SshServer
) -> None:
    """A state folder without known_hosts is no cloud cluster's: its hosts' keys were not pinned by oscar-deploy,
    so a refusal gets the advice for hosts you own (here, strict checking met a key not recorded yet)."""
    write_inventory(cluster.state, [cluster.node(impostor)], cluster.provider.ssh_common_args)
    cluster.state.known_hosts_file.unlink()
    layer = K3sLayer(cluster.state, cluster.state.inventory_file, "v1.31.12+k3s1")
    with pytest.raises(OperationError) as refused:
        layer.run("prepare.yml")
    assert str(refused.value).splitlines()[0] == (
        f"server-0 (127.0.0.1:{impostor.port}): unreachable: 127.0.0.1:{impostor.port} answers SSH with a host key "
        "your known_hosts does not hold, and its SSH options ask for strict checking (StrictHostKeyChecking=yes): "
        "check the key's fingerprint and record it (connect once with ssh), or leave that option out so that the "
        "first connection records it"
    )
    assert impostor.logins == 0


@dataclass
class ScriptedProbes:
    """A test double of `CloudProvider._probe_ssh`: by node name, the probes `wait_for_ssh` gets in order (the
    last one repeats; a node without a script stays silent), and the names probed, in order."""

    scripts: dict[str, list[SshProbe]]
    probed: list[str]


SILENT = SshProbe(False)
ANSWERED = SshProbe(True)


def _refused(host: str) -> SshProbe:
    return SshProbe(False, RefusedHostKey(host, host))


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedProbes:
    probes = ScriptedProbes({}, [])

    def probe(provider: CloudProvider, node: Node) -> SshProbe:
        probes.probed.append(node.name)
        script = probes.scripts.get(node.name) or [SILENT]
        return script.pop(0) if len(script) > 1 else script[0]

    monkeypatch.setattr(CloudProvider, "_probe_ssh", probe)
    return probes


def _on_port_22(cluster: Cluster, name: str, address: str) -> Node:
    return replace(cluster.provider.nodes()[0], name=name, ssh_host=address, ssh_port=22)


def _pinned_advice(cluster: Cluster, answering: str) -> str:
    return cluster.advice(0).replace("127.0.0.1:0", answering, 1)


def test_an_answer_without_a_refused_key_starts_the_count_of_refusals_again(
    cluster: Cluster, scripted: ScriptedProbes
) -> None:
    scripted.scripts["server-0"] = [_refused("203.0.113.7")] * 2 + [SILENT] + [_refused("203.0.113.7")] * 3
    with pytest.raises(OperationError) as refused:
        cluster.provider.wait_for_ssh([_on_port_22(cluster, "server-0", "203.0.113.7")], timeout=5)
    assert str(refused.value) == f"node server-0 (203.0.113.7): {_pinned_advice(cluster, '203.0.113.7')}"
    assert len(scripted.probed) == 6


def test_a_node_answering_after_refusals_ends_the_wait(cluster: Cluster, scripted: ScriptedProbes) -> None:
    scripted.scripts["server-0"] = [_refused("203.0.113.7")] * (REFUSED_KEY_ANSWERS - 1) + [ANSWERED]
    cluster.provider.wait_for_ssh([_on_port_22(cluster, "server-0", "203.0.113.7")], timeout=5)
    assert len(scripted.probed) == REFUSED_KEY_ANSWERS


def test_a_node_refusing_its_key_is_named_before_a_silent_one_and_one_that_answered_is_not_probed_again(
    cluster: Cluster, scripted: ScriptedProbes
) -> None:
    """server-0 is probed first (the jump host of the others) and stays silent; agent-1 answers at once; for
    agent-2, ssh refuses the key of the jump host on the way to it."""
    nodes = [
        _on_port_22(cluster, "agent-2", "10.0.0.12"),
        _on_port_22(cluster, "agent-1", "10.0.0.11"),
        _on_port_22(cluster, "server-0", "203.0.113.5"),
    ]
    scripted.scripts["agent-1"] = [ANSWERED]
    scripted.scripts["agent-2"] = [_refused("203.0.113.5")]
    with pytest.raises(OperationError) as refused:
        cluster.provider.wait_for_ssh(nodes, timeout=5)
    assert str(refused.value) == (
        f"node agent-2 (10.0.0.12): {_pinned_advice(cluster, '203.0.113.5 (the jump host on the way to it)')}"
    )
    rounds_after_the_first = ["server-0", "agent-2"] * (REFUSED_KEY_ANSWERS - 1)
    assert scripted.probed == ["server-0", "agent-1", "agent-2", *rounds_after_the_first]


def test_at_the_deadline_a_node_refused_once_is_named_for_that_before_a_silent_one(
    cluster: Cluster, scripted: ScriptedProbes
) -> None:
    nodes = [_on_port_22(cluster, "server-0", "203.0.113.5"), _on_port_22(cluster, "agent-1", "10.0.0.11")]
    scripted.scripts["agent-1"] = [_refused("10.0.0.11")]
    with pytest.raises(OperationError) as refused:
        cluster.provider.wait_for_ssh(nodes, timeout=0)
    assert str(refused.value) == f"node agent-1 (10.0.0.11): {_pinned_advice(cluster, '10.0.0.11')}"
    assert scripted.probed == ["server-0", "agent-1"]


def test_at_the_deadline_the_first_silent_node_is_named_with_its_address_on_port_22(
    cluster: Cluster, scripted: ScriptedProbes
) -> None:
    nodes = [_on_port_22(cluster, "agent-1", "10.0.0.11"), _on_port_22(cluster, "server-0", "203.0.113.5")]
    with pytest.raises(OperationError) as silent:
        cluster.provider.wait_for_ssh(nodes, timeout=0)
    assert str(silent.value) == (
        "node server-0 (203.0.113.5): no SSH answer in 0 s; check the VM's console log in the cloud's dashboard and "
        "that 203.0.113.5 is reachable from here, then run `oscar-deploy up` again"
    )
    assert scripted.probed == ["server-0", "agent-1"]


@pytest.fixture
def fake_ssh(tmp_path: Path) -> Path:
    """A test double of ssh: records its arguments, then does what ./script says (shell)."""
    ssh = tmp_path / "ssh"
    ssh.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\n. {tmp_path}/script\n')
    ssh.chmod(0o755)
    return ssh


def test_probe_ssh_asks_nothing_and_tells_an_answer_a_refused_key_and_a_timeout_apart(
    fake_ssh: Path, tmp_path: Path
) -> None:
    script = tmp_path / "script"
    command = [str(fake_ssh), "-p", "2222", "ops@203.0.113.7", "true"]
    script.write_text("exit 0\n")
    assert probe_ssh(command, connect_timeout=7, timeout=30) == SshProbe(True, None)
    assert (tmp_path / "argv").read_text().splitlines() == [
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=7",
        "-p",
        "2222",
        "ops@203.0.113.7",
        "true",
    ]
    refusal = (  # after a byte that is no UTF-8
        "\\377 Host key for 203.0.113.7 has changed and you have requested strict checking.\\n"
        "Host key verification failed.\\n"
    )
    script.write_text(f"printf '{refusal}' >&2\nexit 255\n")
    assert probe_ssh(command, connect_timeout=7, timeout=30) == SshProbe(
        False, RefusedHostKey("203.0.113.7", "203.0.113.7")
    )
    script.write_text("echo 'ssh: connect to host 203.0.113.7 port 2222: Connection refused' >&2\nexit 255\n")
    assert probe_ssh(command, connect_timeout=7, timeout=30) == SshProbe(False, None)
    script.write_text("exec sleep 30\n")
    assert probe_ssh(command, connect_timeout=7, timeout=0.5) == SshProbe(False, None)
