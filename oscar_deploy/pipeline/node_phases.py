"""The node phases of `up`: provision (the provider's nodes and the inventory), prepare (the OS), kubernetes (k3s).

Each declares the inputs it depends on. The node list is every phase's input: a node that was recreated
under the same name has another instance id, so it gets prepared and joined again. A new k3s version takes
the rolling upgrade path (`upgrade.yml`: the servers one at a time, then the agents in batches of
`upgrade_batch`, each node drained and uncordoned); nodes
new to the cluster are then installed at that version by `kubernetes.yml`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oscar_deploy.nodes.ansible import PlaybookResult
from oscar_deploy.nodes.bundle import MANIFEST_NAME
from oscar_deploy.nodes.inventory import write_inventory
from oscar_deploy.nodes.k3s import K3sLayer, registries_config, use_bundle
from oscar_deploy.nodes.model import Node
from oscar_deploy.nodes.volumes import LostClaim, lost_claims, lost_jobs
from oscar_deploy.pipeline.phases import Phase, PhaseContext, PhaseResult
from oscar_deploy.platform.objects import local_data_claims
from oscar_deploy.spec.catalogue import load_catalogue
from oscar_deploy.state.journal import PhaseRecord
from oscar_deploy.support.files import read_user_bytes
from oscar_deploy.support.layers import layer_dir
from oscar_deploy.support.progress import LiveDisplay

# The playbooks' bookkeeping task (role k3s, tasks/record.yml): it writes what each role converged a node to.
RECORD_TASK = "Record what the roles converged the node to"

# --- inputs -------------------------------------------------------------------------------------------------


def node_list(nodes: Sequence[Node]) -> list[str]:
    """The nodes as one comparable line each: name, role, arch, address and instance."""
    return [
        f"{node.name} {node.role} {node.arch or '-'} {node.address or '-'} {node.instance or '-'}" for node in nodes
    ]


def playbooks_digest() -> str:
    """Digest of the bundled playbooks: a new oscar-deploy with other roles re-runs the node phases once."""
    digest = hashlib.sha256()
    root = layer_dir("playbooks")
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def k3s_version(context: PhaseContext) -> str:
    return load_catalogue().with_overrides(context.spec.versions).version("k3s")


def bundle_digest(context: PhaseContext) -> str | None:
    """Digest of the bundle's manifest (cheap; the files themselves are verified when a phase uses them)."""
    if context.bundle is None:
        return None
    manifest = context.bundle / MANIFEST_NAME
    return hashlib.sha256(read_user_bytes(manifest, "bundle manifest")).hexdigest()[:16]


def provision_inputs(context: PhaseContext) -> dict[str, Any]:
    return {
        "target": context.spec.target,
        "settings": context.spec.target_settings().model_dump(mode="json"),
        "servers": context.spec.servers.count,
        "workers": context.workers,
    }


def prepare_inputs(context: PhaseContext) -> dict[str, Any]:
    return {"nodes": node_list(context.nodes), "playbooks": playbooks_digest()}


def kubernetes_inputs(context: PhaseContext) -> dict[str, Any]:
    return {
        "nodes": node_list(context.nodes),
        "k3s_version": k3s_version(context),
        "bundle": bundle_digest(context),
        "registries": registries_config(context.spec.platform.registry_mirror),
        "playbooks": playbooks_digest(),
        # The playbook fetches the admin kubeconfig when it is missing: deleting a stale copy gets a new one.
        "kubeconfig": "present" if context.state.kubeconfig_file.is_file() else "missing",
    }


# --- phases -------------------------------------------------------------------------------------------------


def provision(context: PhaseContext, record: PhaseRecord | None) -> PhaseResult:
    """Create or repair the nodes the cluster should have, drain and remove those it should no longer have,
    and write the inventory from what exists."""
    provider = context.provider
    plan = provider.plan(context.spec, context.workers)
    applied = provider.apply(plan)
    write_inventory(context.state, applied.nodes, provider.ssh_common_args, private_key=provider.scaling == "count")
    context.nodes = applied.nodes
    summary = [
        f"{verb} {', '.join(names)}"
        for verb, names in (("created", applied.created), ("started", applied.started))
        if names
    ]
    removal = Removal()
    if applied.extra:
        scale_in(context, applied.extra, installed=context.state.journal.completed("kubernetes"), removal=removal)
        summary += removal.summary(applied.extra, " (no longer wanted)")
    if not applied.changed and not removal.removed:
        summary.append(f"all {len(plan)} node(s) present")
    # Only workers whose VM was deleted outside oscar-deploy lose claims here (`up` gives none up otherwise).
    lost, warnings = lost_claims_report(context.spec.name, context.state.kubeconfig_file, removal.lost_claims)
    return PhaseResult(
        changed=applied.changed or bool(removal.removed),
        summary=summary + lost,
        details={"created": applied.created, "started": applied.started, "removed": applied.extra},
        warnings=warnings,
    )


