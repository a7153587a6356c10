"""What a cloud preflight reports: every gap between the spec and the cloud, one line each, all in one go.

A gap names the spec key to change (or the quota to raise) and the fix, in the project's one-line style
`key: what is wrong; what to do`. The preflight never stops at the first gap, so one run shows them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oscar_deploy.support.errors import UserInputError

UNLIMITED = -1


class PreflightError(UserInputError):
    """The cloud cannot hold the cluster the spec asks for: one line per gap."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass
class PreflightReport:
    """Gaps found, notes (checks that could not run, shown but not blocking), and what the preflight learnt that
    the provider can use (never printed as a whole: it may hold a token)."""

    gaps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.gaps

    def gap(self, key: str, problem: str, fix: str) -> None:
        self.gaps.append(f"{key}: {problem}; {fix}")

    def raise_for_gaps(self) -> None:
        if self.gaps:
            raise PreflightError(self.gaps)


def free(limit: int | None, used: int | None, reserved: int | None = 0) -> int | None:
    """What is left of a quota; None when unlimited (-1) or not reported."""
    if limit is None or limit == UNLIMITED or limit < 0:
        return None
    return limit - (used or 0) - (reserved or 0)


def quota_gap(
    report: PreflightReport, *, key: str, what: str, needed: int, limit: int | None, left: int | None, fix: str
) -> None:
    """Add a gap when `needed` exceeds what is `left` of a quota of `limit`."""
    if left is not None and needed > left:
        report.gap(key, f"the nodes need {needed} {what}, the quota leaves {max(left, 0)} of {limit}", fix)
