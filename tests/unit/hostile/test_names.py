"""Classes 6 and 8: names and cluster references are checked by one function, in full (a trailing newline is not
a name), before any path or URL is built from them."""

from __future__ import annotations

import pytest

from tests.unit.hostile.contract import assert_refused
from tests.unit.hostile.fdl import service_fdl

ENDPOINT = ["--endpoint", "http://127.0.0.1:9"]  # nothing listens: a request would fail with another message


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("kubeconfig", "-c", "../../../../tmp/x"), "--cluster '../../../../tmp/x': not a cluster name"),
        (("kubeconfig", "-c", "/tmp/x"), "--cluster '/tmp/x': not a cluster name"),
        (("status", "-c", "demo\n"), "--cluster 'demo\\n': not a cluster name"),
        (("edge", "install", "--name", "abc\n", "-i", "boards.yml"), "--name 'abc\\n': not a cluster name"),
        (("init", "--name", "abc\n"), "--name 'abc\\n': use 1-32 lowercase letters"),
        (("service", "list", "-c", "../outside"), "--cluster '../outside': not a cluster name"),
        (("service", "delete", "../../health", *ENDPOINT), "service '../../health': not a service name"),
        (("service", "delete", "svc\n", *ENDPOINT), "service 'svc\\n': not a service name"),
        (("service", "logs", "svc", "../job", *ENDPOINT), "job '../job': not a job name"),
        (("service", "run", "a/b", "-i", "boards.yml", *ENDPOINT), "service 'a/b': not a service name"),
        (("service", "delete", "", *ENDPOINT), "is empty; give a value"),
        (("bundle", "build", "b", "--k3s-version", "v1.33.3+k3s1\n"), "--k3s-version: 'v1.33.3+k3s1\\n' is not a k3s"),
        (("edge", "install", "-i", "boards.yml", "--k3s-version", "v1.33.3+k3s1\n"), "is not a k3s release"),
    ],
    ids=lambda value: " ".join(value)[:50] if isinstance(value, tuple) else None,
)
def test_bad_names_never_reach_a_path(hostile, args: tuple[str, ...], expected: str) -> None:
    hostile.write("boards.yml", "[server]\n192.0.2.10\n")
    assert_refused(hostile.run(*args), expected)
    assert not (hostile.work / "b").exists()
    assert sorted(path.name for path in hostile.state.glob("*")) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name: "oscar\\n"\n', "c.yaml:1: name: 'oscar\\n' is not a valid name"),
        ("name: " + "a" * 1_000_000 + "\n", "c.yaml:1: name: 'aaaaaaaaaa"),
        ('platform: {storage_size: "20Gi\\n"}\n', "c.yaml:1: platform.storage_size: '20Gi\\n' is not a size"),
        (
            'platform: {domain: "oscar.example.org\\n"}\n',
            "c.yaml:1: platform.domain: 'oscar.example.org\\n' is not a DNS",
        ),
        ('versions: {k3s: "v1.33.3+k3s1\\n"}\n', "c.yaml:1: versions.k3s: "),
    ],
    ids=["name", "1 MB name", "size", "domain", "version"],
)
def test_spec_values_are_matched_in_full(hostile, text: str, expected: str) -> None:
    hostile.write("c.yaml", text)
    line = assert_refused(hostile.run("validate", "-f", "c.yaml"), expected)
    assert len(line) < 300


@pytest.mark.parametrize(
    ("extra", "name", "expected"),
    [
        ("", '"svc\\n"', "functions.oscar.0.demo.name: 'svc\\n' must be DNS-safe"),
        (
            '      input:\n      - {storage_provider: minio, path: "bucket\\n/in"}\n',
            "svc",
            "functions.oscar.0.demo.input.0.path: bucket 'bucket\\n' (from path 'bucket\\n/in') is not a valid bucket",
        ),
        ('      memory: "1Gi\\n"\n', "svc", "functions.oscar.0.demo.memory: '1Gi\\n' is not a Kubernetes quantity"),
    ],
    ids=["service name", "bucket", "quantity"],
)
def test_fdl_values_are_matched_in_full(hostile, extra: str, name: str, expected: str) -> None:
    hostile.write("run.sh", "echo hi\n")
    hostile.write("svc.yaml", service_fdl(extra_service=extra, name=name))
    assert_refused(hostile.run("service", "validate", "svc.yaml"), expected)
