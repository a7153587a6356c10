"""The service as OSCAR v4.1.2 stores it: the defaults its create handler fills in, and whether a stored service
already matches a definition (`service apply` answers "unchanged" then).

`apply_create_defaults` gives a request body the values the create handler would give it, so what is sent is what
is stored. `same_service` compares a definition with what `GET /system/services/{name}` returns; both sides are
brought to one form first:

- Go drops nothing it knows and writes every field back, zero values included: a key left out and its zero value
  ("", 0, false, an empty list or map) mean the same, so both are pruned.
- Keys the server fills in from its own state are not compared: the token, owner, namespace, bucket list, volume
  status and deployment summary; the labels create.go's `checkValues` adds (`oscar_service`, the YuniKorn and
  user-service labels, `owner_name`, and for OIDC users `uid`, `vo` and the Kueue queue); the `minio.default`
  provider it writes with hidden credentials.
- Secret values come back empty (create.go keeps the keys and blanks the values after moving them into a
  Kubernetes Secret), so only their names compare; whether the values changed is told by an HMAC of them that
  `with_secrets_digest` puts in an annotation, keyed with the credential the client authenticates with
  (stretched with PBKDF2). The annotation tells nothing about the values to anyone without that credential.
- A federation's group id and delegation, when the definition leaves them out, are whatever the server chose.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import json
import re
from typing import Any

SECRETS_DIGEST_ANNOTATION = "oscar-deploy/secrets-hmac"
DIGEST_SALT = b"oscar-deploy secrets digest"
DIGEST_ROUNDS = 200_000
# create.go checkValues and the Kserve type's UnmarshalJSON: what the server fills in when a key is left out.
DEFAULT_MEMORY = "256Mi"
DEFAULT_CPU = "0.2"
DEFAULT_VISIBILITY = "private"
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_TOPOLOGY = "none"
DEFAULT_VOLUME_LIFECYCLE = "delete"
LOG_LEVELS = ("NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Providers whose path starts with a bucket; normalizeStoragePaths puts the service name before one without '/'.
BUCKET_PROVIDER_TYPES = ("minio", "s3")
# What MinIO (and S3) take as a bucket name.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# Filled in by the server from its own state (pkg/types/service.go: read-only or "internal use" fields).
SERVER_KEYS = ("token", "owner", "namespace", "bucket_list", "volume_status", "deployment")
# Added by create.go checkValues (and for OIDC users by the create handler); the Knative backend adds its
# visibility label.
SERVER_LABELS = frozenset(
    {
        "oscar.grycap/user-service",
        "oscar_service",
        "applicationId",
        "queue",
        "owner_name",
        "uid",
        "vo",
        "kueue.x-k8s.io/queue-name",
        "networking.knative.dev/visibility",
    }
)
SERVER_DEFAULTED_FEDERATION_KEYS = ("group_id", "delegation")


def provider_kind(reference: str) -> str:
    """`minio.default` -> "minio" (create.go getProviderInfo lower-cases the type)."""
    return reference.strip().partition(".")[0].lower()


def stored_path(service_name: str, reference: str, path: str) -> str:
    """A storage path as create.go's normalizeStoragePaths stores it.

    Spaces and slashes are trimmed at both ends; a MinIO or S3 path without `/` is a folder in the bucket named
    after the service.
    """
    trimmed = path.strip(" /")
    if provider_kind(reference) in BUCKET_PROVIDER_TYPES and "/" not in trimmed:
        return f"{service_name}/{trimmed}"
    return trimmed


def _normalise_line_endings(script: str) -> str:
    """create.go stores the script through utils.NormalizeLineEndings: Windows and old-Mac line ends become '\\n'."""
    return script.replace("\r\n", "\n").replace("\r", "\n")


def apply_create_defaults(body: dict[str, Any]) -> dict[str, Any]:
    """`body` as OSCAR v4.1.2's create handler stores it, for the keys a definition sets.

    Each default, and where upstream applies it:
    - script: line endings normalised (create.go, `utils.NormalizeLineEndings`);
    - memory 256Mi, cpu 0.2, visibility private, log_level upper-cased with INFO for anything else
      (create.go `checkValues`);
    - input and output paths trimmed of spaces and '/', and `<service>/` put before a MinIO or S3 path without '/'
      (create.go `normalizeStoragePaths`), except when the service has federation members: upstream forwards the
      paths as written to the members, each of which prefixes its own service name;
    - volume: name defaults to the service name and lifecycle_policy to delete when size is set
      (pkg/utils/volume.go `ValidateVolumeConfig`);
    - kserve: cpu 0.2, memory 256Mi, set_auth true (the `Kserve` type's `UnmarshalJSON` in pkg/types/service.go);
    - federation: topology none when left out (create.go `checkValues`).
    Keys the server derives from its own configuration (token, owner, labels, the minio.default provider) are not
    filled in here.
    """
    name = str(body["name"])
    body["script"] = _normalise_line_endings(str(body["script"]))
    body.setdefault("memory", DEFAULT_MEMORY)
    body.setdefault("cpu", DEFAULT_CPU)
    body.setdefault("visibility", DEFAULT_VISIBILITY)
    level = str(body.get("log_level") or "").upper()
    body["log_level"] = level if level in LOG_LEVELS else DEFAULT_LOG_LEVEL
    federation = body.get("federation")
    if isinstance(federation, dict):
        federation.setdefault("topology", DEFAULT_TOPOLOGY)
    if not (isinstance(federation, dict) and federation.get("members")):
        for section in ("input", "output"):
            for item in body.get(section) or []:
                item["path"] = stored_path(name, item["storage_provider"], item["path"])
    volume = body.get("volume")
    if isinstance(volume, dict) and volume.get("size"):
        volume.setdefault("name", name)
        volume.setdefault("lifecycle_policy", DEFAULT_VOLUME_LIFECYCLE)
    kserve = body.get("kserve")
    if isinstance(kserve, dict):
        kserve.setdefault("cpu", DEFAULT_CPU)
        kserve.setdefault("memory", DEFAULT_MEMORY)
        kserve.setdefault("set_auth", True)
    return body


@functools.lru_cache(maxsize=4)
def _digest_key(credential: str) -> bytes:
    """The HMAC key, stretched from the credential so that guessing a weak password from a digest stays slow."""
    return hashlib.pbkdf2_hmac("sha256", credential.encode(), DIGEST_SALT, DIGEST_ROUNDS)


def secrets_digest(secrets: dict[str, str], credential: str) -> str:
    """HMAC-SHA256 of the secrets (names and values), keyed with a credential the server never returns."""
    canonical = json.dumps(secrets, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(_digest_key(credential), canonical, hashlib.sha256).hexdigest()


def with_secrets_digest(body: dict[str, Any], credential: str) -> dict[str, Any]:
    """A copy of `body` whose annotations carry the digest of its secrets (none when it has no secrets)."""
    result = copy.deepcopy(body)
    secrets = (result.get("environment") or {}).get("secrets") or {}
    annotations = dict(result.get("annotations") or {})
    annotations.pop(SECRETS_DIGEST_ANNOTATION, None)
    if secrets:
        annotations[SECRETS_DIGEST_ANNOTATION] = secrets_digest(secrets, credential)
    if annotations:
        result["annotations"] = annotations
    else:
        result.pop("annotations", None)
    return result


def _prune(value: Any) -> Any:
    """Go's zero values and absence are the same field: drop None, "", 0, false, [] and {} from mappings."""
    if isinstance(value, dict):
        pruned = {key: _prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in (None, "", 0, False, [], {})}
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value


def _comparable(service: dict[str, Any], stored: bool, wanted_federation: dict[str, Any] | None) -> Any:
    data = copy.deepcopy(service)
    for key in SERVER_KEYS:
        data.pop(key, None)
    if not stored and "name" in data:  # a federated body keeps its paths as written; the server stores them so
        for section in ("input", "output"):
            for item in data.get(section) or []:
                item["path"] = stored_path(str(data["name"]), str(item.get("storage_provider", "")), item["path"])
    if stored:
        labels = data.get("labels") or {}
        data["labels"] = {key: value for key, value in labels.items() if key not in SERVER_LABELS}
        minio = (data.get("storage_providers") or {}).get("minio")
        if isinstance(minio, dict):
            minio.pop("default", None)
        federation = data.get("federation")
        if isinstance(federation, dict) and wanted_federation is not None:
            for key in SERVER_DEFAULTED_FEDERATION_KEYS:
                if key not in wanted_federation:
                    federation.pop(key, None)
    # Secrets compare by name, and their values by the digest annotation, reported as part of the environment.
    digest = (data.get("annotations") or {}).pop(SECRETS_DIGEST_ANNOTATION, None)
    environment = data.get("environment")
    if isinstance(environment, dict) and isinstance(environment.get("secrets"), dict):
        environment["secrets"] = {"names": sorted(environment["secrets"]), "digest": digest}
    elif digest is not None:
        data["environment"] = {**(environment or {}), "secrets": {"digest": digest}}
    return _prune(data)


def same_service(wanted: dict[str, Any], stored: dict[str, Any]) -> bool:
    """True when the stored service is what `wanted` (a request body, with its secrets digest) would store."""
    federation = wanted.get("federation")
    wanted_federation = federation if isinstance(federation, dict) else None
    return bool(_comparable(wanted, False, None) == _comparable(stored, True, wanted_federation))


def differences(wanted: dict[str, Any], stored: dict[str, Any]) -> list[str]:
    """Top-level keys that differ (for a message saying what an update changes)."""
    federation = wanted.get("federation")
    left = _comparable(wanted, False, None)
    right = _comparable(stored, True, federation if isinstance(federation, dict) else None)
    return sorted(key for key in set(left) | set(right) if left.get(key) != right.get(key))
