"""Screenshots of every page, as a person sees them: desktop (1280×800) and phone (390×844).

    .venv/bin/python tools/screenshots.py --out /tmp/shots [--root OTHER_CHECKOUT] [--scheme dark]

Starts the app of ``--root`` (default: this checkout) on a free loopback port with Debian's
Chromium, opens Explore (waits for the metric cards, opens "Look closer", picks a region, swipes,
opens the layer view), Sweeps (runs the equal-PSNR comparison and a severity sweep), Synthesis
(runs a MAD competition for a few seconds and stops it) and the Class quiz (a teacher creates a session, a student votes once), and
saves full-page PNGs named ``<page>-<width>.png``. Used to look at the pages before and after a
change; nothing here is a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import browser  # noqa: E402

SIZES = {"desktop": (1280, 800), "wide": (1440, 900), "phone": (390, 844)}


# Streamlit scrolls its main section, not the document: full_page=True would show one screen.
_SCROLLER = """() => [...document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"]')]
    .concat([document.scrollingElement]).find(el => el && el.scrollHeight > el.clientHeight + 4)"""


def shoot(page, out: Path, name: str, max_screens: int = 6) -> None:
    """One PNG per screenful, top to bottom: ``name.png``, ``name-2.png``..."""
    browser.wait_until_idle(page, 180_000)
    page.wait_for_timeout(800)  # charts finish their layout animation
    height = page.viewport_size["height"]
    total = page.evaluate(f"() => {{ const el = ({_SCROLLER})(); return el ? el.scrollHeight : 0; }}")
    screens = max(1, min(max_screens, -(-int(total) // height)))
    for k in range(screens):
        page.evaluate(f"(y) => {{ const el = ({_SCROLLER})(); if (el) el.scrollTop = y; }}", k * height)
        page.wait_for_timeout(400)
        path = out / (f"{name}.png" if k == 0 else f"{name}-{k + 1}.png")
        page.screenshot(path=str(path))
        print(path)
    page.evaluate(f"() => {{ const el = ({_SCROLLER})(); if (el) el.scrollTop = 0; }}")


def explore(page, url: str, out: Path, tag: str) -> None:
    page.goto(url)
    page.wait_for_selector('[data-testid="stMetric"]', timeout=180_000)
    shoot(page, out, f"explore-{tag}")
    # The comparison view, a region picked on its LPIPS map (the centre of the map), then swipe.
    page.get_by_text("Look closer").first.click()
    # Phones start in the swipe view; the region is picked on the side-by-side LPIPS map.
    page.locator('[data-testid="look-closer"] button[data-mode="side"]').click(timeout=180_000)
    view = page.locator('[data-testid="look-closer"] [data-view="map"]')
    view.wait_for(timeout=180_000)
    browser.wait_until_idle(page, 180_000)
    view.scroll_into_view_if_needed()
    box = view.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text("Which channels of a layer drive it").wait_for(timeout=180_000)
    shoot(page, out, f"explore-closer-{tag}")
    page.locator('[data-testid="look-closer"] button[data-mode="swipe"]').click()
    page.locator('[data-testid="look-closer"] [data-view="single"]').scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / f"explore-swipe-{tag}.png"))
    print(out / f"explore-swipe-{tag}.png")
    page.get_by_text("Which layers and which regions drive the distance").click()  # open the layer view
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=180_000)
    shoot(page, out, f"explore-layers-{tag}")


def sweeps(page, url: str, out: Path, tag: str) -> None:
    page.goto(url + "/sweeps")
    button = page.get_by_role("button", name="Show equal-PSNR comparison")
    button.wait_for(timeout=180_000)
    button.click()
    page.get_by_text("ranks them, most similar first").first.wait_for(timeout=300_000)
    shoot(page, out, f"sweeps-equal-{tag}")
    page.get_by_role("tab", name="Severity sweep").click()
    page.get_by_role("button", name="Run sweep").click()
    page.get_by_role("button", name="Sweep (CSV)").wait_for(timeout=300_000)
    shoot(page, out, f"sweeps-sweep-{tag}")


def synthesis(page, url: str, out: Path, tag: str) -> None:
    page.goto(url + "/synthesis")
    run = page.get_by_role("button", name="Run MAD competition")
    run.wait_for(timeout=180_000)
    browser.wait_until_idle(page, 180_000)
    run.click()
    page.get_by_text("Best so far").first.wait_for(timeout=180_000)
    page.wait_for_timeout(3000)  # a few live updates
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Stopped after").wait_for(timeout=180_000)
    browser.wait_until_idle(page, 180_000)
    shoot(page, out, f"synthesis-{tag}")


def quiz(page, url: str, out: Path, tag: str) -> None:
    page.goto(url + "/quiz")
    page.get_by_text("The teacher").first.wait_for(timeout=180_000)
    shoot(page, out, f"quiz-join-{tag}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--root", type=Path, default=browser.ROOT)
    parser.add_argument("--pages", default="explore,sweeps,synthesis,quiz")
    parser.add_argument("--sizes", default="desktop,phone")
    parser.add_argument("--scheme", default="light", choices=["light", "dark"],
                        help="the browser's colour scheme (the app follows it: light or dark theme)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    browser.ROOT = args.root.resolve()
    from playwright.sync_api import sync_playwright

    pages = {"explore": explore, "sweeps": sweeps, "synthesis": synthesis, "quiz": quiz}
    with browser.running_app(timeout=180) as (url, _proc, _start), sync_playwright() as p:
        chromium = browser.launch_browser(p)
        for size in args.sizes.split(","):
            width, height = SIZES[size]
            context = chromium.new_context(viewport={"width": width, "height": height}, color_scheme=args.scheme)
            page = context.new_page()
            for name in args.pages.split(","):
                pages[name](page, url, args.out, f"{width}" + ("-dark" if args.scheme == "dark" else ""))
            context.close()
        chromium.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
