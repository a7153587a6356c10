"""The autoscaler's own identity in the cluster: a ServiceAccount with only the access its loop needs.

`autoscaler_access_objects()` is pure; the platform builder adds these objects when `platform.autoscaler.enabled`.
The ClusterRole grants exactly what `oscar_deploy.autoscaler` calls:

* nodes: get, list, watch (the observer) and patch (cordon and uncordon: `spec.unschedulable`);
* pods: get, list, watch (the observer, and a drain's fresh look at one node);
* pods/eviction: create (draining through the Eviction API; never delete on pods);
* Kueue's workloads, clusterqueues and localqueues: get, list, watch (demand held by Kueue, and the quota
  that decides whether Kueue will admit it).

No Secrets, no writes to pods, nothing namespaced beyond the account itself. A long-lived token for the account
comes from a Secret of type `kubernetes.io/service-account-token` (Kubernetes fills in its `token`); the
autoscaler's kubeconfig is written from it once, with mode 0600, by `oscar-deploy autoscaler run`.
"""

from __future__ import annotations

from typing import Any

from oscar_deploy.platform.model import OSCAR_NAMESPACE, KubeObject
from oscar_deploy.platform.storage import metadata

AUTOSCALER_ACCOUNT = "oscar-autoscaler"
AUTOSCALER_NAMESPACE = OSCAR_NAMESPACE
AUTOSCALER_TOKEN_SECRET = "oscar-autoscaler-token"  # noqa: S105 (a Secret's name)
RBAC = "rbac.authorization.k8s.io"
KUEUE_GROUP = "kueue.x-k8s.io"
# The Kueue collections the autoscaler's observer watches (and so may read).
KUEUE_RESOURCES = ("workloads", "clusterqueues", "localqueues")


def autoscaler_rules() -> list[dict[str, Any]]:
    return [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": [KUEUE_GROUP], "resources": list(KUEUE_RESOURCES), "verbs": ["get", "list", "watch"]},
    ]


def autoscaler_access_objects() -> list[KubeObject]:
    """ServiceAccount, its token Secret, ClusterRole and ClusterRoleBinding of the autoscaler, in apply order."""
    subject = [{"kind": "ServiceAccount", "name": AUTOSCALER_ACCOUNT, "namespace": AUTOSCALER_NAMESPACE}]
    token_meta = metadata(AUTOSCALER_TOKEN_SECRET, AUTOSCALER_NAMESPACE)
    token_meta["annotations"] = {"kubernetes.io/service-account.name": AUTOSCALER_ACCOUNT}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(AUTOSCALER_ACCOUNT, AUTOSCALER_NAMESPACE)},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token", "metadata": token_meta},
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": metadata(AUTOSCALER_ACCOUNT),
            "rules": autoscaler_rules(),
        },
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": metadata(AUTOSCALER_ACCOUNT),
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": AUTOSCALER_ACCOUNT},
            "subjects": subject,
        },
    ]
