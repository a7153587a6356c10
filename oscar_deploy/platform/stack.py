"""The Pulumi program of `stacks/platform`: declares exactly the objects `build_platform` builds, plus the
pinned third-party release manifests with our patches, with pulumi-kubernetes.

Stack configuration (namespace `oscar-platform`; `oscar-deploy` sets it, and so can a user running plain
`pulumi up` with a kubeconfig):

    specFile        path of the cluster spec (relative to the stack folder or absolute)
    publicAddress   the first server's public address (names the gateway <ip>.sslip.io without a domain)
    manifestCache   folder holding downloaded release manifests and their lock file (default .manifests)
    bundleDir       an air-gap bundle (`oscar-deploy bundle build`): the cluster is offline, the release
                    manifests come from the bundle, and the objects use what the nodes imported from it
    oscarPassword, minioAccessKey, minioSecretKey   secrets (`pulumi config set --secret`)

Kubernetes access is the provider's own: `kubernetes:kubeconfig` or KUBECONFIG.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from oscar_deploy.nodes.bundle import check_bundle
from oscar_deploy.platform.bundle import bundled_manifest_texts, offline_platform
from oscar_deploy.platform.manifests import ManifestCache, manifest_objects, offline_manifest
from oscar_deploy.platform.model import (
    CA_CERTIFICATE_REF,
    STACK_PROJECT,
    KubeObject,
    PlatformInputs,
    PlatformObjects,
    PlatformSecrets,
)
from oscar_deploy.platform.objects import build_platform
from oscar_deploy.spec.catalogue import load_catalogue
from oscar_deploy.spec.models import load_spec

PROJECT = STACK_PROJECT

# API groups pulumi-kubernetes has typed resources for, by the module that holds them.
BUILTIN_GROUPS = {
    "": "core",
    "apps": "apps",
    "batch": "batch",
    "policy": "policy",
    "autoscaling": "autoscaling",
    "rbac.authorization.k8s.io": "rbac",
    "storage.k8s.io": "storage",
    "networking.k8s.io": "networking",
    "apiextensions.k8s.io": "apiextensions",
    "admissionregistration.k8s.io": "admissionregistration",
    "apiregistration.k8s.io": "apiregistration",
    "scheduling.k8s.io": "scheduling",
    "coordination.k8s.io": "coordination",
    "certificates.k8s.io": "certificates",
    "discovery.k8s.io": "discovery",
    "node.k8s.io": "node",
}
# Our custom resources wait for the third-party release that defines their kind.
CRD_OWNERS = {"gateway.networking.k8s.io": "gateway_api", "cert-manager.io": "cert_manager"}
# Within the third-party releases: what must exist (CRDs, webhooks) before a manifest is applied.
MANIFEST_NEEDS = {
    ("knative_serving", "serving-core.yaml"): [("knative_serving", "serving-crds.yaml")],
    ("kourier", "kourier.yaml"): [("knative_serving", "serving-core.yaml")],
}


def resource_name(obj: KubeObject, prefix: str = "") -> str:
    metadata = obj["metadata"]
    namespace = f"{metadata['namespace']}-" if metadata.get("namespace") else ""
    return f"{prefix}{namespace}{obj['kind'].lower()}-{metadata['name']}"


def argument_name(key: str) -> str:
    """A top-level manifest key as the typed resource's argument: `stringData` -> `string_data`. (Nested values
    keep their camelCase keys, which pulumi-kubernetes takes as they are.)"""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def declare_object(obj: KubeObject, name: str, opts: pulumi.ResourceOptions | None = None) -> pulumi.CustomResource:
    """One Kubernetes object as the typed pulumi-kubernetes resource of its kind (CustomResource otherwise)."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    group, _, version = api_version.rpartition("/")
    body = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind", "status")}
    module_name = BUILTIN_GROUPS.get(group)
    resource_class = None
    if module_name is not None:
        module = importlib.import_module(f"pulumi_kubernetes.{module_name}.{version}")
        resource_class = getattr(module, kind, None)
    if resource_class is None:
        return k8s.apiextensions.CustomResource(name, api_version=api_version, kind=kind, opts=opts, **body)
    kwargs = {argument_name(key): value for key, value in body.items()}
    resource: pulumi.CustomResource = resource_class(name, opts=opts, **kwargs)
    return resource


@dataclass
class DeclaredPlatform:
    ours: dict[str, pulumi.CustomResource]
    third_party: dict[str, pulumi.CustomResource]


