"""Local nodes for the playbook tests: podman nodes made by the `local` provider (no k3s on them), the
inventory it writes, runs of the bundled playbooks through the CLI's own runner, and SSH to the nodes.

The tests drive the playbooks directly (not `up`), so each scenario controls what runs and when.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from oscar_deploy.nodes.ansible import PlaybookResult, run_playbook
from oscar_deploy.nodes.inventory import write_inventory
from oscar_deploy.nodes.model import Node, PlannedNode
from oscar_deploy.providers.local.engine import ContainerEngine
from oscar_deploy.providers.local.provider import LocalProvider
from oscar_deploy.state.folder import ClusterState
from tests.doubles.bundle import build_test_bundle
from tests.nodes.harness import leftovers

# Where tests put the Raspberry Pi stand-ins on a node (the raspberrypi role reads these through its variables).
PI_MODEL_FILE = "/etc/oscar-test/device-tree-model"
PI_CMDLINE_FILE = "/etc/oscar-test/cmdline.txt"
PI_CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait\n"


class NodeCluster:
    """Nodes of one test cluster, named `ot<pid>-<purpose>` so a later run removes them if this one is killed."""

    def __init__(self, purpose: str, home: Path, name: str | None = None) -> None:
        self.name = name or f"ot{os.getpid()}-{purpose}"
        self.home = home
        self.state = ClusterState(self.name, root=home)
        self.provider = LocalProvider(self.state, ContainerEngine.find())
        self.nodes: dict[str, Node] = {}
        self.bundles = home / f"{self.name}-bundles"
        self.token = ""

    # --- nodes ----------------------------------------------------------------------------------------------
    def apply(self, plan: Sequence[PlannedNode]) -> None:
        """Create the planned nodes that are missing and rewrite the inventory from every node that exists."""
        self.state.ensure()
        self.token = self.state.secret("k3s_token")
        applied = self.provider.apply(plan)
        self.nodes = {node.name: node for node in applied.nodes}
        write_inventory(self.state, applied.nodes, self.provider.ssh_common_args)

    def forget(self, name: str) -> None:
        """Remove a node and its inventory entry (what scaling in does once the node is drained and reset)."""
        self.provider.remove(name)
        self.nodes.pop(name)
        write_inventory(self.state, list(self.nodes.values()), self.provider.ssh_common_args)

    def set_host_vars(self, host: str, variables: Mapping[str, Any]) -> None:
        data = yaml.safe_load(self.state.inventory_file.read_text())
        for group in data["k3s_cluster"]["children"].values():
            if host in group["hosts"]:
                group["hosts"][host].update(variables)
        self.state.write_file(self.state.inventory_file, yaml.safe_dump(data, sort_keys=False))

    def set_cluster_vars(self, variables: Mapping[str, Any]) -> None:
        """Add variables for every host of the inventory (its `k3s_cluster` group)."""
        data = yaml.safe_load(self.state.inventory_file.read_text())
        data["k3s_cluster"].setdefault("vars", {}).update(variables)
        self.state.write_file(self.state.inventory_file, yaml.safe_dump(data, sort_keys=False))

    def destroy(self) -> list[str]:
        self.provider.destroy()
        self.state.destroy()
        return leftovers(self.name)

    # --- on the nodes ---------------------------------------------------------------------------------------
    def ssh(self, node: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.provider.ssh_command(self.nodes[node], [f"sh -c {shlex.quote(command)}"]),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if check:
            assert result.returncode == 0, f"{node}: {command}: {result.stdout}{result.stderr}"
        return result

    def upload(self, node: str, path: str, data: bytes, mode: str = "0644") -> None:
        """Write `data` to `path` on the node (through SSH's standard input)."""
        quoted = shlex.quote(path)
        command = f"mkdir -p $(dirname {quoted}) && cat > {quoted} && chmod {mode} {quoted}"
        result = subprocess.run(
            self.provider.ssh_command(self.nodes[node], [f"sh -c {shlex.quote(command)}"]),
            input=data,
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{node}: upload {path}: {result.stderr.decode()}"

    def read(self, node: str, path: str) -> str:
        return self.ssh(node, f"cat {path}").stdout

    def exists(self, node: str, path: str) -> bool:
        return self.ssh(node, f"test -e {path} || test -L {path}", check=False).returncode == 0

    def sha256(self, node: str, path: str) -> str:
        return self.ssh(node, f"sha256sum {path}").stdout.split()[0]

    def service(self, node: str, unit: str) -> dict[str, str]:
        """`systemctl show` properties of a unit: ActiveState, MainPID, ExecMainStartTimestamp..."""
        output = self.ssh(node, f"systemctl show {unit}").stdout
        return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)

    def starts(self, node: str) -> list[str]:
        """Lines the k3s stand-in wrote at each start of k3s on the node."""
        log = "/var/lib/rancher/k3s/standin-starts.log"
        return self.ssh(node, f"cat {log} 2>/dev/null || true").stdout.splitlines()

    def ssh_logins(self, node: str) -> int:
        """How many SSH connections the node's sshd accepted so far (each run should open one per node)."""
        log = self.ssh(node, "journalctl --unit ssh --no-pager --output cat", check=False).stdout
        return sum("Accepted publickey" in line for line in log.splitlines())

    def kubectl_calls(self, node: str) -> list[str]:
        log = "/var/lib/rancher/k3s/standin-kubectl.log"
        return self.ssh(node, f"cat {log} 2>/dev/null || true").stdout.splitlines()

    def set_api_objects(self, kind: str, objects: Sequence[Mapping[str, Any]]) -> None:
        """What the k3s stand-in's API on server-0 serves for `kubectl get pods` (kind "pods") or `kubectl get
        persistentvolumes` ("pvs") from now on: the file is replaced at once, never read half written."""
        path = f"/var/lib/rancher/k3s/server/standin-{kind}.json"
        self.upload("server-0", f"{path}.tmp", json.dumps(list(objects)).encode())
        self.ssh("server-0", f"mv {path}.tmp {path}")

    def node_table(self) -> dict[str, list[str]]:
        """`k3s kubectl get nodes` on the first server: name -> [status, roles, age, version]."""
        output = self.ssh("server-0", "k3s kubectl get nodes --no-headers").stdout
        return {fields[0]: fields[1:] for fields in (line.split() for line in output.splitlines())}

    # --- playbooks ------------------------------------------------------------------------------------------
    def bundle(self, version: str, arches: Sequence[str] = ("amd64", "arm64")) -> Path:
        directory = self.bundles / version
        if not (directory / "manifest.json").is_file():
            build_test_bundle(directory, version, arches)
        return directory

    @property
    def kubeconfig(self) -> Path:
        return self.state.kubeconfig_file

    def playbook(
        self,
        playbook: str,
        version: str,
        extravars: Mapping[str, Any] | None = None,
        check: bool = False,
        limit: str | None = None,
        tags: str | None = None,
    ) -> PlaybookResult:
        """Run a bundled playbook against the cluster's inventory with the bundle of `version`."""
        variables: dict[str, Any] = {
            "k3s_version": version,
            "k3s_airgap_dir": str(self.bundle(version)),
            "k3s_kubeconfig_dest": str(self.kubeconfig),
            # The Raspberry Pi stand-ins: a node whose model file says "Raspberry Pi 4" is a Pi; never reboot.
            "raspberrypi_model_file": PI_MODEL_FILE,
            "raspberrypi_cmdline_file": PI_CMDLINE_FILE,
            "raspberrypi_reboot": False,
            **(extravars or {}),
        }
        return run_playbook(
            playbook,
            self.state.inventory_file,
            self.state.log_file(f"test-{Path(playbook).stem}"),
            variables,
            secret_files={"k3s_token_file": self.token},
            check=check,
            limit=limit,
            tags=tags,
            raise_on_failure=False,
        )


def changes(result: PlaybookResult) -> dict[str, int]:
    """Changed tasks per host of a run (its PLAY RECAP)."""
    return {host: stats.changed for host, stats in result.stats.items()}


def role_tasks(result: PlaybookResult, host: str) -> set[str]:
    """The roles that ran tasks on `host` (not skipped), read from the run's log: {"prereq", "airgap", ...}."""
    roles: set[str] = set()
    task = ""
    for line in result.log_file.read_text().splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line.split("[", 1)[1].split("]", 1)[0]
        elif (
            line.startswith(("ok: [", "changed: [", "failed: [", "fatal: ["))
            and " : " in task
            and line.split("[", 1)[1].split("]", 1)[0] == host
        ):
            roles.add(task.split(" : ", 1)[0])
    return roles


def describe(result: PlaybookResult) -> str:
    """What a failed assertion shows: the problems and the end of the run's log."""
    problems = "\n".join(problem.line(None) for problem in result.problems)
    return f"{result.playbook}: {result.status} rc={result.rc}\n{problems}\n{result.log_file.read_text()[-6000:]}"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
