"""Teach · Class quiz: the LPIPS paper's two questions, as in its BAPPS data — two-alternative forced
choice (2AFC: which of A and B is closer to the reference?) and just noticeable differences (JND:
two images flashed one after the other, the same or different?).

A teacher creates a session (a short code for students, a secret key for the dashboard) and picks
its kind of question; every round's images and metric values are then prepared in the background
and stored, so a student's click only reads and writes the store. Students join with the code on
their own devices; each student gets a random token kept in the page's address
(``?code=…&voter=…``), so a reload, a
dropped connection, a server restart or another server behind the proxy brings them back to
their first unvoted round with their earlier picks. A vote is confirmed in the same run that
stores it. The dashboard shows how often each metric agreed with the class. The teacher's page
keeps the session code and the key in its address (``?dash=…&key=…``), so it too survives a
reload or a server restart (docs/reliability-and-security.md says what that costs).
"""

from __future__ import annotations

import base64
import html
import io
import os

import plotly.graph_objects as go
import streamlit as st

from core.distortions import REGISTRY
from core.errors import LpipsExplorerError
from store import (
    BaseQuizStore,
    QuizBusyError,
    QuizRoundNotReadyError,
    QuizTokenError,
    SessionInfo,
    StoredRound,
    normalize_code,
    open_store,
)
from teach import quiz
from teach.preparation import RoundPreparer
from views import a11y, browser_input, class_limits
from views.class_fit import class_fit_panel
from viz import charts
from views.common import engine_for, freeze_imported_objects, plain, show_error, weights_status

ROUND_SIDE = int(os.environ.get("LPIPS_EXPLORER_QUIZ_SIDE", "256"))
#: Students can start once this many rounds (or all, if fewer) are prepared.
OPEN_AFTER = 3
#: The page's query parameters that keep a student's place: the join code and the student token.
CODE_PARAM, TOKEN_PARAM = "code", "voter"
#: The teacher's: the dashboard's session code and the teacher key.
DASH_PARAM, KEY_PARAM = "dash", "key"
#: The longest query parameter values read: a code is 6 characters (12 with spaces and dashes),
#: a token or a key 22; anything longer is no address the page wrote.
MAX_CODE_PARAM, MAX_TOKEN_PARAM = 12, 64
#: The kinds of question, as the teacher's form names them.
KIND_LABELS = {"2afc": "Which is closer? (2AFC)", "jnd": "Same or different? (JND)"}
#: The JND presentation: a fixation cross (not in the paper: it gives the browser time to decode
#: both images before the first one must appear), then the paper's timings (teach.quiz).
JND_FIXATION_MS = 500


def _query_param(name: str, max_chars: int) -> str:
    """A query parameter of the page's address as text the page could have written, else ''."""
    try:
        return browser_input.short_text(st.query_params.get(name, ""), max_chars)
    except browser_input.BAD_INPUT:
        return ""


@st.cache_resource(show_spinner=False)
def quiz_store() -> BaseQuizStore:
    """One store per server: SQLite (a file path, or the default file) keeps a connection per thread;
    PostgreSQL (``LPIPS_EXPLORER_QUIZ_DB=postgresql://…``, several servers on one database) a small
    pool. A store that cannot be opened raises (the page explains it) and is not cached, so the next
    rerun tries again, e.g. once the database server is back."""
    return open_store(os.environ.get("LPIPS_EXPLORER_QUIZ_DB") or None)


@st.cache_resource(show_spinner=False)
def round_preparer() -> RoundPreparer:
    """One background thread per server that prepares sessions' rounds into the store, at most
    :data:`views.class_limits.MAX_PREPARING` sessions queued or running at once."""
    return RoundPreparer(quiz_store(), max_sessions=class_limits.MAX_PREPARING)


@st.cache_resource(show_spinner=False, max_entries=512)
def stored_round(code: str, index: int) -> StoredRound:
    """A prepared round from the store; stored rounds never change, so each is read once per server.
    Raises :class:`QuizRoundNotReadyError` (not cached) while the round is not stored."""
    found = quiz_store().stored_round(code, index)
    if found is None:
        raise QuizRoundNotReadyError(f"Round {index + 1} is still being prepared.")
    return found


def _nets() -> tuple[str, ...]:
    status = weights_status()
    return tuple(n for n in ("alex", "vgg") if not status[n])


def start_preparation(session: SessionInfo) -> None:
    """Prepare the session's missing rounds on this server (no-op while it is already doing so)."""
    engines = {net: engine_for(net, "0.1", True, "auto") for net in _nets()}
    round_preparer().submit(session.code, session.seed, session.n_rounds, engines, max_side=ROUND_SIDE,
                            kind=session.kind)


def _store_or_none() -> BaseQuizStore | None:
    try:
        return quiz_store()
    except LpipsExplorerError as err:
        show_error(err, "The quiz cannot store votes on this server")
        return None


