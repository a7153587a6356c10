"""`oscar-deploy autoscaler run` and `status`: the runtime put together for one cluster, and what it logged.

Where it runs, per target (the power manager must be able to act from there; the README says the same):

* local: on the machine that runs the node containers, i.e. where `up` ran: it stops and starts them with
  podman, and reaches the API through the port published on 127.0.0.1.
* aws: on the machine holding the cluster's state folder (or any that has it): it calls EC2's API with its own
  credentials (`autoscaler/aws-credentials`, an IAM user limited to `ec2_power_policy`), else the profile the
  spec names. Not on a worker: it would power off the machine it runs on.
* openstack: likewise, with its own clouds.yaml (`autoscaler/clouds.yaml`, e.g. an application credential),
  else the spec's cloud entry from the usual places.
* static: on a machine in the boards' LAN, where `up` ran: wake-on-LAN is a broadcast that does not cross
  routers, and SSH reaches the boards from there. Not on a board it powers.

Everything it keeps is in `<state folder>/autoscaler/` (see `decisions`): the decisions log, its state, its
lock, and its own kubeconfig for the `oscar-autoscaler` ServiceAccount, made once from the cluster's token
Secret (the admin kubeconfig is used for that read only, never by the loop).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from oscar_deploy.autoscaler.decisions import LOG_NAME, STATE_NAME, DecisionsLog, load_memory, run_lock, running_pid
from oscar_deploy.autoscaler.model import NodeTemplate, PolicyConfig
from oscar_deploy.autoscaler.snapshot import PowerRecord
from oscar_deploy.platform.autoscaler import AUTOSCALER_NAMESPACE, AUTOSCALER_TOKEN_SECRET
from oscar_deploy.providers.power import PowerManager
from oscar_deploy.state.lock import AUTOSCALER_ROUND, hold_if_free
from oscar_deploy.support.errors import OperationError, UserInputError
from oscar_deploy.support.files import atomic_write, read_private_file

if TYPE_CHECKING:
    from oscar_deploy.spec.models import ClusterSpec
    from oscar_deploy.state.folder import ClusterState

FIRST_CTRL_C = "stopping once the round under way ends (Ctrl-C again stops it at once)"
# Boot-time estimates until this cluster's own boots are measured (power-on to Ready).
DEFAULT_BOOT_SECONDS = {"local": 30.0, "aws": 120.0, "openstack": 180.0, "static": 120.0}


def folder_of(state: ClusterState) -> Path:
    return state.path / "autoscaler"


def kubeconfig_text(server: str, certificate_authority: str | None, token: str) -> str:
    """A kubeconfig for the oscar-autoscaler ServiceAccount's token (pure)."""
    cluster: dict[str, Any] = {"server": server}
    if certificate_authority:
        cluster["certificate-authority-data"] = certificate_authority
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": "oscar-autoscaler", "user": {"token": token}}],
        "contexts": [{"name": "oscar-autoscaler", "context": {"cluster": "cluster", "user": "oscar-autoscaler"}}],
        "current-context": "oscar-autoscaler",
    }
    return yaml.safe_dump(config, sort_keys=False)


def refuse_while_running(command: str, state: ClusterState) -> None:
    """`command` removes the cluster's nodes: refuse while its autoscaler runs, which would power workers on
    meanwhile and go on failing after."""
    pid = running_pid(folder_of(state))
    if pid is not None:
        raise UserInputError(
            f"{command}: the autoscaler of cluster {state.name} runs (pid {pid or 'unknown'}) and would power workers "
            f"on while they are removed; stop it first (`systemctl --user stop oscar-autoscaler@{state.name}` for the "
            "service)"
        )


def ensure_kubeconfig(state: ClusterState) -> Path:
    """The autoscaler's own kubeconfig, written (0600) from the ServiceAccount's token Secret the first time."""
    path = folder_of(state) / "kubeconfig"
    if path.is_file():
        read_private_file(path, "the autoscaler's Kubernetes token")
        return path
    admin = state.kubeconfig_file
    if not admin.is_file():
        raise UserInputError(f"cluster {state.name}: no kubeconfig in {state.path}; run `oscar-deploy up` first")
    server, certificate_authority = _api_server_of(admin)
    from oscar_deploy.platform.probe import ClusterProbe

    with ClusterProbe(admin) as probe:
        token = probe.secret_value(AUTOSCALER_NAMESPACE, AUTOSCALER_TOKEN_SECRET, "token")
    if not token:
        raise OperationError(
            f"cluster {state.name}: no token in secret {AUTOSCALER_NAMESPACE}/{AUTOSCALER_TOKEN_SECRET} (the "
            "autoscaler's ServiceAccount); set platform.autoscaler.enabled: true and run `oscar-deploy up`"
        )
    text = kubeconfig_text(server, certificate_authority, token)
    folder_of(state).mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, text, 0o600)
    return path


