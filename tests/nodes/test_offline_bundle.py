"""`up --bundle --until kubernetes` (the k3s phases; no Pulumi CLI here for the platform phase) on local nodes with
no route out: a bundle made by the real `bundle build` (sources on 127.0.0.1,
tests/offline_sources.py), nodes whose default route is deleted and whose every other outbound packet is
rejected and counted, then `up`: the k3s phases complete, each node holds every image archive of its arch where
k3s imports them (and the labelled k3s stand-in of tests/doubles/k3s records importing each image by name), the
servers hold the files for oscar-pvc, registries.yaml follows the spec's mirror, and no node tried to reach
anything but the cluster's own nodes. Then the airgap role's second run changes nothing, check mode changes
nothing, and reset removes what it added.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from oscar_deploy.nodes.ansible import PlaybookResult, run_playbook
from oscar_deploy.nodes.bundle import load_manifest
from oscar_deploy.nodes.model import PlannedNode
from oscar_deploy.providers.local.provider import container_name
from oscar_deploy.support.layers import layer_dir
from oscar_deploy.support.oci import archive_images
from tests.nodes.harness import VENV_BIN
from tests.nodes.k3s_nodes import NodeCluster, describe
from tests.offline_sources import spec_text, start_offline_sources

pytestmark = pytest.mark.nodes

IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"
FILES_DIR = "/var/lib/rancher/k3s/oscar-deploy/files"
REGISTRIES = "/etc/rancher/k3s/registries.yaml"
MIRROR = "https://registry.example.org:5000"
NO_ROUTE_OUT = "oscar-test-no-route-out"
NODES = ("server-0", "agent-0")


@dataclass
class Offline:
    nodes: NodeCluster
    spec: Path
    bundle: Path
    up: subprocess.CompletedProcess[str]


def in_node_network(nodes: NodeCluster, name: str, *command: str) -> subprocess.CompletedProcess[str]:
    """Run a host command (iptables) in the node's network namespace: the node image has no iptables."""
    pid = subprocess.run(
        ["podman", "inspect", "--format", "{{.State.Pid}}", container_name(nodes.name, name)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return subprocess.run(["nsenter", "-t", pid, "-n", *command], capture_output=True, text=True, check=True)


def cut_route_out(nodes: NodeCluster) -> None:
    """Delete each node's default route and reject (and count) every new outbound packet not meant for a node."""
    addresses = [str(node.address) for node in nodes.nodes.values()]
    for name in NODES:
        nodes.ssh(name, "ip route del default")
        rules = [
            ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
            ["-o", "lo", "-j", "ACCEPT"],
            *(["-d", f"{address}/32", "-j", "ACCEPT"] for address in addresses),
            ["-m", "comment", "--comment", NO_ROUTE_OUT, "-j", "REJECT"],
        ]
        for rule in rules:
            in_node_network(nodes, name, "iptables", "-w", "-A", "OUTPUT", *rule)


def rejected_packets(nodes: NodeCluster, name: str) -> int:
    rules = in_node_network(nodes, name, "iptables", "-w", "-L", "OUTPUT", "-v", "-n", "-x").stdout.splitlines()
    (line,) = [rule for rule in rules if NO_ROUTE_OUT in rule]
    return int(line.split()[0])


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Offline]:
    root = tmp_path_factory.mktemp("offline")
    nodes = NodeCluster("offline", root / "home")
    sources = start_offline_sources(root / "sources", arches=("amd64",))
    try:
        spec = root / "cluster.yaml"
        spec.write_text(
            spec_text(
                nodes.name,
                "workers:\n  initial: 1\n  min: 0\n  max: 1\n"
                f"platform:\n  registry_mirror:\n    url: {MIRROR}\n    insecure_skip_verify: true\n",
            )
        )
        bundle = root / "bundle"
        built = subprocess.run(
            [
                sys.executable,
                "-m",
                "oscar_deploy",
                "bundle",
                "build",
                "-f",
                str(spec),
                "--registry-mirror",
                sources.registry.host,
                "--insecure-registry",
                str(bundle),
            ],
            env={**os.environ, **sources.env()},
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        assert built.returncode == 0, built.stderr[-3000:]
    finally:
        sources.close()  # from here on nothing serves downloads
    try:
        nodes.apply([PlannedNode("server-0", "server", "amd64"), PlannedNode("agent-0", "agent", "amd64")])
        cut_route_out(nodes)
        env = {key: value for key, value in os.environ.items() if key not in ("OSCAR_DEPLOY_BUNDLE",)} | {
            "OSCAR_DEPLOY_HOME": str(nodes.home),
            "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        }
        up = subprocess.run(
            [
                sys.executable,
                "-m",
                "oscar_deploy",
                "up",
                "-f",
                str(spec),
                "--bundle",
                str(bundle),
                "--until",
                "kubernetes",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=1500,
            stdin=subprocess.DEVNULL,
        )
        yield Offline(nodes, spec, bundle, up)
    finally:
        assert nodes.destroy() == []


def test_up_with_the_bundle_completes_with_no_route_out(offline: Offline) -> None:
    assert offline.up.returncode == 0, offline.up.stdout[-3000:] + offline.up.stderr[-3000:]
    nodes = offline.nodes
    for name in NODES:
        assert nodes.ssh(name, "ip route show default").stdout.strip() == "", f"{name} still has a route out"
        unreachable = nodes.ssh(name, "ip route get 203.0.113.1", check=False)
        assert unreachable.returncode != 0 and "unreachable" in unreachable.stderr.lower()
        assert nodes.starts(name), f"k3s never started on {name}"
        assert rejected_packets(nodes, name) == 0, f"{name} tried to reach something outside the cluster"


def test_every_node_holds_every_image_of_its_arch(offline: Offline) -> None:
    manifest = load_manifest(offline.bundle)
    images = [entry for entry in manifest.platform["images"] if entry["arch"] == "amd64"]
    assert len(images) == 9
    for name in NODES:
        listed = offline.nodes.ssh(name, f"cd {IMAGES_DIR} && sha256sum oscar-deploy-*").stdout
        on_node = {line.split()[1]: line.split()[0] for line in listed.splitlines()}
        assert on_node == {f"oscar-deploy-{Path(e['file']).name}": e["sha256"] for e in images}
        imported = offline.nodes.ssh(name, "cat /var/lib/rancher/k3s/standin-images.log").stdout
        for entry in images:
            for image, digest in archive_images(offline.bundle / entry["file"]):
                assert f" imported {image} {digest} from oscar-deploy-{Path(entry['file']).name}" in imported
        # upstream's k3s images archive (a labelled stand-in here) lies beside them
        assert " not-read k3s-airgap-images-amd64.tar.zst" in imported


def test_servers_hold_the_binaries_and_nodes_the_mirror(offline: Offline) -> None:
    manifest = load_manifest(offline.bundle)
    listed = offline.nodes.ssh("server-0", f"cd {FILES_DIR} && sha256sum *").stdout
    assert {line.split()[1]: line.split()[0] for line in listed.splitlines()} == {
        entry["name"]: entry["sha256"] for entry in manifest.platform["binaries"]
    }
    assert not offline.nodes.exists("agent-0", FILES_DIR)
    for name in NODES:
        text = offline.nodes.read(name, REGISTRIES)
        assert text.startswith("# Written by oscar-deploy (role airgap")
        assert yaml.safe_load(text) == {
            "mirrors": {registry: {"endpoint": [MIRROR]} for registry in ("docker.io", "ghcr.io", "quay.io")},
            "configs": {"registry.example.org:5000": {"tls": {"insecure_skip_verify": True}}},
        }


AIRGAP_ONLY = """---
# The airgap role alone (kubernetes.yml runs it first, then k3s): quicker re-runs of what this test is about.
- name: Put the k3s artefacts on the nodes
  hosts: server:agent
  gather_subset: ["!all", "!min", platform]
  become: true
  force_handlers: true
  roles:
    - role: airgap
"""


def airgap_run(offline: Offline, tmp_path: Path, extra: dict[str, Any], check: bool = False) -> PlaybookResult:
    """airgap.yml beside links to the bundled roles and ansible.cfg, through the CLI's own runner."""
    folder = tmp_path / "playbooks"
    if not folder.is_dir():
        folder.mkdir()
        (folder / "roles").symlink_to(layer_dir("playbooks") / "roles")
        (folder / "ansible.cfg").symlink_to(layer_dir("playbooks") / "ansible.cfg")
        (folder / "airgap.yml").write_text(AIRGAP_ONLY)
    nodes = offline.nodes
    variables = {"k3s_version": load_manifest(offline.bundle).k3s_version, "k3s_airgap_dir": str(offline.bundle)}
    return run_playbook(
        "airgap.yml",
        nodes.state.inventory_file,
        nodes.state.log_file("test-airgap"),
        {**variables, **extra},
        secret_files={"k3s_token_file": nodes.token},
        check=check,
        playbook_dir=folder,
        raise_on_failure=False,
    )


def test_the_airgap_role_converges_and_reset_removes_what_it_added(offline: Offline, tmp_path: Path) -> None:
    nodes = offline.nodes
    registries = yaml.safe_load(nodes.read("server-0", REGISTRIES))
    with_mirror = {"airgap_registries": registries}
    again = airgap_run(offline, tmp_path, with_mirror)
    assert again.succeeded, describe(again)
    assert {host: stats.changed for host, stats in again.stats.items()} == dict.fromkeys(NODES, 0)
    checked = airgap_run(offline, tmp_path, with_mirror, check=True)
    assert checked.succeeded, describe(checked)
    assert {host: stats.changed for host, stats in checked.stats.items()} == dict.fromkeys(NODES, 0)

    # Without the mirror the file goes, and each running k3s restarts once to forget it.
    starts = {name: len(nodes.starts(name)) for name in NODES}
    dropped = airgap_run(offline, tmp_path, {})
    assert dropped.succeeded, describe(dropped)
    for name in NODES:
        assert not nodes.exists(name, REGISTRIES)
        assert len(nodes.starts(name)) == starts[name] + 1

    version = load_manifest(offline.bundle).k3s_version
    reset = nodes.playbook("reset.yml", version, {"reset_confirmation": "yes"})
    assert reset.succeeded, describe(reset)
    for name in NODES:
        for path in (IMAGES_DIR, FILES_DIR, REGISTRIES):
            assert not nodes.exists(name, path), f"{name}: {path} left after reset"
        assert rejected_packets(nodes, name) == 0
