"""The house rules of the layout, checked on the source tree (README.md, "Layout", says why).

- `jaxdl/models/` holds nnx modules only: it imports no training, data or
  evaluation code and no top-level jaxdl module but `errors`, and it holds no C++
  and makes no FFI call (those live in `jaxdl/kernels/`).
- `jaxdl/data/` imports nothing from `train/`, `word2vec/`, `recipes/` or `sweep/`.
- No module imports another module's `_private` name (`from jaxdl.x import _y`, or
  `x._y` on an imported jaxdl module): a shared helper is made public where it lives.
- No import circle among jaxdl modules, counting imports inside functions too: a
  deferred import only hides from the loader two modules that need each other
  (the concept is split in the wrong place), which is what this rule is for.
- Comments and docstrings under `jaxdl/` carry no timings and point at nothing
  outside the repository: figures live in `benchmarks/RESULTS.md` and `docs/`.
"""

from __future__ import annotations

import ast
import io
import pathlib
import re
import tokenize

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jaxdl"
FORBIDDEN_PACKAGES = ("jaxdl.train", "jaxdl.evaluation", "jaxdl.data", "jaxdl.recipes",
                      "jaxdl.word2vec")
ALLOWED_TOP_LEVEL = {"jaxdl.errors"}
FFI_NAMES = ("ffi", "ctypes", "register_custom_call", "custom_call")


def _where(path: pathlib.Path) -> pathlib.Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _top_level_modules() -> set[str]:
    return {f"jaxdl.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted module) of every import; `from a import b` yields `a.b` and `a`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def model_layer_violations(models_dir: pathlib.Path) -> list[str]:
    """Every import or file under `models_dir` that breaks the ground-floor rule."""
    problems = []
    top_level = _top_level_modules()
    for path in sorted(models_dir.rglob("*")):
        rel = _where(path)
        if path.suffix in (".cc", ".cpp", ".c", ".h", ".hpp", ".cu"):
            problems.append(f"{rel}: native source under jaxdl/models (belongs in jaxdl/kernels)")
        if path.suffix != ".py":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in _imported_modules(tree):
            if module.startswith(FORBIDDEN_PACKAGES) or (
                    module in top_level and module not in ALLOWED_TOP_LEVEL):
                problems.append(f"{rel}:{line}: imports {module}")
            if module.startswith("jaxdl.kernels") or module.split(".")[-1] in FFI_NAMES:
                problems.append(f"{rel}:{line}: imports {module} (FFI belongs in jaxdl/kernels)")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in FFI_NAMES:
                problems.append(f"{rel}:{node.lineno}: uses .{node.attr} (FFI belongs in jaxdl/kernels)")
    return problems


def module_names(package: pathlib.Path) -> dict[str, pathlib.Path]:
    """``{"jaxdl.train.loop": path, "jaxdl.train": path/__init__.py, ...}`` of a package dir."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = (package.name,) + path.relative_to(package).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The dotted name a (possibly relative) ``from`` import refers to."""
    if not level:
        return module or ""
    base = importer.split(".")[:len(importer.split(".")) - level + (1 if is_package else 0)]
    return ".".join(base + ([module] if module else []))


def _imports(tree: ast.AST, importer: str, is_package: bool, modules) -> list[tuple]:
    """``(line, target module, imported names)`` of every import of a jaxdl module,
    inside functions too.

    ``from a import b`` targets ``a.b`` when that is a module, else ``a`` (names ``[b]``).
    """
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, []) for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node.module, node.level, importer, is_package)
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    found.append((node.lineno, f"{source}.{alias.name}", []))
                elif source in modules:
                    found.append((node.lineno, source, [alias.name]))
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


UPWARD = ("train", "word2vec", "recipes", "sweep")


