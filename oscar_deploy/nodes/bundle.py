"""The air-gap bundle: the pinned k3s release artefacts, downloaded from upstream and verified.

`build_bundle` fetches, per CPU architecture, the k3s binary, the airgap images archive and upstream's
`sha256sum-<arch>.txt` from `<download_url>/<version>/<file>` (the k3s catalogue entry's URL, or a mirror).
Every artefact is streamed to a temporary name, checked against upstream's sha256 file and only then renamed
into place: a partial or mismatching download is deleted and never used. `manifest.json` records the version,
the architectures and the sha256 of every file, so `up --bundle` and `edge install --bundle` can refuse a
bundle that does not match.

Upstream's install.sh is not part of a bundle: the playbooks install k3s without it (they write its
configuration and units themselves), and it has no published checksum to verify it against. A bundle built by
an earlier version still works; rebuilding it removes its install.sh.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from oscar_deploy import __version__
from oscar_deploy.spec.arches import ARCHES, canonical_arch
from oscar_deploy.support.download import Downloader, parse_checksums, sha256_of
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import parse_json, read_user_text, shown_path, write_user_file
from oscar_deploy.support.urls import NETRC_HINT, http_url

# Override of the catalogue's URL, for a mirror (and for tests, which serve files from 127.0.0.1).
DOWNLOAD_URL_ENV = "OSCAR_DEPLOY_K3S_DOWNLOAD_URL"

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
# What bundles built by earlier versions also held; removed when such a bundle is rebuilt.
LEGACY_INSTALLER_NAME = "install.sh"
# Folder of the platform's files inside a bundle (oscar_deploy.platform.bundle writes it).
PLATFORM_DIR = "platform/"
# A file's place in a bundle, as its manifest records it: relative, inside the folder, no hidden segment.
BUNDLE_PATH = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,199}(?:/[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,199}){0,7}")


def parse_arches(text: str, option: str = "--arch") -> list[str]:
    """`amd64,arm64` -> ["amd64", "arm64"]; unknown names are a one-line input error."""
    arches: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        arch = canonical_arch(item)
        if arch is None:
            raise UserInputError(f"{option} {item}: unknown architecture; use {', '.join(ARCHES)} (comma-separated)")
        if arch not in arches:
            arches.append(arch)
    if not arches:
        raise UserInputError(f"{option}: no architecture given; use e.g. {option} amd64,arm64")
    return arches


def release_file_url(base: str, version: str, name: str) -> str:
    """`<base>/<version>/<name>` with the version URL-encoded as GitHub writes it (`+` -> `%2B`)."""
    return f"{base.rstrip('/')}/{quote(version, safe='')}/{name}"


def arch_dir(directory: Path, arch: str) -> Path:
    return directory / arch


# --- the bundle -------------------------------------------------------------------------------------------


@dataclass
class BundleManifest:
    """What a bundle folder holds: `files` maps a path relative to the folder to its sha256 and size."""

    k3s_version: str
    arches: list[str]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    download_url: str = ""
    created_at: str = ""
    # What `oscar_deploy.platform.bundle` added (images, release manifests, binaries, chart); its files are in
    # `files` under platform/ like every other file.
    platform: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "format": MANIFEST_FORMAT,
            "tool": f"oscar-deploy {__version__}",
            "k3s_version": self.k3s_version,
            "arches": sorted(self.arches),
            "download_url": self.download_url,
            "created_at": self.created_at,
            "files": dict(sorted(self.files.items())),
        }
        if self.platform:
            data["platform"] = self.platform
        return json.dumps(data, indent=2) + "\n"


def load_manifest(directory: Path) -> BundleManifest:
    path = directory / MANIFEST_NAME
    if not os.path.isfile(path):  # noqa: PTH113 - False, not OSError, for a name too long to look up
        raise UserInputError(
            f"{shown_path(directory)}: not an air-gap bundle (no {MANIFEST_NAME}); build one with "
            "`oscar-deploy bundle build`"
        )
    text = read_user_text(path, "bundle manifest")  # a user's folder: a FIFO or a huge file is refused
    try:
        data = parse_json(text)
        if data.get("format") != MANIFEST_FORMAT:
            raise UserInputError(
                f"{path}: bundle format {data.get('format')!r} is not {MANIFEST_FORMAT}; rebuild it with this version"
            )
        files = {str(key): dict(value) for key, value in data["files"].items()}
        outside = next((key for key in files if not BUNDLE_PATH.fullmatch(key)), None)
        if outside is not None:
            raise UserInputError(
                f"{path}: damaged bundle manifest (file {outside[:80]!r} is not a path inside the bundle); rebuild "
                "with `oscar-deploy bundle build`"
            )
        return BundleManifest(
            k3s_version=str(data["k3s_version"]),
            arches=[str(arch) for arch in data["arches"]],
            files=files,
            download_url=str(data.get("download_url", "")),
            created_at=str(data.get("created_at", "")),
            platform=dict(data.get("platform") or {}),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
        raise UserInputError(
            f"{path}: damaged bundle manifest ({exc}); rebuild with `oscar-deploy bundle build`"
        ) from None


def resolve_download_url(download_url: str | None) -> str:
    """The explicit URL, else the environment override, else the catalogue's upstream URL."""
    from oscar_deploy.spec.catalogue import load_catalogue

    value = download_url or os.environ.get(DOWNLOAD_URL_ENV) or load_catalogue()["k3s"].download_url
    if not value:
        raise OperationError("catalogue: k3s has no download_url; reinstall oscar-deploy")
    where = (
        "--download-url" if download_url else DOWNLOAD_URL_ENV if os.environ.get(DOWNLOAD_URL_ENV) else "catalogue: k3s"
    )
    # Checked before anything is downloaded or created; credentials go to ~/.netrc, never into a URL.
    return http_url(value, where, NETRC_HINT)


