"""OpenStack preflight: before anything is created, check with openstacksdk that the cloud can hold the cluster.

Checked, all in one run, each gap one line naming the spec key and the fix:

* credentials: the cloud named by `openstack.cloud`, read by openstacksdk's loader only (clouds.yaml in ./,
  ~/.config/openstack/, /etc/openstack/, or the file in OS_CLIENT_CONFIG_FILE; OS_CLOUD picks the default),
  including EGI FedCloud's `auth_type: v3oidcaccesstoken`; an expired access token is one line saying how to
  get a new one;
* the image (exists once, is active, has the nodes' architecture, fits the flavors' disk and RAM);
* the flavors of servers and workers;
* the external network (exists, is external) and the existing network when the spec names one;
* the quota: instances, cores and RAM (Nova's absolute limits), floating IPs and security groups (Neutron's
  quota details), against what the nodes to create need.

The Pulumi OpenStack provider reads clouds.yaml through gophercloud, which has no OIDC access-token login; for
such clouds `provider_settings` hands the Keystone token this preflight obtained to the provider instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from oscar_deploy.nodes.model import PlannedNode
from oscar_deploy.providers.base import counted_plan
from oscar_deploy.providers.gaps import PreflightReport, free, quota_gap
from oscar_deploy.providers.openstack.power import CLOUDS_YAML_PLACES, OIDC_AUTH_TYPES, login_refused

if TYPE_CHECKING:
    from oscar_deploy.spec.models import ClusterSpec, OpenStackSpec

# Glance's `architecture` property uses the kernel's names (libosinfo), the nodes use Debian's.
IMAGE_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
SERVER_MIN_RAM_MIB = 4096
QUOTA_FIX = "use smaller flavors or fewer workers, or ask the cloud's support to raise the quota"


@dataclass(frozen=True)
class OpenStackNeeds:
    """What the nodes to create ask of the cloud."""

    nodes: tuple[PlannedNode, ...]
    floating_ips: int
    security_groups: int


def needs_for(
    spec: ClusterSpec, nodes: Sequence[PlannedNode] | None = None, *, new_cluster: bool = True
) -> OpenStackNeeds:
    """The needs of creating `nodes` (default: every node `up` plans); a scale-out passes only the new ones."""
    settings = _settings(spec)
    to_create = tuple(counted_plan(spec, spec.workers.initial) if nodes is None else nodes)
    if settings.floating_ips == "all":
        floating = len(to_create)
    else:
        floating = sum(1 for node in to_create if node.name == "server-0")
    return OpenStackNeeds(to_create, floating, 1 if new_cluster else 0)


def preflight(spec: ClusterSpec, needs: OpenStackNeeds | None = None) -> PreflightReport:
    """Every gap between the spec and the cloud; `report.facts` holds the connection details for the provider."""
    from oscar_deploy.support.extras import import_extra

    openstack: Any = import_extra("openstack", "openstack")
    settings = _settings(spec)
    needs = needs or needs_for(spec)
    report = PreflightReport()
    with warnings.catch_warnings():
        # openstacksdk warns about its own future (find_*'s ignore_missing default, influxdb); not the user's concern.
        warnings.simplefilter("ignore")
        connection = _connect(openstack, settings, report)
        if connection is None:
            return report
        flavors = _check_flavors(openstack, connection, settings, needs, report)
        _check_image(openstack, connection, settings, needs, flavors, report)
        _check_networks(openstack, connection, settings, report)
        _check_quota(connection, needs, flavors, report)
    return report


def connect(spec: ClusterSpec) -> tuple[Any, dict[str, Any]]:
    """A logged-in openstacksdk connection to the spec's cloud and the facts `provider_settings` needs; a login
    that fails stops with the same one line the preflight gives (PreflightError)."""
    from oscar_deploy.support.extras import import_extra

    openstack: Any = import_extra("openstack", "openstack")
    report = PreflightReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        connection = _connect(openstack, _settings(spec), report)
    if connection is None:
        report.raise_for_gaps()
    return connection, report.facts


@dataclass(frozen=True)
class ProviderSettings:
    """How the Pulumi OpenStack provider logs in: stack config (never secret) and environment for the pulumi
    process. The Keystone token travels only in the environment: the Automation API's set_config puts config
    values on the pulumi command line."""

    config: dict[str, str]
    environment: dict[str, str] = field(repr=False)


def provider_settings(facts: dict[str, Any]) -> ProviderSettings:
    """Settings for the Pulumi OpenStack provider from a successful preflight's `report.facts`.

    Clouds gophercloud can log in to get `openstack:cloud` (it reads the same clouds.yaml). OIDC clouds get the
    Keystone token of the preflight's session, scoped to the project (it lives as long as Keystone allows, an hour
    by default), in OS_TOKEN, which the provider reads when `openstack:token` is unset; OS_CLOUD is emptied so the
    provider does not go back to the clouds.yaml entry it cannot use.
    """
    if facts["auth_type"] not in OIDC_AUTH_TYPES:
        return ProviderSettings(config={"openstack:cloud": facts["cloud"]}, environment={})
    config = {"openstack:authUrl": facts["auth_url"], "openstack:tenantId": facts["project_id"]}
    if facts.get("region"):
        config["openstack:region"] = facts["region"]
    return ProviderSettings(config=config, environment={"OS_TOKEN": facts["token"], "OS_CLOUD": ""})


def _settings(spec: ClusterSpec) -> OpenStackSpec:
    from oscar_deploy.spec.models import OpenStackSpec

    settings = spec.target_settings()
    if not isinstance(settings, OpenStackSpec):
        raise ValueError(f"spec target is {spec.target}, not openstack")
    return settings


def _connect(openstack: Any, settings: OpenStackSpec, report: PreflightReport) -> Any:
    """Log in through openstacksdk's loader; one gap line and None when that fails."""
    from keystoneauth1 import exceptions as ksa

    cloud = settings.cloud
    auth_type = "password"
    try:
        connection = openstack.connect(cloud=cloud)
        auth_type = str(connection.config.config.get("auth_type") or auth_type)
        project_id = connection.current_project_id
        token = connection.auth_token
    except openstack.exceptions.ConfigException:
        known = _cloud_names(openstack)
        choices = f"one of: {', '.join(known)}" if known else "a cloud of a clouds.yaml"
        report.gap(
            "openstack.cloud",
            f"no cloud {cloud!r} in clouds.yaml ({CLOUDS_YAML_PLACES})",
            f"set it to {choices}, or download clouds.yaml from your dashboard",
        )
        return None
    except ksa.Unauthorized:
        report.gaps.append(f"openstack.cloud: {login_refused(cloud, auth_type)}")
        return None
    except ksa.MissingRequiredOptions as exc:
        names = ", ".join(option.dest for option in exc.options)
        report.gap(
            "openstack.cloud", f"cloud {cloud!r} lacks {names} in clouds.yaml", f"add it under clouds.{cloud}.auth"
        )
        return None
    except (ksa.ConnectFailure, ksa.ConnectTimeout, ksa.DiscoveryFailure, ksa.SSLError) as exc:
        report.gap(
            "openstack.cloud",
            f"cannot reach the identity service of cloud {cloud!r} ({type(exc).__name__})",
            "check auth_url in clouds.yaml and your network",
        )
        return None
    except ksa.ClientException as exc:
        report.gap("openstack.cloud", f"cloud {cloud!r} refused the login ({_first_line(exc)})", "check clouds.yaml")
        return None
    report.facts.update(
        cloud=cloud,
        auth_type=auth_type,
        auth_url=connection.config.auth.get("auth_url"),
        project_id=project_id,
        region=connection.config.region_name,
        token=token,
    )
    return connection