# ---------------------------------------------------------------------------------------------
# Students.
# ---------------------------------------------------------------------------------------------

def _round_key(code: str) -> str:
    return f"quiz.round.{code}"


def _rejoin() -> None:
    """Drop the bad token from the address; the next run issues a new one."""
    if TOKEN_PARAM in st.query_params:
        del st.query_params[TOKEN_PARAM]
    st.session_state.pop("quiz.token_checked", None)


def student_token(store: BaseQuizStore, session: SessionInfo) -> str | None:
    """The student's token for ``session``: the one in the page's address, checked against the
    store, or a new one (kept in the address) on a first join. ``None`` after showing why a
    token in the address cannot be used."""
    url_code = _query_param(CODE_PARAM, MAX_CODE_PARAM)
    url_token = _query_param(TOKEN_PARAM, MAX_TOKEN_PARAM)
    try:
        same_session = bool(url_code) and normalize_code(url_code) == session.code
    except LpipsExplorerError:
        same_session = False
    if url_token and same_session:
        if st.session_state.get("quiz.token_checked") == (session.code, url_token):
            return url_token  # checked earlier in this browser session
        try:
            store.voter(session.code, url_token)
        except QuizTokenError as err:
            st.error(f"**This page's student link cannot be used:** {err} Nothing was saved.",
                     icon=":material/link_off:")
            st.button("Join as a new student", key="quiz.rejoin", on_click=_rejoin, icon=":material/login:")
            return None
        st.session_state["quiz.token_checked"] = (session.code, url_token)
        return url_token
    # A first join here, or the student typed another session's code: a new token.
    token = store.join(session.code)
    st.session_state.pop(_round_key(session.code), None)  # a new student starts where the store says
    st.query_params[CODE_PARAM] = session.code
    st.query_params[TOKEN_PARAM] = token
    st.session_state["quiz.token_checked"] = (session.code, token)
    return token


def _cast(code: str, token: str, index: int, choice: str) -> None:
    """Button callback: store the pick before the page runs, so the same run confirms it."""
    try:  # a re-sent pick is acknowledged again; the page then reads the stored picks
        quiz_store().cast_vote(code, token, index, choice)
    except LpipsExplorerError as err:
        st.session_state["quiz.vote_error"] = str(err)
    except Exception as err:  # an unexpected bug: say so, keep the page alive
        st.session_state["quiz.vote_error"] = f"an unexpected error occurred ({type(err).__name__}: {err})."


def _next(code: str, index: int) -> None:
    st.session_state[_round_key(code)] = index + 1


def _picks_line(picks: dict[int, str], last: int = 12) -> str:
    """``'round 1 A · round 2 B'``, the latest ``last`` only."""
    shown = sorted(picks)[-last:]
    more = "… · " if len(picks) > last else ""
    return more + " · ".join(f"round {i + 1} **{picks[i]}**" for i in shown)


@st.fragment(run_every=1.0)
def _wait_for_rounds(code: str, index: int, needed: int, n_rounds: int) -> None:
    """Poll the store until the round (and, before the first round, the first few) are prepared."""
    try:
        ready = set(quiz_store().prepared_rounds(code))
    except LpipsExplorerError as err:
        show_error(err, "The quiz cannot read its rounds")
        return
    if index in ready and len(ready) >= needed:
        st.rerun()
    st.info(f"The rounds are being prepared ({len(ready)} of {n_rounds} ready); this page continues by "
            "itself in a moment.", icon=":material/hourglass_top:")


