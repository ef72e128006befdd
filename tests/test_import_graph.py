"""The layers of zoejax, drawn as a table and enforced on the import graph of ``zoejax/`` and ``data_pipelines/``.

The graph is read with ``ast`` from the source (nothing is imported): every ``import`` and ``from ... import``,
at module level and inside functions alike, is an edge. The test fails on any import cycle and on any import that
runs upward (from a module to one in a higher layer). Modules in one layer may import each other (no cycle).
A new module or package must be given a layer in ``LAYERS``; run with ``-s`` to see the graph's summary.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("zoejax", "data_pipelines")

# Lowest first. A module belongs to the layer of the longest prefix naming it (a prefix names a module and every
# module below it); it may import modules of its own layer and of the layers before it, never of those after it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("zoejax.version", "zoejax.host_memory")),  # no zoejax imports at all
    ("ops", ("zoejax.ops",)),  # kernels and numerics: attention, convolutions, resizing
    ("models", ("zoejax.models",)),  # Flax modules, configs, presets, FLOPs, host-side input checks
    ("io", ("zoejax.io", "zoejax.preprocess", "data_pipelines")),  # files, images, input preparation, data
    ("storage", ("zoejax.storage",)),  # converted folders and training work directories
    # the model with its weights: forward, predict, predict_batch; each family's class and the table of them
    ("inference", ("zoejax.inference", "zoejax.inference_depth_anything", "zoejax.inference_models",
                   "zoejax.inference_relative")),
    ("conversion", ("zoejax.conversion",)),  # official / MiDaS / HF checkpoints in and out
    ("applications", ("zoejax.training", "zoejax.evaluation", "zoejax.serving")),
    ("facade", ("zoejax", "zoejax.api")),  # ``zoejax.load``: composes the layers above, imported by none
    ("entry points", ("zoejax.cli", "zoejax.config_base", "zoejax.configs")),  # CLIs, the shipped recipes
)
RANK = {prefix: rank for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes}


def module_files() -> dict[str, tuple[Path, bool]]:
    """{dotted module name: (file, is a package __init__)} of every .py file under PACKAGES."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def import_graph() -> dict[str, set[str]]:
    """{module: the project modules it imports}, counting imports inside functions and classes."""
    modules = module_files()

    def known(name: str) -> str | None:  # the innermost project module a dotted name lies in
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, (path, is_package) in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package this module is in
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
                for alias in node.names:  # ``from pkg import module`` names the module, else pkg itself
                    full = f"{base}.{alias.name}"
                    edges.add(full if full in modules else known(base))
        edges.discard(None)
        edges.discard(name)
        graph[name] = edges
    return graph


def layer_of(module: str) -> int:
    name = module
    while name:
        if name in RANK:
            return RANK[name]
        name = name.rpartition(".")[0]
    raise AssertionError(f"{module} has no layer: add it (or its package) to LAYERS in {Path(__file__).name}")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    return [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
            for a in sorted(graph) for b in sorted(graph[a]) if layer_of(b) > layer_of(a)]


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_every_module_has_a_layer(graph):
    for module in graph:
        layer_of(module)


def test_no_import_cycle_and_no_upward_import(graph):
    found, up = cycles(graph), upward(graph)
    print(f"\nimport graph: {len(graph)} modules, {sum(map(len, graph.values()))} imports, "
          f"{len(found)} cycles, {len(up)} upward")
    for rank, (layer, _) in enumerate(LAYERS):
        print(f"  {layer}: {sum(layer_of(m) == rank for m in graph)} modules")
    problems = [f"import cycle among {{{', '.join(c)}}}" for c in found] + [f"upward: {u}" for u in up]
    assert not problems, "\n".join(problems)


def test_the_checker_sees_function_level_imports_cycles_and_upward_edges():
    """The checker itself: a function-level import is an edge, a cycle through one is found, and an import
    from models to training counts as upward (so the test above cannot pass by seeing nothing)."""
    graph = import_graph()
    assert "zoejax.conversion.convert" in graph["zoejax.conversion.load"]  # imported inside load_weights
    assert "zoejax.api" in graph["zoejax"]  # imported inside zoejax.load
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    fake = {"zoejax.models.zoedepth": {"zoejax.training.loop"}, "zoejax.training.loop": set()}
    assert upward(fake) == ["zoejax.models.zoedepth (models) imports zoejax.training.loop (applications)"]
