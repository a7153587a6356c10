"""Prints the seconds the `local` provider takes to create N nodes from a cached image, until each answers SSH.

The node image is built first if it is missing (not timed: that happens once per machine). The cluster is
removed afterwards and that time is printed too.

    .venv/bin/python benchmarks/local_nodes.py [--nodes 4] [--arch amd64|arm64] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from oscar_deploy.nodes.model import PlannedNode
from oscar_deploy.providers.local.engine import ContainerEngine
from oscar_deploy.providers.local.node_image import NodeImageBuilder
from oscar_deploy.providers.local.provider import LocalProvider
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.progress import Progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4, help="nodes to create: one server, the rest agents")
    parser.add_argument("--arch", choices=("amd64", "arm64"), default="amd64")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()

    engine = ContainerEngine.find()
    quiet = Progress()
    build_started = time.monotonic()
    NodeImageBuilder(engine, quiet).ensure(args.arch)
    print(f"node image {args.arch}: ready ({time.monotonic() - build_started:.1f} s, cached after the first build)")

    plan = [PlannedNode("server-0", "server", args.arch)] + [
        PlannedNode(f"agent-{index}", "agent", args.arch) for index in range(args.nodes - 1)
    ]
    create_times: list[float] = []
    destroy_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="oscar-bench-") as home:
        for run in range(args.runs):
            state = ClusterState(f"bench{os.getpid()}-{run}", root=Path(home))
            provider = LocalProvider(state, engine, quiet)
            started = time.monotonic()
            try:
                result = provider.apply(plan)
                create_times.append(time.monotonic() - started)
                assert len(result.created) == args.nodes, result
            finally:
                started = time.monotonic()
                provider.destroy()
                destroy_times.append(time.monotonic() - started)
    print(
        f"create {args.nodes} {args.arch} nodes from a cached image, SSH-ready: "
        f"median {statistics.median(create_times):.1f} s over {len(create_times)} run(s) "
        f"(min {min(create_times):.1f} s, max {max(create_times):.1f} s)"
    )
    print(f"remove them (containers, volumes, network): median {statistics.median(destroy_times):.1f} s")


if __name__ == "__main__":
    main()
