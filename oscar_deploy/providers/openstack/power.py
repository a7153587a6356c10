"""Power for OpenStack workers: stop/start, or shelve/unshelve, the cluster's pre-provisioned servers (Nova).

`stop` (os-stop / os-start) keeps the server on its hypervisor: it boots fast, but most clouds still count
its cores and RAM against the quota and some bill it. `shelve` (shelve / unshelve) snapshots and, once
offloaded, frees the hypervisor: nothing is held but the image and its addresses, and the boot takes longer.
The spec's `openstack.worker_power_off` chooses. Actions and states follow the Compute API reference
(https://docs.openstack.org/api-ref/compute/, "Servers - run an action"): ACTIVE -> on; SHUTOFF, SHELVED and
SHELVED_OFFLOADED -> off; BUILD and REBOOT -> starting; a task_state of powering-off or shelving -> stopping,
of powering-on or unshelving -> starting; ERROR -> failed.

Servers are found by the metadata the OpenStack program sets (`oscar-deploy-cluster`, `oscar-deploy-node`,
`oscar-deploy-role`); only `agent` servers are ever powered. The autoscaler's credentials are its own
clouds.yaml (mode 0600), ideally with an application credential restricted to these server actions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml

from oscar_deploy.providers.power import Machine, MachinePower
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import read_private_file

# Where openstacksdk looks for clouds.yaml when no file is given.
CLOUDS_YAML_PLACES = "./, ~/.config/openstack/, /etc/openstack/ or OS_CLIENT_CONFIG_FILE"

METADATA_PREFIX = "oscar-deploy-"
OffMode = Literal["stop", "shelve"]
STATUSES: dict[str, MachinePower] = {
    "ACTIVE": "on",
    "SHUTOFF": "off",
    "SHELVED": "off",
    "SHELVED_OFFLOADED": "off",
    "BUILD": "starting",
    "REBOOT": "starting",
    "HARD_REBOOT": "starting",
    "ERROR": "failed",
}
TASKS: dict[str, MachinePower] = {
    "powering-off": "stopping",
    "shelving": "stopping",
    "shelving_image_pending_upload": "stopping",
    "shelving_image_uploading": "stopping",
    "shelving_offloading": "stopping",
    "powering-on": "starting",
    "unshelving": "starting",
    "spawning": "starting",
}
SHELVED = ("SHELVED", "SHELVED_OFFLOADED")


def connect_cloud(cloud: str, clouds_file: Path | None) -> Any:
    """An openstacksdk connection to `cloud`, from `clouds_file` (refused unless mode 0600) when given, else
    from the usual clouds.yaml places and OS_* variables."""
    from oscar_deploy.support.extras import import_extra

    openstack: Any = import_extra("openstack", "openstack")
    if clouds_file is None:
        try:
            return openstack.connect(cloud=cloud)
        except openstack.exceptions.ConfigException:
            raise UserInputError(
                f"openstack.cloud: no cloud {cloud!r} in clouds.yaml ({CLOUDS_YAML_PLACES}); fix the name or add "
                "that cloud"
            ) from None
    try:
        data = yaml.safe_load(read_private_file(clouds_file, "the autoscaler's OpenStack credentials"))
    except yaml.YAMLError:
        raise UserInputError(f"{clouds_file}: not valid YAML; write a clouds.yaml with a `clouds:` mapping") from None
    clouds = data.get("clouds") if isinstance(data, dict) else None
    if not isinstance(clouds, dict) or not isinstance(clouds.get(cloud), dict):
        raise UserInputError(f"{clouds_file}: no cloud named {cloud!r} under `clouds:`; add it or fix the name")
    from openstack import config as openstack_config

    region = openstack_config.OpenStackConfig(config_files=[str(clouds_file)]).get_one(cloud=cloud)
    return openstack.connection.Connection(config=region)


class OpenStackPower:
    """Stop/start or shelve/unshelve the agent servers of one cluster."""

    def __init__(self, connection: Any, cluster: str, off_mode: OffMode = "stop") -> None:
        self.connection = connection
        self.cluster = cluster
        self.off_mode = off_mode

    def _servers(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for server in self._call("list servers", lambda: list(self.connection.compute.servers(details=True))):
            metadata = server.metadata or {}
            name = metadata.get(f"{METADATA_PREFIX}node")
            if name and metadata.get(f"{METADATA_PREFIX}cluster") == self.cluster:
                found[str(name)] = server
        return found

    def _agent(self, name: str) -> Any:
        server = self._servers().get(name)
        if server is None:
            raise OperationError(f"node {name}: no server of cluster {self.cluster} has this name; it was removed")
        role = (server.metadata or {}).get(f"{METADATA_PREFIX}role")
        if role != "agent":
            raise OperationError(f"node {name}: a {role or 'untagged'} server; only workers are powered")
        return server

    def _call(self, what: str, request: Any) -> Any:
        from openstack import exceptions

        try:
            return request()
        except exceptions.SDKException as exc:
            raise OperationError(f"OpenStack {what}: {str(exc).splitlines()[0]}") from None

    def power_on(self, name: str) -> None:
        server = self._agent(name)
        compute = self.connection.compute
        if server.task_state:
            raise OperationError(f"node {name}: server is busy ({server.task_state}); it starts once that ends")
        if server.status == "SHUTOFF":
            self._call(f"start {name}", lambda: compute.start_server(server))
        elif server.status in SHELVED:
            self._call(f"unshelve {name}", lambda: compute.unshelve_server(server))
        elif server.status != "ACTIVE":
            raise OperationError(f"node {name}: server is {server.status}; it cannot be started from there")

    def power_off(self, name: str) -> None:
        server = self._agent(name)
        compute = self.connection.compute
        if server.task_state:
            raise OperationError(f"node {name}: server is busy ({server.task_state}); it stops once that ends")
        if self.off_mode == "shelve" and server.status in ("ACTIVE", "SHUTOFF"):
            self._call(f"shelve {name}", lambda: compute.shelve_server(server))
        elif self.off_mode == "stop" and server.status == "ACTIVE":
            self._call(f"stop {name}", lambda: compute.stop_server(server))

    def machines(self) -> list[Machine]:
        machines = []
        for name, server in sorted(self._servers().items()):
            metadata = server.metadata or {}
            if metadata.get(f"{METADATA_PREFIX}role") != "agent":
                continue
            power = TASKS.get(server.task_state or "") or STATUSES.get(server.status, "unknown")
            machines.append(Machine(name, power, str(metadata.get(f"{METADATA_PREFIX}arch") or "")))
        return machines
