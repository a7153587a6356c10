"""Provider `openstack`: nodes are servers of the cluster's Pulumi stack (project oscar-openstack, the program in
`program.py`), on any OpenStack cloud that openstacksdk's clouds.yaml loader can log in to, EGI FedCloud's
OIDC access tokens included.

The login comes from the cloud named by `openstack.cloud` in clouds.yaml. openstacksdk logs in (for the
preflight, for each update, and to stop or start a server); the Pulumi OpenStack provider then gets either the
same clouds.yaml entry (`openstack:cloud`) or, for OIDC clouds it cannot log in to itself, the Keystone token of
that login in OS_TOKEN in the pulumi process's environment (`preflight.provider_settings`).
"""

from __future__ import annotations

import functools
import shlex
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from oscar_deploy.nodes.model import NodeState, PlannedNode
from oscar_deploy.providers.cloud import CloudListing, CloudProvider, StackAccess, TaggedVm, sdk_check
from oscar_deploy.providers.gaps import PreflightReport
from oscar_deploy.providers.openstack import preflight as checks
from oscar_deploy.providers.openstack.power import (
    METADATA_PREFIX,
    SHELVED,
    STATUSES,
    api_errors,
    server_metadata,
)
from oscar_deploy.providers.power import MachinePower
from oscar_deploy.providers.vm import HostKey, NodeRecord
from oscar_deploy.spec.models import OpenStackSpec
from oscar_deploy.support.checks import Check
from oscar_deploy.support.errors import OperationError

# Servers take a while to stop cleanly (the guest shuts down) and to boot.
POWER_WAIT_SECONDS = 600
# Server statuses of a server on its way out (restorable or not): no longer a VM of the cluster.
DELETED_STATUSES = ("DELETED", "SOFT_DELETED")


class OpenStackProvider(CloudProvider):
    project = "oscar-openstack"
    target = "openstack"
    login_settings = "openstack.cloud (and that cloud's project in clouds.yaml)"
    vm_type = "openstack:compute/instance:Instance"
    tag_name = f"metadata {METADATA_PREFIX}cluster"
    tag_scope = "project"
    vms = "servers"

    @property
    def settings(self) -> OpenStackSpec:
        settings = self.spec.target_settings()
        assert isinstance(settings, OpenStackSpec)  # the registry hands each provider its own target's specs
        return settings

    def preflight(self, to_create: Sequence[PlannedNode], new_cluster: bool) -> PreflightReport:
        return checks.preflight(self.spec, checks.needs_for(self.spec, to_create, new_cluster=new_cluster))

    def access(self, facts: Mapping[str, Any] | None) -> StackAccess:
        if facts is None:
            _connection, facts = checks.connect(self.spec)
        settings = checks.provider_settings(dict(facts))
        return StackAccess(settings.config, settings.environment)

    def program(self, nodes: Sequence[PlannedNode], host_keys: Mapping[str, HostKey], public_key: str) -> Any:
        from oscar_deploy.providers.openstack import program

        spec = program.input_from_spec(self.spec, public_key=public_key, nodes=nodes, host_keys=host_keys)
        return functools.partial(program.declare, spec)

    def set_power(self, record: NodeRecord, on: bool) -> None:
        """`os-start` / `os-stop` on the server (Nova's server actions), then wait for ACTIVE / SHUTOFF."""
        from openstack import exceptions

        connection, _facts = checks.connect(self.spec)
        wanted = "ACTIVE" if on else "SHUTOFF"
        what = f"node {record.name}: {'start' if on else 'stop'} server {record.vm_name}"
        with warnings.catch_warnings(), api_errors(what, connection):
            warnings.simplefilter("ignore")
            compute = connection.compute
            server = (
                compute.get_server(record.instance_id)
                if record.instance_id
                else compute.find_server(record.vm_name, ignore_missing=False)
            )
            if server.status == wanted:
                return
            if on and server.status in SHELVED:  # the autoscaler's `worker_power_off: shelve`
                compute.unshelve_server(server)
            elif on:
                compute.start_server(server)
            else:
                compute.stop_server(server)
            try:
                compute.wait_for_server(server, status=wanted, failures=["ERROR"], interval=2, wait=POWER_WAIT_SECONDS)
            except (exceptions.ResourceTimeout, exceptions.ResourceFailure) as exc:
                raise OperationError(
                    f"node {record.name}: server {record.vm_name} did not become {wanted} ({type(exc).__name__}); "
                    "look at it in the cloud's dashboard"
                ) from None

    def listing(self, records: Sequence[NodeRecord], what: str) -> CloudListing:
        """The servers' statuses from one listing (`GET /servers/detail`, the project's servers not deleted); a
        server not listed is missing: Nova answers 404 for it, which is what makes a refresh of the Pulumi provider
        (terraform-provider-openstack's instance read) forget it. A SOFT_DELETED server (a cloud with a reclaim
        interval keeps it for Nova's `restore`) is still read, and is left out like BUILD or ERROR; it is no VM of
        the cluster either, nor is one being deleted."""
        names = {record.instance_id: record.name for record in records if record.instance_id}
        connection, _facts = checks.connect(self.spec)
        with warnings.catch_warnings(), api_errors(what, connection):
            warnings.simplefilter("ignore")
            servers = {server.id: server for server in connection.compute.servers()}
        node_states: dict[MachinePower, NodeState] = {"on": "running", "off": "stopped"}
        states: dict[str, NodeState] = {}
        for instance, name in names.items():
            server = servers.get(instance)
            if server is None:
                states[name] = "missing"
            elif (power := STATUSES.get(server.status, "unknown")) in node_states:
                states[name] = node_states[power]
        tagged = [
            TaggedVm(server.id, server_metadata(server, "node"), str(server.name or ""), _created(server.created_at))
            for server in servers.values()
            if server_metadata(server, "cluster") == self.spec.name
            and server.status not in DELETED_STATUSES
            and server.task_state != "deleting"
        ]
        return CloudListing(states, tagged)

    def delete_command(self, instance_id: str) -> str:
        return shlex.join(["openstack", "--os-cloud", self.settings.cloud, "server", "delete", instance_id])


def _created(value: str | None) -> datetime | None:
    """Nova's `created` (ISO 8601, UTC), or None when the cloud gave none that reads."""
    try:
        created = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return created.replace(tzinfo=UTC) if created and created.tzinfo is None else created


def doctor_checks(arches: Iterable[str]) -> list[Check]:
    return [sdk_check("openstack")]
