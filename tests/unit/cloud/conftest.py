"""Shared inputs of the cloud program tests."""

from __future__ import annotations

from typing import Any

import pytest

from oscar_deploy.providers.vm import HostKey, VmNode, generate_host_key

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
