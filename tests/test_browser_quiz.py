"""The class quiz in a real browser: a teacher and two students, each in their own browser context
(own cookies, own Streamlit session), against `streamlit run app.py` with a fresh quiz database."""

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
            teacher.locator('[data-testid="stDataFrame"]').wait_for(timeout=60_000)
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
