"""The one builder of every Kubernetes object oscar-deploy generates for the OSCAR platform.

`build_platform` is pure: the same spec, catalogue, address and secret values give the same objects, with no
I/O. The Pulumi stack declares exactly these objects (plus the third-party manifests with our patches) and
`oscar-deploy render` writes them as YAML, so the two can never drift apart.

The OSCAR manager's settings follow its v4.1.2 source (O:pkg/types/config.go): Knative is the only backend
with synchronous `/run` (O:main.go registers the route only for a SyncBackend), Kueue defaults to on in code
and must be switched off, STORAGE_CLASS_NAME defaults to `nfs` and must name the real ReadWriteMany class,
MINIO_ENDPOINT defaults to a URL that does not exist here. Every password reaches it by secretKeyRef.
"""

from __future__ import annotations

import json
from typing import Any

from oscar_deploy.platform.autoscaler import autoscaler_access_objects
from oscar_deploy.platform.gateway import gateway_host, gateway_objects, minio_host
from oscar_deploy.platform.minio import MINIO_DATA_CLAIM, minio_objects
from oscar_deploy.platform.model import (
    ALLOWED_IMAGES_CONFIGMAP,
    ALLOWED_IMAGES_KEY,
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    MINIO_INTERNAL_ENDPOINT,
    MINIO_NAMESPACE,
    MINIO_REGION,
    NFS_NAMESPACE,
    NFS_STORAGE_CLASS,
    OSCAR_CREDENTIALS,
    OSCAR_MINIO_ACCESS_KEY_REF,
    OSCAR_MINIO_SECRET_KEY_REF,
    OSCAR_NAME,
    OSCAR_NAMESPACE,
    OSCAR_PASSWORD_REF,
    OSCAR_PORT,
    OSCAR_PVC,
    OSCAR_SERVICE_ACCOUNT,
    SERVICES_NAMESPACE,
    Endpoints,
    KubeObject,
    PlatformInputs,
    PlatformObjects,
    PlatformSecrets,
)
from oscar_deploy.platform.storage import NFS_EXPORT_CLAIM, metadata, nfs_objects, oscar_volume_objects
from oscar_deploy.platform.thirdparty import skipped_tag_resolution, third_party_manifests

ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
READ_VERBS = ["get", "list", "watch"]


def local_data_claims() -> dict[str, str]:
    """The platform's claims on the cluster's default StorageClass (k3s local-path: one node's disk), as
    `namespace/claim`, with what their data is. Their pods run on a server (`on_a_server`), which `scale` never
    removes; a volume that was made on a worker all the same goes with that worker's disk."""
    return {
        f"{MINIO_NAMESPACE}/{MINIO_DATA_CLAIM}": (
            "MinIO's data: every bucket of the cluster (the OSCAR services' input and output files)"
        ),
        f"{NFS_NAMESPACE}/{NFS_EXPORT_CLAIM}": (
            f"the in-cluster NFS server's data: {SERVICES_NAMESPACE}/{OSCAR_PVC} (OSCAR's binaries for the services) "
            f"and every volume of the {NFS_STORAGE_CLASS} StorageClass"
        ),
    }


def build_platform(inputs: PlatformInputs[Any]) -> PlatformObjects:
    """Every object we generate, in apply order, with the third-party manifests and their patches."""
    spec, catalogue = inputs.spec, inputs.catalogue
    platform = spec.platform
    tls_mode = platform.tls_mode
    host = gateway_host(spec, inputs.public_address)
    storage_class = platform.storage_class or NFS_STORAGE_CLASS

    objects: list[KubeObject] = namespaces(in_cluster_nfs=platform.storage_class is None)
    objects += oscar_rbac()
    if platform.storage_class is None:
        objects += nfs_objects(catalogue, platform.storage_size)
    objects += oscar_volume_objects(catalogue, storage_class, inputs.offline)
    objects += minio_objects(catalogue, platform.minio.storage_size, inputs.secrets)
    objects += oscar_objects(inputs, host, storage_class)
    objects += gateway_objects(spec, catalogue, host, tls_mode, inputs.offline)
    if platform.autoscaler.enabled:
        objects += autoscaler_access_objects()

    third_party = third_party_manifests(catalogue, skipped_tag_resolution(spec, inputs.offline))
    unpinned = [manifest.url for manifest in third_party if not manifest.pinned]
    for key in ("fwatchdog", "faas_supervisor"):
        unpinned += [catalogue[key].file_url(name) for name in catalogue[key].unpinned_files]
    return PlatformObjects(
        objects=objects,
        third_party=third_party,
        endpoints=Endpoints(
            host=host,
            oscar_url=f"https://{host}",
            dashboard_url=f"https://{host}/ui",
            minio_url=f"https://{minio_host(host)}",
            minio_internal=MINIO_INTERNAL_ENDPOINT,
        ),
        tls_mode=tls_mode,
        storage_class=storage_class,
        unpinned=unpinned,
    )


