"""TEST DOUBLE: a power manager that records what it is asked instead of switching machines.

It stands for `oscar_deploy.providers.power.PowerManager` (the local, EC2, OpenStack and command power managers
in oscar_deploy/providers/*/power.py): `power_on`/`power_off` take a worker's name, `machines()` reports each
worker's power state (`on`, `off`, ...). Tests set the starting states, read `calls` and `looks` (how often the
machines were read), name workers whose power actions fail (`failing`), as a cloud API that refuses would, and
make reading the machines fail (`unreachable`), as a cloud API that cannot be reached would, and name workers
whose power action a second Ctrl-C cuts short (`interrupted`: KeyboardInterrupt, which `autoscaler run`'s signal
handler raises in the middle of the command). Nothing here ships in the wheel.
"""

from __future__ import annotations

from oscar_deploy.providers.power import Machine, MachinePower
from oscar_deploy.support.errors import OperationError


class RecordingPower:
    def __init__(self, states: dict[str, MachinePower], arch: str = "amd64") -> None:
        self.states = dict(states)
        self.arch = arch
        self.calls: list[tuple[str, str]] = []
        self.failing: set[str] = set()
        self.interrupted: set[str] = set()
        self.looks = 0
        self.unreachable = ""

    def _act(self, verb: str, name: str, state: MachinePower) -> None:
        self.calls.append((verb, name))
        if name not in self.states:
            raise OperationError(f"node {name}: not a worker of this cluster")
        if name in self.interrupted:
            raise KeyboardInterrupt
        if name in self.failing:
            raise OperationError(f"node {name}: the cloud refused to {verb} it (quota exceeded)")
        self.states[name] = state

    def power_on(self, name: str) -> None:
        self._act("on", name, "on")

    def power_off(self, name: str) -> None:
        self._act("off", name, "off")

    def machines(self) -> list[Machine]:
        self.looks += 1
        if self.unreachable:
            raise OperationError(self.unreachable)
        return [Machine(name, state, self.arch) for name, state in sorted(self.states.items())]
