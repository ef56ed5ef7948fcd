"""WCAG 2.0/2.1 A and AA in a real browser: axe-core (bundled by axe-playwright-python, pinned in
requirements-test.txt) on every page and on the states a class reaches, at 1280×800 and 390×844.

One server and one Chromium for the whole module; each state is one line of ``STATES``: a name
and a function that brings a fresh page into that state (the server's caches make repeats cheap).
A violation fails the test, unless the rule *and* the element are on ``ALLOWED`` with the reason:
markup of Streamlit's own that the app cannot reach. Nothing is excluded wholesale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from browser import require_browser

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# The two sizes in the light theme, and the desktop in the dark one (Streamlit follows the system's
# colour scheme): every state in each.
VARIANTS = {"1280x800": ({"width": 1280, "height": 800}, "light"),
            "390x844": ({"width": 390, "height": 844}, "light"),
            "1280x800-dark": ({"width": 1280, "height": 800}, "dark")}
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
LONG = 180_000  # ms: a first page view loads the network; two cores are shared with other tests


@dataclass(frozen=True)
class Allowed:
    """One rule on one element that the app cannot fix, and why (checked with ``Element.matches``)."""
    rule: str
    selector: str
    reason: str


ALLOWED: tuple[Allowed, ...] = ()


# ---------------------------------------------------------------------------------------------
# The states: each function opens a fresh page (its own Streamlit session) and brings it there.
# ---------------------------------------------------------------------------------------------

def _idle(page) -> None:
    from browser import wait_until_idle

    wait_until_idle(page, LONG)


def explore(page, ctx) -> None:
    page.goto(ctx.url)
    page.wait_for_selector('[data-testid="stMetric"]', timeout=LONG)
    page.locator('[data-testid="stImage"] img').nth(1).wait_for(timeout=LONG)
    page.locator('[data-testid="stSlider"]').filter(has_text="Blur σ").first.wait_for(timeout=LONG)  # the editor
    _idle(page)


def explore_error(page, ctx) -> None:
    explore(page, ctx)
    page.get_by_role("radio", name="Upload", exact=True).click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(ctx.not_an_image)
    page.wait_for_selector('[data-testid="stAlertContentError"]', timeout=LONG)
    _idle(page)


def explore_closer(page, ctx) -> None:
    explore(page, ctx)
    page.get_by_text("Look closer").first.click()
    # Its bar of buttons: a phone starts in the swipe view, where the map's own view is hidden.
    page.locator('[data-testid="look-closer"] .lc-bar').wait_for(timeout=LONG)
    _idle(page)


def explore_region(page, ctx) -> None:
    explore_closer(page, ctx)
    page.locator('[data-testid="look-closer"] button[data-mode="side"]').click()
    view = page.locator('[data-testid="look-closer"] [data-view="map"]')
    view.scroll_into_view_if_needed()
    box = view.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text("Which channels of a layer drive it").wait_for(timeout=LONG)
    page.locator('[data-testid="stPlotlyChart"]').last.wait_for(timeout=LONG)
    _idle(page)


def explore_layers(page, ctx) -> None:
    explore(page, ctx)
    page.get_by_text("Which layers and which regions drive the distance").click()
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=LONG)
    _idle(page)


def sweeps(page, ctx) -> None:
    page.goto(ctx.url + "/sweeps")
    page.get_by_role("button", name="Show equal-PSNR comparison").wait_for(timeout=LONG)
    _idle(page)


def sweeps_equal(page, ctx) -> None:
    sweeps(page, ctx)
    page.get_by_role("button", name="Show equal-PSNR comparison").click()
    page.get_by_text("ranks them, most similar first").first.wait_for(timeout=LONG)
    _idle(page)


def sweeps_sweep(page, ctx) -> None:
    sweeps(page, ctx)
    page.get_by_role("tab", name="Severity sweep").click()
    page.get_by_role("button", name="Run sweep").click()
    page.get_by_role("button", name="Sweep (CSV)").wait_for(timeout=LONG)
    _idle(page)


def synthesis(page, ctx) -> None:
    page.goto(ctx.url + "/synthesis")
    page.get_by_role("button", name="Run MAD competition").wait_for(timeout=LONG)
    _idle(page)


def quiz_student(page, ctx) -> None:
    page.goto(ctx.url + "/quiz")
    page.get_by_label("Session code (from your teacher)").wait_for(timeout=LONG)
    _idle(page)


def quiz_round(page, ctx) -> None:
    quiz_student(page, ctx)
    box = page.get_by_label("Session code (from your teacher)")
    box.fill(ctx.code)
    box.press("Enter")
    page.get_by_role("button", name="A is closer").wait_for(timeout=LONG)
    _idle(page)


def quiz_reveal(page, ctx) -> None:
    quiz_round(page, ctx)
    page.get_by_role("button", name="A is closer").click()
    page.get_by_text("(saved). What the metrics say:").wait_for(timeout=LONG)
    _idle(page)


def quiz_jnd_question(page, ctx) -> None:
    quiz_student(page, ctx)
    box = page.get_by_label("Session code (from your teacher)")
    box.fill(ctx.jnd_code)
    box.press("Enter")
    page.get_by_role("button", name="Show the two images").click()
    page.get_by_role("button", name="Different").wait_for(timeout=LONG)  # after the pair has flashed
    _idle(page)


def quiz_jnd_reveal(page, ctx) -> None:
    quiz_jnd_question(page, ctx)
    page.get_by_role("button", name="Different").click()
    page.get_by_text("You answered different (saved)").wait_for(timeout=LONG)
    page.locator('[data-testid="stImage"] img').nth(1).wait_for(timeout=LONG)
    _idle(page)


def quiz_teacher(page, ctx) -> None:
    quiz_student(page, ctx)
    page.get_by_role("radio", name="The teacher").click()
    page.get_by_role("button", name="Create session").wait_for(timeout=LONG)
    _idle(page)


def quiz_dashboard(page, ctx) -> None:
    quiz_teacher(page, ctx)
    page.get_by_role("tab", name="Dashboard").click()
    page.get_by_label("Session code", exact=True).fill(ctx.code)
    key = page.get_by_label("Teacher key")
    key.fill(ctx.key)
    key.press("Enter")
    page.get_by_role("button", name="Refresh").wait_for(timeout=LONG)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=LONG)
    _idle(page)


STATES: dict[str, Callable] = {
    "explore": explore,
    "explore-error": explore_error,
    "explore-closer": explore_closer,
    "explore-region": explore_region,
    "explore-layers": explore_layers,
    "sweeps": sweeps,
    "sweeps-equal": sweeps_equal,
    "sweeps-sweep": sweeps_sweep,
    "synthesis": synthesis,
    "quiz-student": quiz_student,
    "quiz-round": quiz_round,
    "quiz-reveal": quiz_reveal,
    "quiz-jnd-question": quiz_jnd_question,
    "quiz-jnd-reveal": quiz_jnd_reveal,
    "quiz-teacher": quiz_teacher,
    "quiz-dashboard": quiz_dashboard,
}


# ---------------------------------------------------------------------------------------------
# Running axe-core.
# ---------------------------------------------------------------------------------------------

def axe_violations(page) -> list[dict]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on the page (every frame), less ``ALLOWED``:
    a list of {rule, help, target, html}."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    for frame in page.frames:  # axe reports into frames only where it is loaded itself
        frame.evaluate(axe.axe_script)
    results = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags},"
                            " resultTypes: ['violations']})", WCAG_TAGS)
    found = []
    for violation in results["violations"]:
        for node in violation["nodes"]:
            if _allowed(page, violation["id"], node["target"]):
                continue
            found.append({"rule": violation["id"], "help": violation["help"], "target": node["target"],
                          "html": node["html"][:300], "why": node.get("failureSummary", "")[:300]})
    return found


def _allowed(page, rule: str, target: list) -> bool:
    selectors = [a.selector for a in ALLOWED if a.rule == rule]
    if not selectors or len(target) != 1:  # an element inside a frame is never allowed
        return False
    return page.evaluate("([t, sels]) => { const e = document.querySelector(t);"
                         " return !!e && sels.some(s => e.matches(s)); }", [target[0], selectors])


@dataclass
class Context:
    url: str
    browser: object
    code: str
    key: str
    jnd_code: str
    not_an_image: str


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    require_browser()
    pytest.importorskip("axe_playwright_python")
    ARTIFACTS.mkdir(exist_ok=True)
    from browser import launch_browser, running_app
    from playwright.sync_api import sync_playwright

    from store import QuizStore
    from teach.preparation import prepare_round

    folder = tmp_path_factory.mktemp("a11y")
    db = folder / "quiz.sqlite3"
    with QuizStore(db) as store:  # two prepared rounds (PSNR and SSIM only: fast); the server only reads them
        code, key = store.create_session("Accessibility", n_rounds=2, seed=7)
        for index in range(2):
            store.save_round(code, prepare_round(7, index, engines={}, max_side=256, others=("psnr", "ssim")))
        store.cast_vote(code, store.join(code), 0, "B")  # the dashboard has a vote to chart from the start
        jnd_code, _ = store.create_session("Same or different", n_rounds=1, seed=8, kind="jnd")
        store.save_round(jnd_code, prepare_round(8, 0, engines={}, max_side=256, others=("psnr", "ssim"), kind="jnd"))
    fake = folder / "notes.png"
    fake.write_text("this is not an image")
    with running_app(env={"LPIPS_EXPLORER_QUIZ_DB": str(db)}) as (url, _proc, _start), sync_playwright() as pw:
        chromium = launch_browser(pw)
        try:
            yield Context(url, chromium, code, key, jnd_code, str(fake))
        finally:
            chromium.close()


CASES = [(variant, state) for variant in VARIANTS for state in STATES]


@pytest.mark.parametrize(("variant", "state"), CASES, ids=[f"{v}-{n}" for v, n in CASES])
def test_no_wcag_violations(ctx, variant, state):
    from browser import assert_no_errors

    viewport, scheme = VARIANTS[variant]
    context = ctx.browser.new_context(viewport=viewport, color_scheme=scheme)
    try:
        page = context.new_page()
        STATES[state](page, ctx)
        if state != "explore-error":
            assert_no_errors(page)
        found = axe_violations(page)
        if found or os.environ.get("LPIPS_EXPLORER_A11Y_SHOTS"):  # =1: pictures of every state, to look at
            page.screenshot(path=str(ARTIFACTS / f"a11y-{variant}-{state}.png"))
            page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]'); if (m) m.scrollTop += 700; }")
            page.screenshot(path=str(ARTIFACTS / f"a11y-{variant}-{state}-2.png"))
        assert not found, "\n".join(f"{v['rule']} ({v['help']}): {v['target']}\n    {v['html']}\n    {v['why']}"
                                    for v in found)
    finally:
        context.close()


# ---------------------------------------------------------------------------------------------
# Keyboard only: Explore's main loop and a quiz round, compared with the mouse path's results.
# ---------------------------------------------------------------------------------------------

def tab_to(page, predicate: str, limit: int = 150) -> dict:
    """Press Tab until the focused element satisfies ``predicate`` (JavaScript, ``e`` is the
    focused element); fails after ``limit`` presses. Returns how it shows its focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        found = page.evaluate(f"""() => {{
            const e = document.activeElement;
            if (!e || !({predicate})) return null;
            const s = getComputedStyle(e);
            return {{outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2, shadow: s.boxShadow !== 'none',
                     text: (e.innerText || e.getAttribute('aria-label') || '').slice(0, 80)}};
        }}""")
        if found:
            return found
    raise AssertionError(f"{limit} presses of Tab never reached an element with {predicate}")


