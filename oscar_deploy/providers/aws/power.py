"""Power for AWS workers: stop and start the cluster's EC2 instances (StopInstances / StartInstances).

A stopped instance keeps its EBS root volume, private address and instance id; only compute time stops being
billed. Instances are found by the tags the AWS program gives them (`oscar-deploy-cluster`, `oscar-deploy-node`,
`oscar-deploy-role`); only `agent` instances are ever powered. Nothing here knows the Pulumi program: the tags
are the whole contract, and the program takes their names from here.

EC2 instance states (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-lifecycle.html):
pending -> starting, running -> on, stopping and shutting-down -> stopping, stopped -> off; terminated
instances are gone and not listed.

The autoscaler runs with its own credentials: an access key of an IAM user whose only policy is
`ec2_power_policy(cluster)` (describe instances; start and stop those tagged for this cluster as agents),
kept in a file of mode 0600 in the AWS shared-credentials format.
"""

from __future__ import annotations

import configparser
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from oscar_deploy.nodes.ansible import one_line
from oscar_deploy.providers.power import Machine, MachinePower
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import read_private_file

CLUSTER_TAG = "oscar-deploy-cluster"
NODE_TAG = "oscar-deploy-node"
ROLE_TAG = "oscar-deploy-role"
STATES: dict[str, MachinePower] = {
    "pending": "starting",
    "running": "on",
    "stopping": "stopping",
    "shutting-down": "stopping",
    "stopped": "off",
}
ARCHES = {"x86_64": "amd64", "arm64": "arm64"}
# EC2 error codes (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html) by what they mean:
# the credentials were refused (not that a resource is missing), an IAM policy denied the action, or EC2 is busy
# (throttled, out of capacity, failing) and the same call may pass later.
REFUSED_CODES = frozenset(
    {
        "AuthFailure",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "SignatureDoesNotMatch",
    }
)
DENIED_CODES = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"})
BUSY_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "EC2ThrottledException",
        "InsufficientInstanceCapacity",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
    }
)
RENEW_CREDENTIALS = "renew them (`aws sso login` or new access keys) or pick another profile"
NO_CREDENTIALS = "run `aws configure` or set aws.profile to a configured profile"


def ec2_power_policy(cluster: str) -> dict[str, Any]:
    """The IAM policy of the autoscaler's own user: it may list instances and start or stop only this
    cluster's workers (the tag conditions are checked by EC2 on each call)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListInstances", "Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"},
            {
                "Sid": "PowerThisClustersWorkers",
                "Effect": "Allow",
                "Action": ["ec2:StartInstances", "ec2:StopInstances"],
                "Resource": "arn:aws:ec2:*:*:instance/*",
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/{CLUSTER_TAG}": cluster,
                        f"aws:ResourceTag/{ROLE_TAG}": "agent",
                    }
                },
            },
        ],
    }


def read_credentials(path: Path) -> dict[str, str]:
    """The access key in `path` (AWS shared-credentials format, first profile), refused unless mode 0600."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_private_file(path, "the autoscaler's AWS credentials"))
    except configparser.Error as exc:
        raise UserInputError(f"{path}: not an AWS credentials file ({str(exc).splitlines()[0]})") from None
    sections = parser.sections()
    if not sections:
        raise UserInputError(f"{path}: no profile; write [default] with aws_access_key_id and aws_secret_access_key")
    section = parser[sections[0]]
    missing = [key for key in ("aws_access_key_id", "aws_secret_access_key") if not section.get(key)]
    if missing:
        raise UserInputError(f"{path}: [{sections[0]}] has no {missing[0]}; add it")
    keys = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
    return {key: section[key] for key in keys if section.get(key)}


def missing_profile(profile: str | None) -> str:
    """What is wrong and what to do when `aws.profile` names no configured profile."""
    return (
        f"no profile {profile!r} in ~/.aws/config or ~/.aws/credentials; run `aws configure --profile {profile}`, or "
        "empty aws.profile to use the environment"
    )


