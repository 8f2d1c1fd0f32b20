"""The import graph of minialign: no cycles, and imports only point down the layers.

The graph is read from the source with ``ast`` (every ``import`` and ``from ... import``,
including those inside functions, relative ones resolved), not from ``sys.modules``, so a
cycle hidden in a function-level import counts. ``from pkg import name`` is an edge to the
module ``pkg.name`` when that is a module, and to ``pkg`` (its ``__init__``) otherwise.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Modules outside minialign.train that may import it: the programs that run trainers
# (pretrained.py rebuilds the shipped reference policies with train_sft).
TRAIN_USERS = {"minialign.cli", "minialign.demo", "minialign.runs", "minialign.frontier",
               "minialign.frontier_methods", "minialign.pretrained"}  # fmt: skip
TRAIN_USER_PACKAGES = ("minialign.check", "minialign.exercises")


def _module_files() -> dict[str, Path]:
    files = {}
    for path in sorted((ROOT / "minialign").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _targets(name: str, path: Path, modules) -> set[str]:
    """The minialign modules that ``name`` (at ``path``) imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from ..nn import y
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {t for t in found if t.split(".")[0] == "minialign"}


def import_graph() -> dict[str, set[str]]:
    files = _module_files()
    return {name: _targets(name, path, files) for name, path in files.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (or a self-import),
    by Tarjan's algorithm, written iteratively."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in graph), None)
            if child is None:
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
                    if len(component) > 1 or node in graph[node]:
                        cycles.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return cycles


GRAPH = import_graph()


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_graph_sees_every_module_and_its_imports():
    assert "minialign.autograd.engine" in GRAPH and "minialign.nn.gpt" in GRAPH
    assert "minialign.autograd.engine" in GRAPH["minialign.autograd.ops"]  # from .engine import
    assert "minialign.functional" in GRAPH["minialign.nn.layers"]  # from .. import functional


def test_find_cycles_finds_cycles_through_packages_and_function_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}, "f": set()}
    assert sorted(find_cycles(graph)) == [["a", "b", "c"], ["d"]]
    assert find_cycles({"x": {"y"}, "y": set()}) == []


def test_targets_resolve_relative_and_function_level_imports(tmp_path):
    source = (
        "from . import gpt\nfrom ..autograd import Tensor\ndef f():\n    from .. import train\n"
    )
    path = tmp_path / "layers.py"
    path.write_text(source)
    modules = {"minialign.nn.gpt", "minialign.train", "minialign.autograd"}
    assert _targets("minialign.nn.layers", path, modules) == modules


def test_no_import_cycles():
    cycles = find_cycles(GRAPH)
    assert not cycles, (
        "import cycles (each a set of modules that import each other):\n"
        + "\n".join(" <-> ".join(c) for c in cycles)
    )


def test_autograd_imports_nothing_else_from_minialign():
    bad = {
        (m, t)
        for m, targets in GRAPH.items()
        if _inside(m, "minialign.autograd")
        for t in targets
        if not _inside(t, "minialign.autograd")
    }
    assert not bad, f"autograd must import only autograd: {sorted(bad)}"


def test_objectives_import_only_autograd():
    bad = {
        (m, t)
        for m, targets in GRAPH.items()
        if _inside(m, "minialign.objectives")
        for t in targets
        if not (_inside(t, "minialign.objectives") or _inside(t, "minialign.autograd"))
    }
    assert not bad, f"objectives must import only objectives and autograd: {sorted(bad)}"


def _train_importers() -> set[tuple[str, str]]:
    return {
        (m, t)
        for m, targets in GRAPH.items()
        if not _inside(m, "minialign.train")
        and m not in TRAIN_USERS
        and not any(_inside(m, p) for p in TRAIN_USER_PACKAGES)
        for t in targets
        if _inside(t, "minialign.train")
    }


def test_only_programs_import_train():
    bad = _train_importers()
    assert not bad, (
        f"only {sorted(TRAIN_USERS)}, {TRAIN_USER_PACKAGES} and notebooks may import "
        f"minialign.train; found {sorted(bad)}"
    )
