"""The platform's part of an air-gap bundle: everything the OSCAR platform would otherwise fetch at install time.

`bundle build` adds, under `platform/` of the bundle folder:

    manifests/<component>/<file>    the pinned third-party release manifests (Gateway API, cert-manager, Knative
                                    Serving, Kourier, metrics-server), as upstream publishes them
    charts/traefik-<version>.tgz    the pinned Traefik chart, found in its Helm repository's index.yaml and
                                    checked against the digest the index lists
    files/<name>                    fwatchdog and the FaaS supervisor archives for both CPUs (oscar-pvc)
    images/<arch>/<name>.tar        every container image the platform runs, for each CPU of the cluster, as
                                    OCI archives k3s imports from its agent images folder

The image list is read, never written by hand: the images of our own objects (`build_platform`), the
`image:` of every container in the release manifests after our patches, Knative's queue-proxy sidecar (the
`queue-sidecar-image` of ConfigMap config-deployment, injected into every service pod), the image the Traefik
chart runs (its values.yaml `image`, tag defaulting to the chart's appVersion) and the smoke test's image.
cert-manager's ACME solver image is not bundled: it only serves Let's Encrypt, which needs the internet.

Every file is recorded in the bundle's manifest.json with its sha256. A file pinned in the catalogue must match
its pin; one that is not pinned yet is held to the digest this bundle first recorded for the same URL. A re-run
keeps every file that still verifies and fetches the rest; a file that fails is deleted and named in the error.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import yaml

from oscar_deploy.nodes.bundle import MANIFEST_NAME, BundleManifest, load_manifest, previous_manifest, save_manifest
from oscar_deploy.platform.binaries import ARCHES as BINARY_ARCHES
from oscar_deploy.platform.binaries import downloads
from oscar_deploy.platform.manifests import manifest_objects
from oscar_deploy.platform.model import (
    BundledFile,
    KubeObject,
    OfflinePlatform,
    PlatformInputs,
    PlatformSecrets,
    ThirdPartyManifest,
)
from oscar_deploy.platform.objects import build_platform
from oscar_deploy.platform.thirdparty import CONTAINER_LISTS, pod_spec, third_party_manifests
from oscar_deploy.spec.catalogue import Catalogue
from oscar_deploy.spec.models import ClusterSpec
from oscar_deploy.support.download import Downloader, sha256_of
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import check_regular_file, decode_text, read_user_bytes
from oscar_deploy.support.oci import FetchedImage, ImageRef, Skopeo, fetch_image, parse_reference
from oscar_deploy.support.urls import NETRC_HINT, http_url

PLATFORM = "platform"
STAGING = ".staging"
# A mirror of release downloads: https://HOST/PATH is fetched as <mirror>/HOST/PATH (a generic caching proxy,
# and the tests' server on 127.0.0.1). The bundle records the upstream URL either way.
RELEASE_MIRROR_ENV = "OSCAR_DEPLOY_RELEASE_MIRROR"


def mirrored(url: str) -> str:
    mirror = os.environ.get(RELEASE_MIRROR_ENV, "")
    if not mirror:
        return url
    # Checked like every URL a user gives: one with credentials would be printed by any failed download.
    mirror = http_url(mirror, RELEASE_MIRROR_ENV, NETRC_HINT)
    return f"{mirror}/{url.split('://', 1)[-1]}"


# A placeholder address for building the objects only to read their images (the gateway host needs one).
_PLACEHOLDER_ADDRESS = "192.0.2.1"
# Knative's queue-proxy image: data key of ConfigMap knative-serving/config-deployment, both spellings.
QUEUE_SIDECAR_KEYS = ("queue-sidecar-image", "queueSidecarImage")


@dataclass(frozen=True)
class ImageUse:
    """An image the platform runs and where it was found (for `bundle inspect` and error messages)."""

    reference: str
    found_in: str


# --- finding the images ------------------------------------------------------------------------------------


def container_images(objects: Iterable[KubeObject]) -> list[str]:
    """The `image` of every container and init container of every workload object."""
    images = []
    for obj in objects:
        spec = pod_spec(obj)
        for kind in CONTAINER_LISTS:
            for container in (spec or {}).get(kind) or []:
                if isinstance(container, dict) and container.get("image"):
                    images.append(str(container["image"]))
    return images


def queue_sidecar_images(objects: Iterable[KubeObject]) -> list[str]:
    return [
        str(obj["data"][key])
        for obj in objects
        if obj.get("kind") == "ConfigMap" and (obj.get("metadata") or {}).get("name") == "config-deployment"
        for key in QUEUE_SIDECAR_KEYS
        if isinstance(obj.get("data"), dict) and obj["data"].get(key)
    ]


def chart_image(chart: bytes, where: str) -> str:
    """The image a Helm chart runs by default: values.yaml `image.registry/repository:tag`, tag else appVersion."""
    chart_yaml: dict[str, Any] = {}
    values: dict[str, Any] = {}
    with tarfile.open(fileobj=io.BytesIO(chart), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) == 2 and parts[1] in ("Chart.yaml", "values.yaml") and member.isfile():
                handle = tar.extractfile(member)
                data = yaml.safe_load(handle.read()) if handle else None
                if isinstance(data, dict):
                    (chart_yaml if parts[1] == "Chart.yaml" else values).update(data)
    image = values.get("image")
    if not isinstance(image, dict) or not image.get("repository"):
        raise OperationError(f"{where}: values.yaml has no image.repository; the chart changed, look at it")
    tag = image.get("tag") or chart_yaml.get("appVersion")
    if not tag:
        raise OperationError(f"{where}: no image tag and no appVersion; the chart changed, look at it")
    registry = str(image.get("registry") or "docker.io")
    return f"{registry}/{image['repository']}:{tag}"


def platform_images(
    catalogue: Catalogue,
    spec: ClusterSpec,
    manifest_texts: dict[str, str],
    traefik_image: str,
) -> list[ImageUse]:
    """Every image the platform runs, each once, with where it was found."""
    secrets = PlatformSecrets("-", "-", "-")
    ours = build_platform(PlatformInputs(spec, catalogue, secrets, _PLACEHOLDER_ADDRESS))
    uses = [ImageUse(image, "oscar-deploy's objects") for image in container_images(ours.objects)]
    for manifest in ours.third_party:
        objects = manifest_objects(manifest, manifest_texts[manifest.url])
        where = f"{manifest.component}/{manifest.file}"
        uses += [ImageUse(image, where) for image in container_images(objects)]
        uses += [ImageUse(image, f"{where} (Knative queue-proxy)") for image in queue_sidecar_images(objects)]
    uses.append(ImageUse(traefik_image, "traefik chart"))
    smoke = catalogue["smoke_test_image"].image_reference
    if smoke:
        uses.append(ImageUse(smoke, "smoke test (oscar-deploy verify)"))
    unique: dict[str, ImageUse] = {}
    for use in uses:
        unique.setdefault(use.reference, use)
    return list(unique.values())


# --- building -----------------------------------------------------------------------------------------------


def check_platform_arches(arches: Iterable[str]) -> None:
    unsupported = [arch for arch in arches if arch not in BINARY_ARCHES]
    if unsupported:
        raise UserInputError(
            f"--arch {','.join(unsupported)}: the OSCAR platform runs on {' and '.join(BINARY_ARCHES)} nodes "
            "only; build a k3s-only bundle for those with --k3s-only"
        )


@dataclass
class PlatformBundleBuilder:
    """Fills the platform's part of a bundle folder; keeps what still verifies from an earlier run."""

    directory: Path
    catalogue: Catalogue
    spec: ClusterSpec
    arches: list[str]
    downloader: Downloader
    skopeo: Skopeo
    mirror: str | None = None
    log: Callable[[str], None] = lambda _line: None

    def __post_init__(self) -> None:
        manifest = previous_manifest(self.directory)
        if manifest is None:
            raise UserInputError(f"{self.directory}: no bundle manifest; the k3s part must be built first")
        self.manifest: BundleManifest = manifest
        self.previous: dict[str, Any] = dict(manifest.platform)
        self.kept: set[str] = set()

    # Each kept or fetched file is recorded at once and the manifest saved after each image, so an interrupted
    # run keeps what it finished; entries of an earlier run not reached yet stay listed until replaced.
    def _record(self, path: str, sha256: str, size: int) -> None:
        self.manifest.files[path] = {"sha256": sha256, "size": size}
        self.kept.add(path)

    def _save(self, section: dict[str, Any], final: bool = False) -> None:
        if not final:
            done = {(entry["reference"], entry["arch"]) for entry in section.get("images", [])}
            waiting = [
                entry
                for entry in self.previous.get("images") or []
                if isinstance(entry, dict) and (entry.get("reference"), entry.get("arch")) not in done
            ]
            section = {**section, "images": [*section.get("images", []), *waiting]}
        else:
            self.manifest.files = {
                key: value
                for key, value in self.manifest.files.items()
                if not key.startswith(f"{PLATFORM}/") or key in self.kept
            }
        self.manifest.platform = section
        save_manifest(self.directory, self.manifest)

    def _verified(self, relative: str, sha256: str | None) -> bool:
        path = self.directory / relative
        return sha256 is not None and path.is_file() and sha256_of(path) == sha256

    def _previous_entries(self, kind: str, key: str) -> dict[str, dict[str, Any]]:
        return {str(entry[key]): entry for entry in self.previous.get(kind) or [] if isinstance(entry, dict)}

    def build(self) -> dict[str, Any]:
        check_platform_arches(self.arches)
        section: dict[str, Any] = {
            "arches": sorted(self.arches),
            "versions": {key: component.version for key, component in self.catalogue.components.items()},
            "registry_mirror": self.mirror or "",
        }
        third_party = third_party_manifests(self.catalogue)
        section["manifests"] = [self._release_manifest(m) for m in third_party]
        texts = {entry["url"]: (self.directory / entry["path"]).read_text() for entry in section["manifests"]}
        section["binaries"] = self._binaries()
        chart = self._traefik_chart()
        section["charts"] = [chart]
        self._save(section)
        uses = platform_images(self.catalogue, self.spec, texts, chart["image"])
        section["images"] = []
        previous = {(e["reference"], e["arch"]): e for e in self.previous.get("images") or [] if isinstance(e, dict)}
        for use in uses:
            image = parse_reference(use.reference)
            for arch in sorted(self.arches):
                entry = self._image(image, arch, previous.get((use.reference, arch)))
                section["images"].append({**entry, "found_in": use.found_in})
                self._save(section)
        shutil.rmtree(self.directory / STAGING, ignore_errors=True)
        self._save(section, final=True)
        self._remove_strays()
        return section

    def _release_manifest(self, manifest: ThirdPartyManifest) -> dict[str, Any]:
        relative = f"{PLATFORM}/manifests/{manifest.component}/{manifest.file}"
        earlier = self._previous_entries("manifests", "url").get(manifest.url, {})
        expected = manifest.sha256 or earlier.get("sha256")
        sha256 = self._download(manifest.url, relative, expected)
        return {
            "component": manifest.component,
            "file": manifest.file,
            "url": manifest.url,
            "path": relative,
            "sha256": sha256,
            "pinned": manifest.sha256 is not None,
        }

    def _binaries(self) -> list[dict[str, Any]]:
        earlier = self._previous_entries("binaries", "url")
        entries = []
        for download in downloads(self.catalogue):
            name = download.url.rsplit("/", 1)[-1]
            relative = f"{PLATFORM}/files/{name}"
            expected = download.sha256 or earlier.get(download.url, {}).get("sha256")
            sha256 = self._download(download.url, relative, expected)
            entries.append(
                {"url": download.url, "name": name, "arch": download.arch, "path": relative, "sha256": sha256}
            )
        return entries

    def _traefik_chart(self) -> dict[str, Any]:
        component = self.catalogue["traefik_chart"]
        if not component.helm_repo:
            raise OperationError("catalogue: traefik_chart has no helm_repo; reinstall oscar-deploy")
        earlier: dict[str, Any] = next(iter(self.previous.get("charts") or []), {})
        relative = f"{PLATFORM}/charts/traefik-{component.version}.tgz"
        if earlier.get("version") == component.version and self._verified(relative, earlier.get("sha256")):
            self.log(f"{relative}: already in the bundle and verified")
            sha256, url = str(earlier["sha256"]), str(earlier["url"])
            self._record(relative, sha256, (self.directory / relative).stat().st_size)
        else:
            url, sha256 = self._chart_in_index(component.helm_repo, "traefik", component.version)
            self._download(url, relative, sha256)
        image = chart_image((self.directory / relative).read_bytes(), relative)
        return {
            "component": "traefik_chart",
            "version": component.version,
            "url": url,
            "path": relative,
            "sha256": sha256,
            "image": image,
        }

    def _chart_in_index(self, repo: str, name: str, version: str) -> tuple[str, str]:
        """The chart archive's URL and sha256 as the Helm repository's index.yaml lists them."""
        index_url = urljoin(repo.rstrip("/") + "/", "index.yaml")
        path = self.directory / STAGING / "helm-index.yaml"
        self.downloader.fetch(mirrored(index_url), path, label=f"{name} chart index")
        try:
            index = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise OperationError(f"{index_url}: not valid YAML ({exc}); check the chart repository") from None
        finally:
            path.unlink(missing_ok=True)
        for entry in (index or {}).get("entries", {}).get(name) or []:
            if str(entry.get("version")) == version and entry.get("urls") and entry.get("digest"):
                return urljoin(repo.rstrip("/") + "/", str(entry["urls"][0])), str(entry["digest"])
        raise OperationError(f"{index_url}: lists no {name} chart {version} with a digest; check the version")

    def _download(self, url: str, relative: str, expected: str | None) -> str:
        path = self.directory / relative
        if expected and self._verified(relative, expected):
            self.log(f"{relative}: already in the bundle and verified")
        else:
            if path.exists():
                path.unlink()  # a stale or damaged copy: never used, fetched again and checked
            # The downloader's errors name the file (`relative`) and the URL it came from.
            expected = self.downloader.fetch(mirrored(url), path, expected, label=relative)
        assert expected is not None
        self._record(relative, expected, path.stat().st_size)
        return expected

    def _image(self, image: ImageRef, arch: str, earlier: dict[str, Any] | None) -> dict[str, Any]:
        relative = f"{PLATFORM}/images/{arch}/{image.archive_name()}"
        if earlier and earlier.get("file") == relative and self._verified(relative, earlier.get("sha256")):
            self.log(f"{relative}: already in the bundle and verified")
            self._record(relative, str(earlier["sha256"]), int(earlier["size"]))
            return {key: earlier[key] for key in FetchedImage.__dataclass_fields__}
        staging = self.directory / STAGING / arch / image.archive_name()
        fetched = fetch_image(self.skopeo, image, arch, self.directory, relative, staging, self.mirror)
        self.log(f"{relative}: {image.reference} for {arch}, {fetched.size} bytes, verified")
        self._record(relative, fetched.sha256, fetched.size)
        return fetched.as_dict()

    def _remove_strays(self) -> None:
        """Files under platform/ the manifest no longer lists (earlier pins, interrupted runs) are deleted."""
        root = self.directory / PLATFORM
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            relative = path.relative_to(self.directory).as_posix()
            if path.is_file() and relative not in self.manifest.files:
                path.unlink()
                self.log(f"{relative}: not part of this bundle any more, deleted")


