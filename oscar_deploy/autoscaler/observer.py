"""Watching the cluster through the Kubernetes API: nodes, pods and Kueue workloads, kept current by watches.

Each collection has a `Reflector` (client-go's pattern, in small): one list (paged), then a watch from the
list's resourceVersion that applies ADDED/MODIFIED/DELETED events to a local copy and follows BOOKMARKs. A
watch the server ends (its timeout) is resumed from the last version seen; a version the server no longer
has (410 Gone, after etcd compaction) or any other failure leads to a fresh list, after a growing pause when
the API keeps failing. So each period costs the API nothing beyond the changes themselves: the whole cluster
is listed once at start and after a 410, never polled.

Objects are kept as the JSON the API serves (no client models), which is what `kubeobjects` reads. Pods are
watched with the field selector `status.phase!=Succeeded,status.phase!=Failed`, so finished pods leave the
copy as the API server sees them leave the selection. Kueue workloads, ClusterQueues (their quota and what is
reserved of it) and LocalQueues (which ClusterQueue each feeds) are watched only when the cluster serves the
`kueue.x-k8s.io` API group (found by API discovery), in its preferred version.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from oscar_deploy.autoscaler.kubeobjects import key_of
from oscar_deploy.platform.autoscaler import KUEUE_GROUP, KUEUE_RESOURCES
from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.files import parse_json

KUEUE_VERSIONS = ("v1beta2", "v1beta1")
RUNNING_PODS = "status.phase!=Succeeded,status.phase!=Failed"
PAGE_SIZE = 500
WATCH_SECONDS = 300
CONNECT_SECONDS = 10.0
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


class Expired(Exception):
    """The watch's resourceVersion is gone from the server (410): list again."""


