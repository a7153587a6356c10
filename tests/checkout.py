"""The checkout these tests belong to, for every Python a test runs in a child process.

The development install is editable (`pip install -e` of one checkout), so a child Python's `import oscar_deploy`
finds that checkout's package: run from a git worktree, a test would start the CLI of another checkout. A child
whose environment goes through `checkout_environment` imports the package beside these tests instead. The session
fixture in tests/conftest.py puts it into the tests' own environment, which children inherit (those the tests
start and those the product starts: the guard, the Pulumi program's language host); a test that gives a child an
environment of its own passes it through here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def checkout_environment(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with this checkout first on PYTHONPATH (its other entries kept after it)."""
    entries = [str(REPOSITORY), *env.get("PYTHONPATH", "").split(os.pathsep)]
    return {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(entry for entry in entries if entry))}
