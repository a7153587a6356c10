"""The issue's goals judged from run metrics: the limits themselves, ties, and G2 beyond any policy's reach."""

from __future__ import annotations

import errno
import functools
import importlib.util
import io
import itertools
import json
import os
from dataclasses import FrozenInstanceError, asdict, replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from matplotlib.markers import MarkerStyle
from rich.console import Console

from oscar_deploy.autoscaler import compare as compare_module
from oscar_deploy.autoscaler.compare import (
    Goal,
    Point,
    ScenarioReport,
    compare,
    evaluate_goals,
    format_report,
    plot,
    report_data,
    simulate_command,
)
from oscar_deploy.autoscaler.simulator import Controller, RunMetrics, Scenario, simulate
from oscar_deploy.support import files
from oscar_deploy.support import progress as progress_module
from oscar_deploy.support.errors import UserInputError
from oscar_deploy.support.progress import Progress
from tests.unit.autoscaler.test_simulator import one_job


def metrics(policy: str, node_hours: float, p95: float, power_ons: int, killed: int = 0) -> RunMetrics:
    return RunMetrics(
        policy, "s", 100, node_hours, 0.0, 0.0, 0.0, p95, p95, p95, power_ons, power_ons, 0, killed, 0, 0, 0.0
    )


CLUES = metrics("clues-oscar", 10.0, 400.0, 10)
GOAL_NAMES = [
    "G1 fewer node-hours at equal or lower p95 wait",
    "G2 p95 wait at most half at equal node-hours",
    "G3 no job killed",
    "G4 at most 1.2x CLUES-OSCAR's power cycles",
]


def ours(*points: tuple[float, float, float, int]) -> list[Point]:
    return [Point(knob, metrics("oscar-deploy", nh, p95, ons)) for knob, nh, p95, ons in points]


def marks(goals) -> str:
    return "".join("+" if goal.met else "-" for goal in goals)


def test_every_goal_met_at_the_limits_themselves() -> None:
    sweep = ours((60.0, 9.9, 400.0, 12), (300.0, 10.0, 200.0, 12))
    goals = evaluate_goals(CLUES, sweep[1], sweep, metrics("static-max", 96.0, 0.0, 0))
    assert marks(goals) == "++++"
    assert [goal.name for goal in goals] == GOAL_NAMES
    assert goals[0].detail == "idle_time=60s: 9.9 vs 10.0 node-h, p95 400s vs 400s"
    assert goals[1].detail == "idle_time=300s: p95 200s vs 400s (half: 200s) at 10.0 vs 10.0 node-h"
    assert goals[3].detail == "most: 12 power-ons at idle_time=300s vs 10 (limit 12)"


def test_a_tie_in_node_hours_is_not_fewer_and_one_cycle_over_the_limit_fails() -> None:
    sweep = ours((300.0, 10.0, 201.0, 12), (600.0, 9.0, 100.0, 13))
    goals = evaluate_goals(CLUES, sweep[0], sweep)
    assert marks(goals) == "--++"
    assert goals[1].detail == "idle_time=300s: p95 201s vs 400s (half: 200s) at 10.0 vs 10.0 node-h"
    default_over = ours((300.0, 9.0, 100.0, 13), (600.0, 9.0, 100.0, 12))
    assert marks(evaluate_goals(CLUES, default_over[0], default_over)) == "+++-"


def test_g2_beyond_reach_says_so_and_zero_waits_on_both_sides_count_as_met() -> None:
    sweep = ours((300.0, 9.0, 300.0, 10))
    busy = evaluate_goals(CLUES, sweep[0], sweep, metrics("static-max", 96.0, 201.0, 0))
    assert not busy[1].met
    assert busy[1].detail.endswith("; no policy can meet it here: with every worker always on (static-max) p95 is 201s")
    reachable = evaluate_goals(CLUES, sweep[0], sweep, metrics("static-max", 96.0, 200.0, 0))
    assert not reachable[1].met and "no policy" not in reachable[1].detail
    idle = metrics("clues-oscar", 10.0, 0.0, 2)
    zero = ours((300.0, 10.0, 0.0, 2))
    assert marks(evaluate_goals(idle, zero[0], zero)) == "-+++"


