"""The Functions Definition Language (FDL): typed models of an OSCAR v4 service and of an FDL file.

Field names, types and allowed values follow upstream's own documentation (grycap/oscar `docs/fdl.md`) and the
v4 service type (`pkg/types/service.go`, `kserve.go`, `federation.go`). Upstream's CLI still decodes FDL files
into v3 types and the server's JSON decoding ignores keys it does not know, so a misspelt or outdated key is
silently dropped there. Here every key is known: an unknown key is an error with a did-you-mean
(`expose.port`, from upstream's own docs example, points at `expose.api_port`).

An FDL file:

    functions:
      oscar:
      - <cluster id>:            # one entry per service; the key names the cluster it is meant for
          name: cowsay
          image: ghcr.io/grycap/cowsay
          script: cowsay.sh      # relative to the FDL file; inlined into the request
    storage_providers:           # minio, s3, onedata, webdav, rucio: {<id>: credentials}
      s3: {results: {access_key: ..., secret_key: ..., region: eu-west-1}}
    clusters:                    # other OSCAR clusters, for federation and replicas
      other: {endpoint: https://..., auth_user: ..., auth_password: ..., ssl_verify: true}

`minio.default` (or just `minio`) is the cluster's own MinIO; OSCAR fills in its credentials itself.
"""

from __future__ import annotations

import re
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

from oscar_deploy.spec.yamlcheck import KEY_MARK, YamlDocument, dotted, problems_from
from oscar_deploy.support.errors import InvalidDocumentError

