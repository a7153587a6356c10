"""Cordon, uncordon and drain through the Kubernetes API double with the real kubernetes client: JSON Patch of
spec.unschedulable, evictions (policy/v1) and a PodDisruptionBudget's 429, job pods never evicted, no DELETE."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config as kube_config

from oscar_deploy.autoscaler.drain import DrainStep, NodeActions, drain_step
from oscar_deploy.support.errors import OperationError
from tests.doubles.kube_api import KubeApi
from tests.unit.autoscaler.cluster_objects import RECORDED

JOB = ("oscar-svc", "3f2b8c1e-6a0d-4f57-9b8e-2c1d0e7a5b64-x7k2q")
KNATIVE = ("oscar-svc", "cowsay-00001-deployment-7f6d9c5b8-2lq9w")
DAEMON = ("kube-system", "svclb-traefik-6d0c7e2a-4qvxm")


@pytest.fixture
def api() -> Iterator[KubeApi]:
    double = KubeApi()
    double.load_recorded(RECORDED)
    yield double
    double.stop()


@pytest.fixture
def actions(api: KubeApi, tmp_path: Path) -> Iterator[NodeActions]:
    client = kube_config.new_client_from_config(config_file=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    yield NodeActions(client)
    client.close()


def evictions(api: KubeApi) -> list[str]:
    return [call.removeprefix("POST ") for call in api.calls if call.startswith("POST ")]


def test_cordon_and_uncordon_patch_spec_unschedulable(api: KubeApi, actions: NodeActions) -> None:
    actions.cordon("agent-1")
    assert api.store["Node"][("", "agent-1")]["spec"]["unschedulable"] is True
    actions.uncordon("agent-1")
    assert "unschedulable" not in api.store["Node"][("", "agent-1")]["spec"]
    assert api.patches == [
        ("agent-1", "application/json-patch+json", [{"op": "add", "path": "/spec/unschedulable", "value": True}]),
        ("agent-1", "application/json-patch+json", [{"op": "add", "path": "/spec/unschedulable", "value": False}]),
    ]
    with pytest.raises(OperationError) as missing:
        actions.cordon("agent-9")
    assert str(missing.value) == 'cordon agent-9: 404 Not Found: nodes "agent-9" not found'


def test_a_job_pod_is_never_evicted(api: KubeApi, actions: NodeActions) -> None:
    step = drain_step(actions, "agent-0")
    assert step == DrainStep(jobs=(f"{JOB[0]}/{JOB[1]}",))
    assert not step.empty
    assert evictions(api) == [], "nothing is evicted from a node that runs a job: its drain stops there"
    assert step.describe() == f"1 job pod(s) may not be interrupted ({JOB[0]}/{JOB[1]})"


def test_drain_evicts_what_may_move_and_leaves_daemonset_pods(api: KubeApi, actions: NodeActions) -> None:
    api.remove("Pod", *JOB)  # the job finished
    first = drain_step(actions, "agent-0")
    assert first == DrainStep(evicted=(f"{KNATIVE[0]}/{KNATIVE[1]}",))
    assert evictions(api) == [f"/api/v1/namespaces/{KNATIVE[0]}/pods/{KNATIVE[1]}/eviction"]
    assert DAEMON in api.store["Pod"], "the DaemonSet pod belongs to the node: never evicted"
    assert drain_step(actions, "agent-0").empty
    assert not any(call.startswith("DELETE ") for call in api.calls), "pods are evicted, never deleted"


def test_an_eviction_a_disruption_budget_refuses_is_asked_again(api: KubeApi, actions: NodeActions) -> None:
    api.remove("Pod", *JOB)
    api.guarded[KNATIVE] = 2  # the budget allows it on the third request
    for _ in range(2):
        step = drain_step(actions, "agent-0")
        assert step == DrainStep(refused=(f"{KNATIVE[0]}/{KNATIVE[1]}",))
        assert KNATIVE in api.store["Pod"]
    assert step.describe() == (
        f"1 eviction(s) refused by a PodDisruptionBudget ({KNATIVE[0]}/{KNATIVE[1]}); asked again next period"
    )
    assert drain_step(actions, "agent-0").evicted == (f"{KNATIVE[0]}/{KNATIVE[1]}",)
    assert drain_step(actions, "agent-0").empty
    assert len(evictions(api)) == 3


def test_terminating_pods_are_waited_for_not_evicted_again(api: KubeApi, actions: NodeActions) -> None:
    api.remove("Pod", *JOB)
    pod = api.store["Pod"][KNATIVE]
    pod["metadata"]["deletionTimestamp"] = "2026-05-04T10:00:30Z"
    api.put(pod)
    step = drain_step(actions, "agent-0")
    assert step == DrainStep(terminating=(f"{KNATIVE[0]}/{KNATIVE[1]}",))
    assert evictions(api) == []


def second_knative_pod(api: KubeApi) -> tuple[str, str]:
    """Another replica of the Knative pod on agent-0; its name sorts after the first, so it is listed second."""
    pod = copy.deepcopy(api.store["Pod"][KNATIVE])
    pod["metadata"]["name"] = KNATIVE[1][:-5] + "zzzzz"
    pod["metadata"]["uid"] = "second-replica"
    api.put(pod)
    return (KNATIVE[0], pod["metadata"]["name"])


def test_a_terminating_pod_does_not_stop_the_drain_of_the_next(api: KubeApi, actions: NodeActions) -> None:
    api.remove("Pod", *JOB)
    second = second_knative_pod(api)
    pod = api.store["Pod"][KNATIVE]
    pod["metadata"]["deletionTimestamp"] = "2026-05-04T10:00:30Z"
    api.put(pod)
    step = drain_step(actions, "agent-0")
    assert step == DrainStep(evicted=("/".join(second),), terminating=("/".join(KNATIVE),))
    assert step.describe() == "1 pod(s) evicted, 1 pod(s) still terminating"


def test_a_failed_eviction_is_reported_and_a_pod_gone_meanwhile_is_not(api: KubeApi, actions: NodeActions) -> None:
    api.remove("Pod", *JOB)
    second = second_knative_pod(api)
    api.failing_evictions.add(second)

    class FinishesAfterListing:
        """The real calls, with the first Knative pod gone between the listing and its eviction."""

        cordon, uncordon, evict = actions.cordon, actions.uncordon, actions.evict

        def pods_on(self, name: str) -> list[dict[str, Any]]:
            pods = actions.pods_on(name)
            api.remove("Pod", *KNATIVE)
            return pods

    step = drain_step(FinishesAfterListing(), "agent-0")
    failure = f"{second[0]}/{second[1]}: 500 Internal Server Error: etcdserver: request timed out"
    assert step == DrainStep(failed=(failure,))
    assert step.describe() == f"eviction failed: {failure}"
    assert evictions(api) == [f"/api/v1/namespaces/{ns}/pods/{name}/eviction" for ns, name in (KNATIVE, second)]


def test_describe_names_at_most_three_pods_and_two_failures() -> None:
    assert DrainStep().describe() == "no pod left to move"
    names = tuple(f"ns/pod-{index}" for index in range(4))
    assert DrainStep(jobs=names).describe() == "4 job pod(s) may not be interrupted (ns/pod-0, ns/pod-1, ns/pod-2)"
    step = DrainStep(evicted=names[:2], refused=names, terminating=names[:1], failed=names[:3])
    assert step.describe() == (
        "2 pod(s) evicted, 4 eviction(s) refused by a PodDisruptionBudget (ns/pod-0, ns/pod-1, ns/pod-2); asked "
        "again next period, 1 pod(s) still terminating, eviction failed: ns/pod-0; ns/pod-1"
    )


def test_failed_calls_name_the_call_and_the_node(api: KubeApi, actions: NodeActions) -> None:
    api.failing_patches.add("agent-1")
    with pytest.raises(OperationError) as failed:
        actions.uncordon("agent-1")
    assert str(failed.value) == "uncordon agent-1: 500 Internal Server Error: etcdserver: request timed out"
    api.forbidden["/api/v1/pods"] = "pods"
    with pytest.raises(OperationError) as forbidden:
        actions.pods_on("agent-0")
    assert str(forbidden.value).startswith("pods on agent-0: 403 Forbidden: pods is forbidden: ")
