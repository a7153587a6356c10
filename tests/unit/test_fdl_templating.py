"""The rules of FDL templating at their limits, each with the whole line it reports: values and `--set` flags, the
sandbox's budgets (powers, repetition), putting printed values back into the parsed data, and blanking the
environment's values out of messages (oscar_deploy/services/templating.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oscar_deploy.services.fdl import FdlError
from oscar_deploy.services.templating import (
    MAX_OUTPUT_CHARS,
    load_fdl,
)
from tests.unit.test_fdl import MINIMAL_SERVICE

# A macro's output is template text; formatted into a string it becomes a printed value holding other values.
MACRO = "{% macro m(v) %}{{ v }}{% endmacro %}"


def _variable(folder: Path, template_lines: str, value: str) -> str:
    """The value environment variable F gets, from an FDL whose first lines are `template_lines`."""
    (folder / "service.yaml").write_text(
        template_lines + MINIMAL_SERVICE + f"      environment:\n        variables: {{F: '{value}'}}\n"
    )
    (folder / "run.sh").write_text("echo hi\n")
    return str(load_fdl(folder / "service.yaml").services[0].body["environment"]["variables"]["F"])


def _problem(folder: Path, template_lines: str, value: str) -> str:
    with pytest.raises(FdlError) as caught:
        _variable(folder, template_lines, value)
    (line,) = caught.value.lines
    return line.removeprefix(f"{folder / 'service.yaml'}")


# --- printed values put back -----------------------------------------------------------------------------------------


def test_a_value_printed_inside_another_is_put_back_eight_levels_deep(tmp_path: Path) -> None:
    nested = MACRO + "{% set ns = namespace(x='v') %}{% for i in range(7) %}{% set ns.x = '(%s)'|format(m(ns.x)) %}"
    assert _variable(tmp_path, nested + "{% endfor %}\n", "{{ ns.x }}") == "(" * 7 + "v" + ")" * 7
    deeper = nested.replace("range(7)", "range(8)")
    assert _problem(tmp_path, deeper + "{% endfor %}\n", "{{ ns.x }}") == (
        ": the template prints values inside printed values more than 8 deep; simplify it"
    )


def test_values_put_back_count_against_the_output_budget(tmp_path: Path) -> None:
    """A few hundred markers of one long value are a short text, and a long document once the value is back."""
    template = MACRO + f"{{% set many = '%s'|format(m('x' * {MAX_OUTPUT_CHARS // 64}) * 65) %}}\n"
    assert _problem(tmp_path, template, "{{ many }}") == (
        f": the template renders more than {MAX_OUTPUT_CHARS} characters; simplify it"
    )
    exactly = MACRO + f"{{% set many = '%s'|format(m('x' * {MAX_OUTPUT_CHARS // 64 - 20}) * 64) %}}\n"
    assert len(_variable(tmp_path, exactly, "{{ many }}")) == 64 * (MAX_OUTPUT_CHARS // 64 - 20)


def test_a_marker_the_template_forges_for_a_later_value_stays_text(tmp_path: Path) -> None:
    """A template can read a marker from a macro's output and forge another; only earlier values are put back."""
    forged = MACRO + "{% set forged = '%s'|format(m('a'))|replace('n0z', 'n9z') %}\n"
    value = _variable(tmp_path, forged, "{{ forged }}")
    assert value.startswith("odv") and value.endswith("n9z")
