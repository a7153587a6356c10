"""Container images for an air-gap bundle: fetched with skopeo, checked by digest, packed as archives k3s imports.

Transport is skopeo's (Debian package `skopeo`): `skopeo inspect --raw` reads the image's top manifest (a
multi-arch index, or one image manifest) and `skopeo --override-arch ARCH copy ... dir:` copies the build of one
CPU with its manifest bytes unchanged; skopeo checks every blob it receives against its digest. We then check
again what landed on disk (the top manifest against the reference's pinned digest, the arch's manifest against
the index entry, every blob against its name) and pack an OCI image layout archive (`oci-layout`, `index.json`,
`blobs/sha256/...`).

The archive keeps the upstream index as the image's target with only this CPU's blobs, so the image keeps the
digest every manifest references it by (`repo@sha256:<index digest>`). k3s imports such archives from
`/var/lib/rancher/k3s/agent/images/` with containerd's `WithAllPlatforms(true), WithSkipMissing()`
(k3s pkg/agent/containerd/containerd.go `preloadFile`, containerd v2 releases: 1.32 and later), which accepts an
index whose other platforms are absent; containerd names each image from the `io.containerd.image.name`
annotation of its `index.json` entry.

A copy that fails or does not verify leaves nothing behind: the staging folder is removed and the error names
the image and, for a bad blob, the file. A finished archive is renamed into place only once complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oscar_deploy.support import process_group
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import parse_json

DOCKER_HUB = "docker.io"
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
# containerd reads the image name from this annotation of an index.json entry (containerd images.AnnotationImageName).
IMAGE_NAME_ANNOTATION = "io.containerd.image.name"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
SKOPEO_TIMEOUT = 3600
# Variant a CPU's build carries in an index (`arm` images are armv7 for k3s boards).
VARIANTS = {"arm": "v7"}

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^(?:(?P<host>[a-zA-Z0-9.-]+(?::\d+)?)/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


@dataclass(frozen=True)
class ImageRef:
    """An image reference, normalised as docker does: no host means docker.io, one path component library/."""

    reference: str
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def names(self) -> list[str]:
        """What the imported image is called: by digest when pinned, and by tag when it has one."""
        names = [f"{self.name}@{self.digest}"] if self.digest else []
        if self.tag:
            names.append(f"{self.name}:{self.tag}")
        return names

    def source(self, mirror: str | None, digest: str | None = None) -> str:
        """skopeo's `docker://` source, from the image's registry or from `mirror` (same repository path)."""
        host = mirror or self.registry
        pointer = f"@{digest}" if digest else f"@{self.digest}" if self.digest else f":{self.tag}"
        return f"docker://{host}/{self.repository}{pointer}"

    def archive_name(self) -> str:
        """A file name for the image's archive: registry, repository and tag (or the digest's start)."""
        label = self.tag or (self.digest or "")[7:19]
        text = f"{self.registry}_{self.repository}_{label}".replace("/", "_").replace(":", "_")
        return re.sub(r"[^A-Za-z0-9._-]", "-", text) + ".tar"


def parse_reference(text: str) -> ImageRef:
    match = _REFERENCE.fullmatch(text.strip())
    host = match.group("host") if match else None
    if match and host and "." not in host and ":" not in host and host != "localhost":
        # `grycap/oscar`: the first component is a Docker Hub namespace, not a host.
        match = _REFERENCE.fullmatch(f"{DOCKER_HUB}/{text.strip()}")
        host = DOCKER_HUB
    if not match or not (match.group("tag") or match.group("digest")):
        raise UserInputError(
            f"image {text!r}: not an image reference with a tag or a digest (repo:tag or repo@sha256:...)"
        )
    registry = host or DOCKER_HUB
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    path = match.group("path")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return ImageRef(text.strip(), registry, path, match.group("tag"), match.group("digest"))


@dataclass(frozen=True)
class FetchedImage:
    """One image's build for one CPU, as an archive in the bundle."""

    reference: str
    arch: str
    index_digest: str  # the top manifest's digest (the index of a multi-arch image)
    manifest_digest: str  # this CPU's image manifest
    file: str  # path relative to the bundle
    sha256: str
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "arch": self.arch,
            "index_digest": self.index_digest,
            "manifest_digest": self.manifest_digest,
            "file": self.file,
            "sha256": self.sha256,
            "size": self.size,
        }


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Skopeo:
    """The `skopeo` command: reads manifests and copies one CPU's build into a folder."""

    def __init__(self, binary: str | None = None, tls_verify: bool = True, retries: int = 2) -> None:
        found = binary or shutil.which("skopeo")
        if not found:
            raise UserInputError(
                "skopeo: not found on PATH; install it (Debian/Ubuntu: sudo apt-get install -y skopeo, "
                "or bash scripts/install-system-packages.sh)"
            )
        self.binary = found
        self.tls_verify = tls_verify
        self.retries = retries

    def _run(self, args: list[str], what: str) -> bytes:
        try:
            completed = process_group.run([self.binary, *args], capture_output=True, timeout=SKOPEO_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise OperationError(f"{what}: skopeo gave no answer in {SKOPEO_TIMEOUT}s; check the registry") from None
        if completed.returncode != 0:
            lines = completed.stderr.decode(errors="replace").strip().splitlines()
            detail = lines[-1] if lines else f"exit code {completed.returncode}"
            message = re.search(r'msg="((?:[^"\\]|\\.)*)"', detail)  # logrus' fatal line: keep its message
            if message:
                detail = message.group(1).replace('\\"', '"')
            raise OperationError(f"{what}: skopeo failed: {detail}")
        return completed.stdout

    def inspect_raw(self, source: str, what: str) -> bytes:
        flags = [f"--tls-verify={str(self.tls_verify).lower()}", f"--retry-times={self.retries}"]
        return self._run(["inspect", "--raw", *flags, source], what)

    def copy_arch(self, source: str, arch: str, destination: Path, what: str) -> None:
        platform = ["--override-os", "linux", "--override-arch", arch]
        if arch in VARIANTS:
            platform += ["--override-variant", VARIANTS[arch]]
        flags = [f"--src-tls-verify={str(self.tls_verify).lower()}", f"--retry-times={self.retries}"]
        self._run([*platform, "copy", "--quiet", *flags, source, f"dir:{destination}"], what)


def _platform_entry(index: dict[str, Any], arch: str) -> dict[str, Any] | None:
    candidates = [
        entry
        for entry in index.get("manifests") or []
        if isinstance(entry, dict)
        and (entry.get("platform") or {}).get("os") == "linux"
        and (entry.get("platform") or {}).get("architecture") == arch
    ]
    wanted = VARIANTS.get(arch)
    for entry in candidates:
        if wanted is None or entry["platform"].get("variant") in (wanted, None):
            return entry
    return None


def fetch_image(
    skopeo: Skopeo,
    image: ImageRef,
    arch: str,
    bundle: Path,
    relative: str,
    staging: Path,
    mirror: str | None = None,
) -> FetchedImage:
    """Copy `image`'s build for `arch` into `bundle/relative` (an OCI archive), checked digest by digest."""
    what = f"image {image.reference} ({arch})"
    shutil.rmtree(staging, ignore_errors=True)  # an interrupted earlier run starts over, cleanly
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        top_raw = skopeo.inspect_raw(image.source(mirror), what)
        top_digest = f"sha256:{sha256_hex(top_raw)}"
        if image.digest and top_digest != image.digest:
            raise OperationError(
                f"{what}: the registry{' mirror ' + mirror if mirror else ''} serves manifest {top_digest}, "
                f"but the reference pins {image.digest}; nothing was kept; check the mirror"
            )
        top = _json(top_raw, what, "manifest")
        is_index = top.get("mediaType") in INDEX_TYPES or "manifests" in top
        entry = _platform_entry(top, arch) if is_index else None
        if is_index and entry is None:
            raise OperationError(f"{what}: the image has no linux/{arch} build; choose another --arch or image")
        skopeo.copy_arch(image.source(mirror, top_digest), arch, staging, what)
        manifest_path = staging / "manifest.json"
        manifest_raw = manifest_path.read_bytes() if manifest_path.is_file() else b""
        manifest_digest = f"sha256:{sha256_hex(manifest_raw)}"
        expected = str(entry["digest"]) if entry else top_digest
        if manifest_digest != expected:
            raise OperationError(
                f"{what}: skopeo wrote manifest {manifest_digest}, the index lists {expected} for {arch}; "
                "nothing was kept; run again"
            )
        manifest = _json(manifest_raw, what, "image manifest")
        blobs = [manifest.get("config") or {}, *(manifest.get("layers") or [])]
        contents: list[tuple[str, bytes | Path]] = []
        blob_paths: list[Path] = []
        for blob in blobs:
            digest = str(blob.get("digest", ""))
            path = staging / digest.removeprefix("sha256:")
            if not digest.startswith("sha256:") or not path.is_file():
                raise OperationError(f"{what}: blob {digest or '(none)'} missing after the copy; run again")
            if f"sha256:{_file_sha256(path)}" != digest:
                path.unlink()
                raise OperationError(
                    f"{what}: blob {path.name} does not match its digest {digest}; it was deleted and nothing "
                    "uses it; the registry serves a damaged or tampered layer"
                )
            contents.append((digest, path))
            blob_paths.append(path)
        if not is_index:
            config = _json(blob_paths[0].read_bytes(), what, "image config")
            if config.get("architecture") != arch:
                raise OperationError(
                    f"{what}: a single-arch image built for {config.get('architecture')!r}; "
                    f"it has no {arch} build, choose another --arch or image"
                )
        contents.append((manifest_digest, manifest_raw))
        target = {"mediaType": _media_type(manifest, False), "digest": manifest_digest, "size": len(manifest_raw)}
        if is_index:
            contents.append((top_digest, top_raw))
            target = {"mediaType": _media_type(top, True), "digest": top_digest, "size": len(top_raw)}
        archive = bundle / relative
        digest = _write_archive(archive, image, target, contents)
        return FetchedImage(
            image.reference, arch, top_digest, manifest_digest, relative, digest, archive.stat().st_size
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _json(data: bytes, what: str, kind: str) -> dict[str, Any]:
    try:
        value = parse_json(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise OperationError(f"{what}: the registry's {kind} is not a JSON object; check the registry")
    return value


def _media_type(manifest: dict[str, Any], index: bool) -> str:
    if manifest.get("mediaType"):
        return str(manifest["mediaType"])
    return INDEX_TYPES[0] if index else "application/vnd.oci.image.manifest.v1+json"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_archive(
    archive: Path, image: ImageRef, target: dict[str, Any], contents: list[tuple[str, bytes | Path]]
) -> str:
    """An OCI image layout as a tar (deterministic: fixed times and owners), renamed into place when complete."""
    entries = [
        {**target, "annotations": {IMAGE_NAME_ANNOTATION: name, REF_NAME_ANNOTATION: image.tag or name}}
        for name in image.names
    ]
    members: list[tuple[str, bytes | Path]] = [
        ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
        ("index.json", json.dumps({"schemaVersion": 2, "manifests": entries}, indent=2).encode()),
    ]
    seen = set()
    for digest, content in contents:
        if digest not in seen:
            seen.add(digest)
            members.append((f"blobs/sha256/{digest.removeprefix('sha256:')}", content))
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f".{archive.name}.part")
    try:
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            for directory in ("blobs", "blobs/sha256"):
                info = tarfile.TarInfo(directory)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                tar.addfile(info)
            for name, content in members:
                info = tarfile.TarInfo(name)
                info.mode, info.mtime = 0o644, 0
                if isinstance(content, Path):
                    info.size = content.stat().st_size
                    with content.open("rb") as handle:
                        tar.addfile(info, handle)
                else:
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        digest = _file_sha256(partial)
        partial.chmod(0o644)
        partial.replace(archive)
        return digest
    finally:
        partial.unlink(missing_ok=True)


def archive_images(path: Path) -> list[tuple[str, str]]:
    """(name, target digest) of every image an OCI archive names, as containerd's import would read them."""
    with tarfile.open(path) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise OperationError(f"{path}: no index.json; not an OCI image archive")
        index = parse_json(member.read())
    return [
        (str((entry.get("annotations") or {}).get(IMAGE_NAME_ANNOTATION, "")), str(entry.get("digest", "")))
        for entry in index.get("manifests") or []
    ]
