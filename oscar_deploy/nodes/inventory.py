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

import difflib
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
from oscar_deploy.spec.yamlcheck import YamlLimitError, duplicate_keys, load_yaml, yaml_problem
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import InvalidDocumentError, UserInputError, shown
from oscar_deploy.support.files import parse_json, read_user_bytes, read_user_text, shown_path
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


# Variables of k3s-io/k3s-ansible's inventories (inventory-sample.yml): an inventory written for it works here.
K3S_ANSIBLE_VARIABLES = frozenset(
    {
        "k3s_version", "token", "api_endpoint", "api_port", "extra_server_args", "extra_agent_args",
        "cluster_context", "k3s_server_location", "systemd_dir", "extra_service_envs", "user_kubectl",
        "extra_manifests", "airgap_dir", "server_config_yaml", "agent_config_yaml", "registries_config_yaml",
    }
)  # fmt: skip
# Ansible's own connection and privilege variables, the ones inventories set.
ANSIBLE_VARIABLES = frozenset(
    {
        "ansible_host", "ansible_port", "ansible_user", "ansible_password", "ansible_connection",
        "ansible_ssh_private_key_file", "ansible_private_key_file", "ansible_ssh_common_args",
        "ansible_ssh_extra_args", "ansible_ssh_pass", "ansible_become", "ansible_become_method",
        "ansible_become_user", "ansible_become_password", "ansible_become_pass", "ansible_python_interpreter",
        "ansible_shell_type", "ansible_timeout", "ansible_ssh_executable", "ansible_sftp_extra_args",
        "ansible_scp_extra_args", "ansible_pipelining", "ansible_host_key_checking", "ansible_ssh_host_key_checking",
    }
)  # fmt: skip
# Variables our inventory writes for each host.
HOST_VARIABLES = frozenset({"arch", "node_address", "node_name", "cluster_name", "k3s_api_public_port"})
# A name this close to a known variable (difflib's ratio) but not equal is taken for a misspelling of it.
MISSPELLING_CUTOFF = 0.85
TEMPLATE_NAME = re.compile(r"(?:\{\{\s*|default\()([a-z_][a-z0-9_]*)")


def known_variables(playbook_dir: Path) -> frozenset[str]:
    """Every variable the playbooks read: their roles' defaults and argument specs, the k3s-ansible names those
    defaults fall back to, Ansible's connection variables and the ones our inventory writes."""
    names = set(K3S_ANSIBLE_VARIABLES | ANSIBLE_VARIABLES | HOST_VARIABLES)
    for defaults in sorted(playbook_dir.glob("roles/*/defaults/main.yml")):
        text = defaults.read_text(encoding="utf-8")
        names.update(re.findall(r"^([a-z_][a-z0-9_]*):", text, re.MULTILINE))
        names.update(TEMPLATE_NAME.findall(text))
    for specs in sorted(playbook_dir.glob("roles/*/meta/argument_specs.yml")):
        names.update(re.findall(r"^ {6}([a-z_][a-z0-9_]*):", specs.read_text(encoding="utf-8"), re.MULTILINE))
    return frozenset(names)


def _misspelling(name: str, known: frozenset[str]) -> str | None:
    if name in known:
        return None
    close = difflib.get_close_matches(name, known, n=1, cutoff=MISSPELLING_CUTOFF)
    return close[0] if close else None


# What each key of a YAML inventory's group maps: Ansible refuses anything else in words about its Python types.
GROUP_MAPPINGS = {
    "hosts": "host names to their variables",
    "children": "group names to groups",
    "vars": "variable names to values",
}
# An INI section header: Ansible reads a file named .yml as INI when it is not YAML.
INI_SECTION = re.compile(r"^\s*\[[^\]\n]+\]\s*$", re.MULTILINE)