def _api_server_of(admin: Path) -> tuple[str, str | None]:
    """The API server's address and CA data that the cluster's admin kubeconfig names (its first cluster)."""
    try:
        data = yaml.safe_load(read_private_file(admin, "the cluster's admin credentials"))
    except yaml.YAMLError:
        data = None
    clusters = data.get("clusters") if isinstance(data, dict) else None
    first = clusters[0] if isinstance(clusters, list) and clusters and isinstance(clusters[0], dict) else {}
    cluster = first.get("cluster")
    if not isinstance(cluster, dict) or not isinstance(cluster.get("server"), str) or not cluster["server"]:
        raise OperationError(f"{admin}: names no API server; fetch it again with `oscar-deploy up`")
    authority = cluster.get("certificate-authority-data")
    return cluster["server"], authority if isinstance(authority, str) else None


def power_manager_for(spec: ClusterSpec, state: ClusterState) -> tuple[PowerManager, str]:
    """The power manager of the spec's target, and which credentials it uses (for the log)."""
    folder = folder_of(state)
    if spec.target == "local":
        from oscar_deploy.providers.local.provider import LocalProvider
        from oscar_deploy.providers.power import ProviderPower

        return ProviderPower(LocalProvider(state)), "podman on this machine"
    if spec.target == "static":
        from oscar_deploy.providers.static.power import CommandPower
        from oscar_deploy.providers.static.provider import StaticProvider

        assert spec.static is not None
        provider = StaticProvider(state, Path(spec.static.inventory))
        settings = spec.static
        commands = CommandPower(provider.nodes, settings.power_on_command or [], settings.power_off_command or [])
        return commands, "the commands of static.power_on_command and static.power_off_command"
    if spec.target == "aws":
        from oscar_deploy.providers.aws.power import Ec2Power

        assert spec.aws is not None
        credentials = folder / "aws-credentials"
        if credentials.is_file():
            return Ec2Power.connect(spec.name, spec.aws.region, credentials, None), str(credentials)
        where = f"profile {spec.aws.profile}" if spec.aws.profile else "the environment"
        return Ec2Power.connect(spec.name, spec.aws.region, None, spec.aws.profile), (
            f"{where} (no {credentials}: the deploying credentials, not least-privilege ones)"
        )
    if spec.target == "openstack":
        from oscar_deploy.providers.openstack.power import OpenStackPower, connect_cloud

        assert spec.openstack is not None
        clouds = folder / "clouds.yaml"
        own = clouds.is_file()
        connection = connect_cloud(spec.openstack.cloud, clouds if own else None)
        nova = OpenStackPower(connection, spec.name, spec.openstack.worker_power_off)
        return nova, str(clouds) if own else f"cloud {spec.openstack.cloud} (no {clouds}: the deploying credentials)"
    raise UserInputError(f"target {spec.target}: the autoscaler has no power manager for it")


def config_maker(spec: ClusterSpec) -> Callable[[tuple[NodeTemplate, ...], float], PolicyConfig]:
    from oscar_deploy.autoscaler.spec_adapter import from_spec

    def make(templates: tuple[NodeTemplate, ...], boot_estimate: float) -> PolicyConfig:
        return from_spec(spec, templates, boot_time_estimate=boot_estimate)

    return make


