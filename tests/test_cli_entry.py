"""The command line's entry: what answers without PyTorch (``--help``, ``metrics``, usage
errors), the aliases (``python -m cli``, ``python -m core``), and how ``lpips-explorer app``
builds its server (the script beside its settings, the heap settings of ``make run``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli import app

ROOT = Path(__file__).resolve().parents[1]

# Each snippet runs the command line in a fresh interpreter, then says whether torch was loaded.
_PROBE = """
import sys, cli
try:
    code = cli.main({argv!r})
except SystemExit as exc:
    code = exc.code
print("EXIT", code, "TORCH", "torch" in sys.modules, "TORCHVISION", "torchvision" in sys.modules)
"""


def _probe(argv: list[str]) -> str:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(argv=argv)], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("argv,status", [
    (["--help"], 0),
    (["compare", "--help"], 0),
    (["allpairs", "--help"], 0),
    (["mad", "--help"], 0),
    (["app", "--help"], 0),
    (["bapps", "fit", "--help"], 0),
    (["bapps", "score", "nowhere", "--metrics", "nope"], 2),
    (["metrics"], 0),
    (["compare", "only-one-file.png"], 2),
    (["compare", "a.png", "b.png", "--metrics", "nope"], 2),
    (["compare", "a.png", "b.png", "--device", "gpu"], 2),
    (["dirs", "x", "y", "--batch-size", "0", "-o", "out.csv"], 2),
])
def test_answers_without_importing_torch(argv, status):
    assert _probe(argv) == f"EXIT {status} TORCH False TORCHVISION False"


def test_compare_never_imports_torchvision(tmp_path):
    from PIL import Image

    for name in ("a.png", "b.png"):
        Image.new("RGB", (48, 48), (30, 60, 90) if name == "a.png" else (31, 60, 90)).save(tmp_path / name)
    line = _probe(["compare", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--device", "cpu",
                   "--metrics", "lpips,psnr"])
    assert line == "EXIT 0 TORCH True TORCHVISION False"


def test_a_device_that_is_not_here_is_a_usage_error(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exc:
        __import__("cli").main(["compare", "a.png", "b.png", "--device", "cuda"])
    assert exc.value.code == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["cli", "core"])
def test_the_module_aliases_run_the_same_command_line(module):
    out = subprocess.run([sys.executable, "-m", module, "metrics"], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split()[:3] == ["name", "label", "default"]
    assert any(line.startswith("lpips ") for line in out.stdout.splitlines())


def test_the_app_is_served_from_its_script_beside_its_settings():
    script = app.app_script()
    assert script.name == "app.py" and (script.parent / ".streamlit" / "config.toml").is_file()
    command = app.server_command("127.0.0.1", 8765)
    assert command[:5] == [sys.executable, "-m", "views.serve", "run", str(script)]
    assert command[command.index("--server.port") + 1] == "8765"


def test_the_server_gets_make_runs_heap_settings_unless_set():
    env = app.server_env({"PATH": "/bin", "MALLOC_ARENA_MAX": "4"})
    assert env["MALLOC_ARENA_MAX"] == "4"  # the user's own value wins
    assert env["MALLOC_MMAP_THRESHOLD_"] == "1048576" and env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert env["PATH"] == "/bin"
    makefile = (ROOT / "Makefile").read_text()
    assert "lpips-explorer app --host $(HOST) --port $(PORT)" in makefile


@pytest.mark.parametrize("host", ["", "two words"])
def test_a_bad_host_is_a_usage_error(host, capsys):
    with pytest.raises(SystemExit) as exc:
        __import__("cli").main(["app", "--host", host])
    assert exc.value.code == 2
    assert "host name or address" in capsys.readouterr().err
