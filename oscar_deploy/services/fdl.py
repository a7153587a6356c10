"""The Functions Definition Language (FDL): typed models of an OSCAR v4.1.2 service and of an FDL file.

The specification is upstream's Go code at the pinned tag (grycap/oscar v4.1.2): the `Service` type and its parts
(`pkg/types/service.go`, `storage.go`, `federation.go`, `replica.go`), what the create handler does to a service
before it stores it (`pkg/handlers/create.go`: `checkValues`, `normalizeStoragePaths`, the input-provider and
federation checks) and the volume checks (`pkg/utils/volume.go`). The server decodes JSON into that type and drops
every key it does not know without a word, so here every key is known: an unknown or misplaced key is an error
with a did-you-mean (`expose.port` points at `expose.api_port`, a service-level `replicas` at
`federation.members`). A value the server would fail on at apply time is refused here with the server's reason.

An FDL file:

    functions:
      oscar:
      - <cluster id>:            # one entry per service; the key names the cluster it is meant for
          name: cowsay
          image: ghcr.io/grycap/cowsay
          script: cowsay.sh      # relative to the FDL file; inlined into the request
    storage_providers:           # minio, s3, onedata, webdav, rucio: {<id>: credentials}
      s3: {results: {access_key: ..., secret_key: ..., region: eu-west-1}}
    clusters:                    # other OSCAR clusters, for federation members
      other: {endpoint: https://..., auth_user: ..., auth_password: ..., ssl_verify: true}

`minio.default` (or just `minio`) is the cluster's own MinIO; OSCAR fills in its credentials itself. A MinIO or S3
`path` without `/` is a folder in the bucket named after the service (`in` means `<service>/in`), as upstream's
create handler reads it. Certificate checks (`ssl_verify`, `verify`) are plain Go booleans upstream: leaving them
out means **no** certificate check.

The request body carries the defaults the create handler would fill in (memory, cpu, visibility, log level,
normalised paths, volume name and lifecycle, KServe resources, federation topology), so what is sent is what the
server stores and a later `service apply` can tell whether anything changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from oscar_deploy.services.stored import BUCKET_NAME, BUCKET_PROVIDER_TYPES, apply_create_defaults, stored_path
from oscar_deploy.spec.yamlcheck import (
    KEY_MARK,
    Location,
    YamlDocument,
    dotted,
    field_keys,
    keep_scalar_text,
    line_of,
    model_at,
    problems_from,
)
from oscar_deploy.support.errors import InvalidDocumentError, UserInputError, shown
from oscar_deploy.support.files import inside_folder, read_user_text, shown_path
from oscar_deploy.support.urls import mask_url, url_problem

MAX_SERVICE_NAME_LENGTH = 39  # `binding:"required,max=39,min=1"` on Service.Name (pkg/types/service.go)
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
QUANTITY = re.compile(r"([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")
PROVIDER_TYPES = ("minio", "s3", "onedata", "webdav", "rucio")
DEFAULT_PROVIDER_ID = "default"
# create.go, createBuckets: any other input provider is errInput ("valid inputs are MinIO and dCache", 400).
INPUT_PROVIDER_TYPES = ("minio", "webdav", "rucio")
# pkg/backends/resources/mount.go, sidecarPodSpec: the rclone sidecar is configured for these providers only.
MOUNT_PROVIDER_TYPES = ("minio", "s3", "webdav")
# pkg/types/service.go: ConfigPath and VolumePath, refused as volume mount paths by pkg/utils/volume.go.
RESERVED_MOUNT_PATHS = ("/oscar/config", "/oscar/bin")
REFRESH_TOKEN_SECRET = "refresh_token"  # noqa: S105 - types.RefreshTokenSecretKey, a name, not a value
# Keys the server fills in; a definition that sets them would have them overwritten or refused.
SERVER_POPULATED_KEYS = ("token", "owner", "bucket_list", "deployment", "volume_status", "namespace")
# Service-level keys OSCAR v4 no longer has: the server drops them, so what they ask for silently never happens.
REMOVED_SERVICE_KEYS = {
    "replicas": "OSCAR v4 reads replicas only as federation members (the server drops this key); "
    "did you mean 'federation.members'?",
    "delegation": "OSCAR v4 reads the delegation policy only under federation (the server drops this key); "
    "did you mean 'federation.delegation'?",
    "rescheduler_threshold": "OSCAR v4 has no per-service rescheduler threshold (the server drops this key; the "
    "manager's RESCHEDULER_* settings apply to every service); remove it",
}
# Keys whose values are credentials: masked when a definition is printed.
SECRET_KEYS = frozenset({"secret_key", "password", "auth_password", "token", "refresh_token"})
MASK = "********"


class FdlError(InvalidDocumentError):
    """An FDL file (or its template) that does not validate: one line per problem, each naming file, line and key."""


# --- value helpers -------------------------------------------------------------------------------------------


def _scalar_to_str(value: Any) -> Any:
    """YAML turns `cpu: 1` or `VERBOSE: true` into numbers and booleans; the API wants strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _string_map(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _scalar_to_str(item) for key, item in value.items()}
    return value


def _quantity(value: str) -> str:
    if not QUANTITY.fullmatch(value):
        raise ValueError(f"{shown(value)} is not a Kubernetes quantity such as 0.5, 500m, 256Mi or 2Gi")
    return value


def _positive_quantity(value: str) -> str:
    _quantity(value)
    if float(re.sub(r"[a-zA-Z]+$", "", value)) <= 0:
        raise ValueError(f"{shown(value)} must be more than zero (volume.go: a valid positive quantity)")
    return value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _int_to_list(value: Any) -> Any:
    return [value] if isinstance(value, int | str) and not isinstance(value, bool) else value


