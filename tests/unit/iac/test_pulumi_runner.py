"""PulumiRunner through the real Automation API, with the labelled stand-in `pulumi` (tests/doubles/pulumi_cli.py)
in place of the CLI: what is run, with which environment and stdin, and how Pulumi's answers come back."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pulumi.automation.events import EngineEvent

from oscar_deploy.iac import factory as runner_module
from oscar_deploy.iac.pulumi_runner import PulumiRunner, PulumiSession
from oscar_deploy.iac.recovery import LockHolder, without_pending_operations
from oscar_deploy.iac.runner import ConfigValue, OutputValue, StackError, StackLocked, StackTarget
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import OperationError
from tests.unit.iac.conftest import load
from tests.unit.iac.pulumi_release import wrapper

SECRET = "S3cretValueFromConfig42"
PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
USERS_OWN = "users-own-passphrase-not-for-oscar"


@dataclass
class StandIn:
    folder: Path

    def calls(self) -> list[dict[str, Any]]:
        path = self.folder / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    def commands(self) -> list[list[str]]:
        """What was run, without the `pulumi version` probes of finding the CLI."""
        return [call["argv"] for call in self.calls() if call["argv"] != ["version"]]

    def state(self) -> dict[str, Any]:
        return json.loads((self.folder / "state.json").read_text())

    def update(self, **changes: Any) -> None:
        path = self.folder / "state.json"
        state = json.loads(path.read_text()) if path.is_file() else {}
        state.update(changes)
        path.write_text(json.dumps(state))


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandIn:
    folder = tmp_path / "stand-in"
    folder.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_bytes(wrapper())
    (bin_dir / "pulumi").chmod(0o755)
    monkeypatch.setenv("PULUMI_STAND_IN_DIR", str(folder))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", USERS_OWN)
    return StandIn(folder)


@pytest.fixture
def cluster(tmp_path: Path) -> ClusterState:
    return ClusterState("lab", root=tmp_path / "clusters")


@pytest.fixture
def runner(stand_in: StandIn, cluster: ClusterState) -> Iterator[PulumiRunner]:
    made = runner_module.create_runner(cluster)
    assert isinstance(made, PulumiRunner)
    yield made


def inline(stack: str = "lab") -> StackTarget:
    return StackTarget("oscar-test", stack, program=lambda: None)


def test_runner_uses_the_cli_on_path_the_cluster_backend_and_its_passphrase_file(
    runner: PulumiRunner, cluster: ClusterState, stand_in: StandIn
) -> None:
    passphrase_file = cluster.pulumi_dir / "passphrase"
    assert runner.cli.command == str(stand_in.folder.parent / "bin" / "pulumi")
    assert str(runner.cli.version) == "3.272.0"
    assert runner.env == {
        "PULUMI_BACKEND_URL": f"file://{cluster.pulumi_dir}",
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase_file),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_PYTHON_CMD": sys.executable,
    }
    assert stat.S_IMODE(passphrase_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cluster.pulumi_dir.stat().st_mode) == 0o700
    assert passphrase_file.read_text() == cluster.secret("pulumi_passphrase") + "\n"
    assert len(cluster.secret("pulumi_passphrase")) == 32
    assert runner_module.create_runner(cluster).env == runner.env, "the passphrase is generated once"


def test_inline_stack_up_keeps_secrets_off_argv_and_out_of_the_environment(
    runner: PulumiRunner, cluster: ClusterState, stand_in: StandIn
) -> None:
    events = load("up-events.json")
    stand_in.update(
        scenario={
            "up": {
                "events": events,
                "outputs": {
                    "endpoint": {"value": "https://lab.example.org"},
                    "token": {"value": "t0k", "secret": True},
                },
            },
            "changes": {"create": 3, "same": 2},
        }
    )
    session = runner.select(inline())
    session.set_config(
        {
            "oscar-test:region": ConfigValue("eu-west"),
            "oscar-test:adminPassword": ConfigValue(SECRET, secret=True),
            "oscar-test:sshKey": ConfigValue(PEM, secret=True),
        }
    )
    received: list[EngineEvent] = []
    result = session.up(received.append)

    assert len(received) == len(events), "every engine event reached on_event (gRPC stream)"
    assert result.changes == {"create": 3, "same": 2}
    assert result.outputs == {
        "endpoint": OutputValue("https://lab.example.org", False),
        "token": OutputValue("t0k", True),
    }
    assert repr(result.outputs["token"]) == "OutputValue([secret], secret=True)"

    commands = stand_in.commands()
    assert commands[:2] == [
        ["--non-interactive", "stack", "select", "--stack", "lab"],
        ["--non-interactive", "stack", "init", "lab"],
    ]
    password, key = (call for call in stand_in.calls() if "--secret" in call["argv"])
    assert password["argv"] == [
        "--non-interactive",
        "config",
        "set",
        "oscar-test:adminPassword",
        "--secret",
        "--stack",
        "lab",
    ]
    assert password["stdin"] == SECRET
    assert key["stdin"] == PEM, "a value ending in a newline arrives whole"
    up = next(argv for argv in commands if "up" in argv)
    assert "--event-log" in up and "--skip-preview" in up
    history = next(argv for argv in commands if argv[1:3] == ["stack", "history"])
    assert "--show-secrets" not in history

    passphrase = cluster.secret("pulumi_passphrase")
    stored = stand_in.state()["stacks"]["organization/oscar-test/lab"]["config"]
    assert stored["oscar-test:region"] == {"value": "eu-west"}
    # Pulumi encrypted with the cluster's passphrase, read from the file, not the user's own variable.
    assert stored["oscar-test:adminPassword"] == {
        "secure": hashlib.sha256(f"{passphrase}\0{SECRET}".encode()).hexdigest()
    }
    assert stored["oscar-test:sshKey"] == {"secure": hashlib.sha256(f"{passphrase}\0{PEM}".encode()).hexdigest()}
    for call in stand_in.calls():
        assert "PULUMI_CONFIG_PASSPHRASE" not in call["env"] or call["argv"] == ["version"]
        if call["argv"] != ["version"]:
            assert call["env"]["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(cluster.pulumi_dir / "passphrase")
        for text in (*call["argv"], *call["env"].values()):
            assert passphrase not in text
            assert SECRET not in text
            assert "b3BlbnNzaC1rZXktdjEAAAAA" not in text
        if call["argv"] != ["version"]:
            assert call["cwd"] == str(cluster.pulumi_dir / "projects" / "oscar-test")


def test_preview_refresh_destroy_and_remove(runner: PulumiRunner, cluster: ClusterState, stand_in: StandIn) -> None:
    summary = {"sequence": 1, "summaryEvent": {"resourceChanges": {"create": 2}, "durationSeconds": 1}}
    stand_in.update(scenario={"preview": {"events": [summary]}, "changes": {"delete": 2}})
    session = runner.select(inline())
    assert session.preview(lambda event: None) == {"create": 2}
    assert session.refresh(lambda event: None) == {"delete": 2}
    assert session.destroy(lambda event: None) == {"delete": 2}
    session.remove()
    assert "organization/oscar-test/lab" not in stand_in.state()["stacks"]
    assert not (cluster.pulumi_dir / "projects" / "oscar-test").exists()
    assert stand_in.commands()[-1] == ["--non-interactive", "stack", "rm", "--yes", "lab"]


def test_state_round_trip_keeps_secrets_encrypted_and_leaves_no_file(
    runner: PulumiRunner, cluster: ClusterState, stand_in: StandIn
) -> None:
    session = runner.select(inline())
    recorded = load("interrupted-state.json")
    state = stand_in.state()
    state["stacks"]["organization/oscar-test/lab"]["deployment"] = recorded["deployment"]
    stand_in.update(stacks=state["stacks"])

    assert session.export_state() == recorded
    session.import_state(without_pending_operations(recorded))
    assert "pending_operations" not in stand_in.state()["stacks"]["organization/oscar-test/lab"]["deployment"]

    export, imported = (
        call for call in stand_in.calls() if call["argv"][1:3] in (["stack", "export"], ["stack", "import"])
    )
    assert "--show-secrets" not in export["argv"]
    assert imported["import_file_mode"] == "0o600"
    assert imported["import_folder_mode"] == "0o700"
    handed = Path(imported["argv"][imported["argv"].index("--file") + 1])
    assert handed.parent.parent == cluster.pulumi_dir / "projects" / "oscar-test", "inside the state folder"
    assert not handed.exists() and not handed.parent.exists(), "the state file is removed after the import"


def test_a_lock_comes_back_with_its_holders_and_cancel_removes_it(runner: PulumiRunner, stand_in: StandIn) -> None:
    session = runner.select(inline())
    stand_in.update(
        locks=[{"id": "3f1c", "username": "ana", "hostname": "ws-17", "pid": 4242, "timestamp": "2026-11-30T08:20:11Z"}]
    )
    with pytest.raises(StackLocked) as caught:
        session.up(lambda event: None)
    assert caught.value.holders == [
        LockHolder(
            "file:///state/.pulumi/locks/organization/oscar-test/lab/3f1c.json",
            "ana",
            "ws-17",
            4242,
            caught.value.holders[0].since,
        )
    ]
    assert caught.value.holders[0].since.isoformat() == "2026-11-30T08:20:11+00:00"
    assert str(caught.value).startswith("oscar-test/lab: pulumi up failed: the stack is currently locked by 1 lock(s)")
    session.cancel()
    assert stand_in.state()["locks"] == []
    session.up(lambda event: None)


def test_a_failed_command_is_one_line_naming_the_stack(runner: PulumiRunner, stand_in: StandIn) -> None:
    session = runner.select(inline())
    stand_in.update(scenario={"up": {"exit": 255, "stderr": "error: update failed"}})
    with pytest.raises(StackError) as caught:
        session.up(lambda event: None)
    assert str(caught.value) == "oscar-test/lab: pulumi up failed: update failed"
    assert not isinstance(caught.value, StackLocked)


def test_a_stack_holding_resources_leaves_its_backend_only_when_forced(
    runner: PulumiRunner, cluster: ClusterState, stand_in: StandIn
) -> None:
    """`down` of a cluster whose API no longer answers removes the platform stack as it stands (its objects go with
    the nodes): without force the backend refuses a stack that still records resources."""
    session = runner.select(inline())
    state = stand_in.state()
    state["stacks"]["organization/oscar-test/lab"]["deployment"]["resources"] = [{"urn": "urn:pulumi:lab::x::y::z"}]
    stand_in.update(**state)
    with pytest.raises(StackError) as caught:
        session.remove()
    assert str(caught.value) == (
        "oscar-test/lab: pulumi stack rm failed: 'organization/oscar-test/lab' still has resources; removal "
        "rejected; pass --force to override"
    )
    assert "organization/oscar-test/lab" in stand_in.state()["stacks"]
    session.remove(force=True)
    assert "organization/oscar-test/lab" not in stand_in.state()["stacks"]
    assert stand_in.commands()[-1] == ["--non-interactive", "stack", "rm", "--yes", "--force", "lab"]


def make_project(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "Pulumi.yaml").write_text("name: demo-project\nruntime: python\n")
    (folder / "__main__.py").write_text("import pulumi\n")
    (folder / "Pulumi.dev.yaml").write_text("config: {}\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"")
    return folder


def test_a_project_folder_is_copied_into_the_cluster_and_never_written_to(
    runner: PulumiRunner, cluster: ClusterState, stand_in: StandIn, tmp_path: Path
) -> None:
    source = make_project(tmp_path / "stacks" / "demo")
    before = sorted(path.name for path in source.rglob("*"))
    target = StackTarget.folder(source, "lab")
    assert (target.project, target.stack, target.program_dir) == ("demo-project", "lab", source)
    session = runner.select(target)
    assert isinstance(session, PulumiSession)
    work = cluster.pulumi_dir / "projects" / "demo-project"
    assert sorted(path.name for path in work.iterdir()) == ["Pulumi.yaml", "__main__.py"]
    assert stand_in.calls()[-1]["cwd"] == str(work)
    assert stand_in.commands()[-1] == ["--non-interactive", "stack", "init", "lab"]
    assert "organization/demo-project/lab" in stand_in.state()["stacks"], "the project is the copied Pulumi.yaml's"
    # Pulumi keeps the stack's config beside Pulumi.yaml: it survives the next copy; removed sources go.
    (work / "Pulumi.lab.yaml").write_text("encryptionsalt: v1:abc\n")
    (source / "__main__.py").unlink()
    (source / "program.py").write_text("import pulumi\n")
    runner.select(target)
    assert sorted(path.name for path in work.iterdir()) == ["Pulumi.lab.yaml", "Pulumi.yaml", "program.py"]
    assert sorted(path.name for path in source.rglob("*")) == sorted(
        [*(name for name in before if name != "__main__.py"), "program.py"]
    )


def test_a_folder_without_a_project_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OperationError, match=r"no Pulumi.yaml; not a Pulumi project"):
        StackTarget.folder(tmp_path, "lab")
    (tmp_path / "Pulumi.yaml").write_text("runtime: python\n")
    with pytest.raises(OperationError, match=r"Pulumi.yaml: names no project \(key `name`\)"):
        StackTarget.folder(tmp_path, "lab")
    with pytest.raises(ValueError, match="a project folder or an inline program"):
        StackTarget("p", "s")


def test_without_a_cli_the_runner_installs_the_pinned_one_and_uses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: ClusterState
) -> None:
    from oscar_deploy.iac.pulumi_cli import DOWNLOAD_URL_ENV, install_dir
    from tests.unit.iac.pulumi_release import VERSION, publish
    from tests.unit.release_server import ReleaseServer

    server = ReleaseServer()
    try:
        publish(server)
        folder = tmp_path / "stand-in"
        folder.mkdir()
        empty = tmp_path / "no-pulumi"
        empty.mkdir()
        monkeypatch.setenv("PULUMI_STAND_IN_DIR", str(folder))
        monkeypatch.setenv("PATH", str(empty))
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        monkeypatch.setenv(DOWNLOAD_URL_ENV, f"{server.base}/download")
        made = runner_module.create_runner(cluster)
        assert isinstance(made, PulumiRunner)
        assert made.cli.command == str(install_dir(VERSION) / "bin" / "pulumi")
        made.select(inline())
        assert StandIn(folder).commands()[-1] == ["--non-interactive", "stack", "init", "lab"]
    finally:
        server.close()


def test_exists_never_creates_and_a_target_environment_reaches_every_command_of_its_stack(
    runner: PulumiRunner, stand_in: StandIn
) -> None:
    token = "gAAAAABkeystone-token-for-the-provider"
    target = StackTarget("oscar-test", "lab", program=lambda: None, environment={"OS_TOKEN": token, "OS_CLOUD": ""})
    summary = {"sequence": 1, "summaryEvent": {"resourceChanges": {"same": 1}, "durationSeconds": 1}}
    stand_in.update(scenario={"preview": {"events": [summary]}})
    assert runner.exists(target) is False
    assert "organization/oscar-test/lab" not in stand_in.state()["stacks"], "exists made no stack"
    session = runner.select(target)
    session.preview(lambda event: None)
    assert runner.exists(target) is True
    other = runner.select(inline("other"))
    other.preview(lambda event: None)
    calls = [call for call in stand_in.calls() if call["argv"] != ["version"]]
    for call in calls:
        mine = "lab" in call["argv"] or any(arg.endswith("/lab") for arg in call["argv"])
        assert (call["env"].get("OS_TOKEN") == token) is mine, call["argv"]
        assert token not in " ".join(call["argv"])
    assert "OS_TOKEN" not in os.environ
    assert repr(target).count(token) == 0
