"""Teach · Class quiz: two-alternative forced choice (2AFC), as in the paper's BAPPS data.

A teacher creates a session (a short code for students, a secret key for the dashboard);
students join with the code on their own devices; each vote is stored with its round, the
distortion chains and every metric's values. The dashboard shows how often each metric agreed
with the class.
"""

from __future__ import annotations

import io
import os
import secrets

import plotly.graph_objects as go
import streamlit as st

from core.errors import LpipsExplorerError
from core.tensors import to_uint8
from store import BaseQuizStore, Summary, open_store
from teach import quiz
from views.common import engine_for, plain, show_error, weights_status
from viz import heatmaps

ROUND_SIDE = int(os.environ.get("LPIPS_EXPLORER_QUIZ_SIDE", "256"))


@st.cache_resource(show_spinner=False)
def quiz_store() -> BaseQuizStore:
    """One store per server: SQLite (a file path, or the default file) keeps a connection per thread;
    PostgreSQL (``LPIPS_EXPLORER_QUIZ_DB=postgresql://…``, several servers on one database) a small
    pool. A store that cannot be opened raises (the page explains it) and is not cached, so the next
    rerun tries again, e.g. once the database server is back."""
    return open_store(os.environ.get("LPIPS_EXPLORER_QUIZ_DB") or None)


@st.cache_data(show_spinner="Preparing the round…", max_entries=256)
def prepared_round(seed: int, index: int, nets: tuple[str, ...]) -> dict:
    """Images (8-bit) and every metric's values for one round; the same for every student."""
    spec = quiz.make_round(seed, index)
    ref, a, b = quiz.render_round(spec, max_side=ROUND_SIDE)
    engines = {net: engine_for(net, "0.1", True, "auto") for net in nets}
    metrics = quiz.score_round(spec, ref, a, b, engines)
    return {"ref": to_uint8(ref), "a": to_uint8(a), "b": to_uint8(b), "metrics": metrics}


def _nets() -> tuple[str, ...]:
    status = weights_status()
    return tuple(n for n in ("alex", "vgg") if not status[n])


def _voter_id() -> str:
    if "quiz.voter" not in st.session_state:
        st.session_state["quiz.voter"] = secrets.token_hex(6)
    return st.session_state["quiz.voter"]


def _store_or_none() -> BaseQuizStore | None:
    try:
        return quiz_store()
    except LpipsExplorerError as err:
        show_error(err, "The quiz cannot store votes on this server")
        return None


# ---------------------------------------------------------------------------------------------
# Students.
# ---------------------------------------------------------------------------------------------

def student_view() -> None:
    store = _store_or_none()
    if store is None:
        return
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
    st.markdown(f"**{plain(session.title)}** · {session.n_rounds} rounds")
    index = st.session_state.setdefault(f"quiz.round.{session.code}", 0)
    if index >= session.n_rounds:
        st.success("You have judged every round. Thank you! Your teacher can now show the results.",
                   icon=":material/celebration:")
        if st.button("Start over", key="quiz.restart"):
            st.session_state[f"quiz.round.{session.code}"] = 0
            st.rerun()
        return
    st.progress(index / session.n_rounds, text=f"Round {index + 1} of {session.n_rounds}")
    try:
        data = prepared_round(session.seed, index, _nets())
    except LpipsExplorerError as err:
        show_error(err, "This round cannot be prepared")
        return
    st.markdown("Which image, **A** or **B**, looks **closer to the reference**?")
    cols = st.columns(3)
    # Capped width: after voting, the metrics' verdicts must fit on the same screen.
    cols[0].image(heatmaps.encode(data["ref"]), caption="Reference", width=240)
    cols[1].image(heatmaps.encode(data["a"]), caption="A", width=240)
    cols[2].image(heatmaps.encode(data["b"]), caption="B", width=240)
    voted_key = f"quiz.voted.{session.code}.{index}"
    choice = st.session_state.get(voted_key)
    if choice is None:
        left, right = st.columns(2)
        picked = None
        if left.button("A is closer", key="quiz.pick.A", width="stretch", type="primary"):
            picked = "A"
        if right.button("B is closer", key="quiz.pick.B", width="stretch", type="primary"):
            picked = "B"
        if picked:
            spec = quiz.make_round(session.seed, index)
            try:
                store.record_vote(session.code, index, _voter_id(), picked, spec, data["metrics"])
            except LpipsExplorerError as err:
                show_error(err, "Your vote could not be saved")
                return
            st.session_state[voted_key] = picked
            st.rerun()
        return
    reveal(choice, data["metrics"])
    if st.button("Next round", key="quiz.next", type="primary", icon=":material/arrow_forward:"):
        st.session_state[f"quiz.round.{session.code}"] = index + 1
        st.rerun()


def reveal(choice: str, metrics: dict) -> None:
    st.markdown(f"You chose **{choice}** (saved). What the metrics say:")
    cols = st.columns(len(metrics))
    for col, (name, m) in zip(cols, metrics.items()):
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
                code, key = store.create_session(title, int(rounds))
            except LpipsExplorerError as err:
                show_error(err, "The session could not be created")
            else:
                st.session_state["quiz.teacher"] = {"code": code, "key": key}
                # Open the new session's dashboard without retyping (set before those inputs render).
                st.session_state["quiz.dash.code"] = code
                st.session_state["quiz.dash.key"] = key
        created = st.session_state.get("quiz.teacher")
        if created:
            st.success(f"Students join on the **Class quiz** page with the code **{created['code']}**.",
                       icon=":material/groups:")
            # Collapsed, so projecting the join code does not show the key to the class.
            with st.expander("Teacher key (private: it opens the dashboard)"):
                st.code(created["key"], language=None)
    with dash_tab:
        dashboard(store)


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
        summary = store.summary(code)
    except LpipsExplorerError as err:
        show_error(err, "The results cannot be read")
        return
    st.button("Refresh", key="quiz.refresh", icon=":material/refresh:")
    judgments = f"{summary.n_votes} judgment{'' if summary.n_votes == 1 else 's'}"
    people = f"{summary.n_voters} {'person' if summary.n_voters == 1 else 'people'}"
    st.markdown(f"**{plain(summary.session.title)}** · {judgments} from {people}")
    st.caption("How often each metric picked what the people picked:")
    cols = st.columns(max(1, len(summary.metrics)))
    for col, (name, agreement) in zip(cols, summary.metrics.items()):
        value = "–" if agreement.score is None else f"{100 * agreement.score:.0f}%"
        col.metric(quiz.metric_label(name), value, border=True,
                   help=f"{agreement.n} judgments; 95% interval {100 * agreement.low:.0f}–{100 * agreement.high:.0f}% "
                        "(ties count half, as in the LPIPS paper).")
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


def family_chart(summary: Summary) -> go.Figure:
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
    st.title("Class quiz", anchor=False)
    st.caption("Which distortion looks closer to the reference? Vote, then see whether LPIPS, PSNR and SSIM agree.")
    role = st.segmented_control("I am", ["A student", "The teacher"], default="A student", key="quiz.role",
                                required=True)
    if role == "The teacher":
        teacher_view()
    else:
        student_view()


render()
