"""Class 4: size and depth are bounded for every document a user gives (spec, FDL, values, inventory): the alias
bomb, 50 MB files, a FIFO, /dev/zero, deep nesting and a recursive alias each end in one line, exit 2, within a
memory and time budget (these run as child processes under RLIMIT_AS)."""

from __future__ import annotations

import os

import pytest

from tests.unit.hostile.contract import assert_bounded, assert_refused
from tests.unit.hostile.fdl import service_fdl


def alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


DOCUMENTS = {
    "alias bomb": (alias_bomb(), ":1: more than 100000 values once aliases are expanded"),
    "10k [": ("[" * 10_000, ":1: nested deeper than 64 levels"),
    "1k block levels": ("".join(" " * level + "a:\n" for level in range(1000)), ":64: nested deeper than 64 levels"),
    "recursive alias": ("a: &x [*x]\n", ":1: an alias refers to a node that contains it"),
    "50 MB": ("name: x\n" + "# padding\n" * 5_000_000, ": the {what} is larger than 1 MiB"),
    "huge number": ("a: " + "9" * 10_000 + "\n", ":1: a number with too many digits"),
}


@pytest.mark.parametrize("document", list(DOCUMENTS), ids=list(DOCUMENTS))
@pytest.mark.parametrize(
    ("command", "what"),
    [(("validate", "-f"), "spec file"), (("service", "validate"), "FDL file")],
    ids=["validate", "service validate"],
)
def test_documents_past_the_limits(hostile, document: str, command: tuple[str, ...], what: str) -> None:
    text, expected = DOCUMENTS[document]
    hostile.write("doc.yaml", text)
    outcome = hostile.bounded(*command, "doc.yaml")
    assert_refused(outcome, "doc.yaml" + expected.format(what=what))
    assert_bounded(outcome)


def test_an_alias_bomb_in_a_values_file(hostile) -> None:
    hostile.write("run.sh", "echo hi\n")
    hostile.write("svc.yaml", service_fdl())
    hostile.write("values.yaml", alias_bomb())
    outcome = hostile.bounded("service", "validate", "svc.yaml", "-f", "values.yaml")
    assert_refused(outcome, "values.yaml:1: more than 100000 values once aliases are expanded")
    assert_bounded(outcome)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("edge", "install", "-i", "/dev/zero"), "/dev/zero: is a character device, not a regular file"),
        (("validate", "-f", "/dev/zero"), "/dev/zero: is a character device, not a regular file"),
        (("service", "validate", "/dev/urandom"), "/dev/urandom: is a character device, not a regular file"),
        (("edge", "install", "-i", "fifo"), "fifo: is a FIFO (named pipe), not a regular file"),
        (("validate", "-f", "fifo"), "fifo: is a FIFO (named pipe), not a regular file"),
        (("service", "validate", "fifo"), "fifo: is a FIFO (named pipe), not a regular file"),
        (("service", "validate", "svc.yaml", "-f", "fifo"), "fifo: is a FIFO (named pipe), not a regular file"),
        (("autoscaler", "simulate", "--trace", "fifo"), "fifo: is a FIFO (named pipe), not a regular file"),
        (("autoscaler", "simulate", "--trace", "/dev/zero"), "/dev/zero: is a character device, not a regular file"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_special_files_as_input_end_at_once(hostile, args: tuple[str, ...], expected: str) -> None:
    os.mkfifo(hostile.work / "fifo")  # nobody writes into it: reading it would wait for ever
    hostile.write("run.sh", "echo hi\n")
    hostile.write("svc.yaml", service_fdl())
    outcome = hostile.bounded(*args)
    assert_refused(outcome, expected)
    assert_bounded(outcome)


def test_a_huge_inventory_is_refused_before_ansible_reads_it(hostile) -> None:
    hostile.write("boards.yml", "k3s_cluster:\n  hosts:\n" + "".join(f"    h{i}: {{}}\n" for i in range(200_000)))
    outcome = hostile.bounded("edge", "install", "-i", "boards.yml")
    assert_refused(outcome, "boards.yml: the inventory is larger than 1 MiB")
    assert_bounded(outcome)


def test_json_nested_too_deeply_for_the_parser_is_damaged_json(hostile) -> None:
    """Python's JSON parser recurses: 100,000 `[` would raise RecursionError, not the error for damaged JSON."""
    deep = "[" * 100_000
    hostile.write("bundle/manifest.json", deep)
    outcome = hostile.bounded("bundle", "inspect", "bundle")
    line = assert_refused(outcome)
    assert line == "bundle/manifest.json: damaged bundle manifest (nested too deeply to read); rebuild with " + (
        "`oscar-deploy bundle build`"
    )
    assert_bounded(outcome)
    hostile.write("cluster.schema.json", deep)  # init replaces only a schema it recognises
    outcome = hostile.bounded("init")
    assert_refused(outcome, "cluster.schema.json: exists and is not a spec schema, so it is not replaced")
    assert_bounded(outcome)
