"""Property-based: generated YAML and FDL documents (nested, deep, aliased, templated, broken) fed to `validate`
and `service validate` always end in the same contract: exit 0 with a `valid` line, or exit 2 with one `error:`
line per problem, each naming the file; never a traceback, never a secret, bounded time and memory.

In-process, for speed; the documents stay within what the limits let through quickly, and the worst of them
(alias bombs, depth) are in the corpus as child processes with resource limits (test_bounds.py).
"""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from oscar_deploy.cli.app import app
from tests.unit.hostile.contract import PASSWORD

SPEC_KEYS = ["name", "target", "servers", "workers", "local", "platform", "versions", "count", "initial", "min", "max"]
FDL_KEYS = [
    "functions", "oscar", "name", "image", "script", "memory", "cpu", "environment", "variables", "secrets",
    "input", "output", "storage_provider", "path", "clusters", "endpoint", "synchronous", "min_scale", "expose",
    "api_port", "volume", "mount_path", "storage_providers", "minio", "labels",
]  # fmt: skip
TEMPLATED = ['{{ env("SERVICE_PASSWORD") }}', "{{ missing }}", "{{ 1/0 }}", "{% if %}", "{{ 'x' * 3 }}"]
# Peak memory (Python allocations, traced) and time per document.
MAX_PEAK_BYTES = 16 * 1024 * 1024
MAX_SECONDS = 10

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["1.10", "012345", "0x1F", "on", "demo\n", "../../etc/passwd", "/dev/zero", "http://u:p@h", ""]),
)


def documents(keys: list[str]) -> st.SearchStrategy[Any]:
    names = st.one_of(st.sampled_from(keys), st.text(min_size=1, max_size=10))
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(names, children, max_size=5),
        max_leaves=40,
    )


@st.composite
def aliased(draw: st.DrawFn) -> str:
    """Anchors built on one another: from a few values to far past the expansion limit."""
    levels = draw(st.integers(min_value=1, max_value=12))
    width = draw(st.integers(min_value=1, max_value=9))
    lines = [f"a0: &a0 {draw(st.sampled_from(['x', '[1, 2]', '{k: v}', 'null']))}"]
    for level in range(1, levels):
        items = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} " + (f"[{items}]" if draw(st.booleans()) else f"{{k: [{items}]}}"))
    if draw(st.booleans()):
        lines.append("self: &s [*s]")
    return "\n".join(lines) + "\n"


@st.composite
def deep(draw: st.DrawFn) -> str:
    depth = draw(st.integers(min_value=1, max_value=300))
    kind = draw(st.sampled_from(["flow list", "flow map", "block", "block list"]))
    if kind == "flow list":
        return "[" * depth + "]" * depth
    if kind == "flow map":
        return "{a: " * depth + "1" + "}" * depth
    if kind == "block":
        return "".join(" " * level + "a:\n" for level in range(depth))
    return "".join("  " * level + "-\n" for level in range(depth))


def dumped(keys: list[str]) -> st.SearchStrategy[str]:
    return documents(keys).map(lambda data: yaml.safe_dump(data, allow_unicode=True))


@st.composite
def fdl_like(draw: st.DrawFn) -> str:
    """A service that is mostly right, with generated values (and template text) in its keys."""
    service: dict[str, Any] = {"name": "svc", "image": "img", "script": "run.sh"}
    for key in draw(st.lists(st.sampled_from(FDL_KEYS), max_size=4)):
        service[key] = draw(documents(FDL_KEYS))
    text = yaml.safe_dump({"functions": {"oscar": [{"demo": service}]}}, allow_unicode=True)
    if draw(st.booleans()):
        text += f"# {draw(st.sampled_from(TEMPLATED))}\n"
    if draw(st.booleans()):
        text = text.replace("img", draw(st.sampled_from(TEMPLATED)), 1)
    return text


def garbage() -> st.SearchStrategy[str]:
    return st.text(alphabet=st.sampled_from(list("[]{}:-&*!|>'\"#%@` \n\tab1")), max_size=200)


SPEC_DOCUMENTS = st.one_of(dumped(SPEC_KEYS), aliased(), deep(), garbage())
FDL_DOCUMENTS = st.one_of(fdl_like(), dumped(FDL_KEYS), aliased(), deep(), garbage())


@pytest.fixture(scope="module")
def world() -> Any:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "work").mkdir()
        (root / "work" / "run.sh").write_text("echo hi\n")
        saved = {
            name: os.environ.get(name) for name in ("OSCAR_DEPLOY_HOME", "HOME", "OSCAR_PASSWORD", "SERVICE_PASSWORD")
        }
        os.environ.update(
            {
                "OSCAR_DEPLOY_HOME": str(root / "state"),
                "HOME": str(root),
                "OSCAR_PASSWORD": PASSWORD,
                "SERVICE_PASSWORD": PASSWORD,
            }
        )
        old = Path.cwd()
        os.chdir(root / "work")
        # One run of each command first, so the modules they import are not counted against a document.
        for command in (["validate", "-f"], ["service", "validate"]):
            (root / "work" / "doc.yaml").write_text("name: [\n")
            CliRunner().invoke(app, [*command, "doc.yaml"])
        try:
            yield root / "work"
        finally:
            os.chdir(old)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _check(work: Path, text: str, *command: str) -> None:
    (work / "doc.yaml").write_text(text)
    started = time.monotonic()
    # Measured around the command alone: the process's own peak also counts what other tests and
    # hypothesis itself load (its constant scan touches every module in sys.modules).
    tracemalloc.start()
    try:
        result = CliRunner().invoke(app, [*command, "doc.yaml"], catch_exceptions=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < MAX_SECONDS
    assert peak < MAX_PEAK_BYTES, f"peak memory {peak // 2**20} MiB"
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert result.exit_code in (0, 2), output
    if result.exit_code == 0:
        assert result.stdout.startswith("doc.yaml: valid"), output
        return
    assert result.stdout == "", output
    assert PASSWORD not in result.stderr
    lines = result.stderr.splitlines()
    assert lines, output
    for line in lines:
        assert line.startswith("error: doc.yaml"), line
        assert len(line) < 1000, line


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=SPEC_DOCUMENTS)
def test_validate_keeps_the_contract(world: Path, text: str) -> None:
    _check(world, text, "validate", "-f")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=FDL_DOCUMENTS)
def test_service_validate_keeps_the_contract(world: Path, text: str) -> None:
    _check(world, text, "service", "validate")
