"""The class quiz in a real browser: a teacher and two students, each in their own browser context
(own cookies, own Streamlit session), against `lpips-explorer app` (`streamlit run views/app.py`) with a fresh quiz database."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from browser import assert_no_errors, open_quiz, require_browser, vote

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TITLE = "Perceptual similarity quiz"


@pytest.fixture(scope="module")
def quiz_app(tmp_path_factory):
    require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    from browser import running_app

    db = tmp_path_factory.mktemp("quiz") / "quiz.sqlite3"
    with running_app(env={"LPIPS_EXPLORER_QUIZ_DB": str(db)}) as (url, _proc, _start):
        yield url, db


def test_teacher_two_students_and_dashboard(quiz_app):
    from browser import launch_browser, wait_until_idle
    from playwright.sync_api import sync_playwright

    from store import QuizStore

    url, db = quiz_app
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            # The teacher creates a session.
            teacher_ctx, teacher = open_quiz(browser, url)
            teacher.get_by_role("radio", name="The teacher").click()
            teacher.get_by_role("button", name="Create session").wait_for(timeout=60_000)
            wait_until_idle(teacher)
            teacher.get_by_label("Title").fill(TITLE)
            teacher.get_by_label("Rounds").fill("2")
            teacher.get_by_role("button", name="Create session").click()
            success = teacher.locator('[data-testid="stAlertContentSuccess"]')
            success.wait_for(timeout=60_000)
            found = re.search(r"code ([A-Z2-9]{6})\b", success.inner_text())
            assert found, success.inner_text()
            code = found.group(1)
            # The rounds are prepared in the background, with a progress bar, until all are stored.
            teacher.get_by_text("Preparing the rounds:").or_(teacher.get_by_text("All 2 rounds are prepared")) \
                .first.wait_for(timeout=60_000)
            teacher.screenshot(path=str(ARTIFACTS / "quiz_teacher_preparing.png"))
            teacher.get_by_text("All 2 rounds are prepared").wait_for(timeout=600_000)
            teacher.get_by_text("Teacher key (private").click()  # collapsed so a projector does not show it
            key = teacher.locator('[data-testid="stCode"]').first.inner_text().strip()
            assert len(key) >= 16
            assert_no_errors(teacher)
            teacher.screenshot(path=str(ARTIFACTS / "quiz_teacher_created.png"))

            # Two students, each in their own context, vote A and B on round 1.
            s1_ctx, s1 = open_quiz(browser, url)
            s2_ctx, s2 = open_quiz(browser, url)
            shown = [vote(s1, code, "A is closer"), vote(s2, code, "B is closer")]
            assert s1.get_by_text("You chose A (saved)").count() == 1
            assert s2.get_by_text("You chose B (saved)").count() == 1
            for student in (s1, s2):
                assert key not in student.content()
            s2.screenshot(path=str(ARTIFACTS / "quiz_student.png"))  # as the student sees it after voting
            s2.get_by_role("button", name="Next round").scroll_into_view_if_needed()
            s2.screenshot(path=str(ARTIFACTS / "quiz_student_scrolled.png"))

            # Both votes are in the database.
            with QuizStore(db) as store:
                votes = store.votes(code)
                assert sorted(v.choice for v in votes) == ["A", "B"]
                assert {v.round_index for v in votes} == {0} and len({v.voter_id for v in votes}) == 2
            # One card per metric that scored the round: LPIPS on two nets, then the registry's others.
            n_metrics = len(votes[0].metrics)
            assert {"lpips_alex", "lpips_vgg", "psnr", "ssim"} <= set(votes[0].metrics)
            assert shown == [n_metrics, n_metrics]

            # The teacher's dashboard (prefilled after creating) shows them after a refresh.
            teacher.get_by_role("tab", name="Dashboard").click()
            teacher.get_by_role("button", name="Refresh").click()
            teacher.get_by_text("2 judgments from 2 people").wait_for(timeout=60_000)
            wait_until_idle(teacher)
            assert_no_errors(teacher)
            cards = teacher.locator('[data-testid="stMetric"]')
            cards.nth(3).wait_for(timeout=60_000)  # the cards can arrive a moment after the text
            teacher.locator('[data-testid="stDataFrame"]').last.wait_for(timeout=60_000)  # the rounds' table
            wait_until_idle(teacher)
            assert cards.count() == n_metrics
            values = [cards.nth(i).locator('[data-testid="stMetricValue"]').inner_text() for i in range(n_metrics)]
            assert all(v == "50%" for v in values), values  # one vote each way: every metric agrees once
            teacher.screenshot(path=str(ARTIFACTS / "quiz_dashboard.png"))
            teacher.get_by_role("button", name="All judgments (CSV)").scroll_into_view_if_needed()
            teacher.wait_for_timeout(500)  # let the chart finish drawing (for the picture only)
            teacher.screenshot(path=str(ARTIFACTS / "quiz_dashboard_scrolled.png"))

            # The CSV export (computed only when clicked) holds both judgments.
            with teacher.expect_download(timeout=60_000) as download:
                teacher.get_by_role("button", name="All judgments (CSV)").click()
            rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
            assert download.value.suggested_filename == f"quiz-{code}.csv"
            assert sorted(r["choice"] for r in rows) == ["A", "B"] and {r["session"] for r in rows} == {code}

            for ctx in (teacher_ctx, s1_ctx, s2_ctx):
                ctx.close()
        finally:
            browser.close()


def test_reload_keeps_the_student_and_bad_links_are_refused(quiz_app):
    """Vote, reload the tab: the same student (token in the address) sees the earlier pick and the
    next round. A forged, damaged or foreign token: a clear message, and nothing is stored."""
    from browser import launch_browser, wait_until_idle
    from playwright.sync_api import sync_playwright

    from store import QuizStore
    from teach.preparation import prepare_round

    url, db = quiz_app
    with QuizStore(db) as store:
        code, _ = store.create_session("Reload", n_rounds=3, seed=31)
        other, _ = store.create_session("Other class", n_rounds=3, seed=32)
        for index in range(3):  # prepared here (PSNR and SSIM only: fast); the server only reads them
            store.save_round(code, prepare_round(31, index, engines={}, max_side=256, others=("psnr", "ssim")))
        theirs = store.join(other)
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            ctx, page = open_quiz(browser, url)
            box = page.get_by_label("Session code (from your teacher)")
            box.fill(code)
            box.press("Enter")
            page.get_by_text("Round 1 of 3").wait_for(timeout=60_000)
            wait_until_idle(page)
            assert f"code={code}" in page.url and "voter=" in page.url
            page.get_by_role("button", name="B is closer").click()
            page.get_by_text("You chose B (saved)").wait_for(timeout=60_000)
            wait_until_idle(page)
            assert_no_errors(page)
            address = page.url

            page.reload()  # a new Streamlit session: only the address is left
            page.get_by_text("Round 2 of 3").wait_for(timeout=60_000)
            wait_until_idle(page)
            assert_no_errors(page)
            assert page.url == address
            page.get_by_text("Welcome back: your 1 earlier pick is saved").wait_for(timeout=30_000)
            page.get_by_text("Your saved picks: round 1 B").wait_for(timeout=30_000)
            assert page.get_by_label("Session code (from your teacher)").input_value() == code
            page.screenshot(path=str(ARTIFACTS / "quiz_student_reloaded.png"))
            page.get_by_role("button", name="A is closer").click()
            page.get_by_text("You chose A (saved)").wait_for(timeout=60_000)
            with QuizStore(db) as store:
                votes = store.votes(code)
                assert [(v.round_index, v.choice) for v in votes] == [(0, "B"), (1, "A")]
                assert len({v.voter_id for v in votes}) == 1 and store.joined(code) == 1

            # Links that cannot be used: each says why, offers a fresh start, and stores nothing.
            for token, message in (("Q" * 22, "was not issued by this quiz"), ("short", "is damaged"),
                                   (theirs, f"belongs to another quiz session, not {code}")):
                page.goto(f"{url}/quiz?code={code}&voter={token}")
                page.get_by_text(message).wait_for(timeout=60_000)
                wait_until_idle(page)
                assert page.get_by_text("Nothing was saved").count() == 1
                assert page.get_by_role("button", name="Join as a new student").count() == 1
                assert page.get_by_role("button", name="A is closer").count() == 0
            page.screenshot(path=str(ARTIFACTS / "quiz_student_bad_link.png"))
            with QuizStore(db) as store:
                assert (store.joined(code), store.joined(other)) == (1, 1)
                assert len(store.votes(code)) == 2 and store.votes(other) == []
            ctx.close()
        finally:
            browser.close()


#: Samples, every animation frame, which layer of the JND stage is visible and whether the answer
#: buttons are; returns the changes with their times (ms from the first sample). It watches for
#: ``ms``, and on until the buttons show (15 s at most): on a loaded machine Streamlit may insert
#: the buttons' element after the stage's, and their CSS delay counts from their own insertion.
#: The button is looked up every frame, as it may not be in the page yet when the watch starts.
_WATCH_STAGE = """(ms) => new Promise(resolve => {
    const visible = el => el && getComputedStyle(el).visibility === 'visible';
    const stage = [...document.querySelectorAll('div[class^="jnd-"]')].find(d => !d.className.endsWith('-layer'));
    const layers = [...stage.children];
    const button = () => document.querySelector('.st-key-quiz-jnd-same');
    const changes = [];
    let last = null;
    const t0 = performance.now();
    const step = () => {
        const now = performance.now() - t0;
        const shown = visible(button());
        const state = layers.map(l => visible(l) ? 1 : 0).join('') + (shown ? 'B' : '-');
        if (state !== last) { changes.push([Math.round(now), state]); last = state; }
        if (now < ms || (!shown && now < ms + 15000)) requestAnimationFrame(step); else resolve(changes);
    };
    requestAnimationFrame(step);
})"""


def test_a_jnd_round_as_a_student_and_the_teacher_page_after_a_reload(quiz_app):
    """A JND round in a real browser: "Show the two images" flashes the reference, then the second
    image, one at a time (a cross first, a prompt after), the answer buttons only after; the answer
    is saved and survives a reload. The teacher types the code and key once; a reload keeps the
    dashboard (the address holds them)."""
    import json

    from browser import launch_browser, wait_until_idle
    from playwright.sync_api import sync_playwright

    from store import QuizStore
    from teach.preparation import prepare_round

    url, db = quiz_app
    with QuizStore(db) as store:
        code, key = store.create_session("Same or different", n_rounds=3, seed=41, kind="jnd")
        for index in range(3):  # prepared here (PSNR and SSIM only: fast); the server only reads them
            store.save_round(code, prepare_round(41, index, engines={}, max_side=256, others=("psnr", "ssim"),
                                                 kind="jnd"))
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            ctx, page = open_quiz(browser, url)
            box = page.get_by_label("Session code (from your teacher)")
            box.fill(code)
            box.press("Enter")
            page.get_by_text("Round 1 of 3").wait_for(timeout=60_000)
            wait_until_idle(page)
            assert page.get_by_role("button", name="Same").count() == 0  # nothing to answer before it was shown
            page.get_by_role("button", name="Show the two images").click()
            page.locator('div[class^="jnd-"]').first.wait_for(state="attached", timeout=60_000)
            changes = page.evaluate(_WATCH_STAGE, 3600)
            ARTIFACTS.joinpath("jnd_stage_timing.json").write_text(json.dumps(changes))
            states = [state for _, state in changes]
            # Layers: cross, first image, second image, question; then B when the buttons show.
            # One layer at a time (or none, in the gap), in that order, the buttons only at the end.
            assert all(s[:4].count("1") <= 1 for s in states), changes
            order = [s[:4].index("1") for s in states if "1" in s[:4]]
            assert order == sorted(order) and 1 in order and 2 in order and order[-1] == 3, changes
            assert all(s.endswith("-") for s in states if s[:4] != "0001"), changes
            assert states[-1] == "0001B", changes
            assert "0000-" in states[states.index(next(s for s in states if s[1] == "1")):], changes  # the gap
            page.screenshot(path=str(ARTIFACTS / "quiz_student_jnd_question.png"))
            page.get_by_role("button", name="Different").click()
            page.get_by_text("You answered different (saved)").wait_for(timeout=60_000)
            page.locator('[data-testid="stMetric"]').nth(1).wait_for(timeout=60_000)
            page.locator('[data-testid="stImage"] img').nth(1).wait_for(timeout=60_000)
            wait_until_idle(page)
            assert_no_errors(page)
            page.screenshot(path=str(ARTIFACTS / "quiz_student_jnd_revealed.png"))
            with QuizStore(db) as store:
                assert [(v.round_index, v.choice) for v in store.votes(code)] == [(0, "different")]
            page.reload()  # the same student, the next round
            page.get_by_text("Round 2 of 3").wait_for(timeout=60_000)
            page.get_by_text("Welcome back: your 1 earlier pick is saved").wait_for(timeout=30_000)
            assert_no_errors(page)
            # The next round's pair flashes afresh (its own stage), the buttons again only at the end.
            page.get_by_role("button", name="Show the two images").click()
            page.locator('div[class^="jnd-"]').first.wait_for(state="attached", timeout=60_000)
            again = [state for _, state in page.evaluate(_WATCH_STAGE, 3600)]
            assert again[-1] == "0001B" and any(s[:4] == "0100" for s in again), again
            assert all(s.endswith("-") for s in again if s[:4] != "0001"), again
            page.get_by_role("button", name="Same").click()
            page.get_by_text("You answered same (saved)").wait_for(timeout=60_000)
            with QuizStore(db) as store:
                assert [(v.round_index, v.choice) for v in store.votes(code)] == [(0, "different"), (1, "same")]
            ctx.close()

            # The teacher types the code and key once; a reload keeps the dashboard.
            ctx, teacher = open_quiz(browser, url)
            teacher.get_by_role("radio", name="The teacher").click()
            teacher.get_by_role("tab", name="Dashboard").click()
            teacher.get_by_label("Session code", exact=True).fill(code)  # not the student's field, if a rerun still shows it
            teacher.get_by_label("Teacher key").fill(key)
            teacher.get_by_label("Teacher key").press("Enter")
            teacher.get_by_text("2 judgments from 1 person").wait_for(timeout=60_000)
            wait_until_idle(teacher)
            assert f"key={key}" in teacher.url and f"dash={code}" in teacher.url
            teacher.reload()
            teacher.get_by_text("2 judgments from 1 person").wait_for(timeout=60_000)
            wait_until_idle(teacher)
            assert_no_errors(teacher)
            teacher.get_by_text("the class said same").or_(
                teacher.get_by_text("No answers yet on pairs that differ")).first.wait_for(timeout=30_000)
            teacher.locator('[data-testid="stDataFrame"]').last.wait_for(timeout=60_000)  # the rounds' table
            teacher.wait_for_timeout(500)  # let the tables finish drawing (for the picture only)
            teacher.screenshot(path=str(ARTIFACTS / "quiz_dashboard_jnd.png"))
            ctx.close()
        finally:
            browser.close()
