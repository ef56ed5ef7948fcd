"""The import contracts in pyproject.toml ([tool.importlinter]) hold, and a broken one fails.

`make test` runs `lint-imports` too; this test also proves the contracts can fail: a copy of
the tree with a forbidden import (core importing Streamlit, viz importing torch) is rejected.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINTER = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
PACKAGES = tuple(LINTER["root_packages"])
LINT = Path(sys.executable).with_name("lint-imports")


def lint(cwd: Path) -> subprocess.CompletedProcess:
    if not LINT.exists():
        pytest.skip("import-linter is not installed (requirements-test.txt)")
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


def copy_tree(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(LINTER['contracts'])} kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module,line,contract", [
    ("core/images/tensors.py", "import streamlit", "core is the library"),
    ("core/metrics/psnr.py", "import argparse", "core is the library"),
    ("core/comparison.py", "import cli", "core is the library"),
    ("core/metrics/psnr.py", "from teach import quiz", "Layers"),
    ("store/sqlite.py", "import teach", "Layers"),
    ("store/records.py", "from teach.quiz import Agreement", "Layers"),
    ("cli/compare.py", "import views", "cli is the command line"),
    ("cli/folders.py", "import store", "cli is the command line"),
    ("viz/charts.py", "import torch", "viz turns results into figures"),
    ("core/folders/scoring.py", "import distributed", "The engine and the app run without"),
    ("cluster/__init__.py", "import streamlit", "cluster ships core"),
    ("core/folders/states.py", "from core.folders import scoring", "No import cycles"),
    ("bench/class_client.py", "import bench.load_class", "No import cycles"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, contract):
    tree = copy_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # deliberately forbidden\n")
    result = lint(tree)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Contracts:")[0]
    assert contract in broken and "BROKEN" in broken, result.stdout


def test_no_module_imports_itself_through_others():
    """No cycle anywhere in the module graph (a finer net than the per-package contract: two
    modules in different subpackages of one package count too)."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph(*PACKAGES)
    edges = {m: {n for n in graph.find_modules_directly_imported_by(m) if n in graph.modules} for m in graph.modules}
    cycles = _strongly_connected(edges)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(sorted(c)) for c in cycles)


def _strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively: the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_a_new_cycle_is_found():
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert _strongly_connected({"a": {"b"}, "b": set()}) == []
