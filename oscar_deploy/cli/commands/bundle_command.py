"""`bundle build` and `bundle inspect`: one air-gap folder with k3s and the whole OSCAR platform."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from oscar_deploy.cli.interrupts import changes_nothing
from oscar_deploy.nodes.bundle import (
    MANIFEST_NAME,
    BundleManifest,
    build_bundle,
    check_bundle,
    load_manifest,
    parse_arches,
    resolve_download_url,
)
from oscar_deploy.nodes.k3s import check_k3s_version
from oscar_deploy.platform.bundle import (
    PlatformBundleBuilder,
    check_platform_arches,
    container_images,
    damaged_platform_section,
)
from oscar_deploy.platform.model import PlatformInputs, PlatformSecrets
from oscar_deploy.platform.objects import build_platform
from oscar_deploy.spec.catalogue import Catalogue, load_catalogue
from oscar_deploy.spec.models import ClusterSpec, load_spec
from oscar_deploy.support.download import Downloader
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.files import check_write_target, parse_json
from oscar_deploy.support.oci import Skopeo
from oscar_deploy.support.progress import TransferDisplay

bundle_app = typer.Typer(
    help="Air-gap bundles: k3s and the OSCAR platform for clusters without internet access.", no_args_is_help=True
)

ARCH_OPTION = typer.Option(
    None,
    "--arch",
    "-a",
    help="Comma-separated architectures: amd64, arm64, arm; default the spec's node arches (-f), else amd64.",
)
SPEC_OPTION = typer.Option(
    None, "--file", "-f", help="Cluster spec whose version overrides, settings and arches the bundle follows."
)
VERSION_OPTION = typer.Option(
    None, "--k3s-version", help="k3s release to bundle; default the catalogue's pin (see `oscar-deploy versions`)."
)
DOWNLOAD_URL_OPTION = typer.Option(
    None,
    "--download-url",
    envvar="OSCAR_DEPLOY_K3S_DOWNLOAD_URL",
    help="Base URL of k3s release files (a mirror); default https://github.com/k3s-io/k3s/releases/download.",
)
MIRROR_OPTION = typer.Option(
    None,
    "--registry-mirror",
    help="Registry HOST[:PORT] to copy the images from (same repository paths) instead of their own registries.",
)
INSECURE_OPTION = typer.Option(
    False, "--insecure-registry", help="Talk to the registries over plain HTTP or without checking certificates."
)
K3S_ONLY_OPTION = typer.Option(False, "--k3s-only", help="Bundle k3s only, not the platform's images and files.")
DIRECTORY_ARGUMENT = typer.Argument(..., help="Bundle folder (created if needed; files already verified are kept).")


def spec_arches(spec: ClusterSpec) -> list[str] | None:
    """The arches of the spec's nodes, where the spec says them (a static inventory's hosts say their own)."""
    if spec.target == "static":
        return None
    settings = spec.target_settings()
    return sorted({settings.node_arch("server"), settings.node_arch("agent")})


def _catalogue(spec: ClusterSpec | None) -> Catalogue:
    catalogue = load_catalogue()
    return catalogue.with_overrides(spec.versions) if spec else catalogue


@bundle_app.command("build")
def build(
    directory: Path = DIRECTORY_ARGUMENT,
    arch: str | None = ARCH_OPTION,
    file: Path | None = SPEC_OPTION,
    k3s_version: str | None = VERSION_OPTION,
    download_url: str | None = DOWNLOAD_URL_OPTION,
    registry_mirror: str | None = MIRROR_OPTION,
    insecure_registry: bool = INSECURE_OPTION,
    k3s_only: bool = K3S_ONLY_OPTION,
) -> None:
    """Download k3s and the OSCAR platform's images, manifests, chart and binaries, each verified by digest.

    Use the folder with `oscar-deploy up --bundle DIR` or `oscar-deploy edge install -i INV --bundle DIR`.
    """
    spec = load_spec(file) if file is not None else None
    arches = parse_arches(arch) if arch else (spec_arches(spec) if spec else None) or ["amd64"]
    catalogue = _catalogue(spec)
    version = check_k3s_version(k3s_version, "--k3s-version") if k3s_version else catalogue.version("k3s")
    # Before anything is downloaded: a folder that is a file, or under one, or too long a name, is one line.
    check_write_target(directory / MANIFEST_NAME, "bundle manifest", create_parents=True)
    if registry_mirror is not None and ("/" in registry_mirror or not registry_mirror.strip()):
        raise UserInputError(f"--registry-mirror {registry_mirror!r}: give HOST or HOST:PORT, without a scheme")
    releases = resolve_download_url(download_url)
    if not k3s_only:
        check_platform_arches(arches)  # before anything is downloaded

    with TransferDisplay() as reporter:
        downloader = Downloader(reporter)
        try:
            manifest = build_bundle(directory, version, arches, releases, downloader, log=reporter.console.print)
            if not k3s_only:
                PlatformBundleBuilder(
                    directory,
                    catalogue,
                    spec or ClusterSpec(),
                    arches,
                    downloader,
                    Skopeo(tls_verify=not insecure_registry),
                    registry_mirror,
                    log=reporter.console.print,
                ).build()
                manifest = load_manifest(directory)
        finally:
            downloader.close()
    images = manifest.platform.get("images") or []
    platform = f", {len(images)} platform image archives" if images else ""
    typer.echo(
        f"bundle {directory}: k3s {manifest.k3s_version} for {', '.join(sorted(manifest.arches))}{platform}, "
        f"{len(manifest.files)} files verified"
    )


JSON_OPTION = typer.Option(False, "--json", help="Print the bundle's contents as JSON.")


@bundle_app.command("inspect")
@changes_nothing
def inspect(
    directory: Path = typer.Argument(..., help="Bundle folder to describe."),  # noqa: B008
    file: Path | None = typer.Option(  # noqa: B008
        None, "--file", "-f", help="Cluster spec to check the bundle against (versions, arches, images)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List what a bundle holds (versions, arches, images, files) and whether it matches a spec.

    Every file is checked against its recorded sha256. With -f, exit 1 when the bundle does not fit the spec.
    """
    manifest = load_manifest(directory)
    check_bundle(directory, manifest.k3s_version, manifest.arches, option="bundle")
    problems = bundle_mismatches(manifest, load_spec(file)) if file is not None else []
    if as_json:
        data: dict[str, Any] = parse_json(manifest.to_json())
        data["matches"] = None if file is None else not problems
        data["mismatches"] = problems
        typer.echo(json.dumps(data, indent=2))
    else:
        try:
            lines = describe(manifest)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise damaged_platform_section(directory, exc) from None
        for line in lines:
            typer.echo(line)
        if file is not None:
            typer.echo(f"matches {file}" if not problems else f"does not match {file}:")
            for problem in problems:
                typer.echo(f"  {problem}")
    if problems:
        raise typer.Exit(1)


