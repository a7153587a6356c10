"""`kubeconfig`: print where the cluster's admin kubeconfig is, or merge it into ~/.kube/config."""

from __future__ import annotations

from pathlib import Path

import typer

from oscar_deploy.cli.interrupts import changes_nothing
from oscar_deploy.cli.options import CLUSTER_NAME_OPTION, OPTIONAL_SPEC_OPTION, cluster_name, confirm_replace
from oscar_deploy.state.folder import cluster_state
from oscar_deploy.state.kubeconfig import merge_kubeconfig
from oscar_deploy.support.errors import UserInputError

MERGE_OPTION = typer.Option(False, "--merge", help="Merge into your kubeconfig instead of printing the path.")
CONTEXT_OPTION = typer.Option(None, "--context", help="Context name for --merge; default the cluster's name.")
INTO_OPTION = typer.Option(
    None, "--into", help="Kubeconfig to merge into; default ~/.kube/config.", dir_okay=False, show_default=False
)
KEEP_CONTEXT_OPTION = typer.Option(
    False, "--keep-current-context", help="With --merge, leave the current context as it is."
)


@changes_nothing
def kubeconfig(
    file: Path | None = OPTIONAL_SPEC_OPTION,
    cluster: str | None = CLUSTER_NAME_OPTION,
    merge: bool = MERGE_OPTION,
    context: str | None = CONTEXT_OPTION,
    into: Path | None = INTO_OPTION,
    keep_current_context: bool = KEEP_CONTEXT_OPTION,
) -> None:
    """Print the path of the cluster's admin kubeconfig.

    `export KUBECONFIG=$(oscar-deploy kubeconfig)` points kubectl at it. With --merge, add it to
    ~/.kube/config as a context named after the cluster, keeping your other contexts.
    """
    name = cluster_name(file, cluster)
    state = cluster_state(name).require()
    if not state.kubeconfig_file.is_file():
        raise UserInputError(
            f"cluster {name}: no kubeconfig yet ({state.kubeconfig_file}); run `oscar-deploy up` (or `edge install`)"
        )
    if not merge:
        if context or into or keep_current_context:
            raise UserInputError("--context, --into and --keep-current-context only apply with --merge")
        typer.echo(str(state.kubeconfig_file))
        return

    target = into or Path.home() / ".kube" / "config"
    context_name = context or name
    previous = merge_kubeconfig(
        state.kubeconfig_file, target, context_name, switch=not keep_current_context, confirm=confirm_replace
    )
    if keep_current_context and previous:
        switched = f"current context stays {previous}"
    elif previous and previous != context_name:
        switched = f"current context is now {context_name} (was {previous})"
    else:
        switched = f"current context is {context_name}"
    typer.echo(f"merged cluster {name} into {target} as context {context_name}; {switched}")
