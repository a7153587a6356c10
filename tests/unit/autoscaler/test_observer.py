"""The observer against recorded Kubernetes API responses (tests/data/kube), served by the API double and read
through the real kubernetes client: list then watch, the snapshot the policy gets, 410 Gone and resumes."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import FrozenInstanceError
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from oscar_deploy.autoscaler.model import UNBOUNDED, PowerState, Resources
from oscar_deploy.autoscaler.observer import (
    RUNNING_PODS,
    ClusterObserver,
    Reflector,
    error_text,
    kueue_version,
    response_lines,
)
from oscar_deploy.autoscaler.snapshot import NodeHistory, PowerRecord, build_observation
from oscar_deploy.providers.power import Machine
from oscar_deploy.support.errors import OperationError
from tests.doubles.kube_api import KUEUE_GROUP, KubeApi, flag, status
from tests.unit.autoscaler.cluster_objects import RECORDED, node, pod

NOW = datetime.fromisoformat("2026-05-04T10:00:00+00:00").timestamp()
MACHINES = [Machine("agent-0", "on", "amd64"), Machine("agent-1", "on", "amd64"), Machine("agent-2", "off", "amd64")]
JOB_ON_AGENT_0 = "oscar-svc/3f2b8c1e-6a0d-4f57-9b8e-2c1d0e7a5b64-x7k2q"
KNATIVE_POD = "oscar-svc/cowsay-00001-deployment-7f6d9c5b8-2lq9w"
PENDING_JOB = "oscar-svc/a81c42d9-0f3e-4c6b-8d27-5e9b1f4a3c70-p4m9z"
KINDS = {
    "nodes": "Node",
    "pods": "Pod",
    "workloads": "Workload",
    "clusterqueues": "ClusterQueue",
    "localqueues": "LocalQueue",
}


def is_watch(path: str) -> bool:
    return flag(parse_qs(urlsplit(path).query).get("watch", [""])[0])


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_until(condition: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def read_by_watches(api: KubeApi, reflectors: dict[str, Reflector]) -> None:
    """A change to each collection seen: every watch is open and read."""
    versions = {name: api.put(next(iter(api.store[KINDS[name]].values()))) for name in reflectors}
    deadline = time.monotonic() + 10
    for name, reflector in reflectors.items():
        assert reflector.wait_for_version(str(versions[name]), max(deadline - time.monotonic(), 0)), name


def refused(**arguments: Any) -> Any:
    raise ConnectionRefusedError(111, "Connection refused")


def unanswered(reflector: Reflector) -> Callable[..., Any]:
    """A request that never comes back: it ends only when the reflector is stopped."""

    def fetch(**arguments: Any) -> Any:
        reflector._stop.wait(30)
        raise ConnectionResetError(104, "Connection reset by peer")

    return fetch


def recording(fetch: Callable[..., Any], calls: list[dict[str, Any]]) -> Callable[..., Any]:
    def recorded(**arguments: Any) -> Any:
        calls.append(arguments)
        return fetch(**arguments)

    return recorded


class Pauses(threading.Event):
    """A reflector's stop event that, instead of pausing after a failure, records the pause (its length and the
    error the reflector shows meanwhile), and stops the reflector at the `last` one."""

    def __init__(self, reflector: Reflector, last: int) -> None:
        super().__init__()
        self.reflector, self.last = reflector, last
        self.seen: list[tuple[float | None, str | None]] = []
        reflector._stop = self

    def wait(self, timeout: float | None = None) -> bool:
        self.seen.append((timeout, self.reflector.error))
        if len(self.seen) == self.last:
            self.set()
        return self.is_set()

    def ended(self, timeout: float) -> bool:
        return super().wait(timeout)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeApi]:
    double = KubeApi(kueue=True)
    double.load_recorded(RECORDED)
    yield double
    double.stop()


@pytest.fixture
def api_client(api: KubeApi, tmp_path: Path) -> Iterator[Any]:
    client = kube_config.new_client_from_config(config_file=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    yield client
    client.close()


@pytest.fixture
def observer(api: KubeApi, api_client: Any) -> Iterator[ClusterObserver]:
    watching = ClusterObserver(api_client)
    watching.start(timeout=10)
    yield watching
    read_by_watches(api, watching.reflectors)
    watching.stop()


@pytest.fixture
def node_reflector(api_client: Any) -> Iterator[Reflector]:
    """A reflector of the nodes alone, not started."""
    reflector = Reflector("nodes", kube_client.CoreV1Api(api_client).list_node)
    yield reflector
    reflector.stop()


def test_lists_once_then_watches_from_the_lists_version(api: KubeApi, observer: ClusterObserver) -> None:
    assert observer.kueue == "v1beta1"
    view = observer.view()
    assert view.kueue is True
    assert sorted(n["metadata"]["name"] for n in view.nodes) == ["agent-0", "agent-1", "agent-2", "server-0"]
    assert len(view.pods) == 6 and len(view.workloads) == 3 and view.errors == []
    assert [q["metadata"]["name"] for q in view.cluster_queues] == ["grayify-cq", "plants-cq"]
    assert [q["metadata"]["name"] for q in view.local_queues] == ["grayify-queue", "plants-queue"]
    wait_until(
        lambda: len([path for path, count in api.watching.items() if count]) == 5, "not every collection is watched"
    )
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
        assert query["timeoutSeconds"] == ["300"], path


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
    wait_until(lambda: api.watching.get("/api/v1/nodes"), "the nodes watch never started")
    cordoned = api.store["Node"][("", "agent-1")]
    cordoned["spec"]["unschedulable"] = True
    with api.changed:  # the watch gets its 410 before it could see these changes: only a new list brings them
        api.put(cordoned)
        version = api.remove("Node", "", "agent-2")
        api.expire_watches()
    assert nodes.wait_for_version(str(version), 10), "410 Gone: the copy is rebuilt from a new list"
    assert nodes.lists == 2
    view = {n["metadata"]["name"]: n for n in observer.view().nodes}
    assert sorted(view) == ["agent-0", "agent-1", "server-0"]
    assert view["agent-1"]["spec"]["unschedulable"] is True
    version = api.put(api.store["Node"][("", "agent-0")])
    assert nodes.wait_for_version(str(version), 10), "and watched again from that list's version"
    watches = [line for line in api.calls if line.startswith("GET /api/v1/nodes?") and is_watch(line)]
    assert parse_qs(urlsplit(watches[-1]).query)["resourceVersion"] == [str(version - 1)]
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


def test_start_waits_60s_for_each_list_then_says_no_answer(api_client: Any) -> None:
    watching = ClusterObserver(api_client)
    for reflector in watching.reflectors.values():
        reflector.fetch = unanswered(reflector)
    waited: list[float | None] = []

    class Unlisted(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waited.append(timeout)
            return False

    watching.reflectors["nodes"].synced = Unlisted()
    with pytest.raises(OperationError) as caught:
        watching.start()
    assert waited == [60.0]
    assert str(caught.value) == (
        "Kubernetes API: could not list nodes in 60s (no answer); check the autoscaler's kubeconfig and its RBAC"
    )


def test_without_kueue_only_nodes_and_pods_are_watched(tmp_path: Path) -> None:
    double = KubeApi()
    double.put(node("agent-0"))
    double.put(pod("oscar-svc", "job", "agent-0"))
    client = kube_config.new_client_from_config(config_file=str(double.write_kubeconfig(tmp_path / "kc")))
    watching = ClusterObserver(client)
    try:
        watching.start(timeout=10)
        assert list(watching.reflectors) == ["nodes", "pods"]
        view = watching.view()
        assert [n["metadata"]["name"] for n in view.nodes] == ["agent-0"]
        assert [p["metadata"]["name"] for p in view.pods] == ["job"]
        assert (view.workloads, view.cluster_queues, view.local_queues) == ([], [], [])
        assert (view.kueue, view.errors) == (False, [])
        with pytest.raises(FrozenInstanceError):
            view.kueue = True  # type: ignore[misc]
        read_by_watches(double, watching.reflectors)
    finally:
        watching.stop()
        client.close()
        double.stop()


def test_lists_and_watches_ask_for_pages_selectors_and_timeouts(api: KubeApi, api_client: Any) -> None:
    """A list gives up on a silent API server after 60s, a watch 30s after the server should have ended it."""
    watching = ClusterObserver(api_client)
    asked: dict[str, list[dict[str, Any]]] = {"nodes": [], "pods": []}
    for name, calls in asked.items():
        watching.reflectors[name].fetch = recording(watching.reflectors[name].fetch, calls)
    try:
        watching.start(timeout=10)
        read_by_watches(api, watching.reflectors)
    finally:
        watching.stop()
    listing = {"_preload_content": False, "limit": 500, "_request_timeout": (10.0, 60.0)}
    watch = {
        "_preload_content": False,
        "watch": True,
        "resource_version": "5210",
        "allow_watch_bookmarks": True,
        "timeout_seconds": 300,
        "_request_timeout": (10.0, 330.0),
    }
    assert asked["nodes"] == [listing, watch]
    selected = {"field_selector": "status.phase!=Succeeded,status.phase!=Failed"}
    assert asked["pods"] == [{**listing, **selected}, {**watch, **selected}]


def test_a_list_is_read_500_objects_a_page(api: KubeApi, node_reflector: Reflector) -> None:
    for number in range(1100):
        api.put(node(f"worker-{number:04}"))
    node_reflector.start()
    assert node_reflector.synced.wait(10)
    assert len(node_reflector.items()) == 1104 and node_reflector.lists == 1
    assert node_reflector.version == str(api.version)
    lists = [line for line in api.calls if line.startswith("GET /api/v1/nodes?") and not is_watch(line)]
    pages = [(query["limit"], query.get("continue")) for query in (parse_qs(urlsplit(line).query) for line in lists)]
    assert pages == [(["500"], None), (["500"], ["500"]), (["500"], ["1000"])]
    read_by_watches(api, {"nodes": node_reflector})


def test_added_and_deleted_objects_enter_and_leave_the_copy(api: KubeApi, observer: ClusterObserver) -> None:
    nodes = observer.reflectors["nodes"]
    assert nodes.wait_for_version(str(api.put(node("agent-3"))), 10)
    assert "agent-3" in [n["metadata"]["name"] for n in observer.view().nodes]
    assert nodes.wait_for_version(str(api.remove("Node", "", "agent-3")), 10)
    assert sorted(n["metadata"]["name"] for n in observer.view().nodes) == ["agent-0", "agent-1", "agent-2", "server-0"]


def test_a_bookmark_moves_the_version_on_without_a_change(api: KubeApi, tmp_path: Path) -> None:
    """A pod that finishes outside the watch's field selector is not seen, but the bookmark the watch ends with
    carries its version: the next watch starts from there."""
    api.watch_seconds = 0.3
    client = kube_config.new_client_from_config(config_file=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    pods = Reflector("pods", kube_client.CoreV1Api(client).list_pod_for_all_namespaces, RUNNING_PODS)
    try:
        pods.start()
        assert pods.synced.wait(10)
        version = api.put(pod("oscar-svc", "done", "agent-0", phase="Succeeded"))
        assert pods.wait_for_version(str(version), 10)
        assert len(pods.items()) == 6
        wait_until(
            lambda: any(
                f"resourceVersion={version}&" in line for line in api.calls if line.startswith("GET /api/v1/pods?")
            ),
            "no watch from the bookmark's version",
        )
    finally:
        pods.stop()
        client.close()


def test_wait_for_version_compares_resource_versions_as_numbers(observer: ClusterObserver) -> None:
    nodes = observer.reflectors["nodes"]
    assert nodes.version == "5210"
    assert [nodes.wait_for_version(version, 0) for version in ("999", "5209", "5210", "5211", "52100")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert nodes.wait_for_version("abc", 0) is False, "a version that is no number is only equal to itself"


def test_a_reflector_never_started_holds_nothing_and_stops_at_once() -> None:
    reflector = Reflector("nodes", refused)
    assert (reflector.items(), reflector.version, reflector.lists, reflector.error) == ([], "", 0, None)
    assert reflector.wait_for_version("0", 0) is False
    reflector.stop()


def test_stop_ends_every_watch_at_once(api: KubeApi, api_client: Any) -> None:
    before = set(threading.enumerate())
    watching = ClusterObserver(api_client)
    watching.start(timeout=10)
    threads = [thread for thread in threading.enumerate() if thread not in before and thread.name.startswith("watch-")]
    read_by_watches(api, watching.reflectors)
    assert sorted(thread.name for thread in threads) == [
        "watch-clusterqueues",
        "watch-localqueues",
        "watch-nodes",
        "watch-pods",
        "watch-workloads",
    ]
    assert all(thread.daemon for thread in threads), "a watch never keeps the process alive"
    watching.stop()
    assert [thread.name for thread in threads if thread.is_alive()] == [], "a watch outlived stop"
    assert watching.view().errors == [], "a watch cut by stop is no failure"


def test_stop_landing_while_a_watch_opens_ends_it_at_once(api_client: Any) -> None:
    list_node = kube_client.CoreV1Api(api_client).list_node

    def opening(**arguments: Any) -> Any:
        response = list_node(**arguments)
        if arguments.get("watch"):  # the watch is open, its response not yet handed to the reflector
            stopper = threading.Thread(target=reflector.stop, kwargs={"timeout": 0})
            stopper.start()
            stopper.join()
        return response

    reflector = Reflector("nodes", opening)
    reflector.start()
    assert reflector.synced.wait(10)
    reflector._thread.join(5)
    assert not reflector._thread.is_alive(), "a watch opened as stop landed outlived it"
    assert reflector.error is None


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (status(500, "InternalError", "etcdserver: request timed out"), "500 etcdserver: request timed out"),
        ({"kind": "Status", "code": 500}, "500"),
    ],
)
def test_an_error_event_fails_the_watch_with_its_status(
    api: KubeApi, node_reflector: Reflector, error: dict[str, Any], shown: str
) -> None:
    pauses = Pauses(node_reflector, last=1)
    node_reflector.start()
    wait_until(lambda: api.watching.get("/api/v1/nodes"), "the nodes watch never started")
    api.fail_watches(error)
    assert pauses.ended(10)
    assert pauses.seen == [(1.0, f"nodes: watch of nodes: {shown}")]
    assert node_reflector.lists == 1


def test_failures_pause_longer_each_time_up_to_30s() -> None:
    reflector = Reflector("nodes", refused)
    pauses = Pauses(reflector, last=7)
    reflector.start()
    assert pauses.ended(10)
    reflector.stop()
    error = "nodes: [Errno 111] Connection refused"
    assert pauses.seen == [(seconds, error) for seconds in (1.0, 2.0, 5.0, 10.0, 30.0, 30.0, 30.0)]
    assert not reflector.synced.is_set()


def test_a_list_that_succeeds_starts_the_pauses_over(api: KubeApi, api_client: Any) -> None:
    calls = itertools.count()
    list_node = kube_client.CoreV1Api(api_client).list_node

    def failing(**arguments: Any) -> Any:
        # lists 1 and 2 fail, list 3 succeeds, its watch fails, list 4 fails
        if next(calls) in (0, 1, 3, 4):
            raise ConnectionResetError(104, "Connection reset by peer")
        return list_node(**arguments)

    reflector = Reflector("nodes", failing)
    pauses = Pauses(reflector, last=4)
    reflector.start()
    assert pauses.ended(10)
    reflector.stop()
    error = "nodes: [Errno 104] Connection reset by peer"
    assert pauses.seen == [(1.0, error), (2.0, error), (1.0, error), (2.0, error)]
    assert reflector.lists == 1


def group(name: str, versions: list[str], preferred: str | None) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{version}", "version": version} for version in versions]
    chosen = {"preferredVersion": {"groupVersion": f"{name}/{preferred}", "version": preferred}} if preferred else {}
    return {"name": name, "versions": entries, **chosen}


@pytest.mark.parametrize(
    ("groups", "version"),
    [
        ([group(KUEUE_GROUP, ["v1beta2", "v1beta1"], "v1beta2")], "v1beta2"),
        ([group(KUEUE_GROUP, ["v1beta2", "v1beta1"], "v1beta1")], "v1beta1"),
        ([group(KUEUE_GROUP, ["v1", "v1beta1", "v1beta2"], "v1")], "v1beta2"),
        ([group(KUEUE_GROUP, ["v1", "v1beta1"], "v1")], "v1beta1"),
        ([group(KUEUE_GROUP, ["v1beta1"], None)], "v1beta1"),
        ([group(KUEUE_GROUP, ["v1alpha1"], "v1alpha1")], None),
        ([group("apps.example.com", ["v1beta1"], "v1beta1"), group(KUEUE_GROUP, ["v1beta2"], "v1beta2")], "v1beta2"),
        ([group("example.com", ["v1beta1"], "v1beta1")], None),
        ([], None),
    ],
)
def test_kueue_is_read_in_its_preferred_version_else_the_newest_we_know(
    api: KubeApi, api_client: Any, groups: list[dict[str, Any]], version: str | None
) -> None:
    api.groups = groups
    assert kueue_version(api_client) == version


def test_api_discovery_failure_is_one_line(tmp_path: Path) -> None:
    double = KubeApi()
    port = double.server.server_address[1]
    client = kube_config.new_client_from_config(config_file=str(double.write_kubeconfig(tmp_path / "kc")))
    double.stop()  # the API server is gone: its port refuses connections
    with pytest.raises(OperationError) as caught:
        kueue_version(client)
    message = str(caught.value)
    assert message.startswith(
        f"Kubernetes API: API discovery failed (HTTPConnectionPool(host='127.0.0.1', port={port})"
    )
    assert message.endswith("Connection refused\"))); check the autoscaler's kubeconfig"), message


def api_error(status: int, reason: str | None, body: str | None = None) -> ApiException:
    """The kubernetes client's error as its REST layer raises it (`body` is not an argument before v32)."""
    error = ApiException(status, reason)
    error.body = body
    return error


