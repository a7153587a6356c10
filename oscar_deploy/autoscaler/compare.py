"""The benchmark: every policy on a scenario, our knob swept, the issue's goals checked against CLUES-OSCAR.

Goals (issue 10), judged on the seed given, with CLUES as deployed for OSCAR at its defaults as reference.
The goals hold together, so G1 and G2 only consider our idle_time settings that also keep G4's cycle limit:
  G1 fewer node-hours than CLUES-OSCAR at equal or lower p95 wait: among those settings whose p95 is at most
     CLUES-OSCAR's, the cheapest uses fewer node-hours;
  G2 p95 wait at most half of CLUES-OSCAR's at equal node-hours: among those settings that use at most
     CLUES-OSCAR's node-hours, the best p95 is at most half of its p95 (both 0 s counts as met); when even
     static-max (every worker always on) waits longer than that, the detail says no policy can meet it;
  G3 no job killed, in any of our runs;
  G4 at most 1.2x CLUES-OSCAR's power cycles (power-ons), for our default setting and those named by G1/G2.
Baselines run at their documented defaults; they are never tuned here.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from oscar_deploy.autoscaler.baselines import ALWAYS_ON, OURS, POLICIES, REFERENCE
from oscar_deploy.autoscaler.simulator import (
    LEAST_ALLOCATED,
    MOST_ALLOCATED,
    SCORING_STRATEGIES,
    RunMetrics,
    Scenario,
    simulate,
)
from oscar_deploy.autoscaler.workloads import SCENARIOS
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.files import check_write_target, file_starts_with, write_user_file
from oscar_deploy.support.progress import Progress


@dataclass(frozen=True, slots=True)
class Point:
    knob: float | None
    metrics: RunMetrics


@dataclass(frozen=True, slots=True)
class Goal:
    name: str
    met: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ScenarioReport:
    scenario: str
    description: str
    jobs: int
    max_nodes: int
    seed: int
    rows: tuple[Point, ...]
    ours: tuple[Point, ...]
    goals: tuple[Goal, ...]
    sweeps: dict[str, tuple[Point, ...]] = field(default_factory=dict)
    scoring: str = LEAST_ALLOCATED


def run_policy(scenario: Scenario, policy: str, seed: int, knob: float | None = None) -> RunMetrics:
    return simulate(scenario, POLICIES[policy].build(scenario, knob), seed)


def compare(scenario: Scenario, seed: int, sweep_baselines: bool = False) -> ScenarioReport:
    """Every policy at its default, our knob swept, and (for plots) every baseline's knob swept."""
    rows = tuple(Point(entry.default, run_policy(scenario, name, seed)) for name, entry in POLICIES.items())
    by_name = {point.metrics.policy: point for point in rows}
    ours_entry = POLICIES[OURS]
    ours = tuple(
        by_name[OURS] if knob == ours_entry.default else Point(knob, run_policy(scenario, OURS, seed, knob))
        for knob in ours_entry.sweep
    )
    sweeps: dict[str, tuple[Point, ...]] = {OURS: ours}
    if sweep_baselines:
        for name, entry in POLICIES.items():
            if name == OURS or not entry.sweep:
                continue
            sweeps[name] = tuple(
                by_name[name] if knob == entry.default else Point(knob, run_policy(scenario, name, seed, knob))
                for knob in entry.sweep
            )
    goals = evaluate_goals(by_name[REFERENCE].metrics, by_name[OURS], ours, by_name[ALWAYS_ON].metrics)
    return ScenarioReport(
        scenario.name,
        scenario.description,
        len(scenario.jobs),
        scenario.max_nodes,
        seed,
        rows,
        ours,
        goals,
        sweeps,
        scenario.scoring,
    )


