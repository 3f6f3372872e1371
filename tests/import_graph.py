"""The import graph of the package, read from the source with ``ast`` (imports inside functions count).

Used by ``test_structure.py`` (no cycles, no private names across packages, peers apart) and by
``docs/figures/layers.py`` (the picture of the layers in ``docs/architecture.md``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

#: The package's source folder.
PACKAGE = Path(__file__).resolve().parents[1] / "miam_explain"


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules()


def owner(name: str) -> str:
    """The longest module of the package that ``name`` (a module or a module attribute) lies in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(module: str) -> list[tuple[str, str]]:
    """``(target module, imported name or '')`` for every import of the package in ``module``, nested ones too."""
    path = MODULES[module]
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == PACKAGE.name:
                out.extend((target, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            out.extend((alias.name, "") for alias in node.names if alias.name.split(".")[0] == PACKAGE.name)
    return out


def graph() -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (an imported submodule counts as itself)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target, name in imports(module):
            found = owner(f"{target}.{name}" if f"{target}.{name}" in MODULES else target)
            if found and found != module:
                edges[module].add(found)
    return edges


def subpackage(module: str) -> str:
    """``miam_explain.explain.run`` -> ``miam_explain.explain``."""
    return ".".join(module.split(".")[:2])


def layer_graph() -> dict[str, set[str]]:
    """The graph between the package's sub-packages and top-level modules (``data``, ``explain``, ``files`` …)."""
    out: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph().items():
        a = subpackage(module)
        for target in targets:
            b = subpackage(target)
            if a != b and a != PACKAGE.name:
                out[a.split(".", 1)[1]].add(b.split(".", 1)[1])
    return out
