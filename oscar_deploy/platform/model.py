"""What the platform builder takes and gives: its inputs, the secret references, and the objects it builds.

Objects are plain dicts shaped exactly like the Kubernetes manifests they stand for. A leaf may be a
`pulumi.Output` instead of a string only where a secret value goes (the stack passes Pulumi secrets, `render`
plain strings), and only inside the Secret objects the builder generates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from oscar_deploy.state.endpoints import MINIO_ACCESS_KEY_SECRET, MINIO_SECRET_KEY_SECRET, OSCAR_PASSWORD_SECRET

if TYPE_CHECKING:
    from oscar_deploy.spec.catalogue import Catalogue
    from oscar_deploy.spec.models import ClusterSpec

KubeObject = dict[str, Any]
# The Pulumi project of stacks/platform; its config keys are `<project>:<key>`.
STACK_PROJECT = "oscar-platform"
TlsMode = Literal["selfsigned", "letsencrypt", "letsencrypt-staging"]

# Names the OSCAR manager v4.1.2 builds on (O:pkg/types/config.go defaults; O:pkg/utils/minio.go webhook URL
# http://oscar.oscar:8080; O:pkg/utils/auth/multitenancy.go hard-codes oscar-svc). Changing them breaks OSCAR.
OSCAR_NAMESPACE = "oscar"
SERVICES_NAMESPACE = "oscar-svc"
OSCAR_NAME = "oscar"
OSCAR_PORT = 8080
OSCAR_SERVICE_ACCOUNT = "oscar-sa"
OSCAR_PVC = "oscar-pvc"
# The allow-list ConfigMap OSCAR reads (O:pkg/backends/k8s.go): this name, in OSCAR's namespace, this key.
ALLOWED_IMAGES_CONFIGMAP = "config.yaml"
ALLOWED_IMAGES_KEY = "allowed_image_repositories"

MINIO_NAMESPACE = "minio"
MINIO_NAME = "minio"
MINIO_API_PORT = 9000
MINIO_CONSOLE_PORT = 9001
# One region for MinIO (MINIO_SITE_REGION) and OSCAR (MINIO_REGION): it is part of the webhook ARN OSCAR builds.
MINIO_REGION = "us-east-1"
MINIO_INTERNAL_ENDPOINT = f"http://{MINIO_NAME}.{MINIO_NAMESPACE}:{MINIO_API_PORT}"

GATEWAY_NAMESPACE = "traefik"
# OSCAR's own defaults for exposed services (HTTPROUTE_GATEWAY_NAME / _NAMESPACE), so both agree.
GATEWAY_NAME = "traefik-gateway"
GATEWAY_CLASS = "traefik"
# Traefik's entry points inside its pod; Traefik binds a Gateway listener to the entry point of that port.
GATEWAY_HTTP_PORT = 8000
GATEWAY_HTTPS_PORT = 8443
GATEWAY_TLS_SECRET = "oscar-gateway-tls"  # noqa: S105 (a Secret's name)
CERT_MANAGER_NAMESPACE = "cert-manager"
CA_SECRET = "oscar-ca"  # noqa: S105 (a Secret's name)

NFS_NAMESPACE = "nfs-provisioner"
NFS_STORAGE_CLASS = "oscar-nfs"
NFS_PROVISIONER_NAME = "oscar-deploy.io/nfs"

MANAGED_BY = {"app.kubernetes.io/managed-by": "oscar-deploy", "app.kubernetes.io/part-of": "oscar"}


def on_a_server() -> dict[str, Any]:
    """A pod spec's nodeSelector and tolerations that place it on a server (k3s labels them control-plane); a new
    copy for each object. For the pods holding the platform's data on a local-path volume, which lives on one
    node's disk, and the Job reading the bundle's files a server holds: workers are scaled in and powered off,
    servers never are. The tolerations cover servers tainted by their k3s options (k3s itself taints none)."""
    return {
        "nodeSelector": {"node-role.kubernetes.io/control-plane": "true"},
        "tolerations": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
        ],
    }


@dataclass(frozen=True)
class SecretKeyRef:
    """Where a workload reads a secret value from: a key of a Secret in a namespace."""

    namespace: str
    name: str
    key: str

    def env(self, variable: str) -> dict[str, Any]:
        return {"name": variable, "valueFrom": {"secretKeyRef": {"name": self.name, "key": self.key}}}


# Secrets the builder generates, and the keys every consumer reads.
OSCAR_CREDENTIALS = "oscar-manager"
OSCAR_PASSWORD_REF = SecretKeyRef(OSCAR_NAMESPACE, OSCAR_CREDENTIALS, "OSCAR_PASSWORD")
OSCAR_MINIO_ACCESS_KEY_REF = SecretKeyRef(OSCAR_NAMESPACE, OSCAR_CREDENTIALS, "MINIO_ACCESS_KEY")
OSCAR_MINIO_SECRET_KEY_REF = SecretKeyRef(OSCAR_NAMESPACE, OSCAR_CREDENTIALS, "MINIO_SECRET_KEY")
MINIO_ROOT_SECRET = "minio-root"  # noqa: S105 (a Secret's name)
MINIO_ROOT_USER_REF = SecretKeyRef(MINIO_NAMESPACE, MINIO_ROOT_SECRET, "rootUser")
MINIO_ROOT_PASSWORD_REF = SecretKeyRef(MINIO_NAMESPACE, MINIO_ROOT_SECRET, "rootPassword")
# Job pods and the mount sidecar read this one (O:pkg/handlers/job.go, O:pkg/backends/resources/mount.go).
SERVICES_MINIO_SECRET = "minio"  # noqa: S105 (a Secret's name)
CA_CERTIFICATE_REF = SecretKeyRef(CERT_MANAGER_NAMESPACE, CA_SECRET, "ca.crt")

SecretValue = TypeVar("SecretValue")


@dataclass(frozen=True)
class PlatformSecrets(Generic[SecretValue]):
    """The secret values, as the caller holds them: Pulumi secret outputs in the stack, strings in `render`.

    MinIO's admin credentials double as OSCAR's MinIO credentials: OSCAR manages MinIO users, policies and
    webhooks over the admin API (O:pkg/utils/minio.go), so it needs the admin account.
    """

    oscar_password: SecretValue
    minio_access_key: SecretValue
    minio_secret_key: SecretValue


# Names under which `oscar-deploy` keeps these values in the cluster's state folder (the endpoints contract's).
STATE_SECRET_NAMES = {
    "oscar_password": OSCAR_PASSWORD_SECRET,
    "minio_access_key": MINIO_ACCESS_KEY_SECRET,
    "minio_secret_key": MINIO_SECRET_KEY_SECRET,
}


# Where the airgap role puts the bundle's fwatchdog and supervisor files on every server (its default
# `airgap_platform_files_dir`; inside k3s' data folder, so a reset removes them with it).
BUNDLE_FILES_HOST_PATH = "/var/lib/rancher/k3s/oscar-deploy/files"


@dataclass(frozen=True)
class BundledFile:
    """A release file the air-gap bundle carries: its name in the servers' files folder and its sha256."""

    name: str
    sha256: str


