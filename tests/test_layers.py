"""The house's layers, read from the source (AST): a pure base < nn (torch) < search (Optuna; Ray only in the
Tune adapter) < {bench, analysis} < cli. Each rule is a prefix check on every import a module makes, at its top
or inside a function; tests and experiments never import each other; no module imports itself back through
others, function-level imports included (a lazy import is how an upper layer reaches a lower one's heavy part,
never a way around a circle).
"""

import ast
import itertools
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "gcsearch"
FACE = {
    "gcsearch",
    "gcsearch.cli",
    "gcsearch.commands",
    "gcsearch.__main__",
}  # the package's face: may reach every layer


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, lazily: inside a function or under TYPE_CHECKING) for every import statement of a file;
    relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            # A function's body, or an `if TYPE_CHECKING:` block: neither runs when the module is imported.
            typing_only = isinstance(child, ast.If) and getattr(child.test, "id", "") == "TYPE_CHECKING"
            inner = nested or typing_only or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, nested) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    here = module_name(path).split(".")
                    base = ".".join([*here[: len(here) - child.level + (path.name == "__init__.py")], base]).strip(".")
                # `from gcsearch.nn import models` imports gcsearch.nn.models
                found.extend((f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base, nested)
                             for alias in child.names)  # fmt: skip
            visit(child, inner)

    visit(tree, False)
    return found


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def layer(module: str) -> str:
    parts = module.split(".")
    if module in FACE:
        return "face"
    return parts[1] if len(parts) > 2 else "base"


def hits(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


HEAVY = ("torch", "torchvision", "ray", "optuna")
UPPER = ("gcsearch.nn", "gcsearch.search", "gcsearch.bench", "gcsearch.analysis", "gcsearch.cli")
NOT_NN = ("gcsearch.search", "gcsearch.bench", "gcsearch.analysis", "gcsearch.cli", "gcsearch.spacefile", "yaml")
# The Tune adapter: the driver's loop (tune), a trial as a worker runs it (trial), Ray's start (cluster), Ctrl-C
# (pause) and the live view (progress).
RAY_SIDE = tuple(f"gcsearch.search.{m}" for m in ("tune", "trial", "cluster", "pause", "progress"))
# layer -> (prefixes it may never import, prefixes it may import only from a function)
RULES = {
    "base": (UPPER + HEAVY, ()),
    "nn": ((*NOT_NN, "optuna", "ray"), ()),  # torch only: it reads typed settings, never a file
    "search": (("gcsearch.bench", "gcsearch.analysis", "gcsearch.cli"), ()),
    "bench": (("gcsearch.analysis", "gcsearch.cli", "gcsearch.nn", "ray"), ()),
    "analysis": (("gcsearch.cli", "ray"), ("gcsearch.nn",)),
}


@pytest.mark.parametrize("path", sources("gcsearch"), ids=lambda p: module_name(p))
def test_each_layer_imports_only_the_layers_below_it(path):
    module = module_name(path)
    if layer(module) == "face":
        return
    never, lazily = RULES[layer(module)]
    for imported, nested in imports(path):
        assert not hits(imported, never), f"{module} imports {imported}"
        assert nested or not hits(imported, lazily), f"{module} imports {imported} at its top, not in a function"
        # Ray is search's only through its Tune adapter, and the torch side only where a trial trains.
        if layer(module) == "search" and module not in RAY_SIDE:
            assert not hits(imported, ("ray", "gcsearch.nn", "torch")), f"{module} imports {imported}"
        if layer(module) == "search" and module not in ("gcsearch.search.tune", "gcsearch.search.trial"):
            assert not hits(imported, ("gcsearch.nn", "torch")), f"{module} imports {imported}"


def test_the_subpackages_start_empty():
    # Importing gcsearch.search.decider must not load Ray through the package's __init__.
    for package in ("nn", "search", "bench", "analysis"):
        assert (PACKAGE / package / "__init__.py").read_text().strip() == "", package


def test_tests_and_experiments_never_import_each_other():
    for folder, other in (("tests", "experiments"), ("experiments", "tests")):
        for path in sources(folder):
            bad = [m for m, _ in imports(path) if hits(m, (other,))]
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_no_import_cycle_even_through_function_level_imports():
    # A lazy import inside a function is still a dependency: a circle through one (nn/data <-> nn/cache was one)
    # is two modules owning one concept. The package's face (gcsearch/__init__) is always loaded first: left out.
    graph = {module_name(p): {m for m, _ in imports(p) if m.startswith("gcsearch")} for p in sources("gcsearch")}
    graph = {m: {d for d in deps if d in graph and d != m and d != "gcsearch" and not m.startswith(d + ".")}
             for m, deps in graph.items()}  # fmt: skip
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            assert state.get(d) != 1, "import cycle: " + " -> ".join([*path, m, d])
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_the_rules_catch_what_they_should():
    # The checker itself: an upward import is found, at the top or in a function, and so is a lazy nn import
    # placed at an analysis module's top.
    assert hits("gcsearch.nn.models", RULES["base"][0]) and hits("torch.nn", RULES["base"][0])
    assert not hits("gcsearch.nnx", ("gcsearch.nn",)) and hits("gcsearch.nn", ("gcsearch.nn",))
    assert layer("gcsearch.search.tune") == "search" and layer("gcsearch.space") == "base"
    assert list(itertools.chain(*RULES["analysis"])) == ["gcsearch.cli", "ray", "gcsearch.nn"]


def test_a_trial_loads_no_optuna():
    # What runs a trial is kept apart from what decides (Syne Tune's split): a worker never loads Optuna.
    import subprocess
    import sys

    code = "import sys, gcsearch.search.trial; print(sorted(m for m in sys.modules if m.split('.')[0] == 'optuna'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
