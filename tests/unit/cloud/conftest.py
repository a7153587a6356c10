"""Shared inputs of the cloud program tests, and moto's EC2 server on 127.0.0.1 with the Service Quotas double."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from moto.server import ThreadedMotoServer

from oscar_deploy.providers.aws.preflight import STANDARD_VCPU_QUOTA
from oscar_deploy.providers.vm import HostKey, VmNode, generate_host_key
from tests.doubles.service_quotas import FakeServiceQuotas

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOscarDeployTestKeyOnlyForTests cluster@lab"
EXTERNAL_NETWORK_ID = "ext-net-id"


def nodes(servers: int, workers: int, *, server_size: str, worker_size: str, arch: str = "amd64") -> tuple[VmNode, ...]:
    return tuple(VmNode(f"server-{i}", "server", server_size, arch) for i in range(servers)) + tuple(
        VmNode(f"agent-{i}", "agent", worker_size, arch) for i in range(workers)
    )


def openstack_invokes() -> dict[str, Any]:
    def get_network(args: dict[str, Any]) -> dict[str, Any]:
        name = args["name"]
        return {"id": EXTERNAL_NETWORK_ID if name == "public" else f"{name}-id", "name": name}

    return {"openstack:networking/getNetwork:getNetwork": get_network}


def aws_invokes() -> dict[str, Any]:
    def get_ami(args: dict[str, Any]) -> dict[str, Any]:
        arch = next(item["values"][0] for item in args["filters"] if item["name"] == "architecture")
        return {"id": f"ami-{arch.replace('_', '')}", "architecture": arch}

    return {"aws:ec2/getAmi:getAmi": get_ami}


@pytest.fixture(scope="session")
def host_keys() -> dict[str, HostKey]:
    return {name: generate_host_key(f"root@{name}") for name in ("server-0", "agent-0")}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    httpx.post(f"{url}/moto-api/reset").raise_for_status()
    yield url
    server.stop()


@pytest.fixture
def quotas(moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServiceQuotas]:
    fake = FakeServiceQuotas(quotas={("ec2", STANDARD_VCPU_QUOTA): 16.0})
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SERVICE_QUOTAS", fake.url)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    (tmp_path / "aws-credentials").write_text(
        "[research]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    yield fake
    fake.stop()