def test_a_killed_job_in_any_setting_fails_g3() -> None:
    sweep = [*ours((300.0, 9.0, 100.0, 10)), Point(900.0, metrics("oscar-deploy", 20.0, 0.0, 1, killed=1))]
    goals = evaluate_goals(CLUES, sweep[0], sweep)
    assert goals[2].met is False and goals[2].detail == "1 killed in 2 runs"


def test_goal_names_and_the_details_when_no_setting_qualifies() -> None:
    """Every setting waits longer and costs more than CLUES-OSCAR: G1 and G2 have no setting to judge."""
    sweep = ours((300.0, 11.0, 500.0, 10))
    goals = evaluate_goals(CLUES, sweep[0], sweep, metrics("static-max", 96.0, 300.0, 0))
    assert [goal.name for goal in goals] == GOAL_NAMES
    assert marks(goals) == "--++"
    assert goals[0].detail == "no idle_time within the cycle limit reaches CLUES-OSCAR's p95 of 400s"
    assert goals[1].detail == (
        "no idle_time within the cycle limit stays within CLUES-OSCAR's 10.0 node-h; no policy can meet it here: "
        "with every worker always on (static-max) p95 is 300s"
    )


def test_half_of_a_p95_below_one_second_is_still_half() -> None:
    tiny = metrics("clues-oscar", 10.0, 1.0, 10)
    sweep = ours((300.0, 9.0, 0.5, 10))
    assert evaluate_goals(tiny, sweep[0], sweep)[1].met


def test_compare_runs_each_policy_at_its_default_and_our_default_setting_only_once(monkeypatch) -> None:
    runs: list[tuple[str, int]] = []

    def counted(scenario: Scenario, controller: Controller, seed: int) -> RunMetrics:
        runs.append((controller.name, seed))
        return simulate(scenario, controller, seed)

    monkeypatch.setattr(compare_module, "simulate", counted)
    report = compare(one_job(), 7)
    assert (report.scenario, report.description, report.jobs, report.max_nodes, report.seed) == (
        "one",
        "one job",
        1,
        2,
        7,
    )
    assert [(point.metrics.policy, point.knob) for point in report.rows] == [
        ("static-max", None),
        ("clues-oscar", 300.0),
        ("clues-upstream", 1800.0),
        ("ca-evict", 600.0),
        ("ca-safe", 600.0),
        ("karpenter", 0.0),
        ("karpenter-dnd", 0.0),
        ("oracle", None),
        ("oscar-deploy", 300.0),
    ]
    # Billed from the decision at 101 s to the end of the shutdown: 240 s of boot and job, then twice the idle
    # time: the empty worker stays while the demand of the last 2 x idle_time needed it.
    assert [(point.knob, round(point.metrics.node_hours * 3600)) for point in report.ours] == [
        (60.0, 409),
        (120.0, 529),
        (180.0, 649),
        (300.0, 889),
        (600.0, 1489),
        (900.0, 2089),
    ]
    assert report.ours[3] is report.rows[-1]
    assert len(runs) == 9 + 5 and {seed for _, seed in runs} == {7}
    assert report.sweeps == {"oscar-deploy": report.ours}
    clues, ours = report.rows[1], report.rows[-1]
    assert report.goals == evaluate_goals(clues.metrics, ours, report.ours, report.rows[0].metrics)
    assert marks(report.goals) == "+-++"


