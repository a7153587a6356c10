"""Power for OpenStack workers: stop/start, or shelve/unshelve, the cluster's pre-provisioned servers (Nova).

`stop` (os-stop / os-start) keeps the server on its hypervisor: it boots fast, but most clouds still count
its cores and RAM against the quota and some bill it. `shelve` (shelve / unshelve) snapshots and, once
offloaded, frees the hypervisor: nothing is held but the image and its addresses, and the boot takes longer.
The spec's `openstack.worker_power_off` chooses. Actions and states follow the Compute API reference
(https://docs.openstack.org/api-ref/compute/, "Servers - run an action"): ACTIVE -> on; SHUTOFF, SHELVED and
SHELVED_OFFLOADED -> off; BUILD and REBOOT -> starting; a task_state of powering-off or shelving -> stopping,
of powering-on or unshelving -> starting; ERROR -> failed.

Servers are found by the metadata the OpenStack program sets (`oscar-deploy-cluster`, `oscar-deploy-node`,
`oscar-deploy-role`; the program takes the prefix from here); only `agent` servers are ever powered. The
autoscaler's credentials are its own clouds.yaml (mode 0600), ideally with an application credential restricted
to these server actions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml

from oscar_deploy.nodes.ansible import one_line
from oscar_deploy.providers.power import Machine, MachinePower
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import read_private_file

# Where openstacksdk looks for clouds.yaml when no file is given.
CLOUDS_YAML_PLACES = "./, ~/.config/openstack/, /etc/openstack/ or OS_CLIENT_CONFIG_FILE"
# Auth types whose clouds.yaml entries the Pulumi provider (gophercloud) cannot log in with by itself.
OIDC_AUTH_TYPES = (
    "v3oidcaccesstoken",
    "v3oidcpassword",
    "v3oidcclientcredentials",
    "v3oidcauthcode",
    "v3oidcdeviceauthz",
)

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


def server_metadata(server: Any, key: str) -> str:
    """One of the metadata the OpenStack program gives a server (`cluster`, `node`, `role`, `arch`), "" if unset."""
    return str((server.metadata or {}).get(f"{METADATA_PREFIX}{key}") or "")


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


def login_refused(cloud: str, auth_type: str, answer: str = "Keystone answered 401") -> str:
    """What a 401 from cloud `cloud` means and how to log in again: for OIDC, where a new access token comes from."""
    if auth_type in OIDC_AUTH_TYPES:
        return (
            f"the OIDC access token of cloud {cloud!r} is expired or revoked ({answer}); get a new one (access tokens "
            f"are short-lived; EGI Check-in: https://aai.egi.eu/token or oidc-agent) and put it in clouds.yaml under "
            f"clouds.{cloud}.auth.access_token"
        )
    return (
        f"cloud {cloud!r} refused the credentials in clouds.yaml ({answer}); renew them (for example a new "
        "application credential from your dashboard)"
    )


def api_failure(what: str, exc: Exception, connection: Any) -> OperationError:
    """One line for an openstacksdk call that failed after the login: `what` was asked, what the cloud answered (the
    HTTP status, or that it could not be reached), and the fix. openstacksdk raises HttpException (status_code) for
    an API's error answer; keystoneauth's own errors (a login again after a 401, a connection that fails) pass
    through it unwrapped."""
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions

    cloud = str(connection.config.name)
    status: int | None = None
    detail = ""
    if isinstance(exc, exceptions.HttpException):
        status, detail = exc.status_code, str(exc.details or "")
    elif isinstance(exc, ksa.HttpError):
        status, detail = exc.http_status, str(exc.message or "")
    answered = f"cloud {cloud!r} answered {status}" + (f" ({one_line(detail)})" if detail else "")
    if status == 401:
        auth_type = str(connection.config.config.get("auth_type") or "password")
        return OperationError(f"{what}: {login_refused(cloud, auth_type, 'the cloud answered 401')}")
    if status == 403:
        return OperationError(f"{what}: {answered}; your role in the project may not do this: ask the cloud's support")
    if status == 404:
        return OperationError(
            f"{what}: {answered}; the server was deleted outside oscar-deploy: `oscar-deploy up` makes a deleted "
            "worker again (a deleted server needs `oscar-deploy down --yes`, then `up`: a new cluster)"
        )
    if status == 409:
        return OperationError(f"{what}: {answered}; the server is busy: run this again once its task ended")
    if status is not None and (status == 429 or status >= 500):
        return OperationError(f"{what}: {answered}; the cloud is busy or failing: run this again later")
    if status is not None:
        return OperationError(f"{what}: {answered}; look at the server in the cloud's dashboard")
    if isinstance(exc, ksa.ConnectionError):
        return OperationError(
            f"{what}: cannot reach cloud {cloud!r} ({type(exc).__name__}); check your network, then run this again"
        )
    return OperationError(f"{what}: {one_line(str(exc))}; look at it in the cloud's dashboard")


@contextlib.contextmanager
def api_errors(what: str, connection: Any) -> Iterator[None]:
    """An openstacksdk or keystoneauth error raised inside, as the one line of `api_failure`."""
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions

    try:
        yield
    except (exceptions.SDKException, ksa.ClientException) as exc:
        raise api_failure(what, exc, connection) from None


class OpenStackPower:
    """Stop/start or shelve/unshelve the agent servers of one cluster."""

    def __init__(self, connection: Any, cluster: str, off_mode: OffMode = "stop") -> None:
        self.connection = connection
        self.cluster = cluster
        self.off_mode = off_mode

    def _servers(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for server in self._call("list servers", lambda: list(self.connection.compute.servers(details=True))):
            name = server_metadata(server, "node")
            if name and server_metadata(server, "cluster") == self.cluster:
                found[name] = server
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
        with api_errors(f"OpenStack {what}", self.connection):
            return request()

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
