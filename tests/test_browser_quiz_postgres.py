"""The class quiz on two app servers sharing one PostgreSQL database, in a real browser.

Two ``lpips-explorer app` (`streamlit run views/app.py`)` servers on two free ports, both with ``LPIPS_EXPLORER_QUIZ_DB`` set to
the same database of the throwaway PostgreSQL server (tests/pg_server.py): a teacher creates a
session on server 1, one student votes through server 1 and another through server 2, and the
teacher's dashboard on server 2 counts both. Then a server is killed (SIGKILL) right after the page
acknowledged a vote ("(saved)"), and a fresh store connection finds the vote: on PostgreSQL and,
for comparison, on SQLite.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from browser import assert_no_errors, open_quiz, require_browser, vote

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TITLE = "Perceptual similarity quiz"


@pytest.fixture(scope="module")
def two_servers(postgres_server):
    """Two app servers on one fresh PostgreSQL database: (url 1, process 1, url 2, process 2, database URL)."""
    require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    from browser import running_app

    database = postgres_server.create_database()
    env = {"LPIPS_EXPLORER_QUIZ_DB": database}
    try:
        with running_app(env=env) as (url1, proc1, _), running_app(env=env) as (url2, proc2, _):
            yield url1, proc1, url2, proc2, database
    finally:
        postgres_server.drop_database(database)


def _create_session(teacher) -> tuple[str, str]:
    """The teacher creates a 2-round session; returns (join code, teacher key)."""
    from browser import wait_until_idle

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
    teacher.get_by_text("All 2 rounds are prepared").wait_for(timeout=600_000)  # prepared in the background
    teacher.get_by_text("Teacher key (private").click()
    key = teacher.locator('[data-testid="stCode"]').first.inner_text().strip()
    assert len(key) >= 16
    assert_no_errors(teacher)
    return found.group(1), key


def _kill_9(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_two_servers_share_one_postgres_database(two_servers):
    from browser import launch_browser, wait_until_idle
    from playwright.sync_api import sync_playwright

    from store import open_store

    url1, _, url2, _, database = two_servers
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            # The teacher creates a session on server 1.
            teacher_ctx, teacher = open_quiz(browser, url1)
            code, key = _create_session(teacher)

            # One student votes through server 1, the other through server 2.
            s1_ctx, s1 = open_quiz(browser, url1)
            s2_ctx, s2 = open_quiz(browser, url2)
            vote(s1, code, "A is closer")
            vote(s2, code, "B is closer")
            assert s1.get_by_text("You chose A (saved)").count() == 1
            assert s2.get_by_text("You chose B (saved)").count() == 1

            with open_store(database) as store:
                votes = store.votes(code)
            assert sorted(v.choice for v in votes) == ["A", "B"] and len({v.voter_id for v in votes}) == 2
            n_metrics = len(votes[0].metrics)

            # The teacher opens the dashboard on server 2 with the code and the key.
            dash_ctx, dash = open_quiz(browser, url2)
            dash.get_by_role("radio", name="The teacher").click()
            dash.get_by_role("tab", name="Dashboard").wait_for(timeout=60_000)
            wait_until_idle(dash)
            dash.get_by_role("tab", name="Dashboard").click()
            box = dash.get_by_label("Session code", exact=True)
            box.fill(code)
            box.press("Enter")
            wait_until_idle(dash)
            box = dash.get_by_label("Teacher key", exact=True)
            box.fill(key)
            box.press("Enter")
            dash.get_by_text("2 judgments from 2 people").wait_for(timeout=60_000)
            cards = dash.locator('[data-testid="stMetric"]')
            cards.nth(3).wait_for(timeout=60_000)
            wait_until_idle(dash)
            assert_no_errors(dash)
            assert cards.count() == n_metrics
            values = [cards.nth(i).locator('[data-testid="stMetricValue"]').inner_text() for i in range(n_metrics)]
            assert all(v == "50%" for v in values), values  # one vote each way: every metric agrees once
            dash.screenshot(path=str(ARTIFACTS / "quiz_postgres_dashboard_server2.png"))

            for ctx in (teacher_ctx, s1_ctx, s2_ctx, dash_ctx):
                ctx.close()
        finally:
            browser.close()


def _vote_then_kill_9(url: str, proc, code: str) -> None:
    """A student votes B through the server at ``url``; right after "(saved)" the server is killed."""
    from browser import launch_browser
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            ctx, student = open_quiz(browser, url)
            vote(student, code, "B is closer")
            assert student.get_by_text("You chose B (saved)").count() == 1
            _kill_9(proc)  # the vote was acknowledged on the page; the server dies at once
            ctx.close()
        finally:
            browser.close()


def test_acknowledged_vote_survives_kill_9_of_a_postgres_server(two_servers):
    from store import open_store

    _, _, url2, proc2, database = two_servers  # the last test of this module to use server 2
    with open_store(database) as store:
        code, _ = store.create_session("Kill", n_rounds=2)
    _vote_then_kill_9(url2, proc2, code)
    with open_store(database) as fresh:
        votes = fresh.votes(code)
    assert [(v.round_index, v.choice) for v in votes] == [(0, "B")]


def test_acknowledged_vote_survives_kill_9_of_a_sqlite_server(tmp_path):
    require_browser()
    from browser import running_app

    from store import QuizStore

    db = tmp_path / "quiz.sqlite3"
    with QuizStore(db) as store:
        code, _ = store.create_session("Kill", n_rounds=2)
    with running_app(env={"LPIPS_EXPLORER_QUIZ_DB": str(db)}) as (url, proc, _):
        _vote_then_kill_9(url, proc, code)
    with QuizStore(db) as fresh:
        votes = fresh.votes(code)
        assert fresh._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [(v.round_index, v.choice) for v in votes] == [(0, "B")]
