"""Nodes as every layer sees them: planned by a provider, reported by it, written into the inventory.

A node is named `server-N` or `agent-N` when a provider makes it; hosts you own keep their inventory names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["server", "agent"]
NodeState = Literal["running", "stopped", "missing"]


@dataclass(frozen=True)
class PlannedNode:
    """A node the cluster should have: `server-0`, `agent-2`, or a host of a static inventory."""

    name: str
    role: Role
    arch: str


@dataclass(frozen=True)
class Node:
    """A node as its provider sees it now, with what Ansible needs to reach it."""

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
    # Port on ssh_host where the cluster's HTTPS gateway answers for this node (443 unless published elsewhere).
    https_port: int | None = None
    # What makes this node this one and not a namesake made later (container or VM id): a node recreated
    # under the same name has another, so the phases that configured the old one run again.
    instance: str = ""
    # Further inventory variables of the host (a static inventory's own settings), passed on unchanged.
    variables: dict[str, Any] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The node as listed to users: its inventory variables are left out, since an inventory may keep
        secrets there (a k3s-ansible `token`, `ansible_become_password`)."""
        listed = asdict(self)
        del listed["variables"]
        return listed


def node_sort_key(name: str) -> tuple[int, int, str]:
    """Servers before agents, then by number: server-0, server-1, agent-0, agent-10."""
    role, _, number = name.rpartition("-")
    return (0 if role == "server" else 1, int(number) if number.isdigit() else 0, name)
