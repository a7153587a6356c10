"""Does the service on the server already match its definition? (`service apply` answers "unchanged" then.)

What `GET /system/services/{name}` returns is the service as OSCAR v4.1.2 stored it, so both sides are brought
to one form before comparing:

- Go drops nothing it knows and writes every field back, zero values included: a key left out and its zero value
  ("", 0, false, an empty list or map) mean the same, so both are pruned.
- Keys the server fills in from its own state are not compared: the token, owner, namespace, bucket list, volume
  status and deployment summary; the labels create.go's `checkValues` adds (`oscar_service`, the YuniKorn and
  user-service labels, `owner_name`, and for OIDC users `uid`, `vo` and the Kueue queue); the `minio.default`
  provider it writes with hidden credentials.
- Secret values come back empty (create.go keeps the keys and blanks the values after moving them into a
  Kubernetes Secret), so only their names compare; whether the values changed is told by an HMAC of them that
  `with_secrets_digest` puts in an annotation, keyed with the credential the client authenticates with. The
  annotation tells nothing about the values to anyone without that credential.
- A federation's group id and delegation, when the definition leaves them out, are whatever the server chose.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

SECRETS_DIGEST_ANNOTATION = "oscar-deploy/secrets-hmac"
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


def secrets_digest(secrets: dict[str, str], key: str) -> str:
    """HMAC-SHA256 of the secrets (names and values), keyed with a credential the server never returns."""
    canonical = json.dumps(secrets, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key.encode(), canonical, hashlib.sha256).hexdigest()


def with_secrets_digest(body: dict[str, Any], key: str) -> dict[str, Any]:
    """A copy of `body` whose annotations carry the digest of its secrets (none when it has no secrets)."""
    result = copy.deepcopy(body)
    secrets = (result.get("environment") or {}).get("secrets") or {}
    annotations = dict(result.get("annotations") or {})
    annotations.pop(SECRETS_DIGEST_ANNOTATION, None)
    if secrets:
        annotations[SECRETS_DIGEST_ANNOTATION] = secrets_digest(secrets, key)
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
    environment = data.get("environment")
    if isinstance(environment, dict) and isinstance(environment.get("secrets"), dict):
        environment["secrets"] = sorted(environment["secrets"])
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
