"""The platform phases of `up`: `platform` applies the platform stack (stacks/platform through the Pulumi
runner) and waits until OSCAR answers with the cluster's credentials; `verify` runs the smoke test.

Both are declarative like the node phases. The platform's inputs are the spec's `platform` section, the pins
of the components it runs, the address the gateway is named after, the cluster the kubeconfig reaches and the
program itself; `verify` runs again whenever the platform changed. An object deleted or edited in the cluster by
hand is no input: `up --check-drift` runs the platform anyway, as an update that refreshes first (`pulumi up
--refresh`: Pulumi reads every object back, forgets those it no longer finds and makes them again, and puts
edited fields back), and names what it repaired. When the platform is up, its endpoints
are written to the state folder (`endpoints.yaml`, and the cluster CA's certificate `ca.crt` when the
certificates come from it), so `service`, `files` and `verify` find the cluster by name.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from oscar_deploy.iac import factory
from oscar_deploy.iac.operations import StackOperations
from oscar_deploy.iac.runner import MISSING, ConfigValue, OutputValue, ResourceStep, StackTarget
from oscar_deploy.nodes.bundle import previous_manifest
from oscar_deploy.nodes.model import Node
from oscar_deploy.pipeline.phases import Phase, PhaseContext, PhaseResult, up_to_date
from oscar_deploy.platform.model import MINIO_REGION, STACK_PROJECT, STATE_SECRET_NAMES
from oscar_deploy.platform.objects import local_data_claims
from oscar_deploy.platform.probe import ClusterProbe
from oscar_deploy.services.client import OscarClient
from oscar_deploy.services.verify import format_result, verify_cluster
from oscar_deploy.spec.catalogue import load_catalogue
from oscar_deploy.state.endpoints import (
    ENDPOINTS_FILE_NAME,
    OscarAccess,
    PlatformEndpoints,
    access_from_state,
    write_endpoints,
)
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.state.journal import PhaseRecord
from oscar_deploy.support.errors import OperationError
from oscar_deploy.support.files import atomic_write
from oscar_deploy.support.layers import layer_dir
from oscar_deploy.support.progress import LiveDisplay, TransferDisplay

STACK = "platform"
CLAIM_KIND = "PersistentVolumeClaim"
CA_FILE_NAME = "ca.crt"
# Images are pulled on first install; on small boards that takes a while.
READY_TIMEOUT = 1800.0
READY_POLL = 10.0
# Catalogue entries the platform runs (k3s is the node phases' input).
PLATFORM_COMPONENTS = (
    "knative_serving",
    "kourier",
    "minio",
    "cert_manager",
    "gateway_api",
    "traefik_chart",
    "nfs_provisioner",
    "metrics_server",
    "oscar",
    "faas_supervisor",
    "fwatchdog",
    "bin_populator",
)


# --- inputs -------------------------------------------------------------------------------------------------


def first_server(context: PhaseContext) -> Node:
    server = next((node for node in context.nodes if node.role == "server"), None)
    if server is None:
        raise OperationError(f"cluster {context.spec.name}: no server node; run `oscar-deploy up` to make one")
    return server


def program_digest() -> str:
    """Digest of the platform program (the package's platform layer and the stack project)."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent / "platform"
    for root in (package, layer_dir("stacks") / STACK):
        for path in sorted(root.rglob("*.py")) + sorted(root.glob("*.yaml")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def platform_bundle(context: PhaseContext) -> Path | None:
    """The cluster's bundle when it carries the platform (then the stack installs offline from it), else None."""
    if context.bundle is None:
        return None
    manifest = previous_manifest(context.bundle)
    return context.bundle.resolve() if manifest is not None and manifest.platform else None


def platform_inputs(context: PhaseContext) -> dict[str, Any]:
    catalogue = load_catalogue().with_overrides(context.spec.versions)
    bundle = platform_bundle(context)
    server = first_server(context) if any(node.role == "server" for node in context.nodes) else None
    return {
        "platform": context.spec.platform.model_dump(mode="json"),
        "versions": {key: catalogue[key].image_reference or catalogue[key].version for key in PLATFORM_COMPONENTS},
        "public_address": server.ssh_host if server else None,
        "gateway_port": server.https_port if server else None,
        "cluster": f"{server.name} {server.instance}" if server else None,
        "backend": context.spec.iac.backend,
        "program": program_digest(),
        # Offline from a bundle: its platform part (images, manifests, files) is what the stack installs.
        "bundle": _platform_digest(bundle) if bundle else None,
    }


def _platform_digest(bundle: Path) -> str:
    manifest = previous_manifest(bundle)
    platform = json.dumps(manifest.platform if manifest else {}, sort_keys=True)
    return hashlib.sha256(platform.encode()).hexdigest()[:16]


def verify_inputs(context: PhaseContext) -> dict[str, Any]:
    record = context.state.journal.get("platform")
    catalogue = load_catalogue().with_overrides(context.spec.versions)
    return {"platform": record.digest if record else None, "image": catalogue["smoke_test_image"].image_reference}


# --- platform -------------------------------------------------------------------------------------------------


def platform(context: PhaseContext, record: PhaseRecord | None) -> PhaseResult:
    """Apply the platform stack, save the endpoints and the CA, wait until OSCAR answers."""
    spec, state, progress = context.spec, context.state, context.progress
    server = first_server(context)
    secrets = {field: state.secret(name) for field, name in STATE_SECRET_NAMES.items()}
    spec_copy = state.path / "pulumi" / "spec.yaml"
    atomic_write(spec_copy, yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False))
    config = {
        f"{STACK_PROJECT}:specFile": ConfigValue(str(spec_copy)),
        f"{STACK_PROJECT}:publicAddress": ConfigValue(server.ssh_host or ""),
        f"{STACK_PROJECT}:manifestCache": ConfigValue(str(state.path / "pulumi" / "manifests")),
        f"{STACK_PROJECT}:oscarPassword": ConfigValue(secrets["oscar_password"], secret=True),
        f"{STACK_PROJECT}:minioAccessKey": ConfigValue(secrets["minio_access_key"], secret=True),
        f"{STACK_PROJECT}:minioSecretKey": ConfigValue(secrets["minio_secret_key"], secret=True),
        "kubernetes:kubeconfig": ConfigValue(state.kubeconfig_file.read_text(encoding="utf-8"), secret=True),
    }
    # Always set: an empty value clears the bundle an earlier `up` gave (set-all only adds and replaces keys).
    bundle = platform_bundle(context)
    config[f"{STACK_PROJECT}:bundleDir"] = ConfigValue(str(bundle) if bundle else "")
    # Checked first: the stack's Kubernetes provider would fail later, in its own words and without the fix.
    with ClusterProbe(state.kubeconfig_file) as probe:
        probe.check_usable("platform")
    operations = platform_stack(context, secrets.values())
    result = operations.up(config, refresh=context.check_drift)
    outputs = result.outputs
    oscar_url = with_port(_text(outputs, "oscarUrl"), server.https_port)
    dashboard_url = with_port(_text(outputs, "dashboardUrl"), server.https_port)
    minio_url = with_port(_text(outputs, "minioUrl"), server.https_port)
    access = OscarAccess(oscar_url, spec.platform.oscar.username, secrets["oscar_password"], cluster_id=spec.name)
    ca_reference = outputs.get("caCertificateSecret")
    with ClusterProbe(state.kubeconfig_file) as probe:
        ca_file = None
        if ca_reference is not None:
            ca_file = save_ca(state, probe, ca_reference.value, READY_TIMEOUT, progress.note)
            access = OscarAccess(access.url, access.user, access.password, ca_file=ca_file, cluster_id=spec.name)
        wait_until_ready(access, probe, READY_TIMEOUT, progress.note)
    write_endpoints(
        state,
        PlatformEndpoints(
            oscar_url=oscar_url,
            oscar_user=spec.platform.oscar.username,
            minio_url=minio_url,
            minio_access_key=secrets["minio_access_key"],
            minio_region=MINIO_REGION,
            ca_file=CA_FILE_NAME if ca_file else None,
        ),
    )
    changed = sum(count for operation, count in result.changes.items() if operation != "same")
    summary = [f"{changed} resource(s) changed" if changed else "every resource already as declared"]
    details: dict[str, Any] = {"changes": result.changes}
    warnings: list[str] = []
    if context.check_drift:
        drift = DriftReport.of(result.steps, repairs_only=up_to_date(platform_inputs(context), record))
        # Only a drift check with unchanged inputs can tell a repair from a change the spec asked for.
        summary = [drift.line()] if drift.repairs_only else [*summary, drift.line()]
        details["drift"] = drift.as_dict()
        warnings = drift.emptied_claims()
    summary += [f"OSCAR {oscar_url}", f"dashboard {dashboard_url}", f"MinIO {minio_url}"]
    if ca_file:
        summary.append(f"certificates from the cluster CA: {ca_file}")
    return PhaseResult(changed=bool(changed), summary=summary, details=details, warnings=warnings)


@dataclass(frozen=True)
class DriftReport:
    """What an update that refreshed first repaired, by the resources it acted on (`UpdateResult.steps`).

    An object the refresh no longer found and the update then created was deleted by hand and is made again.
    With `repairs_only` (the platform's inputs are those of its last update) every other change is a repair too:
    an update puts back fields edited by hand, a replace makes an object again that could not be changed in
    place; otherwise they may be what the spec's change asked for, and only the objects made again are named."""

    made_again: tuple[ResourceStep, ...]
    put_back: tuple[ResourceStep, ...]
    replaced: tuple[ResourceStep, ...]
    removed: tuple[ResourceStep, ...]
    created: tuple[ResourceStep, ...]
    repairs_only: bool

    @classmethod
    def of(cls, steps: Sequence[ResourceStep], repairs_only: bool) -> DriftReport:
        missing = {step.urn for step in steps if step.op == MISSING}

        def acted(op: str, made_again: bool = False) -> tuple[ResourceStep, ...]:
            if not (repairs_only or made_again):
                return ()
            found = [step for step in steps if step.op == op and (step.urn in missing) == made_again]
            return tuple(sorted(found, key=lambda step: step.label))

        return cls(
            made_again=acted("create", made_again=True),
            put_back=acted("update"),
            replaced=acted("replace"),
            removed=acted("delete"),
            created=acted("create"),
            repairs_only=repairs_only,
        )

    def as_dict(self) -> dict[str, list[str]]:
        """Each kind of repair with the objects it touched, as `Kind namespace/name`."""
        return {
            "made_again": [step.label for step in self.made_again],
            "put_back": [step.label for step in self.put_back],
            "replaced": [step.label for step in self.replaced],
            "removed": [step.label for step in self.removed],
            "created": [step.label for step in self.created],
        }

    def line(self) -> str:
        parts = [f"{what.replace('_', ' ')}: {', '.join(labels)}" for what, labels in self.as_dict().items() if labels]
        if parts:
            return f"checked for drift: {'; '.join(parts)}"
        if self.repairs_only:
            return "checked for drift: every object in the cluster matched the stack"
        return "checked for drift: no object was missing from the cluster"

    def emptied_claims(self) -> list[str]:
        """One warning per claim made again or replaced: the volume behind it is a new, empty one."""
        known = local_data_claims()
        return [
            f"{step.label} was {how}: the data it held{f' ({known[step.id]})' if step.id in known else ''} is gone; "
            "restore it from a backup if you have one"
            for how, steps in (("made again EMPTY", self.made_again), ("replaced by an EMPTY one", self.replaced))
            for step in steps
            if step.kind == CLAIM_KIND
        ]


def platform_stack(context: PhaseContext, secrets: Any = ()) -> StackOperations:
    """The cluster's platform stack, through the runner (the Pulumi CLI is installed first when missing)."""
    with TransferDisplay() as reporter:
        runner = factory.create_runner(context.state, context.spec.iac.backend, reporter, context.progress.note)
    session = runner.select(StackTarget.bundled(STACK, context.spec.name))
    return StackOperations(session, display=LiveDisplay(), secrets=secrets, break_lock=context.break_lock)


def with_port(url: str, port: int | None) -> str:
    """`url` reached on `port` of its host (a gateway published on another port than 443, as local nodes do)."""
    if port is None or port == 443:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


def _text(outputs: dict[str, OutputValue], key: str) -> str:
    output = outputs.get(key)
    if output is None or not isinstance(output.value, str):
        raise OperationError(f"platform stack: output {key} missing; the stack program is not the one expected")
    return output.value


def save_ca(
    state: ClusterState, probe: ClusterProbe, reference: Any, timeout: float, note: Callable[[str], None]
) -> Path:
    """The cluster CA's certificate, once cert-manager made it, saved in the state folder for clients."""
    deadline = time.monotonic() + timeout
    namespace, name, key = reference["namespace"], reference["name"], reference["key"]
    while True:
        pem = probe.secret_value(namespace, name, key)
        if pem:
            path = state.path / CA_FILE_NAME
            atomic_write(path, pem, 0o644)
            return path
        if time.monotonic() > deadline:
            raise OperationError(
                f"platform: the cluster CA (secret {namespace}/{name}) did not appear in {timeout:.0f} s; look at "
                f"`kubectl -n {namespace} get certificate,certificaterequest`"
            )
        note(f"waiting for the cluster CA (secret {namespace}/{name})")
        time.sleep(READY_POLL)


def wait_until_ready(
    access: OscarAccess,
    probe: ClusterProbe,
    timeout: float,
    note: Callable[[str], None],
    poll: float = READY_POLL,
) -> None:
    """Until OSCAR answers /health and /system/info with the cluster's credentials; on timeout, one line per
    component that is not ready, read from the cluster."""
    deadline = time.monotonic() + timeout
    last = ""
    with OscarClient(access, retries=0) as client:
        while True:
            try:
                client.health()
                client.info()
                return
            except OperationError as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                break
            waiting = [workload.line() for workload in probe.unready()]
            note(f"waiting for the platform: {'; '.join(waiting[:3]) or last}")
            time.sleep(poll)
    unready = probe.unready()
    lines = [f"platform: OSCAR did not answer in {timeout:.0f} s ({last})"]
    lines += [f"not ready: {workload.line()}" for workload in unready[:10]]
    if unready:
        first = unready[0]
        lines.append(f"look at: kubectl -n {first.namespace} describe {first.kind.lower()} {first.name}")
    raise OperationError("\n".join(lines))


# --- status ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformStatus:
    """What `status` says of the platform: where OSCAR is, whether it answers, which components are not ready."""

    oscar_url: str
    answers: str
    workloads: int
    not_ready: list[str]
    problem: str | None = None

    def lines(self) -> list[str]:
        lines = [f"platform: OSCAR {self.oscar_url}: {self.answers}"]
        if self.problem:
            lines.append(f"platform: components unknown ({self.problem})")
        else:
            lines.append(f"platform: {self.workloads - len(self.not_ready)} of {self.workloads} component(s) ready")
            lines += [f"  not ready: {line}" for line in self.not_ready]
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "oscar_url": self.oscar_url,
            "oscar": self.answers,
            "components": self.workloads,
            "not_ready": self.not_ready,
            "problem": self.problem,
        }


