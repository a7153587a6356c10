"""`up` and power on target aws through typer's runner: boto3 talks to moto's EC2 server on 127.0.0.1 (and the
Service Quotas double) for the preflight and for stopping and starting instances; the Pulumi runner is the
recording fake whose responder stands for the program (tests/unit/cloud/cloud_env.py).

moto's instances stand for the ones the stack would make: the responder hands out their ids.
"""

from __future__ import annotations

import json

import boto3
import pytest

from oscar_deploy.iac.runner import ConfigValue
from oscar_deploy.pipeline.cluster import cluster_provider
from oscar_deploy.providers.cloud import CloudProvider
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.progress import Progress
from tests.doubles import stack_runner
from tests.doubles.service_quotas import FakeServiceQuotas
from tests.unit.cloud.cloud_env import ProgramResponder, SshWaits
from tests.unit.cloud.test_aws_preflight import AL2023, AMAZON
from tests.unit.pipeline_env import PlaybookRun

STACK = "oscar-aws/lab"
SPEC = (
    "name: lab\ntarget: aws\nworkers: {initial: 1, max: 3}\n"
    f"aws: {{region: eu-west-1, profile: research, ami_owner: '{AMAZON}', ami_name: '{AL2023}'}}\n"
)


@pytest.fixture
def ssh_waits(monkeypatch: pytest.MonkeyPatch) -> SshWaits:
    waits = SshWaits()
    monkeypatch.setattr(CloudProvider, "wait_for_ssh", waits.method())
    return waits


@pytest.fixture
def instances(quotas: FakeServiceQuotas) -> dict[str, str]:
    """Two running moto instances standing for server-0 and agent-0, by node name."""
    ec2 = boto3.session.Session(profile_name="research", region_name="eu-west-1").client("ec2")
    image = ec2.describe_images(Owners=[AMAZON], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]
    made = ec2.run_instances(ImageId=image["ImageId"], InstanceType="t3.medium", MinCount=2, MaxCount=2)
    return dict(zip(("server-0", "agent-0"), (item["InstanceId"] for item in made["Instances"]), strict=True))


def state_of(instance: str) -> str:
    ec2 = boto3.session.Session(profile_name="research", region_name="eu-west-1").client("ec2")
    found = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    return str(found["State"]["Name"])


def test_up_cloud_aws_writes_the_spec_from_the_profile_and_region_of_the_shell(
    cli,
    quotas: FakeServiceQuotas,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    runner = stack_runner.install(monkeypatch)
    monkeypatch.setenv("AWS_PROFILE", "research")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    result = cli("up", "--cloud", "aws")
    spec = parse_spec((cli.cwd / "cluster.yaml").read_text())
    assert (spec.name, spec.target, spec.aws.profile, spec.aws.region) == ("oscar", "aws", "research", "eu-central-1")  # type: ignore[union-attr]
    # moto carries no Canonical images: the preflight stops before any stack is touched, in one line.
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1] == (
        "error: aws.ami_name: no available x86_64 AMI of owner 099720109477 named "
        "'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-*-server-*' in region eu-central-1; check aws.ami_owner and "
        "aws.ami_name, or set aws.ami"
    )
    assert "up" not in runner.operations()


def test_up_then_power_off_and_on_through_ec2(
    cli, instances: dict[str, str], ssh_waits: SshWaits, playbooks: list[PlaybookRun], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    runner = stack_runner.install(monkeypatch)
    runner.stack("oscar-aws", "lab").responder = ProgramResponder(ids=dict(instances))
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    result = cli("up", "--until", "kubernetes")
    assert result.exit_code == 0, result.output
    configs = [call.detail["config"] for call in runner.calls if call.operation == "set_config"]
    assert configs[-1] == {"aws:region": ConfigValue("eu-west-1"), "aws:profile": ConfigValue("research")}
    assert runner.environments[-1] == {}
    assert ssh_waits.waited == [["server-0", "agent-0"]]

    provider = cluster_provider(parse_spec(SPEC), ClusterState("lab"), Progress())
    provider.power_off("agent-0")
    assert state_of(instances["agent-0"]) == "stopped"
    assert state_of(instances["server-0"]) == "running"
    status = cli("status", "--json")
    assert {node["name"]: node["state"] for node in json.loads(status.stdout)["nodes"]} == {
        "server-0": "running",
        "agent-0": "stopped",
    }
    node = provider.power_on("agent-0")
    assert (node.name, node.state) == ("agent-0", "running")
    assert state_of(instances["agent-0"]) == "running"
    assert ssh_waits.waited[-1] == ["agent-0"]


def test_power_of_an_unknown_node_names_the_nodes(
    cli, instances: dict[str, str], ssh_waits: SshWaits, playbooks: list[PlaybookRun], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    runner = stack_runner.install(monkeypatch)
    runner.stack("oscar-aws", "lab").responder = ProgramResponder(ids=dict(instances))
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    provider = cluster_provider(parse_spec(SPEC), ClusterState("lab"), Progress())
    with pytest.raises(UserInputError) as failure:
        provider.power_off("agent-7")
    assert str(failure.value) == "node 'agent-7': not in cluster lab (nodes: server-0, agent-0)"
    assert state_of(instances["agent-0"]) == "running"


def test_doctor_names_the_install_command_of_the_cloud_extra(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import sys

    # None in sys.modules makes find_spec answer None, as for a package that is not installed.
    monkeypatch.setitem(sys.modules, "pulumi_aws", None)
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    result = cli("doctor", "-f", "cluster.yaml", "--json")
    report = json.loads(result.stdout)
    lines = {line["check"]: line for line in report["checks"]}
    assert "aws sdk" in report["blocking"]
    assert lines["aws sdk"]["status"] == "missing"
    assert lines["aws sdk"]["fix"] == "pip install 'oscar-deploy[aws]'"
    assert lines["aws sdk"]["needed_for"] == ["aws"]
    assert "openstack sdk" not in lines


def test_up_starts_a_worker_stopped_behind_its_back(
    cli, instances: dict[str, str], ssh_waits: SshWaits, playbooks: list[PlaybookRun], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The autoscaler (or the EC2 console) stops a worker without this state folder's record: `status` still
    shows the recorded state, but `plan` and `up` ask EC2."""
    runner = stack_runner.install(monkeypatch)
    runner.stack("oscar-aws", "lab").responder = ProgramResponder(ids=dict(instances))
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    ec2 = boto3.session.Session(profile_name="research", region_name="eu-west-1").client("ec2")
    ec2.stop_instances(InstanceIds=[instances["agent-0"]])
    status = json.loads(cli("status", "--json").stdout)
    assert {node["name"]: node["state"] for node in status["nodes"]}["agent-0"] == "running", "no cloud call"
    assert cli("plan", "--until", "provision").stdout.startswith("provision: runs: start agent-0;")
    waited = len(ssh_waits.waited)
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert "provision: started agent-0" in again.output
    assert (state_of(instances["agent-0"]), state_of(instances["server-0"])) == ("running", "running")
    assert ssh_waits.waited[waited:] == [["agent-0"]]
    status = json.loads(cli("status", "--json").stdout)
    assert {node["name"]: node["state"] for node in status["nodes"]} == {"server-0": "running", "agent-0": "running"}