@dataclass
class Removal:
    """What `scale_in` did: what the provider removed, the claims whose data went with the nodes, and the victims
    whose VM was deleted outside oscar-deploy, each with the job pods lost with it as remove-node.yml named them
    (None when it could not: the node had left Kubernetes already, or k3s was not installed)."""

    removed: list[str] = field(default_factory=list)
    lost_claims: list[LostClaim] = field(default_factory=list)
    gone: dict[str, list[str] | None] = field(default_factory=dict)

    def summary(self, victims: Sequence[str], why: str = "") -> list[str]:
        """What became of `victims`: `drained and removed` those that were drained (with `why`), and a phrase of
        its own for each that was gone, which nothing drained."""
        drained = [name for name in victims if name not in self.gone]
        lines = [f"drained and removed {', '.join(drained)}{why}"] if drained else []
        for name in victims:
            if name in self.gone:
                jobs = self.gone[name]
                if jobs is None:
                    lost = "any job running on it was lost"
                elif jobs:
                    lost = f"the jobs running on it were lost: {', '.join(jobs)}"
                else:
                    lost = "no job was running on it"
                lines.append(f"removed {name} (its VM was deleted outside oscar-deploy; {lost})")
        return lines


def scale_in(
    context: PhaseContext,
    victims: Sequence[str],
    installed: bool = True,
    allow_local_volume_loss: bool = False,
    removal: Removal | None = None,
    left_cluster: Callable[[], None] | None = None,
) -> Removal:
    """Drain and delete each victim from Kubernetes (remove-node.yml, which also resets a running one), one at a
    time, then let the provider remove it; the inventory is rewritten after each, so a failure leaves it true.
    A victim that is off (the autoscaler drained and stopped it) is not reset: SSH cannot reach it, nothing of k3s
    runs there to rejoin, and the provider deletes it next. A victim holding bound local volumes is refused (their
    data would go with its disk) unless `allow_local_volume_loss`: then their claims are in `lost_claims`. A victim
    whose VM is gone (state missing: deleted outside oscar-deploy) is neither reset nor drained, nor waited for
    (`remove_node_gone`: its kubelet never answers again); its node object is deleted, the jobs it ran are in
    `gone`, and the claims of its local volumes, whose data went with it, in `lost_claims` without the flag. It fills
    `removal` (a new one without it) as it goes, so that a caller still has what was done when a later step fails.
    `left_cluster()` is called once each victim has left the cluster (reset, its node object deleted), before its
    machine is removed: from there on it must go, even when removing the machine fails."""
    provider, state = context.provider, context.state
    off = {node.name for node in context.nodes if node.state != "running"}
    gone = {node.name for node in context.nodes if node.state == "missing"}
    removal = Removal() if removal is None else removal
    for name in victims:
        jobs = None
        if installed:
            variables = {
                "remove_node": name,
                "skip_confirmation": True,
                "remove_node_reset": name not in off,
                "remove_node_gone": name in gone,
                "node_drain_allow_local_volume_loss": allow_local_volume_loss,
            }
            result = layer_for(context).run("remove-node.yml", variables)
            removal.lost_claims += lost_claims(result)
            jobs = lost_jobs(result)
        if name in gone:
            removal.gone[name] = jobs
        if left_cluster is not None:
            left_cluster()
        removal.removed += provider.remove(name)
        context.nodes = [node for node in context.nodes if node.name != name]
        write_inventory(state, context.nodes, provider.ssh_common_args, private_key=provider.scaling == "count")
    return removal


def lost_claims_report(cluster: str, kubeconfig: Path, claims: Sequence[LostClaim]) -> tuple[list[str], list[str]]:
    """The claims whose data went with the removed workers (--allow-local-volume-loss, or a worker whose VM was
    deleted outside oscar-deploy): lines naming each with the command that releases it, and a warning for each of
    the platform's own.

    They are named, not deleted: a deleted claim cannot come back, and only its owner knows whether it is made
    again (a StatefulSet from its template, the platform stack by `up --check-drift`) or must be made by hand (a
    chart); the user who accepted the loss decides. k3s' local-path StorageClass has reclaim policy Delete: the
    PV goes with its claim, unless the provisioner cannot clean up on the removed node
    (rancher/local-path-provisioner before its PR 480 runs a helper pod there, which never starts: the PV stays
    Released); Retain always keeps the PV."""
    if not claims:
        return [], []
    nodes = ", ".join(dict.fromkeys(claim.node for claim in claims))
    lines = [
        f"cluster {cluster}: {nodes} took the data of {len(claims)} bound local volume(s) with it; these claims "
        "still name the removed node, and every pod using one stays Pending until it is released:"
    ]
    for claim in claims:
        release = f"kubectl delete pvc -n {claim.namespace} {claim.claim}"
        if claim.reclaim_policy != "Delete":
            release += f" && kubectl delete pv {claim.volume}"
        policy = claim.reclaim_policy or "not set"
        lines.append(
            f"  {claim.name} (PV {claim.volume}, storage class {claim.storage_class or '(none)'}, reclaim policy "
            f"{policy}): {release}"
        )
    lines.append(
        f"run these with KUBECONFIG={kubeconfig}, then delete the Pending pods that used the claim: a StatefulSet "
        "starts its pod again with a new claim from its template, other owners need the claim made again; a PV "
        "still listed afterwards (Released: its provisioner could not clean up on a node that is gone) goes with "
        "kubectl delete pv NAME"
    )
    platform = local_data_claims()
    warnings = [
        f"{claim.name} held {platform[claim.name]}; it is lost with {claim.node}, and OSCAR does not work without it"
        for claim in claims
        if claim.name in platform
    ]
    return lines, warnings


