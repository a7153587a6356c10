"""Where the bundled layers live: beside the package in a wheel, at the repository root in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
LAYERS = ("playbooks", "stacks", "templates", "inventories")


def layer_dir(name: str) -> Path:
    """Folder of one bundled layer (`playbooks`, `stacks`, `templates` or `inventories`)."""
    if name not in LAYERS:
        raise ValueError(f"unknown layer {name!r}")
    bundled = _PACKAGE_DIR / "_bundled"
    root = bundled if bundled.is_dir() else _PACKAGE_DIR.parent
    return root / name
