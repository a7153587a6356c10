"""Class 1: FDL templates are code from someone else. They run in Jinja's sandbox, read only files in the FDL's
folder, have a time and size budget, and every failure is one line `file:line: message`."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oscar_deploy.services import templating
from tests.unit.hostile.contract import PASSWORD, assert_bounded, assert_refused
from tests.unit.hostile.fdl import service_fdl


def _fdl(hostile, template_line: str) -> None:
    hostile.write("run.sh", "echo hi\n")
    hostile.write("svc.yaml", service_fdl() + f"# {{# line 7 #}}\n{template_line}\n")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ env.__globals__.os.popen('id').read() }}", "svc.yaml:8: not allowed in a template: access to attribute "),
        ("{{ env.__globals__.os.environ }}", "svc.yaml:8: not allowed in a template"),
        ("{{ cycler.__init__.__globals__.os }}", "svc.yaml:8: not allowed in a template"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "svc.yaml:8: not allowed in a template"),
        ("{{ 1/0 }}", "svc.yaml:8: template error: division by zero"),
        ("{{ env() }}", "svc.yaml:8: template error: env() missing 1 required positional argument"),
        ("{{ nothing_here }}", "svc.yaml:8: 'nothing_here' is undefined; give it with --set"),
        ("{% include '/etc/passwd' %}", "svc.yaml:8: include: '/etc/passwd' is outside the FDL's folder"),
        ("{% include '../../etc/passwd' %}", "svc.yaml:8: include: '../../etc/passwd' is outside the FDL's folder"),
        ("{% include 'missing.yaml' %}", "svc.yaml: include: "),
        ("{% for i in range(10**12) %}{% endfor %}", "svc.yaml:8: template error: Range too big"),
        ("{{ 'a' * 10**10 }}", "svc.yaml:8: not allowed in a template: repeating a value makes more than"),
        ("{{ 7 ** 100000 }}", "svc.yaml:8: not allowed in a template: the result of ** would have more than"),
        ("{{ '%(a(b))9s' % {'a(b)': 1} }}", "svc.yaml:8: not allowed in a template: a %(key) holding parentheses"),
        ("{% if %}", "svc.yaml:8: template syntax error"),
    ],
    ids=lambda value: value[:40],
)
def test_template_attacks_end_in_one_line(hostile, template: str, expected: str) -> None:
    _fdl(hostile, template)
    line = assert_refused(hostile.run("service", "validate", "svc.yaml"))
    assert line.startswith(expected), line


def test_an_include_leaving_the_folder_through_a_link_is_refused(hostile) -> None:
    (hostile.work / "innocent.yaml").symlink_to(hostile.outside / "demo" / "secrets.yaml")
    _fdl(hostile, "{% include 'innocent.yaml' %}")
    assert_refused(hostile.run("service", "render", "svc.yaml"), "svc.yaml:8: include: 'innocent.yaml' is outside")


def test_an_include_inside_the_folder_works(hostile) -> None:
    hostile.write("run.sh", "echo hi\n")
    hostile.write("part.yaml", "      memory: 1Gi\n")
    hostile.write("svc.yaml", service_fdl() + "{% include 'part.yaml' %}")
    result = hostile.run("service", "render", "svc.yaml")
    assert result.exit_code == 0, result.stderr
    assert "memory: 1Gi" in result.stdout


def test_a_template_that_runs_too_long_is_stopped(hostile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templating, "RENDER_SECONDS", 1)
    _fdl(hostile, "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    assert_refused(hostile.run("service", "validate", "svc.yaml"), "svc.yaml:8: the template ran longer than 1 s")


@pytest.mark.parametrize(
    "template",
    [
        "{% set s = 'x' * 1000000 %}{% set t = ([s] * 1000)|join %}",
        "{% set s = 'x' * 1000000 %}{% set t = ([s] * 300)|string %}",
        "{% set ns = namespace(s='x' * 1000000) %}{% for i in range(10) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    ],
    ids=["join", "a list as text", "doubling with ~"],
)
def test_what_no_guard_foresees_is_stopped_at_the_memory_limit(hostile, template: str) -> None:
    """The render runs in a child process held to RENDER_MEMORY_BYTES; each of these takes 300 MB to 1 GB. Run
    in this process, without the limits `hostile.bounded` sets, so only the child's own limit can refuse it."""
    _fdl(hostile, template)
    assert_refused(hostile.run("service", "validate", "svc.yaml"), "svc.yaml: the template needs too much memory")


