"""ReadWriteMany storage: the in-cluster NFS server (or an existing class), `oscar-pvc` and the Job filling it.

The NFS server is kubernetes-sigs/nfs-ganesha-server-and-external-provisioner run as its Helm chart runs it
(deploy/helm/templates: a one-replica StatefulSet exporting /export, the ports it serves, the capabilities
DAC_READ_SEARCH and SYS_RESOURCE, env POD_IP/SERVICE_NAME/POD_NAMESPACE, `-provisioner=<name>`, mount option
vers=3), its volume on the cluster's default class (k3s local-path), on a server. Nodes mount its volumes with
the kernel NFS client, so every node needs the NFS client tools (Debian: nfs-common).
"""

from __future__ import annotations

import hashlib
from typing import Any

from oscar_deploy.platform.binaries import BUNDLE_MOUNT, populate_script, release_name
from oscar_deploy.platform.model import (
    BUNDLE_FILES_HOST_PATH,
    MANAGED_BY,
    NFS_NAMESPACE,
    NFS_PROVISIONER_NAME,
    NFS_STORAGE_CLASS,
    OSCAR_PVC,
    SERVICES_NAMESPACE,
    KubeObject,
    OfflinePlatform,
    on_a_server,
)
from oscar_deploy.spec.catalogue import Catalogue

NFS_NAME = "nfs-provisioner"
# The NFS server's volume claim template; its one replica's claim is `<template>-<StatefulSet>-<ordinal>`, as the
# StatefulSet controller names it (https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/), on the
# cluster's default StorageClass (k3s local-path).
NFS_EXPORT_VOLUME = "export"
NFS_EXPORT_CLAIM = f"{NFS_EXPORT_VOLUME}-{NFS_NAME}-0"
# The binaries of amd64 and arm64 (glibc and Alpine supervisors unpacked) take about 0.5 GiB; two releases
# side by side during an upgrade, with room to spare.
OSCAR_PVC_SIZE = "2Gi"
NFS_PORTS = [("nfs", 2049), ("nlockmgr", 32803), ("mountd", 20048), ("rquotad", 875), ("rpcbind", 111), ("statd", 662)]


def metadata(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**MANAGED_BY, **labels}}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def nfs_objects(catalogue: Catalogue, size: str) -> list[KubeObject]:
    labels = {"app.kubernetes.io/name": NFS_NAME}
    ports = [
        {"name": f"{name}{suffix}", "containerPort": port, "protocol": protocol}
        for name, port in NFS_PORTS
        for suffix, protocol in (("", "TCP"), ("-udp", "UDP"))
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(NFS_NAME, NFS_NAMESPACE)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": metadata("oscar-nfs-provisioner"),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["persistentvolumes"],
                    "verbs": ["get", "list", "watch", "create", "delete"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["persistentvolumeclaims"],
                    "verbs": ["get", "list", "watch", "update"],
                },
                {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch", "create", "update", "patch"]},
                {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]},
                {
                    "apiGroups": [""],
                    "resources": ["endpoints"],
                    "verbs": ["get", "list", "watch", "create", "delete", "update", "patch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": metadata("oscar-nfs-provisioner"),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "oscar-nfs-provisioner",
            },
            "subjects": [{"kind": "ServiceAccount", "name": NFS_NAME, "namespace": NFS_NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(NFS_NAME, NFS_NAMESPACE, **labels),
            "spec": {
                "selector": labels,
                "ports": [{"name": p["name"], "port": p["containerPort"], "protocol": p["protocol"]} for p in ports],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": metadata(NFS_NAME, NFS_NAMESPACE, **labels),
            "spec": {
                "replicas": 1,
                "serviceName": NFS_NAME,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        # Its volume (every service's mounted files) is on the disk of the node it first ran on.
                        **on_a_server(),
                        "serviceAccountName": NFS_NAME,
                        # 10 s more than the server's default grace period of 90 s (upstream chart).
                        "terminationGracePeriodSeconds": 100,
                        "containers": [
                            {
                                "name": NFS_NAME,
                                "image": catalogue["nfs_provisioner"].image_reference,
                                "imagePullPolicy": "IfNotPresent",
                                "args": [f"-provisioner={NFS_PROVISIONER_NAME}"],
                                "ports": ports,
                                "securityContext": {"capabilities": {"add": ["DAC_READ_SEARCH", "SYS_RESOURCE"]}},
                                "env": [
                                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                                    {"name": "SERVICE_NAME", "value": NFS_NAME},
                                    {
                                        "name": "POD_NAMESPACE",
                                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                                    },
                                ],
                                "volumeMounts": [{"name": NFS_EXPORT_VOLUME, "mountPath": "/export"}],
                            }
                        ],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": NFS_EXPORT_VOLUME},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
                    }
                ],
            },
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": metadata(NFS_STORAGE_CLASS),
            "provisioner": NFS_PROVISIONER_NAME,
            "reclaimPolicy": "Delete",
            "allowVolumeExpansion": True,
            "mountOptions": ["vers=3"],
        },
    ]


def oscar_volume_objects(
    catalogue: Catalogue, storage_class: str, offline: OfflinePlatform | None = None
) -> list[KubeObject]:
    """`oscar-pvc` (ReadWriteMany, mounted read-only at /oscar/bin in every service pod) and the Job filling it.

    Offline, the Job runs on a server (where the airgap role put the bundle's files) and copies them from there.
    """
    script = populate_script(catalogue, offline)
    release = release_name(catalogue)
    # The Job's name follows its script: a new pin gets a new Job (a Job's pod template cannot change).
    job_name = "oscar-bin-" + hashlib.sha256(script.encode()).hexdigest()[:10]
    labels = {"app.kubernetes.io/name": "oscar-bin-populator"}
    mounts: list[dict[str, Any]] = [
        {"name": "bin", "mountPath": "/data"},
        {"name": "script", "mountPath": "/script", "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "bin", "persistentVolumeClaim": {"claimName": OSCAR_PVC}},
        {"name": "script", "configMap": {"name": job_name}},
    ]
    placement: dict[str, Any] = {}
    if offline is not None:
        mounts.append({"name": "bundle", "mountPath": BUNDLE_MOUNT, "readOnly": True})
        volumes.append({"name": "bundle", "hostPath": {"path": BUNDLE_FILES_HOST_PATH, "type": "Directory"}})
        placement = on_a_server()
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": metadata(OSCAR_PVC, SERVICES_NAMESPACE),
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": storage_class,
                "resources": {"requests": {"storage": OSCAR_PVC_SIZE}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(job_name, SERVICES_NAMESPACE, **labels),
            "data": {"populate.sh": script},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                **metadata(job_name, SERVICES_NAMESPACE, **labels),
                "annotations": {"oscar-deploy/release": release},
            },
            "spec": {
                "backoffLimit": 4,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "OnFailure",
                        **placement,
                        "containers": [
                            {
                                "name": "populate",
                                "image": catalogue["bin_populator"].image_reference,
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["/bin/sh", "/script/populate.sh", "/data"],
                                "volumeMounts": mounts,
                            }
                        ],
                        "volumes": volumes,
                    },
                },
            },
        },
    ]
