"""Small stand-ins for the third-party release manifests the platform stack applies. Each holds only the
objects oscar-deploy patches, shaped as upstream ships them, plus one unpatched object, so that the stack's
patching and declaration run for real without the internet:

* knative/serving `serving-core.yaml` (knative-v1.20.x): ConfigMaps `config-features` and `config-network` in
  `knative-serving`, data holding only `_example` (upstream config/core/configmaps/features.yaml, network.yaml);
* knative-extensions/net-kourier `kourier.yaml`: Service `kourier` in `kourier-system` of type LoadBalancer
  (upstream config/300-gateway.yaml);
* cert-manager `cert-manager.yaml`: Deployment `cert-manager` in `cert-manager` whose one container has an
  args list (upstream deploy/charts/cert-manager templates/deployment.yaml);
* the others (Gateway API CRDs, serving CRDs, metrics-server) as one Namespace or CRD each.

Nothing here ships in the wheel.
"""

from __future__ import annotations

from typing import Any

import yaml

from oscar_deploy.platform.model import ThirdPartyManifest


def _configmap(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "knative-serving"},
        "data": {"_example": "# the upstream file documents every key here\n"},
    }


STAND_INS: dict[str, list[dict[str, Any]]] = {
    "serving-core.yaml": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "knative-serving"}},
        _configmap("config-features"),
        _configmap("config-network"),
    ],
    "kourier.yaml": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kourier-system"}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kourier", "namespace": "kourier-system"},
            "spec": {"type": "LoadBalancer", "ports": [{"name": "http2", "port": 80, "targetPort": 8080}]},
        },
    ],
    "cert-manager.yaml": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cert-manager"}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "cert-manager", "namespace": "cert-manager"},
            "spec": {
                "selector": {"matchLabels": {"app": "cert-manager"}},
                "template": {
                    "metadata": {"labels": {"app": "cert-manager"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "cert-manager-controller",
                                "image": "quay.io/jetstack/cert-manager-controller:v1.18.2",
                                "args": ["--v=2", "--cluster-resource-namespace=$(POD_NAMESPACE)"],
                            }
                        ]
                    },
                },
            },
        },
    ],
    "serving-crds.yaml": [
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "services.serving.knative.dev"},
            "spec": {
                "group": "serving.knative.dev",
                "names": {"kind": "Service", "plural": "services"},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    }
                ],
            },
        }
    ],
    "standard-install.yaml": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gateway-system"}}],
    "components.yaml": [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "metrics-server", "namespace": "kube-system"},
        }
    ],
}


def stand_in_text(manifest: ThirdPartyManifest) -> str:
    return yaml.safe_dump_all(STAND_INS[manifest.file])


def stand_in_texts(manifests: list[ThirdPartyManifest]) -> dict[str, str]:
    return {manifest.url: stand_in_text(manifest) for manifest in manifests}
