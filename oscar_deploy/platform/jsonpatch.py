"""A small RFC 6902 subset (add, replace, remove) for our patches of third-party manifests.

Kept strict on purpose: a path that does not exist (other than the last token of an `add`) is an error, so a
changed upstream manifest is noticed instead of patched somewhere else.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from oscar_deploy.platform.model import JsonPatch, KubeObject
from oscar_deploy.support.errors import OperationError


def _tokens(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with '/'")
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def apply_operations(obj: KubeObject, operations: Iterable[dict[str, Any]], where: str) -> KubeObject:
    """A patched deep copy of `obj`; `where` names the object in error messages."""
    result = copy.deepcopy(obj)
    for operation in operations:
        op, path = operation["op"], operation["path"]
        *parents, last = _tokens(path)
        node: Any = result
        for token in parents:
            node = _child(node, token, where, path)
        if isinstance(node, list):
            if op == "add" and last == "-":
                node.append(copy.deepcopy(operation["value"]))
                continue
            index = _index(last, node, where, path, allow_end=op == "add")
            if op == "add":
                node.insert(index, copy.deepcopy(operation["value"]))
            elif op == "replace":
                node[index] = copy.deepcopy(operation["value"])
            else:
                del node[index]
        elif isinstance(node, dict):
            if op != "add" and last not in node:
                raise OperationError(f"{where}: patch {op} {path}: no such field in the upstream manifest")
            if op == "remove":
                del node[last]
            else:
                node[last] = copy.deepcopy(operation["value"])
        else:
            raise OperationError(f"{where}: patch {op} {path}: parent is not an object or a list")
    return result


def _child(node: Any, token: str, where: str, path: str) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list):
        return node[_index(token, node, where, path, allow_end=False)]
    raise OperationError(f"{where}: patch {path}: {token!r} not found in the upstream manifest")


def _index(token: str, node: list[Any], where: str, path: str, allow_end: bool) -> int:
    if not token.isdigit() or int(token) > len(node) or (int(token) == len(node) and not allow_end):
        raise OperationError(f"{where}: patch {path}: no list item {token}")
    return int(token)


def apply_patches(objects: list[KubeObject], patches: Iterable[JsonPatch], source: str) -> list[KubeObject]:
    """`objects` with every patch applied to the one object it targets; a patch matching none is an error."""
    result = list(objects)
    for patch in patches:
        target = f"{source}: {patch.kind} {patch.namespace + '/' if patch.namespace else ''}{patch.name}"
        hits = [i for i, obj in enumerate(result) if patch.matches(obj)]
        if len(hits) != 1:
            raise OperationError(f"{target}: expected once in the upstream manifest, found {len(hits)} times")
        result[hits[0]] = apply_operations(result[hits[0]], patch.operations, target)
    return result
