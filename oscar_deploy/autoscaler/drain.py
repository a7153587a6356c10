"""Cordon, uncordon and drain a worker through the Kubernetes API, before it is powered off.

Answers are read raw (no client models): only the status matters here.

* Cordon and uncordon patch the Node's `spec.unschedulable` (a JSON Patch, as `kubectl cordon` changes the same
  field): a cordoned node takes no new pods, its running pods go on.
* Draining asks for each pod's eviction (`POST .../pods/NAME/eviction`, policy/v1), never deletes a pod: the API
  server then honours PodDisruptionBudgets and the pod's grace period. An eviction a budget forbids is answered
  429 TooManyRequests; that pod is asked again at the next step and the node stays up meanwhile (as
  `kubectl drain` retries). A pod already gone (404) is fine.
* DaemonSet and mirror pods stay (they belong to the node). A pod that may not be interrupted (an OSCAR job, see
  `kubeobjects.interruptible`) is never evicted: its node's drain stops there and the node is not powered off.

The pods on the node are read fresh from the API (field selector `spec.nodeName=NAME`) at every step, not from
the watches, so a pod scheduled a moment before the power-off is seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3

from oscar_deploy.autoscaler.kubeobjects import belongs_to_node, interruptible, is_finished, key_of
from oscar_deploy.autoscaler.observer import error_text
from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.files import parse_json

REQUEST_TIMEOUT = (10.0, 30.0)


@dataclass(frozen=True)
class DrainStep:
    """One pass over a node's pods: `empty` once nothing but node-owned pods is left on it."""

    evicted: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    terminating: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.refused or self.terminating or self.jobs or self.failed or self.evicted)

    def describe(self) -> str:
        if self.empty:
            return "no pod left to move"
        parts = []
        if self.jobs:
            parts.append(f"{len(self.jobs)} job pod(s) may not be interrupted ({', '.join(self.jobs[:3])})")
        if self.evicted:
            parts.append(f"{len(self.evicted)} pod(s) evicted")
        if self.refused:
            parts.append(
                f"{len(self.refused)} eviction(s) refused by a PodDisruptionBudget ({', '.join(self.refused[:3])}); "
                "asked again next period"
            )
        if self.terminating:
            parts.append(f"{len(self.terminating)} pod(s) still terminating")
        if self.failed:
            parts.append(f"eviction failed: {'; '.join(self.failed[:2])}")
        return ", ".join(parts)


class NodeCalls(Protocol):
    """The node and pod calls a drain needs (NodeActions; tests may record them instead)."""

    def cordon(self, name: str) -> None: ...

    def uncordon(self, name: str) -> None: ...

    def pods_on(self, name: str) -> list[dict[str, Any]]: ...

    def evict(self, pod: dict[str, Any]) -> str: ...


class NodeActions:
    """Node and pod calls the autoscaler makes (its RBAC grants exactly these)."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.client = client
        self.core = client.CoreV1Api(api_client)

    def _call(self, what: str, request: Callable[[], Any]) -> Any:
        """`request()`, with an API refusal or a connection failure turned into one line naming `what`."""
        try:
            return request()
        except (self.client.exceptions.ApiException, urllib3.exceptions.HTTPError) as exc:
            raise OperationError(f"{what}: {error_text(exc)}") from None

    def _schedulable(self, name: str, unschedulable: bool) -> None:
        patch = [{"op": "add", "path": "/spec/unschedulable", "value": unschedulable}]
        verb = "cordon" if unschedulable else "uncordon"
        response = self._call(
            f"{verb} {name}",
            lambda: self.core.patch_node(name, patch, _preload_content=False, _request_timeout=REQUEST_TIMEOUT),
        )
        _done_with(response)

    def cordon(self, name: str) -> None:
        self._schedulable(name, True)

    def uncordon(self, name: str) -> None:
        self._schedulable(name, False)

    def pods_on(self, name: str) -> list[dict[str, Any]]:
        """The pods bound to node `name` now, as API JSON."""
        response = self._call(
            f"pods on {name}",
            lambda: self.core.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={name}", _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            ),
        )
        try:
            items: list[dict[str, Any]] = parse_json(response.data).get("items") or []
        finally:
            response.release_conn()
        return items

    def evict(self, pod: dict[str, Any]) -> str:
        """Ask for the pod's eviction: `evicted`, `refused` (429, a disruption budget), `gone` (404), or the
        error's one line."""
        meta = pod.get("metadata") or {}
        name, namespace = str(meta.get("name")), str(meta.get("namespace"))
        body = self.client.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=self.client.V1ObjectMeta(name=name, namespace=namespace),
        )
        try:
            response: Any = self.core.create_namespaced_pod_eviction(
                name, namespace, body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
        except self.client.exceptions.ApiException as exc:
            if exc.status == 429:
                return "refused"
            if exc.status == 404:
                return "gone"
            return error_text(exc)
        except urllib3.exceptions.HTTPError as exc:
            return error_text(exc)
        _done_with(response)
        return "evicted"


def _done_with(response: Any) -> None:
    """Read what is left of a raw answer before its connection goes back to the pool for the next request."""
    response.drain_conn()
    response.release_conn()


def workload_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods that keep a node busy: not finished, not the node's own (DaemonSet, mirror)."""
    return [pod for pod in pods if not is_finished(pod) and not belongs_to_node(pod)]


def drain_step(actions: NodeCalls, name: str) -> DrainStep:
    """Evict what may move from node `name` (cordoned already); nothing at all while a job pod runs there."""
    pods = workload_pods(actions.pods_on(name))
    jobs = tuple(key_of(pod) for pod in pods if not interruptible(pod))
    if jobs:
        return DrainStep(jobs=jobs)
    evicted: list[str] = []
    refused: list[str] = []
    terminating: list[str] = []
    failed: list[str] = []
    for pod in pods:
        key = key_of(pod)
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            terminating.append(key)
            continue
        outcome = actions.evict(pod)
        if outcome == "evicted":
            evicted.append(key)
        elif outcome == "refused":
            refused.append(key)
        elif outcome != "gone":
            failed.append(f"{key}: {outcome}")
    return DrainStep(tuple(evicted), tuple(refused), tuple(terminating), (), tuple(failed))
