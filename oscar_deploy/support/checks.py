"""One line of `doctor`: what was checked, how it went, and the fix; and finding the tools checks look for."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Status = Literal["ok", "warn", "missing"]


@dataclass(frozen=True)
class Check:
    """One line of `doctor`: what was checked, how it went, what was found, and the fix when not ok."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    # Targets that cannot work while this check is `missing`.
    needed_for: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "check": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "needed_for": list(self.needed_for),
        }


def find_tool(name: str) -> str | None:
    """A command on PATH, or beside this Python (a virtual environment's bin/ need not be on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    sibling = Path(sys.executable).parent / name
    return str(sibling) if sibling.is_file() and os.access(sibling, os.X_OK) else None