# --- reading a bundle ---------------------------------------------------------------------------------------


def offline_platform(directory: Path) -> OfflinePlatform:
    """What the builder needs from a (checked) bundle to install the platform offline."""
    manifest = load_manifest(directory)
    platform = manifest.platform
    if not platform.get("images"):
        raise UserInputError(
            f"{directory}: the bundle holds k3s only; add the platform with `oscar-deploy bundle build {directory}`"
        )
    try:
        files = {}
        for entry in platform["binaries"]:
            name = str(entry["name"])
            _listed(directory, manifest, f"{PLATFORM}/files/{name}")
            files[str(entry["url"])] = BundledFile(name, str(entry["sha256"]))
        registries = sorted({parse_reference(str(entry["reference"])).registry for entry in platform["images"]})
        chart_path = str(platform["charts"][0]["path"])
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise damaged_platform_section(directory, exc) from None
    chart = _bundled_bytes(directory, manifest, chart_path)
    return OfflinePlatform(files, tuple(registries), base64.b64encode(chart).decode())


def bundled_manifest_texts(directory: Path, third_party: list[ThirdPartyManifest]) -> dict[str, str]:
    """The release manifests from a bundle, each checked against the digest the bundle recorded."""
    manifest = load_manifest(directory)
    try:
        entries = {str(entry["url"]): str(entry["path"]) for entry in manifest.platform.get("manifests") or []}
    except (KeyError, TypeError, AttributeError) as exc:
        raise damaged_platform_section(directory, exc) from None
    texts = {}
    for wanted in third_party:
        relative = entries.get(wanted.url)
        if relative is None:
            raise UserInputError(
                f"{directory}: the bundle lacks {wanted.url}; rebuild it with `oscar-deploy bundle build`"
            )
        texts[wanted.url] = decode_text(_bundled_bytes(directory, manifest, relative), relative, "release manifest")
    return texts


