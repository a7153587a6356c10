"""`scale --workers N`: the range check against the spec, preconditions, and which nodes grow or go.

Scaling for real (nodes created, joined, drained and destroyed) runs in tests/nodes/test_k3s_cli.py.
"""

from __future__ import annotations

import pytest

from oscar_deploy.cli.commands.scale_command import _grown_plan
from oscar_deploy.providers.base import Node
from oscar_deploy.spec.models import parse_spec
from oscar_deploy.state.folder import ClusterState

SPEC = "name: lab\ntarget: local\nworkers:\n  initial: 1\n  min: 1\n  max: 3\nlocal:\n  worker_arch: arm64\n"


@pytest.mark.parametrize(
    ("workers", "expected"),
    [
        ("4", "error: --workers 4: above workers.max (3) in cluster.yaml; raise workers.max there"),
        ("0", "error: --workers 0: below workers.min (1) in cluster.yaml; lower workers.min there"),
    ],
)
def test_workers_outside_the_spec_range_name_the_key(cli, workers: str, expected: str) -> None:
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    result = cli("scale", "--workers", workers)
    assert result.exit_code == 2
    assert result.stderr.startswith(expected)


def test_scale_needs_a_local_cluster_with_k3s(cli) -> None:
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    no_state = cli("scale", "--workers", "2")
    assert no_state.exit_code == 2
    assert "cluster 'lab': no state folder" in no_state.stderr
    ClusterState("lab").ensure()
    no_k3s = cli("scale", "--workers", "2")
    assert no_k3s.exit_code == 2
    assert "cluster lab: k3s is not installed yet; run `oscar-deploy up -f cluster.yaml` first" in no_k3s.stderr
    (cli.cwd / "edge.yaml").write_text("name: boards\ntarget: static\n")
    static = cli("scale", "--workers", "1", "-f", "edge.yaml")
    assert static.exit_code == 2
    assert "target static: `scale` handles local clusters" in static.stderr


def test_growing_keeps_every_node_and_fills_the_lowest_free_numbers() -> None:
    spec = parse_spec(SPEC)
    nodes = [
        Node("server-0", "server", "amd64", "running"),
        Node("agent-0", "agent", "arm64", "running"),
        Node("agent-2", "agent", "amd64", "stopped"),
    ]
    plan = _grown_plan(spec, nodes, 4)
    assert [(node.name, node.arch) for node in plan] == [
        ("server-0", "amd64"),
        ("agent-0", "arm64"),
        ("agent-2", "amd64"),
        ("agent-1", "arm64"),
        ("agent-3", "arm64"),
    ]
