"""Prints the autoscaler comparison table for every scenario, then the time to simulate the 100k-job day.

For each scenario: every policy at its documented defaults (static-max, CLUES as deployed for OSCAR, CLUES
upstream, Cluster-Autoscaler-like with and without evicting job pods, Karpenter-like with and without
do-not-disrupt on job pods, the clairvoyant oracle, ours), our idle_time swept, and the issue's goals judged
against CLUES-OSCAR (met or NOT met, with the numbers). Then a 24 h diurnal trace of ~100k jobs on 200
workers under our policy, timed next to CLUES-OSCAR and static-max (the simulator's floor) in the same run;
the goal is under 30 s.

    .venv/bin/python benchmarks/autoscaler.py [--seed N] [--scenario NAME ...] [--skip-large]
"""

from __future__ import annotations

import argparse
import time

from oscar_deploy.autoscaler.baselines import POLICIES
from oscar_deploy.autoscaler.compare import compare, format_report
from oscar_deploy.autoscaler.simulator import simulate
from oscar_deploy.autoscaler.workloads import SCENARIOS, large

LARGE_GOAL_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    unmet = []
    for name in args.scenario or list(SCENARIOS):
        started = time.perf_counter()
        report = compare(SCENARIOS[name](args.seed), args.seed)
        print(format_report(report))
        print(f"  ({time.perf_counter() - started:.1f}s for {len(report.rows) + len(report.ours) - 1} runs)\n")
        unmet += [f"{name}: {goal.name}" for goal in report.goals if not goal.met]
    print("goals not met:" if unmet else "every goal met on every scenario")
    for line in unmet:
        print(f"  {line}")
    if args.skip_large:
        return
    started = time.perf_counter()
    scenario = large(args.seed)
    print(
        f"\nlarge: {len(scenario.jobs)} jobs over 24 h on {scenario.max_nodes} workers "
        f"(generated in {time.perf_counter() - started:.1f}s)"
    )
    for policy in ("static-max", "clues-oscar", "oscar-deploy"):
        started = time.perf_counter()
        metrics = simulate(scenario, POLICIES[policy].build(scenario, None), args.seed)
        seconds = time.perf_counter() - started
        verdict = f"goal < {LARGE_GOAL_SECONDS:.0f}s: {'met' if seconds < LARGE_GOAL_SECONDS else 'NOT met'}"
        print(
            f"  {policy:<13} {seconds:6.1f}s  node-h {metrics.node_hours:7.1f}  p95 wait {metrics.wait_p95:5.0f}s  "
            f"power-ons {metrics.power_ons}  killed {metrics.jobs_killed}"
            + (f"  ({verdict})" if policy == "oscar-deploy" else "")
        )


if __name__ == "__main__":
    main()
