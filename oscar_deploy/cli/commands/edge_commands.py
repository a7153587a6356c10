"""`edge install` and `edge reset`: `up` and `down` for boards and hosts you own, straight from an inventory.

Both build the spec of a `static` cluster from the inventory (its `k3s_version` becomes the spec's pin), so
the cluster is then like any other: `status -c NAME`, `ssh -c NAME`, `up -f` with a spec of your own, `down`.
"""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from oscar_deploy.cli.options import BUNDLE_OPTION, UNTIL_OPTION, YES_OPTION, confirm_or_refuse, print_outcomes
from oscar_deploy.nodes.inventory import read_inventory
from oscar_deploy.nodes.k3s import check_k3s_version, cluster_groups
from oscar_deploy.pipeline.cluster import applied_spec_text, cluster_context, converge, teardown
from oscar_deploy.spec.catalogue import load_catalogue
from oscar_deploy.spec.models import ClusterSpec, load_spec, parse_spec
from oscar_deploy.state.folder import ClusterState, cluster_state
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.progress import Progress

edge_app = typer.Typer(
    help="k3s on boards and hosts you already own, from an inventory.",
    no_args_is_help=True,
)

INVENTORY_OPTION = typer.Option(
    ...,
    "--inventory",
    "-i",
    help="Ansible inventory with groups `server` and `agent` (k3s-io/k3s-ansible layout).",
    dir_okay=False,
)
NAME_OPTION = typer.Option(
    "edge", "--name", "-n", help="Cluster name: names the state folder, the kubeconfig context and the token."
)
VERSION_OPTION = typer.Option(
    None, "--k3s-version", help="k3s release; default the inventory's `k3s_version`, else the catalogue's pin."
)


@edge_app.command("install")
def install(
    inventory: Path = INVENTORY_OPTION,
    name: str = NAME_OPTION,
    bundle: Path | None = BUNDLE_OPTION,
    k3s_version: str | None = VERSION_OPTION,
    until: str | None = UNTIL_OPTION,
) -> None:
    """Install k3s (servers, then agents) on the inventory's hosts and fetch the admin kubeconfig.

    Running it again changes nothing on hosts that are already right, adds hosts new to the inventory, and
    drains and resets hosts taken out of it.
    """
    state = cluster_state(name, "--name")
    spec = _edge_spec(state, inventory, k3s_version)
    context = cluster_context(spec, state, Progress(), bundle)
    servers = [node.name for node in context.nodes if node.role == "server"]
    note = f"installing k3s on {len(servers)} server(s) and {len(context.nodes) - len(servers)} agent(s) from " + (
        f"{inventory}" + (f" with bundle {context.bundle}" if context.bundle else "")
    )
    applied = applied_spec_text(spec, f"edge install -i {inventory.resolve()}")
    outcomes = converge(context, applied, until, operation="edge install", start_note=note)
    print_outcomes(outcomes)
    typer.echo(
        f"edge cluster {name}: k3s on {', '.join(node.name for node in context.nodes)}; "
        f"kubeconfig {state.kubeconfig_file} (merge it with `oscar-deploy kubeconfig -c {name} --merge`)"
    )


@edge_app.command("reset")
def reset(inventory: Path = INVENTORY_OPTION, name: str = NAME_OPTION, yes: bool = YES_OPTION) -> None:
    """Uninstall k3s from every host of the inventory and undo what `edge install` changed on them.

    Asks for confirmation unless --yes; without a terminal to ask on, it refuses. The state folder of the
    cluster goes too.
    """
    state = cluster_state(name, "--name")
    spec = _edge_spec(state, inventory, None, pin=False)
    from oscar_deploy.autoscaler.service import refuse_while_running

    refuse_while_running("edge reset", state)
    context = cluster_context(spec, state, Progress(), node_phases=False)
    hosts = [node.name for node in context.nodes]
    confirm_or_refuse(
        yes,
        f"edge reset: would remove k3s and its data from {len(hosts)} host(s) of {inventory}; "
        "no terminal to confirm on, pass --yes to go ahead",
        f"Remove k3s, its data and every workload from {len(hosts)} host(s) ({', '.join(hosts)})?",
    )
    teardown(context, "edge reset")
    typer.echo(
        f"edge cluster {name}: k3s removed from {', '.join(hosts)}; a context merged into your "
        f"kubeconfig stays until you delete it (`kubectl config delete-context {name}`)"
    )


def _edge_spec(state: ClusterState, inventory: Path, k3s_version: str | None, pin: bool = True) -> ClusterSpec:
    """The spec of a static cluster over `inventory`, pinned (with `pin`) to `k3s_version` or the inventory's
    own `k3s_version`; refuses the name of a cluster of another target."""
    if state.spec_file.is_file():
        applied = load_spec(state.spec_file)
        if applied.target != "static":
            raise UserInputError(
                f"--name {state.name}: cluster {state.name} is a {applied.target} cluster made by `up`; "
                "choose another --name"
            )
    view = read_inventory(inventory)
    servers, _ = cluster_groups(view)
    data: dict[str, object] = {
        "name": state.name,
        "target": "static",
        "static": {"inventory": str(inventory.resolve())},
    }
    version = k3s_version or view.hostvars.get(servers[0], {}).get("k3s_version")
    if pin and version:
        where = "--k3s-version" if k3s_version else f"{inventory}: k3s_version"
        overrides = {"k3s": check_k3s_version(str(version), where)}
        problems = load_catalogue().override_problems(overrides)
        if problems:
            raise UserInputError(f"{where}: {problems[0][1]}")
        data["versions"] = overrides
    return parse_spec(yaml.safe_dump(data, sort_keys=False), f"edge cluster {state.name}")
