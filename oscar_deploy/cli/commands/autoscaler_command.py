"""`autoscaler run`, `status` and `simulate`: the elastic cluster's loop, what it decided and why, and its policy
simulated against CLUES, Cluster Autoscaler and Karpenter.

Only option parsing and printing live here; the work is in `oscar_deploy.autoscaler` (`service` for run and
status, `compare` for simulate), imported when a command runs so `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from oscar_deploy.cli.interrupts import changes_nothing
from oscar_deploy.cli.options import CLUSTER_NAME_OPTION, JSON_OPTION, OPTIONAL_SPEC_OPTION

autoscaler_app = typer.Typer(
    help="Elasticity: run the autoscaler, see what it decided and why, or simulate its policy against baselines.",
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
TRACE_OPTION = typer.Option(
    None, "--trace", help="Also run an Alibaba cluster-trace-gpu-v2023 pod list CSV (openb_pod_list_*.csv)."
)
SPEEDUP_OPTION = typer.Option(
    100.0, "--speedup", help="How many times faster the --trace's arrivals are replayed (over at most 31 days)."
)
SCORING_OPTION = typer.Option(
    "LeastAllocated",
    "--scoring",
    help="kube-scheduler's node scoring in the simulated cluster: LeastAllocated (its default: spreads pods) or "
    "MostAllocated (packs them, so other nodes empty).",
)
PLOT_OPTION = typer.Option(
    None, "--plot", help="Write a cost versus p95 wait plot (PNG) with each policy's main knob swept."
)
ONCE_OPTION = typer.Option(False, "--once", help="Run one round (observe, decide, act, log) and exit.")
LAST_OPTION = typer.Option(10, "--last", "-n", help="How many of the latest decisions to show.")


@autoscaler_app.command("run")
def run(
    file: Path | None = OPTIONAL_SPEC_OPTION,
    cluster: str | None = CLUSTER_NAME_OPTION,
    once: bool = ONCE_OPTION,
) -> None:
    """Run the autoscaler in the foreground (as a service does) until SIGTERM or Ctrl-C; logs every decision."""
    from oscar_deploy.autoscaler.service import run_autoscaler
    from oscar_deploy.cli.options import open_cluster

    spec, state = open_cluster(file, cluster)
    run_autoscaler(spec, state, once)


@autoscaler_app.command("status")
@changes_nothing
def status(
    file: Path | None = OPTIONAL_SPEC_OPTION,
    cluster: str | None = CLUSTER_NAME_OPTION,
    last: int = LAST_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Show whether the autoscaler runs, and its latest decisions with their reasons and outcomes."""
    from oscar_deploy.autoscaler.service import status_data
    from oscar_deploy.cli.options import cluster_name, print_json, print_table
    from oscar_deploy.state.folder import cluster_state, list_clusters
    from oscar_deploy.support.errors import UserInputError, printable

    state = cluster_state(cluster_name(file, cluster))
    if not state.path.is_dir():
        known = ", ".join(list_clusters()) or "none yet"
        raise UserInputError(f"cluster {state.name}: no such cluster here (clusters: {known}); check the name")
    data = status_data(state, last)
    if json_output:
        print_json(data)
        return
    running = f"running (pid {data['pid']})" if data["running"] else "not running"
    if data["paused"]:
        running += f", paused: {data['paused']}"
    typer.echo(printable(f"autoscaler of cluster {data['cluster']}: {running}"))
    start, stop = data["last_start"], data["last_stop"]
    if start is None:
        typer.echo(f"no decisions yet: {data['log']} does not exist; start it with `oscar-deploy autoscaler run`")
        return
    typer.echo(f"last start: {start.get('time')} (target {start.get('target')}, every {start.get('period')}s)")
    if stop is not None and stop.get("time", "") >= start.get("time", ""):
        typer.echo(f"last stop: {stop.get('time')} ({stop.get('reason')})")
    boot = data["boot"]
    if boot is not None:
        measured = boot["measured_boots"]
        whence = (
            f"the median of the {measured} boot(s) measured on this cluster"
            if measured
            else f"the {start.get('target')} target's default until a boot is measured"
        )
        typer.echo(f"boot-time estimate: {boot['estimate_seconds']:.0f}s, {whence}")
    if data["nodes"]:
        counts = ", ".join(f"{value} {key.replace('_', ' ')}" for key, value in data["nodes"].items() if value)
        typer.echo(f"workers at the last round: {counts or 'none'}")
    if data["decisions"]:
        rows = [[r["time"], r["action"], r["node"], r["outcome"], r["reason"]] for r in data["decisions"]]
        print_table(["time", "action", "node", "outcome", "reason"], rows)
    else:
        typer.echo("no decision so far")
    for note in data["notes"]:
        typer.echo(printable(f"note: {note}"))  # notes quote the cluster's own words


@autoscaler_app.command("simulate")
@changes_nothing
def simulate(
    scenario: list[str] | None = SCENARIO_OPTION,
    seed: int = SEED_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print the results as one JSON document instead of tables."),
    trace: Path | None = TRACE_OPTION,
    speedup: float = SPEEDUP_OPTION,
    plot: Path | None = PLOT_OPTION,
    scoring: str = SCORING_OPTION,
) -> None:
    """Run every policy on each scenario and print node-hours, job wait, power cycles, kills and the goals."""
    from oscar_deploy.autoscaler.compare import simulate_command

    simulate_command(scenario or [], seed, json_output, trace, speedup, plot, typer.echo, scoring=scoring)
