"""`autoscaler simulate`: the scaling policy against CLUES, Cluster Autoscaler and Karpenter in the simulator.

Only option parsing lives here; the work is `oscar_deploy.autoscaler.compare.simulate_command`, imported when
the command runs so `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

autoscaler_app = typer.Typer(
    help="Elasticity: the autoscaler's policy, simulated against the baselines it has to beat.",
    no_args_is_help=True,
)

SCENARIO_OPTION = typer.Option(
    None,
    "--scenario",
    "-s",
    help="Scenario to run (repeatable): sparse, bursty, diurnal, edge, azure2019, azure2021; default all.",
)
SEED_OPTION = typer.Option(
    1, "--seed", help="Seed of the workloads and boot draws; the same seed gives the same numbers."
)
JSON_OPTION = typer.Option(False, "--json", help="Print the results as one JSON document instead of tables.")
TRACE_OPTION = typer.Option(
    None, "--trace", help="Also run an Alibaba cluster-trace-gpu-v2023 pod list CSV (openb_pod_list_*.csv)."
)
SPEEDUP_OPTION = typer.Option(100.0, "--speedup", help="How many times faster the --trace's arrivals are replayed.")
PLOT_OPTION = typer.Option(
    None, "--plot", help="Write a cost versus p95 wait plot (PNG) with each policy's main knob swept."
)


@autoscaler_app.command("simulate")
def simulate(
    scenario: list[str] | None = SCENARIO_OPTION,
    seed: int = SEED_OPTION,
    json_output: bool = JSON_OPTION,
    trace: Path | None = TRACE_OPTION,
    speedup: float = SPEEDUP_OPTION,
    plot: Path | None = PLOT_OPTION,
) -> None:
    """Run every policy on each scenario and print node-hours, job wait, power cycles, kills and the goals."""
    from oscar_deploy.autoscaler.compare import simulate_command

    simulate_command(scenario or [], seed, json_output, trace, speedup, plot, typer.echo)