def response_lines(response: Any) -> Iterator[bytes]:
    """The lines of a streamed (chunked) response as they arrive: one watch event per line."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


def error_text(exc: BaseException) -> str:
    """One line for an API failure: the HTTP status and reason when the API answered, else the error."""
    status = getattr(exc, "status", None)
    if status:
        body = getattr(exc, "body", None)
        message = ""
        if body:
            with contextlib.suppress(ValueError, TypeError):
                answer = parse_json(body)  # a proxy in between may answer any JSON, not a Status object
                message = str(answer.get("message", "")) if isinstance(answer, dict) else ""
        head = f"{status} {getattr(exc, 'reason', '') or ''}".strip()
        return f"{head}: {message}" if message else head
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


class Reflector:
    """A local copy of one API collection, kept current by list and watch in a thread of its own."""

    def __init__(self, name: str, fetch: Callable[..., Any], field_selector: str | None = None) -> None:
        self.name = name
        self.fetch = fetch
        self.field_selector = field_selector
        self.lock = threading.Lock()
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = ""
        self.lists = 0
        self.error: str | None = None
        self.synced = threading.Event()
        self.changed = threading.Condition(self.lock)
        self._stop = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{name}", daemon=True)

    # --- life cycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            sock = getattr(getattr(response, "connection", None), "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def items(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.objects.values())

    def wait_for_version(self, version: str, timeout: float) -> bool:
        """Wait until the copy holds at least resourceVersion `version` (a test's way to know events arrived)."""
        with self.changed:
            return self.changed.wait_for(lambda: _newer_or_equal(self.version, version), timeout)

    # --- list and watch -----------------------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._list()
                failures = 0
                self._watch()
            except Expired:
                continue
            except Exception as exc:  # any failure of the API or the connection: list again after a pause
                if self._stop.is_set():
                    break
                with self.lock:
                    self.error = f"{self.name}: {error_text(exc)}"
                self._stop.wait(BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)])
                failures += 1

    def _arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {"_preload_content": False}
        if self.field_selector:
            arguments["field_selector"] = self.field_selector
        return arguments

    def _list(self) -> None:
        objects: dict[str, dict[str, Any]] = {}
        token: str | None = None
        while True:
            arguments = self._arguments()
            arguments.update(limit=PAGE_SIZE, _request_timeout=(CONNECT_SECONDS, 60.0))
            if token:
                arguments["_continue"] = token
            response = self.fetch(**arguments)
            try:
                data = parse_json(response.data)
            finally:
                response.release_conn()
            for item in data.get("items") or []:
                objects[key_of(item)] = item
            metadata = data.get("metadata") or {}
            token = metadata.get("continue") or None
            if not token:
                break
        with self.changed:
            self.objects = objects
            self.version = str(metadata.get("resourceVersion") or "")
            self.lists += 1
            self.error = None
            self.changed.notify_all()
        self.synced.set()

    def _watch(self) -> None:
        while not self._stop.is_set():
            arguments = self._arguments()
            arguments.update(
                watch=True,
                resource_version=self.version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                _request_timeout=(CONNECT_SECONDS, WATCH_SECONDS + 30.0),
            )
            response = self.fetch(**arguments)
            self._response = response
            try:
                if self._stop.is_set():
                    return  # stop() landed while the watch was opening: it saw no response to cut
                for line in response_lines(response):
                    self._apply(parse_json(line))
                    if self._stop.is_set():
                        return
            finally:
                self._response = None
                # A watch left mid-stream (410, stop) has unread bytes: its connection must not be reused.
                response.close()
                response.release_conn()

    def _apply(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Expired
            raise OperationError(f"watch of {self.name}: {obj.get('code')} {obj.get('message', '')}".strip())
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        with self.changed:
            if kind in ("ADDED", "MODIFIED"):
                self.objects[key_of(obj)] = obj
            elif kind == "DELETED":
                self.objects.pop(key_of(obj), None)
            if version:
                self.version = version
            self.changed.notify_all()


def _newer_or_equal(current: str, wanted: str) -> bool:
    if not current:
        return False
    if current.isdigit() and wanted.isdigit():
        return int(current) >= int(wanted)
    return current == wanted


@dataclass(frozen=True)
class KubeView:
    """What the watches hold at one moment, as API JSON, and what is wrong with them."""

    nodes: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    workloads: list[dict[str, Any]]
    kueue: bool
    errors: list[str]
    cluster_queues: list[dict[str, Any]]
    local_queues: list[dict[str, Any]]


def kueue_version(api_client: Any) -> str | None:
    """The version of the Kueue API this cluster serves (its preferred one we can read), or None."""
    from kubernetes import client

    apis: Any = client.ApisApi(api_client)
    try:
        response = apis.get_api_versions(_preload_content=False, _request_timeout=(10.0, 30.0))
    except Exception as exc:  # the API refused or could not be reached (urllib3 errors have no common base here)
        raise OperationError(
            f"Kubernetes API: API discovery failed ({error_text(exc)}); check the autoscaler's kubeconfig"
        ) from None
    try:
        groups = parse_json(response.data).get("groups") or []
    finally:
        response.release_conn()
    for group in groups:
        if group.get("name") != KUEUE_GROUP:
            continue
        served = [entry.get("version") for entry in group.get("versions") or []]
        preferred = (group.get("preferredVersion") or {}).get("version")
        if preferred in KUEUE_VERSIONS:
            return str(preferred)
        return next((version for version in KUEUE_VERSIONS if version in served), None)
    return None


class ClusterObserver:
    """Nodes, pods and (when Kueue is installed) Kueue workloads, watched through one API client."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        core = client.CoreV1Api(api_client)
        self.kueue = kueue_version(api_client)
        self.reflectors = {
            "nodes": Reflector("nodes", core.list_node),
            "pods": Reflector("pods", core.list_pod_for_all_namespaces, RUNNING_PODS),
        }
        if self.kueue:
            custom = client.CustomObjectsApi(api_client)
            for plural in KUEUE_RESOURCES:
                fetch = functools.partial(custom.list_cluster_custom_object, KUEUE_GROUP, self.kueue, plural)
                self.reflectors[plural] = Reflector(plural, fetch)

    def start(self, timeout: float = 60.0) -> None:
        """Start every watch and wait until each has listed its collection once."""
        for reflector in self.reflectors.values():
            reflector.start()
        for reflector in self.reflectors.values():
            if not reflector.synced.wait(timeout):
                self.stop()
                raise OperationError(
                    f"Kubernetes API: could not list {reflector.name} in {timeout:.0f}s "
                    f"({reflector.error or 'no answer'}); check the autoscaler's kubeconfig and its RBAC"
                )

    def stop(self) -> None:
        for reflector in self.reflectors.values():
            reflector.stop()

    def view(self) -> KubeView:
        def items(name: str) -> list[dict[str, Any]]:
            reflector = self.reflectors.get(name)
            return reflector.items() if reflector else []

        return KubeView(
            nodes=items("nodes"),
            pods=items("pods"),
            workloads=items("workloads"),
            kueue=self.kueue is not None,
            errors=[r.error for r in self.reflectors.values() if r.error],
            cluster_queues=items("clusterqueues"),
            local_queues=items("localqueues"),
        )
