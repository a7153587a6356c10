"""The platform and verify phases of `up` through the runner seam: the stack is the recording fake
(tests/doubles/stack_runner.py), the OSCAR it deploys is the fake OSCAR on 127.0.0.1 with moto's S3 standing for
MinIO, and the cluster's API is tests/doubles/kube_api.py. Ansible is the recorder of test_pipeline."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from oscar_deploy.iac.runner import OutputValue, ResourceStep
from oscar_deploy.pipeline import cluster as pipeline
from oscar_deploy.pipeline import platform_phases
from oscar_deploy.pipeline.platform_phases import DriftReport, with_port
from oscar_deploy.platform.model import STACK_PROJECT
from oscar_deploy.platform.probe import ClusterProbe
from oscar_deploy.state.endpoints import access_from_state, read_endpoints
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.errors import OperationError
from tests.doubles import stack_runner
from tests.doubles.kube_api import KUBECONFIG_TOKEN, KubeApi, deployment, job
from tests.unit.fake_oscar import FakeOscar
from tests.unit.iac.conftest import load
from tests.unit.pipeline_env import SPEC, MemoryProvider, PlaybookRun, make_context

CA_PEM = "-----BEGIN CERTIFICATE-----\nTEST DOUBLE: not a certificate\n-----END CERTIFICATE-----\n"
# The events of an `up --refresh` after MinIO's claim was deleted and its Deployment and root Secret edited by hand.
DRIFT_EVENTS = "platform-drift-up-events.json"
DRIFT_CHANGES = {"create": 1, "update": 2, "same": 2}
DRIFT_REASON = (
    "drift check (--check-drift): the stack reads every object back from the cluster, then puts back what differs"
)
VERIFY_DRIFT_REASON = "drift check (--check-drift): the smoke test again, through the platform the drift check left"
EMPTIED_MINIO = (
    "PersistentVolumeClaim minio/minio-data was made again EMPTY: the data it held (MinIO's data: every bucket of "
    "the cluster (the OSCAR services' input and output files)) is gone; restore it from a backup if you have one"
)


@pytest.fixture
def kube(state_home: Path) -> Iterator[KubeApi]:
    api = KubeApi()
    yield api
    api.stop()


@pytest.fixture
def deployed(
    state_home: Path, fake: FakeOscar, kube: KubeApi, monkeypatch: pytest.MonkeyPatch
) -> stack_runner.RecordingRunner:
    """The cluster `demo` as the platform stack would leave it: the fake OSCAR answers with the credentials in
    the state folder, the stack exports its URLs, and the kubeconfig reaches the Kubernetes API double."""
    state = ClusterState("demo").ensure()
    state.write_file(
        state.secrets_file,
        yaml.safe_dump(
            {
                "oscar_password": fake.password,
                "minio_access_key": fake.s3_access_key,
                "minio_secret_key": fake.s3_secret_key,
            }
        ),
    )
    kube.write_kubeconfig(state.kubeconfig_file)
    runner = stack_runner.install(monkeypatch)
    runner.stack(STACK_PROJECT, "demo").outputs = {
        "oscarUrl": OutputValue(fake.url),
        "dashboardUrl": OutputValue(f"{fake.url}/ui"),
        "minioUrl": OutputValue(fake.s3_endpoint),
        "oscarPassword": OutputValue(fake.password, secret=True),
    }
    monkeypatch.setattr(platform_phases, "READY_POLL", 0.05)
    return runner


def test_up_runs_every_phase_in_order_and_writes_the_endpoints(
    state_home: Path, deployed: stack_runner.RecordingRunner, playbooks: list[PlaybookRun], fake: FakeOscar
) -> None:
    provider = MemoryProvider()
    outcomes = pipeline.converge(make_context(state_home, provider), SPEC)
    assert [outcome.phase for outcome in outcomes] == ["provision", "prepare", "kubernetes", "platform", "verify"]
    assert [run.playbook for run in playbooks] == ["prepare.yml", "kubernetes.yml"]
    assert deployed.operations() == ["select", "export_state", "set_config", "up"]
    config = next(call for call in deployed.calls if call.operation == "set_config").detail["config"]
    assert config[f"{STACK_PROJECT}:publicAddress"].value == "127.0.0.1"
    secret_keys = {key for key, value in config.items() if value.secret}
    assert secret_keys == {
        f"{STACK_PROJECT}:oscarPassword",
        f"{STACK_PROJECT}:minioAccessKey",
        f"{STACK_PROJECT}:minioSecretKey",
        "kubernetes:kubeconfig",
    }
    state = ClusterState("demo")
    endpoints = read_endpoints(state)
    assert (endpoints.oscar_url, endpoints.oscar_user, endpoints.minio_url) == (fake.url, "oscar", fake.s3_endpoint)
    assert endpoints.ca_file is None, "no cluster CA was exported"
    assert stat.S_IMODE((state.path / "endpoints.yaml").stat().st_mode) == 0o600
    assert access_from_state(state).oscar.password == fake.password
    platform = outcomes[3].result
    assert platform is not None
    assert platform.summary == [
        "every resource already as declared",
        f"OSCAR {fake.url}",
        f"dashboard {fake.url}/ui",
        f"MinIO {fake.s3_endpoint}",
    ]
    assert (platform.changed, platform.details, platform.warnings) == (False, {"changes": {"same": 1}}, [])
    assert all(fake.password not in line for line in platform.summary)
    assert outcomes[4].result is not None and outcomes[4].result.summary[0].startswith("smoke test passed")

    again = pipeline.converge(make_context(state_home, provider), SPEC)
    assert [outcome.result is None for outcome in again] == [False, True, True, True, True]


def test_the_platform_stack_breaks_a_lock_of_another_machine_only_with_break_lock(
    state_home: Path, deployed: stack_runner.RecordingRunner, playbooks: list[PlaybookRun]
) -> None:
    provider = MemoryProvider()
    deployed.stack(STACK_PROJECT, "demo").lock(77, "laptop.example.org", datetime.now(UTC))
    with pytest.raises(OperationError, match="run the command again with --break-lock"):
        pipeline.converge(make_context(state_home, provider), SPEC)
    assert "cancel" not in deployed.operations()
    context = make_context(state_home, provider)
    context.break_lock = True
    pipeline.converge(context, SPEC)
    assert deployed.operations()[-2:] == ["cancel", "up"]


def test_a_failure_inside_the_platform_phase_resumes_there_and_a_platform_input_reruns_it(
    state_home: Path, deployed: stack_runner.RecordingRunner, playbooks: list[PlaybookRun]
) -> None:
    provider = MemoryProvider()
    deployed.stack(STACK_PROJECT, "demo").fail_next("up", "kubernetes:apps/v1:Deployment oscar: timed out")
    with pytest.raises(OperationError, match="timed out"):
        pipeline.converge(make_context(state_home, provider), SPEC)
    journal = ClusterState("demo").journal
    assert journal.completed("kubernetes") and not journal.completed("platform")
    playbooks.clear()
    resumed = pipeline.converge(make_context(state_home, provider), SPEC)
    assert [outcome.phase for outcome in resumed if outcome.result is not None] == ["provision", "platform", "verify"]
    assert playbooks == []

    bigger = SPEC + "platform: {minio: {storage_size: 40Gi}}\n"
    decisions = pipeline.plan(make_context(state_home, provider, bigger))
    assert [(d.phase, d.run) for d in decisions][1:] == [
        ("prepare", False),
        ("kubernetes", False),
        ("platform", True),
        ("verify", False),
    ], "verify follows the platform only once it ran again"
    assert decisions[3].reason == "changed: platform"
    pinned = SPEC + "versions: {minio: RELEASE.2025-10-15T17-29-55Z}\n"
    assert pipeline.plan(make_context(state_home, provider, pinned))[3].reason == "changed: versions"
    after = pipeline.converge(make_context(state_home, provider, bigger), bigger)
    assert [outcome.phase for outcome in after if outcome.result is not None] == ["provision", "platform", "verify"]


def test_the_cluster_ca_is_saved_for_clients(
    state_home: Path, deployed: stack_runner.RecordingRunner, playbooks: list[PlaybookRun], kube: KubeApi
) -> None:
    deployed.stack(STACK_PROJECT, "demo").outputs["caCertificateSecret"] = OutputValue(
        {"namespace": "cert-manager", "name": "oscar-ca", "key": "ca.crt"}
    )
    kube.secrets[("cert-manager", "oscar-ca")] = {"ca.crt": CA_PEM, "tls.key": "not to be read"}
    pipeline.converge(make_context(state_home, MemoryProvider()), SPEC, until="platform")
    state = ClusterState("demo")
    assert (state.path / "ca.crt").read_text() == CA_PEM
    assert read_endpoints(state).ca_file == "ca.crt"
    assert "/api/v1/namespaces/cert-manager/secrets/oscar-ca" in kube.requests


def test_readiness_timeout_names_each_component_that_is_not_ready(
    state_home: Path, fake: FakeOscar, kube: KubeApi
) -> None:
    from oscar_deploy.platform.probe import ClusterProbe
    from oscar_deploy.state.endpoints import OscarAccess

    kube.workloads = [
        deployment("oscar", "oscar", ready=0),
        deployment("minio", "minio", ready=1),
        job("oscar-svc", "oscar-bin-populate", failed=2),
    ]
    notes: list[str] = []
    fake.stop()  # OSCAR does not answer
    access = OscarAccess(fake.url, "oscar", "x")
    with (
        ClusterProbe(kube.write_kubeconfig(state_home / "kubeconfig")) as probe,
        pytest.raises(OperationError) as raised,
    ):
        # A second: a first look slower than the timeout (a loaded machine) would end the wait before any note.
        platform_phases.wait_until_ready(access, probe, timeout=1.0, note=notes.append, poll=0.05)
    lines = str(raised.value).splitlines()
    assert lines[0].startswith(f"platform: OSCAR did not answer in 1 s (GET {fake.url}/health: cannot connect")
    assert lines[1:] == [
        "not ready: deployment oscar/oscar: 0/1 ready",
        "not ready: job oscar-svc/oscar-bin-populate: 2 failed attempt(s)",
        "look at: kubectl -n oscar describe deployment oscar",
    ]
    assert notes and notes[0].startswith("waiting for the platform: deployment oscar/oscar: 0/1 ready")


def test_readiness_passes_once_oscar_answers_with_the_credentials(
    state_home: Path, fake: FakeOscar, kube: KubeApi
) -> None:
    from oscar_deploy.platform.probe import ClusterProbe
    from oscar_deploy.state.endpoints import OscarAccess

    with ClusterProbe(kube.write_kubeconfig(state_home / "kubeconfig")) as probe:
        platform_phases.wait_until_ready(OscarAccess(fake.url, fake.user, fake.password), probe, 5, print, 0.05)
        with pytest.raises(OperationError, match="credentials rejected"):
            platform_phases.wait_until_ready(OscarAccess(fake.url, fake.user, "wrong"), probe, 0.1, print, 0.05)


def test_verify_failure_stops_up_with_the_step_named(
    state_home: Path, deployed: stack_runner.RecordingRunner, playbooks: list[PlaybookRun], fake: FakeOscar
) -> None:
    fake.serverless_backend = False
    with pytest.raises(OperationError, match=r"^verify: run \(sync\) failed: "):
        pipeline.converge(make_context(state_home, MemoryProvider()), SPEC)
    assert ClusterState("demo").journal.completed("platform")
    assert not ClusterState("demo").spec_file.exists(), "up did not finish: the spec is not recorded as applied"


@pytest.mark.parametrize(
    ("url", "port", "expected"),
    [
        ("https://127.0.0.1.sslip.io", 40443, "https://127.0.0.1.sslip.io:40443"),
        ("https://127.0.0.1.sslip.io/ui", 40443, "https://127.0.0.1.sslip.io:40443/ui"),
        ("https://oscar.example.org", 443, "https://oscar.example.org"),
        ("https://oscar.example.org", None, "https://oscar.example.org"),
    ],
)
def test_urls_carry_the_published_gateway_port(url: str, port: int | None, expected: str) -> None:
    assert with_port(url, port) == expected


def test_credentials_are_masked_unless_asked_for(
    state_home: Path, deployed: stack_runner.RecordingRunner, playbooks: list[PlaybookRun], fake: FakeOscar, cli
) -> None:  # type: ignore[no-untyped-def]
    pipeline.converge(make_context(state_home, MemoryProvider()), SPEC, until="platform")
    masked = cli("credentials", "-c", "demo")
    assert masked.exit_code == 0, masked.output
    assert fake.password not in masked.stdout and fake.s3_secret_key not in masked.stdout
    assert masked.stdout.splitlines()[0] == f"OSCAR      {fake.url}  user oscar  password ********"
    assert masked.stdout.splitlines()[-1] == "passwords and keys masked; --show-secrets prints them"
    shown = cli("credentials", "-c", "demo", "--show-secrets", "--json")
    data = yaml.safe_load(shown.stdout)
    assert (data["oscar"]["password"], data["minio"]["secret_key"]) == (fake.password, fake.s3_secret_key)
    config = state_home / "oscar-cli.yaml"
    written = cli("credentials", "-c", "demo", "--oscar-cli", "--config-file", str(config))
    assert written.exit_code == 0, written.output
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert fake.password in config.read_text()


def test_status_reports_the_platform_from_oscar_and_the_cluster(
    state_home: Path,
    deployed: stack_runner.RecordingRunner,
    playbooks: list[PlaybookRun],
    fake: FakeOscar,
    kube: KubeApi,
) -> None:
    state = ClusterState("demo")
    assert platform_phases.platform_status(state) is None, "no platform before the platform phase"
    pipeline.converge(make_context(state_home, MemoryProvider()), SPEC, until="platform")
    kube.workloads = [deployment("oscar", "oscar", ready=1), deployment("knative-serving", "activator", ready=0)]
    status = platform_phases.platform_status(state)
    assert status is not None
    assert status.lines() == [
        f"platform: OSCAR {fake.url}: answers (Ok)",
        "platform: 1 of 2 component(s) ready",
        "  not ready: deployment knative-serving/activator: 0/1 ready",
    ]
    kube.stop()
    unreachable = platform_phases.platform_status(state)
    assert unreachable is not None and unreachable.problem is not None
    assert unreachable.problem.startswith("Kubernetes API unreachable")


def test_down_keep_nodes_removes_only_the_platform(
    state_home: Path,
    deployed: stack_runner.RecordingRunner,
    playbooks: list[PlaybookRun],
    kube: KubeApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The nodes stay, so the platform's objects are destroyed even when the API does not answer now (the destroy
    then says so): the stack never leaves its backend without a destroy."""
    provider = MemoryProvider()
    pipeline.converge(make_context(state_home, provider), SPEC)
    nodes = dict(provider.machines)
    kube.stop()
    destroy = stack_runner.FakeSession.destroy

    def nothing_deleted(session: stack_runner.FakeSession, on_event: Any) -> dict[str, int]:
        destroy(session, on_event)
        return {}  # Pulumi's summary leaves out the operations that did not happen

    monkeypatch.setattr(stack_runner.FakeSession, "destroy", nothing_deleted)
    removed = pipeline.remove_platform(make_context(state_home, provider))
    assert removed == ["platform stack (0 resource(s)), endpoints and cluster CA"]
    assert deployed.operations()[-3:] == ["export_state", "destroy", "remove"]
    assert deployed.calls[-1].detail == {"force": False}
    state = ClusterState("demo")
    assert not (state.path / "endpoints.yaml").exists()
    assert state.journal.completed("kubernetes") and not state.journal.completed("platform")
    assert not state.journal.completed("verify")
    assert provider.machines == nodes, "nodes and k3s stay"
    decisions = pipeline.plan(make_context(state_home, provider))
    assert [(d.phase, d.run) for d in decisions][3:] == [("platform", True), ("verify", True)]


