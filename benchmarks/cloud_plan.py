"""Prints the time and peak memory of a `plan` (Pulumi preview) of the OpenStack and AWS programs with 500 workers
under Pulumi's mocks, next to the same plan with 1 worker as the baseline. Goal: under 10 s for 500 workers.

Each plan runs in a fresh Python process (the Pulumi runtime keeps global state): `seconds` is the program run
(declaring every resource and resolving the exports) in wall time, `cpu s` the same in CPU time (steadier on a
busy machine), `process` the whole child from start to exit (imports included), `peak MiB` the child's maximum
resident set size.

    .venv/bin/python benchmarks/cloud_plan.py [--workers 500]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 10.0


def child(cloud: str, workers: int) -> None:
    sys.path.insert(0, str(ROOT))
    from oscar_deploy.providers.vm import VmNode, generate_host_key
    from tests.unit.cloud.conftest import PUBLIC_KEY, aws_invokes, openstack_invokes
    from tests.unit.cloud.pulumi_harness import run_program

    if cloud == "openstack":
        from oscar_deploy.providers.openstack.program import OpenStackProgramInput, declare

        sizes, invokes = ("m1.large", "m1.medium"), openstack_invokes()
    else:
        from oscar_deploy.providers.aws.program import AwsProgramInput, declare  # type: ignore[assignment]

        sizes, invokes = ("t3.large", "t3.medium"), aws_invokes()
    agents = [VmNode(f"agent-{i}", "agent", sizes[1]) for i in range(workers)]
    nodes = (VmNode("server-0", "server", sizes[0]), *agents)
    # Host keys for every node, as the provider hands them in: the user data of each node differs.
    host_keys = {node.name: generate_host_key(f"root@{node.name}") for node in nodes}
    common = {
        "cluster": "bench",
        "nodes": nodes,
        "ssh_user": "ubuntu",
        "public_key": PUBLIC_KEY,
        "allowed_cidrs": ("203.0.113.0/24",),
        "host_keys": host_keys,
    }
    spec = (
        OpenStackProgramInput(**common, image="Ubuntu 24.04", external_network="public")  # type: ignore[arg-type]
        if cloud == "openstack"
        else AwsProgramInput(**common)  # type: ignore[arg-type]
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    result = run_program(lambda: declare(spec), invokes, preview=True)  # type: ignore[arg-type]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if len(result.exports["nodes"]) != workers + 1:
        raise SystemExit(f"expected {workers + 1} exported nodes, got {len(result.exports['nodes'])}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mib": peak_mib, "resources": len(result.resources)}))


def measure(cloud: str, workers: int) -> dict[str, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", cloud, str(workers)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["process"] = time.perf_counter() - start
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=500)
    parser.add_argument("--child", nargs=2, metavar=("CLOUD", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    print(f"{'cloud':<10} {'workers':>7} {'resources':>9} {'seconds':>8} {'cpu s':>8} {'process':>8} {'peak MiB':>9}")
    worst, worst_cpu = 0.0, 0.0
    for cloud in ("openstack", "aws"):
        for workers in (1, args.workers):
            figures = measure(cloud, workers)
            label = "baseline" if workers == 1 else ""
            print(
                f"{cloud:<10} {workers:>7} {figures['resources']:>9.0f} {figures['seconds']:>8.2f} "
                f"{figures['cpu']:>8.2f} {figures['process']:>8.2f} {figures['peak_mib']:>9.0f} {label}"
            )
            if workers != 1:
                worst, worst_cpu = max(worst, figures["seconds"]), max(worst_cpu, figures["cpu"])
    verdict = "meets" if worst < GOAL_SECONDS else "misses"
    load = os.getloadavg()[0]
    print(
        f"slowest plan of {args.workers} workers: {worst:.2f} s wall ({worst_cpu:.2f} s CPU), {verdict} the goal of "
        f"{GOAL_SECONDS:.0f} s; load average {load:.1f} on {os.cpu_count()} CPUs (wall time grows with it)"
    )


if __name__ == "__main__":
    main()
