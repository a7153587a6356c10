"""Third-party release manifests on disk: downloaded once, checked by sha256, then read from a cache folder.

A pinned manifest (sha256 in the catalogue) must match its pin, from the network or the cache. An unpinned
one is trusted on first use: its digest is recorded in the cache's lock file and every later use must match
it, so the platform never silently changes under a re-run; the digest is reported so that it can be pinned.
A cache folder filled on a connected machine makes the stack work offline.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from oscar_deploy.platform.jsonpatch import apply_patches
from oscar_deploy.platform.model import KubeObject, ThirdPartyManifest
from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.files import atomic_write, parse_json

LOCK_FILE = "manifests.lock.json"
DOWNLOAD_TIMEOUT = 60
MAX_MANIFEST_BYTES = 32 * 1024 * 1024


def http_get(url: str) -> bytes:
    if not url.startswith(("https://", "http://")):
        raise OperationError(f"{url}: only http(s) downloads are supported")
    request = urllib.request.Request(url, headers={"User-Agent": "oscar-deploy"})  # noqa: S310 (scheme checked)
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:  # noqa: S310 (scheme checked)
        data: bytes = response.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise OperationError(f"{url}: larger than {MAX_MANIFEST_BYTES} bytes; not a release manifest")
    return data


class ManifestCache:
    """Release manifests in `folder`, fetched with `fetch` when missing."""

    def __init__(self, folder: Path, fetch: Callable[[str], bytes] = http_get) -> None:
        self.folder = folder
        self.fetch = fetch
        self.recorded: list[tuple[str, str]] = []  # (url, sha256) trusted on first use in this run

    def path_for(self, manifest: ThirdPartyManifest) -> Path:
        url_digest = hashlib.sha256(manifest.url.encode()).hexdigest()[:12]
        return self.folder / f"{manifest.component}-{url_digest}-{manifest.file}"

    def _lock(self) -> dict[str, str]:
        path = self.folder / LOCK_FILE
        if not path.is_file():
            return {}
        try:
            data = parse_json(path.read_text())
        except json.JSONDecodeError as exc:
            raise OperationError(f"{path}: not valid JSON ({exc.msg}); delete it to trust the manifests anew") from exc
        return {str(url): str(digest) for url, digest in data.items()}

    def text(self, manifest: ThirdPartyManifest) -> str:
        lock = self._lock()
        expected = manifest.sha256 or lock.get(manifest.url)
        pin = "the catalogue pins" if manifest.sha256 else f"{self.folder / LOCK_FILE} recorded"
        path = self.path_for(manifest)
        if path.is_file():
            data = path.read_bytes()
            if expected is None or hashlib.sha256(data).hexdigest() == expected:
                return self._accept(manifest, data, expected, lock)
            path.unlink()  # a stale or damaged copy: fetch again and check that
        try:
            data = self.fetch(manifest.url)
        except (urllib.error.URLError, OSError) as exc:
            raise OperationError(
                f"{manifest.url}: cannot download ({exc}); copy the file to {path} on a connected machine "
                "or retry when online"
            ) from exc
        digest = hashlib.sha256(data).hexdigest()
        if expected is not None and digest != expected:
            raise OperationError(
                f"{manifest.url}: sha256 {digest}, but {pin} {expected}; the release changed or the "
                "download was tampered with"
            )
        atomic_write(path, data, 0o644)
        return self._accept(manifest, data, expected, lock)

    def _accept(self, manifest: ThirdPartyManifest, data: bytes, expected: str | None, lock: dict[str, str]) -> str:
        if expected is None:
            digest = hashlib.sha256(data).hexdigest()
            lock[manifest.url] = digest
            atomic_write(self.folder / LOCK_FILE, json.dumps(lock, indent=2, sort_keys=True) + "\n", 0o644)
            self.recorded.append((manifest.url, digest))
        return data.decode()


def manifest_objects(manifest: ThirdPartyManifest, text: str) -> list[KubeObject]:
    """The manifest's objects with our patches applied (empty YAML documents dropped)."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc]
    except yaml.YAMLError as exc:
        raise OperationError(f"{manifest.url}: not valid YAML ({exc})") from exc
    for doc in documents:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise OperationError(f"{manifest.url}: a document is not a Kubernetes object")
    return apply_patches(documents, manifest.patches, manifest.url)


def offline_manifest(manifest: ThirdPartyManifest, text: str) -> ThirdPartyManifest:
    """The manifest with the pull-policy patches an offline cluster needs (thirdparty.pull_policy_patches),
    worked out from its objects after our other patches."""
    from dataclasses import replace

    from oscar_deploy.platform.thirdparty import pull_policy_patches

    extra = pull_policy_patches(manifest_objects(manifest, text))
    return replace(manifest, patches=(*manifest.patches, *extra)) if extra else manifest
