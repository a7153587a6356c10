"""`edge install` and `edge reset`: k3s on boards and hosts you already own, from an Ansible inventory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from oscar_deploy.cli.options import confirm_or_refuse

if TYPE_CHECKING:
    from oscar_deploy.state.folder import ClusterState

edge_app = typer.Typer(
    help="k3s on boards and hosts you already own (Raspberry Pi, ARM or x86), from an Ansible inventory.",
    no_args_is_help=True,
)

INVENTORY_OPTION = typer.Option(
    ...,
    "--inventory",
    "-i",
    help="Ansible inventory with groups `server` and `agent` (k3s-io/k3s-ansible inventories work as they are).",
    dir_okay=False,
)
NAME_OPTION = typer.Option(
    "edge", "--name", "-n", help="Cluster name: names the state folder, the kubeconfig context and the token."
)
BUNDLE_OPTION = typer.Option(
    None,
    "--bundle",
    envvar="OSCAR_DEPLOY_BUNDLE",
    help="Air-gap bundle folder (`oscar-deploy bundle build`); without it every node downloads k3s from upstream.",
    file_okay=False,
)
VERSION_OPTION = typer.Option(
    None, "--k3s-version", help="k3s release; default the inventory's `k3s_version`, else the catalogue's pin."
)
YES_OPTION = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")


@edge_app.command("install")
def install(
    inventory: Path = INVENTORY_OPTION,
    name: str = NAME_OPTION,
    bundle: Path | None = BUNDLE_OPTION,
    k3s_version: str | None = VERSION_OPTION,
) -> None:
    """Install k3s (servers, then agents) on the inventory's hosts and fetch the admin kubeconfig.

    Running it again changes nothing on hosts that are already right, and adds hosts new to the inventory.
    """
    from oscar_deploy.nodes.ansible import RichDisplay, read_inventory
    from oscar_deploy.nodes.k3s import K3sLayer, check_k3s_version, cluster_groups, use_bundle
    from oscar_deploy.spec.catalogue import load_catalogue

    state = _edge_state(name)
    view = read_inventory(inventory)
    servers, agents = cluster_groups(view)
    inventory_version = view.hostvars.get(servers[0], {}).get("k3s_version")
    if k3s_version:
        version = check_k3s_version(k3s_version, "--k3s-version")
    elif inventory_version:
        version = check_k3s_version(str(inventory_version), f"{inventory}: k3s_version")
    else:
        version = load_catalogue().version("k3s")
    # The nodes' architectures are only known once Ansible reaches them: the airgap role checks each one.
    bundle_dir = use_bundle(bundle, version)

    typer.echo(
        f"installing k3s {version} on {len(servers)} server(s) and {len(agents)} agent(s) from {inventory}"
        + (f" with bundle {bundle_dir}" if bundle_dir else ""),
        err=True,
    )
    layer = K3sLayer(state, inventory.resolve(), version, bundle=bundle_dir, display=RichDisplay())
    layer.run("site.yml")
    state.journal.record("edge-install", inventory=str(inventory.resolve()), k3s_version=version)
    typer.echo(
        f"edge cluster {state.name}: k3s {version} on {', '.join(servers + agents)}; "
        f"kubeconfig {state.kubeconfig_file} (merge it with `oscar-deploy kubeconfig -c {state.name} --merge`)"
    )


@edge_app.command("reset")
def reset(
    inventory: Path = INVENTORY_OPTION,
    name: str = NAME_OPTION,
    yes: bool = YES_OPTION,
) -> None:
    """Uninstall k3s from every host of the inventory and undo what `edge install` changed on them.

    Asks for confirmation unless --yes; without a terminal to ask on, it refuses.
    """
    from oscar_deploy.nodes.ansible import RichDisplay, read_inventory
    from oscar_deploy.nodes.k3s import K3sLayer, cluster_groups
    from oscar_deploy.spec.catalogue import load_catalogue

    state = _edge_state(name)
    view = read_inventory(inventory)
    servers, agents = cluster_groups(view)
    hosts = servers + agents
    confirm_or_refuse(
        yes,
        f"edge reset: would remove k3s and its data from {len(hosts)} host(s) of {inventory}; "
        "no terminal to confirm on, pass --yes to go ahead",
        f"Remove k3s, its data and every workload from {len(hosts)} host(s) ({', '.join(hosts)})?",
    )
    version = str(view.hostvars.get(servers[0], {}).get("k3s_version") or load_catalogue().version("k3s"))
    layer = K3sLayer(state, inventory.resolve(), version, display=RichDisplay())
    layer.run("reset.yml", {"reset_confirmation": "yes"})
    state.kubeconfig_file.unlink(missing_ok=True)
    state.remove_key_material()
    state.journal.forget("edge-install")
    typer.echo(
        f"edge cluster {state.name}: k3s removed from {', '.join(hosts)}; a context merged into your "
        f"kubeconfig stays until you delete it (`kubectl config delete-context {state.name}`)"
    )


def _edge_state(name: str) -> ClusterState:
    """The state folder of edge cluster `name`; refuses the name of a cluster that `up` manages from a spec."""
    from oscar_deploy.spec.models import NAME_PATTERN
    from oscar_deploy.state.folder import ClusterState
    from oscar_deploy.support.errors import UserInputError

    if not NAME_PATTERN.match(name):
        raise UserInputError(f"--name {name}: use 1-32 lowercase letters, digits and '-', starting with a letter")
    state = ClusterState(name)
    if state.spec_file.is_file():
        raise UserInputError(
            f"--name {name}: cluster {name} is managed by `oscar-deploy up` from a spec; choose another --name"
        )
    return state