SHARED_SPEC = SPEC + "iac: {backend: 's3://team-state?region=eu-west-1'}\n"


@pytest.mark.parametrize("api", ["answers", "silent", "no-kubeconfig", "refuses"])
def test_down_with_a_shared_backend_removes_the_platform_stack_even_when_the_cluster_is_dead(
    state_home: Path,
    deployed: stack_runner.RecordingRunner,
    playbooks: list[PlaybookRun],
    kube: KubeApi,
    api: str,
) -> None:
    """The platform stack lives outside the state folder, so `down` destroys it before the nodes. When the
    Kubernetes API does not answer (a server deleted in the console, or every node stopped), a destroy could only
    fail and leave every VM running: the stack then leaves its backend as it stands (its objects go with the
    nodes), and the nodes are removed. The same when the API refuses the kubeconfig (a renewed certificate)."""
    provider = MemoryProvider()
    pipeline.converge(make_context(state_home, provider, SHARED_SPEC), SHARED_SPEC)
    claim = "urn:pulumi:demo::oscar-platform::kubernetes:core/v1:PersistentVolumeClaim::minio-data"
    namespace = "urn:pulumi:demo::oscar-platform::kubernetes:core/v1:Namespace::minio"
    deployed.stack(STACK_PROJECT, "demo").deployment["resources"] = [{"urn": namespace}, {"urn": claim}]
    state = ClusterState("demo")
    if api == "silent":
        kube.stop()
    elif api == "no-kubeconfig":
        state.kubeconfig_file.unlink()
    elif api == "refuses":
        kube.accepted_token = "renewed"
    context = make_context(state_home, provider, SHARED_SPEC)
    notes: list[str] = []
    context.progress.note = notes.append  # type: ignore[method-assign]
    removed = pipeline.teardown(context)
    unusable = {
        "silent": "Kubernetes API unreachable (MaxRetryError)",
        "no-kubeconfig": f"no kubeconfig in {state.path}",
        "refuses": "Kubernetes API refused the kubeconfig's credentials (401 Unauthorized)",
    }.get(api)
    if api == "answers":
        assert removed[0] == "platform stack (2 resource(s)), endpoints and cluster CA"
        assert deployed.operations()[-3:] == ["export_state", "destroy", "remove"]
        assert deployed.calls[-1].detail == {"force": False}
        assert not [note for note in notes if note.startswith("platform stack:")]
    else:
        assert removed[0] == "platform stack (from its backend only, without a destroy), endpoints and cluster CA"
        assert "destroy" not in deployed.operations()
        assert deployed.operations()[-1] == "remove" and deployed.calls[-1].detail == {"force": True}
        assert (
            f"platform stack: {unusable}; its objects go with the nodes, so the stack leaves its backend without a "
            "destroy"
        ) in notes
    assert f"{STACK_PROJECT}/demo" not in deployed.stacks
    assert provider.machines == {}, "the nodes are removed either way"
    assert not state.path.exists()


