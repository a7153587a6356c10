"""The autoscaler's ServiceAccount, token Secret and RBAC: valid objects, and only the verbs its loop uses."""

from __future__ import annotations

import stat
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from oscar_deploy.autoscaler.decisions import run_lock
from oscar_deploy.autoscaler.service import ensure_kubeconfig, kubeconfig_text
from oscar_deploy.platform.autoscaler import AUTOSCALER_TOKEN_SECRET, autoscaler_access_objects
from oscar_deploy.spec.catalogue import load_catalogue
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import OperationError, UserInputError
from tests.doubles.kube_api import KubeApi


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
        {
            "apiGroups": ["kueue.x-k8s.io"],
            "resources": ["workloads", "clusterqueues", "localqueues"],
            "verbs": ["get", "list", "watch"],
        },
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


def test_its_kubeconfig_is_written_once_from_the_token_secret(state_home: Path) -> None:
    api = KubeApi()
    try:
        state = ClusterState("lab").ensure()
        admin = yaml.safe_load(api.write_kubeconfig(state.kubeconfig_file).read_text())
        admin["clusters"][0]["cluster"]["certificate-authority-data"] = "Q0EgZGF0YQ=="
        state.kubeconfig_file.write_text(yaml.safe_dump(admin))
        with pytest.raises(OperationError) as missing:
            ensure_kubeconfig(state)
        assert str(missing.value) == (
            "cluster lab: no token in secret oscar/oscar-autoscaler-token (the autoscaler's ServiceAccount); set "
            "platform.autoscaler.enabled: true and run `oscar-deploy up`"
        )
        api.secrets[("oscar", AUTOSCALER_TOKEN_SECRET)] = {"token": "eyJhbGciOi.autoscaler.token", "ca.crt": "x"}
        path = ensure_kubeconfig(state)
        assert path == state.path / "autoscaler" / "kubeconfig"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert yaml.safe_load(path.read_text()) == {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "cluster", "cluster": {"server": api.url, "certificate-authority-data": "Q0EgZGF0YQ=="}}
            ],
            "users": [{"name": "oscar-autoscaler", "user": {"token": "eyJhbGciOi.autoscaler.token"}}],
            "contexts": [{"name": "oscar-autoscaler", "context": {"cluster": "cluster", "user": "oscar-autoscaler"}}],
            "current-context": "oscar-autoscaler",
        }
        reads = [p for p in api.requests if "secrets" in p]
        assert reads == ["/api/v1/namespaces/oscar/secrets/oscar-autoscaler-token"] * 2
        assert ensure_kubeconfig(state) == path
        assert [p for p in api.requests if "secrets" in p] == reads, (
            "written once; the admin kubeconfig is not used again"
        )
    finally:
        api.stop()


def test_its_kubeconfig_is_written_into_the_folder_the_run_lock_made(state_home: Path) -> None:
    api = KubeApi()
    try:
        state = ClusterState("lab").ensure()
        api.write_kubeconfig(state.kubeconfig_file)
        api.secrets[("oscar", AUTOSCALER_TOKEN_SECRET)] = {"token": "eyJhbGciOi.autoscaler.token"}
        with run_lock(state.path / "autoscaler", "lab"):
            assert ensure_kubeconfig(state).is_file()
    finally:
        api.stop()


def test_without_the_clusters_kubeconfig_it_says_to_run_up(state_home: Path) -> None:
    state = ClusterState("lab").ensure()
    with pytest.raises(UserInputError) as missing:
        ensure_kubeconfig(state)
    assert str(missing.value) == f"cluster lab: no kubeconfig in {state.path}; run `oscar-deploy up` first"


@pytest.mark.parametrize(
    "text",
    [
        "clusters: [{cluster: {server: ''}}]",
        "clusters: [{cluster: {server: 6443}}]",
        "clusters: [{cluster: [https://127.0.0.1:6443]}]",
        "clusters: [{name: lab}]",
        "clusters: [https://127.0.0.1:6443]",
        "clusters: []",
        "clusters: {cluster: {server: https://127.0.0.1:6443}}",
        "[clusters]",
        "clusters: [",
        "",
    ],
)
def test_an_admin_kubeconfig_naming_no_api_server_is_one_line(state_home: Path, text: str) -> None:
    state = ClusterState("lab").ensure()
    state.kubeconfig_file.write_text(text)
    state.kubeconfig_file.chmod(0o600)
    with pytest.raises(OperationError) as broken:
        ensure_kubeconfig(state)
    assert str(broken.value) == f"{state.kubeconfig_file}: names no API server; fetch it again with `oscar-deploy up`"


def test_an_admin_kubeconfig_others_may_read_is_refused(state_home: Path) -> None:
    state = ClusterState("lab").ensure()
    state.kubeconfig_file.write_text("clusters: [{cluster: {server: 'https://127.0.0.1:6443'}}]")
    state.kubeconfig_file.chmod(0o640)
    with pytest.raises(UserInputError, match=r"kubeconfig: mode 0640 lets other users read or change the cluster's "):
        ensure_kubeconfig(state)


def test_the_kubeconfig_keeps_the_clusters_ca() -> None:
    text = kubeconfig_text("https://127.0.0.1:6443", "Q0EgZGF0YQ==", "token")
    cluster = yaml.safe_load(text)["clusters"][0]["cluster"]
    assert cluster == {"server": "https://127.0.0.1:6443", "certificate-authority-data": "Q0EgZGF0YQ=="}
