"""The wheel is the whole product: built from this checkout, installed into a throwaway virtual
environment outside it, it answers `lpips-explorer --help`, scores a pair with `compare` (the
same values as the checkout) and serves the app with `lpips-explorer app` — all from a folder
that is not the checkout.

No network: the wheel is built without build isolation from the checkout's own setuptools and
installed with --no-deps --no-index; its dependencies come from this test run's environment
through a `.pth` file (which does not load the checkout's editable install).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from browser import (assert_no_errors, free_port, launch_browser, require_browser, stop_process, wait_healthy,
                     wait_until_idle)

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# What must travel inside the wheel for the app and the gallery to work outside the checkout.
PACKAGE_DATA = ("views/app.py", "views/.streamlit/config.toml", "core/images/gallery/index.json",
                "core/images/gallery/LICENSES.md", "core/images/gallery/astronaut.png", "cli/__main__.py")


def _source_copy(dest: Path) -> Path:
    """The files git would commit (tracked, or new and not ignored), copied: building in the
    checkout itself would leave build/ and *.egg-info behind."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("wheel")
    source = _source_copy(work / "source")
    dist = work / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-q", "-w", str(dist), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    wheel = next(dist.glob("lpips_explorer-*.whl"))
    venv = work / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", "--disable-pip-version-check", "-q", str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies (torch, streamlit, …) from this environment; a plain path line in a .pth
    # does not process that folder's own .pth files, so the checkout's editable install stays out.
    (site / "lpips_explorer_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return {"wheel": wheel, "venv": venv, "python": python, "command": venv / "bin" / "lpips-explorer",
            "site": site, "cwd": elsewhere}


def _run(installed, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(installed["command"]), *args], cwd=installed["cwd"], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_wheel_holds_the_app_and_the_gallery(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    missing = [name for name in PACKAGE_DATA if name not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert not any(name.startswith(("tests/", "bench/")) for name in names)


def test_the_installed_code_is_the_wheels_not_the_checkouts(installed):
    out = subprocess.run([str(installed["python"]), "-c", "import core, cli, views; print(core.__file__); "
                          "print(cli.__file__); print(views.__file__)"], cwd=installed["cwd"], capture_output=True,
                         text=True, timeout=120, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr
    for line in out.stdout.split():
        assert Path(line).is_relative_to(installed["site"]), line


def test_help_lists_every_command(installed):
    result = _run(installed, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("compare", "dirs", "allpairs", "weights", "metrics", "mad", "optimize", "app"):
        assert f"    {command}" in result.stdout, command
    assert "LPIPS, PSNR, SSIM, MS-SSIM" in result.stdout


def test_compare_outside_the_checkout_gives_the_checkouts_values(installed):
    from core import Engine, compare, load_image
    from core.images.samples import load_sample

    ref = load_sample("astronaut")[..., :96, :96]
    dist = (ref + 0.08 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    paths = []
    for name, image in (("ref.png", ref), ("dist.png", dist)):
        path = installed["cwd"] / name
        Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
        paths.append(str(path))
    result = _run(installed, "compare", *paths, "--metrics", "lpips,psnr,ssim", "--device", "cpu", "--json")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    here = compare(Engine("alex", device="cpu"), load_image(paths[0]), load_image(paths[1]),
                   metrics=("lpips", "psnr", "ssim"), spatial=False).row(0)
    for key in ("lpips", "psnr", "ssim"):
        assert abs(row[key] - here[key]) <= 1e-6, (key, row[key], here[key])


def test_the_app_starts_outside_the_checkout_and_shows_metrics(installed):
    require_browser()
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["LPIPS_EXPLORER_QUIZ_DB"] = str(installed["cwd"] / "quiz.sqlite3")
    proc = subprocess.Popen([str(installed["command"]), "app", "--port", str(port)], cwd=installed["cwd"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc, timeout=120)
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector('[data-testid="stMetric"]', timeout=180_000)
            wait_until_idle(page, timeout_ms=180_000)
            assert_no_errors(page)
            assert "LPIPS" in page.locator('[data-testid="stMetric"]').first.inner_text()
            # The packaged settings were read: the toolbar is the minimal one of config.toml.
            assert page.locator('[data-testid="stMainMenu"]').count() == 0
            browser.close()
    finally:
        stop_process(proc, timeout=15)