def prepare(context: PhaseContext, record: PhaseRecord | None) -> PhaseResult:
    """OS preparation of every node: packages, kernel settings, board tweaks."""
    result = layer_for(context).run("prepare.yml")
    return _result(result, "node(s) prepared", "node(s) already prepared, nothing changed", context.check_drift)


def kubernetes(context: PhaseContext, record: PhaseRecord | None) -> PhaseResult:
    """k3s on the servers, then the agents; waits for every node and fetches the admin kubeconfig. Nodes that
    run another k3s version are upgraded in place first, one at a time."""
    layer = layer_for(context, verify_bundle=True)
    summary: list[str] = []
    changed = False
    previous = (record.inputs.get("k3s_version") if record else None) or layer.k3s_version
    if previous != layer.k3s_version:
        known = {line.split()[0] for line in (record.inputs.get("nodes") or [])} if record else set()
        upgrading = [node.name for node in context.nodes if node.name in known]
        if upgrading:
            result = layer.run("upgrade.yml", limit=",".join(upgrading))
            changed = bool(result.changed_hosts())
            summary.append(f"upgraded k3s {previous} -> {layer.k3s_version} on {', '.join(sorted(result.stats))}")
    result = layer.run("kubernetes.yml")
    context.state.desired.set_joining([])  # every node has joined, those of a stopped `scale` too
    outcome = _result(
        result,
        f"node(s) run k3s {layer.k3s_version}",
        f"node(s) already run k3s {layer.k3s_version}",
        context.check_drift,
    )
    outcome.summary = summary + outcome.summary + [f"kubeconfig: {context.state.kubeconfig_file}"]
    outcome.changed = outcome.changed or changed
    return outcome


def layer_for(context: PhaseContext, verify_bundle: bool = False) -> K3sLayer:
    """The k3s layer of this cluster: its inventory, the spec's k3s pin and the bundle (verified when asked)."""
    version = k3s_version(context)
    bundle = context.bundle
    if bundle is not None:
        arches = sorted({node.arch for node in context.nodes if node.arch})
        bundle = use_bundle(bundle, version, arches) if verify_bundle else bundle.resolve()
    registries = registries_config(context.spec.platform.registry_mirror)
    return K3sLayer(
        context.state,
        context.state.inventory_file,
        version,
        bundle,
        display=LiveDisplay(),
        registries=registries,
        bundle_checked=verify_bundle,
        check_drift=context.check_drift,
    )


def _result(result: PlaybookResult, done: str, unchanged: str, drift_checked: bool = False) -> PhaseResult:
    hosts = sorted(result.stats)
    changed_hosts = result.changed_hosts()
    if drift_checked:
        # A record rewritten with this run's inputs (after a spec edit another phase applied) is no repair; the
        # counts come from the stats, which also hold the changes of tasks whose results are hidden (no_log).
        records = {host: tasks.count(RECORD_TASK) for host, tasks in result.changed_tasks.items()}
        repaired = sorted(host for host, count in changed_hosts.items() if count > records.get(host, 0))
        found = f"repaired {', '.join(repaired)}" if repaired else "nothing had drifted"
        summary = [f"{len(hosts)} node(s) checked for drift: {found}"]
    elif changed_hosts:
        summary = [f"{len(hosts)} {done} ({', '.join(sorted(changed_hosts))} changed)"]
    else:
        summary = [f"{len(hosts)} {unchanged}"]
    return PhaseResult(changed=bool(changed_hosts), summary=summary, details={"hosts": hosts})


# Each node phase's drift check.
EVERY_ROLE = "every role on every node"

NODE_PHASES: tuple[Phase, ...] = (
    Phase("provision", provision_inputs, provision, always="checks the nodes every time and repairs what is missing"),
    Phase("prepare", prepare_inputs, prepare, drift_check=EVERY_ROLE),
    Phase("kubernetes", kubernetes_inputs, kubernetes, drift_check=EVERY_ROLE),
)
