"""`bundle build`: download the pinned k3s release artefacts into a folder for air-gapped installs."""

from __future__ import annotations

from pathlib import Path

import typer

from oscar_deploy.nodes.bundle import build_bundle, parse_arches, resolve_urls
from oscar_deploy.nodes.k3s import check_k3s_version
from oscar_deploy.spec.catalogue import load_catalogue
from oscar_deploy.support.download import Downloader
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.progress import TransferDisplay

bundle_app = typer.Typer(help="Air-gap bundles: k3s artefacts for nodes without internet access.", no_args_is_help=True)

ARCH_OPTION = typer.Option("amd64", "--arch", "-a", help="Comma-separated architectures: amd64, arm64, arm.")
VERSION_OPTION = typer.Option(
    None, "--k3s-version", help="k3s release to bundle; default the catalogue's pin (see `oscar-deploy versions`)."
)
DOWNLOAD_URL_OPTION = typer.Option(
    None,
    "--download-url",
    envvar="OSCAR_DEPLOY_K3S_DOWNLOAD_URL",
    help="Base URL of k3s release files (a mirror); default https://github.com/k3s-io/k3s/releases/download.",
)
INSTALLER_URL_OPTION = typer.Option(
    None,
    "--installer-url",
    envvar="OSCAR_DEPLOY_K3S_INSTALLER_URL",
    help="Base URL of install.sh at a release tag; default https://raw.githubusercontent.com/k3s-io/k3s.",
)
DIRECTORY_ARGUMENT = typer.Argument(..., help="Bundle folder (created if needed; files already verified are kept).")


@bundle_app.command("build")
def build(
    directory: Path = DIRECTORY_ARGUMENT,
    arch: str = ARCH_OPTION,
    k3s_version: str | None = VERSION_OPTION,
    download_url: str | None = DOWNLOAD_URL_OPTION,
    installer_url: str | None = INSTALLER_URL_OPTION,
) -> None:
    """Download k3s, its airgap images and install.sh, verified against upstream's sha256 files.

    Use the folder with `oscar-deploy up --bundle DIR` or `oscar-deploy edge install -i INV --bundle DIR`.
    """
    arches = parse_arches(arch)
    version = check_k3s_version(k3s_version, "--k3s-version") if k3s_version else load_catalogue().version("k3s")
    if directory.exists() and not directory.is_dir():
        raise UserInputError(f"{directory}: exists and is not a folder; choose another bundle folder")
    releases, installers = resolve_urls(download_url, installer_url)

    with TransferDisplay() as reporter:
        downloader = Downloader(reporter)
        try:
            manifest = build_bundle(
                directory, version, arches, releases, installers, downloader, log=reporter.console.print
            )
        finally:
            downloader.close()
    typer.echo(
        f"bundle {directory}: k3s {manifest.k3s_version} for {', '.join(sorted(manifest.arches))}, "
        f"{len(manifest.files)} files verified"
    )
