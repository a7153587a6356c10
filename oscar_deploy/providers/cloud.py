"""What the OpenStack and AWS providers share: nodes made by one Pulumi stack per cluster, read back from the
stack's outputs, reached over SSH with host keys pinned before the first connection.

The providers sit below `iac` (the Pulumi runner) in the layer order, so they never import it: the pipeline
hands each cloud provider an `InfrastructureStacks` (built on the runner in pipeline/infrastructure.py), and a
provider says what to run as a `StackProgram`: the project, the inline program (the cloud's `declare` with its
input), the provider's stack config (never secret) and the environment of the pulumi process (a cloud login
token travels there, never through stack config, which the Automation API puts on the command line).

What a cloud cluster keeps in its state folder:

    infrastructure.json  the nodes as the stack's last update exported them, each with its power state, and when
                         that was written; `status` reads them from here without a cloud call (with the workers
                         whose VM was deleted outside oscar-deploy that are on their way out: `gone`). They are as
                         fresh as the last `up`, `scale`, `down` or power change made through this state folder:
                         a VM stopped or deleted in the cloud's console, or a change made from another machine
                         sharing the backend, shows only after the next `up`. Also the digest of the last plan
                         the preflight passed, so the preflight runs once per plan change.
    ssh/host_keys.json   each node's SSH host key pair (0600), generated here and handed to the program for
                         cloud-init, so the controller knows the key before the VM first boots
    ssh/known_hosts      the public halves, pinned under every address of the node
    ssh/config           what every ssh to the nodes uses: the cluster's key, that known_hosts only, and
                         StrictHostKeyChecking yes; passed with -F, which ssh also passes to the ProxyJump hop
                         through the first server (options given with -o are not passed on)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shlex
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from oscar_deploy.nodes.hostkeys import RefusedHostKey, pinned_key_refused
from oscar_deploy.nodes.model import Node, NodeState, PlannedNode, node_sort_key
from oscar_deploy.providers.base import ApplyResult, ScalingMode, SshProbe, counted_plan, probe_ssh
from oscar_deploy.providers.gaps import PreflightReport
from oscar_deploy.providers.vm import HostKey, NodeRecord, generate_host_key
from oscar_deploy.spec.models import ClusterSpec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.checks import Check, find_tool
from oscar_deploy.support.errors import OperationError, OscarDeployError, UserInputError, printable
from oscar_deploy.support.extras import EXTRA_MODULES, install_command
from oscar_deploy.support.files import parse_json
from oscar_deploy.support.progress import Progress

INFRASTRUCTURE_FILE = "infrastructure.json"
HOST_KEYS_FILE = "host_keys.json"
# In INFRASTRUCTURE_FILE: the nodes `apply` is waiting for over SSH (new or started VMs that may still be booting).
AWAITING_SSH_KEY = "awaiting_ssh"
# In INFRASTRUCTURE_FILE: workers no longer wanted whose VM was deleted outside oscar-deploy. `apply` drops them
# from the stack (they are not made again) and hands them back for removal; they stay here, listed as missing by
# `nodes()`, until `remove` once they have left Kubernetes, so a removal that fails is taken up by the next `apply`.
GONE_KEY = "gone"
SSH_CONFIG_FILE = "config"
# A new VM boots, runs cloud-init and starts sshd: minutes on a busy cloud.
SSH_WAIT_SECONDS = 900.0
SSH_POLL_SECONDS = 5.0
# Answers in a row with a host key other than the pinned one after which the wait names the node at once. Never a
# boot stage: cloud-init's ssh module writes the pinned key in its network stage, which its systemd unit orders
# before sshd.service (and, on Debian and Ubuntu, before sysinit.target, so before a socket-activated ssh.socket
# too), so a booting VM answers with no key or with that one. The repeats only ride out an address still
# answering for the machine that held it before.
REFUSED_KEY_ANSWERS = 3


@dataclass(frozen=True)
class StackProgram:
    """One run of a cluster's infrastructure stack: which project, the inline program, the provider's stack config
    (plain values only), variables for the pulumi process (where a login token goes), and whether an update first
    reads every resource back from the cloud (`refresh`: Pulumi then forgets a VM deleted outside it, and the
    update makes it again)."""

    project: str
    program: Callable[[], None]
    config: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    refresh: bool = False


class InfrastructureStacks(Protocol):
    """The cluster's stacks as a cloud provider uses them (the stack is named after the cluster)."""

    def where(self) -> str:
        """The backend holding the stacks, for messages."""
        ...

    def exists(self, project: str) -> bool: ...

    def outputs(self, project: str) -> dict[str, Any]: ...

    def resources(self, project: str) -> list[str]:
        """The URNs of the resources the stack holds (none when there is no stack), those of an update that failed
        half-way included: its outputs still list only what the last completed update exported."""
        ...

    def preview(self, run: StackProgram) -> dict[str, int]: ...

    def up(self, run: StackProgram) -> dict[str, Any]:
        """Update the stack; returns its outputs (values)."""
        ...

    def destroy(self, run: StackProgram) -> dict[str, int]: ...

    def remove(self, project: str) -> None: ...


