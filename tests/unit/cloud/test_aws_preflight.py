"""AWS preflight through boto3 against moto's server mode on 127.0.0.1 (EC2) and the Service Quotas double.

moto's default images stand in for real AMIs: in eu-west-1 it carries Amazon Linux 2023 for x86_64 and arm64,
owned by 137112412989 (moto/ec2/resources/latest_amis/eu-west-1.json).
"""

from __future__ import annotations

import boto3
import pytest

from oscar_deploy.providers.aws.preflight import STANDARD_VCPU_QUOTA, is_standard_family, needs_for, preflight
from oscar_deploy.providers.base import PlannedNode
from oscar_deploy.spec.models import ClusterSpec, parse_spec
from tests.doubles.service_quotas import FakeServiceQuotas

AMAZON = "137112412989"
AL2023 = "al2023-ami-2023.*-kernel-*"


def spec(extra: str = "", workers: int = 2, arch: str = "arm64", ami_name: str = AL2023) -> ClusterSpec:
    types = "server_instance_type: t4g.large, worker_instance_type: t4g.medium" if arch == "arm64" else ""
    return parse_spec(
        f"name: lab\ntarget: aws\nworkers: {{initial: {workers}, max: 20}}\n"
        f"aws: {{region: eu-west-1, arch: {arch}, ami_owner: '{AMAZON}', ami_name: '{ami_name}', {types}{extra}}}\n"
    )


def test_a_region_that_fits_has_no_gaps_and_finds_the_newest_ami(quotas: FakeServiceQuotas) -> None:
    report = preflight(spec())
    assert report.gaps == []
    assert report.notes == []
    arm64 = report.facts["ami"]["arm64"]
    image = boto3.client("ec2", region_name="eu-west-1").describe_images(ImageIds=[arm64])["Images"][0]
    assert image["Architecture"] == "arm64" and image["OwnerId"] == AMAZON
    assert quotas.requests == [{"ServiceCode": "ec2", "QuotaCode": STANDARD_VCPU_QUOTA}]


def test_x86_64_lookup(quotas: FakeServiceQuotas) -> None:
    report = preflight(spec(arch="amd64"))
    assert report.gaps == []
    image_id = report.facts["ami"]["amd64"]
    image = boto3.client("ec2", region_name="eu-west-1").describe_images(ImageIds=[image_id])["Images"][0]
    assert image["Architecture"] == "x86_64"


def test_missing_ami(quotas: FakeServiceQuotas) -> None:
    report = preflight(spec(ami_name="ubuntu/images/*noble*"))
    assert report.gaps == [
        "aws.ami_name: no available arm64 AMI of owner 137112412989 named 'ubuntu/images/*noble*' in region "
        "eu-west-1; check aws.ami_owner and aws.ami_name, or set aws.ami"
    ]


def test_an_ami_id_of_the_wrong_arch_or_unknown(quotas: FakeServiceQuotas) -> None:
    amd64 = preflight(spec(arch="amd64")).facts["ami"]["amd64"]
    assert preflight(spec(f", ami: {amd64}")).gaps == [
        f"aws.ami: AMI {amd64} is x86_64, the nodes are arm64; pick an AMI for aws.arch"
    ]
    assert preflight(spec(", ami: ami-00000000000000000")).gaps == [
        "aws.ami: no AMI ami-00000000000000000 in region eu-west-1; fix the id or empty it"
    ]


def test_instance_type_not_offered_or_of_the_other_arch(quotas: FakeServiceQuotas) -> None:
    report = preflight(
        parse_spec(
            "name: lab\ntarget: aws\naws: {region: eu-west-1, arch: arm64, server_instance_type: t4g.colossal, "
            f"worker_instance_type: m7g.large, ami_owner: '{AMAZON}', ami_name: '{AL2023}'}}\n"
        )
    )
    assert report.gaps == [
        "aws.server_instance_type: t4g.colossal is not offered in region eu-west-1; "
        "pick one from `aws ec2 describe-instance-type-offerings --region eu-west-1`"
    ]
    amd = parse_spec(
        "name: lab\ntarget: aws\naws: {region: eu-west-1, arch: amd64, server_instance_type: m7g.large, "
        f"ami_owner: '{AMAZON}', ami_name: '{AL2023}'}}\n"
    )
    assert preflight(amd).gaps == [
        "aws.server_instance_type: m7g.large runs arm64, not x86_64 (aws.arch); pick a type such as t3.large"
    ]


