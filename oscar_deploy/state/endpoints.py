"""How the service, files and verify commands reach an OSCAR cluster and its MinIO.

Contract with the platform phase
--------------------------------
When OSCAR and MinIO answer, the platform phase calls `write_endpoints(state, PlatformEndpoints(...))`, which
writes `<state folder>/endpoints.yaml` (0600):

    oscar_url: https://oscar.203.0.113.10.sslip.io   # OSCAR manager API as reachable from this machine
    oscar_user: oscar                                 # its basic-auth user (spec platform.oscar.username)
    minio_url: https://minio.203.0.113.10.sslip.io    # MinIO's S3 API as reachable from this machine
    minio_access_key: oscar-deploy                    # a MinIO user that can read and write the service buckets
    minio_region: us-east-1
    ca_file: ca.crt                                   # PEM CA of both certificates, relative to the state folder;
                                                      # omitted when they come from a public CA

URLs carry no credentials. The passwords are the state's secrets, which the platform phase creates with
`state.secret(...)` when it deploys OSCAR and MinIO (so they exist before anything reads them):

    state.secret("oscar_password")      OSCAR basic-auth password of oscar_user
    state.secret("minio_secret_key")    MinIO secret key of minio_access_key

A cluster oscar-deploy did not create is reached with flags and environment variables instead; a password is
never a flag value (it would show in `ps` and shell history):

    --endpoint URL / OSCAR_ENDPOINT       OSCAR API
    --user NAME / OSCAR_USER              basic-auth user (default oscar)
    OSCAR_PASSWORD, or --password-stdin, or a prompt on a terminal
    OSCAR_TOKEN                           an OIDC access token, sent as a bearer token instead of basic auth
    --ca-file PEM / OSCAR_CA_FILE         CA bundle for a self-signed cluster
    OSCAR_MINIO_ENDPOINT, OSCAR_MINIO_ACCESS_KEY, OSCAR_MINIO_SECRET_KEY
                                          MinIO for `files` and `verify`; without the keys, the credentials
                                          OSCAR hands out at /system/config are used
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.files import read_user_text, shown_path
from oscar_deploy.support.urls import http_url

if TYPE_CHECKING:
    from oscar_deploy.state.folder import ClusterState

ENDPOINTS_FILE_NAME = "endpoints.yaml"
OSCAR_PASSWORD_SECRET = "oscar_password"  # noqa: S105 - a name, not a value
MINIO_ACCESS_KEY_SECRET = "minio_access_key"  # noqa: S105 - a name, not a value
MINIO_SECRET_KEY_SECRET = "minio_secret_key"  # noqa: S105 - a name, not a value
DEFAULT_OSCAR_USER = "oscar"
DEFAULT_MINIO_REGION = "us-east-1"
CLUSTER_ENV = "OSCAR_DEPLOY_CLUSTER"
ENDPOINT_ENV = "OSCAR_ENDPOINT"
USER_ENV = "OSCAR_USER"
PASSWORD_ENV = "OSCAR_PASSWORD"  # noqa: S105 - a name, not a value
TOKEN_ENV = "OSCAR_TOKEN"  # noqa: S105 - a name, not a value
CA_FILE_ENV = "OSCAR_CA_FILE"
MINIO_ENDPOINT_ENV = "OSCAR_MINIO_ENDPOINT"
MINIO_ACCESS_KEY_ENV = "OSCAR_MINIO_ACCESS_KEY"
MINIO_SECRET_KEY_ENV = "OSCAR_MINIO_SECRET_KEY"  # noqa: S105 - a name, not a value


@dataclass(frozen=True)
class PlatformEndpoints:
    """The non-secret half of the contract: what `endpoints.yaml` holds."""

    oscar_url: str
    oscar_user: str
    minio_url: str
    minio_access_key: str
    minio_region: str = DEFAULT_MINIO_REGION
    ca_file: str | None = None


@dataclass(frozen=True)
class OscarAccess:
    """Where the OSCAR API is and how to authenticate: basic auth (user and password) or a bearer token."""

    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cluster_id: str = "oscar"  # the name used for the oscar-cli config entry


@dataclass(frozen=True)
class MinioAccess:
    url: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = DEFAULT_MINIO_REGION
    ca_file: Path | None = None


@dataclass(frozen=True)
class ClusterAccess:
    oscar: OscarAccess
    minio: MinioAccess | None  # None: ask OSCAR's /system/config (foreign clusters without MinIO keys)
    minio_url_hint: str | None = None  # MinIO URL reachable from here when only the keys come from OSCAR


def _normalise_url(url: str, what: str) -> str:
    return http_url(url, what, "use the user option and OSCAR_PASSWORD (or OSCAR_TOKEN)")


def check_ca_file(path: Path, where: str) -> Path:
    """A CA bundle, once it is a regular file of PEM certificates (a FIFO would hang the TLS set-up)."""
    text = read_user_text(path, "CA file", missing="pass the PEM CA bundle of the cluster")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise UserInputError(f"{where} {shown_path(path)}: holds no PEM certificate; pass the cluster's CA bundle")
    return path


def write_endpoints(state: ClusterState, endpoints: PlatformEndpoints) -> Path:
    """Record where the cluster's OSCAR and MinIO answer (the platform phase calls this)."""
    import yaml

    data = {key: value for key, value in asdict(endpoints).items() if value is not None}
    data["oscar_url"] = _normalise_url(endpoints.oscar_url, "oscar_url")
    data["minio_url"] = _normalise_url(endpoints.minio_url, "minio_url")
    path = state.path / ENDPOINTS_FILE_NAME
    state.write_file(path, yaml.safe_dump(data, sort_keys=True))
    return path


