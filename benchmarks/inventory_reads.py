"""Prints the time one command spends reading an unchanged inventory several times, with ansible-inventory's
output kept between reads (as oscar-deploy does) next to a baseline that runs ansible-inventory for every read.

An `edge install` reads the user's inventory four times, and `status` of a static cluster twice (and the
cluster's own inventory once); each run of ansible-inventory costs most of a second.

    .venv/bin/python benchmarks/inventory_reads.py [--reads N] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from oscar_deploy.nodes import inventory

INVENTORY = """\
k3s_cluster:
  children:
    server:
      hosts:
        pi-0: {ansible_host: 192.0.2.10}
    agent:
      hosts:
        pi-1: {ansible_host: 192.0.2.11}
        pi-2: {ansible_host: 192.0.2.12}
  vars:
    k3s_version: v1.33.3+k3s1
"""


def command_seconds(path: Path, reads: int, keep: bool) -> float:
    """Wall time of `reads` reads of `path` by one command, which starts with nothing kept."""
    inventory._LISTED.clear()
    start = time.perf_counter()
    for _ in range(reads):
        if not keep:
            inventory._LISTED.clear()
        inventory.read_inventory(path)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=4, help="reads per command (default: 4, as edge install)")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "boards.yml"
        path.write_text(INVENTORY)
        command_seconds(path, 1, keep=False)  # warm the file cache and Ansible's .pyc files
        baseline, kept = [], []
        for _ in range(options.runs):  # interleaved, so drift hits both alike
            baseline.append(command_seconds(path, options.reads, keep=False))
            kept.append(command_seconds(path, options.reads, keep=True))
    every, once = statistics.median(baseline), statistics.median(kept)
    print(f"{options.reads} reads, ansible-inventory each time: {every:6.2f} s (median of {options.runs})")
    print(f"{options.reads} reads, its output kept:          {once:6.2f} s (median of {options.runs})")
    print(f"saved per command: {every - once:.2f} s ({once / every:.0%} of the baseline's time)")


if __name__ == "__main__":
    main()
