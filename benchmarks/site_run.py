"""Prints the wall time of the first and the second run of playbooks/site.yml on 4 local nodes.

The nodes are podman containers made by the `local` provider (one server, three agents; `--arm64-agents N`
makes the last N agents arm64, emulated with qemu-user). k3s comes from an air-gap bundle of the test
stand-in (tests/doubles), so no network is used and the figures are those of the roles themselves: the
first run installs everything, the second finds everything in place and changes nothing (its `changed`
counts are printed too). The nodes are removed afterwards.

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

from oscar_deploy.nodes.model import PlannedNode
from tests.nodes.k3s_nodes import NodeCluster, describe


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
            for label in ("first", "second"):
                started = time.monotonic()
                result = cluster.playbook("site.yml", version)
                elapsed = time.monotonic() - started
                if not result.succeeded:
                    raise SystemExit(describe(result))
                changed = ", ".join(f"{host} {stats.changed}" for host, stats in sorted(result.stats.items()))
                print(f"site.yml {label} run: {elapsed:.1f} s (changed: {changed})")
        finally:
            cluster.destroy()


if __name__ == "__main__":
    main()
