"""`up --until kubernetes --check-drift` killed (`kill -9` of its process group) or interrupted (SIGINT to its
process group, as Ctrl-C in a terminal sends it) at a random point of prepare and of kubernetes, on the tier's
shared cluster over real SSH (the drift check makes the playbooks run every role on the converged nodes):
nothing of the killed run keeps running (ansible-playbook, its workers, ssh and ssh's control masters), nothing
of it is left outside the cluster's state folder, the journal does not claim the interrupted phase, and the
next `up` converges. A second `up` while one runs is refused, naming the first.

The random point in prepare counts from the start of prepare.yml; in kubernetes, from its first SSH connection
(the first ssh control master), so that those daemons are among what must not survive.

The random points come from a seed printed at the start (set OSCAR_TEST_SEED to replay a failure). k3s on the
nodes is the labelled stand-in tests/doubles/k3s, from the tier's air-gap bundle of stand-ins.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from oscar_deploy.support.guard import GUARD_PID_FILE, descendants, read_pid
from tests.nodes.harness import LocalCluster
from tests.processes import alive, wait_for

pytestmark = [pytest.mark.nodes, pytest.mark.timeout(2400)]
INTERRUPTED = "interrupted; what completed is recorded, run the command again to resume"
# The longest a random point waits after its playbook started; both playbooks take longer than that on
# converged nodes under a drift check (every role checks every step), so the point falls inside the playbook.
LATEST_POINT = 3.0


@pytest.fixture(scope="module")
def rng() -> random.Random:
    seed = int(os.environ.get("OSCAR_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nOSCAR_TEST_SEED={seed} (set it to replay these random points)")
    return random.Random(seed)  # noqa: S311 - a test's random points, replayable from the seed


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def environment_mentions(pid: int, text: bytes) -> bool:
    try:
        return text in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


class Run:
    """One `oscar-deploy up --until kubernetes --check-drift` on the shared cluster (prepare and kubernetes run
    every role, whatever the journal and the nodes' records say), in a process group of its own, with a TMPDIR
    and HOME of its own in which nothing may be left."""

    def __init__(self, cluster: LocalCluster, scratch: Path) -> None:
        self.cluster = cluster
        self.tmp = scratch / "tmp"
        self.home = scratch / "home"
        for folder in (self.tmp, self.home):
            folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "oscar_deploy", "up", "--until", "kubernetes", "--check-drift"],
            cwd=cluster.workdir,
            env={**cluster.env, "TMPDIR": str(self.tmp), "HOME": str(self.home)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    @property
    def runs_dir(self) -> Path:
        return self.cluster.state.runs_dir

    def playbook_folder(self, playbook: str) -> Path:
        """Waits until `playbook` runs (its private folder holds the guard's pid); returns the folder."""
        found: list[Path] = []

        def running() -> bool:
            folders = sorted(self.runs_dir.glob(f"*-{playbook}-*")) if self.runs_dir.is_dir() else []
            found[:] = [folder for folder in folders if (folder / GUARD_PID_FILE).is_file()]
            return bool(found) or self.process.poll() is not None

        wait_for(running, 900, f"{playbook}.yml to start", interval=0.1)
        assert found, f"up ended before {playbook}.yml ran:\n{self.process.communicate()[1]}"
        return found[0]

    def processes(self) -> set[int]:
        """Every process of this run: the CLI's descendants (the guard, ansible-playbook, its workers, ssh, ssh's
        control masters re-parented to the guard) and any process whose environment names its run folders."""
        marker = f"={self.runs_dir}/".encode()
        found = {self.process.pid, *descendants(self.process.pid)}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and environment_mentions(int(entry.name), marker):
                found.add(int(entry.name))
        return found

    def control_masters(self) -> list[int]:
        """ssh's ControlPersist masters of this run: daemons (setsid) titled with their socket path, relative
        to the run's folder."""
        return [pid for pid in self.processes() if re.fullmatch(r"ssh: cp/\w+ \[mux\]", command_line(pid))]

    def ended(self, processes: set[int]) -> bool:
        """Whether none of `processes` (taken at the kill) nor any newer process of the run is alive."""
        return not any(alive(pid) for pid in processes | self.processes())

    def left_outside(self) -> list[str]:
        """Files (sockets included) in the run's TMPDIR and HOME. Folders do not count: every ansible-playbook
        makes its (empty) home folder `~/.ansible` when it starts (ansible/cli/__init__.py, cli_executor)."""
        return sorted(str(path) for folder in (self.tmp, self.home) for path in folder.rglob("*") if not path.is_dir())


def forget(cluster: LocalCluster, *phases: str) -> None:
    """Make `up` run `phases` again, as if they never completed (so the journal shows whether a run recorded
    them)."""
    journal = cluster.state.journal.path
    data = json.loads(journal.read_text())
    for phase in phases:
        data["phases"].pop(phase, None)
    journal.write_text(json.dumps(data))


def assert_converges(cluster: LocalCluster) -> str:
    result = cluster.cli("up", "--until", "kubernetes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(cluster.state.journal.records()) >= {"provision", "prepare", "kubernetes"}
    assert not cluster.state.runs_dir.exists() or list(cluster.state.runs_dir.iterdir()) == []
    again = cluster.cli("up", "--until", "kubernetes")
    assert again.returncode == 0, again.stderr
    assert "phase prepare: up to date" in again.stderr and "phase kubernetes: up to date" in again.stderr
    return result.stderr


def test_kill_9_in_prepare_and_in_kubernetes_leaves_nothing_and_up_converges(
    local_cluster: LocalCluster, rng: random.Random, tmp_path: Path
) -> None:
    forget(local_cluster, "prepare", "kubernetes")
    killed: list[int] = []
    for number, playbook in enumerate(("prepare", "kubernetes")):
        run = Run(local_cluster, tmp_path / str(number))
        folder = run.playbook_folder(playbook)
        guard = read_pid(folder / GUARD_PID_FILE)
        assert guard is not None
        if playbook == "kubernetes":  # from its first SSH connection on, so that ssh's masters are killed too
            wait_for(lambda: bool(run.control_masters()), 120, "an ssh control master", interval=0.1)  # noqa: B023
        delay = rng.uniform(0.5, LATEST_POINT)
        time.sleep(delay)
        processes = run.processes()
        assert alive(guard), f"{playbook}.yml ended within {delay:.1f} s; the random point missed it"
        assert playbook == "prepare" or run.control_masters(), "ssh's control masters are among the victims"
        os.killpg(run.process.pid, signal.SIGKILL)
        run.process.wait(timeout=60)
        killed.append(run.process.pid)
        wait_for(partial(run.ended, processes), 60, "the run's processes to end", interval=0.1)
        assert run.left_outside() == [], f"files of the run killed in {playbook}.yml outside the state folder"
        assert folder.is_dir(), "the private folder of a killed run stays in the state folder until the next run"
        assert playbook not in local_cluster.state.journal.records(), "a killed phase is not recorded"

    stderr = assert_converges(local_cluster)
    assert re.search(rf"note: cluster \S+: `up` \(pid {killed[-1]}\) since \S+ ended without releasing", stderr)


@pytest.mark.parametrize("playbook", ["prepare", "kubernetes"])
def test_ctrl_c_exits_130_and_a_second_up_meanwhile_is_refused(
    local_cluster: LocalCluster, rng: random.Random, tmp_path: Path, playbook: str
) -> None:
    forget(local_cluster, *(["prepare", "kubernetes"] if playbook == "prepare" else ["kubernetes"]))
    run = Run(local_cluster, tmp_path)
    folder = run.playbook_folder(playbook)

    guard = read_pid(folder / GUARD_PID_FILE)
    assert guard is not None

    if playbook == "kubernetes":  # the longer playbook: time for a second CLI to start and be refused
        second = local_cluster.cli("up", "--until", "kubernetes")
        assert second.returncode == 2
        assert re.fullmatch(
            rf"error: cluster {local_cluster.name}: busy with `up` \(pid {run.process.pid}\) since \S+; wait for it "
            r"to end \(or stop it\), then run this again",
            second.stderr.strip(),
        ), second.stderr
        wait_for(lambda: bool(run.control_masters()), 120, "an ssh control master", interval=0.1)
    delay = rng.uniform(0.5, LATEST_POINT)
    time.sleep(delay)
    processes = run.processes()
    assert alive(guard), f"{playbook}.yml ended within {delay:.1f} s; the random point missed it"
    masters = run.control_masters()
    assert all(Path(f"/proc/{pid}/cwd").readlink() == folder for pid in masters)
    assert playbook == "prepare" or masters, "ssh's control masters are among what must stop"
    started = time.monotonic()
    os.killpg(run.process.pid, signal.SIGINT)
    _, stderr = run.process.communicate(timeout=120)
    assert run.process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in stderr and "events directory" not in stderr
    assert time.monotonic() - started < 30
    wait_for(partial(run.ended, processes), 30, "the run's processes to end", interval=0.1)
    assert run.left_outside() == []
    assert playbook not in local_cluster.state.journal.records()
    assert list(run.runs_dir.iterdir()) == [], "an interrupted run removes its private folder"

    stderr = assert_converges(local_cluster)
    assert "ended without releasing its lock" not in stderr
