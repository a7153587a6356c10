"""Builds an air-gap bundle folder for tests, in the layout `oscar-deploy bundle build` writes
(oscar_deploy/nodes/bundle.py: manifest.json, <arch>/<upstream file names>), from test doubles:

* the k3s binary of each architecture is the labelled stand-in `tests/doubles/k3s` with the version and
  the architecture written into it (so each version and architecture has its own checksum, like upstream's);
* the images archive is a small file saying it stands in for upstream's `k3s-airgap-images-<arch>.tar.zst`;
* `sha256sum-<arch>.txt` lists the real sha256 of those files, as upstream's does for its own.

Nothing here ships in the wheel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from oscar_deploy.nodes.bundle import MANIFEST_NAME, BundleManifest
from oscar_deploy.spec.arches import ARCHES

STAND_IN = Path(__file__).resolve().parent / "k3s"


def stand_in_binary(version: str, arch: str) -> bytes:
    text = STAND_IN.read_text().replace("@K3S_VERSION@", version).replace("@K3S_ARCH@", arch)
    return text.encode()


def build_test_bundle(directory: Path, version: str, arches: Sequence[str]) -> BundleManifest:
    """Fill `directory` with a bundle for `version` and `arches` (upstream names: amd64, arm64, arm)."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest = BundleManifest(k3s_version=version, arches=list(arches))
    for arch in arches:
        names = ARCHES[arch]
        target = directory / arch
        target.mkdir(exist_ok=True)
        contents = {
            names.k3s_binary: stand_in_binary(version, arch),
            names.k3s_images: (
                f"TEST DOUBLE: stands in for upstream's {names.k3s_images} of k3s {version}; not an image archive\n"
            ).encode(),
        }
        sums = []
        for name, data in contents.items():
            path = target / name
            path.write_bytes(data)
            digest = hashlib.sha256(data).hexdigest()
            sums.append(f"{digest}  {name}\n")
            manifest.files[f"{arch}/{name}"] = {"sha256": digest, "size": len(data)}
        (target / names.k3s_binary).chmod(0o755)
        checksums = target / names.k3s_checksums
        checksums.write_text("".join(sums))
        manifest.files[f"{arch}/{names.k3s_checksums}"] = {
            "sha256": hashlib.sha256(checksums.read_bytes()).hexdigest(),
            "size": checksums.stat().st_size,
        }
    (directory / MANIFEST_NAME).write_text(manifest.to_json())
    return manifest