def test_a_render_stuck_where_its_own_timer_cannot_reach_is_killed(hostile, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child's timer stands in for a C call that a signal cannot interrupt: the parent kills the child."""

    @contextlib.contextmanager
    def no_timer(_seconds: int) -> Iterator[None]:
        yield

    monkeypatch.setattr(templating, "_time_budget", no_timer)
    monkeypatch.setattr(templating, "RENDER_SECONDS", 1)
    monkeypatch.setattr(templating, "CHILD_GRACE_SECONDS", 1)
    _fdl(hostile, "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    started = time.monotonic()
    line = assert_refused(hostile.run("service", "validate", "svc.yaml"))
    assert line == "svc.yaml: the template ran longer than 1 s; simplify it"
    assert time.monotonic() - started < 10
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    states = [Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] for child in children]
    assert "Z" not in states, "the killed child was waited for: no zombie is left"


def test_a_template_that_renders_too_much_is_stopped(hostile) -> None:
    _fdl(hostile, "{% for i in range(100000) %}# {{ i }} padding padding padding\n{% endfor %}")
    assert_refused(hostile.run("service", "validate", "svc.yaml"), "svc.yaml: the template renders more than")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{% if 1 %}" * 2000 + "{% endif %}" * 2000, "svc.yaml: the template is nested too deeply"),
        ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "svc.yaml"),
        ("{% for i in range(10**12) %}x{% endfor %}", "svc.yaml:8: template error: Range too big"),
        ("{{ 'ab' * 10**9 }}", "svc.yaml:8: not allowed in a template"),
    ],
    ids=["2k nested ifs", "5k parentheses", "range 10**12", "string times 10**9"],
)
def test_template_bombs_stay_within_time_and_memory(hostile, template: str, expected: str) -> None:
    _fdl(hostile, template)
    outcome = hostile.bounded("service", "validate", "svc.yaml")
    assert_refused(outcome, expected)
    assert_bounded(outcome)


LIMIT = templating.MAX_OUTPUT_CHARS
HUGE = 600_000_000


@pytest.mark.parametrize(
    ("template", "what"),
    [
        (f"{{% set a = '%0{HUGE}d' % 1 %}}", "%"),
        (f"{{% set a = '%.{HUGE}f' % 1.0 %}}", "%"),
        (f"{{{{ '%*d' % ({HUGE}, 1) }}}}", "%"),
        (f"{{{{ '%*d' % (-{HUGE}, 1) }}}}", "%"),
        (f"{{{{ '%(a){HUGE}s' % {{'a': 'x'}} }}}}", "%"),
        (f"{{{{ '%{LIMIT + 1}d' % 1 }}}}", "%"),
        (f"{{{{ ('%0{HUGE}d'|safe) % 1 }}}}", "%"),
        ("{{ '%s%s' % ('x' * 600000, 'y' * 600000) }}", "%"),
        (f"{{% set a = 'x'|center({HUGE}) %}}", "the center filter"),
        (f"{{{{ 'x'|center(width={LIMIT + 1}) }}}}", "the center filter"),
        (f"{{{{ 'x'|indent({HUGE}) }}}}", "the indent filter"),
        ("{{ ('\\r' * 100000)|indent(20, first=true) }}", "the indent filter"),
        ("{{ 'a b c d e'|wordwrap(1, wrapstring=' ' * 600000) }}", "the wordwrap filter"),
        (f"{{{{ '%0{HUGE}d'|format(1) }}}}", "the format filter"),
        (f"{{{{ '%(a){HUGE}s'|format(a='x') }}}}", "the format filter"),
        ("{{ ('x' * 2000)|replace('', 'y' * 1000) }}", "the replace filter"),
        (f"{{% set a = 'x'.ljust({HUGE}) %}}", "str.ljust"),
        (f"{{{{ 'x'.rjust({HUGE}) }}}}", "str.rjust"),
        (f"{{{{ 'x'.center({HUGE}, '*') }}}}", "str.center"),
        (f"{{{{ ('x'|safe).center({HUGE}) }}}}", "str.center"),
        (f"{{{{ '1'.zfill({LIMIT + 1}) }}}}", "str.zfill"),
        (f"{{{{ 'a\\tb'.expandtabs({HUGE}) }}}}", "str.expandtabs"),
        ("{{ ('\\t' * 1000).expandtabs(2000) }}", "str.expandtabs"),
        ("{{ ('x' * 2000).replace('', 'y' * 1000) }}", "str.replace"),
        (f"{{{{ 'x'|attr('ljust')({HUGE}) }}}}", "str.ljust"),
        (f"{{{{ '{{:>{HUGE}}}'.format('x') }}}}", "str.format"),
        (f"{{{{ ('{{:>{HUGE}}}'|safe).format('x') }}}}", "str.format"),
        (f"{{{{ '{{:0{HUGE}}}'.format(1) }}}}", "str.format"),
        (f"{{{{ '{{:.{HUGE}f}}'.format(1.0) }}}}", "str.format"),
        (f"{{{{ '{{:{LIMIT + 1}}}'.format(1) }}}}", "str.format"),
        (f"{{{{ '{{:{{}}}}'.format('x', {HUGE}) }}}}", "str.format"),
        (f"{{{{ '{{0:>{{1}}}}'.format('x', '{HUGE}') }}}}", "str.format"),
        ("{{ ('{:1000000}' * 2).format(1, 2) }}", "str.format"),
        (f"{{{{ '{{a:>{HUGE}}}'.format_map({{'a': 'x'}}) }}}}", "str.format_map"),
    ],
    ids=lambda value: value[:60],
)
def test_widening_a_string_past_the_output_budget_is_refused_before_it_is_made(
    hostile, template: str, what: str
) -> None:
    """Padding, widths and replacements make the string in one call, which no budget interrupts: refused first."""
    _fdl(hostile, template)
    outcome = hostile.bounded("service", "validate", "svc.yaml")
    line = assert_refused(outcome)
    assert line == f"svc.yaml:8: not allowed in a template: {what} would make a text of more than {LIMIT} characters"
    assert_bounded(outcome)