def import_violations(package: pathlib.Path) -> dict[str, list[str]]:
    """The three import rules of the module docstring, checked on every module of ``package``.

    Returns:
      ``{"upward": [...], "private": [...], "circle": [...]}``, each a list of
      ``file:line: what`` (a circle: its modules in import order).
    """
    modules = module_names(package)
    root = package.name
    upward = tuple(f"{root}.{p}" for p in UPWARD)
    problems = {"upward": [], "private": [], "circle": []}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        rel = _where(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        bound = {}  # local name -> jaxdl module, for ``alias._name`` uses
        for line, target, names in _imports(tree, name, is_package, modules):
            if target != name:
                graph[name].add(target)
            if name.startswith(f"{root}.data.") or name == f"{root}.data":
                found = f"{rel}:{line}: data imports {target}"
                if target.startswith(upward) and found not in problems["upward"]:
                    problems["upward"].append(found)
            for imported in names:
                if _private(imported) and target != name:
                    problems["private"].append(f"{rel}:{line}: imports {target}.{imported}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        bound[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(node.module, node.level, name, is_package)
                for alias in node.names:
                    if f"{source}.{alias.name}" in modules:
                        bound[alias.asname or alias.name] = f"{source}.{alias.name}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                dotted = ast.unparse(node.value)
                if dotted in bound and bound[dotted] != name:
                    problems["private"].append(f"{rel}:{node.lineno}: uses {bound[dotted]}."
                                               f"{node.attr}")
    problems["circle"] = [" -> ".join(cycle + [cycle[0]]) for cycle in _circles(graph)]
    return problems


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def connect(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
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
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    cycles = []
    for component in components:  # walk inside the component back to its first module
        members, start = set(component), min(component)
        path, seen, node = [start], {start}, start
        while True:
            node = min(n for n in graph[node] if n in members)
            if node == start or node in seen:
                break
            path.append(node)
            seen.add(node)
        cycles.append(path[path.index(node):] if node != start else path)
    return cycles


def test_data_imports_nothing_above_it():
    assert import_violations(PACKAGE)["upward"] == []


def test_no_module_imports_another_modules_private_name():
    assert import_violations(PACKAGE)["private"] == []


def test_no_import_circle():
    assert import_violations(PACKAGE)["circle"] == []


def _tree(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        path = tmp_path / "jaxdl" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "jaxdl"


CLEAN = {"__init__.py": "", "data/__init__.py": "", "data/arrays.py": "import numpy\n",
         "train/__init__.py": "", "train/loop.py": "from jaxdl.data.arrays import load\n",
         "errors.py": "class ConfigError(Exception):\n    pass\n"}


def test_the_import_rules_pass_a_clean_tree(tmp_path):
    assert import_violations(_tree(tmp_path, CLEAN)) == {"upward": [], "private": [],
                                                         "circle": []}


@pytest.mark.parametrize("upward", ["from jaxdl.train.loop import fit",
                                    "import jaxdl.sweep.grid", "from jaxdl.recipes import text",
                                    "def f():\n    from jaxdl.word2vec import training"])
def test_the_import_rules_catch_an_upward_import_from_data(tmp_path, upward):
    files = dict(CLEAN, **{"data/bad.py": upward + "\n", "sweep/__init__.py": "",
                           "sweep/grid.py": "", "recipes/__init__.py": "", "recipes/text.py": "",
                           "word2vec/__init__.py": "", "word2vec/training.py": ""})
    problems = import_violations(_tree(tmp_path, files))
    assert len(problems["upward"]) == 1 and "data/bad.py" in problems["upward"][0]


@pytest.mark.parametrize("text, what", [
    ("from jaxdl.data.arrays import _check\n", "imports jaxdl.data.arrays._check"),
    ("from jaxdl.data import arrays\narrays._check(1)\n", "uses jaxdl.data.arrays._check"),
    ("import jaxdl.data.arrays as a\na._check(1)\n", "uses jaxdl.data.arrays._check"),
])
def test_the_import_rules_catch_a_private_name_across_modules(tmp_path, text, what):
    files = dict(CLEAN, **{"train/bad.py": text,
                           "data/arrays.py": "def _check(x):\n    return x\n_check(0)\n"})
    problems = import_violations(_tree(tmp_path, files))
    assert [p.split(": ", 1)[1] for p in problems["private"]] == [what]


def test_the_import_rules_catch_a_circle_and_a_deferred_one(tmp_path):
    files = dict(CLEAN, **{"train/a.py": "from jaxdl.train import b\n",
                           "train/b.py": "import jaxdl.train.c\n",
                           "train/c.py": "from jaxdl.train.a import run\n",
                           "train/d.py": "def f():\n    from jaxdl.train import e\n",
                           "train/e.py": "from jaxdl.train import d\n"})
    problems = import_violations(_tree(tmp_path, files))
    assert problems["circle"] == ["jaxdl.train.a -> jaxdl.train.b -> jaxdl.train.c -> jaxdl.train.a",
                                  "jaxdl.train.d -> jaxdl.train.e -> jaxdl.train.d"]


def test_models_are_the_ground_floor():
    assert model_layer_violations(PACKAGE / "models") == []


def test_the_layout_check_catches_an_upward_import_and_a_kernel(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "bad.py").write_text("from jaxdl.train.loop import fit\nimport jax\njax.ffi.ffi_call\n")
    (models / "kernel.cc").write_text("int main() {}\n")
    problems = model_layer_violations(models)
    assert any("imports jaxdl.train.loop" in p for p in problems)
    assert any("uses .ffi" in p for p in problems)
    assert any("kernel.cc: native source" in p for p in problems)


# A number followed by a unit of time or throughput, a speed-up factor, or a
# pointer to an issue tracker or to a design file that is not in the repository.
TIMING = re.compile(
    r"\b\d[\d.,]*\s*[kKM]?\s*(?:ms|µs|us|ns|s|sec|secs|seconds|minutes|min|words/s|steps/s|images/s)\b"
    r"|\b\d[\d.]*\s*[x×]\s+(?:faster|slower)\b", re.IGNORECASE)
OUTSIDE = re.compile(r"(?:issue|ticket)\s*#?\d+|#\d{2,}\b|\.\./shared", re.IGNORECASE)


def prose_of(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring in a Python source."""
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            found.append((tok.start[0], tok.string))
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                line = node.body[0].lineno if node.body else 1
                found.append((line, doc))
    return found


def prose_violations(paths) -> list[str]:
    problems = []
    for path in paths:
        for line, text in prose_of(path.read_text()):
            for pattern, what in ((TIMING, "a timing"), (OUTSIDE, "a reference outside the repo")):
                match = pattern.search(text)
                if match:
                    problems.append(f"{_where(path)}:{line}: {what}: {match.group(0)!r}")
    return problems


def test_comments_and_docstrings_carry_no_timings_or_outside_references():
    assert prose_violations(sorted(PACKAGE.rglob("*.py"))) == []


@pytest.mark.parametrize("text,caught", [
    ("# 190 vs 50 ms per step on 2 cores", True),
    ('"""Runs at 1.2M words/s."""', True),
    ("# the direct kernel is 4x faster than XLA", True),
    ("# see issue #14", True),
    ("# batch of 32 images, 5 epochs", False),
])
def test_the_prose_check_tells_timings_from_sizes(tmp_path, text, caught):
    path = tmp_path / "probe.py"
    path.write_text(text + "\n")
    assert bool(prose_violations([path])) == caught