class Unavailable(Exception):
    """An error with an HTTP status and nothing else."""

    status = 503


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            api_error(403, "Forbidden", '{"kind": "Status", "message": "nodes is forbidden"}'),
            "403 Forbidden: nodes is forbidden",
        ),
        (api_error(500, "Internal Server Error"), "500 Internal Server Error"),
        (api_error(502, "Bad Gateway", "<html>bad gateway</html>"), "502 Bad Gateway"),
        (api_error(500, None, '{"kind": "Status"}'), "500"),
        (api_error(500, None, '{"kind": "Status", "message": "etcd down"}'), "500: etcd down"),
        # a proxy in between may answer JSON that is no Status object
        (api_error(502, "Bad Gateway", '"bad gateway"'), "502 Bad Gateway"),
        (api_error(502, "Bad Gateway", "null"), "502 Bad Gateway"),
        (api_error(502, "Bad Gateway", "[1]"), "502 Bad Gateway"),
        (api_error(502, "Bad Gateway", "502"), "502 Bad Gateway"),
        (Unavailable(), "503"),
        (ConnectionResetError("Connection reset by peer\nwhile reading"), "Connection reset by peer"),
        (TimeoutError(), "TimeoutError"),
        (OSError("x" * 400), "x" * 300),
    ],
)
def test_an_api_failure_is_told_in_one_line(error: BaseException, text: str) -> None:
    assert error_text(error) == text


