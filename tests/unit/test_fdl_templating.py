"""The rules of FDL templating at their limits, each with the whole line it reports: values and `--set` flags, the
sandbox's budgets (powers, repetition), putting printed values back into the parsed data, and blanking the
environment's values out of messages (oscar_deploy/services/templating.py)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from oscar_deploy.services import templating
from oscar_deploy.services.fdl import FdlError
from oscar_deploy.services.templating import (
    MAX_OUTPUT_CHARS,
    Insertions,
    _indented_size,
    _printf_size,
    _replaced_size,
    _time_budget,
    _wrapped_size,
    load_fdl,
    load_values,
    render_template,
)
from tests.unit.test_fdl import MINIMAL_SERVICE

# A macro's output is template text; formatted into a string it becomes a printed value holding other values.
MACRO = "{% macro m(v) %}{{ v }}{% endmacro %}"


def _rendered(template: str) -> str:
    text, insertions = render_template(template, "t.yaml", {})
    assert not insertions.values, "only numbers are printed here"
    return text


def _refused(template: str) -> str:
    with pytest.raises(FdlError) as caught:
        render_template(template, "t.yaml", {})
    (line,) = caught.value.lines
    return line


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


# --- values ----------------------------------------------------------------------------------------------------------


def test_set_values_are_typed_only_when_they_are_plain_decimals_or_booleans() -> None:
    assignments = ["a=-12", "b=0", "c=012", "d=-1.50", "e=1.", "f=1e3", "g=true", "h=True", "i=-", "j=0.0"]
    assert load_values([], assignments) == {
        "a": -12,
        "b": 0,
        "c": "012",
        "d": -1.5,
        "e": "1.",
        "f": "1e3",
        "g": True,
        "h": "True",
        "i": "-",
        "j": 0.0,
    }


def test_a_missing_values_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(FdlError) as caught:
        load_values([tmp_path / "nope.yaml"], [])
    assert caught.value.lines == [f"{tmp_path / 'nope.yaml'}: no such values file; pass an existing YAML file with -f"]


def test_a_values_file_that_is_not_a_mapping_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text("- a list\n")
    with pytest.raises(FdlError) as caught:
        load_values([tmp_path / "values.yaml"], [])
    assert caught.value.lines == [
        f"{tmp_path / 'values.yaml'}: a values file must be a YAML mapping of names to values"
    ]


def test_an_empty_values_file_gives_no_values(tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text("# nothing yet\n")
    assert load_values([tmp_path / "values.yaml"], ["a=1"]) == {"a": 1}


def test_a_bad_set_name_is_shown_up_to_60_characters_and_never_its_value() -> None:
    with pytest.raises(FdlError) as caught:
        load_values([], ["a" * 59 + "bc d=S3CRET"])
    assert caught.value.lines == [
        "--set " + "a" * 59 + "b=...: write NAME=VALUE (NAME may be dotted, e.g. minio.bucket=images)"
    ]


# --- the sandbox's budgets -------------------------------------------------------------------------------------------


def test_a_power_of_up_to_4096_bits_is_computed_and_one_bit_more_is_refused() -> None:
    """The size is foreseen as exponent times the base's bits: 2 has two bits, 65536 has seventeen."""
    assert _rendered("{{ 2 ** 2048 }}") == str(2**2048)
    assert (
        _refused("{{ 2 ** 2049 }}")
        == "t.yaml:1: not allowed in a template: the result of ** would have more than 4096 bits"
    )
    assert _refused("{{ 65536 ** 241 }}").endswith("the result of ** would have more than 4096 bits")


@pytest.mark.parametrize(
    ("template", "expected"),
    [("{{ 1 ** 5000 }}", "1"), ("{{ (-1) ** 5001 }}", "-1"), ("{{ 2 ** -3 }}", "0.125"), ("{{ 1.5 ** 2 }}", "2.25")],
)
def test_powers_that_cannot_grow_are_left_alone(template: str, expected: str) -> None:
    assert _rendered(template) == expected


def test_repetition_up_to_the_output_budget_is_made_and_one_item_more_is_refused() -> None:
    half = MAX_OUTPUT_CHARS // 2
    assert _rendered(f"{{% set s = 'ab' * {half} %}}{{{{ s|length }}}}") == str(MAX_OUTPUT_CHARS)
    assert _refused(f"{{% set s = [1] * {MAX_OUTPUT_CHARS + 1} %}}") == (
        f"t.yaml:1: not allowed in a template: repeating a value makes more than {MAX_OUTPUT_CHARS} items"
    )


def test_the_time_budget_leaves_no_timer_behind() -> None:
    before = signal.getsignal(signal.SIGALRM)
    with _time_budget(5):
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


# --- the sandbox ----------------------------------------------------------------------------------------------------


def test_str_format_is_sandboxed_too() -> None:
    assert _refused("{{ '{0.__class__}'.format(1) }}") == (
        "t.yaml:1: not allowed in a template: access to attribute '__class__' of 'int' object is unsafe."
    )


