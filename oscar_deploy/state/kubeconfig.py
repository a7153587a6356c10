"""Merging a cluster's admin kubeconfig into the user's (`~/.kube/config`), under a context named after it.

The merge replaces only the cluster, user and context of that name, keeps every other entry, and writes
the file atomically with mode 0600: it holds client keys. Merging twice gives the same file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from oscar_deploy.spec.yamlcheck import load_yaml
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import check_write_target, read_user_text, shown_path, write_user_file

SECTIONS = ("clusters", "users", "contexts")


KUBECONFIG_KEYS = frozenset({"apiVersion", "kind", "clusters", "users", "contexts", "current-context", "preferences"})


def is_kubeconfig(text: str) -> bool:
    """Whether `text` is a kubeconfig (or empty): what a merge may replace without asking."""
    try:
        _, data = load_yaml(text)
    except yaml.YAMLError:
        return False
    return data is None or (isinstance(data, dict) and (not data or _looks_like_kubeconfig(data)))


def _looks_like_kubeconfig(data: dict[Any, Any]) -> bool:
    return data.get("kind") == "Config" or set(map(str, data)) <= KUBECONFIG_KEYS | {"extensions"}


def _load(path: Path, what: str) -> dict[str, Any]:
    source = shown_path(path)
    text = read_user_text(path, what)
    try:
        _, data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise UserInputError(f"{where}: {what} is not valid YAML ({problem}); fix or move it, then run again") from None
    data = data or {}
    if not isinstance(data, dict):
        raise UserInputError(f"{source}: {what} is not a kubeconfig mapping; fix or move it, then run again")
    return data


def _single(data: dict[str, Any], section: str, path: Path) -> dict[str, Any]:
    entries = data.get(section) or []
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise OperationError(f"{path}: expected exactly one entry in `{section}`; fetch the kubeconfig again with `up`")
    entry: dict[str, Any] = entries[0]
    return entry


def merge_kubeconfig(
    source: Path,
    target: Path,
    context: str,
    switch: bool = True,
    confirm: Callable[[str], bool] | None = None,
) -> str | None:
    """Merge the one cluster of `source` into `target` as `context`; returns the previous current context.

    `target` must be a kubeconfig, a new file, or a file `confirm` allows to replace (it holds client keys
    afterwards, so a spec or a device is never written over without a word).
    """
    cluster_config = _load(source, "the cluster's kubeconfig")
    cluster = _single(cluster_config, "clusters", source)
    user = _single(cluster_config, "users", source)
    file = check_write_target(target, "kubeconfig", create_parents=True)
    merged = _load(file, "your kubeconfig") if file.is_file() else {}
    if merged and not _looks_like_kubeconfig(merged):
        name = shown_path(target)
        if confirm is None or not confirm(f"{name} is not a kubeconfig; replace it?"):
            raise UserInputError(
                f"{name}: exists and is not a kubeconfig, so it is not replaced; move it away or pick another --into"
            )
        merged = {}
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
    text = yaml.safe_dump(merged, sort_keys=False, default_flow_style=False)
    write_user_file(file, text, "kubeconfig", 0o600, create_parents=True)
    return str(previous) if previous else None
