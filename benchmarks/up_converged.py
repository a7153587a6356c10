"""Prints the seconds of `oscar-deploy up` on a converged 4-node local cluster next to the first `up` of it.

The first `up` creates the nodes (from the cached node image) and installs k3s from an air-gap bundle of the
labelled k3s stand-ins (tests/doubles/, as the node tests do: no k3s binary can be downloaded here). The
converged runs must skip every phase but provision without a single SSH connection; the script counts the
`ssh` processes each run starts (an `ssh` wrapper first on PATH logs them). Goal: a converged `up` under 5% of
the first and under 10 s. The cluster is removed at the end.

    .venv/bin/python benchmarks/up_converged.py [--workers 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oscar_deploy.spec.catalogue import load_catalogue  # noqa: E402
from tests.doubles.bundle import build_test_bundle  # noqa: E402

SSH_WRAPPER = """#!/bin/sh
echo "$@" >> "{log}"
exec {ssh} "$@"
"""


def timed_up(workdir: Path, env: dict[str, str], ssh_log: Path) -> tuple[float, int]:
    ssh_log.write_text("")
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "oscar_deploy", "up", "--until", "kubernetes"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"up failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, len(ssh_log.read_text().splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3, help="agents beside the one server (default 3)")
    parser.add_argument("--runs", type=int, default=3, help="converged runs to time (the median is compared)")
    args = parser.parse_args()
    real_ssh = shutil.which("ssh")
    if real_ssh is None:
        raise SystemExit("ssh: not found; run bash scripts/install-system-packages.sh")
    with tempfile.TemporaryDirectory(prefix="up-converged-") as folder:
        base = Path(folder)
        bundle = base / "bundle"
        build_test_bundle(bundle, load_catalogue().version("k3s"), ("amd64",))
        wrappers = base / "bin"
        wrappers.mkdir()
        ssh_log = base / "ssh.log"
        (wrappers / "ssh").write_text(SSH_WRAPPER.format(log=ssh_log, ssh=real_ssh))
        (wrappers / "ssh").chmod(0o755)
        name = f"bench{os.getpid()}"
        workdir = base / "work"
        workdir.mkdir()
        (workdir / "cluster.yaml").write_text(
            f"name: {name}\nworkers:\n  initial: {args.workers}\n  max: {max(args.workers, 3)}\n"
        )
        env = {
            **os.environ,
            "OSCAR_DEPLOY_HOME": str(base / "state"),
            "OSCAR_DEPLOY_NODE_IMAGE_SOURCE": "debootstrap",
            "OSCAR_DEPLOY_BUNDLE": str(bundle),
            "PATH": os.pathsep.join((str(wrappers), str(Path(sys.executable).parent), os.environ.get("PATH", ""))),
        }
        try:
            first, first_ssh = timed_up(workdir, env, ssh_log)
            converged = [timed_up(workdir, env, ssh_log) for _ in range(args.runs)]
        finally:
            subprocess.run(
                [sys.executable, "-m", "oscar_deploy", "down", "--yes"],
                cwd=workdir,
                env=env,
                capture_output=True,
                check=False,
            )
    median = statistics.median(seconds for seconds, _ in converged)
    ssh_counts = sorted({count for _, count in converged})
    print(f"first up ({1 + args.workers} nodes): {first:7.1f} s ({first_ssh} ssh processes)")
    print(f"converged up:         {median:7.1f} s (median of {args.runs}; ssh processes per run: {ssh_counts})")
    ratio = median / first
    goal_met = ratio < 0.05 and median < 10 and ssh_counts == [0]
    print(f"ratio: {ratio:.1%} (goal < 5%, < 10 s, no ssh): {'met' if goal_met else 'NOT met'}")


if __name__ == "__main__":
    main()
