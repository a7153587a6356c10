"""The air-gap bundle: real downloads from a release server on 127.0.0.1, verified against its sha256 files."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from oscar_deploy.nodes.bundle import (
    ARCHES,
    DOWNLOAD_URL_ENV,
    build_bundle,
    check_bundle,
    parse_arches,
    release_file_url,
    resolve_download_url,
)
from oscar_deploy.spec.catalogue import load_catalogue
from oscar_deploy.support.download import Downloader, DownloadUnreachable
from oscar_deploy.support.errors import OperationError, UserInputError
from tests.unit.release_server import ReleaseServer, Route

VERSION = "v1.33.3+k3s1"
VERSION_PATH = "v1.33.3%2Bk3s1"
NAMES = {arch: (a.k3s_binary, a.k3s_images, a.k3s_checksums) for arch, a in ARCHES.items()}


@pytest.fixture
def server() -> Iterator[ReleaseServer]:
    release = ReleaseServer()
    yield release
    release.close()


def build(server: ReleaseServer, directory: Path, arches: list[str], version: str = VERSION):
    downloader = Downloader(attempts=2, backoff=0.0, timeout=5.0)
    try:
        return build_bundle(directory, version, arches, f"{server.base}/download", downloader)
    finally:
        downloader.close()


def test_default_url_is_upstreams_and_the_environment_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DOWNLOAD_URL_ENV, raising=False)
    download = resolve_download_url(None)
    assert download == "https://github.com/k3s-io/k3s/releases/download"
    assert release_file_url(download, VERSION, "k3s") == (
        "https://github.com/k3s-io/k3s/releases/download/v1.33.3%2Bk3s1/k3s"
    )
    assert load_catalogue()["k3s"].download_url == download
    monkeypatch.setenv(DOWNLOAD_URL_ENV, "http://127.0.0.1:1/mirror")
    assert resolve_download_url(None) == "http://127.0.0.1:1/mirror"
    assert resolve_download_url("http://127.0.0.1:2/x") == "http://127.0.0.1:2/x"


def test_parse_arches_accepts_aliases_and_names_the_bad_one() -> None:
    assert parse_arches("amd64, aarch64,arm64") == ["amd64", "arm64"]
    assert parse_arches("armhf") == ["arm"]
    with pytest.raises(UserInputError, match=r"--arch riscv: unknown architecture; use amd64, arm64, arm"):
        parse_arches("amd64,riscv")


def test_good_release_is_downloaded_verified_and_described(server: ReleaseServer, tmp_path: Path) -> None:
    payloads = server.publish_release(VERSION_PATH, {a: NAMES[a] for a in ("amd64", "arm64")})
    bundle = tmp_path / "bundle"
    manifest = build(server, bundle, ["amd64", "arm64"])

    assert (bundle / "amd64" / "k3s").read_bytes() == payloads["k3s"]
    assert (bundle / "arm64" / "k3s-arm64").read_bytes() == payloads["k3s-arm64"]
    assert (bundle / "arm64" / "k3s-airgap-images-arm64.tar.zst").read_bytes() == payloads[
        "k3s-airgap-images-arm64.tar.zst"
    ]
    assert stat.S_IMODE((bundle / "amd64" / "k3s").stat().st_mode) == 0o755
    assert not list(bundle.rglob("*.part")), "no temporary file left behind"
    # The URLs carry the tag encoded the way GitHub links its assets; upstream's install.sh is not fetched.
    assert f"/download/{VERSION_PATH}/k3s" in server.requests
    assert not [path for path in server.requests if path.endswith("install.sh")]
    assert not (bundle / "install.sh").exists()

    recorded = json.loads((bundle / "manifest.json").read_text())
    assert recorded["k3s_version"] == VERSION
    assert recorded["arches"] == ["amd64", "arm64"]
    assert recorded["files"]["amd64/k3s"]["sha256"] == hashlib.sha256(payloads["k3s"]).hexdigest()
    assert sorted(recorded["files"]) == [
        "amd64/k3s",
        "amd64/k3s-airgap-images-amd64.tar.zst",
        "amd64/sha256sum-amd64.txt",
        "arm64/k3s-airgap-images-arm64.tar.zst",
        "arm64/k3s-arm64",
        "arm64/sha256sum-arm64.txt",
    ]
    assert sorted(manifest.arches) == ["amd64", "arm64"]
    assert check_bundle(bundle, VERSION, ["arm64"]).k3s_version == VERSION


def test_rerun_skips_verified_files_and_adds_an_architecture(server: ReleaseServer, tmp_path: Path) -> None:
    server.publish_release(VERSION_PATH, {a: NAMES[a] for a in ("amd64", "arm64")})
    bundle = tmp_path / "bundle"
    build(server, bundle, ["amd64"])
    server.requests.clear()
    build(server, bundle, ["amd64", "arm64"])
    big_amd64 = [path for path in server.requests if path.endswith(("/k3s", "amd64.tar.zst"))]
    assert big_amd64 == [], "verified files are not downloaded again"
    assert f"/download/{VERSION_PATH}/k3s-arm64" in server.requests
    server.requests.clear()
    build(server, bundle, ["arm64"])
    # amd64 was built earlier for the same version and still verifies, so it stays in the bundle.
    assert check_bundle(bundle, VERSION, ["amd64", "arm64"]).arches == ["amd64", "arm64"]


def test_a_bundle_with_install_sh_from_an_earlier_version_works_and_a_rebuild_drops_it(
    server: ReleaseServer, tmp_path: Path
) -> None:
    """Bundles used to carry upstream's install.sh (never run on the nodes); they stay valid, and rebuilding one
    removes the file and its manifest entry."""
    server.publish_release(VERSION_PATH, {"amd64": NAMES["amd64"]})
    bundle = tmp_path / "bundle"
    build(server, bundle, ["amd64"])
    installer = b"#!/bin/sh\n# upstream install.sh\n"
    (bundle / "install.sh").write_bytes(installer)
    recorded = json.loads((bundle / "manifest.json").read_text())
    recorded["files"]["install.sh"] = {"sha256": hashlib.sha256(installer).hexdigest(), "size": len(installer)}
    (bundle / "manifest.json").write_text(json.dumps(recorded))
    assert "install.sh" in check_bundle(bundle, VERSION, ["amd64"]).files

    build(server, bundle, ["amd64"])
    assert not (bundle / "install.sh").exists()
    assert "install.sh" not in check_bundle(bundle, VERSION, ["amd64"]).files


def test_bad_checksum_names_the_file_and_leaves_nothing(server: ReleaseServer, tmp_path: Path) -> None:
    server.publish_release(VERSION_PATH, {"amd64": NAMES["amd64"]})
    images = f"/download/{VERSION_PATH}/k3s-airgap-images-amd64.tar.zst"
    server.routes[images] = Route(b"tampered images archive")
    bundle = tmp_path / "bundle"
    with pytest.raises(OperationError) as caught:
        build(server, bundle, ["amd64"])
    message = str(caught.value)
    assert message.startswith("amd64/k3s-airgap-images-amd64.tar.zst: sha256 mismatch")
    assert f"got {hashlib.sha256(b'tampered images archive').hexdigest()}" in message
    assert "expected " in message
    assert not (bundle / "amd64" / "k3s-airgap-images-amd64.tar.zst").exists()
    assert not list(bundle.rglob("*.part"))
    assert not (bundle / "manifest.json").exists()


def test_truncated_transfer_is_retried_then_reported_and_deleted(server: ReleaseServer, tmp_path: Path) -> None:
    payloads = server.publish_release(VERSION_PATH, {"amd64": NAMES["amd64"]})
    binary = f"/download/{VERSION_PATH}/k3s"
    server.routes[binary] = Route(payloads["k3s"], behaviour="truncate")
    bundle = tmp_path / "bundle"
    with pytest.raises(OperationError, match=r"^amd64/k3s: download from .* failed 2 times") as caught:
        build(server, bundle, ["amd64"])
    assert "the partial file was deleted" in str(caught.value)
    assert not isinstance(caught.value, DownloadUnreachable), "the server was reached: not an offline error"
    assert server.requests.count(binary) == 2
    assert not (bundle / "amd64" / "k3s").exists()
    assert not list(bundle.rglob("*.part"))

    # Once the server behaves, the same command completes.
    server.routes[binary] = Route(payloads["k3s"])
    build(server, bundle, ["amd64"])
    assert (bundle / "amd64" / "k3s").read_bytes() == payloads["k3s"]


def test_missing_release_and_unreachable_mirror_are_one_line_errors(tmp_path: Path, server: ReleaseServer) -> None:
    with pytest.raises(OperationError, match=r"^amd64/sha256sum-amd64.txt: .* answered HTTP 404; check the version"):
        build(server, tmp_path / "b", ["amd64"])
    downloader = Downloader(attempts=2, backoff=0.0, timeout=2.0)
    closed_port = "http://127.0.0.1:9"
    with pytest.raises(DownloadUnreachable, match=r"^amd64/sha256sum-amd64.txt: download from http://127.0.0.1:9/"):
        build_bundle(tmp_path / "c", VERSION, ["amd64"], closed_port, downloader)


def test_check_bundle_refuses_other_version_missing_arch_and_changed_files(
    server: ReleaseServer, tmp_path: Path
) -> None:
    server.publish_release(VERSION_PATH, {"amd64": NAMES["amd64"]})
    bundle = tmp_path / "bundle"
    build(server, bundle, ["amd64"])
    with pytest.raises(UserInputError, match=r"holds k3s v1.33.3\+k3s1 but the cluster pins v1.34.1\+k3s1"):
        check_bundle(bundle, "v1.34.1+k3s1", ["amd64"])
    with pytest.raises(UserInputError, match=r"lacks architecture arm64 \(has amd64\).*--arch amd64,arm64"):
        check_bundle(bundle, VERSION, ["amd64", "arm64"])
    (bundle / "amd64" / "k3s").write_bytes(b"#!/bin/sh\necho swapped\n")
    with pytest.raises(UserInputError, match=r"amd64/k3s does not match the manifest's sha256"):
        check_bundle(bundle, VERSION, ["amd64"])
    with pytest.raises(UserInputError, match=r"not an air-gap bundle \(no manifest.json\)"):
        check_bundle(tmp_path, VERSION, ["amd64"])
    (tmp_path / "afile").write_text("")
    for path, problem in ((tmp_path / "afile", "is not a folder"), (tmp_path / "gone", "no such folder")):
        with pytest.raises(UserInputError) as refused:
            check_bundle(path, VERSION, ["amd64"])
        assert str(refused.value) == (
            f"--bundle {path}: {problem}; give a bundle folder, built with `oscar-deploy bundle build`"
        )


def test_cli_builds_a_bundle_from_the_overridden_urls(
    cli, server: ReleaseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.publish_release(VERSION_PATH, {a: NAMES[a] for a in ("amd64", "arm64")})
    monkeypatch.setenv(DOWNLOAD_URL_ENV, f"{server.base}/download")
    bundle = tmp_path / "airgap"
    result = cli("bundle", "build", "--k3s-only", "--arch", "amd64,arm64", str(bundle))
    assert result.exit_code == 0, result.output
    assert f"bundle {bundle}: k3s {VERSION} for amd64, arm64, 6 files verified" in result.stdout
    assert check_bundle(bundle, VERSION, ["amd64", "arm64"]).arches == ["amd64", "arm64"]

    bad = cli("bundle", "build", "--arch", "sparc", str(bundle))
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "error: --arch sparc: unknown architecture; use amd64, arm64, arm (comma-separated)"
    bad_version = cli("bundle", "build", "--k3s-version", "1.33.3", str(bundle))
    assert bad_version.exit_code == 2
    assert "--k3s-version: '1.33.3' is not a k3s release; use vMAJOR.MINOR.PATCH+k3sN" in bad_version.stderr


def fetch_once(server: ReleaseServer, dest: Path) -> None:
    downloader = Downloader(attempts=1, backoff=0.0, timeout=5.0)
    try:
        downloader.fetch(f"{server.base}/file", dest)
    finally:
        downloader.close()


def test_a_mirrors_login_comes_from_netrc_for_its_host_only(
    server: ReleaseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes["/file"] = Route(b"payload")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    fetch_once(server, tmp_path / "a")
    assert server.authorizations == [None], "no ~/.netrc, no login"

    netrc = home / ".netrc"
    netrc.write_text("machine mirror.example.org login bob password other\n")
    netrc.chmod(0o600)
    fetch_once(server, tmp_path / "b")
    assert server.authorizations[-1] is None, "a login for another host is not sent"

    netrc.write_text("machine 127.0.0.1 login alice password S3cretPass\n")
    fetch_once(server, tmp_path / "c")
    assert server.authorizations[-1] == "Basic " + base64.b64encode(b"alice:S3cretPass").decode()
    assert (tmp_path / "c").read_bytes() == b"payload"


def test_a_netrc_others_can_read_or_that_does_not_parse_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    netrc = home / ".netrc"
    netrc.write_text("machine 127.0.0.1 login alice password S3cretPass\n")
    netrc.chmod(0o644)
    with pytest.raises(UserInputError) as caught:
        Downloader()
    assert str(caught.value) == (
        f"{netrc}: ~/.netrc access too permissive: access permissions must restrict access to only the owner; "
        "make it yours with mode 0600, or move it away"
    )
    netrc.chmod(0o600)
    netrc.write_text("machine 127.0.0.1 login alice password my S3cretPass\nmachine b login c password d\n")
    with pytest.raises(UserInputError) as caught:
        Downloader()
    assert str(caught.value) == f"{netrc}: not netrc syntax near line 2; fix it, or move the file away"
    netrc.unlink()
    netrc.mkdir()
    with pytest.raises(UserInputError, match=r"/home/\.netrc: is a folder, not a regular file; pass a regular file"):
        Downloader()
