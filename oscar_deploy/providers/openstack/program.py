"""The OpenStack Pulumi program: the networks, security group, key pair, ports, servers and floating IPs of one
cluster, declared from a plain, typed input (`OpenStackProgramInput`).

The same function runs inline through the Automation API and from `stacks/openstack/__main__.py` under plain
`pulumi up`. Resources, per cluster `<c>`:

* network `<c>-network`, subnet `<c>-subnet` and router `<c>-router` to the external network (unless an existing
  network is named); the router interface `<c>-router-interface`;
* security group `<c>-nodes` with the rules of `vm.firewall_rules` (one rule resource each);
* key pair `<c>-key` from the cluster's public key;
* per node: port `<c>-<node>-port`, server `<c>-<node>` (flavor and image by name; the cloud resolves them),
  and for the first server (or every node when asked) floating IP `<c>-<node>-fip` bound to the port, created
  after the router interface: Neutron refuses a floating IP for a subnet with no router to the external network.

Exports `nodes` (one `vm.node_record` per node) and `jump_host` (the first server's floating IP).
User data is only read on first boot, so a changed template never replaces a running server (ignore_changes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from oscar_deploy.providers.openstack.power import METADATA_PREFIX
from oscar_deploy.providers.vm import (
    ClusterShape,
    FirewallRule,
    HostKey,
    VmNode,
    check_shape,
    firewall_rules,
    has_public_address,
    node_record,
    render_user_data,
    resource_name,
)

if TYPE_CHECKING:
    from oscar_deploy.nodes.model import PlannedNode
    from oscar_deploy.spec.models import ClusterSpec

DEFAULT_SUBNET_CIDR = "10.20.0.0/22"


@dataclass(frozen=True)
class NewNetwork:
    """A network, subnet and router made for the cluster. /22 leaves room for 1000 nodes."""

    cidr: str = DEFAULT_SUBNET_CIDR
    dns_nameservers: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class OpenStackProgramInput(ClusterShape):
    """Everything the program declares from: the cluster shape plus the OpenStack names it looks up."""

    image: str
    external_network: str
    # The name of an existing network to attach the ports to, or a new network made for the cluster.
    network: str | NewNetwork = field(default_factory=NewNetwork)


def check_input(spec: OpenStackProgramInput) -> None:
    check_shape(spec)
    if not spec.image:
        raise ValueError("image: empty; name an image of the cloud (openstack image list)")
    if not spec.external_network:
        raise ValueError("external_network: empty; name the external network (openstack network list --external)")
    if isinstance(spec.network, str) and not spec.network:
        raise ValueError("network: empty name; name an existing network or leave it out to create one")


def declare(spec: OpenStackProgramInput) -> None:
    """Declare the cluster's resources in the running Pulumi program and export its nodes."""
    import pulumi

    from oscar_deploy.support.extras import import_extra

    check_input(spec)
    openstack: Any = import_extra("pulumi_openstack", "openstack")
    networking = openstack.networking
    name = _namer(spec.cluster)

    external = networking.get_network_output(name=spec.external_network, external=True)
    router_interfaces: list[Any] = []
    subnet_id: Any = None
    if isinstance(spec.network, NewNetwork):
        network = networking.Network(name("network"), name=name("network"), admin_state_up=True)
        subnet = networking.Subnet(
            name("subnet"),
            name=name("subnet"),
            network_id=network.id,
            cidr=spec.network.cidr,
            ip_version=4,
            dns_nameservers=list(spec.network.dns_nameservers),
        )
        router = networking.Router(name("router"), name=name("router"), external_network_id=external.id)
        router_interfaces.append(
            networking.RouterInterface(name("router-interface"), router_id=router.id, subnet_id=subnet.id)
        )
        network_id: Any = network.id
        subnet_id = subnet.id
    else:
        network_id = networking.get_network_output(name=spec.network).id

    group = networking.SecGroup(
        name("nodes"),
        name=name("nodes"),
        description=f"oscar-deploy cluster {spec.cluster}: SSH and Kubernetes API from the allowed CIDRs, "
        "HTTP(S) from anywhere, everything between the cluster's nodes",
    )
    for rule in firewall_rules(spec.allowed_cidrs):
        _declare_rule(networking, name, group, rule)

    keypair = openstack.compute.Keypair(name("key"), name=name("key"), public_key=spec.public_key)

    records: list[Any] = []
    jump_host: Any = None
    for index, node in enumerate(spec.nodes):
        port = networking.Port(
            name(node.name, "port"),
            name=name(node.name),
            network_id=network_id,
            admin_state_up=True,
            security_group_ids=[group.id],
            fixed_ips=[networking.PortFixedIpArgs(subnet_id=subnet_id)] if subnet_id is not None else None,
        )
        host_key = spec.host_keys.get(node.name)
        server = openstack.compute.Instance(
            name(node.name),
            name=name(node.name),
            flavor_name=node.size,
            image_name=spec.image,
            key_pair=keypair.name,
            networks=[openstack.compute.InstanceNetworkArgs(port=port.id)],
            user_data=pulumi.Output.secret(render_user_data(spec.cluster, node, host_key)),
            metadata={
                f"{METADATA_PREFIX}cluster": spec.cluster,
                f"{METADATA_PREFIX}node": node.name,
                f"{METADATA_PREFIX}role": node.role,
                f"{METADATA_PREFIX}arch": node.arch,
            },
            opts=pulumi.ResourceOptions(ignore_changes=["user_data"]),
        )
        public_address: Any = None
        if has_public_address(spec, index):
            floating_ip = networking.FloatingIp(
                name(node.name, "fip"),
                pool=spec.external_network,
                port_id=port.id,
                description=f"oscar-deploy cluster {spec.cluster}: {node.name}",
                opts=pulumi.ResourceOptions(depends_on=router_interfaces),
            )
            public_address = floating_ip.address
            if index == 0:
                jump_host = floating_ip.address
        private_address = port.all_fixed_ips.apply(lambda ips: ips[0] if ips else None)
        records.append(_record(spec, node, host_key, private_address, public_address, jump_host, server.id))

    pulumi.export("nodes", pulumi.Output.all(*records))
    pulumi.export("jump_host", jump_host)