def test_includes_are_read_from_the_fdls_folder_only(tmp_path: Path) -> None:
    with pytest.raises(FdlError) as caught:
        render_template("{% include '../x.yaml' %}", "t.yaml", {}, tmp_path)
    assert caught.value.lines == [
        f"t.yaml:1: include: '../x.yaml' is outside the FDL's folder {tmp_path}; only files in that folder can be "
        "included"
    ]
    with pytest.raises(FdlError) as caught:
        render_template("{% include 'missing.yaml' %}", "t.yaml", {}, tmp_path)
    assert caught.value.lines == [
        f"t.yaml: include: {tmp_path / 'missing.yaml'}: no such included template; pass an existing file"
    ]


def test_text_a_macro_makes_is_yaml_as_written(tmp_path: Path) -> None:
    """What `{{ }}` prints goes in as data; a macro's output (like `tojson` or `| safe`) is template text."""
    users = "{% macro users() %}[alice, bob]{% endmacro %}\n"
    (tmp_path / "service.yaml").write_text(
        users + MINIMAL_SERVICE + "      visibility: restricted\n      allowed_users: {{ users() }}\n"
    )
    (tmp_path / "run.sh").write_text("echo hi\n")
    assert load_fdl(tmp_path / "service.yaml").services[0].body["allowed_users"] == ["alice", "bob"]


# --- widening strings: each result foreseen before it is made -------------------------------------------------------

N = MAX_OUTPUT_CHARS


@pytest.mark.parametrize(
    ("template", "what"),
    [
        (f"{{% set a = 'x'.center({N + 1}) %}}", "str.center"),
        (f"{{% set a = 'x'.ljust({N + 1}) %}}", "str.ljust"),
        (f"{{% set a = 'x'.rjust({N + 1}) %}}", "str.rjust"),
        (f"{{% set a = '1'.zfill({N + 1}) %}}", "str.zfill"),
        (f"{{% set a = ('\\t' * 2).expandtabs({N // 2}) %}}", "str.expandtabs"),
        ("{% set a = ('x' * 1024).replace('x', 'y' * 1025) %}", "str.replace"),
        (f"{{% set a = 'x'|center({N + 1}) %}}", "the center filter"),
        (f"{{% set a = 'x'|indent({N}) %}}", "the indent filter"),
        ("{% set a = ('a ' * 1000)|wordwrap(1, wrapstring='-' * 600) %}", "the wordwrap filter"),
        (f"{{% set a = '%{N + 1}s'|format('x') %}}", "the format filter"),
        (f"{{% set a = 'x' * {N // 2 + 1} %}}{{% set b = '%s%s'|format(a, a) %}}", "the format filter"),
        ("{% set a = ('x' * 1024)|replace('x', 'y' * 1025) %}", "the replace filter"),
        (f"{{% set a = '%{N + 1}s' % 'x' %}}", "%"),
        ("{% set a = '{:0600000000}'.format(1) %}", "str.format"),  # refused from its width, before it is made
        (f"{{% set a = 'x' * {N // 2 + 1} %}}{{% set b = '{{}}{{}}'.format(a, a) %}}", "str.format"),
        (f"{{% set a = '{{a:>{N + 1}}}'.format_map({{'a': 'x'}}) %}}", "str.format_map"),
    ],
)
def test_each_widening_call_is_refused_before_it_makes_too_long_a_text(template: str, what: str) -> None:
    assert (
        _refused(template)
        == f"t.yaml:1: not allowed in a template: {what} would make a text of more than {N} characters"
    )


@pytest.mark.parametrize(
    ("template", "values", "foreseen", "made"),
    [
        ("%5s|%-3s", ("ab", "c"), 9, "   ab|c  "),
        ("100%%", (), 4, "100%"),
        ("%%%5s", ("ab",), 6, "%   ab"),
        ("%*s", (-6, "ab"), 6, "ab    "),
        ("%(a)s", {"a": "xyz"}, 3, "xyz"),
        ("%s%s", ("abc", "de"), 5, "abcde"),
        ("[%s]", ("",), 2, "[]"),
        ("<%s>", "abc", 5, "<abc>"),
        ("%.3s", "abcdef", 6, "abc"),  # the precision is not taken off the value: an upper bound
    ],
)
def test_a_percent_format_is_foreseen_field_by_field(template: str, values: object, foreseen: int, made: str) -> None:
    assert template % values == made
    assert _printf_size(template, values) == foreseen