class Chunks:
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def stream(self, amt: int | None, decode_content: bool) -> Iterator[bytes]:
        yield from self.chunks


def test_a_watch_stream_is_read_a_line_at_a_time_whatever_its_chunks() -> None:
    chunks = Chunks(b'{"a"', b': 1}\n{"b": 2}\n\n  \n{"c"', b": 3}")
    assert list(response_lines(chunks)) == [b'{"a": 1}', b'{"b": 2}', b'{"c": 3}']
    assert list(response_lines(Chunks(b'{"a": 1}\n', b"  "))) == [b'{"a": 1}']


def test_a_failure_is_shown_until_a_list_succeeds(api: KubeApi, node_reflector: Reflector) -> None:
    shown: list[str | None] = []
    list_node = node_reflector.fetch

    def failing_once(**arguments: Any) -> Any:
        shown.append(node_reflector.error)
        if len(shown) == 1:
            raise ConnectionResetError(104, "Connection reset by peer")
        return list_node(**arguments)

    node_reflector.fetch = failing_once
    node_reflector.start()
    assert node_reflector.synced.wait(10)
    assert (node_reflector.error, node_reflector.lists) == (None, 1)
    assert shown[:2] == [None, "nodes: [Errno 104] Connection reset by peer"]
    read_by_watches(api, {"nodes": node_reflector})


def test_410_gone_lists_again_at_once_without_an_error(api: KubeApi, node_reflector: Reflector) -> None:
    pauses = Pauses(node_reflector, last=1)
    node_reflector.start()
    wait_until(lambda: api.watching.get("/api/v1/nodes"), "the nodes watch never started")
    api.expire_watches()
    wait_until(lambda: node_reflector.lists == 2, "no second list")
    assert (pauses.seen, node_reflector.error) == ([], None)
    read_by_watches(api, {"nodes": node_reflector})


def test_api_discovery_gives_up_after_30s(api_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    timeouts: list[Any] = []
    call_api = api_client.call_api

    def recorded(*arguments: Any, **options: Any) -> Any:
        timeouts.append(options.get("_request_timeout"))
        return call_api(*arguments, **options)

    monkeypatch.setattr(api_client, "call_api", recorded)
    assert kueue_version(api_client) == "v1beta1"
    assert timeouts == [(10.0, 30.0)]
