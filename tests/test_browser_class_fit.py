"""The quiz dashboard's "Fit LPIPS to this class" in a real browser, as a teacher: a small class's
votes are in the store (three students, eight small rounds), the teacher opens the dashboard with
the code and key, runs the fit, sees the held-out scores and the chart, downloads the heads, and
opens them in Explore, where the LPIPS card names the file and shows the drop-in's distance with
the downloaded file (to the card's 4 decimals; tests/test_app_class_fit.py checks 1e-6). Screenshots of both pages at 1280 and 390 px wide go to tests/artifacts."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from browser import assert_no_errors, open_quiz, require_browser, wait_until_idle

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SEED, ROUNDS, SIDE = 7, 8, 96


@pytest.fixture(scope="module")
def fit_app(tmp_path_factory):
    require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    from browser import running_app
    from store import QuizStore
    from teach.preparation import prepare_round

    folder = tmp_path_factory.mktemp("classfit")
    db = folder / "quiz.sqlite3"
    with QuizStore(db) as store:  # the class: prepared rounds (PSNR only: quick) and three students' votes
        code, key = store.create_session("Fit in a browser", n_rounds=ROUNDS, seed=SEED)
        for index in range(ROUNDS):
            store.save_round(code, prepare_round(SEED, index, engines={}, max_side=SIDE, others=("psnr",)))
        tokens = [store.join(code) for _ in range(3)]
        for index in range(ROUNDS):
            for k, token in enumerate(tokens):
                store.cast_vote(code, token, index, "B" if (index * 7 + k * 3) % 5 < 2 else "A")
    env = {"LPIPS_EXPLORER_QUIZ_DB": str(db), "LPIPS_EXPLORER_HEADS_DIR": str(folder / "heads")}
    with running_app(env=env) as (url, _proc, _start):
        yield url, code, key


def _shoot(page, name: str, *anchors) -> None:
    """The page at 1280 px, then at 390 px (a phone), scrolled to each of ``anchors`` in turn
    (locators; none: as it is); then back to 1280 px."""
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(600)
        wait_until_idle(page)
        for k, anchor in enumerate(anchors or (None,)):
            if anchor is not None:
                anchor.evaluate("el => el.scrollIntoView({block: 'start'})")
                page.wait_for_timeout(500)
            suffix = "" if k == 0 else f"-{k + 1}"
            page.screenshot(path=str(ARTIFACTS / f"{name}-{width}{suffix}.png"), full_page=False)
    page.set_viewport_size({"width": 1280, "height": 800})


def test_teacher_fits_the_class_downloads_and_explores(fit_app, tmp_path):
    from browser import launch_browser
    from playwright.sync_api import sync_playwright

    url, code, key = fit_app
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            ctx, page = open_quiz(browser, url)
            page.get_by_role("radio", name="The teacher").click()
            page.get_by_role("tab", name="Dashboard").click()
            page.get_by_label("Session code", exact=True).fill(code)  # the teacher's field, not the student's
            page.get_by_label("Teacher key").fill(key)
            page.get_by_label("Teacher key").press("Enter")
            page.get_by_text("24 judgments from 3 people").wait_for(timeout=120_000)
            heading = page.get_by_role("heading", name="Fit LPIPS to this class")
            heading.wait_for(timeout=60_000)
            wait_until_idle(page)
            page.get_by_text("as the paper (5 + 5 epochs)").click()
            wait_until_idle(page)
            page.get_by_role("button", name="Fit LPIPS to this class").click()
            page.get_by_text(re.compile(r"^Held out: rounds")).wait_for(timeout=300_000)
            wait_until_idle(page)
            assert_no_errors(page)
            # Before/after beside the ceiling, and the chart of how far each layer moved.
            for label in ("Held-out 2AFC, fitted heads", "Held-out 2AFC, v0.1 heads", "People (ceiling), held-out"):
                assert page.locator('[data-testid="stMetric"]').filter(has_text=label).count() == 1, label
            chart = page.locator(".js-plotly-plot").filter(has_text="How much each layer's weights moved")
            chart.wait_for(timeout=60_000)
            assert chart.locator("g.point").count() == 5  # one bar per AlexNet layer
            _shoot(page, "class_fit_dashboard", heading, page.get_by_text("Fitted AlexNet heads"), chart)

            with page.expect_download(timeout=60_000) as download:
                page.get_by_role("button", name="Heads file (.zip: safetensors + manifest)").click()
            assert download.value.suggested_filename == f"class-{code}-alex.zip"
            zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())).extractall(tmp_path)
            from core.lpips.heads import load_heads, read_manifest

            heads_file = tmp_path / f"class-{code}-alex.safetensors"
            assert set(load_heads(heads_file, "alex")) == {f"lin{k}.model.1.weight" for k in range(5)}
            manifest = read_manifest(heads_file)
            assert manifest["session"] == code and manifest["from"] == "v0.1"

            page.get_by_role("button", name="Use this class's heads in Explore").click()
            card = page.locator('[data-testid="stMetric"]').filter(has_text=heads_file.name)
            card.wait_for(timeout=180_000)
            wait_until_idle(page)
            assert_no_errors(page)
            assert page.get_by_text("Heads in use:").count() == 1
            shown = card.locator('[data-testid="stMetricValue"]').inner_text().strip()
            assert shown == f"{_dropin_distance(heads_file):.4f}"
            _shoot(page, "class_fit_explore")
            ctx.close()
        finally:
            browser.close()


def _dropin_distance(heads_file: Path) -> float:
    """Explore's first pair (the astronaut at the default 512 px, Gaussian blur σ 1.5, seed 0) with
    ``core.LPIPS(model_path=heads_file)``."""
    import torch

    from core import LPIPS, distortions
    from core.images.imageio import downscale_to_fit
    from core.images.samples import load_sample
    from core.images.tensors import from_numpy, quantize_8bit, to_uint8

    ref, _ = downscale_to_fit(load_sample("astronaut"), 512)
    ref = from_numpy(to_uint8(ref))
    dist = quantize_8bit(distortions.apply([distortions.Step("gaussian_blur", {"sigma": 1.5})], ref, seed=0))
    with torch.no_grad():
        return float(LPIPS(net="alex", model_path=str(heads_file))(ref, dist, normalize=True))