def test_compare_sweeps_every_baseline_with_a_knob_when_asked(monkeypatch) -> None:
    runs: list[str] = []

    def counted(scenario: Scenario, controller: Controller, seed: int) -> RunMetrics:
        runs.append(controller.name)
        return simulate(scenario, controller, seed)

    monkeypatch.setattr(compare_module, "simulate", counted)
    report = compare(one_job(duration=900.0), 7, sweep_baselines=True)
    assert {name: [point.knob for point in points] for name, points in report.sweeps.items()} == {
        "oscar-deploy": [60.0, 120.0, 180.0, 300.0, 600.0, 900.0],
        "clues-oscar": [60.0, 120.0, 300.0, 600.0, 1800.0],
        "clues-upstream": [60.0, 120.0, 300.0, 600.0, 1800.0],
        "ca-evict": [60.0, 120.0, 300.0, 600.0],
        "ca-safe": [60.0, 120.0, 300.0, 600.0],
        "karpenter": [0.0, 30.0, 300.0],
        "karpenter-dnd": [0.0, 30.0, 300.0],
    }
    for name, points in report.sweeps.items():
        assert {point.metrics.policy for point in points} == {name}
        costs = [point.metrics.node_hours for point in points]
        assert costs == sorted(set(costs)), name  # each setting is applied: a longer wait to power off costs more
    assert report.sweeps["clues-oscar"][2] is report.rows[1]
    assert report.sweeps["karpenter"][0] is report.rows[5]
    # Each baseline's default setting reuses its row: 9 defaults, 5 of ours, then 4 + 4 + 3 + 3 + 2 + 2.
    assert len(runs) == 9 + 5 + 18


def run(policy: str, unfinished: int = 0) -> RunMetrics:
    """Every field a different number, so a column that shows the wrong one is seen."""
    return RunMetrics(policy, "s", 3, 12.34, 5.67, 89.4, 50.0, 123.4, 456.6, 500.0, 7, 6, 1, 2, 3, unfinished, 3600.0)


REPORT = ScenarioReport(
    "one",
    "one job",
    3,
    2,
    7,
    rows=(Point(None, run("static-max")), Point(300.0, run("clues-oscar", unfinished=1))),
    ours=(Point(60.0, run("oscar-deploy", unfinished=2)),),
    goals=(Goal("G1 cheaper", True, "first detail"), Goal("G2 faster", False, "second detail")),
    sweeps={"oscar-deploy": (Point(60.0, run("oscar-deploy", unfinished=2)),), "ca-safe": ()},
)


def test_the_report_table_shows_every_metric_in_its_column_then_the_goals_and_unfinished_jobs() -> None:
    assert format_report(REPORT).splitlines() == [
        "scenario one: 3 jobs, up to 2 workers, seed 7, LeastAllocated scoring (one job)",
        "policy          knob                             node-h  idle-h  mean s   p95 s   p99 s    on/off failed"
        " killed moved",
        "static-max      -                                  12.3     5.7      89     123     457       7/6      1"
        "      2     3",
        "clues-oscar     IDLE_TIME=300s                     12.3     5.7      89     123     457       7/6      1"
        "      2     3",
        "oscar-deploy sweep:",
        "oscar-deploy    idle_time=60s                      12.3     5.7      89     123     457       7/6      1"
        "      2     3",
        "goals against clues-oscar:",
        "  [met] G1 cheaper: first detail",
        "  [NOT met] G2 faster: second detail",
        "  note: clues-oscar left 1 job(s) unfinished",
        "  note: oscar-deploy left 2 job(s) unfinished",
    ]


def test_report_data_holds_every_run_with_its_knob_and_the_goals() -> None:
    static_max = {"knob": None, **asdict(run("static-max"))}
    ours = {"knob": 60.0, **asdict(run("oscar-deploy", unfinished=2))}
    assert report_data(REPORT) == {
        "scenario": "one",
        "description": "one job",
        "jobs": 3,
        "max_nodes": 2,
        "seed": 7,
        "scoring": "LeastAllocated",
        "policies": [static_max, {"knob": 300.0, **asdict(run("clues-oscar", unfinished=1))}],
        "sweeps": {"oscar-deploy": [ours], "ca-safe": []},
        "goals": [
            {"name": "G1 cheaper", "met": True, "detail": "first detail"},
            {"name": "G2 faster", "met": False, "detail": "second detail"},
        ],
    }
    unswept = ScenarioReport("one", "one job", 3, 2, 7, REPORT.rows, REPORT.ours, REPORT.goals)
    assert report_data(unswept)["sweeps"] == {}


