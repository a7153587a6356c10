"""Cordon, uncordon and drain through the Kubernetes API double with the real kubernetes client: JSON Patch of
spec.unschedulable, evictions (policy/v1) and a PodDisruptionBudget's 429, job pods never evicted, no DELETE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import config as kube_config

from oscar_deploy.autoscaler.drain import DrainStep, NodeActions, drain_step
from oscar_deploy.support.errors import OperationError
from tests.doubles.kube_api import KubeApi

RECORDED = Path(__file__).parents[2] / "data" / "kube"
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
