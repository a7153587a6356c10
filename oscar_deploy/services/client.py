"""A client for the OSCAR manager's REST API (v4.1.2), on httpx.

Routes and their authentication (upstream `main.go`, handlers in `pkg/handlers/`):
    GET /health                                   no auth, answers "Ok"
    GET /system/info, GET /system/config          basic auth (or an OIDC bearer token when OIDC is enabled)
    POST|PUT|GET /system/services, GET|DELETE /system/services/{name}
    GET /system/logs/{name}[?page=TOKEN], GET /system/logs/{name}/{job}
    POST /run/{name} (sync; only when the manager has a serverless backend), POST /job/{name} (async):
                                                  a bearer token only, the service's own 64-character token

What the handlers answer, and how this client reads it:
- create: 201; a name that exists already: 400 (409 from older releases), reported as `ServiceExists`;
  update: 204 (200 when federation members could not all be updated); delete: 204, and OSCAR deletes the
  service's input buckets itself (delete.go `deleteBuckets`).
- job listing: pages of JOB_LISTING_LIMIT (70) jobs in name order (a Kubernetes list with `limit` and
  `continue`); `next_page` is the token for the next page (logs.go `MakeJobsInfoHandler`); every page is read.
- `/run` answers 404 with gin's "404 page not found" when the route does not exist, that is when the manager runs
  without a serverless backend; a 502 comes from the manager's reverse proxy while the Knative revision is not
  ready yet, and is retried for a bounded time.
- `/system/info`'s `serverless_backend.version` on Knative is the Kubernetes API server's version
  (`KnativeBackend.GetInfo` asks the discovery client), not Knative's.

Payloads of /run and /job are base64-encoded, as upstream's CLI sends them; a /run answer is decoded when it is
base64 and passed through otherwise (the supervisor answers either way, depending on the script's output).

Only connection failures (nothing reached the server) and the gateway's 502 for a revision that is starting
are retried: any other request the server may have acted on is never sent twice. Every error says what was
asked, and what the server answered.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from oscar_deploy.services.stored import apply_create_defaults, differences, same_service, with_secrets_digest
from oscar_deploy.state.endpoints import OscarAccess
from oscar_deploy.support.errors import OperationError, SharedFailure, UserInputError, shown

DEFAULT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
RETRY_DELAY = 1.0
ANSWER_EXCERPT = 300
# How long /run keeps retrying a 502 (the Knative revision is starting), and the pauses in between.
NOT_READY_WAIT = 120.0
NOT_READY_FIRST_PAUSE = 1.0
NOT_READY_MAX_PAUSE = 10.0
# A bound on job-listing pages (70 jobs each upstream), so a server that keeps answering a token cannot loop us.
MAX_JOB_PAGES = 1000
GIN_NO_ROUTE = "404 page not found"


class OscarApiError(OperationError):
    """The server answered with an error status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServiceNotFound(OscarApiError):
    pass


class ServiceExists(OscarApiError):
    """A create for a name that exists already (400 from OSCAR v4.1.2)."""


class CredentialsRejected(OscarApiError, SharedFailure):
    """A 401 to the user's own credentials (basic auth or bearer token)."""


class Unreachable(SharedFailure):
    """Nothing reached the server (no connection after the retries, or its TLS certificate is not trusted): every
    other request to it would fail the same way."""


class NoServerlessBackend(OperationError):
    """The manager has no /run route: it runs without a serverless backend (main.go registers /run only then)."""


