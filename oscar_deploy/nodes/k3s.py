"""k3s as the CLI drives it: which variables every playbook gets, and running one against a cluster's inventory.

The variable names are the playbooks' interface (`playbooks/roles/k3s/defaults/main.yml`). The cluster token
goes to the playbooks only as `k3s_token_file`, a private file that exists for the length of the run; an
inventory's own `token` (k3s-io/k3s-ansible style) still wins, as the roles define it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oscar_deploy.nodes.ansible import PlaybookResult, run_playbook
from oscar_deploy.nodes.inventory import InventoryView, read_inventory
from oscar_deploy.spec.catalogue import SYNTAXES
from oscar_deploy.spec.models import RegistryMirrorSpec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.progress import TaskDisplay

# Name of the cluster token in the state folder's secrets (the value is generated there).
TOKEN_SECRET_NAME = "k3s_token"  # noqa: S105 - a key, not a password


def check_k3s_version(version: str, where: str) -> str:
    """Refuse what is not a k3s release tag (a bare `1.33.3` names no release file on any node)."""
    pattern, example = SYNTAXES["k3s"]
    if not pattern.fullmatch(version):
        raise UserInputError(f"{where}: {version!r} is not a k3s release; use {example}")
    return version


def use_bundle(bundle: Path | None, version: str, arches: Iterable[str] = ()) -> Path | None:
    """The bundle folder, absolute, once it is known to hold `version` for `arches`; None without a bundle."""
    if bundle is None:
        return None
    from oscar_deploy.nodes.bundle import check_bundle

    check_bundle(bundle, version, arches)
    return bundle.resolve()


def registries_config(mirror: RegistryMirrorSpec) -> dict[str, Any]:
    """k3s' registries.yaml for the spec's mirror (https://docs.k3s.io/installation/private-registry): every
    registry it stands in for pulls through it; empty without a mirror."""
    if not mirror.url or not mirror.host:
        return {}
    config: dict[str, Any] = {"mirrors": {name: {"endpoint": [mirror.url]} for name in mirror.registries}}
    if mirror.insecure_skip_verify:
        config["configs"] = {mirror.host: {"tls": {"insecure_skip_verify": True}}}
    return config


@dataclass
class K3sLayer:
    """Runs the k3s playbooks against one cluster's inventory, with the cluster's token and pinned version."""

    state: ClusterState
    inventory: Path
    k3s_version: str
    bundle: Path | None = None
    display: TaskDisplay | None = None
    # registries.yaml for the nodes (`registries_config`); empty leaves the playbooks' default (none).
    registries: dict[str, Any] | None = None
    # Whether every file of the bundle was checked against its manifest (use_bundle) before this run.
    bundle_checked: bool = False
    # Every role runs on every node, whatever each recorded there (the playbooks' drift check).
    check_drift: bool = False

    def variables(self) -> dict[str, Any]:
        from oscar_deploy.nodes.bundle import resolve_download_url

        variables: dict[str, Any] = {
            "k3s_version": self.k3s_version,
            "k3s_release_url": resolve_download_url(None),
            "k3s_cluster_name": self.state.name,
            "k3s_kubeconfig_dest": str(self.state.kubeconfig_file),
        }
        # Only when given: an inventory's own `airgap_dir` (k3s-ansible style) must keep working otherwise.
        if self.bundle is not None:
            variables["k3s_airgap_dir"] = str(self.bundle)
            # The roles then do not hash the bundle's files again.
            variables["k3s_airgap_checked"] = self.bundle_checked
        # Only when set: without it the role's default (none) also removes a registries.yaml it wrote earlier.
        if self.registries:
            variables["airgap_registries"] = self.registries
        if self.check_drift:
            variables["k3s_check_drift"] = True
        return variables

    def run(
        self,
        playbook: str,
        extra: Mapping[str, Any] | None = None,
        limit: str | None = None,
        check: bool = False,
    ) -> PlaybookResult:
        self.state.ensure()
        # Only a cloud cluster's state folder pins its nodes' host keys.
        pinned_keys = self.state.known_hosts_file if self.state.known_hosts_file.is_file() else None
        return run_playbook(
            playbook,
            self.inventory,
            self.state.log_file(f"ansible-{Path(playbook).stem}"),
            {**self.variables(), **(extra or {})},
            secret_files={"k3s_token_file": self.state.secret(TOKEN_SECRET_NAME)},
            private_root=self.state.runs_dir,
            limit=limit,
            check=check,
            display=self.display,
            host_address=self._address,
            pinned_keys=pinned_keys,
        )

    def _address(self, host: str) -> str | None:
        """The host's address for an error message: a courtesy, so an inventory that fails to read gives none."""
        try:
            return read_inventory(self.inventory).address(host)
        except UserInputError:
            return None


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
