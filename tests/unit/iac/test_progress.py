"""Engine events -> progress lines, on events recorded in upstream's format (tests/data/pulumi)."""

from __future__ import annotations

from pulumi.automation.events import EngineEvent

from oscar_deploy.iac.progress import PulumiProgress
from oscar_deploy.iac.runner import MISSING, ResourceStep
from tests.unit.iac.conftest import load

STACK = "oscar-openstack/lab"
MARK = "PROPERTY-VALUE-MUST-NOT-PRINT"
SECRET = "S3cretValueFromConfig42"


def replay(progress: PulumiProgress, name: str, upto: int | None = None) -> list[str]:
    lines = []
    for event in load(name)[:upto]:
        line = progress.handle(EngineEvent.from_json(event))
        if line is not None:
            lines.append(line)
    return lines


def test_an_update_reports_removals_as_they_happen_and_recaps_from_the_summary() -> None:
    progress = PulumiProgress.start("up", STACK)
    lines = replay(progress, "up-events.json")
    assert lines == ["replaced: Port lab-w1-port", "deleted: Instance lab-w0"]
    assert progress.errors == [], "warnings and info diagnostics are not failures"
    assert progress.running == {}
    assert progress.recap() == "pulumi up oscar-openstack/lab: 3 created, 1 replaced, 1 deleted, 2 unchanged"
    assert progress.status_line() == f"pulumi up {STACK} | 3 created, 1 replaced, 1 deleted, 2 unchanged"


def test_the_status_line_names_what_is_running() -> None:
    progress = PulumiProgress.start("up", STACK)
    replay(progress, "up-events.json", upto=4)  # prelude, the stack unchanged (pre, outputs), the network's pre
    assert progress.status_line() == f"pulumi up {STACK} | 1 running: create Network lab-net | 1 unchanged"


def test_a_preview_counts_what_would_change_and_prints_no_removal_lines() -> None:
    progress = PulumiProgress.start("preview", STACK)
    assert replay(progress, "up-events.json") == []
    assert progress.recap() == (
        "pulumi preview oscar-openstack/lab: 3 to create, 1 to replace, 1 to delete, 2 unchanged"
    )


def test_without_a_summary_the_counts_come_from_the_steps() -> None:
    progress = PulumiProgress.start("up", STACK)
    events = [event for event in load("up-events.json") if "summaryEvent" not in event]
    for event in events:
        progress.handle(EngineEvent.from_json(event))
    assert progress.summary is None
    assert progress.recap() == "pulumi up oscar-openstack/lab: 3 created, 1 replaced, 1 deleted, 2 unchanged"


def test_failures_are_one_line_each_with_secrets_masked() -> None:
    progress = PulumiProgress.start("up", STACK, secrets=[SECRET, "short"])
    lines = replay(progress, "failed-up-events.json")
    expected = [
        "Instance lab-w1: creating server: Bad request with: [POST https://compute.example.org/v2.1/servers], error "
        'message: {"badRequest": {"message": "Invalid key_name [secret] provided."}}',
        "Stack oscar-openstack-lab: ValueError: image 'Ubuntu 24.04' not found in cloud lab",
    ]
    assert progress.failure_lines() == expected
    # The engine's closing "update failed" is shown once as it happens, and left out of the final lines.
    assert lines == [*expected, "Stack oscar-openstack-lab: update failed"]
    assert progress.failed == 1
    assert progress.recap() == "pulumi up oscar-openstack/lab: 1 created, 1 unchanged, 1 failed"


def test_no_line_ever_carries_a_property_value_or_a_known_secret() -> None:
    for name in ("up-events.json", "failed-up-events.json", "platform-drift-up-events.json"):
        progress = PulumiProgress.start("up", STACK, secrets=[SECRET])
        printed = replay(progress, name)
        printed += [progress.status_line(), progress.recap(), *progress.failure_lines()]
        for line in printed:
            assert MARK not in line
            assert SECRET not in line