def test_a_cluster_that_refuses_the_kubeconfig_cannot_be_used(state_home: Path, kube: KubeApi) -> None:
    kubeconfig = kube.write_kubeconfig(state_home / "kubeconfig")
    kube.accepted_token = "renewed"
    renewal = (
        f"its client certificate may have expired or been renewed: delete {kubeconfig} and run `oscar-deploy up` to "
        "fetch the current one from the first server"
    )
    with ClusterProbe(kubeconfig) as probe:
        assert probe.unusable() == "Kubernetes API refused the kubeconfig's credentials (401 Unauthorized)"
        with pytest.raises(OperationError) as failed:
            probe.check_usable("platform")
        assert str(failed.value) == (
            f"platform: Kubernetes API refused the kubeconfig's credentials (401 Unauthorized); {renewal}"
        )
        for read in (lambda: probe.secret_value("oscar", "oscar-manager", "password"), probe.workloads):
            with pytest.raises(OperationError) as failed:
                read()
            assert (
                str(failed.value)
                == f"Kubernetes API refused the kubeconfig's credentials (401 Unauthorized); {renewal}"
            )
    kube.accepted_token = KUBECONFIG_TOKEN
    kube.forbidden["/apis"] = "apis"
    with ClusterProbe(kubeconfig) as probe:
        assert probe.unusable() == "Kubernetes API refused the kubeconfig's credentials (403 Forbidden)"
        with pytest.raises(OperationError) as failed:
            probe.check_usable("platform")
        assert str(failed.value) == "platform: Kubernetes API refused the kubeconfig's credentials (403 Forbidden)"
    assert kube.calls[:2] == ["GET /apis/ (unauthorized)", "GET /apis/ (unauthorized)"]
    assert kube.calls[-2:] == ["GET /apis/", "GET /apis/"]