MAX_SERVICE_NAME_LENGTH = 39  # `binding:"required,max=39"` in upstream's Service type
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUANTITY = re.compile(r"^(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PROVIDER_TYPES = ("minio", "s3", "onedata", "webdav", "rucio")
DEFAULT_PROVIDER_ID = "default"
# OSCAR's create handler refuses any other input provider ("valid inputs are MinIO and dCache").
INPUT_PROVIDER_TYPES = ("minio", "webdav")
BUCKET_PROVIDER_TYPES = ("minio", "s3")
# Keys the server fills in; a definition that sets them would have them overwritten or refused.
SERVER_POPULATED_KEYS = ("token", "owner", "bucket_list", "deployment", "volume_status", "namespace")
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
    if not QUANTITY.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 0.5, 500m, 256Mi or 2Gi")
    return value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _int_to_list(value: Any) -> Any:
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


Quantity = Annotated[str, BeforeValidator(_scalar_to_str), AfterValidator(_quantity)]
StringMap = Annotated[dict[str, str], BeforeValidator(_string_map)]
Port = Annotated[int, Field(ge=1, le=65535)]
NodePort = Annotated[int, Field(ge=30000, le=32767)]
LogLevel = Annotated[Literal["NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)]
Delegation = Literal["static", "random", "load-based", "topsis"]


def split_provider(reference: str) -> tuple[str, str]:
    """`minio.default` -> ("minio", "default"); a bare type (`minio`) means its default id, as upstream."""
    kind, _, ident = reference.partition(".")
    return kind, ident or DEFAULT_PROVIDER_ID


class FdlModel(BaseModel):
    """Unknown keys are errors: upstream would drop them without a word."""

    model_config = ConfigDict(extra="forbid")


# --- storage -------------------------------------------------------------------------------------------------


def _provider_reference(value: str) -> str:
    kind, ident = split_provider(value)
    if kind not in PROVIDER_TYPES:
        raise ValueError(f"{value!r}: provider type must be one of {', '.join(PROVIDER_TYPES)} (as in minio.default)")
    if not ident:
        raise ValueError(f"{value!r}: write <type>.<id>, e.g. minio.default")
    return value


def _storage_path(value: str) -> str:
    path = value.strip().strip("/")
    if not path:
        raise ValueError("must not be empty; write bucket/folder")
    return path


ProviderReference = Annotated[str, AfterValidator(_provider_reference)]
StoragePath = Annotated[str, AfterValidator(_storage_path)]


class StorageIOConfig(FdlModel):
    storage_provider: ProviderReference = Field(description="`<type>.<id>` of a storage provider, e.g. minio.default.")
    path: StoragePath = Field(description="Path in the provider; for MinIO and S3 the first part is the bucket.")
    suffix: list[str] | None = Field(None, description="Only files ending with one of these (output only).")
    prefix: list[str] | None = Field(None, description="Only files starting with one of these (output only).")

    @model_validator(mode="after")
    def _bucket_name(self) -> StorageIOConfig:
        kind, _ = split_provider(self.storage_provider)
        if kind in BUCKET_PROVIDER_TYPES:
            bucket = self.path.split("/", 1)[0]
            if not BUCKET_NAME.match(bucket):
                raise ValueError(
                    f"{KEY_MARK}path: {bucket!r} is not a valid bucket name "
                    "(3-63 lowercase letters, digits, '.' and '-')"
                )
        return self

    @property
    def bucket(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def folder(self) -> str:
        """The path inside the bucket ('' for the bucket's root)."""
        return self.path.split("/", 1)[1] if "/" in self.path else ""


class MountSettings(FdlModel):
    storage_provider: ProviderReference = Field(description="`<type>.<id>` of the storage provider to mount.")
    path: StoragePath = Field(description="Folder (bucket/path) mounted inside the container.")


class VolumeSettings(FdlModel):
    name: str | None = Field(None, description="Managed volume name; required to mount an existing volume.")
    size: Quantity | None = Field(None, description="Size of a new volume, e.g. 1Gi.")
    mount_path: str = Field(description="Absolute path inside the container.")
    lifecycle_policy: Literal["delete", "retain"] | None = Field(
        None, description="Delete (default) or keep a service-created volume with its service."
    )

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str | None) -> str | None:
        if value is not None and not DNS_LABEL.match(value):
            raise ValueError(f"{value!r} must be a DNS label (lowercase letters, digits and '-')")
        return value

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must be an absolute path such as /data")
        return value

    @model_validator(mode="after")
    def _new_volume_needs_size(self) -> VolumeSettings:
        if self.name is None and self.size is None:
            raise ValueError(f"{KEY_MARK}size: required for a new volume (or set name to mount an existing one)")
        return self


class MinIOProvider(FdlModel):
    endpoint: str | None = Field(None, description="MinIO endpoint URL.")
    verify: bool | None = Field(None, description="Verify MinIO's TLS certificate.")
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
            raise ValueError(f"{value!r}: write the host name without the protocol (OSCAR always uses https)")
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
    min_scale: int | None = Field(None, ge=0, description="Fewest replicas kept running (Knative).")
    max_scale: int | None = Field(None, ge=0, description="Most replicas (0: unlimited).")

    @model_validator(mode="after")
    def _ordered(self) -> SynchronousSettings:
        if self.min_scale is not None and self.max_scale and self.max_scale < self.min_scale:
            raise ValueError(f"{KEY_MARK}max_scale: must be >= min_scale or 0 for unlimited")
        return self


class ExposeSettings(FdlModel):
    min_scale: int | None = Field(None, ge=0, description="Fewest replicas (default 1).")
    max_scale: int | None = Field(None, ge=1, description="Most replicas (default 10).")
    api_port: Annotated[list[Port], BeforeValidator(_int_to_list)] = Field(
        description="Port(s) inside the container where the API listens; a single number is accepted."
    )
    cpu_threshold: int | None = Field(None, ge=1, le=100, description="CPU percent before another replica.")
    rewrite_target: bool | None = Field(None, description="Rewrite the exposed path prefix.")
    node_port: Annotated[list[NodePort], BeforeValidator(_int_to_list)] | None = Field(
        None, alias="nodePort", description="NodePort(s) (30000-32767) instead of the ingress path."
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
            raise ValueError(f"{value!r} must start with /")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExposeSettings:
        if self.min_scale is not None and self.max_scale is not None and self.max_scale < self.min_scale:
            raise ValueError(f"{KEY_MARK}max_scale: must be >= min_scale")
        if self.auth_type is not None and not self.set_auth:
            raise ValueError(f"{KEY_MARK}auth_type: only used with set_auth: true")
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
    ssl_verify: bool | None = Field(None, description="Verify the endpoint's certificate (default true).")
    priority: int | None = Field(None, ge=0, description="0 is the highest priority.")
    headers: StringMap | None = Field(None, description="Headers sent with each delegated request.")

    @model_validator(mode="after")
    def _target_given(self) -> Replica:
        if self.type == "oscar":
            for key in ("cluster_id", "service_name"):
                if not getattr(self, key):
                    raise ValueError(f"{KEY_MARK}{key}: required for a replica of type oscar")
        elif not self.url or not self.url.startswith(("http://", "https://")):
            raise ValueError(f"{KEY_MARK}url: an http(s) URL is required for a replica of type endpoint")
        return self


class FederationSettings(FdlModel):
    group_id: str | None = Field(None, description="Federation group (default: the service name).")
    topology: Literal["none", "star", "tree", "mesh"] | None = Field(None, description="Federation topology.")
    delegation: Delegation | None = Field(None, description="How jobs are delegated to members.")
    rescheduler_threshold: int | None = Field(None, ge=0, description="Seconds queued before delegating.")
    members: list[Replica] | None = Field(None, description="Members jobs may be delegated to.")


class KServeInference(FdlModel):
    model_format: str = Field(description="onnx, sklearn, xgboost, pytorch, tensorflow, triton, huggingface.")
    runtime: str | None = Field(None, description="KServe serving runtime.")
    api_version: Literal["v1", "v2"] | None = Field(None, description="Inference protocol version.")


class KServeLLMInference(FdlModel):
    runtime_image: str | None = Field(None, description="Runtime image for the LLM inference service.")


class KServeSettings(FdlModel):
    type: Literal["inference", "llm_inference"] | None = Field(None, description="Default inference.")
    storage_uri: str = Field(description="Where KServe loads the model from.")
    inference: KServeInference | None = None
    llm_inference: KServeLLMInference | None = None
    min_scale: int | None = Field(None, ge=0)
    max_scale: int | None = Field(None, ge=0)
    cpu: Quantity | None = None
    memory: Quantity | None = None
    args: list[str] | None = None
    env: StringMap | None = None
    enable_gpu: bool | None = None
    set_auth: bool | None = None

    @model_validator(mode="after")
    def _matching_section(self) -> KServeSettings:
        if self.type in (None, "inference"):
            if self.inference is None:
                raise ValueError(f"{KEY_MARK}inference: required for KServe type inference (needs model_format)")
            if self.llm_inference is not None:
                raise ValueError(f"{KEY_MARK}llm_inference: only used with type llm_inference")
        elif self.inference is not None:
            raise ValueError(f"{KEY_MARK}inference: only used with type inference")
        return self


# --- the service ---------------------------------------------------------------------------------------------


class Service(FdlModel):
    """One OSCAR service as the v4 API takes it (`POST /system/services`)."""

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
    replicas: list[Replica] | None = Field(None, description="Replicas jobs may be delegated to.")
    delegation: Delegation | None = Field(None, description="How jobs are delegated to replicas.")
    rescheduler_threshold: int | None = Field(None, ge=0, description="Seconds queued before delegating.")
    federation: FederationSettings | None = None
    input: list[StorageIOConfig] | None = Field(None, description="Where input files arrive (minio or webdav).")
    output: list[StorageIOConfig] | None = Field(None, description="Where result files go.")
    mount: MountSettings | None = Field(None, description="A storage path mounted in the container.")
    volume: VolumeSettings | None = Field(None, description="A managed persistent volume.")
    environment: EnvironmentSettings | None = None
    annotations: StringMap | None = Field(None, description="Kubernetes annotations of the jobs.")
    labels: StringMap | None = Field(None, description="Kubernetes labels of the jobs.")
    vo: str | None = Field(None, description="Virtual organisation of the owner (multi-tenant clusters).")
    allowed_users: list[str] | None = Field(None, description="User ids allowed when visibility is restricted.")
    visibility: Literal["private", "restricted", "public"] | None = Field(None, description="Default private.")
    isolation_level: Annotated[Literal["SERVICE", "USER"], BeforeValidator(_upper)] | None = Field(
        None, description="Bucket isolation: SERVICE (default) or USER."
    )
    interlink_node_name: str | None = Field(None, description="Virtual kubelet node (InterLink).")

    @model_validator(mode="before")
    @classmethod
    def _not_server_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in SERVER_POPULATED_KEYS:
                if key in data:
                    raise ValueError(f"{KEY_MARK}{key}: is set by the OSCAR server; remove it")
            for key in ("storage_providers", "clusters"):
                if key in data:
                    raise ValueError(f"{KEY_MARK}{key}: belongs at the top level of the FDL file; move it there")
        return data

    @field_validator("name")
    @classmethod
    def _dns_label(cls, name: str) -> str:
        if len(name) > MAX_SERVICE_NAME_LENGTH:
            raise ValueError(f"{name!r} has {len(name)} characters; OSCAR allows at most {MAX_SERVICE_NAME_LENGTH}")
        if not DNS_LABEL.match(name):
            raise ValueError(f"{name!r} must be DNS-safe: lowercase letters, digits and '-', not at either end")
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
            kind, _ = split_provider(item.storage_provider)
            if kind not in INPUT_PROVIDER_TYPES:
                raise ValueError(
                    f"{KEY_MARK}{index}.storage_provider: {item.storage_provider!r}: OSCAR only takes input from "
                    f"{' or '.join(INPUT_PROVIDER_TYPES)}; use it as an output instead"
                )
            if item.suffix or item.prefix:
                raise ValueError(f"{KEY_MARK}{index}: suffix and prefix only filter output files; remove them here")
        return inputs

    @model_validator(mode="after")
    def _restricted_needs_users(self) -> Service:
        if self.visibility == "restricted" and not self.allowed_users:
            raise ValueError(f"{KEY_MARK}allowed_users: required with visibility: restricted")
        return self

    def storage_references(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(key path inside the service, `<type>.<id>`) of every storage provider the service uses."""
        references: list[tuple[tuple[str | int, ...], str]] = []
        for section in ("input", "output"):
            for index, item in enumerate(getattr(self, section) or []):
                references.append(((section, index, "storage_provider"), item.storage_provider))
        if self.mount is not None:
            references.append((("mount", "storage_provider"), self.mount.storage_provider))
        return references

    def replica_list(self) -> list[tuple[tuple[str | int, ...], Replica]]:
        found: list[tuple[tuple[str | int, ...], Replica]] = [
            (("replicas", index), replica) for index, replica in enumerate(self.replicas or [])
        ]
        if self.federation is not None:
            found += [
                (("federation", "members", index), item) for index, item in enumerate(self.federation.members or [])
            ]
        return found


class ClusterSettings(FdlModel):
    endpoint: str = Field(description="OSCAR API endpoint of the other cluster.")
    auth_user: str | None = Field(None, description="Basic-auth user.")
    auth_password: str | None = Field(None, description="Basic-auth password.")
    ssl_verify: bool | None = Field(None, description="Verify the cluster's certificate.")

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must be an http(s) URL")
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
                        f"{KEY_MARK}{dotted(*where, 'name')}: {service.name!r} is defined twice "
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
                            f"{KEY_MARK}{dotted(*where, *path)}: {reference!r} is not defined under "
                            f"storage_providers.{kind} (defined: {known}); add it there"
                        )
                for path, replica in service.replica_list():
                    if replica.type == "oscar" and replica.cluster_id not in (self.clusters or {}):
                        raise ValueError(
                            f"{KEY_MARK}{dotted(*where, *path, 'cluster_id')}: {replica.cluster_id!r} is not "
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

    def normalised(self) -> dict[str, Any]:
        """The FDL as the model understood it: canonical key names, scripts inlined, nothing dropped."""
        data: dict[str, Any] = self.fdl.model_dump(by_alias=True, exclude_none=True, mode="json")
        return data

    def cluster_keys(self) -> list[str]:
        return sorted({definition.cluster_key for definition in self.services})


def request_body(cluster_key: str, service: Service, fdl: FdlFile) -> dict[str, Any]:
    """The JSON body of `POST|PUT /system/services`: the service plus the file's providers and clusters."""
    body: dict[str, Any] = service.model_dump(by_alias=True, exclude_none=True, mode="json")
    body.setdefault("cluster_id", cluster_key)
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


def mask_secrets(data: Any, inside_secrets: bool = False) -> Any:
    """A copy of `data` with credentials (provider keys, passwords, tokens, environment secrets) masked."""
    if isinstance(data, dict):
        masked: dict[str, Any] = {}
        for key, value in data.items():
            if inside_secrets or (key in SECRET_KEYS and isinstance(value, str)):
                masked[key] = MASK
            else:
                masked[key] = mask_secrets(value, inside_secrets=key == "secrets" and isinstance(value, dict))
        return masked
    if isinstance(data, list):
        return [mask_secrets(item) for item in data]
    return data


class _BlockScriptDumper(yaml.SafeDumper):
    """Writes multi-line strings (inlined scripts) as literal blocks, readable as the files they came from."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not any(ch in value for ch in "\t\r") and not value.endswith(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockScriptDumper.add_representer(str, _represent_str)


def to_yaml(data: Any) -> str:
    text: str = yaml.dump(data, Dumper=_BlockScriptDumper, sort_keys=False, width=120, allow_unicode=True)
    return text


# --- loading and error reporting -----------------------------------------------------------------------------


def _inline_scripts(data: dict[str, Any], base_dir: Path) -> list[tuple[tuple[str | int, ...], str]]:
    """Replace each service's `script` path by the file's content; returns the problems found."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    functions = data.get("functions")
    entries = functions.get("oscar") if isinstance(functions, dict) else None
    if not isinstance(entries, list):
        return problems
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        for cluster_key, service in entry.items():
            if not isinstance(service, dict) or not isinstance(service.get("script"), str):
                continue
            script = service["script"]
            if "\n" in script:
                continue  # already the script itself (a YAML block scalar)
            path = (base_dir / script).expanduser()
            loc: tuple[str | int, ...] = ("functions", "oscar", index, cluster_key, "script")
            if not path.is_file():
                problems.append((loc, f"script file {path} not found; paths are relative to the FDL file"))
                continue
            try:
                service["script"] = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                problems.append((loc, f"cannot read script file {path}: {exc}"))
    return problems


# Keys that upstream's own documents and tools spell wrongly, and what they mean.
KNOWN_MISSPELLINGS = {"port": "api_port", "node_port": "nodePort", "nodeport": "nodePort"}


def parse_fdl(text: str, source: str, base_dir: Path) -> FdlDocument:
    """Validate FDL text (already rendered from its template); scripts are read relative to `base_dir`.

    Every problem becomes one line `source:line: key.path: message`.
    """
    document = YamlDocument(text, source, FdlError)
    data = document.data
    if not isinstance(data, dict):
        raise FdlError([f"{source}: an FDL file is a mapping starting with `functions:`; see templates/services/"])

    problems = _inline_scripts(data, base_dir)
    fdl: FdlFile | None = None
    try:
        fdl = FdlFile.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from(exc, FdlFile, KNOWN_MISSPELLINGS))
    if problems or fdl is None:
        raise document.fail(problems)
    if not fdl.functions.oscar:
        raise document.fail([(("functions", "oscar"), "lists no service; add one `- <cluster id>:` entry")])
    definitions = [
        ServiceDefinition(cluster_key, service, request_body(cluster_key, service, fdl))
        for entry in fdl.functions.oscar
        for cluster_key, service in entry.items()
    ]
    return FdlDocument(source=source, fdl=fdl, services=definitions)
