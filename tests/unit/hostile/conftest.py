"""The scratch world of every hostile case: a working folder, HOME, the state root and TMPDIR all inside the
test's own folder; secrets in the environment; and a folder outside it (a spec, a kubeconfig, a cluster's
secrets) that attacks aim at and that must come out unchanged, like /dev/null."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oscar_deploy.cli.app import app
from tests.unit.hostile.contract import MINIO_SECRET, PASSWORD, Outcome, run_bounded, snapshot

OUTSIDE_SPEC = "name: outside\ntarget: local\n# a comment that must survive\n"
OUTSIDE_KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n"
OUTSIDE_SECRETS = "k3s_token: K3S-TOKEN-S3CRET\noscar_password: S3CRET-outside\n"


class Hostile:
    def __init__(self, scratch: Path, outside: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.scratch = scratch
        self.outside = outside
        self.work = scratch / "work"
        self.home = scratch / "home"
        self.state = scratch / "state"
        for folder in (self.work, self.home, scratch / "tmp"):
            folder.mkdir()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "TMPDIR": str(scratch / "tmp"),
            "OSCAR_DEPLOY_HOME": str(self.state),
            "OSCAR_PASSWORD": PASSWORD,
            "SERVICE_PASSWORD": PASSWORD,  # what a template reads with env(): OSCAR_PASSWORD is withheld from it
            "OSCAR_MINIO_ENDPOINT": "http://127.0.0.1:9",
            "OSCAR_MINIO_ACCESS_KEY": "access",
            "OSCAR_MINIO_SECRET_KEY": MINIO_SECRET,
            "LANG": "C.UTF-8",
        }
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)
        for name in ("OSCAR_ENDPOINT", "OSCAR_TOKEN", "OSCAR_DEPLOY_CLUSTER", "OSCAR_CA_FILE", "OSCAR_USER"):
            monkeypatch.delenv(name, raising=False)
        self.runner = CliRunner()

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def run(self, *args: str, stdin: str | None = None) -> Outcome:
        """In-process (typer's runner): for cases whose time and memory are not in question."""
        old = Path.cwd()
        os.chdir(self.work)
        try:
            result = self.runner.invoke(app, list(args), input=stdin, catch_exceptions=False)
        finally:
            os.chdir(old)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def bounded(self, *args: str, stdin: bytes = b"") -> Outcome:
        """In a child process under resource limits: for the cases about size, depth and time."""
        return run_bounded(args, self.work, self.env, stdin)

    def applied_cluster(self, name: str = "demo") -> Path:
        """A state folder as `up` leaves it, with an admin kubeconfig: for commands taking --cluster."""
        folder = self.state / name
        folder.mkdir(parents=True, mode=0o700)
        (folder / "spec.yaml").write_text(f"name: {name}\ntarget: local\n")
        (folder / "kubeconfig").write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: default\n  cluster: {server: 'https://127.0.0.1:6443'}\n"
            "users:\n- name: default\n  user: {token: ADMIN-TOKEN-S3CRET}\ncontexts:\n"
            "- name: default\n  context: {cluster: default, user: default}\ncurrent-context: default\n"
        )
        return folder


@pytest.fixture
def hostile(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Hostile]:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "cluster.yaml").write_text(OUTSIDE_SPEC)
    (outside / "config").write_text(OUTSIDE_KUBECONFIG)
    (outside / "demo").mkdir()
    (outside / "demo" / "secrets.yaml").write_text(OUTSIDE_SECRETS)
    before = snapshot(outside)
    world = Hostile(tmp_path, outside, monkeypatch)
    yield world
    assert snapshot(outside) == before, "a file outside the scratch folder changed"
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode), "/dev/null is no longer a device"
