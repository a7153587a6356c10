"""`credentials`: where the cluster's OSCAR, dashboard and MinIO are, and their credentials on request."""

from __future__ import annotations

from pathlib import Path

import typer

from oscar_deploy.cli.interrupts import changes_nothing
from oscar_deploy.cli.options import CLUSTER_NAME_OPTION, JSON_OPTION, OPTIONAL_SPEC_OPTION, cluster_name, print_json
from oscar_deploy.services.oscar_cli_config import write_cluster_entry
from oscar_deploy.state.endpoints import access_from_state
from oscar_deploy.state.folder import cluster_state

MASK = "********"
SHOW_OPTION = typer.Option(False, "--show-secrets", help="Print the passwords and keys instead of masking them.")
OSCAR_CLI_OPTION = typer.Option(
    False, "--oscar-cli", help="Also add the cluster to oscar-cli's config (0600), as `service cli-config` does."
)
CONFIG_FILE_OPTION = typer.Option(
    Path("~/.oscar-cli/config.yaml"), "--config-file", dir_okay=False, help="oscar-cli configuration file."
)
DEFAULT_OPTION = typer.Option(False, "--default", help="With --oscar-cli, make this cluster oscar-cli's default.")


@changes_nothing
def credentials(
    file: Path | None = OPTIONAL_SPEC_OPTION,
    cluster: str | None = CLUSTER_NAME_OPTION,
    show_secrets: bool = SHOW_OPTION,
    as_json: bool = JSON_OPTION,
    oscar_cli: bool = OSCAR_CLI_OPTION,
    config_file: Path = CONFIG_FILE_OPTION,
    make_default: bool = DEFAULT_OPTION,
) -> None:
    """Print the cluster's OSCAR, dashboard and MinIO URLs and credentials.

    Passwords and keys are masked unless --show-secrets is given; they come from the cluster's state folder,
    where `up` generated them.
    """
    state = cluster_state(cluster_name(file, cluster)).require()
    access = access_from_state(state)
    minio = access.minio
    assert minio is not None  # a cluster of ours always has its MinIO keys

    def shown(value: str | None) -> str:
        return (value or "") if show_secrets else MASK

    data = {
        "cluster": state.name,
        "oscar": {"url": access.oscar.url, "user": access.oscar.user, "password": shown(access.oscar.password)},
        "dashboard": {"url": f"{access.oscar.url}/ui"},
        "minio": {
            "url": minio.url,
            "access_key": minio.access_key,
            "secret_key": shown(minio.secret_key),
            "region": minio.region,
        },
        "ca_file": str(access.oscar.ca_file) if access.oscar.ca_file else None,
    }
    if as_json:
        print_json(data)
    else:
        typer.echo(f"OSCAR      {access.oscar.url}  user {access.oscar.user}  password {shown(access.oscar.password)}")
        typer.echo(f"dashboard  {access.oscar.url}/ui  (same user and password)")
        typer.echo(f"MinIO      {minio.url}  access key {minio.access_key}  secret key {shown(minio.secret_key)}")
        if access.oscar.ca_file:
            typer.echo(f"CA         {access.oscar.ca_file}  (the certificates come from the cluster's own CA)")
        if not show_secrets:
            typer.echo("passwords and keys masked; --show-secrets prints them")
    if oscar_cli:
        is_default = write_cluster_entry(config_file, access.oscar, make_default)
        typer.echo(
            f"{config_file.expanduser()}: cluster {access.oscar.cluster_id}" + (", the default" if is_default else ""),
            err=as_json,
        )
