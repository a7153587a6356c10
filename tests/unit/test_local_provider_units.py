"""Local nodes without containers: the plan, inventory layout, host detection, addresses, `up` refusals."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
import yaml

from oscar_deploy.nodes.inventory import inventory_data, write_inventory
from oscar_deploy.nodes.model import Node, node_sort_key
from oscar_deploy.providers.base import counted_plan
from oscar_deploy.providers.local import host
from oscar_deploy.providers.local.provider import node_ip
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.state.folder import ClusterState

SERVER = Node("server-0", "server", "amd64", "running", "10.89.0.2", "127.0.0.1", 40022, "root", 46443)
AGENT = Node("agent-0", "agent", "arm64", "running", "10.89.0.10", "127.0.0.1", 40023, "root")


# --- plan and addresses ---------------------------------------------------------------------------------------


def test_plan_names_servers_then_agents_with_the_spec_arches() -> None:
    spec = parse_spec("name: demo\nservers: {count: 3}\nworkers: {initial: 2, max: 4}\nlocal: {worker_arch: arm64}\n")
    plan = counted_plan(spec, spec.workers.initial)
    assert [(node.name, node.role, node.arch) for node in plan] == [
        ("server-0", "server", "amd64"),
        ("server-1", "server", "amd64"),
        ("server-2", "server", "amd64"),
        ("agent-0", "agent", "arm64"),
        ("agent-1", "agent", "arm64"),
    ]


def test_counted_plan_keeps_existing_agents_and_fills_the_lowest_free_numbers() -> None:
    spec = parse_spec("name: demo\nworkers: {initial: 2, max: 4}\nlocal: {worker_arch: arm64}\n")
    existing = [SERVER, Node("agent-1", "agent", "amd64", "running")]
    plan = counted_plan(spec, 3, existing)
    assert [(node.name, node.arch) for node in plan] == [
        ("server-0", "amd64"),
        ("agent-1", "amd64"),
        ("agent-0", "arm64"),
        ("agent-2", "arm64"),
    ], "an existing agent keeps its arch; new ones take the spec's"


def test_counted_plan_below_the_existing_agents_leaves_out_the_highest_numbered() -> None:
    spec = parse_spec("name: demo\nworkers: {initial: 2, max: 4}\n")
    existing = [Node(f"agent-{n}", "agent", "amd64", "running") for n in (0, 2, 10)]
    assert [node.name for node in counted_plan(spec, 1, existing)] == ["server-0", "agent-0"]
    assert [node.name for node in counted_plan(spec, 0, existing)] == ["server-0"]
    assert [node.name for node in counted_plan(spec, 3, existing)] == ["server-0", "agent-0", "agent-2", "agent-10"]


def test_node_addresses_are_fixed_per_name_and_fit_the_largest_spec() -> None:
    subnet = ipaddress.IPv4Network("10.89.3.0/24")
    assert node_ip(subnet, "server-0") == "10.89.3.2"
    assert node_ip(subnet, "server-6") == "10.89.3.8"
    assert node_ip(subnet, "agent-0") == "10.89.3.10"
    assert node_ip(subnet, "agent-199") == "10.89.3.209"
    assert sorted(["agent-10", "server-1", "agent-2", "server-0"], key=node_sort_key) == [
        "server-0",
        "server-1",
        "agent-2",
        "agent-10",
    ]


# --- inventory ------------------------------------------------------------------------------------------------


def test_inventory_has_k3s_groups_and_every_host_variable(state_home: Path) -> None:
    state = ClusterState("demo")
    text = write_inventory(state, [SERVER, AGENT], "-o StrictHostKeyChecking=no")
    assert stat.S_IMODE(state.inventory_file.stat().st_mode) == 0o600
    data = yaml.safe_load(state.inventory_file.read_text())
    assert yaml.safe_load(text) == data
    children = data["k3s_cluster"]["children"]
    assert set(children) == {"server", "agent"}
    server = children["server"]["hosts"]["server-0"]
    assert server == {
        "ansible_host": "127.0.0.1",
        "ansible_port": 40022,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(state.ssh_private_key),
        "arch": "amd64",
        "node_address": "10.89.0.2",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no",
        "k3s_api_public_port": 46443,
    }
    agent = children["agent"]["hosts"]["agent-0"]
    assert agent["arch"] == "arm64"
    assert "k3s_api_public_port" not in agent
    assert data["k3s_cluster"]["vars"] == {"cluster_name": "demo"}


def test_inventory_of_hosts_without_extra_ssh_options_omits_them() -> None:
    data = inventory_data([AGENT], "/k")
    assert "ansible_ssh_common_args" not in data["k3s_cluster"]["children"]["agent"]["hosts"]["agent-0"]
    assert data["k3s_cluster"]["children"]["server"]["hosts"] == {}


def test_inventory_is_read_by_ansible_itself(state_home: Path) -> None:
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    state = ClusterState("demo")
    write_inventory(state, [SERVER, AGENT])
    manager = InventoryManager(loader=DataLoader(), sources=[str(state.inventory_file)])
    assert [host.name for host in manager.get_hosts("server")] == ["server-0"]
    assert [host.name for host in manager.get_hosts("agent")] == ["agent-0"]
    assert sorted(host.name for host in manager.get_hosts("k3s_cluster")) == ["agent-0", "server-0"]


# --- host detection -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mounts", "expected"),
    [
        ("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n", "v2"),
        ("tmpfs /sys/fs/cgroup tmpfs ro 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n", "hybrid"),
        ("tmpfs /sys/fs/cgroup tmpfs ro 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n", "v1"),
    ],
)
def test_cgroup_mode_from_mounts(tmp_path: Path, mounts: str, expected: str) -> None:
    mounts_file = tmp_path / "mounts"
    mounts_file.write_text(mounts)
    assert host.cgroup_mode(mounts_file) == expected


def test_runtime_is_forced_only_on_cgroup_v1_hosts() -> None:
    runtime, line = host.runtime_check("v2")
    assert runtime is None and line.status == "ok"
    runtime, line = host.runtime_check("hybrid")
    assert (runtime, line.status) == ("runc", "ok"), "runc is installed by scripts/install-system-packages.sh"


def test_host_profile_flags() -> None:
    normal = host.HostProfile(cgroup="v2", runtime=None, ulimits=())
    assert normal.run_flags() == []
    quirky = host.HostProfile(cgroup="hybrid", runtime="runc", ulimits=("nofile=1024:1024", "nproc=4096:4096"))
    assert quirky.run_flags() == [
        "--runtime",
        "runc",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
    ]


def test_explicit_ulimits_stay_within_the_hard_limits() -> None:
    import resource

    limits = dict(item.split("=") for item in host.explicit_ulimits())
    nofile = int(limits["nofile"].split(":")[1])
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert nofile <= host.NODE_NOFILE_CAP
    assert hard == resource.RLIM_INFINITY or nofile <= hard


def test_foreign_arch_readiness_names_the_fix(tmp_path: Path) -> None:
    binfmt = tmp_path / "binfmt_misc"
    binfmt.mkdir()
    ready, detail, fix = host.foreign_arch_ready("arm64", binfmt)
    assert not ready and detail == "binfmt_misc is not mounted"
    assert fix.startswith("sudo mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc")
    (binfmt / "status").write_text("enabled\n")
    ready, _, fix = host.foreign_arch_ready("arm64", binfmt)
    assert not ready and fix == "sudo update-binfmts --enable qemu-aarch64"
    (binfmt / "qemu-aarch64").write_text("disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")
    assert not host.foreign_arch_ready("arm64", binfmt)[0]
    (binfmt / "qemu-aarch64").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")
    assert host.foreign_arch_ready("arm64", binfmt)[0]
    assert host.foreign_arch_ready("amd64", binfmt)[0], "the host's own arch needs no emulation"


# --- commands that refuse before touching anything -----------------------------------------------------------


def test_local_engine_docker_is_refused_with_the_fix(cli) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text("name: dock\nlocal: {engine: docker}\n")
    result = cli("status")
    assert result.exit_code == 2
    assert "cluster.yaml:2: local.engine: 'docker' is not allowed; use 'auto' or 'podman'" in result.output
