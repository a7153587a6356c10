"""The OpenStack program under Pulumi mocks: what it declares, wired how, named how, with which secrets."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from oscar_deploy.providers.cloud import vms_in
from oscar_deploy.providers.openstack.program import NewNetwork, OpenStackProgramInput, declare
from oscar_deploy.providers.openstack.provider import OpenStackProvider
from oscar_deploy.providers.vm import HostKey
from tests.unit.cloud.conftest import EXTERNAL_NETWORK_ID, PUBLIC_KEY, nodes, openstack_invokes
from tests.unit.cloud.pulumi_harness import ProgramRun, run_program

INSTANCE = "openstack:compute/instance:Instance"
PORT = "openstack:networking/port:Port"
FLOATING_IP = "openstack:networking/floatingIp:FloatingIp"
RULE = "openstack:networking/secGroupRule:SecGroupRule"
ROUTER_INTERFACE = "openstack:networking/routerInterface:RouterInterface"
NETWORK = "openstack:networking/network:Network"
SUBNET = "openstack:networking/subnet:Subnet"
ROUTER = "openstack:networking/router:Router"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def spec_with(**changes: object) -> OpenStackProgramInput:
    base = OpenStackProgramInput(
        cluster="lab",
        nodes=nodes(3, 4, server_size="m1.large", worker_size="m1.medium"),
        ssh_user="ubuntu",
        public_key=PUBLIC_KEY,
        allowed_cidrs=("203.0.113.0/24",),
        image="Ubuntu 24.04",
        external_network="public",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def run(spec: OpenStackProgramInput) -> ProgramRun:
    return run_program(lambda: declare(spec), openstack_invokes())


def test_counts_per_role_flavors_and_image() -> None:
    result = run(spec_with())
    instances = result.of_type(INSTANCE)
    roles = sorted(instance.inputs["metadata"]["oscar-deploy-role"] for instance in instances)
    assert roles == ["agent"] * 4 + ["server"] * 3
    for instance in instances:
        role = instance.inputs["metadata"]["oscar-deploy-role"]
        assert instance.inputs["flavorName"] == ("m1.large" if role == "server" else "m1.medium")
        assert instance.inputs["imageName"] == "Ubuntu 24.04"
    assert len(result.of_type(PORT)) == 7
    for single in (NETWORK, SUBNET, ROUTER, ROUTER_INTERFACE, "openstack:networking/secGroup:SecGroup"):
        assert len(result.of_type(single)) == 1, single
    assert len(result.of_type(FLOATING_IP)) == 1


def test_every_name_starts_with_the_cluster_name() -> None:
    result = run(spec_with())
    assert result.resources
    for resource in result.resources:
        assert resource.name.startswith("lab-"), resource.name
        if "name" in resource.inputs:
            assert resource.inputs["name"].startswith("lab-"), (resource.type, resource.inputs["name"])
    assert {instance.inputs["name"] for instance in result.of_type(INSTANCE)} == {
        *(f"lab-server-{i}" for i in range(3)),
        *(f"lab-agent-{i}" for i in range(4)),
    }


def test_one_port_per_node_carries_the_security_group_and_the_server_boots_on_it() -> None:
    result = run(spec_with())
    group_id = f"{result.named('lab-nodes').name}-id"
    for instance in result.of_type(INSTANCE):
        port = result.named(f"{instance.name}-port")
        assert port.inputs["securityGroupIds"] == [group_id]
        assert port.inputs["networkId"] == "lab-network-id"
        assert port.inputs["fixedIps"] == [{"subnetId": "lab-subnet-id"}]
        assert instance.inputs["networks"] == [{"port": f"{instance.name}-port-id"}]
        assert "securityGroups" not in instance.inputs  # groups sit on the port, not the server


def test_security_group_rules_and_their_cidrs() -> None:
    result = run(spec_with(allowed_cidrs=("203.0.113.0/24", "2001:db8::/32")))
    rules = {
        (
            rule.inputs["ethertype"],
            rule.inputs.get("protocol"),
            rule.inputs.get("portRangeMin"),
            rule.inputs.get("portRangeMax"),
            rule.inputs.get("remoteIpPrefix"),
            rule.inputs.get("remoteGroupId"),
        )
        for rule in result.of_type(RULE)
    }
    assert rules == {
        ("IPv4", "tcp", 22, 22, "203.0.113.0/24", None),
        ("IPv6", "tcp", 22, 22, "2001:db8::/32", None),
        ("IPv4", "tcp", 6443, 6443, "203.0.113.0/24", None),
        ("IPv6", "tcp", 6443, 6443, "2001:db8::/32", None),
        ("IPv4", "tcp", 80, 80, "0.0.0.0/0", None),
        ("IPv4", "tcp", 443, 443, "0.0.0.0/0", None),
        ("IPv4", None, None, None, None, "lab-nodes-id"),
    }
    assert len(result.of_type(RULE)) == 7
    for rule in result.of_type(RULE):
        assert rule.inputs["direction"] == "ingress"
        assert rule.inputs["securityGroupId"] == "lab-nodes-id"


def test_floating_ip_on_the_first_server_only_after_the_router_interface() -> None:
    result = run(spec_with())
    (floating_ip,) = result.of_type(FLOATING_IP)
    assert floating_ip.name == "lab-server-0-fip"
    assert floating_ip.inputs["portId"] == "lab-server-0-port-id"
    assert floating_ip.inputs["pool"] == "public"
    (interface,) = result.of_type(ROUTER_INTERFACE)
    assert floating_ip.depends_on(interface)
    assert interface.inputs == {"routerId": "lab-router-id", "subnetId": "lab-subnet-id"}
    assert result.named("lab-router").inputs["externalNetworkId"] == EXTERNAL_NETWORK_ID

    records = {record["name"]: record for record in result.exports["nodes"]}
    address = records["server-0"]["public_address"]
    assert result.exports["jump_host"] == address
    assert "jump_host" not in records["server-0"]
    for name in ("server-1", "server-2", "agent-0", "agent-3"):
        assert "public_address" not in records[name]
        assert records[name]["jump_host"] == address


def test_floating_ips_on_every_node_when_asked() -> None:
    result = run(spec_with(public_addresses="all"))
    floating_ips = result.of_type(FLOATING_IP)
    assert sorted(fip.name for fip in floating_ips) == sorted(f"{i.name}-fip" for i in result.of_type(INSTANCE))
    (interface,) = result.of_type(ROUTER_INTERFACE)
    assert all(fip.depends_on(interface) for fip in floating_ips)
    for record in result.exports["nodes"]:
        assert record["public_address"].startswith("203.0.113.")
        assert "jump_host" not in record


def test_an_existing_network_is_looked_up_and_nothing_is_made_for_it() -> None:
    result = run(spec_with(network="shared-net"))
    for made in (NETWORK, SUBNET, ROUTER, ROUTER_INTERFACE):
        assert not result.of_type(made), made
    assert ("openstack:networking/getNetwork:getNetwork", {"name": "shared-net"}) in [
        (token, {k: v for k, v in args.items() if v is not None}) for token, args in result.mocks.calls
    ]
    for port in result.of_type(PORT):
        assert port.inputs["networkId"] == "shared-net-id"
        assert "fixedIps" not in port.inputs
    (floating_ip,) = result.of_type(FLOATING_IP)
    assert [result.by_urn(urn).type for urn in floating_ip.dependencies] == [PORT]


def test_key_pair_from_the_cluster_key() -> None:
    result = run(spec_with())
    (keypair,) = result.of_type("openstack:compute/keypair:Keypair")
    assert keypair.inputs == {"name": "lab-key", "publicKey": PUBLIC_KEY}
    assert {instance.inputs["keyPair"] for instance in result.of_type(INSTANCE)} == {"lab-key"}


def test_user_data_content(host_keys: dict[str, HostKey]) -> None:
    result = run(spec_with(host_keys=host_keys, network=NewNetwork(dns_nameservers=("192.0.2.53",))))
    server = result.named("lab-server-0")
    text = server.inputs["userData"]
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    assert config["hostname"] == "lab-server-0"
    assert config["ssh_pwauth"] is False
    assert config["disable_root"] is True
    assert config["ssh_deletekeys"] is True
    assert config["ssh_keys"] == {
        "ed25519_private": host_keys["server-0"].private,
        "ed25519_public": host_keys["server-0"].public,
    }
    (facts,) = config["write_files"]
    assert facts["path"] == "/etc/oscar-deploy/node.json"
    assert yaml.safe_load(facts["content"]) == {"cluster": "lab", "node": "server-0", "role": "server", "arch": "amd64"}
    without_key = yaml.safe_load(result.named("lab-agent-1").inputs["userData"])
    assert "ssh_keys" not in without_key
    assert without_key["hostname"] == "lab-agent-1"
    assert result.named("lab-subnet").inputs["dnsNameservers"] == ["192.0.2.53"]


def test_user_data_is_secret_ignored_after_boot_and_private_keys_appear_nowhere_else(
    host_keys: dict[str, HostKey],
) -> None:
    result = run(spec_with(host_keys=host_keys))
    for instance in result.of_type(INSTANCE):
        assert instance.secret_inputs == {"userData"}
        assert instance.ignore_changes == ["userData"]
    for key in host_keys.values():
        private_body = key.private.splitlines()[1]
        for resource in result.resources:
            for name, value in resource.inputs.items():
                if name not in resource.secret_inputs:
                    assert private_body not in str(value), (resource.name, name)
        assert private_body not in str(result.exports)
    records = {record["name"]: record for record in result.exports["nodes"]}
    assert records["server-0"]["host_key"] == host_keys["server-0"].public


def test_exported_node_records() -> None:
    result = run(spec_with(nodes=nodes(1, 1, server_size="m1.large", worker_size="m1.medium", arch="arm64")))
    server, agent = result.exports["nodes"]
    # The mocks hand out addresses in the order the ports register, which the engine does not fix.
    addresses = sorted((server.pop("private_address"), agent.pop("private_address")))
    assert addresses == ["10.20.0.10", "10.20.0.11"]
    assert server == {
        "name": "server-0",
        "vm_name": "lab-server-0",
        "instance_id": "lab-server-0-id",
        "role": "server",
        "arch": "arm64",
        "public_address": "203.0.113.10",
        "ssh_user": "ubuntu",
    }
    assert agent == {
        "name": "agent-0",
        "vm_name": "lab-agent-0",
        "instance_id": "lab-agent-0-id",
        "role": "agent",
        "arch": "arm64",
        "ssh_user": "ubuntu",
        "jump_host": "203.0.113.10",
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cluster": "Lab"}, "cluster: 'Lab' is not a valid name"),
        ({"image": ""}, "image: empty; name an image of the cloud"),
        ({"external_network": ""}, "external_network: empty"),
        ({"network": ""}, "network: empty name"),
        ({"allowed_cidrs": ()}, "allowed_cidrs: empty, so nobody could reach SSH"),
        ({"allowed_cidrs": ("10.0.0.300/8",)}, "allowed_cidrs: '10.0.0.300/8' is not a CIDR"),
        ({"public_key": "AAAA"}, "public_key: not an OpenSSH public key"),
        ({"public_addresses": "some"}, "public addresses: 'some'; use first-server or all"),
    ],
)
def test_bad_input_is_refused_before_anything_is_declared(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        run(spec_with(**changes))


def test_input_from_a_cluster_spec(host_keys: dict[str, HostKey]) -> None:
    from oscar_deploy.providers.base import PlannedNode
    from oscar_deploy.providers.openstack.program import input_from_spec
    from oscar_deploy.spec.models import parse_spec

    spec = parse_spec(
        "name: egi-lab\ntarget: openstack\nservers: {count: 3}\nworkers: {initial: 2, max: 4}\n"
        "openstack: {image: 'Image for EGI Ubuntu 24.04', server_flavor: m2.large, worker_flavor: m2.small,\n"
        "  network: vo-net, floating_ips: all, arch: arm64, allowed_cidrs: [198.51.100.0/24]}\n"
    )
    program_input = input_from_spec(spec, public_key=PUBLIC_KEY, host_keys=host_keys)
    assert program_input.cluster == "egi-lab"
    assert [(n.name, n.role, n.size, n.arch) for n in program_input.nodes] == [
        ("server-0", "server", "m2.large", "arm64"),
        ("server-1", "server", "m2.large", "arm64"),
        ("server-2", "server", "m2.large", "arm64"),
        ("agent-0", "agent", "m2.small", "arm64"),
        ("agent-1", "agent", "m2.small", "arm64"),
    ]
    assert (program_input.network, program_input.public_addresses) == ("vo-net", "all")
    assert program_input.allowed_cidrs == ("198.51.100.0/24",)
    scaled = input_from_spec(spec, public_key=PUBLIC_KEY, nodes=[PlannedNode("server-0", "server", "arm64")])
    assert [node.name for node in scaled.nodes] == ["server-0"]
    result = run(program_input)
    assert len(result.of_type(FLOATING_IP)) == 5
    assert input_from_spec(parse_spec("name: x\ntarget: openstack\n"), public_key=PUBLIC_KEY).network == NewNetwork()


def test_the_provider_finds_each_node_vm_among_the_stack_resources() -> None:
    """`up` after an update that failed half-way reads the VMs it made from the stack's resources by type and name."""
    spec = spec_with()
    result = run(spec)
    found = vms_in([resource.urn for resource in result.resources], "lab", OpenStackProvider.vm_type)
    assert found == {node.name for node in spec.nodes}
