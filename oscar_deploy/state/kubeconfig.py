"""Merging a cluster's admin kubeconfig into the user's (`~/.kube/config`), under a context named after it.

The merge replaces only the cluster, user and context of that name, keeps every other entry, and writes
the file atomically with mode 0600: it holds client keys. Merging twice gives the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import atomic_write

SECTIONS = ("clusters", "users", "contexts")


def _load(path: Path, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path}: {what} is not valid YAML ({exc}); fix or move it, then run again") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: {what} is not a kubeconfig mapping; fix or move it, then run again")
    return data


def _single(data: dict[str, Any], section: str, path: Path) -> dict[str, Any]:
    entries = data.get(section) or []
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise OperationError(f"{path}: expected exactly one entry in `{section}`; fetch the kubeconfig again with `up`")
    entry: dict[str, Any] = entries[0]
    return entry


def merge_kubeconfig(source: Path, target: Path, context: str, switch: bool = True) -> str | None:
    """Merge the one cluster of `source` into `target` as `context`; returns the previous current context."""
    cluster_config = _load(source, "the cluster's kubeconfig")
    cluster = _single(cluster_config, "clusters", source)
    user = _single(cluster_config, "users", source)
    merged = _load(target, "your kubeconfig") if target.is_file() else {}
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    merged.setdefault("preferences", {})
    for section in SECTIONS:
        if not isinstance(merged.get(section) or [], list):
            raise UserInputError(f"{target}: `{section}` is not a list; fix the file, then run again")
    new_entries = {
        "clusters": {"name": context, "cluster": cluster.get("cluster", {})},
        "users": {"name": context, "user": user.get("user", {})},
        "contexts": {"name": context, "context": {"cluster": context, "user": context}},
    }
    for section, entry in new_entries.items():
        kept = [
            item for item in merged.get(section) or [] if not (isinstance(item, dict) and item.get("name") == context)
        ]
        merged[section] = [*kept, entry]
    previous = merged.get("current-context") or None
    if switch or not previous:
        merged["current-context"] = context
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(target, yaml.safe_dump(merged, sort_keys=False, default_flow_style=False), 0o600)
    return str(previous) if previous else None