def describe(manifest: BundleManifest) -> list[str]:
    platform = manifest.platform
    lines = [
        f"k3s {manifest.k3s_version} for {', '.join(sorted(manifest.arches))} (built {manifest.created_at or '?'})",
        f"{len(manifest.files)} files, {sum(int(e.get('size', 0)) for e in manifest.files.values())} bytes, "
        "all verified against manifest.json",
    ]
    if not platform:
        return [*lines, "platform: not included (k3s only)"]
    mirror = platform.get("registry_mirror")
    lines.append(
        f"platform for {', '.join(platform.get('arches', []))}"
        + (f", images copied from mirror {mirror}" if mirror else "")
    )
    for entry in platform.get("manifests", []):
        pin = "pinned" if entry.get("pinned") else "recorded at build"
        lines.append(f"  manifest {entry['component']} {entry['file']} sha256 {entry['sha256'][:12]} ({pin})")
    for entry in platform.get("charts", []):
        lines.append(f"  chart {entry['component']} {entry['version']} (runs {entry['image']})")
    for entry in platform.get("binaries", []):
        lines.append(f"  file {entry['name']} ({entry['arch']}) sha256 {entry['sha256'][:12]}")
    for entry in platform.get("images", []):
        lines.append(
            f"  image {entry['reference']} {entry['arch']} {entry['index_digest'][:19]} "
            f"{entry['size']} bytes ({entry.get('found_in', '')})"
        )
    return lines


def bundle_mismatches(manifest: BundleManifest, spec: ClusterSpec) -> list[str]:
    """What the spec's cluster needs that the bundle does not hold, one line each."""
    catalogue = _catalogue(spec)
    problems = []
    if manifest.k3s_version != catalogue.version("k3s"):
        problems.append(f"k3s: bundle has {manifest.k3s_version}, the spec pins {catalogue.version('k3s')}")
    needed = spec_arches(spec) or []
    missing = [arch for arch in needed if arch not in manifest.arches]
    if missing:
        problems.append(f"arches: the spec's nodes need {', '.join(missing)}; bundle has {', '.join(manifest.arches)}")
    platform = manifest.platform
    if not platform:
        return [*problems, "platform: the bundle holds k3s only; rebuild it without --k3s-only"]
    missing_platform = [arch for arch in needed if arch not in platform.get("arches", [])]
    if missing_platform:
        problems.append(f"platform images: none for {', '.join(missing_platform)}")
    for key, version in (platform.get("versions") or {}).items():
        if key in catalogue.components and catalogue.version(key) != version:
            problems.append(f"{key}: bundle has {version}, the spec pins {catalogue.version(key)}")
    bundled = {entry["reference"] for entry in platform.get("images", [])}
    problems += [
        f"image {reference}: not in the bundle; rebuild it with `oscar-deploy bundle build -f SPEC DIR`"
        for reference in _wanted_images(catalogue, spec)
        if reference not in bundled
    ]
    return problems


def _wanted_images(catalogue: Catalogue, spec: ClusterSpec) -> list[str]:
    """Images of the spec's own objects and pins (the release manifests' images come with their pinned files)."""
    objects = build_platform(PlatformInputs(spec, catalogue, PlatformSecrets("-", "-", "-"), "192.0.2.1")).objects
    wanted = container_images(objects)
    smoke = catalogue["smoke_test_image"].image_reference
    return list(dict.fromkeys([*wanted, *([smoke] if smoke else [])]))
