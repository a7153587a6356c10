"""Class 9: no silent coercion. FDL strings keep their text as upstream's Go YAML reads it, counts are integers,
and an empty password is not a password."""

from __future__ import annotations

import json

import pytest

from tests.unit.hostile.contract import assert_refused
from tests.unit.hostile.fdl import service_fdl


def test_fdl_environment_values_keep_their_text(hostile) -> None:
    hostile.write("run.sh", "echo hi\n")
    variables = (
        "      environment:\n        variables:\n"
        "          VERSION: 1.10\n          ZIP: 012345\n          HEX: 0x1F\n          ON: on\n          YES: yes\n"
        "          DATE: 2024-01-02\n          EXP: 1e3\n          TRUE: true\n          PLAIN: text\n"
    )
    hostile.write("svc.yaml", service_fdl(extra_service=variables + "      labels: {build: 007}\n"))
    result = hostile.run("service", "render", "svc.yaml", "--json")
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)[0]
    assert body["environment"]["variables"] == {
        "VERSION": "1.10",
        "ZIP": "012345",
        "HEX": "0x1F",
        "ON": "on",
        "YES": "yes",
        "DATE": "2024-01-02",
        "EXP": "1e3",
        "TRUE": "true",
        "PLAIN": "text",
    }
    assert body["labels"] == {"build": "007"}


def test_values_inserted_by_the_template_keep_their_text(hostile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_VERSION", "1.10")
    hostile.write("run.sh", "echo hi\n")
    extra = '      environment:\n        variables:\n          VERSION: {{ env("APP_VERSION") }}\n'
    hostile.write("svc.yaml", service_fdl(extra_service=extra))
    result = hostile.run("service", "render", "svc.yaml", "--json")
    assert json.loads(result.stdout)[0]["environment"]["variables"] == {"VERSION": "1.10"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("servers: {count: true}\n", "c.yaml:1: servers.count: Input should be a valid integer"),
        ("workers: {initial: '2'}\n", "c.yaml:1: workers.initial: Input should be a valid integer"),
        ("workers: {max: 2.0}\n", "c.yaml:1: workers.max: Input should be a valid integer"),
    ],
)
def test_spec_counts_are_integers(hostile, text: str, expected: str) -> None:
    hostile.write("c.yaml", text)
    assert_refused(hostile.run("validate", "-f", "c.yaml"), expected)


def test_fdl_numbers_are_not_booleans(hostile) -> None:
    hostile.write("run.sh", "echo hi\n")
    hostile.write("svc.yaml", service_fdl(extra_service="      synchronous: {min_scale: true}\n"))
    assert_refused(
        hostile.run("service", "validate", "svc.yaml"),
        "svc.yaml:7: functions.oscar.0.demo.synchronous.min_scale: true is not a number",
    )


@pytest.mark.parametrize("stdin", ["", "\n"])
def test_an_empty_password_on_standard_input_is_refused(hostile, monkeypatch: pytest.MonkeyPatch, stdin: str) -> None:
    monkeypatch.delenv("OSCAR_PASSWORD")
    assert_refused(
        hostile.run("service", "list", "--endpoint", "http://127.0.0.1:9", "--password-stdin", stdin=stdin),
        "--password-stdin: standard input holds no password",
    )