def namespaces(in_cluster_nfs: bool) -> list[KubeObject]:
    names = [OSCAR_NAMESPACE, SERVICES_NAMESPACE, MINIO_NAMESPACE, GATEWAY_NAMESPACE]
    if in_cluster_nfs:
        names.append(NFS_NAMESPACE)
    result = []
    for name in names:
        meta = metadata(name)
        if name in (SERVICES_NAMESPACE, NFS_NAMESPACE):
            # OSCAR's mount sidecar is privileged (O:pkg/backends/resources/mount.go); so is an NFS server.
            meta["labels"]["pod-security.kubernetes.io/enforce"] = "privileged"
        result.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
    return result


def _rule(group: str, resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def oscar_rbac() -> list[KubeObject]:
    """The manager's account: what the chart grants (Role in oscar-svc, ClusterRole oscar-controller-global
    for the per-user namespaces of multitenancy) plus nodes and metrics.k8s.io, which `/system/status` and GPU
    detection read and the chart grants only with resourceManager.enable."""
    workload_rules = [
        _rule(
            "",
            ["pods", "pods/log", "podtemplates", "configmaps", "services", "secrets", "persistentvolumeclaims"],
            ALL_VERBS,
        ),
        _rule("batch", ["jobs"], ALL_VERBS),
        _rule("apps", ["deployments", "daemonsets"], ALL_VERBS),
        _rule("autoscaling", ["horizontalpodautoscalers"], ALL_VERBS),
        _rule("networking.k8s.io", ["ingresses"], ALL_VERBS),
        _rule("gateway.networking.k8s.io", ["httproutes"], ALL_VERBS),
        _rule("traefik.io", ["middlewares"], ALL_VERBS),
        _rule("serving.knative.dev", ["services"], ALL_VERBS),
    ]
    global_rules = [
        *workload_rules,
        _rule("", ["namespaces", "persistentvolumes"], ALL_VERBS),
        _rule("rbac.authorization.k8s.io", ["roles", "rolebindings"], ALL_VERBS),
        _rule("", ["nodes"], READ_VERBS),
        _rule("metrics.k8s.io", ["nodes", "pods"], READ_VERBS),
    ]
    subject = [{"kind": "ServiceAccount", "name": OSCAR_SERVICE_ACCOUNT, "namespace": OSCAR_NAMESPACE}]
    rbac = "rbac.authorization.k8s.io"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(OSCAR_SERVICE_ACCOUNT, OSCAR_NAMESPACE)},
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "Role",
            "metadata": metadata("oscar-controller", SERVICES_NAMESPACE),
            "rules": workload_rules,
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": metadata("oscar-controller-binding", SERVICES_NAMESPACE),
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "oscar-controller"},
            "subjects": subject,
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": metadata("oscar-controller-global"),
            "rules": global_rules,
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": metadata("oscar-controller-global-binding"),
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "oscar-controller-global"},
            "subjects": subject,
        },
    ]


def oscar_credentials(secrets: PlatformSecrets[Any]) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(OSCAR_CREDENTIALS, OSCAR_NAMESPACE),
        "type": "Opaque",
        "stringData": {
            OSCAR_PASSWORD_REF.key: secrets.oscar_password,
            OSCAR_MINIO_ACCESS_KEY_REF.key: secrets.minio_access_key,
            OSCAR_MINIO_SECRET_KEY_REF.key: secrets.minio_secret_key,
        },
    }