def platform_status(state: ClusterState) -> PlatformStatus | None:
    """The platform's health, read from OSCAR's /health and the cluster's workloads; None without a platform."""
    if not (state.path / ENDPOINTS_FILE_NAME).is_file():
        return None
    access = access_from_state(state)
    try:
        with OscarClient(access.oscar, timeout=10, retries=0) as client:
            answers = f"answers ({client.health()})"
    except OperationError as exc:
        answers = f"does not answer ({exc})"
    try:
        with ClusterProbe(state.kubeconfig_file) as probe:
            workloads = probe.workloads()
    except OperationError as exc:
        return PlatformStatus(access.oscar.url, answers, 0, [], str(exc))
    not_ready = [workload.line() for workload in workloads if not workload.ready]
    return PlatformStatus(access.oscar.url, answers, len(workloads), not_ready)


# --- verify ---------------------------------------------------------------------------------------------------


def verify(context: PhaseContext, record: PhaseRecord | None) -> PhaseResult:
    """The smoke test: a file uploaded to MinIO is processed into the output bucket, `/run` answers."""
    lines: list[str] = []
    image = load_catalogue().with_overrides(context.spec.versions)["smoke_test_image"].image_reference
    report = verify_cluster(access_from_state(context.state), lambda step: lines.extend(format_result(step)), image)
    for line in lines:
        context.progress.note(f"  {line}")
    failure = report.first_failure
    if failure is not None:
        raise OperationError("\n".join([f"verify: {failure.step} failed: {failure.detail}", *lines[-1:]]))
    return PhaseResult(changed=False, summary=[f"smoke test passed ({len(report.results)} steps)"])


PLATFORM_PHASES: tuple[Phase, ...] = (
    Phase(
        "platform",
        platform_inputs,
        platform,
        drift_check="the stack reads every object back from the cluster, then puts back what differs",
    ),
    Phase(
        "verify",
        verify_inputs,
        verify,
        drift_check="the smoke test again, through the platform the drift check left",
    ),
)