def read_endpoints(state: ClusterState) -> PlatformEndpoints:
    import yaml

    from oscar_deploy.spec.yamlcheck import load_yaml, yaml_problem

    path = state.path / ENDPOINTS_FILE_NAME
    if not path.exists():
        raise UserInputError(
            f"cluster {state.name!r}: {path} does not exist yet (the platform phase writes it); "
            "run `oscar-deploy up`, or pass --endpoint for a cluster oscar-deploy did not create"
        )
    try:
        data = load_yaml(read_user_text(path, "endpoints file"))[1] or {}
    except yaml.YAMLError as exc:
        raise UserInputError(f"{yaml_problem(exc, str(path))}; run `oscar-deploy up` again to rewrite it") from None
    expected = set(PlatformEndpoints.__dataclass_fields__)
    required = {"oscar_url", "oscar_user", "minio_url", "minio_access_key"}
    if not isinstance(data, dict) or not required <= set(data) or not set(data) <= expected:
        raise UserInputError(
            f"{path}: expected keys {', '.join(sorted(required))} (and optionally minio_region, ca_file); "
            "run `oscar-deploy up` again to rewrite it"
        )
    endpoints = PlatformEndpoints(**{key: str(value) for key, value in data.items()})
    for key in ("oscar_url", "minio_url"):
        _normalise_url(getattr(endpoints, key), f"{path}: {key}")
    return endpoints


def _stored_secret(state: ClusterState, key: str) -> str:
    """A secret the platform phase stored; never generated here (a fresh one would not match the cluster's)."""
    if key not in state.secret_names():
        raise UserInputError(
            f"cluster {state.name!r}: secret {key} is not in {state.secrets_file}; run `oscar-deploy up` to finish "
            "the platform phase"
        )
    return state.secret(key)


def access_from_state(state: ClusterState) -> ClusterAccess:
    """OSCAR and MinIO access of a cluster oscar-deploy created."""
    state.require()
    endpoints = read_endpoints(state)
    ca_file = None
    if endpoints.ca_file:
        ca_file = Path(endpoints.ca_file)
        if not ca_file.is_absolute():
            ca_file = state.path / ca_file
        check_ca_file(ca_file, f"{state.path / ENDPOINTS_FILE_NAME}: ca_file")
    oscar = OscarAccess(
        url=endpoints.oscar_url,
        user=endpoints.oscar_user,
        password=_stored_secret(state, OSCAR_PASSWORD_SECRET),
        ca_file=ca_file,
        cluster_id=state.name,
    )
    minio = MinioAccess(
        url=endpoints.minio_url,
        access_key=endpoints.minio_access_key,
        secret_key=_stored_secret(state, MINIO_SECRET_KEY_SECRET),
        region=endpoints.minio_region,
        ca_file=ca_file,
    )
    return ClusterAccess(oscar=oscar, minio=minio)


def access_from_flags(
    endpoint: str,
    user: str | None,
    password: str | None,
    token: str | None,
    ca_file: Path | None,
    cluster_id: str | None = None,
) -> ClusterAccess:
    """Access to a cluster oscar-deploy did not create; MinIO comes from the OSCAR_MINIO_* variables."""
    url = _normalise_url(endpoint, "--endpoint")
    if ca_file is not None:
        check_ca_file(ca_file, "--ca-file")
    if token is None and password is None:
        raise UserInputError(
            f"--endpoint {url}: no credentials; set {PASSWORD_ENV} (or use --password-stdin) or {TOKEN_ENV}"
        )
    host = url.split("://", 1)[1].split("/", 1)[0].split(":")[0]
    oscar = OscarAccess(
        url=url,
        user=None if token else (user or DEFAULT_OSCAR_USER),
        password=None if token else password,
        token=token,
        ca_file=ca_file,
        cluster_id=cluster_id or host,
    )
    minio_url = os.environ.get(MINIO_ENDPOINT_ENV)
    access_key = os.environ.get(MINIO_ACCESS_KEY_ENV)
    secret_key = os.environ.get(MINIO_SECRET_KEY_ENV)
    minio = None
    if minio_url:
        minio_url = _normalise_url(minio_url, MINIO_ENDPOINT_ENV)
    if minio_url and access_key and secret_key:
        minio = MinioAccess(url=minio_url, access_key=access_key, secret_key=secret_key, ca_file=ca_file)
    elif access_key or secret_key:
        raise UserInputError(
            f"set both {MINIO_ACCESS_KEY_ENV} and {MINIO_SECRET_KEY_ENV}, and {MINIO_ENDPOINT_ENV}, or none of them"
        )
    return ClusterAccess(oscar=oscar, minio=minio, minio_url_hint=minio_url)


def default_cluster_name(
    spec_file: Path = Path("cluster.yaml"), alternative: str = "-f SPEC with the cluster's spec file"
) -> str:
    """The cluster to use when none is named: $OSCAR_DEPLOY_CLUSTER, ./cluster.yaml, or the only one there is.
    `alternative` is the command's other way to name one, for the message when none can be chosen."""
    from oscar_deploy.state.folder import list_clusters

    named = os.environ.get(CLUSTER_ENV)
    if named:
        return named
    if spec_file.is_file():
        from oscar_deploy.spec.models import load_spec

        return load_spec(spec_file).name
    clusters = list_clusters()
    if len(clusters) == 1:
        return clusters[0]
    known = ", ".join(clusters) if clusters else "none yet"
    raise UserInputError(f"which cluster? pass --cluster NAME (clusters: {known}), or {alternative}")
