"""The layers point one way (docs/architecture.md, section "Layers"): common, kg, the corpus
layer (``model.data``), retrieval, the model, the API, each importing only those below it,
with no import cycle between modules. Every import counts: at module level, inside a function,
or under ``TYPE_CHECKING`` (a type-only cycle is still two modules that must change together).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("common", "kg", "model.data", "retrieval", "model", "api")


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of the longest layer name ``module`` is in."""
    best = -1
    for i, name in enumerate(LAYERS):
        if (module == name or module.startswith(name + ".")) and (
            best < 0 or len(name) > len(LAYERS[best])
        ):
            best = i
    return best


def project_modules(root: Path) -> dict[str, Path]:
    mods = {}
    for top in {name.split(".")[0] for name in LAYERS}:
        for path in sorted((root / top).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports (the deepest existing module of each name)."""
    mods = project_modules(root)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a)
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports(import_graph(ROOT)) == []


def test_no_import_cycle_between_modules():
    assert cycles(import_graph(ROOT)) == []


def test_the_checks_find_an_upward_import_and_a_cycle(tmp_path):
    for folder in ("common", "kg", "model/data", "retrieval", "model", "api"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "kg" / "store.py").write_text("from kg import embedded\n")
    (tmp_path / "kg" / "embedded.py").write_text(
        "def open_():\n    from kg.store import open_store\n"
    )
    (tmp_path / "model" / "data" / "schema.py").write_text("import common\n")
    (tmp_path / "retrieval" / "linker.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from model.train import x\n"
    )
    (tmp_path / "model" / "train.py").write_text("from .data import schema\nimport api\n")
    graph = import_graph(tmp_path)
    assert upward_imports(graph) == ["model.train -> api", "retrieval.linker -> model.train"]
    assert cycles(graph) == [["kg.embedded", "kg.store"]]
    assert "model.data.schema" in graph["model.train"]  # a relative import resolves
    assert layer_of("model.data.schema") < layer_of("retrieval.linker") < layer_of("model.train")
