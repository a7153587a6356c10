"""`oscar-deploy verify`: the smoke test against the fake OSCAR manager (which emulates the MinIO webhook -> job ->
supervisor upload flow on a moto S3 server), passing and failing at each kind of step."""

from __future__ import annotations

import socket

import pytest

from oscar_deploy.services.client import OscarClient
from oscar_deploy.services.files import ObjectStore
from oscar_deploy.services.verify import HINTS, NAME_PREFIX, STEPS, SmokeTest, StepResult, describe_info, format_result
from oscar_deploy.state.endpoints import MinioAccess, OscarAccess
from tests.unit.fake_oscar import FakeOscar, service_schema_validator
from tests.unit.oscar_env import S3Server, write_cluster_state
from tests.unit.test_oscar_client import FakeTime

IMAGE = "docker.io/library/alpine:3.22.1"


def _smoke(
    fake: FakeOscar, url: str | None = None, timeout: float = 5.0, time_: FakeTime | None = None
) -> tuple[SmokeTest, list[StepResult]]:
    reported: list[StepResult] = []
    access = OscarAccess(url=url or fake.url, user=fake.user, password=fake.password)
    timing = {"sleep": time_.sleep, "clock": time_.clock} if time_ else {}
    client = OscarClient(access, retries=0, **timing)  # type: ignore[arg-type]
    minio = MinioAccess(fake.s3_endpoint, fake.s3_access_key, fake.s3_secret_key)
    smoke = SmokeTest(
        client,
        store_factory=lambda: ObjectStore(minio),
        image=IMAGE,
        report=reported.append,
        timeout=timeout,
        poll_interval=0.05,
    )
    return smoke, reported


def _statuses(results: list[StepResult]) -> list[tuple[str, str]]:
    return [(result.step, result.status) for result in results]


def test_a_working_cluster_passes_every_step_and_is_left_clean(fake: FakeOscar) -> None:
    smoke, reported = _smoke(fake)
    report = smoke.run()
    assert report.passed and report.first_failure is None
    assert _statuses(reported) == [(step, "PASS") for step in STEPS]
    assert report.service_name.startswith(NAME_PREFIX) and len(report.service_name) <= 39
    details = {result.step: result.detail for result in reported}
    assert details["health"] == "answered 'Ok'"
    assert details["info"] == "OSCAR v4.1.2 on Kubernetes v1.33.3+k3s1, backend Knative"
    assert details["output file"] == f"{smoke.name}/out/verify.txt.out"
    assert details["job log"].startswith(f"job {smoke.name}-")
    assert details["delete service"] == f"service {smoke.name} deleted, OSCAR removed its bucket"
    # The smoke-test service is a valid API body and went through the server's schema check.
    (created,) = [body for method, path, _, body in fake.requests if method == "POST" and path == "/system/services"]
    assert list(service_schema_validator().iter_errors(created)) == []
    assert created["image"] == IMAGE and created["alpine"] is True
    assert fake.services == {}
    assert smoke.name not in ObjectStore(MinioAccess(fake.s3_endpoint, "k", "s")).list_buckets()


def test_a_failing_synchronous_backend_is_reported_and_the_service_still_removed(fake: FakeOscar) -> None:
    fake.fail("POST", "/run/", 500, "upstream connect error or disconnect/reset before headers")
    smoke, reported = _smoke(fake)
    report = smoke.run()
    assert not report.passed
    assert _statuses(reported) == [
        ("health", "PASS"),
        ("info", "PASS"),
        ("create service", "PASS"),
        ("upload input", "PASS"),
        ("output file", "PASS"),
        ("run (sync)", "FAIL"),
        ("job log", "SKIP"),
        ("delete service", "PASS"),
    ]
    failure = report.first_failure
    assert failure is not None and failure.step == "run (sync)"
    assert "500 Internal Server Error: upstream connect error" in failure.detail
    assert "Knative and Kourier" in failure.hint
    assert fake.services == {}


def test_a_revision_that_is_still_starting_is_waited_for(fake: FakeOscar) -> None:
    """A 502 from /run while the Knative revision starts means "not ready yet" (run.go's reverse proxy)."""
    fake.not_ready_runs = 2
    time_ = FakeTime()
    smoke, _ = _smoke(fake, time_=time_)
    assert smoke.run().passed
    assert time_.pauses == [1.0, 2.0]


def test_a_cluster_without_a_serverless_backend_fails_the_sync_step_saying_so(fake: FakeOscar) -> None:
    fake.serverless_backend = False
    smoke, reported = _smoke(fake)
    report = smoke.run()
    failure = report.first_failure
    assert failure is not None and failure.step == "run (sync)"
    assert "OSCAR runs without a serverless backend" in failure.detail
    details = {result.step: result.detail for result in reported}
    assert details["info"] == "OSCAR v4.1.2 on Kubernetes v1.33.3+k3s1"


