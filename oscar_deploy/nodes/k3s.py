"""The Kubernetes layer as the CLI drives it: which variables every playbook gets, and running one for a cluster.

The variable names are the playbooks' interface (`playbooks/roles/k3s/defaults/main.yml`). The cluster token
goes to the playbooks only as `k3s_token_file`, a private file that exists for the length of the run; an
inventory's own `token` (k3s-io/k3s-ansible style) still wins, as the roles define it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oscar_deploy.nodes.ansible import InventoryView, PlaybookResult, ProgressDisplay, run_playbook
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import UserInputError

if TYPE_CHECKING:
    from oscar_deploy.pipeline.phases import PhaseContext, PhaseResult

# Name of the cluster token in the state folder's secrets (the value is generated there).
TOKEN_SECRET_NAME = "k3s_token"  # noqa: S105 - a key, not a password


def check_k3s_version(version: str, where: str) -> str:
    """Refuse what is not a k3s release tag (a bare `1.33.3` makes the installer fail on every node)."""
    from oscar_deploy.spec.catalogue import SYNTAXES

    pattern, example = SYNTAXES["k3s"]
    if not pattern.match(version):
        raise UserInputError(f"{where}: {version!r} is not a k3s release; use {example}")
    return version


def use_bundle(bundle: Path | None, version: str, arches: Iterable[str] = ()) -> Path | None:
    """The bundle folder, absolute, once it is known to hold `version` for `arches`; None without a bundle."""
    if bundle is None:
        return None
    from oscar_deploy.nodes.bundle import check_bundle

    check_bundle(bundle, version, arches)
    return bundle.resolve()


@dataclass
class K3sLayer:
    """Runs the k3s playbooks against one cluster's inventory, with the cluster's token and pinned version."""

    state: ClusterState
    inventory: Path
    k3s_version: str
    bundle: Path | None = None
    api_public_port: int | None = None
    display: ProgressDisplay | None = None

    def variables(self) -> dict[str, Any]:
        from oscar_deploy.nodes.bundle import resolve_urls

        download_url, _installer_url = resolve_urls(None, None)
        variables: dict[str, Any] = {
            "k3s_version": self.k3s_version,
            "k3s_release_url": download_url,
            "k3s_cluster_name": self.state.name,
            "k3s_kubeconfig_dest": str(self.state.kubeconfig_file),
        }
        # Only when given: an inventory's own `airgap_dir` (k3s-ansible style) must keep working otherwise.
        if self.bundle is not None:
            variables["k3s_airgap_dir"] = str(self.bundle)
        if self.api_public_port is not None:
            variables["k3s_api_public_port"] = self.api_public_port
        return variables

    def run(
        self,
        playbook: str,
        extra: Mapping[str, Any] | None = None,
        limit: str | None = None,
        check: bool = False,
    ) -> PlaybookResult:
        self.state.ensure()
        return run_playbook(
            playbook,
            self.inventory,
            self.state.log_file(f"ansible-{Path(playbook).stem}"),
            {**self.variables(), **(extra or {})},
            secret_files={"k3s_token_file": self.state.secret(TOKEN_SECRET_NAME)},
            limit=limit,
            check=check,
            display=self.display,
        )


def cluster_groups(view: InventoryView) -> tuple[list[str], list[str]]:
    """The `server` and `agent` hosts of an inventory; at least one server, an odd number of them."""
    servers, agents = view.hosts("server"), view.hosts("agent")
    if not servers:
        found = ", ".join(sorted(group for group in view.groups if group not in ("all", "ungrouped"))) or "none"
        raise UserInputError(
            f"{view.path}: no hosts in group `server` (groups found: {found}); put the k3s servers in `server` "
            "and the other nodes in `agent`, as k3s-io/k3s-ansible inventories do"
        )
    if len(servers) % 2 == 0:
        raise UserInputError(
            f"{view.path}: group `server` has {len(servers)} hosts; etcd needs an odd number (1, 3, 5) for a quorum"
        )
    both = sorted(set(servers) & set(agents))
    if both:
        raise UserInputError(f"{view.path}: {', '.join(both)} in both `server` and `agent`; keep each host in one")
    return servers, agents


# --- the `prepare` and `kubernetes` phases of `up` ---------------------------------------------------------


def layer_for_cluster(context: PhaseContext) -> K3sLayer:
    """The k3s layer of a cluster `up` manages: its inventory, the spec's k3s pin, its bundle and API port."""
    from oscar_deploy.nodes.ansible import RichDisplay
    from oscar_deploy.providers.base import planned_nodes
    from oscar_deploy.spec.catalogue import load_catalogue

    spec, state = context.spec, context.state
    version = load_catalogue().with_overrides(spec.versions).version("k3s")
    bundle = use_bundle(context.bundle, version, sorted({node.arch for node in planned_nodes(spec)}))
    servers = [node for node in context.provider.nodes() if node.role == "server"]
    api_port = servers[0].api_port if servers else None
    return K3sLayer(state, state.inventory_file, version, bundle, api_port, RichDisplay())


def _changed_summary(result: PlaybookResult, done: str, unchanged: str) -> tuple[bool, list[str]]:
    changed = result.changed_hosts()
    if changed:
        return True, [f"{done} ({', '.join(sorted(changed))} changed)"]
    return False, [unchanged]


def prepare_phase(context: PhaseContext) -> PhaseResult:
    """OS preparation of every node: packages, kernel settings, board tweaks, the air-gap files."""
    from oscar_deploy.pipeline.phases import PhaseResult

    layer = layer_for_cluster(context)
    result = layer.run("prepare.yml")
    hosts = sorted(result.stats)
    changed, summary = _changed_summary(
        result, f"{len(hosts)} node(s) prepared", f"{len(hosts)} node(s) already prepared, nothing changed"
    )
    return PhaseResult(
        changed=changed,
        summary=summary,
        details={"hosts": hosts, "bundle": str(layer.bundle) if layer.bundle else None},
    )


def kubernetes_phase(context: PhaseContext) -> PhaseResult:
    """k3s on the servers, then the agents; waits for every node and fetches the admin kubeconfig."""
    from oscar_deploy.pipeline.phases import PhaseResult

    layer = layer_for_cluster(context)
    result = layer.run("kubernetes.yml")
    hosts = sorted(result.stats)
    changed, summary = _changed_summary(
        result, f"k3s {layer.k3s_version} on {len(hosts)} node(s)", f"k3s {layer.k3s_version} already on every node"
    )
    summary.append(f"kubeconfig: {context.state.kubeconfig_file}")
    return PhaseResult(
        changed=changed,
        summary=summary,
        details={"hosts": hosts, "k3s_version": layer.k3s_version},
    )