def _namer(cluster: str) -> Callable[..., str]:
    def name(*parts: str) -> str:
        return resource_name(cluster, *parts)

    return name


def _declare_rule(networking: Any, name: Callable[..., str], group: Any, rule: FirewallRule) -> Any:
    arguments: dict[str, Any] = {
        "direction": "ingress",
        "ethertype": "IPv6" if rule.ipv6 else "IPv4",
        "security_group_id": group.id,
        "description": rule.description,
    }
    if rule.port is not None:
        arguments.update(protocol="tcp", port_range_min=rule.port, port_range_max=rule.port)
    if rule.cidr is None:
        arguments["remote_group_id"] = group.id
        label = "internal"
    else:
        arguments["remote_ip_prefix"] = rule.cidr
        label = f"tcp{rule.port}-{rule.cidr.replace('/', '-').replace(':', '.')}"
    return networking.SecGroupRule(name("nodes", label), **arguments)


def _record(
    spec: OpenStackProgramInput,
    node: VmNode,
    host_key: HostKey | None,
    private_address: Any,
    public_address: Any,
    jump_host: Any,
    instance_id: Any,
) -> Any:
    import pulumi

    own_public = public_address is not None

    def build(values: list[Any]) -> dict[str, Any]:
        private, public, jump, instance = values
        return node_record(
            cluster=spec.cluster,
            node=node,
            private_address=private,
            public_address=public,
            ssh_user=spec.ssh_user,
            jump_host=None if own_public else jump,
            host_key=host_key,
            instance_id=instance,
        )

    return pulumi.Output.all(private_address, public_address, jump_host, instance_id).apply(build)


def input_from_spec(
    spec: ClusterSpec,
    *,
    public_key: str,
    nodes: Sequence[PlannedNode] | None = None,
    host_keys: Mapping[str, HostKey] | None = None,
) -> OpenStackProgramInput:
    """The program input for a cluster spec: its planned nodes (or `nodes`, e.g. after a scale) and its keys."""
    from oscar_deploy.providers.base import counted_plan
    from oscar_deploy.providers.vm import vm_nodes
    from oscar_deploy.spec.models import OpenStackSpec

    settings = spec.target_settings()
    if not isinstance(settings, OpenStackSpec):
        raise ValueError(f"spec target is {spec.target}, not openstack")
    return OpenStackProgramInput(
        cluster=spec.name,
        nodes=vm_nodes(
            counted_plan(spec, spec.workers.initial) if nodes is None else nodes,
            settings.server_flavor,
            settings.worker_flavor,
        ),
        ssh_user=settings.ssh_user,
        public_key=public_key,
        allowed_cidrs=tuple(settings.allowed_cidrs),
        public_addresses=settings.floating_ips,
        host_keys=dict(host_keys or {}),
        image=settings.image,
        external_network=settings.external_network,
        network=settings.network or NewNetwork(),
    )


def input_from_config(config: Any) -> OpenStackProgramInput:
    """The program input from a stack's Pulumi config (`stacks/openstack/README.md` lists the keys)."""
    from oscar_deploy.nodes.model import PlannedNode
    from oscar_deploy.providers.stack_config import StackConfig
    from oscar_deploy.providers.vm import vm_nodes

    values = StackConfig(config)
    arch = values.choice("arch", ("amd64", "arm64"), "amd64")
    planned = [PlannedNode(f"server-{i}", "server", arch) for i in range(values.count("servers", 1, minimum=1))]
    planned += [PlannedNode(f"agent-{i}", "agent", arch) for i in range(values.count("workers", 1, minimum=0))]
    existing = values.text("network", "")
    network: str | NewNetwork = (
        existing
        if existing
        else NewNetwork(values.text("subnetCidr", DEFAULT_SUBNET_CIDR), tuple(values.texts("dnsNameservers", [])))
    )
    spec = OpenStackProgramInput(
        cluster=values.text("cluster"),
        nodes=vm_nodes(planned, values.text("serverFlavor"), values.text("workerFlavor")),
        ssh_user=values.text("sshUser", "ubuntu"),
        public_key=values.text("publicKey"),
        allowed_cidrs=tuple(values.texts("allowedCidrs")),
        public_addresses=values.choice("floatingIps", ("first-server", "all"), "first-server"),
        host_keys=values.host_keys(),
        image=values.text("image"),
        external_network=values.text("externalNetwork", "public"),
        network=network,
    )
    values.check(check_input, spec)
    return spec
