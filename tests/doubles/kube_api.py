"""TEST DOUBLE: a few read-only routes of the Kubernetes API server, on 127.0.0.1, for the kubernetes client.

It stands for a k3s API server answering the GETs `oscar_deploy.platform.probe.ClusterProbe` makes (no k3s
binary can run here): the cluster-wide lists of Deployments, StatefulSets, DaemonSets (apps/v1) and Jobs
(batch/v1), and reading one Secret (core/v1). Shapes follow the Kubernetes API reference
(https://kubernetes.io/docs/reference/kubernetes-api/: DeploymentList, StatefulSetList, DaemonSetList,
JobList, Secret, and a Status object for a 404). Tests set `workloads` and `secrets`; every request path is
recorded in `requests`. Plain HTTP, no auth: the kubeconfig it writes points at it.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

LISTS = {
    "/apis/apps/v1/deployments": ("apps/v1", "DeploymentList", "Deployment"),
    "/apis/apps/v1/statefulsets": ("apps/v1", "StatefulSetList", "StatefulSet"),
    "/apis/apps/v1/daemonsets": ("apps/v1", "DaemonSetList", "DaemonSet"),
    "/apis/batch/v1/jobs": ("batch/v1", "JobList", "Job"),
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


class KubeApi:
    def __init__(self) -> None:
        self.workloads: list[dict[str, Any]] = []
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                api.requests.append(path)
                if path in LISTS:
                    version, list_kind, kind = LISTS[path]
                    items = [dict(item, apiVersion=version) for item in api.workloads if item["kind"] == kind]
                    self._answer(200, {"apiVersion": version, "kind": list_kind, "metadata": {}, "items": items})
                    return
                parts = path.strip("/").split("/")
                if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "secrets":
                    data = api.secrets.get((parts[3], parts[5]))
                    if data is not None:
                        encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
                        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": parts[5]}, "data": encoded}
                        self._answer(200, body)
                        return
                self._answer(
                    404,
                    {"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404},
                )

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def write_kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "double", "cluster": {"server": self.url}}],
            "users": [{"name": "double", "user": {"token": "not-a-secret"}}],
            "contexts": [{"name": "double", "context": {"cluster": "double", "user": "double"}}],
            "current-context": "double",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
