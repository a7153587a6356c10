"""The bound local volumes a removed node took with it, and the jobs a machine gone for good took with it, as role
`node_drain` hands them back.

`remove-node.yml` run with `node_drain_allow_local_volume_loss` removes a node even while Bound PersistentVolumes
live on its disk (k3s' default StorageClass `local-path`, reclaim policy Delete; rancher/local-path-provisioner
pins each volume to its node with a required node affinity `kubernetes.io/hostname In [node]`). The volume
objects and their claims outlive the node: every pod using such a claim stays Pending, since no node matches.
The role names them with set_stats (`node_drain_lost_claims`, tasks/local_volumes.yml); ansible-runner hands
them on in its playbook_on_stats event (`PlaybookResult.custom_stats`). For a machine gone for good
(`remove_node_gone`) it names the job pods that ran there the same way (`node_drain_lost_jobs`, tasks/main.yml).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from oscar_deploy.nodes.ansible import PlaybookResult

# The stat role node_drain sets (tasks/local_volumes.yml): one entry per volume, with the fields of LostClaim.
LOST_CLAIMS_STAT = "node_drain_lost_claims"
# The stat it sets for a machine gone for good (tasks/main.yml): the job pods on its node, as `namespace/name`.
LOST_JOBS_STAT = "node_drain_lost_jobs"


@dataclass(frozen=True)
class LostClaim:
    """A claim whose volume was on a removed node's disk; empty strings where the volume says nothing."""

    node: str
    volume: str
    namespace: str
    claim: str
    storage_class: str
    reclaim_policy: str

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.claim}"


def lost_claims(result: PlaybookResult) -> list[LostClaim]:
    """The claims the run's removed nodes took the data of, in the order the role found them."""
    names = [item.name for item in fields(LostClaim)]
    return [
        LostClaim(**{name: str(entry.get(name) or "") for name in names})
        for entry in result.custom_stats.get(LOST_CLAIMS_STAT) or []
    ]


def lost_jobs(result: PlaybookResult) -> list[str] | None:
    """The job pods (`namespace/name`) a removed machine that was gone for good took with it; None when the run
    could not list them (its node had left the API already, or the machine was not gone)."""
    found = result.custom_stats.get(LOST_JOBS_STAT)
    return [str(name) for name in found] if isinstance(found, list) else None
