"""A Pulumi operation's progress from its engine events, for the same displays Ansible's runs use.

The Automation API hands every engine event to `on_event` (pulumi.automation.events, from pulumi/pulumi
sdk/go/common/apitype/events.go): `resourcePreEvent` when a step starts, `resOutputsEvent` when it is done,
`resOpFailedEvent` when it failed, `diagnosticEvent` (severity info, info#err, warning or error) and a final
`summaryEvent` with the count of each operation. `PulumiProgress` turns them into a status line, a line for
each failure and each deletion or replacement, and a recap, like `nodes.ansible.RunProgress` does for Ansible.

Lines name a resource by the type and name in its URN, and quote diagnostics with every secret value the run
knows replaced by [secret]; property values (a step's inputs and outputs) are never read. The resources an
update acted on are kept as `ResourceStep`s (operation, URN and the provider's ID of the resource). In an
`up --refresh` the engine reports each refresh as a step of its own, `refresh`, whose new state is missing when
the provider no longer finds the resource (pulumi/pulumi pkg/resource/deploy/step.go, RefreshStep); such a
refresh is not counted in the summary, and is kept as a `MISSING` step.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from oscar_deploy.iac.recovery import resource_label
from oscar_deploy.iac.runner import MISSING, ResourceStep

if TYPE_CHECKING:
    from pulumi.automation.events import EngineEvent, StepEventMetadata

MESSAGE_LIMIT = 300
MASK = "[secret]"
# Secrets shorter than this are not masked: they would match ordinary words (generated ones have 32 characters).
MIN_MASKED_LENGTH = 8
# Steps counted as one change each; the parts of a replacement (create-replacement, delete-replaced) are not.
DONE = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "delete": "deleted",
    "read": "read",
    "import": "imported",
    "refresh": "refreshed",
}
PLANNED = {op: f"to {op}" for op in DONE}
# Worth a line of their own as they happen: the changes that remove something.
NOTABLE = {"delete", "replace"}
# The operations kept as the resources an update acted on.
ACTED_ON = {"create", "update", "replace", "delete", "import"}
COLOR_TAG = re.compile(r"<\{%[^%]*%\}>")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
GENERIC_FAILURE = re.compile(r"^(update|preview|destroy|refresh) failed$")


@dataclass
class PulumiProgress:
    """What a Pulumi operation is doing, built from its engine events."""

    operation: str  # up, preview, refresh or destroy
    stack: str  # project/stack
    secrets: frozenset[str] = frozenset()
    running: dict[str, str] = field(default_factory=dict)
    current: str = ""
    changes: Counter[str] = field(default_factory=Counter)
    unchanged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    summary: dict[str, int] | None = None
    steps: list[ResourceStep] = field(default_factory=list)

    @classmethod
    def start(cls, operation: str, stack: str, secrets: Iterable[str] = ()) -> PulumiProgress:
        return cls(operation, stack, frozenset(value for value in secrets if len(value) >= MIN_MASKED_LENGTH))

    @property
    def planning(self) -> bool:
        return self.operation == "preview"

    def handle(self, event: EngineEvent) -> str | None:
        """Update from one event; returns what happened when it is worth a line of its own."""
        if event.resource_pre_event is not None:
            step = event.resource_pre_event.metadata
            op = str(step.op.value)
            if op != "same":
                self.running[step.urn] = op
                self.current = f"{op} {resource_label(step.urn)}"
            return None
        if event.res_outputs_event is not None:
            step = event.res_outputs_event.metadata
            op = str(step.op.value)
            self.running.pop(step.urn, None)
            if op == "same":
                self.unchanged += 1
            elif op in DONE:
                self.changes[op] += 1
                self._keep(op, step)
                if op in NOTABLE and not self.planning:
                    return f"{DONE[op]}: {resource_label(step.urn)}"
            return None
        if event.res_op_failed_event is not None:
            self.running.pop(event.res_op_failed_event.metadata.urn, None)
            self.failed += 1
            return None
        if event.diagnostic_event is not None and event.diagnostic_event.severity == "error":
            diagnostic = event.diagnostic_event
            where = resource_label(diagnostic.urn) if diagnostic.urn else self.stack
            line = f"{where}: {self.clean(diagnostic.message)}"
            if line not in self.errors:
                self.errors.append(line)
                return line
            return None
        if event.summary_event is not None:
            changes = event.summary_event.resource_changes.items()
            self.summary = {str(getattr(op, "value", op)): int(count) for op, count in changes}
        return None

    def _keep(self, op: str, step: StepEventMetadata) -> None:
        if self.planning:
            return
        if op in ACTED_ON:
            state = step.new or step.old
            self.steps.append(ResourceStep(op, step.urn, state.id if state else ""))
        elif op == "refresh" and step.new is None:
            self.steps.append(ResourceStep(MISSING, step.urn, step.old.id if step.old else ""))

    def clean(self, message: str) -> str:
        """One line of a diagnostic: colour codes gone, a traceback cut to its last line, secrets masked."""
        text = ANSI.sub("", COLOR_TAG.sub("", message))
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        if any(line.startswith("Traceback (most recent call last)") for line in lines):
            lines = lines[-1:]
        line = " / ".join(lines[:3]) if lines else "no message"
        for secret in self.secrets:
            line = line.replace(secret, MASK)
        return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 3] + "..."

    def failure_lines(self) -> list[str]:
        """The errors worth reporting: the engine's closing "update failed" only when nothing says more."""
        specific = [line for line in self.errors if not GENERIC_FAILURE.match(line.partition(": ")[2])]
        return specific or list(self.errors)

    def _counts(self) -> str:
        words = PLANNED if self.planning else DONE
        counted = self.summary if self.summary is not None else dict(self.changes)
        parts = [f"{counted[op]} {words[op]}" for op in DONE if counted.get(op)]
        unchanged = counted.get("same", self.unchanged) if self.summary is not None else self.unchanged
        if unchanged:
            parts.append(f"{unchanged} unchanged")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts) or "no changes"

    def status_line(self) -> str:
        running = f" | {len(self.running)} running: {self.current}" if self.running else ""
        return f"pulumi {self.operation} {self.stack}{running} | {self._counts()}"

    def recap(self) -> str:
        return f"pulumi {self.operation} {self.stack}: {self._counts()}"
