"""Teach · Class quiz: two-alternative forced choice (2AFC), as in the paper's BAPPS data.

A teacher creates a session (a short code for students, a secret key for the dashboard); every
round's images and metric values are then prepared in the background and stored, so a student's
click only reads and writes the store. Students join with the code on their own devices; each
student gets a random token kept in the page's address (``?code=…&voter=…``), so a reload, a
dropped connection, a server restart or another server behind the proxy brings them back to
their first unvoted round with their earlier picks. A vote is confirmed in the same run that
stores it. The dashboard shows how often each metric agreed with the class.
"""

from __future__ import annotations

import io
import os

import plotly.graph_objects as go
import streamlit as st

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
from views import browser_input, class_limits
from views.class_fit import class_fit_panel
from views.common import engine_for, freeze_imported_objects, plain, show_error, weights_status

ROUND_SIDE = int(os.environ.get("LPIPS_EXPLORER_QUIZ_SIDE", "256"))
#: Students can start once this many rounds (or all, if fewer) are prepared.
OPEN_AFTER = 3
#: The page's query parameters that keep a student's place: the join code and the student token.
CODE_PARAM, TOKEN_PARAM = "code", "voter"
#: The longest query parameter values read: a code is 6 characters (12 with spaces and dashes),
#: a token 22; anything longer is no address the page wrote.
MAX_CODE_PARAM, MAX_TOKEN_PARAM = 12, 64


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
    round_preparer().submit(session.code, session.seed, session.n_rounds, engines, max_side=ROUND_SIDE)


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
    st.markdown("Which image, **A** or **B**, looks **closer to the reference**?")
    cols = st.columns(3)
    # At their own size and as stored: a narrower width would make Streamlit resample and re-encode
    # them on every run (slower, and no longer the pixels that were measured).
    cols[0].image(data.ref_png, caption="Reference", width="content", output_format="PNG")
    cols[1].image(data.a_png, caption="A", width="content", output_format="PNG")
    cols[2].image(data.b_png, caption="B", width="content", output_format="PNG")
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

def teacher_view() -> None:
    store = _store_or_none()
    if store is None:
        return
    create_tab, dash_tab = st.tabs(["Create a session", "Dashboard"])
    with create_tab:
        with st.form("quiz.create"):
            title = st.text_input("Title", value="Perceptual similarity quiz", max_chars=200, key="quiz.title")
            rounds = st.number_input("Rounds", 1, 100, 10, key="quiz.rounds")
            submitted = st.form_submit_button("Create session", type="primary")
        if submitted:
            try:
                address = check_may_create()
                code, key = store.create_session(title, int(rounds))
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
    st.button("Refresh", key="quiz.refresh", icon=":material/refresh:")
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
        st.plotly_chart(family_chart(summary), key="quiz.chart", config={"displaylogo": False}, theme=None)
    rows = [{"round": r.index + 1, "image": r.sample, "pair": r.pair, "votes A": r.votes_a, "votes B": r.votes_b,
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
    st.caption("Which distortion looks closer to the reference? Vote, then see whether LPIPS, PSNR and SSIM agree.")
    role = st.segmented_control("I am", ["A student", "The teacher"], default="A student", key="quiz.role",
                                required=True)
    if role == "The teacher":
        teacher_view()
    else:
        student_view()


render()
