"""Servers on 127.0.0.1 shared by the service tests (moto's S3 server for MinIO, the fake OSCAR API), and
counters of the real tools some tests run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oscar_deploy.support import process_group
from tests.unit.fake_oscar import FakeOscar
from tests.unit.oscar_env import S3Server
from tests.unit.pipeline_env import PlaybookRun, record_playbooks


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def fake(s3_server: S3Server) -> Iterator[FakeOscar]:
    """A fresh fake OSCAR on an emptied S3 server (a module may override it, e.g. with another processor).

    No test may send a key the real server would drop without a word: the fixture checks it at the end.
    """
    s3_server.reset()
    server = FakeOscar(s3_endpoint=s3_server.url).start()
    yield server
    server.stop()
    assert server.dropped == [], f"keys OSCAR v4.1.2 would drop silently: {server.dropped}"


@pytest.fixture
def playbooks(monkeypatch: pytest.MonkeyPatch) -> list[PlaybookRun]:
    """Ansible runs of the pipeline, recorded instead of run (tests/unit/pipeline_env.py)."""
    return record_playbooks(monkeypatch)


class InventoryRuns:
    """How many times ansible-inventory ran (for real) since the fixture started."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def inventory_runs(monkeypatch: pytest.MonkeyPatch) -> InventoryRuns:
    runs = InventoryRuns()
    real = process_group.run

    def counting(command: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(command[0]).name == "ansible-inventory":
            runs.count += 1
        return real(command, *args, **kwargs)

    monkeypatch.setattr(process_group, "run", counting)
    return runs
