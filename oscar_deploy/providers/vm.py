"""What the OpenStack and AWS programs share: the node input, the firewall rules, cloud-init and the node record.

Both programs declare the same cluster shape on different clouds, so the rules that decide who may reach a node,
what a node is told on first boot and what the programs export are written once, here:

* `firewall_rules`: SSH (22) and the Kubernetes API (6443) only from the allowed CIDRs, HTTP and HTTPS (80/443)
  from anywhere, every protocol between the cluster's own nodes;
* `render_user_data`: cloud-init from `templates/cloud-init/node.yaml.j2` in a sandboxed Jinja2 environment;
* `node_record`: the exported description of a node (the inventory is written from these).

Nothing here imports Pulumi or a cloud SDK, so the provider classes and the CLI can use the input types cheaply.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from oscar_deploy.nodes.model import PlannedNode, Role
from oscar_deploy.spec.models import NAME_PATTERN, NAME_RULE
from oscar_deploy.support.files import parse_json

PublicAddresses = Literal["first-server", "all"]
PUBLIC_ADDRESS_CHOICES: tuple[PublicAddresses, ...] = ("first-server", "all")
ANYWHERE_IPV4 = "0.0.0.0/0"
SSH_PORT = 22
KUBERNETES_API_PORT = 6443
PUBLIC_WEB_PORTS = {80: "HTTP", 443: "HTTPS"}
USER_DATA_TEMPLATE = "cloud-init/node.yaml.j2"
NODE_NAME = re.compile(r"(server|agent)-(0|[1-9][0-9]{0,3})")
ARCHES = ("amd64", "arm64")


@dataclass(frozen=True)
class HostKey:
    """An ed25519 SSH host key pair in OpenSSH format: the node presents it, the controller pins the public half."""

    private: str = field(repr=False)
    public: str


@dataclass(frozen=True)
class VmNode:
    """One VM the program declares: `server-0`, `agent-3`... (unprefixed), its role, size and CPU architecture.

    `size` is a flavor name on OpenStack and an instance type on AWS.
    """

    name: str
    role: Role
    size: str
    arch: str = "amd64"


@dataclass(frozen=True)
class FirewallRule:
    """One ingress rule: TCP `port` from `cidr`, or every protocol from the cluster's own group (`cidr` None)."""

    description: str
    port: int | None
    cidr: str | None

    @property
    def ipv6(self) -> bool:
        return self.cidr is not None and ipaddress.ip_network(self.cidr, strict=False).version == 6


@dataclass(frozen=True)
class ClusterShape:
    """What both programs need whatever the cloud: checked once by `check_shape`."""

    cluster: str
    nodes: tuple[VmNode, ...]
    ssh_user: str
    public_key: str
    allowed_cidrs: tuple[str, ...]
    public_addresses: PublicAddresses = "first-server"
    host_keys: Mapping[str, HostKey] = field(default_factory=dict)


def vm_nodes(planned: Sequence[PlannedNode], server_size: str, agent_size: str) -> tuple[VmNode, ...]:
    """The planned nodes of a spec with the size their role asks for."""
    return tuple(
        VmNode(node.name, node.role, server_size if node.role == "server" else agent_size, node.arch)
        for node in planned
    )


def check_shape(shape: ClusterShape) -> None:
    """Refuse an input the programs cannot declare safely; ValueError naming the field and the fix."""
    if not NAME_PATTERN.fullmatch(shape.cluster):
        raise ValueError(f"cluster: {shape.cluster!r} is not a valid name; {NAME_RULE}")
    if not shape.nodes or shape.nodes[0].role != "server":
        raise ValueError("nodes: the first node must be a server (it carries the public address); put servers first")
    seen: set[str] = set()
    for node in shape.nodes:
        if not NODE_NAME.fullmatch(node.name):
            raise ValueError(f"nodes: {node.name!r} is not a node name such as server-0 or agent-12; rename it")
        if node.name.split("-")[0] != node.role:
            raise ValueError(f"nodes: {node.name!r} has role {node.role}; server-N nodes are servers, agent-N agents")
        if node.name in seen:
            raise ValueError(f"nodes: {node.name!r} appears twice; every node needs its own name")
        if node.arch not in ARCHES:
            raise ValueError(f"nodes: {node.name!r} has arch {node.arch!r}; use amd64 or arm64")
        if not node.size:
            raise ValueError(f"nodes: {node.name!r} has no size (flavor or instance type); set one")
        seen.add(node.name)
    if not shape.allowed_cidrs:
        raise ValueError("allowed_cidrs: empty, so nobody could reach SSH; list your own address, e.g. 203.0.113.7/32")
    for cidr in shape.allowed_cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValueError(f"allowed_cidrs: {cidr!r} is not a CIDR such as 203.0.113.0/24; fix it") from None
    if not shape.public_key.startswith(("ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-")):
        raise ValueError("public_key: not an OpenSSH public key (ssh-ed25519 AAAA...); pass the cluster's .pub file")
    if shape.public_addresses not in PUBLIC_ADDRESS_CHOICES:
        raise ValueError(f"public addresses: {shape.public_addresses!r}; use first-server or all")
    unknown = sorted(set(shape.host_keys) - seen)
    if unknown:
        raise ValueError(f"host_keys: {', '.join(unknown)} not among the nodes; drop those keys")


