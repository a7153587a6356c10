"""Prints the autoscaler comparison table for every scenario, then the time to simulate the 100k-job day.

For each scenario: every policy at its documented defaults (static-max, CLUES as deployed for OSCAR, CLUES
upstream, Cluster-Autoscaler-like with and without evicting job pods, Karpenter-like with and without
do-not-disrupt on job pods, the clairvoyant oracle, ours), our idle_time swept, and the issue's goals judged
against CLUES-OSCAR (met or NOT met, with the numbers). Then a 24 h diurnal trace of ~100k jobs on 200
workers under our policy, timed next to CLUES-OSCAR and static-max (the simulator's floor) in the same run;
the goal is under 30 s. With several `--seed`s, each seed's tables come in turn, then one line per scenario
with the goals each seed met (G1 to G4: + met, - not), since a policy tuned on one seed must hold on others.
`--scoring MostAllocated` runs the scenarios with a scheduler that packs pods instead of spreading them (the
100k-job day keeps the default).

    .venv/bin/python benchmarks/autoscaler.py [--seed N ...] [--scenario NAME ...] [--scoring S] [--skip-large]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from oscar_deploy.autoscaler.baselines import POLICIES
from oscar_deploy.autoscaler.compare import compare, format_report
from oscar_deploy.autoscaler.simulator import MOST_ALLOCATED, SCORING_STRATEGIES, simulate
from oscar_deploy.autoscaler.workloads import SCENARIOS, large

LARGE_GOAL_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, action="append", help="repeatable; default 1")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--scoring", choices=SCORING_STRATEGIES, default=SCORING_STRATEGIES[0])
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    seeds = args.seed or [1]
    names = args.scenario or list(SCENARIOS)
    unmet = []
    marks: dict[str, list[str]] = {name: [] for name in names}
    for seed in seeds:
        for name in names:
            started = time.perf_counter()
            scenario = replace(SCENARIOS[name](seed), most_allocated=args.scoring == MOST_ALLOCATED)
            report = compare(scenario, seed)
            print(format_report(report))
            print(f"  ({time.perf_counter() - started:.1f}s for {len(report.rows) + len(report.ours) - 1} runs)\n")
            unmet += [f"{name} (seed {seed}): {goal.name}" for goal in report.goals if not goal.met]
            marks[name].append("".join("+" if goal.met else "-" for goal in report.goals))
    print("goals not met:" if unmet else "every goal met on every scenario")
    for line in unmet:
        print(f"  {line}")
    if len(seeds) > 1:
        print("\ngoals G1-G4 per seed (+ met, - not met):")
        print(f"  {'scenario':<10} " + " ".join(f"seed {seed:<3}" for seed in seeds))
        for name, per_seed in marks.items():
            print(f"  {name:<10} " + " ".join(f"{mark:<8}" for mark in per_seed))
        met = sum(mark.count("+") for per_seed in marks.values() for mark in per_seed)
        print(f"  {met} of {sum(len(mark) for per_seed in marks.values() for mark in per_seed)} met")
    if args.skip_large:
        return
    started = time.perf_counter()
    scenario = large(seeds[0])
    print(
        f"\nlarge: {len(scenario.jobs)} jobs over 24 h on {scenario.max_nodes} workers "
        f"(generated in {time.perf_counter() - started:.1f}s)"
    )
    for policy in ("static-max", "clues-oscar", "oscar-deploy"):
        started = time.perf_counter()
        metrics = simulate(scenario, POLICIES[policy].build(scenario, None), seeds[0])
        seconds = time.perf_counter() - started
        verdict = f"goal < {LARGE_GOAL_SECONDS:.0f}s: {'met' if seconds < LARGE_GOAL_SECONDS else 'NOT met'}"
        print(
            f"  {policy:<13} {seconds:6.1f}s  node-h {metrics.node_hours:7.1f}  p95 wait {metrics.wait_p95:5.0f}s  "
            f"power-ons {metrics.power_ons}  killed {metrics.jobs_killed}"
            + (f"  ({verdict})" if policy == "oscar-deploy" else "")
        )


if __name__ == "__main__":
    main()
