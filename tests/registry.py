"""Test harness for image bundles: a real container registry on 127.0.0.1 and small images the tests build.

* `Registry` runs Debian's `docker-registry` (distribution's registry v2) with its own configuration and storage
  folder on a free port of 127.0.0.1, started and stopped by the test; it is the real server, not a double.
  Its access log (stderr) says which blobs were served, so a test can count downloads.
* `build_layout` writes an OCI image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
  holding one multi-arch image: per arch a tiny gzip layer, an image config and a manifest, and an index listing
  them with their platforms; `Registry.push` copies it there with `skopeo copy --all`.
* `StallingProxy` forwards HTTP requests to the registry and, for one blob, sends part of the body and then
  stalls, standing for a network that stops mid-transfer (so a test can interrupt a download for real).

Nothing here ships in the wheel.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.doubles.local_http import LocalHttpServer, QuietHandler

REGISTRY_BINARY = "docker-registry"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class TinyImage:
    index_digest: str
    manifests: dict[str, str]  # arch -> manifest digest
    layers: dict[str, str]  # arch -> layer digest


def _blob(root: Path, data: bytes, media_type: str) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def build_layout(root: Path, arches: tuple[str, ...], label: str, payload: int = 0) -> TinyImage:
    """One multi-arch image in an OCI layout at `root`; `label` makes its digests unique, `payload` its size."""
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    entries, manifests, layers = [], {}, {}
    for arch in arches:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            body = f"{label} for {arch}\n".encode() + hashlib.sha256(label.encode()).digest() * (payload // 32)
            info = tarfile.TarInfo("hello.txt")
            info.size, info.mtime = len(body), 0
            tar.addfile(info, io.BytesIO(body))
        diff_id = f"sha256:{hashlib.sha256(raw.getvalue()).hexdigest()}"
        layer = _blob(root, gzip.compress(raw.getvalue(), mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
        config = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
        config_blob = _blob(root, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_blob,
            "layers": [layer],
        }
        entry = _blob(root, json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
        entries.append({**entry, "platform": {"architecture": arch, "os": "linux"}})
        manifests[arch], layers[arch] = str(entry["digest"]), str(layer["digest"])
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}
    top = _blob(root, json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json")
    layout_index = {
        "schemaVersion": 2,
        "manifests": [{**top, "annotations": {"org.opencontainers.image.ref.name": "t"}}],
    }
    (root / "index.json").write_text(json.dumps(layout_index))
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return TinyImage(str(top["digest"]), manifests, layers)


class Registry:
    """docker-registry serving `root` on 127.0.0.1:<free port>; `stop()` ends it."""

    def __init__(self, root: Path) -> None:
        binary = shutil.which(REGISTRY_BINARY)
        if binary is None:
            raise RuntimeError("docker-registry is not installed; run bash scripts/install-system-packages.sh")
        self.root = root
        self.port = free_port()
        storage = root / "storage"
        storage.mkdir(parents=True)
        config = root / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self.log = root / "registry.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                connection.request("GET", "/v2/")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on 127.0.0.1:{self.port}: {self.log.read_text()[-500:]}")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def push(self, layout: Path, repository: str, tag: str) -> None:
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--all",
                "--dest-tls-verify=false",
                f"oci:{layout}:t",
                f"docker://{self.host}/{repository}:{tag}",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def blob_data(self, digest: str) -> Path:
        hex_digest = digest.removeprefix("sha256:")
        return (
            self.root
            / "storage"
            / "docker"
            / "registry"
            / "v2"
            / "blobs"
            / "sha256"
            / hex_digest[:2]
            / hex_digest
            / "data"
        )

    def blob_downloads(self, digest: str) -> int:
        """GET requests for a blob that the registry answered with 200, from its access log."""
        return sum(1 for line in self.log.read_text().splitlines() if f"/blobs/{digest} " in line and '" 200 ' in line)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class StallingProxy:
    """Forwards requests to `upstream` (host:port); the first GET of a path containing `stall_on` gets half its
    body, then the connection hangs until `release()`; `stalled` is set once that happened."""

    def __init__(self, upstream: str, stall_on: str) -> None:
        self.upstream, self.stall_on = upstream, stall_on
        self.stalled, self.released = threading.Event(), threading.Event()
        proxy = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._forward("GET")

            def do_HEAD(self) -> None:
                self._forward("HEAD")

            def _forward(self, method: str) -> None:
                host, port = proxy.upstream.split(":")
                connection = http.client.HTTPConnection(host, int(port), timeout=30)
                connection.putrequest(method, self.path, skip_accept_encoding=True)
                for key, value in self.headers.items():  # repeated headers (Accept) stay repeated
                    if key.lower() not in ("host", "connection"):
                        connection.putheader(key, value)
                connection.endheaders()
                response = connection.getresponse()
                body = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if method == "HEAD":
                    return
                if proxy.stall_on in self.path and not proxy.stalled.is_set():
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    proxy.stalled.set()
                    proxy.released.wait(120)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = LocalHttpServer(Handler)

    @property
    def host(self) -> str:
        return self.server.host

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.release()
        self.server.stop()