def student_view() -> None:
    store = _store_or_none()
    if store is None:
        return
    url_code = _query_param(CODE_PARAM, MAX_CODE_PARAM)
    if url_code and "quiz.code" not in st.session_state:
        st.session_state["quiz.code"] = url_code  # a reload: the address brings the code back
    code_in = st.text_input("Session code (from your teacher)", key="quiz.code", max_chars=12,
                            placeholder="e.g. K7PQ2M")
    if not code_in:
        st.info("Enter the code your teacher shows to join the quiz.", icon=":material/login:")
        return
    try:
        session = store.session(code_in)
    except LpipsExplorerError as err:
        show_error(err, "The session cannot be opened")
        return
    if session is None:
        st.warning("No session has that code. Check it with your teacher (letters and digits, no O/0 or I/1).",
                   icon=":material/search_off:")
        return
    try:
        token = student_token(store, session)
        if token is None:
            return
        picks = store.picks(session.code, token)
    except LpipsExplorerError as err:
        show_error(err, "Your place in the quiz cannot be read")
        return
    st.markdown(f"**{plain(session.title)}** · {session.n_rounds} rounds")
    key = _round_key(session.code)
    index = st.session_state.get(key)
    if index is None:  # a new browser session (reload, restart, another server): the store says where
        index = next((i for i in range(session.n_rounds) if i not in picks), session.n_rounds)
        st.session_state[key] = index
        if picks:
            st.info(f"Welcome back: your {len(picks)} earlier pick{'s are' if len(picks) > 1 else ' is'} saved. "
                    f"You continue with round {min(index + 1, session.n_rounds)}.", icon=":material/history:")
    needed = min(OPEN_AFTER, session.n_rounds) if index == 0 and not picks else 0
    if index < session.n_rounds:
        try:
            stored_round(session.code, index)
            if needed and len(store.prepared_rounds(session.code)) < needed:
                raise QuizRoundNotReadyError("the first rounds are still being prepared")
        except QuizRoundNotReadyError:
            st.progress(index / session.n_rounds, text=f"Round {index + 1} of {session.n_rounds}")
            status = round_preparer().status(session.code)
            if status is not None and status.error and not status.running:
                st.error(f"**The rounds could not be prepared:** {status.error} Ask your teacher.",
                         icon=":material/error:")
                return
            if status is None:  # nobody on this server prepares it (e.g. after a restart): resume here
                try:
                    start_preparation(session)
                except QuizBusyError as err:
                    st.warning(f"**The rounds are not ready yet:** {err}", icon=":material/hourglass_top:")
                    return
                except LpipsExplorerError as err:
                    show_error(err, "The rounds cannot be prepared")
                    return
            _wait_for_rounds(session.code, index, needed, session.n_rounds)
            return
        except LpipsExplorerError as err:
            show_error(err, "This round cannot be shown")
            return
    student_round(session, token)
    st.caption("Your place is kept in this page's address (a random token, nothing about you): reload or reopen "
               "it to continue where you left off.")


@st.fragment
def student_round(session: SessionInfo, token: str) -> None:
    """The round on screen, its pick buttons or verdicts, and "Next round". A fragment: a pick or
    "Next round" reruns only this part of the page (the store, not the page, knows the rest)."""
    index = st.session_state[_round_key(session.code)]
    try:  # read again: the click's callback may just have stored a pick
        picks = quiz_store().picks(session.code, token)
    except LpipsExplorerError as err:
        show_error(err, "Your place in the quiz cannot be read")
        return
    if index >= session.n_rounds:
        st.success("You have judged every round. Thank you! Your teacher can now show the results.",
                   icon=":material/celebration:")
        if picks:
            st.caption("Your saved picks: " + _picks_line(picks))
        return
    try:
        data = stored_round(session.code, index)
    except QuizRoundNotReadyError:
        st.rerun(scope="app")  # the next round is not prepared yet: the whole page waits for it
    except LpipsExplorerError as err:
        show_error(err, "This round cannot be shown")
        return
    st.progress(index / session.n_rounds, text=f"Round {index + 1} of {session.n_rounds}")
    if session.kind == "jnd":
        jnd_round(session, token, index, data, picks)
        return
    st.markdown("Which image, **A** or **B**, looks **closer to the reference**?")
    cols = st.columns(3)
    # At their own size and as stored: a narrower width would make Streamlit resample and re-encode
    # them on every run (slower, and no longer the pixels that were measured).
    for col, png, caption in zip(cols, (data.ref_png, data.a_png, data.b_png), ("Reference", "A", "B")):
        col.image(png, caption=caption, width="content", output_format="PNG", alt=a11y.round_alt(caption, index))
    problem = st.session_state.pop("quiz.vote_error", None)
    if problem:
        st.error(f"**Your pick was not saved:** {problem}", icon=":material/error:")
    choice = picks.get(index)
    if choice is None:
        left, right = st.columns(2)
        left.button("A is closer", key="quiz.pick.A", width="stretch", type="primary", on_click=_cast,
                    args=(session.code, token, index, "A"))
        right.button("B is closer", key="quiz.pick.B", width="stretch", type="primary", on_click=_cast,
                     args=(session.code, token, index, "B"))
    else:
        reveal(choice, data.metrics)
        st.button("Next round", key="quiz.next", type="primary", icon=":material/arrow_forward:", on_click=_next,
                  args=(session.code, index))
    earlier = {i: c for i, c in picks.items() if i != index}
    if earlier:
        st.caption("Your saved picks: " + _picks_line(earlier))


def _jnd_shown_key(code: str, index: int) -> str:
    return f"quiz.jnd.shown.{code}.{index}"


def _show_pair(code: str, index: int) -> None:
    st.session_state[_jnd_shown_key(code, index)] = True


