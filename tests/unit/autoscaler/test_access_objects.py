"""The autoscaler's ServiceAccount, token Secret and RBAC: valid objects, and only the verbs its loop uses."""

from __future__ import annotations

import kubernetes_validate

from oscar_deploy.platform.autoscaler import AUTOSCALER_TOKEN_SECRET, autoscaler_access_objects
from oscar_deploy.spec.catalogue import load_catalogue


def k3s_minor() -> str:
    version = load_catalogue().version("k3s").lstrip("v")
    return ".".join(version.split(".")[:2])


def test_objects_are_valid_kubernetes_objects() -> None:
    objects = autoscaler_access_objects()
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ServiceAccount", "oscar-autoscaler"),
        ("Secret", AUTOSCALER_TOKEN_SECRET),
        ("ClusterRole", "oscar-autoscaler"),
        ("ClusterRoleBinding", "oscar-autoscaler"),
    ]
    for obj in objects:
        kubernetes_validate.validate(obj, k3s_minor(), strict=True)


def test_least_privilege_rules() -> None:
    account, token, role, binding = autoscaler_access_objects()
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": ["kueue.x-k8s.io"], "resources": ["workloads"], "verbs": ["get", "list", "watch"]},
    ]
    assert not any("delete" in rule["verbs"] or "secrets" in rule["resources"] for rule in role["rules"])
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "oscar-autoscaler", "namespace": "oscar"}]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "oscar-autoscaler",
    }
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "oscar-autoscaler"}
    assert "data" not in token and "stringData" not in token, "Kubernetes fills the token in; we never write one"
    assert account["metadata"]["namespace"] == token["metadata"]["namespace"] == "oscar"
