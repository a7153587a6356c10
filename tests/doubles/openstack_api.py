"""TEST DOUBLE: a small OpenStack cloud on 127.0.0.1 for the preflight tests.

It stands for the Keystone, Nova, Glance and Neutron endpoints of a real cloud, and answers only the calls that
openstacksdk makes for oscar-deploy's preflight, in the shapes of the upstream API references:

* Keystone v3 (https://docs.openstack.org/api-ref/identity/v3/): `POST /v3/auth/tokens` (password and token
  methods, token in the X-Subject-Token header, catalog in the body), and the federated login EGI FedCloud uses
  with `auth_type: v3oidcaccesstoken` (https://docs.openstack.org/api-ref/identity/v3-ext/, "OS-FEDERATION":
  `POST /v3/OS-FEDERATION/identity_providers/{idp}/protocols/{protocol}/auth` with the OIDC access token as a
  Bearer token; a token the identity provider no longer accepts gets 401);
* Nova v2.1 (https://docs.openstack.org/api-ref/compute/): version documents, `GET /flavors/{id}`,
  `GET /flavors/detail`, `GET /limits`, `GET /servers/detail`, `GET /servers/{id}` and the server actions
  `os-stop` / `os-start` / `shelve` / `unshelve` (`POST /servers/{id}/action`, answered 202 with no body; the
  server is SHUTOFF / ACTIVE / SHELVED_OFFLOADED right away, where a real cloud takes a while and reports the
  change in `status` (a shelve ends offloaded at once, as with Nova's default shelved_offload_time of 0); 409
  Conflict from a state the action cannot start from or while a task runs (`OS-EXT-STS:task_state`));
* Glance v2 (https://docs.openstack.org/api-ref/image/v2/): version documents, `GET /v2/images/{id}`,
  `GET /v2/images?name=`;
* Neutron v2.0 (https://docs.openstack.org/api-ref/network/v2/): version documents, `GET /v2.0/networks/{id}`,
  `GET /v2.0/networks?name=`, `GET /v2.0/quotas/{project_id}/details`.

Everything else answers 404. A test can make a request fail as a real cloud's does (a revoked token's 401, a policy's
403, a server deleted meanwhile, a 503 of an overloaded API): `failures` holds, per `METHOD /path`, the statuses
the next such requests get instead of their answer, one each (None: answered as usual), with the fault body of
the Compute API reference ({"forbidden": {"code": 403, "message": ...}}). The cloud's content (images, flavors,
networks, quotas, valid OIDC tokens) is plain data the test sets; each request is recorded. Nothing here ships in
the wheel.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.doubles.local_http import LocalHttpServer, QuietHandler

# The fault names of the Compute API's error bodies by status; others are computeFault.
FAULTS = {400: "badRequest", 401: "error", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}
PROJECT_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
USER_ID = "9a8b7c6d5e4f30211203f4e5d6c7b8a9"
FEDERATION_AUTH = re.compile(r"^/identity/v3/OS-FEDERATION/identity_providers/([^/]+)/protocols/([^/]+)/auth$")


def unlimited_compute_limits() -> dict[str, int]:
    return {
        "maxTotalInstances": 10,
        "totalInstancesUsed": 0,
        "maxTotalCores": 20,
        "totalCoresUsed": 0,
        "maxTotalRAMSize": 51200,
        "totalRAMUsed": 0,
    }


def network_quota(floating_ips: int = 5, security_groups: int = 10) -> dict[str, dict[str, int]]:
    return {
        "floatingip": {"limit": floating_ips, "used": 0, "reserved": 0},
        "security_group": {"limit": security_groups, "used": 1, "reserved": 0},
    }


@dataclass
class FakeOpenStack:
    """The cloud's content; change the fields between requests to change what the API answers."""

    images: list[dict[str, Any]] = field(default_factory=list)
    flavors: list[dict[str, Any]] = field(default_factory=list)
    networks: list[dict[str, Any]] = field(default_factory=list)
    compute_limits: dict[str, int] = field(default_factory=unlimited_compute_limits)
    quota: dict[str, dict[str, int]] = field(default_factory=network_quota)
    # OIDC access tokens the identity provider still accepts, by identity provider and protocol.
    access_tokens: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    # Servers by id: {"id", "name", "status"}, optionally "metadata", "created" (else the time the double started)
    # and "OS-EXT-STS:task_state"; actions change `status`; each action's path and body is recorded in `actions`.
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    actions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # `METHOD /path` -> the statuses its next requests get instead of their answer (None: the usual answer).
    failures: dict[str, list[int | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._tokens: dict[str, bool] = {}  # issued token -> scoped
        self._started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._lock = threading.Lock()
        cloud = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                cloud._handle(self, "GET")

            def do_POST(self) -> None:
                cloud._handle(self, "POST")

        self.server = LocalHttpServer(Handler)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity/v3"

    def stop(self) -> None:
        self.server.stop()

    # --- dispatch -----------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path.rstrip("/") or "/"
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append(f"{method} {handler.path}")
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}") if length else {}
        with self._lock:
            scripted = self.failures.get(f"{method} {path}") or [None]
            status = scripted.pop(0)
        if status is not None:
            fault = FAULTS.get(status, "computeFault")
            return self._send(handler, status, {fault: {"code": status, "message": HTTPStatus(status).phrase}})
        if method == "POST" and path == "/identity/v3/auth/tokens":
            return self._issue_token(handler, body)
        federation = FEDERATION_AUTH.match(path)
        if method == "POST" and federation:
            return self._federated_login(handler, federation.group(1), federation.group(2))
        if path in ("/identity", "/identity/v3"):
            return self._send(handler, 200, self._identity_versions(path))
        service, _, rest = path.lstrip("/").partition("/")
        if method == "POST" and service == "compute":
            with self._lock:
                self.actions.append((rest, body))
            return self._server_action(handler, rest, body)
        if service not in ("compute", "image", "network") or method != "GET":
            return self._not_found(handler)
        if rest in ("", "v2.1", "v2", "v2.0"):
            return self._send(handler, 200, self._versions(service, rest))
        if handler.headers.get("X-Auth-Token") not in {token for token, scoped in self._tokens.items() if scoped}:
            return self._send(handler, 401, {"error": {"code": 401, "title": "Unauthorized", "message": "Token"}})
        answer = {"compute": self._compute, "image": self._image, "network": self._network}[service](rest, query)
        if answer is None:
            return self._not_found(handler)
        self._send(handler, 200, answer)

    # --- identity -----------------------------------------------------------------------------------------

    def _identity_versions(self, path: str) -> dict[str, Any]:
        version = {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{self.auth_url}/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
        }
        return {"version": version} if path.endswith("v3") else {"versions": {"values": [version]}}

    def _federated_login(self, handler: BaseHTTPRequestHandler, provider: str, protocol: str) -> None:
        bearer = handler.headers.get("Authorization", "")
        token = bearer.removeprefix("Bearer ")
        if not bearer.startswith("Bearer ") or token not in self.access_tokens.get((provider, protocol), set()):
            # What Keystone's OIDC module answers for an access token the identity provider rejects.
            return self._send(
                handler,
                401,
                {"error": {"code": 401, "title": "Unauthorized", "message": "The request requires authentication."}},
            )
        self._send_token(handler, scoped=False, methods=["mapped"])

    def _issue_token(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        identity = body.get("auth", {}).get("identity", {})
        methods = identity.get("methods", [])
        accepted = False
        if "password" in methods:
            user = identity.get("password", {}).get("user", {})
            accepted = self.passwords.get(user.get("name", "")) == user.get("password")
        elif "token" in methods:
            accepted = identity.get("token", {}).get("id") in self._tokens
        if not accepted:
            return self._send(
                handler,
                401,
                {"error": {"code": 401, "title": "Unauthorized", "message": "The request requires authentication."}},
            )
        scope = body.get("auth", {}).get("scope", {}).get("project")
        self._send_token(handler, scoped=scope is not None, methods=methods)

    def _send_token(self, handler: BaseHTTPRequestHandler, *, scoped: bool, methods: list[str]) -> None:
        token_id = secrets.token_hex(16)
        with self._lock:
            self._tokens[token_id] = scoped
        now = datetime.now(UTC)
        token: dict[str, Any] = {
            "methods": methods,
            "user": {"id": USER_ID, "name": "researcher", "domain": {"id": "default", "name": "Default"}},
            "issued_at": now.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "expires_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        }
        if scoped:
            token["project"] = {
                "id": PROJECT_ID,
                "name": "vo.example.eu",
                "domain": {"id": "default", "name": "Default"},
            }
            token["roles"] = [{"id": "r1", "name": "member"}]
            token["catalog"] = [
                self._catalog_entry("compute", "nova", "compute/v2.1"),
                self._catalog_entry("image", "glance", "image"),
                self._catalog_entry("network", "neutron", "network"),
                self._catalog_entry("identity", "keystone", "identity/v3"),
            ]
        self._send(handler, 201, {"token": token}, headers={"X-Subject-Token": token_id})

    def _catalog_entry(self, kind: str, name: str, path: str) -> dict[str, Any]:
        url = f"{self.url}/{path}"
        return {
            "type": kind,
            "name": name,
            "id": f"{name}-service",
            "endpoints": [
                {
                    "id": f"{name}-{interface}",
                    "interface": interface,
                    "region": "RegionOne",
                    "region_id": "RegionOne",
                    "url": url,
                }
                for interface in ("public", "internal")
            ],
        }

    # --- compute, image, network ------------------------------------------------------------------------------

    def _versions(self, service: str, rest: str) -> dict[str, Any]:
        ids = {"compute": ("v2.1", "compute/v2.1"), "image": ("v2.0", "image/v2"), "network": ("v2.0", "network/v2.0")}
        version_id, path = ids[service]
        version: dict[str, Any] = {
            "id": version_id,
            "status": "CURRENT",
            "links": [{"rel": "self", "href": f"{self.url}/{path}/"}],
        }
        if service == "compute":
            version.update(version="2.96", min_version="2.1", updated="2013-07-23T11:33:21Z")
        return {"version": version} if rest else {"versions": [version]}

    def _compute(self, rest: str, query: dict[str, str]) -> dict[str, Any] | None:
        path = rest.removeprefix("v2.1/")
        if path == "limits":
            return {"limits": {"absolute": dict(self.compute_limits), "rate": []}}
        if path == "flavors/detail":
            return {"flavors": [self._flavor(flavor) for flavor in self.flavors]}
        if path.startswith("flavors/"):
            wanted = path.removeprefix("flavors/")
            for flavor in self.flavors:
                if flavor["id"] == wanted:
                    return {"flavor": self._flavor(flavor)}
        if path == "servers/detail":
            return {"servers": [self._server(server) for server in self.servers.values()]}
        if path.startswith("servers/") and path.removeprefix("servers/") in self.servers:
            return {"server": self._server(self.servers[path.removeprefix("servers/")])}
        return None

    def _server(self, server: dict[str, Any]) -> dict[str, Any]:
        return {
            "tenant_id": PROJECT_ID,
            "user_id": USER_ID,
            "links": [],
            "metadata": {},
            "addresses": {},
            "OS-EXT-STS:task_state": None,
            "OS-EXT-STS:vm_state": str(server["status"]).lower(),
            "created": self._started,
            **server,
        }

    def _server_action(self, handler: BaseHTTPRequestHandler, rest: str, body: dict[str, Any]) -> None:
        if handler.headers.get("X-Auth-Token") not in {token for token, scoped in self._tokens.items() if scoped}:
            return self._send(handler, 401, {"error": {"code": 401, "title": "Unauthorized", "message": "Token"}})
        match = re.fullmatch(r"v2\.1/servers/([^/]+)/action", rest)
        server = self.servers.get(match.group(1)) if match else None
        if server is None:
            return self._not_found(handler)
        statuses = {
            "os-stop": (("ACTIVE",), "SHUTOFF"),
            "os-start": (("SHUTOFF",), "ACTIVE"),
            "shelve": (("ACTIVE", "SHUTOFF"), "SHELVED_OFFLOADED"),
            "unshelve": (("SHELVED", "SHELVED_OFFLOADED"), "ACTIVE"),
        }
        action = next(iter(body), "")
        if action not in statuses:
            return self._send(handler, 400, {"badRequest": {"code": 400, "message": f"unknown action {action}"}})
        before, after = statuses[action]
        if server["status"] not in before or server.get("OS-EXT-STS:task_state"):
            # Nova's answer to stopping a stopped server (or starting a running one).
            message = f"Cannot '{action.removeprefix('os-')}' instance {server['id']} while it is in vm_state"
            return self._send(handler, 409, {"conflictingRequest": {"code": 409, "message": message}})
        server["status"] = after
        handler.send_response(202)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _flavor(self, flavor: dict[str, Any]) -> dict[str, Any]:
        return {
            "disk": 20,
            "OS-FLV-EXT-DATA:ephemeral": 0,
            "os-flavor-access:is_public": True,
            "swap": 0,
            "links": [],
            **flavor,
        }

    def _image(self, rest: str, query: dict[str, str]) -> dict[str, Any] | None:
        path = rest.removeprefix("v2/")
        if path == "images":
            found = [image for image in self.images if "name" not in query or image["name"] == query["name"]]
            return {"images": [self._image_doc(image) for image in found]}
        if path.startswith("images/"):
            wanted = path.removeprefix("images/")
            for image in self.images:
                if image["id"] == wanted:
                    return self._image_doc(image)
        return None

    def _image_doc(self, image: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": "active",
            "visibility": "public",
            "min_disk": 0,
            "min_ram": 0,
            "disk_format": "qcow2",
            "container_format": "bare",
            **image,
        }

    def _network(self, rest: str, query: dict[str, str]) -> dict[str, Any] | None:
        path = rest.removeprefix("v2.0/").removesuffix(".json")
        if path == "networks":
            found = [net for net in self.networks if all(str(net.get(k)) == v for k, v in query.items() if k == "name")]
            return {"networks": [self._network_doc(net) for net in found]}
        if path.startswith("networks/"):
            wanted = path.removeprefix("networks/")
            for net in self.networks:
                if net["id"] == wanted:
                    return {"network": self._network_doc(net)}
            return None
        if path == f"quotas/{PROJECT_ID}/details":
            return {"quota": {key: dict(value) for key, value in self.quota.items()}}
        return None

    def _network_doc(self, network: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": "ACTIVE",
            "admin_state_up": True,
            "shared": False,
            "router:external": False,
            "subnets": [],
            "project_id": PROJECT_ID,
            **network,
        }

    # --- replies ------------------------------------------------------------------------------------------

    def _not_found(self, handler: BaseHTTPRequestHandler) -> None:
        self._send(handler, 404, {"itemNotFound": {"code": 404, "message": "not found"}})

    def _send(
        self, handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
