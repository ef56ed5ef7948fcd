"""Teach · Class quiz dashboard: "Fit LPIPS to this class".

The LPIPS paper fitted its linear heads to people's 2AFC answers; a class quiz collects the same
answers, so the teacher can run the same fit on them (:mod:`teach.class_fit` does the work; this
module is widgets only). The fit runs in a background thread, one per session on this server,
kept in a server-wide registry: a rerun, a reload of the teacher's page or another of the
teacher's tabs finds it running or finished. A fragment polls its progress every second. At
most :data:`MAX_RUNNING` fits run at once in this process (the others wait, shown as queued), and
the registry keeps the latest fit of at most :data:`MAX_KEPT` sessions.

The result shows the held-out 2AFC of the published v0.1 heads, the uniform ("baseline") heads
and the fitted heads beside the human ceiling, a chart of how much each layer's weights moved,
the heads as a download (a zip: the .safetensors file and its manifest, as ``--heads FILE`` and
``LPIPS(model_path=FILE)`` read them), and a button that selects these heads in Explore.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import streamlit as st

from core.errors import LpipsExplorerError
from core.lpips.names import NET_LABELS
from teach import class_fit
from viz import charts
from views import a11y
from views.common import engine_for, plain, show_error, use_heads_in_explore, weights_status

#: Fits running at once on this server (features are the cost: one backbone pass per image).
MAX_RUNNING = 1
#: Sessions whose latest fit the registry keeps (each holds a few kB of heads and its scores).
MAX_KEPT = 32
STARTS = {"v0.1": "the published v0.1 heads", "scratch": "scratch (random, as the official Trainer starts)"}
_slots = threading.BoundedSemaphore(MAX_RUNNING)


class FitJob:
    """One class fit in a thread; every field is read under :attr:`lock`."""

    def __init__(self, code: str, config: dict[str, Any], engine, store) -> None:
        self.code, self.config, self._engine, self._store = code, config, engine, store
        self.lock = threading.Lock()
        self.state = "queued"  # queued → running → done | failed
        self.fraction, self.text = 0.0, "Waiting for another fit on this server to finish…"
        self.result: class_fit.ClassFit | None = None
        self.error = ""
        self.started, self.finished = time.monotonic(), None
        self.thread = threading.Thread(target=self._main, name=f"class-fit-{code}", daemon=True)

    def start(self) -> "FitJob":
        self.thread.start()
        return self

    @property
    def active(self) -> bool:
        with self.lock:
            return self.state in ("queued", "running")

    def view(self) -> dict[str, Any]:
        with self.lock:
            return {"state": self.state, "fraction": self.fraction, "text": self.text, "result": self.result,
                    "error": self.error, "seconds": (self.finished or time.monotonic()) - self.started}

    def _progress(self, fraction: float, text: str) -> None:
        with self.lock:
            self.fraction, self.text = min(1.0, max(0.0, fraction)), text

    def _main(self) -> None:
        with _slots:
            with self.lock:
                self.state, self.text = "running", "Reading the class's answers…"
            try:
                data = class_fit.class_triplets(self._store, self.code)
                nepoch, decay = class_fit.TRAINING_LENGTHS[self.config["length"]]
                result = class_fit.fit_class(data, self._engine, init=self.config["init"], nepoch=nepoch,
                                             nepoch_decay=decay, progress=self._progress)
            except LpipsExplorerError as err:  # too few answers, an image the net cannot take, the store
                self._fail(str(err))
            except Exception as err:  # an unexpected bug: said plainly on the page, the server stays up
                self._fail(f"an unexpected error occurred ({type(err).__name__}: {err}).")
            else:
                with self.lock:
                    self.result, self.state, self.finished, self.fraction = result, "done", time.monotonic(), 1.0
            finally:
                self._engine = self._store = None

    def _fail(self, message: str) -> None:
        with self.lock:
            self.state, self.error, self.finished = "failed", message, time.monotonic()


class FitRegistry:
    """The latest :class:`FitJob` per session code on this server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: OrderedDict[str, FitJob] = OrderedDict()

    def get(self, code: str) -> FitJob | None:
        with self.lock:
            return self.jobs.get(code)

    def submit(self, code: str, config: dict[str, Any], engine, store) -> FitJob:
        with self.lock:
            current = self.jobs.get(code)
            if current is not None and current.active:
                return current  # a second click (or tab) while it runs: the same fit
            job = FitJob(code, config, engine, store)
            self.jobs[code] = job
            self.jobs.move_to_end(code)
            for old in [c for c, j in self.jobs.items() if c != code and not j.active][:max(0, len(self.jobs) - MAX_KEPT)]:
                del self.jobs[old]
        return job.start()


