"""Shared by the cloud provider tests: a responder that stands for running a cloud stack's inline program, and a
recorder standing for the wait until new VMs answer SSH.

The responder reads the program input the provider built (the inline program is `functools.partial(declare,
input)`) and returns what the program would export for it: one `vm.node_record` per declared node, empty values
left out as Pulumi leaves them out. Addresses are chosen by the test (loopback ones in the unit tier, so nothing
can leave the machine; the local nodes' addresses in the nodes tier). A VM keeps its instance id while it stays
declared; one declared again after it was removed gets a new id, as a new VM would. Given the cloud double's VMs
(`VmCloud`), the responder makes and deletes them there as the update would, and an update that refreshes first
makes a VM that cloud no longer has again under a new id (Pulumi's refresh drops a resource its provider no longer
finds, and the update then creates what the program declares); one that does not refresh keeps its id. The
stack's `destroy` deletes every VM the responder holds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from oscar_deploy.iac.runner import OutputValue, StackTarget
from oscar_deploy.providers.openstack.power import METADATA_PREFIX
from oscar_deploy.providers.vm import ClusterShape, has_public_address, node_record
from tests.doubles.openstack_api import FakeOpenStack

# node name -> (private address, public address); the public one is used only where the program gives one.
Addresses = Callable[[str], tuple[str, str]]


def loopback_addresses(name: str) -> tuple[str, str]:
    role, _, number = name.rpartition("-")
    block = 1 if role == "server" else 2
    return f"127.0.{block}.{int(number) + 10}", f"127.0.{block + 10}.{int(number) + 10}"


class VmCloud(Protocol):
    """The VMs of a cloud double, as the program's stand-in makes and deletes them."""

    def has(self, instance: str) -> bool: ...

    def make(self, instance: str, cluster: str, node: str) -> str:
        """Make the VM of `node`, tagged for `cluster` as the program tags it; returns its id (`instance` where the
        double lets the caller choose)."""
        ...

    def delete(self, instance: str) -> None: ...


@dataclass
class NovaServers:
    """The servers of the OpenStack API double: a VM made is listed ACTIVE with the program's metadata, one deleted
    is no longer listed."""

    cloud: FakeOpenStack

    def has(self, instance: str) -> bool:
        return instance in self.cloud.servers

    def make(self, instance: str, cluster: str, node: str) -> str:
        self.cloud.servers[instance] = nova_server(instance, cluster, node)
        return instance

    def delete(self, instance: str) -> None:
        self.cloud.servers.pop(instance, None)


def nova_server(instance: str, cluster: str, node: str, created: str = "") -> dict[str, Any]:
    """A server of the OpenStack double as the program makes it: named `<cluster>-<node>`, with its metadata."""
    metadata = {f"{METADATA_PREFIX}cluster": cluster, f"{METADATA_PREFIX}node": node}
    server = {"id": instance, "name": f"{cluster}-{node}", "status": "ACTIVE", "metadata": metadata}
    return {**server, "created": created} if created else server


@dataclass
class ProgramResponder:
    """`FakeStack.responder`: the outputs of the program the target carries; every input it saw is kept."""

    addresses: Addresses = loopback_addresses
    inputs: list[Any] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    serial: Any = field(default_factory=itertools.count)
    cloud: VmCloud | None = None

    def __call__(self, target: StackTarget, refresh: bool = False) -> dict[str, OutputValue]:
        spec: ClusterShape = target.program.args[0]  # type: ignore[union-attr]
        self.inputs.append(spec)
        declared = {node.name for node in spec.nodes}
        for name, instance in self.ids.items():
            if name not in declared and self.cloud is not None:
                self.cloud.delete(instance)
        self.ids = {name: value for name, value in self.ids.items() if name in declared}
        records = []
        jump = None
        for index, node in enumerate(spec.nodes):
            private, public = self.addresses(node.name)
            own_public = public if has_public_address(spec, index) else None
            if index == 0:
                jump = own_public
            instance = self.ids.get(node.name)
            if instance is not None and refresh and self.cloud is not None and not self.cloud.has(instance):
                instance = None  # the refresh dropped the VM deleted behind Pulumi's back: the update makes it again
            if instance is None:
                instance = f"vm-{node.name}-{next(self.serial)}"
                if self.cloud is not None:
                    instance = self.cloud.make(instance, spec.cluster, node.name)
                self.ids[node.name] = instance
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

    def destroy(self) -> None:
        """`destroy`: every VM the stack holds is deleted."""
        if self.cloud is not None:
            for instance in self.ids.values():
                self.cloud.delete(instance)
        self.ids = {}

    @property
    def last(self) -> Any:
        return self.inputs[-1]


@dataclass
class SshWaits:
    """Stands for `CloudProvider.wait_for_ssh` where no VM exists to answer (SSH to the nodes is exercised for
    real in the nodes tier): records which nodes were waited for."""

    waited: list[list[str]] = field(default_factory=list)
    # The next wait is cut short by a Ctrl-C, once (the VMs never answered).
    interrupt_next: bool = False

    def method(self) -> Callable[..., None]:
        """What replaces the method on the class."""

        def wait_for_ssh(provider: Any, nodes: Any, timeout: float = 0) -> None:
            self.waited.append([node.name for node in nodes])
            if self.interrupt_next and nodes:
                self.interrupt_next = False
                raise KeyboardInterrupt

        return wait_for_ssh
