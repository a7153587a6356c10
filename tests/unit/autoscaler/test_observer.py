"""The observer against recorded Kubernetes API responses (tests/data/kube), served by the API double and read
through the real kubernetes client: list then watch, the snapshot the policy gets, 410 Gone and resumes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import config as kube_config

from oscar_deploy.autoscaler.model import UNBOUNDED, PowerState, Resources
from oscar_deploy.autoscaler.observer import RUNNING_PODS, ClusterObserver
from oscar_deploy.autoscaler.snapshot import NodeHistory, PowerRecord, build_observation
from oscar_deploy.providers.power import Machine
from oscar_deploy.support.errors import OperationError
from tests.doubles.kube_api import KubeApi, flag
from tests.unit.autoscaler.cluster_objects import RECORDED

NOW = datetime.fromisoformat("2026-05-04T10:00:00+00:00").timestamp()
MACHINES = [Machine("agent-0", "on", "amd64"), Machine("agent-1", "on", "amd64"), Machine("agent-2", "off", "amd64")]
JOB_ON_AGENT_0 = "oscar-svc/3f2b8c1e-6a0d-4f57-9b8e-2c1d0e7a5b64-x7k2q"
KNATIVE_POD = "oscar-svc/cowsay-00001-deployment-7f6d9c5b8-2lq9w"
PENDING_JOB = "oscar-svc/a81c42d9-0f3e-4c6b-8d27-5e9b1f4a3c70-p4m9z"


def is_watch(path: str) -> bool:
    return flag(parse_qs(urlsplit(path).query).get("watch", [""])[0])


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeApi]:
    double = KubeApi(kueue=True)
    double.load_recorded(RECORDED)
    yield double
    double.stop()


@pytest.fixture
def observer(api: KubeApi, tmp_path: Path) -> Iterator[ClusterObserver]:
    client = kube_config.new_client_from_config(config_file=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    watching = ClusterObserver(client)
    watching.start(timeout=10)
    yield watching
    watching.stop()
    client.close()


def test_lists_once_then_watches_from_the_lists_version(api: KubeApi, observer: ClusterObserver) -> None:
    assert observer.kueue == "v1beta1"
    view = observer.view()
    assert sorted(n["metadata"]["name"] for n in view.nodes) == ["agent-0", "agent-1", "agent-2", "server-0"]
    assert len(view.pods) == 6 and len(view.workloads) == 3 and view.errors == []
    assert [q["metadata"]["name"] for q in view.cluster_queues] == ["grayify-cq", "plants-cq"]
    assert [q["metadata"]["name"] for q in view.local_queues] == ["grayify-queue", "plants-queue"]
    deadline = time.monotonic() + 10
    while len([path for path, count in api.watching.items() if count]) < 5:
        assert time.monotonic() < deadline, f"not every collection is watched: {api.watching}"
        time.sleep(0.05)
    gets = [line.removeprefix("GET ") for line in api.calls if line.startswith("GET ")]
    assert gets[0] == "/apis/", "API discovery first: is Kueue served, in which version"
    lists = [path for path in gets if not is_watch(path) and path != "/apis/"]
    watches = [path for path in gets if is_watch(path)]
    assert sorted(path.split("?")[0] for path in lists) == [
        "/api/v1/nodes",
        "/api/v1/pods",
        "/apis/kueue.x-k8s.io/v1beta1/clusterqueues",
        "/apis/kueue.x-k8s.io/v1beta1/localqueues",
        "/apis/kueue.x-k8s.io/v1beta1/workloads",
    ]
    for path in lists:
        query = parse_qs(urlsplit(path).query)
        assert query["limit"] == ["500"], path
        if path.startswith("/api/v1/pods?"):
            assert query["fieldSelector"] == [RUNNING_PODS]
    assert len(watches) == 5, "one watch per collection, none restarted"
    for path in watches:
        query = parse_qs(urlsplit(path).query)
        # kubernetes 31 writes booleans as True, later clients as true: the API server reads both.
        assert query["resourceVersion"] == ["5210"] and query["allowWatchBookmarks"][0].lower() == "true", path


def test_the_recorded_cluster_as_the_policy_sees_it(observer: ClusterObserver) -> None:
    view = observer.view()
    history = NodeHistory()
    observation = build_observation(
        view.nodes,
        view.pods,
        view.workloads,
        MACHINES,
        PowerRecord(),
        history,
        NOW,
        cluster_queues=view.cluster_queues,
        local_queues=view.local_queues,
    )
    (template,) = observation.templates
    # 3911824Ki is 3820.14 MiB: rounded up; every worker has the same, so the smallest is that.
    assert (template.name, template.arch, template.allocatable) == (
        "workers-amd64",
        "amd64",
        Resources(2000, 3821, 0, 110),
    )
    assert template.labels == {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "k3s",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "k3s",
    }
    snapshot = observation.snapshot
    nodes = {node.name: node for node in snapshot.nodes}
    assert list(nodes) == ["agent-0", "agent-1", "agent-2"], "the control-plane node is never managed"
    busy, idle, off = nodes["agent-0"], nodes["agent-1"], nodes["agent-2"]
    assert (busy.power, busy.power_since, busy.idle_since) == (PowerState.ON, epoch("2026-05-04T09:01:10Z"), None)
    pods = {pod.name: pod for pod in busy.pods}
    assert list(pods) == [JOB_ON_AGENT_0, KNATIVE_POD], "the DaemonSet pod belongs to the node"
    assert pods[JOB_ON_AGENT_0].requests == Resources(1000, 1024, 0, 1)
    assert pods[JOB_ON_AGENT_0].interruptible is False
    # user-container 500m/256Mi + queue-proxy 25m; the init container's 512Mi is more than the containers' 256Mi.
    assert pods[KNATIVE_POD].requests == Resources(525, 512, 0, 1)
    assert pods[KNATIVE_POD].interruptible is True
    assert busy.runs_job
    assert (idle.power, idle.pods, idle.idle_since) == (PowerState.ON, (), NOW)
    assert (off.power, off.cordoned, off.allocatable) == (PowerState.OFF, True, Resources(2000, 3821, 0, 110))
    (pending,) = snapshot.pending
    assert pending.name == PENDING_JOB, "the pod behind Kueue's scheduling gate is counted through its workload"
    assert (pending.requests, dict(pending.node_selector)) == (
        Resources(1000, 1024, 0, 1),
        {"kubernetes.io/arch": "amd64"},
    )
    assert pending.created == epoch("2026-05-04T09:59:50Z")
    (workload,) = snapshot.workloads
    assert workload.name == "oscar-svc/job-5d0e9a27-1b4c-4f83-a6e2-9c7d3b1f0e58-2c9f1"
    assert workload.queue == "grayify-cq", "a workload names the ClusterQueue its LocalQueue feeds"
    # grayify-cq: 4 CPU and 4Gi, 1 CPU and 1Gi reserved; no GPU quota. plants-cq: no CPU, 2Gi, GPUs not covered.
    assert snapshot.queue_headroom == {
        "grayify-cq": Resources(3000, 3072, 0),
        "plants-cq": Resources(0, 2048, UNBOUNDED),
    }
    assert [(s.count, s.requests) for s in workload.pod_sets] == [(2, Resources(1000, 1024, 0, 1))]
    assert observation.quota_held == 1
    assert "1 Kueue workload(s) wait for quota, not for nodes; not counted as demand" in observation.notes


def test_watch_events_reach_the_snapshot(api: KubeApi, observer: ClusterObserver) -> None:
    last = api.replay(RECORDED / "events.jsonl")
    assert last == 5215
    # Each watch sees the versions of its own collection: pods end at 5213, nodes at 5214, workloads at 5215.
    for name, version in (("pods", "5213"), ("nodes", "5214"), ("workloads", "5215")):
        assert observer.reflectors[name].wait_for_version(version, 10), name
    view = observer.view()
    machines = [Machine("agent-0", "on"), Machine("agent-1", "on"), Machine("agent-2", "on")]
    observation = build_observation(view.nodes, view.pods, view.workloads, machines, PowerRecord(), NodeHistory(), NOW)
    nodes = {node.name: node for node in observation.snapshot.nodes}
    assert [pod.name for pod in nodes["agent-0"].pods] == [KNATIVE_POD], "the finished job left agent-0"
    assert [pod.name for pod in nodes["agent-1"].pods] == [PENDING_JOB], "the pending job was bound to agent-1"
    assert (nodes["agent-2"].power, nodes["agent-2"].cordoned) == (PowerState.ON, False)
    assert nodes["agent-2"].power_since == epoch("2026-05-04T10:00:20Z")
    assert observation.snapshot.pending == () and observation.snapshot.workloads == ()
    assert observer.reflectors["pods"].lists == 1, "events are applied, never a second list"


def test_a_watch_the_server_ends_resumes_from_its_version(api: KubeApi, tmp_path: Path) -> None:
    api.watch_seconds = 0.2
    client = kube_config.new_client_from_config(config_file=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    watching = ClusterObserver(client)
    watching.start(timeout=10)
    try:
        time.sleep(1.0)  # several watches end (their timeout) and are resumed meanwhile
        node = api.store["Node"][("", "agent-1")]
        node["spec"]["unschedulable"] = True
        version = api.put(node)
        nodes = watching.reflectors["nodes"]
        assert nodes.wait_for_version(str(version), 10)
        cordoned = next(n for n in watching.view().nodes if n["metadata"]["name"] == "agent-1")
        assert cordoned["spec"]["unschedulable"] is True
        assert nodes.lists == 1, "a watch that ended is resumed from the last version seen, without a list"
        resumes = [line for line in api.calls if line.startswith("GET /api/v1/nodes?") and is_watch(line)]
        assert len(resumes) >= 3
        assert all("resourceVersion=5210" in line for line in resumes), "nothing changed before the cordon"
    finally:
        watching.stop()
        client.close()


def test_410_gone_makes_the_watch_list_again(api: KubeApi, observer: ClusterObserver) -> None:
    nodes = observer.reflectors["nodes"]
    assert nodes.lists == 1
    deadline = time.monotonic() + 10
    while not api.watching.get("/api/v1/nodes"):
        assert time.monotonic() < deadline, "the nodes watch never started"
        time.sleep(0.05)
    api.expire_watches()
    while nodes.lists < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert nodes.lists == 2, "410 Gone: the copy is rebuilt from a new list"
    version = api.put(api.store["Node"][("", "agent-0")])
    assert nodes.wait_for_version(str(version), 10), "and watched again from that list's version"
    assert nodes.error is None


def test_start_fails_in_one_line_when_the_api_refuses(tmp_path: Path) -> None:
    double = KubeApi()
    try:
        client = kube_config.new_client_from_config(config_file=str(double.write_kubeconfig(tmp_path / "kc")))
        watching = ClusterObserver(client)
        assert watching.kueue is None and "workloads" not in watching.reflectors
        double.forbidden["/api/v1/pods"] = "pods"
        with pytest.raises(OperationError) as caught:
            watching.start(timeout=2)
        assert str(caught.value) == (
            "Kubernetes API: could not list pods in 2s (pods: 403 Forbidden: pods is forbidden: User "
            '"system:serviceaccount:oscar:oscar-autoscaler" cannot list resource "pods" in API group "" at the '
            "cluster scope); check the autoscaler's kubeconfig and its RBAC"
        )
    finally:
        double.stop()
