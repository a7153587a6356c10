"""MinIO in the cluster: the object store OSCAR drives over its admin API, and its credentials.

OSCAR needs real MinIO in the same cluster: it sets `notify_webhook` targets pointing at
http://oscar.oscar:8080/job/<service>, manages users and policies, and restarts MinIO over the admin API
(O:pkg/utils/minio.go). The region MinIO announces (MINIO_SITE_REGION, read in minio internal/config) must
equal OSCAR's MINIO_REGION: it is part of the webhook ARN.
"""

from __future__ import annotations

from typing import Any

from oscar_deploy.platform.model import (
    MINIO_API_PORT,
    MINIO_CONSOLE_PORT,
    MINIO_NAME,
    MINIO_NAMESPACE,
    MINIO_REGION,
    MINIO_ROOT_PASSWORD_REF,
    MINIO_ROOT_SECRET,
    MINIO_ROOT_USER_REF,
    SERVICES_MINIO_SECRET,
    SERVICES_NAMESPACE,
    KubeObject,
    PlatformSecrets,
    on_a_server,
)
from oscar_deploy.platform.storage import metadata
from oscar_deploy.spec.catalogue import Catalogue

# MinIO's claim, on the cluster's default StorageClass (k3s local-path): the buckets live on one node's disk.
MINIO_DATA_CLAIM = "minio-data"


def minio_objects(catalogue: Catalogue, size: str, secrets: PlatformSecrets[Any]) -> list[KubeObject]:
    labels = {"app.kubernetes.io/name": MINIO_NAME}
    probe = {"httpGet": {"path": "/minio/health/live", "port": "api"}, "periodSeconds": 20, "timeoutSeconds": 5}
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata(MINIO_ROOT_SECRET, MINIO_NAMESPACE),
            "type": "Opaque",
            "stringData": {
                MINIO_ROOT_USER_REF.key: secrets.minio_access_key,
                MINIO_ROOT_PASSWORD_REF.key: secrets.minio_secret_key,
            },
        },
        {
            # Job pods and the mount sidecar of OSCAR services read this Secret; OSCAR never creates it.
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata(SERVICES_MINIO_SECRET, SERVICES_NAMESPACE),
            "type": "Opaque",
            "stringData": {
                "accessKey": secrets.minio_access_key,
                "secretKey": secrets.minio_secret_key,
                "oidc_uid": "minio",
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": metadata(MINIO_DATA_CLAIM, MINIO_NAMESPACE, **labels),
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(MINIO_NAME, MINIO_NAMESPACE, **labels),
            "spec": {
                "replicas": 1,
                # One writer on a ReadWriteOnce volume: stop the old pod before the new one starts.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        # The buckets are on the disk of the node it first ran on (local-path).
                        **on_a_server(),
                        "containers": [
                            {
                                "name": "minio",
                                "image": catalogue["minio"].image_reference,
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["server", "/data", "--console-address", f":{MINIO_CONSOLE_PORT}"],
                                "env": [
                                    MINIO_ROOT_USER_REF.env("MINIO_ROOT_USER"),
                                    MINIO_ROOT_PASSWORD_REF.env("MINIO_ROOT_PASSWORD"),
                                    {"name": "MINIO_SITE_REGION", "value": MINIO_REGION},
                                ],
                                "ports": [
                                    {"name": "api", "containerPort": MINIO_API_PORT},
                                    {"name": "console", "containerPort": MINIO_CONSOLE_PORT},
                                ],
                                "livenessProbe": probe,
                                "readinessProbe": {
                                    **probe,
                                    "httpGet": {"path": "/minio/health/ready", "port": "api"},
                                    "periodSeconds": 10,
                                },
                                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            }
                        ],
                        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": MINIO_DATA_CLAIM}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(MINIO_NAME, MINIO_NAMESPACE, **labels),
            "spec": {
                "selector": labels,
                "ports": [
                    {"name": "api", "port": MINIO_API_PORT, "targetPort": "api"},
                    {"name": "console", "port": MINIO_CONSOLE_PORT, "targetPort": "console"},
                ],
            },
        },
    ]
