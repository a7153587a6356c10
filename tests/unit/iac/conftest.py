"""Shared by the iac tests: the labelled Pulumi test data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "data" / "pulumi"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())
