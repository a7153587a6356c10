"""The platform builder: the OSCAR manager contract (v4.1.2) on plain objects, no Kubernetes needed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oscar_deploy.platform.jsonpatch import apply_patches
from oscar_deploy.platform.model import PlatformInputs, PlatformObjects, PlatformSecrets
from oscar_deploy.platform.objects import build_platform, local_data_claims
from oscar_deploy.spec.catalogue import load_catalogue
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.support.errors import UserInputError

SECRETS = PlatformSecrets("oscar-pass-Zq81", "minio-user-Kd02", "minio-pass-Wx77")


def build(spec_text: str = "name: demo\n", address: str | None = "203.0.113.5", **overrides: str) -> PlatformObjects:
    spec = parse_spec(spec_text)
    catalogue = load_catalogue().with_overrides(overrides)
    return build_platform(PlatformInputs(spec, catalogue, SECRETS, address))


def env_of(platform: PlatformObjects) -> dict[str, Any]:
    container = platform.find("Deployment", "oscar", "oscar")["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def walk(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [node] + [x for value in node.values() for x in walk(value)]
    if isinstance(node, list):
        return [x for value in node for x in walk(value)]
    return [node]


def test_manager_backend_kueue_storage_class_and_minio() -> None:
    env = env_of(build())
    assert env["SERVERLESS_BACKEND"] == "knative"
    assert env["KUEUE_ENABLE"] == "false"
    assert env["STORAGE_CLASS_NAME"] == "oscar-nfs"
    assert env["MINIO_ENDPOINT"] == "http://minio.minio:9000"
    assert env["MINIO_REGION"] == "us-east-1"
    assert env["OSCAR_SERVICES_NAMESPACE"] == "oscar-svc"
    assert env["EXPOSED_SERVICES_ROUTE_KIND"] == "httproute"
    assert (env["HTTPROUTE_GATEWAY_NAME"], env["HTTPROUTE_GATEWAY_NAMESPACE"]) == ("traefik-gateway", "traefik")
    assert env["INGRESS_HOST"] == "203.0.113.5.sslip.io"
    for variable, key in [
        ("OSCAR_PASSWORD", "OSCAR_PASSWORD"),
        ("MINIO_ACCESS_KEY", "MINIO_ACCESS_KEY"),
        ("MINIO_SECRET_KEY", "MINIO_SECRET_KEY"),
    ]:
        assert env[variable] == {"secretKeyRef": {"name": "oscar-manager", "key": key}}


def test_minio_region_and_internal_endpoint_agree_with_the_minio_objects() -> None:
    platform = build()
    container = platform.find("Deployment", "minio", "minio")["spec"]["template"]["spec"]["containers"][0]
    minio_env = {item["name"]: item for item in container["env"]}
    assert minio_env["MINIO_SITE_REGION"]["value"] == env_of(platform)["MINIO_REGION"]
    service = platform.find("Service", "minio", "minio")
    api_port = next(port["port"] for port in service["spec"]["ports"] if port["name"] == "api")
    assert env_of(platform)["MINIO_ENDPOINT"] == f"http://{service['metadata']['name']}.minio:{api_port}"
    assert platform.endpoints.minio_internal == env_of(platform)["MINIO_ENDPOINT"]
    volume = platform.find("PersistentVolumeClaim", "minio-data", "minio")
    assert volume["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert (
        build("name: demo\nplatform:\n  minio:\n    storage_size: 200Gi\n").find(
            "PersistentVolumeClaim", "minio-data", "minio"
        )["spec"]["resources"]["requests"]["storage"]
        == "200Gi"
    )


def test_the_claims_named_as_the_platforms_are_those_it_makes_on_the_default_class() -> None:
    """`scale --allow-local-volume-loss` warns about these by `namespace/claim`: every claim the platform makes
    without a StorageClass (the cluster's default, k3s local-path), the StatefulSet's by the controller's naming."""
    platform = build()
    made = [
        f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        for obj in platform.objects
        if obj["kind"] == "PersistentVolumeClaim" and "storageClassName" not in obj["spec"]
    ] + [
        f"{obj['metadata']['namespace']}/{template['metadata']['name']}-{obj['metadata']['name']}-{ordinal}"
        for obj in platform.objects
        if obj["kind"] == "StatefulSet"
        for template in obj["spec"].get("volumeClaimTemplates", [])
        if "storageClassName" not in template["spec"]
        for ordinal in range(obj["spec"]["replicas"])
    ]
    assert (
        sorted(made) == sorted(local_data_claims()) == ["minio/minio-data", "nfs-provisioner/export-nfs-provisioner-0"]
    )


def test_no_secret_value_outside_the_secrets_and_none_in_any_env_value() -> None:
    platform = build()
    values = {SECRETS.oscar_password, SECRETS.minio_access_key, SECRETS.minio_secret_key}
    leaked = [leaf for obj in platform.non_secrets for leaf in walk(obj) if isinstance(leaf, str) and leaf in values]
    assert leaked == []
    env_values = [
        item.get("value")
        for obj in platform.objects
        for node in walk(obj)
        if isinstance(node, dict) and isinstance(node.get("env"), list)
        for item in node["env"]
    ]
    assert env_values and not values & set(env_values)


def test_services_minio_secret_and_manager_credentials() -> None:
    platform = build()
    services = platform.find("Secret", "minio", "oscar-svc")
    assert services["stringData"] == {
        "accessKey": "minio-user-Kd02",
        "secretKey": "minio-pass-Wx77",
        "oidc_uid": "minio",
    }
    root = platform.find("Secret", "minio-root", "minio")
    assert root["stringData"] == {"rootUser": "minio-user-Kd02", "rootPassword": "minio-pass-Wx77"}
    manager = platform.find("Secret", "oscar-manager", "oscar")
    assert set(manager["stringData"]) == {"OSCAR_PASSWORD", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"}
    assert len(platform.secrets) == 3


def test_namespaces_and_rbac() -> None:
    platform = build()
    namespaces = [obj["metadata"]["name"] for obj in platform.objects if obj["kind"] == "Namespace"]
    assert namespaces == ["oscar", "oscar-svc", "minio", "traefik", "nfs-provisioner"]
    assert platform.objects[: len(namespaces)] == [o for o in platform.objects if o["kind"] == "Namespace"]
    global_rules = platform.find("ClusterRole", "oscar-controller-global")["rules"]
    granted = {
        (group, resource): rule["verbs"]
        for rule in global_rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted[("", "nodes")] == ["get", "list", "watch"]
    assert granted[("metrics.k8s.io", "nodes")] == ["get", "list", "watch"]
    assert granted[("metrics.k8s.io", "pods")] == ["get", "list", "watch"]
    for needed in [
        ("", "namespaces"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("", "pods/log"),
        ("", "secrets"),
        ("", "persistentvolumeclaims"),
        ("", "persistentvolumes"),
        ("batch", "jobs"),
        ("apps", "deployments"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("networking.k8s.io", "ingresses"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("traefik.io", "middlewares"),
        ("serving.knative.dev", "services"),
    ]:
        assert {"create", "delete", "get", "list"} <= set(granted[needed]), needed
    binding = platform.find("ClusterRoleBinding", "oscar-controller-global-binding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "oscar-sa", "namespace": "oscar"}]
    role = platform.find("Role", "oscar-controller", "oscar-svc")
    assert any("serving.knative.dev" in rule["apiGroups"] for rule in role["rules"])
    assert (
        platform.find("RoleBinding", "oscar-controller-binding", "oscar-svc")["roleRef"]["name"] == "oscar-controller"
    )
    deployment = platform.find("Deployment", "oscar", "oscar")["spec"]["template"]["spec"]
    assert deployment["serviceAccountName"] == "oscar-sa"
    assert deployment["containers"][0]["securityContext"]["runAsUser"] == 10001


def test_rwx_class_in_cluster_by_default_and_an_existing_one_by_name() -> None:
    default = build()
    assert default.storage_class == "oscar-nfs"
    assert default.find("StorageClass", "oscar-nfs")["provisioner"] == "oscar-deploy.io/nfs"
    pvc = default.find("PersistentVolumeClaim", "oscar-pvc", "oscar-svc")["spec"]
    assert (pvc["storageClassName"], pvc["accessModes"]) == ("oscar-nfs", ["ReadWriteMany"])
    nfs = default.find("StatefulSet", "nfs-provisioner", "nfs-provisioner")["spec"]
    assert nfs["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "50Gi"

    existing = build("name: demo\nplatform:\n  storage_class: cephfs\n")
    assert existing.storage_class == "cephfs"
    assert env_of(existing)["STORAGE_CLASS_NAME"] == "cephfs"
    assert existing.find("PersistentVolumeClaim", "oscar-pvc", "oscar-svc")["spec"]["storageClassName"] == "cephfs"
    kinds = {(o["kind"], o["metadata"]["name"]) for o in existing.objects}
    assert ("StorageClass", "oscar-nfs") not in kinds and ("Namespace", "nfs-provisioner") not in kinds


def test_the_pods_holding_data_on_the_default_class_run_on_a_server() -> None:
    """k3s's default class (local-path) keeps a volume on the disk of one node; workers are scaled in (their disk
    deleted) and powered off by the autoscaler, servers never are. So every workload of ours with a volume of
    the default class is placed on a server, and the rest are left free."""
    platform = build()
    default_class_claims = {
        (obj["metadata"]["namespace"], obj["metadata"]["name"])
        for obj in platform.objects
        if obj["kind"] == "PersistentVolumeClaim" and "storageClassName" not in obj["spec"]
    }
    placed: dict[str, bool] = {}
    for obj in platform.objects:
        if obj["kind"] not in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            continue
        pod = obj["spec"]["template"]["spec"]
        claims = {
            (obj["metadata"]["namespace"], volume["persistentVolumeClaim"]["claimName"])
            for volume in pod.get("volumes", [])
            if "persistentVolumeClaim" in volume
        }
        templates = [t for t in obj["spec"].get("volumeClaimTemplates", []) if "storageClassName" not in t["spec"]]
        if claims & default_class_claims or templates:
            placed[f"{obj['kind']} {obj['metadata']['name']}"] = (
                pod.get("nodeSelector") == {"node-role.kubernetes.io/control-plane": "true"}
                and {"key": "CriticalAddonsOnly", "operator": "Exists"} in pod["tolerations"]
            )
        else:
            assert "nodeSelector" not in pod, obj["metadata"]["name"]
    assert placed == {"Deployment minio": True, "StatefulSet nfs-provisioner": True}
    minio = platform.find("Deployment", "minio", "minio")["spec"]["template"]["spec"]
    nfs = platform.find("StatefulSet", "nfs-provisioner", "nfs-provisioner")["spec"]["template"]["spec"]
    minio["nodeSelector"]["changed"] = "here"
    assert "changed" not in nfs["nodeSelector"], "each object has its own copy"


def test_every_image_is_pinned_and_oscar_has_no_v() -> None:
    platform = build()
    images = [
        node["image"] for obj in platform.objects for node in walk(obj) if isinstance(node, dict) and "image" in node
    ]
    assert "ghcr.io/grycap/oscar:4.1.2" in images
    assert (
        "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z@sha256:"
        "14cea493d9a34af32f524e538b8346cf79f3321eff8e708c1e2960462bd8936e" in images
    )
    assert len(images) == 4  # OSCAR, MinIO, the NFS server, the binaries Job
    for image in images:
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name and tag and tag != "latest", image
    chart = platform.find("HelmChart", "traefik", "kube-system")["spec"]
    assert (chart["version"], chart["repo"]) == ("39.0.9", "https://traefik.github.io/charts")
    overridden = build(minio="registry.example.org/mirror/minio:RELEASE.2025-09-07T16-13-09Z")
    container = overridden.find("Deployment", "minio", "minio")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.org/mirror/minio:RELEASE.2025-09-07T16-13-09Z"


def test_knative_and_kourier_patches() -> None:
    platform = build()
    patched = {}
    for manifest in platform.third_party:
        for patch in manifest.patches:
            patched[(patch.kind, patch.name)] = apply_patches(
                [
                    {
                        "apiVersion": patch.api_version,
                        "kind": patch.kind,
                        "metadata": {"name": patch.name, "namespace": patch.namespace},
                        "data": {},
                        "spec": {"type": "LoadBalancer", "template": {"spec": {"containers": [{"args": ["--v=2"]}]}}},
                    }
                ],
                [patch],
                "test",
            )[0]
    assert patched[("ConfigMap", "config-features")]["data"] == {
        "kubernetes.podspec-persistent-volume-claim": "enabled",
        "kubernetes.podspec-persistent-volume-write": "enabled",
    }
    assert patched[("ConfigMap", "config-network")]["data"] == {
        "ingress-class": "kourier.ingress.networking.knative.dev"
    }
    assert patched[("Service", "kourier")]["spec"]["type"] == "ClusterIP"
    assert patched[("Deployment", "cert-manager")]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "--v=2",
        "--enable-gateway-api",
    ]
    urls = [manifest.url for manifest in platform.third_party]
    assert urls == [
        "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.1/standard-install.yaml",
        "https://github.com/cert-manager/cert-manager/releases/download/v1.18.2/cert-manager.yaml",
        "https://github.com/knative/serving/releases/download/knative-v1.20.0/serving-crds.yaml",
        "https://github.com/knative/serving/releases/download/knative-v1.20.0/serving-core.yaml",
        "https://github.com/knative-extensions/net-kourier/releases/download/knative-v1.20.0/kourier.yaml",
        "https://github.com/kubernetes-sigs/metrics-server/releases/download/v0.8.0/components.yaml",
    ]


@pytest.mark.parametrize(
    ("spec_text", "mode", "issuer"),
    [
        ("name: demo\n", "selfsigned", "oscar-ca"),
        ("name: demo\nplatform:\n  domain: oscar.example.org\n", "selfsigned", "oscar-ca"),
        ("name: demo\nplatform:\n  acme_email: a@example.org\n", "selfsigned", "oscar-ca"),
        (
            "name: demo\nplatform:\n  domain: oscar.example.org\n  acme_email: a@example.org\n",
            "letsencrypt",
            "oscar-letsencrypt",
        ),
        (
            "name: demo\nplatform:\n  domain: oscar.example.org\n  acme_email: a@example.org\n  tls: selfsigned\n",
            "selfsigned",
            "oscar-ca",
        ),
        (
            "name: demo\nplatform:\n  domain: oscar.example.org\n  acme_email: a@example.org\n"
            "  tls: letsencrypt-staging\n",
            "letsencrypt-staging",
            "oscar-letsencrypt",
        ),
    ],
)
def test_tls_mode_follows_the_spec(spec_text: str, mode: str, issuer: str) -> None:
    platform = build(spec_text)
    assert platform.tls_mode == mode
    certificate = platform.find("Certificate", "oscar-gateway-tls", "traefik")["spec"]
    assert certificate["issuerRef"]["name"] == issuer
    assert certificate["dnsNames"] == [platform.endpoints.host, f"minio.{platform.endpoints.host}"]
    issuers = {o["metadata"]["name"]: o["spec"] for o in platform.objects if o["kind"] == "ClusterIssuer"}
    if mode == "selfsigned":
        assert set(issuers) == {"oscar-selfsigned", "oscar-ca"}
        assert platform.find("Certificate", "oscar-ca", "cert-manager")["spec"]["isCA"] is True
    else:
        acme = issuers["oscar-letsencrypt"]["acme"]
        assert acme["email"] == "a@example.org"
        assert ("staging" in acme["server"]) == (mode == "letsencrypt-staging")
        assert acme["solvers"][0]["http01"]["gatewayHTTPRoute"]["parentRefs"][0]["name"] == "traefik-gateway"


def test_gateway_host_from_domain_or_sslip() -> None:
    assert build("name: demo\nplatform:\n  domain: oscar.example.org\n", address=None).endpoints.oscar_url == (
        "https://oscar.example.org"
    )
    endpoints = build(address="2001:db8::5").endpoints
    assert endpoints.host == "2001-db8--5.sslip.io"
    assert endpoints.dashboard_url == "https://2001-db8--5.sslip.io/ui"
    assert endpoints.minio_url == "https://minio.2001-db8--5.sslip.io"
    assert build(address="::1").endpoints.host == "0--1.sslip.io", "a DNS label never starts with a dash"
    assert build(address="fe80::").endpoints.host == "fe80--0.sslip.io", "nor ends with one"
    assert build(address="127.0.0.1").endpoints.host == "127.0.0.1.sslip.io", "local nodes publish on loopback"
    for unreachable in ("0.0.0.0", "::", "224.0.0.1"):  # noqa: S104 - addresses refused, never bound
        with pytest.raises(UserInputError) as refused:
            build(address=unreachable)
        assert str(refused.value) == (f"public address {unreachable!r}: no client can reach it; give the server's IP")
    routes = {o["metadata"]["name"]: o["spec"] for o in build().objects if o["kind"] == "HTTPRoute"}
    assert routes["oscar"]["hostnames"] == ["203.0.113.5.sslip.io"]
    assert routes["oscar"]["rules"][0]["backendRefs"] == [{"kind": "Service", "name": "oscar", "port": 8080}]
    assert routes["minio"]["rules"][0]["backendRefs"] == [{"kind": "Service", "name": "minio", "port": 9000}]
    with pytest.raises(UserInputError) as missing:
        build(address=None)
    assert str(missing.value) == (
        "platform.domain: not set and no public address of the first server is known; "
        "set platform.domain or give the address (render: --public-address)"
    )
    with pytest.raises(UserInputError) as bad:
        build(address="my-host")
    assert str(bad.value) == "public address 'my-host': not an IP address; give the server's IP"


def test_allow_list_configmap_and_oidc_from_the_spec() -> None:
    plain = build()
    assert not [o for o in plain.objects if o["metadata"]["name"] == "config.yaml"]
    assert env_of(plain)["OIDC_ENABLE"] == "false" and "OIDC_ISSUERS" not in env_of(plain)
    text = (
        "name: demo\nplatform:\n  oscar:\n    allowed_image_prefixes: [ghcr.io/grycap/, docker.io/library/]\n"
        "    oidc_issuers: [https://aai.egi.eu/auth/realms/egi]\n    oidc_groups: [urn:a, urn:b]\n"
    )
    configured = build(text)
    allow = configured.find("ConfigMap", "config.yaml", "oscar")
    assert json.loads(allow["data"]["allowed_image_repositories"]) == ["ghcr.io/grycap/", "docker.io/library/"]
    env = env_of(configured)
    assert (env["OIDC_ENABLE"], env["OIDC_ISSUERS"], env["OIDC_GROUPS"]) == (
        "true",
        "https://aai.egi.eu/auth/realms/egi",
        "urn:a,urn:b",
    )


def test_the_builder_is_pure() -> None:
    assert build().objects == build().objects


def test_unpinned_release_files_are_listed() -> None:
    platform = build()
    assert "https://github.com/openfaas/classic-watchdog/releases/download/0.2.1/fwatchdog-arm64" in platform.unpinned
    assert "https://github.com/grycap/faas-supervisor/releases/download/1.6.2/supervisor-alpine-arm64.zip" in (
        platform.unpinned
    )


def test_the_autoscaler_gets_its_account_only_when_enabled() -> None:
    kinds = {(obj["kind"], obj["metadata"]["name"]) for obj in build().objects}
    assert ("ServiceAccount", "oscar-autoscaler") not in kinds
    enabled = build("name: demo\nplatform: {autoscaler: {enabled: true}}\n")
    names = [(obj["kind"], obj["metadata"]["name"]) for obj in enabled.objects]
    assert names[-4:] == [
        ("ServiceAccount", "oscar-autoscaler"),
        ("Secret", "oscar-autoscaler-token"),
        ("ClusterRole", "oscar-autoscaler"),
        ("ClusterRoleBinding", "oscar-autoscaler"),
    ]


def attached_listeners(gateway: dict[str, Any], route_namespace: str, parent: dict[str, Any]) -> set[str]:
    """Gateway API attachment by namespace (apis/v1 ParentReference.SectionName, AllowedRoutes): the listeners of
    `gateway` that accept a route in `route_namespace` referring to it with `parent`."""
    gateway_namespace = gateway["metadata"]["namespace"]
    if parent["name"] != gateway["metadata"]["name"] or parent.get("namespace", route_namespace) != gateway_namespace:
        return set()
    accepted = set()
    for listener in gateway["spec"]["listeners"]:
        if parent.get("sectionName") not in (None, listener["name"]):
            continue
        allowed = listener.get("allowedRoutes", {}).get("namespaces", {}).get("from", "Same")
        if allowed == "All" or (allowed == "Same" and route_namespace == gateway_namespace):
            accepted.add(listener["name"])
    return accepted


def test_exposed_service_routes_attach_to_https_only_and_plain_http_still_redirects() -> None:
    platform = build()
    gateway = platform.find("Gateway", "traefik-gateway", "traefik")
    env = env_of(platform)
    # The parentRef OSCAR gives every exposed service's HTTPRoute in oscar-svc: the Gateway named by
    # HTTPROUTE_GATEWAY_NAME/_NAMESPACE and no sectionName (grycap/oscar pkg/backends/resources/expose.go,
    # getHTTPRouteSpec), so it attaches to every listener that admits oscar-svc. On `web` its path prefix
    # /system/services/<svc>/exposed would outrank the redirect's "/" and serve it (and its basic auth) in clear.
    oscar_parent = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": env["HTTPROUTE_GATEWAY_NAME"],
        "namespace": env["HTTPROUTE_GATEWAY_NAMESPACE"],
    }
    assert attached_listeners(gateway, "oscar-svc", oscar_parent) == {"websecure"}
    redirect = platform.find("HTTPRoute", "https-redirect", "traefik")["spec"]
    assert attached_listeners(gateway, "traefik", redirect["parentRefs"][0]) == {"web"}
    # cert-manager creates the HTTP-01 solver's HTTPRoute in the Challenge's namespace, the Certificate's (traefik).
    acme = build(
        "name: demo\nplatform:\n  domain: oscar.example.org\n  acme_email: a@example.org\n  tls: letsencrypt\n"
    )
    issuer = acme.find("ClusterIssuer", "oscar-letsencrypt")["spec"]["acme"]
    solver_parent = issuer["solvers"][0]["http01"]["gatewayHTTPRoute"]["parentRefs"][0]
    acme_gateway = acme.find("Gateway", "traefik-gateway", "traefik")
    assert attached_listeners(acme_gateway, acme_gateway["metadata"]["namespace"], solver_parent) == {"web"}
    for name, namespace in (("oscar", "oscar"), ("minio", "minio")):
        route = platform.find("HTTPRoute", name, namespace)["spec"]
        assert attached_listeners(gateway, namespace, route["parentRefs"][0]) == {"websecure"}
