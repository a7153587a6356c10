"""Provider `local`: each node is a podman container booting systemd and sshd, on a network of its cluster.

Names and labels make every resource findable:

* containers `oscar-<cluster>-<node>` (hostname `<node>`), network `oscar-<cluster>`, volumes
  `oscar-<cluster>-<node>-data` (k3s keeps its data off the overlay file system there);
* every one labelled `io.oscar-deploy.cluster=<cluster>`, so `down` and leak checks find them by label.

Ansible reaches nodes over real SSH with the cluster's key: each node's port 22 is published on 127.0.0.1 at
a free port chosen when the node is created (kept across restarts), and the first server's 6443 (the Kubernetes
API) and 443 (the platform's gateway) likewise.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from oscar_deploy.nodes.model import Node, NodeState, PlannedNode, Role, node_sort_key
from oscar_deploy.providers.base import ApplyResult, ScalingMode, counted_plan, probe_ssh
from oscar_deploy.providers.local.engine import CLUSTER_LABEL, ContainerEngine
from oscar_deploy.providers.local.host import HostProfile, local_host_profile
from oscar_deploy.providers.local.node_image import NodeImageBuilder
from oscar_deploy.spec.models import ClusterSpec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.checks import find_tool
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.progress import Progress

NODE_LABEL = "io.oscar-deploy.node"
ROLE_LABEL = "io.oscar-deploy.role"
ARCH_LABEL = "io.oscar-deploy.arch"
SSH_PORT_LABEL = "io.oscar-deploy.ssh-port"
API_PORT_LABEL = "io.oscar-deploy.api-port"
HTTPS_PORT_LABEL = "io.oscar-deploy.https-port"
LOOPBACK = "127.0.0.1"
SSH_USER = "root"
PORT_ATTEMPTS = 3
# Emulated arm64 nodes boot far slower than native ones.
SSH_WAIT_SECONDS = {"amd64": 180.0, "arm64": 600.0}
# Throwaway local nodes get new host keys each time they are created, on ports that other clusters reuse:
# known_hosts would only get in the way. Acceptable for local nodes only, never for remote hosts.
KNOWN_HOSTS_OFF = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
LOCAL_SSH_OPTIONS = (*KNOWN_HOSTS_OFF.split(), "-o", "LogLevel=ERROR")


def container_name(cluster: str, node: str) -> str:
    return f"oscar-{cluster}-{node}"


def network_name(cluster: str) -> str:
    return f"oscar-{cluster}"


def volume_name(cluster: str, node: str) -> str:
    return f"oscar-{cluster}-{node}-data"


def cluster_label(cluster: str) -> str:
    return f"{CLUSTER_LABEL}={cluster}"


def node_ip(subnet: ipaddress.IPv4Network, node: str) -> str:
    """A fixed address per node, so it survives restarts (k3s keeps a node's IP): servers from host .2,
    agents from host .10 (a /24 holds the 7 servers and 200 agents a spec allows)."""
    role, _, number = node.rpartition("-")
    index = (2 if role == "server" else 10) + int(number)
    if index >= subnet.num_addresses - 1:
        raise UserInputError(f"node {node}: no address left in {subnet}; use fewer workers")
    return str(subnet.network_address + index)


def free_loopback_port(taken: Iterable[int] = ()) -> int:
    """A TCP port nobody listens on at 127.0.0.1 now, and not in `taken`."""
    avoid = set(taken)
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOOPBACK, 0))
            port: int = probe.getsockname()[1]
        if port not in avoid:
            return port
    raise OperationError("no free TCP port on 127.0.0.1 for a node's SSH; close some programs and retry")


class LocalProvider:
    """Nodes of one cluster as podman containers on this machine."""

    ssh_common_args = KNOWN_HOSTS_OFF
    scaling: ScalingMode = "count"

    def __init__(
        self,
        state: ClusterState,
        engine: ContainerEngine | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.state = state
        self.cluster = state.name
        self.engine = engine or ContainerEngine.find()
        self.progress = progress or Progress()

    @classmethod
    def for_cluster(cls, spec: ClusterSpec, state: ClusterState, progress: Progress) -> LocalProvider:
        return cls(state, ContainerEngine.find(), progress)

    # --- Provider interface -------------------------------------------------------------------------------
    def plan(self, spec: ClusterSpec, workers: int) -> list[PlannedNode]:
        return counted_plan(spec, workers, self.nodes())

    def apply(self, plan: Sequence[PlannedNode]) -> ApplyResult:
        profile = self._host_profile({node.arch for node in plan})
        new_key = not self.state.ssh_private_key.is_file()
        self.state.ensure_ssh_keypair()
        existing = {node.name: node for node in self.nodes()}
        if new_key:  # the state folder was lost while nodes survived: let the new key in
            for name in existing:
                self._authorize_key(container_name(self.cluster, name))
        result = ApplyResult(nodes=[])
        missing = [node for node in plan if node.name not in existing]
        if missing:
            builder = NodeImageBuilder(self.engine, self.progress)
            images = {arch: builder.ensure(arch) for arch in sorted({node.arch for node in missing})}
            subnet = self._ensure_network()
            taken = {
                port for node in existing.values() for port in (node.ssh_port, node.api_port, node.https_port) if port
            }
            for node in missing:
                with self.progress.step(f"creating node {node.name} ({node.arch})"):
                    created = self._create(node, images[node.arch], profile, node_ip(subnet, node.name), taken)
                taken.update(port for port in (created.ssh_port, created.api_port, created.https_port) if port)
                result.created.append(node.name)
        for node in plan:
            current = existing.get(node.name)
            if current is None:
                continue
            if current.state == "running":
                result.unchanged.append(node.name)
            else:
                self.progress.note(f"starting stopped node {node.name}")
                self.engine.run(["start", container_name(self.cluster, node.name)])
                result.started.append(node.name)
        planned = {node.name for node in plan}
        result.extra = sorted((name for name in existing if name not in planned), key=node_sort_key)
        waiting = [node for node in plan if node.name in result.created or node.name in result.started]
        nodes = {node.name: node for node in self.nodes()}
        self.wait_for_ssh([nodes[node.name] for node in waiting if node.name in nodes])
        result.nodes = self.nodes()
        return result

    def nodes(self) -> list[Node]:
        found = [self._node_from(data) for data in self.engine.containers(cluster_label(self.cluster))]
        return sorted((node for node in found if node is not None), key=lambda node: node_sort_key(node.name))

    def destroy(self) -> list[str]:
        label = cluster_label(self.cluster)
        removed: list[str] = []
        containers = self.engine.containers(label)
        if containers:
            names = [str(data["Name"]).lstrip("/") for data in containers]
            self.engine.run(["rm", "--force", "--volumes", "--time", "5", *names], timeout=300)
            removed += [f"container {name}" for name in names]
        for volume in self.engine.volumes(label):
            self.engine.run(["volume", "rm", "--force", volume])
            removed.append(f"volume {volume}")
        for network in self.engine.networks(label):
            self.engine.run(["network", "rm", "--force", network])
            removed.append(f"network {network}")
        return removed

    def power_on(self, name: str) -> Node:
        node = self._existing(name)
        if node.state != "running":
            self._host_profile({node.arch})
            self.engine.run(["start", container_name(self.cluster, name)])
            node = self._existing(name)
            self.wait_for_ssh([node])
        return node

    def power_off(self, name: str) -> None:
        node = self._existing(name)
        if node.state == "running":
            self.engine.run(["stop", "--time", "20", container_name(self.cluster, name)])

    def remove(self, name: str) -> list[str]:
        self._existing(name)
        container, volume = container_name(self.cluster, name), volume_name(self.cluster, name)
        self.engine.run(["rm", "--force", "--volumes", "--time", "5", container], timeout=300)
        self.engine.run(["volume", "rm", "--force", volume], check=False)
        return [f"container {container}", f"volume {volume}"]

    # --- SSH ----------------------------------------------------------------------------------------------
    def ssh_command(self, node: Node, command: Sequence[str] = ()) -> list[str]:
        """The `ssh` command line reaching `node` as its user with the cluster's key (no password anywhere)."""
        ssh = find_tool("ssh")
        if ssh is None:
            raise UserInputError("ssh: not found on PATH; install it: sudo apt-get install -y openssh-client")
        if node.ssh_host is None:
            raise OperationError(f"node {node.name}: no SSH address known; run `oscar-deploy up`")
        return [
            ssh,
            *LOCAL_SSH_OPTIONS,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "PasswordAuthentication=no",
            "-i",
            str(self.state.ssh_private_key),
            "-p",
            str(node.ssh_port),
            f"{node.ssh_user}@{node.ssh_host}",
            *command,
        ]

    def wait_for_ssh(self, nodes: Sequence[Node]) -> None:
        """Wait until every node runs a command over SSH: readiness is sshd answering, not systemd's state
        (emulated arm64 nodes boot `degraded` because a few units fail under qemu-user, yet sshd runs)."""
        if not nodes:
            return
        names = ", ".join(node.name for node in nodes)
        deadline = time.monotonic() + max(SSH_WAIT_SECONDS.get(node.arch, 600.0) for node in nodes)
        pending = list(nodes)
        with self.progress.step(f"waiting for SSH on {names}"):
            while pending:
                pending = [node for node in pending if not self._answers_ssh(node)]
                if not pending:
                    break
                if time.monotonic() > deadline:
                    late = ", ".join(node.name for node in pending)
                    raise OperationError(
                        f"nodes {late}: no SSH answer in time; look at `podman logs "
                        f"{container_name(self.cluster, pending[0].name)}` and run `oscar-deploy up` again"
                    )
                time.sleep(1.0)

    def _answers_ssh(self, node: Node) -> bool:
        return probe_ssh(self.ssh_command(node, ["true"]), connect_timeout=5, timeout=30).answered

    # --- internals ----------------------------------------------------------------------------------------
    def _host_profile(self, arches: set[str]) -> HostProfile:
        """This host's quirks for nodes of `arches`; stops with one line per problem and its fix."""
        profile = local_host_profile(arches)
        if profile.problems:
            raise UserInputError(
                "\n".join(f"{check.name}: {check.detail}; fix: {check.fix}" for check in profile.problems)
            )
        return profile

    def _existing(self, name: str) -> Node:
        for node in self.nodes():
            if node.name == name:
                return node
        known = ", ".join(node.name for node in self.nodes()) or "none"
        raise UserInputError(f"node {name!r}: not in cluster {self.cluster} (nodes: {known})")

    def _ensure_network(self) -> ipaddress.IPv4Network:
        """The cluster's network (created when missing) and its subnet."""
        name = network_name(self.cluster)
        if not self.engine.network_exists(name):
            self.engine.run(["network", "create", "--label", cluster_label(self.cluster), name])
        data = self.engine.json(["network", "inspect", name])
        subnets = [entry["subnet"] for entry in data[0].get("subnets") or [] if ":" not in entry["subnet"]]
        if not subnets:
            raise OperationError(f"network {name}: no IPv4 subnet; remove it (podman network rm {name}) and retry")
        return ipaddress.IPv4Network(subnets[0])

    def _create(self, node: PlannedNode, image: str, profile: HostProfile, address: str, taken: set[int]) -> Node:
        """Create and start one node; a host port taken in the meantime (another program, another cluster
        being created) means new ports and another try."""
        volume = volume_name(self.cluster, node.name)
        if self.engine.run(["volume", "exists", volume], check=False).returncode != 0:
            self.engine.run(["volume", "create", "--label", cluster_label(self.cluster), volume])
        tried = set(taken)
        attempts = 0
        while True:
            ssh_port = free_loopback_port(tried)
            api_port = https_port = None
            if node.name == "server-0":
                api_port = free_loopback_port(tried | {ssh_port})
                https_port = free_loopback_port(tried | {ssh_port, api_port})
            tried.update(port for port in (ssh_port, api_port, https_port) if port)
            attempts += 1
            try:
                self._create_with_ports(node, image, profile, address, volume, ssh_port, api_port, https_port)
            except OperationError as exc:
                if "address already in use" in str(exc) and attempts < PORT_ATTEMPTS:
                    continue
                raise
            return Node(
                node.name, node.role, node.arch, "running", address, LOOPBACK, ssh_port, SSH_USER, api_port, https_port
            )

    def _create_with_ports(
        self,
        node: PlannedNode,
        image: str,
        profile: HostProfile,
        address: str,
        volume: str,
        ssh_port: int,
        api_port: int | None,
        https_port: int | None,
    ) -> None:
        name = container_name(self.cluster, node.name)
        args = [
            "create",
            "--name",
            name,
            "--hostname",
            node.name,
            "--label",
            cluster_label(self.cluster),
            "--label",
            f"{NODE_LABEL}={node.name}",
            "--label",
            f"{ROLE_LABEL}={node.role}",
            "--label",
            f"{ARCH_LABEL}={node.arch}",
            "--label",
            f"{SSH_PORT_LABEL}={ssh_port}",
            "--network",
            network_name(self.cluster),
            "--ip",
            address,
            "--arch",
            node.arch,
            # systemd as PID 1; privileged because k3s (a later phase) runs containers inside the node.
            "--systemd=always",
            "--privileged",
            "--volume",
            f"{volume}:/var/lib/rancher",
            "--publish",
            f"{LOOPBACK}:{ssh_port}:22",
            *profile.run_flags(),
        ]
        if Path("/lib/modules").is_dir():  # k3s loads kernel modules from the host's tree
            args += ["--volume", "/lib/modules:/lib/modules:ro"]
        if api_port is not None:
            args += ["--label", f"{API_PORT_LABEL}={api_port}", "--publish", f"{LOOPBACK}:{api_port}:6443"]
        if https_port is not None:
            args += ["--label", f"{HTTPS_PORT_LABEL}={https_port}", "--publish", f"{LOOPBACK}:{https_port}:443"]
        args += [image, "/sbin/init"]
        self.engine.run(args)
        try:
            self._authorize_key(name)
            self.engine.run(["start", name])
        except OperationError:
            self.engine.run(["rm", "--force", name], check=False)
            raise

    def _authorize_key(self, container: str) -> None:
        self.engine.run(["cp", str(self.state.ssh_public_key), f"{container}:/root/.ssh/authorized_keys"])

    def _node_from(self, data: dict[str, Any]) -> Node | None:
        labels: dict[str, str] = (data.get("Config") or {}).get("Labels") or {}
        name = labels.get(NODE_LABEL)
        if not name:
            return None
        running = bool((data.get("State") or {}).get("Running"))
        state: NodeState = "running" if running else "stopped"
        networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
        address = (networks.get(network_name(self.cluster)) or {}).get("IPAddress") or None
        role: Role = "server" if labels.get(ROLE_LABEL) == "server" else "agent"
        api_port, https_port = labels.get(API_PORT_LABEL), labels.get(HTTPS_PORT_LABEL)
        return Node(
            name=name,
            role=role,
            arch=labels.get(ARCH_LABEL, "amd64"),
            state=state,
            address=address if running else None,
            ssh_host=LOOPBACK,
            ssh_port=int(labels.get(SSH_PORT_LABEL, "22")),
            ssh_user=SSH_USER,
            api_port=int(api_port) if api_port else None,
            https_port=int(https_port) if https_port else None,
            instance=str(data.get("Id") or ""),
        )
