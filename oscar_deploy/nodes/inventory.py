"""Ansible inventories: the one `up` writes from the provider's nodes, and reading any inventory as Ansible does.

The inventory `up` writes (k3s-ansible layout):

    k3s_cluster:
      children:
        server: {hosts: {server-0: {...}}}
        agent:  {hosts: {agent-0: {...}}}

Host variables: how Ansible reaches the node (`ansible_host`, `ansible_port`, `ansible_user`,
`ansible_ssh_private_key_file`, `ansible_ssh_common_args`), its CPU `arch`, and `node_address`, its address
on the cluster's own network (what k3s uses for node-ip and the server URL). A node whose Kubernetes API is
published on the controller also has `k3s_api_public_port` (that port on `ansible_host`). A host of a static inventory
keeps its own further variables.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from oscar_deploy.nodes.ansible import ansible_environment, one_line
from oscar_deploy.nodes.model import Node
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.layers import layer_dir

HEADER = "# Written by `oscar-deploy up` from the provider's nodes; rewritten on every run, do not edit.\n"


def inventory_data(
    nodes: Sequence[Node], private_key: str | None, ssh_common_args: str = "", cluster: str | None = None
) -> dict[str, Any]:
    """The inventory of `nodes`; with `private_key`, every host is reached with that key (nodes a provider
    made), without it each host keeps the key settings among its own variables (hosts you own)."""
    groups: dict[str, dict[str, Any]] = {"server": {"hosts": {}}, "agent": {"hosts": {}}}
    for node in nodes:
        host: dict[str, Any] = {
            "ansible_host": node.ssh_host,
            "ansible_port": node.ssh_port,
            "ansible_user": node.ssh_user,
        }
        if private_key:
            host["ansible_ssh_private_key_file"] = private_key
        if node.arch:
            host["arch"] = node.arch
        host["node_address"] = node.address
        if ssh_common_args:
            host["ansible_ssh_common_args"] = ssh_common_args
        if node.api_port is not None:
            # The controller reaches this server's API on that port of ansible_host (the kubeconfig's port).
            host["k3s_api_public_port"] = node.api_port
        host.update({key: value for key, value in node.variables.items() if key not in host})
        groups[node.role]["hosts"][node.name] = host
    top: dict[str, Any] = {"children": groups}
    if cluster:
        top["vars"] = {"cluster_name": cluster}
    return {"k3s_cluster": top}


def write_inventory(
    state: ClusterState, nodes: Sequence[Node], ssh_common_args: str = "", private_key: bool = True
) -> str:
    """Write the cluster's inventory file (0600) and return its text."""
    key = str(state.ssh_private_key) if private_key else None
    data = inventory_data(nodes, key, ssh_common_args, state.name)
    text = HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    state.write_file(state.inventory_file, text)
    return text


@dataclass(frozen=True)
class InventoryView:
    """An inventory as Ansible reads it (`ansible-inventory --list`): groups with all their hosts, merged vars."""

    path: Path
    groups: dict[str, list[str]]
    hostvars: dict[str, dict[str, Any]]

    def hosts(self, group: str) -> list[str]:
        return list(self.groups.get(group, []))

    def address(self, host: str) -> str:
        """`ansible_host[:ansible_port]` as the inventory sets it (the name when it sets none)."""
        host_vars = self.hostvars.get(host, {})
        address = str(host_vars.get("ansible_host") or host)
        if "{{" in address:
            address = host
        port = host_vars.get("ansible_port")
        return f"{address}:{port}" if port and str(port) != "22" else address


def read_inventory(path: Path, playbook_dir: Path | None = None) -> InventoryView:
    """Parse `path` with Ansible itself (INI, YAML, folders: whatever ansible-playbook accepts)."""
    import subprocess

    if not path.exists():
        raise UserInputError(f"{path}: no such inventory; pass an Ansible inventory file with -i")
    env = {
        **os.environ,
        **ansible_environment(playbook_dir or layer_dir("playbooks")),
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",
    }
    command = shutil.which("ansible-inventory", path=env["PATH"]) or "ansible-inventory"
    completed = subprocess.run(
        [command, "-i", str(path), "--list"], capture_output=True, text=True, env=env, check=False
    )
    if completed.returncode != 0:
        raise UserInputError(f"{path}: not a valid Ansible inventory ({_inventory_problem(completed.stderr, path)})")
    data = json.loads(completed.stdout)
    hostvars: dict[str, dict[str, Any]] = data.get("_meta", {}).get("hostvars", {})

    def members(group: str, seen: frozenset[str] = frozenset()) -> list[str]:
        entry = data.get(group) or {}
        found = list(entry.get("hosts") or [])
        for child in entry.get("children") or []:
            if child not in seen:
                found += [host for host in members(child, seen | {group}) if host not in found]
        return found

    groups = {group: members(group) for group in data if group != "_meta"}
    return InventoryView(path=path, groups=groups, hostvars=hostvars)


def _inventory_problem(stderr: str, path: Path) -> str:
    """The most telling complaint of ansible-inventory about a file: the one of the plugin its name suggests.

    ansible-core wraps its warnings across lines and words them differently from version to version
    ("with yaml plugin:" before 2.19, "with 'yaml' plugin:" since), so warnings are joined first."""
    preferred = "yaml" if path.suffix in (".yml", ".yaml") else "ini"
    entries = [" ".join(entry.split()) for entry in re.split(r"\[(?:WARNING|ERROR)\]:?|^ERROR!", stderr, flags=re.M)]
    entries = [entry for entry in entries if entry]
    for marker in (f"with '{preferred}' plugin:", f"with {preferred} plugin:"):
        for entry in entries:
            if marker in entry:
                return one_line(entry.split(marker, 1)[1])
    return one_line(entries[0]) if entries else "ansible-inventory could not read it"
