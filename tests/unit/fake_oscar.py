"""Test double: the OSCAR manager's REST API (v4) on 127.0.0.1, with a real S3 server (moto) standing for MinIO.

Stands for grycap/oscar's manager: routes in `main.go`, handlers in `pkg/handlers/*.go`, the published OpenAPI
document `docs/api.yaml` (kept as tests/data/oscar-api-openapi.yaml) and `docs/fdl.md`. It behaves as upstream does
for what oscar-deploy uses:

- `GET /health` answers "Ok" without credentials; `/system/*` needs the single basic-auth user (or an accepted
  OIDC bearer token) and answers 401 with `WWW-Authenticate` otherwise.
- `POST /system/services` checks the body, generates the service's 64-character token, sets the owner
  `cluster_admin`, creates the MinIO buckets and folders of its MinIO inputs and outputs, answers 201; the same
  name again is 409. `PUT` answers 204 (404 for an unknown service), `GET` lists or reads, `DELETE` 204 or 404.
- `POST /run/{svc}` and `POST /job/{svc}` accept only the service's own token as bearer token; /run answers the
  base64 of the output, /job creates a job and answers 201.
- `GET /system/logs/{svc}` lists jobs as the document's JobsResponse, `GET /system/logs/{svc}/{job}` the log text.
- `GET /system/config` hands out the MinIO credentials, with MinIO's in-cluster address, as OSCAR does.

Every service body is validated against the document's Service schema, made strict (a key the schema does not
know is refused: the real server would drop it silently) and brought up to v4 where the 2026 document lags
(V4_SCHEMA_UPDATES below, from `pkg/types/service.go` v4 and `docs/fdl.md`: `api_port`/`nodePort` are lists,
`volume`, `kserve`, `federation`, `ephemeral_storage_request` exist).

Processing stands for the MinIO webhook -> OSCAR `/job` -> Kubernetes job -> supervisor upload flow: a watcher
polls the input folders of every service in the S3 server; each new file becomes a job with a log, and the job
writes `<output folder>/<file name>.out` holding `processor(content)` (by default the content itself, which is
what the smoke test's script does). Synchronous calls answer `processor(input)`. No service script is run.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

OPENAPI_DOCUMENT = Path(__file__).resolve().parent.parent / "data" / "oscar-api-openapi.yaml"
MINIO_IN_CLUSTER_ENDPOINT = "http://minio.minio:9000"

_REPLICA_REF = {"$ref": "#/components/schemas/Replica"}
V4_SCHEMA_UPDATES: dict[str, dict[str, Any]] = {
    "ExposeSettings": {
        "api_port": {"type": "array", "items": {"type": "integer"}},
        "nodePort": {"type": "array", "items": {"type": "integer"}},
        "health_path": {"type": "string"},
        "auth_type": {"type": "string", "enum": ["basic", "forward"]},
        "probe_mode": {"type": "string", "enum": ["legacy", "direct"]},
    },
    "Service": {
        "ephemeral_storage_request": {"type": "string"},
        "volume": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "size": {"type": "string"},
                "mount_path": {"type": "string"},
                "lifecycle_policy": {"type": "string", "enum": ["delete", "retain"]},
            },
        },
        "federation": {
            "type": "object",
            "properties": {
                "group_id": {"type": "string"},
                "topology": {"type": "string"},
                "delegation": {"type": "string"},
                "rescheduler_threshold": {"type": "integer"},
                "members": {"type": "array", "items": _REPLICA_REF},
            },
        },
        "kserve": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["inference", "llm_inference"]},
                "storage_uri": {"type": "string"},
                "inference": {
                    "type": "object",
                    "properties": {
                        "model_format": {"type": "string"},
                        "runtime": {"type": "string"},
                        "api_version": {"type": "string", "enum": ["v1", "v2"]},
                    },
                },
                "llm_inference": {"type": "object", "properties": {"runtime_image": {"type": "string"}}},
                "min_scale": {"type": "integer"},
                "max_scale": {"type": "integer"},
                "cpu": {"type": "string"},
                "memory": {"type": "string"},
                "args": {"type": "array", "items": {"type": "string"}},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "enable_gpu": {"type": "boolean"},
                "set_auth": {"type": "boolean"},
            },
            "required": ["storage_uri"],
        },
    },
}
READ_ONLY_SERVICE_KEYS = ("token",)


def _strict(schema: Any) -> None:
    """Refuse unknown keys in every object schema that lists its properties."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for item in schema:
            _strict(item)


