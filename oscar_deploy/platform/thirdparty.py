"""Third-party release manifests, pinned by the catalogue, and our settings for them as JSON patches.

Each manifest is applied as upstream ships it except for the operations below, which fail loudly when the
object or path they expect is missing (an upstream change must be looked at, not silently skipped).

Offline (a cluster installed from an air-gap bundle) two more settings apply:

* Knative resolves the tag of every service image to a digest by asking the image's registry itself, not
  through the nodes' mirror (knative/serving pkg/reconciler/revision resolve.go, `registriesSkippingTagResolving`
  of ConfigMap config-deployment, default `kind.local,ko.local,dev.local`). The registries of the bundled images
  and of the spec's mirror are added to that list, so services on those images start without the internet.
* Every container of a release manifest gets `imagePullPolicy: IfNotPresent` where it would otherwise be
  pulled at each start (`Always`, or a `:latest`/untagged image, Kubernetes' defaulting), so the images the
  nodes imported from the bundle are used.
"""

from __future__ import annotations

from typing import Any

from oscar_deploy.platform.model import (
    CERT_MANAGER_NAMESPACE,
    JsonPatch,
    KubeObject,
    OfflinePlatform,
    ThirdPartyManifest,
)
from oscar_deploy.spec.catalogue import Catalogue
from oscar_deploy.spec.models import ClusterSpec

KNATIVE_NAMESPACE = "knative-serving"
KOURIER_NAMESPACE = "kourier-system"
KOURIER_INGRESS_CLASS = "kourier.ingress.networking.knative.dev"

# Apply order: CRDs before the resources that use them, Knative Serving before its ingress.
MANIFESTS: tuple[tuple[str, str], ...] = (
    ("gateway_api", "standard-install.yaml"),
    ("cert_manager", "cert-manager.yaml"),
    ("knative_serving", "serving-crds.yaml"),
    ("knative_serving", "serving-core.yaml"),
    ("kourier", "kourier.yaml"),
    ("metrics_server", "components.yaml"),
)


def _pointer(key: str) -> str:
    """One JSON pointer token (RFC 6901): `~` and `/` escaped."""
    return key.replace("~", "~0").replace("/", "~1")


def _data(key: str, value: str) -> dict[str, str]:
    return {"op": "add", "path": f"/data/{_pointer(key)}", "value": value}


PATCHES: dict[tuple[str, str], tuple[JsonPatch, ...]] = {
    ("knative_serving", "serving-core.yaml"): (
        JsonPatch(
            "v1",
            "ConfigMap",
            "config-features",
            KNATIVE_NAMESPACE,
            (
                _data("kubernetes.podspec-persistent-volume-claim", "enabled"),
                _data("kubernetes.podspec-persistent-volume-write", "enabled"),
            ),
            "every OSCAR service mounts oscar-pvc (read-only) and may mount volumes it writes",
        ),
        JsonPatch(
            "v1",
            "ConfigMap",
            "config-network",
            KNATIVE_NAMESPACE,
            (_data("ingress-class", KOURIER_INGRESS_CLASS),),
            "Kourier is Knative's ingress",
        ),
    ),
    ("kourier", "kourier.yaml"): (
        JsonPatch(
            "v1",
            "Service",
            "kourier",
            KOURIER_NAMESPACE,
            ({"op": "replace", "path": "/spec/type", "value": "ClusterIP"},),
            "OSCAR proxies to cluster-local Knative services; as a LoadBalancer, k3s's ServiceLB would take "
            "ports 80 and 443 from the gateway",
        ),
    ),
    ("cert_manager", "cert-manager.yaml"): (
        JsonPatch(
            "apps/v1",
            "Deployment",
            "cert-manager",
            CERT_MANAGER_NAMESPACE,
            ({"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--enable-gateway-api"},),
            "Let's Encrypt HTTP-01 is answered through the Gateway (solver gatewayHTTPRoute)",
        ),
    ),
}


