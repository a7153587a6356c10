"""The platform builder for an offline cluster (one installed from an air-gap bundle): what changes and what not,
the pull-policy and tag-resolution patches, and the binaries Job's script copying bundled files, run for real."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

from oscar_deploy.platform.binaries import downloads, populate_script, release_name
from oscar_deploy.platform.manifests import manifest_objects, offline_manifest
from oscar_deploy.platform.model import (
    BUNDLE_FILES_HOST_PATH,
    BundledFile,
    OfflinePlatform,
    PlatformInputs,
    PlatformSecrets,
    ThirdPartyManifest,
)
from oscar_deploy.platform.objects import build_platform
from oscar_deploy.platform.thirdparty import pull_policy_patches, pulled_at_every_start, skipped_tag_resolution
from oscar_deploy.spec.catalogue import load_catalogue
from oscar_deploy.spec.models import ClusterSpec
from oscar_deploy.support.errors import UserInputError
from tests.unit.test_platform_binaries import RELEASE_FILES, catalogue_at

SECRETS = PlatformSecrets("p", "a", "s")


def offline_for(catalogue, names: dict[str, bytes] | None = None) -> OfflinePlatform:  # type: ignore[no-untyped-def]
    files = {}
    for download in downloads(catalogue):
        name = download.url.rsplit("/", 1)[-1]
        body = (names or {}).get(name, b"")
        files[download.url] = BundledFile(name, hashlib.sha256(body).hexdigest())
    return OfflinePlatform(files, ("docker.io", "gcr.io", "ghcr.io"), "Y2hhcnQ=")


def test_online_and_offline_differ_only_where_the_internet_was_needed() -> None:
    catalogue = load_catalogue()
    spec = ClusterSpec.model_validate(
        {"platform": {"registry_mirror": {"url": "https://mirror.example.org:5000", "registries": ["*", "quay.io"]}}}
    )
    online = build_platform(PlatformInputs(spec, catalogue, SECRETS, "192.0.2.10"))
    offline = build_platform(PlatformInputs(spec, catalogue, SECRETS, "192.0.2.10", offline_for(catalogue)))
    changed = [o["kind"] for o, f in zip(online.objects, offline.objects, strict=True) if o != f]
    assert changed == ["ConfigMap", "Job", "HelmChart"]
    job = next(o["metadata"]["name"] for o in offline.objects if o["kind"] == "Job")
    populate = next(o["metadata"]["name"] for o in online.objects if o["kind"] == "Job")
    assert job != populate, "a Job's pod template cannot change: another script is another Job"
    chart = next(o for o in offline.objects if o["kind"] == "HelmChart")["spec"]
    assert chart["chartContent"] == "Y2hhcnQ=" and "repo" not in chart and "version" not in chart

    knative = next(m for m in offline.third_party if m.file == "serving-core.yaml")
    (patch,) = [p for p in knative.patches if p.name == "config-deployment"]
    values = {op["path"]: op["value"] for op in patch.operations}
    expected = "kind.local,ko.local,dev.local,docker.io,gcr.io,ghcr.io,mirror.example.org:5000,quay.io,index.docker.io"
    assert values == {
        "/data/registries-skipping-tag-resolving": expected,
        "/data/registriesSkippingTagResolving": expected,
    }
    assert all(p.name != "config-deployment" for m in online.third_party for p in m.patches)
    assert skipped_tag_resolution(spec, None) is None


def test_pull_policy_patches_cover_exactly_the_containers_pulled_at_every_start() -> None:
    def container(image: str, policy: str | None = None) -> dict[str, str]:
        return {"name": image.split("/")[-1][:5], "image": image, **({"imagePullPolicy": policy} if policy else {})}

    assert pulled_at_every_start(container("docker.io/envoyproxy/envoy:v1.34-latest")) is False
    assert pulled_at_every_start(container("docker.io/envoyproxy/envoy:latest")) is True
    assert pulled_at_every_start(container("localhost:5000/tool")) is True
    assert pulled_at_every_start(container("gcr.io/x/y@sha256:" + "a" * 64)) is False
    assert pulled_at_every_start(container("quay.io/x/y:v1", "Always")) is True
    objects = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "gw", "namespace": "kourier-system"},
            "spec": {
                "template": {
                    "spec": {
                        "initContainers": [container("quay.io/x/init:latest")],
                        "containers": [container("quay.io/x/app:v1"), container("quay.io/x/side:v1", "Always")],
                    }
                }
            },
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"image": "x:latest"}},
    ]
    (patch,) = pull_policy_patches(objects)
    assert (patch.kind, patch.name, patch.namespace) == ("Deployment", "gw", "kourier-system")
    assert [op["path"] for op in patch.operations] == [
        "/spec/template/spec/initContainers/0/imagePullPolicy",
        "/spec/template/spec/containers/1/imagePullPolicy",
    ]
    manifest = ThirdPartyManifest("kourier", "kourier.yaml", "https://example.org/kourier.yaml", None)
    patched = manifest_objects(offline_manifest(manifest, yaml.safe_dump_all(objects)), yaml.safe_dump_all(objects))
    pod = patched[0]["spec"]["template"]["spec"]
    assert [c["imagePullPolicy"] for c in pod["initContainers"] + pod["containers"][1:]] == ["IfNotPresent"] * 2
    assert "imagePullPolicy" not in pod["containers"][0]


def test_the_offline_job_copies_the_bundled_files_and_checks_them(tmp_path: Path) -> None:
    catalogue = catalogue_at("https://releases.example.org", {})
    bodies = {path.rsplit("/", 1)[1]: body for path, body in RELEASE_FILES.items()}
    offline = offline_for(catalogue, bodies)
    files = tmp_path / "files"
    files.mkdir()
    for name, body in bodies.items():
        (files / name).write_bytes(body)
    script = tmp_path / "populate.sh"
    script.write_text(populate_script(catalogue, offline))
    assert "wget" not in script.read_text() and "releases.example.org" not in script.read_text()
    dest = tmp_path / "oscar-bin"
    dest.mkdir()
    result = subprocess.run(["/bin/sh", str(script), str(dest), str(files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "UNPINNED" not in result.stdout
    release = release_name(catalogue)
    assert (dest / release / "arm64" / "alpine" / "supervisor" / "supervisor").is_file()
    assert (dest / release / "amd64" / "fwatchdog").read_bytes() == bodies["fwatchdog-amd64"]

    (files / "supervisor-arm64.zip").write_bytes(b"swapped")
    again = tmp_path / "again"
    again.mkdir()
    bad = subprocess.run(["/bin/sh", str(script), str(again), str(files)], capture_output=True, text=True)
    assert bad.returncode == 1
    swapped = hashlib.sha256(b"swapped").hexdigest()
    recorded = hashlib.sha256(bodies["supervisor-arm64.zip"]).hexdigest()
    assert bad.stderr == (
        f"checksum mismatch: supervisor-arm64.zip has sha256 {swapped}, the bundle recorded {recorded}\n"
    )
    assert sorted(p.name for p in again.iterdir()) == []


def test_the_offline_job_runs_on_a_server_and_reads_the_servers_folder() -> None:
    catalogue = load_catalogue()
    platform = build_platform(PlatformInputs(ClusterSpec(), catalogue, SECRETS, "192.0.2.10", offline_for(catalogue)))
    job = next(o for o in platform.objects if o["kind"] == "Job")["spec"]["template"]["spec"]
    assert job["volumes"][-1] == {"name": "bundle", "hostPath": {"path": BUNDLE_FILES_HOST_PATH, "type": "Directory"}}
    assert job["containers"][0]["volumeMounts"][-1] == {"name": "bundle", "mountPath": "/bundle", "readOnly": True}
    assert job["nodeSelector"] == {"node-role.kubernetes.io/control-plane": "true"}
    # The airgap role puts the files exactly there.
    defaults = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "playbooks/roles/airgap/defaults/main.yml").read_text()
    )
    assert defaults["airgap_platform_files_dir"] == BUNDLE_FILES_HOST_PATH

    lacking = OfflinePlatform({}, (), "")
    with pytest.raises(UserInputError, match=r"^air-gap bundle: lacks https://github.com/openfaas/classic-watchdog"):
        build_platform(PlatformInputs(ClusterSpec(), catalogue, SECRETS, "192.0.2.10", lacking))
