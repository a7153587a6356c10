"""The cluster spec: one YAML file describing one cluster, validated by these pydantic models.

Every field carries a description; `oscar-deploy init` writes them as comments and `oscar-deploy spec schema`
prints them as JSON Schema, so the documentation of a key lives in exactly one place: here.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from oscar_deploy.spec.yamlcheck import KEY_MARK, PARENT, Location, YamlDocument, problems_from
from oscar_deploy.support.errors import SpecError, UserInputError, shown
from oscar_deploy.support.files import read_user_text, shown_path
from oscar_deploy.support.urls import mask_url, url_problem

DEFAULT_SPEC_FILE = "cluster.yaml"
SCHEMA_FILE_NAME = "cluster.schema.json"
Target = Literal["local", "openstack", "aws", "static"]
Arch = Literal["amd64", "arm64"]
NAME_PATTERN = re.compile(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?")
NAME_RULE = "use 1-32 lowercase letters, digits and '-', starting with a letter and not ending with '-'"
# A Kubernetes object name such as a StorageClass's (RFC 1123 subdomain); matched in full.
OBJECT_NAME_PATTERN = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")
# A DNS name: labels of letters, digits and '-', at least two of them; matched in full.
DOMAIN_PATTERN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]")
PublicAddresses = Literal["first-server", "all"]
QUANTITY_PATTERN = re.compile(r"^[1-9][0-9]*(Mi|Gi|Ti)$")


def is_cluster_name(name: str) -> bool:
    """Whether `name` may name a cluster (and so a state folder): the whole string must match."""
    return NAME_PATTERN.fullmatch(name) is not None


def shown_name(name: str, limit: int = 40) -> str:
    """A name as an error message shows it: quoted, control characters escaped, long ones cut."""
    return shown(name, limit)


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


def _cidr_list(values: list[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a CIDR such as 203.0.113.0/24") from exc
    return values


def _quantity(value: str) -> str:
    if not QUANTITY_PATTERN.fullmatch(value):
        raise ValueError(f"{value!r} is not a size such as 512Mi, 20Gi or 1Ti")
    return value


class ServersSpec(StrictModel):
    count: int = Field(
        1,
        strict=True,
        ge=1,
        le=7,
        description="Number of k3s servers: 1, or 3/5/7 for a highly available control plane (embedded etcd).",
    )

    @field_validator("count")
    @classmethod
    def _odd_for_quorum(cls, count: int) -> int:
        if count % 2 == 0:
            raise ValueError(f"must be odd so etcd keeps a quorum ({count} servers); use {count - 1} or {count + 1}")
        return count


class WorkersSpec(StrictModel):
    initial: int = Field(1, strict=True, ge=0, description="Workers created by `up`.")
    min: int = Field(0, strict=True, ge=0, description="Fewest workers `scale` and the autoscaler may leave running.")
    max: int = Field(
        3,
        strict=True,
        ge=0,
        le=200,
        description="Most workers `scale` may create and the autoscaler may keep powered on.",
    )

    @field_validator("max")
    @classmethod
    def _max_not_below_min(cls, maximum: int, info: Any) -> int:
        minimum = info.data.get("min")
        if minimum is not None and maximum < minimum:
            raise ValueError(f"must be >= {PARENT}.min ({maximum} < {minimum})")
        return maximum

    @model_validator(mode="after")
    def _initial_in_range(self) -> WorkersSpec:
        if not self.min <= self.initial <= self.max:
            raise ValueError(
                f"{KEY_MARK}initial: must be between {PARENT}.min and {PARENT}.max "
                f"({self.initial} not in {self.min}..{self.max})"
            )
        return self


class TargetSettings(StrictModel):
    """The section of one target; providers ask it which arch each role's nodes have."""

    def node_arch(self, role: str) -> str:
        """CPU architecture of the nodes of `role` (`server` or `agent`) this target makes."""
        return "amd64"


class LocalSpec(TargetSettings):
    engine: Literal["auto", "podman"] = Field(
        "auto", description="Container engine for the nodes; only podman runs them so far (auto picks it)."
    )
    server_arch: Arch = Field("amd64", description="CPU architecture of the server nodes.")
    worker_arch: Arch = Field(
        "amd64", description="CPU architecture of the worker nodes; arm64 runs under qemu-user emulation."
    )

    def node_arch(self, role: str) -> str:
        return self.server_arch if role == "server" else self.worker_arch


