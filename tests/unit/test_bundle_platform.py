"""The platform's part of the air-gap bundle against a real registry (docker-registry) on 127.0.0.1: images per
arch fetched with skopeo and checked digest by digest, a tampered layer refused, an interrupted build resumed;
and the whole `bundle build` / `bundle inspect` from sources served on 127.0.0.1 (tests/offline_sources.py)."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from oscar_deploy.nodes.bundle import check_bundle, load_manifest
from oscar_deploy.platform.bundle import RELEASE_MIRROR_ENV, mirrored
from oscar_deploy.platform.model import BUNDLE_FILES_HOST_PATH
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.oci import Skopeo, archive_images, fetch_image, parse_reference
from tests.offline_sources import (
    KNATIVE_QUEUE,
    METRICS_SERVER_IMAGE,
    OfflineSources,
    spec_text,
    start_offline_sources,
)
from tests.registry import Registry, StallingProxy, build_layout
from tests.unit.release_server import Route


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


def _build(
    sources: OfflineSources, bundle: Path, spec: Path, mirror: str, arches: str = "amd64,arm64"
) -> subprocess.Popen[str]:
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
            arches,
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


@dataclass
class Resumed:
    bundle: Path
    spec: Path
    finished_before: list[str]
    stalled_layer: str


@pytest.fixture(scope="module")
def resumed(sources: OfflineSources, tmp_path_factory: pytest.TempPathFactory) -> Resumed:
    """`bundle build` killed while a layer is half downloaded, then run again to the end."""
    root = tmp_path_factory.mktemp("resumed")
    spec = root / "cluster.yaml"
    spec.write_text(spec_text("offline"))
    bundle = root / "bundle"
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
    return Resumed(bundle, spec, finished_before, stalled_layer)


def test_an_interrupted_build_resumes_without_fetching_finished_images_again(
    sources: OfflineSources, resumed: Resumed
) -> None:
    for ref in resumed.finished_before:
        layer = sources.images[ref].layers["arm64"]
        assert sources.registry.blob_downloads(layer) == 1, f"{ref} was downloaded again"
    assert sources.registry.blob_downloads(resumed.stalled_layer) == 2  # cut off once, then fetched whole
    assert not (resumed.bundle / ".staging").exists()
    assert not [p for p in resumed.bundle.rglob(".*.part")]


def test_the_bundle_holds_every_image_per_arch_and_every_platform_file(
    sources: OfflineSources, resumed: Resumed
) -> None:
    bundle = resumed.bundle
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
    found = {entry["reference"]: entry["found_in"] for entry in images}
    assert found[METRICS_SERVER_IMAGE] == "metrics_server/components.yaml"
    assert [ref for ref in found if ref.startswith(KNATIVE_QUEUE)] == [
        ref for ref, where in found.items() if where == "knative_serving/serving-core.yaml (Knative queue-proxy)"
    ]
    assert found["docker.io/traefik:v3.5.0"] == "traefik chart"
    assert {m["component"] for m in manifest.platform["manifests"]} == {
        "gateway_api",
        "cert_manager",
        "knative_serving",
        "kourier",
        "metrics_server",
    }
    assert sorted(b["name"] for b in manifest.platform["binaries"]) == [
        "fwatchdog-amd64",
        "fwatchdog-arm64",
        "supervisor-alpine-arm64.zip",
        "supervisor-alpine.zip",
        "supervisor-arm64.zip",
        "supervisor.zip",
    ]
    assert manifest.platform["charts"][0]["image"] == "docker.io/traefik:v3.5.0"


def test_inspect_lists_the_bundle_and_tells_whether_it_matches_a_spec(resumed: Resumed, tmp_path: Path) -> None:
    matches = _oscar("bundle", "inspect", str(resumed.bundle), "-f", str(resumed.spec))
    assert matches.returncode == 0, matches.stderr
    assert f"matches {resumed.spec}" in matches.stdout
    assert f"image {METRICS_SERVER_IMAGE} arm64 " in matches.stdout
    assert "platform for amd64, arm64" in matches.stdout

    other = tmp_path / "other.yaml"
    other.write_text(spec_text("other").replace("minio:", "oscar: 4.1.3\n  minio:"))
    differs = _oscar("bundle", "inspect", str(resumed.bundle), "-f", str(other))
    assert differs.returncode == 1
    assert "  oscar: bundle has 4.1.2, the spec pins 4.1.3" in differs.stdout
    assert "  image ghcr.io/grycap/oscar:4.1.3: not in the bundle;" in differs.stdout


def test_render_with_the_bundle_writes_the_offline_platform(resumed: Resumed, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _oscar(
        "render", str(out), "-f", str(resumed.spec), "--public-address", "192.0.2.10", "--bundle", str(resumed.bundle)
    )
    assert result.returncode == 0, result.stderr
    manifest = load_manifest(resumed.bundle)
    objects = list(yaml.safe_load_all((out / "objects.yaml").read_text()))
    chart = next(o for o in objects if o["kind"] == "HelmChart")
    chart_file = resumed.bundle / manifest.platform["charts"][0]["path"]
    assert base64.b64decode(chart["spec"]["chartContent"]) == chart_file.read_bytes()
    assert "repo" not in chart["spec"]
    job = next(o for o in objects if o["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    assert {"name": "bundle", "hostPath": {"path": BUNDLE_FILES_HOST_PATH, "type": "Directory"}} in pod["volumes"]
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": "true"}
    script = next(o for o in objects if o["kind"] == "ConfigMap" and "populate.sh" in o.get("data", {}))
    assert "wget" not in script["data"]["populate.sh"]
    knative = out / "third-party" / "knative-serving"
    kustomization = yaml.safe_load((knative / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["serving-crds.yaml", "serving-core.yaml"]
    for name in kustomization["resources"]:
        entry = next(m for m in manifest.platform["manifests"] if m["file"] == name)
        assert (knative / name).read_bytes() == (resumed.bundle / entry["path"]).read_bytes()
    skip = next(p for p in kustomization["patches"] if p["target"]["name"] == "config-deployment")
    values = {op["value"] for op in yaml.safe_load(skip["patch"])}
    (registries,) = values
    assert {"ghcr.io", "quay.io", "registry.k8s.io", "gcr.io", "docker.io", "index.docker.io"} <= set(
        registries.split(",")
    )


def test_a_damaged_archive_is_named_and_never_used(resumed: Resumed, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(resumed.bundle, copy)
    entry = load_manifest(copy).platform["images"][0]
    (copy / entry["file"]).write_bytes(b"damaged")
    broken = _oscar("bundle", "inspect", str(copy))
    assert broken.returncode == 2
    assert broken.stderr.strip() == (
        f"error: bundle {copy}: {entry['file']} does not match the manifest's sha256; "
        "run `oscar-deploy bundle build` again to replace it"
    )


def _oscar(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oscar_deploy", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_a_release_file_that_changed_upstream_is_refused_and_named(sources: OfflineSources, tmp_path: Path) -> None:
    """An unpinned manifest is held to the digest the bundle first recorded: a changed one is deleted, named."""
    spec = tmp_path / "cluster.yaml"
    spec.write_text(spec_text("changed"))
    bundle = tmp_path / "bundle"
    first = _build(sources, bundle, spec, sources.registry.host, arches="amd64")
    assert first.wait(600) == 0, first.communicate()[1][-2000:]
    entry = next(m for m in load_manifest(bundle).platform["manifests"] if m["file"] == "serving-core.yaml")
    route = next(path for path in sources.server.routes if path.endswith("/serving-core.yaml"))
    served = sources.server.routes[route]
    try:
        sources.server.routes[route] = Route(served.body + b"# changed upstream\n")
        (bundle / entry["path"]).write_text("damaged copy\n")
        second = _build(sources, bundle, spec, sources.registry.host, arches="amd64")
        _, err = second.communicate(timeout=600)
    finally:
        sources.server.routes[route] = served
    assert second.returncode == 1
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            f"error: {entry['path']}: sha256 mismatch for {sources.server.base}/mirror/github.com/knative/serving/"
        )
    )
    assert f"(expected {entry['sha256']}," in err
    assert not (bundle / entry["path"]).exists()


def test_arm_boards_get_a_k3s_only_bundle(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    refused = cli("bundle", "build", "--arch", "arm64,arm", str(tmp_path / "b"))
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        "error: --arch arm: the OSCAR platform runs on amd64 and arm64 nodes only; "
        "build a k3s-only bundle for those with --k3s-only"
    )
    assert not (tmp_path / "b").exists(), "refused before anything was downloaded"


def test_a_release_mirror_with_credentials_is_refused_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RELEASE_MIRROR_ENV, "http://alice:S3cretPass@127.0.0.1:9/mirror")
    with pytest.raises(UserInputError) as caught:
        mirrored("https://example.org/x.yaml")
    assert str(caught.value) == (
        f"{RELEASE_MIRROR_ENV} 'http://****@127.0.0.1:9/mirror': carries credentials, which do not belong in a "
        "URL; put them in ~/.netrc for the mirror's host instead"
    )
    monkeypatch.setenv(RELEASE_MIRROR_ENV, "http://127.0.0.1:9/mirror/")
    assert mirrored("https://example.org/x.yaml") == "http://127.0.0.1:9/mirror/example.org/x.yaml"
    monkeypatch.delenv(RELEASE_MIRROR_ENV)
    assert mirrored("https://example.org/x.yaml") == "https://example.org/x.yaml"
