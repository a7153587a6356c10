"""Recovering what an interrupted Pulumi update leaves behind, so the next run goes on without a manual fix.

Two things can be left:

* pending operations: the checkpoint (`stack export`: `{"version": 3, "deployment": {..., "pending_operations":
  [{"resource": {...}, "type": "creating"|"updating"|"deleting"|"reading"|"importing"}]}}`, pulumi/pulumi
  sdk/go/common/apitype/core.go) lists resource operations that were running when the CLI died. The engine
  then warns on every update and keeps pending creates for ever (pkg/resource/deploy/deployment_executor.go);
  `pulumi refresh --clear-pending-creates` drops pending creates and `--import-pending-creates URN ID` turns
  one into an import, which needs the provider ID an interrupted create never reported. We do what upstream's
  troubleshooting guide does by hand: drop every pending operation from the exported state, import it back,
  and refresh during the next update, so updated and deleted resources are read back from the provider and
  interrupted creates are made again;
* a lock: the file backend writes `.pulumi/locks/organization/<project>/<stack>/<id>.json` holding
  `{"pid", "username", "hostname", "timestamp"}` and deletes it at the end (pkg/backend/diy/lock.go). A killed
  CLI leaves it behind, and every later command fails with "the stack is currently locked by N lock(s)",
  followed by one line per lock: `<url>: created by <user>@<host> (pid <pid>) at <RFC 3339 time>`. A lock is
  stale when its holder is gone: on this host with no such process, or older than `STALE_LOCK_AGE` anywhere, or
  on another host when the user says its run died (`BREAK_LOCK_FLAG`).
  Only then is it removed (`pulumi cancel`, which deletes the stack's lock files); a holder still running on this
  host is never interrupted.

Everything here is a pure function of the exported state, the lock lines and the facts passed in.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from oscar_deploy.support.errors import OperationError

STATE_VERSION = 3
# A lock older than this is stale even when its holder ran on another machine, where we cannot look for it.
STALE_LOCK_AGE = timedelta(hours=6)
# The commands' option that takes a lock from another machine as stale at once, when its run is known to be dead.
BREAK_LOCK_FLAG = "--break-lock"
OPERATION_VERBS = {
    "creating": "created",
    "updating": "updated",
    "deleting": "deleted",
    "reading": "read",
    "importing": "imported",
}
LOCK_LINE = re.compile(r"^\s*(?P<where>\S+): created by (?P<who>.+) \(pid (?P<pid>-?\d+)\) at (?P<when>\S+)\s*$")


@dataclass(frozen=True)
class PendingOperation:
    operation: str
    urn: str

    @property
    def label(self) -> str:
        return resource_label(self.urn)


def resource_label(urn: str) -> str:
    """`urn:pulumi:s::p::openstack:compute/instance:Instance::c1-w1` -> `Instance c1-w1` (never a property value)."""
    parts = urn.split("::")
    if len(parts) < 4:
        return urn
    return f"{resource_kind(urn)} {parts[-1]}"


def resource_kind(urn: str) -> str:
    """The last part of the type in `urn`: `Instance`, `PersistentVolumeClaim` (the URN itself when it is not one)."""
    parts = urn.split("::")
    if len(parts) < 4:
        return urn
    return parts[2].split("$")[-1].rsplit(":", 1)[-1]


def _deployment(state: Mapping[str, Any]) -> Mapping[str, Any]:
    version = state.get("version")
    if version != STATE_VERSION:
        raise OperationError(
            f"pulumi state: format version {version!r}, oscar-deploy reads version {STATE_VERSION}; "
            "upgrade oscar-deploy or the pulumi CLI so they match"
        )
    deployment = state.get("deployment")
    if not isinstance(deployment, Mapping):
        raise OperationError("pulumi state: no deployment in the exported state; the checkpoint is damaged")
    return deployment


def pending_operations(state: Mapping[str, Any]) -> list[PendingOperation]:
    """The operations an interrupted update left in `state` (an exported stack), in checkpoint order."""
    found = []
    for index, entry in enumerate(_deployment(state).get("pending_operations") or []):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or not isinstance(resource.get("urn"), str):
            raise OperationError(
                f"pulumi state: pending operation {index} names no resource; the checkpoint is damaged"
            )
        found.append(PendingOperation(str(entry.get("type", "")), resource["urn"]))
    return found


def without_pending_operations(state: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `state` with no pending operation; everything else (resources, secrets) exactly as exported."""
    _deployment(state)
    cleared = copy.deepcopy(dict(state))
    cleared["deployment"].pop("pending_operations", None)
    return cleared