class OpenStackSpec(TargetSettings):
    cloud: str = Field("openstack", description="Entry in clouds.yaml holding the credentials (or OS_* variables).")
    image: str = Field("Ubuntu 24.04", description="Image name for every node.")
    server_flavor: str = Field("m1.large", description="Flavor of the server nodes (4 GiB RAM at least).")
    worker_flavor: str = Field("m1.medium", description="Flavor of the worker nodes.")
    network: str | None = Field(
        None, description="Existing private network to attach to; empty creates a network, subnet and router."
    )
    external_network: str = Field("public", description="External network for the router and the floating IP.")
    ssh_user: str = Field("ubuntu", description="Login user of the image.")
    arch: Arch = Field("amd64", description="CPU architecture of the image and the flavors' hosts.")
    floating_ips: PublicAddresses = Field(
        "first-server",
        description="Nodes with a floating IP: the first server only (the others are reached through it), or all.",
    )
    allowed_cidrs: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="Addresses allowed to reach SSH and the Kubernetes API (HTTP and HTTPS stay open to all); "
        "narrow this to your own.",
    )

    worker_power_off: Literal["stop", "shelve"] = Field(
        "stop",
        description="How the autoscaler powers a worker off: stop (fast to start again; most clouds still count "
        "its cores against the quota) or shelve (frees the hypervisor; slower to start).",
    )

    _check_cidrs = field_validator("allowed_cidrs")(_cidr_list)

    def node_arch(self, role: str) -> str:
        return self.arch


class AwsSpec(TargetSettings):
    region: str = Field("eu-west-1", description="AWS region.")
    profile: str | None = Field(None, description="Named profile from ~/.aws/config; empty uses the environment.")
    arch: Arch = Field("amd64", description="CPU architecture of every node (arm64 selects Graviton types).")
    server_instance_type: str = Field("t3.large", description="Instance type of the server nodes.")
    worker_instance_type: str = Field("t3.medium", description="Instance type of the worker nodes.")
    ami: str | None = Field(None, description="AMI id; empty looks up the newest by ami_owner, ami_name and arch.")
    ami_owner: str = Field(
        "099720109477", description="Owner account of the AMI looked up when ami is empty (Canonical's by default)."
    )
    ami_name: str = Field(
        "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-*-server-*",
        description="Name pattern (* matches anything) of the AMI looked up when ami is empty; the newest wins.",
    )
    disk_gb: int = Field(40, ge=20, le=16384, description="Size of each node's root disk in GiB.")
    elastic_ips: PublicAddresses = Field(
        "first-server",
        description="Nodes with an Elastic IP: the first server only (the others are reached through it), or all.",
    )
    ssh_user: str = Field("ubuntu", description="Login user of the AMI.")
    allowed_cidrs: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="Addresses allowed to reach SSH and the Kubernetes API (HTTP and HTTPS stay open to all); "
        "narrow this to your own.",
    )

    _check_cidrs = field_validator("allowed_cidrs")(_cidr_list)

    def node_arch(self, role: str) -> str:
        return self.arch

    @model_validator(mode="after")
    def _arm_needs_graviton(self) -> AwsSpec:
        if self.arch == "arm64":
            for key in ("server_instance_type", "worker_instance_type"):
                family = getattr(self, key).split(".")[0]  # Graviton: a 'g' after the first letter, or a1
                if family != "a1" and "g" not in family[1:]:
                    raise ValueError(
                        f"{KEY_MARK}{key}: {getattr(self, key)} is not an arm64 (Graviton) type; "
                        "use e.g. t4g.large or set arch: amd64"
                    )
        return self


# A placeholder of a power command: `{name}`, filled per host (see oscar_deploy/providers/static/power.py).
COMMAND_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
# Host variables that hold secrets (ansible_become_password, ansible_ssh_pass, a k3s-ansible `token`): never put on
# a command line, which every user of the machine can read (`ps`).
SECRET_VARIABLE = re.compile(r"pass|secret|token|credential", re.IGNORECASE)


