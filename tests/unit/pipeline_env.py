"""Shared by the pipeline tests: a provider in memory, a recorder standing for Ansible runs, and a context."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from oscar_deploy.nodes.model import Node, PlannedNode
from oscar_deploy.pipeline import node_phases
from oscar_deploy.pipeline.phases import PhaseContext
from oscar_deploy.providers.base import ApplyResult, ScalingMode, counted_plan
from oscar_deploy.spec.models import ClusterSpec, parse_spec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.progress import Progress

SPEC = "name: demo\nworkers: {initial: 1, max: 3}\n"


@dataclass
class MemoryProvider:
    """TEST DOUBLE for a provider (the real local one is exercised in the nodes tier): nodes in a dict, each
    created node gets a new instance id, as a recreated container or VM would."""

    scaling: ScalingMode = "count"
    ssh_common_args: str = ""
    machines: dict[str, Node] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=itertools.count)
    calls: list[str] = field(default_factory=list)

    def plan(self, spec: ClusterSpec, workers: int) -> list[PlannedNode]:
        return counted_plan(spec, workers, self.nodes())

    def apply(self, plan: Sequence[PlannedNode]) -> ApplyResult:
        self.calls.append("apply")
        result = ApplyResult(nodes=[])
        for node in plan:
            if node.name not in self.machines:
                self.machines[node.name] = Node(
                    node.name,
                    node.role,
                    node.arch,
                    "running",
                    f"10.0.0.{len(self.machines) + 2}",
                    "127.0.0.1",
                    2200 + len(self.machines),
                    instance=f"i-{next(self.ids)}",
                )
                result.created.append(node.name)
        result.extra = [name for name in self.machines if name not in {node.name for node in plan}]
        result.nodes = self.nodes()
        return result

    def nodes(self) -> list[Node]:
        return list(self.machines.values())

    def destroy(self) -> list[str]:
        self.machines.clear()
        return []

    def power_on(self, name: str) -> Node:
        return self.machines[name]

    def power_off(self, name: str) -> None:
        self.calls.append(f"power_off {name}")

    def remove(self, name: str) -> list[str]:
        self.machines.pop(name)
        return [f"node {name}"]

    def ssh_command(self, node: Node, command: Sequence[str] = ()) -> list[str]:
        return ["ssh", node.name, *command]


@dataclass
class PlaybookRun:
    playbook: str
    limit: str | None
    k3s_version: str
    # The variables the playbook was given.
    variables: dict[str, Any] = field(default_factory=dict)


def record_playbooks(monkeypatch: pytest.MonkeyPatch) -> list[PlaybookRun]:
    """TEST DOUBLE for K3sLayer.run (ansible-runner): records each playbook run and reports one changed host;
    kubernetes.yml writes a kubeconfig (a comment, not a real one) where the real play fetches it when missing."""
    runs: list[PlaybookRun] = []

    def run(
        self: node_phases.K3sLayer, playbook: str, extra: Any = None, limit: str | None = None, check: bool = False
    ):  # type: ignore[no-untyped-def]
        from oscar_deploy.nodes.ansible import HostStats, PlaybookResult

        runs.append(PlaybookRun(playbook, limit, self.k3s_version, {**self.variables(), **(extra or {})}))
        destination = Path(runs[-1].variables.get("k3s_kubeconfig_dest") or "")
        if playbook == "kubernetes.yml" and destination.name and not destination.exists():
            destination.write_text("# kubeconfig written by the playbook recorder (test double)\n")
        stats = {"server-0": HostStats(ok=1, changed=1)}
        return PlaybookResult(playbook, "successful", 0, stats, [], Path("log"), {"server-0": ["Recorded task"]})

    monkeypatch.setattr(node_phases.K3sLayer, "run", run)
    return runs


def make_context(
    state_home: Path, provider: MemoryProvider, spec_text: str = SPEC, bundle: Path | None = None
) -> PhaseContext:
    spec = parse_spec(spec_text)
    context = PhaseContext(spec, ClusterState(spec.name), Progress(), provider, bundle=bundle)  # type: ignore[arg-type]
    context.nodes = provider.nodes()
    return context
