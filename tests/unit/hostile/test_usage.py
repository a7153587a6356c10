"""Class 12: every usage error, click's own included, is one line with exit 2 that names the command's help."""

from __future__ import annotations

import pytest

from tests.unit.hostile.contract import assert_refused


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("validate", "-f", ""),
            "error: Invalid value for '--file' / '-f': is empty; give a value; see oscar-deploy validate -h",
        ),
        (("service", "delete"), "error: Missing argument 'names'; see oscar-deploy service delete -h"),
        (("nosuch",), "error: No such command 'nosuch'; see oscar-deploy -h"),
        (("--bogus",), "error: No such option: --bogus; see oscar-deploy -h"),
        (("validate", "--bogus"), "error: No such option: --bogus; see oscar-deploy validate -h"),
        (("init", "--target"), "error: Option '--target' requires an argument; see oscar-deploy"),
        (
            ("scale", "--workers", "many"),
            "error: Invalid value for '--workers' / '-w': Input should be a valid integer",
        ),
        (("service", "validate", "a.yaml", "--set"), "error: Option '--set' requires an argument"),
        (("validate", "-f", "."), "error: Invalid value for '--file' / '-f': "),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_usage_errors_are_one_line(hostile, args: tuple[str, ...], expected: str) -> None:
    result = hostile.run(*args)
    assert_refused(result)
    assert result.stderr.startswith(expected), result.stderr
    assert "╭" not in result.stderr and "Usage:" not in result.stderr


def test_usage_errors_in_a_real_process(hostile) -> None:
    outcome = hostile.bounded("service", "delete")
    assert_refused(outcome, "Missing argument 'names'; see oscar-deploy service delete -h")
