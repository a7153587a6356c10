"""Prints the wall time of three runs of playbooks/site.yml on the same 4 local nodes, in one go: the first run
(installs everything), the second (finds every node converged: one call per node, no role runs) and a forced
drift check (`-e k3s_check_drift=true`: every role runs on every node and changes nothing), with each run's
changed and executed task counts per host and the ratios the node layer aims at.

The nodes are podman containers made by the `local` provider (one server, three agents; `--arm64-agents N`
makes the last N agents arm64, emulated with qemu-user). k3s comes from an air-gap bundle of the test
stand-in (tests/doubles), so no network is used and the figures are those of the roles themselves. The runs
go through the CLI's own runner (ansible-runner, one SSH connection per node and run). The nodes are removed
afterwards.

    .venv/bin/python benchmarks/site_run.py [--nodes 4] [--arm64-agents 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# The test stand-ins (tests/doubles) and the node helper live in the checkout, beside this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oscar_deploy.nodes.ansible import PlaybookResult
from oscar_deploy.nodes.model import PlannedNode
from tests.nodes.k3s_nodes import NodeCluster, describe

RUNS = (
    ("first run", {}),
    ("second run", {}),
    ("drift check", {"k3s_check_drift": True}),
)


def per_host(result: PlaybookResult) -> str:
    """`host changed/executed` for each host: tasks that changed something / tasks that ran (not skipped)."""
    return ", ".join(
        f"{host} {stats.changed}/{stats.ok + stats.failures}" for host, stats in sorted(result.stats.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4, help="nodes: one server, the rest agents")
    parser.add_argument("--arm64-agents", type=int, default=0, help="how many of the agents are arm64")
    args = parser.parse_args()

    agents = args.nodes - 1
    plan = [PlannedNode("server-0", "server", "amd64")] + [
        PlannedNode(f"agent-{index}", "agent", "arm64" if index >= agents - args.arm64_agents else "amd64")
        for index in range(agents)
    ]
    with tempfile.TemporaryDirectory(prefix="oscar-bench-") as home:
        cluster = NodeCluster("benchsite", Path(home), name=f"bench-site-{int(time.time())}")
        try:
            started = time.monotonic()
            cluster.apply(plan)
            print(f"{args.nodes} nodes created and SSH-ready: {time.monotonic() - started:.1f} s")
            version = "v1.33.3+k3s1"
            cluster.bundle(version, sorted({node.arch for node in plan}))
            seconds: dict[str, float] = {}
            for label, extravars in RUNS:
                started = time.monotonic()
                result = cluster.playbook("site.yml", version, extravars)
                seconds[label] = time.monotonic() - started
                if not result.succeeded:
                    raise SystemExit(describe(result))
                print(f"site.yml {label}: {seconds[label]:.1f} s (changed/executed tasks: {per_host(result)})")
            first = seconds["first run"]
            print(
                f"second run / first run: {seconds['second run'] / first:.0%} (goal <= 40%); "
                f"first run {first:.1f} s (goal <= 30 s); "
                f"drift check / first run: {seconds['drift check'] / first:.0%} (goal <= 100%)"
            )
        finally:
            cluster.destroy()


if __name__ == "__main__":
    main()
