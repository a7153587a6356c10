"""Power managers: switching a cluster's existing workers on and off, and saying which are on.

The autoscaler asks a power manager, never a provider's stack, so one small interface serves every target:
`power_on(name)` and `power_off(name)` as in `Provider` (same names, same meaning: the node and its disk are
kept), plus `machines()`, the power state of each worker as the machine layer reports it. Unlike
`Provider.power_on`, a power manager's `power_on` returns as soon as the start was accepted: a cloud VM takes
minutes to boot and the autoscaler watches it become Ready through Kubernetes instead of blocking on SSH. A
provider that wants `Provider.power_on` semantics calls the power manager, then waits for SSH itself.

Implementations: `ProviderPower` (any provider with power_on/power_off, e.g. the local podman nodes, whose
power_on does wait for SSH: a few seconds for a container),
`providers.aws.power.Ec2Power`, `providers.openstack.power.OpenStackPower`, and
`providers.static.power.CommandPower` (wake-on-LAN, SSH poweroff, any configured command).
Only workers (agents) are ever powered: every implementation refuses a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from oscar_deploy.providers.base import Provider
from oscar_deploy.support.errors import OperationError

# What the machine layer says: `unknown` when it cannot tell (a board woken by a magic packet reports nothing).
MachinePower = Literal["on", "starting", "stopping", "off", "failed", "unknown"]


@dataclass(frozen=True, slots=True)
class Machine:
    """One worker as its power manager sees it; `arch` when the machine layer knows it (else empty)."""

    name: str
    power: MachinePower
    arch: str = ""


class PowerManager(Protocol):
    """Switch the workers of one cluster on and off."""

    def power_on(self, name: str) -> None:
        """Ask for worker `name` to start; returns once the request was accepted (the boot goes on)."""

    def power_off(self, name: str) -> None:
        """Ask for worker `name` to stop, keeping it and its disk for a later power_on."""

    def machines(self) -> list[Machine]:
        """Every worker this manager can power, with its power state."""


class ProviderPower:
    """A provider's own power_on/power_off (local podman nodes: stop and start the node's container)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def _agent(self, name: str) -> None:
        for node in self.provider.nodes():
            if node.name == name:
                if node.role != "agent":
                    raise OperationError(f"node {name}: a {node.role}; only workers are powered on and off")
                return
        raise OperationError(f"node {name}: not a node of this cluster; run `oscar-deploy status` to list them")

    def power_on(self, name: str) -> None:
        self._agent(name)
        self.provider.power_on(name)

    def power_off(self, name: str) -> None:
        self._agent(name)
        self.provider.power_off(name)

    def machines(self) -> list[Machine]:
        states: dict[str, MachinePower] = {"running": "on", "stopped": "off"}
        return [
            Machine(node.name, states[node.state], node.arch)
            for node in self.provider.nodes()
            if node.role == "agent" and node.state in states
        ]