BLUR_THUMB = ("e.type === 'range' && e.closest('[data-testid=\"stSlider\"]')"
              " && e.closest('[data-testid=\"stSlider\"]').innerText.includes('Blur σ')")


def _blur_input(page):
    return page.locator('[data-testid="stSlider"]').filter(has_text="Blur σ").locator('input[type="range"]').first


def _slider_value(page) -> str:
    return _blur_input(page).input_value()


def _settled_card(page) -> str:
    """The LPIPS card once it stops changing: each key press may send its own value, and the card
    can show an intermediate one between two reruns."""
    from browser import lpips_card_text

    last = None
    while True:
        _idle(page)
        now = lpips_card_text(page)
        if now == last:
            return now
        last = now
        page.wait_for_timeout(2000)


def _region_heading(page) -> str:
    return page.locator("h5").filter(has_text="Region x").first.inner_text()


def _patch_lpips(page) -> str:
    card = page.locator(".st-key-region_lpips [data-testid='stMetricValue']")
    card.wait_for(timeout=LONG)
    _idle(page)
    return card.inner_text()


def test_explore_by_keyboard_equals_the_mouse(ctx):
    from browser import lpips_card_text, wait_lpips_card_change

    keys = ctx.browser.new_context(viewport={"width": 1280, "height": 800})
    mouse = ctx.browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = keys.new_page()
        explore(page, ctx)
        before = lpips_card_text(page)
        focus = tab_to(page, BLUR_THUMB)
        assert focus["outline"] or focus["shadow"], "the slider shows no focus"
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        wait_lpips_card_change(page, before, LONG)
        value, lpips_keys = _slider_value(page), _settled_card(page)
        # The comparison view: its expander, then the LPIPS map's view; Enter picks the region at the cursor.
        focus = tab_to(page, "e.tagName === 'SUMMARY' && e.innerText.includes('Look closer')")
        assert focus["outline"], "the expander shows no focus"
        page.keyboard.press("Enter")
        page.locator('[data-testid="look-closer"] [data-view="map"]').wait_for(timeout=LONG)
        _idle(page)
        focus = tab_to(page, "e.dataset && e.dataset.view === 'map'")
        assert focus["outline"], "the map's view shows no focus"
        page.keyboard.press("Enter")
        patch_keys, region_keys = _patch_lpips(page), _region_heading(page)
        assert region_keys.startswith("Region x 224–288, y 224–288 px")  # the 64 px square at the centre

        page = mouse.new_page()
        explore(page, ctx)
        box = _blur_input(page).locator("xpath=..").bounding_box()  # the thumb (the input is inside it)
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        for _ in range(400):  # drag right, a pixel at a time, until the thumb shows the keyboard's value
            if _slider_value(page) == value:
                break
            x += 1
            page.mouse.move(x, y)
        page.mouse.up()
        assert _slider_value(page) == value
        wait_lpips_card_change(page, before, LONG)
        assert _settled_card(page) == lpips_keys
        # The region the keys picked (the 64 px square at the centre): its LPIPS as core computes it.
        # (A mouse click on the map picks the same square, tests/test_browser_explore.py; here the
        # click's spot was not reproducible under load, so core gives the reference number.)
        from core import distortions
        from core.regions import Box, region_contributions
        from test_app import DEFAULT_SAMPLE, distorted, engine, sample_ref

        ref = sample_ref(DEFAULT_SAMPLE)
        dist = distorted(ref, [distortions.Step("gaussian_blur", {"sigma": float(value)})])
        region = region_contributions(engine().compare(ref, dist, spatial=False), tuple(ref.shape[-2:]),
                                      Box(224, 224, 288, 288))
        assert patch_keys == f"{region.lpips:.4f}"
    finally:
        keys.close()
        mouse.close()


