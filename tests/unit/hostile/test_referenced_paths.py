"""Class 2: a `script:` path resolves inside the FDL's folder; anything else (`..`, absolute paths, /proc, a
cluster's secrets.yaml, a link leading out) is refused in one line, and nothing of it is printed."""

from __future__ import annotations

import pytest

from tests.unit.hostile.contract import assert_refused
from tests.unit.hostile.fdl import service_fdl


@pytest.mark.parametrize(
    "script",
    ["../../../../etc/passwd", "/etc/passwd", "/proc/self/environ", "../outside/demo/secrets.yaml"],
)
def test_scripts_outside_the_fdl_folder_are_refused(hostile, script: str) -> None:
    hostile.write("svc.yaml", service_fdl(script=script))
    line = assert_refused(hostile.run("service", "render", "svc.yaml", "--show-secrets"))
    assert line.startswith("svc.yaml:6: functions.oscar.0.demo.script: script file "), line
    assert "is outside the FDL's folder" in line


def test_a_home_folder_path_is_not_expanded(hostile) -> None:
    (hostile.home / ".ssh").mkdir()
    (hostile.home / ".ssh" / "id_ed25519").write_text("PRIVATE-KEY-S3CRET\n")
    hostile.write("svc.yaml", service_fdl(script="~/.ssh/id_ed25519"))
    assert_refused(
        hostile.run("service", "render", "svc.yaml", "--show-secrets"),
        "script: ~/.ssh/id_ed25519: no such script file; paths are relative to the FDL file",
    )


def test_the_secrets_of_a_cluster_are_refused_through_a_link(hostile) -> None:
    (hostile.work / "run.sh").symlink_to(hostile.outside / "demo" / "secrets.yaml")
    hostile.write("svc.yaml", service_fdl())
    line = assert_refused(hostile.run("service", "render", "svc.yaml", "--show-secrets"), "script file 'run.sh'")
    assert "K3S-TOKEN" not in line


def test_files_in_a_state_folder_are_refused_even_next_to_the_fdl(hostile) -> None:
    """An FDL kept inside the state root cannot read a cluster's secrets beside it."""
    folder = hostile.applied_cluster()
    (folder / "secrets.yaml").write_text("k3s_token: K3S-TOKEN-S3CRET\n")
    (folder / "svc.yaml").write_text(service_fdl(script="secrets.yaml"))
    line = assert_refused(hostile.run("service", "render", str(folder / "svc.yaml"), "--show-secrets"))
    assert "script file 'secrets.yaml' is outside the FDL's folder" in line


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda work: work.joinpath("run.sh").mkdir(), "script: run.sh: is a folder, not a regular file"),
        (lambda work: __import__("os").mkfifo(work / "run.sh"), "script: run.sh: is a FIFO (named pipe)"),
        (
            lambda work: work.joinpath("run.sh").write_bytes(b"echo \xff\n"),
            "script: run.sh:1: the script file is not UTF-8",
        ),
        (
            lambda work: work.joinpath("run.sh").write_bytes(b"#" * (1024 * 1024 + 1)),
            "script: run.sh: the script file is larger than 1 MiB",
        ),
    ],
    ids=["folder", "fifo", "not utf-8", "too large"],
)
def test_scripts_that_are_not_small_text_files_are_refused(hostile, make, expected: str) -> None:
    make(hostile.work)
    hostile.write("svc.yaml", service_fdl())
    assert_refused(hostile.run("service", "validate", "svc.yaml"), expected)