def jnd_round(session: SessionInfo, token: str, index: int, data: StoredRound, picks: dict[int, str]) -> None:
    """A JND round: "Show the two images" flashes them once, as the paper's test (1 s each, 250 ms
    apart), then "Same" or "Different". There is no "show again": the paper shows each pair once,
    and a second look would make it another test. (A reload shows the pair again: the page keeps a
    student's place across reloads and cannot tell a reload from a first visit.)"""
    problem = st.session_state.pop("quiz.vote_error", None)
    if problem:
        st.error(f"**Your answer was not saved:** {problem}", icon=":material/error:")
    choice = picks.get(index)
    if choice is not None:
        reveal_jnd(choice, data)
        st.button("Next round", key="quiz.next", type="primary", icon=":material/arrow_forward:", on_click=_next,
                  args=(session.code, index))
    elif not st.session_state.get(_jnd_shown_key(session.code, index)):
        st.markdown("Two images will appear **one after the other**, for a second each. Then say whether they "
                    "were **the same** or **different**.")
        st.button("Show the two images", key="quiz.jnd.show", type="primary", icon=":material/visibility:",
                  on_click=_show_pair, args=(session.code, index),
                  help=f"As in the LPIPS paper's JND test (Zhang et al. 2018, section 2.2): each image is shown for "
                       f"{quiz.JND_SHOW_MS / 1000:g} s, with a {quiz.JND_GAP_MS} ms gap in between, once. A cross "
                       f"marks the spot for {JND_FIXATION_MS} ms first. Some pairs are identical.")
    else:
        st.html(jnd_stage(data.a_png, data.b_png, f"{session.code}-{index}"))
        left, right = st.columns(2)
        left.button("Same", key="quiz.jnd.same", width="stretch", type="primary", on_click=_cast,
                    args=(session.code, token, index, "same"))
        right.button("Different", key="quiz.jnd.different", width="stretch", type="primary", on_click=_cast,
                     args=(session.code, token, index, "different"))
        st.caption("Shown once, as in the paper: answer with your first impression.")
    earlier = {i: c for i, c in picks.items() if i != index}
    if earlier:
        st.caption("Your saved answers: " + _picks_line(earlier))


def _png_size(png: bytes) -> tuple[int, int]:
    """A PNG's width and height, read from its IHDR chunk (bytes 16–24)."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def jnd_stage(first_png: bytes, second_png: bytes, uid: str) -> str:
    """HTML and CSS that flash two images at one spot: a cross for :data:`JND_FIXATION_MS`, the first
    image for ``JND_SHOW_MS``, grey for ``JND_GAP_MS``, the second for ``JND_SHOW_MS``, then grey with
    the question; the "Same"/"Different" buttons appear only then. CSS animations only (no script):
    the browser's compositor keeps the times even on a busy page, and nothing waits on the server.
    ``uid`` names this round's stage, so the next round's starts afresh."""
    width, height = _png_size(first_png)
    show, gap, lead = quiz.JND_SHOW_MS, quiz.JND_GAP_MS, JND_FIXATION_MS
    end = lead + show + gap + show
    name = "jnd-" + "".join(ch if ch.isalnum() else "-" for ch in uid)

    def layer(body: str, start: int, duration: int | None) -> str:
        timing = f"{duration}ms {start}ms 1 normal none" if duration else f"1ms {start}ms 1 normal forwards"
        return (f'<div class="{name}-layer" style="animation: {name}-on {timing};">{body}</div>')

    def image(png: bytes, label: str) -> str:
        data = base64.b64encode(png).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" width="{width}" height="{height}" alt="{html.escape(label)}">'

    return f"""<style>
@keyframes {name}-on {{ from, to {{ visibility: visible; }} }}
@keyframes {name}-buttons {{ from {{ visibility: hidden; }} to {{ visibility: visible; }} }}
.{name} {{ display: grid; width: {width}px; height: {height}px; max-width: 100%; background: #808080;
  margin: 0.5rem auto; border-radius: 4px; }}
