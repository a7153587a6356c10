"""End to end on a real cloud: `up --cloud T`, `status`, `ssh`, `scale` out and in, `down`, with the installed CLI.

Runs only when asked for and when credentials are there, since it creates VMs that cost money:

* OpenStack: OSCAR_DEPLOY_E2E=openstack and OS_CLOUD naming an entry of your clouds.yaml (EGI FedCloud's
  v3oidcaccesstoken included); OSCAR_DEPLOY_E2E_SPEC may name a spec file to start from (image, flavors,
  external network of your cloud), else `up --cloud openstack` writes the default one;
* AWS: OSCAR_DEPLOY_E2E=aws and credentials boto3 finds (AWS_PROFILE, or AWS_ACCESS_KEY_ID and
  AWS_SECRET_ACCESS_KEY); AWS_REGION picks the region.

Otherwise each test is skipped with the reason. `down --yes` runs whatever happened before it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cloud, pytest.mark.timeout(7200)]


def requirement(target: str) -> str | None:
    """Why the test of `target` cannot run here, or None when it can."""
    asked = os.environ.get("OSCAR_DEPLOY_E2E", "").split(",")
    if target not in asked:
        return f"set OSCAR_DEPLOY_E2E={target} to create a real cluster on {target} (it costs money)"
    if target == "openstack" and not os.environ.get("OS_CLOUD"):
        return "no OpenStack credentials: set OS_CLOUD to an entry of your clouds.yaml"
    if target == "aws" and not (
        os.environ.get("AWS_PROFILE")
        or (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"))
    ):
        return "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    return None


def cli(work: Path, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oscar_deploy", *args],
        cwd=work,
        env={**os.environ, "OSCAR_DEPLOY_HOME": str(work / "state")},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("target", ["openstack", "aws"])
def test_a_real_cluster_comes_up_scales_and_goes(target: str, tmp_path: Path) -> None:
    reason = requirement(target)
    if reason:
        pytest.skip(reason)
    start = os.environ.get("OSCAR_DEPLOY_E2E_SPEC")
    if start:
        (tmp_path / "cluster.yaml").write_text(Path(start).read_text())
    try:
        up = cli(tmp_path, "up", "--cloud", target)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "verify: smoke test passed" in up.stdout
        status = cli(tmp_path, "status")
        assert status.returncode == 0 and "missing" not in status.stdout, status.stdout
        login = cli(tmp_path, "ssh", "agent-0", "--", "true")
        assert login.returncode == 0, login.stderr
        for workers in ("2", "1"):
            scaled = cli(tmp_path, "scale", "--workers", workers)
            assert scaled.returncode == 0, scaled.stdout + scaled.stderr
        again = cli(tmp_path, "up")
        assert again.returncode == 0 and "phase prepare: up to date" in again.stderr, again.stderr
    finally:
        down = cli(tmp_path, "down", "--yes")
        assert down.returncode == 0, down.stdout + down.stderr
