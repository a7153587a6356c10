"""AWS preflight: before anything is created, check with boto3 that the region can hold the cluster.

Credentials come from boto3's usual chain only (`aws.profile` when set, else AWS_PROFILE, the environment, the
shared files, an instance role); endpoints likewise (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>). Checked, all
in one run, each gap one line naming the spec key and the fix:

* the instance types are offered in the region and run the nodes' architecture (arm64 is Graviton);
* the AMI: the given id, or the newest available one of `aws.ami_owner` named like `aws.ami_name` for the
  architecture;
* the vCPU quota of running On-Demand standard instances (A, C, D, H, I, M, R, T, Z families; Service Quotas code
  L-1216C47A) against the vCPUs running now plus those of the new nodes;
* Elastic IPs: the account's `vpc-max-elastic-ips` against those allocated plus the new ones.

A quota the credentials may not read (servicequotas:GetServiceQuota denied) is a note, not a gap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oscar_deploy.nodes.model import PlannedNode
from oscar_deploy.providers.aws.power import NO_CREDENTIALS, REFUSED_CODES, RENEW_CREDENTIALS, missing_profile
from oscar_deploy.providers.base import counted_plan
from oscar_deploy.providers.gaps import PreflightReport, quota_gap

if TYPE_CHECKING:
    from oscar_deploy.spec.models import AwsSpec, ClusterSpec

AWS_ARCH = {"amd64": "x86_64", "arm64": "arm64"}
STANDARD_VCPU_QUOTA = "L-1216C47A"
# First letters of the families the standard On-Demand vCPU quota covers, and the prefixes of families that
# start with one of those letters but have quotas of their own.
STANDARD_FAMILY_LETTERS = "acdhimrtz"
OWN_QUOTA_PREFIXES = ("inf", "dl", "hpc", "trn", "mac", "u-")
QUOTA_FIX = "use smaller instance types or fewer workers, or request more in the Service Quotas console"


@dataclass(frozen=True)
class AwsNeeds:
    """What the nodes to create ask of the region."""

    nodes: tuple[PlannedNode, ...]
    elastic_ips: int


def needs_for(spec: ClusterSpec, nodes: Sequence[PlannedNode] | None = None) -> AwsNeeds:
    """The needs of creating `nodes` (default: every node `up` plans); a scale-out passes only the new ones."""
    settings = _settings(spec)
    to_create = tuple(counted_plan(spec, spec.workers.initial) if nodes is None else nodes)
    if settings.elastic_ips == "all":
        elastic = len(to_create)
    else:
        elastic = sum(1 for node in to_create if node.name == "server-0")
    return AwsNeeds(to_create, elastic)


def is_standard_family(instance_type: str) -> bool:
    """Whether the standard On-Demand vCPU quota (L-1216C47A) counts this instance type."""
    name = instance_type.lower()
    return name[:1] in STANDARD_FAMILY_LETTERS and not name.startswith(OWN_QUOTA_PREFIXES)


def preflight(spec: ClusterSpec, needs: AwsNeeds | None = None) -> PreflightReport:
    """Every gap between the spec and the region; `report.facts` holds the AMI ids found per architecture."""
    from oscar_deploy.support.extras import import_extra

    boto3: Any = import_extra("boto3", "aws")
    errors: Any = import_extra("botocore.exceptions", "aws")

    settings = _settings(spec)
    needs = needs or needs_for(spec)
    report = PreflightReport()
    try:
        session = boto3.session.Session(profile_name=settings.profile, region_name=settings.region)
    except errors.ProfileNotFound:
        report.gaps.append(f"aws.profile: {missing_profile(settings.profile)}")
        return report
    if settings.region not in session.get_available_regions("ec2"):
        report.gap("aws.region", f"{settings.region!r} is not an EC2 region", "use one such as eu-west-1")
        return report
    ec2 = session.client("ec2")
    try:
        sizes = _check_instance_types(ec2, settings, needs, report)
    except errors.NoCredentialsError:
        report.gap(
            "aws.profile",
            "no AWS credentials found (profile, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials)",
            NO_CREDENTIALS,
        )
        return report
    except errors.ClientError as exc:
        if _code(exc) in REFUSED_CODES:
            report.gap(
                "aws.profile",
                f"AWS refused the credentials ({_code(exc)})",
                RENEW_CREDENTIALS,
            )
            return report
        raise
    _check_ami(ec2, settings, needs, report, errors.ClientError)
    _check_vcpus(session, ec2, settings, needs, sizes, report, errors.ClientError)
    _check_elastic_ips(ec2, needs, report)
    return report


def _settings(spec: ClusterSpec) -> AwsSpec:
    from oscar_deploy.spec.models import AwsSpec

    settings = spec.target_settings()
    if not isinstance(settings, AwsSpec):
        raise ValueError(f"spec target is {spec.target}, not aws")
    return settings


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _role_types(settings: AwsSpec, needs: AwsNeeds) -> dict[str, tuple[str, str]]:
    wanted = {
        "server": ("aws.server_instance_type", settings.server_instance_type),
        "agent": ("aws.worker_instance_type", settings.worker_instance_type),
    }
    return {role: wanted[role] for role in ("server", "agent") if any(node.role == role for node in needs.nodes)}


def _check_instance_types(ec2: Any, settings: AwsSpec, needs: AwsNeeds, report: PreflightReport) -> dict[str, Any]:
    """The EC2 description of each instance type the nodes use; types not offered or of another arch are gaps."""
    role_types = _role_types(settings, needs)
    names = sorted({name for _, name in role_types.values()})
    offered = {
        offering["InstanceType"]
        for offering in _pages(
            ec2,
            "describe_instance_type_offerings",
            "InstanceTypeOfferings",
            LocationType="region",
            Filters=[{"Name": "instance-type", "Values": names}],
        )
    }
    described = {}
    if offered:
        described = {
            item["InstanceType"]: item
            for item in _pages(ec2, "describe_instance_types", "InstanceTypes", InstanceTypes=sorted(offered))
        }
    for role, (key, name) in role_types.items():
        if name not in offered:
            report.gap(
                key,
                f"{name} is not offered in region {settings.region}",
                f"pick one from `aws ec2 describe-instance-type-offerings --region {settings.region}`",
            )
            continue
        arches = described[name].get("ProcessorInfo", {}).get("SupportedArchitectures", [])
        wanted_arch = AWS_ARCH[_arch_of(needs, role)]
        if wanted_arch not in arches:
            example = "a Graviton type such as t4g.large" if wanted_arch == "arm64" else "a type such as t3.large"
            report.gap(key, f"{name} runs {', '.join(arches)}, not {wanted_arch} (aws.arch)", f"pick {example}")
    return described


def _arch_of(needs: AwsNeeds, role: str) -> str:
    return next(node.arch for node in needs.nodes if node.role == role)


def _check_ami(ec2: Any, settings: AwsSpec, needs: AwsNeeds, report: PreflightReport, client_error: Any) -> None:
    arches = sorted({node.arch for node in needs.nodes})
    found: dict[str, str] = {}
    if settings.ami:
        try:
            images = ec2.describe_images(ImageIds=[settings.ami])["Images"]
        except client_error as exc:
            if not _code(exc).startswith("InvalidAMIID"):
                raise
            images = []
        if not images:
            report.gap("aws.ami", f"no AMI {settings.ami} in region {settings.region}", "fix the id or empty it")
            return
        image = images[0]
        if image.get("State") != "available":
            report.gap("aws.ami", f"AMI {settings.ami} is {image.get('State')}, not available", "pick another")
        for arch in arches:
            if image.get("Architecture") != AWS_ARCH[arch]:
                report.gap(
                    "aws.ami",
                    f"AMI {settings.ami} is {image.get('Architecture')}, the nodes are {AWS_ARCH[arch]}",
                    "pick an AMI for aws.arch",
                )
            found[arch] = settings.ami
    else:
        for arch in arches:
            images = ec2.describe_images(
                Owners=[settings.ami_owner],
                Filters=[
                    {"Name": "name", "Values": [settings.ami_name]},
                    {"Name": "architecture", "Values": [AWS_ARCH[arch]]},
                    {"Name": "state", "Values": ["available"]},
                ],
            )["Images"]
            if not images:
                report.gap(
                    "aws.ami_name",
                    f"no available {AWS_ARCH[arch]} AMI of owner {settings.ami_owner} named "
                    f"{settings.ami_name!r} in region {settings.region}",
                    "check aws.ami_owner and aws.ami_name, or set aws.ami",
                )
                continue
            newest = max(images, key=lambda image: image.get("CreationDate", ""))
            found[arch] = newest["ImageId"]
    report.facts["ami"] = found


def _check_vcpus(
    session: Any,
    ec2: Any,
    settings: AwsSpec,
    needs: AwsNeeds,
    described: dict[str, Any],
    report: PreflightReport,
    client_error: Any,
) -> None:
    role_types = _role_types(settings, needs)
    wanted = [role_types[node.role][1] for node in needs.nodes]
    wanted = [name for name in wanted if name in described and is_standard_family(name)]
    if not wanted:
        return
    quotas = session.client("service-quotas")
    try:
        quota = quotas.get_service_quota(ServiceCode="ec2", QuotaCode=STANDARD_VCPU_QUOTA)["Quota"]
    except client_error as exc:
        report.notes.append(
            f"aws: vCPU quota not checked, Service Quotas answered {_code(exc) or 'an error'} for "
            f"{STANDARD_VCPU_QUOTA}; allow servicequotas:GetServiceQuota to check it"
        )
        return
    limit = int(quota.get("Value", 0))
    needed = sum(_vcpus(described[name]) for name in wanted)
    used = _running_standard_vcpus(ec2)
    key = "workers.initial" if any(node.role == "agent" for node in needs.nodes) else "servers.count"
    quota_gap(
        report,
        key=key,
        what=f"vCPUs of standard On-Demand instances ({used} run already)",
        needed=needed,
        limit=limit,
        left=limit - used,
        fix=QUOTA_FIX,
    )


def _vcpus(description: dict[str, Any]) -> int:
    return int(description.get("VCpuInfo", {}).get("DefaultVCpus", 0))


def _running_standard_vcpus(ec2: Any) -> int:
    running: dict[str, int] = {}
    for reservation in _pages(
        ec2,
        "describe_instances",
        "Reservations",
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}],
    ):
        for instance in reservation.get("Instances", []):
            name = instance["InstanceType"]
            if is_standard_family(name):
                running[name] = running.get(name, 0) + 1
    if not running:
        return 0
    described = {
        item["InstanceType"]: _vcpus(item)
        for item in _pages(ec2, "describe_instance_types", "InstanceTypes", InstanceTypes=sorted(running))
    }
    return sum(count * described.get(name, 0) for name, count in running.items())


def _check_elastic_ips(ec2: Any, needs: AwsNeeds, report: PreflightReport) -> None:
    if not needs.elastic_ips:
        return
    attributes = ec2.describe_account_attributes(AttributeNames=["vpc-max-elastic-ips"])["AccountAttributes"]
    values = [value["AttributeValue"] for item in attributes for value in item.get("AttributeValues", [])]
    if not values:
        return
    limit = int(values[0])
    used = len(ec2.describe_addresses(Filters=[{"Name": "domain", "Values": ["vpc"]}])["Addresses"])
    fix = (
        "set aws.elastic_ips: first-server, release unused Elastic IPs, or request more"
        if needs.elastic_ips > 1
        else "release an unused Elastic IP or request more in the Service Quotas console"
    )
    quota_gap(
        report,
        key="aws.elastic_ips",
        what="Elastic IPs",
        needed=needs.elastic_ips,
        limit=limit,
        left=limit - used,
        fix=fix,
    )


def _pages(client: Any, operation: str, key: str, **arguments: Any) -> Iterable[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**arguments):
        yield from page.get(key, [])