def declare_platform(platform: PlatformObjects, manifest_texts: Mapping[str, str]) -> DeclaredPlatform:
    """Declare the third-party manifests (patched) and our objects, with the dependencies between them."""
    by_manifest: dict[tuple[str, str], list[pulumi.CustomResource]] = {}
    third_party: dict[str, pulumi.CustomResource] = {}
    for manifest in platform.third_party:
        needs = [res for key in MANIFEST_NEEDS.get((manifest.component, manifest.file), []) for res in by_manifest[key]]
        declared = []
        for obj in manifest_objects(manifest, manifest_texts[manifest.url]):
            name = resource_name(obj, prefix=f"{manifest.component}-")
            resource = declare_object(obj, name, pulumi.ResourceOptions(depends_on=needs))
            third_party[name] = resource
            declared.append(resource)
        by_manifest[(manifest.component, manifest.file)] = declared
    by_component: dict[str, list[pulumi.CustomResource]] = {}
    for (component, _), resources in by_manifest.items():
        by_component.setdefault(component, []).extend(resources)

    ours: dict[str, pulumi.CustomResource] = {}
    namespaces = []
    for obj in platform.objects:
        if obj["kind"] == "Namespace":
            namespaces.append(declare_object(obj, resource_name(obj)))
            ours[resource_name(obj)] = namespaces[-1]
    for obj in platform.objects:
        if obj["kind"] == "Namespace":
            continue
        group = obj["apiVersion"].rpartition("/")[0]
        needs = namespaces + by_component.get(CRD_OWNERS.get(group, ""), [])
        ours[resource_name(obj)] = declare_object(obj, resource_name(obj), pulumi.ResourceOptions(depends_on=needs))
    return DeclaredPlatform(ours=ours, third_party=third_party)


def outputs(platform: PlatformObjects, secrets: PlatformSecrets[Any], username: str) -> dict[str, Any]:
    """What the stack exports: endpoints and facts in clear, every credential as a Pulumi secret."""
    endpoints = platform.endpoints
    result: dict[str, Any] = {
        "host": endpoints.host,
        "oscarUrl": endpoints.oscar_url,
        "dashboardUrl": endpoints.dashboard_url,
        "minioUrl": endpoints.minio_url,
        "minioInternalEndpoint": endpoints.minio_internal,
        "tlsMode": platform.tls_mode,
        "storageClass": platform.storage_class,
        "oscarUsername": username,
        "unpinned": platform.unpinned,
        "oscarPassword": pulumi.Output.secret(secrets.oscar_password),
        "minioAccessKey": pulumi.Output.secret(secrets.minio_access_key),
        "minioSecretKey": pulumi.Output.secret(secrets.minio_secret_key),
    }
    if platform.tls_mode == "selfsigned":
        ref = CA_CERTIFICATE_REF
        result["caCertificateSecret"] = {"namespace": ref.namespace, "name": ref.name, "key": ref.key}
    return result


def program(stack_dir: Path) -> None:
    """The whole program: read the stack configuration, build, declare, export."""
    config = pulumi.Config(PROJECT)
    spec_file = Path(config.require("specFile"))
    spec = load_spec(spec_file if spec_file.is_absolute() else stack_dir / spec_file)
    secrets = PlatformSecrets(
        oscar_password=config.require_secret("oscarPassword"),
        minio_access_key=config.require_secret("minioAccessKey"),
        minio_secret_key=config.require_secret("minioSecretKey"),
    )
    catalogue = load_catalogue().with_overrides(spec.versions)
    bundle_dir = config.get("bundleDir")
    if bundle_dir:
        bundle = Path(bundle_dir) if Path(bundle_dir).is_absolute() else stack_dir / bundle_dir
        check_bundle(bundle, catalogue.version("k3s"), [])
        offline = offline_platform(bundle)
        platform = build_platform(PlatformInputs(spec, catalogue, secrets, config.get("publicAddress"), offline))
        texts = bundled_manifest_texts(bundle, platform.third_party)
        platform = replace(platform, third_party=[offline_manifest(m, texts[m.url]) for m in platform.third_party])
    else:
        platform = build_platform(PlatformInputs(spec, catalogue, secrets, config.get("publicAddress")))
        cache_dir = Path(config.get("manifestCache") or ".manifests")
        cache = ManifestCache(cache_dir if cache_dir.is_absolute() else stack_dir / cache_dir)
        texts = {manifest.url: cache.text(manifest) for manifest in platform.third_party}
        for url, digest in cache.recorded:
            pulumi.log.warn(f"UNPINNED {url}: trusted on first use with sha256 {digest}; pin it in the catalogue")
    declare_platform(platform, texts)
    for key, value in outputs(platform, secrets, spec.platform.oscar.username).items():
        pulumi.export(key, value)
