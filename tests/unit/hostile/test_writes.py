"""Class 3: a write goes to a regular file (never over a device, FIFO or folder), is checked before any side
effect, and never replaces a file of another kind without asking (and without a terminal, it refuses)."""

from __future__ import annotations

import os

import pytest

from tests.unit.hostile.conftest import OUTSIDE_KUBECONFIG, OUTSIDE_SPEC
from tests.unit.hostile.contract import assert_refused

ENDPOINT = ["--endpoint", "http://127.0.0.1:9"]  # nothing listens: a case that connected would fail otherwise


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["init", "--force", "-f", "/dev/null"], "/dev/null: is a character device; the cluster spec is only written"),
        (["service", "cli-config", "--config-file", "/dev/null", *ENDPOINT], "/dev/null: is a character device"),
        (["kubeconfig", "-c", "demo", "--merge", "--into", "/dev/null"], "/dev/null: is a character device"),
        (
            ["service", "run", "svc", "--input", "in.txt", "--output", "/dev/null", *ENDPOINT],
            "/dev/null: is a character",
        ),
        (["service", "run", "svc", "--input", "in.txt", "--output", "fifo", *ENDPOINT], "fifo: is a FIFO (named pipe)"),
        (
            ["service", "run", "svc", "--input", "in.txt", "--output", "/proc/nope/x", *ENDPOINT],
            "/proc/nope/x: folder /proc/nope does not exist",
        ),
        (["files", "get", "bucket/a.txt", "fifo", *ENDPOINT], "fifo: is a FIFO (named pipe); the local file"),
    ],
    ids=["init", "cli-config", "kubeconfig", "run output device", "run output fifo", "run output nowhere", "files get"],
)
def test_special_targets_are_refused_before_anything_happens(hostile, args: list[str], expected: str) -> None:
    hostile.applied_cluster()
    hostile.write("in.txt", "data\n")
    os.mkfifo(hostile.work / "fifo")
    assert_refused(hostile.run(*args), expected)


def test_cli_config_refuses_to_rewrite_a_cluster_spec(hostile) -> None:
    spec = hostile.outside / "cluster.yaml"
    line = assert_refused(hostile.run("service", "cli-config", "--config-file", str(spec), *ENDPOINT))
    assert line == (
        f"{spec}: exists and is not an oscar-cli configuration, so it is not replaced; "
        "move it away or pick another path"
    )
    assert spec.read_text() == OUTSIDE_SPEC


def test_kubeconfig_merge_refuses_to_rewrite_a_cluster_spec(hostile) -> None:
    hostile.applied_cluster()
    spec = hostile.outside / "cluster.yaml"
    assert_refused(
        hostile.run("kubeconfig", "-c", "demo", "--merge", "--into", str(spec)),
        f"{spec}: exists and is not a kubeconfig, so it is not replaced",
        secrets=("ADMIN-TOKEN-S3CRET",),
    )


def test_init_refuses_to_replace_what_is_not_a_spec(hostile) -> None:
    target = hostile.outside / "config"
    assert_refused(
        hostile.run("init", "--force", "-f", str(target)), f"{target}: exists and is not a cluster spec, so it is not"
    )
    assert target.read_text() == OUTSIDE_KUBECONFIG


def test_init_leaves_nothing_when_the_schema_path_is_a_folder(hostile) -> None:
    (hostile.work / "cluster.schema.json").mkdir()
    assert_refused(hostile.run("init"), "cluster.schema.json: is a folder; the spec schema is only written")
    assert not (hostile.work / "cluster.yaml").exists()


def test_init_into_a_folder_it_cannot_write_is_one_line(hostile) -> None:
    line = assert_refused(hostile.run("init", "-f", "/sys/x.yaml"))
    assert line.startswith("/sys/x.yaml: "), line


def test_the_output_is_checked_before_the_service_runs(hostile) -> None:
    """No connection is tried (nothing listens on the endpoint): the refusal comes first."""
    hostile.write("in.txt", "data\n")
    line = assert_refused(hostile.run("service", "run", "svc", "-i", "in.txt", "-o", "/proc/nope/x", *ENDPOINT))
    assert "127.0.0.1" not in line


def test_a_kubeconfig_merge_follows_a_link_instead_of_replacing_it(hostile) -> None:
    hostile.applied_cluster()
    real = hostile.work / "real-config"
    real.write_text(OUTSIDE_KUBECONFIG)
    link = hostile.work / "config-link"
    link.symlink_to(real)
    result = hostile.run("kubeconfig", "-c", "demo", "--merge", "--into", str(link))
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and "name: demo" in real.read_text()
    assert oct(real.stat().st_mode & 0o777) == "0o600"


LONG = "d" * 300  # longer than a file name may be (255): every lookup of the path fails with ENAMETOOLONG
SHOWN_LONG = f"'{'d' * 200}...'"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["init", "-f", LONG], f"{SHOWN_LONG}: cannot write the cluster spec (File name too long)"),
        (
            ["render", LONG, "-f", "spec.yaml", "--public-address", "127.0.0.1"],
            f"{SHOWN_LONG}: cannot write the rendered manifest (File name too long)",
        ),
        (
            ["bundle", "build", "--download-url", "http://127.0.0.1:9/k3s", LONG],
            f"{SHOWN_LONG}: cannot write the bundle manifest (File name too long)",
        ),
        (
            ["bundle", "build", "--download-url", "http://127.0.0.1:9/k3s", "spec.yaml/sub"],
            "spec.yaml/sub/manifest.json: a part of the path is a file, not a folder; pick another path",
        ),
        (["bundle", "inspect", LONG], f"{SHOWN_LONG}: not an air-gap bundle (no manifest.json)"),
    ],
    ids=["init", "render", "bundle build", "bundle build under a file", "bundle inspect"],
)
def test_a_path_that_cannot_be_looked_up_is_one_line(hostile, args: list[str], expected: str) -> None:
    hostile.write("spec.yaml", "name: demo\n")
    assert_refused(hostile.run(*args), expected)
    assert sorted(path.name for path in hostile.work.iterdir()) == ["spec.yaml"], "nothing written"
