"""The class quiz through server crashes: a real `streamlit run` server is killed with SIGKILL while
simulated students vote, restarted on the same database, and every student reconnects as a browser
tab does (same address, same token) and continues.

The students speak Streamlit's websocket protocol (bench/load_class.py's ``Student``; the class is
bench/quiz_class.py), since ten browsers do not fit a small test machine. The rounds are prepared
before the class, with PSNR and SSIM only (no network), to keep the test short; the server never
computes a metric during the class. What is checked comes from two independent sides: what each
student's page acknowledged, and what the database holds afterwards.
"""

from __future__ import annotations

import pytest

from bench.quiz_class import QuizOptions, run_quiz_class

STUDENTS = 10
ROUNDS = 6


def check_class_survived(rep: dict) -> None:
    detail = {k: rep[k] for k in ("errors_by_kind", "error_samples", "lost_acknowledged", "unexplained_stored")}
    assert rep["errors"] == 0, detail
    assert rep["server_restarts_s"], "the server was never killed: the class ended too early"
    assert rep["finished_students"] == STUDENTS, detail
    # Each student reconnected after the crash and the page showed the round after their last
    # acknowledged pick (or one further when the pick in flight had been stored).
    assert rep["reconnects"] >= STUDENTS and rep["resumed_at_expected_round"] == rep["reconnects"], rep["records"]
    # 0 acknowledged votes lost; nothing stored that no page sent.
    assert rep["lost_acknowledged"] == [] and rep["unexplained_stored"] == []
    assert rep["acknowledged_votes"] + rep["stored_in_flight_unacknowledged"] == rep["stored_votes"]
    assert rep["stored_votes"] == STUDENTS * ROUNDS
    # One person per student, however often they reconnected; a double click counted once.
    assert rep["distinct_tokens"] == rep["joined"] == rep["people_on_dashboard"] == STUDENTS
    assert rep["double_clicks"] == STUDENTS and rep["duplicate_rows"] == 0
    assert rep["integrity"] in ("ok", "n/a")
    assert rep["ok"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_students_continue_after_kill_9_of_the_server(backend, request, tmp_path):
    store_target = (str(tmp_path / "quiz.sqlite3") if backend == "sqlite"
                    else request.getfixturevalue("postgres_url"))
    # Killed when 40% of the votes are in: every student is mid-quiz, some with a pick in flight.
    opts = QuizOptions(students=STUDENTS, rounds=ROUNDS, think=0.2, ramp=1.0, timeout=90.0,
                       kill_after_votes=(STUDENTS * ROUNDS * 2 // 5,), double_click_round=1, fetch_media=False)
    rep = run_quiz_class(opts, nets=False, store_target=store_target)
    check_class_survived(rep)
