"""The Synthesis page in a real browser (Debian's Chromium through Playwright): run a MAD
competition, see the live images and the chart, stop it, and get both images on the level."""

from __future__ import annotations

from browser import assert_no_errors, launch_browser, require_browser, running_app, wait_until_idle


def test_run_see_images_and_chart_then_stop():
    require_browser()
    from playwright.sync_api import sync_playwright

    with running_app(timeout=180) as (url, _proc, _start), sync_playwright() as p:
        chromium = launch_browser(p)
        page = chromium.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.goto(url + "/synthesis")
        page.get_by_role("heading", name="Synthesis").wait_for(timeout=120_000)
        run = page.get_by_role("button", name="Run MAD competition")
        run.wait_for(timeout=120_000)
        wait_until_idle(page)
        page.get_by_text("Limits: at most 300 steps").first.wait_for()
        run.click()
        # Live: the progress bar, then the best/worst images beside the reference, and the chart.
        page.get_by_text("Best so far").first.wait_for(timeout=180_000)
        assert page.get_by_text("Step ").first.is_visible()
        page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=60_000)
        images = page.locator('[data-testid="stMain"] [data-testid="stImage"] img')
        assert images.count() == 3
        page.get_by_role("button", name="Stop").click()
        page.get_by_text("Stopped after").wait_for(timeout=120_000)
        # The result is drawn top to bottom by one rerun, and the status widget can be idle
        # for a moment while it runs (a fresh-clone CI run caught "Stopped after" on screen
        # before the downloads below it): wait for the last element, then for the run's end.
        page.get_by_role("button", name="history.csv").wait_for(timeout=60_000)
        wait_until_idle(page)
        assert page.get_by_role("button", name="Run MAD competition").is_enabled()
        assert page.get_by_text("Both images: PSNR = 24.00 dB").is_visible()
        assert page.get_by_role("button", name="best.png").is_visible()
        assert page.get_by_role("button", name="worst.png").is_visible()
        assert page.locator('[data-testid="stPlotlyChart"]').count() == 1
        assert_no_errors(page)
        chromium.close()
