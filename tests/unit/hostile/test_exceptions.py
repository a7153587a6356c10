"""Class 5: input that used to end in a Python exception (UnicodeDecodeError, IndexError, InvalidURL,
OverflowError, PermissionError, NotADirectoryError, IsADirectoryError) now ends in one line, exit 2."""

from __future__ import annotations

import pytest

from tests.unit.hostile.contract import assert_refused
from tests.unit.hostile.fdl import service_fdl

NOT_UTF8 = b"name: caf\xe9\n"


@pytest.mark.parametrize(
    ("files", "args", "expected"),
    [
        ({"c.yaml": NOT_UTF8}, ("validate", "-f", "c.yaml"), "c.yaml:1: the spec file is not UTF-8 text (byte 0xe9)"),
        ({"svc.yaml": NOT_UTF8}, ("service", "validate", "svc.yaml"), "svc.yaml:1: the FDL file is not UTF-8 text"),
        (
            {"svc.yaml": service_fdl().encode(), "run.sh": b"echo\n", "v.yaml": b"a: 1\nb: \xff\n"},
            ("service", "validate", "svc.yaml", "-f", "v.yaml"),
            "v.yaml:2: the values file is not UTF-8 text (byte 0xff)",
        ),
        (
            {"boards.yml": b"[server]\n\xfe\n"},
            ("edge", "install", "-i", "boards.yml"),
            "boards.yml:2: the inventory is",
        ),
        (
            {"ca.pem": b"\xff\xfe"},
            ("service", "list", "--endpoint", "https://127.0.0.1:9", "--ca-file", "ca.pem"),
            "ca.pem:1",
        ),
    ],
    ids=["spec", "fdl", "values", "inventory", "ca file"],
)
def test_files_that_are_not_utf8(hostile, files: dict[str, bytes], args: tuple[str, ...], expected: str) -> None:
    for name, content in files.items():
        hostile.write(name, content)
    assert_refused(hostile.run(*args), expected)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--endpoint", "http://"), "--endpoint 'http://': names no host"),
        (("--endpoint", "http://[::1"), "--endpoint 'http://[::1': is not a URL (Invalid IPv6 URL)"),
        (("--endpoint", "http://host:99999"), "--endpoint 'http://host:99999': is not a URL"),
        (("--endpoint", "ftp://host"), "--endpoint 'ftp://host': must be an http(s) URL"),
        (("--endpoint", "http://h ost"), "--endpoint 'http://h ost': must be one URL without spaces"),
        (("--endpoint", "http://127.0.0.1:9", "--ca-file", "none.pem"), "none.pem: no such CA file"),
        (("--endpoint", "http://127.0.0.1:9", "--ca-file", "c.yaml"), "--ca-file c.yaml: holds no PEM certificate"),
    ],
    ids=lambda value: value[1] if isinstance(value, tuple) else None,
)
def test_bad_endpoints_and_ca_files(hostile, args: tuple[str, ...], expected: str) -> None:
    hostile.write("c.yaml", "name: x\n")
    assert_refused(hostile.run("service", "list", *args), expected)


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e400", "0"])
def test_timeouts_that_are_not_a_number_of_seconds(hostile, value: str) -> None:
    hostile.write("in.txt", "x")
    assert_refused(
        hostile.run("service", "run", "svc", "-i", "in.txt", "--timeout", value, "--endpoint", "http://127.0.0.1:9"),
        "Invalid value for '--timeout'",
        "see oscar-deploy service run -h",
    )


def test_a_state_home_that_is_a_file(hostile, monkeypatch: pytest.MonkeyPatch) -> None:
    home = hostile.write("not-a-folder", "x\n")
    monkeypatch.setenv("OSCAR_DEPLOY_HOME", str(home))
    assert_refused(hostile.run("status", "-c", "demo"), f"OSCAR_DEPLOY_HOME={home}: is not a folder")


def test_a_state_home_under_a_file(hostile, monkeypatch: pytest.MonkeyPatch) -> None:
    home = hostile.write("not-a-folder", "x\n")
    monkeypatch.setenv("OSCAR_DEPLOY_HOME", str(home / "clusters"))
    hostile.write("edge.yml", "[server]\n192.0.2.10\n")
    assert_refused(
        hostile.run("edge", "install", "-i", "edge.yml"),
        f"OSCAR_DEPLOY_HOME={home / 'clusters'}: is under {home}, which is not a folder",
    )