@dataclass(frozen=True)
class ApplyOutcome:
    """What `apply_service` did: "created", "updated" or "unchanged", and for an update the keys that changed."""

    action: str
    changed: tuple[str, ...] = ()


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.access = access
        self.retries = retries
        self.retry_delay = retry_delay
        self._sleep = sleep
        self._clock = clock
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
                    raise Unreachable(
                        f"{method} {url}: TLS certificate not trusted ({_reason(exc)}); for a self-signed cluster "
                        "pass its CA with --ca-file (or ca_file in endpoints.yaml)"
                    ) from None
                attempt += 1
                if attempt > self.retries:
                    raise Unreachable(
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
                # The service's token, read from the server just before: the service was made again meanwhile.
                raise OscarApiError(
                    f"{method} {url}: the server answered {status}: it rejected the service's own token, read from "
                    "it a moment before; the service was probably deleted or made again meanwhile, so run the command "
                    "again",
                    response.status_code,
                )
            how = "bearer token" if self.access.token else f"user {self.access.user!r}"
            raise CredentialsRejected(
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
        return _json_object(self._request("GET", "/system/info"))

    def config(self) -> dict[str, Any]:
        return _json_object(self._request("GET", "/system/config"))

    # --- services -------------------------------------------------------------------------------------------
    def list_services(self) -> list[dict[str, Any]]:
        response = self._request("GET", "/system/services")
        data = _json(response)
        if not isinstance(data, list):
            raise OperationError(f"{_asked(response)}: expected a JSON list, got {type(data).__name__}")
        return [item for item in data if isinstance(item, dict)]

    def get_service(self, name: str) -> dict[str, Any]:
        response = self._request(
            "GET",
            f"/system/services/{checked_name(name)}",
            not_found=f"no service {name!r}; `oscar-deploy service list` shows them",
        )
        return _json_object(response)

    def find_service(self, name: str) -> dict[str, Any] | None:
        try:
            return self.get_service(name)
        except ServiceNotFound:
            return None

    def create_service(self, body: dict[str, Any]) -> None:
        try:
            self._request("POST", "/system/services", json=body, expected=(200, 201))
        except OscarApiError as exc:
            if exc.status_code in (400, 409) and "already exists" in str(exc):
                raise ServiceExists(
                    f"{exc}; `oscar-deploy service apply` updates an existing service", exc.status_code
                ) from None
            raise

    def update_service(self, body: dict[str, Any]) -> None:
        self._request(
            "PUT",
            "/system/services",
            json=body,
            expected=(200, 204),
            not_found=f"no service {body.get('name')!r} to update",
        )

    def digest_key(self) -> str:
        """The key of the secrets digest: the credential this client authenticates with (never sent in a body)."""
        return self.access.token or self.access.password or ""

    def apply_service(self, body: dict[str, Any]) -> ApplyOutcome:
        """Create the service, or update it when it exists and differs from what the server stored."""
        wanted = with_secrets_digest(apply_create_defaults(copy.deepcopy(body)), self.digest_key())
        current = self.find_service(str(body["name"]))
        if current is None:
            self.create_service(wanted)
            return ApplyOutcome("created")
        if same_service(wanted, current):
            return ApplyOutcome("unchanged")
        self.update_service(wanted)
        return ApplyOutcome("updated", tuple(differences(wanted, current)))

    def delete_service(self, name: str) -> None:
        self._request(
            "DELETE",
            f"/system/services/{checked_name(name)}",
            expected=(200, 204),
            not_found=f"no service {name!r} to delete",
        )

    # --- invocations ----------------------------------------------------------------------------------------
    def _service_token(self, name: str) -> str:
        token = self.get_service(name).get("token")
        if not isinstance(token, str) or not token:
            raise OperationError(f"service {name!r}: the server did not hand out its invocation token")
        return token

    def run(
        self, name: str, data: bytes, timeout: float = 300.0, decode: bool = True, ready_wait: float = NOT_READY_WAIT
    ) -> bytes:
        """Invoke synchronously (`POST /run/{name}`) and return the result.

        A 502 means the gateway could not reach the service yet (its Knative revision is starting): the call is
        made again, with growing pauses, for at most `ready_wait` seconds.
        """
        token = self._service_token(name)
        url = f"{self.access.url}/run/{checked_name(name)}"
        deadline = self._clock() + ready_wait
        pause = NOT_READY_FIRST_PAUSE
        waited_from = self._clock()
        while True:
            response = self._request(
                "POST",
                f"/run/{checked_name(name)}",
                content=base64.b64encode(data),
                headers={"Authorization": f"Bearer {token}"},
                auth=None,  # the service's token replaces the client's own credentials
                expected=(200, 404, 502),
                timeout=timeout,
            )
            if response.status_code == 200:
                return decode_run_output(response.content) if decode else response.content
            if response.status_code == 404:
                if GIN_NO_ROUTE in response.text:
                    raise NoServerlessBackend(
                        f"POST {url}: the server has no /run route: OSCAR runs without a serverless backend "
                        "(main.go registers /run only with SERVERLESS_BACKEND set, knative here); invoke it with "
                        "--async (POST /job), or set SERVERLESS_BACKEND=knative on the manager"
                    )
                raise ServiceNotFound(f"POST {url}: no service {name!r} (the server answered 404 Not Found)", 404)
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise OperationError(
                    f"POST {url}: the service is not ready yet: the gateway answered 502 Bad Gateway for "
                    f"{self._clock() - waited_from:.0f} s while its Knative revision starts; try again in a "
                    f"minute, or look at `kubectl -n oscar-svc get ksvc {name}`"
                )
            self._sleep(min(pause, remaining))
            pause = min(pause * 2, NOT_READY_MAX_PAUSE)

    def submit_job(self, name: str, data: bytes) -> None:
        """Invoke asynchronously (`POST /job/{name}`): OSCAR starts a Kubernetes job."""
        self._request(
            "POST",
            f"/job/{checked_name(name)}",
            content=base64.b64encode(data),
            headers={"Authorization": f"Bearer {self._service_token(name)}"},
            auth=None,
            expected=(200, 201),
            not_found=f"no service {name!r}",
        )

    # --- logs -------------------------------------------------------------------------------------------------
    def list_jobs(self, name: str) -> list[JobInfo]:
        """Jobs of a service, oldest first, from every page (upstream pages by 70 with a continue token)."""
        found: list[JobInfo] = []
        token = ""
        seen: set[str] = set()
        for _ in range(MAX_JOB_PAGES):
            params = {"page": token} if token else None
            response = self._request(
                "GET", f"/system/logs/{checked_name(name)}", params=params, not_found=f"no service {name!r}"
            )
            data = _json_object(response)
            # v4 wraps the jobs in {"jobs": {...}, "next_page": ..., "remaining_jobs": ...}; v3 answered the mapping.
            jobs = data["jobs"] if isinstance(data.get("jobs"), dict) else ({} if "jobs" in data else data)
            found += [
                JobInfo(
                    name=str(job_name),
                    status=str(info.get("status", "")),
                    creation_time=info.get("creation_time"),
                    start_time=info.get("start_time"),
                    finish_time=info.get("finish_time"),
                )
                for job_name, info in jobs.items()
                if isinstance(info, dict)
            ]
            token = str(data.get("next_page") or "")
            if not token:
                return sorted(found, key=lambda job: (job.creation_time or "", job.name))
            if token in seen:
                raise OperationError(
                    f"GET {self.access.url}/system/logs/{name}: the server handed out the same page token twice; "
                    f"{len(found)} jobs read so far"
                )
            seen.add(token)
        raise OperationError(
            f"GET {self.access.url}/system/logs/{name}: more than {MAX_JOB_PAGES} pages of jobs; delete finished "
            "jobs (DELETE /system/logs/NAME) and try again"
        )

    def job_log(self, name: str, job: str) -> str:
        return self._request(
            "GET",
            f"/system/logs/{checked_name(name)}/{checked_name(job, 'job')}",
            not_found=f"no job {job!r} of service {name!r}",
        ).text


# --- helpers -----------------------------------------------------------------------------------------------


# A service name (pkg/types/service.go: at most 39 characters, DNS-safe) or a Kubernetes job name (a DNS label).
NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def checked_name(name: str, what: str = "service") -> str:
    """`name` once it is a service (or job) name, so it can be put in a URL path: `../../health` or '' never is."""
    if not NAME.fullmatch(name):
        raise UserInputError(
            f"{what} {shown(name)}: not a {what} name (lowercase letters, digits and '-', not at either end)"
        )
    return name


def _asked(response: httpx.Response) -> str:
    """`METHOD URL` of the request `response` answers, for a message (without the query: a page token)."""
    return f"{response.request.method} {str(response.request.url).split('?', 1)[0]}"


def _json(response: httpx.Response) -> Any:
    """The JSON of an answer, or a one-line error: a 200 with an HTML page comes from the web UI or a login proxy
    in front of the API, not from the API."""
    try:
        return response.json()
    except ValueError:
        raise OperationError(
            f"{_asked(response)}: the server answered {response.status_code} {response.reason_phrase}, but not "
            f"with JSON ({response.text.strip()[:100]!r}); check that the address is the OSCAR API itself, not its "
            "web UI or a login page in front of it"
        ) from None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    data = _json(response)
    if not isinstance(data, dict):
        raise OperationError(f"{_asked(response)}: expected a JSON object, got {type(data).__name__}")
    return data


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _tls_failure(exc: Exception) -> bool:
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text
