"""Power managers of the cloud targets: EC2 through boto3 against moto's server mode on 127.0.0.1, Nova through
openstacksdk against the OpenStack double, and the tags/metadata contract they share with the Pulumi programs."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from oscar_deploy.autoscaler.service import power_manager_for
from oscar_deploy.providers.aws.power import CLUSTER_TAG, NODE_TAG, ROLE_TAG, Ec2Power, ec2_power_policy
from oscar_deploy.providers.aws.program import AwsProgramInput
from oscar_deploy.providers.aws.program import declare as declare_aws
from oscar_deploy.providers.openstack.power import METADATA_PREFIX, OpenStackPower, connect_cloud
from oscar_deploy.providers.openstack.program import OpenStackProgramInput
from oscar_deploy.providers.openstack.program import declare as declare_openstack
from oscar_deploy.providers.power import Machine, ProviderPower
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import OperationError, UserInputError
from tests.doubles.openstack_api import FakeOpenStack
from tests.unit.cloud.conftest import PUBLIC_KEY, aws_invokes, nodes, openstack_invokes
from tests.unit.cloud.pulumi_harness import run_program

REGION = "eu-west-1"
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::Warning:openstack"),
]


# --- the contract with the programs ---------------------------------------------------------------------------


def test_the_aws_program_tags_what_the_power_manager_looks_for() -> None:
    spec = AwsProgramInput(
        cluster="lab",
        nodes=nodes(1, 1, server_size="t3.large", worker_size="t3.medium"),
        ssh_user="ubuntu",
        public_key=PUBLIC_KEY,
        allowed_cidrs=("203.0.113.0/24",),
    )
    result = run_program(lambda: declare_aws(spec), aws_invokes())
    tags = {r.inputs["tags"][NODE_TAG]: r.inputs["tags"] for r in result.of_type("aws:ec2/instance:Instance")}
    assert {name: (t[CLUSTER_TAG], t[ROLE_TAG]) for name, t in tags.items()} == {
        "server-0": ("lab", "server"),
        "agent-0": ("lab", "agent"),
    }


def test_the_openstack_program_sets_the_metadata_the_power_manager_looks_for() -> None:
    spec = OpenStackProgramInput(
        cluster="lab",
        nodes=nodes(1, 1, server_size="m1.large", worker_size="m1.medium"),
        ssh_user="ubuntu",
        public_key=PUBLIC_KEY,
        allowed_cidrs=("203.0.113.0/24",),
        image="Ubuntu 24.04",
        external_network="public",
    )
    result = run_program(lambda: declare_openstack(spec), openstack_invokes())
    found = [r.inputs["metadata"] for r in result.of_type("openstack:compute/instance:Instance")]
    assert sorted(
        (m[f"{METADATA_PREFIX}node"], m[f"{METADATA_PREFIX}role"], m[f"{METADATA_PREFIX}cluster"]) for m in found
    ) == [
        ("agent-0", "agent", "lab"),
        ("server-0", "server", "lab"),
    ]


# --- EC2 --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def ec2(moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    httpx.post(f"{moto_url}/moto-api/reset").raise_for_status()
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    client = boto3.client("ec2", region_name=REGION, aws_access_key_id="admin", aws_secret_access_key="admin")
    image = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    for cluster, name, role in (
        ("lab", "server-0", "server"),
        ("lab", "agent-0", "agent"),
        ("lab", "agent-1", "agent"),
        ("other", "agent-0", "agent"),
    ):
        tags = [
            {"Key": CLUSTER_TAG, "Value": cluster},
            {"Key": NODE_TAG, "Value": name},
            {"Key": ROLE_TAG, "Value": role},
        ]
        client.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.medium",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
    yield client


def credentials_file(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "aws-credentials"
    path.write_text("[autoscaler]\naws_access_key_id = AKIATESTAUTOSCALER\naws_secret_access_key = testing\n")
    path.chmod(mode)
    return path


def states(client: Any, cluster: str) -> dict[str, str]:
    found = {}
    for reservation in client.describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
            if tags.get(CLUSTER_TAG) == cluster:
                found[tags[NODE_TAG]] = instance["State"]["Name"]
    return found


def test_ec2_power_stops_and_starts_this_clusters_workers_only(ec2: Any, tmp_path: Path) -> None:
    power = Ec2Power.connect("lab", REGION, credentials_file(tmp_path), None)
    assert power.machines() == [Machine("agent-0", "on", "amd64"), Machine("agent-1", "on", "amd64")]
    power.power_off("agent-1")
    assert states(ec2, "lab") == {"server-0": "running", "agent-0": "running", "agent-1": "stopped"}
    assert states(ec2, "other") == {"agent-0": "running"}, "a namesake in another cluster is never touched"
    assert power.machines() == [Machine("agent-0", "on", "amd64"), Machine("agent-1", "off", "amd64")]
    power.power_off("agent-1")  # already stopped: nothing to do
    power.power_on("agent-1")
    assert states(ec2, "lab")["agent-1"] == "running"
    power.power_on("agent-1")  # already running: nothing to do


def test_ec2_power_refuses_servers_and_unknown_nodes(ec2: Any, tmp_path: Path) -> None:
    power = Ec2Power.connect("lab", REGION, credentials_file(tmp_path), None)
    with pytest.raises(OperationError) as server:
        power.power_off("server-0")
    assert str(server.value) == "node server-0: a server instance; only workers are powered"
    with pytest.raises(OperationError) as unknown:
        power.power_on("agent-7")
    assert str(unknown.value) == "node agent-7: no instance of cluster lab has this name; it was removed"
    assert states(ec2, "lab")["server-0"] == "running"


def test_ec2_power_reports_an_api_error_in_one_line(ec2: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    power = Ec2Power.connect("lab", REGION, credentials_file(tmp_path), None)
    with pytest.raises(OperationError) as down:
        power.machines()
    assert str(down.value) == (
        'EC2 list instances: cannot reach EC2 (Could not connect to the endpoint URL: "http://127.0.0.1:9/"); check '
        "your network, then run this again"
    )


def test_ec2_credentials_file_must_be_private_and_complete(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as loose:
        Ec2Power.connect("lab", REGION, credentials_file(tmp_path, 0o644), None)
    path = tmp_path / "aws-credentials"
    assert str(loose.value) == (
        f"{path}: mode 0644 lets other users read or change the autoscaler's AWS credentials; run `chmod 600 {path}` "
        "(and replace the credentials if others may have copied them)"
    )
    path.write_text("[default]\naws_access_key_id = AKIATEST\n")
    path.chmod(0o600)
    with pytest.raises(UserInputError) as partial:
        Ec2Power.connect("lab", REGION, path, None)
    assert str(partial.value) == f"{path}: [default] has no aws_secret_access_key; add it"


def test_ec2_power_from_a_named_profile_and_a_profile_that_is_missing(ec2: Any, tmp_path: Path) -> None:
    (tmp_path / "no-credentials").write_text("[research]\naws_access_key_id = AKIATEST\naws_secret_access_key = x\n")
    power = Ec2Power.connect("lab", REGION, None, "research")
    assert [machine.name for machine in power.machines()] == ["agent-0", "agent-1"]
    with pytest.raises(UserInputError) as missing:
        Ec2Power.connect("lab", REGION, None, "nobody")
    assert str(missing.value) == (
        "aws.profile: no profile 'nobody' in ~/.aws/config or ~/.aws/credentials; run `aws configure --profile "
        "nobody`, or empty aws.profile to use the environment"
    )


def test_the_autoscaler_uses_its_own_aws_key_else_says_it_uses_the_deploying_ones(
    ec2: Any, tmp_path: Path, state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = ClusterState("lab").ensure()
    spec = parse_spec("name: lab\ntarget: aws\naws: {region: eu-west-1}\n")
    own = state.path / "autoscaler" / "aws-credentials"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTDEPLOYER")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    power, credentials = power_manager_for(spec, state)
    assert credentials == f"the environment (no {own}: the deploying credentials, not least-privilege ones)"
    assert power.machines()[0].name == "agent-0"
    (tmp_path / "no-credentials").write_text("[research]\naws_access_key_id = AKIATEST\naws_secret_access_key = x\n")
    with_profile = parse_spec("name: lab\ntarget: aws\naws: {region: eu-west-1, profile: research}\n")
    assert power_manager_for(with_profile, state)[1] == (
        f"profile research (no {own}: the deploying credentials, not least-privilege ones)"
    )
    own.parent.mkdir(mode=0o700)
    own.write_text(credentials_file(tmp_path).read_text())
    own.chmod(0o600)
    power, credentials = power_manager_for(with_profile, state)
    assert credentials == str(own)
    assert power.ec2._request_signer._credentials.access_key == "AKIATESTAUTOSCALER"
    assert power.ec2.meta.region_name == "eu-west-1"


def test_the_autoscaler_of_a_local_cluster_powers_its_node_containers(state_home: Path) -> None:
    state = ClusterState("lab").ensure()
    power, credentials = power_manager_for(parse_spec("name: lab\ntarget: local\n"), state)
    assert isinstance(power, ProviderPower)
    assert credentials == "podman on this machine"


def test_the_iam_policy_allows_only_power_on_this_clusters_workers() -> None:
    policy = ec2_power_policy("lab")
    describe, power = policy["Statement"]
    assert (describe["Action"], describe["Resource"]) == ("ec2:DescribeInstances", "*")
    assert power["Action"] == ["ec2:StartInstances", "ec2:StopInstances"]
    assert power["Condition"] == {
        "StringEquals": {"aws:ResourceTag/oscar-deploy-cluster": "lab", "aws:ResourceTag/oscar-deploy-role": "agent"}
    }


# --- OpenStack ----------------------------------------------------------------------------------------------------


def server(name: str, role: str, status: str = "ACTIVE", cluster: str = "lab") -> dict[str, Any]:
    metadata = {
        f"{METADATA_PREFIX}cluster": cluster,
        f"{METADATA_PREFIX}node": name,
        f"{METADATA_PREFIX}role": role,
        f"{METADATA_PREFIX}arch": "amd64",
    }
    return {"id": f"{cluster}-{name}-id", "name": f"{cluster}-{name}", "status": status, "metadata": metadata}


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[FakeOpenStack, Path]]:
    fake = FakeOpenStack(passwords={"researcher": "right"})
    listed = [
        server("server-0", "server"),
        server("agent-0", "agent"),
        server("agent-1", "agent", "SHUTOFF"),
        server("agent-0", "agent", cluster="other"),
    ]
    fake.servers = {entry["id"]: entry for entry in listed}
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  lab:\n    auth_type: v3password\n    auth:\n"
        f"      auth_url: {fake.auth_url}\n      username: researcher\n      password: right\n"
        "      project_id: " + "0f1e2d3c4b5a69788796a5b4c3d2e1f0" + "\n      user_domain_name: Default\n"
        "    identity_api_version: 3\n    region_name: RegionOne\n"
    )
    clouds.chmod(0o600)
    yield fake, clouds
    fake.stop()


def statuses(fake: FakeOpenStack) -> dict[str, str]:
    return {s["name"]: s["status"] for s in fake.servers.values()}


def test_openstack_power_stops_and_starts_workers(cloud: tuple[FakeOpenStack, Path]) -> None:
    fake, clouds = cloud
    power = OpenStackPower(connect_cloud("lab", clouds), "lab", "stop")
    assert power.machines() == [Machine("agent-0", "on", "amd64"), Machine("agent-1", "off", "amd64")]
    power.power_on("agent-1")
    power.power_off("agent-0")
    assert statuses(fake) == {
        "lab-server-0": "ACTIVE",
        "lab-agent-0": "SHUTOFF",
        "lab-agent-1": "ACTIVE",
        "other-agent-0": "ACTIVE",
    }
    assert fake.actions == [
        ("v2.1/servers/lab-agent-1-id/action", {"os-start": None}),
        ("v2.1/servers/lab-agent-0-id/action", {"os-stop": None}),
    ]


def test_openstack_power_shelves_and_unshelves_in_shelve_mode(cloud: tuple[FakeOpenStack, Path]) -> None:
    fake, clouds = cloud
    power = OpenStackPower(connect_cloud("lab", clouds), "lab", "shelve")
    power.power_off("agent-0")
    power.power_off("agent-1")  # a stopped worker is shelved too: it then holds no hypervisor
    assert statuses(fake)["lab-agent-0"] == "SHELVED_OFFLOADED"
    assert statuses(fake)["lab-agent-1"] == "SHELVED_OFFLOADED"
    assert power.machines() == [Machine("agent-0", "off", "amd64"), Machine("agent-1", "off", "amd64")]
    power.power_on("agent-0")
    assert statuses(fake)["lab-agent-0"] == "ACTIVE"
    assert [body for _, body in fake.actions] == [{"shelve": None}, {"shelve": None}, {"unshelve": None}]


def test_openstack_power_waits_out_a_busy_server_and_refuses_servers(cloud: tuple[FakeOpenStack, Path]) -> None:
    fake, clouds = cloud
    fake.servers["lab-agent-0-id"]["OS-EXT-STS:task_state"] = "powering-off"
    power = OpenStackPower(connect_cloud("lab", clouds), "lab", "stop")
    assert power.machines()[0] == Machine("agent-0", "stopping", "amd64")
    with pytest.raises(OperationError) as busy:
        power.power_on("agent-0")
    assert str(busy.value) == "node agent-0: server is busy (powering-off); it starts once that ends"
    with pytest.raises(OperationError) as refused:
        power.power_off("server-0")
    assert str(refused.value) == "node server-0: a server server; only workers are powered"


def test_openstack_power_reports_an_api_error_in_one_line(cloud: tuple[FakeOpenStack, Path]) -> None:
    fake, clouds = cloud
    power = OpenStackPower(connect_cloud("lab", clouds), "lab", "stop")
    fake.failures = {"GET /compute/v2.1/servers/detail": [503]}
    with pytest.raises(OperationError) as busy:
        power.machines()
    assert str(busy.value) == (
        "OpenStack list servers: cloud 'lab' answered 503 (Service Unavailable); the cloud is busy or failing: run "
        "this again later"
    )
    fake.stop()  # the fixture's stop after this one returns at once
    with pytest.raises(OperationError) as unreachable:
        power.machines()
    assert str(unreachable.value) == (
        "OpenStack list servers: cannot reach cloud 'lab' (ConnectFailure); check your network, then run this again"
    )


def test_openstack_clouds_file_must_be_private_and_name_the_cloud(cloud: tuple[FakeOpenStack, Path]) -> None:
    _, clouds = cloud
    with pytest.raises(UserInputError) as unknown:
        connect_cloud("egi", clouds)
    assert str(unknown.value) == f"{clouds}: no cloud named 'egi' under `clouds:`; add it or fix the name"
    text = clouds.read_text()
    for damaged in ("clouds: [lab]\n", "clouds:\n  lab: [auth]\n", "- clouds\n"):
        clouds.write_text(damaged)
        with pytest.raises(UserInputError) as unusable:
            connect_cloud("lab", clouds)
        assert str(unusable.value) == f"{clouds}: no cloud named 'lab' under `clouds:`; add it or fix the name"
    clouds.write_text(text)
    clouds.chmod(0o640)
    with pytest.raises(UserInputError) as loose:
        connect_cloud("lab", clouds)
    assert str(loose.value).startswith(f"{clouds}: mode 0640 lets other users read or change")


def test_openstack_from_the_usual_clouds_yaml_and_a_cloud_it_lacks(
    cloud: tuple[FakeOpenStack, Path], tmp_path: Path, state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, clouds = cloud
    for name in [name for name in os.environ if name.startswith("OS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    monkeypatch.chdir(tmp_path)
    state = ClusterState("lab").ensure()
    own = state.path / "autoscaler" / "clouds.yaml"
    power, credentials = power_manager_for(parse_spec("name: lab\ntarget: openstack\nopenstack: {cloud: lab}\n"), state)
    assert credentials == f"cloud lab (no {own}: the deploying credentials)"
    assert [machine.name for machine in power.machines()] == ["agent-0", "agent-1"]
    with pytest.raises(UserInputError) as missing:
        connect_cloud("egi", None)
    assert str(missing.value) == (
        "openstack.cloud: no cloud 'egi' in clouds.yaml (./, ~/.config/openstack/, /etc/openstack/ or "
        "OS_CLIENT_CONFIG_FILE); fix the name or add that cloud"
    )
    own.parent.mkdir(mode=0o700)
    own.write_text(clouds.read_text())
    own.chmod(0o600)
    monkeypatch.delenv("OS_CLIENT_CONFIG_FILE")
    power, credentials = power_manager_for(parse_spec("name: lab\ntarget: openstack\nopenstack: {cloud: lab}\n"), state)
    assert credentials == str(own)
    assert [machine.name for machine in power.machines()] == ["agent-0", "agent-1"]
