"""Provider `static`: hosts and boards you already own, listed in an Ansible inventory.

The inventory (groups `server` and `agent`, as k3s-io/k3s-ansible inventories have them) is the plan: a host
added to it joins at the next `up`, a host taken out of it is drained, removed from Kubernetes and reset.
Nothing is created or destroyed here; hosts are reached as the inventory says (user, key, port, options),
never with the cluster's generated key. The hosts `up` last applied are the ones in the cluster's own
inventory in the state folder, so a removed host is still known after it left the user's file.
"""

from __future__ import annotations

import getpass
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from oscar_deploy.nodes.inventory import InventoryView, read_inventory
from oscar_deploy.nodes.k3s import cluster_groups
from oscar_deploy.nodes.model import Node, PlannedNode, Role
from oscar_deploy.providers.base import ApplyResult, ScalingMode
from oscar_deploy.spec.arches import ARCHES, canonical_arch
from oscar_deploy.spec.models import ClusterSpec, StaticSpec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.checks import find_tool
from oscar_deploy.support.errors import UserInputError, shown
from oscar_deploy.support.progress import Progress

# Host variables that become Node fields; every other variable of a host is passed on as it is.
CONNECTION_VARIABLES = ("ansible_host", "ansible_port", "ansible_user", "node_address", "arch")
# A host that sets neither has its key checked against the user's known_hosts, the first connection recording it:
# ansible-runner turns Ansible's own check off unless told, and Ansible's `-o StrictHostKeyChecking=no` would let
# any machine answering at the address receive the cluster's token. The extra args come last on ssh's command
# line, so an option the inventory sets wins over `accept-new`.
HOST_KEY_CHECKING_VARIABLES = ("ansible_host_key_checking", "ansible_ssh_host_key_checking")
ACCEPT_NEW_HOST_KEYS = "-o StrictHostKeyChecking=accept-new"

MAX_PORT = 65535


def by_role(servers: list[str], agents: list[str]) -> tuple[tuple[Role, list[str]], ...]:
    return (("server", servers), ("agent", agents))


