"""The interface every provider shares: which nodes a spec wants, and create/list/destroy/power them.

`local` (podman containers), `openstack`, `aws` and `static` (hosts you own) implement `Provider`; the
phases of `up`, `status`, `ssh`, `down` and the autoscaler only talk to this interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from oscar_deploy.spec import ClusterSpec

Role = Literal["server", "agent"]
NodeState = Literal["running", "stopped", "missing"]


@dataclass(frozen=True)
class PlannedNode:
    """A node the spec asks for: `server-0`, `agent-2`..."""

    name: str
    role: Role
    arch: str


@dataclass(frozen=True)
class Node:
    """A node as the provider sees it now, with what Ansible needs to reach it."""

    name: str
    role: Role
    arch: str
    state: NodeState
    # Address on the cluster's own network: what nodes use to reach each other (k3s node-ip, server URL).
    address: str | None = None
    # Where this controller reaches the node's sshd.
    ssh_host: str | None = None
    ssh_port: int = 22
    ssh_user: str = "root"
    # Host port on ssh_host forwarded to the node's Kubernetes API (6443), when the provider publishes one.
    api_port: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ApplyResult:
    """What `Provider.apply` did, node by node, and the nodes as they are afterwards."""

    nodes: list[Node]
    created: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Nodes the provider found that the plan does not name; left alone (scaling in drains them first).
    extra: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.started)


class Provider(Protocol):
    """Create, list, power and destroy the nodes of one cluster."""

    # Extra `ssh` options Ansible needs for these nodes (the inventory's ansible_ssh_common_args).
    ssh_common_args: str

    def apply(self, plan: Sequence[PlannedNode]) -> ApplyResult:
        """Create missing nodes and start stopped ones until every planned node runs and answers SSH."""

    def nodes(self) -> list[Node]:
        """Every node of the cluster that exists, in any state, servers first."""

    def destroy(self) -> list[str]:
        """Remove every node and every resource made for the cluster; returns what was removed."""

    def power_on(self, name: str) -> Node:
        """Start a stopped node and wait until it answers SSH."""

    def power_off(self, name: str) -> None:
        """Stop a node, keeping it (and its disk) for a later power_on."""

    def remove(self, name: str) -> list[str]:
        """Delete one node and its disk (scaling in, once it was drained); returns what was removed."""

    def ssh_command(self, node: Node, command: Sequence[str] = ()) -> list[str]:
        """The `ssh` command line that runs `command` on `node` (a login shell when empty)."""


def planned_nodes(spec: ClusterSpec) -> list[PlannedNode]:
    """The nodes `spec` asks `up` for: its servers, then its initial workers (k3s agents)."""
    server_arch, agent_arch = _arches(spec)
    servers = [PlannedNode(f"server-{index}", "server", server_arch) for index in range(spec.servers.count)]
    agents = [PlannedNode(f"agent-{index}", "agent", agent_arch) for index in range(spec.workers.initial)]
    return servers + agents


def _arches(spec: ClusterSpec) -> tuple[str, str]:
    from oscar_deploy.spec import AwsSpec, LocalSpec, OpenStackSpec

    settings = spec.target_settings()
    if isinstance(settings, LocalSpec):
        return settings.server_arch, settings.worker_arch
    if isinstance(settings, AwsSpec | OpenStackSpec):
        return settings.arch, settings.arch
    return "amd64", "amd64"


def node_sort_key(name: str) -> tuple[int, int, str]:
    """Servers before agents, then by number: server-0, server-1, agent-0, agent-10."""
    role, _, number = name.rpartition("-")
    return (0 if role == "server" else 1, int(number) if number.isdigit() else 0, name)