/* Black on the paper's mid grey: 5.3:1 (white was 3.9:1, under WCAG AA's 4.5:1). */
.{name}-layer {{ grid-area: 1 / 1; visibility: hidden; display: flex; align-items: center; justify-content: center;
  color: #000; font-size: 1.1rem; }}
.{name}-layer img {{ display: block; max-width: 100%; height: auto; }}
.st-key-quiz-jnd-same, .st-key-quiz-jnd-different {{ animation: {name}-buttons 1ms {end}ms 1 normal both; }}
</style>
<div class="{name}" role="img" aria-label="Two images shown one after the other, then the question">
{layer('<span style="font-size: 2rem;">+</span>', 0, lead)}
{layer(image(first_png, "first image"), lead, show)}
{layer(image(second_png, "second image"), lead + show + gap, show)}
{layer("Same or different?", end, None)}
</div>"""


def _distortion_label(name: str) -> str:
    """A distortion's label ("Gaussian noise"), or its stored name if the registry no longer has it."""
    return REGISTRY[name].label if name in REGISTRY else name.replace("_", " ")


def reveal_jnd(choice: str, data: StoredRound) -> None:
    """What the pair was, and what each metric measured between the two images."""
    steps = data.chain_b.get("steps") or []
    if steps:
        names = ", ".join(plain(_distortion_label(s.get("name", ""))) for s in steps)
        truth = f"**differed** (the second: {names})"
    else:
        truth = "were **identical** (a check: every metric calls them identical)"
    st.markdown(f"You answered **{choice}** (saved). The two images {truth}.")
    cols = st.columns(2)
    cols[0].image(data.a_png, caption="First", width="content", output_format="PNG",
                  alt="First image of the pair: the reference.")
    cols[1].image(data.b_png, caption="Second", width="content", output_format="PNG",
                  alt="Second image of the pair: the reference " + (
                      "with " + ", ".join(_distortion_label(x.get("name", "")) for x in steps) if steps
                      else "again, identical") + ".")
    items = [(name, m) for name, m in data.metrics.items() if "value" in m]
    if not items:
        return
    st.caption("What the metrics measured between them (a metric does not answer \"same or different\"; the "
               "dashboard scores how well each one ranks the pairs the class found alike):")
    per_row = 4
    cols = [col for start in range(0, len(items), per_row) for col in st.columns(per_row)][:len(items)]
    for col, (name, m) in zip(cols, items):
        lower = name.startswith("lpips") or quiz.quiz_metrics().get(name, True)
        unit = f" {quiz.metric_unit(name)}" if quiz.metric_unit(name) else ""
        value = "∞ (identical)" if m["value"] == float("inf") else f"{m['value']:.4g}{unit}"
        col.metric(quiz.metric_label(name), value, border=True,
                   help="a distance: higher = more different" if lower else "a similarity: higher = more alike")


def reveal(choice: str, metrics: dict) -> None:
    st.markdown(f"You chose **{choice}** (saved). What the metrics say:")
    items = list(metrics.items())
    per_row = 4  # more cards side by side would cut their labels ("LPIPS (AlexNet)") short
    cols = [col for start in range(0, len(items), per_row) for col in st.columns(per_row)][:len(items)]
    for col, (name, m) in zip(cols, items):
        lower = name.startswith("lpips")
        agree = m["pick"] == choice
        verdict = "agrees with you" if agree else ("can't decide" if m["pick"] == "tie" else "disagrees")
        col.metric(quiz.metric_label(name), f"picks {m['pick']}", verdict,
                   delta_color="normal" if agree else "inverse", delta_arrow="off", border=True,
                   help=("lower = closer" if lower else "higher = closer"))
        unit = f" {quiz.metric_unit(name)}" if quiz.metric_unit(name) else ""
        col.caption(f"A: {m['a']:.4g}{unit} · B: {m['b']:.4g}{unit}")


# ---------------------------------------------------------------------------------------------
# Teacher.
# ---------------------------------------------------------------------------------------------

def _teacher_address() -> tuple[str, str]:
    """The dashboard's session code and teacher key from the page's address ('' when absent or not
    text the page could have written)."""
    return _query_param(DASH_PARAM, MAX_CODE_PARAM), _query_param(KEY_PARAM, MAX_TOKEN_PARAM)


def _keep_in_address(code: str, key: str) -> None:
    """Put the dashboard's code and key in the page's address, so a reload or a restart reopens it."""
    if st.query_params.get(DASH_PARAM) != code or st.query_params.get(KEY_PARAM) != key:
        st.query_params[DASH_PARAM] = code
        st.query_params[KEY_PARAM] = key


def _forget_key() -> None:
    """Button callback: the key leaves the address and the page (the teacher keeps it elsewhere)."""
    for name in (DASH_PARAM, KEY_PARAM):
        if name in st.query_params:
            del st.query_params[name]
    st.session_state["quiz.dash.key"] = ""
    st.session_state.pop("quiz.teacher", None)


def teacher_view() -> None:
    store = _store_or_none()
    if store is None:
        return
    url_code, url_key = _teacher_address()
    if url_code and url_key and "quiz.dash.code" not in st.session_state:
        # A reload, a restart, another server: the address brings the dashboard back (set before
        # those inputs render).
        st.session_state["quiz.dash.code"] = url_code
        st.session_state["quiz.dash.key"] = url_key
    create_tab, dash_tab = st.tabs(["Create a session", "Dashboard"], default="Dashboard" if url_key else None)
    with create_tab:
        with st.form("quiz.create"):
            title = st.text_input("Title", value="Perceptual similarity quiz", max_chars=200, key="quiz.title")
            rounds = st.number_input("Rounds", 1, 100, 10, key="quiz.rounds")
            kind = st.radio(
                "Question", list(KIND_LABELS), format_func=KIND_LABELS.__getitem__, horizontal=True, key="quiz.kind",
                help="As in the LPIPS paper's BAPPS data. **2AFC**: a reference and two distortions; which is "
                     "closer? **JND** (just noticeable difference): the reference and a slightly distorted copy (or "
                     f"the same image again, in about {quiz.JND_IDENTICAL_SHARE:.0%} of the rounds) flash one after "
                     f"the other, {quiz.JND_SHOW_MS / 1000:g} s each with a {quiz.JND_GAP_MS} ms gap, as in the "
                     "paper's section 2.2; are they the same or different?")
            submitted = st.form_submit_button("Create session", type="primary")
        if submitted:
            try:
                address = check_may_create()
                code, key = store.create_session(title, int(rounds), kind=kind if kind in KIND_LABELS else "2afc")
                class_limits.session_creations.allow(address)  # counted once created: a refused title is not
            except QuizBusyError as err:
                st.warning(f"**The session was not created:** {err}", icon=":material/hourglass_top:")
            except LpipsExplorerError as err:
                show_error(err, "The session could not be created")
            else:
                st.session_state["quiz.teacher"] = {"code": code, "key": key}
                # Open the new session's dashboard without retyping (set before those inputs render).
                st.session_state["quiz.dash.code"] = code
                st.session_state["quiz.dash.key"] = key
                _keep_in_address(code, key)  # the page survives a reload or a restart with its dashboard
                try:  # the session exists: a failure here leaves the teacher its key and a button to retry
                    start_preparation(store.session(code))
                except LpipsExplorerError as err:
                    st.session_state["quiz.prepare_error"] = str(err)
        created = st.session_state.get("quiz.teacher")
        if created:
            st.success(f"Students join on the **Class quiz** page with the code **{created['code']}**.",
                       icon=":material/groups:")
            preparation(store, created["code"])
            # Collapsed, so projecting the join code does not show the key to the class.
            with st.expander("Teacher key (private: it opens the dashboard)"):
                st.code(created["key"], language=None)
                st.caption("This page's address holds the code and the key too, so a reload or a server restart "
                           "reopens the dashboard. Anyone with that address can read the results (not change "
                           "them): project the join code, not this page's address bar.")
    with dash_tab:
        dashboard(store)


def check_may_create() -> str:
    """Refuse (:class:`QuizBusyError`) a session this server cannot prepare now, or one more than
    this client address may create in an hour; nothing is stored then. Any browser can create
    sessions, and each starts work on the server that every student shares. Returns the client
    address, whose creation the caller counts once the session exists."""
    round_preparer().check_room()
    address = class_limits.client_address()
    wait = class_limits.session_creations.retry_after(address)
    if wait > 0:
        raise QuizBusyError(f"this device has created {class_limits.session_creations.limit} sessions in the "
                            f"last hour, the most one may; try again in {max(1, round(wait / 60))} minutes, or "
                            "reuse a session you created (its code and key open its dashboard).")
    return address


def preparation(store: BaseQuizStore, code: str) -> None:
    """The teacher's view of the rounds' preparation: a live progress bar until every round is stored."""
    try:
        session = store.session(code)
        ready = len(store.prepared_rounds(code))
    except LpipsExplorerError as err:
        show_error(err, "The preparation cannot be read")
        return
    if session is None:
        return
    if ready >= session.n_rounds:
        st.caption(f"All {session.n_rounds} rounds are prepared: each student's click only reads and saves.")
        return
    status = round_preparer().status(code)
    problem = st.session_state.pop("quiz.prepare_error", None)
    if problem:
        st.error(f"**The rounds cannot be prepared now:** {problem}", icon=":material/error:")
    if status is not None and not status.running:
        if status.error:
            st.error(f"**Preparing the rounds stopped:** {status.error}", icon=":material/error:")
        st.button("Prepare the remaining rounds", key="quiz.prepare", icon=":material/refresh:",
                  on_click=_resume_preparation, args=(code,))
        return
    if status is None:  # prepared elsewhere (another server), or stopped by a restart
        st.caption(f"{ready} of {session.n_rounds} rounds are prepared.")
        st.button("Prepare the remaining rounds here", key="quiz.prepare", icon=":material/refresh:",
                  on_click=_resume_preparation, args=(code,))
        return
    _preparation_progress(code, session.n_rounds)


def _resume_preparation(code: str) -> None:
    try:
        start_preparation(quiz_store().session(code))
    except LpipsExplorerError as err:
        st.session_state["quiz.prepare_error"] = str(err)


@st.fragment(run_every=1.0)
def _preparation_progress(code: str, n_rounds: int) -> None:
    status = round_preparer().status(code)
    try:
        ready = len(quiz_store().prepared_rounds(code))
    except LpipsExplorerError as err:
        show_error(err, "The preparation cannot be read")
        return
    if ready >= n_rounds or status is None or not status.running:
        st.rerun()  # done (or stopped): the full page says so, and this polling ends
    opens = min(OPEN_AFTER, n_rounds)
    pace = f" · about {status.seconds_per_round:.1f} s per round" if status.seconds_per_round else ""
    note = "students can start now" if ready >= opens else f"students can start once {opens} are ready"
    st.progress(ready / n_rounds, text=f"Preparing the rounds: {ready} of {n_rounds} ready{pace} ({note})")


def dashboard(store: BaseQuizStore) -> None:
    code = st.text_input("Session code", key="quiz.dash.code")
    key = st.text_input("Teacher key", type="password", key="quiz.dash.key")
    if not code or not key:
        st.info("Enter the session code and your teacher key.", icon=":material/lock:")
        return
    try:
        allowed = store.check_teacher_key(code, key)
    except LpipsExplorerError as err:
        show_error(err, "The dashboard cannot be opened")
        return
    if not allowed:
        st.error("That code and key do not match a session. Check both (the key is case-sensitive).",
                 icon=":material/lock:")
        return
    try:
        summary = quiz.summarize(store, code)
    except LpipsExplorerError as err:
        show_error(err, "The results cannot be read")
        return
    _keep_in_address(summary.session.code, key.strip())
    buttons = st.container(horizontal=True)
    buttons.button("Refresh", key="quiz.refresh", icon=":material/refresh:")
    buttons.button("Remove the key from this page's address", key="quiz.forget", icon=":material/link_off:",
                 on_click=_forget_key,
                 help="The address holds the key so that a reload or a server restart reopens this dashboard; "
                      "anyone with the address can read these results. Keep the key yourself before removing it.")
    judgments = f"{summary.n_votes} judgment{'' if summary.n_votes == 1 else 's'}"
    people = f"{summary.n_voters} {'person' if summary.n_voters == 1 else 'people'}"
    st.markdown(f"**{plain(summary.session.title)}** · {judgments} from {people}")
    try:
        joined, ready = store.joined(code), len(store.prepared_rounds(code))
    except LpipsExplorerError as err:
        show_error(err, "The results cannot be read")
        return
    st.caption(f"{joined} student{'' if joined == 1 else 's'} joined (one per browser link, however often they "
               f"reload) · {ready} of {summary.session.n_rounds} rounds prepared.")
    if summary.kind == "jnd":
        jnd_dashboard(summary)
    if summary.metrics:
        st.caption("How often each metric picked what the people picked:")
    items = list(summary.metrics.items())
    cols = [col for start in range(0, len(items), 4) for col in st.columns(4)][:len(items)]  # rows of 4 cards
    for col, (name, agreement) in zip(cols, items):
        value = "–" if agreement.score is None else f"{100 * agreement.score:.0f}%"
        col.metric(quiz.metric_label(name), value, border=True,
                   help=f"{agreement.n} judgments; 95% interval {100 * agreement.low:.0f}–{100 * agreement.high:.0f}% "
                        "(ties count half, as in the LPIPS paper).")
    if summary.paper_2afc:
        st.caption("The LPIPS paper's 2AFC score on this class's answers: each round counts once, and a metric "
                   "that picks what a share p of the class picked earns p (a tie ½). Beside it, how often one "
                   "person agrees with another: the ceiling a metric can reach. Higher = agrees with people more.")
        paper = [{"metric": quiz.metric_label(m), "2AFC score": f"{100 * v:.1f}%"} for m, v in summary.paper_2afc.items()]
        paper.append({"metric": "people (ceiling)", "2AFC score": f"{100 * summary.human_2afc:.1f}%"})
        st.dataframe(paper, hide_index=True, key="quiz.paper_2afc", width="content")
    if summary.by_family:
        a11y.chart(charts.pattern_bars(family_chart(summary)), a11y.family_summary(summary),
                   key="quiz.chart", config={"displaylogo": False}, theme=None)
    rows = jnd_rows(summary) if summary.kind == "jnd" else [
        {"round": r.index + 1, "image": r.sample, "pair": r.pair, "votes A": r.votes_a, "votes B": r.votes_b,
         "majority": r.majority or "–",
         **{quiz.metric_label(k): r.metric_picks.get(k, "–") for k in summary.metrics}}
        for r in summary.rounds]
    st.dataframe(rows, hide_index=True, width="stretch")

    def export() -> bytes:
        buf = io.StringIO()
        store.export_csv(code, buf)
        return buf.getvalue().encode()

    st.download_button("All judgments (CSV)", export, file_name=f"quiz-{summary.session.code}.csv",
                       mime="text/csv", key="quiz.export", on_click="ignore", icon=":material/download:")
    class_fit_panel(store, summary)


def jnd_dashboard(summary: quiz.Summary) -> None:
    """A JND session's scores: each metric's JND mAP (the paper's score), what chance scores, and
    the class's own answers (there is no human mAP ceiling for JND; the paper reports none)."""
    jnd = summary.jnd
    if jnd is None:
        return
    checked, checks = jnd.same_identical
    if checks:
        st.caption(f"Identical pairs (checks, as the paper's sentinels; not scored): \"same\" {checked} of {checks} "
                   f"times ({checked / checks:.0%}). The paper's observers said \"same\" to 70.4% of its sentinels "
                   "(most of them identical) and to 27.9% of its test pairs.")
    if not jnd.pairs:
        st.info("No answers yet on pairs that differ; the JND scores appear once students answer.",
                icon=":material/hourglass_top:")
        return
    same, asked = jnd.same_differing
    pairs = f"**{jnd.pairs}** answered pair{'' if jnd.pairs == 1 else 's'} that differed"
    consistency = ("no pair has two answers yet, so the class's consistency is not known" if jnd.people is None else
                   f"two different people gave the same answer to a pair **{jnd.people:.0%}** of the time (the "
                   "class's consistency)")
    st.markdown(f"On the {pairs}, the class said **same** {same} time{'' if same == 1 else 's'} out of {asked} "
                f"({same / asked:.0%}); {consistency}.")
    st.caption("The LPIPS paper's JND score on this class's answers: the pairs ranked by the metric from most to least "
               "alike, the average precision (mAP) of finding the pairs people called \"same\" (each pair counts its "
               "share of \"same\"). Higher = the metric ranks pairs as people confuse them. A ranking that knows "
               "nothing scores about the share of \"same\" answers (the chance row); the paper gives no human ceiling "
               "for JND, so the class's consistency above is on another scale.")
    table = [{"metric": quiz.metric_label(m), "JND mAP": "–" if v is None else f"{100 * v:.1f}%"}
             for m, v in jnd.map.items()]
    table.append({"metric": "chance (random order)", "JND mAP": f"{100 * jnd.chance:.1f}%"})
    st.dataframe(table, hide_index=True, key="quiz.jnd_map", width="content")
    if any(v is None for v in jnd.map.values()):
        st.caption("–: nobody has answered \"same\" to a pair that differed yet, so there is nothing to find and "
                   "the mAP is undefined.")


def _metric_cell(value: float | None) -> str:
    """A metric's value in a rounds table: "–" for a round no one has answered yet (its values come
    with the answers), "∞" for PSNR of identical images."""
    if value is None:
        return "–"
    return "∞" if value == float("inf") else f"{value:.4g}"


def jnd_rows(summary: quiz.Summary) -> list[dict]:
    """The rounds of a JND session: the distortion, the answers and each metric's value on the pair."""
    rows = []
    for r in summary.rounds:
        answers = r.votes_same + r.votes_different
        rows.append({"round": r.index + 1, "image": r.sample or "–",
                     "second image": "identical" if r.identical else (r.distortion or "–"),
                     "same": r.votes_same, "different": r.votes_different,
                     "same (share)": f"{r.votes_same / answers:.0%}" if answers else "–",
                     **{quiz.metric_label(k): _metric_cell(v) for k, v in r.metric_values.items()}})
    return rows


def family_chart(summary: quiz.Summary) -> go.Figure:
    fig = go.Figure()
    pairs = list(summary.by_family)
    for metric in summary.metrics:
        scores = [summary.by_family[p].get(metric) for p in pairs]
        fig.add_trace(go.Bar(
            name=quiz.metric_label(metric), x=pairs,
            y=[None if a is None or a.score is None else 100 * a.score for a in scores],
            error_y=dict(type="data", symmetric=False,
                         array=[0 if a is None or a.score is None else 100 * (a.high - a.score) for a in scores],
                         arrayminus=[0 if a is None or a.score is None else 100 * (a.score - a.low) for a in scores]),
        ))
    fig.update_layout(barmode="group", yaxis_title="agreement with people (%)", yaxis_range=[0, 100],
                      title=dict(text="Agreement by distortion pair (95% intervals)", font=dict(size=14)),
                      height=380, margin=dict(l=50, r=10, t=40, b=40))
    return fig


def render() -> None:
    freeze_imported_objects()
    st.title("Class quiz", anchor=False)
    st.caption("Which distortion looks closer to the reference, or are two flashed images the same? Answer, then "
               "see what LPIPS, PSNR and SSIM say.")
    # A teacher's address (?dash=…&key=…) reopens the teacher's side after a reload or a restart.
    role = st.segmented_control("I am", ["A student", "The teacher"], key="quiz.role", required=True,
                                default="The teacher" if _teacher_address()[1] else "A student")
    if role == "The teacher":
        teacher_view()
    else:
        student_view()


render()
