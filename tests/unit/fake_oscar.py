"""Test double: the OSCAR v4.1.2 manager's REST API on 127.0.0.1, with a real S3 server (moto) standing for MinIO.

Stands for grycap/oscar at tag v4.1.2: the routes and their authentication in `main.go`, the handlers in
`pkg/handlers/` (create.go, update.go, delete.go, read.go, list.go, logs.go, run.go, job.go, info.go, config.go)
and the `Service` type (`pkg/types/service.go` and its parts), read through the copies listed at the top of
tests/data/oscar-v4.1.2-service.schema.yaml, which describes the bodies the Go types decode. What it does, as
upstream does:

- Routes and auth: `GET /health` answers "Ok" without credentials. `/system/*` takes the single basic-auth user
  (401 with `WWW-Authenticate` otherwise) or, when OIDC is on (`oidc_tokens` not empty), an accepted bearer token.
  `POST /run/{svc}` and `POST /job/{svc}` take only `Authorization: Bearer`: the service's 64-character token or an
  accepted OIDC token. `/run` exists only when the manager has a serverless backend (`serverless_backend`);
  without one gin answers 404 "404 page not found".
- Create (create.go): the body is decoded as the Go types decode it (a wrong type or a missing name, image or
  script is 400; unknown keys are dropped, and recorded in `dropped`); paths are normalised (normalizeStoragePaths:
  trimmed, `<service>/` before a MinIO/S3 path without '/', an empty one is 400); checkValues fills in memory, cpu,
  visibility, log level, labels, annotations, the `minio.default` provider with hidden credentials, the federation
  topology and the token; the Kserve type's decoder fills in its cpu, memory and set_auth; the volume is checked and
  defaulted as pkg/utils/volume.go does (400); federation members without `environment.secrets.refresh_token` are
  400; secret values are blanked; a name that exists is 400 (the reference note, create.go:305-312 at the tag);
  input providers other than minio, webdav and rucio are 400, a non-default MinIO input 500, an undefined provider
  500; the MinIO buckets and folders of inputs, outputs and mounts are created; 201. The owner is `cluster_admin`
  (basic auth). Federation members are not contacted.
- Update: 404 for an unknown name, the same checks, the token kept, 204. Delete: 404 or 204, and the service's
  MinIO input buckets are deleted with their files (delete.go `deleteBuckets`). Read and list answer the service as
  Go marshals it: every field without `omitempty`, zero values included.
- Jobs (logs.go): `GET /system/logs/{svc}` lists pages of `job_listing_limit` (JOB_LISTING_LIMIT, 70) jobs in name
  order, as a Kubernetes list with `limit`/`continue` returns them; `next_page` is the token for `?page=`,
  `remaining_jobs` the count after this page; both are left out on the last page.
- `/run` proxies to the service (httputil.ReverseProxy): while the Knative revision starts the proxy answers 502
  with an empty body (`not_ready_runs` such answers before the first success).
- `/system/info` reports, as `serverless_backend.version` on Knative, the Kubernetes version (KnativeBackend.GetInfo).

Processing stands for the MinIO webhook -> OSCAR `/job` -> Kubernetes job -> supervisor upload flow: a watcher
polls the input folders of every service in the S3 server; each new file becomes a job with a log, and the job
writes `<output folder>/<file name>.out` holding `processor(content)` (by default the content itself, which is
what the smoke test's script does). Synchronous calls answer `processor(input)`. No service script is run.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.doubles.local_http import LocalHttpServer, QuietHandler

SCHEMA_DOCUMENT = Path(__file__).resolve().parent.parent / "data" / "oscar-v4.1.2-service.schema.yaml"
MINIO_IN_CLUSTER_ENDPOINT = "http://minio.minio:9000"
KUBERNETES_VERSION = "v1.33.3+k3s1"
SERVICES_NAMESPACE = "oscar-svc"
JOB_LISTING_LIMIT = 70
GIN_NOT_FOUND = "404 page not found"
LOG_LEVELS = ("NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
QUANTITY = re.compile(r"^(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def service_schema_validator() -> Any:
    """A JSON Schema validator of service bodies, from tests/data/oscar-v4.1.2-service.schema.yaml."""
    from jsonschema import Draft202012Validator

    schema = yaml.safe_load(SCHEMA_DOCUMENT.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def go_shape(service: dict[str, Any]) -> dict[str, Any]:
    """The service as gin marshals the Go struct: fields without `omitempty` are always there (zero values)."""
    shaped: dict[str, Any] = {
        "name": "",
        "cluster_id": "",
        "memory": "",
        "cpu": "",
        "total_memory": "",
        "total_cpu": "",
        "enable_gpu": False,
        "enable_sgx": False,
        "image_prefetch": False,
        "synchronous": {"min_scale": 0, "max_scale": 0},
        "log_level": "",
        "image": "",
        "alpine": False,
        "token": "",
        "file_stage_in": False,
        "input": None,
        "output": None,
        "expose": {
            "min_scale": 0,
            "max_scale": 0,
            "cpu_threshold": 0,
            "rewrite_target": False,
            "nodePort": None,
            "default_command": False,
            "set_auth": False,
            "health_path": "",
        },
        "environment": {"variables": None, "secrets": None},
        "annotations": None,
        "vo": "",
        "labels": None,
        "owner": "",
        "interlink_node_name": "",
        "visibility": "",
        "allowed_users": None,
        "isolation_level": "",
        "bucket_list": None,
        "mount": {"storage_provider": "", "path": ""},
        "volume_status": {"enabled": False},
    }
    for key, value in service.items():
        if isinstance(value, dict) and isinstance(shaped.get(key), dict):
            shaped[key] = {**shaped[key], **value}
        else:
            shaped[key] = value
    return shaped


class Refused(Exception):
    """A handler's answer other than success: status and text, as `c.String(status, text)` writes them."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


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
    serverless_backend: bool = True
    not_ready_runs: int = 0
    job_listing_limit: int = JOB_LISTING_LIMIT
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, list[Job]] = field(default_factory=dict)
    requests: list[tuple[str, str, str, Any]] = field(default_factory=list)  # method, path, auth kind, JSON body
    dropped: list[str] = field(default_factory=list)  # keys the Go types do not have, as `<service>: key.path`
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
        self._server: LocalHttpServer | None = None

    # --- lifecycle --------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url

    def start(self) -> FakeOscar:
        self._server = LocalHttpServer(_handler_for(self), self.ssl_context)
        threading.Thread(target=self._watch_inputs, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.stop()

    def fail(self, method: str, path: str, status: int, text: str) -> None:
        """Answer `status` to every request whose method matches and whose path starts with `path`."""
        self.failures[(method, path)] = (status, text)

    @property
    def minio_config(self) -> dict[str, Any]:
        """The manager's own MinIO (types.Config MinIOProvider), as /system/config hands it out."""
        return {
            "endpoint": MINIO_IN_CLUSTER_ENDPOINT,
            "verify": True,
            "access_key": self.s3_access_key,
            "secret_key": self.s3_secret_key,
            "region": "us-east-1",
        }

    # --- create and update, as create.go does them ------------------------------------------------------------
    def decode(self, body: Any) -> dict[str, Any]:
        """ShouldBindJSON: Go's JSON decoding into types.Service plus the `binding` tags."""
        if not isinstance(body, dict):
            raise Refused(400, "The service specification is not valid: json: cannot unmarshal into types.Service")
        service = copy.deepcopy(body)
        errors = sorted(self.validator.iter_errors(service), key=lambda error: list(error.absolute_path))
        for error in errors:
            where = ".".join(str(part) for part in error.absolute_path)
            if error.validator == "additionalProperties":
                container = service
                for part in error.absolute_path:
                    container = container[part]
                known = set(error.schema.get("properties", {}))
                for key in [key for key in container if key not in known]:
                    del container[key]  # Go drops keys its type does not have
                    self.dropped.append(f"{body.get('name')}: {where + '.' if where else ''}{key}")
                continue
            raise Refused(400, f"The service specification is not valid: {where or '(body)'}: {error.message}")
        kserve = service.get("kserve")
        if isinstance(kserve, dict):  # the Kserve type's UnmarshalJSON starts from these values
            service["kserve"] = {"set_auth": True, "cpu": "0.2", "memory": "256Mi", **kserve}
        return service

    def normalise_paths(self, service: dict[str, Any]) -> None:
        for section in ("input", "output"):
            for item in service.get(section) or []:
                path = str(item.get("path") or "").strip(" /")
                if not path:
                    raise Refused(400, f"{section} path cannot be empty")
                kind = _provider(item)[0]
                if kind in ("minio", "s3") and "/" not in path:
                    path = f"{service['name']}/{path}"
                item["path"] = path

    def check_values(self, service: dict[str, Any]) -> None:
        service["memory"] = service.get("memory") or "256Mi"
        service["cpu"] = service.get("cpu") or "0.2"
        service["visibility"] = service.get("visibility") or "private"
        level = str(service.get("log_level") or "").upper()
        service["log_level"] = level if level in LOG_LEVELS else "INFO"
        name = service["name"]
        service["labels"] = {
            **(service.get("labels") or {}),
            "oscar.grycap/user-service": "true",
            "oscar_service": name,
            "applicationId": name,
            "queue": f"root.oscar-queue.{name}",
        }
        service["annotations"] = service.get("annotations") or {}
        providers = service.get("storage_providers") or {}
        providers["minio"] = {
            **(providers.get("minio") or {}),
            "default": {**self.minio_config, "access_key": "hidden", "secret_key": "hidden"},
        }
        service["storage_providers"] = providers
        federation = service.get("federation")
        if isinstance(federation, dict) and not federation.get("topology"):
            federation["topology"] = "none"

    @staticmethod
    def validate_volume(service: dict[str, Any]) -> None:
        volume = service.get("volume")
        if not isinstance(volume, dict):
            return
        for key in ("name", "size", "mount_path", "lifecycle_policy"):
            volume[key] = str(volume.get(key) or "").strip()
        if not volume["mount_path"]:
            raise Refused(400, "The service specification is not valid: volume.mount_path is required")
        if not volume["size"] and not volume["name"]:
            raise Refused(400, "The service specification is not valid: volume.name is required when size is not set")
        if volume["name"] and not DNS_1123_LABEL.match(volume["name"]):
            raise Refused(400, "The service specification is not valid: volume.name must be a DNS-1123 label")
        if volume["size"]:
            if not QUANTITY.match(volume["size"]) or float(re.sub(r"[a-zA-Z]+$", "", volume["size"])) <= 0:
                raise Refused(400, "The service specification is not valid: volume.size must be a positive quantity")
            volume["name"] = volume["name"] or service["name"]
            volume["lifecycle_policy"] = volume["lifecycle_policy"] or "delete"
            if volume["lifecycle_policy"] not in ("delete", "retain"):
                raise Refused(400, "The service specification is not valid: volume.lifecycle_policy: delete or retain")
        elif volume["lifecycle_policy"]:
            raise Refused(400, "The service specification is not valid: volume.lifecycle_policy needs volume.size")
        path = volume["mount_path"]
        if not path.startswith("/"):
            raise Refused(400, "The service specification is not valid: volume.mount_path must be an absolute path")
        if any(path == reserved or path.startswith(reserved + "/") for reserved in ("/oscar/config", "/oscar/bin")):
            raise Refused(400, "The service specification is not valid: volume.mount_path cannot overlap OSCAR paths")
        for key in ("name", "lifecycle_policy"):
            if not volume[key]:
                del volume[key]  # omitempty

    def check_buckets(self, service: dict[str, Any]) -> None:
        """createBuckets' checks (before any bucket is made)."""
        providers = service.get("storage_providers") or {}
        for item in service.get("input") or []:
            kind, ident = _provider(item)
            if kind not in ("minio", "webdav", "rucio"):
                raise Refused(400, "unrecognized input (valid inputs are MinIO and dCache)")
            if kind != "minio":
                continue
            if ident not in (providers.get("minio") or {}):
                raise Refused(500, f'the StorageProvider "{kind}.{ident}" is not defined')
            if ident != "default" and providers["minio"][ident] != self.minio_config:
                endpoint = providers["minio"][ident].get("endpoint")
                raise Refused(500, f'the provided MinIO server "{endpoint}" is not the configured in OSCAR')
        for item in service.get("output") or []:
            kind, ident = _provider(item)
            if ident not in (providers.get(kind) or {}):
                raise Refused(500, f'the StorageProvider "{kind}.{ident}" is not defined')

    def store(self, body: Any, create: bool) -> None:
        service = self.decode(body)
        name = service["name"]
        if not create and name not in self.services:
            raise Refused(404, "")
        service["owner"] = "cluster_admin"  # basic auth: the cluster's admin
        self.normalise_paths(service)
        service["script"] = str(service["script"]).replace("\r\n", "\n").replace("\r", "\n")
        self.check_values(service)
        self.validate_volume(service)
        federation = service.get("federation") or {}
        secret_values = (service.get("environment") or {}).get("secrets") or {}
        if federation.get("members") and not secret_values.get("refresh_token"):
            raise Refused(400, "refresh_token secret is required for federated services")
        if secret_values:  # moved into a Kubernetes Secret; the stored definition keeps only the names
            service["environment"]["secrets"] = dict.fromkeys(secret_values, "")
        service["labels"]["owner_name"] = "oscar"
        if create and name in self.services:
            raise Refused(400, "A service with the provided name already exists")
        self.check_buckets(service)
        service["namespace"] = SERVICES_NAMESPACE
        service["token"] = secrets.token_hex(32) if create else self.services[name]["token"]
        self.services[name] = service
        self._create_buckets(service)

    # --- what a service does ----------------------------------------------------------------------------------
    def _minio_paths(self, service: dict[str, Any], section: str) -> list[tuple[str, str]]:
        paths = []
        items = service.get(section) or []
        if section == "mount":
            items = [service["mount"]] if (service.get("mount") or {}).get("storage_provider") else []
        for item in items:
            if _provider(item) == ("minio", "default"):
                bucket, _, folder = str(item["path"]).strip(" /").partition("/")
                paths.append((bucket, folder))
        return paths

    def _create_buckets(self, service: dict[str, Any]) -> None:
        for section in ("input", "output", "mount"):
            for bucket, folder in self._minio_paths(service, section):
                existing = {entry["Name"] for entry in self.s3.list_buckets().get("Buckets", [])}
                if bucket not in existing:
                    self.s3.create_bucket(Bucket=bucket)
                if folder:
                    self.s3.put_object(Bucket=bucket, Key=f"{folder}/", Body=b"")

    def _delete_input_buckets(self, service: dict[str, Any]) -> None:
        for bucket, _ in self._minio_paths(service, "input"):
            try:
                listing = self.s3.list_objects_v2(Bucket=bucket)
            except Exception:  # noqa: S112 - already gone
                continue
            for item in listing.get("Contents", []):
                self.s3.delete_object(Bucket=bucket, Key=item["Key"])
            self.s3.delete_bucket(Bucket=bucket)

    def new_job(self, service_name: str, log: str) -> Job:
        job = Job(
            name=f"{service_name}-{uuid.uuid4().hex[:12]}",
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
        self.new_job(
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

    def job_page(self, service_name: str, token: str) -> dict[str, Any]:
        """One page of MakeJobsInfoHandler's answer: a Kubernetes list (name order) with limit and continue."""
        ordered = sorted(self.jobs.get(service_name, []), key=lambda job: job.name)
        after = base64.urlsafe_b64decode(token.encode()).decode() if token else ""
        remaining = [job for job in ordered if job.name > after]
        page, rest = remaining[: self.job_listing_limit], remaining[self.job_listing_limit :]
        answer: dict[str, Any] = {
            "jobs": {
                job.name: {
                    "status": job.status,
                    "creation_time": job.created,
                    "start_time": job.created,
                    "finish_time": job.created,
                }
                for job in page
            }
        }
        if rest:
            answer["next_page"] = base64.urlsafe_b64encode(page[-1].name.encode()).decode()
            answer["remaining_jobs"] = len(rest)
        return answer


def _provider(item: dict[str, Any]) -> tuple[str, str]:
    """create.go getProviderInfo: `minio.id` -> ("minio", "id"); a bare name means the default id."""
    kind, _, ident = str(item.get("storage_provider") or "").strip().partition(".")
    return kind.lower(), ident or "default"


def _handler_for(fake: FakeOscar) -> type[QuietHandler]:
    class Handler(QuietHandler):
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
            parts = urlsplit(self.path)
            path, query = parts.path, parse_qs(parts.query)
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
                return self._system(method, path, body, query)
            if method == "POST" and path.startswith("/job/"):
                return self._invoke(path, raw)
            if method == "POST" and path.startswith("/run/") and fake.serverless_backend:
                return self._invoke(path, raw)
            return self._answer(404, GIN_NOT_FOUND)

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
        def _system(self, method: str, path: str, body: Any, query: dict[str, list[str]]) -> None:
            parts = [part for part in path.split("/") if part][1:]  # after "system"
            with fake.lock:
                if parts == ["info"] and method == "GET":
                    info: dict[str, Any] = {
                        "version": "v4.1.2",
                        "git_commit": "fake",
                        "architecture": "amd64",
                        "kubernetes_version": KUBERNETES_VERSION,
                    }
                    if fake.serverless_backend:
                        info["serverless_backend"] = {"name": "Knative", "version": KUBERNETES_VERSION}
                    return self._json(200, info)
                if parts == ["config"] and method == "GET":
                    return self._json(
                        200,
                        {
                            "config": {"name": "oscar", "namespace": "oscar", "services_namespace": SERVICES_NAMESPACE},
                            "minio_provider": fake.minio_config,
                        },
                    )
                if parts == ["services"]:
                    return self._services(method, body)
                if len(parts) == 2 and parts[0] == "services":
                    return self._service(method, parts[1])
                if parts and parts[0] == "logs" and method == "GET":
                    return self._logs(parts[1:], (query.get("page") or [""])[0])
            return self._answer(404, GIN_NOT_FOUND)

        def _services(self, method: str, body: Any) -> None:
            if method == "GET":
                return self._json(200, [go_shape(copy.deepcopy(service)) for service in fake.services.values()])
            if method not in ("POST", "PUT"):
                return self._answer(405)
            try:
                fake.store(body, create=method == "POST")
            except Refused as refused:
                return self._answer(refused.status, refused.text)
            return self._answer(201 if method == "POST" else 204)

        def _service(self, method: str, name: str) -> None:
            if name not in fake.services:
                return self._answer(404)
            if method == "GET":
                return self._json(200, go_shape(copy.deepcopy(fake.services[name])))
            if method == "DELETE":
                service = fake.services.pop(name)
                fake.jobs.pop(name, None)
                fake._delete_input_buckets(service)
                return self._answer(204)
            return self._answer(405)

        def _logs(self, parts: list[str], page: str) -> None:
            if not parts or parts[0] not in fake.services:
                return self._answer(404)
            if len(parts) == 1:
                return self._json(200, fake.job_page(parts[0], page))
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
            token = self._bearer() if self._auth_kind() == "bearer" else ""
            allowed = token == service["token"] if len(token) == 64 else token in fake.oidc_tokens
            if not allowed:
                return self._answer(401)
            try:
                data = base64.b64decode(raw, validate=True)
            except ValueError:
                data = raw
            if kind == "run":  # Knative answers directly; no Kubernetes job, so nothing under /system/logs
                with fake.lock:
                    starting = fake.not_ready_runs > 0
                    fake.not_ready_runs -= 1 if starting else 0
                if starting:
                    return self._answer(502)
                return self._answer(200, base64.b64encode(fake.processor(data)))
            with fake.lock:
                fake._process(service, f"job/{name}/event", data)
            return self._answer(201)

    return Handler
