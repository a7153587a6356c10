"""A client for the OSCAR manager's REST API (v4), on httpx.

Endpoints (upstream `main.go`; published OpenAPI document `docs/api.yaml`):
    GET /health                                   no auth, answers "Ok"
    GET /system/info, GET /system/config          basic auth or OIDC bearer token
    POST|PUT|GET /system/services, GET|DELETE /system/services/{name}
    GET /system/logs/{name}, GET /system/logs/{name}/{job}
    POST /run/{name} (sync, Knative), POST /job/{name} (async): the service's own token as bearer token

Payloads of /run and /job are base64-encoded, as upstream's CLI sends them; a /run answer is decoded when it is
base64 and passed through otherwise (the supervisor answers either way, depending on the script's output).

Only connection failures (nothing reached the server) are retried: a request the server may have acted on is
never sent twice. Every error says what was asked, and what the server answered.
"""

from __future__ import annotations

import base64
import binascii
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from oscar_deploy.state.endpoints import OscarAccess
from oscar_deploy.support.errors import OperationError

DEFAULT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
RETRY_DELAY = 1.0
ANSWER_EXCERPT = 300


class OscarApiError(OperationError):
    """The server answered with an error status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServiceNotFound(OscarApiError):
    pass


@dataclass(frozen=True)
class JobInfo:
    name: str
    status: str
    creation_time: str | None
    start_time: str | None
    finish_time: str | None


def ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """System trust store plus the cluster's own CA, when it has one."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def decode_run_output(payload: bytes) -> bytes:
    """The supervisor base64-encodes binary results; text results come as they are."""
    stripped = payload.strip()
    if not stripped:
        return payload
    try:
        return base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        return payload


