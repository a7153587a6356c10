"""The platform's Pulumi program run for real under `pulumi.runtime.set_mocks`: what it declares and exports.

The mocks stand for the Pulumi engine and the Kubernetes provider (they echo each resource's inputs as its
outputs, https://www.pulumi.com/docs/using-pulumi/testing/unit/); the third-party manifests are the labelled
stand-ins of tests/doubles/release_manifests.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from oscar_deploy.pipeline.platform_phases import CLAIM_KIND
from oscar_deploy.platform.manifests import ManifestCache
from oscar_deploy.platform.model import PlatformInputs, PlatformObjects, PlatformSecrets
from oscar_deploy.platform.objects import build_platform, local_data_claims
from oscar_deploy.platform.stack import PROJECT, declare_platform, outputs, program
from oscar_deploy.spec.catalogue import load_catalogue
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.support.layers import layer_dir
from tests.doubles.release_manifests import stand_in_text, stand_in_texts

PASSWORDS = ("oscar-pass-Zq81", "minio-user-Kd02", "minio-pass-Wx77")
# How the Python SDK marks a secret input on the wire (pulumi.runtime.rpc: _special_sig_key / secret sig).
SECRET_SIGNATURE = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}

    def inputs(self, typ: str, name: str) -> dict[str, Any]:
        (found,) = [r.inputs for r in self.resources if r.typ == typ and r.name == name]
        return found


@pytest.fixture
def mocks() -> Recorder:
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project=PROJECT, stack="test", preview=False)
    return recorder


def secret_inputs() -> PlatformSecrets[Any]:
    return PlatformSecrets(*(pulumi.Output.secret(value) for value in PASSWORDS))


def is_secret_marked(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIGNATURE[0]) == SECRET_SIGNATURE[1]


def unwrap(value: Any) -> Any:
    return value["value"] if is_secret_marked(value) else value


def walk(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [node] + [x for value in node.values() for x in walk(value)]
    if isinstance(node, list):
        return [x for value in node for x in walk(value)]
    return [node]


def declare(spec_text: str) -> tuple[PlatformObjects, dict[str, Any]]:
    secrets = secret_inputs()
    platform = build_platform(PlatformInputs(parse_spec(spec_text), load_catalogue(), secrets, "203.0.113.5"))
    declare_platform(platform, stand_in_texts(platform.third_party))
    return platform, outputs(platform, secrets, "oscar")


def settle(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bool]]:
    """Resolve the exported outputs inside the mocked engine (it waits for every registration)."""
    resolved: dict[str, Any] = {}
    secret_flags: dict[str, bool] = {}

    @pulumi.runtime.test
    def check() -> pulumi.Output[Any]:
        waits = []
        for key, value in values.items():
            output = pulumi.Output.from_input(value)
            waits.append(output.apply(lambda v, k=key: resolved.__setitem__(k, v)))
            flag = pulumi.Output.from_input(output.is_secret())
            waits.append(flag.apply(lambda s, k=key: secret_flags.__setitem__(k, s)))
        return pulumi.Output.all(*waits)

    check()
    assert set(resolved) == set(secret_flags) == set(values)
    return resolved, secret_flags


def test_program_declares_the_contract(mocks: Recorder) -> None:
    _, exported = declare("name: demo\n")
    settle(exported)
    deployment = mocks.inputs("kubernetes:apps/v1:Deployment", "oscar-deployment-oscar")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item for item in container["env"]}
    assert env["SERVERLESS_BACKEND"]["value"] == "knative"
    assert env["KUEUE_ENABLE"]["value"] == "false"
    assert env["STORAGE_CLASS_NAME"]["value"] == "oscar-nfs"
    assert env["MINIO_ENDPOINT"]["value"] == "http://minio.minio:9000"
    assert env["OSCAR_PASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": "oscar-manager", "key": "OSCAR_PASSWORD"}}
    assert container["image"] == "ghcr.io/grycap/oscar:4.1.2"

    pvc = mocks.inputs("kubernetes:core/v1:PersistentVolumeClaim", "oscar-svc-persistentvolumeclaim-oscar-pvc")
    assert (pvc["spec"]["storageClassName"], pvc["spec"]["accessModes"]) == ("oscar-nfs", ["ReadWriteMany"])
    assert mocks.inputs("kubernetes:storage.k8s.io/v1:StorageClass", "storageclass-oscar-nfs")["provisioner"]
    namespaces = {r.inputs["metadata"]["name"] for r in mocks.resources if r.typ == "kubernetes:core/v1:Namespace"}
    assert {"oscar", "oscar-svc", "minio", "traefik", "nfs-provisioner"} <= namespaces

    role = mocks.inputs("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "clusterrole-oscar-controller-global")
    rules = {(g, r): rule["verbs"] for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules[("", "nodes")] == ["get", "list", "watch"] and ("metrics.k8s.io", "nodes") in rules

    minio = mocks.inputs("kubernetes:apps/v1:Deployment", "minio-deployment-minio")["spec"]["template"]["spec"]
    minio_env = {item["name"]: item for item in minio["containers"][0]["env"]}
    assert minio_env["MINIO_SITE_REGION"]["value"] == env["MINIO_REGION"]["value"] == "us-east-1"

    services_secret = mocks.inputs("kubernetes:core/v1:Secret", "oscar-svc-secret-minio")
    assert services_secret["metadata"]["namespace"] == "oscar-svc"
    assert is_secret_marked(services_secret["stringData"])
    assert unwrap(services_secret["stringData"]) == {
        "accessKey": "minio-user-Kd02",
        "secretKey": "minio-pass-Wx77",
        "oidc_uid": "minio",
    }


def test_the_claims_a_drift_check_can_make_again_are_named_as_their_warning_names_them(mocks: Recorder) -> None:
    """`up --check-drift` names a claim it made again by the kind in its type and its ID (`namespace/name` in
    pulumi-kubernetes), and says what was lost with it from `local_data_claims`, as `scale` does. The stack declares
    two claims; MinIO's is described there (the NFS server's described claim is its StatefulSet's, made by the
    StatefulSet controller, not by the stack)."""
    _, exported = declare("name: demo\n")
    settle(exported)
    claim_type = "kubernetes:core/v1:PersistentVolumeClaim"
    claims = {
        f"{r.inputs['metadata']['namespace']}/{r.inputs['metadata']['name']}"
        for r in mocks.resources
        if r.typ == claim_type
    }
    assert claims == {"minio/minio-data", "oscar-svc/oscar-pvc"}
    assert claim_type.rsplit(":", 1)[-1] == CLAIM_KIND
    assert claims & set(local_data_claims()) == {"minio/minio-data"}


def test_third_party_manifests_are_declared_with_our_patches(mocks: Recorder) -> None:
    _, exported = declare("name: demo\n")
    settle(exported)
    features = mocks.inputs(
        "kubernetes:core/v1:ConfigMap", "knative_serving-knative-serving-configmap-config-features"
    )["data"]
    assert features["kubernetes.podspec-persistent-volume-claim"] == "enabled"
    assert features["kubernetes.podspec-persistent-volume-write"] == "enabled"
    network = mocks.inputs("kubernetes:core/v1:ConfigMap", "knative_serving-knative-serving-configmap-config-network")
    assert network["data"]["ingress-class"] == "kourier.ingress.networking.knative.dev"
    kourier = mocks.inputs("kubernetes:core/v1:Service", "kourier-kourier-system-service-kourier")
    assert kourier["spec"]["type"] == "ClusterIP"
    cert_manager = mocks.inputs("kubernetes:apps/v1:Deployment", "cert_manager-cert-manager-deployment-cert-manager")
    assert "--enable-gateway-api" in cert_manager["spec"]["template"]["spec"]["containers"][0]["args"]
    crd = [r for r in mocks.resources if r.typ == "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"]
    assert [r.inputs["metadata"]["name"] for r in crd] == ["services.serving.knative.dev"]


def test_images_pinned_and_no_password_in_any_env_value(mocks: Recorder) -> None:
    _, exported = declare("name: demo\n")
    settle(exported)
    images, env_values = [], []
    for resource in mocks.resources:
        for node in walk(resource.inputs):
            if isinstance(node, dict) and isinstance(node.get("image"), str):
                images.append(node["image"])
            if isinstance(node, dict) and isinstance(node.get("env"), list):
                env_values += [item.get("value") for item in node["env"]]
    assert images and env_values
    for image in images:
        reference = image.partition("@")[0]
        assert ":" in reference.rsplit("/", 1)[-1] and not reference.endswith(":latest"), image
    assert not set(PASSWORDS) & set(env_values)
    plain_leaves = [
        leaf
        for resource in mocks.resources
        if resource.typ != "kubernetes:core/v1:Secret"
        for leaf in walk(resource.inputs)
        if isinstance(leaf, str)
    ]
    assert not set(PASSWORDS) & set(plain_leaves)
    for resource in mocks.resources:
        if resource.typ == "kubernetes:core/v1:Secret":
            assert is_secret_marked(resource.inputs["stringData"]), resource.name


def test_every_credential_output_is_secret_and_nothing_else_is(mocks: Recorder) -> None:
    _, exported = declare("name: demo\n")
    values, secret_flags = settle(exported)
    assert {key for key, flag in secret_flags.items() if flag} == {"oscarPassword", "minioAccessKey", "minioSecretKey"}
    assert values["oscarPassword"] == "oscar-pass-Zq81"
    assert values["oscarUrl"] == "https://203.0.113.5.sslip.io"
    assert values["dashboardUrl"] == "https://203.0.113.5.sslip.io/ui"
    assert values["minioUrl"] == "https://minio.203.0.113.5.sslip.io"
    assert values["caCertificateSecret"] == {"namespace": "cert-manager", "name": "oscar-ca", "key": "ca.crt"}


@pytest.mark.parametrize(
    ("spec_text", "mode", "issuers"),
    [
        ("name: demo\n", "selfsigned", {"clusterissuer-oscar-selfsigned", "clusterissuer-oscar-ca"}),
        (
            "name: demo\nplatform:\n  domain: oscar.example.org\n  acme_email: ops@example.org\n",
            "letsencrypt",
            {"clusterissuer-oscar-letsencrypt"},
        ),
    ],
)
def test_tls_mode_chosen_from_the_spec(mocks: Recorder, spec_text: str, mode: str, issuers: set[str]) -> None:
    _, exported = declare(spec_text)
    values, _ = settle(exported)
    assert values["tlsMode"] == mode
    declared = {r.name for r in mocks.resources if r.typ == "kubernetes:cert-manager.io/v1:ClusterIssuer"}
    assert declared == issuers
    assert ("caCertificateSecret" in values) == (mode == "selfsigned")


def test_program_reads_its_configuration(mocks: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The program reads its config, exactly the keys stacks/platform/Pulumi.yaml declares: Pulumi accepts a key
    of the project's namespace that the project does not declare without a word (pulumi/pulumi
    sdk/go/common/workspace/config.go, mergeConfig checks only declared keys), so nothing else catches a missing
    declaration."""
    read: list[str] = []
    runtime_get_config = pulumi.config.get_config

    def recording_get_config(key: str) -> Any:
        read.append(key)
        return runtime_get_config(key)

    monkeypatch.setattr(pulumi.config, "get_config", recording_get_config)
    spec_file = tmp_path / "cluster.yaml"
    spec_file.write_text("name: demo\nplatform:\n  storage_class: cephfs\n")
    cache = tmp_path / "manifests"
    platform = build_platform(
        PlatformInputs(parse_spec(spec_file.read_text()), load_catalogue(), secret_inputs(), "203.0.113.5")
    )
    filler = ManifestCache(cache, fetch=lambda url: _text_for(platform, url).encode())
    for manifest in platform.third_party:
        filler.text(manifest)
    pulumi.runtime.set_all_config(
        {
            f"{PROJECT}:specFile": str(spec_file),
            f"{PROJECT}:publicAddress": "203.0.113.5",
            f"{PROJECT}:manifestCache": str(cache),
            f"{PROJECT}:oscarPassword": PASSWORDS[0],
            f"{PROJECT}:minioAccessKey": PASSWORDS[1],
            f"{PROJECT}:minioSecretKey": PASSWORDS[2],
        },
        [f"{PROJECT}:oscarPassword", f"{PROJECT}:minioAccessKey", f"{PROJECT}:minioSecretKey"],
    )
    try:

        @pulumi.runtime.test
        def run() -> None:
            program(tmp_path)

        run()
    finally:
        pulumi.runtime.set_all_config({})
    declared = yaml.safe_load((layer_dir("stacks") / "platform" / "Pulumi.yaml").read_text())["config"]
    assert set(read) == set(declared), "the program reads exactly the keys stacks/platform/Pulumi.yaml declares"
    pvc = mocks.inputs("kubernetes:core/v1:PersistentVolumeClaim", "oscar-svc-persistentvolumeclaim-oscar-pvc")
    assert pvc["spec"]["storageClassName"] == "cephfs"
    assert not [r for r in mocks.resources if r.typ == "kubernetes:storage.k8s.io/v1:StorageClass"]
    manager = mocks.inputs("kubernetes:core/v1:Secret", "oscar-secret-oscar-manager")
    assert is_secret_marked(manager["stringData"])
    assert unwrap(manager["stringData"])["OSCAR_PASSWORD"] == PASSWORDS[0]


def _text_for(platform: PlatformObjects, url: str) -> str:
    (manifest,) = [m for m in platform.third_party if m.url == url]
    return stand_in_text(manifest)


def test_top_level_manifest_keys_become_the_typed_resources_arguments() -> None:
    from oscar_deploy.platform.stack import argument_name

    assert [argument_name(key) for key in ("metadata", "stringData", "roleRef", "volumeBindingMode", "type")] == [
        "metadata",
        "string_data",
        "role_ref",
        "volume_binding_mode",
        "type",
    ]
