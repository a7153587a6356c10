"""Looking at a running platform through the Kubernetes API: which workloads are not ready, and secret values
the platform made (the cluster CA's certificate) that clients need.

Read-only: every call is a GET with the cluster's admin kubeconfig.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oscar_deploy.support.errors import OperationError


@dataclass(frozen=True)
class Workload:
    """A Deployment, StatefulSet, DaemonSet or Job, and whether it is ready (done, for a Job)."""

    kind: str
    namespace: str
    name: str
    ready: bool
    detail: str

    def line(self) -> str:
        return f"{self.kind.lower()} {self.namespace}/{self.name}: {self.detail}"


class ClusterProbe:
    """The cluster's API, as the kubeconfig in the state folder reaches it."""

    def __init__(self, kubeconfig: Path, timeout: float = 10.0) -> None:
        if not kubeconfig.is_file():
            raise OperationError(f"{kubeconfig}: no kubeconfig; run `oscar-deploy up` to install k3s first")
        from kubernetes import config

        self.api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self.kubeconfig = kubeconfig
        self.timeout = timeout

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> ClusterProbe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def workloads(self) -> list[Workload]:
        """Every Deployment, StatefulSet, DaemonSet and Job, with its readiness."""
        from kubernetes import client

        apps, batch = client.AppsV1Api(self.api), client.BatchV1Api(self.api)
        found: list[Workload] = []
        for item in self._items(apps.list_deployment_for_all_namespaces):
            wanted, ready = item.spec.replicas if item.spec.replicas is not None else 1, item.status.ready_replicas or 0
            found.append(_counted("Deployment", item, ready, wanted))
        for item in self._items(apps.list_stateful_set_for_all_namespaces):
            wanted, ready = item.spec.replicas if item.spec.replicas is not None else 1, item.status.ready_replicas or 0
            found.append(_counted("StatefulSet", item, ready, wanted))
        for item in self._items(apps.list_daemon_set_for_all_namespaces):
            wanted, ready = item.status.desired_number_scheduled or 0, item.status.number_ready or 0
            found.append(_counted("DaemonSet", item, ready, wanted))
        for item in self._items(batch.list_job_for_all_namespaces):
            succeeded, failed = item.status.succeeded or 0, item.status.failed or 0
            detail = "done" if succeeded else f"{failed} failed attempt(s)" if failed else "running"
            found.append(Workload("Job", item.metadata.namespace, item.metadata.name, bool(succeeded), detail))
        return found

    def unready(self) -> list[Workload]:
        return [workload for workload in self.workloads() if not workload.ready]

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One key of a Secret, decoded; None while the Secret or the key does not exist yet."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            secret = client.CoreV1Api(self.api).read_namespaced_secret(name, namespace, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise OperationError(self._failure(exc, f"reading secret {namespace}/{name}")) from exc
        except Exception as exc:  # urllib3 errors: refused, timed out, TLS
            raise OperationError(f"{unreachable(exc)}; is the cluster running?") from exc
        encoded = (secret.data or {}).get(key)
        if encoded is None:
            return None
        try:
            return base64.b64decode(encoded).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OperationError(f"secret {namespace}/{name}: key {key} is not base64 text") from exc

    def _items(self, lister: Any) -> list[Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            return list(lister(_request_timeout=self.timeout).items)
        except ApiException as exc:
            raise OperationError(self._failure(exc)) from exc
        except Exception as exc:  # urllib3 errors: refused, timed out, TLS
            raise OperationError(f"{unreachable(exc)}; is the cluster running?") from exc

    def _failure(self, exc: Any, doing: str = "") -> str:
        """The line for an API error status: a refused kubeconfig with how to get a new one, else the status."""
        if exc.status == 401:
            return f"{refused(exc)}; {self.renewal_advice()}"
        return f"Kubernetes API: {doing + ': ' if doing else ''}{exc.status} {exc.reason}"

    def renewal_advice(self) -> str:
        # k3s renews its certificates (the admin client's too) on the servers; this copy is fetched only by `up`.
        return (
            f"its client certificate may have expired or been renewed: delete {self.kubeconfig} and run "
            "`oscar-deploy up` to fetch the current one from the first server"
        )

    def unusable(self) -> str | None:
        """None when the API server answers and takes this kubeconfig's credentials, else why it cannot be used:
        it does not answer, or it refuses the credentials (401: a client certificate expired or renewed since it
        was fetched, or another cluster now at its address; 403: denied). Any other status means it can be used."""
        failure = self._discovery_failure()
        return None if failure is None else failure[0]

    def check_usable(self, what: str) -> None:
        """Raise, with the fix, unless the API can be used (see `unusable`); `what` is the work that needs it."""
        failure = self._discovery_failure()
        if failure is None:
            return
        reason, status = failure
        fix = self.renewal_advice() if status == 401 else "is the cluster running?" if status is None else ""
        raise OperationError(f"{what}: {reason}" + (f"; {fix}" if fix else ""))

    def _discovery_failure(self) -> tuple[str, int | None] | None:
        """Why the API cannot be used and its HTTP status (None: no answer), or None when it can."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            client.ApisApi(self.api).get_api_versions(_request_timeout=self.timeout)
        except ApiException as exc:
            return (refused(exc), exc.status) if exc.status in (401, 403) else None
        except Exception as exc:  # urllib3 errors: refused, timed out, TLS
            return unreachable(exc), None
        return None


def refused(exc: Any) -> str:
    return f"Kubernetes API refused the kubeconfig's credentials ({exc.status} {exc.reason})"


def unreachable(exc: Exception) -> str:
    return f"Kubernetes API unreachable ({type(exc).__name__})"


def _counted(kind: str, item: Any, ready: int, wanted: int) -> Workload:
    return Workload(kind, item.metadata.namespace, item.metadata.name, ready >= wanted, f"{ready}/{wanted} ready")
