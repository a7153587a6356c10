"""Node and pod objects in the shapes the Kubernetes API serves them (as in tests/data/kube), built for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# API responses in the shapes a k3s API server with Kueue serves them (test data, see its README).
RECORDED = Path(__file__).parents[2] / "data" / "kube"


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(
    name: str,
    ready: bool = True,
    since: float = 0.0,
    cordoned: bool = False,
    server: bool = False,
    cpu: str = "2",
    memory: str = "4Gi",
    arch: str = "amd64",
) -> dict[str, Any]:
    labels = {"kubernetes.io/arch": arch, "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if server:
        labels["node-role.kubernetes.io/control-plane"] = "true"
    spec: dict[str, Any] = {"providerID": f"k3s://{name}"}
    if cordoned:
        spec["unschedulable"] = True
    condition = {
        "type": "Ready",
        "status": "True" if ready else "Unknown",
        "lastTransitionTime": stamp(since),
        "reason": "KubeletReady" if ready else "NodeStatusUnknown",
    }
    return {
        "kind": "Node",
        "metadata": {"name": name, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), "labels": labels},
        "spec": spec,
        "status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [condition],
            "nodeInfo": {"architecture": arch},
        },
    }


def pod(
    namespace: str,
    name: str,
    node_name: str | None,
    cpu: str = "500m",
    memory: str = "512Mi",
    owner: str = "ReplicaSet",
    created: float = 0.0,
    phase: str | None = None,
) -> dict[str, Any]:
    api = "batch/v1" if owner == "Job" else "apps/v1"
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{namespace}/{name}")),
        "creationTimestamp": stamp(created),
        "ownerReferences": [{"apiVersion": api, "kind": owner, "name": f"{name}-owner", "controller": True}],
    }
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "example", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
    }
    if node_name:
        spec["nodeName"] = node_name
    return {
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {"phase": phase or ("Running" if node_name else "Pending")},
    }
