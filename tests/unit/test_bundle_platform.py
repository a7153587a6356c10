"""The platform's part of the air-gap bundle against a real registry (docker-registry) on 127.0.0.1: images per
arch fetched with skopeo and checked digest by digest, a tampered layer refused, an interrupted build resumed;
and the whole `bundle build` / `bundle inspect` from sources served on 127.0.0.1 (tests/offline_sources.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from oscar_deploy.nodes.bundle import check_bundle, load_manifest
from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.oci import Skopeo, archive_images, fetch_image, parse_reference
from tests.offline_sources import (
    METRICS_SERVER_IMAGE,
    OfflineSources,
    spec_text,
    start_offline_sources,
)
from tests.registry import Registry, StallingProxy, build_layout


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfflineSources]:
    served = start_offline_sources(tmp_path_factory.mktemp("offline-sources"))
    yield served
    served.close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    server = Registry(tmp_path / "registry")
    yield server
    server.stop()


def _archive_blobs(path: Path) -> set[str]:
    with tarfile.open(path) as tar:
        return {name.rsplit("/", 1)[-1] for name in tar.getnames() if name.startswith("blobs/sha256/")}


def test_fetch_image_keeps_the_index_digest_and_only_that_arch(registry: Registry, tmp_path: Path) -> None:
    image = build_layout(tmp_path / "layout", ("amd64", "arm64"), "per-arch")
    registry.push(tmp_path / "layout", "team/tool", "1.0")
    skopeo = Skopeo(tls_verify=False)
    for ref_text in (f"{registry.host}/team/tool:1.0", f"{registry.host}/team/tool@{image.index_digest}"):
        ref = parse_reference(ref_text)
        for arch in ("amd64", "arm64"):
            fetched = fetch_image(skopeo, ref, arch, tmp_path / "b", f"{arch}.tar", tmp_path / "staging")
            assert (fetched.index_digest, fetched.manifest_digest) == (image.index_digest, image.manifests[arch])
            archive = tmp_path / "b" / f"{arch}.tar"
            assert archive_images(archive) == [(name, image.index_digest) for name in ref.names]
            other = "arm64" if arch == "amd64" else "amd64"
            blobs = _archive_blobs(archive)
            assert image.layers[arch].removeprefix("sha256:") in blobs
            assert image.layers[other].removeprefix("sha256:") not in blobs
            assert not (tmp_path / "staging").exists()
            # skopeo itself reads the archive as an OCI archive of that arch
            shown = subprocess.run(
                ["skopeo", "--override-arch", arch, "inspect", f"oci-archive:{archive}"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert json.loads(shown.stdout)["Architecture"] == arch

    wrong = parse_reference(f"{registry.host}/team/tool:1.0@sha256:{'0' * 64}")
    with pytest.raises(OperationError, match=r"^image .*@sha256:0+ \(amd64\): skopeo failed: .*manifest unknown"):
        fetch_image(skopeo, wrong, "amd64", tmp_path / "b", "wrong.tar", tmp_path / "staging")
    with pytest.raises(OperationError, match=r"image .*team/tool:1.0 \(arm\): the image has no linux/arm build"):
        fetch_image(
            skopeo, parse_reference(f"{registry.host}/team/tool:1.0"), "arm", tmp_path / "b", "x", tmp_path / "s"
        )
    assert not (tmp_path / "b" / "wrong.tar").exists()


def test_a_tampered_layer_is_refused_and_nothing_is_kept(registry: Registry, tmp_path: Path) -> None:
    image = build_layout(tmp_path / "layout", ("amd64", "arm64"), "tampered", payload=4096)
    registry.push(tmp_path / "layout", "team/tampered", "1.0")
    blob = registry.blob_data(image.layers["arm64"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    ref = parse_reference(f"{registry.host}/team/tampered:1.0")
    with pytest.raises(OperationError, match=r"^image .*team/tampered:1.0 \(arm64\): skopeo failed: .*[Dd]igest"):
        fetch_image(Skopeo(tls_verify=False), ref, "arm64", tmp_path / "b", "arm64.tar", tmp_path / "staging")
    assert not (tmp_path / "b" / "arm64.tar").exists()
    assert not (tmp_path / "staging").exists()
    assert list((tmp_path / "b").glob(".*")) == []
    # the untouched arch still comes through
    fetch_image(Skopeo(tls_verify=False), ref, "amd64", tmp_path / "b", "amd64.tar", tmp_path / "staging")


def _build(sources: OfflineSources, bundle: Path, spec: Path, mirror: str) -> subprocess.Popen[str]:
    import os

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oscar_deploy",
            "bundle",
            "build",
            "-f",
            str(spec),
            "--arch",
            "amd64,arm64",
            "--registry-mirror",
            mirror,
            "--insecure-registry",
            str(bundle),
        ],
        env={**os.environ, **sources.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def test_bundle_build_is_interrupted_then_resumed_and_inspect_matches_the_spec(
    sources: OfflineSources, tmp_path: Path
) -> None:
    spec = tmp_path / "cluster.yaml"
    spec.write_text(spec_text("offline"))
    bundle = tmp_path / "bundle"
    stalled_layer = sources.images[METRICS_SERVER_IMAGE].layers["arm64"]
    proxy = StallingProxy(sources.registry.host, stalled_layer)
    try:
        first = _build(sources, bundle, spec, proxy.host)
        while not proxy.stalled.wait(0.2):
            assert first.poll() is None, f"the build ended before the stall: {first.communicate()[1][-2000:]}"
        first.send_signal(signal.SIGKILL)  # the machine went away mid-download
        first.wait(30)
    finally:
        proxy.close()
    interrupted = load_manifest(bundle)
    done = {(entry["reference"], entry["arch"]) for entry in interrupted.platform["images"]}
    assert (METRICS_SERVER_IMAGE, "arm64") not in done
    finished_before = [ref for ref, arch in done if arch == "arm64"]
    assert finished_before, "the first run finished no image before the stall"

    second = _build(sources, bundle, spec, sources.registry.host)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-3000:]
    assert "platform image archives" in out
    for ref in finished_before:
        layer = sources.images[ref].layers["arm64"]
        assert sources.registry.blob_downloads(layer) == 1, f"{ref} was downloaded again"
    assert sources.registry.blob_downloads(stalled_layer) == 2  # cut off once, then fetched whole
    assert not (bundle / ".staging").exists()

    manifest = check_bundle(bundle, sources.k3s_version, ["amd64", "arm64"])
    images = manifest.platform["images"]
    assert {(e["reference"], e["arch"]) for e in images} == {(r, a) for r in sources.images for a in ("amd64", "arm64")}
    for entry in images:
        tiny = sources.images[entry["reference"]]
        assert entry["index_digest"] == tiny.index_digest
        assert entry["manifest_digest"] == tiny.manifests[entry["arch"]]
        assert manifest.files[entry["file"]]["sha256"] == entry["sha256"]
        names = archive_images(bundle / entry["file"])
        assert {name for name, _ in names} == set(parse_reference(entry["reference"]).names)
    assert {m["component"] for m in manifest.platform["manifests"]} == {
        "gateway_api",
        "cert_manager",
        "knative_serving",
        "kourier",
        "metrics_server",
    }
    assert len(manifest.platform["binaries"]) == 6
    assert manifest.platform["charts"][0]["image"] == "docker.io/traefik:v3.5.0"

    matches = subprocess.run(
        [sys.executable, "-m", "oscar_deploy", "bundle", "inspect", str(bundle), "-f", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert matches.returncode == 0, matches.stderr
    assert f"matches {spec}" in matches.stdout
    assert f"image {METRICS_SERVER_IMAGE} arm64 " in matches.stdout

    other = tmp_path / "other.yaml"
    other.write_text(spec_text("other", "local:\n  server_arch: amd64\n").replace("minio:", "oscar: 4.1.3\n  minio:"))
    differs = subprocess.run(
        [sys.executable, "-m", "oscar_deploy", "bundle", "inspect", str(bundle), "-f", str(other)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert differs.returncode == 1
    assert "  oscar: bundle has 4.1.2, the spec pins 4.1.3" in differs.stdout
    assert "  image ghcr.io/grycap/oscar:4.1.3: not in the bundle;" in differs.stdout

    # A damaged archive is named and replaced by the next build, never used.
    victim = bundle / images[0]["file"]
    victim.write_bytes(b"damaged")
    broken = subprocess.run(
        [sys.executable, "-m", "oscar_deploy", "bundle", "inspect", str(bundle)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert broken.returncode == 2
    assert f"{images[0]['file']} does not match the manifest's sha256" in broken.stderr
