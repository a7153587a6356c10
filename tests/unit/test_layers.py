"""The package's layers import downwards only, and no module imports itself back through others.

Read from the source with `ast` (imports inside functions count too), so a new upward import fails here
before it becomes a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "oscar_deploy"
# Lowest first; a layer may import its own modules and those of every layer before it.
LAYERS = (
    ("support",),
    ("spec",),
    ("state",),
    ("iac",),
    ("nodes",),
    ("providers",),
    ("platform", "services"),
    ("pipeline",),
    ("autoscaler",),
    ("cli",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def imports_of(path: Path) -> set[str]:
    """The `oscar_deploy.*` modules a file imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("oscar_deploy.")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def test_every_sub_package_is_a_known_layer() -> None:
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert packages == set(RANK), "add a new sub-package to LAYERS (and to the README's layer table)"
    loose = sorted(path.name for path in PACKAGE.glob("*.py") if path.name not in ("__init__.py", "__main__.py"))
    assert loose == [], "every module belongs to a layer's sub-package"


def test_layers_import_downwards_only() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = layer_of(module_name(path))
        if source is None:
            continue
        for imported in sorted(imports_of(path)):
            target = layer_of(imported)
            if target is not None and RANK[target] > RANK[source]:
                upward.append(f"{module_name(path)} imports {imported} ({source} < {target})")
    assert upward == []


def test_no_import_cycles_between_modules() -> None:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {
        name: {imported for imported in imports_of(path) if imported in modules and imported != name}
        for name, path in modules.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for successor in sorted(graph[name]):
            if state.get(successor) == 1:
                cycles.append([*trail[trail.index(successor) :], successor])
            elif successor not in state:
                visit(successor, [*trail, successor])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
