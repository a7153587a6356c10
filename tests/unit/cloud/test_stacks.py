"""stacks/openstack and stacks/aws as plain `pulumi up` runs them: the project file, __main__.py and the config."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pulumi
import pytest
import yaml

from oscar_deploy.providers.vm import generate_host_key
from tests.unit.cloud.conftest import PUBLIC_KEY, aws_invokes, openstack_invokes
from tests.unit.cloud.pulumi_harness import ProgramRun, run_program

STACKS = Path(__file__).resolve().parents[3] / "stacks"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

OPENSTACK_CONFIG = {
    "cluster": "lab",
    "image": "Ubuntu 24.04",
    "serverFlavor": "m1.large",
    "workerFlavor": "m1.medium",
    "workers": "2",
    "allowedCidrs": '["203.0.113.7/32"]',
    "publicKey": PUBLIC_KEY,
}
AWS_CONFIG = {
    "cluster": "lab",
    "arch": "arm64",
    "serverInstanceType": "t4g.large",
    "workerInstanceType": "t4g.medium",
    "workers": "2",
    "allowedCidrs": '["203.0.113.7/32"]',
    "publicKey": PUBLIC_KEY,
}


def run_stack(cloud: str, config: dict[str, str]) -> ProgramRun:
    project = yaml.safe_load((STACKS / cloud / "Pulumi.yaml").read_text())["name"]
    invokes = openstack_invokes() if cloud == "openstack" else aws_invokes()
    return run_program(
        lambda: runpy.run_path(str(STACKS / cloud / "__main__.py")),
        invokes,
        project=project,
        config={f"{project}:{key}": value for key, value in config.items()},
    )


@pytest.mark.parametrize("cloud", ["openstack", "aws"])
def test_project_files_are_plain_pulumi_python_projects(cloud: str) -> None:
    project = yaml.safe_load((STACKS / cloud / "Pulumi.yaml").read_text())
    assert project["runtime"] == "python"
    assert project["name"] == f"oscar-{cloud}"
    readme = (STACKS / cloud / "README.md").read_text()
    keys = OPENSTACK_CONFIG if cloud == "openstack" else AWS_CONFIG
    for key in keys:
        assert f"| `{key}` |" in readme, f"{cloud} README does not document {key}"


def test_openstack_stack_reads_its_config() -> None:
    host_key = generate_host_key("root@server-0")
    result = run_stack(
        "openstack",
        {
            **OPENSTACK_CONFIG,
            "servers": "3",
            "floatingIps": "all",
            "network": "shared-net",
            "hostKeys": json.dumps({"server-0": {"private": host_key.private, "public": host_key.public}}),
        },
    )
    instances = result.of_type("openstack:compute/instance:Instance")
    assert sorted(i.name for i in instances) == [
        "lab-agent-0",
        "lab-agent-1",
        "lab-server-0",
        "lab-server-1",
        "lab-server-2",
    ]
    assert len(result.of_type("openstack:networking/floatingIp:FloatingIp")) == 5
    assert not result.of_type("openstack:networking/network:Network")
    server = yaml.safe_load(result.named("lab-server-0").inputs["userData"])
    assert server["ssh_keys"]["ed25519_public"] == host_key.public
    rules = {r.inputs.get("remoteIpPrefix") for r in result.of_type("openstack:networking/secGroupRule:SecGroupRule")}
    assert rules == {"203.0.113.7/32", "0.0.0.0/0", None}


def test_aws_stack_reads_its_config() -> None:
    result = run_stack("aws", {**AWS_CONFIG, "diskGb": "60", "ami": "ami-0123456789abcdef0"})
    instances = result.of_type("aws:ec2/instance:Instance")
    assert len(instances) == 3
    assert {i.inputs["ami"] for i in instances} == {"ami-0123456789abcdef0"}
    assert {i.inputs["rootBlockDevice"]["volumeSize"] for i in instances} == {60}
    assert [record["arch"] for record in result.exports["nodes"]] == ["arm64"] * 3


@pytest.mark.parametrize(
    ("cloud", "changes", "message"),
    [
        ("openstack", {"cluster": None}, "stack config cluster: not set; run: pulumi config set cluster VALUE"),
        (
            "openstack",
            {"workers": "two"},
            "stack config workers: 'two' is not a whole number; run: pulumi config set workers 1",
        ),
        ("openstack", {"servers": "0"}, "stack config servers: 0 is below 1; run: pulumi config set servers 1"),
        (
            "openstack",
            {"allowedCidrs": "203.0.113.7/32"},
            "stack config allowedCidrs: must be a JSON list of strings; run: pulumi config set allowedCidrs "
            "'[\"203.0.113.7/32\"]'",
        ),
        (
            "openstack",
            {"floatingIps": "some"},
            "stack config floatingIps: 'some' is not one of first-server, all; "
            "run: pulumi config set floatingIps first-server",
        ),
        (
            "openstack",
            {"allowedCidrs": '["nowhere"]'},
            "stack config: allowed_cidrs: 'nowhere' is not a CIDR such as 203.0.113.0/24; fix it",
        ),
        (
            "openstack",
            {"hostKeys": '{"server-0": "key"}'},
            "stack config hostKeys: must be an object with the strings private and public; run: pulumi config set "
            "hostKeys --secret < host-keys.json",
        ),
        (
            "aws",
            {"arch": "riscv64"},
            "stack config arch: 'riscv64' is not one of amd64, arm64; run: pulumi config set arch amd64",
        ),
        ("aws", {"ami": "ubuntu"}, "stack config: ami: 'ubuntu' is not an AMI id"),
    ],
)
def test_bad_stack_config_is_one_line_naming_the_key(cloud: str, changes: dict[str, str | None], message: str) -> None:
    config = dict(OPENSTACK_CONFIG if cloud == "openstack" else AWS_CONFIG)
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    with pytest.raises(pulumi.RunError) as raised:
        run_stack(cloud, config)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
