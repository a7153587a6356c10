"""A bundle folder read as hostile input: the file names its manifest records, the platform section's references
to files, special files and changed files are refused in one line before anything is used."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oscar_deploy.nodes.bundle import MANIFEST_FORMAT, load_manifest
from oscar_deploy.platform.bundle import bundled_manifest_texts, offline_platform
from oscar_deploy.platform.model import ThirdPartyManifest
from oscar_deploy.support.errors import UserInputError

CHART = "platform/charts/traefik-1.0.0.tgz"
SERVING = "platform/manifests/knative_serving/serving-core.yaml"
SERVING_URL = "https://github.com/knative/serving/releases/download/knative-v1.0.0/serving-core.yaml"
BINARY_URL = "https://example.org/releases/fwatchdog-amd64"


def write_bundle(folder: Path, contents: dict[str, bytes], platform: dict[str, Any] | None = None) -> Path:
    """A bundle holding `contents` (relative path: bytes), its manifest listing each with its size and sha256."""
    files = {}
    for relative, data in contents.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
        files[relative] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {"format": MANIFEST_FORMAT, "k3s_version": "v1.33.3+k3s1", "arches": ["amd64"], "files": files}
    if platform is not None:
        manifest["platform"] = platform
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def platform_section(chart: str = CHART, binary: str = "fwatchdog-amd64") -> dict[str, Any]:
    return {
        "images": [{"reference": "ghcr.io/grycap/oscar:v4.1.2", "arch": "amd64"}],
        "binaries": [{"url": BINARY_URL, "name": binary, "sha256": "ab" * 32}],
        "charts": [{"path": chart}],
        "manifests": [{"url": SERVING_URL, "path": SERVING}],
    }


def platform_bundle(folder: Path, **changes: Any) -> Path:
    contents = {
        CHART: b"chart archive",
        "platform/files/fwatchdog-amd64": b"\x7fELF",
        SERVING: b"kind: Namespace\n",
        "amd64/k3s": b"#!/bin/sh\n",
    }
    return write_bundle(folder, contents, {**platform_section(), **changes})


def serving() -> list[ThirdPartyManifest]:
    return [ThirdPartyManifest("knative_serving", "serving-core.yaml", SERVING_URL, None)]


@pytest.mark.parametrize(
    "name",
    ["../outside", "/etc/passwd", ".hidden/k3s", "amd64/../../k3s", "amd64//k3s", "amd64/", "", "a b", "amd64\\k3s"],
)
def test_a_manifest_naming_a_file_outside_the_bundle_is_refused(tmp_path: Path, name: str) -> None:
    write_bundle(tmp_path, {"amd64/k3s": b"#!/bin/sh\n"})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["files"][name] = {"size": 1, "sha256": "00" * 32}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserInputError) as refused:
        load_manifest(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path / 'manifest.json'}: damaged bundle manifest (file {name!r} is not a path inside the bundle); "
        "rebuild with `oscar-deploy bundle build`"
    )


def test_bundle_paths_at_their_limits(tmp_path: Path) -> None:
    deepest = "/".join(["d"] * 7 + ["f"])
    longest = "x" * 200
    write_bundle(tmp_path, {deepest: b"1", longest: b"2", "amd64/k3s-airgap-images-amd64.tar.zst": b"3"})
    assert set(load_manifest(tmp_path).files) == {deepest, longest, "amd64/k3s-airgap-images-amd64.tar.zst"}
    for beyond in ("/".join(["d"] * 8 + ["f"]), "x" * 201):
        write_bundle(tmp_path, {beyond: b"1"})
        with pytest.raises(UserInputError, match="is not a path inside the bundle"):
            load_manifest(tmp_path)


def test_the_offline_platform_is_read_from_listed_files(tmp_path: Path) -> None:
    offline = offline_platform(platform_bundle(tmp_path))
    assert base64.b64decode(offline.traefik_chart) == b"chart archive"
    assert offline.registries == ("ghcr.io",)
    assert {url: file.name for url, file in offline.files.items()} == {BINARY_URL: "fwatchdog-amd64"}
    assert read_manifests(tmp_path) == {SERVING_URL: "kind: Namespace\n"}


def read_manifests(bundle: Path) -> object:
    return bundled_manifest_texts(bundle, serving())


@pytest.mark.parametrize(
    ("changes", "read", "named"),
    [
        ({"charts": [{"path": "../chart.tgz"}]}, offline_platform, "../chart.tgz"),
        ({"charts": [{"path": "platform/charts/other.tgz"}]}, offline_platform, "platform/charts/other.tgz"),
        (
            {"binaries": [{"url": BINARY_URL, "name": "../../bin/sh", "sha256": "ab" * 32}]},
            offline_platform,
            "platform/files/../../bin/sh",
        ),
        ({"manifests": [{"url": SERVING_URL, "path": "/etc/passwd"}]}, read_manifests, "/etc/passwd"),
    ],
)
def test_the_platform_section_may_only_name_files_the_bundle_lists(
    tmp_path: Path, changes: dict[str, Any], read: Callable[[Path], object], named: str
) -> None:
    bundle = platform_bundle(tmp_path, **changes)
    with pytest.raises(UserInputError) as refused:
        read(bundle)
    assert str(refused.value) == (
        f"{tmp_path}: the platform section names {named!r}, a file the bundle does not list; rebuild it with "
        "`oscar-deploy bundle build`"
    )


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"charts": []}, "IndexError: list index out of range"),
        ({"charts": [["path"]]}, "TypeError: list indices must be integers or slices, not str"),
        ({"binaries": [{"url": BINARY_URL}]}, "KeyError: 'name'"),
        ({"binaries": "fwatchdog"}, "TypeError: string indices must be integers, not 'str'"),
    ],
)
def test_a_damaged_platform_section_is_one_line(tmp_path: Path, changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(UserInputError) as damaged:
        offline_platform(platform_bundle(tmp_path, **changes))
    assert str(damaged.value) == (
        f"{tmp_path / 'manifest.json'}: damaged platform section ({problem}); rebuild it with "
        "`oscar-deploy bundle build`"
    )


def test_changed_and_special_files_are_refused_before_they_are_used(tmp_path: Path) -> None:
    bundle = platform_bundle(tmp_path)
    (bundle / CHART).write_bytes(b"chart archivE")  # same size, other content
    with pytest.raises(UserInputError, match=rf"^{tmp_path}: {CHART} does not match its sha256; rebuild the bundle$"):
        offline_platform(bundle)
    (bundle / CHART).write_bytes(b"a longer chart archive")
    with pytest.raises(UserInputError, match=rf"^{tmp_path}: {CHART} does not match its sha256; rebuild the bundle$"):
        offline_platform(bundle)
    (bundle / CHART).unlink()
    os.mkfifo(bundle / CHART)  # opening it for reading would wait for a writer
    with pytest.raises(UserInputError, match=r"traefik-1.0.0.tgz: is a FIFO \(named pipe\), not a regular file"):
        offline_platform(bundle)
    (bundle / SERVING).write_bytes(b"\xff\xfe")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][SERVING] = {"size": 2, "sha256": hashlib.sha256(b"\xff\xfe").hexdigest()}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserInputError, match=rf"^{SERVING}:1: the release manifest is not UTF-8 text \(byte 0xff\)"):
        read_manifests(bundle)


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"amd64/k3s": "xy"}, "dictionary update sequence element #0 has length 1; 2 is required"),
        ({"amd64/k3s": 3}, "'int' object is not iterable"),
        (["amd64/k3s"], "'list' object has no attribute 'items'"),
    ],
)
def test_a_manifest_whose_files_are_not_records_is_damaged(tmp_path: Path, files: object, problem: str) -> None:
    write_bundle(tmp_path, {})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "files": files}))
    with pytest.raises(UserInputError) as damaged:
        load_manifest(tmp_path)
    assert str(damaged.value) == (
        f"{tmp_path / 'manifest.json'}: damaged bundle manifest ({problem}); rebuild with `oscar-deploy bundle build`"
    )


@pytest.mark.parametrize(
    ("platform", "problem"),
    [
        ({"manifests": [{"file": "x"}]}, "KeyError: 'component'"),
        ({"images": [{"reference": "x"}]}, "KeyError: 'arch'"),
        ({"arches": 5}, "TypeError: can only join an iterable"),
    ],
)
def test_bundle_inspect_of_a_damaged_platform_section_is_one_line(
    cli: Any, platform: dict[str, Any], problem: str
) -> None:
    write_bundle(cli.cwd, {"amd64/k3s": b"#!/bin/sh\n"}, platform)
    result = cli("bundle", "inspect", ".")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: manifest.json: damaged platform section ({problem}); rebuild it with `oscar-deploy bundle build`\n"
    )
