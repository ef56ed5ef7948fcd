"""The teaching pages (Sweeps, Class quiz), driven headless through ``streamlit.testing.v1.AppTest``.

Numbers the pages show are checked against ``core`` computed directly here, on the same 8-bit
pixels the app computes on (decoded, downscaled to the compute size limit, quantized to 8 bits,
as ``views.common.prepare_sample`` does). The quiz store is a fresh SQLite file per test, named by
``LPIPS_EXPLORER_QUIZ_DB``; the store is a ``st.cache_resource`` (one per server), so the cache is
cleared before and after each quiz test, or a store of an earlier test would be reused.
"""

from __future__ import annotations

import math
import re
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch

from core.images.imageio import downscale_to_fit, load_image_info
from core import metrics
from core.lpips.engine import Engine
from core.images.samples import list_samples
from core.images.tensors import from_numpy, to_uint8
from store import CODE_ALPHABET, QuizStore
from teach import quiz, sweeps
from teach.quiz import summarize

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

APP = Path(__file__).resolve().parents[1] / "views" / "app.py"
QUIZ_PAGE = APP.parent / "quiz.py"
TIMEOUT = 180  # seconds per script run: the first loads torch and the networks on a loaded 2-core CPU
SMALL = 256  # compute size limit for these tests (settings.max_side); the quiz's rounds are 256 px too
SWEEP_SAMPLE = "astronaut"  # the first gallery entry: the Sweeps page's default reference


# ---------------------------------------------------------------------------------------------
# What core says.
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def engine(net: str = "alex") -> Engine:
    return Engine(net, "0.1", True, "cpu")


@lru_cache(maxsize=None)
def sample_ref(key: str, max_side: int = SMALL) -> torch.Tensor:
    """The reference as views.common.prepare_sample makes it: file bytes → decode → fit → 8-bit."""
    sample = next(s for s in list_samples() if s.key == key)
    small, _ = downscale_to_fit(load_image_info(sample.path.read_bytes()).tensor, max_side)
    return from_numpy(to_uint8(small))


@lru_cache(maxsize=None)
def round_metrics(seed: int, index: int) -> dict:
    spec = quiz.make_round(seed, index)
    ref, a, b = quiz.render_round(spec, SMALL)
    return quiz.score_round(spec, ref, a, b, {"alex": engine("alex"), "vgg": engine("vgg")})


# ---------------------------------------------------------------------------------------------
# Driving the app.
# ---------------------------------------------------------------------------------------------

def start(page: str | None = None, **state) -> AppTest:
    """A new browser session: the default page first (AppTest needs one run), then ``page``."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["settings.max_side"] = SMALL
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page:
        at.switch_page(page).run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert not at.warning, [w.value for w in at.warning]


def rendered_text(at: AppTest) -> str:
    """Every element's protobuf as text: all a browser of this session could be sent."""
    parts = []
    for root in (at.main, at.sidebar):
        for node in root:
            proto = getattr(node, "proto", None)
            if proto is not None:
                parts.append(str(proto))
    return "\n".join(parts)


def clear_quiz_store() -> None:
    import streamlit as st

    st.cache_resource.clear()  # the quiz store (and cheap-to-rebuild engines: the weights stay cached)