def test_only_the_closing_error_is_kept_when_nothing_says_more() -> None:
    progress = PulumiProgress.start("destroy", STACK)
    event = {"diagnosticEvent": {"message": "destroy failed", "severity": "error", "color": "raw"}}
    assert progress.handle(EngineEvent.from_json(event)) == f"{STACK}: destroy failed"
    assert progress.failure_lines() == [f"{STACK}: destroy failed"]


def test_long_messages_are_cut() -> None:
    progress = PulumiProgress.start("up", STACK)
    event = {"diagnosticEvent": {"message": "x" * 1000, "severity": "error", "color": "raw"}}
    line = progress.handle(EngineEvent.from_json(event))
    assert line is not None
    assert len(line.partition(": ")[2]) == 300
    assert line.endswith("...")


def test_an_update_keeps_the_resources_it_acted_on_and_those_its_refresh_found_gone() -> None:
    progress = PulumiProgress.start("up", "oscar-platform/demo")
    replay(progress, "platform-drift-up-events.json")
    assert [(step.op, step.label) for step in progress.steps] == [
        ("missing", "PersistentVolumeClaim minio/minio-data"),
        ("create", "PersistentVolumeClaim minio/minio-data"),
        ("update", "Deployment minio/minio"),
        ("update", "Secret minio/minio-root"),
    ]
    assert progress.recap() == "pulumi up oscar-platform/demo: 1 created, 2 updated, 2 unchanged"


def test_a_resource_without_an_id_is_named_by_its_urn_and_a_preview_keeps_none() -> None:
    progress = PulumiProgress.start("up", STACK)
    replay(progress, "up-events.json")
    assert [(step.op, step.label) for step in progress.steps] == [
        ("create", "Network lab-net"),
        ("create", "Instance lab-w1"),
        ("create", "Instance lab-w2"),
        ("replace", "Port lab-w1-port"),
        ("delete", "Instance lab-w0"),
    ]
    preview = PulumiProgress.start("preview", STACK)
    replay(preview, "up-events.json")
    assert preview.steps == []


def finished(op: str, urn: str, new_id: str | None = None, old_id: str | None = None) -> EngineEvent:
    """A step's resOutputsEvent as the engine sends it, with the new and old state only when given (no properties)."""
    metadata: dict[str, object] = {"op": op, "urn": urn, "type": urn.split("::")[2], "provider": ""}
    for key, object_id in (("new", new_id), ("old", old_id)):
        if object_id is not None:
            metadata[key] = {"type": metadata["type"], "urn": urn, "id": object_id, "custom": True}
    return EngineEvent.from_json({"sequence": 1, "timestamp": 1796100000, "resOutputsEvent": {"metadata": metadata}})


def test_each_kept_step_takes_the_id_of_the_state_it_has_and_none_without_one() -> None:
    """An import is kept like a create; a delete has only its old state; a refresh that found its resource is no
    step of the update, one that did not is MISSING; a step without any state is kept without an ID."""
    claim = "urn:pulumi:demo::oscar-platform::kubernetes:core/v1:PersistentVolumeClaim::minio-data"
    service = "urn:pulumi:demo::oscar-platform::kubernetes:core/v1:Service::minio"
    progress = PulumiProgress.start("up", "oscar-platform/demo")
    for event in (
        finished("import", service, new_id="minio/minio"),
        finished("delete", service, old_id="minio/old"),
        finished("refresh", service, new_id="minio/minio", old_id="minio/minio"),
        finished("refresh", claim, old_id="minio/minio-data"),
        finished("refresh", claim),
        finished("create", claim),
        finished("read", service, new_id="minio/minio"),
    ):
        progress.handle(event)
    assert progress.steps == [
        ResourceStep("import", service, "minio/minio"),
        ResourceStep("delete", service, "minio/old"),
        ResourceStep(MISSING, claim, "minio/minio-data"),
        ResourceStep(MISSING, claim, ""),
        ResourceStep("create", claim, ""),
    ]
    assert [step.label for step in progress.steps[2:]] == [
        "PersistentVolumeClaim minio/minio-data",
        "PersistentVolumeClaim minio-data",
        "PersistentVolumeClaim minio-data",
    ]
