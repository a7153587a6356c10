"""The version catalogue (`catalogue.yaml` beside this module) and the preflight refusing unsupported pins."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

CATALOGUE_FILE = Path(__file__).resolve().parent / "catalogue.yaml"

# Version syntaxes. k3s tags look like v1.33.3+k3s1: a bare "1.33.3" is not a k3s release (upstream OSCAR's
# playbook passes exactly that, and the installer fails).
SYNTAXES: dict[str, tuple[re.Pattern[str], str]] = {
    "k3s": (re.compile(r"^v(\d+)\.(\d+)\.(\d+)\+k3s(\d+)$"), "vMAJOR.MINOR.PATCH+k3sN, e.g. v1.33.3+k3s1"),
    "semver": (re.compile(r"^(\d+)\.(\d+)\.(\d+)$"), "MAJOR.MINOR.PATCH, e.g. 1.20.0"),
    "vsemver": (re.compile(r"^v(\d+)\.(\d+)\.(\d+)$"), "vMAJOR.MINOR.PATCH, e.g. v1.18.2"),
    "minio": (
        re.compile(r"^RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$"),
        "RELEASE.YYYY-MM-DDThh-mm-ssZ, e.g. RELEASE.2025-09-07T16-13-09Z",
    ),
}
# An image component may also be overridden with a whole image reference (a mirror, a fork, a digest).
IMAGE_REFERENCE = re.compile(r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")


SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ReleaseFile:
    """One release artefact of a component; `sha256` None means nobody has pinned it yet (UNPINNED)."""

    name: str
    sha256: str | None = None
    arch: str | None = None
    variant: str | None = None


@dataclass(frozen=True)
class Component:
    key: str
    description: str
    version: str
    syntax: str
    source: str
    image: str | None = None
    digest: str | None = None
    download_url: str | None = None
    release_tag: str = "{version}"
    files: tuple[ReleaseFile, ...] = ()
    checksums: str | None = None
    helm_repo: str | None = None
    overridden: bool = False

    def file(self, name: str) -> ReleaseFile:
        for release_file in self.files:
            if release_file.name == name:
                return release_file
        raise KeyError(f"{self.key} has no release file {name!r}")

    def file_url(self, name: str) -> str:
        """`<download_url>/<tag>/<name>`, the tag URL-encoded as GitHub writes it (`+` -> `%2B`)."""
        if not self.download_url:
            raise KeyError(f"{self.key} has no download_url")
        tag = self.release_tag.format(version=self.version)
        return f"{self.download_url.rstrip('/')}/{quote(tag, safe='')}/{self.file(name).name}"

    @property
    def unpinned_files(self) -> list[str]:
        return [release_file.name for release_file in self.files if release_file.sha256 is None]

    @property
    def image_reference(self) -> str | None:
        """The full image to pull: `image:version[@digest]`, or the override when it is a whole reference."""
        if self.image is None:
            return None
        if IMAGE_REFERENCE.fullmatch(self.version) and "/" in self.version:
            return self.version
        reference = f"{self.image}:{self.version}"
        return f"{reference}@{self.digest}" if self.digest else reference

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "description": self.description,
            "source": self.source,
            "overridden": self.overridden,
        }
        if self.image:
            data["image"] = self.image_reference
        if self.files:
            data["files"] = {f.name: f.sha256 or "UNPINNED" for f in self.files}
        return data


def _minor(version: str, syntax: str) -> tuple[int, int] | None:
    match = SYNTAXES[syntax][0].fullmatch(version)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def _minor_key(minor: tuple[int, int]) -> str:
    return f"{minor[0]}.{minor[1]}"


@dataclass(frozen=True)
class Catalogue:
    components: dict[str, Component]
    knative_min_kubernetes: dict[str, str]

    def __getitem__(self, key: str) -> Component:
        return self.components[key]

    def version(self, key: str) -> str:
        return self.components[key].version

    def override_problems(self, overrides: dict[str, str]) -> list[tuple[tuple[str, ...], str]]:
        """Problems of the catalogue with `overrides` applied, as (key path under `versions`, message)."""
        problems: list[tuple[tuple[str, ...], str]] = []
        for key in overrides:
            if key not in self.components:
                close = difflib.get_close_matches(key, self.components, n=1, cutoff=0.6) or [
                    known for known in self.components if known.startswith(key)
                ]
                hint = f"did you mean {close[0]!r}?" if close else "see `oscar-deploy versions` for the keys"
                problems.append(((key,), f"unknown component; {hint}"))
        known = {key: value for key, value in overrides.items() if key in self.components}
        return problems + self.with_overrides(known).preflight()

    def with_overrides(self, overrides: dict[str, str]) -> Catalogue:
        components = dict(self.components)
        for key, value in overrides.items():
            unpinned = tuple(replace(release_file, sha256=None) for release_file in components[key].files)
            components[key] = replace(components[key], version=str(value), overridden=True, digest=None, files=unpinned)
        return replace(self, components=components)

    def preflight(self) -> list[tuple[tuple[str, ...], str]]:
        """Refuse versions with the wrong syntax and combinations outside upstream support."""
        problems: list[tuple[tuple[str, ...], str]] = []
        for component in self.components.values():
            pattern, example = SYNTAXES[component.syntax]
            by_reference = component.image is not None and "/" in component.version
            if by_reference and not IMAGE_REFERENCE.fullmatch(component.version):
                problems.append(((component.key,), f"{component.version!r} is not an image reference"))
            elif not by_reference and not pattern.fullmatch(component.version):
                problems.append(((component.key,), f"{component.version!r} is not a version; use {example}"))
        if problems:
            return problems

        kubernetes = _minor(self.version("k3s"), "k3s")
        knative = _minor(self.version("knative_serving"), "semver")
        kourier = _minor(self.version("kourier"), "semver")
        assert kubernetes and knative and kourier  # syntax checked above
        required = self.knative_min_kubernetes.get(_minor_key(knative))
        if required is None:
            known = ", ".join(self.knative_min_kubernetes)
            problems.append(
                (
                    ("knative_serving",),
                    f"Knative {self.version('knative_serving')} has no known Kubernetes support range; "
                    f"use a minor in the catalogue ({known})",
                )
            )
        elif kubernetes < tuple(int(part) for part in required.split(".")):
            problems.append(
                (
                    ("k3s",),
                    f"Kubernetes {_minor_key(kubernetes)} ({self.version('k3s')}) is older than Knative "
                    f"{self.version('knative_serving')} supports (>= {required}); raise k3s or lower knative_serving",
                )
            )
        if kourier != knative:
            problems.append(
                (
                    ("kourier",),
                    f"Kourier {self.version('kourier')} must have Knative Serving's minor "
                    f"({_minor_key(knative)}); set kourier to {_minor_key(knative)}.x",
                )
            )
        return problems


def _release_files(key: str, entries: dict[str, Any] | None) -> tuple[ReleaseFile, ...]:
    files = []
    for name, entry in (entries or {}).items():
        sha256 = entry.get("sha256")
        if sha256 is not None and not SHA256_HEX.match(str(sha256)):
            raise ValueError(f"catalogue: {key}.files.{name}.sha256 is not 64 hex digits")
        files.append(ReleaseFile(name=name, sha256=sha256, arch=entry.get("arch"), variant=entry.get("variant")))
    return tuple(files)


def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    data = yaml.safe_load(path.read_text())
    components = {
        key: Component(
            key=key,
            description=entry["description"],
            version=str(entry["version"]),
            syntax=entry["syntax"],
            source=entry["source"],
            image=entry.get("image"),
            digest=entry.get("digest"),
            download_url=entry.get("download_url"),
            release_tag=entry.get("release_tag", "{version}"),
            files=_release_files(key, entry.get("files")),
            checksums=entry.get("checksums"),
            helm_repo=entry.get("helm_repo"),
        )
        for key, entry in data["components"].items()
    }
    compatibility = data["compatibility"]
    return Catalogue(
        components=components,
        knative_min_kubernetes={str(k): str(v) for k, v in compatibility["knative_min_kubernetes"].items()},
    )
