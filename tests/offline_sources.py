"""Everything `oscar-deploy bundle build` downloads, served on 127.0.0.1 for tests:

* a release server (tests/unit/release_server.py) with the k3s release files (the labelled k3s stand-in of
  tests/doubles/k3s as binary, a labelled stand-in images archive, upstream-style sha256sum files),
  and, under /mirror/<host>/<path> (OSCAR_DEPLOY_RELEASE_MIRROR), stand-ins of the third-party release manifests
  (tests/doubles/release_manifests.py, plus one workload each whose image is in the registry below), of
  fwatchdog and the supervisor archives, and of the Traefik chart with its Helm repository index.yaml
  (entries.<chart>[].version/urls/digest, as `helm repo index` writes it);
* a real registry (tests/registry.py) holding one small two-arch image under each repository path the
  platform's images name, to be used with `--registry-mirror`.

The spec pins MinIO by tag (a version override drops the catalogue's upstream digest, which no test image can
have). Nothing here ships in the wheel.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from oscar_deploy.platform.binaries import downloads
from oscar_deploy.platform.thirdparty import third_party_manifests
from oscar_deploy.spec.arches import ARCHES
from oscar_deploy.spec.catalogue import Catalogue, load_catalogue
from oscar_deploy.support.oci import parse_reference
from tests.doubles.bundle import stand_in_binary
from tests.doubles.release_manifests import STAND_INS
from tests.registry import Registry, TinyImage, build_layout
from tests.unit.release_server import ReleaseServer, Route

MINIO_TAG = "RELEASE.2025-09-07T16-13-09Z"
SPEC_VERSIONS = {"minio": MINIO_TAG}
TRAEFIK_APP_VERSION = "v3.5.0"
TRAEFIK_IMAGE = f"docker.io/traefik:{TRAEFIK_APP_VERSION}"
KNATIVE_CONTROLLER = "gcr.io/knative-releases/knative.dev/serving/cmd/controller"
KNATIVE_QUEUE = "gcr.io/knative-releases/knative.dev/serving/cmd/queue"
CERT_MANAGER_IMAGE = "quay.io/jetstack/cert-manager-controller:v1.18.2"
METRICS_SERVER_IMAGE = "registry.k8s.io/metrics-server/metrics-server:v0.8.0"


def catalogue() -> Catalogue:
    return load_catalogue().with_overrides(SPEC_VERSIONS)


def spec_text(name: str, extra: str = "") -> str:
    return f"name: {name}\nversions:\n  minio: {MINIO_TAG}\n{extra}"


def _deployment(name: str, namespace: str, image: str) -> dict[str, object]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": name, "image": image}]}},
        },
    }


def _chart(version: str) -> bytes:
    files = {
        "traefik/Chart.yaml": yaml.safe_dump(
            {"apiVersion": "v2", "name": "traefik", "version": version, "appVersion": TRAEFIK_APP_VERSION}
        ),
        "traefik/values.yaml": yaml.safe_dump({"image": {"registry": "docker.io", "repository": "traefik", "tag": ""}}),
        "traefik/templates/NOTES.txt": "stand-in chart for tests\n",
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            data = text.encode()
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _mirror_path(url: str) -> str:
    return "/mirror/" + url.split("://", 1)[1]


@dataclass
class OfflineSources:
    registry: Registry
    server: ReleaseServer
    images: dict[str, TinyImage]  # reference as the platform names it -> the test image behind it
    k3s_version: str

    def env(self) -> dict[str, str]:
        return {
            "OSCAR_DEPLOY_K3S_DOWNLOAD_URL": f"{self.server.base}/download",
            "OSCAR_DEPLOY_RELEASE_MIRROR": f"{self.server.base}/mirror",
        }

    def close(self) -> None:
        self.server.close()
        self.registry.stop()


def start_offline_sources(root: Path, arches: tuple[str, ...] = ("amd64", "arm64")) -> OfflineSources:
    cat = catalogue()
    registry = Registry(root / "registry")
    server = ReleaseServer()
    version = cat.version("k3s")
    version_path = version.replace("+", "%2B")
    for arch in arches:
        names = ARCHES[arch]
        files = {
            names.k3s_binary: stand_in_binary(version, arch),
            names.k3s_images: f"TEST DOUBLE: stands in for upstream's {names.k3s_images}; not an archive\n".encode(),
        }
        sums = "".join(f"{hashlib.sha256(body).hexdigest()}  {name}\n" for name, body in files.items())
        for name, body in {**files, names.k3s_checksums: sums.encode()}.items():
            server.routes[f"/download/{version_path}/{name}"] = Route(body)

    # One distinct two-arch image per reference; the knative ones are pinned by digest, as upstream's are.
    references = [
        cat["nfs_provisioner"].image_reference,
        cat["minio"].image_reference,
        cat["oscar"].image_reference,
        cat["bin_populator"].image_reference,
        TRAEFIK_IMAGE,
        CERT_MANAGER_IMAGE,
        METRICS_SERVER_IMAGE,
        KNATIVE_CONTROLLER,
        KNATIVE_QUEUE,
    ]
    images: dict[str, TinyImage] = {}
    for number, reference in enumerate(references):
        assert reference is not None
        layout = root / "layouts" / str(number)
        image = build_layout(layout, arches, label=reference, payload=64 * 1024)
        ref = parse_reference(
            reference if "@" in reference or ":" in reference.rsplit("/", 1)[-1] else reference + ":t"
        )
        registry.push(layout, ref.repository, ref.tag or "t")
        if reference in (KNATIVE_CONTROLLER, KNATIVE_QUEUE):
            reference = f"{reference}@{image.index_digest}"
        images[reference] = image

    by_prefix = {
        prefix: ref for ref in images for prefix in (KNATIVE_CONTROLLER, KNATIVE_QUEUE) if ref.startswith(prefix)
    }
    workloads = {
        "cert-manager.yaml": [],  # the stand-in's Deployment already runs CERT_MANAGER_IMAGE
        "serving-core.yaml": [
            _deployment("controller", "knative-serving", by_prefix[KNATIVE_CONTROLLER]),
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "config-deployment", "namespace": "knative-serving"},
                "data": {
                    "queue-sidecar-image": by_prefix[KNATIVE_QUEUE],
                    "_example": "# upstream documents keys here\n",
                },
            },
        ],
        "components.yaml": [_deployment("metrics-server", "kube-system", METRICS_SERVER_IMAGE)],
    }
    for manifest in third_party_manifests(cat):
        documents = [*STAND_INS[manifest.file], *workloads.get(manifest.file, [])]
        server.routes[_mirror_path(manifest.url)] = Route(yaml.safe_dump_all(documents).encode())
    for download in downloads(cat):
        server.routes[_mirror_path(download.url)] = Route(f"stand-in for {download.url}\n".encode())
    chart_component = cat["traefik_chart"]
    chart = _chart(chart_component.version)
    chart_url = f"{chart_component.helm_repo}/traefik-{chart_component.version}.tgz"
    index = {
        "apiVersion": "v1",
        "entries": {
            "traefik": [
                {"version": "1.0.0", "urls": [f"{chart_component.helm_repo}/traefik-1.0.0.tgz"], "digest": "0" * 64},
                {
                    "version": chart_component.version,
                    "urls": [chart_url],
                    "digest": hashlib.sha256(chart).hexdigest(),
                },
            ]
        },
    }
    server.routes[_mirror_path(f"{chart_component.helm_repo}/index.yaml")] = Route(yaml.safe_dump(index).encode())
    server.routes[_mirror_path(chart_url)] = Route(chart)
    return OfflineSources(registry, server, images, version)