def ec2_failure(what: str, exc: Exception, operation: str = "") -> OperationError:
    """One line for an EC2 call that failed: `what` was asked, what AWS answered (the error code, or that it could not
    be reached), and the fix. botocore raises ClientError for an error answer (`response["Error"]["Code"]`, the
    call in `operation_name`) and a BotoCoreError for the rest: no credentials, no connection, a waiter that got an
    error answer (`last_response`; its call is `operation`)."""
    from botocore import exceptions as errors

    response: dict[str, Any] = {}
    if isinstance(exc, errors.ClientError):
        response, operation = exc.response, exc.operation_name
    elif isinstance(exc, errors.WaiterError):
        response = exc.last_response or {}
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    message = str(error.get("Message") or "")
    answered = f"AWS answered {code or status}" + (f" ({one_line(message)})" if message else "")
    if isinstance(exc, errors.ProfileNotFound):
        return OperationError(f"{what}: aws.profile: {missing_profile(exc.kwargs.get('profile'))}")
    if isinstance(exc, (errors.NoCredentialsError, errors.PartialCredentialsError)):
        return OperationError(f"{what}: no AWS credentials found; {NO_CREDENTIALS}")
    if isinstance(exc, (errors.SSOError, errors.TokenRetrievalError, errors.CredentialRetrievalError)):
        return OperationError(
            f"{what}: the AWS credentials could not be loaded ({type(exc).__name__}); {RENEW_CREDENTIALS}"
        )
    if isinstance(exc, (errors.ConnectionError, errors.HTTPClientError)):
        return OperationError(
            f"{what}: cannot reach EC2 ({one_line(str(exc))}); check your network, then run this again"
        )
    if code in REFUSED_CODES:
        return OperationError(f"{what}: AWS refused the credentials ({code}); {RENEW_CREDENTIALS}")
    if code in DENIED_CODES:
        action = f"ec2:{operation}" if operation else "this EC2 action"
        return OperationError(
            f"{what}: AWS denied {action} ({code}); allow {action} to the IAM user or role of these credentials"
        )
    if code.startswith("InvalidInstanceID"):
        return OperationError(
            f"{what}: {answered}; the instance was terminated outside oscar-deploy: `oscar-deploy up` makes a "
            "terminated worker again (a terminated server needs `oscar-deploy down --yes`, then `up`: a new cluster)"
        )
    if code in BUSY_CODES or status >= 500:
        return OperationError(f"{what}: {answered}; EC2 is busy or failing: run this again later")
    if code:
        return OperationError(f"{what}: {answered}; look at it in the EC2 console")
    return OperationError(f"{what}: {one_line(str(exc))}; look at it in the EC2 console")


def describe_instances(ec2: Any, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every instance DescribeInstances lists for `filters`, over all pages (EC2 errors pass through)."""
    pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
    return [
        instance
        for page in pages
        for reservation in page.get("Reservations", [])
        for instance in reservation.get("Instances", [])
    ]


def cluster_filters(cluster: str, states: Iterable[str]) -> list[dict[str, Any]]:
    """The DescribeInstances filters for the instances of `cluster` in `states`."""
    return [
        {"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]},
        {"Name": "instance-state-name", "Values": list(states)},
    ]


def instance_tags(instance: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}


class Ec2Power:
    """Stop and start the agent instances of one cluster."""

    def __init__(self, ec2: Any, cluster: str) -> None:
        self.ec2 = ec2
        self.cluster = cluster

    @classmethod
    def connect(cls, cluster: str, region: str, credentials: Path | None, profile: str | None) -> Ec2Power:
        """An EC2 client for `region` with the key in `credentials`, else with `profile` (or the environment)."""
        from oscar_deploy.support.extras import import_extra

        boto3: Any = import_extra("boto3", "aws")
        errors: Any = import_extra("botocore.exceptions", "aws")
        if credentials is not None:
            session = boto3.session.Session(region_name=region, **read_credentials(credentials))
        else:
            try:
                session = boto3.session.Session(region_name=region, profile_name=profile)
            except errors.ProfileNotFound:
                raise UserInputError(f"aws.profile: {missing_profile(profile)}") from None
        return cls(session.client("ec2"), cluster)

    def _instances(self) -> dict[str, dict[str, Any]]:
        listed: dict[str, dict[str, Any]] = {}
        filters = cluster_filters(self.cluster, STATES)
        for instance in self._call("list instances", lambda: describe_instances(self.ec2, filters)):
            tags = instance_tags(instance)
            name = tags.get(NODE_TAG)
            if name and tags.get(CLUSTER_TAG) == self.cluster:
                listed[name] = {**instance, "_role": tags.get(ROLE_TAG, "")}
        return listed

    def _agent(self, name: str) -> dict[str, Any]:
        instance = self._instances().get(name)
        if instance is None:
            raise OperationError(f"node {name}: no instance of cluster {self.cluster} has this name; it was removed")
        if instance["_role"] != "agent":
            raise OperationError(f"node {name}: a {instance['_role'] or 'untagged'} instance; only workers are powered")
        return instance

    def _call(self, what: str, request: Callable[[], Any]) -> Any:
        """`request()`, with an EC2 or connection error turned into one line naming what was asked."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return request()
        except (ClientError, BotoCoreError) as exc:
            raise ec2_failure(f"EC2 {what}", exc) from None

    def power_on(self, name: str) -> None:
        instance = self._agent(name)
        state = instance["State"]["Name"]
        if state in ("running", "pending"):
            return
        if state != "stopped":
            raise OperationError(f"node {name}: instance {instance['InstanceId']} is {state}; it starts once stopped")
        self._call(f"start {name}", lambda: self.ec2.start_instances(InstanceIds=[instance["InstanceId"]]))

    def power_off(self, name: str) -> None:
        instance = self._agent(name)
        if instance["State"]["Name"] in ("stopped", "stopping"):
            return
        self._call(f"stop {name}", lambda: self.ec2.stop_instances(InstanceIds=[instance["InstanceId"]]))

    def machines(self) -> list[Machine]:
        return [
            Machine(name, STATES[instance["State"]["Name"]], ARCHES.get(str(instance.get("Architecture")), ""))
            for name, instance in sorted(self._instances().items())
            if instance["_role"] == "agent"
        ]