def run_autoscaler(spec: ClusterSpec, state: ClusterState, once: bool) -> None:
    """Run the loop in the foreground until SIGTERM or SIGINT (or one round with `once`). The first signal
    stops it after its current round (a Ctrl-C is told so); a second one at once (a power command running is
    stopped with it, and what the round did up to then is saved and logged)."""
    if not spec.platform.autoscaler.enabled:
        raise UserInputError(
            f"cluster {spec.name}: platform.autoscaler.enabled is false; set it to true in the spec (and run "
            "`oscar-deploy up` so the cluster has the autoscaler's ServiceAccount)"
        )
    state.require()
    folder = folder_of(state)
    with run_lock(folder, spec.name):
        kubeconfig = ensure_kubeconfig(state)
        power, credentials = power_manager_for(spec, state)
        from kubernetes import config as kube_config

        from oscar_deploy.autoscaler.drain import NodeActions
        from oscar_deploy.autoscaler.observer import ClusterObserver
        from oscar_deploy.autoscaler.runtime import Runtime, Settings

        try:
            api_client = kube_config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        except (kube_config.ConfigException, yaml.YAMLError, KeyError, TypeError) as exc:
            raise UserInputError(
                f"{kubeconfig}: not a usable kubeconfig ({str(exc).splitlines()[0][:120]}); remove it and run again "
                "to write it anew from the cluster"
            ) from None
        log = DecisionsLog(folder / LOG_NAME)
        stop = threading.Event()
        received: list[str] = []

        def on_signal(number: int, frame: object) -> None:
            received.append(signal.Signals(number).name)
            if stop.is_set():
                raise KeyboardInterrupt  # the second signal: stop now, in the middle of the round
            stop.set()
            if number == signal.SIGINT:  # someone at the terminal; a service manager's SIGTERM needs no answer
                sys.stderr.write(FIRST_CTRL_C + "\n")

        previous = {number: signal.signal(number, on_signal) for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            observer = ClusterObserver(api_client)
            observer.start()
            settings = Settings(
                cluster=spec.name,
                target=spec.target,
                period=float(spec.platform.autoscaler.period),
                config_for=config_maker(spec),
                default_boot=DEFAULT_BOOT_SECONDS[spec.target],
                credentials=f"power: {credentials}; Kubernetes: {kubeconfig}",
            )
            runtime = Runtime(
                observer,
                power,
                NodeActions(api_client),
                settings,
                folder,
                log,
                round_guard=lambda: hold_if_free(state.lock_file, spec.name, AUTOSCALER_ROUND),
            )
            runtime.run(stop, once=once, reason=lambda: received[0] if received else "stopped")
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            api_client.close()
    # Stopped cleanly either way: SIGTERM (a service manager) ends with 0; Ctrl-C ends as it does for every
    # command, `interrupted` and 130.
    if received[:1] == ["SIGINT"]:
        raise KeyboardInterrupt


def status_data(state: ClusterState, last: int) -> dict[str, Any]:
    """Whether the autoscaler runs (and why its rounds wait, if they do), its last start and stop, its last `last`
    decisions and its latest notes."""
    if last < 1:
        raise UserInputError(f"--last {last}: must be 1 or more")
    folder = folder_of(state)
    entries = DecisionsLog(folder / LOG_NAME).entries()
    rows: list[dict[str, str]] = []
    notes: list[str] = []
    counts: dict[str, int] = {}
    starts = [entry for entry in entries if entry.get("event") == "start"]
    stops = [entry for entry in entries if entry.get("event") == "stop"]
    paused = ""  # why rounds wait, from the latest pause with no start, resume or stop after it
    for entry in entries:
        time = entry["time"]  # a str: entries() skips lines without one
        if entry.get("event") in ("start", "resume", "stop"):
            paused = ""
        elif entry.get("event") == "pause":
            paused = str(entry.get("reason", "")) or "paused"
        if entry.get("event") == "round":
            for decision in _objects(entry.get("decisions")):
                rows.append({"time": time, **{key: str(decision.get(key, "")) for key in _ROW_KEYS}})
            for step in _objects(entry.get("steps")):
                rows.append({"time": time, "reason": "", **{key: str(step.get(key, "")) for key in _STEP_KEYS}})
            listed, counted = entry.get("notes"), entry.get("counts")
            notes = [str(note) for note in listed] if isinstance(listed, list) else []
            counts = {str(k): v for k, v in counted.items() if type(v) is int} if isinstance(counted, dict) else {}
        elif entry.get("event") == "error":
            rows.append({"time": time, "action": "error", "node": "", "reason": "", "outcome": str(entry.get("error"))})
        elif entry.get("event") in ("pause", "resume"):
            reason = str(entry.get("reason", ""))
            rows.append({"time": time, "action": str(entry["event"]), "node": "", "reason": reason, "outcome": ""})
    pid = running_pid(folder)
    return {
        "cluster": state.name,
        "running": pid is not None,
        "pid": pid,
        "paused": paused if pid is not None else None,
        "log": str(folder / LOG_NAME),
        "last_start": starts[-1] if starts else None,
        "last_stop": stops[-1] if stops else None,
        "decisions": rows[-last:],
        "notes": notes,
        "nodes": counts,
        "boot": _boot(load_memory(folder / STATE_NAME).record, starts[-1].get("target") if starts else None),
    }


def _boot(record: PowerRecord, target: Any) -> dict[str, Any] | None:
    """The boot time the policy plans with, and whence: the boots measured, or the target's default."""
    default = DEFAULT_BOOT_SECONDS.get(target) if isinstance(target, str) else None
    if default is None and not record.boot_seconds:
        return None  # no boot measured and no (known) target in the log
    return {
        "estimate_seconds": record.boot_estimate(default or 0.0),  # the default only counts when nothing was measured
        "measured_boots": len(record.boot_seconds),
        "target_default_seconds": default,
    }


def _objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects of a list read from the log (a damaged part of an entry shows nothing, not a traceback)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


_ROW_KEYS = ("action", "node", "reason", "outcome")
_STEP_KEYS = ("action", "node", "outcome")