@pytest.mark.parametrize(
    "template",
    [
        f"'%{LIMIT}d' % 1",
        f"'%*d' % ({LIMIT}, 1)",
        f"'x'|center({LIMIT})",
        f"'x'|indent({LIMIT - 1})",
        f"'x'.ljust({LIMIT})",
        f"'1'.zfill({LIMIT})",
        f"'{{:{LIMIT}}}'.format(1)",
        f"'%{LIMIT}d'|format(1)",
        f"'x'|wordwrap({HUGE})",
    ],
)
def test_a_string_widened_to_the_output_budget_is_made(hostile, template: str) -> None:
    _fdl(hostile, f"{{% set a = {template} %}}")
    result = hostile.run("service", "validate", "svc.yaml")
    assert result.exit_code == 0, result.stderr


def test_ordinary_widening_still_renders(hostile) -> None:
    hostile.write("run.sh", "echo hi\n")
    # Each printed through a variable: a filter of constants is folded into the template's own text, not a value.
    uses = {
        "PERCENT": ("'%05d' % 3", "00003"),
        "STAR": ("'%*s|%-*s|' % (3, 'a', 3, 'b')", "  a|b  |"),
        "KEYS": ("'%(n)s %%' % {'n': 'x'}", "x %"),
        "CENTER": ("'x'|center(20)", "x".center(20)),
        "FORMAT": ("'{:>8}'.format('x')", "{:>8}".format("x")),
        "NESTED": ("'{:{}}|'.format('x', 4)", "{:{}}|".format("x", 4)),
        "MAP": ("'{a:03}'.format_map({'a': 7})", "007"),
        "ZFILL": ("'a'.zfill(4)", "a".zfill(4)),
        "TABS": ("'a\\tb'.expandtabs(4)", "a\tb".expandtabs(4)),
        "FILTER": ("'%s-%s'|format(1, 2)", "1-2"),
        "INDENT": ("'a\\nb'|indent(2)", "a\n  b"),
        "WRAP": ("'aaa bbb'|wordwrap(3)", "aaa\nbbb"),
        "REPLACE": ("'a-b'.replace('-', '_') ~ ('c-d'|replace('-', '_'))", "a_bc_d"),
    }
    variables = "".join(
        f"          {name}: {{% set v = {expression} %}}{{{{ v }}}}\n" for name, (expression, _) in uses.items()
    )
    hostile.write("svc.yaml", service_fdl(extra_service="      environment:\n        variables:\n" + variables))
    result = hostile.run("service", "render", "svc.yaml", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["environment"]["variables"] == {
        name: expected for name, (_, expected) in uses.items()
    }


def test_the_environment_is_out_of_reach_of_a_template(hostile) -> None:
    """The sandbox's refusal names the attribute, never a value of the environment."""
    _fdl(hostile, "{{ env.__globals__['os'].environ['OSCAR_PASSWORD'] }}")
    line = assert_refused(hostile.run("service", "render", "svc.yaml", "--show-secrets"))
    assert PASSWORD not in line