class StaticProvider:
    """The hosts of one inventory, as the nodes of one cluster."""

    ssh_common_args = ""
    scaling: ScalingMode = "inventory"

    def __init__(self, state: ClusterState, inventory: Path, progress: Progress | None = None) -> None:
        self.state = state
        self.inventory = inventory
        self.progress = progress or Progress()

    @classmethod
    def for_cluster(cls, spec: ClusterSpec, state: ClusterState, progress: Progress) -> StaticProvider:
        settings = spec.target_settings()
        assert isinstance(settings, StaticSpec)  # the registry hands each provider its own target's specs
        return cls(state, Path(settings.inventory), progress)

    # --- Provider interface -------------------------------------------------------------------------------
    def plan(self, spec: ClusterSpec, workers: int) -> list[PlannedNode]:
        return [PlannedNode(node.name, node.role, node.arch) for node in self._listed()]

    def apply(self, plan: Sequence[PlannedNode]) -> ApplyResult:
        """Hosts are never created here: the plan's hosts are taken as they are, and hosts applied before but
        no longer in the inventory are reported as extra (the caller drains and resets them)."""
        nodes = self.nodes()
        planned = {node.name for node in plan}
        return ApplyResult(
            nodes=nodes,
            unchanged=[node.name for node in nodes if node.name in planned],
            extra=[node.name for node in nodes if node.name not in planned],
        )

    def nodes(self) -> list[Node]:
        listed = self._listed()
        names = {node.name for node in listed}
        applied = [node for node in self._applied() if node.name not in names]
        return listed + applied

    def destroy(self) -> list[str]:
        """Hosts you own stay; the caller resets k3s on them first (reset.yml). Nothing else was made."""
        return []

    def power_on(self, name: str) -> Node:
        raise UserInputError(
            f"node {name}: a host you own is powered on by you; oscar-deploy does not power static hosts"
        )

    def power_off(self, name: str) -> None:
        raise UserInputError(
            f"node {name}: a host you own is powered off by you; oscar-deploy does not power static hosts"
        )

    def remove(self, name: str) -> list[str]:
        """The host stays yours: remove-node.yml already drained it and reset k3s on it."""
        return [f"host {name} (k3s reset, the host is yours)"]

    def ssh_command(self, node: Node, command: Sequence[str] = ()) -> list[str]:
        ssh = find_tool("ssh")
        if ssh is None:
            raise UserInputError("ssh: not found on PATH; install it: sudo apt-get install -y openssh-client")
        options: list[str] = []
        key = node.variables.get("ansible_ssh_private_key_file") or node.variables.get("ansible_private_key_file")
        if key:
            options += ["-i", str(Path(str(key)).expanduser())]
        for name in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
            if node.variables.get(name):
                options += shlex.split(str(node.variables[name]))
        return [ssh, *options, "-p", str(node.ssh_port), f"{node.ssh_user}@{node.ssh_host}", *command]

    # --- internals ----------------------------------------------------------------------------------------
    def _listed(self) -> list[Node]:
        """The hosts of the user's inventory, servers first, checked for a valid `server`/`agent` split."""
        view = read_inventory(self.inventory, missing="set static.inventory in the cluster spec to your inventory")
        servers, agents = cluster_groups(view)
        return [node_from_host(view, host, role) for role, hosts in by_role(servers, agents) for host in hosts]

    def _applied(self) -> list[Node]:
        """The hosts `up` last wrote into the cluster's own inventory (none before the first `up`)."""
        if not self.state.inventory_file.is_file():
            return []
        view = read_inventory(self.state.inventory_file)
        return [
            node_from_host(view, host, role)
            for role, hosts in by_role(view.hosts("server"), view.hosts("agent"))
            for host in hosts
        ]


def node_from_host(view: InventoryView, host: str, role: Role) -> Node:
    """A node from one inventory host: its connection settings as fields, its other variables kept."""
    hostvars: Mapping[str, Any] = view.hostvars.get(host, {})
    given_arch = str(hostvars.get("arch", ""))
    arch = canonical_arch(given_arch) if given_arch else ""
    if arch is None:
        raise UserInputError(
            f"{view.path}: host {host}: arch {shown(given_arch)} is not one of {', '.join(ARCHES)}; fix it, or leave "
            "it out to have it detected"
        )
    port = hostvars.get("ansible_port", 22)
    try:
        ssh_port = int(port)
    except (TypeError, ValueError):
        ssh_port = 0
    if not 1 <= ssh_port <= MAX_PORT:
        raise UserInputError(
            f"{view.path}: host {host}: ansible_port {shown(port)} is not a port number (1-{MAX_PORT})"
        )
    ssh_host = str(hostvars.get("ansible_host") or host)
    return Node(
        name=host,
        role=role,
        arch=arch,
        state="running",
        address=str(hostvars.get("node_address") or ssh_host),
        ssh_host=ssh_host,
        ssh_port=ssh_port,
        ssh_user=str(hostvars.get("ansible_user") or getpass.getuser()),
        variables=_with_host_key_checking(
            {key: value for key, value in hostvars.items() if key not in CONNECTION_VARIABLES}
        ),
    )


def _with_host_key_checking(variables: dict[str, Any]) -> dict[str, Any]:
    """The host's variables, with its key checked when the inventory does not say (HOST_KEY_CHECKING_VARIABLES)."""
    if any(name in variables for name in HOST_KEY_CHECKING_VARIABLES):
        return variables
    extra = str(variables.get("ansible_ssh_extra_args") or "")
    return {
        **variables,
        "ansible_ssh_host_key_checking": True,
        "ansible_ssh_extra_args": f"{extra} {ACCEPT_NEW_HOST_KEYS}".strip(),
    }