def test_look_closer_keys_zoom_swipe_and_flicker(ctx):
    context = ctx.browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        explore_closer(page, ctx)
        root = page.locator('[data-testid="look-closer"]')
        view = root.locator('[data-view="map"]')
        view.focus()
        scale = float(view.get_attribute("data-scale"))
        page.keyboard.press("+")
        assert float(view.get_attribute("data-scale")) == pytest.approx(scale * 1.5, rel=1e-3)
        page.keyboard.press("0")
        assert float(view.get_attribute("data-scale")) == pytest.approx(scale, rel=1e-3)
        page.keyboard.press("]")  # opens the swipe view, divider 5% to the right
        assert root.get_attribute("data-mode") == "swipe"
        assert float(root.get_attribute("data-swipe")) == pytest.approx(0.55)
        page.keyboard.press("f")
        assert root.get_attribute("data-mode") == "flicker"
        page.keyboard.press("f")
        assert root.get_attribute("data-mode") == "swipe"
        assert page.evaluate("() => document.activeElement.dataset.view") == "single"  # the keys stay on the view
    finally:
        context.close()


def test_quiz_round_by_keyboard_equals_the_mouse(ctx):
    keys = ctx.browser.new_context(viewport={"width": 1280, "height": 800})
    mouse = ctx.browser.new_context(viewport={"width": 1280, "height": 800})

    def cards(page) -> list[str]:
        page.locator('[data-testid="stMetric"]').nth(1).wait_for(timeout=LONG)  # PSNR and SSIM (no LPIPS here)
        _idle(page)
        return page.locator('[data-testid="stMetric"]').all_inner_texts()

    try:
        page = keys.new_page()
        quiz_student(page, ctx)
        tab_to(page, "e.getAttribute('aria-label') === 'Session code (from your teacher)'")
        page.keyboard.type(ctx.code)
        page.keyboard.press("Enter")
        page.get_by_role("button", name="A is closer").wait_for(timeout=LONG)
        _idle(page)
        focus = tab_to(page, "e.tagName === 'BUTTON' && e.innerText.includes('A is closer')")
        assert focus["outline"], "the pick button shows no focus"
        page.keyboard.press("Space")
        page.get_by_text("You chose A (saved)").wait_for(timeout=LONG)
        by_keys = cards(page)
        tab_to(page, "e.tagName === 'BUTTON' && e.innerText.includes('Next round')")
        page.keyboard.press("Enter")
        page.get_by_text("Round 2 of 2").wait_for(timeout=LONG)

        page = mouse.new_page()
        quiz_round(page, ctx)
        page.get_by_role("button", name="A is closer").click()
        page.get_by_text("You chose A (saved)").wait_for(timeout=LONG)
        assert cards(page) == by_keys
    finally:
        keys.close()
        mouse.close()