def resource_urns(state: Mapping[str, Any]) -> list[str]:
    """The URN of every resource `state` (an exported stack) holds, in checkpoint order: what the stack made, an
    update that failed half-way included (its outputs are written only when an update completes)."""
    return [
        str(entry["urn"])
        for entry in _deployment(state).get("resources") or []
        if isinstance(entry, Mapping) and isinstance(entry.get("urn"), str)
    ]


@dataclass(frozen=True)
class LockHolder:
    """One lock on a stack, as Pulumi's "currently locked" error describes it."""

    where: str
    user: str
    host: str
    pid: int
    since: datetime

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def parse_lock_holders(text: str) -> list[LockHolder]:
    """The locks a "the stack is currently locked by" error lists (pkg/backend/diy/lock.go, checkForLock)."""
    holders = []
    for line in text.splitlines():
        match = LOCK_LINE.match(line)
        if not match:
            continue
        user, _, host = match["who"].rpartition("@")
        try:
            since = datetime.fromisoformat(match["when"])
        except ValueError:
            continue
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        holders.append(LockHolder(match["where"], user, host, int(match["pid"]), since))
    return holders


def process_alive(pid: int) -> bool:
    """Whether `pid` exists here. Permission denied still proves it exists; when unsure, say alive."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def stale_reason(
    holder: LockHolder,
    now: datetime,
    hostname: str,
    alive: Callable[[int], bool] = process_alive,
    max_age: timedelta = STALE_LOCK_AGE,
    break_elsewhere: bool = False,
) -> str | None:
    """Why the lock's holder is gone (here and not running, or older than `max_age`), or None if it may not be.
    With `break_elsewhere` (the user's word that such a run died), a holder on another machine counts as gone: its
    processes cannot be looked at from here. A holder running here never does."""
    if holder.host == hostname and not alive(holder.pid):
        return f"pid {holder.pid} on {holder.host}, no longer running"
    if now - holder.since > max_age:
        return f"pid {holder.pid} on {holder.host}, older than {max_age.total_seconds() / 3600:g} hours"
    if break_elsewhere and holder.host != hostname:
        return f"pid {holder.pid} on {holder.host}, broken by {BREAK_LOCK_FLAG}"
    return None


@dataclass(frozen=True)
class StaleLock:
    holder: LockHolder
    reason: str


def sort_locks(
    holders: Iterable[LockHolder],
    now: datetime,
    hostname: str,
    alive: Callable[[int], bool] = process_alive,
    break_elsewhere: bool = False,
) -> tuple[list[StaleLock], list[LockHolder]]:
    """(stale locks with the reason, locks whose holder may still be working)."""
    stale, live = [], []
    for holder in holders:
        reason = stale_reason(holder, now, hostname, alive, break_elsewhere=break_elsewhere)
        if reason is None:
            live.append(holder)
        else:
            stale.append(StaleLock(holder, reason))
    return stale, live


@dataclass
class Recovery:
    """What one run recovered, for the line that tells the user."""

    pending: list[PendingOperation] = field(default_factory=list)
    stale_locks: list[StaleLock] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.pending or self.stale_locks)

    def message(self) -> str:
        parts = []
        if self.pending:
            by_verb: dict[str, list[str]] = {}
            for operation in self.pending:
                by_verb.setdefault(OPERATION_VERBS.get(operation.operation, operation.operation), []).append(
                    operation.label
                )
            listed = "; ".join(f"{verb}: {', '.join(labels)}" for verb, labels in by_verb.items())
            count = len(self.pending)
            parts.append(f"{count} pending operation{'s' if count != 1 else ''} from an interrupted update ({listed})")
        for lock in self.stale_locks:
            parts.append(f"a stale lock of {lock.holder.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({lock.reason})")
        message = "recovered: " + ", ".join(parts)
        # The provider may have made the resource before the CLI died; the stack never got its id, and this update
        # makes it again under the same name. The cloud providers name such a VM (CloudProvider.strays).
        created = [operation.label for operation in self.pending if operation.operation == "creating"]
        if not created:
            return message
        if len(created) == 1:
            advice = (
                "an interrupted create may have left its resource outside the stack: if the cloud holds two copies of "
                f"{created[0]}, delete the older one"
            )
        else:
            advice = (
                "interrupted creates may have left their resources outside the stack: for each of "
                f"{', '.join(created[:-1])} and {created[-1]}: if the cloud holds two, delete the older one"
            )
        return (
            f"{message}; {advice} (`up`, `scale` and `down` name a VM carrying the cluster's tag that the stack does "
            "not hold, with the command that deletes it)"
        )
