"""Prints the median wall time of `oscar-deploy --help` next to a minimal two-command typer app's `--help`.

Typer's own help rendering is the floor; the goal is at most 1.1x that floor, which holds only while every
heavy import (pydantic, Ansible, Pulumi, SDKs) stays inside the commands that need it.

    .venv/bin/python benchmarks/cli_help.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.1

MINIMAL_APP = '''
import typer

app = typer.Typer()


@app.command()
def hello(name: str = "world") -> None:
    """Say hello."""


@app.command()
def bye() -> None:
    """Say bye."""


app()
'''


def median_seconds(command: list[str], runs: int) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        minimal = Path(folder) / "minimal_app.py"
        minimal.write_text(MINIMAL_APP)
        floor_cmd = [sys.executable, str(minimal), "--help"]
        ours_cmd = [sys.executable, "-m", "oscar_deploy", "--help"]
        # Warm the file cache and .pyc files once before measuring, interleaving so drift hits both alike.
        median_seconds(floor_cmd, 1)
        median_seconds(ours_cmd, 1)
        floor_times, ours_times = [], []
        for _ in range(runs):
            floor_times.append(median_seconds(floor_cmd, 1))
            ours_times.append(median_seconds(ours_cmd, 1))
    floor, ours = statistics.median(floor_times), statistics.median(ours_times)
    ratio = ours / floor
    print(f"minimal typer app --help: {floor * 1000:7.1f} ms (median of {runs})")
    print(f"oscar-deploy --help:      {ours * 1000:7.1f} ms (median of {runs})")
    print(f"ratio: {ratio:.2f}x (goal <= {GOAL}x): {'met' if ratio <= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
