"""The AWS program under Pulumi mocks: network, rules, AMI lookup, Elastic IPs, names, secrets."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from oscar_deploy.providers.aws.program import CANONICAL_OWNER, UBUNTU_2404_NAME, AwsProgramInput, declare
from oscar_deploy.providers.aws.provider import AwsProvider
from oscar_deploy.providers.cloud import vms_in
from oscar_deploy.providers.vm import HostKey, VmNode
from tests.unit.cloud.conftest import PUBLIC_KEY, aws_invokes, nodes
from tests.unit.cloud.pulumi_harness import ProgramRun, run_program

INSTANCE = "aws:ec2/instance:Instance"
EIP = "aws:ec2/eip:Eip"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
GET_AMI = "aws:ec2/getAmi:getAmi"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def spec_with(**changes: object) -> AwsProgramInput:
    base = AwsProgramInput(
        cluster="lab",
        nodes=nodes(1, 3, server_size="t4g.large", worker_size="t4g.medium", arch="arm64"),
        ssh_user="ubuntu",
        public_key=PUBLIC_KEY,
        allowed_cidrs=("203.0.113.0/24",),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def run(spec: AwsProgramInput) -> ProgramRun:
    return run_program(lambda: declare(spec), aws_invokes())


def test_network_counts_and_routes() -> None:
    result = run(spec_with())
    for single in (
        "aws:ec2/vpc:Vpc",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/keyPair:KeyPair",
    ):
        assert len(result.of_type(single)) == 1, single
    assert result.named("lab-vpc").inputs["cidrBlock"] == "10.20.0.0/16"
    assert result.named("lab-igw").inputs["vpcId"] == "lab-vpc-id"
    subnet = result.named("lab-subnet").inputs
    assert (subnet["vpcId"], subnet["cidrBlock"], subnet["mapPublicIpOnLaunch"]) == ("lab-vpc-id", "10.20.0.0/20", True)
    assert result.named("lab-routes").inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": "lab-igw-id"}]
    association = result.named("lab-routes-subnet").inputs
    assert association == {"routeTableId": "lab-routes-id", "subnetId": "lab-subnet-id"}


def test_counts_per_role_instance_types_and_names() -> None:
    result = run(spec_with())
    instances = result.of_type(INSTANCE)
    roles = sorted(instance.inputs["tags"]["oscar-deploy-role"] for instance in instances)
    assert roles == ["agent", "agent", "agent", "server"]
    for instance in instances:
        expected = "t4g.large" if instance.inputs["tags"]["oscar-deploy-role"] == "server" else "t4g.medium"
        assert instance.inputs["instanceType"] == expected
        assert instance.inputs["subnetId"] == "lab-subnet-id"
        assert instance.inputs["vpcSecurityGroupIds"] == ["lab-nodes-id"]
        assert instance.inputs["keyName"] == "lab-key"
        assert instance.inputs["rootBlockDevice"] == {
            "volumeSize": 40,
            "volumeType": "gp3",
            "encrypted": True,
            "deleteOnTermination": True,
        }
        assert instance.inputs["metadataOptions"] == {"httpTokens": "required", "httpEndpoint": "enabled"}
    for resource in result.resources:
        assert resource.name.startswith("lab-"), resource.name
        if "tags" in resource.inputs:
            assert resource.inputs["tags"]["Name"].startswith("lab-")
            assert resource.inputs["tags"]["oscar-deploy-cluster"] == "lab"


def test_security_group_rules_and_their_cidrs() -> None:
    result = run(spec_with(allowed_cidrs=("203.0.113.0/24", "2001:db8::/32")))
    rules = {
        (
            rule.inputs["ipProtocol"],
            rule.inputs.get("fromPort"),
            rule.inputs.get("toPort"),
            rule.inputs.get("cidrIpv4"),
            rule.inputs.get("cidrIpv6"),
            rule.inputs.get("referencedSecurityGroupId"),
        )
        for rule in result.of_type(INGRESS)
    }
    assert rules == {
        ("tcp", 22, 22, "203.0.113.0/24", None, None),
        ("tcp", 22, 22, None, "2001:db8::/32", None),
        ("tcp", 6443, 6443, "203.0.113.0/24", None, None),
        ("tcp", 6443, 6443, None, "2001:db8::/32", None),
        ("tcp", 80, 80, "0.0.0.0/0", None, None),
        ("tcp", 443, 443, "0.0.0.0/0", None, None),
        ("-1", None, None, None, None, "lab-nodes-id"),
    }
    assert len(result.of_type(INGRESS)) == 7
    assert all(rule.inputs["securityGroupId"] == "lab-nodes-id" for rule in result.of_type(INGRESS))
    (egress,) = result.of_type(EGRESS)
    assert (egress.inputs["ipProtocol"], egress.inputs["cidrIpv4"]) == ("-1", "0.0.0.0/0")


def test_ami_looked_up_by_owner_name_and_arch() -> None:
    result = run(spec_with())
    ((token, args),) = result.mocks.calls
    assert token == GET_AMI
    assert args["owners"] == [CANONICAL_OWNER]
    assert args["mostRecent"] is True
    assert {item["name"]: item["values"] for item in args["filters"]} == {
        "name": [UBUNTU_2404_NAME],
        "architecture": ["arm64"],
        "state": ["available"],
    }
    assert {instance.inputs["ami"] for instance in result.of_type(INSTANCE)} == {"ami-arm64"}


def test_mixed_architectures_get_one_lookup_each() -> None:
    mixed = (VmNode("server-0", "server", "t3.large", "amd64"), VmNode("agent-0", "agent", "t4g.medium", "arm64"))
    result = run(spec_with(nodes=mixed))
    arches = sorted(
        next(item["values"][0] for item in args["filters"] if item["name"] == "architecture")
        for _, args in result.mocks.calls
    )
    assert arches == ["arm64", "x86_64"]
    assert result.named("lab-server-0").inputs["ami"] == "ami-x8664"
    assert result.named("lab-agent-0").inputs["ami"] == "ami-arm64"
    assert [record["arch"] for record in result.exports["nodes"]] == ["amd64", "arm64"]


def test_an_ami_id_is_used_as_given() -> None:
    result = run(spec_with(ami="ami-0123456789abcdef0"))
    assert result.mocks.calls == []
    assert {instance.inputs["ami"] for instance in result.of_type(INSTANCE)} == {"ami-0123456789abcdef0"}


def test_elastic_ip_on_the_first_server_only_after_the_gateway() -> None:
    result = run(spec_with())
    (elastic_ip,) = result.of_type(EIP)
    assert elastic_ip.name == "lab-server-0-eip"
    assert elastic_ip.inputs["domain"] == "vpc"
    assert elastic_ip.inputs["instance"] == "lab-server-0-id"
    assert elastic_ip.depends_on(result.named("lab-igw"))
    records = {record["name"]: record for record in result.exports["nodes"]}
    address = records["server-0"]["public_address"]
    assert result.exports["jump_host"] == address
    for name in ("agent-0", "agent-1", "agent-2"):
        assert "public_address" not in records[name]
        assert records[name]["jump_host"] == address
        assert records[name]["private_address"].startswith("10.20.0.")


def test_elastic_ips_on_every_node_when_asked() -> None:
    result = run(spec_with(public_addresses="all"))
    assert sorted(eip.inputs["instance"] for eip in result.of_type(EIP)) == sorted(
        f"{instance.name}-id" for instance in result.of_type(INSTANCE)
    )
    assert all("jump_host" not in record for record in result.exports["nodes"])


def test_instances_wait_for_the_route_and_keep_their_ami_and_user_data() -> None:
    result = run(spec_with())
    association = result.named("lab-routes-subnet")
    for instance in result.of_type(INSTANCE):
        assert instance.depends_on(association)
        assert instance.ignore_changes == ["ami", "userData"]
        assert instance.secret_inputs == {"userData"}


def test_user_data_and_secrets(host_keys: dict[str, HostKey]) -> None:
    result = run(spec_with(host_keys=host_keys))
    config = yaml.safe_load(result.named("lab-server-0").inputs["userData"])
    assert config["hostname"] == "lab-server-0"
    assert config["ssh_keys"]["ed25519_private"] == host_keys["server-0"].private
    private_body = host_keys["server-0"].private.splitlines()[1]
    for resource in result.resources:
        for name, value in resource.inputs.items():
            if name not in resource.secret_inputs:
                assert private_body not in str(value), (resource.name, name)
    assert private_body not in str(result.exports)


def test_key_pair_from_the_cluster_key() -> None:
    result = run(spec_with())
    (keypair,) = result.of_type("aws:ec2/keyPair:KeyPair")
    assert (keypair.inputs["keyName"], keypair.inputs["publicKey"]) == ("lab-key", PUBLIC_KEY)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ami": "ubuntu"}, "ami: 'ubuntu' is not an AMI id"),
        ({"disk_gb": 7}, "disk_gb: 7 is outside 8..16384 GiB"),
        ({"disk_gb": 16385}, "disk_gb: 16385 is outside 8..16384 GiB"),
        (
            {
                "ami": "ami-0123456789abcdef0",
                "nodes": (VmNode("server-0", "server", "t3.large"), VmNode("agent-0", "agent", "t4g.large", "arm64")),
            },
            "ami: one AMI id cannot boot both amd64 and arm64 nodes",
        ),
        ({"nodes": (VmNode("agent-0", "agent", "t3.large"),)}, "nodes: the first node must be a server"),
        (
            {"nodes": (VmNode("server-0", "server", "t3.large"), VmNode("server-0", "server", "t3.large"))},
            "nodes: 'server-0' appears twice",
        ),
        ({"nodes": (VmNode("server-0", "agent", "t3.large"),)}, "nodes: the first node must be a server"),
        (
            {"nodes": (VmNode("server-0", "server", "t3.large"), VmNode("agent-0", "server", "t3.large"))},
            "nodes: 'agent-0' has role server",
        ),
        ({"nodes": (VmNode("server-0", "server", "t3.large", "riscv64"),)}, "nodes: 'server-0' has arch 'riscv64'"),
        ({"host_keys": {"agent-9": HostKey("x", "y")}}, "host_keys: agent-9 not among the nodes"),
    ],
)
def test_bad_input_is_refused_before_anything_is_declared(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        run(spec_with(**changes))


def test_disk_size_boundaries_are_accepted() -> None:
    for size in (8, 16384):
        result = run(spec_with(disk_gb=size))
        assert {i.inputs["rootBlockDevice"]["volumeSize"] for i in result.of_type(INSTANCE)} == {size}


def test_input_from_a_cluster_spec() -> None:
    from oscar_deploy.providers.aws.program import AmiLookup, input_from_spec
    from oscar_deploy.spec.models import parse_spec

    spec = parse_spec(
        "name: lab\ntarget: aws\nworkers: {initial: 2}\n"
        "aws: {arch: arm64, server_instance_type: t4g.large, worker_instance_type: t4g.small, disk_gb: 80,\n"
        "  elastic_ips: all, ami_owner: '123456789012', ami_name: 'custom-*'}\n"
    )
    program_input = input_from_spec(spec, public_key=PUBLIC_KEY)
    assert program_input.ami == AmiLookup("123456789012", "custom-*")
    assert (program_input.disk_gb, program_input.public_addresses) == (80, "all")
    assert [(n.size, n.arch) for n in program_input.nodes] == [("t4g.large", "arm64")] + [("t4g.small", "arm64")] * 2
    result = run(program_input)
    assert len(result.of_type(EIP)) == 3
    ((_, args),) = result.mocks.calls
    assert args["owners"] == ["123456789012"]
    pinned = parse_spec("name: lab\ntarget: aws\naws: {ami: ami-0123456789abcdef0}\n")
    assert input_from_spec(pinned, public_key=PUBLIC_KEY).ami == "ami-0123456789abcdef0"


def test_the_provider_finds_each_node_vm_among_the_stack_resources() -> None:
    """`up` after an update that failed half-way reads the VMs it made from the stack's resources by type and name."""
    spec = spec_with()
    result = run(spec)
    found = vms_in([resource.urn for resource in result.resources], "lab", AwsProvider.vm_type)
    assert found == {node.name for node in spec.nodes}
