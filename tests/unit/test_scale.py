"""`scale --workers N`: the range check against the spec and the preconditions.

Scaling for real (nodes created, joined, drained and destroyed) runs in tests/nodes/test_k3s_cli.py; which
nodes grow or go is `counted_plan`'s (tests/unit/test_local_provider_units.py).
"""

from __future__ import annotations

import pytest

from oscar_deploy.state.folder import ClusterState

SPEC = "name: lab\ntarget: local\nworkers:\n  initial: 1\n  min: 1\n  max: 3\nlocal:\n  worker_arch: arm64\n"


@pytest.mark.parametrize(
    ("workers", "expected"),
    [
        (
            "4",
            "error: --workers 4: above workers.max (3) of cluster lab; raise workers.max in its spec or ask for at "
            "most 3",
        ),
        (
            "0",
            "error: --workers 0: below workers.min (1) of cluster lab; lower workers.min in its spec or ask for at "
            "least 1",
        ),
    ],
)
def test_workers_outside_the_spec_range_name_the_key(cli, workers: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    result = cli("scale", "--workers", workers)
    assert result.exit_code == 2
    assert result.stderr == expected + "\n"


def test_the_range_limits_themselves_are_allowed(cli) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    for workers in ("1", "3"):
        result = cli("scale", "--workers", workers)
        assert "workers.m" not in result.stderr, "min and max themselves are in range"


def test_scale_needs_k3s_and_a_count_scaled_target(cli) -> None:  # type: ignore[no-untyped-def]
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    no_k3s = cli("scale", "--workers", "2")
    assert no_k3s.exit_code == 2
    assert no_k3s.stderr == "error: cluster lab: k3s is not installed yet; run `oscar-deploy up` first\n"
    assert not ClusterState("lab").path.exists(), "a refused scale creates nothing"
    (cli.cwd / "edge.yaml").write_text("name: boards\ntarget: static\n")
    static = cli("scale", "--workers", "1", "-f", "edge.yaml")
    assert static.exit_code == 2
    assert static.stderr == (
        "error: cluster boards: target static scales by its inventory; add or remove hosts there and run "
        "`oscar-deploy up` again\n"
    )
