"""The Ansible inventory `up` writes from the provider's nodes (k3s-ansible layout).

    k3s_cluster:
      children:
        server: {hosts: {server-0: {...}}}
        agent:  {hosts: {agent-0: {...}}}

Host variables: how Ansible reaches the node (`ansible_host`, `ansible_port`, `ansible_user`,
`ansible_ssh_private_key_file`, `ansible_ssh_common_args`), its CPU `arch`, and `node_address`, its address
on the cluster's own network (what k3s uses for node-ip and the server URL). A node whose Kubernetes API is
published on the controller also has `api_port` (host port on `ansible_host`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from oscar_deploy.providers.base import Node
from oscar_deploy.state.folder import ClusterState

HEADER = "# Written by `oscar-deploy up` from the provider's nodes; rewritten on every run, do not edit.\n"


def inventory_data(
    nodes: Sequence[Node], private_key: str, ssh_common_args: str = "", cluster: str | None = None
) -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {"server": {"hosts": {}}, "agent": {"hosts": {}}}
    for node in nodes:
        host: dict[str, Any] = {
            "ansible_host": node.ssh_host,
            "ansible_port": node.ssh_port,
            "ansible_user": node.ssh_user,
            "ansible_ssh_private_key_file": private_key,
            "arch": node.arch,
            "node_address": node.address,
        }
        if ssh_common_args:
            host["ansible_ssh_common_args"] = ssh_common_args
        if node.api_port is not None:
            host["api_port"] = node.api_port
        groups[node.role]["hosts"][node.name] = host
    top: dict[str, Any] = {"children": groups}
    if cluster:
        top["vars"] = {"cluster_name": cluster}
    return {"k3s_cluster": top}


def write_inventory(state: ClusterState, nodes: Sequence[Node], ssh_common_args: str = "") -> str:
    """Write the cluster's inventory file (0600) and return its text."""
    data = inventory_data(nodes, str(state.ssh_private_key), ssh_common_args, state.name)
    text = HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    state.write_file(state.inventory_file, text)
    return text