@pytest.fixture()
def quiz_db(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "quiz.sqlite3"
    monkeypatch.setenv("LPIPS_EXPLORER_QUIZ_DB", str(path))
    clear_quiz_store()
    yield path
    clear_quiz_store()


def progress_text(at: AppTest) -> str:
    bars = at.get("progress")
    assert len(bars) == 1, bars
    return bars[0].proto.text


# ---------------------------------------------------------------------------------------------
# Sweeps.
# ---------------------------------------------------------------------------------------------

PSNR_LINE = re.compile(r"All at \*\*(\d+\.\d) dB\*\* PSNR")
# One line per registered metric under each image: "LPIPS **0.1234**", "PSNR **26.01 dB**"...
ENTRY = re.compile(r"(?:[A-Z][A-Za-z-]* \*\*[^*]+\*\*(?:  \n|$))+")
ENTRY_LINE = re.compile(r"([A-Z][A-Za-z-]*) \*\*([^*]+)\*\*")


def test_sweeps_equal_psnr_matches_core():
    at = start("sweep.py")
    assert_clean(at)
    assert [t.value for t in at.title] == ["Sweeps"]
    assert at.select_slider(key="settings.max_side").value == SMALL  # kept across the page switch
    assert at.selectbox(key="teach.sample").value == SWEEP_SAMPLE
    assert at.multiselect(key="equal.families").value == list(sweeps.DEFAULT_EQUAL_PSNR_FAMILIES)
    assert not any(PSNR_LINE.match(m.value) for m in at.markdown)  # nothing until the button

    at.button(key="equal.run").click().run()
    assert_clean(at)
    lines = [m.value for m in at.markdown]
    heads = [PSNR_LINE.match(v) for v in lines if PSNR_LINE.match(v)]
    assert len(heads) == 1, lines
    shown_target = float(heads[0].group(1))
    assert "(chosen so every distortion can reach it)" in heads[0].string
    entries = [ENTRY.fullmatch(v) for v in lines if ENTRY.fullmatch(v)]

    ref = sample_ref(SWEEP_SAMPLE)
    want = sweeps.equal_psnr_set(engine("alex"), ref, sweeps.DEFAULT_EQUAL_PSNR_FAMILIES, None,
                                 ssim_mode="reference")
    assert f"{want.target_psnr:.1f}" == heads[0].group(1)
    assert len(entries) == len(want.entries) == len(sweeps.DEFAULT_EQUAL_PSNR_FAMILIES), lines
    unreached = [e.message for e in want.entries if not e.reached]
    for match, entry in zip(entries, want.entries):
        shown = dict(ENTRY_LINE.findall(match.group(0)))
        assert list(shown) == [metrics.get(k).label for k in entry.scores], shown  # every metric, display order
        psnr = float(shown["PSNR"].removesuffix(" dB"))
        if entry.reached:
            assert abs(psnr - shown_target) <= 0.1, (entry.name, psnr, shown_target)
        assert shown["PSNR"] == f"{entry.psnr:.2f} dB", entry.name
        assert shown["SSIM"] == f"{entry.ssim:.4f}", entry.name
        assert shown["LPIPS"] == f"{entry.lpips:.4f}", entry.name
    for message in unreached:  # a family that missed the target says so under its image
        assert message in at.caption.values

    label = {e.name: e.label for e in want.entries}
    assert "LPIPS ranks them, most similar first: " + " < ".join(label[n] for n in want.ranking) in lines
    assert "SSIM ranks them, most similar first: " + " > ".join(label[n] for n in want.ssim_ranking) in lines
    assert at.session_state["equal.result"].ranking == want.ranking


def test_sweeps_severity_sweep_matches_core():
    at = start("sweep.py")
    assert any("press **Run sweep**" in i.value for i in at.info)
    at.selectbox(key="sweep.name").set_value("gaussian_noise").run()
    assert_clean(at)
    param = at.selectbox(key="sweep.param.gaussian_noise").value
    low, high = at.slider(key=f"sweep.range.gaussian_noise.{param}").value
    at.number_input(key="sweep.levels").set_value(8)
    at.button(key="sweep.run").click().run()
    assert_clean(at)
    assert not any("press **Run sweep**" in i.value for i in at.info)
    assert not at.get("progress")  # the bar is gone once done

    config, result = at.session_state["sweep.result"]
    assert config[1:5] == ("gaussian_noise", param, (low, high), 8)
    ref = sample_ref(SWEEP_SAMPLE)
    want = sweeps.severity_sweep(engine("alex"), engine("alex").reference(ref), ref, "gaussian_noise", param,
                                 levels=8, low=low, high=high, ssim_mode="reference")
    assert result.name == "gaussian_noise" and result.param == param and len(result) == 8
    np.testing.assert_allclose(result.values, want.values)
    np.testing.assert_allclose(result.lpips, want.lpips, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.psnr, want.psnr, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.ssim, want.ssim, rtol=0, atol=1e-6)
    assert result.lpips[0] == 0.0 and np.all(np.diff(result.lpips) > 0)  # more noise, more different
    assert len(at.get("plotly_chart")) == 2  # raw and normalized
    assert "sweep.csv" in {d.key for d in at.get("download_button")}


# ---------------------------------------------------------------------------------------------
# Class quiz.
# ---------------------------------------------------------------------------------------------

def create_session(at: AppTest, title: str = "Perceptual similarity quiz", rounds: int = 3,
                   kind: str = "2afc") -> tuple[str, str]:
    at.segmented_control(key="quiz.role").set_value("The teacher").run()
    assert_clean(at)
    at.text_input(key="quiz.title").input(title)
    at.number_input(key="quiz.rounds").set_value(rounds)
    at.radio(key="quiz.kind").set_value(kind)
    buttons = [b for b in at.button if b.label == "Create session"]
    assert len(buttons) == 1, [b.label for b in at.button]
    buttons[0].click().run()
    assert_clean(at)
    assert len(at.success) == 1, [s.value for s in at.success]
    found = re.search(r"the code \*\*([A-Z0-9]{6})\*\*", at.success[0].value)
    assert found, at.success[0].value
    code = found.group(1)
    assert set(code) <= set(CODE_ALPHABET)
    assert len(at.code) == 1
    key = at.code[0].value
    assert key == at.session_state["quiz.teacher"]["key"] and len(key) >= 16
    return code, key


def wait_prepared(store: QuizStore, code: str, n_rounds: int, timeout: float = 300.0) -> None:
    """Wait for the server's background preparation to store every round of ``code``."""
    deadline = time.monotonic() + timeout
    while len(store.prepared_rounds(code)) < n_rounds:
        assert time.monotonic() < deadline, f"only {store.prepared_rounds(code)} of {n_rounds} rounds prepared"
        time.sleep(0.5)


def quiz_page(query_params: dict | None = None) -> AppTest:
    """A new browser session opened straight on the quiz page (its own script: no other page runs)."""
    at = AppTest.from_file(str(QUIZ_PAGE), default_timeout=TIMEOUT)
    at.query_params = dict(query_params or {})
    at.run()
    return at


def reopen(at: AppTest) -> AppTest:
    """The same browser tab reloaded: a new Streamlit session, the same address (query parameters)."""
    return quiz_page(at.query_params)


def test_quiz_teacher_student_vote_and_dashboard(quiz_db):
    teacher = quiz_page()
    assert_clean(teacher)
    assert [t.value for t in teacher.title] == ["Class quiz"]
    assert teacher.segmented_control(key="quiz.role").value == "A student"
    code, key = create_session(teacher, rounds=3)

    store = QuizStore(quiz_db)
    try:
        session = store.session(code)
        assert session is not None and session.n_rounds == 3 and session.title == "Perceptual similarity quiz"
        assert store.check_teacher_key(code, key)
        # Creating the session started preparing its rounds in the background; the teacher sees it.
        assert any("rounds" in c.value for c in teacher.caption) or teacher.get("progress"), teacher.main
        wait_prepared(store, code, 3)
        # The dashboard opens by itself for the new session, with nothing in it yet.
        teacher.run()
        assert_clean(teacher)
        assert any("All 3 rounds are prepared" in c.value for c in teacher.caption)
        assert teacher.text_input(key="quiz.dash.code").value == code
        assert any("0 judgments from 0 people" in m.value for m in teacher.markdown)
        assert not teacher.metric

        # A student on another device: a wrong code first, then the right one (any case).
        student = quiz_page()
        assert any("Enter the code" in i.value for i in student.info)
        student.text_input(key="quiz.code").input("ZZZZZZ" if code != "ZZZZZZ" else "YYYYYY").run()
        assert not student.exception and not student.error
        assert len(student.warning) == 1 and "No session has that code" in student.warning[0].value
        assert "voter" not in student.query_params  # no token for a session that does not exist
        student.text_input(key="quiz.code").input(code.lower()).run()
        assert_clean(student)
        assert progress_text(student) == "Round 1 of 3"
        assert any(m.value == "**Perceptual similarity quiz** · 3 rounds" for m in student.markdown)
        assert {"quiz.pick.A", "quiz.pick.B"} <= {b.key for b in student.button}
        assert not student.metric  # nothing revealed before the vote
        # Joining put the student's token in the page's address; the store knows it (by its hash).
        token = student.query_params["voter"]
        assert student.query_params["code"] == code and len(token) == 22
        assert store.joined(code) == 1 and store.picks(code, token) == {}

        student.button(key="quiz.pick.B").click().run()  # one run: the callback stores, the page confirms
        assert_clean(student)
        want = round_metrics(session.seed, 0)
        # LPIPS on both networks, then every other registered metric that can score the round's size
        # (MS-SSIM needs 176 px on the short side, which a wide photo at 256 px may not have).
        others = [k for k in metrics.names() if k != "lpips"]
        assert list(want) == ["lpips_alex", "lpips_vgg", *[k for k in others if k in want]]
        assert {"psnr", "ssim"} <= set(want)
        assert any(m.value.startswith("You chose **B** (saved)") for m in student.markdown)
        assert len(student.metric) == len(want)
        labels = {"lpips_alex": "LPIPS (AlexNet)", "lpips_vgg": "LPIPS (VGG16)", "psnr": "PSNR", "ssim": "SSIM",
                  "ms_ssim": "MS-SSIM"}
        for card, (name, m) in zip(student.metric, want.items()):
            assert card.label == labels.get(name, quiz.metric_label(name))
            assert card.value == f"picks {m['pick']}"
            verdict = "agrees with you" if m["pick"] == "B" else ("can't decide" if m["pick"] == "tie" else "disagrees")
            assert card.delta == verdict
            unit = " dB" if name == "psnr" else ""
            assert f"A: {m['a']:.4g}{unit} · B: {m['b']:.4g}{unit}" in student.caption.values
        assert {"quiz.pick.A", "quiz.pick.B"}.isdisjoint({b.key for b in student.button})

        votes = store.votes(code)
        assert len(votes) == 1
        vote = votes[0]
        assert (vote.session_code, vote.round_index, vote.choice) == (code, 0, "B")
        assert vote.voter_id == store.voter(code, token)
        spec = quiz.make_round(session.seed, 0)
        assert (vote.sample, vote.family_a, vote.family_b) == (spec.sample, spec.family_a, spec.family_b)
        assert set(vote.metrics) == set(want)
        for name, m in want.items():
            assert vote.metrics[name]["pick"] == m["pick"]
            assert vote.metrics[name]["a"] == pytest.approx(m["a"], abs=1e-6)
            assert vote.metrics[name]["b"] == pytest.approx(m["b"], abs=1e-6)

        # The tab is reloaded (or the server restarted): the address brings the student back to the
        # first unvoted round, with the earlier pick shown, under the same token.
        back = reopen(student)
        assert_clean(back)
        assert progress_text(back) == "Round 2 of 3"
        assert any("Welcome back: your 1 earlier pick is saved" in i.value for i in back.info)
        assert any("round 1 **B**" in c.value for c in back.caption)
        assert back.query_params["voter"] == token and store.joined(code) == 1

        student.button(key="quiz.next").click().run()
        assert_clean(student)
        assert progress_text(student) == "Round 2 of 3"
        assert not student.metric

        # The student tries the dashboard with a guessed key, then with their own token: errors, no numbers.
        student.segmented_control(key="quiz.role").set_value("The teacher").run()
        assert not student.success and not student.code  # the teacher's message is per session
        for guess in ("not-the-key", token):
            student.text_input(key="quiz.dash.code").input(code)
            student.text_input(key="quiz.dash.key").input(guess).run()
            assert not student.exception
            assert len(student.error) == 1 and "do not match a session" in student.error[0].value
            assert not student.metric
            assert not any("judgments" in m.value for m in student.markdown)
            assert not student.dataframe
            assert key not in rendered_text(student)

        # The teacher refreshes: one judgment from one person, each metric's agreement as QuizStore.summary says.
        teacher.button(key="quiz.refresh").click().run()
        assert_clean(teacher)
        summary = summarize(store, code)
        assert (summary.n_votes, summary.n_voters) == (1, 1)
        assert any(m.value == "**Perceptual similarity quiz** · 1 judgment from 1 person" for m in teacher.markdown)
        assert any(c.value.startswith("1 student joined") for c in teacher.caption)
        cards = {c.label: c for c in teacher.metric}
        assert len(cards) == len(summary.metrics) == len(want)
        for name, agreement in summary.metrics.items():
            card = cards[labels.get(name, quiz.metric_label(name))]
            assert agreement.score == (1.0 if want[name]["pick"] == "B" else 0.5 if want[name]["pick"] == "tie" else 0.0)
            assert card.value == f"{100 * agreement.score:.0f}%"
            assert f"{agreement.n} judgments" in card.proto.help
        paper = teacher.dataframe[0].value  # the paper's 2AFC on this class's answers, and the ceiling
        assert list(paper["metric"]) == [*(labels.get(m, quiz.metric_label(m)) for m in summary.paper_2afc),
                                         "people (ceiling)"]
        assert list(paper["2AFC score"]) == [*(f"{100 * v:.1f}%" for v in summary.paper_2afc.values()),
                                             f"{100 * summary.human_2afc:.1f}%"]
        table = teacher.dataframe[1].value
        assert len(table) == 3 and list(table["votes B"])[:1] == [1]
    finally:
        store.close()


def test_quiz_bad_student_links_are_explained_and_store_nothing(quiz_db):
    store = QuizStore(quiz_db)
    try:
        code, _ = store.create_session("Class", n_rounds=2, seed=5)
        other, _ = store.create_session("Other", n_rounds=2, seed=6)
        theirs = store.join(other)
        cases = {
            "not a token": "damaged",
            "Z" * 22: "was not issued by this quiz",
            theirs: f"belongs to another quiz session, not {code}",
        }
        for token, message in cases.items():
            at = quiz_page({"code": code, "voter": token})
            assert not at.exception, [e.value for e in at.exception]
            assert len(at.error) == 1, [e.value for e in at.error]
            assert message in at.error[0].value and "Nothing was saved" in at.error[0].value, at.error[0].value
            assert not at.get("progress") and "quiz.pick.A" not in {b.key for b in at.button}
            assert at.query_params["voter"] == token  # nothing rewritten behind the student's back
        assert (store.joined(code), store.joined(other)) == (0, 1)
        assert store.votes(code) == [] and store.votes(other) == []
        # "Join as a new student" drops the bad token and issues a fresh one.
        at.button(key="quiz.rejoin").click().run()
        assert not at.exception and not at.error
        assert at.query_params["voter"] != theirs and store.joined(code) == 1
        assert store.voter(code, at.query_params["voter"])
        # This session's rounds were never prepared (made here by the store, not the page): the
        # student waits while this server prepares them.
        assert any("rounds are being prepared" in i.value for i in at.info), [i.value for i in at.info]
        wait_prepared(store, code, 2)
        at.run()
        assert_clean(at)
        assert progress_text(at) == "Round 1 of 2" and "quiz.pick.A" in {b.key for b in at.button}
    finally:
        store.close()


def test_quiz_limits_on_shared_work_are_explained_and_store_nothing(quiz_db, monkeypatch):
    """Any browser can create sessions, and each one's rounds are prepared on the server: past the
    per-address hourly limit or the server's bound on sessions preparing at once, the page says
    why and when to try again, and nothing is stored or started (issue #27)."""
    import sqlite3

    from teach.preparation import RoundPreparer
    from views import class_limits

    def stored() -> int:
        with sqlite3.connect(quiz_db) as con:
            return con.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]

    def create_again(at: AppTest, title: str) -> None:
        at.text_input(key="quiz.title").input(title)
        [b for b in at.button if b.label == "Create session"][0].click().run()
        assert not at.exception, [e.value for e in at.exception]

    monkeypatch.setattr(class_limits, "session_creations", class_limits.RateLimit(1, 3600))
    teacher = quiz_page()
    code, _ = create_session(teacher, rounds=1)
    store = QuizStore(quiz_db)
    try:
        wait_prepared(store, code, 1)
        create_again(teacher, "One more this hour")
        assert any("sessions in the last hour" in w.value and "try again in" in w.value for w in teacher.warning), \
            [w.value for w in teacher.warning]
        assert stored() == 1
        # The server already prepares as many sessions as it may: refused too, with its own reason.
        monkeypatch.setattr(class_limits, "session_creations", class_limits.RateLimit(10, 3600))
        monkeypatch.setattr(RoundPreparer, "_busy_locked", lambda self: 10**6)
        create_again(teacher, "While the server is busy")
        assert any("already preparing the rounds" in w.value for w in teacher.warning), [w.value for w in teacher.warning]
        assert stored() == 1
        # Busy only once the session exists (another tab took the last place meanwhile): the teacher
        # keeps the new session's key, is told why, and gets the button to prepare it later.
        check_room = RoundPreparer.check_room
        monkeypatch.setattr(RoundPreparer, "check_room", lambda self: None)
        create_again(teacher, "Raced")
        assert stored() == 2 and len(teacher.code) == 1
        assert any("already preparing the rounds" in e.value for e in teacher.error), [e.value for e in teacher.error]
        assert any(b.key == "quiz.prepare" for b in teacher.button)
        monkeypatch.setattr(RoundPreparer, "check_room", check_room)
        # A student whose session's rounds nobody prepares yet is told to wait, not shown an error.
        other, _ = store.create_session("Unprepared", n_rounds=1, seed=3)
        student = quiz_page({"code": other})
        assert not student.exception and not student.error, [e.value for e in student.error]
        assert any("already preparing the rounds" in w.value for w in student.warning), [w.value for w in student.warning]
        assert store.prepared_rounds(other) == []
    finally:
        store.close()


