"""The AWS Pulumi program: VPC, subnet, internet gateway, routes, security group, key pair, instances and Elastic
IPs of one cluster, declared from a plain, typed input (`AwsProgramInput`).

The same function runs inline through the Automation API and from `stacks/aws/__main__.py` under plain
`pulumi up`. Resources, per cluster `<c>` (each tagged `Name` and `oscar-deploy-cluster`):

* VPC `<c>-vpc`, internet gateway `<c>-igw`, subnet `<c>-subnet`, route table `<c>-routes` (default route to the
  gateway) and its association `<c>-routes-subnet`;
* security group `<c>-nodes`: the ingress rules of `vm.firewall_rules` (one rule resource each) and all egress;
* key pair `<c>-key`;
* per node: instance `<c>-<node>` (AMI by id, or the newest by owner, name pattern and architecture; arm64 is
  Graviton), and for the first server (or every node when asked) Elastic IP `<c>-<node>-eip`.

Nodes without an Elastic IP still get an automatic public address for their outbound traffic (package
downloads) without a NAT gateway, which is billed per hour; SSH reaches them through the first server
(`jump_host`), since an automatic address changes when the instance stops.
The AMI and user data only matter at creation: a newer AMI or a changed template never replaces a running
instance (ignore_changes); new nodes get the newest AMI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oscar_deploy.providers.aws.power import CLUSTER_TAG, NODE_TAG, ROLE_TAG
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

# AWS names CPU architectures its own way.
AWS_ARCH = {"amd64": "x86_64", "arm64": "arm64"}
CANONICAL_OWNER = "099720109477"
UBUNTU_2404_NAME = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-*-server-*"
DEFAULT_VPC_CIDR = "10.20.0.0/16"
DEFAULT_SUBNET_CIDR = "10.20.0.0/20"


@dataclass(frozen=True)
class AmiLookup:
    """The newest available AMI of `owner` whose name matches `name` (a pattern with *), per node arch."""

    owner: str = CANONICAL_OWNER
    name: str = UBUNTU_2404_NAME


@dataclass(frozen=True, kw_only=True)
class AwsProgramInput(ClusterShape):
    """Everything the program declares from: the cluster shape plus the AWS specifics."""

    # An AMI id (ami-...), or how to look one up for each architecture the nodes use.
    ami: str | AmiLookup = AmiLookup()
    disk_gb: int = 40
    vpc_cidr: str = DEFAULT_VPC_CIDR
    subnet_cidr: str = DEFAULT_SUBNET_CIDR
    availability_zone: str | None = None


def check_input(spec: AwsProgramInput) -> None:
    check_shape(spec)
    if isinstance(spec.ami, str) and not spec.ami.startswith("ami-"):
        raise ValueError(f"ami: {spec.ami!r} is not an AMI id (ami-...); give one or look it up by owner and name")
    if isinstance(spec.ami, AmiLookup) and not (spec.ami.owner and spec.ami.name):
        raise ValueError("ami: the lookup needs an owner and a name pattern")
    if isinstance(spec.ami, str) and len({node.arch for node in spec.nodes}) > 1:
        raise ValueError("ami: one AMI id cannot boot both amd64 and arm64 nodes; look it up by owner and name")
    if not 8 <= spec.disk_gb <= 16384:
        raise ValueError(f"disk_gb: {spec.disk_gb} is outside 8..16384 GiB; k3s and its images need 20 at least")


def declare(spec: AwsProgramInput) -> None:
    """Declare the cluster's resources in the running Pulumi program and export its nodes."""
    import pulumi

    from oscar_deploy.support.extras import import_extra

    check_input(spec)
    aws: Any = import_extra("pulumi_aws", "aws")
    ec2 = aws.ec2
    name = _namer(spec.cluster)

    def tags(resource: str) -> dict[str, str]:
        return {"Name": name(resource), CLUSTER_TAG: spec.cluster}

    vpc = ec2.Vpc(
        name("vpc"),
        cidr_block=spec.vpc_cidr,
        enable_dns_hostnames=True,
        enable_dns_support=True,
        tags=tags("vpc"),
    )
    gateway = ec2.InternetGateway(name("igw"), vpc_id=vpc.id, tags=tags("igw"))
    subnet = ec2.Subnet(
        name("subnet"),
        vpc_id=vpc.id,
        cidr_block=spec.subnet_cidr,
        availability_zone=spec.availability_zone,
        map_public_ip_on_launch=True,
        tags=tags("subnet"),
    )
    routes = ec2.RouteTable(
        name("routes"),
        vpc_id=vpc.id,
        routes=[ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
        tags=tags("routes"),
    )
    route_association = ec2.RouteTableAssociation(name("routes-subnet"), route_table_id=routes.id, subnet_id=subnet.id)

    group = ec2.SecurityGroup(
        name("nodes"),
        name=name("nodes"),
        description=f"oscar-deploy cluster {spec.cluster}: SSH and Kubernetes API from the allowed CIDRs, "
        "HTTP(S) from anywhere, everything between the cluster's nodes",
        vpc_id=vpc.id,
        tags=tags("nodes"),
    )
    for rule in firewall_rules(spec.allowed_cidrs):
        _declare_rule(aws.vpc, name, group, rule, tags)
    aws.vpc.SecurityGroupEgressRule(
        name("nodes", "egress"),
        security_group_id=group.id,
        ip_protocol="-1",
        cidr_ipv4="0.0.0.0/0",
        description="all outbound traffic",
        tags=tags("nodes-egress"),
    )

    keypair = ec2.KeyPair(name("key"), key_name=name("key"), public_key=spec.public_key, tags=tags("key"))
    images = _images(ec2, spec)

    records: list[Any] = []
    jump_host: Any = None
    for index, node in enumerate(spec.nodes):
        host_key = spec.host_keys.get(node.name)
        instance = ec2.Instance(
            name(node.name),
            ami=images[node.arch],
            instance_type=node.size,
            subnet_id=subnet.id,
            vpc_security_group_ids=[group.id],
            key_name=keypair.key_name,
            user_data=pulumi.Output.secret(render_user_data(spec.cluster, node, host_key)),
            root_block_device=ec2.InstanceRootBlockDeviceArgs(
                volume_size=spec.disk_gb, volume_type="gp3", encrypted=True, delete_on_termination=True
            ),
            # IMDSv2 only: no instance metadata (and no credentials) through a plain GET from a pod.
            metadata_options=ec2.InstanceMetadataOptionsArgs(http_tokens="required", http_endpoint="enabled"),
            tags={**tags(node.name), NODE_TAG: node.name, ROLE_TAG: node.role},
            opts=pulumi.ResourceOptions(ignore_changes=["ami", "user_data"], depends_on=[route_association]),
        )
        public_address: Any = None
        if has_public_address(spec, index):
            elastic_ip = ec2.Eip(
                name(node.name, "eip"),
                domain="vpc",
                instance=instance.id,
                tags=tags(f"{node.name}-eip"),
                opts=pulumi.ResourceOptions(depends_on=[gateway]),
            )
            public_address = elastic_ip.public_ip
            if index == 0:
                jump_host = elastic_ip.public_ip
        records.append(_record(spec, node, host_key, instance.private_ip, public_address, jump_host, instance.id))

    pulumi.export("nodes", pulumi.Output.all(*records))
    pulumi.export("jump_host", jump_host)


def _namer(cluster: str) -> Callable[..., str]:
    def name(*parts: str) -> str:
        return resource_name(cluster, *parts)

    return name


def _images(ec2: Any, spec: AwsProgramInput) -> dict[str, Any]:
    """The AMI of each architecture the nodes use: the given id, or one lookup per architecture."""
    arches = sorted({node.arch for node in spec.nodes})
    if isinstance(spec.ami, str):
        return dict.fromkeys(arches, spec.ami)
    return {
        arch: ec2.get_ami_output(
            owners=[spec.ami.owner],
            most_recent=True,
            filters=[
                ec2.GetAmiFilterArgs(name="name", values=[spec.ami.name]),
                ec2.GetAmiFilterArgs(name="architecture", values=[AWS_ARCH[arch]]),
                ec2.GetAmiFilterArgs(name="state", values=["available"]),
            ],
        ).id
        for arch in arches
    }


def _declare_rule(
    vpc: Any, name: Callable[..., str], group: Any, rule: FirewallRule, tags: Callable[[str], dict[str, str]]
) -> Any:
    arguments: dict[str, Any] = {"security_group_id": group.id, "description": rule.description}
    if rule.port is None:
        arguments.update(ip_protocol="-1", referenced_security_group_id=group.id)
        label = "internal"
    else:
        arguments.update(ip_protocol="tcp", from_port=rule.port, to_port=rule.port)
        arguments["cidr_ipv6" if rule.ipv6 else "cidr_ipv4"] = rule.cidr
        label = f"tcp{rule.port}-{(rule.cidr or '').replace('/', '-').replace(':', '.')}"
    return vpc.SecurityGroupIngressRule(name("nodes", label), tags=tags(f"nodes-{label}"), **arguments)


def _record(
    spec: AwsProgramInput,
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
) -> AwsProgramInput:
    """The program input for a cluster spec: its planned nodes (or `nodes`, e.g. after a scale) and its keys."""
    from oscar_deploy.providers.base import counted_plan
    from oscar_deploy.providers.vm import vm_nodes
    from oscar_deploy.spec.models import AwsSpec

    settings = spec.target_settings()
    if not isinstance(settings, AwsSpec):
        raise ValueError(f"spec target is {spec.target}, not aws")
    return AwsProgramInput(
        cluster=spec.name,
        nodes=vm_nodes(
            counted_plan(spec, spec.workers.initial) if nodes is None else nodes,
            settings.server_instance_type,
            settings.worker_instance_type,
        ),
        ssh_user=settings.ssh_user,
        public_key=public_key,
        allowed_cidrs=tuple(settings.allowed_cidrs),
        public_addresses=settings.elastic_ips,
        host_keys=dict(host_keys or {}),
        ami=settings.ami or AmiLookup(settings.ami_owner, settings.ami_name),
        disk_gb=settings.disk_gb,
    )


def input_from_config(config: Any) -> AwsProgramInput:
    """The program input from a stack's Pulumi config (`stacks/aws/README.md` lists the keys)."""
    from oscar_deploy.nodes.model import PlannedNode
    from oscar_deploy.providers.stack_config import StackConfig
    from oscar_deploy.providers.vm import vm_nodes

    values = StackConfig(config)
    arch = values.choice("arch", ("amd64", "arm64"), "amd64")
    planned = [PlannedNode(f"server-{i}", "server", arch) for i in range(values.count("servers", 1, minimum=1))]
    planned += [PlannedNode(f"agent-{i}", "agent", arch) for i in range(values.count("workers", 1, minimum=0))]
    ami_id = values.text("ami", "")
    ami: str | AmiLookup = ami_id or AmiLookup(
        values.text("amiOwner", CANONICAL_OWNER), values.text("amiName", UBUNTU_2404_NAME)
    )
    spec = AwsProgramInput(
        cluster=values.text("cluster"),
        nodes=vm_nodes(planned, values.text("serverInstanceType"), values.text("workerInstanceType")),
        ssh_user=values.text("sshUser", "ubuntu"),
        public_key=values.text("publicKey"),
        allowed_cidrs=tuple(values.texts("allowedCidrs")),
        public_addresses=values.choice("elasticIps", ("first-server", "all"), "first-server"),
        host_keys=values.host_keys(),
        ami=ami,
        disk_gb=values.count("diskGb", 40, minimum=8),
        availability_zone=values.text("availabilityZone", "") or None,
    )
    values.check(check_input, spec)
    return spec