def _cloud_names(openstack: Any) -> list[str]:
    try:
        return sorted(openstack.config.OpenStackConfig().get_cloud_names())
    except openstack.exceptions.ConfigException:
        return []


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _check_flavors(
    openstack: Any, connection: Any, settings: OpenStackSpec, needs: OpenStackNeeds, report: PreflightReport
) -> dict[str, Any]:
    """The flavor of each role the nodes use, by name; missing ones become gaps."""
    wanted = {
        "server": ("openstack.server_flavor", settings.server_flavor),
        "agent": ("openstack.worker_flavor", settings.worker_flavor),
    }
    roles = [role for role in ("server", "agent") if any(node.role == role for node in needs.nodes)]
    found: dict[str, Any] = {}
    for role in roles:
        key, name = wanted[role]
        try:
            flavor = connection.compute.find_flavor(name, ignore_missing=True)
        except openstack.exceptions.DuplicateResource:
            report.gap(key, f"several flavors are named {name!r}", "use the flavor's id instead of its name")
            continue
        if flavor is None:
            report.gap(key, f"no flavor {name!r} in cloud {settings.cloud!r}", "pick one from `openstack flavor list`")
            continue
        found[role] = flavor
        if role == "server" and (flavor.ram or 0) < SERVER_MIN_RAM_MIB:
            report.gap(
                key,
                f"flavor {name!r} has {flavor.ram} MiB RAM, k3s servers with the platform need {SERVER_MIN_RAM_MIB}",
                "pick a larger flavor",
            )
    return found