def _node_port(value: int) -> int:
    if value != 0 and not 30000 <= value <= 32767:
        raise ValueError(f"{value} is not a NodePort: use 30000-32767, or 0 to let Kubernetes pick one")
    return value


def _string_to_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Quantity = Annotated[str, BeforeValidator(_scalar_to_str), AfterValidator(_quantity)]
PositiveQuantity = Annotated[str, BeforeValidator(_scalar_to_str), AfterValidator(_positive_quantity)]
StringMap = Annotated[dict[str, str], BeforeValidator(_string_map)]


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{'true' if value else 'false'} is not a number; give a whole number")
    return value


# A whole number; pydantic would take `true` for 1 (Go's JSON decoder refuses a boolean for an int).
Integer = Annotated[int, BeforeValidator(_not_bool)]
Port = Annotated[Integer, Field(ge=1, le=65535)]
NodePort = Annotated[Integer, AfterValidator(_node_port)]
LogLevel = Annotated[Literal["NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)]
# pkg/types/federation.go: "Delegation defines the delegation policy: static, random, load-based."
Delegation = Literal["static", "random", "load-based"]


def split_provider(reference: str) -> tuple[str, str]:
    """`minio.default` -> ("minio", "default"); a bare type means its default id, and `minio.` an empty id
    (create.go getProviderInfo: SplitN on the first '.', the type lower-cased)."""
    kind, separator, ident = reference.strip().partition(".")
    return kind.lower(), ident if separator else DEFAULT_PROVIDER_ID


class FdlModel(BaseModel):
    """Unknown keys are errors: upstream would drop them without a word.

    Upstream's KServe settings have keys `model_name` and `model_format`: pydantic before 2.10 would warn
    about them (its `model_` namespace) on every run, so that namespace is not protected here.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


# --- storage -------------------------------------------------------------------------------------------------


def _provider_reference(value: str) -> str:
    kind, ident = split_provider(value)
    if kind not in PROVIDER_TYPES:
        raise ValueError(
            f"{shown(value)}: provider type must be one of {', '.join(PROVIDER_TYPES)} (as in minio.default)"
        )
    if not ident:
        raise ValueError(f"{shown(value)}: write <type>.<id>, e.g. minio.default")
    return value


def _storage_path(value: str) -> str:
    if not value.strip(" /"):
        raise ValueError("must not be empty; write bucket/folder, or a folder of the service's own bucket")
    return value


ProviderReference = Annotated[str, AfterValidator(_provider_reference)]
StoragePath = Annotated[str, AfterValidator(_storage_path)]


class StorageIOConfig(FdlModel):
    storage_provider: ProviderReference = Field(description="`<type>.<id>` of a storage provider, e.g. minio.default.")
    path: StoragePath = Field(
        description="Path in the provider; for MinIO and S3 `bucket/folder`, or a folder of the bucket named after "
        "the service when it has no '/'."
    )
    suffix: list[str] | None = Field(None, description="Only files ending with one of these (output only).")
    prefix: list[str] | None = Field(None, description="Only files starting with one of these (output only).")


class MountSettings(FdlModel):
    storage_provider: ProviderReference = Field(description="`<type>.<id>` of the storage provider to mount.")
    path: StoragePath = Field(description="Folder mounted inside the container (bucket/path for MinIO and S3).")
    options: Annotated[list[str], BeforeValidator(_string_to_list)] | None = Field(
        None, description="Extra rclone mount flags."
    )

    @field_validator("storage_provider")
    @classmethod
    def _mountable(cls, value: str) -> str:
        kind, _ = split_provider(value)
        if kind not in MOUNT_PROVIDER_TYPES:
            raise ValueError(
                f"{shown(value)}: OSCAR's mount sidecar serves {', '.join(MOUNT_PROVIDER_TYPES)} only "
                f"(mount.go); {kind} cannot be mounted"
            )
        return value


def _trimmed_or_unset(value: Any) -> Any:
    """volume.go ValidateVolumeConfig trims each volume setting before it checks and stores it; "" is unset."""
    if isinstance(value, str):
        return value.strip() or None
    return value


class VolumeSettings(FdlModel):
    name: Annotated[str | None, BeforeValidator(_trimmed_or_unset)] = Field(
        None, description="Managed volume name (default: the service name); required to mount an existing volume."
    )
    size: Annotated[PositiveQuantity | None, BeforeValidator(_trimmed_or_unset)] = Field(
        None, description="Size of a new volume, e.g. 1Gi."
    )
    mount_path: str = Field(description="Absolute path inside the container (not under /oscar/config or /oscar/bin).")
    lifecycle_policy: Annotated[Literal["delete", "retain"] | None, BeforeValidator(_trimmed_or_unset)] = Field(
        None, description="Delete (default) or keep a service-created volume with its service; needs size."
    )

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str | None) -> str | None:
        if value is not None and not DNS_LABEL.fullmatch(value):
            raise ValueError(f"{shown(value)} must be a DNS label (lowercase letters, digits and '-')")
        return value

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, value: str) -> str:
        path = value.strip()
        if not path.startswith("/"):
            raise ValueError(f"{shown(value)} must be an absolute path such as /data")
        for reserved in RESERVED_MOUNT_PATHS:
            if path == reserved or path.startswith(reserved + "/"):
                raise ValueError(
                    f"{shown(value)} overlaps {reserved}, which OSCAR mounts itself (volume.go); pick another"
                )
        return path

    @model_validator(mode="after")
    def _size_or_name(self) -> VolumeSettings:
        if self.name is None and self.size is None:
            raise ValueError(f"{KEY_MARK}size: required for a new volume (or set name to mount an existing one)")
        if self.lifecycle_policy is not None and self.size is None:
            raise ValueError(
                f"{KEY_MARK}lifecycle_policy: only valid with size (a volume the service creates); "
                "add size or remove lifecycle_policy"
            )
        return self


class MinIOProvider(FdlModel):
    endpoint: str | None = Field(None, description="MinIO endpoint URL.")
    verify: bool | None = Field(
        None, description="Verify MinIO's TLS certificate (default false: left out, OSCAR does not check it)."
    )
    access_key: str | None = Field(None, description="Access key.")
    secret_key: str | None = Field(None, description="Secret key.")
    region: str | None = Field(None, description="Region.")


class S3Provider(FdlModel):
    access_key: str = Field(description="AWS access key id.")
    secret_key: str = Field(description="AWS secret access key.")
    region: str | None = Field(None, description="AWS region.")


class OnedataProvider(FdlModel):
    oneprovider_host: str = Field(description="Oneprovider endpoint.")
    token: str = Field(description="Onedata access token.")
    space: str = Field(description="Onedata space.")


class WebDavProvider(FdlModel):
    hostname: str = Field(description="Host name, without the protocol (https only).")
    login: str | None = Field(None, description="Account name.")
    password: str | None = Field(None, description="Account password.")

    @field_validator("hostname")
    @classmethod
    def _no_scheme(cls, value: str) -> str:
        if "://" in value:
            raise ValueError(
                f"{shown(mask_url(value))}: write the host name without the protocol (OSCAR always uses https)"
            )
        return value


class RucioProvider(FdlModel):
    host: str = Field(description="Rucio host (https only).")
    auth_host: str | None = Field(None, description="Rucio authentication host.")
    account: str | None = Field(None, description="Rucio account.")
    rse: str | None = Field(None, description="Rucio storage element.")
    refresh_token: str | None = Field(None, description="OIDC refresh token.")
    oidc_audience: str | None = Field(None, description="OIDC audience.")
    token_endpoint: str | None = Field(None, description="OIDC token endpoint.")


class StorageProviders(FdlModel):
    minio: dict[str, MinIOProvider] | None = None
    s3: dict[str, S3Provider] | None = None
    onedata: dict[str, OnedataProvider] | None = None
    webdav: dict[str, WebDavProvider] | None = None
    rucio: dict[str, RucioProvider] | None = None

    @model_validator(mode="after")
    def _default_minio_is_the_clusters(self) -> StorageProviders:
        if self.minio and DEFAULT_PROVIDER_ID in self.minio:
            raise ValueError(
                f"{KEY_MARK}minio.{DEFAULT_PROVIDER_ID}: is the cluster's own MinIO, which OSCAR fills in itself "
                "(it would overwrite these values); use another id"
            )
        return self

    def ids(self, kind: str) -> list[str]:
        providers: dict[str, Any] | None = getattr(self, kind)
        return sorted(providers or {})


# --- service parts -------------------------------------------------------------------------------------------


class SynchronousSettings(FdlModel):
    min_scale: Integer | None = Field(None, ge=0, description="Fewest replicas kept running (Knative).")
    max_scale: Integer | None = Field(None, ge=0, description="Most replicas (0: unlimited).")

    @model_validator(mode="after")
    def _ordered(self) -> SynchronousSettings:
        if self.min_scale is not None and self.max_scale and self.max_scale < self.min_scale:
            raise ValueError(f"{KEY_MARK}max_scale: must be >= min_scale or 0 for unlimited")
        return self


class ExposeSettings(FdlModel):
    min_scale: Integer | None = Field(None, ge=0, description="Fewest replicas (default 1).")
    max_scale: Integer | None = Field(None, ge=1, description="Most replicas (default 10).")
    api_port: Annotated[list[Port], BeforeValidator(_int_to_list)] = Field(
        description="Port(s) inside the container where the API listens; a single number is accepted."
    )
    cpu_threshold: Integer | None = Field(None, ge=1, le=100, description="CPU percent before another replica.")
    rewrite_target: bool | None = Field(None, description="Rewrite the exposed path prefix.")
    node_port: Annotated[list[NodePort], BeforeValidator(_int_to_list)] | None = Field(
        None,
        alias="nodePort",
        description="One NodePort per api_port (30000-32767, or 0 for one Kubernetes picks) instead of the ingress.",
    )
    default_command: bool | None = Field(None, description="Run the image's command instead of the script.")
    set_auth: bool | None = Field(None, description="Protect the exposed service with credentials.")
    auth_type: Literal["basic", "forward"] | None = Field(None, description="How set_auth checks requests.")
    health_path: str | None = Field(None, description="Readiness and liveness path (default /).")
    probe_mode: Literal["legacy", "direct"] | None = Field(None, description="How health_path is probed.")

    @field_validator("api_port")
    @classmethod
    def _some_port(cls, ports: list[int]) -> list[int]:
        if not ports:
            raise ValueError("needs at least one port")
        return ports

    @field_validator("health_path")
    @classmethod
    def _absolute_path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{shown(value)} must start with /")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExposeSettings:
        if self.min_scale is not None and self.max_scale is not None and self.max_scale < self.min_scale:
            raise ValueError(f"{KEY_MARK}max_scale: must be >= min_scale")
        if self.auth_type is not None and not self.set_auth:
            raise ValueError(f"{KEY_MARK}auth_type: only used with set_auth: true")
        if self.node_port is not None and len(self.node_port) != len(self.api_port):
            raise ValueError(
                f"{KEY_MARK}nodePort: gives {len(self.node_port)} port(s) for {len(self.api_port)} api_port(s); "
                "give one per api_port, in the same order (0 lets Kubernetes pick)"
            )
        return self


class EnvironmentSettings(FdlModel):
    variables: StringMap | None = Field(
        None,
        validation_alias=AliasChoices("variables", "Variables"),
        description="Environment variables (`Variables`, the v3 spelling, is accepted).",
    )
    secrets: StringMap | None = Field(
        None,
        validation_alias=AliasChoices("secrets", "Secrets"),
        description="Secret environment variables, stored by OSCAR as a Kubernetes Secret.",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("variables", "secrets"):
                if key in data and key.capitalize() in data:
                    raise ValueError(
                        f"{KEY_MARK}{key.capitalize()}: given twice ({key} and {key.capitalize()}); merge them"
                    )
        return data


class Replica(FdlModel):
    type: Literal["oscar", "endpoint"] = Field(description="Another OSCAR cluster, or any HTTP endpoint.")
    cluster_id: str | None = Field(None, description="Cluster id from the top-level clusters (type oscar).")
    service_name: str | None = Field(None, description="Service name in that cluster (type oscar).")
    url: str | None = Field(None, description="Endpoint receiving the events (type endpoint).")
    ssl_verify: bool | None = Field(
        None, description="Verify the endpoint's certificate (default false: left out, OSCAR does not check it)."
    )
    priority: Integer | None = Field(None, ge=0, description="0 is the highest priority.")
    headers: StringMap | None = Field(None, description="Headers sent with each delegated request.")

    @model_validator(mode="after")
    def _target_given(self) -> Replica:
        if self.type == "oscar":
            for key in ("cluster_id", "service_name"):
                if not getattr(self, key):
                    raise ValueError(f"{KEY_MARK}{key}: required for a replica of type oscar")
        elif not self.url or url_problem(self.url) is not None:
            problem = url_problem(self.url) if self.url else None
            detail = f" ({shown(mask_url(self.url), 80)} {problem})" if self.url and problem else ""
            raise ValueError(f"{KEY_MARK}url: an http(s) URL is required for a replica of type endpoint{detail}")
        return self


class FederationSettings(FdlModel):
    group_id: str | None = Field(None, description="Federation group.")
    topology: Literal["none", "star", "mesh"] | None = Field(None, description="Federation topology (default none).")
    delegation: Delegation | None = Field(None, description="How jobs are delegated to members.")
    members: list[Replica] | None = Field(None, description="Members jobs may be delegated to.")


class KServeLLM(FdlModel):
    model_name: str | None = Field(None, description="Model name (model_format llm).")
    runtime_image: str | None = Field(None, description="Runtime image of the LLM inference service.")


def _kserve_misplaced(data: Any) -> Any:
    """Keys of a later KServe layout (kserve.type, kserve.inference, kserve.llm_inference) that v4.1.2 does not
    have: say where what they hold belongs."""
    if isinstance(data, dict):
        if "inference" in data:
            raise ValueError(
                f"{KEY_MARK}inference: OSCAR v4.1.2 has no kserve.inference (the server drops it); write model_format "
                "and api_version directly under kserve"
            )
        if "llm_inference" in data:
            raise ValueError(
                f"{KEY_MARK}llm_inference: OSCAR v4.1.2 has no kserve.llm_inference (the server drops it); "
                "did you mean 'llm' (with model_format: llm)?"
            )
        if "type" in data:
            raise ValueError(
                f"{KEY_MARK}type: OSCAR v4.1.2 has no kserve.type (the server drops it); the kind of model follows "
                "from model_format (llm for a language model)"
            )
    return data


class KServeSettings(FdlModel):
    model_format: str = Field(
        description="Model format: onnx, sklearn, xgboost, pytorch, tensorflow, triton, huggingface, llm."
    )
    storage_uri: str = Field(description="Where KServe loads the model from.")
    api_version: Literal["v1", "v2"] | None = Field(None, description="Inference protocol version (default v1).")
    min_scale: Integer | None = Field(None, ge=0, description="Fewest replicas (default 0).")
    max_scale: Integer | None = Field(None, ge=0, description="Most replicas (0: unlimited).")
    cpu: Quantity | None = Field(None, description="CPU limit (default 0.2).")
    memory: Quantity | None = Field(None, description="Memory limit (default 256Mi).")
    args: list[str] | None = Field(None, description="Arguments of the model server.")
    env: StringMap | None = Field(None, description="Environment variables of the model server.")
    enable_gpu: bool | None = Field(None, description="Request one GPU.")
    set_auth: bool | None = Field(None, description="Protect the inference endpoint (default true).")
    llm: KServeLLM | None = Field(None, description="Settings of a language model (model_format llm).")

    @model_validator(mode="before")
    @classmethod
    def _misplaced_keys(cls, data: Any) -> Any:
        return _kserve_misplaced(data)


# --- the service ---------------------------------------------------------------------------------------------


def misplaced_keys(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for each key a service must not carry: set by the server, gone in v4, or a top-level
    section of the file."""
    found = [(key, "is set by the OSCAR server; remove it") for key in SERVER_POPULATED_KEYS if key in service]
    found += [
        (key, "belongs at the top level of the FDL file; move it there")
        for key in ("storage_providers", "clusters")
        if key in service
    ]
    found += [(key, message) for key, message in REMOVED_SERVICE_KEYS.items() if key in service]
    return found


class Service(FdlModel):
    """One OSCAR service as the v4.1.2 API takes it (`POST /system/services`)."""

    name: str = Field(description=f"Service name: a DNS label of at most {MAX_SERVICE_NAME_LENGTH} characters.")
    cluster_id: str | None = Field(None, description="Cluster id (default: the key of the functions.oscar entry).")
    image: str = Field(description="Container image.")
    script: str = Field(description="Script run on each invocation: a path relative to the FDL file, inlined.")
    alpine: bool | None = Field(None, description="The image is Alpine-based (musl build of the supervisor).")
    file_stage_in: bool | None = Field(None, description="Skip the supervisor's download of the input file.")
    image_pull_secrets: list[str] | None = Field(None, description="Secrets for private registries.")
    image_prefetch: bool | None = Field(None, description="Pull the image on every node when created.")
    memory: Quantity | None = Field(None, description="Memory limit (default 256Mi).")
    cpu: Quantity | None = Field(None, description="CPU limit (default 0.2).")
    total_memory: Quantity | None = Field(None, description="Memory for all jobs at once (YuniKorn).")
    total_cpu: Quantity | None = Field(None, description="CPU for all jobs at once (YuniKorn).")
    ephemeral_storage_request: Quantity | None = Field(None, description="Ephemeral storage request.")
    enable_gpu: bool | None = Field(None, description="Request one GPU.")
    enable_sgx: bool | None = Field(None, description="Run with the SCONE SGX plugin.")
    log_level: LogLevel | None = Field(None, description="Supervisor log level (default INFO).")
    synchronous: SynchronousSettings | None = None
    expose: ExposeSettings | None = None
    kserve: KServeSettings | None = None
    federation: FederationSettings | None = None
    input: list[StorageIOConfig] | None = Field(None, description="Where input files arrive (minio, webdav, rucio).")
    output: list[StorageIOConfig] | None = Field(None, description="Where result files go.")
    mount: MountSettings | None = Field(None, description="A storage path mounted in the container.")
    volume: VolumeSettings | None = Field(None, description="A managed persistent volume.")
    environment: EnvironmentSettings | None = None
    annotations: StringMap | None = Field(None, description="Kubernetes annotations of the jobs.")
    labels: StringMap | None = Field(None, description="Kubernetes labels of the jobs.")
    vo: str | None = Field(None, description="Virtual organisation of the owner (multi-tenant clusters).")
    allowed_users: list[str] | None = Field(None, description="User ids allowed when visibility is restricted.")
    visibility: Literal["private", "restricted", "public"] | None = Field(
        None, description="Who may invoke the service: private (the default), restricted or public."
    )
    isolation_level: Annotated[Literal["SERVICE", "USER"], BeforeValidator(_upper)] | None = Field(
        None, description="Bucket isolation: SERVICE (default) or USER."
    )
    interlink_node_name: str | None = Field(None, description="Virtual kubelet node (InterLink).")

    @model_validator(mode="before")
    @classmethod
    def _no_misplaced_keys(cls, data: Any) -> Any:
        misplaced = misplaced_keys(data) if isinstance(data, dict) else []
        if misplaced:
            key, message = misplaced[0]
            raise ValueError(f"{KEY_MARK}{key}: {message}")
        return data

    @field_validator("name")
    @classmethod
    def _dns_label(cls, name: str) -> str:
        if len(name) > MAX_SERVICE_NAME_LENGTH:
            raise ValueError(
                f"{shown(name)} has {len(name)} characters; OSCAR allows at most {MAX_SERVICE_NAME_LENGTH}"
            )
        if not DNS_LABEL.fullmatch(name):
            raise ValueError(f"{shown(name)} must be DNS-safe: lowercase letters, digits and '-', not at either end")
        return name

    @field_validator("script")
    @classmethod
    def _script_not_empty(cls, script: str) -> str:
        if not script.strip():
            raise ValueError("is empty")
        return script

    @field_validator("input")
    @classmethod
    def _input_providers(cls, inputs: list[StorageIOConfig] | None) -> list[StorageIOConfig] | None:
        for index, item in enumerate(inputs or []):
            kind, ident = split_provider(item.storage_provider)
            if kind not in INPUT_PROVIDER_TYPES:
                raise ValueError(
                    f"{KEY_MARK}{index}.storage_provider: {shown(item.storage_provider)}: OSCAR only takes input from "
                    f"{', '.join(INPUT_PROVIDER_TYPES)}; use it as an output instead"
                )
            if kind == "minio" and ident != DEFAULT_PROVIDER_ID:
                raise ValueError(
                    f"{KEY_MARK}{index}.storage_provider: {shown(item.storage_provider)}: OSCAR takes MinIO input only "
                    "from its own MinIO (any other fails the create with 'is not the configured in OSCAR'); use "
                    "minio.default, or this provider as an output"
                )
            if item.suffix or item.prefix:
                raise ValueError(f"{KEY_MARK}{index}: suffix and prefix only filter output files; remove them here")
        return inputs

    @model_validator(mode="after")
    def _consistent(self) -> Service:
        if self.visibility == "restricted" and not self.allowed_users:
            raise ValueError(f"{KEY_MARK}allowed_users: required with visibility: restricted")
        for section in ("input", "output"):
            for index, item in enumerate(getattr(self, section) or []):
                self._check_bucket(f"{section}.{index}.path", item.storage_provider, self.stored_path(item))
        if self.mount is not None:
            self._check_bucket("mount.path", self.mount.storage_provider, self.mount.path.strip(" /"))
        if self.federation is not None and self.federation.members:
            secrets = (self.environment.secrets if self.environment else None) or {}
            if not secrets.get(REFRESH_TOKEN_SECRET):
                raise ValueError(
                    f"{KEY_MARK}federation.members: a federation with members needs environment.secrets."
                    f"{REFRESH_TOKEN_SECRET} (OSCAR refuses the service with 400 without it); add an OIDC refresh "
                    "token there, e.g. '{{ env(\"OIDC_REFRESH_TOKEN\") }}'"
                )
        return self

    @staticmethod
    def _check_bucket(key: str, reference: str, path: str) -> None:
        kind, _ = split_provider(reference)
        if kind not in BUCKET_PROVIDER_TYPES:
            return
        bucket = path.split("/", 1)[0]
        if not BUCKET_NAME.fullmatch(bucket):
            raise ValueError(
                f"{KEY_MARK}{key}: bucket {shown(bucket)} (from path {shown(path)}) is not a valid bucket name "
                "(3-63 lowercase letters, digits, '.' and '-')"
            )

    def stored_path(self, item: StorageIOConfig) -> str:
        return stored_path(self.name, item.storage_provider, item.path)

    def storage_references(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(key path inside the service, `<type>.<id>`) of every storage provider the service uses."""
        references: list[tuple[tuple[str | int, ...], str]] = []
        for section in ("input", "output"):
            for index, item in enumerate(getattr(self, section) or []):
                references.append(((section, index, "storage_provider"), item.storage_provider))
        if self.mount is not None:
            references.append((("mount", "storage_provider"), self.mount.storage_provider))
        return references

    def federation_members(self) -> list[tuple[tuple[str | int, ...], Replica]]:
        members = (self.federation.members if self.federation else None) or []
        return [(("federation", "members", index), member) for index, member in enumerate(members)]


class ClusterSettings(FdlModel):
    endpoint: str = Field(description="OSCAR API endpoint of the other cluster.")
    auth_user: str | None = Field(None, description="Basic-auth user.")
    auth_password: str | None = Field(None, description="Basic-auth password.")
    ssl_verify: bool | None = Field(
        None, description="Verify the cluster's certificate (default false: left out, OSCAR does not check it)."
    )

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = url_problem(value)
        if problem is not None:
            hint = "; put them in auth_user and auth_password" if "credentials" in problem else ""
            raise ValueError(f"{shown(mask_url(value), 80)} {problem}{hint}")
        return value.rstrip("/")


class Functions(FdlModel):
    oscar: list[dict[str, Service]] = Field(description="One `{<cluster id>: <service>}` entry per service.")

    @field_validator("oscar", mode="before")
    @classmethod
    def _one_service_per_entry(cls, entries: Any) -> Any:
        if isinstance(entries, list):
            for index, entry in enumerate(entries):
                if isinstance(entry, dict) and len(entry) != 1:
                    raise ValueError(
                        f"{KEY_MARK}{index}: each entry is one `<cluster id>: <service>` mapping "
                        f"(found {len(entry)} keys); start each service with its own '- '"
                    )
        return entries


class FdlFile(FdlModel):
    functions: Functions
    storage_providers: StorageProviders | None = None
    clusters: dict[str, ClusterSettings] | None = None

    @model_validator(mode="after")
    def _references_exist(self) -> FdlFile:
        providers = self.storage_providers or StorageProviders()
        seen: dict[str, str] = {}
        for index, entry in enumerate(self.functions.oscar):
            for cluster_key, service in entry.items():
                where = ("functions", "oscar", index, cluster_key)
                if service.name in seen:
                    raise ValueError(
                        f"{KEY_MARK}{dotted(*where, 'name')}: {shown(service.name)} is defined twice "
                        f"(also at {seen[service.name]}); service names must be unique"
                    )
                seen[service.name] = dotted(*where)
                for path, reference in service.storage_references():
                    kind, ident = split_provider(reference)
                    if kind == "minio" and ident == DEFAULT_PROVIDER_ID:
                        continue
                    if ident not in providers.ids(kind):
                        known = ", ".join(f"{kind}.{name}" for name in providers.ids(kind)) or "none"
                        raise ValueError(
                            f"{KEY_MARK}{dotted(*where, *path)}: {shown(reference)} is not defined under "
                            f"storage_providers.{kind} (defined: {known}); add it there"
                        )
                for path, member in service.federation_members():
                    if member.type == "oscar" and member.cluster_id not in (self.clusters or {}):
                        raise ValueError(
                            f"{KEY_MARK}{dotted(*where, *path, 'cluster_id')}: {shown(member.cluster_id)} is not "
                            "defined under the top-level clusters; add it there"
                        )
        return self


# --- the loaded document -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceDefinition:
    """One service of an FDL file, ready to send: the cluster key it was listed under and its request body."""

    cluster_key: str
    service: Service
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return self.service.name


@dataclass(frozen=True)
class FdlDocument:
    source: str
    fdl: FdlFile
    services: list[ServiceDefinition]
    # The strings the template read with env() from variables named like credentials (DB_PASSWORD, API_TOKEN).
    credential_values: tuple[str, ...] = ()

    def masked(self, data: Any) -> Any:
        """`data` (this document, or a part of it) with credentials masked, the env() credentials included."""
        return mask_secrets(data, hidden=self.credential_values)

    def plain_credentials(self) -> list[str]:
        """Where an env() credential became a plain environment variable of a service, which Kubernetes shows to
        anyone who can read the service's pods, instead of an `environment.secrets` entry."""
        found = []
        for definition in self.services:
            variables = (definition.service.environment.variables if definition.service.environment else None) or {}
            for key, value in variables.items():
                if any(_holds(value, hidden) for hidden in self.credential_values):
                    found.append(f"service {definition.name}: environment.variables.{key}")
        return found

    def normalised(self) -> dict[str, Any]:
        """The FDL as the model understood it: canonical key names, scripts inlined, nothing dropped."""
        data: dict[str, Any] = self.fdl.model_dump(by_alias=True, exclude_none=True, mode="json")
        return data

    def cluster_keys(self) -> list[str]:
        return sorted({definition.cluster_key for definition in self.services})


def request_body(cluster_key: str, service: Service, fdl: FdlFile) -> dict[str, Any]:
    """The JSON body of `POST|PUT /system/services`: the service, with the server's defaults, plus the file's
    storage providers and clusters."""
    body: dict[str, Any] = service.model_dump(by_alias=True, exclude_none=True, mode="json")
    body.setdefault("cluster_id", cluster_key)
    apply_create_defaults(body)
    if fdl.storage_providers is not None:
        providers = fdl.storage_providers.model_dump(by_alias=True, exclude_none=True, mode="json")
        if providers:
            body["storage_providers"] = providers
    if fdl.clusters:
        body["clusters"] = {
            key: cluster.model_dump(by_alias=True, exclude_none=True, mode="json")
            for key, cluster in fdl.clusters.items()
        }
    return body


# Shorter strings are not masked where they appear inside other text: "1" or "on" would blank half a script.
MIN_MASKED_LENGTH = 3


def _holds(text: str, hidden: str) -> bool:
    if not hidden:
        return False  # an unset credential (env("TOKEN", "")) hides nothing
    return text == hidden or (len(hidden) >= MIN_MASKED_LENGTH and hidden in text)


def mask_secrets(data: Any, inside_secrets: bool = False, hidden: tuple[str, ...] = ()) -> Any:
    """A copy of `data` with credentials (provider keys, passwords, tokens, environment secrets, and the `hidden`
    strings wherever they appear) masked."""
    if isinstance(data, dict):
        masked: dict[str, Any] = {}
        for key, value in data.items():
            if inside_secrets or (key in SECRET_KEYS and isinstance(value, str)):
                masked[key] = MASK
            else:
                inside = key == "secrets" and isinstance(value, dict)
                masked[key] = mask_secrets(value, inside_secrets=inside, hidden=hidden)
        return masked
    if isinstance(data, list):
        return [mask_secrets(item, hidden=hidden) for item in data]
    if isinstance(data, str):
        for value in sorted(hidden, key=len, reverse=True):
            if _holds(data, value):
                data = MASK if data == value else data.replace(value, MASK)
        return mask_url(data)  # user:password@ in any URL
    return data


class _BlockScriptDumper(yaml.SafeDumper):
    """Writes multi-line strings (inlined scripts) as literal blocks, readable as the files they came from."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # PyYAML quotes what a literal block would not read back the same (tabs, carriage returns, trailing spaces).
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockScriptDumper.add_representer(str, _represent_str)


def to_yaml(data: Any) -> str:
    text: str = yaml.dump(data, Dumper=_BlockScriptDumper, sort_keys=False, width=120, allow_unicode=True)
    return text


# --- placeholders --------------------------------------------------------------------------------------------

# `<vo>`, `<access key>`: how upstream's examples mark a value to fill in.
ANGLE_PLACEHOLDER = re.compile(r"<[^<>\n]{1,80}>")
# `[topic_arn]` is YAML for a one-item list; as a placeholder it names the value to fill in.
BRACKET_WORD = re.compile(r"[A-Za-z_][\w .-]{0,79}")
# `"[topic_arn]"` quoted: the same placeholder, read as a string.
BRACKETED_WORD = re.compile(r"\[[A-Za-z_][\w .-]{0,79}\]")
# pydantic error types that mean "not the kind of value this key takes", as an empty value or a one-item list
# does (a placeholder string is found on its own, whatever the key takes).
TYPE_ERRORS = frozenset(
    {"string_type", "int_type", "bool_type", "model_type", "dict_type", "list_type", "literal_error"}
)


def _wanted(loc: Location) -> str:
    """What the key at `loc` takes, from its field description: `the service name: a DNS label ...`."""
    model = model_at(FdlFile, loc[:-1]) if loc else None
    field = field_keys(model).get(str(loc[-1])) if model is not None else None
    description = model.model_fields[field].description if model is not None and field is not None else None
    if not description:
        return "the real value"
    text = description.rstrip(".")
    return text if text[1:2].isupper() else text[0].lower() + text[1:]  # an acronym (AWS, CPU) stays


def placeholder_message(loc: Location, value: Any) -> str | None:
    """The message for a placeholder left in a file, or None when `value` is not one. Under a key that holds a
    credential the value is not shown: `[S3cret]` may be a real password that YAML read as a list."""
    if value is None:
        return f"placeholder: the value is empty; replace it with {_wanted(loc)}"
    secret = bool(loc) and (str(loc[-1]) in SECRET_KEYS or (len(loc) > 1 and loc[-2] == "secrets"))
    if isinstance(value, str) and (
        ANGLE_PLACEHOLDER.fullmatch(value.strip()) or BRACKETED_WORD.fullmatch(value.strip())
    ):
        return f"placeholder{'' if secret else f' {value.strip()!r}'}: replace it with {_wanted(loc)}"
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str) and BRACKET_WORD.fullmatch(value[0]):
        shown_value = "[...]" if secret else f"[{value[0]}]"
        return f"placeholder {shown_value} (YAML reads it as a one-item list): replace it with {_wanted(loc)}"
    return None


def _string_placeholders(data: Any, loc: Location = ()) -> list[tuple[Location, str]]:
    """Every `<...>` or `[...]` string outside scripts: valid YAML that is never meant literally."""
    found: list[tuple[Location, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key != "script":
                found += _string_placeholders(value, (*loc, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found += _string_placeholders(item, (*loc, index))
    elif isinstance(data, str):
        message = placeholder_message(loc, data)
        if message is not None:
            found.append((loc, message))
    return found


def _value_at(data: Any, loc: Location) -> tuple[bool, Any]:
    for part in loc:
        found = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and part < len(data)
        )
        if not found:
            return False, None
        data = data[part]
    return True, data


def _with_placeholders(exc: ValidationError, data: Any) -> list[tuple[Location, str]]:
    """pydantic's problems, with "placeholder: replace it with ..." where a type error comes from a placeholder."""
    problems = problems_from(exc, FdlFile, KNOWN_MISSPELLINGS)
    for index, item in enumerate(exc.errors()):
        loc: Location = tuple(item["loc"])
        if item["type"] not in TYPE_ERRORS:
            continue
        present, value = _value_at(data, loc)
        message = placeholder_message(loc, value) if present else None
        if message is not None:
            problems[index] = (loc, message)
    return problems


# --- loading and error reporting -----------------------------------------------------------------------------


def _service_entries(data: dict[str, Any]) -> list[tuple[Location, dict[str, Any]]]:
    functions = data.get("functions")
    entries = functions.get("oscar") if isinstance(functions, dict) else None
    found: list[tuple[Location, dict[str, Any]]] = []
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if isinstance(entry, dict):
            for cluster_key, service in entry.items():
                if isinstance(service, dict):
                    found.append((("functions", "oscar", index, cluster_key), service))
    return found


def _take_misplaced_keys(data: dict[str, Any]) -> list[tuple[Location, str]]:
    """The problems `misplaced_keys` finds in each service, the keys taken out of `data` so that the rest of each
    service is still checked and every problem is reported at once (the model alone stops at the first)."""
    problems: list[tuple[Location, str]] = []
    for where, service in _service_entries(data):
        for key, message in misplaced_keys(service):
            del service[key]
            problems.append(((*where, key), message))
    return problems


def referenced_file(base_dir: Path, reference: str) -> Path | None:
    """The file an FDL names (a script, an include), or None when it is not inside the FDL's folder.

    `..`, absolute paths and symbolic links leading out are refused, and so is anything in oscar-deploy's state
    folders (a cluster's secrets.yaml), even when the FDL sits among them.
    """
    from oscar_deploy.state.folder import state_root

    path = inside_folder(base_dir, reference)
    if path is None:
        return None
    try:
        root = state_root().resolve()
    except UserInputError:
        return path
    return None if path.is_relative_to(root) else path


def _inline_scripts(data: dict[str, Any], base_dir: Path) -> list[tuple[Location, str]]:
    """Replace each service's `script` path by the file's content; returns the problems found."""
    problems: list[tuple[Location, str]] = []
    for where, service in _service_entries(data):
        script = service.get("script")
        if not isinstance(script, str) or "\n" in script or not script.strip():
            continue  # not a path: missing, empty (the model says so), or the script itself (a YAML block scalar)
        loc: Location = (*where, "script")
        path = referenced_file(base_dir, script)
        if path is None:
            problems.append(
                (loc, f"script file {shown(script)} is outside the FDL's folder; keep scripts next to the FDL file")
            )
            continue
        try:
            service["script"] = read_user_text(
                path, "script file", missing="paths are relative to the FDL file", name=shown_path(script)
            )
        except UserInputError as exc:
            problems.append((loc, str(exc)))
    return problems


# Keys that upstream's own documents and tools spell wrongly, and what they mean.
KNOWN_MISSPELLINGS = {"port": "api_port", "node_port": "nodePort", "nodeport": "nodePort"}


def parse_fdl(text: str, source: str, base_dir: Path, put_back: Callable[[Any], Any] | None = None) -> FdlDocument:
    """Validate FDL text (already rendered from its template); scripts are read relative to `base_dir`.

    `put_back` puts the values the template inserted into the parsed data (see services.templating). Every
    problem becomes one line `source:line: key.path: message`.
    """
    document = YamlDocument(text, source, FdlError)
    data = document.data
    if isinstance(data, dict):
        keep_scalar_text(document.root, data, FdlFile)
    if put_back is not None:
        data = put_back(data)
    if not isinstance(data, dict):
        raise FdlError([f"{source}: an FDL file is a mapping starting with `functions:`; see templates/services/"])

    problems = _inline_scripts(data, base_dir) + _take_misplaced_keys(data)
    placeholders = _string_placeholders(data)
    fdl: FdlFile | None = None
    try:
        fdl = FdlFile.model_validate(data)
    except ValidationError as exc:
        unknown = [tuple(item["loc"]) for item in exc.errors() if item["type"] == "extra_forbidden"]
        # Under an unknown key a placeholder is no value to fill in: the key is the problem.
        placeholders = [
            (loc, message) for loc, message in placeholders if not any(loc[: len(key)] == key for key in unknown)
        ]
        flagged = {loc for loc, _ in placeholders}
        problems.extend(problem for problem in _with_placeholders(exc, data) if problem[0] not in flagged)
    problems.extend(placeholders)
    if problems or fdl is None:
        raise document.fail(
            sorted(problems, key=lambda problem: (line_of(document.root, problem[0]) or 0, dotted(*problem[0])))
        )
    if not fdl.functions.oscar:
        raise document.fail([(("functions", "oscar"), "lists no service; add one `- <cluster id>:` entry")])
    definitions = [
        ServiceDefinition(cluster_key, service, request_body(cluster_key, service, fdl))
        for entry in fdl.functions.oscar
        for cluster_key, service in entry.items()
    ]
    return FdlDocument(source=source, fdl=fdl, services=definitions)
