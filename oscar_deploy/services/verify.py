"""The post-deploy smoke test (`oscar-deploy verify`, and the last phase of `up`).

It walks the path a user takes, as upstream's own API test suite does (grycap/oscar-tests
`tests/api/service-lifecycle.robot`): the API answers (/health, /system/info), a service can be created, a file
uploaded to its input bucket makes OSCAR run a job that writes the output file (MinIO webhook -> /job ->
Kubernetes job -> supervisor upload), a synchronous call answers (Knative; a 502 while the revision starts is
waited out), the job's log can be read, and the service can be deleted. The service has a unique name and is
deleted even when a step fails; OSCAR deletes its bucket with it (delete.go), and the smoke test removes the
bucket itself only when the server left it behind. Each step reports pass or fail with its time; the first
failure says where to look.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from oscar_deploy.support.errors import OscarDeployError

if TYPE_CHECKING:
    from oscar_deploy.services.client import OscarClient
    from oscar_deploy.services.files import ObjectStore
    from oscar_deploy.state.endpoints import ClusterAccess

DEFAULT_TIMEOUT = 300.0
POLL_INTERVAL = 2.0
NAME_PREFIX = "oscar-deploy-verify-"
INPUT_KEY = "in/verify.txt"
OUTPUT_PREFIX = "out/"
# Runs in the service's container: the supervisor sets INPUT_FILE_PATH and uploads what lands in TMP_OUTPUT_DIR.
SMOKE_SCRIPT = """#!/bin/sh
# oscar-deploy verify: copy the input file to the output folder and print it.
set -e
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").out"
cat "$INPUT_FILE_PATH"
"""

HINTS = {
    "health": "the OSCAR manager does not answer: check the gateway address, DNS and "
    "`kubectl -n oscar get pods` (OSCAR manager)",
    "info": "OSCAR answers but /system/info failed: check the credentials (state secret oscar_password) and "
    "`kubectl -n oscar logs deploy/oscar`",
    "create service": "OSCAR could not create the service: check `kubectl -n oscar logs deploy/oscar` (MinIO "
    "webhook registration, Knative), the RWX volume `kubectl -n oscar-svc get pvc oscar-pvc`",
    "upload input": "MinIO refused or is unreachable: check minio_url and the keys in endpoints.yaml and "
    "`kubectl -n minio get pods`",
    "output file": "no result from the asynchronous job: check `oscar-deploy service logs NAME`, "
    "`kubectl -n oscar-svc get jobs,pods`, the MinIO webhook to oscar.oscar:8080 and the supervisor image",
    "run (sync)": "the synchronous call failed: check Knative and Kourier (`kubectl -n knative-serving get pods`, "
    "`kubectl -n oscar-svc get ksvc`) and that the image can be pulled",
    "job log": "the job log could not be read: check `kubectl -n oscar-svc get pods` and the OSCAR manager's "
    "RBAC on pods/log",
    "delete service": "the smoke-test service is left behind: remove it with `oscar-deploy service delete NAME`",
}
STEPS = ("health", "info", "create service", "upload input", "output file", "run (sync)", "job log", "delete service")


@dataclass(frozen=True)
class StepResult:
    step: str
    status: str  # PASS, FAIL or SKIP
    seconds: float
    detail: str
    hint: str = ""


@dataclass
class VerifyReport:
    service_name: str
    results: list[StepResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(result.status == "PASS" for result in self.results)

    @property
    def first_failure(self) -> StepResult | None:
        return next((result for result in self.results if result.status == "FAIL"), None)


def smoke_service_body(name: str, image: str) -> dict[str, Any]:
    """The smoke-test service, validated by the same model as any FDL service."""
    from oscar_deploy.services.fdl import Service
    from oscar_deploy.services.stored import apply_create_defaults

    service = Service.model_validate(
        {
            "name": name,
            "image": image,
            "alpine": True,
            "script": SMOKE_SCRIPT,
            "memory": "128Mi",
            "cpu": "0.1",
            "log_level": "INFO",
            "input": [{"storage_provider": "minio.default", "path": f"{name}/in"}],
            "output": [{"storage_provider": "minio.default", "path": f"{name}/out"}],
        }
    )
    body: dict[str, Any] = service.model_dump(by_alias=True, exclude_none=True, mode="json")
    body["cluster_id"] = "oscar-deploy"
    return apply_create_defaults(body)


def describe_info(info: dict[str, Any]) -> str:
    """`/system/info` in one line. On Knative the backend's version is the Kubernetes API server's (upstream's
    `KnativeBackend.GetInfo` asks the discovery client), so it is not shown as Knative's."""
    text = f"OSCAR {info.get('version', '?')} on Kubernetes {info.get('kubernetes_version', '?')}"
    backend = info.get("serverless_backend") or {}
    name = str(backend.get("name") or "")
    if not name:
        return text
    version = str(backend.get("version") or "")
    if version and name.lower() != "knative":
        return f"{text}, backend {name} {version}"
    return f"{text}, backend {name}"


