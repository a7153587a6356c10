"""Test double: a k3s release download server on 127.0.0.1.

Stands for GitHub's release downloads (https://github.com/k3s-io/k3s/releases/download/<tag>/<asset>, tag
URL-encoded as `v1.33.3%2Bk3s1` like GitHub's own asset links). Upstream publishes per architecture
`k3s[-arm64|-armhf]`, `k3s-airgap-images-<arch>.tar.zst` and `sha256sum-<arch>.txt` listing their sha256
(https://docs.k3s.io/installation/airgap). The files here are small made-up payloads; the server can lie about
a checksum or cut a transfer short, which is what the downloader must survive.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from tests.doubles.local_http import LocalHttpServer, QuietHandler


@dataclass
class Route:
    body: bytes
    # "ok" serves the body, "truncate" announces the full length and closes after half of it, "stall" sends half
    # of it and then nothing until the server is closed (a transfer that hangs).
    behaviour: str = "ok"


@dataclass
class ReleaseServer:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    # The Authorization header of each request (None without one), in the order of `requests`.
    authorizations: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self
        self.closing = threading.Event()

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                server.authorizations.append(self.headers.get("Authorization"))
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if route.behaviour == "stall":
                    self.wfile.write(route.body[: len(route.body) // 2])
                    self.wfile.flush()
                    server.closing.wait(60)
                    self.close_connection = True
                    return
                if route.behaviour == "truncate":
                    self.wfile.write(route.body[: len(route.body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(route.body)

        self.server = LocalHttpServer(Handler)

    @property
    def base(self) -> str:
        return self.server.url

    def close(self) -> None:
        self.closing.set()
        self.server.stop()

    def publish_release(self, version_path: str, arches: dict[str, tuple[str, str, str]]) -> dict[str, bytes]:
        """Serve a release: per arch (binary, images, checksum file names); returns {asset name: payload}."""
        payloads: dict[str, bytes] = {}
        for arch, (binary, images, checksums) in arches.items():
            binary_body = f"#!/bin/sh\necho k3s stand-in for {arch}\n".encode()
            images_body = (f"images archive for {arch} ".encode()) * 5000
            lines = [
                f"{hashlib.sha256(binary_body).hexdigest()}  {binary}",
                f"{hashlib.sha256(b'other').hexdigest()}  k3s-airgap-images-{arch}.tar",
                f"{hashlib.sha256(images_body).hexdigest()}  {images}",
            ]
            self.routes[f"/download/{version_path}/{binary}"] = Route(binary_body)
            self.routes[f"/download/{version_path}/{images}"] = Route(images_body)
            self.routes[f"/download/{version_path}/{checksums}"] = Route(("\n".join(lines) + "\n").encode())
            payloads[binary] = binary_body
            payloads[images] = images_body
        return payloads
