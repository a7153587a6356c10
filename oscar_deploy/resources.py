"""Where the bundled layers live: beside the package in a wheel, at the repository root in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
LAYERS = ("playbooks", "stacks", "templates", "inventories")


def layer_dir(name: str) -> Path:
    """Folder of one bundled layer (`playbooks`, `stacks`, `templates` or `inventories`)."""
    if name not in LAYERS:
        raise ValueError(f"unknown layer {name!r}")
    installed = _PACKAGE_DIR / "_bundled" / name
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / name
