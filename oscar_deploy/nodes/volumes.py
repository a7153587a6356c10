"""The bound local volumes a removed node took with it, as role `node_drain` hands them back.

`remove-node.yml` run with `node_drain_allow_local_volume_loss` removes a node even while Bound PersistentVolumes
live on its disk (k3s' default StorageClass `local-path`, reclaim policy Delete; rancher/local-path-provisioner
pins each volume to its node with a required node affinity `kubernetes.io/hostname In [node]`). The volume
objects and their claims outlive the node: every pod using such a claim stays Pending, since no node matches.
The role names them with set_stats (`node_drain_lost_claims`, tasks/local_volumes.yml); ansible-runner hands
them on in its playbook_on_stats event (`PlaybookResult.custom_stats`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from oscar_deploy.nodes.ansible import PlaybookResult

# The stat role node_drain sets (tasks/local_volumes.yml): one entry per volume, with the fields of LostClaim.
LOST_CLAIMS_STAT = "node_drain_lost_claims"


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
