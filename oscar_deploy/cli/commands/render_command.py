"""`render DIR`: the platform's Kubernetes objects and our settings for third-party components, as YAML."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from oscar_deploy.cli.options import SPEC_OPTION
from oscar_deploy.nodes.bundle import check_bundle
from oscar_deploy.platform.bundle import bundled_manifest_texts, offline_platform
from oscar_deploy.platform.manifests import offline_manifest
from oscar_deploy.platform.model import STATE_SECRET_NAMES, PlatformInputs, PlatformSecrets
from oscar_deploy.platform.objects import build_platform
from oscar_deploy.platform.render import OBJECTS_FILE, REDACTED, RENDERED, render_platform
from oscar_deploy.spec.catalogue import load_catalogue
from oscar_deploy.spec.models import load_spec
from oscar_deploy.state.folder import cluster_state
from oscar_deploy.support.files import check_write_target

DIR_ARGUMENT = typer.Argument(..., help="Folder to write into (created if missing).", metavar="DIR")
WITH_SECRETS_OPTION = typer.Option(
    False, "--with-secrets", help="Also write the Secrets (generated credentials) to secrets.yaml, mode 0600."
)
PUBLIC_ADDRESS_OPTION = typer.Option(
    None, "--public-address", help="First server's public IP; names the gateway <ip>.sslip.io without a domain."
)
BUNDLE_OPTION = typer.Option(
    None,
    "--bundle",
    help="Air-gap bundle (`bundle build`): render for an offline cluster, with the bundled release manifests.",
)


def render(
    directory: Path = DIR_ARGUMENT,
    file: Path = SPEC_OPTION,
    with_secrets: bool = WITH_SECRETS_OPTION,
    public_address: str | None = PUBLIC_ADDRESS_OPTION,
    bundle: Path | None = BUNDLE_OPTION,
) -> None:
    """Write the platform's Kubernetes objects as YAML for GitOps; Secrets only on request.

    DIR gets objects.yaml, third-party/<component>/kustomization.yaml and, with --with-secrets, secrets.yaml
    (mode 0600) holding the cluster's generated credentials (created in its state folder if new). The same
    builder feeds the platform stack, so what is written is what the stack applies. With --bundle, the objects
    are those of an offline cluster and each third-party folder holds the bundled manifests it applies.
    """
    # Before anything is read or created: a DIR that is a file, or under one, or too long a name, is one line.
    check_write_target(directory / OBJECTS_FILE, RENDERED, create_parents=True)
    spec = load_spec(file)
    if with_secrets:
        state = cluster_state(spec.name)
        secrets = PlatformSecrets(**{field: state.secret(name) for field, name in STATE_SECRET_NAMES.items()})
    else:
        secrets = PlatformSecrets(REDACTED, REDACTED, REDACTED)
    catalogue = load_catalogue().with_overrides(spec.versions)
    offline = texts = None
    if bundle is not None:
        check_bundle(bundle, catalogue.version("k3s"), [])
        offline = offline_platform(bundle)
    platform = build_platform(PlatformInputs(spec, catalogue, secrets, public_address, offline))
    if bundle is not None:
        texts = bundled_manifest_texts(bundle, platform.third_party)
        platform = replace(platform, third_party=[offline_manifest(m, texts[m.url]) for m in platform.third_party])
    written = render_platform(platform, directory, with_secrets, texts)
    typer.echo(f"wrote {len(platform.non_secrets)} objects to {written[0]}")
    if with_secrets:
        typer.echo(f"wrote {len(platform.secrets)} Secrets to {written[1]} (mode 0600)")
    else:
        typer.echo(f"left out {len(platform.secrets)} Secrets (--with-secrets writes them)")
    typer.echo(f"wrote the third-party components' settings to {directory / 'third-party'}")
    if platform.unpinned:
        typer.echo(
            f"warning: {len(platform.unpinned)} release files have no sha256 pin yet (see `oscar-deploy versions`)",
            err=True,
        )