def test_up_stops_before_the_platform_stack_when_the_cluster_refuses_the_kubeconfig(
    state_home: Path, deployed: stack_runner.RecordingRunner, playbooks: list[PlaybookRun], kube: KubeApi
) -> None:
    kube.accepted_token = "renewed"
    with pytest.raises(OperationError) as failed:
        pipeline.converge(make_context(state_home, MemoryProvider()), SPEC)
    assert str(failed.value).startswith(
        "platform: Kubernetes API refused the kubeconfig's credentials (401 Unauthorized); its client certificate "
    )
    assert "up" not in deployed.operations(), "the stack's update never started"


def test_a_cluster_that_does_not_answer_is_one_line_for_each_read(state_home: Path, kube: KubeApi) -> None:
    kubeconfig = kube.write_kubeconfig(state_home / "kubeconfig")
    with ClusterProbe(kubeconfig) as probe:
        assert probe.unusable() is None
    kube.stop()
    with ClusterProbe(kubeconfig) as probe:
        assert probe.unusable() == "Kubernetes API unreachable (MaxRetryError)"
        with pytest.raises(OperationError) as failed:
            probe.check_usable("platform")
        assert str(failed.value) == "platform: Kubernetes API unreachable (MaxRetryError); is the cluster running?"
        for read in (lambda: probe.secret_value("oscar", "oscar-manager", "password"), probe.workloads):
            with pytest.raises(OperationError) as failed:
                read()
            assert str(failed.value) == "Kubernetes API unreachable (MaxRetryError); is the cluster running?"