def _power_command(command: list[str] | None) -> list[str] | None:
    if command is None:
        return None
    if not command:
        raise ValueError("give the program and its arguments, or leave the key out")
    if not command[0] or "{" in command[0] or "}" in command[0]:
        raise ValueError("the first item is the program to run: a plain name or path, without {placeholders}")
    for index, item in enumerate(command):
        if "\x00" in item or "\n" in item:
            raise ValueError(f"item {index}: control characters are not allowed")
        bare = COMMAND_PLACEHOLDER.sub("", item)
        if "{" in bare or "}" in bare:
            raise ValueError(f"item {index} ({shown_name(item)}): braces only as {{name}} placeholders")
        secret = next((name for name in COMMAND_PLACEHOLDER.findall(item) if SECRET_VARIABLE.search(name)), None)
        if secret is not None:
            raise ValueError(
                f"item {index}: {{{secret}}} names a secret, which a command line shows to every user of this "
                "machine; let the command read it from a file of its own"
            )
    return command


class StaticSpec(TargetSettings):
    inventory: str = Field(
        "inventory.yml",
        description="Ansible inventory (groups `server` and `agent`) of the hosts or boards you already own; "
        "relative to this file.",
    )
    power_on_command: list[str] | None = Field(
        None,
        max_length=64,
        description="For the autoscaler: the command that switches a worker on, as a list of arguments run "
        "without a shell, e.g. [wakeonlan, '{mac_address}']. {node} is the host's inventory name; "
        "{ansible_host}, {ansible_user}, {ansible_port}, {node_address} and any other host variable of the "
        "inventory can be named the same way.",
    )
    power_off_command: list[str] | None = Field(
        None,
        max_length=64,
        description="For the autoscaler: the command that switches a worker off (it is drained first), e.g. "
        "[ssh, -o, BatchMode=yes, '{ansible_user}@{ansible_host}', sudo, systemctl, poweroff].",
    )

    _check_commands = field_validator("power_on_command", "power_off_command")(_power_command)


class MinioSpec(StrictModel):
    storage_size: str = Field("20Gi", description="Size of MinIO's volume, on a server's disk.")

    _check_size = field_validator("storage_size")(_quantity)


# HTTP basic auth splits user and password at the first ':'.
USERNAME_PATTERN = re.compile(r"[^\s:]{1,64}")
# An address Let's Encrypt would take: one '@', a dot in the domain, no spaces.
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


def _image_repository(entry: str) -> str:
    """An entry of OSCAR's image allow-list as OSCAR reads it (config.go parseAllowedRepository and
    IsImageRepositoryAllowed): REGISTRY[/PATH]; an image is allowed when its registry is REGISTRY and its
    repository is PATH or lies under it, path segment by segment. Entries OSCAR refuses, or that could allow no
    image, are refused here."""
    shown_entry = shown_name(entry)
    cleaned = entry.strip().lower().removesuffix("/")
    if not cleaned:
        raise ValueError("an empty entry allows no image; remove it")
    if "://" in cleaned:
        raise ValueError(f"{shown_entry} holds a URL scheme, which OSCAR refuses; write REGISTRY[/PATH] alone")
    if cleaned.startswith("/") or any(character.isspace() or character in "@" for character in cleaned):
        raise ValueError(f"{shown_entry} is not REGISTRY[/PATH], such as ghcr.io/grycap or docker.io/grycap/cowsay")
    registry, _, path = cleaned.partition("/")
    if ":" in path:
        raise ValueError(
            f"{shown_entry} names a tag; an entry is a registry or a repository, which allows every tag of it"
        )
    if not path and "." not in registry and ":" not in registry and registry != "localhost":
        # A lone name is taken for a registry, and parseImageReference gives every image one with a '.' or ':'
        # (docker.io by default); with a path, such a first name is a Docker Hub account instead.
        raise ValueError(
            f"{shown_entry} is taken for a registry, and so allows no image; for Docker Hub write docker.io/{registry}"
        )
    return entry


class OscarSpec(StrictModel):
    username: str = Field("oscar", description="OSCAR admin user; its password is generated.")
    allowed_image_prefixes: list[str] = Field(
        default_factory=list,
        description="The only images services may run, as REGISTRY[/PATH] entries (ghcr.io/grycap, "
        "docker.io/grycap/cowsay): an image is allowed when its registry matches and its repository is PATH or "
        "lies under it, segment by segment (ghcr.io/gry allows nothing of ghcr.io/grycap); empty allows all.",
    )
    oidc_issuers: list[str] = Field(
        default_factory=list, description="OIDC issuers whose tokens OSCAR accepts (e.g. EGI Check-in)."
    )
    oidc_groups: list[str] = Field(default_factory=list, description="OIDC groups (entitlements) allowed in.")

    @field_validator("allowed_image_prefixes")
    @classmethod
    def _image_repositories(cls, entries: list[str]) -> list[str]:
        return [_image_repository(entry) for entry in entries]

    @field_validator("username")
    @classmethod
    def _basic_auth_user(cls, name: str) -> str:
        if not USERNAME_PATTERN.fullmatch(name):
            raise ValueError(f"{shown_name(name)} is not a user name: 1 to 64 characters, no spaces and no ':'")
        return name


