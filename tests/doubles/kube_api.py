"""TEST DOUBLE: a few routes of the Kubernetes API server, on 127.0.0.1, for the kubernetes Python client.

It stands for a k3s API server (no k3s binary can run here) answering what oscar-deploy asks, in the shapes of
the Kubernetes API reference (https://kubernetes.io/docs/reference/kubernetes-api/) and its API concepts page
(https://kubernetes.io/docs/reference/using-api/api-concepts/: resourceVersion, list then watch, 410 Gone for a
resource version that is too old, BOOKMARK events, field selectors):

* read-only lists for `oscar_deploy.platform.probe.ClusterProbe`: Deployments, StatefulSets, DaemonSets (apps/v1),
  Jobs (batch/v1), and one Secret (core/v1); tests set `workloads` and `secrets`;
* for the autoscaler: list and watch of Nodes (`/api/v1/nodes`), Pods of every namespace (`/api/v1/pods`, with
  the field selectors `spec.nodeName=` and `status.phase!=`), and Kueue Workloads
  (`/apis/kueue.x-k8s.io/v1beta1/workloads`, announced by API discovery `/apis` only when `kueue` is on);
  PATCH of a Node (JSON Patch or merge patch: cordon and uncordon); and the Eviction subresource
  (`POST /api/v1/namespaces/NS/pods/NAME/eviction`, policy/v1), which deletes the pod or answers 429
  TooManyRequests while a PodDisruptionBudget forbids it (tests list the pods a budget protects in `guarded`).

Objects live in `store`, each change gets the next resourceVersion and is kept in an event log that watches
replay from the version they ask for; `compact()` forgets the log so a watch from before gets 410 Gone, as
etcd compaction does, and `expire_watches()` sends open watches the ERROR 410 event the API server sends when
its watch cache moved on (`fail_watches()` sends them another Status, as an API server in trouble does). A
watch streams chunked JSON lines and ends after its timeoutSeconds (at most `watch_seconds`), with a BOOKMARK
when asked for. Tests change objects with `put`, `remove`, `load_recorded` and `replay` (the recorded
responses under tests/data/kube), set the API groups discovery announces (`groups`), refuse a collection with
403 (`forbidden`), refuse the kubeconfig's token with 401 on every request as the API server's authentication
filter does (`accepted_token`: a credential renewed since the kubeconfig was written), fail a node's PATCH or a
pod's eviction with 500 (`failing_patches`, `failing_evictions`), and read `requests` (the path of each GET),
`calls` (method, path and query of every request) and `patches`.
Plain HTTP, a bearer token: the kubeconfig it writes points at it. Nothing here ships in the wheel.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

LISTS = {
    "/apis/apps/v1/deployments": ("apps/v1", "DeploymentList", "Deployment"),
    "/apis/apps/v1/statefulsets": ("apps/v1", "StatefulSetList", "StatefulSet"),
    "/apis/apps/v1/daemonsets": ("apps/v1", "DaemonSetList", "DaemonSet"),
    "/apis/batch/v1/jobs": ("batch/v1", "JobList", "Job"),
}
KUEUE_GROUP = "kueue.x-k8s.io"
KUBECONFIG_TOKEN = "not-a-secret"
# The watched collections: path -> (kind of the store, apiVersion, kind of the list).
COLLECTIONS = {
    "/api/v1/nodes": ("Node", "v1", "NodeList"),
    "/api/v1/pods": ("Pod", "v1", "PodList"),
    f"/apis/{KUEUE_GROUP}/v1beta1/workloads": ("Workload", f"{KUEUE_GROUP}/v1beta1", "WorkloadList"),
    f"/apis/{KUEUE_GROUP}/v1beta1/clusterqueues": ("ClusterQueue", f"{KUEUE_GROUP}/v1beta1", "ClusterQueueList"),
    f"/apis/{KUEUE_GROUP}/v1beta1/localqueues": ("LocalQueue", f"{KUEUE_GROUP}/v1beta1", "LocalQueueList"),
}


def deployment(namespace: str, name: str, ready: int, replicas: int = 1) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name}]}},
        },
        "status": {"readyReplicas": ready} if ready else {},
    }


def job(namespace: str, name: str, succeeded: int = 0, failed: int = 0) -> dict[str, Any]:
    status = {key: value for key, value in (("succeeded", succeeded), ("failed", failed)) if value}
    return {
        "kind": "Job",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"template": {"spec": {"containers": [{"name": name}], "restartPolicy": "Never"}}},
        "status": status,
    }


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def flag(value: str | None) -> bool:
    """A boolean query parameter as the API server reads it (Go's strconv.ParseBool: true, True, 1, t...)."""
    return value in ("1", "t", "T", "TRUE", "true", "True")


def object_key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (str(meta.get("namespace") or ""), str(meta["name"]))


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def matches(obj: dict[str, Any], selector: str) -> bool:
    """A field selector of `a.b=value` and `a.b!=value` terms joined by commas."""
    for term in filter(None, selector.split(",")):
        if "!=" in term:
            path, _, value = term.partition("!=")
            if _field(obj, path) == value:
                return False
        else:
            path, _, value = term.partition("=")
            if _field(obj, path.rstrip("=")) != value.lstrip("="):
                return False
    return True


class KubeApi:
    def __init__(self, kueue: bool = False) -> None:
        self.workloads: list[dict[str, Any]] = []
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.requests: list[str] = []  # the path of every GET
        self.calls: list[str] = []  # `METHOD path?query` of every request
        self.kueue = kueue
        # Watched objects by kind, then (namespace, name); the event log holds (resourceVersion, kind, event).
        self.store: dict[str, dict[tuple[str, str], dict[str, Any]]] = {kind: {} for kind, _, _ in COLLECTIONS.values()}
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.version = 1000
        self.oldest = 1000  # a watch from an older version is answered 410 Gone
        # Pods a PodDisruptionBudget protects: (namespace, name) -> evictions refused before one is allowed
        # (a negative count refuses for ever).
        self.guarded: dict[tuple[str, str], int] = {}
        self.patches: list[tuple[str, str, Any]] = []
        # A watch ends after the timeoutSeconds it asks for, at most this long (a test shortens it to see resumes).
        self.watch_seconds = 30.0
        # Collections the caller may not read, answered 403 as RBAC refuses them: path -> resource name.
        self.forbidden: dict[str, str] = {}
        # The bearer token requests must carry; the kubeconfig it writes carries KUBECONFIG_TOKEN.
        self.accepted_token = KUBECONFIG_TOKEN
        # Nodes whose PATCH fails with 500 (an API server in trouble), until the test removes them.
        self.failing_patches: set[str] = set()
        # Pods whose eviction fails with 500, until the test removes them.
        self.failing_evictions: set[tuple[str, str]] = set()
        self.changed = threading.Condition()
        self.expirations = 0
        # The ERROR event's object open watches get from `fail_watches`; None: 410 Expired (`expire_watches`).
        self.watch_error: dict[str, Any] | None = None
        # The API groups discovery announces, when set (tests of the Kueue version chosen); None: Kueue's alone.
        self.groups: list[dict[str, Any]] | None = None
        self.watching: dict[str, int] = {}  # open watches by path
        self.closing = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1: a watch streams its events as chunks, as the API server does.
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if api._authenticated(self):
                    api._get(self)

            def do_PATCH(self) -> None:
                if api._authenticated(self):
                    api._patch(self)

            def do_POST(self) -> None:
                if api._authenticated(self):
                    api._post(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client that closes a kept-alive connection is no error of the server's.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    # --- what tests change ------------------------------------------------------------------------------------

    def put(self, obj: dict[str, Any]) -> int:
        """Add or replace an object (its `kind` says which collection); returns its new resourceVersion."""
        with self.changed:
            kind = obj["kind"]
            key = object_key(obj)
            event = "MODIFIED" if key in self.store[kind] else "ADDED"
            return self._record(kind, event, copy.deepcopy(obj))

    def remove(self, kind: str, namespace: str, name: str) -> int:
        with self.changed:
            obj = self.store[kind][(namespace, name)]
            return self._record(kind, "DELETED", obj)

    def compact(self) -> None:
        """Forget the event log, as etcd compaction does: watches from an older version get 410 Gone."""
        with self.changed:
            self.events.clear()
            self.oldest = self.version

    def expire_watches(self) -> None:
        """Open watches get an ERROR event with 410 Expired, as the API server sends when its watch cache no
        longer holds the version a watch is at."""
        with self.changed:
            self.watch_error = None
            self.expirations += 1
            self.changed.notify_all()

    def fail_watches(self, error: dict[str, Any]) -> None:
        """Open watches get an ERROR event with `error` (a Status other than 410 Expired), as from an API server
        in trouble."""
        with self.changed:
            self.watch_error = error
            self.expirations += 1
            self.changed.notify_all()

    def load_recorded(self, folder: Path) -> None:
        """The recorded list responses of `folder` (nodes, pods and the Kueue collections) as the initial
        objects; the lists' resourceVersions are kept."""
        for name in ("nodes", "pods", "workloads", "clusterqueues", "localqueues"):
            path = folder / f"{name}.json"
            if not path.is_file():
                continue
            listed = json.loads(path.read_text())
            kind = listed["kind"].removesuffix("List")
            with self.changed:
                for item in listed["items"]:
                    self.store[kind][object_key(item)] = {"kind": kind, **item}
                self.version = max(self.version, int(listed["metadata"]["resourceVersion"]))
                self.oldest = self.version

    def replay(self, path: Path) -> int:
        """Apply a recorded watch event stream (one `{"type", "object"}` per line); returns the last version."""
        last = self.version
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            event = json.loads(line)
            obj = event["object"]
            with self.changed:
                kind = obj["kind"]
                self.version = max(self.version, int(obj["metadata"]["resourceVersion"]) - 1)
                last = self._record(kind, event["type"], obj, keep_version=True)
        return last

    def _record(self, kind: str, event: str, obj: dict[str, Any], keep_version: bool = False) -> int:
        self.version += 1
        if not keep_version:
            obj["metadata"]["resourceVersion"] = str(self.version)
        version = int(obj["metadata"]["resourceVersion"])
        self.version = max(self.version, version)
        key = object_key(obj)
        previous = self.store[kind].get(key)
        if event == "DELETED":
            self.store[kind].pop(key, None)
        else:
            self.store[kind][key] = obj
        # The object before the change is kept so a watch with a field selector can tell entering from leaving.
        entry = {"type": event, "object": copy.deepcopy(obj), "previous": copy.deepcopy(previous)}
        self.events.append((version, kind, entry))
        self.changed.notify_all()
        return version

    # --- routes -------------------------------------------------------------------------------------------------

    def _authenticated(self, handler: BaseHTTPRequestHandler) -> bool:
        """Whether the request carries the accepted token; if not, it is answered 401 as kube-apiserver's
        authentication filter does (`apierrors.NewUnauthorized("Unauthorized")`), its body left unread."""
        if handler.headers.get("Authorization") == f"Bearer {self.accepted_token}":
            return True
        self.calls.append(f"{handler.command} {handler.path} (unauthorized)")
        self._answer(handler, 401, status(401, "Unauthorized", "Unauthorized"))
        handler.close_connection = True
        return False

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        path = parts.path.rstrip("/")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self.requests.append(path)
        self.calls.append(f"GET {handler.path}")
        if path in self.forbidden:
            resource = self.forbidden[path]
            message = (
                f'{resource} is forbidden: User "system:serviceaccount:oscar:oscar-autoscaler" cannot list '
                f'resource "{resource}" in API group "" at the cluster scope'
            )
            return self._answer(handler, 403, status(403, "Forbidden", message))
        if path in LISTS:
            version, list_kind, kind = LISTS[path]
            items = [dict(item, apiVersion=version) for item in self.workloads if item["kind"] == kind]
            return self._answer(
                handler, 200, {"apiVersion": version, "kind": list_kind, "metadata": {}, "items": items}
            )
        if path == "/apis":
            return self._answer(handler, 200, self._discovery())
        if path in COLLECTIONS and (self.kueue or not path.startswith(f"/apis/{KUEUE_GROUP}")):
            if flag(query.get("watch")):
                return self._watch(handler, path, query)
            return self._list(handler, path, query)
        segments = path.strip("/").split("/")
        if len(segments) == 6 and segments[:3] == ["api", "v1", "namespaces"] and segments[4] == "secrets":
            data = self.secrets.get((segments[3], segments[5]))
            if data is not None:
                encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
                body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": segments[5]}, "data": encoded}
                return self._answer(handler, 200, body)
        self._answer(handler, 404, status(404, "NotFound", f"the server could not find {path}"))

    def _discovery(self) -> dict[str, Any]:
        if self.groups is not None:
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": self.groups}
        groups = []
        if self.kueue:
            versions = [{"groupVersion": f"{KUEUE_GROUP}/v1beta1", "version": "v1beta1"}]
            groups.append({"name": KUEUE_GROUP, "versions": versions, "preferredVersion": versions[0]})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _selected(self, path: str, query: dict[str, str]) -> list[dict[str, Any]]:
        kind, _, _ = COLLECTIONS[path]
        selector = query.get("fieldSelector", "")
        return [obj for _, obj in sorted(self.store[kind].items()) if matches(obj, selector)]

    def _list(self, handler: BaseHTTPRequestHandler, path: str, query: dict[str, str]) -> None:
        _, api_version, list_kind = COLLECTIONS[path]
        with self.changed:
            items = [{k: v for k, v in obj.items() if k != "kind"} for obj in self._selected(path, query)]
            version = self.version
        limit = int(query.get("limit", "0") or 0)
        start = int(query.get("continue", "0") or 0)
        metadata: dict[str, Any] = {"resourceVersion": str(version)}
        if limit and start + limit < len(items):
            metadata["continue"] = str(start + limit)
            items = items[start : start + limit]
        elif limit:
            items = items[start:]
        body = {"kind": list_kind, "apiVersion": api_version, "metadata": metadata, "items": items}
        self._answer(handler, 200, body)

    def _watch(self, handler: BaseHTTPRequestHandler, path: str, query: dict[str, str]) -> None:
        kind, api_version, _ = COLLECTIONS[path]
        since = int(query.get("resourceVersion", "0") or 0)
        deadline = time.monotonic() + min(float(query.get("timeoutSeconds", "30")), self.watch_seconds)
        bookmarks = flag(query.get("allowWatchBookmarks"))
        selector = query.get("fieldSelector", "")
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def send(event: dict[str, Any]) -> bool:
            obj = event["object"]
            if event["type"] != "ERROR":
                obj = {"apiVersion": api_version, **{k: v for k, v in obj.items() if k != "apiVersion"}}
            line = json.dumps({"type": event["type"], "object": obj}).encode() + b"\n"
            try:
                handler.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                handler.wfile.flush()
            except OSError:
                return False
            return True

        def send_selected(event: dict[str, Any]) -> bool:
            """The event as a watch with this field selector sees it: an object entering the selection is
            ADDED, one leaving it DELETED, one outside it before and after is not seen at all."""
            before = event["previous"] is not None and matches(event["previous"], selector)
            after = event["type"] != "DELETED" and matches(event["object"], selector)
            if after:
                return send({"type": "MODIFIED" if before else "ADDED", "object": event["object"]})
            if before:
                return send({"type": "DELETED", "object": event["object"]})
            return True

        try:
            self._stream(send, send_selected, kind, path, query, since, deadline, bookmarks)
        finally:
            with contextlib.suppress(OSError):
                handler.wfile.write(b"0\r\n\r\n")
                handler.wfile.flush()

    def _stream(
        self,
        send: Callable[[dict[str, Any]], bool],
        send_selected: Callable[[dict[str, Any]], bool],
        kind: str,
        path: str,
        query: dict[str, str],
        since: int,
        deadline: float,
        bookmarks: bool,
    ) -> None:
        with self.changed:
            if since and since < self.oldest:
                send({"type": "ERROR", "object": status(410, "Expired", f"too old resource version: {since}")})
                return
            position = since or self.version
            generation = self.expirations
            current = [{"type": "ADDED", "object": obj} for obj in self._selected(path, query)] if not since else []
            self.watching[path] = self.watching.get(path, 0) + 1
        try:
            self._events(send, send_selected, kind, current, position, generation, deadline, bookmarks)
        finally:
            with self.changed:
                self.watching[path] -= 1

    def _events(
        self,
        send: Callable[[dict[str, Any]], bool],
        send_selected: Callable[[dict[str, Any]], bool],
        kind: str,
        current: list[dict[str, Any]],
        position: int,
        generation: int,
        deadline: float,
        bookmarks: bool,
    ) -> None:
        for event in current:
            if not send(event):
                return
        expired = status(410, "Expired", "The resourceVersion for the provided watch is too old.")
        while not self.closing:
            with self.changed:
                if self.expirations != generation:
                    send({"type": "ERROR", "object": self.watch_error or expired})
                    return
                fresh = [(v, e) for v, k, e in self.events if k == kind and v > position]
                if not fresh:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.changed.wait(min(left, 0.2))
                    continue
            for version, event in fresh:
                position = version
                if not send_selected(event):
                    return
        if bookmarks and not self.closing:
            send({"type": "BOOKMARK", "object": {"kind": kind, "metadata": {"resourceVersion": str(position)}}})

    def _body(self, handler: BaseHTTPRequestHandler) -> Any:
        length = int(handler.headers.get("Content-Length") or 0)
        return json.loads(handler.rfile.read(length) or b"null") if length else None

    def _patch(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path.rstrip("/")
        self.calls.append(f"PATCH {handler.path}")
        body = self._body(handler)
        content_type = handler.headers.get("Content-Type", "")
        segments = path.strip("/").split("/")
        if len(segments) != 4 or segments[:3] != ["api", "v1", "nodes"]:
            return self._answer(handler, 404, status(404, "NotFound", f"the server could not find {path}"))
        name = segments[3]
        if name in self.failing_patches:
            return self._answer(handler, 500, status(500, "InternalError", "etcdserver: request timed out"))
        with self.changed:
            node = self.store["Node"].get(("", name))
            if node is None:
                return self._answer(handler, 404, status(404, "NotFound", f'nodes "{name}" not found'))
            node = copy.deepcopy(node)
            self.patches.append((name, content_type, body))
            if content_type.startswith("application/json-patch+json") and isinstance(body, list):
                for operation in body:
                    if operation.get("op") not in ("add", "replace") or operation.get("path") != "/spec/unschedulable":
                        return self._answer(handler, 422, status(422, "Invalid", f"unsupported patch {operation}"))
                    node.setdefault("spec", {})["unschedulable"] = operation["value"]
            elif isinstance(body, dict) and "json" in content_type:
                node.setdefault("spec", {}).update(body.get("spec", {}))
            else:
                return self._answer(handler, 415, status(415, "UnsupportedMediaType", f"{content_type} not supported"))
            if not node["spec"].get("unschedulable"):
                node["spec"].pop("unschedulable", None)
            self._record("Node", "MODIFIED", node)
        self._answer(handler, 200, {"apiVersion": "v1", **{k: v for k, v in node.items() if k != "kind"}})

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path.rstrip("/")
        self.calls.append(f"POST {handler.path}")
        body = self._body(handler)
        segments = path.strip("/").split("/")
        if not (len(segments) == 7 and segments[:3] == ["api", "v1", "namespaces"] and segments[4] == "pods"):
            return self._answer(handler, 404, status(404, "NotFound", f"the server could not find {path}"))
        if segments[6] != "eviction":
            return self._answer(handler, 404, status(404, "NotFound", f"the server could not find {path}"))
        namespace, name = segments[3], segments[5]
        if (namespace, name) in self.failing_evictions:
            return self._answer(handler, 500, status(500, "InternalError", "etcdserver: request timed out"))
        if not isinstance(body, dict) or body.get("kind") != "Eviction" or body.get("apiVersion") != "policy/v1":
            return self._answer(handler, 400, status(400, "BadRequest", "the body is not a policy/v1 Eviction"))
        with self.changed:
            if (namespace, name) not in self.store["Pod"]:
                return self._answer(handler, 404, status(404, "NotFound", f'pods "{name}" not found'))
            refusals = self.guarded.get((namespace, name), 0)
            if refusals:
                self.guarded[(namespace, name)] = refusals - 1 if refusals > 0 else refusals
                message = "Cannot evict pod as it would violate the pod's disruption budget."
                details = {"causes": [{"reason": "DisruptionBudget", "message": "The disruption budget needs 1"}]}
                return self._answer(handler, 429, status(429, "TooManyRequests", message, details))
            self._record("Pod", "DELETED", self.store["Pod"][(namespace, name)])
        self._answer(
            handler, 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        )

    def _answer(self, handler: BaseHTTPRequestHandler, code: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    # --- life cycle ---------------------------------------------------------------------------------------------

    def write_kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "double", "cluster": {"server": self.url}}],
            "users": [{"name": "double", "user": {"token": KUBECONFIG_TOKEN}}],
            "contexts": [{"name": "double", "context": {"cluster": "double", "user": "double"}}],
            "current-context": "double",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def stop(self) -> None:
        with self.changed:
            self.closing = True
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()
