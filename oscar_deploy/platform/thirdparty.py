"""Third-party release manifests, pinned by the catalogue, and our settings for them as JSON patches.

Each manifest is applied as upstream ships it except for the operations below, which fail loudly when the
object or path they expect is missing (an upstream change must be looked at, not silently skipped).
"""

from __future__ import annotations

from oscar_deploy.platform.model import CERT_MANAGER_NAMESPACE, JsonPatch, ThirdPartyManifest
from oscar_deploy.spec.catalogue import Catalogue

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


def third_party_manifests(catalogue: Catalogue) -> list[ThirdPartyManifest]:
    result = []
    for component_key, file in MANIFESTS:
        component = catalogue[component_key]
        result.append(
            ThirdPartyManifest(
                component=component_key,
                file=file,
                url=component.file_url(file),
                sha256=component.file(file).sha256,
                patches=PATCHES.get((component_key, file), ()),
            )
        )
    return result