@dataclass(frozen=True)
class StackAccess:
    """How the cloud's Pulumi provider logs in for one run: stack config and environment of the pulumi process."""

    config: Mapping[str, str]
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)


def _declared(plan: Sequence[PlannedNode], existing: Mapping[str, NodeRecord]) -> list[PlannedNode]:
    """What the stack declares for `plan`: the planned nodes plus those that exist but are no longer planned (the
    caller drains them before `remove`), servers first."""
    planned = {node.name for node in plan}
    kept = [
        PlannedNode(record.name, record.role, record.arch) for name, record in existing.items() if name not in planned
    ]
    return sorted([*plan, *kept], key=lambda node: node_sort_key(node.name))


@dataclass(frozen=True)
class TaggedVm:
    """A VM the cloud lists with the cluster's tag (AWS) or metadata (OpenStack), in a state that is still billed
    (not terminated, deleted or on its way there)."""

    instance_id: str
    node: str  # its node tag (AWS) or metadata (OpenStack), "" when it has none
    name: str  # the VM's name (on AWS its Name tag), "" when it has none
    launched: datetime | None


@dataclass(frozen=True)
class CloudListing:
    """What one listing of the cloud says: the power state of each recorded node's VM (as `power_states`), and every
    VM that carries the cluster's tag."""

    states: dict[str, NodeState]
    tagged: list[TaggedVm]


def no_program() -> None:
    """The program of runs that never execute it (outputs, destroy, remove): declares nothing."""


def change_summary(changes: Mapping[str, int]) -> str:
    """Pulumi's counts per operation as one phrase: `2 to create, 1 to delete, 9 unchanged`."""
    words = {"create": "to create", "update": "to update", "replace": "to replace", "delete": "to delete"}
    parts = [f"{changes[key]} {label}" for key, label in words.items() if changes.get(key)]
    if changes.get("same"):
        parts.append(f"{changes['same']} unchanged")
    return ", ".join(parts) or "no resources"


