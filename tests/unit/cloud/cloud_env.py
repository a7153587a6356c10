"""Shared by the cloud provider tests: a responder that stands for running a cloud stack's inline program, and a
recorder standing for the wait until new VMs answer SSH.

The responder reads the program input the provider built (the inline program is `functools.partial(declare,
input)`) and returns what the program would export for it: one `vm.node_record` per declared node, empty values
left out as Pulumi leaves them out. Addresses are chosen by the test (loopback ones in the unit tier, so nothing
can leave the machine; the local nodes' addresses in the nodes tier). A VM keeps its instance id while it stays
declared; one declared again after it was removed gets a new id, as a new VM would.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oscar_deploy.iac.runner import OutputValue, StackTarget
from oscar_deploy.providers.vm import ClusterShape, has_public_address, node_record

# node name -> (private address, public address); the public one is used only where the program gives one.
Addresses = Callable[[str], tuple[str, str]]


def loopback_addresses(name: str) -> tuple[str, str]:
    role, _, number = name.rpartition("-")
    block = 1 if role == "server" else 2
    return f"127.0.{block}.{int(number) + 10}", f"127.0.{block + 10}.{int(number) + 10}"


@dataclass
class ProgramResponder:
    """`FakeStack.responder`: the outputs of the program the target carries; every input it saw is kept."""

    addresses: Addresses = loopback_addresses
    inputs: list[Any] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    serial: Any = field(default_factory=itertools.count)

    def __call__(self, target: StackTarget) -> dict[str, OutputValue]:
        spec: ClusterShape = target.program.args[0]  # type: ignore[union-attr]
        self.inputs.append(spec)
        declared = {node.name for node in spec.nodes}
        self.ids = {name: value for name, value in self.ids.items() if name in declared}
        records = []
        jump = None
        for index, node in enumerate(spec.nodes):
            private, public = self.addresses(node.name)
            own_public = public if has_public_address(spec, index) else None
            if index == 0:
                jump = own_public
            instance = self.ids.setdefault(node.name, f"vm-{node.name}-{next(self.serial)}")
            record = node_record(
                cluster=spec.cluster,
                node=node,
                private_address=private,
                public_address=own_public,
                ssh_user=spec.ssh_user,
                jump_host=None if own_public else jump,
                host_key=spec.host_keys.get(node.name),
                instance_id=instance,
            )
            records.append({key: value for key, value in record.items() if value is not None})
        return {"nodes": OutputValue(records), "jump_host": OutputValue(jump)}

    @property
    def last(self) -> Any:
        return self.inputs[-1]


@dataclass
class SshWaits:
    """Stands for `CloudProvider.wait_for_ssh` where no VM exists to answer (SSH to the nodes is exercised for
    real in the nodes tier): records which nodes were waited for."""

    waited: list[list[str]] = field(default_factory=list)

    def method(self) -> Callable[..., None]:
        """What replaces the method on the class."""

        def wait_for_ssh(provider: Any, nodes: Any, timeout: float = 0) -> None:
            self.waited.append([node.name for node in nodes])

        return wait_for_ssh
