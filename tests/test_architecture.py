"""The package's layers, checked from its own imports (module-level and inside functions alike).

Folders read in pipeline order; each imports only what lies below it, so a function-level import
can never be hiding a loop. MLflow stays at the edges, and no folder swallows the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "customer_value"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "errors", "config", "units", "metrics"),
    ("data",),
    ("simulation",),
    ("features",),
    ("probabilistic",),
    ("boosted",),
    ("valuation",),
    ("training",),
    ("plots",),
    ("evaluation",),
    ("reporting",),
    ("tracking",),
    ("pipeline",),
    ("api", "cli"),
)
"""Bottom to top. A name is a folder (every module in it) or a top-level module."""
MLFLOW_ALLOWED = ("tracking", "pipeline", "cli")


def _modules() -> dict[str, Path]:
    """Dotted module name (relative to the package) -> file."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The package module a dotted ``customer_value...`` name refers to (a package is its __init__)."""
    if name == "customer_value":
        return "__init__"
    if not name.startswith("customer_value."):
        return None
    rel = name.removeprefix("customer_value.")
    while rel:
        if rel in MODULES:
            return rel
        if f"{rel}.__init__" in MODULES:
            return f"{rel}.__init__"
        rel = rel.rpartition(".")[0]
    return None


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(package modules imported, top-level third-party names imported) anywhere in the file."""
    ours, theirs = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name)
                (ours.add(target) if target else theirs.add(alias.name.split(".")[0]))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            if not base.startswith("customer_value"):
                theirs.add(base.split(".")[0])
                continue
            for alias in node.names:
                target = _resolve(f"{base}.{alias.name}") if f"{base}.{alias.name}".removeprefix(
                    "customer_value.") in MODULES or f"{base}.{alias.name}.__init__".removeprefix(
                    "customer_value.") in MODULES else _resolve(base)
                if target:
                    ours.add(target)
    return ours, theirs


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    head = module.split(".")[0]
    for index, members in enumerate(LAYERS):
        if head in members:
            return index
    raise AssertionError(f"module {module} is in no layer: add its folder to LAYERS")


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_import_runs_up_a_layer():
    upward = [
        f"{module} (layer {LAYERS[_layer(module)]}) imports {target} (layer {LAYERS[_layer(target)]})"
        for module, (ours, _) in GRAPH.items()
        for target in ours
        if _layer(target) > _layer(module)
    ]
    assert not upward, "imports that run up the layers:\n" + "\n".join(sorted(upward))


def test_no_import_loops():
    """Depth-first search over every import, function-level ones included."""
    state: dict[str, int] = {}
    loops: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH[module][0]):
            if target == module:
                continue
            if state.get(target) == 1:
                loops.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in MODULES:
        if module not in state:
            visit(module, [module])
    assert not loops, "import loops:\n" + "\n".join(" -> ".join(loop) for loop in loops)


def test_mlflow_only_at_the_edges():
    offenders = [m for m, (_, theirs) in GRAPH.items() if "mlflow" in theirs and m.split(".")[0] not in MLFLOW_ALLOWED]
    assert not offenders, f"mlflow imported outside {MLFLOW_ALLOWED}: {offenders}"


@pytest.mark.parametrize("limit", [0.25])
def test_no_folder_holds_more_than_a_quarter_of_the_lines(limit):
    lines = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    total = sum(lines.values())
    folders: dict[str, int] = {}
    for name, n in lines.items():
        if "." in name:
            folders[name.split(".")[0]] = folders.get(name.split(".")[0], 0) + n
    too_big = {f: f"{n / total:.0%}" for f, n in folders.items() if n > limit * total}
    assert not too_big, f"folders over {limit:.0%} of the package's {total} lines: {too_big}"