def test_a_bucket_oscar_left_behind_is_removed(fake: FakeOscar, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream deletes the service's buckets (delete.go); a server that does not is cleaned up after."""
    monkeypatch.setattr(fake, "_delete_input_buckets", lambda service: None)
    smoke, reported = _smoke(fake)
    assert smoke.run().passed
    assert reported[-1].detail == f"service {smoke.name} deleted, bucket removed (OSCAR had left it)"
    assert smoke.name not in ObjectStore(MinioAccess(fake.s3_endpoint, "k", "s")).list_buckets()


def test_the_backend_version_on_knative_is_not_shown_as_knatives() -> None:
    """pkg/backends/knative.go GetInfo: the version is the discovery client's ServerVersion (Kubernetes)."""
    info = {"version": "v4.1.2", "kubernetes_version": "v1.33.3+k3s1"}
    knative = {**info, "serverless_backend": {"name": "Knative", "version": "v1.33.3+k3s1"}}
    assert describe_info(knative) == "OSCAR v4.1.2 on Kubernetes v1.33.3+k3s1, backend Knative"
    other = {**info, "serverless_backend": {"name": "OpenFaaS", "version": "0.27.0"}}
    assert describe_info(other) == "OSCAR v4.1.2 on Kubernetes v1.33.3+k3s1, backend OpenFaaS 0.27.0"
    assert describe_info({}) == "OSCAR ? on Kubernetes ?"


def test_the_volume_hint_names_the_namespace_of_oscar_pvc() -> None:
    """oscar-pvc is mounted by every service pod, so it lives in the services namespace, oscar-svc
    (pkg/types/service.go PVCName, mounted in ToPodSpec; shared reference note, section What must exist)."""
    assert "`kubectl -n oscar-svc get pvc oscar-pvc`" in HINTS["create service"]


def test_a_job_that_never_writes_its_output_times_out_with_a_hint(s3_server: S3Server) -> None:
    s3_server.reset()
    idle = FakeOscar(s3_endpoint=s3_server.url, poll_interval=3600).start()  # the webhook never fires
    try:
        smoke, reported = _smoke(idle, timeout=0.4)
        report = smoke.run()
    finally:
        idle.stop()
    assert _statuses(reported)[4:] == [
        ("output file", "FAIL"),
        ("run (sync)", "SKIP"),
        ("job log", "SKIP"),
        ("delete service", "PASS"),
    ]
    failure = report.first_failure
    assert failure is not None
    assert failure.detail == f"no file appeared under {smoke.name}/out/ within 0.4 s"
    assert f"oscar-deploy service logs {smoke.name}" in failure.hint  # the hint names the actual service
    assert idle.services == {}


def test_an_unreachable_cluster_fails_at_health_and_creates_nothing(fake: FakeOscar) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    smoke, reported = _smoke(fake, url=closed)
    report = smoke.run()
    assert _statuses(reported) == [("health", "FAIL")] + [(step, "SKIP") for step in STEPS[1:]]
    assert report.first_failure is not None and "cannot connect after 1 attempts" in report.first_failure.detail
    assert fake.requests == []


def test_result_lines() -> None:
    passed = format_result(StepResult("health", "PASS", 0.0123, "answered 'Ok'"))
    assert passed == ["PASS  health            (0.01 s)  answered 'Ok'"]
    failed = format_result(StepResult("run (sync)", "FAIL", 1.5, "boom", "look here"))
    assert failed == ["FAIL  run (sync)        (1.50 s)  boom", "      look at: look here"]
    assert format_result(StepResult("job log", "SKIP", 0.0, "not run")) == ["SKIP  job log                     not run"]


def test_verify_command_passes_on_a_working_cluster(cli, fake: FakeOscar) -> None:
    write_cluster_state("demo", fake)
    result = cli("verify", "--cluster", "demo", "--timeout", "10")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"verify {fake.url}"
    assert [line.split()[0] for line in lines[1:-1]] == ["PASS"] * len(STEPS)
    assert lines[-1] == f"verify: all {len(STEPS)} steps passed"
    assert fake.password not in result.output


def test_verify_command_fails_with_exit_code_1_and_says_where_to_look(cli, fake: FakeOscar) -> None:
    write_cluster_state("demo", fake)
    fake.fail("POST", "/system/services", 500, "error registering the MinIO webhook")
    result = cli("verify", "--timeout", "10")  # the only cluster in the state folder
    assert result.exit_code == 1
    assert "FAIL  create service" in result.stdout and "error registering the MinIO webhook" in result.stdout
    assert "      look at: OSCAR could not create the service" in result.stdout
    assert "SKIP  delete service" not in result.stdout  # a create that may have half-happened is cleaned up
    assert "error: verify: failed at step 'create service'" in result.stderr