class OscarClient:
    def __init__(
        self,
        access: OscarAccess,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        retry_delay: float = RETRY_DELAY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.access = access
        self.retries = retries
        self.retry_delay = retry_delay
        self._sleep = sleep
        headers = {"User-Agent": "oscar-deploy"}
        auth: httpx.Auth | None = None
        if access.token:
            headers["Authorization"] = f"Bearer {access.token}"
        elif access.user is not None and access.password is not None:
            auth = httpx.BasicAuth(access.user, access.password)
        self._http = httpx.Client(
            base_url=access.url,
            auth=auth,
            headers=headers,
            verify=ssl_context(access.ca_file) if access.url.startswith("https://") else True,
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OscarClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- transport ----------------------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        expected: tuple[int, ...] = (200,),
        not_found: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        url = f"{self.access.url}{path}"
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout))
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if _tls_failure(exc):
                    raise OperationError(
                        f"{method} {url}: TLS certificate not trusted ({_reason(exc)}); for a self-signed cluster "
                        "pass its CA with --ca-file (or ca_file in endpoints.yaml)"
                    ) from None
                attempt += 1
                if attempt > self.retries:
                    raise OperationError(
                        f"{method} {url}: cannot connect after {attempt} attempts ({_reason(exc)}); check that the "
                        "address is right and the cluster's gateway is up"
                    ) from None
                self._sleep(self.retry_delay * attempt)
            except httpx.TimeoutException as exc:
                raise OperationError(
                    f"{method} {url}: no answer in time ({type(exc).__name__}); the server may still be working"
                ) from None
            except httpx.TransportError as exc:
                raise OperationError(f"{method} {url}: connection failed ({_reason(exc)})") from None
        if response.status_code in expected:
            return response
        answer = response.text.strip()[:ANSWER_EXCERPT] or response.reason_phrase
        status = f"{response.status_code} {response.reason_phrase}"
        if response.status_code == 401:
            if "Authorization" in (kwargs.get("headers") or {}):
                how = "the service's own token"
            else:
                how = "bearer token" if self.access.token else f"user {self.access.user!r}"
            raise OscarApiError(
                f"{method} {url}: the server answered {status}: credentials rejected ({how}); check the password "
                "(state secret oscar_password, or OSCAR_PASSWORD) or the token",
                response.status_code,
            )
        if response.status_code == 404 and not_found is not None:
            raise ServiceNotFound(f"{method} {url}: {not_found} (the server answered {status})", 404)
        raise OscarApiError(f"{method} {url}: the server answered {status}: {answer}", response.status_code)

    # --- system ---------------------------------------------------------------------------------------------
    def health(self) -> str:
        return self._request("GET", "/health").text.strip()

    def info(self) -> dict[str, Any]:
        return _json_object(self._request("GET", "/system/info"), "/system/info")

    def config(self) -> dict[str, Any]:
        return _json_object(self._request("GET", "/system/config"), "/system/config")

    # --- services -------------------------------------------------------------------------------------------
    def list_services(self) -> list[dict[str, Any]]:
        data = self._request("GET", "/system/services").json()
        if not isinstance(data, list):
            raise OperationError(f"GET {self.access.url}/system/services: expected a JSON list, got {data!r:.100}")
        return [item for item in data if isinstance(item, dict)]

    def get_service(self, name: str) -> dict[str, Any]:
        response = self._request(
            "GET", f"/system/services/{name}", not_found=f"no service {name!r}; `oscar-deploy service list` shows them"
        )
        return _json_object(response, f"/system/services/{name}")

    def find_service(self, name: str) -> dict[str, Any] | None:
        try:
            return self.get_service(name)
        except ServiceNotFound:
            return None

    def create_service(self, body: dict[str, Any]) -> None:
        self._request("POST", "/system/services", json=body, expected=(200, 201))

    def update_service(self, body: dict[str, Any]) -> None:
        self._request(
            "PUT",
            "/system/services",
            json=body,
            expected=(200, 204),
            not_found=f"no service {body.get('name')!r} to update",
        )

    def apply_service(self, body: dict[str, Any]) -> str:
        """Create the service, or update it when it exists and differs: "created", "updated" or "unchanged"."""
        current = self.find_service(str(body["name"]))
        if current is None:
            self.create_service(body)
            return "created"
        if _same_definition(body, current):
            return "unchanged"
        self.update_service(body)
        return "updated"

    def delete_service(self, name: str) -> None:
        self._request(
            "DELETE", f"/system/services/{name}", expected=(200, 204), not_found=f"no service {name!r} to delete"
        )

    # --- invocations ----------------------------------------------------------------------------------------
    def _service_token(self, name: str) -> str:
        token = self.get_service(name).get("token")
        if not isinstance(token, str) or not token:
            raise OperationError(f"service {name!r}: the server did not hand out its invocation token")
        return token

    def run(self, name: str, data: bytes, timeout: float = 300.0, decode: bool = True) -> bytes:
        """Invoke synchronously (`POST /run/{name}`) and return the result."""
        response = self._request(
            "POST",
            f"/run/{name}",
            content=base64.b64encode(data),
            headers={"Authorization": f"Bearer {self._service_token(name)}"},
            auth=None,  # the service's token replaces the client's own credentials
            not_found=f"no service {name!r}",
            timeout=timeout,
        )
        return decode_run_output(response.content) if decode else response.content

    def submit_job(self, name: str, data: bytes) -> None:
        """Invoke asynchronously (`POST /job/{name}`): OSCAR starts a Kubernetes job."""
        self._request(
            "POST",
            f"/job/{name}",
            content=base64.b64encode(data),
            headers={"Authorization": f"Bearer {self._service_token(name)}"},
            auth=None,
            expected=(200, 201),
            not_found=f"no service {name!r}",
        )

    # --- logs -------------------------------------------------------------------------------------------------
    def list_jobs(self, name: str) -> list[JobInfo]:
        """Jobs of a service, oldest first."""
        data = self._request("GET", f"/system/logs/{name}", not_found=f"no service {name!r}").json()
        if not isinstance(data, dict):
            raise OperationError(f"GET {self.access.url}/system/logs/{name}: expected a JSON object")
        # v4 wraps the jobs in {"jobs": {...}, "next_page": ...}; v3 answered the mapping itself.
        jobs = data["jobs"] if isinstance(data.get("jobs"), dict) else data
        found = [
            JobInfo(
                name=str(job_name),
                status=str(info.get("status", "")),
                creation_time=info.get("creation_time"),
                start_time=info.get("start_time"),
                finish_time=info.get("finish_time"),
            )
            for job_name, info in (jobs or {}).items()
            if isinstance(info, dict)
        ]
        return sorted(found, key=lambda job: (job.creation_time or "", job.name))

    def job_log(self, name: str, job: str) -> str:
        return self._request("GET", f"/system/logs/{name}/{job}", not_found=f"no job {job!r} of service {name!r}").text


# --- helpers -----------------------------------------------------------------------------------------------


def _json_object(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise OperationError(f"{path}: expected JSON, got {response.text[:100]!r}") from None
    if not isinstance(data, dict):
        raise OperationError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _tls_failure(exc: Exception) -> bool:
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text


# Keys whose stored value the server rewrites or hides, so they can never compare equal.
_UNCOMPARABLE = ("storage_providers", "clusters")


def _same_definition(wanted: dict[str, Any], current: dict[str, Any]) -> bool:
    """True when every key we would send already has that value on the server (secrets never compare)."""
    if any(key in wanted for key in _UNCOMPARABLE):
        return False
    environment = wanted.get("environment") or {}
    if environment.get("secrets"):
        return False  # the server moves secrets into a Kubernetes Secret and does not echo them
    return all(_contains(value, current.get(key)) for key, value in wanted.items())


def _contains(wanted: Any, current: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(_contains(value, current.get(key)) for key, value in wanted.items())
    if isinstance(wanted, list):
        return (
            isinstance(current, list)
            and len(wanted) == len(current)
            and all(_contains(item, other) for item, other in zip(wanted, current, strict=True))
        )
    return bool(wanted == current)