def test_vcpu_quota_boundary_counts_running_instances(quotas: FakeServiceQuotas) -> None:
    # 1 x t4g.large (2 vCPU) + 3 x t4g.medium (2 vCPU) = 8 vCPUs; a running t3.xlarge holds 4 of the 12 allowed.
    quotas.quotas[("ec2", STANDARD_VCPU_QUOTA)] = 12.0
    client = boto3.client("ec2", region_name="eu-west-1")
    image = client.describe_images(Owners=[AMAZON], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])
    launched = client.run_instances(
        ImageId=image["Images"][0]["ImageId"], InstanceType="t3.xlarge", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]
    try:
        assert preflight(spec(workers=3)).gaps == []
        assert preflight(spec(workers=4)).gaps == [
            "workers.initial: the nodes need 10 vCPUs of standard On-Demand instances (4 run already), the quota "
            "leaves 8 of 12; use smaller instance types or fewer workers, or request more in the Service Quotas "
            "console"
        ]
    finally:
        client.terminate_instances(InstanceIds=[launched])


def test_an_unreadable_quota_is_a_note_not_a_gap(quotas: FakeServiceQuotas) -> None:
    quotas.deny = True
    report = preflight(spec())
    assert report.gaps == []
    assert report.notes == [
        "aws: vCPU quota not checked, Service Quotas answered AccessDeniedException for L-1216C47A; "
        "allow servicequotas:GetServiceQuota to check it"
    ]


def test_elastic_ips_on_all_nodes_against_the_account_limit(quotas: FakeServiceQuotas) -> None:
    # moto's account allows 5 Elastic IPs in a VPC (vpc-max-elastic-ips).
    assert preflight(spec(", elastic_ips: all", workers=4)).gaps == []
    assert preflight(spec(", elastic_ips: all", workers=5)).gaps == [
        "aws.elastic_ips: the nodes need 6 Elastic IPs, the quota leaves 5 of 5; "
        "set aws.elastic_ips: first-server, release unused Elastic IPs, or request more"
    ]


def test_credentials_come_from_the_chain(quotas: FakeServiceQuotas, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert preflight(spec(", profile: research")).gaps == []
    assert preflight(spec(", profile: nobody")).gaps == [
        "aws.profile: no profile 'nobody' in ~/.aws/config or ~/.aws/credentials; run "
        "`aws configure --profile nobody`, or empty aws.profile to use the environment"
    ]
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert preflight(spec()).gaps == [
        "aws.profile: no AWS credentials found (profile, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
        "~/.aws/credentials); run `aws configure` or set aws.profile to a configured profile"
    ]


def test_unknown_region(quotas: FakeServiceQuotas) -> None:
    assert preflight(parse_spec("name: lab\ntarget: aws\naws: {region: mars-north-1}\n")).gaps == [
        "aws.region: 'mars-north-1' is not an EC2 region; use one such as eu-west-1"
    ]


def test_scale_out_needs() -> None:
    the_spec = spec()
    assert needs_for(the_spec).elastic_ips == 1
    assert needs_for(the_spec, [PlannedNode("agent-5", "agent", "arm64")]).elastic_ips == 0


@pytest.mark.parametrize(
    ("instance_type", "standard"),
    [
        ("t4g.large", True),
        ("m7i.xlarge", True),
        ("c7g.large", True),
        ("z1d.large", True),
        ("inf2.xlarge", False),
        ("g5.xlarge", False),
        ("p4d.24xlarge", False),
        ("trn1.2xlarge", False),
        ("dl1.24xlarge", False),
        ("x2idn.large", False),
        ("hpc7g.4xlarge", False),
    ],
)
def test_standard_family(instance_type: str, standard: bool) -> None:
    assert is_standard_family(instance_type) is standard
