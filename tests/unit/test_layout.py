"""The layout of the test code (see tests/harness/__init__.py): the benchmarks share helpers with
the suites through non-test modules, and fixtures come from conftest files, never imported."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> list[str]:
    """Every module `path` imports (for `from x import y`, both `x` and `x.y`: y may be a module)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def is_test_module(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return module.startswith("tests.") and (last.startswith("test_") or last == "conftest")


@pytest.mark.parametrize("path", sorted((REPO / "bench").glob("*.py")), ids=lambda p: p.name)
def test_a_benchmark_imports_no_test_module_or_conftest(path):
    assert [m for m in imported_modules(path) if is_test_module(m)] == []


def test_no_test_code_imports_a_conftest():
    offenders = {
        str(path.relative_to(REPO)): found
        for path in sorted((REPO / "tests").rglob("*.py"))
        if (found := [m for m in imported_modules(path) if m.rsplit(".", 1)[-1] == "conftest"])
    }
    assert offenders == {}


def test_no_double_or_simulator_is_loose_at_the_tests_root():
    loose = [p.name for p in (REPO / "tests").glob("*.py") if any(word in p.stem for word in ("sim", "double", "fake", "stub"))]
    assert loose == []
