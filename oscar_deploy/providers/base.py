"""The interface every provider shares: which nodes the cluster should have, and create/list/power/destroy them.

`local` (podman containers), `openstack` and `aws` (VMs of a Pulumi stack, `providers/cloud.py`) and `static`
(hosts you own, from an inventory) implement `Provider`; the phases of `up`, `status`, `ssh`, `scale`, `down`
and the autoscaler only talk to this interface, and find a target's provider through
`oscar_deploy.providers.registry`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from oscar_deploy.nodes.hostkeys import RefusedHostKey, refused_host_key
from oscar_deploy.nodes.model import Node, PlannedNode
from oscar_deploy.support import process_group

if TYPE_CHECKING:
    from oscar_deploy.spec.models import ClusterSpec

# How a cluster's worker count changes: by `scale --workers N` (the provider makes nodes), or by editing the
# inventory of hosts you own and running `up` again.
ScalingMode = Literal["count", "inventory"]


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
    scaling: ScalingMode

    def plan(self, spec: ClusterSpec, workers: int) -> list[PlannedNode]:
        """The nodes the cluster should have with `workers` workers (a count-scaled provider) or as its
        inventory lists them (an inventory-scaled one, which ignores `workers`)."""

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


def counted_plan(spec: ClusterSpec, workers: int, existing: Sequence[Node] = ()) -> list[PlannedNode]:
    """The spec's servers, the agents that exist (kept as they are), and new agents with the lowest free
    numbers until there are `workers`; the highest-numbered agents beyond `workers` are left out."""
    from oscar_deploy.nodes.model import node_sort_key

    settings = spec.target_settings()
    plan = [
        PlannedNode(f"server-{index}", "server", settings.node_arch("server")) for index in range(spec.servers.count)
    ]
    agents = sorted((node for node in existing if node.role == "agent"), key=lambda node: node_sort_key(node.name))
    plan += [PlannedNode(node.name, "agent", node.arch) for node in agents[:workers]]
    taken = {node.name for node in plan} | {node.name for node in agents}
    number = 0
    while len(plan) < spec.servers.count + workers:
        name = f"agent-{number}"
        if name not in taken:
            plan.append(PlannedNode(name, "agent", settings.node_arch("agent")))
        number += 1
    return plan


@dataclass(frozen=True)
class SshProbe:
    """One `ssh ... true`: whether it ran, and what ssh said of the host key it refused, if it refused one."""

    answered: bool
    refused_key: RefusedHostKey | None = None


def probe_ssh(command: Sequence[str], connect_timeout: int, timeout: float) -> SshProbe:
    """Run the ssh `command` (`ssh [options] [user@]host true`) without letting it ask anything: node readiness
    is judged by SSH."""
    probe = [command[0], "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}", *command[1:]]
    try:
        done = process_group.run(probe, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return SshProbe(answered=False)
    if done.returncode == 0:
        return SshProbe(answered=True)
    return SshProbe(answered=False, refused_key=refused_host_key(done.stderr.decode(errors="replace")))
