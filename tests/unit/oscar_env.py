"""Helpers for the service tests: an S3 server standing for MinIO, the fake OSCAR, a state folder pointing at them.

The S3 server is moto's server mode (a real S3 implementation over HTTP on 127.0.0.1); it keeps its buckets in
process memory shared by every moto server of the process, so `reset()` empties it between tests.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import yaml
from moto.server import ThreadedMotoServer

from oscar_deploy.state.endpoints import PlatformEndpoints, write_endpoints
from oscar_deploy.state.folder import ClusterState
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


def write_cluster_state(name: str, fake: FakeOscar, ca_file: Path | None = None) -> ClusterState:
    """A cluster state as the platform phase leaves it: endpoints.yaml plus the two secrets."""
    state = ClusterState(name).ensure()
    state.save_spec(f"name: {name}\ntarget: local\n")
    write_endpoints(
        state,
        PlatformEndpoints(
            oscar_url=fake.url,
            oscar_user=fake.user,
            minio_url=fake.s3_endpoint,
            minio_access_key=fake.s3_access_key,
            ca_file=str(ca_file) if ca_file else None,
        ),
    )
    state.write_file(
        state.secrets_file,
        yaml.safe_dump({"oscar_password": fake.password, "minio_secret_key": fake.s3_secret_key}),
    )
    return state