class SmokeTest:
    def __init__(
        self,
        client: OscarClient,
        store_factory: Callable[[], ObjectStore],
        image: str,
        report: Callable[[StepResult], None],
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float = POLL_INTERVAL,
        name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.store_factory = store_factory
        self.image = image
        self.report_step = report
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.name = name or f"{NAME_PREFIX}{secrets.token_hex(3)}"
        self.clock = clock
        self._store: ObjectStore | None = None
        self._create_attempted = False
        self._payload = f"oscar-deploy verify {self.name}\n".encode()

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            self._store = self.store_factory()
        return self._store

    # --- the steps; each returns a one-line detail, or raises ------------------------------------------------
    def _health(self) -> str:
        answer = self.client.health()
        return f"answered {answer!r}"

    def _info(self) -> str:
        return describe_info(self.client.info())

    def _create(self) -> str:
        self._create_attempted = True
        self.client.create_service(smoke_service_body(self.name, self.image))
        return f"service {self.name} ({self.image})"

    def _upload(self) -> str:
        self.store.put_bytes(self._payload, self.name, INPUT_KEY)
        return f"{self.name}/{INPUT_KEY} ({len(self._payload)} bytes)"

    def _output(self) -> str:
        found = self.store.wait_for_object(self.name, OUTPUT_PREFIX, timeout=self.timeout, interval=self.poll_interval)
        content = self.store.get_bytes(self.name, found.key)
        if content != self._payload:
            raise OscarDeployError(f"{self.name}/{found.key} holds {content[:60]!r}, not the uploaded input")
        return f"{self.name}/{found.key}"

    def _run(self) -> str:
        data = f"oscar-deploy verify sync {self.name}\n".encode()
        answer = self.client.run(self.name, data, timeout=self.timeout, ready_wait=self.timeout)
        if data.strip() not in answer:
            raise OscarDeployError(f"the answer {answer[:80]!r} does not echo the input")
        return f"echoed {len(data)} bytes"

    def _job_log(self) -> str:
        jobs = self.client.list_jobs(self.name)
        if not jobs:
            raise OscarDeployError(f"/system/logs/{self.name} lists no job")
        job = jobs[-1]
        log = self.client.job_log(self.name, job.name)
        if not log.strip():
            raise OscarDeployError(f"the log of job {job.name} is empty")
        return f"job {job.name} ({job.status or 'status unknown'}), {len(log.splitlines())} log lines"

    def _delete(self) -> str:
        from oscar_deploy.services.client import ServiceNotFound

        try:
            self.client.delete_service(self.name)
            detail = f"service {self.name} deleted"
        except ServiceNotFound:
            detail = f"service {self.name} was not there"
        if self._store is not None:
            try:
                if not self._store.bucket_exists(self.name):
                    return f"{detail}, OSCAR removed its bucket"
                self._store.remove_bucket(self.name)
                detail += ", bucket removed (OSCAR had left it)"
            except OscarDeployError as exc:
                detail += f"; bucket {self.name} left behind ({exc})"
        return detail

    # --- driver -----------------------------------------------------------------------------------------------
    @contextmanager
    def _timed(self, step: str, report: VerifyReport) -> Iterator[dict[str, str]]:
        outcome: dict[str, str] = {}
        start = self.clock()
        try:
            yield outcome
        except Exception as exc:  # any failure of a step is a finding of the smoke test, reported like the others
            message = str(exc).splitlines()[0] if str(exc) else ""
            if not isinstance(exc, OscarDeployError):
                message = f"{type(exc).__name__}: {message}"
            hint = HINTS[step].replace("NAME", self.name)
            result = StepResult(step, "FAIL", self.clock() - start, message, hint)
        else:
            result = StepResult(step, "PASS", self.clock() - start, outcome.get("detail", ""))
        report.results.append(result)
        self.report_step(result)

    def _step(self, step: str, action: Callable[[], str], report: VerifyReport) -> bool:
        with self._timed(step, report) as outcome:
            outcome["detail"] = action()
        return report.results[-1].status == "PASS"

    def _skip(self, step: str, report: VerifyReport) -> None:
        result = StepResult(step, "SKIP", 0.0, "not run after the failure above")
        report.results.append(result)
        self.report_step(result)

    def run(self) -> VerifyReport:
        report = VerifyReport(self.name)
        actions: list[tuple[str, Callable[[], str]]] = [
            ("health", self._health),
            ("info", self._info),
            ("create service", self._create),
            ("upload input", self._upload),
            ("output file", self._output),
            ("run (sync)", self._run),
            ("job log", self._job_log),
        ]
        failed = False
        try:
            for step, action in actions:
                if failed:
                    self._skip(step, report)
                elif not self._step(step, action, report):
                    failed = True
        finally:
            if self._create_attempted:
                self._step("delete service", self._delete, report)
            else:
                self._skip("delete service", report)
        return report


def verify_cluster(
    access: ClusterAccess,
    report: Callable[[StepResult], None],
    image: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> VerifyReport:
    """Run the smoke test against a cluster (`oscar-deploy verify`, and `up` as its last phase)."""
    from oscar_deploy.services.client import OscarClient
    from oscar_deploy.services.files import object_store_for
    from oscar_deploy.spec.catalogue import load_catalogue

    chosen = image or load_catalogue()["smoke_test_image"].image_reference
    assert chosen is not None  # the catalogue entry names an image
    with OscarClient(access.oscar) as client:
        smoke = SmokeTest(
            client, store_factory=lambda: object_store_for(access, client), image=chosen, report=report, timeout=timeout
        )
        return smoke.run()


def format_result(result: StepResult) -> list[str]:
    """Lines printed for one step: `PASS  step  (0.12 s)  detail`, and where to look after a failure."""
    timing = f"({result.seconds:.2f} s)" if result.status != "SKIP" else ""
    lines = [f"{result.status}  {result.step:<15} {timing:>10}  {result.detail}".rstrip()]
    if result.status == "FAIL" and result.hint:
        lines.append(f"      look at: {result.hint}")
    return lines
