"""The package stays a tree: no import cycles, and imports run the way STYLE.md draws them.

Faces (main, predict, convert, report, splits) → the loop (train) and evaluation-only runs
(evaluate) → evaluation (evals) → the run plan (plan) → objectives → models, weights, data. The
graph is read from the source with `ast` (function-level imports included), so a cycle hidden
inside a function counts too.
"""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("actionclip_jax", "data_pipeline")


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: pathlib.Path, modules: set[str]) -> set[str]:
    """The project modules `path` imports (`from a import b` counts `a.b` when it is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    modules = set(files)
    graph = {}
    for name, path in files.items():
        deps = _imports(path, modules) - {name}
        # A package's __init__ importing its own submodules is how packages work, not a cycle.
        graph[name] = {d for d in deps if not (name.startswith(d + ".") and d in files)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_packages():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


# Who may not import whom (prefix of the importer, prefixes it must not import, why).
FORBIDDEN = [
    ("data_pipeline", ("actionclip_jax",), "the data pipeline knows no model"),
    ("actionclip_jax.models", ("actionclip_jax.", "data_pipeline"),
     "models know nothing of data, training or files"),
    ("actionclip_jax.objectives", ("actionclip_jax.plan", "actionclip_jax.evals",
                                   "actionclip_jax.train", "actionclip_jax.evaluate",
                                   "data_pipeline"), "objectives are below the plan"),
    ("actionclip_jax.plan", ("actionclip_jax.evals.evaluator", "actionclip_jax.evals.passes",
                             "actionclip_jax.train", "actionclip_jax.evaluate"),
     "the plan is below evaluation and the loop"),
    ("actionclip_jax.evals", ("actionclip_jax.train", "actionclip_jax.evaluate",
                              "actionclip_jax.main"), "evaluation is below the loop"),
    ("actionclip_jax.train", ("actionclip_jax.evaluate", "actionclip_jax.main"),
     "the loop and evaluation-only runs do not import each other"),
    ("actionclip_jax.evaluate", ("actionclip_jax.train", "actionclip_jax.main"),
     "the loop and evaluation-only runs do not import each other"),
    ("actionclip_jax.weights", ("actionclip_jax.train", "actionclip_jax.plan",
                                "actionclip_jax.evals"), "weight import feeds the models"),
]  # fmt: skip

# What models may use of the package: their own modules only.
MODEL_OK = ("actionclip_jax.models",)


@pytest.mark.parametrize("importer,banned,why", FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
def test_imports_run_one_way(importer, banned, why):
    graph = import_graph()
    bad = []
    for module, deps in graph.items():
        if module != importer and not module.startswith(importer + "."):
            continue
        for dep in deps:
            if dep.startswith(MODEL_OK) and importer.startswith(MODEL_OK):
                continue
            if dep.startswith(banned):
                bad.append(f"{module} imports {dep}")
    assert not bad, f"{why}: " + "; ".join(sorted(bad))


def test_configs_import_only_ml_collections_and_each_other():
    for path in (REPO / "configs").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in ("ml_collections", "configs"), (path.name, name)
