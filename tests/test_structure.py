"""The shape of the package: no import cycles, no private names across packages, small files, peers apart.

Read from the source with ``ast`` (imports inside functions count), so a violation fails here
before it becomes a habit.
"""

from __future__ import annotations

import sys

import pytest

from import_graph import MODULES, PACKAGE, graph, imports, subpackage

#: Most lines in one file of the package.
MAX_LINES = 500

def test_no_import_cycles():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_no_private_name_is_imported_from_another_package():
    """Neither a ``_name`` nor a name from a ``_module`` (``_version`` aside, which only holds ``__version__``)."""
    offences = [
        f"{module} imports {name} from {target}"
        for module in MODULES
        for target, name in imports(module)
        if subpackage(target) != subpackage(module)
        and any(part.startswith("_") and not part.startswith("__") for part in [*target.split(".")[1:], name])
        and target != PACKAGE.name + "._version"
    ]
    assert not offences, "\n".join(offences)


def test_no_file_is_over_the_line_limit():
    long = {str(path.relative_to(PACKAGE.parent)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("a, b", [("explain", "training"), ("training", "explain"), ("training", "reports")])
def test_peers_do_not_import_each_other(a, b):
    crossing = [f"{m} -> {t}" for m, targets in graph().items() for t in targets
                if subpackage(m) == f"{PACKAGE.name}.{a}" and subpackage(t) == f"{PACKAGE.name}.{b}"]
    assert not crossing, "\n".join(crossing)


def test_the_checker_sees_nested_and_relativeimports():
    """The graph holds an import that sits inside a function (the CLI imports its commands' work lazily)."""
    targets = graph()[f"{PACKAGE.name}.commands.shapley"]
    assert any(t.startswith(f"{PACKAGE.name}.explain") for t in targets), targets
