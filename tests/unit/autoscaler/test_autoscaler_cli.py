"""`oscar-deploy autoscaler simulate` through typer's runner: tables, JSON, trace input, plot, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from oscar_deploy.autoscaler.baselines import POLICIES

SAMPLE = Path(__file__).parents[2] / "data" / "alibaba" / "openb_pod_list_sample.csv"


def test_simulate_prints_the_table_and_goals(cli) -> None:
    result = cli("autoscaler", "simulate", "--scenario", "sparse", "--seed", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("scenario sparse: ")
    assert lines[0].endswith("seed 2, LeastAllocated scoring (2 uploads/h, ~120 s jobs, 4 workers booting in ~180 s)")
    assert lines[1].split()[:4] == ["policy", "knob", "node-h", "idle-h"]
    assert [line.split()[0] for line in lines[2:11]] == list(POLICIES)
    assert "goals against clues-oscar:" in lines
    assert sum(line.startswith("  [") and " G" in line for line in lines) == 4


def test_simulate_json_is_deterministic(cli) -> None:
    first = cli("autoscaler", "simulate", "-s", "sparse", "--json")
    again = cli("autoscaler", "simulate", "-s", "sparse", "--json")
    assert first.exit_code == 0, first.output
    assert first.stdout == again.stdout
    data = json.loads(first.stdout)
    (scenario,) = data["scenarios"]
    assert (scenario["scenario"], scenario["scoring"]) == ("sparse", "LeastAllocated")
    assert [p["policy"] for p in scenario["policies"]] == list(POLICIES)
    assert [g["name"][:2] for g in scenario["goals"]] == ["G1", "G2", "G3", "G4"]
    assert [p["knob"] for p in scenario["sweeps"]["oscar-deploy"]] == list(POLICIES["oscar-deploy"].sweep)


def test_simulate_a_trace_file(cli) -> None:
    result = cli("autoscaler", "simulate", "--trace", str(SAMPLE), "--json")
    assert result.exit_code == 0, result.output
    (scenario,) = json.loads(result.stdout)["scenarios"]
    assert (scenario["scenario"], scenario["jobs"]) == ("trace:openb_pod_list_sample.csv", 9)


def test_bad_input_is_one_line_and_exit_2(cli) -> None:
    unknown = cli("autoscaler", "simulate", "--scenario", "weekly")
    assert (unknown.exit_code, unknown.stderr) == (
        2,
        "error: --scenario weekly: unknown scenario; use one of sparse, bursty, diurnal, edge, azure2019, azure2021\n",
    )
    bad = cli.cwd / "bad.csv"
    bad.write_text(SAMPLE.read_text().replace("sample-pod-03,2000", "sample-pod-03,two"))
    broken = cli("autoscaler", "simulate", "--trace", str(bad))
    assert (broken.exit_code, broken.stderr) == (
        2,
        f"error: {bad}:5: cpu_milli 'two' is not a whole number; fix or remove the row\n",
    )
    plot = cli("autoscaler", "simulate", "-s", "sparse", "--plot", "cost.svg")
    assert (plot.exit_code, plot.stderr) == (
        2,
        "error: --plot cost.svg: the plot is a PNG image; give a file name ending in .png\n",
    )
    seed = cli("autoscaler", "simulate", "-s", "sparse", "--seed", "-1")
    assert (seed.exit_code, seed.stderr) == (2, "error: --seed -1: must be 0 or more\n")
    scoring = cli("autoscaler", "simulate", "-s", "sparse", "--scoring", "packed")
    assert (scoring.exit_code, scoring.stderr) == (
        2,
        "error: --scoring packed: unknown scoring strategy; use LeastAllocated or MostAllocated\n",
    )


def test_simulate_with_a_scheduler_that_packs(cli) -> None:
    packed = cli("autoscaler", "simulate", "-s", "sparse", "--scoring", "MostAllocated", "--json")
    spread = cli("autoscaler", "simulate", "-s", "sparse", "--json")
    assert (packed.exit_code, spread.exit_code) == (0, 0), packed.output
    (scenario,) = json.loads(packed.stdout)["scenarios"]
    assert scenario["scoring"] == "MostAllocated"
    assert packed.stdout != spread.stdout.replace('"LeastAllocated"', '"MostAllocated"'), "the numbers differ"


def test_plot_writes_a_png_with_every_knob_swept(cli) -> None:
    result = cli("autoscaler", "simulate", "-s", "sparse", "--plot", "cost.png")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("wrote cost.png")
    assert (cli.cwd / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_autoscaler_group_offers_run_status_and_simulate(cli) -> None:
    result = cli("autoscaler", "--help")
    assert result.exit_code == 0
    for command in ("run", "status", "simulate"):
        assert f" {command} " in result.stdout
