"""Class 1: FDL templates are code from someone else. They run in Jinja's sandbox, read only files in the FDL's
folder, have a time and size budget, and every failure is one line `file:line: message`."""

from __future__ import annotations

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


def test_the_environment_is_out_of_reach_of_a_template(hostile) -> None:
    """The sandbox's refusal names the attribute, never a value of the environment."""
    _fdl(hostile, "{{ env.__globals__['os'].environ['OSCAR_PASSWORD'] }}")
    line = assert_refused(hostile.run("service", "render", "svc.yaml", "--show-secrets"))
    assert PASSWORD not in line
