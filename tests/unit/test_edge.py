"""`edge install` / `edge reset`: the static provider over an inventory, version and bundle choice,
confirmation, and which playbooks they run.

The runs themselves happen against local nodes in tests/nodes/test_k3s_cli.py; here `run_playbook` is
replaced by a recorder (`recorded_runs`) to see which playbook gets which variables.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from oscar_deploy.autoscaler.decisions import run_lock
from oscar_deploy.autoscaler.service import folder_of
from oscar_deploy.cli import options
from oscar_deploy.nodes.ansible import PlaybookResult
from oscar_deploy.providers.static.provider import StaticProvider
from oscar_deploy.state.folder import ClusterState

K3S_ANSIBLE_INVENTORY = """\
k3s_cluster:
  children:
    server:
      hosts:
        192.0.2.10:
    agent:
      hosts:
        192.0.2.11:
        192.0.2.12:
  vars:
    ansible_port: 22
    ansible_user: debian
    k3s_version: v1.33.4+k3s1
    api_endpoint: "{{ hostvars[groups['server'][0]]['ansible_host'] | default(groups['server'][0]) }}"
"""


@pytest.fixture
def recorded_runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Test double for oscar_deploy.nodes.ansible.run_playbook (the real one runs ansible-playbook through
    ansible-runner, exercised in test_playbooks.py): records each call, reads the secret files while they
    exist, and reports success."""
    runs: list[dict[str, Any]] = []

    def run_playbook(playbook: str, inventory: Path, log_file: Path, extravars: Any = None, **options: Any) -> Any:
        secrets = {name: value for name, value in (options.get("secret_files") or {}).items()}
        runs.append({"playbook": playbook, "inventory": inventory, "vars": dict(extravars or {}), "secrets": secrets})
        return PlaybookResult(playbook, "successful", 0, {}, [], log_file)

    monkeypatch.setattr("oscar_deploy.nodes.k3s.run_playbook", run_playbook)
    return runs


def write(cli, name: str, text: str) -> Path:
    path = cli.cwd / name
    path.write_text(text)
    return path


def test_install_takes_a_k3s_ansible_inventory_as_is(cli, recorded_runs: list[dict[str, Any]]) -> None:
    write(cli, "boards.yml", K3S_ANSIBLE_INVENTORY)
    result = cli("edge", "install", "-i", "boards.yml", "--name", "pis", "--until", "kubernetes")
    assert result.exit_code == 0, result.output
    assert [run["playbook"] for run in recorded_runs] == ["prepare.yml", "kubernetes.yml"]
    state = ClusterState("pis")
    run = recorded_runs[1]
    assert run["inventory"] == state.inventory_file, "the cluster's own inventory, written from the user's"
    assert run["vars"] == {
        "k3s_version": "v1.33.4+k3s1",  # the inventory's own pin (k3s-ansible style) is honoured
        "k3s_release_url": "https://github.com/k3s-io/k3s/releases/download",
        "k3s_cluster_name": "pis",
        "k3s_kubeconfig_dest": str(state.kubeconfig_file),
    }
    assert "k3s_airgap_dir" not in run["vars"], "an inventory's own airgap_dir must stay usable"
    assert run["secrets"] == {"k3s_token_file": state.secret("k3s_token")}
    hosts = yaml.safe_load(state.inventory_file.read_text())["k3s_cluster"]["children"]
    assert list(hosts["agent"]["hosts"]) == ["192.0.2.11", "192.0.2.12"]
    server = hosts["server"]["hosts"]["192.0.2.10"]
    assert server["ansible_user"] == "debian" and server["ansible_port"] == 22
    assert "ansible_ssh_private_key_file" not in server, "hosts you own keep their own SSH settings"
    # ansible-runner would turn the host key check off; the first connection records the key in known_hosts.
    assert (server["ansible_ssh_host_key_checking"], server["ansible_ssh_extra_args"]) == (
        True,
        "-o StrictHostKeyChecking=accept-new",
    )
    assert server["api_endpoint"].startswith("{{ hostvars[groups['server'][0]]"), "other variables pass unchanged"
    assert "edge cluster pis: k3s on 192.0.2.10, 192.0.2.11, 192.0.2.12" in result.stdout
    applied = yaml.safe_load(state.spec_file.read_text())
    assert (applied["name"], applied["target"], applied["versions"]) == ("pis", "static", {"k3s": "v1.33.4+k3s1"})
    assert applied["static"] == {"inventory": str((cli.cwd / "boards.yml").resolve())}

    recorded_runs.clear()
    again = cli("edge", "install", "-i", "boards.yml", "--name", "pis", "--until", "kubernetes")
    assert again.exit_code == 0, again.output
    assert recorded_runs == [], "a converged edge cluster runs no playbook"
    status = cli("status", "-c", "pis")
    assert status.exit_code == 0, status.output
    assert "192.0.2.11  agent" in status.stdout