def oscar_environment(inputs: PlatformInputs[Any], host: str, storage_class: str) -> list[dict[str, Any]]:
    oscar = inputs.spec.platform.oscar
    plain = {
        "OSCAR_NAME": OSCAR_NAME,
        "OSCAR_NAMESPACE": OSCAR_NAMESPACE,
        "OSCAR_SERVICES_NAMESPACE": SERVICES_NAMESPACE,
        "OSCAR_SERVICE_PORT": str(OSCAR_PORT),
        "OSCAR_CONTROLLER_SERVICE_ACCOUNT": OSCAR_SERVICE_ACCOUNT,
        "OSCAR_USERNAME": oscar.username,
        "SERVERLESS_BACKEND": "knative",
        "KUEUE_ENABLE": "false",
        "YUNIKORN_ENABLE": "false",
        "KSERVE_ENABLE": "false",
        "MINIO_ENDPOINT": MINIO_INTERNAL_ENDPOINT,
        "MINIO_TLS_VERIFY": "false",
        "MINIO_REGION": MINIO_REGION,
        "STORAGE_CLASS_NAME": storage_class,
        "VOLUME_ENABLE": "true",
        "EXPOSED_SERVICES_ROUTE_KIND": "httproute",
        "HTTPROUTE_GATEWAY_NAME": GATEWAY_NAME,
        "HTTPROUTE_GATEWAY_NAMESPACE": GATEWAY_NAMESPACE,
        "INGRESS_HOST": host,
        "OIDC_ENABLE": "true" if oscar.oidc_issuers else "false",
    }
    if oscar.oidc_issuers:
        plain["OIDC_ISSUERS"] = ",".join(oscar.oidc_issuers)
    if oscar.oidc_groups:
        plain["OIDC_GROUPS"] = ",".join(oscar.oidc_groups)
    return [{"name": name, "value": value} for name, value in plain.items()] + [
        OSCAR_PASSWORD_REF.env("OSCAR_PASSWORD"),
        OSCAR_MINIO_ACCESS_KEY_REF.env("MINIO_ACCESS_KEY"),
        OSCAR_MINIO_SECRET_KEY_REF.env("MINIO_SECRET_KEY"),
    ]


def oscar_objects(inputs: PlatformInputs[Any], host: str, storage_class: str) -> list[KubeObject]:
    labels = {"app.kubernetes.io/name": OSCAR_NAME}
    probe = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 5}
    objects: list[KubeObject] = [oscar_credentials(inputs.secrets)]
    prefixes = inputs.spec.platform.oscar.allowed_image_prefixes
    if prefixes:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata(ALLOWED_IMAGES_CONFIGMAP, OSCAR_NAMESPACE),
                "data": {ALLOWED_IMAGES_KEY: json.dumps(prefixes)},
            }
        )
    objects += [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(OSCAR_NAME, OSCAR_NAMESPACE, **labels),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": OSCAR_SERVICE_ACCOUNT,
                        "containers": [
                            {
                                "name": OSCAR_NAME,
                                "image": inputs.catalogue["oscar"].image_reference,
                                "imagePullPolicy": "IfNotPresent",
                                "env": oscar_environment(inputs, host, storage_class),
                                "ports": [{"name": "http", "containerPort": OSCAR_PORT, "protocol": "TCP"}],
                                "livenessProbe": {**probe, "initialDelaySeconds": 5},
                                "readinessProbe": probe,
                                "securityContext": {
                                    "runAsUser": 10001,
                                    "runAsNonRoot": True,
                                    "readOnlyRootFilesystem": True,
                                    "allowPrivilegeEscalation": False,
                                },
                                "resources": {
                                    "requests": {"cpu": "250m", "memory": "256Mi"},
                                    "limits": {"memory": "1Gi"},
                                },
                            }
                        ],
                    },
                },
            },
        },
        {
            # MinIO calls http://oscar.oscar:8080/job/<service> for every upload (O:pkg/utils/minio.go).
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(OSCAR_NAME, OSCAR_NAMESPACE, **labels),
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": OSCAR_PORT, "targetPort": "http", "protocol": "TCP"}],
            },
        },
    ]
    return objects