class CloudProvider(ABC):
    """Nodes of one cluster as VMs of a Pulumi stack; the subclasses know their cloud (login, preflight, program,
    power)."""

    ssh_common_args = ""  # per node: each node's variables carry its own (ProxyJump only where needed)
    scaling: ScalingMode = "count"
    project = ""
    target = ""
    vm_type = ""  # the Pulumi type of a node's VM; the program names each VM `<cluster>-<node>`
    tag_name = ""  # what marks a VM as the cluster's (`tag oscar-deploy-cluster`, set to its name), for messages
    tag_scope = ""  # where VMs of clusters of the same name meet (`project`), for messages
    vms = ""  # what the cloud calls its VMs (`instances`), for messages
    login_settings = ""  # the spec keys that choose where the login reaches, for messages

    def __init__(self, spec: ClusterSpec, state: ClusterState, progress: Progress, stacks: InfrastructureStacks):
        self.spec = spec
        self.state = state
        self.progress = progress
        self.stacks = stacks

    # --- what each cloud provides -----------------------------------------------------------------------------
    @abstractmethod
    def preflight(self, to_create: Sequence[PlannedNode], new_cluster: bool) -> PreflightReport:
        """Every gap between the spec and the cloud for creating `to_create` (report.facts: the login)."""

    @abstractmethod
    def access(self, facts: Mapping[str, Any] | None) -> StackAccess:
        """The Pulumi provider's login, from a preflight's facts when one just ran, else by logging in."""

    @abstractmethod
    def program(self, nodes: Sequence[PlannedNode], host_keys: Mapping[str, HostKey], public_key: str) -> Any:
        """The inline program declaring `nodes` (servers first)."""

    @abstractmethod
    def set_power(self, record: NodeRecord, on: bool) -> None:
        """Start (on) or stop one VM through the cloud's SDK and wait until it is in that state."""

    @abstractmethod
    def listing(self, records: Sequence[NodeRecord], what: str) -> CloudListing:
        """One listing of the cloud: each recorded VM's state by node name (running, stopped, or missing for a VM
        the cloud no longer has: deleted, terminated; a VM in another state, being built or in error, is left out),
        and the VMs carrying the cluster's tag. `what` names what the caller lists, in its error."""

    @abstractmethod
    def delete_command(self, instance_id: str) -> str:
        """The cloud's own command line that deletes VM `instance_id` where this cluster lives."""

    def power_states(self, records: Sequence[NodeRecord]) -> dict[str, NodeState]:
        """Each recorded VM's state as the cloud reports it now, by node name (`listing`)."""
        return self._listing_for_states(records).states

    def _listing_for_states(self, records: Sequence[NodeRecord]) -> CloudListing:
        return self.listing(records, f"the {self.vms}' power states")

    def strays(self, held: Collection[str] = ()) -> list[TaggedVm]:
        """The VMs carrying the cluster's tag whose id is not in `held` (the ids the stack holds), from one listing:
        a VM an interrupted create made before the stack got its id (the next update made it again), or another
        cluster's of the same name in the same project or account and region. Oldest first."""
        listed = self.listing([], f"the {self.vms} carrying {self.tag_name}={self.spec.name}")
        found = [vm for vm in listed.tagged if vm.instance_id not in held]
        return sorted(found, key=lambda vm: (vm.launched or datetime.max.replace(tzinfo=UTC), vm.instance_id))

    def stray_line(self, vm: TaggedVm) -> str:
        """One line naming a stray VM: its node (else its name, when it has one), id, launch time and the command that
        deletes it."""
        if vm.node:
            which = f"node {vm.node}: VM {vm.instance_id}"
        else:
            which = f"VM {vm.instance_id}" + (f" (named {vm.name})" if vm.name else "")
        launched = f"{vm.launched.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if vm.launched else "at an unknown time"
        return printable(
            f"warning: {which}, launched {launched}, carries "
            f"{self.tag_name}={self.spec.name} but is not a VM of stack {self.project}/{self.spec.name}: a copy an "
            f"interrupted update left behind (or a VM of another cluster named {self.spec.name} in this "
            f"{self.tag_scope}), billed until deleted: {self.delete_command(vm.instance_id)}"
        )

    # --- Provider interface -----------------------------------------------------------------------------------
    def plan(self, spec: ClusterSpec, workers: int) -> list[PlannedNode]:
        return counted_plan(spec, workers, self.nodes())

    def apply(self, plan: Sequence[PlannedNode]) -> ApplyResult:
        """Preflight (once per plan change), then the stack up with the planned nodes plus those that exist but
        are no longer planned (the caller drains them before `remove`); stopped nodes are started, and planned
        workers whose VM was deleted outside oscar-deploy are made again (a deleted server is refused: the control
        plane went with it). A worker no longer planned whose VM was deleted is not declared (not made again only to
        be removed): it is handed back in `extra` all the same, as a node in state missing (see GONE_KEY). The cloud
        is asked once, before the update, for the VMs' states; a VM carrying the cluster's tag that the stack does
        not hold is named after the update (one listing more only when the first showed one, or when there was
        none)."""
        existing = {record.name: record for record in self.stack_records()}
        self._check_made_here(existing.values())
        listing = self._listing_for_states(list(existing.values())) if existing else None
        live = listing.states if listing else {}
        gone = [existing[name] for name in sorted(existing, key=node_sort_key) if live.get(name) == "missing"]
        self._check_servers_kept(gone, len(existing))
        planned = {node.name for node in plan}
        for record in gone:
            outcome = "making it again" if record.name in planned else "no longer wanted, so not made again"
            self.progress.note(
                f"node {record.name}: its VM {record.vm_name} was deleted outside oscar-deploy; {outcome}"
            )
        # Written before the update, which drops them from the stack.
        left = [record for record in self._gone_records() if record.name not in planned and record.name not in existing]
        left += [record for record in gone if record.name not in planned]
        self._set_gone(left)
        self.state.ensure_ssh_keypair()
        public_key = self.state.ssh_public_key.read_text(encoding="utf-8").strip()
        dropped = {record.name for record in left}
        declared = _declared(plan, {name: record for name, record in existing.items() if name not in dropped})
        to_create = [node for node in plan if node.name not in existing]
        digest = self._plan_digest(declared)
        facts: Mapping[str, Any] | None = None
        if to_create and self._cache().get("preflight") != digest:
            # An update that failed half-way made VMs its outputs do not list: the quota counts them as used
            # already, and this update keeps them (same names), so they are no new nodes.
            urns = self.stacks.resources(self.project)
            made = vms_in(urns, self.spec.name, self.vm_type)
            kept = [node.name for node in to_create if node.name in made]
            if kept:
                self.progress.note(
                    f"stack {self.project}/{self.spec.name} already holds the VMs of {', '.join(kept)} from an update "
                    "that did not finish; they are kept, not made again"
                )
            to_create = [node for node in to_create if node.name not in made]
            if to_create:
                with self.progress.step(f"preflight: can {self.target} hold {len(to_create)} new node(s)"):
                    report = self.preflight(to_create, new_cluster=not existing and not urns)
                for note in report.notes:
                    self.progress.note(note)
                report.raise_for_gaps()
                facts = report.facts
        access = self.access(facts)
        host_keys = self._host_keys(declared, persist=True)
        outputs = self.stacks.up(
            StackProgram(
                self.project,
                self.program(declared, host_keys, public_key),
                access.config,
                access.environment,
                refresh=bool(gone),
            )
        )
        records = records_from_outputs(outputs)
        recorded = {node.name: node.state for node in self.nodes()}
        states: dict[str, NodeState] = {}
        for record in records:
            before = existing.get(record.name)
            if before is None or before.instance_id != record.instance_id:
                states[record.name] = "running"  # made by this update
            else:
                states[record.name] = live.get(record.name) or recorded.get(record.name, "running")
        self._save(records, states, preflight=digest)
        held = {record.instance_id for record in records if record.instance_id}
        # A VM the first listing missed was made by this update; one it showed may have been deleted by it.
        if listing is None or any(vm.instance_id not in held for vm in listing.tagged):
            for vm in self.strays(held):
                self.progress.note(self.stray_line(vm))
        remade = {record.name for record in gone}
        extra = [node.name for node in declared if node.name not in planned] + [record.name for record in left]
        result = ApplyResult(nodes=[], extra=sorted(extra, key=node_sort_key))
        for node in plan:
            if node.name not in existing or node.name in remade:
                result.created.append(node.name)
            elif states.get(node.name) == "stopped":
                self.power_on(node.name, wait=False)
                result.started.append(node.name)
            else:
                result.unchanged.append(node.name)
        nodes = {node.name: node for node in self.nodes()}
        # A node an earlier run made or started but stopped waiting for (Ctrl-C, a timeout) may still be booting.
        unanswered = [name for name in self._cache().get(AWAITING_SSH_KEY) or [] if name in planned]
        fresh = [name for name in dict.fromkeys((*result.created, *result.started, *unanswered)) if name in nodes]
        missing = sorted(planned - set(nodes))
        if missing:
            raise OperationError(
                f"stack {self.project}/{self.spec.name}: no output for node(s) {', '.join(missing)}; the program "
                "did not declare them (run `oscar-deploy up` again, or report it)"
            )
        self._set_awaiting_ssh(fresh)
        self.wait_for_ssh([nodes[name] for name in fresh])
        self._set_awaiting_ssh([])
        result.nodes = self.nodes()
        return result

    def nodes(self) -> list[Node]:
        """The nodes as the last update exported them (the state folder's copy; no cloud call), and the workers
        whose VM was deleted outside oscar-deploy that are still to leave Kubernetes (state missing)."""
        cache = self._cache()
        gone = [{**entry, "state": "missing"} for entry in cache.get(GONE_KEY) or []]
        return self._recorded_nodes([*(cache.get("nodes") or []), *gone])

    def live_nodes(self) -> list[Node]:
        """`nodes()`, each with the power state its VM has now (one cloud call; writes nothing). `nodes()` shows
        the state this state folder last set; a worker the autoscaler, the cloud's console or another machine
        stopped since is `stopped` only here."""
        entries = self._cache().get("nodes") or []
        recorded = self.nodes()
        if not entries:
            return recorded
        powered = self.power_states([NodeRecord.from_output(entry) for entry in entries])
        return [replace(node, state=powered.get(node.name, node.state)) for node in recorded]

    def _recorded_nodes(self, entries: Sequence[Mapping[str, Any]]) -> list[Node]:
        nodes = [self._node(NodeRecord.from_output(entry), entry.get("state", "running")) for entry in entries]
        return sorted(nodes, key=lambda node: node_sort_key(node.name))

    def destroy(self) -> list[str]:
        """Every resource of the stack (VMs, addresses, network, security group, key pair), then the stack."""
        removed: list[str] = []
        if self.stacks.exists(self.project):
            held = {record.instance_id for record in self.stack_records() if record.instance_id}
            access = self.access(None)
            try:
                changes = self.stacks.destroy(StackProgram(self.project, no_program, access.config, access.environment))
            except OscarDeployError:
                # A VM the stack does not hold may be why (on AWS it keeps the stack's subnet and security group).
                self._note_strays_beside_failure(held)
                raise
            # The VMs are gone: recorded nodes would make the next `down` refuse an emptied stack (and ask
            # for an `up` that makes them again) should this one stop before the stack is removed.
            (self.state.path / INFRASTRUCTURE_FILE).unlink(missing_ok=True)
            self.stacks.remove(self.project)
            removed.append(
                f"stack {self.project}/{self.spec.name} ({changes.get('delete', 0)} resource(s): VMs, addresses, "
                "network, security group, key pair)"
            )
        for path in (self.state.path / INFRASTRUCTURE_FILE, *self._ssh_files()):
            path.unlink(missing_ok=True)
        return removed

    def _note_strays_beside_failure(self, held: Collection[str]) -> None:
        """Name the strays while a failure is on its way to the user; a listing that fails too adds nothing to it."""
        try:
            strays = self.strays(held)
        except OscarDeployError:
            return
        for vm in strays:
            self.progress.note(self.stray_line(vm))

    def power_on(self, name: str, wait: bool = True) -> Node:
        record = self._record(name)
        self.set_power(record, on=True)
        self._set_state(name, "running")
        node = next(node for node in self.nodes() if node.name == name)
        if wait:
            self.wait_for_ssh([node])
        return node

    def power_off(self, name: str) -> None:
        record = self._record(name)
        self.set_power(record, on=False)
        self._set_state(name, "stopped")

    def remove(self, name: str) -> list[str]:
        """The stack up without `name`: its VM (and its address, port or disk) goes, the rest stays. A worker
        `apply` dropped from the stack already (its VM was deleted outside oscar-deploy) is only forgotten."""
        records = self.stack_records()
        removed = next((record for record in records if record.name == name), None)
        if removed is None:
            left = self._gone_records()
            dropped = next((record for record in left if record.name == name), None)
            if dropped is None:
                known = ", ".join(record.name for record in records) or "none"
                raise UserInputError(f"node {name!r}: not in cluster {self.spec.name} (nodes: {known})")
            self._set_gone([record for record in left if record.name != name])
            self._forget_host_key(name)
            return [f"VM {dropped.vm_name} (deleted outside oscar-deploy)"]
        keep = [PlannedNode(record.name, record.role, record.arch) for record in records if record.name != name]
        public_key = self.state.ssh_public_key.read_text(encoding="utf-8").strip()
        host_keys = self._host_keys(keep, persist=True)
        access = self.access(None)
        # A VM deleted outside oscar-deploy (`scale` removing it) is forgotten by a refresh first, rather than
        # left to the provider's delete of something that no longer exists.
        deleted = self.power_states([removed]).get(name) == "missing"
        outputs = self.stacks.up(
            StackProgram(
                self.project,
                self.program(keep, host_keys, public_key),
                access.config,
                access.environment,
                refresh=deleted,
            )
        )
        states = {node.name: node.state for node in self.nodes()}
        self._save(records_from_outputs(outputs), states)
        self._forget_host_key(name)
        return [f"VM {removed.vm_name}"]

    def ssh_command(self, node: Node, command: Sequence[str] = ()) -> list[str]:
        ssh = find_tool("ssh")
        if ssh is None:
            raise UserInputError("ssh: not found on PATH; install it: sudo apt-get install -y openssh-client")
        if node.ssh_host is None:
            raise OperationError(f"node {node.name}: no SSH address known; run `oscar-deploy up`")
        options = shlex.split(str(node.variables.get("ansible_ssh_common_args", "")))
        return [ssh, *options, "-p", str(node.ssh_port), f"{node.ssh_user}@{node.ssh_host}", *command]

    # --- what `plan` and `down` ask first ---------------------------------------------------------------------
    def preview(self, plan: Sequence[PlannedNode]) -> dict[str, int]:
        """Pulumi's preview of the update `up` would make for `plan` (count per operation); writes nothing in the
        state folder."""
        existing = {record.name: record for record in self.stack_records()}
        self._check_made_here(existing.values())
        declared = _declared(plan, existing)
        public_key = (
            self.state.ssh_public_key.read_text(encoding="utf-8").strip()
            if self.state.ssh_public_key.is_file()
            else generate_host_key("preview").public
        )
        access = self.access(None)
        return self.stacks.preview(
            StackProgram(
                self.project,
                self.program(declared, self._host_keys(declared, persist=False), public_key),
                access.config,
                access.environment,
            )
        )

    def check_teardown(self) -> None:
        """Refuse `down` when the state folder and the backend disagree about the nodes, saying how to resolve it."""
        recorded = sorted((entry["name"] for entry in self._cache().get("nodes") or []), key=node_sort_key)
        exists = self.stacks.exists(self.project)
        records = self.stack_records() if exists else []
        in_backend = sorted((record.name for record in records), key=node_sort_key)
        stack = f"stack {self.project}/{self.spec.name}"
        where = self.stacks.where()
        if recorded and not exists:
            raise UserInputError(
                f"down: cluster {self.spec.name}: the state folder records nodes {', '.join(recorded)} but {where} "
                f"has no {stack}; if `up` used another backend, set iac.backend in the spec to it and run down "
                f"again; if the VMs are gone already, delete {self.state.path} by hand"
            )
        if in_backend and not recorded:
            self._check_made_here(records, "down: ")
            raise UserInputError(
                f"down: cluster {self.spec.name}: {stack} in {where} has nodes {', '.join(in_backend)} that the state "
                "folder does not record; run `oscar-deploy up` to read them back (or rename this cluster if that "
                "stack is another cluster's), then down"
            )
        if recorded != in_backend:
            raise UserInputError(
                f"down: cluster {self.spec.name}: the state folder records nodes {', '.join(recorded)} but {stack} in "
                f"{where} has {', '.join(in_backend) or 'none'}; run `oscar-deploy up` to bring them together, then "
                "down"
            )

    def _check_servers_kept(self, gone: Sequence[NodeRecord], recorded: int) -> None:
        """Refuse `up` when a server's VM was deleted outside oscar-deploy: the control plane and MinIO's data, which
        live on the servers, went with it, so only a new cluster helps. When not one of the `recorded` VMs is
        there, the login more likely reaches another project, region or account than the cluster's: `down` would
        then leave every VM running where it is."""
        if gone and len(gone) == recorded:
            raise OperationError(
                f"cluster {self.spec.name}: the cloud lists none of its {recorded} VM(s); check that "
                f"{self.login_settings} still reach the project, region or account the cluster was made in (if its "
                "VMs were all deleted outside oscar-deploy, `oscar-deploy down --yes`, then `up`, makes a new "
                "cluster)"
            )
        servers = [record for record in gone if record.role == "server"]
        if servers:
            raise OperationError(
                f"node {', '.join(record.name for record in servers)}: VM "
                f"{', '.join(record.vm_name for record in servers)} was deleted outside oscar-deploy, and the control "
                "plane (and MinIO's data, which lives on the servers) went with it: nothing can be repaired in place; "
                f"run `oscar-deploy down --yes`, then `oscar-deploy up` makes a new cluster {self.spec.name}"
            )

    def _check_made_here(self, records: Iterable[NodeRecord], prefix: str = "") -> None:
        """Refuse a stack whose nodes another state folder made (one lost, or on another machine sharing the
        backend): new host keys and a new cluster key would lock every VM out, and the stack's secrets need that
        folder's Pulumi passphrase."""
        stored = self._stored_host_keys()
        strangers = [record.name for record in records if record.name not in stored]
        if strangers:
            raise UserInputError(
                f"{prefix}cluster {self.spec.name}: stack {self.project}/{self.spec.name} in {self.stacks.where()} has "
                f"nodes {', '.join(strangers)} that another state folder made ({self.state.path} holds no SSH host "
                "key of theirs); copy that state folder (it holds their SSH keys and the stack's Pulumi passphrase) "
                f"to {self.state.path} and run this again (if it is lost for good, the stack cannot be opened: delete "
                f"the VMs named {self.spec.name}-* with the cloud's own tools)"
            )

    # --- reading the stack ------------------------------------------------------------------------------------
    def stack_records(self) -> list[NodeRecord]:
        """The nodes the backend's stack exported at its last update (none when there is no stack)."""
        if not self.stacks.exists(self.project):
            return []
        return records_from_outputs(self.stacks.outputs(self.project))

    def wait_for_ssh(self, nodes: Sequence[Node], timeout: float = SSH_WAIT_SECONDS) -> None:
        """Until each node runs `true` over SSH with its pinned host key (the first server first: it is the jump
        host of the others). A node that keeps answering with another key is named at once (`REFUSED_KEY_ANSWERS`)."""
        if not nodes:
            return
        names = ", ".join(node.name for node in nodes)
        deadline = time.monotonic() + timeout
        pending = sorted(nodes, key=lambda node: node_sort_key(node.name))
        # By node: how many answers in a row refused its host key, and what ssh said of the last one.
        refusals: dict[str, tuple[int, RefusedHostKey]] = {}
        with self.progress.step(f"waiting for SSH on {names}"):
            while pending:
                waiting = []
                for node in pending:
                    probe = self._probe_ssh(node)
                    if probe.answered:
                        continue
                    waiting.append(node)
                    if probe.refused_key is None:
                        refusals.pop(node.name, None)
                    else:
                        in_a_row = refusals[node.name][0] + 1 if node.name in refusals else 1
                        refusals[node.name] = (in_a_row, probe.refused_key)
                pending = waiting
                if not pending:
                    return
                late_now = time.monotonic() > deadline
                refused = [
                    node
                    for node in pending
                    if node.name in refusals and (late_now or refusals[node.name][0] >= REFUSED_KEY_ANSWERS)
                ]
                late = (refused or pending)[0]
                address = late.ssh_host if late.ssh_port == 22 else f"{late.ssh_host}:{late.ssh_port}"
                if refused:
                    refused_key = refusals[late.name][1]
                    raise OperationError(
                        f"node {late.name} ({address}): "
                        + pinned_key_refused(refused_key, address, self.state.known_hosts_file)
                    )
                if late_now:
                    raise OperationError(
                        f"node {late.name} ({address}): no SSH answer in {timeout:.0f} s; check the VM's console "
                        f"log in the cloud's dashboard and that {late.ssh_host} is reachable from here, then run "
                        "`oscar-deploy up` again"
                    )
                time.sleep(SSH_POLL_SECONDS)

    def _probe_ssh(self, node: Node) -> SshProbe:
        return probe_ssh(self.ssh_command(node, ["true"]), connect_timeout=10, timeout=60)

    # --- the state folder -------------------------------------------------------------------------------------
    def _cache(self) -> dict[str, Any]:
        path = self.state.path / INFRASTRUCTURE_FILE
        if not path.is_file():
            return {}
        try:
            data = parse_json(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise OperationError(f"{path}: not JSON; delete it and run `oscar-deploy up` to write it again") from None
        return data if isinstance(data, dict) else {}

    def _save(
        self, records: Sequence[NodeRecord], states: Mapping[str, NodeState], preflight: str | None = None
    ) -> None:
        cache = self._cache()
        cache["written_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        cache["stack"] = f"{self.project}/{self.spec.name}"
        cache["nodes"] = [{**record.as_output(), "state": states.get(record.name, "running")} for record in records]
        if preflight is not None:
            cache["preflight"] = preflight
        self._write_cache(cache)
        self._write_ssh_files(records)

    def _write_cache(self, cache: Mapping[str, Any]) -> None:
        self.state.write_file(self.state.path / INFRASTRUCTURE_FILE, json.dumps(cache, indent=1, sort_keys=True) + "\n")

    def _set_awaiting_ssh(self, names: Sequence[str]) -> None:
        """Record the nodes `apply` waits for over SSH until they answer, so the next `apply` waits for those
        it did not see answer."""
        cache = self._cache()
        if cache.get(AWAITING_SSH_KEY, []) == list(names):
            return
        cache[AWAITING_SSH_KEY] = list(names)
        self._write_cache(cache)

    def _gone_records(self) -> list[NodeRecord]:
        return [NodeRecord.from_output(entry) for entry in self._cache().get(GONE_KEY) or []]

    def _set_gone(self, records: Sequence[NodeRecord]) -> None:
        cache = self._cache()
        entries = [record.as_output() for record in sorted(records, key=lambda record: node_sort_key(record.name))]
        if cache.get(GONE_KEY, []) == entries:
            return
        if entries:
            cache[GONE_KEY] = entries
        else:
            cache.pop(GONE_KEY, None)
        self._write_cache(cache)

    def _set_state(self, name: str, state: NodeState) -> None:
        cache = self._cache()
        for entry in cache.get("nodes") or []:
            if entry.get("name") == name:
                entry["state"] = state
        self._write_cache(cache)

    def _record(self, name: str) -> NodeRecord:
        for entry in self._cache().get("nodes") or []:
            if entry.get("name") == name:
                return NodeRecord.from_output(entry)
        known = ", ".join(node.name for node in self.nodes()) or "none"
        raise UserInputError(f"node {name!r}: not in cluster {self.spec.name} (nodes: {known})")

    def _plan_digest(self, nodes: Iterable[PlannedNode]) -> str:
        data = {
            "settings": self.spec.target_settings().model_dump(mode="json"),
            "nodes": [f"{node.name} {node.role} {node.arch}" for node in nodes],
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def _ssh_files(self) -> tuple[Path, Path, Path]:
        ssh = self.state.ssh_dir
        return ssh / HOST_KEYS_FILE, self.state.known_hosts_file, ssh / SSH_CONFIG_FILE

    def _stored_host_keys(self) -> dict[str, HostKey]:
        from oscar_deploy.providers.vm import host_keys_from_json

        path = self._ssh_files()[0]
        if not path.is_file():
            return {}
        try:
            return host_keys_from_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise OperationError(f"{path}: {exc}; restore it from a backup of the state folder") from None

    def _host_keys(self, nodes: Iterable[PlannedNode], persist: bool) -> dict[str, HostKey]:
        """The host key of each node: the stored one, or a new one (stored before the VM is made when `persist`)."""
        stored = self._stored_host_keys()
        keys = {}
        for node in nodes:
            keys[node.name] = stored.get(node.name) or generate_host_key(f"root@{self.spec.name}-{node.name}")
        if persist and any(name not in stored for name in keys):
            self._write_host_keys({**stored, **keys})
        return keys

    def _forget_host_key(self, name: str) -> None:
        stored = self._stored_host_keys()
        if stored.pop(name, None) is not None:
            self._write_host_keys(stored)

    def _write_host_keys(self, keys: Mapping[str, HostKey]) -> None:
        data = {name: {"private": key.private, "public": key.public} for name, key in sorted(keys.items())}
        self.state.write_file(self._ssh_files()[0], json.dumps(data, indent=1) + "\n", 0o600)

    def _write_ssh_files(self, records: Sequence[NodeRecord]) -> None:
        _keys, known_hosts, config = self._ssh_files()
        lines = []
        for record in records:
            if record.host_key:
                addresses = [address for address in (record.public_address, record.private_address) if address]
                lines.append(f"{','.join(dict.fromkeys(addresses))} {record.host_key}")
        self.state.write_file(known_hosts, "".join(line + "\n" for line in lines), 0o600)
        settings = {
            "IdentityFile": self.state.ssh_private_key,
            "IdentitiesOnly": "yes",
            "UserKnownHostsFile": known_hosts,
            "GlobalKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": "yes",
            "PasswordAuthentication": "no",
            "ServerAliveInterval": "30",
        }
        text = [
            f"# Written by oscar-deploy for cluster {self.spec.name}: `ssh -F` this file to reach its nodes.",
            "Host *",
        ]
        text += [f"  {key} {_config_value(str(value))}" for key, value in settings.items()]
        self.state.write_file(config, "\n".join(text) + "\n", 0o600)

    def _node(self, record: NodeRecord, state: str) -> Node:
        config = self._ssh_files()[2]
        options = ["-F", str(config)]
        host = record.public_address or record.private_address
        if record.public_address is None and record.jump_host:
            options += ["-o", f"ProxyJump={record.ssh_user}@{record.jump_host}"]
        return Node(
            name=record.name,
            role=record.role,
            arch=record.arch,
            state="stopped" if state == "stopped" else "missing" if state == "missing" else "running",
            address=record.private_address,
            ssh_host=host,
            ssh_port=22,
            ssh_user=record.ssh_user,
            instance=record.instance_id or record.vm_name,
            # ansible-runner turns Ansible's host key checking off unless told (ANSIBLE_HOST_KEY_CHECKING), and
            # Ansible's `-o StrictHostKeyChecking=no` would then win over the config's `yes`.
            variables={"ansible_ssh_common_args": shlex.join(options), "ansible_ssh_host_key_checking": True},
        )


def vms_in(urns: Iterable[str], cluster: str, vm_type: str) -> set[str]:
    """The nodes whose VM is among the resources `urns` name (`urn:pulumi:STACK::PROJECT::TYPE::NAME`, the program
    naming each VM `<cluster>-<node>`)."""
    prefix = f"{cluster}-"
    found = set()
    for urn in urns:
        parts = urn.split("::")
        if len(parts) >= 4 and parts[2].split("$")[-1] == vm_type and parts[-1].startswith(prefix):
            found.add(parts[-1].removeprefix(prefix))
    return found


def records_from_outputs(outputs: Mapping[str, Any]) -> list[NodeRecord]:
    """The `nodes` output of a cloud stack, read back; anything else is a stack of another program."""
    entries = outputs.get("nodes") or []
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise OperationError("stack output nodes: not a list of node records; the stack was made by another program")
    try:
        return sorted(
            (NodeRecord.from_output(entry) for entry in entries), key=lambda record: node_sort_key(record.name)
        )
    except (KeyError, ValueError) as exc:
        raise OperationError(f"stack output nodes: {exc}; the stack was made by another program") from None


def _config_value(value: str) -> str:
    """A value in ssh_config: double-quoted when it holds blanks (ssh_config has no escape for a quote)."""
    if '"' in value or "\n" in value:
        raise OperationError(f"{value}: a path with a quote or a newline cannot go into ssh_config; use another folder")
    return f'"{value}"' if any(char.isspace() for char in value) else value


def sdk_check(extra: str) -> Check:
    """The doctor line of one cloud's SDKs, installed by the package extra of the same name."""
    missing = [name for name in EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None]
    if missing:
        return Check(
            f"{extra} sdk",
            "missing",
            f"not importable: {', '.join(missing)} (target {extra} only)",
            install_command(extra),
            (extra,),
        )
    return Check(f"{extra} sdk", "ok", f"{', '.join(EXTRA_MODULES[extra])} importable")