class AutoscalerSpec(StrictModel):
    enabled: bool = Field(
        False,
        description="Power workers on and off with the load, between workers.min and workers.max; it powers only "
        "workers that exist (`scale --workers N` creates them).",
    )
    idle_time: int = Field(
        300,
        strict=True,
        ge=30,
        description=(
            "Seconds a worker stays empty before it is powered off (longer while the demand of the last "
            "2 x idle_time needed it, or while demand for it keeps coming back within a boot and a shutdown)."
        ),
    )
    reconsider_job_time: int = Field(
        60, strict=True, ge=5, description="Seconds before a still-pending job asks again."
    )
    max_wait_poweron: int = Field(
        3000,
        strict=True,
        ge=60,
        description=(
            "Seconds a new worker may take to become Ready (less once 3 boots were measured: 4x their median), "
            "and a worker that was Ready may stay not Ready, before it is powered off; never while a job runs on it."
        ),
    )
    period: int = Field(20, strict=True, ge=5, description="Seconds between two looks at nodes and pending pods.")
    extra_nodes_free: int = Field(0, strict=True, ge=0, description="Idle workers to keep ready for the next burst.")


REGISTRY_HOST_PATTERN = re.compile(r"(\*|[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?)")


class RegistryMirrorSpec(StrictModel):
    url: str | None = Field(
        None,
        description="Registry mirror every node pulls through (k3s registries.yaml), e.g. "
        "https://registry.example.org:5000; empty for none. OSCAR service pods always pull their image, so an "
        "offline cluster needs one for the services' images.",
    )
    registries: list[str] = Field(
        default_factory=lambda: ["docker.io", "ghcr.io", "quay.io"],
        description="Registries the mirror stands in for ('*' for every registry); with an air-gap bundle Knative "
        "also skips resolving tags against them (it would ask the real registry).",
    )
    insecure_skip_verify: bool = Field(
        False, description="Accept the mirror's certificate without checking it (a mirror with a self-made CA)."
    )

    @field_validator("url")
    @classmethod
    def _mirror_url(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        problem = url_problem(url, example="https://registry.example.org:5000")
        if problem is not None:
            raise ValueError(f"{shown(mask_url(url), 80)} {problem}")
        return url.rstrip("/")

    @field_validator("registries")
    @classmethod
    def _registry_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not REGISTRY_HOST_PATTERN.fullmatch(name):
                raise ValueError(f"{name!r} is not a registry host such as docker.io or registry.example.org:5000")
        return names

    @property
    def host(self) -> str | None:
        """The mirror's host[:port], as registries.yaml `configs` and Knative name it."""
        return urlsplit(self.url).netloc if self.url else None


class PlatformSpec(StrictModel):
    domain: str | None = Field(
        None,
        description="DNS name of the cluster (OSCAR at https://<domain>, MinIO at https://minio.<domain>); "
        "empty uses <first server's public address>.sslip.io.",
    )
    tls: Literal["auto", "selfsigned", "letsencrypt", "letsencrypt-staging"] = Field(
        "auto",
        description="Certificates: a cluster CA (selfsigned), or Let's Encrypt (needs domain and acme_email); "
        "auto picks Let's Encrypt when both are set, else the cluster CA.",
    )
    acme_email: str | None = Field(None, description="Contact address for Let's Encrypt.")
    storage_class: str | None = Field(
        None,
        description="Existing ReadWriteMany StorageClass for OSCAR's volumes; empty deploys an in-cluster NFS "
        "server (every node then needs an NFS client).",
    )
    storage_size: str = Field(
        "50Gi",
        description="Size of the in-cluster NFS server's volume (unused with storage_class), on a server's disk.",
    )
    minio: MinioSpec = Field(default_factory=MinioSpec)
    oscar: OscarSpec = Field(default_factory=OscarSpec)
    autoscaler: AutoscalerSpec = Field(default_factory=AutoscalerSpec)
    registry_mirror: RegistryMirrorSpec = Field(default_factory=RegistryMirrorSpec)

    _check_size = field_validator("storage_size")(_quantity)

    @field_validator("domain")
    @classmethod
    def _dns_name(cls, domain: str | None) -> str | None:
        if domain is not None and not DOMAIN_PATTERN.fullmatch(domain):
            raise ValueError(f"{domain!r} is not a DNS name such as oscar.example.org (lowercase, no scheme)")
        return domain

    @field_validator("acme_email")
    @classmethod
    def _email(cls, email: str | None) -> str | None:
        if email is not None and not EMAIL_PATTERN.fullmatch(email):
            raise ValueError(f"{shown_name(email)} is not an email address such as admin@example.org")
        return email

    @field_validator("storage_class")
    @classmethod
    def _object_name(cls, name: str | None) -> str | None:
        if name is not None and not OBJECT_NAME_PATTERN.fullmatch(name):
            raise ValueError(f"{name!r} is not a StorageClass name (lowercase letters, digits, '-' and '.')")
        return name

    @property
    def tls_mode(self) -> Literal["selfsigned", "letsencrypt", "letsencrypt-staging"]:
        """The certificates the gateway gets: `auto` resolved (Let's Encrypt needs a domain and an email)."""
        if self.tls == "auto":
            return "letsencrypt" if self.domain and self.acme_email else "selfsigned"
        return self.tls

    @model_validator(mode="after")
    def _letsencrypt_needs_domain_and_email(self) -> PlatformSpec:
        if self.tls.startswith("letsencrypt"):
            if not self.domain:
                raise ValueError(f"{KEY_MARK}domain: required with tls: {self.tls}; set a public DNS name")
            if not self.acme_email:
                raise ValueError(f"{KEY_MARK}acme_email: required with tls: {self.tls}; set your address")
        return self


# Query parameters of an s3:// backend URL that would carry credentials (Pulumi's S3 backend takes them from the
# AWS environment variables or profile; a URL ends up in logs, shell history and the spec, so none is accepted).
CREDENTIAL_WORDS = ("secret", "password", "token", "credential", "accesskey", "access_key", "session")


def _backend_url(url: str | None) -> str | None:
    if url is None or not url.strip():
        return None
    if any(char.isspace() for char in url):
        raise ValueError("must be one URL without spaces, e.g. s3://bucket?endpoint=https://s3.example.org")
    parts = urlsplit(url)
    if parts.scheme != "s3":
        given = f"{parts.scheme}:// is not supported" if parts.scheme else "is not a URL"
        raise ValueError(
            f"{given}; leave it empty to keep the state in the cluster's state folder, or use an s3:// URL"
        )
    endpoint = dict(parse_qsl(parts.query)).get("endpoint", "")
    carries_credentials = (
        "@" in parts.netloc
        or "@" in urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").netloc
        or any(word in key.lower() for key, _ in parse_qsl(parts.query) for word in CREDENTIAL_WORDS)
    )
    if carries_credentials:
        raise ValueError(
            "the URL carries credentials; remove them and export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE) instead"
        )
    if not parts.hostname:
        raise ValueError("names no bucket; use s3://BUCKET?endpoint=https://s3.example.org")
    if ":" in parts.netloc:
        raise ValueError("a bucket name holds no port; give the store's address as ?endpoint=HOST:PORT")
    return url


class IacSpec(StrictModel):
    backend: str | None = Field(
        None,
        description="Where Pulumi keeps the infrastructure state: empty keeps it in the cluster's state folder (no "
        "account needed); an s3:// URL such as s3://bucket?endpoint=https://s3.example.org&s3ForcePathStyle=true "
        "shares it with a team through an S3-compatible store, credentials from AWS_ACCESS_KEY_ID/"
        "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, never from this file.",
    )

    _check_backend = field_validator("backend")(_backend_url)


# The targets, each with its spec section; `Target` spells the same names for the model (tests keep them equal).
TARGET_SECTIONS: dict[str, type[TargetSettings]] = {
    "local": LocalSpec,
    "openstack": OpenStackSpec,
    "aws": AwsSpec,
    "static": StaticSpec,
}
TARGETS = tuple(TARGET_SECTIONS)


class ClusterSpec(StrictModel):
    name: str = Field(
        "oscar",
        description="Cluster name: lowercase letters, digits and '-'; names the state folder and resources.",
    )
    target: Target = Field("local", description="Where the nodes come from: local, openstack, aws or static.")
    servers: ServersSpec = Field(default_factory=ServersSpec)
    workers: WorkersSpec = Field(default_factory=WorkersSpec)
    local: LocalSpec | None = Field(None, description="Settings of target local (containers on this machine).")
    openstack: OpenStackSpec | None = Field(None, description="Settings of target openstack.")
    aws: AwsSpec | None = Field(None, description="Settings of target aws.")
    static: StaticSpec | None = Field(None, description="Settings of target static (boards and hosts you own).")
    platform: PlatformSpec = Field(default_factory=PlatformSpec)
    iac: IacSpec = Field(default_factory=IacSpec, description="Infrastructure state kept by Pulumi.")
    versions: dict[str, str] = Field(
        default_factory=dict,
        description="Overrides of pinned versions, by catalogue key (see `oscar-deploy versions`).",
    )

    @field_validator("name")
    @classmethod
    def _dns_label(cls, name: str) -> str:
        if not is_cluster_name(name):
            raise ValueError(f"{shown_name(name)} is not a valid name; {NAME_RULE}")
        return name

    @model_validator(mode="after")
    def _one_target_section(self) -> ClusterSpec:
        for section in TARGET_SECTIONS:
            if section != self.target and getattr(self, section) is not None:
                raise ValueError(
                    f"{KEY_MARK}{section}: only used with target {section} (target is {self.target}); "
                    "remove the section"
                )
        if getattr(self, self.target) is None:
            setattr(self, self.target, TARGET_SECTIONS[self.target]())
        return self

    @model_validator(mode="after")
    def _static_autoscaler_needs_commands(self) -> ClusterSpec:
        if self.target == "static" and self.platform.autoscaler.enabled and self.static is not None:
            for key in ("power_on_command", "power_off_command"):
                if not getattr(self.static, key):
                    raise ValueError(
                        f"{KEY_MARK}static.{key}: platform.autoscaler needs it on target static; give the "
                        "command (e.g. wake-on-LAN to switch on, SSH poweroff to switch off) or disable the "
                        "autoscaler"
                    )
        return self

    def target_settings(self) -> TargetSettings:
        settings: TargetSettings = getattr(self, self.target)
        return settings


# --- loading ----------------------------------------------------------------------------------------------


def parse_spec(text: str, source: str = DEFAULT_SPEC_FILE) -> ClusterSpec:
    """Parse and validate spec text, version overrides included against the catalogue's preflight.

    Every problem becomes one line `source:line: key.path: message`; all are reported in one go.
    """
    from oscar_deploy.spec.catalogue import load_catalogue

    document = YamlDocument(text, source, SpecError)
    data = {} if document.data is None else document.data
    if not isinstance(data, dict):
        raise SpecError([f"{source}: the spec must be a YAML mapping; run `oscar-deploy init` for an example"])
    problems: list[tuple[Location, str]] = []
    spec: ClusterSpec | None = None
    try:
        spec = ClusterSpec.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from(exc, ClusterSpec))
    overrides = data.get("versions")
    if isinstance(overrides, dict) and all(isinstance(value, str) for value in overrides.values()):
        # Checked even when other keys fail, so one run of `validate` shows every problem it can.
        problems.extend(
            (("versions", *loc), message)
            for loc, message in load_catalogue().override_problems({str(k): v for k, v in overrides.items()})
        )
    if problems or spec is None:
        raise document.fail(problems)
    return spec


def read_spec_text(path: Path) -> str:
    """The text of a spec file, read with the guards every user file gets (regular file, size, UTF-8)."""
    try:
        return read_user_text(path, "spec file", missing="create one with `oscar-deploy init` or pass -f FILE")
    except UserInputError as exc:
        raise SpecError([str(exc)]) from None


def load_spec(path: Path) -> ClusterSpec:
    """Read and validate a spec file, including the version overrides against the catalogue."""
    spec = parse_spec(read_spec_text(path), shown_path(path))
    if spec.static is not None:
        # Relative to the spec file, so commands run from any folder find the same inventory.
        inventory = (path.parent / spec.static.inventory).resolve()
        spec = spec.model_copy(update={"static": spec.static.model_copy(update={"inventory": str(inventory)})})
    return spec