def _null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _yaml_problems(text: str, source: str, known: frozenset[str]) -> list[str] | None:
    """A YAML inventory's syntax errors, a top level that is not a mapping of groups, duplicate keys (a host
    given twice keeps only its last variables) and misspelt variables, by line; None for an INI inventory
    (Ansible reads it as INI, whatever its name)."""
    try:
        root, _ = load_yaml(text)
    except yaml.YAMLError as exc:
        if not isinstance(exc, YamlLimitError) and INI_SECTION.search(text):
            return None
        return [yaml_problem(exc, source)]
    if root is not None and not isinstance(root, yaml.MappingNode):
        line = root.start_mark.line + 1
        return [f"{source}:{line}: not an inventory: its top level maps group names (server, agent) to groups"]
    problems = [f"{source}:{line}: {message}" for line, message in duplicate_keys(root)]

    def variables(node: yaml.Node | None, owner: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, _value in node.value:
                match = _misspelling(str(key.value), known)
                if match is not None:
                    problems.append(
                        f"{source}:{key.start_mark.line + 1}: {owner}: variable {shown(str(key.value))} is not "
                        f"one the playbooks read; did you mean {match!r}?"
                    )

    def not_a_mapping(node: yaml.Node, what: str) -> None:
        kind = "list" if isinstance(node, yaml.SequenceNode) else "value"
        problems.append(f"{source}:{node.start_mark.line + 1}: {what}, not a {kind}")

    def group(node: yaml.Node | None, name: str) -> None:
        if node is None or _null(node):
            return
        if not isinstance(node, yaml.MappingNode):
            not_a_mapping(node, f"group {shown(name)} maps hosts, children and vars")
            return
        for key, value in node.value:
            if key.value in GROUP_MAPPINGS and not isinstance(value, yaml.MappingNode) and not _null(value):
                not_a_mapping(value, f"group {shown(name)}: `{key.value}` maps {GROUP_MAPPINGS[key.value]}")
            elif key.value == "hosts" and isinstance(value, yaml.MappingNode):
                for host, host_vars in value.value:
                    variables(host_vars, f"host {shown(str(host.value))}")
            elif key.value == "vars":
                variables(value, f"group {shown(name)} vars")
            elif key.value == "children" and isinstance(value, yaml.MappingNode):
                for child, child_node in value.value:
                    group(child_node, str(child.value))

    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            group(value, str(key.value))
    return problems


def _ini_problems(text: str, source: str, known: frozenset[str]) -> list[str]:
    """The INI format's duplicate hosts (in one section) and misspelt variables, by line."""
    problems: list[str] = []
    section = "ungrouped"
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith((";", "#")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section, seen = line[1:-1], {}
            continue
        if section.endswith(":children"):
            continue
        words = shlex_split(line)
        if not words:
            continue
        if section.endswith(":vars"):
            assignments, owner = [line], f"group {shown(section[: -len(':vars')])} vars"
        else:
            host, assignments, owner = words[0], words[1:], f"host {shown(words[0])}"
            if host in seen:
                problems.append(
                    f"{source}:{number}: host {shown(host)}: given twice in [{section}] (first at line {seen[host]}); "
                    "keep one"
                )
            seen.setdefault(host, number)
        for assignment in assignments:
            name = assignment.split("=", 1)[0].strip()
            match = _misspelling(name, known)
            if match is not None:
                problems.append(
                    f"{source}:{number}: {owner}: variable {shown(name)} is not one the playbooks read; "
                    f"did you mean {match!r}?"
                )
    return problems


def shlex_split(line: str) -> list[str]:
    import shlex

    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


WITH_OPTION = "pass an Ansible inventory file with -i"


def check_inventory(path: Path, playbook_dir: Path | None = None, missing: str = WITH_OPTION) -> None:
    """Refuse, in one line each, what Ansible would read silently wrong or not survive: a file that is not a
    regular file (a FIFO hangs, /dev/zero never ends), one too large, not UTF-8, hosts given twice, variables
    that look like misspelt names of the playbooks' own."""
    name = shown_path(path)
    if path.is_dir():
        for entry in sorted(path.rglob("*")):
            if not any(part.startswith(".") for part in entry.relative_to(path).parts) and not entry.is_dir():
                read_user_bytes(entry, "inventory file")
        return
    text = read_user_text(path, "inventory", missing=missing)
    known = known_variables(playbook_dir or layer_dir("playbooks"))
    problems = _yaml_problems(text, name, known) if path.suffix in (".yml", ".yaml", ".json") else None
    if problems is None:
        problems = _ini_problems(text, name, known)
    if problems:
        raise InvalidDocumentError(problems)


# ansible-inventory's output per unchanged input (see `_inputs_of`): a command reads the same inventory several
# times, and each run of ansible-inventory costs most of a second.
_LISTED: dict[tuple[object, ...], str] = {}
_LISTED_KEPT = 16


def read_inventory(path: Path, playbook_dir: Path | None = None, missing: str = WITH_OPTION) -> InventoryView:
    """Parse `path` with Ansible itself (INI, YAML, folders: whatever ansible-playbook accepts), once
    `check_inventory` has passed it. Ansible runs again only when what it reads has changed. `missing` says
    what to do when there is no such file (where the command takes the inventory from)."""
    from oscar_deploy.support import process_group

    if not path.exists():
        raise UserInputError(f"{shown_path(path)}: no such inventory; {missing}")
    check_inventory(path, playbook_dir, missing)
    env = {
        **os.environ,
        **ansible_environment(playbook_dir or layer_dir("playbooks")),
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",
    }
    key = (str(path.absolute()), _inputs_of(path), tuple(sorted(env.items())))
    listed = _LISTED.get(key)
    if listed is None:
        command = shutil.which("ansible-inventory", path=env["PATH"]) or "ansible-inventory"
        completed = process_group.run([command, "-i", str(path), "--list"], capture_output=True, text=True, env=env)
        if completed.returncode != 0:
            problem = _inventory_problem(completed.stderr, path)
            raise UserInputError(f"{path}: not a valid Ansible inventory ({problem})")
        listed = completed.stdout
        if len(_LISTED) >= _LISTED_KEPT:
            del _LISTED[next(iter(_LISTED))]
        _LISTED[key] = listed
    data = parse_json(listed)
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


def _inputs_of(path: Path) -> tuple[tuple[str, int, int, int], ...]:
    """What ansible-inventory reads for `path`, as (file, inode, size, modification time) of each: the
    inventory (every file of a folder, its `group_vars` and `host_vars` among them) and the `group_vars` and
    `host_vars` beside an inventory file. A file rewritten in place changes its time, one replaced (as our
    writes do) its inode; a link to nothing counts as a file that cannot be read, until it points somewhere."""
    roots = (path,) if path.is_dir() else (path, path.parent / "group_vars", path.parent / "host_vars")
    entries = []
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        for file in files:
            try:
                info = file.stat()
            except OSError:
                entries.append((str(file), -1, -1, -1))
                continue
            entries.append((str(file), info.st_ino, info.st_size, info.st_mtime_ns))
    return tuple(entries)


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