def _listed(directory: Path, manifest: BundleManifest, relative: str) -> dict[str, Any]:
    """The manifest's record (size, sha256) of a file the platform section names; only listed files are read."""
    entry = manifest.files.get(relative)
    if entry is None:
        raise UserInputError(
            f"{directory}: the platform section names {relative[:80]!r}, a file the bundle does not list; rebuild "
            "it with `oscar-deploy bundle build`"
        )
    return entry


def _bundled_bytes(directory: Path, manifest: BundleManifest, relative: str) -> bytes:
    """A listed file of the bundle, read through the guarded path and held to its recorded size and sha256."""
    entry = _listed(directory, manifest, relative)
    path, size = directory / relative, entry.get("size")
    check_regular_file(path, "bundle file", missing="rebuild the bundle with `oscar-deploy bundle build`")
    if not isinstance(size, int) or path.stat().st_size != size:
        raise UserInputError(f"{directory}: {relative} does not match its sha256; rebuild the bundle")
    data = read_user_bytes(path, "bundle file", limit=size)
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise UserInputError(f"{directory}: {relative} does not match its sha256; rebuild the bundle")
    return data


def damaged_platform_section(directory: Path, exc: Exception) -> UserInputError:
    return UserInputError(
        f"{directory / MANIFEST_NAME}: damaged platform section ({type(exc).__name__}: {str(exc)[:80]}); rebuild it "
        "with `oscar-deploy bundle build`"
    )
