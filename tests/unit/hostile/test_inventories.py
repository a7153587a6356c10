"""Class 13: inventories are read as carefully as specs (duplicate hosts, misspelt variables of the k3s-ansible
family, with file:line), and the state root's missing parents are created private."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from oscar_deploy.state.folder import cluster_state
from tests.unit.hostile.contract import assert_refused


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "boards.yml",
            "k3s_cluster:\n  children:\n    server:\n      hosts:\n        pi: {ansible_host: 192.0.2.10}\n"
            "        pi: {ansible_host: 192.0.2.11}\n",
            "boards.yml:6: k3s_cluster.children.server.hosts.pi: given twice (first at line 5); keep one",
        ),
        (
            "boards.ini",
            "[server]\npi ansible_host=192.0.2.10\n[agent]\nb1\nb1 ansible_host=192.0.2.12\n",
            "boards.ini:5: host 'b1': given twice in [agent] (first at line 4); keep one",
        ),
        (
            "boards.yml",
            "k3s_cluster:\n  children:\n    server:\n      hosts:\n        pi: {ansible_host: 192.0.2.10}\n"
            "  vars:\n    k3s_verison: v1.33.3+k3s1\n",
            "boards.yml:7: group 'k3s_cluster' vars: variable 'k3s_verison' is not one the playbooks read; "
            "did you mean 'k3s_version'?",
        ),
        (
            "boards.yml",
            "server:\n  hosts:\n    pi: {ansible_hots: 192.0.2.10}\n",
            "boards.yml:3: host 'pi': variable 'ansible_hots' is not one the playbooks read; "
            "did you mean 'ansible_host'?",
        ),
        (
            "boards.ini",
            "[server]\npi ansible_host=192.0.2.10 extra_server_arg=--debug\n",
            "boards.ini:2: host 'pi': variable 'extra_server_arg' is not one the playbooks read; did you mean "
            "'extra_server_args'?",
        ),
        (
            "boards.ini",
            "[all:vars]\nairgap_dri=/srv/bundle\n[server]\npi\n",
            "boards.ini:2: group 'all' vars: variable 'airgap_dri' is not one the playbooks read; "
            "did you mean 'airgap_dir'?",
        ),
        (
            "boards.yml",
            "- pi\n",
            "boards.yml:1: not an inventory: its top level maps group names (server, agent) to groups",
        ),
        (
            "boards.yml",
            "server:\n  hosts: pi\n",
            "boards.yml:2: group 'server': `hosts` maps host names to their variables, not a value",
        ),
        ("boards.yml", "server:\n  hosts: {pi: [\n", "boards.yml:3: not valid YAML (expected the node content"),
        ("boards.yml", "[server]\npi ansible_host=192.0.2.10\n[agent]\npi\n", "boards.yml: pi in both `server`"),
    ],
    ids=[
        "yaml duplicate host",
        "ini duplicate host",
        "yaml group var",
        "yaml host var",
        "ini host var",
        "ini group var",
        "yaml list",
        "yaml hosts not a mapping",
        "yaml syntax",
        "ini in a .yml file",
    ],
)
def test_inventory_mistakes_are_named_by_line(hostile, name: str, text: str, expected: str) -> None:
    hostile.write(name, text)
    assert_refused(hostile.run("edge", "install", "-i", name), expected)
    assert not hostile.state.exists()


def test_own_variables_and_k3s_ansible_names_pass(hostile) -> None:
    """A variable that is not close to one of the playbooks' is the user's own: it passes."""
    from oscar_deploy.nodes.inventory import check_inventory

    inventory = hostile.write(
        "boards.yml",
        "k3s_cluster:\n  children:\n    server:\n      hosts:\n        pi: {ansible_host: 192.0.2.10, my_label: x}\n"
        "  vars: {token: abc, api_endpoint: 192.0.2.10, extra_server_args: '', user_kubectl: true}\n",
    )
    check_inventory(inventory)


def test_the_state_root_and_its_missing_parents_are_private(hostile, monkeypatch: pytest.MonkeyPatch) -> None:
    root = hostile.scratch / "deep" / "er" / "clusters"
    monkeypatch.setenv("OSCAR_DEPLOY_HOME", str(root))
    cluster_state("demo").ensure()
    for folder in (hostile.scratch / "deep", hostile.scratch / "deep" / "er", root, root / "demo"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("{ansible_host: 192.0.2.10, arch: sparc}", "host pi: arch 'sparc' is not one of amd64, arm64, arm; fix it"),
        ("{ansible_host: 192.0.2.10, ansible_port: 65536}", "host pi: ansible_port '65536' is not a port number"),
        ("{ansible_host: 192.0.2.10, ansible_port: 0}", "host pi: ansible_port '0' is not a port number (1-65535)"),
        ("{ansible_host: 192.0.2.10, ansible_port: abc}", "host pi: ansible_port 'abc' is not a port number"),
    ],
    ids=["unknown arch", "port above the range", "port zero", "port not a number"],
)
def test_a_hosts_arch_and_port_are_checked(hostile, host: str, expected: str) -> None:
    hostile.write("boards.yml", f"server:\n  hosts:\n    pi: {host}\n")
    assert_refused(hostile.run("edge", "install", "-i", "boards.yml"), f"boards.yml: {expected}")
    assert not hostile.state.exists()


def test_the_highest_port_and_an_arch_alias_are_taken() -> None:
    from oscar_deploy.nodes.inventory import InventoryView
    from oscar_deploy.providers.static.provider import node_from_host

    view = InventoryView(Path("boards.yml"), {}, {"pi": {"ansible_port": "65535", "arch": "aarch64"}})
    node = node_from_host(view, "pi", "server")
    assert (node.ssh_port, node.arch) == (65535, "arm64")
    assert node_from_host(InventoryView(Path("b.yml"), {}, {"pi": {"ansible_port": 1}}), "pi", "agent").ssh_port == 1
