"""The version catalogue and its preflight."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
import yaml

from oscar_deploy.spec.catalogue import CATALOGUE_FILE, SYNTAXES, load_catalogue

CATALOGUE_TEXT = CATALOGUE_FILE.read_text()
ENTRIES = yaml.safe_load(CATALOGUE_TEXT)["components"]

REQUIRED = {
    "k3s",
    "knative_serving",
    "kourier",
    "minio",
    "cert_manager",
    "gateway_api",
    "traefik_chart",
    "nfs_provisioner",
    "metrics_server",
    "oscar",
    "oscar_chart",
    "faas_supervisor",
    "pulumi",
    "smoke_test_image",
    "fwatchdog",
    "bin_populator",
}


def test_catalogue_pins_every_artefact_and_passes_its_own_preflight() -> None:
    catalogue = load_catalogue()
    assert set(catalogue.components) == REQUIRED
    assert catalogue.preflight() == []
    for component in catalogue.components.values():
        assert SYNTAXES[component.syntax][0].match(component.version), component.key
        assert component.source.startswith("https://"), component.key
        assert component.version not in {"latest", "master", "main"}


def test_images_resolve_to_full_references() -> None:
    catalogue = load_catalogue()
    assert catalogue["oscar"].image_reference == f"ghcr.io/grycap/oscar:{catalogue.version('oscar')}"
    mirrored = catalogue.with_overrides({"minio": "registry.example.org/mirror/minio:RELEASE.2025-09-07T16-13-09Z"})
    assert mirrored["minio"].image_reference == "registry.example.org/mirror/minio:RELEASE.2025-09-07T16-13-09Z"
    assert mirrored["minio"].overridden
    assert mirrored.preflight() == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"k3s": "1.33.3"}, [(("k3s",), "'1.33.3' is not a version; use vMAJOR.MINOR.PATCH+k3sN, e.g. v1.33.3+k3s1")]),
        (
            {"k3s": "v1.33.3-k3s1"},
            [(("k3s",), "'v1.33.3-k3s1' is not a version; use vMAJOR.MINOR.PATCH+k3sN, e.g. v1.33.3+k3s1")],
        ),
        (
            {"knative_serving": "1.15.0", "kourier": "1.15.0"},
            [
                (
                    ("knative_serving",),
                    "Knative 1.15.0 has no known Kubernetes support range; use a minor in the catalogue "
                    "(1.13, 1.17, 1.18, 1.19, 1.20, 1.21)",
                )
            ],
        ),
        (
            {"kourier": "1.19.2"},
            [(("kourier",), "Kourier 1.19.2 must have Knative Serving's minor (1.20); set kourier to 1.20.x")],
        ),
        (
            {"minio": "latest"},
            [
                (
                    ("minio",),
                    "'latest' is not a version; use RELEASE.YYYY-MM-DDThh-mm-ssZ, e.g. RELEASE.2025-09-07T16-13-09Z",
                )
            ],
        ),
        (
            {"cert_manager": "1.18.2"},
            [(("cert_manager",), "'1.18.2' is not a version; use vMAJOR.MINOR.PATCH, e.g. v1.18.2")],
        ),
        ({"kubernetes": "v1.33.0"}, [(("kubernetes",), "unknown component; see `oscar-deploy versions` for the keys")]),
        (
            {"knative_serving": "1.20", "kourier": "1.20.0"},
            [(("knative_serving",), "'1.20' is not a version; use MAJOR.MINOR.PATCH, e.g. 1.20.0")],
        ),
        ({"minio": "Registry.Example/minio"}, [(("minio",), "'Registry.Example/minio' is not an image reference")]),
    ],
)
def test_preflight_refuses_unsupported_overrides(
    overrides: dict[str, str], expected: list[tuple[tuple[str], str]]
) -> None:
    assert load_catalogue().override_problems(overrides) == expected


def test_knative_needs_its_minimum_kubernetes() -> None:
    problems = load_catalogue().override_problems({"k3s": "v1.31.12+k3s1"})
    assert problems == [
        (
            ("k3s",),
            "Kubernetes 1.31 (v1.31.12+k3s1) is older than Knative 1.20.0 supports (>= 1.32); "
            "raise k3s or lower knative_serving",
        )
    ]
    # the same Kubernetes is fine with a Knative release that supports it
    assert (
        load_catalogue().override_problems({"k3s": "v1.31.12+k3s1", "knative_serving": "1.18.0", "kourier": "1.18.0"})
        == []
    )


def test_release_files_urls_pins_and_overrides(tmp_path: Path) -> None:
    catalogue = load_catalogue()
    assert catalogue["knative_serving"].file_url("serving-core.yaml") == (
        "https://github.com/knative/serving/releases/download/knative-v1.20.0/serving-core.yaml"
    )
    assert catalogue["fwatchdog"].file_url("fwatchdog-arm64") == (
        "https://github.com/openfaas/classic-watchdog/releases/download/0.2.1/fwatchdog-arm64"
    )
    assert catalogue["fwatchdog"].as_dict()["files"] == {"fwatchdog-amd64": "UNPINNED", "fwatchdog-arm64": "UNPINNED"}
    pinned = tmp_path / "catalogue.yaml"
    text = CATALOGUE_TEXT.replace("kourier.yaml: {sha256: null}", f"kourier.yaml: {{sha256: {'a' * 64}}}")
    pinned.write_text(text)
    kourier = load_catalogue(pinned)["kourier"]
    assert kourier.file("kourier.yaml").sha256 == "a" * 64 and kourier.unpinned_files == []
    overridden = load_catalogue(pinned).with_overrides({"kourier": "1.20.1", "knative_serving": "1.20.3"})["kourier"]
    assert overridden.unpinned_files == ["kourier.yaml"]
    assert overridden.file_url("kourier.yaml").endswith("/knative-v1.20.1/kourier.yaml")
    pinned.write_text(CATALOGUE_TEXT.replace("kourier.yaml: {sha256: null}", "kourier.yaml: {sha256: abc}"))
    with pytest.raises(ValueError, match=r"^catalogue: kourier.files.kourier.yaml.sha256 is not 64 hex digits$"):
        load_catalogue(pinned)


def test_every_key_of_an_entry_is_loaded() -> None:
    catalogue = load_catalogue()
    for key, entry in ENTRIES.items():
        component = catalogue[key]
        loaded = (component.image, component.digest, component.download_url, component.checksums, component.helm_repo)
        wanted = tuple(entry.get(name) for name in ("image", "digest", "download_url", "checksums", "helm_repo"))
        assert loaded == wanted, key
        assert component.release_tag == entry.get("release_tag", "{version}"), key
        files = [(f.name, f.sha256, f.arch, f.variant) for f in component.files]
        assert files == [
            (name, file["sha256"], file.get("arch"), file.get("variant"))
            for name, file in entry.get("files", {}).items()
        ], key
    # the loader is not vacuous: the catalogue has each kind of key
    assert catalogue["minio"].digest and catalogue["traefik_chart"].helm_repo and catalogue["fwatchdog"].checksums
    assert catalogue["faas_supervisor"].file("supervisor-alpine-arm64.zip").variant == "alpine"


def test_a_component_as_the_versions_command_shows_it() -> None:
    catalogue = load_catalogue()
    minio = ENTRIES["minio"]
    assert catalogue["minio"].as_dict() == {
        "version": minio["version"],
        "description": minio["description"],
        "source": minio["source"],
        "overridden": False,
        "image": f"{minio['image']}:{minio['version']}@{minio['digest']}",
    }
    chart = ENTRIES["traefik_chart"]
    assert catalogue["traefik_chart"].as_dict() == {
        "version": chart["version"],
        "description": chart["description"],
        "source": chart["source"],
        "overridden": False,
    }


def test_a_missing_release_file_or_download_url_is_named() -> None:
    catalogue = load_catalogue()
    with pytest.raises(KeyError) as no_file:
        catalogue["fwatchdog"].file_url("fwatchdog-riscv64")
    assert no_file.value.args == ("fwatchdog has no release file 'fwatchdog-riscv64'",)
    with pytest.raises(KeyError) as no_url:
        catalogue["oscar"].file_url("oscar")
    assert no_url.value.args == ("oscar has no download_url",)


def test_a_catalogue_is_never_changed_in_place() -> None:
    catalogue = load_catalogue()
    with pytest.raises(FrozenInstanceError):
        catalogue.components = {}  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        catalogue["k3s"].version = "v1.34.1+k3s1"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        catalogue["fwatchdog"].files[0].sha256 = "a" * 64  # type: ignore[misc]
