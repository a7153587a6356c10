"""The local-node harness: clusters made by the product itself (`oscar-deploy up` with the `local` provider),
removed at the end of the session even when tests fail, and a check that nothing of a cluster is left.

Later tiers (Ansible roles, k3s, scaling) get their nodes from here too: `ClusterFactory.create()` returns a
`LocalCluster` with its spec, inventory, CLI runner and provider.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oscar_deploy.providers.local.engine import CLUSTER_LABEL, ContainerEngine
from oscar_deploy.providers.local.provider import LocalProvider, container_name
from oscar_deploy.state.folder import ClusterState

# Test clusters are named `ot<pid>-<purpose>`: a later run can tell the leftovers of a killed run by the pid.
TEST_CLUSTER = re.compile(r"^ot(\d+)-")
VENV_BIN = str(Path(sys.executable).parent)


def engine() -> ContainerEngine:
    return ContainerEngine.find()


def leftovers(cluster: str) -> list[str]:
    """Everything labelled for `cluster` that still exists: containers, networks, volumes."""
    label = f"{CLUSTER_LABEL}={cluster}"
    podman = engine()
    return (
        [f"container {str(data['Name']).lstrip('/')}" for data in podman.containers(label)]
        + [f"network {name}" for name in podman.networks(label)]
        + [f"volume {name}" for name in podman.volumes(label)]
    )


def remove_stale_test_clusters() -> None:
    """Remove clusters of earlier test runs whose process is gone (killed before its clean-up ran)."""
    podman = engine()
    names = set()
    for data in podman.containers(CLUSTER_LABEL):
        names.add(((data.get("Config") or {}).get("Labels") or {}).get(CLUSTER_LABEL, ""))
    listed = podman.run(["network", "ls", "--filter", f"label={CLUSTER_LABEL}", "--format", "{{.Name}}"])
    names.update(name.removeprefix("oscar-") for name in listed.stdout.split())
    for name in sorted(names):
        match = TEST_CLUSTER.match(name)
        if match and not _alive(int(match.group(1))):
            LocalProvider(ClusterState(name, root=Path("/nonexistent")), podman).destroy()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class LocalCluster:
    """One cluster made by `oscar-deploy up` from a spec in its own folder, with a private state home."""

    name: str
    workdir: Path
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def spec_file(self) -> Path:
        return self.workdir / "cluster.yaml"

    @property
    def state(self) -> ClusterState:
        return ClusterState(self.name, root=self.home)

    @property
    def inventory(self) -> Path:
        return self.state.inventory_file

    def provider(self) -> LocalProvider:
        return LocalProvider(self.state, engine())

    def cli(self, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
        """Run the real `oscar-deploy` (as a separate process, no standard input) against this cluster."""
        return subprocess.run(
            [sys.executable, "-m", "oscar_deploy", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def container(self, node: str) -> str:
        return container_name(self.name, node)

    def inspect(self, node: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = engine().json(["container", "inspect", self.container(node)])
        return data[0]

    def ansible_facts(self, pattern: str = "all", facts: str = "ansible_architecture") -> dict[str, dict[str, Any]]:
        """Ansible's setup module over SSH against the cluster's inventory; facts by host."""
        setup = ["-m", "setup", "-a", f"filter={facts}"]
        result = subprocess.run(
            [str(Path(VENV_BIN) / "ansible"), pattern, "-i", str(self.inventory), "-o", *setup],
            env={**self.env, "ANSIBLE_PYTHON_INTERPRETER": "auto_silent"},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        # One line per host: `server-0 | SUCCESS => {"ansible_facts": {...}, "changed": false}`
        facts_by_host: dict[str, dict[str, Any]] = {}
        for line in result.stdout.splitlines():
            host, _, outcome = line.partition(" | SUCCESS => ")
            if outcome:
                facts_by_host[host] = json.loads(outcome)["ansible_facts"]
        return facts_by_host


class ClusterFactory:
    """Makes test clusters through the product and removes every one of them at the end."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.clusters: list[LocalCluster] = []

    @property
    def bundle(self) -> Path:
        """Nodes have no internet: `up` takes k3s from an air-gap bundle of stand-ins (tests/doubles/bundle.py)
        for the catalogue's k3s, built once per session."""
        from oscar_deploy.spec.catalogue import load_catalogue
        from tests.doubles.bundle import build_test_bundle

        directory = self.base / "k3s-bundle"
        if not (directory / "manifest.json").is_file():
            build_test_bundle(directory, load_catalogue().version("k3s"), ("amd64", "arm64"))
        return directory

    def create(
        self,
        purpose: str,
        servers: int = 1,
        workers: int = 1,
        server_arch: str = "amd64",
        worker_arch: str = "amd64",
    ) -> LocalCluster:
        name = f"ot{os.getpid()}-{purpose}"
        workdir = self.base / name
        workdir.mkdir(parents=True)
        home = self.base / "state"
        env = {
            **os.environ,
            "OSCAR_DEPLOY_HOME": str(home),
            # No registry may be contacted from tests: build node images offline (debootstrap, cached).
            "OSCAR_DEPLOY_NODE_IMAGE_SOURCE": "debootstrap",
            "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
            "OSCAR_DEPLOY_BUNDLE": str(self.bundle),
            # A safety net: a run that went past `--until kubernetes` would fetch the Pulumi CLI from the
            # internet; here it asks 127.0.0.1's discard port, which refuses.
            "OSCAR_DEPLOY_PULUMI_DOWNLOAD_URL": "http://127.0.0.1:9/pulumi",
        }
        cluster = LocalCluster(name, workdir, home, env)
        self.clusters.append(cluster)
        cluster.spec_file.write_text(
            f"name: {name}\ntarget: local\nservers:\n  count: {servers}\n"
            f"workers:\n  initial: {workers}\n  min: 0\n  max: {max(workers, 3)}\n"
            f"local:\n  server_arch: {server_arch}\n  worker_arch: {worker_arch}\n"
        )
        result = cluster.cli("up", "--until", "kubernetes")
        assert result.returncode == 0, f"up failed for {name}:\n{result.stdout}\n{result.stderr}"
        return cluster

    def cleanup(self) -> list[str]:
        """Destroy every cluster made here; returns whatever could still be found afterwards."""
        left: list[str] = []
        for cluster in self.clusters:
            cluster.provider().destroy()
            cluster.state.destroy()
            left += leftovers(cluster.name)
        return left
