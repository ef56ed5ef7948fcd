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
    ("core/tensors.py", "import streamlit", "core is the metric engine"),
    ("core/metrics/psnr.py", "from teach import quiz", "Layers"),
    ("viz/charts.py", "import torch", "viz turns results into figures"),
    ("teach/sweeps.py", "import store", "Layers"),
    ("core/folders.py", "import distributed", "The engine and the app run without"),
    ("cluster/__init__.py", "import streamlit", "cluster ships core"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, contract):
    tree = copy_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # deliberately forbidden\n")
    result = lint(tree)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Contracts:")[0]
    assert contract in broken and "BROKEN" in broken, result.stdout
