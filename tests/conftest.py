"""Fixtures shared by every tier."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oscar_deploy.cli.app import app
from tests.checkout import checkout_environment


@pytest.fixture(autouse=True, scope="session")
def children_import_this_checkout() -> Iterator[None]:
    """Every child Python started during the session imports this checkout's package (tests/checkout.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", checkout_environment(os.environ)["PYTHONPATH"])
        yield


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private OSCAR_DEPLOY_HOME so tests never touch the user's clusters."""
    home = tmp_path / "state"
    monkeypatch.setenv("OSCAR_DEPLOY_HOME", str(home))
    return home


class Cli:
    """Runs `oscar-deploy` in-process through typer's runner, from a given folder."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):
        old = Path.cwd()
        os.chdir(self.cwd)
        try:
            return self.runner.invoke(app, list(args), input=input, catch_exceptions=False)
        finally:
            os.chdir(old)


@pytest.fixture
def cli(tmp_path: Path, state_home: Path) -> Iterator[Cli]:
    work = tmp_path / "work"
    work.mkdir()
    yield Cli(work)
