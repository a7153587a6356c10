"""The seam between oscar-deploy and Pulumi: what phases ask of a stack, and the errors they get back.

Phases talk to `StackRunner` only: `select` a stack (created the first time) of a Pulumi project, either a
folder under `stacks/` or an inline program, then set its config, preview, up, refresh, destroy, read outputs,
export or import its state, cancel (remove its locks) or remove it. `factory.create_runner` gives the real
one, `pulumi_runner.PulumiRunner` over the Automation API; tests of CLI flows replace it with the recording
fake in tests/doubles/stack_runner.py, so callers call it through that module (`factory.create_runner(...)`),
never a copy imported by name.

This module imports no Pulumi code: the seam costs nothing until a stack is run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from oscar_deploy.iac.recovery import LockHolder, resource_kind, resource_label
from oscar_deploy.support.errors import OperationError

if TYPE_CHECKING:
    from pulumi.automation.events import EngineEvent


EventHandler = Callable[["EngineEvent"], None]


@dataclass(frozen=True)
class ConfigValue:
    """A stack config value; a secret one is encrypted by Pulumi and never shown."""

    value: str
    secret: bool = False

    def __repr__(self) -> str:
        shown = "[secret]" if self.secret else repr(self.value)
        return f"ConfigValue({shown}, secret={self.secret})"


@dataclass(frozen=True)
class OutputValue:
    """A stack output; `secret` when the program marked it so (Pulumi masks it as [secret] in its own output)."""

    value: Any
    secret: bool = False

    def __repr__(self) -> str:
        shown = "[secret]" if self.secret else repr(self.value)
        return f"OutputValue({shown}, secret={self.secret})"


# Not a Pulumi operation: a refresh found the resource gone (deleted outside Pulumi), so Pulumi forgot it.
MISSING = "missing"


@dataclass(frozen=True)
class ResourceStep:
    """One resource a finished step of an update acted on: Pulumi's operation (create, update, replace, delete,
    import) or `MISSING` (then the update makes it again when the program still declares it), the resource's URN,
    and the ID its provider gave it (`namespace/name` for a namespaced Kubernetes object; no property value)."""

    op: str
    urn: str
    id: str

    @property
    def kind(self) -> str:
        return resource_kind(self.urn)

    @property
    def label(self) -> str:
        """`PersistentVolumeClaim minio/minio-data`: the kind and the ID (the URN's name when there is no ID)."""
        return f"{self.kind} {self.id}" if self.id else resource_label(self.urn)


@dataclass(frozen=True)
class UpdateResult:
    """What `up` did (count per operation, as Pulumi's summary gives it), the outputs afterwards, and the resources
    it acted on, in the order they finished (from the engine events; `StackOperations.up` fills them in)."""

    changes: dict[str, int]
    outputs: dict[str, OutputValue]
    steps: tuple[ResourceStep, ...] = ()


@dataclass(frozen=True)
class StackTarget:
    """One stack of one Pulumi project: a project folder (`stacks/<name>`) or an inline program."""

    project: str
    stack: str
    program_dir: Path | None = None
    program: Callable[[], None] | None = field(default=None, compare=False)
    # Variables for the pulumi process and the provider plugins it starts, on top of the runner's own (a cloud
    # login token, for instance). Never stack config: the Automation API puts config values on argv.
    environment: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if (self.program_dir is None) == (self.program is None):
            raise ValueError("a stack target needs a project folder or an inline program, not both")

    @property
    def name(self) -> str:
        return f"{self.project}/{self.stack}"

    @classmethod
    def folder(cls, folder: Path, stack: str) -> StackTarget:
        """The stack `stack` of the Pulumi project in `folder` (its Pulumi.yaml names the project)."""
        import yaml

        project_file = folder / "Pulumi.yaml"
        if not project_file.is_file():
            raise OperationError(f"{folder}: no Pulumi.yaml; not a Pulumi project (reinstall oscar-deploy)")
        settings = yaml.safe_load(project_file.read_text()) or {}
        name = settings.get("name") if isinstance(settings, dict) else None
        if not isinstance(name, str) or not name:
            raise OperationError(f"{project_file}: names no project (key `name`); fix the file")
        return cls(project=name, stack=stack, program_dir=folder)

    @classmethod
    def bundled(cls, name: str, stack: str) -> StackTarget:
        """A project shipped in `stacks/<name>` (beside the package in a wheel, at the root of a checkout)."""
        from oscar_deploy.support.layers import layer_dir

        return cls.folder(layer_dir("stacks") / name, stack)


class StackError(OperationError):
    """A Pulumi command failed; `detail` is the most telling line it printed."""

    def __init__(self, target: StackTarget, command: str, detail: str) -> None:
        super().__init__(f"{target.name}: pulumi {command} failed: {detail}")
        self.target = target
        self.command = command
        self.detail = detail


class StackLocked(StackError):
    """The backend holds a lock on the stack: another update runs, or one died and left its lock."""

    def __init__(self, target: StackTarget, command: str, holders: list[LockHolder], detail: str) -> None:
        super().__init__(target, command, detail)
        self.holders = holders


class StackSession(Protocol):
    """One selected stack. Every method raises `StackError` (or `StackLocked`) when Pulumi fails."""

    @property
    def target(self) -> StackTarget: ...

    def set_config(self, config: Mapping[str, ConfigValue]) -> None: ...

    def preview(self, on_event: EventHandler) -> dict[str, int]: ...

    def up(self, on_event: EventHandler, *, refresh: bool = False) -> UpdateResult: ...

    def refresh(self, on_event: EventHandler) -> dict[str, int]: ...

    def destroy(self, on_event: EventHandler) -> dict[str, int]: ...

    def outputs(self) -> dict[str, OutputValue]: ...

    def export_state(self) -> dict[str, Any]: ...

    def import_state(self, state: Mapping[str, Any]) -> None: ...

    def cancel(self) -> None: ...

    def remove(self, force: bool = False) -> None:
        """Delete the stack from its backend; `force` also when it still records resources, which stay where
        they are (the backend refuses otherwise)."""
        ...


class StackRunner(Protocol):
    def select(self, target: StackTarget) -> StackSession:
        """The stack, created first when the backend does not have it yet."""
        ...

    def exists(self, target: StackTarget) -> bool:
        """Whether the backend has the stack (never creates it)."""
        ...
