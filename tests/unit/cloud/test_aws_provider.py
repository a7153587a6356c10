"""`up` and power on target aws through typer's runner: boto3 talks to moto's EC2 server on 127.0.0.1 (and the
Service Quotas double) for the preflight and for stopping and starting instances; the Pulumi runner is the
recording fake whose responder stands for the program (tests/unit/cloud/cloud_env.py).

moto's instances stand for the ones the stack would make: the responder hands out their ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import boto3
import botocore.waiter
import httpx
import pytest
from moto.core import DEFAULT_ACCOUNT_ID as MOTO_ACCOUNT
from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import InstanceState

from oscar_deploy.iac.runner import ConfigValue
from oscar_deploy.pipeline.cluster import cluster_provider
from oscar_deploy.providers.aws.power import CLUSTER_TAG, NODE_TAG
from oscar_deploy.providers.cloud import CloudProvider
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.progress import Progress
from tests.doubles import stack_runner
from tests.doubles.ec2_errors import Ec2Errors
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


def program_tags(cluster: str, node: str) -> list[dict[str, Any]]:
    """RunInstances' TagSpecifications for the tags the AWS program gives the instance of `node`."""
    tags = {"Name": f"{cluster}-{node}", CLUSTER_TAG: cluster, NODE_TAG: node}
    return [{"ResourceType": "instance", "Tags": [{"Key": key, "Value": value} for key, value in tags.items()]}]


def run_instance(image: str, cluster: str, node: str) -> str:
    """A running moto instance tagged as the program tags the one of `node`; returns its id."""
    made = MotoInstances.ec2().run_instances(
        ImageId=image, InstanceType="t3.medium", MinCount=1, MaxCount=1, TagSpecifications=program_tags(cluster, node)
    )
    return str(made["Instances"][0]["InstanceId"])


@pytest.fixture
def image(quotas: FakeServiceQuotas, moto_url: str) -> str:
    """An x86_64 AMI of moto's, in a reset moto."""
    httpx.post(f"{moto_url}/moto-api/reset").raise_for_status()
    ec2 = MotoInstances.ec2()
    found = ec2.describe_images(Owners=[AMAZON], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])
    return str(found["Images"][0]["ImageId"])


@pytest.fixture
def instances(image: str) -> dict[str, str]:
    """Two running moto instances standing for server-0 and agent-0 of cluster lab, by node name (the only ones:
    the vCPU quota counts every running instance)."""
    return {node: run_instance(image, "lab", node) for node in ("server-0", "agent-0")}


def up_on_instances(
    cli: Any, instances: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> stack_runner.RecordingRunner:
    """Cluster `lab` made by `up --until kubernetes` on the moto `instances`: the stack's recording stand-in answers
    with their ids. Returns the stand-in."""
    runner = stack_runner.install(monkeypatch)
    cloud = MotoInstances(image_of(instances["server-0"]))
    runner.stack("oscar-aws", "lab").responder = ProgramResponder(ids=dict(instances), cloud=cloud)
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    made = cli("up", "--until", "kubernetes")
    assert made.exit_code == 0, made.output
    return runner


@dataclass
class MotoInstances:
    """moto's instances as the program's stand-in makes them (`cloud_env.VmCloud`): one made runs, one deleted is
    terminated (and listed so for a while, as on EC2). A refresh forgets only a terminated one, as the Pulumi AWS
    provider's does (terraform-provider-aws FindInstanceByID): one shutting down is still there."""

    image: str

    @staticmethod
    def ec2() -> Any:
        return boto3.session.Session(profile_name="research", region_name="eu-west-1").client("ec2")

    def has(self, instance: str) -> bool:
        found = self.ec2().describe_instances(Filters=[{"Name": "instance-id", "Values": [instance]}])
        states = [item["State"]["Name"] for page in found["Reservations"] for item in page["Instances"]]
        return any(state != "terminated" for state in states)

    def make(self, instance: str, cluster: str, node: str) -> str:
        return run_instance(self.image, cluster, node)

    def delete(self, instance: str) -> None:
        self.ec2().terminate_instances(InstanceIds=[instance])


def image_of(instance: str) -> str:
    found = MotoInstances.ec2().describe_instances(InstanceIds=[instance])
    return str(found["Reservations"][0]["Instances"][0]["ImageId"])


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
    up_on_instances(cli, instances, monkeypatch)
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
    up_on_instances(cli, instances, monkeypatch)
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


@pytest.fixture
def ec2_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ec2Errors]:
    fake = Ec2Errors()
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore retries throttling and 5xx answers; one is enough here
    yield fake
    fake.stop()