def plotted(monkeypatch, reports: list[ScenarioReport], path: Path):
    """Draws `reports` to `path` and returns the figure's panels, to read what was drawn."""
    import matplotlib.pyplot as plt

    made = []

    def subplots(*args, **kwargs):
        made.append(plt_subplots(*args, **kwargs))
        return made[-1]

    plt_subplots = plt.subplots
    monkeypatch.setattr(plt, "subplots", subplots)
    path.write_bytes(plot(reports))
    (figure_and_axes,) = made
    return figure_and_axes


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def drawn_as(collection, marker: str) -> bool:
    style = MarkerStyle(marker)
    return (collection.get_paths()[0].vertices == style.get_path().transformed(style.get_transform()).vertices).all()


def test_plot_draws_each_sweep_as_a_line_by_cost_and_each_other_policy_as_a_point(monkeypatch, tmp_path) -> None:
    rows = (
        Point(None, metrics("static-max", 4.0, 0.0, 0)),
        Point(300.0, metrics("clues-oscar", 2.5, 150.0, 1)),
        Point(None, metrics("oracle", 0.5, 50.0, 1)),
        Point(300.0, metrics("oscar-deploy", 2.0, 200.0, 1)),
    )
    sweeps = {
        "oscar-deploy": ours((900.0, 3.0, 100.0, 1), (60.0, 1.0, 300.0, 1), (300.0, 2.0, 200.0, 1)),
        "clues-oscar": (Point(60.0, metrics("clues-oscar", 1.5, 250.0, 1)), rows[1]),
    }
    reports = [ScenarioReport(f"s{i}", "d", 10 + i, 4, 1, rows, (), (), sweeps) for i in range(4)]
    figure, axes = plotted(monkeypatch, reports, tmp_path / "four.png")
    assert png_size(tmp_path / "four.png") == (3 * 605, 2 * 462)  # 5.5 x 4.2 inches a panel at 110 dpi
    titles = [f"s{i} ({10 + i} jobs, LeastAllocated)" for i in range(4)]
    assert [[(ax.get_title(), ax.axison) for ax in row] for row in axes] == [
        [(titles[0], True), (titles[1], True), (titles[2], True)],
        [(titles[3], True), ("", False), ("", False)],
    ]
    ax = axes[1][0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("node-hours", "p95 wait (s)")
    lines = [(line.get_label(), list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()]
    assert lines == [
        ("oscar-deploy", [1.0, 2.0, 3.0], [300.0, 200.0, 100.0]),
        ("clues-oscar", [1.5, 2.5], [250.0, 150.0]),
    ]
    ours_line, clues_line = ax.get_lines()
    assert (ours_line.get_linewidth(), ours_line.get_color(), ours_line.get_marker()) == (2.5, "black", "o")
    assert (clues_line.get_linewidth(), clues_line.get_marker()) == (1.2, "o")
    points = [(c.get_label(), c.get_offsets().tolist(), c.get_zorder()) for c in ax.collections]
    assert points == [("static-max", [[4.0, 0.0]], 3), ("oracle", [[0.5, 50.0]], 3)]
    assert drawn_as(ax.collections[0], "^") and drawn_as(ax.collections[1], "s")
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["oscar-deploy", "clues-oscar", "static-max", "oracle"]


def test_plot_of_one_scenario_is_one_panel(monkeypatch, tmp_path) -> None:
    oracle = (Point(None, metrics("oracle", 0.5, 50.0, 1)),)
    report = ScenarioReport("s", "d", 1, 1, 1, oracle, (), (), {}, scoring="MostAllocated")
    _, axes = plotted(monkeypatch, [report], tmp_path / "one.png")
    assert png_size(tmp_path / "one.png") == (605, 462)
    assert [[ax.get_title() for ax in row] for row in axes] == [["s (1 jobs, MostAllocated)"]]


def refusal(*args, scoring: str = "LeastAllocated") -> str:
    with pytest.raises(UserInputError) as refused:
        simulate_command(*args, echo=print, scoring=scoring)
    return str(refused.value)


SAMPLE_TRACE = Path(__file__).parents[2] / "data" / "alibaba" / "openb_pod_list_sample.csv"  # arrivals over 12000 s


def test_a_trace_is_replayed_over_at_most_31_days(monkeypatch) -> None:
    assert refusal([], 1, False, SAMPLE_TRACE, 0.004, None) == (
        f"--speedup 0.004: {SAMPLE_TRACE} would be replayed over 34.7 days, more than the 31 the simulator replays; "
        "use --speedup 0.00448 or more"
    )
    tiny = refusal([], 1, False, SAMPLE_TRACE, 5e-324, None)
    assert "would be replayed over inf days" in tiny and tiny.endswith("use --speedup 0.00448 or more")
    replayed: list[Scenario] = []

    def first_only(scenario: Scenario, seed: int, sweep_baselines: bool) -> None:
        replayed.append(scenario)
        raise KeyboardInterrupt

    monkeypatch.setattr(compare_module, "compare", first_only)
    with pytest.raises(KeyboardInterrupt):
        simulate_command([], 1, False, SAMPLE_TRACE, 12_000.0 / 2_678_000.0, None, echo=print)
    assert max(job.submit for job in replayed[0].jobs) == pytest.approx(2_678_000.0)


def test_simulate_command_refuses_bad_options_before_running_anything(monkeypatch, tmp_path) -> None:
    assert refusal(["sparse", "weekly", "daily"], 1, False, None, 100.0, None) == (
        "--scenario weekly: unknown scenario; use one of sparse, bursty, diurnal, edge, azure2019, azure2021"
    )
    assert refusal(["sparse"], -1, False, None, 100.0, None) == "--seed -1: must be 0 or more"
    for scoring in ("mostallocated", "MostAllocated ", "BalancedAllocation", ""):
        assert refusal(["sparse"], 1, False, None, 100.0, None, scoring=scoring) == (
            f"--scoring {scoring}: unknown scoring strategy; use LeastAllocated or MostAllocated"
        )
    for speedup in (0.0, -2.5, float("nan"), float("inf"), float("-inf")):
        assert (
            refusal(["sparse"], 1, False, None, speedup, None) == f"--speedup {speedup:g}: must be a number more than 0"
        )
    assert refusal(["sparse"], 1, False, None, 100.0, Path("cost.svg")) == (
        "--plot cost.svg: the plot is a PNG image; give a file name ending in .png"
    )
    missing = tmp_path / "plots" / "cost.png"
    assert refusal(["sparse"], 1, False, None, 100.0, missing) == (
        f"--plot {missing}: folder {tmp_path / 'plots'} does not exist; create it or pick another path"
    )
    folder = tmp_path / "folder.png"
    folder.mkdir()
    assert refusal(["sparse"], 1, False, None, 100.0, folder) == (
        f"--plot {folder}: is a folder; the plot is only written to a regular file"
    )
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    assert refusal(["sparse"], 1, False, None, 100.0, fifo) == (
        f"--plot {fifo}: is a FIFO (named pipe); the plot is only written to a regular file"
    )
    document = tmp_path / "notes.png"
    document.write_text("my notes\n")
    assert refusal(["sparse"], 1, False, None, 100.0, document) == (
        f"--plot {document}: exists and is not a PNG image, so it is not replaced; move it away or pick another path"
    )
    assert document.read_text() == "my notes\n"
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "matplotlib" else find_spec(name))
    assert refusal(["sparse"], 1, False, None, 100.0, tmp_path / "cost.png") == (
        "--plot: matplotlib is not installed; install it with pip install 'oscar-deploy[plot]'"
    )


@pytest.fixture
def two_scenarios(monkeypatch) -> None:
    """Two quick one-job scenarios in place of the benchmark's, each named after the seed it was made with."""
    monkeypatch.setattr(
        compare_module,
        "SCENARIOS",
        {name: functools.partial(lambda name, seed: replace(one_job(), name=f"{name}{seed}"), name) for name in "ab"},
    )


@pytest.fixture
def plots(monkeypatch) -> list[list[tuple[str, list[str]]]]:
    """What `plot` was given: each report's scenario and sweeps; it draws a stand-in PNG (the signature)."""
    drawn = []

    def plot(reports: list[ScenarioReport]) -> bytes:
        drawn.append([(r.scenario, list(r.sweeps)) for r in reports])
        return compare_module.PNG_SIGNATURE

    monkeypatch.setattr(compare_module, "plot", plot)
    return drawn


def test_simulate_command_runs_every_scenario_when_none_is_named_and_prints_each_report(
    two_scenarios, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each step takes 2 s by a clock of its own: the time a loaded machine takes is not what is tested here.
    ticks = itertools.count(step=2.0)
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    echoed: list[str] = []
    steps = io.StringIO()
    simulate_command([], 0, False, None, 1e-9, None, echoed.append, Progress(Console(file=steps, width=200)))
    assert echoed == [format_report(compare(replace(one_job(), name=name), 0)) + "\n" for name in ("a0", "b0")]
    assert steps.getvalue().splitlines() == [
        "simulating a0 (seed 0, 1 jobs) ...",
        "simulating a0 (seed 0, 1 jobs): done in 2s",
        "simulating b0 (seed 0, 1 jobs) ...",
        "simulating b0 (seed 0, 1 jobs): done in 2s",
    ]
    named: list[str] = []
    simulate_command(["b"], 2, False, None, 100.0, None, named.append)
    assert [report.splitlines()[0] for report in named] == [
        "scenario b2: 1 jobs, up to 2 workers, seed 2, LeastAllocated scoring (one job)"
    ]


def test_simulate_command_runs_every_scenario_with_the_scoring_asked_for(two_scenarios, monkeypatch) -> None:
    compared: list[Scenario] = []

    def record(scenario: Scenario, seed: int, sweep_baselines: bool) -> ScenarioReport:
        compared.append(scenario)
        return compare(scenario, seed, sweep_baselines)

    monkeypatch.setattr(compare_module, "compare", record)
    echoed: list[str] = []
    simulate_command(["a", "b"], 4, False, None, 100.0, None, echoed.append, scoring="MostAllocated")
    assert [(s.name, s.most_allocated) for s in compared] == [("a4", True), ("b4", True)]
    assert echoed[0].splitlines()[0] == "scenario a4: 1 jobs, up to 2 workers, seed 4, MostAllocated scoring (one job)"
    assert echoed == [
        format_report(compare(replace(one_job(), name=n, most_allocated=True), 4)) + "\n" for n in ("a4", "b4")
    ]
    simulate_command(["a"], 4, False, None, 100.0, None, echoed.append, scoring="LeastAllocated")
    assert [s.most_allocated for s in compared[2:]] == [False]


def test_simulate_command_plots_with_every_baseline_swept_and_says_where(two_scenarios, plots, tmp_path) -> None:
    (tmp_path / "cost.PNG").write_bytes(compare_module.PNG_SIGNATURE + b"an earlier plot")
    echoed: list[str] = []
    simulate_command(["a", "b"], 1, False, None, 100.0, tmp_path / "cost.PNG", echoed.append)
    every = ["oscar-deploy", "clues-oscar", "clues-upstream", "ca-evict", "ca-safe", "karpenter", "karpenter-dnd"]
    assert plots == [[("a1", every), ("b1", every)]]
    assert (tmp_path / "cost.PNG").read_bytes() == compare_module.PNG_SIGNATURE
    assert (tmp_path / "cost.PNG").stat().st_mode & 0o777 == 0o644
    assert [line.splitlines()[0] for line in echoed] == [
        "scenario a1: 1 jobs, up to 2 workers, seed 1, LeastAllocated scoring (one job)",
        "scenario b1: 1 jobs, up to 2 workers, seed 1, LeastAllocated scoring (one job)",
        f"wrote {tmp_path / 'cost.PNG'}",
    ]


def test_simulate_command_replaces_a_png_known_by_its_whole_signature_and_nothing_shorter(
    two_scenarios, plots, tmp_path
) -> None:
    earlier = tmp_path / "cost.png"
    earlier.write_bytes(b"\x89PNG\r\n\x1a\n" + b"an earlier plot")
    simulate_command(["a"], 1, True, None, 100.0, earlier, [].append)
    assert earlier.read_bytes() == compare_module.PNG_SIGNATURE
    cut = tmp_path / "cut.png"
    cut.write_bytes(b"\x89PNG\r\n\x1a")  # the signature but its last byte
    assert refusal(["a"], 1, False, None, 100.0, cut) == (
        f"--plot {cut}: exists and is not a PNG image, so it is not replaced; move it away or pick another path"
    )
    assert cut.read_bytes() == b"\x89PNG\r\n\x1a"
    assert [[scenario for scenario, _ in drawn] for drawn in plots] == [["a1"]], "the refused one was not plotted"


def test_simulate_command_says_when_the_plot_cannot_be_written(two_scenarios, plots, tmp_path, monkeypatch) -> None:
    def disk_full(path: Path, data: bytes, mode: int = 0o600) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "atomic_write", disk_full)
    target = tmp_path / "cost.png"
    assert refusal(["a"], 1, False, None, 100.0, target) == (
        f"--plot {target}: cannot write the plot (No space left on device)"
    )
    assert not target.exists()


TRACE = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
    "pod-0,1000,1024,0,0,,BE,Succeeded,0,100,0\n"
    "pod-1,1000,1024,0,0,,BE,Succeeded,50,150,60\n"
)


