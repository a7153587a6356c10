"""TEST DOUBLE plumbing: an HTTP server on 127.0.0.1 (a free port) serving one handler class from a daemon thread,
for the test doubles that stand for a network service (a cloud API, OSCAR, a release download site, a stalling
proxy). Nothing here ships in the wheel."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that keeps the test output free of one access-log line per request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class LocalHttpServer:
    """Serves at once; with `ssl_context`, over HTTPS. Each request runs in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], ssl_context: ssl.SSLContext | None = None) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.scheme = "http"
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
