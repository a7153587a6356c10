"""TEST DOUBLE: stands for a cloud node's sshd (OpenSSH) as `CloudProvider.wait_for_ssh` probes it, built on
asyncssh's server (https://asyncssh.readthedocs.io/en/latest/api.html#create_server): it listens on 127.0.0.1
(a free port) with the one host key it is given, as a VM does once cloud-init wrote the key of its user data,
takes a public-key login with the authorized keys it is given (the cluster's key), and runs nothing but `true`
(exit 0; any other command exits 127, as a shell does for an unknown command). The real ssh client talks to it,
so key exchange, the host key check against known_hosts and the login are OpenSSH's own. Nothing here ships in
the wheel."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any

import asyncssh


def _run_command(process: asyncssh.SSHServerProcess[str]) -> None:
    process.exit(0 if process.command == "true" else 127)


class SshServer:
    """Serves from a daemon thread's event loop until `stop`."""

    def __init__(self, host_key: str, authorized_key: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.logins = 0
        started: Future[Any] = asyncio.run_coroutine_threadsafe(self._start(host_key, authorized_key), self.loop)
        self.server = started.result(timeout=30)
        self.port: int = self.server.sockets[0].getsockname()[1]

    async def _start(self, host_key: str, authorized_key: str) -> Any:
        double = self

        class CountingServer(asyncssh.SSHServer):
            def auth_completed(self) -> None:
                double.logins += 1

        return await asyncssh.create_server(
            CountingServer,
            "127.0.0.1",
            0,
            server_host_keys=[asyncssh.import_private_key(host_key)],
            authorized_client_keys=asyncssh.import_authorized_keys(authorized_key),
            process_factory=_run_command,
        )

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()
