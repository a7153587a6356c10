"""Power for hosts and boards you own: the commands the spec names (`static.power_on_command`,
`static.power_off_command`), such as wake-on-LAN to switch a board on and SSH `poweroff` to switch it off.

Each command is an argv list run directly (never through a shell), with placeholders filled per host: `{node}`
is the host's inventory name, `{ansible_host}`, `{ansible_user}`, `{ansible_port}` and `{node_address}` its
connection settings, and `{NAME}` any other variable the inventory gives the host (e.g. `{mac_address}`). A
value is always one whole argument: spaces or quotes in it cannot add arguments, and a value that starts with
`-` is refused, so an inventory value can never become an option of the command.

A board woken by a magic packet reports nothing back, so `machines()` says `unknown`: the autoscaler takes a
worker as on once Kubernetes shows it Ready, and as booting for as long as it waits for that after power_on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence

from oscar_deploy.nodes.model import Node
from oscar_deploy.providers.power import Machine
from oscar_deploy.spec.models import COMMAND_PLACEHOLDER
from oscar_deploy.support import process_group
from oscar_deploy.support.errors import OperationError, UserInputError

COMMAND_TIMEOUT = 120.0


def host_values(node: Node) -> dict[str, str]:
    """What the placeholders of `node`'s commands may name."""
    values = {str(key): str(value) for key, value in node.variables.items() if isinstance(value, str | int)}
    values.update(
        node=node.name,
        ansible_host=node.ssh_host or node.name,
        ansible_user=node.ssh_user,
        ansible_port=str(node.ssh_port),
        node_address=node.address or node.ssh_host or node.name,
    )
    return values


def fill(command: Sequence[str], values: Mapping[str, str], where: str) -> list[str]:
    """`command` with each placeholder replaced by the host's value (each argument stays one argument)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise UserInputError(f"{where}: {{{name}}} is not a variable of this host; add it to the inventory")
        text = values[name]
        if text.startswith("-") or "\x00" in text or "\n" in text:
            raise UserInputError(
                f"{where}: {{{name}}} is {text[:40]!r}; a value may not start with '-' nor hold control characters"
            )
        return text

    return [command[0], *(COMMAND_PLACEHOLDER.sub(value, item) for item in command[1:])]


class CommandPower:
    """Run the configured command to switch a worker on or off."""

    def __init__(
        self, nodes: Callable[[], list[Node]], power_on_command: Sequence[str], power_off_command: Sequence[str]
    ) -> None:
        self.nodes = nodes
        self.commands = {"on": list(power_on_command), "off": list(power_off_command)}

    def _run(self, which: str, name: str) -> None:
        key = f"static.power_{which}_command"
        command = self.commands[which]
        if not command:
            raise UserInputError(f"{key}: not set; give the command that switches a worker {which}")
        agents = {node.name: node for node in self.nodes() if node.role == "agent"}
        node = agents.get(name)
        if node is None:
            raise OperationError(f"node {name}: not a worker of the inventory; only workers are powered")
        program = shutil.which(command[0])
        if program is None:
            raise UserInputError(f"{key}: program {command[0]!r} not found on PATH; install it or give its path")
        argv = fill(command, host_values(node), f"{key} for host {name}")
        try:
            result = process_group.run([program, *argv[1:]], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise OperationError(f"node {name}: {key} did not finish in {COMMAND_TIMEOUT:.0f}s") from None
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[0][:200]
            raise OperationError(f"node {name}: {key} exited {result.returncode}: {detail}")

    def power_on(self, name: str) -> None:
        self._run("on", name)

    def power_off(self, name: str) -> None:
        self._run("off", name)

    def machines(self) -> list[Machine]:
        return [Machine(node.name, "unknown", node.arch) for node in self.nodes() if node.role == "agent"]