def firewall_rules(allowed_cidrs: Sequence[str]) -> list[FirewallRule]:
    """Ingress of every node: the same list on OpenStack and AWS (egress stays open)."""
    rules = [FirewallRule(f"SSH from {cidr}", SSH_PORT, cidr) for cidr in allowed_cidrs]
    rules += [FirewallRule(f"Kubernetes API from {cidr}", KUBERNETES_API_PORT, cidr) for cidr in allowed_cidrs]
    rules += [FirewallRule(f"{label} from anywhere", port, ANYWHERE_IPV4) for port, label in PUBLIC_WEB_PORTS.items()]
    rules.append(FirewallRule("everything between the cluster's nodes", None, None))
    return rules


def has_public_address(shape: ClusterShape, index: int) -> bool:
    """The first node (a server) always gets one; the others only when the spec asks for addresses on all."""
    return index == 0 or shape.public_addresses == "all"


def resource_name(cluster: str, *parts: str) -> str:
    """Every name the programs give (Pulumi resource and cloud object alike) starts with the cluster name."""
    return "-".join((cluster, *parts))


def render_user_data(cluster: str, node: VmNode, host_key: HostKey | None) -> str:
    """cloud-init for one node, from the template in a sandboxed environment (the template cannot reach Python)."""
    facts = {"cluster": cluster, "node": node.name, "role": node.role, "arch": node.arch}
    template = _user_data_template()
    text: str = template.render(hostname=resource_name(cluster, node.name), host_key=host_key, node_facts=facts)
    return text


@functools.cache
def _user_data_template() -> Any:
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    from oscar_deploy.support.layers import layer_dir

    environment = SandboxedEnvironment(
        loader=FileSystemLoader(layer_dir("templates")),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(USER_DATA_TEMPLATE)


def node_record(
    *,
    cluster: str,
    node: VmNode,
    private_address: str | None,
    public_address: str | None,
    ssh_user: str,
    jump_host: str | None,
    host_key: HostKey | None,
    instance_id: str | None = None,
) -> dict[str, Any]:
    """What the programs export per node; the provider writes the inventory from it.

    `jump_host` is the public address of the first server when the node has no public address of its own
    (reach it with `-o ProxyJump=<ssh_user>@<jump_host>`), else None. `instance_id` is the cloud's id of the VM:
    a VM made again under the same name has another, so the node is configured again.
    """
    return {
        "name": node.name,
        "vm_name": resource_name(cluster, node.name),
        "instance_id": instance_id,
        "role": node.role,
        "arch": node.arch,
        "private_address": private_address,
        "public_address": public_address,
        "ssh_user": ssh_user,
        "jump_host": jump_host,
        "host_key": host_key.public if host_key else None,
    }


@dataclass(frozen=True)
class NodeRecord:
    """One entry of a stack's `nodes` output, read back (Pulumi leaves out keys whose value was None)."""

    name: str
    vm_name: str
    role: Role
    arch: str
    private_address: str | None
    public_address: str | None
    ssh_user: str
    jump_host: str | None
    host_key: str | None
    instance_id: str | None = None

    @classmethod
    def from_output(cls, value: Mapping[str, Any]) -> NodeRecord:
        role = value.get("role")
        if role not in ("server", "agent"):
            raise ValueError(f"stack output nodes: {value.get('name')!r} has role {role!r}, not server or agent")
        return cls(
            name=str(value["name"]),
            vm_name=str(value["vm_name"]),
            role=role,
            arch=str(value["arch"]),
            private_address=value.get("private_address"),
            public_address=value.get("public_address"),
            ssh_user=str(value["ssh_user"]),
            jump_host=value.get("jump_host"),
            host_key=value.get("host_key"),
            instance_id=value.get("instance_id"),
        )

    def as_output(self) -> dict[str, Any]:
        """The record as the stack exports it (without empty values)."""
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


def generate_host_key(comment: str) -> HostKey:
    """A new ed25519 host key pair in OpenSSH format (what `ssh-keygen -t ed25519` writes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return HostKey(private=private, public=f"{public} {comment}")


def host_keys_from_json(text: str) -> dict[str, HostKey]:
    """Host keys as a stack config value: `{"server-0": {"private": "...", "public": "..."}, ...}`."""
    data = parse_json(text)
    if not isinstance(data, dict):
        raise ValueError("hostKeys: must be an object mapping node names to {private, public}")
    keys: dict[str, HostKey] = {}
    for name, pair in data.items():
        if not (isinstance(pair, dict) and all(isinstance(pair.get(half), str) for half in ("private", "public"))):
            raise ValueError(f"hostKeys.{name}: must be an object with the strings private and public")
        keys[str(name)] = HostKey(private=pair["private"], public=pair["public"])
    return keys
