"""`doctor` and `up` on a host missing a prerequisite, simulated by a PATH that lacks podman."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PODMAN_FIX = "sudo apt-get install -y podman runc (or bash scripts/install-system-packages.sh)"


@pytest.fixture
def path_without_podman(tmp_path: Path) -> str:
    """A PATH holding every command of the real PATH except podman (links, so nothing else changes)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/sbin", "/sbin"]:
        if not Path(folder).is_dir():
            continue
        for entry in Path(folder).iterdir():
            target = bin_dir / entry.name
            if entry.name != "podman" and not target.exists() and os.access(entry, os.X_OK):
                target.symlink_to(entry)
    assert not (bin_dir / "podman").exists()
    return str(bin_dir)


def _run(args: list[str], cwd: Path, path: str, state_home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path, "OSCAR_DEPLOY_HOME": str(state_home)}
    return subprocess.run(
        [sys.executable, "-m", "oscar_deploy", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_doctor_names_missing_podman_and_its_fix(tmp_path: Path, path_without_podman: str, state_home: Path) -> None:
    (tmp_path / "cluster.yaml").write_text("name: nopod\n")
    result = _run(["doctor", "-f", "cluster.yaml"], tmp_path, path_without_podman, state_home)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL"]
    row = next(line for line in lines if line.startswith("podman "))
    assert row.split()[1] == "missing"
    assert f"podman: missing (needed for local); fix: {PODMAN_FIX}" in lines
    assert "target local (cluster nopod) cannot work until fixed: podman" in lines


def test_doctor_json_without_a_spec_checks_every_target_and_exits_0(
    tmp_path: Path, path_without_podman: str, state_home: Path
) -> None:
    result = _run(["doctor", "--json"], tmp_path, path_without_podman, state_home)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    checks = {check["check"]: check for check in report["checks"]}
    assert checks["podman"]["status"] == "missing"
    assert checks["podman"]["fix"] == PODMAN_FIX
    assert checks["podman"]["needed_for"] == ["local"]
    assert checks["ssh client"]["status"] == "ok"
    assert {"python packages", "ansible", "oci runtime", "ulimits", "node images"} <= set(checks)
    assert report["blocking"] == []


@pytest.mark.nodes  # needs podman and qemu-user on the host, as the local-node tier does
def test_doctor_with_podman_present_passes_for_local(tmp_path: Path, state_home: Path) -> None:
    (tmp_path / "cluster.yaml").write_text("name: haspod\nlocal: {worker_arch: arm64}\n")
    result = _run(["doctor", "-f", "cluster.yaml"], tmp_path, os.environ["PATH"], state_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "target local (cluster haspod): everything it needs is here" in result.stdout
    emulation = next(line for line in result.stdout.splitlines() if line.startswith("arm64 emulation"))
    assert emulation.split()[2] == "ok"


def test_up_without_podman_fails_in_one_line_before_touching_anything(
    tmp_path: Path, path_without_podman: str, state_home: Path
) -> None:
    (tmp_path / "cluster.yaml").write_text("name: nopod\n")
    result = _run(["up", "-f", "cluster.yaml"], tmp_path, path_without_podman, state_home)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: podman: not found on PATH; install it: {PODMAN_FIX}"
    assert not (state_home / "nopod").exists()


def test_skopeo_is_a_warning_for_bundles_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from oscar_deploy.pipeline.doctor import skopeo_check
    from oscar_deploy.support import checks

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(checks.sys, "executable", str(tmp_path / "python"))
    missing = skopeo_check()
    assert (missing.status, missing.fix, missing.needed_for) == ("warn", "sudo apt-get install -y skopeo", ())
    tool = tmp_path / "skopeo"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    found = skopeo_check()
    assert found.status == "ok" and found.detail.startswith(f"{tool} (")
