"""Provider `aws`: nodes are EC2 instances of the cluster's Pulumi stack (project oscar-aws, the program in
`program.py`).

Credentials come from boto3's and the Pulumi AWS provider's usual chain: `aws.profile` when set (passed to
both), else the environment (AWS_PROFILE, AWS_ACCESS_KEY_ID...), the shared files, an instance role. Nothing
secret goes into stack config: only the region and the profile's name.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from oscar_deploy.nodes.ansible import one_line
from oscar_deploy.nodes.model import NodeState, PlannedNode
from oscar_deploy.providers.aws import preflight as checks
from oscar_deploy.providers.aws.power import (
    CLUSTER_TAG,
    NODE_TAG,
    cluster_filters,
    describe_instances,
    ec2_failure,
    instance_tags,
)
from oscar_deploy.providers.cloud import CloudListing, CloudProvider, StackAccess, TaggedVm, sdk_check
from oscar_deploy.providers.gaps import PreflightReport
from oscar_deploy.providers.vm import HostKey, NodeRecord
from oscar_deploy.spec.models import AwsSpec
from oscar_deploy.support.checks import Check
from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.extras import import_extra

# Waiter polls: every 5 s for up to 10 minutes.
POWER_WAITER = {"Delay": 5, "MaxAttempts": 120}
# EC2's instance states as a node's: one stopping is taken for stopped (`up` starts it once it is); a terminated
# one (listed for about an hour, then no more) is missing, and one shutting down is waited for until it is
# terminated: the Pulumi provider's refresh forgets only a terminated instance (terraform-provider-aws
# FindInstanceByID), so a worker caught shutting down would be kept and never made again.
POWER_STATES: dict[str, NodeState] = {
    "pending": "running",
    "running": "running",
    "stopping": "stopped",
    "stopped": "stopped",
}
# The states a listing asks EC2 for: a terminated instance is gone (a recorded one is then asked for by id).
LISTED_STATES = (*POWER_STATES, "shutting-down")


class AwsProvider(CloudProvider):
    project = "oscar-aws"
    target = "aws"
    login_settings = "aws.profile and aws.region"
    vm_type = "aws:ec2/instance:Instance"
    tag_name = f"tag {CLUSTER_TAG}"
    tag_scope = "account and region"
    vms = "instances"

    @property
    def settings(self) -> AwsSpec:
        settings = self.spec.target_settings()
        assert isinstance(settings, AwsSpec)  # the registry hands each provider its own target's specs
        return settings

    def preflight(self, to_create: Sequence[PlannedNode], new_cluster: bool) -> PreflightReport:
        return checks.preflight(self.spec, checks.needs_for(self.spec, to_create))

    def access(self, facts: Mapping[str, Any] | None) -> StackAccess:
        config = {"aws:region": self.settings.region}
        if self.settings.profile:
            config["aws:profile"] = self.settings.profile
        return StackAccess(config)

    def program(self, nodes: Sequence[PlannedNode], host_keys: Mapping[str, HostKey], public_key: str) -> Any:
        from oscar_deploy.providers.aws import program

        spec = program.input_from_spec(self.spec, public_key=public_key, nodes=nodes, host_keys=host_keys)
        return functools.partial(program.declare, spec)

    def set_power(self, record: NodeRecord, on: bool) -> None:
        """StartInstances / StopInstances on the node's instance, then EC2's waiter for running / stopped."""
        boto3: Any = import_extra("boto3", "aws")
        errors: Any = import_extra("botocore.exceptions", "aws")
        if not record.instance_id:
            raise OperationError(f"node {record.name}: no instance id recorded; run `oscar-deploy up` first")
        what = f"node {record.name}: {'start' if on else 'stop'} instance {record.instance_id}"
        ids = [record.instance_id]
        try:
            ec2 = self._session(boto3).client("ec2")
            if on:
                found = ec2.describe_instances(InstanceIds=ids)["Reservations"][0]["Instances"][0]
                if found["State"]["Name"] == "stopping":  # StartInstances refuses it (the autoscaler just asked)
                    ec2.get_waiter("instance_stopped").wait(InstanceIds=ids, WaiterConfig=POWER_WAITER)
                ec2.start_instances(InstanceIds=ids)
                ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=POWER_WAITER)
            else:
                ec2.stop_instances(InstanceIds=ids)
                ec2.get_waiter("instance_stopped").wait(InstanceIds=ids, WaiterConfig=POWER_WAITER)
        except (errors.ClientError, errors.BotoCoreError) as exc:
            if isinstance(exc, errors.WaiterError) and "Error" not in (exc.last_response or {}):
                raise OperationError(
                    f"node {record.name}: instance {record.instance_id} did not {'start' if on else 'stop'} "
                    f"({one_line(str(exc))}); look at it in the EC2 console"
                ) from None
            raise ec2_failure(what, exc, operation="DescribeInstances") from None  # the waiters' call

    def listing(self, records: Sequence[NodeRecord], what: str) -> CloudListing:
        """DescribeInstances on the cluster's tag, and on the recorded instance ids it does not list (a filter, so an
        id EC2 no longer knows is no error): an instance not listed (terminated long ago) or terminated is missing,
        and so is one shutting down, once it is terminated."""
        boto3: Any = import_extra("boto3", "aws")
        errors: Any = import_extra("botocore.exceptions", "aws")
        names = {record.instance_id: record.name for record in records if record.instance_id}
        states: dict[str, NodeState] = {name: "missing" for name in names.values()}
        ending: list[str] = []
        try:
            ec2 = self._session(boto3).client("ec2")
            listed = {
                instance["InstanceId"]: instance
                for instance in describe_instances(ec2, cluster_filters(self.spec.name, LISTED_STATES))
            }
            unseen = sorted(set(names) - set(listed))
            if unseen:  # terminated, or its tags were changed by hand
                for instance in describe_instances(ec2, [{"Name": "instance-id", "Values": unseen}]):
                    listed.setdefault(instance["InstanceId"], instance)
            for instance_id, name in names.items():
                if instance_id in listed:
                    state = listed[instance_id]["State"]["Name"]
                    states[name] = POWER_STATES.get(state, "missing")
                    if state == "shutting-down":
                        ending.append(instance_id)
            if ending:
                self.progress.note(
                    f"node {', '.join(names[instance] for instance in ending)}: instance {', '.join(ending)} is "
                    "shutting down (terminated outside oscar-deploy); waiting until it is terminated"
                )
                ec2.get_waiter("instance_terminated").wait(InstanceIds=ending, WaiterConfig=POWER_WAITER)
        except (errors.ClientError, errors.BotoCoreError) as exc:
            raise ec2_failure(what, exc, operation="DescribeInstances") from None
        tagged = []
        for instance in listed.values():
            tags = instance_tags(instance)
            if tags.get(CLUSTER_TAG) == self.spec.name and instance["State"]["Name"] in POWER_STATES:
                node, name = tags.get(NODE_TAG, ""), tags.get("Name", "")
                tagged.append(TaggedVm(instance["InstanceId"], node, name, instance.get("LaunchTime")))
        return CloudListing(states, tagged)

    def delete_command(self, instance_id: str) -> str:
        command = ["aws", "ec2", "terminate-instances", "--instance-ids", instance_id, "--region", self.settings.region]
        if self.settings.profile:
            command += ["--profile", self.settings.profile]
        return shlex.join(command)

    def _session(self, boto3: Any) -> Any:
        return boto3.session.Session(profile_name=self.settings.profile, region_name=self.settings.region)


def doctor_checks(arches: Iterable[str]) -> list[Check]:
    return [sdk_check("aws")]
