"""The house rules of the layout, checked on the source tree (docs/LAYOUT.md says why).

- `jaxdl/models/` holds nnx modules only: it imports no training, data or
  evaluation code and no top-level jaxdl module but `errors`, and it holds no C++
  and makes no FFI call (those live in `jaxdl/kernels/`).
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
OUTSIDE = re.compile(r"(?:issue|ticket)\s*#?\d+|#\d{2,}\b|DESIGN\.md|\.\./shared", re.IGNORECASE)


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