# Knative's own default list (config/core/configmaps/deployment.yaml); ours extends it.
KNATIVE_SKIPPED_BY_DEFAULT = ("kind.local", "ko.local", "dev.local")
# Knative has read this setting under both spellings across releases; both carry the same list.
SKIP_TAG_RESOLUTION_KEYS = ("registries-skipping-tag-resolving", "registriesSkippingTagResolving")


def skipped_tag_resolution(spec: ClusterSpec, offline: OfflinePlatform | None) -> tuple[str, ...] | None:
    """Registries Knative must not resolve tags against on an offline cluster (None when the cluster is online):
    Knative's defaults, the bundled images' registries, the mirror's host and the registries it stands in for."""
    if offline is None:
        return None
    mirror = spec.platform.registry_mirror
    names = [*KNATIVE_SKIPPED_BY_DEFAULT, *offline.registries]
    if mirror.host:
        names += [mirror.host, *(name for name in mirror.registries if name != "*")]
    if "docker.io" in names:
        names.append("index.docker.io")  # how Knative's resolver names Docker Hub
    return tuple(dict.fromkeys(names))


def knative_offline_patch(registries: tuple[str, ...]) -> JsonPatch:
    value = ",".join(registries)
    return JsonPatch(
        "v1",
        "ConfigMap",
        "config-deployment",
        KNATIVE_NAMESPACE,
        tuple(_data(key, value) for key in SKIP_TAG_RESOLUTION_KEYS),
        "offline: Knative would ask these registries to resolve image tags; the nodes hold the images already",
    )


def third_party_manifests(
    catalogue: Catalogue, skip_registries: tuple[str, ...] | None = None
) -> list[ThirdPartyManifest]:
    """The pinned manifests with our patches; with `skip_registries` (offline) Knative's tag resolution too."""
    result = []
    for component_key, file in MANIFESTS:
        component = catalogue[component_key]
        patches = PATCHES.get((component_key, file), ())
        if skip_registries is not None and (component_key, file) == ("knative_serving", "serving-core.yaml"):
            patches = (*patches, knative_offline_patch(skip_registries))
        result.append(
            ThirdPartyManifest(
                component=component_key,
                file=file,
                url=component.file_url(file),
                sha256=component.file(file).sha256,
                patches=patches,
            )
        )
    return result


WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job")
CONTAINER_LISTS = ("initContainers", "containers")


def pod_spec(obj: KubeObject) -> dict[str, Any] | None:
    """The pod template's spec of a workload object (a CronJob's too), or None for other kinds."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    elif obj.get("kind") not in WORKLOAD_KINDS:
        return None
    template = (spec.get("template") or {}).get("spec")
    return template if isinstance(template, dict) else None


def pulled_at_every_start(container: dict[str, Any]) -> bool:
    """Kubernetes' defaulting: `Always` when set so, or when the image has no tag or the tag `latest`."""
    policy = container.get("imagePullPolicy")
    if policy is not None:
        return bool(policy == "Always")
    image = str(container.get("image", ""))
    if "@" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.endswith(":latest")


def pull_policy_patches(objects: list[KubeObject]) -> tuple[JsonPatch, ...]:
    """IfNotPresent for every container of these (already patched) objects that would pull at each start."""
    patches = []
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        prefix = "/spec/jobTemplate/spec/template/spec" if obj.get("kind") == "CronJob" else "/spec/template/spec"
        operations = tuple(
            {"op": "add", "path": f"{prefix}/{kind}/{index}/imagePullPolicy", "value": "IfNotPresent"}
            for kind in CONTAINER_LISTS
            for index, container in enumerate(spec.get(kind) or [])
            if pulled_at_every_start(container)
        )
        if operations:
            metadata = obj.get("metadata") or {}
            patches.append(
                JsonPatch(
                    str(obj["apiVersion"]),
                    str(obj["kind"]),
                    str(metadata.get("name")),
                    metadata.get("namespace"),
                    operations,
                    "offline: use the image the nodes imported from the air-gap bundle instead of pulling it",
                )
            )
    return tuple(patches)