def test_quiz_unwritable_store_explained_and_explore_still_works(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a regular file where the database folder should be")
    monkeypatch.setenv("LPIPS_EXPLORER_QUIZ_DB", str(blocker / "quiz.sqlite3"))
    clear_quiz_store()
    try:
        at = start("quiz.py")
        assert not at.exception, [e.value for e in at.exception]
        assert len(at.error) == 1, [e.value for e in at.error]
        assert "cannot" in at.error[0].value and "The quiz cannot store votes" in at.error[0].value
        assert str(blocker) in at.error[0].value
        assert "quiz.code" not in {t.key for t in at.text_input}

        at.segmented_control(key="quiz.role").set_value("The teacher").run()
        assert not at.exception
        assert len(at.error) == 1 and "cannot" in at.error[0].value
        assert not [b for b in at.button if b.label == "Create session"]

        at.switch_page("explore.py").run()
        assert_clean(at)
        assert len(at.metric) >= 4 and all(m.value for m in at.metric)  # LPIPS, PSNR, SSIM, MS-SSIM at least
        assert not blocker.with_name("quiz.sqlite3").exists() and blocker.is_file()
    finally:
        clear_quiz_store()


def test_unwritable_store_message_names_the_variable_in_use(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LPIPS_EXPLORER_QUIZ_DB", str(blocker / "quiz.sqlite3"))
    clear_quiz_store()
    try:
        at = start("quiz.py")
        assert len(at.error) == 1
        assert "LPIPS_EXPLORER_QUIZ_DB" in at.error[0].value, at.error[0].value
    finally:
        clear_quiz_store()


def test_quiz_unreachable_postgres_explained_and_explore_still_works(monkeypatch):
    from browser import free_port

    secret = "Not-shown-pw-42"
    closed = free_port()  # nothing listens there: as a PostgreSQL server that is down
    monkeypatch.setenv("LPIPS_EXPLORER_QUIZ_DB", f"postgresql://quiz:{secret}@127.0.0.1:{closed}/quiz")
    clear_quiz_store()
    try:
        at = start("quiz.py")
        assert not at.exception, [e.value for e in at.exception]
        assert len(at.error) == 1, [e.value for e in at.error]
        message = at.error[0].value
        assert "The quiz cannot store votes" in message and "cannot connect" in message, message
        assert "PostgreSQL" in message and "LPIPS_EXPLORER_QUIZ_DB" in message, message
        assert f"127.0.0.1:{closed}" in message and secret not in message, message
        assert secret not in rendered_text(at)
        assert "quiz.code" not in {t.key for t in at.text_input}

        at.segmented_control(key="quiz.role").set_value("The teacher").run()
        assert not at.exception
        assert len(at.error) == 1 and "LPIPS_EXPLORER_QUIZ_DB" in at.error[0].value
        assert not [b for b in at.button if b.label == "Create session"]

        at.switch_page("explore.py").run()
        assert_clean(at)
        assert len(at.metric) >= 4 and all(m.value for m in at.metric)  # LPIPS, PSNR, SSIM, MS-SSIM at least
    finally:
        clear_quiz_store()


# ---------------------------------------------------------------------------------------------
# Class quiz: JND sessions, and the teacher's page across reloads and restarts.
# ---------------------------------------------------------------------------------------------

def test_quiz_jnd_round_as_a_student_and_the_teacher_page_survives_reload_and_restart(quiz_db):
    teacher = quiz_page()
    code, key = create_session(teacher, rounds=3, kind="jnd")
    # The teacher's address now holds the dashboard's code and key (the student's never does).
    assert teacher.query_params["dash"] == code and teacher.query_params["key"] == key
    store = QuizStore(quiz_db)
    try:
        session = store.session(code)
        assert session.kind == "jnd"
        wait_prepared(store, code, 3)

        student = quiz_page()
        student.text_input(key="quiz.code").input(code).run()
        assert_clean(student)
        assert progress_text(student) == "Round 1 of 3"
        assert "dash" not in student.query_params and "key" not in student.query_params
        # Nothing to answer before the pair was shown; then the two images and the two answers.
        assert {b.key for b in student.button} >= {"quiz.jnd.show"}
        assert not {"quiz.jnd.same", "quiz.jnd.different"} & {b.key for b in student.button}
        assert any("1 s each" in (b.help or "") or "1 s, with a 250 ms gap" in (b.help or "") for b in student.button)
        student.button(key="quiz.jnd.show").click().run()
        assert_clean(student)
        stage = [h.proto.body for h in student.get("html")]
        assert len(stage) == 1 and stage[0].count("data:image/png;base64,") == 2
        assert "1000ms 500ms" in stage[0] and "1000ms 1750ms" in stage[0]  # 1 s each, 250 ms apart
        assert {"quiz.jnd.same", "quiz.jnd.different"} <= {b.key for b in student.button}
        student.button(key="quiz.jnd.different").click().run()
        assert_clean(student)
        assert any(m.value.startswith("You answered **different** (saved)") for m in student.markdown)
        token = student.query_params["voter"]
        assert store.picks(code, token) == {0: "different"}
        # The cards show what each metric measured between the two images, checked against core.
        spec = quiz.make_jnd_round(session.seed, 0)
        _, first, second = quiz.render_round(spec, SMALL)
        cards = {c.label: c.value for c in student.metric}
        want = engine("alex").distance(first, second).item()
        assert cards["LPIPS (AlexNet)"] == f"{want:.4g}"  # 0 for an identical pair
        # A re-sent answer counts once; a different one for the same round is refused.
        assert store.cast_vote(code, token, 0, "different").repeated
        student.button(key="quiz.next").click().run()
        assert_clean(student)
        assert progress_text(student) == "Round 2 of 3"

        # The teacher reloads the page: the address reopens the dashboard, nothing retyped.
        back = reopen(teacher)
        assert_clean(back)
        assert back.segmented_control(key="quiz.role").value == "The teacher"
        assert back.text_input(key="quiz.dash.code").value == code
        assert any("1 judgment from 1 person" in m.value for m in back.markdown)
        assert back.dataframe  # the rounds' table (the mAP table appears once a differing pair is answered)
        # A server restart (every cached resource gone): the address still reopens it.
        clear_quiz_store()
        restarted = reopen(teacher)
        assert_clean(restarted)
        assert any("1 judgment from 1 person" in m.value for m in restarted.markdown)
        # The key can leave the address; then the page asks for it again.
        restarted.button(key="quiz.forget").click().run()
        assert "key" not in restarted.query_params and "dash" not in restarted.query_params
        assert any("Enter the session code and your teacher key" in i.value for i in restarted.info)
        # A wrong or damaged key in an address: a message, no exception, no results.
        for bad in ("x" * 22, "k" * 5000, key[:-1]):
            wrong = quiz_page({"dash": code, "key": bad})
            assert not wrong.exception
            assert not any("judgment" in m.value for m in wrong.markdown)
    finally:
        store.close()


def test_jnd_rounds_table_shows_a_dash_for_a_round_no_one_answered():
    """A JND session's rounds table: an unanswered round has no image name or metric values yet;
    its cells read "–", never "None"; PSNR of identical images reads "∞"."""
    from types import SimpleNamespace

    from views.quiz import jnd_rows

    answered = SimpleNamespace(index=0, sample="astronaut", identical=True, distortion="", votes_same=2,
                               votes_different=1, metric_values={"psnr": float("inf"), "ssim": 1.0})
    waiting = SimpleNamespace(index=1, sample="", identical=False, distortion="", votes_same=0,
                              votes_different=0, metric_values={"psnr": None, "ssim": None})
    rows = jnd_rows(SimpleNamespace(rounds=[answered, waiting]))
    assert rows[0]["image"] == "astronaut" and rows[0]["same (share)"] == "67%"
    assert rows[0]["PSNR"] == "∞" and rows[0]["SSIM"] == "1"
    assert rows[1]["image"] == "–" and rows[1]["PSNR"] == rows[1]["SSIM"] == "–"
    assert "None" not in str(rows)