@pytest.mark.parametrize(
    ("text", "old", "new", "count", "foreseen"),
    [
        ("aXbXc", "X", "YYY", -1, 9),
        ("aXbXc", "X", "YYY", 1, 7),
        ("aXbXc", "X", "YYY", 0, 5),
        ("aXXb", "XX", "", -1, 4),  # a shorter replacement is not taken off: an upper bound
        ("ab", "", "-", -1, 5),  # an empty `old` matches before, between and after the characters
        (5, "a", "b", -1, 0),  # not a string: the call fails by itself
    ],
)
def test_a_replacement_is_foreseen_from_its_count_of_matches(
    text: object, old: str, new: str, count: int, foreseen: int
) -> None:
    assert _replaced_size(text, old, new, count) == foreseen
    if isinstance(text, str) and len(new) >= len(old):
        assert len(text.replace(old, new, count)) == foreseen


def test_wrapping_and_indenting_are_foreseen_as_upper_bounds() -> None:
    """wordwrap: every line, and two more breaks per `width` characters; indent: every line (first included), by
    the width's number or the indentation string's length."""
    assert _wrapped_size("aaaa bbbb cccc", 5, None) == 14 + 6
    assert _wrapped_size("aaaa bbbb cccc", 5, "<br>") == 14 + 6 * 4
    assert _wrapped_size("ab cd", 1, None) == 5 + 1 + 10
    assert _indented_size("a\nb", 4) == 3 + 2 * 4
    assert _indented_size("a\nb", "--") == 3 + 2 * 2
    assert (_wrapped_size(5, 5, None), _indented_size(5, 4)) == (0, 0)  # not a string: the filter fails by itself


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
    # No macro needed: one long value printed many times is a short text too.
    big = f"{{% set big = 'x' * {MAX_OUTPUT_CHARS // 64} %}}\n"
    assert _problem(tmp_path, big, "{% for i in range(65) %}{{ big }}{% endfor %}") == (
        f": the template renders more than {MAX_OUTPUT_CHARS} characters; simplify it"
    )


@pytest.mark.parametrize("index", [1, 9], ids=["its own", "one not made yet"])
def test_a_marker_the_template_forges_for_a_later_value_stays_text(tmp_path: Path, index: int) -> None:
    """A template can read a marker from a macro's output and forge another; only earlier values are put back.
    Printed, the forged text is value 1."""
    forged = MACRO + f"{{% set forged = '%s'|format(m('a'))|replace('n0z', 'n{index}z') %}}\n"
    value = _variable(tmp_path, forged, "{{ forged }}")
    assert value.startswith("odv") and value.endswith(f"n{index}z")


def test_the_environment_is_blanked_out_of_a_message_longest_value_first() -> None:
    insertions = Insertions(hidden=["abc", "abcdef", "xy"])
    assert insertions.scrub("a abcdef b abc c xy") == "a **** b **** c xy"


@pytest.mark.parametrize("cut", [200, 80, 40])
def test_a_value_cut_short_in_a_message_is_blanked_as_well(cut: int) -> None:
    """support.errors.shown cuts a value at 200, 80 or 40 characters."""
    value = "".join(chr(ord("a") + index % 26) for index in range(300))
    assert Insertions(hidden=[value]).scrub(f"bad: '{value[:cut]}...'") == "bad: '****...'"


# --- rendering -------------------------------------------------------------------------------------------------------


def test_the_output_budget_takes_exactly_its_size_and_not_a_character_more() -> None:
    text, _ = render_template(f"{{{{ ('x' * {N})|safe }}}}", "t.yaml", {})
    assert len(text) == N
    assert (
        _refused(f"{{{{ ('x' * {N})|safe }}}}.")
        == f"t.yaml: the template renders more than {N} characters; simplify it"
    )


def test_a_problem_in_an_included_template_names_that_file_and_its_line(tmp_path: Path) -> None:
    (tmp_path / "part.yaml").write_text("# part\n{{ nothing }}\n")
    with pytest.raises(FdlError) as caught:
        render_template("{% include 'part.yaml' %}", "t.yaml", {}, tmp_path)
    assert caught.value.lines == [
        f"{tmp_path / 'part.yaml'}:2: 'nothing' is undefined; give it with --set NAME=VALUE or in a values file "
        "(-f values.yaml)"
    ]


def test_a_template_error_shows_at_most_200_characters_of_its_message() -> None:
    message = "unknown encoding: " + "x" * 300
    assert _refused("{{ 'a'.encode('x' * 300) }}") == f"t.yaml:1: template error: {message[:200]}"


def test_a_template_that_runs_too_long_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templating, "RENDER_SECONDS", 1)
    assert _refused("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}") == (
        "t.yaml:1: the template ran longer than 1 s (a loop over too much?); simplify it"
    )


def test_a_render_leaves_no_child_process_behind() -> None:
    render_template("{{ 1 }}", "t.yaml", {})
    children = Path(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/children").read_text().split()
    assert children == []


def test_a_missing_fdl_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(FdlError) as caught:
        load_fdl(tmp_path / "nope.yaml")
    assert caught.value.lines == [f"{tmp_path / 'nope.yaml'}: no such FDL file; see templates/services/ for examples"]