def _check_image(
    openstack: Any,
    connection: Any,
    settings: OpenStackSpec,
    needs: OpenStackNeeds,
    flavors: dict[str, Any],
    report: PreflightReport,
) -> None:
    key, name = "openstack.image", settings.image
    try:
        image = connection.image.find_image(name, ignore_missing=True)
    except openstack.exceptions.DuplicateResource:
        report.gap(key, f"several images are named {name!r}", "use the image's id instead of its name")
        return
    if image is None:
        report.gap(key, f"no image {name!r} in cloud {settings.cloud!r}", "pick one from `openstack image list`")
        return
    report.facts["image_id"] = image.id
    if image.status != "active":
        report.gap(key, f"image {name!r} is {image.status}, not active", "pick an active image")
    image_arch = IMAGE_ARCH.get(str(image.architecture or "").lower())
    node_arches = sorted({node.arch for node in needs.nodes})
    if image_arch is not None and node_arches and image_arch not in node_arches:
        report.gap(
            key,
            f"image {name!r} is {image.architecture} but the nodes are {', '.join(node_arches)}",
            f"pick an image for {node_arches[0]} or set openstack.arch: {image_arch}",
        )
    for role, flavor in sorted(flavors.items()):
        flavor_key = "openstack.server_flavor" if role == "server" else "openstack.worker_flavor"
        if flavor.disk and image.min_disk and flavor.disk < image.min_disk:
            report.gap(
                flavor_key,
                f"flavor {flavor.name!r} has a {flavor.disk} GiB disk, image {name!r} needs {image.min_disk}",
                "pick a flavor with a larger disk",
            )
        if image.min_ram and (flavor.ram or 0) < image.min_ram:
            report.gap(
                flavor_key,
                f"flavor {flavor.name!r} has {flavor.ram} MiB RAM, image {name!r} needs {image.min_ram}",
                "pick a larger flavor",
            )


def _check_networks(openstack: Any, connection: Any, settings: OpenStackSpec, report: PreflightReport) -> None:
    external = _find_network(openstack, connection, settings.external_network, "openstack.external_network", report)
    if external is not None and not external.is_router_external:
        report.gap(
            "openstack.external_network",
            f"network {settings.external_network!r} is not external, so it gives no floating IPs",
            "pick one from `openstack network list --external`",
        )
    if settings.network:
        _find_network(openstack, connection, settings.network, "openstack.network", report)


def _find_network(openstack: Any, connection: Any, name: str, key: str, report: PreflightReport) -> Any:
    try:
        network = connection.network.find_network(name, ignore_missing=True)
    except openstack.exceptions.DuplicateResource:
        report.gap(key, f"several networks are named {name!r}", "use the network's id instead of its name")
        return None
    if network is None:
        report.gap(key, f"no network {name!r} in this project", "pick one from `openstack network list`")
    return network


def _check_quota(connection: Any, needs: OpenStackNeeds, flavors: dict[str, Any], report: PreflightReport) -> None:
    limits = connection.compute.get_limits().absolute
    counts = {role: sum(1 for node in needs.nodes if node.role == role) for role in ("server", "agent")}
    key = "workers.initial" if counts["agent"] else "servers.count"
    cores = sum(counts[role] * (flavor.vcpus or 0) for role, flavor in flavors.items())
    ram = sum(counts[role] * (flavor.ram or 0) for role, flavor in flavors.items())
    for what, needed, limit, used in (
        ("instances", len(needs.nodes), limits.instances, limits.instances_used),
        ("cores", cores, limits.total_cores, limits.total_cores_used),
        ("MiB of RAM", ram, limits.total_ram, limits.total_ram_used),
    ):
        quota_gap(report, key=key, what=what, needed=needed, limit=limit, left=free(limit, used), fix=QUOTA_FIX)
    project_id = report.facts["project_id"]
    quota = connection.network.get_quota(project_id, details=True)
    for what, needed, detail, fix_key in (
        ("floating IPs", needs.floating_ips, quota.floating_ips, "openstack.floating_ips"),
        ("security groups", needs.security_groups, quota.security_groups, None),
    ):
        detail = detail or {}
        limit = detail.get("limit")
        fix = (
            f"set {fix_key}: first-server, release unused floating IPs, or ask for more"
            if fix_key and needs.floating_ips > 1
            else "delete unused ones or ask the cloud's support to raise the quota"
        )
        quota_gap(
            report,
            key=fix_key or "openstack.cloud",
            what=what,
            needed=needed,
            limit=limit,
            left=free(limit, detail.get("used"), detail.get("reserved")),
            fix=fix,
        )
