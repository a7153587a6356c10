"""Loading an FDL file at its limits, each with the whole line it reports: placeholders left in (`<vo>`, `[topic]`,
an empty value), scripts read next to the file, what is masked when a definition is shown, and the request body
(the second half of oscar_deploy/services/fdl.py; tests/unit/test_fdl_rules.py holds the model's rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_fdl import MINIMAL_SERVICE, _errors

SERVICE = "functions.oscar.0.oscar"
ONE_ITEM = "(YAML reads it as a one-item list): replace it with"


def _problems(folder: Path, text: str) -> list[str]:
    """`<line>: <key path>: <message>` for each problem; the file name starts every line and is left out here."""
    prefix = f"{folder / 'service.yaml'}:"
    lines = _errors(folder, text)
    assert all(line.startswith(prefix) for line in lines), lines
    return [line.removeprefix(prefix) for line in lines]


# --- placeholders ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        (
            "      alpine: [flag]\n",
            f"alpine: placeholder [flag] {ONE_ITEM} the image is Alpine-based (musl build of the supervisor)",
        ),
        (
            "      synchronous: {max_scale: [n]}\n",
            f"synchronous.max_scale: placeholder [n] {ONE_ITEM} most replicas (0: unlimited)",
        ),
        ("      synchronous: [settings]\n", f"synchronous: placeholder [settings] {ONE_ITEM} the real value"),
        ("      labels: [labels]\n", f"labels: placeholder [labels] {ONE_ITEM} kubernetes labels of the jobs"),
        ("      visibility: [public]\n", f"visibility: placeholder [public] {ONE_ITEM} default private"),
        (
            "      expose: {api_port: }\n",
            "expose.api_port: placeholder: the value is empty; replace it with port(s) "
            "inside the container where the API listens; a single number is accepted",
        ),
    ],
    ids=["bool", "int", "model", "dict", "literal", "list"],
)
def test_a_placeholder_is_named_as_such_whatever_the_key_takes(tmp_path: Path, snippet: str, problem: str) -> None:
    assert _problems(tmp_path, MINIMAL_SERVICE + snippet) == [f"7: {SERVICE}.{problem}"]


def test_a_placeholder_for_a_string_is_named_as_such(tmp_path: Path) -> None:
    text = MINIMAL_SERVICE.replace("image: alpine:3.22.1", "image: [image]")
    assert _problems(tmp_path, text) == [f"5: {SERVICE}.image: placeholder [image] {ONE_ITEM} container image"]
