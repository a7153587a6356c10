"""The cloud providers' stacks on the Pulumi runner: `providers.cloud.InfrastructureStacks` over `iac`.

Providers sit below `iac` in the layer order, so the pipeline builds this and hands it to them (through the
provider registry). Each run selects the cluster's stack of the provider's project with the provider's inline
program and the environment it needs for the pulumi process (a login token), sets the provider's plain stack
config, and goes through `StackOperations`: recovery of an interrupted update, progress, one-line errors.
The runner itself (and the Pulumi CLI, installed on first use) is made only when a stack is first touched, so
`status` on a cluster whose nodes are recorded never needs it.
"""

from __future__ import annotations

from typing import Any

from oscar_deploy.iac import factory
from oscar_deploy.iac.operations import StackOperations
from oscar_deploy.iac.recovery import resource_urns
from oscar_deploy.iac.runner import ConfigValue, StackRunner, StackTarget
from oscar_deploy.providers.cloud import StackProgram, no_program
from oscar_deploy.spec.models import ClusterSpec
from oscar_deploy.state.folder import ClusterState
from oscar_deploy.support.progress import LiveDisplay, Progress, TransferDisplay


class PulumiStacks:
    """The stacks of one cluster (each named after it) in the cluster's Pulumi backend."""

    def __init__(self, spec: ClusterSpec, state: ClusterState, progress: Progress, break_lock: bool = False) -> None:
        self.spec = spec
        self.state = state
        self.progress = progress
        self.break_lock = break_lock
        self._runner: StackRunner | None = None

    @property
    def runner(self) -> StackRunner:
        if self._runner is None:
            with TransferDisplay() as reporter:
                self._runner = factory.create_runner(self.state, self.spec.iac.backend, reporter, self.progress.note)
        return self._runner

    def where(self) -> str:
        return f"backend {self.spec.iac.backend}" if self.spec.iac.backend else "the state folder's Pulumi backend"

    def _target(self, run: StackProgram) -> StackTarget:
        return StackTarget(run.project, self.spec.name, program=run.program, environment=dict(run.environment))

    def _operations(self, run: StackProgram) -> StackOperations:
        session = self.runner.select(self._target(run))
        operations = StackOperations(
            session, display=LiveDisplay(), secrets=run.environment.values(), break_lock=self.break_lock
        )
        if run.config:
            operations.configure({key: ConfigValue(value) for key, value in run.config.items()})
        return operations

    def _stored(self, project: str) -> StackTarget:
        """The stack as it stands in the backend, with no program: read or removed, never updated."""
        return StackTarget(project, self.spec.name, program=no_program)

    def exists(self, project: str) -> bool:
        return self.runner.exists(self._stored(project))

    def outputs(self, project: str) -> dict[str, Any]:
        session = self.runner.select(self._stored(project))
        return {key: output.value for key, output in session.outputs().items()}

    def resources(self, project: str) -> list[str]:
        if not self.exists(project):
            return []
        return resource_urns(self.runner.select(self._stored(project)).export_state())

    def preview(self, run: StackProgram) -> dict[str, int]:
        return self._operations(run).preview()

    def up(self, run: StackProgram) -> dict[str, Any]:
        result = self._operations(run).up(refresh=run.refresh)
        return {key: output.value for key, output in result.outputs.items()}

    def destroy(self, run: StackProgram) -> dict[str, int]:
        return self._operations(run).destroy()

    def remove(self, project: str) -> None:
        self.runner.select(self._stored(project)).remove()