@dataclass(frozen=True)
class OfflinePlatform:
    """What changes when the cluster installs from an air-gap bundle instead of the internet.

    `files` maps a release URL of the binaries volume to the bundled copy; `registries` are the registries of
    the bundled images (Knative must not resolve their tags: it would ask the real registry); `traefik_chart`
    is the bundled chart archive, base64, which k3s's helm-controller installs instead of fetching it.
    """

    files: dict[str, BundledFile]
    registries: tuple[str, ...]
    traefik_chart: str


@dataclass(frozen=True)
class PlatformInputs(Generic[SecretValue]):
    """Everything the builder reads. `public_address` is the first server's public address (for sslip.io);
    `offline` is set when the cluster installs from an air-gap bundle."""

    spec: ClusterSpec
    catalogue: Catalogue
    secrets: PlatformSecrets[SecretValue]
    public_address: str | None = None
    offline: OfflinePlatform | None = None


@dataclass(frozen=True)
class JsonPatch:
    """Our settings for one object of a third-party manifest: RFC 6902 operations on the object it targets.

    The same operations serve the stack (applied before the object is declared) and GitOps users (written as
    a kustomize patch with this target).
    """

    api_version: str
    kind: str
    name: str
    namespace: str | None
    operations: tuple[dict[str, Any], ...]
    why: str

    def matches(self, obj: KubeObject) -> bool:
        metadata = obj.get("metadata") or {}
        return (
            obj.get("apiVersion") == self.api_version
            and obj.get("kind") == self.kind
            and metadata.get("name") == self.name
            and metadata.get("namespace") == self.namespace
        )


@dataclass(frozen=True)
class ThirdPartyManifest:
    """A pinned upstream release manifest, applied as upstream ships it plus our patches."""

    component: str
    file: str
    url: str
    sha256: str | None
    patches: tuple[JsonPatch, ...] = ()

    @property
    def pinned(self) -> bool:
        return self.sha256 is not None


@dataclass(frozen=True)
class Endpoints:
    """Where users reach the platform, and where pods inside the cluster reach MinIO."""

    host: str
    oscar_url: str
    dashboard_url: str
    minio_url: str
    minio_internal: str


@dataclass(frozen=True)
class PlatformObjects:
    """The builder's result: our objects in apply order, the third-party manifests, and facts for callers."""

    objects: list[KubeObject]
    third_party: list[ThirdPartyManifest]
    endpoints: Endpoints
    tls_mode: TlsMode
    storage_class: str
    unpinned: list[str] = field(default_factory=list)

    def find(self, kind: str, name: str, namespace: str | None = None) -> KubeObject:
        for obj in self.objects:
            metadata = obj["metadata"]
            if obj["kind"] == kind and metadata["name"] == name and metadata.get("namespace") == namespace:
                return obj
        raise KeyError(f"no {kind} {namespace + '/' if namespace else ''}{name}")

    @property
    def secrets(self) -> list[KubeObject]:
        return [obj for obj in self.objects if obj["kind"] == "Secret"]

    @property
    def non_secrets(self) -> list[KubeObject]:
        return [obj for obj in self.objects if obj["kind"] != "Secret"]