def evaluate_goals(
    reference: RunMetrics, default: Point, sweep: Sequence[Point], always_on: RunMetrics | None = None
) -> tuple[Goal, ...]:
    """G1-G4 of `sweep` (our knob's settings, `default` among them) against `reference`; `always_on`, the run
    with every worker on, tells when G2 asks for less wait than any policy can reach."""
    ref_p95, ref_nh, ref_cycles = reference.wait_p95, reference.node_hours, reference.power_ons
    beyond_reach = ""
    if always_on is not None and always_on.wait_p95 > 0.5 * ref_p95:
        beyond_reach = (
            f"; no policy can meet it here: with every worker always on ({always_on.policy}) p95 is "
            f"{always_on.wait_p95:.0f}s"
        )
    knob = POLICIES[OURS].knob
    goals = []
    limit = 1.2 * ref_cycles
    runs = list(sweep)
    sweep = [p for p in runs if p.metrics.power_ons <= limit]
    cheaper = [p for p in sweep if p.metrics.wait_p95 <= ref_p95]
    g1 = min(cheaper, key=lambda p: p.metrics.node_hours) if cheaper else None
    if g1 is None:
        goals.append(
            Goal(
                "G1 fewer node-hours at equal or lower p95 wait",
                False,
                f"no {knob} within the cycle limit reaches CLUES-OSCAR's p95 of {ref_p95:.0f}s",
            )
        )
    else:
        goals.append(
            Goal(
                "G1 fewer node-hours at equal or lower p95 wait",
                g1.metrics.node_hours < ref_nh,
                f"{knob}={g1.knob:.0f}s: {g1.metrics.node_hours:.1f} vs {ref_nh:.1f} node-h, "
                f"p95 {g1.metrics.wait_p95:.0f}s vs {ref_p95:.0f}s",
            )
        )
    affordable = [p for p in sweep if p.metrics.node_hours <= ref_nh]
    g2 = min(affordable, key=lambda p: (p.metrics.wait_p95, p.metrics.node_hours)) if affordable else None
    if g2 is None:
        goals.append(
            Goal(
                "G2 p95 wait at most half at equal node-hours",
                False,
                f"no {knob} within the cycle limit stays within CLUES-OSCAR's {ref_nh:.1f} node-h{beyond_reach}",
            )
        )
    else:
        met = g2.metrics.wait_p95 <= 0.5 * ref_p95 if ref_p95 > 0 else g2.metrics.wait_p95 == 0
        goals.append(
            Goal(
                "G2 p95 wait at most half at equal node-hours",
                met,
                f"{knob}={g2.knob:.0f}s: p95 {g2.metrics.wait_p95:.0f}s vs {ref_p95:.0f}s (half: "
                f"{0.5 * ref_p95:.0f}s) at {g2.metrics.node_hours:.1f} vs {ref_nh:.1f} node-h"
                + ("" if met else beyond_reach),
            )
        )
    killed = sum(p.metrics.jobs_killed for p in runs)
    goals.append(Goal("G3 no job killed", killed == 0, f"{killed} killed in {len(runs)} runs"))
    checked = {id(p): p for p in (default, g1, g2) if p is not None}
    worst = max(checked.values(), key=lambda p: p.metrics.power_ons)
    goals.append(
        Goal(
            "G4 at most 1.2x CLUES-OSCAR's power cycles",
            all(p.metrics.power_ons <= limit for p in checked.values()),
            f"most: {worst.metrics.power_ons} power-ons at {knob}={worst.knob:.0f}s vs {ref_cycles} "
            f"(limit {limit:.0f})",
        )
    )
    return tuple(goals)


def _knob(policy: str, value: float | None) -> str:
    entry = POLICIES[policy]
    return f"{entry.knob}={value:.0f}s" if entry.knob and value is not None else "-"


# The longest span of arrivals a --trace may be replayed over (about a second per day of it, with few nodes).
MAX_REPLAY_SECONDS = 31 * 86_400.0

HEADER = (
    f"{'policy':<15} {'knob':<31} {'node-h':>7} {'idle-h':>7} {'mean s':>7} {'p95 s':>7} {'p99 s':>7} "
    f"{'on/off':>9} {'failed':>6} {'killed':>6} {'moved':>5}"
)


def _row(policy: str, point: Point) -> str:
    m = point.metrics
    return (
        f"{policy:<15} {_knob(policy, point.knob):<31} {m.node_hours:7.1f} {m.idle_node_hours:7.1f} "
        f"{m.wait_mean:7.0f} {m.wait_p95:7.0f} {m.wait_p99:7.0f} {f'{m.power_ons}/{m.power_offs}':>9} "
        f"{m.failed_boots:6d} {m.jobs_killed:6d} {m.pods_moved:5d}"
    )


def format_report(report: ScenarioReport) -> str:
    lines = [
        f"scenario {report.scenario}: {report.jobs} jobs, up to {report.max_nodes} workers, seed {report.seed}, "
        f"{report.scoring} scoring ({report.description})",
        HEADER,
    ]
    lines += [_row(point.metrics.policy, point) for point in report.rows]
    lines.append(f"{OURS} sweep:")
    lines += [_row(OURS, point) for point in report.ours]
    lines.append(f"goals against {REFERENCE}:")
    lines += [f"  [{'met' if g.met else 'NOT met'}] {g.name}: {g.detail}" for g in report.goals]
    unfinished = [p.metrics for p in report.rows + report.ours if p.metrics.unfinished]
    lines += [f"  note: {m.policy} left {m.unfinished} job(s) unfinished" for m in unfinished]
    return "\n".join(lines)


def report_data(report: ScenarioReport) -> dict[str, object]:
    def point(p: Point) -> dict[str, object]:
        return {"knob": p.knob, **asdict(p.metrics)}

    return {
        "scenario": report.scenario,
        "description": report.description,
        "jobs": report.jobs,
        "max_nodes": report.max_nodes,
        "seed": report.seed,
        "scoring": report.scoring,
        "policies": [point(p) for p in report.rows],
        "sweeps": {name: [point(p) for p in points] for name, points in report.sweeps.items()},
        "goals": [asdict(g) for g in report.goals],
    }