def test_a_read_the_api_refuses_otherwise_names_the_read_and_the_status(state_home: Path, kube: KubeApi) -> None:
    """A 403 to a read (RBAC) is no refused kubeconfig: no renewal advice, the read and the status."""
    kubeconfig = kube.write_kubeconfig(state_home / "kubeconfig")
    kube.forbidden["/api/v1/namespaces/oscar/secrets/oscar-manager"] = "secrets"
    kube.forbidden["/apis/apps/v1/deployments"] = "deployments"
    with ClusterProbe(kubeconfig) as probe:
        with pytest.raises(OperationError) as failed:
            probe.secret_value("oscar", "oscar-manager", "password")
        assert str(failed.value) == "Kubernetes API: reading secret oscar/oscar-manager: 403 Forbidden"
        with pytest.raises(OperationError) as failed:
            probe.workloads()
        assert str(failed.value) == "Kubernetes API: 403 Forbidden"


def test_down_keep_nodes_stopped_during_the_destroy_leaves_the_platform_for_up_to_install_again(
    state_home: Path,
    deployed: stack_runner.RecordingRunner,
    playbooks: list[PlaybookRun],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Ctrl-C during `pulumi destroy` (pulumi cancels, part of the platform is gone): the journal no longer
    claims the platform, so the next `up` installs it again, and `down --keep-nodes` run again destroys the rest."""
    provider = MemoryProvider()
    pipeline.converge(make_context(state_home, provider), SPEC)

    def stopped(session: stack_runner.FakeSession, on_event: object) -> dict[str, int]:
        session._record("destroy")
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(stack_runner.FakeSession, "destroy", stopped)
        with pytest.raises(KeyboardInterrupt):
            pipeline.remove_platform(make_context(state_home, provider))
    decisions = pipeline.plan(make_context(state_home, provider))
    assert [(d.phase, d.run, d.reason) for d in decisions][3:] == [
        ("platform", True, "never completed"),
        ("verify", True, "never completed"),
    ]
    again = pipeline.remove_platform(make_context(state_home, provider))
    assert again == ["platform stack (0 resource(s)), endpoints and cluster CA"]
    assert deployed.operations()[-2:] == ["destroy", "remove"]


def test_a_bundle_with_the_platform_makes_the_stack_install_offline(
    state_home: Path, deployed: stack_runner.RecordingRunner, playbooks: list[PlaybookRun], tmp_path: Path
) -> None:
    from oscar_deploy.nodes.bundle import load_manifest, save_manifest
    from tests.doubles.bundle import build_test_bundle

    provider = MemoryProvider()
    bundle = tmp_path / "bundle"
    build_test_bundle(bundle, "v1.33.3+k3s1", ("amd64",))
    pipeline.converge(make_context(state_home, provider, bundle=bundle), SPEC)
    config = next(call for call in deployed.calls if call.operation == "set_config").detail["config"]
    assert config[f"{STACK_PROJECT}:bundleDir"].value == "", "a k3s-only bundle leaves the platform online"

    manifest = load_manifest(bundle)
    manifest.platform = {"arches": ["amd64"], "images": [{"reference": "docker.io/library/alpine:3.22.1"}]}
    save_manifest(bundle, manifest)
    context = make_context(state_home, provider, bundle=bundle)
    decisions = {decision.phase: decision for decision in pipeline.plan(context)}
    assert decisions["platform"].run and "bundle" in decisions["platform"].reason
    pipeline.converge(make_context(state_home, provider, bundle=bundle), SPEC)
    configs = [call.detail["config"] for call in deployed.calls if call.operation == "set_config"]
    assert configs[-1][f"{STACK_PROJECT}:bundleDir"].value == str(bundle.resolve())


def _drifted(runner: stack_runner.RecordingRunner) -> None:
    """The platform stack's next update finds what tests/data/pulumi/platform-drift-up-events.json describes."""
    stack = runner.stack(STACK_PROJECT, "demo")
    stack.events["up"] = load(DRIFT_EVENTS)
    stack.changes = dict(DRIFT_CHANGES)


def test_check_drift_refreshes_the_platform_and_names_what_it_made_again_and_put_back(
    state_home: Path, deployed: stack_runner.RecordingRunner, playbooks: list[PlaybookRun], fake: FakeOscar
) -> None:
    provider = MemoryProvider()
    pipeline.converge(make_context(state_home, provider), SPEC)
    _drifted(deployed)
    checking = make_context(state_home, provider)
    checking.check_drift = True
    planned = {decision.phase: decision for decision in pipeline.plan(checking)}
    assert (planned["platform"].run, planned["platform"].reason) == (True, DRIFT_REASON)
    assert (planned["verify"].run, planned["verify"].reason) == (True, VERIFY_DRIFT_REASON)

    checking = make_context(state_home, provider)
    checking.check_drift = True
    outcomes = {outcome.phase: outcome for outcome in pipeline.converge(checking, SPEC)}
    assert outcomes["platform"].decision.reason == DRIFT_REASON
    assert [call.detail["refresh"] for call in deployed.calls if call.operation == "up"] == [False, True]
    result = outcomes["platform"].result
    assert result is not None
    assert result.summary == [
        "checked for drift: made again: PersistentVolumeClaim minio/minio-data; put back: Deployment minio/minio, "
        "Secret minio/minio-root",
        f"OSCAR {fake.url}",
        f"dashboard {fake.url}/ui",
        f"MinIO {fake.s3_endpoint}",
    ]
    assert result.warnings == [EMPTIED_MINIO]
    record = ClusterState("demo").journal.get("platform")
    assert record is not None and record.details["drift"] == {
        "made_again": ["PersistentVolumeClaim minio/minio-data"],
        "put_back": ["Deployment minio/minio", "Secret minio/minio-root"],
        "replaced": [],
        "removed": [],
        "created": [],
    }
    printed = "\n".join(result.summary + result.warnings)
    assert all(secret not in printed for secret in (fake.password, fake.s3_access_key, fake.s3_secret_key))
    verified = outcomes["verify"].result
    assert verified is not None and verified.summary[0].startswith("smoke test passed"), "a repair is tested"


def test_check_drift_on_a_platform_that_matched_says_so_and_a_plain_up_leaves_the_platform_alone(
    state_home: Path, deployed: stack_runner.RecordingRunner, playbooks: list[PlaybookRun]
) -> None:
    provider = MemoryProvider()
    pipeline.converge(make_context(state_home, provider), SPEC)
    deployed.stack(STACK_PROJECT, "demo").changes = {"same": 5}
    checking = make_context(state_home, provider)
    checking.check_drift = True
    outcomes = {outcome.phase: outcome for outcome in pipeline.converge(checking, SPEC)}
    result = outcomes["platform"].result
    assert result is not None
    assert result.summary[0] == "checked for drift: every object in the cluster matched the stack"
    assert (result.changed, result.warnings) == (False, [])
    plain = {outcome.phase: outcome for outcome in pipeline.converge(make_context(state_home, provider), SPEC)}
    assert plain["platform"].result is None and plain["platform"].decision.reason.startswith("up to date")
    assert [call.detail["refresh"] for call in deployed.calls if call.operation == "up"] == [False, True]


def test_check_drift_with_a_changed_spec_names_only_what_was_made_again(
    state_home: Path, deployed: stack_runner.RecordingRunner, playbooks: list[PlaybookRun]
) -> None:
    """An update for a spec change also updates objects: only what the refresh found gone is known to be drift."""
    provider = MemoryProvider()
    pipeline.converge(make_context(state_home, provider), SPEC)
    _drifted(deployed)
    bigger = SPEC + "platform: {minio: {storage_size: 40Gi}}\n"
    checking = make_context(state_home, provider, bigger)
    checking.check_drift = True
    outcomes = {outcome.phase: outcome for outcome in pipeline.converge(checking, bigger)}
    assert outcomes["platform"].decision.reason == "changed: platform"
    result = outcomes["platform"].result
    assert result is not None
    assert result.summary[:2] == [
        "3 resource(s) changed",
        "checked for drift: made again: PersistentVolumeClaim minio/minio-data",
    ]
    assert result.warnings == [EMPTIED_MINIO]
    assert [call.detail["refresh"] for call in deployed.calls if call.operation == "up"] == [False, True]


def test_up_and_plan_with_check_drift_on_the_command_line(
    state_home: Path,
    deployed: stack_runner.RecordingRunner,
    playbooks: list[PlaybookRun],
    fake: FakeOscar,
    monkeypatch: pytest.MonkeyPatch,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    provider = MemoryProvider()
    monkeypatch.setattr(pipeline, "cluster_provider", lambda *args: provider)
    (cli.cwd / "cluster.yaml").write_text(SPEC)
    first = cli("up")
    assert first.exit_code == 0, first.output
    assert first.stderr.count("warning:") == 0
    _drifted(deployed)

    planned = cli("plan", "--check-drift")
    assert planned.exit_code == 0, planned.output
    assert f"platform: runs: {DRIFT_REASON}" in planned.stdout.splitlines()
    assert "platform: skipped: up to date" in cli("plan").stdout

    checked = cli("up", "--check-drift")
    assert checked.exit_code == 0, checked.output
    assert (
        "platform: checked for drift: made again: PersistentVolumeClaim minio/minio-data; put back: Deployment "
        "minio/minio, Secret minio/minio-root"
    ) in checked.stdout.splitlines()
    assert f"warning: platform: {EMPTIED_MINIO}" in checked.stderr.splitlines()
    assert "warning:" not in checked.stdout
    for secret in (fake.password, fake.s3_access_key, fake.s3_secret_key):
        assert secret not in checked.output


def test_a_drift_report_names_repairs_only_when_the_inputs_did_not_change() -> None:
    def step(op: str, kind: str, object_id: str) -> ResourceStep:
        name = object_id.replace("/", "-")
        return ResourceStep(op, f"urn:pulumi:demo::oscar-platform::kubernetes:core/v1:{kind}::{name}", object_id)

    steps = [
        step("missing", "ConfigMap", "oscar/config.yaml"),
        step("create", "ConfigMap", "oscar/config.yaml"),
        step("replace", "PersistentVolumeClaim", "oscar-svc/oscar-pvc"),
        step("update", "Service", "minio/minio"),
        step("delete", "Service", "minio/old"),
        step("create", "Service", "oscar/new"),
    ]
    repairs = DriftReport.of(steps, repairs_only=True)
    assert repairs.line() == (
        "checked for drift: made again: ConfigMap oscar/config.yaml; put back: Service minio/minio; replaced: "
        "PersistentVolumeClaim oscar-svc/oscar-pvc; removed: Service minio/old; created: Service oscar/new"
    )
    assert repairs.emptied_claims() == [
        "PersistentVolumeClaim oscar-svc/oscar-pvc was replaced by an EMPTY one: the data it held is gone; restore "
        "it from a backup if you have one"
    ]
    with_changes = DriftReport.of(steps, repairs_only=False)
    assert with_changes.line() == "checked for drift: made again: ConfigMap oscar/config.yaml"
    assert with_changes.emptied_claims() == [], "a replace the spec asked for is no drift"
    assert DriftReport.of(steps[2:], repairs_only=False).line() == (
        "checked for drift: no object was missing from the cluster"
    )
