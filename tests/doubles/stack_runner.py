"""TEST DOUBLE: a recording stand-in for `oscar_deploy.iac.runner.StackRunner`. It is not Pulumi.

It stands for what `PulumiRunner` does with a real Pulumi CLI and backend through the Automation API
(https://www.pulumi.com/docs/iac/concepts/automation-api/; pulumi/pulumi sdk/python/lib/pulumi/automation):
select a stack (created the first time), set its config, preview / up / refresh / destroy while sending engine
events to `on_event` (pulumi.automation.events.EngineEvent), read its outputs, export and import its state
(`{"version": 3, "deployment": ...}`, sdk/go/common/apitype/core.go), cancel (which removes the stack's locks,
like the diy backend's CancelCurrentUpdate) and remove it.

Every call is recorded, in order, as `Call(stack, operation, detail)` in `RecordingRunner.calls`, with
`stack` the `project/stack` name: tests assert on `runner.operations()` or on the calls themselves. A test
scripts what a stack answers through `runner.stack(project, stack)`: outputs, the engine events of an
operation (an `up` that does not refresh first leaves out the scripted refresh steps, as the engine runs none
then), a failure, pending operations left by an interrupted update, or a lock held by some process; or gives it
a `responder`, which stands for running the stack's inline program: called with the target at each
`up`, and whether that update refreshes first (`up --refresh`), it returns the outputs the program would export;
its `destroy` stands for `destroy` deleting what the program made.
Secret config values are recorded as `ConfigValue` objects, whose repr never shows them; a `select` records the
names of the target's environment variables (never their values); the values are kept in
`RecordingRunner.environments` for tests that check them.

`install(monkeypatch)` replaces `oscar_deploy.iac.factory.create_runner` so CLI flows get this runner.
Nothing here ships in the wheel.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pytest
from pulumi.automation.events import EngineEvent

from oscar_deploy.iac import factory as runner_module
from oscar_deploy.iac.recovery import LockHolder
from oscar_deploy.iac.runner import (
    ConfigValue,
    EventHandler,
    OutputValue,
    StackError,
    StackLocked,
    StackTarget,
    UpdateResult,
)

OPERATIONS_WITH_EVENTS = ("preview", "up", "refresh", "destroy")
LOCKING = ("up", "refresh", "destroy", "import_state")


@dataclass(frozen=True)
class Call:
    stack: str
    operation: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """An operation that fails once: its error diagnostic (sent as an event) and what it leaves behind."""

    message: str
    pending: tuple[tuple[str, str], ...] = ()  # (operation type, urn) left in the state, as a killed CLI does
    lock: LockHolder | None = None  # a lock the dead process leaves


class Responder(Protocol):
    """Stands for the stack's inline program (see the module's description)."""

    def __call__(self, target: StackTarget, refresh: bool) -> dict[str, OutputValue]: ...

    def destroy(self) -> None: ...


@dataclass
class FakeStack:
    """What one stack holds and answers."""

    target: StackTarget
    created: bool = False
    config: dict[str, ConfigValue] = field(default_factory=dict)
    deployment: dict[str, Any] = field(default_factory=lambda: {"manifest": {"version": "v3.272.0"}})
    outputs: dict[str, OutputValue] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=lambda: {"same": 1})
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    locks: list[LockHolder] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)
    # Stands for the program: the outputs an `up` of `target` (refreshing first or not) exports, and what `destroy`
    # deletes (None: the scripted `outputs`).
    responder: Responder | None = None

    def fail_next(self, operation: str, message: str, **leaves: Any) -> None:
        self.failures[operation] = Failure(message, **leaves)

    def lock(self, pid: int, host: str, since: datetime, user: str = "someone") -> None:
        self.locks.append(LockHolder(f"file:///state/.pulumi/locks/{self.target.name}/x.json", user, host, pid, since))


class FakeSession:
    def __init__(self, runner: RecordingRunner, stack: FakeStack) -> None:
        self._runner = runner
        self._stack = stack

    @property
    def target(self) -> StackTarget:
        return self._stack.target

    def _record(self, operation: str, **detail: Any) -> None:
        self._runner.calls.append(Call(self.target.name, operation, detail))
        if operation in LOCKING and self._stack.locks:
            raise StackLocked(
                self.target,
                operation,
                list(self._stack.locks),
                f"the stack is currently locked by {len(self._stack.locks)} lock(s)",
            )

    def _send(self, operation: str, on_event: EventHandler, *, refresh: bool = True) -> None:
        for event in self._stack.events.get(operation, []):
            if refresh or not _is_refresh_step(event):
                on_event(EngineEvent.from_json(event))
        failure = self._stack.failures.pop(operation, None)
        if failure is None:
            return
        urn = f"urn:pulumi:{self.target.stack}::{self.target.project}::pulumi:pulumi:Stack::{self.target.name}"
        on_event(
            EngineEvent.from_json(
                {"sequence": 0, "diagnosticEvent": {"urn": urn, "message": failure.message, "severity": "error"}}
            )
        )
        if failure.pending:
            self._stack.deployment["pending_operations"] = [
                {"resource": {"urn": found, "type": found.split("::")[2]}, "type": kind}
                for kind, found in failure.pending
            ]
        if failure.lock is not None:
            self._stack.locks.append(failure.lock)
        raise StackError(self.target, operation, "update failed")

    def set_config(self, config: Mapping[str, ConfigValue]) -> None:
        self._record("set_config", config=dict(config))
        self._stack.config.update(config)

    def preview(self, on_event: EventHandler) -> dict[str, int]:
        self._record("preview")
        self._send("preview", on_event)
        return dict(self._stack.changes)

    def up(self, on_event: EventHandler, *, refresh: bool = False) -> UpdateResult:
        self._record("up", refresh=refresh)
        self._send("up", on_event, refresh=refresh)
        self._stack.deployment.pop("pending_operations", None)
        if self._stack.responder is not None:
            self._stack.outputs = self._stack.responder(self.target, refresh)
        return UpdateResult(dict(self._stack.changes), dict(self._stack.outputs))

    def refresh(self, on_event: EventHandler) -> dict[str, int]:
        self._record("refresh")
        self._send("refresh", on_event)
        return {"same": 1}

    def destroy(self, on_event: EventHandler) -> dict[str, int]:
        self._record("destroy")
        self._send("destroy", on_event)
        if self._stack.responder is not None:
            self._stack.responder.destroy()
        self._stack.outputs = {}
        return {"delete": len(self._stack.deployment.get("resources", []))}

    def outputs(self) -> dict[str, OutputValue]:
        self._record("outputs")
        return dict(self._stack.outputs)

    def export_state(self) -> dict[str, Any]:
        self._record("export_state")
        return {"version": 3, "deployment": copy.deepcopy(self._stack.deployment)}

    def import_state(self, state: Mapping[str, Any]) -> None:
        self._record("import_state", state=copy.deepcopy(dict(state)))
        self._stack.deployment = copy.deepcopy(dict(state["deployment"]))

    def cancel(self) -> None:
        self._record("cancel")
        self._stack.locks.clear()

    def remove(self, force: bool = False) -> None:
        self._record("remove", force=force)
        del self._runner.stacks[self.target.name]


class RecordingRunner:
    """A `StackRunner` that records every call and answers from scripted stacks."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.stacks: dict[str, FakeStack] = {}
        self.created_for: list[tuple[str, str | None]] = []
        self.environments: list[dict[str, str]] = []

    def stack(self, project: str, stack: str) -> FakeStack:
        """The scripted stack (made on first use; `select` creates it in the 'backend' and sets its target)."""
        name = f"{project}/{stack}"
        if name not in self.stacks:
            self.stacks[name] = FakeStack(StackTarget(project, stack, program=_not_selected_yet))
        return self.stacks[name]

    def select(self, target: StackTarget) -> FakeSession:
        scripted = self.stack(target.project, target.stack)
        scripted.target = target
        self.calls.append(
            Call(target.name, "select", {"created": not scripted.created, "environment": sorted(target.environment)})
        )
        self.environments.append(dict(target.environment))
        scripted.created = True
        return FakeSession(self, scripted)

    def exists(self, target: StackTarget) -> bool:
        self.calls.append(Call(target.name, "exists"))
        return target.name in self.stacks and self.stacks[target.name].created

    def operations(self, stack: str | None = None) -> list[str]:
        """The operations called, in order (of one `project/stack` when given)."""
        return [call.operation for call in self.calls if stack is None or call.stack == stack]


def _is_refresh_step(event: Mapping[str, Any]) -> bool:
    """Whether a scripted engine event belongs to a refresh step (op `refresh`, the found-gone ones included): an
    `up` sends those only when it refreshes first (`up --refresh`), as the engine runs refresh steps only then."""
    for kind in ("resourcePreEvent", "resOutputsEvent", "resOpFailedEvent"):
        if kind in event:
            return bool(event[kind]["metadata"]["op"] == "refresh")
    return False


def _not_selected_yet() -> None:
    """The program of a stack scripted before any `select`; `select` replaces the target with the real one."""


def install(monkeypatch: pytest.MonkeyPatch, runner: RecordingRunner | None = None) -> RecordingRunner:
    """Make `oscar_deploy.iac.factory.create_runner` return `runner` (a new one by default); returns it."""
    runner = runner or RecordingRunner()

    def create_runner(state: Any, backend: str | None = None, *_args: Any, **_kwargs: Any) -> RecordingRunner:
        runner.created_for.append((state.name, backend))
        return runner

    monkeypatch.setattr(runner_module, "create_runner", create_runner)
    return runner