@st.cache_resource(show_spinner=False)
def fit_registry() -> FitRegistry:
    return FitRegistry()


def _fit_nets() -> list[str]:
    status = weights_status()
    return [n for n in ("alex", "vgg") if not status[n]]


def _start(code: str, store, rounds: int) -> None:
    """Button callback: start the fit with the chosen settings (the engine is resolved here, in the
    script's thread, where the shared engine cache lives)."""
    net = st.session_state.get("classfit.net")
    init = st.session_state.get("classfit.init")
    length = st.session_state.get("classfit.length")
    if net not in _fit_nets() or init not in STARTS or length not in class_fit.TRAINING_LENGTHS:
        st.session_state["classfit.error"] = "choose a network, a start and a training length first."
        return
    try:
        class_fit.warm_up()  # in the script's thread: the fit's thread then compiles nothing (see there)
        engine = engine_for(net, "0.1", True, "auto")
        fit_registry().submit(code, {"net": net, "init": init, "length": length, "rounds": rounds}, engine, store)
    except LpipsExplorerError as err:
        st.session_state["classfit.error"] = str(err)
    except Exception as err:  # never a traceback on the teacher's page
        st.session_state["classfit.error"] = f"an unexpected error occurred ({type(err).__name__}: {err})."


def _use_in_explore(code: str) -> None:
    job = fit_registry().get(code)
    result = job.view()["result"] if job is not None else None
    if result is None:
        st.session_state["classfit.error"] = "the fit is no longer kept on this server; run it again."
        return
    try:
        use_heads_in_explore(result.bundle, result.file_name.removesuffix(".safetensors") + ".zip", result.net)
    except LpipsExplorerError as err:
        st.session_state["classfit.error"] = f"the heads could not be selected in Explore: {err}"
        return
    st.session_state["classfit.go_explore"] = True


INTRO = ("The LPIPS paper fitted its heads, one non-negative weight per channel and layer, to people's 2AFC answers "
         "(a small ranking network, cross-entropy against the share of people who chose each image). This runs "
         "the same fit on this class's answers: each voted round is one triplet, its judgment the share of the "
         "class that picked B. Whole photos are held out (no photo is both fitted on and scored), so the held-out "
         "score says how the heads do on photos the fit never saw.")


def class_fit_panel(store, summary) -> None:
    """The dashboard's "Fit LPIPS to this class" section, for the session of ``summary``
    (a :class:`teach.quiz.Summary`; the teacher key is checked by the caller)."""
    st.subheader("Fit LPIPS to this class", anchor=False)
    st.caption(INTRO)
    code = summary.session.code
    if getattr(summary.session, "kind", "2afc") != "2afc":
        st.info("This session asks JND questions (same or different?). Fitting uses 2AFC answers, as the paper "
                "fitted its heads on 2AFC judgments: create a 2AFC session to fit LPIPS to your class.",
                icon=":material/info:")
        return
    ready = class_fit.readiness(summary)
    problem = st.session_state.pop("classfit.error", None)
    if problem:
        st.error(f"**The fit could not start:** {problem}", icon=":material/error:")
    job = fit_registry().get(code)
    running = job is not None and job.active
    if not ready.ok and not running:
        st.info(ready.message, icon=":material/hourglass_top:")
        if job is None:
            return
    nets = _fit_nets()
    if not nets:
        st.warning("No network's weights are available on this server, so no fit can run.", icon=":material/warning:")
        return
    cols = st.columns(3)
    cols[0].radio("Network", nets, key="classfit.net", format_func=lambda n: NET_LABELS[n], disabled=running)
    cols[1].radio("Start from", list(STARTS), key="classfit.init", format_func=STARTS.get, disabled=running,
                  help="v0.1: adjust the published heads to this class. Scratch: the official Trainer's random "
                       "start, as the paper trained; with a class's few answers it rarely beats v0.1.")
    cols[2].radio("Training length", list(class_fit.TRAINING_LENGTHS), index=1, key="classfit.length",
                  disabled=running,
                  help="Epochs at the full learning rate (Adam, 1e-4), then as many decaying to 0, as the official "
                       "train.py. The paper's 5 + 5 ran over 150,000+ triplets; a class's tens of rounds make one "
                       "step per epoch, so the weights need more epochs to move.")
    st.button("Fit LPIPS to this class", key="classfit.start", type="primary", icon=":material/model_training:",
              disabled=running or not ready.ok, on_click=_start, args=(code, store, ready.rounds))
    if job is None:
        return
    if running:
        _fit_progress(code)
        return
    view = job.view()
    if view["state"] == "failed":
        st.error(f"**The fit stopped:** {view['error']}", icon=":material/error:")
        return
    fit_results(view["result"], job.config, ready, code)