def test_simulate_command_json_holds_every_report_and_a_trace_runs_alone(two_scenarios, plots, tmp_path) -> None:
    trace = tmp_path / "pods.csv"
    trace.write_text(TRACE)
    echoed: list[str] = []
    simulate_command([], 3, True, trace, 2.5, tmp_path / "cost.png", echoed.append)
    (text,) = echoed
    assert text.startswith('{\n  "seed": 3,\n  "scenarios": [\n    {\n      "scenario": "trace:pods.csv",')
    data = json.loads(text)
    (scenario,) = data["scenarios"]
    assert (scenario["description"], scenario["jobs"]) == (
        "2 pods of an Alibaba v2023 pod list, arrivals x2.5 faster",
        2,
    )
    assert [(name, len(sweeps)) for name, sweeps in plots[0]] == [("trace:pods.csv", 7)]
    both: list[str] = []
    simulate_command(["b"], 3, True, trace, 2.5, None, both.append)
    (text,) = both
    data = json.loads(text)
    assert [(s["scenario"], list(s["sweeps"])) for s in data["scenarios"]] == [
        ("b3", ["oscar-deploy"]),
        ("trace:pods.csv", ["oscar-deploy"]),
    ]


def test_a_report_its_points_and_goals_cannot_be_changed() -> None:
    point, goal = REPORT.rows[0], REPORT.goals[0]
    for value, attribute in ((REPORT, "seed"), (point, "knob"), (goal, "met")):
        with pytest.raises(FrozenInstanceError):
            setattr(value, attribute, None)
