"""Helpers to start the app on a free loopback port and drive it with Debian's Chromium.

Used by the real-browser tests and by the benchmark scripts under bench/.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("LPIPS_EXPLORER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    """Wait until the Streamlit server at ``url`` answers its health check; raise if the
    process ends first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("streamlit did not become healthy in time")
        time.sleep(0.2)


@contextlib.contextmanager
def running_app(env: dict | None = None, timeout: float = 90.0):
    """The app served as ``lpips-explorer app`` serves it (``streamlit run views/app.py`` with its
    settings) on a free loopback port; yields (url, process, start_time)."""
    from cli.app import server_command

    port = free_port()
    flags = ["--server.headless", "true", "--server.fileWatcherType", "none"]
    if (ROOT / "views" / "serve.py").is_file():
        cmd = server_command("127.0.0.1", port, flags, script=ROOT / "views" / "app.py")
    else:  # an older checkout (tools/screenshots.py --root): the app at its root, plain streamlit
        cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
               "--server.port", str(port), "--browser.gatherUsageStats", "false", *flags]
    start = time.monotonic()
    log = open(ROOT / "tests" / "artifacts" / f"server-{port}.log", "w") if (ROOT / "tests" / "artifacts").is_dir() \
        else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout)
        yield url, proc, start
    finally:
        stop_process(proc)
        if log is not subprocess.DEVNULL:
            log.close()


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Ask a server to stop (SIGTERM), and kill it if it has not within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def lpips_card_text(page) -> str:
    """The LPIPS metric card's value, or '' while it is not on the page."""
    card = page.locator('[data-testid="stMetric"]').filter(has_text="LPIPS").first
    if card.count() == 0:
        return ""
    return card.locator('[data-testid="stMetricValue"]').inner_text()


def wait_until_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished its rerun: no running indicator, no stale elements."""
    page.wait_for_function(
        """() => {
            const status = document.querySelector('[data-testid="stStatusWidget"]');
            const running = status && /Running|Stop/i.test(status.innerText);
            const stale = document.querySelector('[data-stale="true"]');
            return !running && !stale;
        }""",
        timeout=timeout_ms,
    )


def wait_lpips_card_change(page, old: str, timeout_ms: int = 90_000) -> None:
    """Wait until the LPIPS card shows a value other than ``old`` and is not a stale copy
    (Streamlit keeps the previous elements, marked stale, while a rerun is in flight)."""
    page.wait_for_function(
        """(old) => {
            const card = [...document.querySelectorAll('[data-testid="stMetric"]')]
                .find(el => el.innerText.includes('LPIPS'));
            if (!card || card.closest('[data-stale="true"]')) return false;
            const v = card.querySelector('[data-testid="stMetricValue"]');
            return v && v.innerText.trim() !== old;
        }""",
        arg=old, timeout=timeout_ms,
    )


# ---------------------------------------------------------------------------------------------
# Shared by the browser tests (pytest is imported only here, not by the benchmark scripts).
# ---------------------------------------------------------------------------------------------

QUIZ_VIEWPORT = {"width": 1280, "height": 800}


def require_browser() -> None:
    """Skip unless Playwright and Debian's Chromium are installed (`make test` installs both)."""
    import pytest

    pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found: `make test` installs Debian's chromium")


def assert_no_errors(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def open_quiz(browser, url: str):
    """A new browser context (its own Streamlit session) on the quiz page; (context, page)."""
    context = browser.new_context(viewport=QUIZ_VIEWPORT)
    page = context.new_page()
    page.goto(url + "/quiz")
    page.get_by_role("heading", name="Class quiz").wait_for(timeout=120_000)
    page.get_by_label("Session code (from your teacher)").wait_for(timeout=60_000)
    wait_until_idle(page)
    return context, page


def vote(page, code: str, button: str, n_rounds: int = 2) -> int:
    """Join with ``code`` and pick ``button`` in round 1; returns, once the page says "(saved)",
    how many metric cards the reveal shows."""
    box = page.get_by_label("Session code (from your teacher)")
    box.fill(code)
    box.press("Enter")
    page.get_by_text(f"Round 1 of {n_rounds}").wait_for(timeout=120_000)  # renders and scores two nets
    page.get_by_role("button", name=button).wait_for(timeout=120_000)
    wait_until_idle(page)
    page.get_by_role("button", name=button).click()
    page.get_by_text("(saved). What the metrics say:").wait_for(timeout=60_000)
    page.locator('[data-testid="stMetric"]').nth(3).wait_for(timeout=60_000)
    wait_until_idle(page)
    assert_no_errors(page)
    return page.locator('[data-testid="stMetric"]').count()
