"""A real browser (Debian's Chromium through Playwright) against `lpips-explorer app` (`streamlit run views/app.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import require_browser

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def app_url():
    require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    from browser import running_app

    with running_app() as (url, _proc, _start):
        yield url


@pytest.fixture()
def page(app_url):
    from browser import launch_browser
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_browser(pw)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        pg = context.new_page()
        pg.goto(app_url)
        yield pg
        context.close()
        browser.close()


def _photo_png(tmp_path: Path) -> Path:
    from PIL import Image
    from skimage import data

    path = tmp_path / "coffee_upload.png"
    Image.fromarray(data.coffee()[::2, ::2].copy()).save(path)
    return path


def _wait_card_change(page, old: str, timeout_s: float = 90) -> str:
    from browser import lpips_card_text, wait_lpips_card_change, wait_until_idle

    wait_lpips_card_change(page, old, int(timeout_s * 1000))
    wait_until_idle(page)
    return lpips_card_text(page)


def test_upload_move_slider_and_see_lpips_change(page, tmp_path):
    from browser import lpips_card_text, wait_until_idle

    page.wait_for_selector('[data-testid="stMetric"]', timeout=120_000)
    wait_until_idle(page)
    sample_value = lpips_card_text(page)
    assert sample_value and float(sample_value) > 0

    # Upload a reference of our own.
    page.get_by_role("radio", name="Upload", exact=True).click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(_photo_png(tmp_path)))
    uploaded_value = _wait_card_change(page, sample_value)
    assert float(uploaded_value) > 0

    # Move the blur slider with the keyboard, as a person would.
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Blur").locator('input[type="range"]').first
    thumb.focus()
    for _ in range(10):
        thumb.press("ArrowRight")
    moved_value = _wait_card_change(page, uploaded_value)
    assert float(moved_value) > float(uploaded_value), "more blur must give a larger LPIPS"

    # Nothing on the page is an exception or an error box.
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "explore_1280x800.png"))


def test_bad_upload_shows_a_message_and_the_page_recovers(page, tmp_path):
    from browser import lpips_card_text, wait_until_idle

    page.wait_for_selector('[data-testid="stMetric"]', timeout=120_000)
    wait_until_idle(page)
    page.get_by_role("radio", name="Upload", exact=True).click()
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(fake))
    page.wait_for_selector('[data-testid="stAlertContentError"]', timeout=60_000)
    message = page.locator('[data-testid="stAlertContentError"]').first.inner_text()
    assert "not an image" in message
    assert page.locator('[data-testid="stException"]').count() == 0
    # The next upload works in the same session.
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(_photo_png(tmp_path)))
    page.wait_for_selector('[data-testid="stMetric"]', timeout=60_000)
    wait_until_idle(page)
    assert float(lpips_card_text(page)) > 0