@st.fragment(run_every=1.0)
def _fit_progress(code: str) -> None:
    job = fit_registry().get(code)
    if job is None or not job.active:
        st.rerun()  # finished (or gone): the whole page shows the result
    view = job.view()
    st.progress(view["fraction"], text=f"{view['text']} ({view['seconds']:.0f} s)")


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def fit_results(fit: class_fit.ClassFit, config: dict[str, Any], ready: class_fit.Readiness, code: str) -> None:
    held, train = len(fit.heldout_rounds), len(fit.train_rounds)
    st.markdown(f"**Fitted {NET_LABELS[fit.net]} heads from {STARTS[fit.init]}** · {fit.nepoch} + {fit.nepoch_decay} "
                f"epochs · {train} rounds fitted, {held} held out")
    if ready.rounds != config.get("rounds"):
        st.caption(f"The class has {ready.rounds} voted rounds now, {config.get('rounds')} when this fit started: "
                   "fit again to include the new answers.")
    delta = fit.heldout["fitted heads"] - fit.heldout["v0.1 heads"]
    cols = st.columns(3)
    cols[0].metric("Held-out 2AFC, fitted heads", _percent(fit.heldout["fitted heads"]),
                   f"{100 * delta:+.1f} points vs v0.1", border=True, delta_arrow="off",
                   delta_color="normal" if delta >= 0 else "inverse",
                   help="The LPIPS paper's 2AFC score on the held-out rounds: a metric that picks what a share p of "
                        "the class picked earns p. Higher = agrees with people more.")
    cols[1].metric("Held-out 2AFC, v0.1 heads", _percent(fit.heldout["v0.1 heads"]), border=True)
    cols[2].metric("People (ceiling), held-out", _percent(fit.human_heldout), border=True,
                   help="How often one person of the class agrees with another on the held-out rounds: the most a "
                        "metric can score there. With one vote per round it is 100%.")
    rows = [{"heads": label, "held-out 2AFC": _percent(fit.heldout[label]), "training 2AFC": _percent(fit.training[label])}
            for label in ("v0.1 heads", "baseline (uniform) heads", "fitted heads")]
    rows.append({"heads": "people (ceiling)", "held-out 2AFC": _percent(fit.human_heldout),
                 "training 2AFC": _percent(fit.human_training)})
    st.dataframe(rows, hide_index=True, key="classfit.scores", width="content")
    photos = ", ".join(plain(p) for p in fit.heldout_photos)
    st.caption(f"Held out: rounds {', '.join(str(i + 1) for i in fit.heldout_rounds)} (photos: {photos}). "
               f"With {held} held-out round{'' if held == 1 else 's'}, one round moves the score by up to "
               f"{100 / held:.0f} points: a small class's numbers are rough. Higher 2AFC = agrees with people "
               "more; LPIPS itself stays a distance (higher = more different).")
    moves = fit.moves
    a11y.chart(charts.head_moves([m.layer for m in moves],
                                 [None if m.relative_change is None else 100 * m.relative_change for m in moves],
                                 [m.mean_abs_change for m in moves], [m.channels for m in moves]),
               "How far the fit moved each layer's head weights: " + "; ".join(
                   f"{m.layer} {'–' if m.relative_change is None else f'{100 * m.relative_change:+.0f}%'}"
                   for m in moves) + ".",
               key="classfit.chart", config={"displaylogo": False}, theme=None)
    left, right = st.columns(2)
    left.download_button("Heads file (.zip: safetensors + manifest)", fit.bundle,
                         file_name=fit.file_name.removesuffix(".safetensors") + ".zip", mime="application/zip",
                         key="classfit.download", on_click="ignore", icon=":material/download:",
                         help=f"Unzip, then `lpips-explorer compare --net {fit.net} --heads {fit.file_name} REF DIST`, "
                              f"or `core.LPIPS(net='{fit.net}', model_path='{fit.file_name}')`; Explore's "
                              "\"from a file…\" takes the zip as it is.")
    right.button("Use this class's heads in Explore", key="classfit.explore", icon=":material/tune:",
                 on_click=_use_in_explore, args=(code,))
    if st.session_state.pop("classfit.go_explore", False):
        st.switch_page("explore.py")