def _already_verified(path: Path, expected: str) -> bool:
    return path.is_file() and sha256_of(path) == expected


def build_bundle(
    directory: Path,
    version: str,
    arches: Iterable[str],
    download_url: str,
    downloader: Downloader,
    log: Callable[[str], None] = lambda _line: None,
) -> BundleManifest:
    """Fill `directory` with verified k3s artefacts for `arches`; files already there and verified are kept."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest = BundleManifest(
        k3s_version=version,
        arches=[],
        download_url=download_url,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    previous = _previous_manifest(directory)
    if previous is not None:
        # The platform's part is the platform builder's to check and renew; it is carried over as it is.
        manifest.platform = previous.platform
        manifest.files.update({key: value for key, value in previous.files.items() if key.startswith(PLATFORM_DIR)})
    if previous is not None and previous.k3s_version == version:
        # Architectures built earlier for the same version stay in the bundle while their files still verify.
        for arch in previous.arches:
            kept = {key: value for key, value in previous.files.items() if key.startswith(f"{arch}/")}
            if all(_already_verified(directory / key, str(entry["sha256"])) for key, entry in kept.items()):
                manifest.arches.append(arch)
                manifest.files.update(kept)

    for arch in arches:
        artefacts = ARCHES[arch]
        target = arch_dir(directory, arch)
        checksum_url = release_file_url(download_url, version, artefacts.k3s_checksums)
        checksum_path = target / artefacts.k3s_checksums
        downloader.fetch(checksum_url, checksum_path, label=f"{arch}/{artefacts.k3s_checksums}")
        sums = parse_checksums(checksum_path.read_text(), str(checksum_path))
        entries: dict[str, dict[str, Any]] = {
            f"{arch}/{artefacts.k3s_checksums}": {
                "sha256": sha256_of(checksum_path),
                "size": checksum_path.stat().st_size,
            }
        }
        for name in artefacts.k3s_verified_files:
            expected = sums.get(name)
            if expected is None:
                raise OperationError(
                    f"{arch}/{name}: not listed in upstream's {artefacts.k3s_checksums} for {version}; "
                    "check the version and the download URL"
                )
            path = target / name
            if _already_verified(path, expected):
                log(f"{arch}/{name}: already in the bundle and verified")
            else:
                downloader.fetch(release_file_url(download_url, version, name), path, expected, label=f"{arch}/{name}")
            entries[f"{arch}/{name}"] = {"sha256": expected, "size": path.stat().st_size}
        (target / artefacts.k3s_binary).chmod(0o755)
        manifest.files = {key: value for key, value in manifest.files.items() if not key.startswith(f"{arch}/")}
        manifest.files.update(entries)
        if arch not in manifest.arches:
            manifest.arches.append(arch)

    if previous is not None and LEGACY_INSTALLER_NAME in previous.files:
        (directory / LEGACY_INSTALLER_NAME).unlink(missing_ok=True)
        log(f"{LEGACY_INSTALLER_NAME}: removed (bundles no longer carry upstream's installer)")
    save_manifest(directory, manifest)
    return manifest


def save_manifest(directory: Path, manifest: BundleManifest) -> None:
    write_user_file(directory / MANIFEST_NAME, manifest.to_json(), "bundle manifest", 0o644, create_parents=True)


def previous_manifest(directory: Path) -> BundleManifest | None:
    """The bundle's manifest when it has a readable one (a damaged one is rebuilt), else None."""
    return _previous_manifest(directory)


def _previous_manifest(directory: Path) -> BundleManifest | None:
    try:
        return load_manifest(directory)
    except UserInputError:
        return None


def check_bundle(directory: Path, version: str, arches: Iterable[str], option: str = "--bundle") -> BundleManifest:
    """Refuse a bundle that is not for `version`, lacks one of `arches`, or holds a changed or missing file."""
    if not os.path.isdir(directory):  # noqa: PTH112 - False, not OSError, for a name too long to look up
        problem = "is not a folder" if os.path.lexists(directory) else "no such folder"
        raise UserInputError(
            f"{option} {shown_path(directory)}: {problem}; give a bundle folder, built with `oscar-deploy bundle build`"
        )
    manifest = load_manifest(directory)
    if manifest.k3s_version != version:
        raise UserInputError(
            f"{option} {directory}: bundle holds k3s {manifest.k3s_version} but the cluster pins {version}; "
            f"run `oscar-deploy bundle build --k3s-version {version} ...`"
        )
    missing = [arch for arch in arches if arch not in manifest.arches]
    if missing:
        have = ", ".join(manifest.arches) or "none"
        raise UserInputError(
            f"{option} {directory}: bundle lacks architecture {', '.join(missing)} (has {have}); "
            f"run `oscar-deploy bundle build --arch {','.join(sorted({*manifest.arches, *missing}))} {directory}`"
        )
    for relative, entry in manifest.files.items():
        path = directory / relative
        if not path.is_file():
            raise UserInputError(f"{option} {directory}: {relative} is missing; run `oscar-deploy bundle build` again")
        if path.stat().st_size != entry.get("size") or sha256_of(path) != entry.get("sha256"):
            raise UserInputError(
                f"{option} {directory}: {relative} does not match the manifest's sha256; "
                "run `oscar-deploy bundle build` again to replace it"
            )
    return manifest
