"""Which provider makes the nodes of each target, and what `doctor` checks for it.

The targets themselves are the spec's (`TARGET_SECTIONS`); a target without an entry here is one this version
cannot make clusters on yet, and every command that needs its nodes says so in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from oscar_deploy.providers.aws import provider as aws
from oscar_deploy.providers.base import Provider
from oscar_deploy.providers.cloud import InfrastructureStacks
from oscar_deploy.providers.local import host as local_host
from oscar_deploy.providers.local.provider import LocalProvider
from oscar_deploy.providers.openstack import provider as openstack
from oscar_deploy.providers.static.provider import StaticProvider
from oscar_deploy.spec.models import TARGETS, ClusterSpec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.checks import Check
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.progress import Progress


@dataclass(frozen=True)
class ProviderEntry:
    # Makes the provider of one cluster; cloud providers run their stack through `stacks`, which the pipeline
    # builds on the Pulumi runner (a layer above this one), the others ignore it.
    create: Callable[[ClusterSpec, ClusterState, Progress, InfrastructureStacks], Provider]
    # The doctor lines of this target, given the arches its nodes will have (empty when no spec was given).
    doctor_checks: Callable[[Iterable[str]], list[Check]]


PROVIDERS: dict[str, ProviderEntry] = {
    "local": ProviderEntry(
        lambda spec, state, progress, _stacks: LocalProvider.for_cluster(spec, state, progress),
        local_host.doctor_checks,
    ),
    "openstack": ProviderEntry(openstack.OpenStackProvider, openstack.doctor_checks),
    "aws": ProviderEntry(aws.AwsProvider, aws.doctor_checks),
    "static": ProviderEntry(
        lambda spec, state, progress, _stacks: StaticProvider.for_cluster(spec, state, progress), lambda arches: []
    ),
}


def available_targets() -> list[str]:
    return [target for target in TARGETS if target in PROVIDERS]


def provider_for(spec: ClusterSpec, state: ClusterState, progress: Progress, stacks: InfrastructureStacks) -> Provider:
    """The provider of the spec's target; a target this version has no provider for stops here."""
    entry = PROVIDERS.get(spec.target)
    if entry is None:
        raise UserInputError(
            f"target {spec.target}: this version makes clusters on target {' or '.join(available_targets())} "
            f"only; set `target: local` to try the platform on this machine"
        )
    return entry.create(spec, state, progress, stacks)