# EC2's error answers (status, code, message) and what follows `<what was asked>: ` in the one line.
EC2_ANSWERS = [
    (
        403,
        "UnauthorizedOperation",
        "You are not authorized to perform this operation.",
        "AWS denied ec2:StopInstances (UnauthorizedOperation); allow ec2:StopInstances to the IAM user or role of "
        "these credentials",
    ),
    (
        400,
        "RequestExpired",
        "Request has expired.",
        "AWS refused the credentials (RequestExpired); renew them (`aws sso login` or new access keys) or pick another "
        "profile",
    ),
    (
        400,
        "ExpiredToken",
        "The security token included in the request is expired",
        "AWS refused the credentials (ExpiredToken); renew them (`aws sso login` or new access keys) or pick another "
        "profile",
    ),
    (
        503,
        "RequestLimitExceeded",
        "Request limit exceeded.",
        "AWS answered RequestLimitExceeded (Request limit exceeded.); EC2 is busy or failing: run this again later",
    ),
    (
        500,
        "InternalError",
        "An internal error has occurred",
        "AWS answered InternalError (An internal error has occurred); EC2 is busy or failing: run this again later",
    ),
]


def test_ec2_errors_of_a_power_change_name_the_node_the_answer_and_the_fix(
    cli,
    instances: dict[str, str],
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    ec2_errors: Ec2Errors,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    up_on_instances(cli, instances, monkeypatch)
    provider = cluster_provider(parse_spec(SPEC), ClusterState("lab"), Progress())
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", ec2_errors.url)
    for status, code, message, expected in EC2_ANSWERS:
        ec2_errors.status, ec2_errors.code, ec2_errors.message = status, code, message
        ec2_errors.actions.clear()
        with pytest.raises(OperationError) as failure:
            provider.power_off("agent-0")
        assert str(failure.value) == f"node agent-0: stop instance {instances['agent-0']}: {expected}"
        assert ec2_errors.actions == ["StopInstances"]
        listed = expected.replace("StopInstances", "DescribeInstances")
        with pytest.raises(OperationError) as read:
            provider.live_nodes()
        assert str(read.value) == f"the instances' power states: {listed}"
        with pytest.raises(OperationError) as strays:
            provider.strays()
        assert str(strays.value) == f"the instances carrying tag oscar-deploy-cluster=lab: {listed}"
    monkeypatch.delenv("AWS_ENDPOINT_URL_EC2")
    assert state_of(instances["agent-0"]) == "running"
    assert {node.name: node.state for node in provider.nodes()}["agent-0"] == "running", "nothing recorded as stopped"


def test_a_refused_power_state_read_during_up_is_one_line_and_keeps_the_records(
    cli,
    instances: dict[str, str],
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    ec2_errors: Ec2Errors,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    up_on_instances(cli, instances, monkeypatch)
    ec2_errors.code, ec2_errors.message = "ExpiredToken", "The security token included in the request is expired"
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", ec2_errors.url)
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 1, again.output
    assert again.output.splitlines()[-1] == (
        "error: the instances' power states: AWS refused the credentials (ExpiredToken); renew them (`aws sso login` "
        "or new access keys) or pick another profile"
    )
    assert "Traceback" not in again.output
    monkeypatch.delenv("AWS_ENDPOINT_URL_EC2")
    assert cli("down", "--yes").exit_code == 0


def test_an_instance_ec2_no_longer_has_and_an_unreachable_ec2_are_one_line(
    cli, instances: dict[str, str], ssh_waits: SshWaits, playbooks: list[PlaybookRun], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    gone = "i-0123456789abcdef0"
    runner = stack_runner.install(monkeypatch)
    runner.stack("oscar-aws", "lab").responder = ProgramResponder(ids={**instances, "agent-0": gone})
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    provider = cluster_provider(parse_spec(SPEC), ClusterState("lab"), Progress())
    with pytest.raises(OperationError) as missing:
        provider.power_on("agent-0")
    assert str(missing.value) == (
        f"node agent-0: start instance {gone}: AWS answered InvalidInstanceID.NotFound (The instance ID '{gone}' does "
        "not exist); the instance was terminated outside oscar-deploy: `oscar-deploy up` makes a terminated worker "
        "again (a terminated server needs `oscar-deploy down --yes`, then `up`: a new cluster)"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(OperationError) as unreachable:
        provider.power_off("server-0")
    assert str(unreachable.value) == (
        f"node server-0: stop instance {instances['server-0']}: cannot reach EC2 (Could not connect to the endpoint "
        'URL: "http://127.0.0.1:9/"); check your network, then run this again'
    )


@pytest.mark.parametrize("how", ["terminated", "long gone", "shutting down"])
def test_up_makes_a_worker_terminated_behind_its_back_again(
    how: str,
    cli,
    instances: dict[str, str],
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """A worker terminated in the EC2 console (listed as terminated for about an hour, then not at all, which the
    filtered DescribeInstances answers without an InvalidInstanceID error): `up` updates the stack with a refresh,
    which makes the instance again, and waits for its SSH."""
    runner = stack_runner.install(monkeypatch)
    ec2 = MotoInstances.ec2()
    unknown = "i-0123456789abcdef0"
    first = {**instances, "agent-0": unknown} if how == "long gone" else dict(instances)
    runner.stack("oscar-aws", "lab").responder = ProgramResponder(
        ids=first, cloud=MotoInstances(image_of(instances["server-0"]))
    )
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    assert cli("up", "--until", "kubernetes").exit_code == 0
    if how != "long gone":
        ec2.terminate_instances(InstanceIds=[instances["agent-0"]])
    if how == "shutting down":
        # Pulumi's refresh forgets only a terminated instance: one shutting down is waited for.
        # It ends once waited for, so a refresh without the wait would still find it.
        instance = ec2_backends[MOTO_ACCOUNT]["eu-west-1"].get_instance(instances["agent-0"])
        instance._state = InstanceState("shutting-down", 32)
        wait = botocore.waiter.Waiter.wait

        def terminated_once_waited_for(waiter: Any, **kwargs: Any) -> None:
            instance._state = InstanceState("terminated", 48)
            wait(waiter, **kwargs)

        monkeypatch.setattr(botocore.waiter.Waiter, "wait", terminated_once_waited_for)
    waited = len(ssh_waits.waited)
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    if how == "shutting down":
        assert (
            f"node agent-0: instance {instances['agent-0']} is shutting down (terminated outside oscar-deploy); "
            "waiting until it is terminated"
        ) in again.output
        assert state_of(instances["agent-0"]) == "terminated"
    assert "node agent-0: its VM lab-agent-0 was deleted outside oscar-deploy; making it again" in again.output
    assert "provision: created agent-0" in again.output
    assert [call.detail["refresh"] for call in runner.calls if call.operation == "up"] == [False, True]
    assert ssh_waits.waited[waited:] == [["agent-0"]]
    nodes = {node["name"]: node for node in json.loads(cli("status", "--json").stdout)["nodes"]}
    remade = nodes["agent-0"]["instance"]
    assert remade not in (instances["agent-0"], unknown)
    assert (state_of(remade), nodes["server-0"]["instance"]) == ("running", instances["server-0"])


def test_up_does_not_make_again_a_worker_no_longer_wanted_that_was_terminated_behind_its_back(
    cli, instances: dict[str, str], ssh_waits: SshWaits, playbooks: list[PlaybookRun], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """agent-0 terminated in the EC2 console while the spec goes down to no worker: the update refreshes and no
    longer declares it, so no instance is launched for it; remove-node.yml deletes it from Kubernetes with nothing
    run on it and no drain."""
    runner = up_on_instances(cli, instances, monkeypatch)
    MotoInstances.ec2().terminate_instances(InstanceIds=[instances["agent-0"]])
    (cli.cwd / "cluster.yaml").write_text(SPEC.replace("initial: 1", "initial: 0"))
    playbooks.clear()
    calls = len(runner.calls)
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert (
        "node agent-0: its VM lab-agent-0 was deleted outside oscar-deploy; no longer wanted, so not made again"
    ) in again.output
    assert (
        "provision: removed agent-0 (its VM was deleted outside oscar-deploy; any job running on it was lost)"
    ) in again.stdout.splitlines()
    assert "created" not in again.output
    assert [call.detail["refresh"] for call in runner.calls[calls:] if call.operation == "up"] == [True]
    responder = runner.stacks[STACK].responder
    assert isinstance(responder, ProgramResponder)
    assert [node.name for node in responder.last.nodes] == ["server-0"]
    found = MotoInstances.ec2().describe_instances(Filters=[{"Name": f"tag:{NODE_TAG}", "Values": ["agent-0"]}])
    launched = [item["InstanceId"] for page in found["Reservations"] for item in page["Instances"]]
    assert launched == [instances["agent-0"]], "no instance launched for agent-0"
    assert [
        (
            run.playbook,
            run.variables["remove_node"],
            run.variables["remove_node_reset"],
            run.variables["remove_node_gone"],
        )
        for run in playbooks
        if run.playbook == "remove-node.yml"
    ] == [("remove-node.yml", "agent-0", False, True)]
    assert ssh_waits.waited[-1] == [], "no SSH wait for a VM made again"


def test_up_refuses_a_cluster_whose_server_was_terminated_behind_its_back(
    cli, instances: dict[str, str], ssh_waits: SshWaits, playbooks: list[PlaybookRun], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    runner = up_on_instances(cli, instances, monkeypatch)
    MotoInstances.ec2().stop_instances(InstanceIds=[instances["agent-0"]])
    MotoInstances.ec2().terminate_instances(InstanceIds=[instances["server-0"]])
    calls = len(runner.calls)
    refused = cli("up", "--until", "kubernetes")
    assert refused.exit_code == 1, refused.output
    assert refused.output.splitlines()[-1] == (
        "error: node server-0: VM lab-server-0 was deleted outside oscar-deploy, and the control plane (and MinIO's "
        "data, which lives on the servers) went with it: nothing can be repaired in place; run `oscar-deploy down "
        "--yes`, then `oscar-deploy up` makes a new cluster lab"
    )
    assert "up" not in [call.operation for call in runner.calls[calls:]], "no stack update"
    assert state_of(instances["agent-0"]) == "stopped", "nothing started either"
    # Every instance gone: as likely another region or account as a deletion.
    MotoInstances.ec2().terminate_instances(InstanceIds=[instances["agent-0"]])
    elsewhere = cli("up", "--until", "kubernetes")
    assert elsewhere.exit_code == 1, elsewhere.output
    assert elsewhere.output.splitlines()[-1].startswith(
        "error: cluster lab: the cloud lists none of its 2 VM(s); check that aws.profile and aws.region still reach "
    )


def stray_line(instance: str, which: str = "node agent-0: VM {}") -> str:
    """The line naming moto instance `instance` (as `which` says, with its id in the braces) as a VM of cluster lab
    that the stack does not hold."""
    found = MotoInstances.ec2().describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    return (
        f"warning: {which.format(instance)}, launched {found['LaunchTime'].astimezone(UTC):%Y-%m-%d %H:%M} UTC, "
        "carries tag oscar-deploy-cluster=lab but is not a VM of stack oscar-aws/lab: a copy an interrupted update "
        "left behind (or a VM of another cluster named lab in this account and region), billed until deleted: aws "
        f"ec2 terminate-instances --instance-ids {instance} --region eu-west-1 --profile research"
    )


def test_up_and_down_name_each_instance_of_the_cluster_the_stack_does_not_hold(
    cli,
    image: str,
    ssh_waits: SshWaits,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """An instance tagged for the cluster whose id the stack does not hold is named by `up`, and by `down`, which
    removes all it owns, then ends with an error: the instance is left running. Terminated instances, those
    shutting down, and other clusters' instances are not named."""
    runner = stack_runner.install(monkeypatch)
    runner.stack("oscar-aws", "lab").responder = ProgramResponder(cloud=MotoInstances(image))
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    made = cli("up", "--until", "kubernetes")
    assert made.exit_code == 0, made.output
    assert "warning:" not in made.output
    ec2 = MotoInstances.ec2()
    terminated, ending = run_instance(image, "lab", "agent-0"), run_instance(image, "lab", "agent-0")
    ec2.terminate_instances(InstanceIds=[terminated])
    ec2_backends[MOTO_ACCOUNT]["eu-west-1"].get_instance(ending)._state = InstanceState("shutting-down", 32)
    run_instance(image, "lab2", "agent-0")
    quiet = cli("up", "--until", "kubernetes")
    assert quiet.exit_code == 0, quiet.output
    assert "warning:" not in quiet.output

    stray = run_instance(image, "lab", "agent-0")
    ec2.stop_instances(InstanceIds=[stray])  # a stopped instance's volume is billed too
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert [line for line in again.output.splitlines() if line.startswith("warning:")] == [stray_line(stray)]

    responder = runner.stacks[STACK].responder
    assert isinstance(responder, ProgramResponder)
    held = set(responder.ids.values())
    done = cli("down", "--yes")
    assert done.exit_code == 1, done.output
    assert done.output.splitlines()[-2:] == [
        stray_line(stray),
        "error: down: cluster lab: down did NOT remove everything: 1 VM(s) named above still carry its tag and are "
        "billed; the stack never held them, so down leaves them: delete each with its command once you know no other "
        "cluster named lab owns it",
    ]
    assert {state_of(instance) for instance in held} == {"terminated"}
    assert state_of(stray) == "stopped"
    assert not ClusterState("lab").path.exists()


def test_a_recorded_instance_without_the_cluster_tag_is_found_by_its_id_and_strays_without_a_node_tag_are_named(
    cli, instances: dict[str, str], ssh_waits: SshWaits, playbooks: list[PlaybookRun], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The listing by the cluster's tag misses an instance whose tags were changed by hand: it is asked for by id,
    running, so `up` neither makes it again nor names it. A stray without a node tag is named by its id and its
    Name tag, or by its id alone when it has no Name tag either."""
    runner = up_on_instances(cli, instances, monkeypatch)
    ec2 = MotoInstances.ec2()
    ec2.delete_tags(Resources=[instances["agent-0"]], Tags=[{"Key": CLUSTER_TAG}])

    def run_tagged(*tags: dict[str, str]) -> str:
        made = ec2.run_instances(
            ImageId=image_of(instances["server-0"]),
            InstanceType="t3.medium",
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": CLUSTER_TAG, "Value": "lab"}, *tags]}],
        )
        return str(made["Instances"][0]["InstanceId"])

    named, unnamed = run_tagged({"Key": "Name", "Value": "copy"}), run_tagged()
    again = cli("up", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert "deleted outside oscar-deploy" not in again.output
    assert [call.detail["refresh"] for call in runner.calls if call.operation == "up"] == [False, False]
    assert sorted(line for line in again.output.splitlines() if line.startswith("warning:")) == sorted(
        [stray_line(named, "VM {} (named copy)"), stray_line(unnamed, "VM {}")]
    )
