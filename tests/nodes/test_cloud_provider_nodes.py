"""Target openstack end to end on local nodes standing in for the VMs: `up`, `ssh`, `scale` out and in, `down`.

Everything after the stack runs for real: the inventory the provider writes from the stack's outputs, SSH with
the host keys pinned before the first connection (StrictHostKeyChecking yes) and ProxyJump through the first
server, the prepare and kubernetes playbooks, scale.yml, the drain of remove-node.yml before the VM goes.
What stands in: the Pulumi runner is the recording fake (tests/doubles/stack_runner.py), whose responder plays
the program and cloud-init: it exports the local nodes' addresses for the declared nodes and puts on each node
what cloud-init would (the cluster's public key for the login user, the generated host key from the rendered
user data). openstacksdk logs in and runs the preflight against the OpenStack API double on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from oscar_deploy.iac.runner import OutputValue, StackTarget
from oscar_deploy.nodes.model import PlannedNode
from oscar_deploy.pipeline.cluster import cluster_provider
from oscar_deploy.providers.vm import generate_host_key, render_user_data
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.progress import Progress
from tests.conftest import Cli
from tests.doubles import stack_runner
from tests.doubles.openstack_api import PROJECT_ID, FakeOpenStack
from tests.nodes.harness import ClusterFactory
from tests.nodes.k3s_nodes import NodeCluster
from tests.unit.cloud.cloud_env import NovaServers, ProgramResponder
from tests.unit.cloud.test_openstack_preflight import ACCESS_TOKEN, cloud_content

pytestmark = [pytest.mark.nodes, pytest.mark.timeout(2400), pytest.mark.filterwarnings("ignore::DeprecationWarning")]
STAND_INS = ("server-0", "agent-0", "agent-1")


class CloudInitStandIn(ProgramResponder):
    """The program's outputs for the local nodes, after doing on each declared node what cloud-init would."""

    def __init__(self, vms: NodeCluster, cloud: FakeOpenStack) -> None:
        addresses = {name: str(node.address) for name, node in vms.nodes.items()}
        super().__init__(addresses=lambda name: (addresses[name], addresses[name]), cloud=NovaServers(cloud))
        self.vms = vms
        self.prepared: set[tuple[str, str]] = set()

    def __call__(self, target: StackTarget, refresh: bool = False) -> dict[str, OutputValue]:
        spec: Any = target.program.args[0]  # type: ignore[union-attr]
        for node in spec.nodes:
            host_key = spec.host_keys.get(node.name)
            if (node.name, host_key.public) in self.prepared:
                continue
            user_data = yaml.safe_load(render_user_data(spec.cluster, node, host_key))
            keys = user_data["ssh_keys"]
            self.vms.upload(node.name, "/etc/ssh/ssh_host_ed25519_key", keys["ed25519_private"].encode(), "0600")
            self.vms.upload(node.name, "/etc/ssh/ssh_host_ed25519_key.pub", keys["ed25519_public"].encode() + b"\n")
            # The image's key pair for the login user; the harness keeps its own key there to reach the node.
            authorized = self.vms.read(node.name, "/root/.ssh/authorized_keys") + spec.public_key + "\n"
            self.vms.upload(node.name, "/root/.ssh/authorized_keys", authorized.encode(), "0600")
            self.vms.ssh(node.name, "systemctl restart ssh")
            self.prepared.add((node.name, host_key.public))
        return super().__call__(target, refresh)