def service_schema_validator() -> Any:
    """A JSON Schema validator for service bodies: the document's Service schema, v4-updated and strict."""
    from jsonschema import Draft202012Validator

    document = yaml.safe_load(OPENAPI_DOCUMENT.read_text())
    schemas = copy.deepcopy(document["components"]["schemas"])
    for name, properties in V4_SCHEMA_UPDATES.items():
        schemas[name]["properties"].update(copy.deepcopy(properties))
    _strict(schemas)
    # `$ref: '#/components/schemas/X'` resolves against this root, exactly as inside the OpenAPI document.
    root = {"$ref": "#/components/schemas/Service", "components": {"schemas": schemas}}
    Draft202012Validator.check_schema(root)
    return Draft202012Validator(root)


@dataclass
class Job:
    name: str
    service: str
    log: str
    created: str
    status: str = "Succeeded"


@dataclass
class FakeOscar:
    """The server's state; start() binds 127.0.0.1 on a free port."""

    s3_endpoint: str
    s3_access_key: str = "minio-test"
    s3_secret_key: str = "minio-test-secret"
    user: str = "oscar"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    oidc_tokens: set[str] = field(default_factory=set)
    processor: Callable[[bytes], bytes] = lambda data: data
    poll_interval: float = 0.05
    ssl_context: ssl.SSLContext | None = None
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, list[Job]] = field(default_factory=dict)
    requests: list[tuple[str, str, str, Any]] = field(default_factory=list)  # method, path, auth kind, JSON body
    failures: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    seen_inputs: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        import boto3

        self.validator = service_schema_validator()
        self.lock = threading.Lock()
        self.s3 = boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=self.s3_access_key,
            aws_secret_access_key=self.s3_secret_key,
            region_name="us-east-1",
        )
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle --------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeOscar:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        if self.ssl_context is not None:
            self._server.socket = self.ssl_context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        threading.Thread(target=self._watch_inputs, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def fail(self, method: str, path: str, status: int, text: str) -> None:
        """Answer `status` to every request whose method matches and whose path starts with `path`."""
        self.failures[(method, path)] = (status, text)

    # --- what a service does ----------------------------------------------------------------------------------
    def _minio_paths(self, service: dict[str, Any], section: str) -> list[tuple[str, str]]:
        paths = []
        for item in service.get(section) or []:
            kind, _, ident = str(item.get("storage_provider", "")).partition(".")
            if kind == "minio" and ident in ("", "default"):
                bucket, _, folder = str(item["path"]).strip("/").partition("/")
                paths.append((bucket, folder))
        return paths

    def _create_buckets(self, service: dict[str, Any]) -> None:
        for bucket, folder in self._minio_paths(service, "input") + self._minio_paths(service, "output"):
            existing = {entry["Name"] for entry in self.s3.list_buckets().get("Buckets", [])}
            if bucket not in existing:
                self.s3.create_bucket(Bucket=bucket)
            if folder:
                self.s3.put_object(Bucket=bucket, Key=f"{folder}/", Body=b"")

    def _new_job(self, service_name: str, log: str) -> Job:
        job = Job(
            name=f"{service_name}-{secrets.token_hex(3)}",
            service=service_name,
            log=log,
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        )
        self.jobs.setdefault(service_name, []).append(job)
        return job

    def _process(self, service: dict[str, Any], source: str, content: bytes) -> None:
        """One job: the supervisor runs the script on `content` and uploads the result to the MinIO outputs."""
        result = self.processor(content)
        name = source.rsplit("/", 1)[-1]
        for bucket, folder in self._minio_paths(service, "output"):
            key = f"{folder}/{name}.out" if folder else f"{name}.out"
            self.s3.put_object(Bucket=bucket, Key=key, Body=result)
        self._new_job(
            service["name"],
            f"[supervisor] event for {source}\n[supervisor] script output:\n{result.decode(errors='replace')}\n",
        )

    def _watch_inputs(self) -> None:
        while not self._stop.wait(self.poll_interval):
            with self.lock:
                services = [copy.deepcopy(item) for item in self.services.values()]
            for service in services:
                for bucket, folder in self._minio_paths(service, "input"):
                    try:
                        listing = self.s3.list_objects_v2(Bucket=bucket, Prefix=f"{folder}/" if folder else "")
                    except Exception:  # noqa: S112 - the bucket was deleted meanwhile; look again next round
                        continue
                    for item in listing.get("Contents", []):
                        key = str(item["Key"])
                        if key.endswith("/") or (bucket, key) in self.seen_inputs:
                            continue
                        self.seen_inputs.add((bucket, key))
                        content = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                        with self.lock:
                            if service["name"] in self.services:
                                self._process(service, f"{bucket}/{key}", content)


def _handler_for(fake: FakeOscar) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        # --- plumbing ---------------------------------------------------------------------------------------
        def _answer(self, status: int, body: bytes | str = b"", content_type: str = "text/plain") -> None:
            payload = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Authorization Required"')
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _json(self, status: int, data: Any) -> None:
            self._answer(status, json.dumps(data), "application/json; charset=utf-8")

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _auth_kind(self) -> str:
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    return "invalid"
                return "basic" if (user, password) == (fake.user, fake.password) else "invalid"
            if header.startswith("Bearer "):
                return "bearer"
            return "none"

        def _bearer(self) -> str:
            return self.headers.get("Authorization", "").removeprefix("Bearer ").strip()

        def _system_allowed(self, kind: str) -> bool:
            return kind == "basic" or (kind == "bearer" and self._bearer() in fake.oidc_tokens)

        def _route(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            kind = self._auth_kind()
            raw = self._body() if method in ("POST", "PUT") else b""
            body: Any = None
            if raw and path.startswith("/system/"):
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
            with fake.lock:
                fake.requests.append((method, path, kind, body))
            for (fail_method, prefix), (status, text) in fake.failures.items():
                if fail_method == method and path.startswith(prefix):
                    return self._answer(status, text)
            if path == "/health" and method == "GET":
                return self._answer(200, "Ok")
            if path.startswith("/system/"):
                if not self._system_allowed(kind):
                    return self._answer(401)
                return self._system(method, path, body)
            if method == "POST" and (path.startswith("/run/") or path.startswith("/job/")):
                return self._invoke(path, raw)
            return self._answer(404, "404 page not found")

        def _safely(self, method: str) -> None:
            """An exception in the double answers 500 with its text, as a failing handler of the real server does."""
            try:
                self._route(method)
            except Exception as exc:  # reported to the client, which must cope with a 500
                self._answer(500, f"{type(exc).__name__}: {exc}")

        def do_GET(self) -> None:
            self._safely("GET")

        def do_POST(self) -> None:
            self._safely("POST")

        def do_PUT(self) -> None:
            self._safely("PUT")

        def do_DELETE(self) -> None:
            self._safely("DELETE")

        # --- /system ----------------------------------------------------------------------------------------
        def _invalid(self, body: Any) -> str | None:
            if not isinstance(body, dict):
                return "expected a JSON object"
            errors = sorted(fake.validator.iter_errors(body), key=lambda error: list(error.absolute_path))
            if errors:
                error = errors[0]
                where = ".".join(str(part) for part in error.absolute_path) or "(body)"
                return f"{where}: {error.message}"
            for key in READ_ONLY_SERVICE_KEYS:
                if key in body:
                    return f"{key}: read-only, set by the server"
            return None

        def _system(self, method: str, path: str, body: Any) -> None:
            parts = [part for part in path.split("/") if part][1:]  # after "system"
            with fake.lock:
                if parts == ["info"] and method == "GET":
                    return self._json(
                        200,
                        {
                            "version": "v4.1.2",
                            "git_commit": "fake",
                            "architecture": "amd64",
                            "kubernetes_version": "v1.33.3+k3s1",
                            "serverless_backend": {"name": "Knative", "version": "1.20.0"},
                        },
                    )
                if parts == ["config"] and method == "GET":
                    return self._json(
                        200,
                        {
                            "config": {"name": "oscar", "namespace": "oscar", "services_namespace": "oscar-svc"},
                            "minio_provider": {
                                "endpoint": MINIO_IN_CLUSTER_ENDPOINT,
                                "region": "us-east-1",
                                "access_key": fake.s3_access_key,
                                "secret_key": fake.s3_secret_key,
                                "verify": True,
                            },
                        },
                    )
                if parts == ["services"]:
                    return self._services(method, body)
                if len(parts) == 2 and parts[0] == "services":
                    return self._service(method, parts[1])
                if parts and parts[0] == "logs" and method == "GET":
                    return self._logs(parts[1:])
            return self._answer(404, "404 page not found")

        def _services(self, method: str, body: Any) -> None:
            if method == "GET":
                return self._json(200, [copy.deepcopy(service) for service in fake.services.values()])
            if method not in ("POST", "PUT"):
                return self._answer(405)
            problem = self._invalid(body)
            if problem:
                return self._answer(400, f"The service specification is not valid: {problem}")
            name = body["name"]
            stored = copy.deepcopy(body)
            stored.setdefault("memory", "256Mi")
            stored.setdefault("cpu", "0.2")
            stored["log_level"] = str(stored.get("log_level") or "INFO").upper()
            stored.setdefault("labels", {})["oscar_service"] = name
            stored["owner"] = "cluster_admin"
            environment = stored.get("environment") or {}
            if environment.get("secrets"):
                environment["secrets"] = {}  # moved into a Kubernetes Secret, never echoed
            if method == "POST":
                if name in fake.services:
                    return self._answer(409, "A service with the provided name already exists")
                stored["token"] = secrets.token_hex(32)
                fake.services[name] = stored
                fake._create_buckets(stored)
                return self._answer(201)
            if name not in fake.services:
                return self._answer(404)
            stored["token"] = fake.services[name]["token"]
            fake.services[name] = stored
            fake._create_buckets(stored)
            return self._answer(204)

        def _service(self, method: str, name: str) -> None:
            if name not in fake.services:
                return self._answer(404)
            if method == "GET":
                return self._json(200, copy.deepcopy(fake.services[name]))
            if method == "DELETE":
                del fake.services[name]
                fake.jobs.pop(name, None)
                return self._answer(204)
            return self._answer(405)

        def _logs(self, parts: list[str]) -> None:
            if len(parts) == 1:
                jobs = {
                    job.name: {
                        "status": job.status,
                        "creation_time": job.created,
                        "start_time": job.created,
                        "finish_time": job.created,
                    }
                    for job in fake.jobs.get(parts[0], [])
                }
                return self._json(200, {"jobs": jobs, "next_page": "", "remaining_jobs": 0})
            if len(parts) == 2:
                job = next((job for job in fake.jobs.get(parts[0], []) if job.name == parts[1]), None)
                return self._answer(200, job.log) if job else self._answer(404)
            return self._answer(404)

        # --- invocations --------------------------------------------------------------------------------------
        def _invoke(self, path: str, raw: bytes) -> None:
            kind, name = path.strip("/").split("/", 1)
            with fake.lock:
                service = copy.deepcopy(fake.services.get(name))
            if service is None:
                return self._answer(404)
            if self._auth_kind() != "bearer" or self._bearer() != service["token"]:
                return self._answer(401)
            try:
                data = base64.b64decode(raw, validate=True)
            except ValueError:
                data = raw
            if kind == "run":  # Knative answers directly; no Kubernetes job, so nothing under /system/logs
                return self._answer(200, base64.b64encode(fake.processor(data)))
            with fake.lock:
                fake._process(service, f"job/{name}/event", data)
            return self._answer(201)

    return Handler
