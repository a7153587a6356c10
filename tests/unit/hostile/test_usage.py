"""Class 12: every usage error, click's own included, is one line with exit 2 that names the command's help."""

from __future__ import annotations

import pytest

from tests.unit.hostile.contract import assert_refused


# What each message must name: the option, argument or command, and the help to read. The wording around them is
# click's, which changed between the click package and typer's own copy of it (typer 0.26), so it is not pinned.
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("validate", "-f", ""), ("'--file' / '-f'", "is empty; give a value", "see oscar-deploy validate -h")),
        (("service", "delete"), ("Missing argument", "see oscar-deploy service delete -h")),
        (("nosuch",), ("No such command", "nosuch", "see oscar-deploy -h")),
        (("--bogus",), ("No such option", "--bogus", "see oscar-deploy -h")),
        (("validate", "--bogus"), ("No such option", "--bogus", "see oscar-deploy validate -h")),
        (("init", "--target"), ("'--target' requires an argument", "see oscar-deploy")),
        (("scale", "--workers", "many"), ("'--workers' / '-w'", "integer", "see oscar-deploy scale -h")),
        (("service", "validate", "a.yaml", "--set"), ("'--set' requires an argument",)),
        (("validate", "-f", "."), ("'--file' / '-f'",)),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) and value and value[0] != "'" else None,
)
def test_usage_errors_are_one_line(hostile, args: tuple[str, ...], fragments: tuple[str, ...]) -> None:
    result = hostile.run(*args)
    assert_refused(result, *fragments)
    assert "╭" not in result.stderr and "Usage:" not in result.stderr


def test_usage_errors_in_a_real_process(hostile) -> None:
    outcome = hostile.bounded("service", "delete")
    assert_refused(outcome, "Missing argument", "see oscar-deploy service delete -h")
