"""Helpers for the service tests: an S3 server standing for MinIO, the fake OSCAR, a state folder pointing at them.

The S3 server is moto's server mode (a real S3 implementation over HTTP on 127.0.0.1); it keeps its buckets in
process memory shared by every moto server of the process, so `reset()` empties it between tests. `RefusingS3`
stands in front of it for a MinIO (or a gateway before it) that refuses some requests.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import yaml
from moto.server import ThreadedMotoServer

from oscar_deploy.state.endpoints import PlatformEndpoints, write_endpoints
from oscar_deploy.state.folder import ClusterState
from tests.doubles.local_http import LocalHttpServer, QuietHandler
from tests.unit.fake_oscar import FakeOscar


class S3Server:
    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per S3 request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset").raise_for_status()

    def stop(self) -> None:
        self._server.stop()


_NOT_PASSED_ON = ("connection", "host", "content-length", "expect")


class RefusingS3:
    """TEST DOUBLE: MinIO refusing some requests. Requests pass to the S3 server behind it as they are, but those
    whose method and path (`/bucket/key`) match a `refuse` get its answer: an S3 error document, as MinIO writes one
    (cmd/api-errors.go: Code, Message, Key, BucketName, Resource), or with no code the bare status a gateway in front
    of MinIO answers. `seen` lists every request's method and path, refused or not."""

    def __init__(self, behind: str) -> None:
        self.behind = behind
        self.refusals: list[tuple[str, str, int, str, str]] = []
        self.seen: list[tuple[str, str]] = []
        self._server = LocalHttpServer(self._handler())
        self.url = self._server.url

    def refuse(self, method: str, path_prefix: str, status: int, code: str = "", message: str = "") -> None:
        self.refusals.append((method, path_prefix, status, code, message))

    def stop(self) -> None:
        self._server.stop()

    def _refusal(self, method: str, path: str) -> tuple[int, str, str] | None:
        for refused_method, prefix, status, code, message in self.refusals:
            if refused_method == method and path.startswith(prefix):
                return status, code, message
        return None

    def _handler(self) -> type[QuietHandler]:
        double = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"  # answers botocore's `Expect: 100-continue` at once, as MinIO does

            def _pass_on(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                double.seen.append((method, path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                refusal = double._refusal(method, path)
                if refusal is not None:
                    self._refuse(path, *refusal)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_PASSED_ON}
                answer = httpx.request(method, double.behind + self.path, headers=headers, content=body)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server"):
                        self.send_header(name, value)
                # A HEAD answer's length is the object's size, which is what the client compares.
                self.send_header("Content-Length", answer.headers.get("Content-Length", str(len(answer.content))))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(answer.content)

            def _refuse(self, path: str, status: int, code: str, message: str) -> None:
                bucket, _, key = path.lstrip("/").partition("/")
                document = b""
                if code and self.command != "HEAD":  # HEAD answers carry no body, so no error document
                    document = (
                        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
                        f"<Code>{code}</Code><Message>{escape(message)}</Message><Key>{escape(key)}</Key>"
                        f"<BucketName>{bucket}</BucketName><Resource>{escape(path)}</Resource>"
                        "<RequestId>17E1A9B1C0F2D3A4</RequestId></Error>"
                    ).encode()
                self.send_response(status, HTTPStatus(status).phrase)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def do_GET(self) -> None:
                self._pass_on("GET")

            def do_HEAD(self) -> None:
                self._pass_on("HEAD")

            def do_PUT(self) -> None:
                self._pass_on("PUT")

            def do_POST(self) -> None:
                self._pass_on("POST")

            def do_DELETE(self) -> None:
                self._pass_on("DELETE")

        return Handler


def write_cluster_state(
    name: str, fake: FakeOscar, ca_file: Path | None = None, minio_url: str | None = None
) -> ClusterState:
    """A cluster state as the platform phase leaves it: endpoints.yaml plus the two secrets; MinIO at `minio_url`
    (a `RefusingS3` in front of the fake's) when given."""
    state = ClusterState(name).ensure()
    state.save_spec(f"name: {name}\ntarget: local\n")
    write_endpoints(
        state,
        PlatformEndpoints(
            oscar_url=fake.url,
            oscar_user=fake.user,
            minio_url=minio_url or fake.s3_endpoint,
            minio_access_key=fake.s3_access_key,
            ca_file=str(ca_file) if ca_file else None,
        ),
    )
    state.write_file(
        state.secrets_file,
        yaml.safe_dump({"oscar_password": fake.password, "minio_secret_key": fake.s3_secret_key}),
    )
    return state
