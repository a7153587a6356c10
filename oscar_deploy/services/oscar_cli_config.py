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

from collections.abc import Callable
from pathlib import Path
from typing import Any

from oscar_deploy.state.endpoints import OscarAccess
from oscar_deploy.support.errors import UserInputError

DEFAULT_CONFIG = Path("~/.oscar-cli/config.yaml")
DEFAULT_MEMORY = "256Mi"
DEFAULT_LOG_LEVEL = "INFO"


def is_cli_config(text: str) -> bool:
    """Whether `text` is an oscar-cli configuration (or empty): what may be rewritten without asking."""
    import yaml

    from oscar_deploy.spec.yamlcheck import load_yaml

    try:
        _, data = load_yaml(text)
    except yaml.YAMLError:
        return False
    if data is None:
        return True
    return (
        isinstance(data, dict) and isinstance(data.get("oscar"), dict) and set(map(str, data)) <= {"oscar", "default"}
    )


def write_cluster_entry(
    config_path: Path, access: OscarAccess, make_default: bool, confirm: Callable[[str], bool] | None = None
) -> bool:
    """Add or replace the cluster's entry; returns whether it became the default cluster.

    Any other file at `config_path` (a cluster spec, a device) is not replaced unless `confirm` allows it.
    """
    import yaml

    from oscar_deploy.spec.yamlcheck import load_yaml
    from oscar_deploy.support.files import check_write_target, read_user_text, write_user_file

    if access.user is None or access.password is None:
        raise UserInputError(
            "oscar-cli config: needs basic-auth credentials; a bearer token cannot be stored there "
            "(oscar-cli reads OIDC tokens from oidc-agent)"
        )
    path = config_path.expanduser()
    target = check_write_target(
        path, "oscar-cli configuration", create_parents=True, of_kind=is_cli_config, confirm=confirm
    )
    config: dict[str, Any] = {}
    if target.is_file():
        text = read_user_text(target, "oscar-cli configuration")
        if is_cli_config(text):
            config = load_yaml(text)[1] or {}
    clusters: dict[str, Any] = config.setdefault("oscar", {}) or {}
    config["oscar"] = clusters
    previous = clusters.get(access.cluster_id)
    previous = previous if isinstance(previous, dict) else {}
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
    write_user_file(
        target, yaml.safe_dump(config, sort_keys=True), "oscar-cli configuration", 0o600, create_parents=True
    )
    return bool(became_default)