@pytest.fixture
def vms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    cluster = NodeCluster("cloudvms", tmp_path_factory.mktemp("cloud-vms"))
    try:
        cluster.apply([PlannedNode(name, name.split("-")[0], "amd64") for name in STAND_INS])  # type: ignore[arg-type]
        yield cluster
    finally:
        assert cluster.destroy() == []


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenStack]:
    server = FakeOpenStack(**cloud_content(), access_tokens={("egi.eu", "openid"): {ACCESS_TOKEN}})  # type: ignore[arg-type]
    auth = {
        "auth_url": server.auth_url,
        "identity_provider": "egi.eu",
        "protocol": "openid",
        "access_token": ACCESS_TOKEN,
        "project_id": PROJECT_ID,
    }
    config = tmp_path / "clouds.yaml"
    config.write_text(yaml.safe_dump({"clouds": {"egi": {"auth_type": "v3oidcaccesstoken", "auth": auth}}}))
    for name in [name for name in os.environ if name.startswith("OS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(config))
    yield server
    server.stop()


def run_ssh(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)


def test_openstack_cluster_on_stand_in_vms_up_ssh_scale_and_down(
    vms: NodeCluster,
    cloud: FakeOpenStack,
    cluster_factory: ClusterFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OSCAR_DEPLOY_HOME", str(tmp_path / "state"))
    runner = stack_runner.install(monkeypatch)
    name = f"ot{os.getpid()}-cloud"
    stand_in = CloudInitStandIn(vms, cloud)
    runner.stack("oscar-openstack", name).responder = stand_in
    work = tmp_path / "work"
    work.mkdir()
    spec_text = (
        f"name: {name}\ntarget: openstack\nworkers: {{initial: 1, min: 0, max: 2}}\n"
        "openstack: {cloud: egi, ssh_user: root}\n"
    )
    (work / "cluster.yaml").write_text(spec_text)
    cli = Cli(work)
    state = ClusterState(name)
    try:
        up = cli("up", "--until", "kubernetes", "--bundle", str(cluster_factory.bundle))
        assert up.exit_code == 0, up.output
        assert "prepare: 2 node(s) prepared" in up.output

        provider = cluster_provider(parse_spec(spec_text), state, Progress())
        nodes = {node.name: node for node in provider.nodes()}
        assert nodes["agent-0"].ssh_host == vms.nodes["agent-0"].address
        assert (
            "ProxyJump=root@" + str(vms.nodes["server-0"].address)
            in nodes["agent-0"].variables["ansible_ssh_common_args"]
        )
        through_jump = run_ssh(provider.ssh_command(nodes["agent-0"], ["cat /etc/hostname"]))
        assert through_jump.returncode == 0, through_jump.stderr
        assert through_jump.stdout.strip() == "agent-0"

        # A host key other than the pinned one is refused, on the node and on the jump host alike.
        known_hosts = state.ssh_dir / "known_hosts"
        pinned = known_hosts.read_text()
        impostor = generate_host_key("root@impostor").public
        for victim in ("agent-0", "server-0"):
            lines = [
                line.split(" ", 1)[0] + " " + impostor
                if str(vms.nodes[victim].address) in line.split(" ", 1)[0].split(",")
                else line
                for line in pinned.splitlines()
            ]
            known_hosts.write_text("\n".join(lines) + "\n")
            refused = run_ssh(provider.ssh_command(nodes["agent-0"], ["true"]))
            assert refused.returncode == 255
            assert "Host key verification failed" in refused.stderr, refused.stderr
        known_hosts.write_text(pinned)

        grown = cli("scale", "--workers", "2")
        assert grown.exit_code == 0, grown.output
        assert grown.output.splitlines()[-1] == f"cluster {name}: 2 worker(s); added agent-1"
        joined = vms.ssh("server-0", "k3s kubectl get nodes --no-headers").stdout
        assert "agent-1" in joined, joined

        shrunk = cli("scale", "--workers", "1")
        assert shrunk.exit_code == 0, shrunk.output
        assert shrunk.output.splitlines()[-1] == f"cluster {name}: 1 worker(s); drained and removed agent-1"
        drained = [line for line in vms.kubectl_calls("server-0") if "agent-1" in line]
        assert any(" drain " in f" {line} " for line in drained), drained
        assert [node.name for node in stand_in.last.nodes] == ["server-0", "agent-0"]
        assert not vms.exists("agent-1", "/etc/rancher/k3s/config.yaml"), "remove-node.yml reset it"

        down = cli("down", "--yes")
        assert down.exit_code == 0, down.output
        assert f"oscar-openstack/{name}" not in runner.stacks
        assert not state.path.exists()
    finally:
        state.destroy()