def test_install_refuses_a_k3s_version_the_platform_cannot_run_on(cli, recorded_runs: list) -> None:
    write(cli, "boards.yml", K3S_ANSIBLE_INVENTORY.replace("v1.33.4+k3s1", "v1.31.12+k3s1"))
    result = cli("edge", "install", "-i", "boards.yml", "--until", "kubernetes")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: boards.yml: k3s_version: Kubernetes 1.31 (v1.31.12+k3s1) is older than Knative 1.20.0 supports "
        "(>= 1.32); raise k3s or lower knative_serving\n"
    )
    assert recorded_runs == []


def test_install_version_option_and_bundle(cli, recorded_runs: list[dict[str, Any]], tmp_path: Path) -> None:
    write(cli, "boards.yml", K3S_ANSIBLE_INVENTORY)
    bundle = tmp_path / "bundle"
    (bundle / "arm64").mkdir(parents=True)
    binary = bundle / "arm64" / "k3s-arm64"
    binary.write_bytes(b"binary")
    manifest = {
        "format": 1,
        "k3s_version": "v1.33.3+k3s1",
        "arches": ["arm64"],
        "files": {"arm64/k3s-arm64": {"sha256": hashlib.sha256(b"binary").hexdigest(), "size": 6}},
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest))

    mismatch = cli("edge", "install", "-i", "boards.yml", "--bundle", str(bundle), "--until", "kubernetes")
    assert mismatch.exit_code == 2
    assert "bundle holds k3s v1.33.3+k3s1 but the cluster pins v1.33.4+k3s1" in mismatch.stderr
    assert [run["playbook"] for run in recorded_runs] == ["prepare.yml"], "the OS is prepared before k3s"

    recorded_runs.clear()
    result = cli(
        "edge",
        "install",
        "-i",
        "boards.yml",
        "--bundle",
        str(bundle),
        "--k3s-version",
        "v1.33.3+k3s1",
        "--until",
        "kubernetes",
    )
    assert result.exit_code == 0, result.output
    assert [run["playbook"] for run in recorded_runs] == ["kubernetes.yml"]
    assert recorded_runs[0]["vars"]["k3s_version"] == "v1.33.3+k3s1"
    assert recorded_runs[0]["vars"]["k3s_airgap_dir"] == str(bundle.resolve())


@pytest.mark.parametrize(
    ("inventory", "expected"),
    [
        ("[boards]\n192.0.2.10\n", "boards.yml: no hosts in group `server` (groups found: boards)"),
        ("[server]\na\nb\n[agent]\nc\n", "boards.yml: group `server` has 2 hosts; etcd needs an odd number"),
        ("[server]\na\n[agent]\na\n", "boards.yml: a in both `server` and `agent`"),
        ("[server]\na\n[all:vars]\nk3s_version=1.33.3\n", "boards.yml: k3s_version: '1.33.3' is not a k3s release"),
    ],
)
def test_install_refuses_bad_inventories_in_one_line(
    cli, recorded_runs: list[dict[str, Any]], inventory: str, expected: str
) -> None:
    write(cli, "boards.yml", inventory)
    result = cli("edge", "install", "-i", "boards.yml", "--until", "kubernetes")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {expected}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert recorded_runs == []


def test_install_refuses_missing_inventory_and_a_spec_clusters_name(cli, recorded_runs: list) -> None:
    missing = cli("edge", "install", "-i", "nowhere.yml", "--until", "kubernetes")
    assert missing.exit_code == 2
    assert "nowhere.yml: no such inventory" in missing.stderr
    write(cli, "boards.yml", K3S_ANSIBLE_INVENTORY)
    ClusterState("lab").save_spec("name: lab\n")
    taken = cli("edge", "install", "-i", "boards.yml", "--name", "lab", "--until", "kubernetes")
    assert taken.exit_code == 2
    assert taken.stderr == "error: --name lab: cluster lab is a local cluster made by `up`; choose another --name\n"
    assert recorded_runs == []


