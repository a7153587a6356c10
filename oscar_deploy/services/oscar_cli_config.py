"""An entry for the cluster in upstream's oscar-cli configuration (`~/.oscar-cli/config.yaml`).

Format (grycap/oscar-cli `pkg/config/config.go`, `pkg/cluster/cluster.go`):

    oscar:
      <cluster id>:
        endpoint: https://...
        auth_user: oscar
        auth_password: ...
        ssl_verify: true
        memory: 256Mi
        log_level: INFO
    default: <cluster id>

oscar-cli keeps the password in that file (0600, folder 0700), as `oscar-cli cluster add` does; writing the file
ourselves keeps the password off every command line. oscar-cli has no CA-file setting: for a self-signed cluster
it verifies against the CA bundle named by SSL_CERT_FILE (Go's standard variable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oscar_deploy.state.endpoints import OscarAccess
from oscar_deploy.support.errors import UserInputError

DEFAULT_CONFIG = Path("~/.oscar-cli/config.yaml")
DEFAULT_MEMORY = "256Mi"
DEFAULT_LOG_LEVEL = "INFO"


def write_cluster_entry(config_path: Path, access: OscarAccess, make_default: bool) -> bool:
    """Add or replace the cluster's entry; returns whether it became the default cluster."""
    import yaml

    from oscar_deploy.support.files import atomic_write

    if access.user is None or access.password is None:
        raise UserInputError(
            "oscar-cli config: needs basic-auth credentials; a bearer token cannot be stored there "
            "(oscar-cli reads OIDC tokens from oidc-agent)"
        )
    path = config_path.expanduser()
    config: dict[str, Any] = {}
    if path.is_file():
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict) or not isinstance(loaded.get("oscar", {}), dict):
            raise UserInputError(f"{path}: not an oscar-cli configuration (expected `oscar:` with clusters)")
        config = loaded
    clusters: dict[str, Any] = config.setdefault("oscar", {}) or {}
    config["oscar"] = clusters
    previous = clusters.get(access.cluster_id) or {}
    clusters[access.cluster_id] = {
        "endpoint": access.url,
        "auth_user": access.user,
        "auth_password": access.password,
        "ssl_verify": True,
        "memory": previous.get("memory", DEFAULT_MEMORY),
        "log_level": previous.get("log_level", DEFAULT_LOG_LEVEL),
    }
    became_default = make_default or not config.get("default") or config.get("default") not in clusters
    if became_default:
        config["default"] = access.cluster_id
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, yaml.safe_dump(config, sort_keys=True), 0o600)
    return bool(became_default)