def plot(reports: Sequence[ScenarioReport]) -> bytes:
    """A PNG of cost (node-hours) against p95 wait, one panel per scenario, each policy's knob swept as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(len(reports), 3)
    rows = (len(reports) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4.2 * rows), squeeze=False)
    for index, report in enumerate(reports):
        ax = axes[index // columns][index % columns]
        singles = {p.metrics.policy: p for p in report.rows if p.metrics.policy not in report.sweeps}
        for name, points in report.sweeps.items():
            ordered = sorted(points, key=lambda p: p.metrics.node_hours)
            style = {"linewidth": 2.5, "color": "black"} if name == OURS else {"linewidth": 1.2}
            ax.plot(
                [p.metrics.node_hours for p in ordered],
                [p.metrics.wait_p95 for p in ordered],
                marker="o",
                label=name,
                **style,
            )
        for name, p in singles.items():
            ax.scatter(
                [p.metrics.node_hours],
                [p.metrics.wait_p95],
                marker="s" if name == "oracle" else "^",
                label=name,
                zorder=3,
            )
        ax.set_title(f"{report.scenario} ({report.jobs} jobs, {report.scoring})")
        ax.set_xlabel("node-hours")
        ax.set_ylabel("p95 wait (s)")
        ax.grid(alpha=0.3)
    for index in range(len(reports), rows * columns):
        axes[index // columns][index % columns].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize="small")
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110)
    plt.close(figure)
    return image.getvalue()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_plot_target(path: Path) -> None:
    """Refuse, before any simulation, a --plot path the PNG cannot be written to or an existing file that is
    not a PNG (a typo must not overwrite a document)."""
    try:
        target = check_write_target(path, "plot")
    except UserInputError as exc:
        raise UserInputError(f"--plot {exc}") from None
    if target.exists() and not file_starts_with(target, PNG_SIGNATURE):
        raise UserInputError(
            f"--plot {path}: exists and is not a PNG image, so it is not replaced; move it away or pick another path"
        )


def simulate_command(
    scenarios: Sequence[str],
    seed: int,
    as_json: bool,
    trace: Path | None,
    speedup: float,
    plot_path: Path | None,
    echo: Callable[[str], None],
    progress: Progress | None = None,
    scoring: str = LEAST_ALLOCATED,
) -> None:
    """What `oscar-deploy autoscaler simulate` does once its options are parsed: reports on `echo`, and each
    scenario's runs as a timed step on `progress` (stderr)."""
    unknown = [name for name in scenarios if name not in SCENARIOS]
    if unknown:
        raise UserInputError(f"--scenario {unknown[0]}: unknown scenario; use one of {', '.join(SCENARIOS)}")
    if seed < 0:
        raise UserInputError(f"--seed {seed}: must be 0 or more")
    if not math.isfinite(speedup) or speedup <= 0:
        raise UserInputError(f"--speedup {speedup:g}: must be a number more than 0")
    if scoring not in SCORING_STRATEGIES:
        raise UserInputError(f"--scoring {scoring}: unknown scoring strategy; use {' or '.join(SCORING_STRATEGIES)}")
    if plot_path is not None:
        if importlib.util.find_spec("matplotlib") is None:
            raise UserInputError(
                "--plot: matplotlib is not installed; install it with pip install 'oscar-deploy[plot]'"
            )
        if plot_path.suffix.lower() != ".png":
            raise UserInputError(f"--plot {plot_path}: the plot is a PNG image; give a file name ending in .png")
        _check_plot_target(plot_path)
    names = list(scenarios) if scenarios or trace is not None else list(SCENARIOS)
    chosen: list[Callable[[], Scenario]] = [functools.partial(SCENARIOS[name], seed) for name in names]
    if trace is not None:
        from oscar_deploy.autoscaler.traces import arrival_span, read_alibaba_pod_list, scenario_from_alibaba

        pods = read_alibaba_pod_list(trace)
        recorded = arrival_span(pods)
        if recorded / speedup > MAX_REPLAY_SECONDS:  # a speedup near 0 makes it inf, still refused
            raise UserInputError(
                f"--speedup {speedup:g}: {trace} would be replayed over {recorded / speedup / 86_400:.3g} days, more "
                f"than the {MAX_REPLAY_SECONDS / 86_400:.0f} the simulator replays; use --speedup "
                f"{recorded / MAX_REPLAY_SECONDS:.3g} or more"
            )
        chosen.append(functools.partial(scenario_from_alibaba, pods, f"trace:{trace.name}", speedup))
    progress = progress or Progress()
    reports = []
    for make in chosen:
        scenario = replace(make(), most_allocated=scoring == MOST_ALLOCATED)
        with progress.step(f"simulating {scenario.name} (seed {seed}, {len(scenario.jobs)} jobs)"):
            report = compare(scenario, seed, sweep_baselines=plot_path is not None)
        reports.append(report)
        if not as_json:
            echo(format_report(report) + "\n")
    if plot_path is not None:
        _check_plot_target(plot_path)  # again: the simulation took a while
        try:
            write_user_file(plot_path, plot(reports), "plot", 0o644)
        except UserInputError as exc:
            raise UserInputError(f"--plot {exc}") from None
        if not as_json:
            echo(f"wrote {plot_path}")
    if as_json:
        echo(json.dumps({"seed": seed, "scenarios": [report_data(r) for r in reports]}, indent=2))