def test_reset_refuses_without_a_terminal_unless_yes(cli, recorded_runs: list[dict[str, Any]]) -> None:
    write(cli, "boards.yml", K3S_ANSIBLE_INVENTORY)
    refused = cli("edge", "reset", "-i", "boards.yml")
    assert refused.exit_code == 2
    assert "would remove k3s and its data from 3 host(s) of boards.yml" in refused.stderr
    assert "pass --yes" in refused.stderr
    assert recorded_runs == []

    state = ClusterState("edge").ensure()
    state.write_file(state.kubeconfig_file, "kubeconfig")
    with run_lock(folder_of(state), "edge"):
        beside = cli("edge", "reset", "-i", "boards.yml", "--yes")
    assert (beside.exit_code, beside.stderr) == (
        2,
        f"error: edge reset: the autoscaler of cluster edge runs (pid {os.getpid()}) and would power workers on "
        "while they are removed; stop it first (`systemctl --user stop oscar-autoscaler@edge` for the service)\n",
    )
    assert recorded_runs == []
    done = cli("edge", "reset", "-i", "boards.yml", "--yes")
    assert done.exit_code == 0, done.output
    assert [run["playbook"] for run in recorded_runs] == ["reset.yml"]
    assert recorded_runs[0]["vars"]["reset_confirmation"] == "yes"
    assert not state.path.exists(), "the state folder goes with the cluster"


def test_reset_asks_on_a_terminal(cli, recorded_runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    write(cli, "boards.yml", K3S_ANSIBLE_INVENTORY)
    monkeypatch.setattr(options, "stdin_is_terminal", lambda: True)
    declined = cli("edge", "reset", "-i", "boards.yml", input="n\n")
    assert declined.exit_code == 1
    assert "Remove k3s, its data and every workload from 3 host(s)" in declined.output
    assert recorded_runs == []
    accepted = cli("edge", "reset", "-i", "boards.yml", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert [run["playbook"] for run in recorded_runs] == ["reset.yml"]


def test_host_key_checking_the_inventory_sets_is_kept_and_its_ssh_options_come_first(
    state_home: Path, tmp_path: Path
) -> None:
    inventory = tmp_path / "boards.yml"
    inventory.write_text(
        "server:\n  hosts:\n    pi-0:\n      ansible_host: 192.0.2.10\n"
        "      ansible_ssh_extra_args: -o StrictHostKeyChecking=no\n"
        "agent:\n  hosts:\n    pi-1:\n      ansible_host: 192.0.2.11\n      ansible_host_key_checking: false\n"
        "    pi-2:\n      ansible_host: 192.0.2.12\n      ansible_ssh_host_key_checking: true\n"
    )
    nodes = {node.name: node for node in StaticProvider(ClusterState("pis"), inventory).nodes()}
    assert nodes["pi-0"].variables == {
        "ansible_ssh_host_key_checking": True,
        "ansible_ssh_extra_args": "-o StrictHostKeyChecking=no -o StrictHostKeyChecking=accept-new",
    }, "ssh takes an option's first value: the inventory's own wins"
    assert nodes["pi-1"].variables == {"ansible_host_key_checking": False}
    assert nodes["pi-2"].variables == {"ansible_ssh_host_key_checking": True}
    command = StaticProvider(ClusterState("pis"), inventory).ssh_command(nodes["pi-0"], ["true"])
    assert command[1:] == [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-p",
        "22",
        f"{getpass.getuser()}@192.0.2.10",
        "true",
    ]


def test_status_json_leaves_out_the_inventorys_own_variables(cli, recorded_runs: list[dict[str, Any]]) -> None:
    secret_vars = "    token: K10sharedsecretvalue\n    ansible_become_password: hunter2becomepassword\n"
    write(cli, "boards.yml", K3S_ANSIBLE_INVENTORY + secret_vars)
    assert cli("edge", "install", "-i", "boards.yml", "--name", "pis", "--until", "kubernetes").exit_code == 0
    status = cli("status", "-c", "pis", "--json")
    assert status.exit_code == 0, status.output
    assert "K10sharedsecretvalue" not in status.stdout and "hunter2becomepassword" not in status.stdout
    server = json.loads(status.stdout)["nodes"][0]
    assert (server["name"], server["ssh_user"], server["address"]) == ("192.0.2.10", "debian", "192.0.2.10")
    assert "variables" not in server
