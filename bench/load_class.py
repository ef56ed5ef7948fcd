"""A class of students on one server: N concurrent sessions over Streamlit's own websocket protocol.

    .venv/bin/python bench/load_class.py [--sessions 30] [--moves 20] [--port auto] [--json out.json]
    .venv/bin/python bench/load_class.py --quiz-rounds 10 [--kill-at 8]   # the quiz alone: bench/quiz_class.py

Browsers are too heavy for 30 sessions on a small machine, so each simulated student speaks the
protocol a browser speaks: binary ``BackMsg`` protobufs up, ``ForwardMsg`` protobufs down, on
``ws://127.0.0.1:PORT/_stcore/stream`` with the ``streamlit`` subprotocol. Each student

1. opens the app (a full run of the Explore page) and finds the blur slider ``dist.0.sigma``;
2. moves it ``--moves`` times (as a browser does: a *fragment* rerun, ``fragment_id`` set, with
   the slider's new value in the widget states), timing send → updated LPIPS card and send →
   ``script_finished``, and checking that the card shows a new number; with ``--drag N`` each
   move is a drag: N-1 values on the way are sent ``--drag-step`` s apart without waiting, and
   the report compares the values sent with the comparisons the server really computed
   (counted through ``LPIPS_EXPLORER_COUNT_FILE``): a stale value should not be computed;
3. opens the Class quiz page (``page_script_hash`` of the quiz page), types the session code
   (``quiz.code``) and presses "A is closer" (``quiz.pick.A``).

The script starts the app itself (``streamlit run app.py`` on a free loopback port) with
``LPIPS_EXPLORER_QUIZ_DB`` in a temporary folder, creates the quiz session with ``QuizStore``
directly, samples the server's memory every 0.2 s, and at the end counts the votes in the
database. It reports errors (exception elements, error alerts, disconnects, timeouts; the
target is 0), p50/p95 latencies, the server's peak RSS and votes stored vs sent.

Like a browser, a student announces the cacheable messages it already holds
(``cached_message_hashes``), so unchanged elements come back as references; it fetches the
images of each run over HTTP (``--no-media`` to skip). Students think ``--think`` seconds
(uniform 0.5×–1.5×) between moves. Only loopback traffic; every wait has a timeout and the
whole run a cap (``--cap``); the server is stopped at the end. Exit status 0 only with no
error, every vote stored and no cap hit.

``--env OMP_NUM_THREADS=1`` passes environment to the server (to compare settings);
``--profile`` samples the server's script threads and prints where reruns spend their time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402  (a Streamlit dependency)
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402

SLIDER_KEY = "dist.0.sigma"
CODE_KEY = "quiz.code"
PICK_KEY = "quiz.pick.A"
QUIZ_PATH = "quiz"
FINISHED = ForwardMsg.ScriptFinishedStatus
DONE_STATUSES = {FINISHED.FINISHED_SUCCESSFULLY, FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
                 FINISHED.FINISHED_WITH_COMPILE_ERROR}
ALERT_ERROR = 1  # Alert.Format.ERROR


class LoadError(Exception):
    """A session-ending failure: disconnect, timeout, missing widget, wrong answer."""


# ---------------------------------------------------------------------------------------------
# One rerun as the client sees it.
# ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    label: str
    t0: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    status: int | None = None
    t_first: float | None = None  # first delta
    t_metric: float | None = None  # LPIPS card of the Explore page
    t_end: float | None = None
    n_msgs: int = 0
    n_refs: int = 0
    n_bytes: int = 0
    metrics: dict[str, str] = field(default_factory=dict)  # label -> body
    texts: list[str] = field(default_factory=list)  # markdown bodies
    media: list[str] = field(default_factory=list)  # image URLs
    kinds: dict[str, int] = field(default_factory=dict)
    kind_last: dict[str, float] = field(default_factory=dict)  # element type -> last arrival (monotonic)
    progress: list[str] = field(default_factory=list)  # progress bar texts ("Round 3 of 20")
    alerts: list[str] = field(default_factory=list)  # info/success/warning bodies
    t_saved: float | None = None  # the quiz's "You chose … (saved)"
    t_progress: float | None = None  # the quiz's "Round k of n" bar

    def ms(self, t: float | None) -> float | None:
        return None if t is None else (t - self.t0) * 1000.0


@dataclass
class Widget:
    id: str
    kind: str
    fragment_id: str


class Student:
    """One browser tab, speaking Streamlit's websocket protocol."""

    def __init__(self, idx: int, base: str, timeout: float, verbose: bool, fetch_media: bool, errors: list):
        self.idx = idx
        self.base = base
        self.timeout = timeout
        self.verbose = verbose
        self.fetch_media = fetch_media
        self.errors = errors  # shared list of {"session", "kind", "detail"}
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.widgets: dict[str, Widget] = {}  # user key -> widget
        self.states: dict[str, WidgetState] = {}  # widget id -> last value sent (not triggers)
        self.cache: dict[str, ForwardMsg] = {}  # hash -> cacheable message already received
        self.pages: dict[str, str] = {}  # url path ('' = default page) -> page_script_hash
        self.page_hash = ""
        self.session_id = ""
        self.run: Run | None = None
        self.closed_reason: str | None = None
        self.query_string = ""  # the page address's query, as the server last set it (a browser's URL)

    # -- plumbing ----------------------------------------------------------------------------

    def error(self, kind: str, detail: str) -> None:
        self.errors.append({"session": self.idx, "kind": kind, "detail": detail[:300]})
        if self.verbose:
            print(f"  [s{self.idx}] ERROR {kind}: {detail[:300]}", flush=True)

    async def connect(self) -> None:
        url = self.base.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = await websockets.connect(url, subprotocols=["streamlit"], max_size=None, ping_interval=None,
                                           open_timeout=self.timeout, close_timeout=5, compression=None)
        self.reader = asyncio.create_task(self._read(), name=f"reader-{self.idx}")

    async def close(self) -> None:
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 10)
            except Exception:
                pass
        if self.reader is not None:
            self.reader.cancel()
            try:
                await self.reader
            except (asyncio.CancelledError, Exception):
                pass

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                now = time.monotonic()
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._handle(msg, len(data), now)
        except websockets.ConnectionClosed as exc:
            self.closed_reason = f"connection closed: {exc}"
        except Exception as exc:  # a parse error: report, stop this session
            self.closed_reason = f"reader failed: {type(exc).__name__}: {exc}"
        if self.closed_reason is None:
            self.closed_reason = "connection closed by the server"
        if self.run is not None:
            self.run.done.set()

    def _handle(self, msg: ForwardMsg, size: int, now: float) -> None:
        kind = msg.WhichOneof("type")
        run = self.run
        if run is not None:
            run.n_msgs += 1
            run.n_bytes += size
        if kind == "ref_hash":
            cached = self.cache.get(msg.ref_hash)
            if run is not None:
                run.n_refs += 1
            if cached is None:
                self.error("protocol", f"reference to a message never received: {msg.ref_hash}")
                return
            full = ForwardMsg()
            full.CopyFrom(cached)
            full.metadata.CopyFrom(msg.metadata)
            msg, kind = full, cached.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash:
            self.cache[msg.hash] = msg
        if self.verbose:
            detail = ""
            if kind == "delta":
                d = msg.delta
                dk = d.WhichOneof("type")
                detail = dk + (f":{d.new_element.WhichOneof('type')}" if dk == "new_element" else "")
                detail += f" path={list(msg.metadata.delta_path)}" + (f" frag={d.fragment_id}" if d.fragment_id else "")
            elif kind == "script_finished":
                detail = FINISHED.Name(msg.script_finished)
            print(f"  [s{self.idx}] <- {kind} {detail} ({size} B)", flush=True)
        if kind == "new_session":
            ns = msg.new_session
            self.session_id = ns.initialize.session_id or self.session_id
            self.page_hash = ns.page_script_hash
            self._pages(ns.app_pages)
        elif kind == "navigation":
            self.page_hash = msg.navigation.page_script_hash or self.page_hash
            self._pages(msg.navigation.app_pages)
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta":
            if run is not None and run.t_first is None:
                run.t_first = now
            self._delta(msg, now)
        elif kind == "script_finished":
            if msg.script_finished in DONE_STATUSES and run is not None:
                run.status = msg.script_finished
                run.t_end = now
                run.done.set()
        elif kind == "page_not_found":
            self.error("page_not_found", msg.page_not_found.page_name)
        elif kind == "session_event" and msg.session_event.HasField("script_compilation_exception"):
            self.error("exception", "compilation: " + msg.session_event.script_compilation_exception.message)

    def _pages(self, pages) -> None:
        for page in pages:
            self.pages[page.url_pathname] = page.page_script_hash
            if page.is_default:
                self.pages[""] = page.page_script_hash

    def _delta(self, msg: ForwardMsg, now: float) -> None:
        delta = msg.delta
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        ek = el.WhichOneof("type")
        run = self.run
        if run is not None:
            run.kinds[ek] = run.kinds.get(ek, 0) + 1
            run.kind_last[ek] = now
        if ek == "exception":
            e = el.exception
            self.error("exception", f"{e.type}: {e.message}")
        elif ek == "alert" and el.alert.format == ALERT_ERROR:
            self.error("error_alert", el.alert.body)
        elif ek == "metric" and run is not None:
            run.metrics[el.metric.label] = el.metric.body
            if el.metric.label.startswith("LPIPS (") and run.t_metric is None:
                run.t_metric = now
        elif ek == "markdown" and run is not None:
            run.texts.append(el.markdown.body)
            if "(saved)" in el.markdown.body and run.t_saved is None:
                run.t_saved = now
        elif ek == "progress" and run is not None:
            run.progress.append(el.progress.text)
            if run.t_progress is None:
                run.t_progress = now
        elif ek == "alert" and run is not None:
            run.alerts.append(el.alert.body)
        elif ek == "imgs" and run is not None:
            run.media.extend(img.url for img in el.imgs.imgs if img.url.startswith("/media/"))
        widget = getattr(el, ek, None)
        wid = getattr(widget, "id", "") if widget is not None else ""
        if isinstance(wid, str) and wid.startswith("$$ID-"):
            user_key = wid.split("-", 2)[2] if wid.count("-") >= 2 else ""
            if user_key:
                self.widgets[user_key] = Widget(wid, ek, delta.fragment_id)

    # -- one request -------------------------------------------------------------------------

    async def rerun(self, label: str, *, page_hash: str | None = None, fragment_id: str = "",
                    widgets: tuple[WidgetState, ...] = (), triggers: tuple[WidgetState, ...] = (),
                    page_name: str = "") -> Run:
        """Send rerun_script and wait for its script_finished (with a timeout). ``page_name``
        (a URL path such as ``quiz``, with ``page_hash=""``) opens a page the way a typed address does."""
        if self.closed_reason:
            raise LoadError(self.closed_reason)
        for w in widgets:
            self.states[w.id] = w
        back = BackMsg()
        cs = back.rerun_script
        cs.query_string = self.query_string
        cs.page_name = page_name
        cs.page_script_hash = self.page_hash if page_hash is None else page_hash
        cs.fragment_id = fragment_id
        cs.widget_states.widgets.extend(list(self.states.values()) + list(triggers))
        cs.cached_message_hashes.extend(self.cache)
        run = Run(label, time.monotonic())
        self.run = run
        if self.verbose:
            print(f"  [s{self.idx}] -> rerun_script {label} page={cs.page_script_hash[:8]} frag={fragment_id} "
                  f"widgets={[(w.id[-24:], w.WhichOneof('value')) for w in cs.widget_states.widgets]}", flush=True)
        try:
            await self.ws.send(back.SerializeToString())
            await asyncio.wait_for(run.done.wait(), self.timeout)
        except asyncio.TimeoutError:
            raise LoadError(f"timeout: {label} not finished after {self.timeout:.0f} s") from None
        except websockets.ConnectionClosed as exc:
            raise LoadError(f"connection closed: {exc}") from None
        if run.t_end is None:
            raise LoadError(self.closed_reason or f"{label}: no script_finished")
        if run.status == FINISHED.FINISHED_WITH_COMPILE_ERROR:
            raise LoadError(f"{label}: script compile error")
        if self.fetch_media and run.media:
            await asyncio.to_thread(self._fetch, run.media)
        return run

    async def send_only(self, fragment_id: str, widgets: tuple[WidgetState, ...],
                        triggers: tuple[WidgetState, ...] = ()) -> None:
        """Send a rerun without waiting for it, as a browser does while a slider is dragged."""
        for w in widgets:
            self.states[w.id] = w
        back = BackMsg()
        cs = back.rerun_script
        cs.query_string = self.query_string
        cs.page_script_hash = self.page_hash
        cs.fragment_id = fragment_id
        cs.widget_states.widgets.extend(list(self.states.values()) + list(triggers))
        cs.cached_message_hashes.extend(self.cache)
        try:
            await self.ws.send(back.SerializeToString())
        except websockets.ConnectionClosed as exc:
            raise LoadError(f"connection closed: {exc}") from None

    def _fetch(self, urls: list[str]) -> None:
        for url in urls:
            try:
                with urllib.request.urlopen(self.base + url, timeout=self.timeout) as resp:
                    resp.read()
            except OSError as exc:
                # A newer run may already have released an image: only the first miss is odd.
                self.error("media", f"{url}: {exc}")

    def widget(self, key: str) -> Widget:
        w = self.widgets.get(key)
        if w is None:
            raise LoadError(f"widget {key!r} not found (seen: {sorted(self.widgets)[:12]}...)")
        return w


# ---------------------------------------------------------------------------------------------
# A student's script.
# ---------------------------------------------------------------------------------------------

def sigma_for(idx: int, move: int, previous: float) -> float:
    """Varied slider values (0.1–8.0 in steps of 0.1), never the previous one."""
    value = round((((idx * 37 + (move + 1) * 11) % 80) + 1) / 10, 1)
    return value if abs(value - previous) > 1e-9 else round(value % 8.0 + 0.1, 1)


async def student(idx: int, args, base: str, code: str, errors: list, moves_out: list, result: dict,
                  start_delay: float) -> None:
    rng = random.Random(idx)
    await asyncio.sleep(start_delay)
    s = Student(idx, base, args.timeout, args.verbose, not args.no_media, errors)
    result.update(session=idx, connected=False, opened=False, moves_ok=0, vote_sent=False, vote_shown=False)
    try:
        await s.connect()
        result["connected"] = True
        run = await s.rerun("open")
        result["open_ms"] = run.ms(run.t_end)
        slider = s.widget(SLIDER_KEY)
        if slider.kind != "slider":
            raise LoadError(f"{SLIDER_KEY} is a {slider.kind}, not a slider")
        last = run.metrics.get(next((k for k in run.metrics if k.startswith("LPIPS (")), ""), None)
        if last is None:
            raise LoadError("no LPIPS card after opening the page")
        result["opened"] = True
        sigma = 1.5
        for m in range(args.moves):
            await asyncio.sleep(args.think * rng.uniform(0.5, 1.5))
            start_sigma, sigma = sigma, sigma_for(idx, m, sigma)
            frag = "" if args.full_reruns else slider.fragment_id
            # A drag: the values on the way are sent without waiting, like a browser while the
            # thumb moves; only the last one is awaited. The server should compute few of them.
            for j in range(1, args.drag):
                on_the_way = round(start_sigma + (sigma - start_sigma) * j / args.drag, 3)
                passing = WidgetState(id=slider.id)
                passing.double_array_value.data.append(on_the_way)
                await s.send_only(frag, (passing,))
                result["values_sent"] = result.get("values_sent", 0) + 1
                await asyncio.sleep(args.drag_step)
            state = WidgetState(id=slider.id)
            state.double_array_value.data.append(sigma)
            result["values_sent"] = result.get("values_sent", 0) + 1
            run = await s.rerun(f"move {m + 1} σ={sigma}", fragment_id=frag, widgets=(state,))
            lp = next((v for k, v in run.metrics.items() if k.startswith("LPIPS (")), None)
            rec = {"session": idx, "move": m, "sigma": sigma, "finished_ms": run.ms(run.t_end),
                   "metric_ms": run.ms(run.t_metric), "first_delta_ms": run.ms(run.t_first), "bytes": run.n_bytes,
                   "msgs": run.n_msgs, "refs": run.n_refs, "lpips": lp, "ok": True,
                   "last_ms_by_element": {k: round(run.ms(t), 1) for k, t in run.kind_last.items()}}
            if lp is None:
                rec["ok"] = False
                s.error("stale", f"move {m + 1}: no LPIPS card in the rerun")
            elif lp == last:
                rec["ok"] = False
                s.error("stale", f"move {m + 1}: LPIPS card unchanged ({lp}) after σ → {sigma}")
            else:
                try:
                    float(lp)
                except ValueError:
                    rec["ok"] = False
                    s.error("stale", f"move {m + 1}: LPIPS card is not a number: {lp!r}")
            last = lp if lp is not None else last
            moves_out.append(rec)
            result["moves_ok"] += rec["ok"]
            slider = s.widgets.get(SLIDER_KEY, slider)
        # The quiz: open the page, type the code, vote A.
        quiz_hash = s.pages.get(QUIZ_PATH)
        if not quiz_hash:
            raise LoadError(f"no page with url path {QUIZ_PATH!r} in {sorted(s.pages)}")
        await asyncio.sleep(args.think * rng.uniform(0.5, 1.5))
        run = await s.rerun("quiz page", page_hash=quiz_hash)
        result["quiz_page_ms"] = run.ms(run.t_end)
        code_w = s.widget(CODE_KEY)
        await asyncio.sleep(args.think * rng.uniform(0.5, 1.5))
        run = await s.rerun("enter code", widgets=(WidgetState(id=code_w.id, string_value=code),))
        result["round_ms"] = run.ms(run.t_end)
        pick = s.widget(PICK_KEY)
        await asyncio.sleep(args.think * rng.uniform(0.5, 1.5))
        result["vote_sent"] = True
        run = await s.rerun("vote A", triggers=(WidgetState(id=pick.id, trigger_value=True),),
                            fragment_id=pick.fragment_id)  # the round is a fragment: only it reruns
        result["vote_ms"] = run.ms(run.t_end)
        shown = any("You chose **A**" in t for t in run.texts)
        result["vote_shown"] = shown
        if not shown:
            s.error("vote", "after voting, the page does not say 'You chose A (saved)'")
    except LoadError as exc:
        s.error("disconnect" if "closed" in str(exc) else "timeout" if "timeout" in str(exc) else "flow", str(exc))
    except (OSError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
        s.error("connect", f"{type(exc).__name__}: {exc}")
    finally:
        await s.close()


# ---------------------------------------------------------------------------------------------
# The server and its memory.
# ---------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ``--profile``: the server runs under this wrapper, which samples the Python stacks of every
# thread but the main one (the event loop) every 5 ms and counts, per project function
# (views/, core/, viz/, app.py), the samples whose stack contains it: where script runs spend
# their (wall) time, waits for the GIL and the CPUs included. Written every 2 s and at exit.
PROFILER = r"""
import atexit, collections, json, os, sys, threading, time
root = os.environ["LOAD_PROFILE_ROOT"] + os.sep
out = os.environ["LOAD_PROFILE_OUT"]
incl, leaf, pairs, n = collections.Counter(), collections.Counter(), collections.Counter(), [0]
def dump():
    with open(out + ".tmp", "w") as fh:
        json.dump({"samples": n[0], "inclusive": incl.most_common(40), "leaf": leaf.most_common(30),
                   "innermost_project_frame_and_leaf": pairs.most_common(30)}, fh)
    os.replace(out + ".tmp", out)
def sample():
    me, main, last = threading.get_ident(), threading.main_thread().ident, time.monotonic()
    while True:
        time.sleep(0.005)
        for tid, frame in sys._current_frames().items():
            if tid in (me, main):
                continue
            stack, f = [], frame
            while f is not None:
                stack.append(f.f_code)
                f = f.f_back
            keys = []
            for c in stack:
                fn = c.co_filename
                if fn.startswith(root) and os.sep + ".venv" + os.sep not in fn:
                    keys.append(fn[len(root):] + ":" + c.co_name)
            if not keys:
                continue
            n[0] += 1
            for k in set(keys):
                incl[k] += 1
            top = os.path.basename(stack[0].co_filename) + ":" + stack[0].co_name
            leaf[top] += 1
            pairs[keys[0] + " > " + top] += 1
        if time.monotonic() - last > 2:
            dump()
            last = time.monotonic()
atexit.register(dump)
threading.Thread(target=sample, daemon=True, name="load-profiler").start()
sys.argv = ["streamlit"] + sys.argv[1:]
from streamlit.web.cli import main
main()
"""


def start_server(port: int, env: dict, log_path: Path, timeout: float = 120.0,
                 profile_out: Path | None = None) -> subprocess.Popen:
    launcher = ["-c", PROFILER] if profile_out else ["-m", "streamlit"]
    if profile_out:
        env = {**env, "LOAD_PROFILE_ROOT": str(ROOT), "LOAD_PROFILE_OUT": str(profile_out)}
    cmd = [sys.executable, *launcher, "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_server(proc)
            raise TimeoutError("streamlit did not become healthy in time")
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM in KiB from /proc (Linux)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:", "Threads:")):
                name, value = line.split(":", 1)
                out[name] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(whole process, main thread) user+system CPU seconds. The main thread runs the event loop
    (websocket frames, HTTP, protobuf serialization); script runs and torch use other threads."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(path: str) -> float:
        try:
            fields = Path(path).read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            return 0.0

    return stat(f"/proc/{pid}/stat"), stat(f"/proc/{pid}/task/{pid}/stat")


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """{tid: (name, user+system CPU seconds)} for every thread of ``pid``."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / tick)
        except (OSError, ValueError, IndexError):
            pass
    return out


async def sample_memory(pid: int, out: dict, stop: asyncio.Event) -> None:
    while not stop.is_set():
        st = proc_status(pid)
        threads = thread_cpu(pid)
        for tid, (name, cpu) in threads.items():  # keep the last reading of threads that end
            out.setdefault("threads", {})[tid] = (name, cpu)
        if st:
            out["peak_rss_kib"] = max(out.get("peak_rss_kib", 0), st.get("VmRSS", 0))
            out["hwm_kib"] = st.get("VmHWM", out.get("hwm_kib", 0))
            out["max_threads"] = max(out.get("max_threads", 0), st.get("Threads", 0))
            out.setdefault("samples", []).append((round(time.monotonic() - out["t0"], 1), st.get("VmRSS", 0)))
        try:
            await asyncio.wait_for(stop.wait(), 0.2)
        except asyncio.TimeoutError:
            pass


# ---------------------------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summarize(values: list[float]) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"n": 0}
    return {"n": len(vals), "p50": round(percentile(vals, 0.5), 1), "p95": round(percentile(vals, 0.95), 1),
            "max": round(max(vals), 1), "mean": round(statistics.fmean(vals), 1)}


def fmt(stats: dict, key: str) -> str:
    return "–" if stats.get(key) is None else f"{stats[key] / 1000:.2f} s"


async def main_async(args, bases: list[str], code: str, pids: list[int], store_target: str) -> dict:
    """Run the class against the servers (student ``i`` uses server ``i mod N``, as a sticky proxy
    would spread them); memory and CPU are sampled for every server."""
    errors: list[dict] = []
    moves: list[dict] = []
    results = [dict() for _ in range(args.sessions)]
    pid = pids[0]
    mems = [{"t0": time.monotonic()} for _ in pids]
    mem = mems[0]
    stop = asyncio.Event()
    samplers = [asyncio.create_task(sample_memory(p, m, stop)) for p, m in zip(pids, mems)]
    cpu0 = [cpu_seconds(p) for p in pids]
    client0 = time.process_time()
    threads0 = thread_cpu(pid)
    t0 = time.monotonic()
    tasks = [asyncio.create_task(student(i, args, bases[i % len(bases)], code, errors, moves, results[i],
                                         args.ramp * i / max(1, args.sessions - 1) if args.sessions > 1 else 0.0))
             for i in range(args.sessions)]
    done, pending = await asyncio.wait(tasks, timeout=args.cap)
    capped = bool(pending)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=30)
        errors.append({"session": -1, "kind": "timeout", "detail": f"overall cap of {args.cap:.0f} s reached; "
                       f"{len(pending)} sessions cancelled"})
    for task in done:
        if task.exception() is not None:
            errors.append({"session": -1, "kind": "bug", "detail": repr(task.exception())})
    wall = time.monotonic() - t0
    cpu1 = [cpu_seconds(p) for p in pids]
    client_cpu = time.process_time() - client0
    stop.set()
    for sampler in samplers:
        await sampler
    threads1 = {**mem.get("threads", {}), **thread_cpu(pid)}
    per_thread = sorted(((cpu - threads0.get(tid, ("", 0.0))[1], tid, name) for tid, (name, cpu) in threads1.items()),
                        reverse=True)
    elements = {}
    for m in moves:
        for k, v in m.get("last_ms_by_element", {}).items():
            elements.setdefault(k, []).append(v)
    from store import open_store

    with open_store(store_target) as store:
        stored = store.votes(code)
    votes_sent = sum(r.get("vote_sent", False) for r in results)
    by_kind: dict[str, int] = {}
    for e in errors:
        by_kind[e["kind"]] = by_kind.get(e["kind"], 0) + 1
    return {
        "wall_s": round(wall, 1),
        "capped": capped,
        "errors": len(errors),
        "errors_by_kind": by_kind,
        "error_samples": errors[:20],
        "sessions_opened": sum(r.get("opened", False) for r in results),
        "moves_done": len(moves),
        "moves_ok": sum(m["ok"] for m in moves),
        "update_finished_ms": summarize([m["finished_ms"] for m in moves]),
        "update_metric_ms": summarize([m["metric_ms"] for m in moves]),
        "update_tail_ms": summarize([m["finished_ms"] - m["metric_ms"] for m in moves if m["metric_ms"] is not None]),
        "open_ms": summarize([r.get("open_ms") for r in results]),
        "quiz_page_ms": summarize([r.get("quiz_page_ms") for r in results]),
        "quiz_round_ms": summarize([r.get("round_ms") for r in results]),
        "vote_ms": summarize([r.get("vote_ms") for r in results]),
        "bytes_per_move": summarize([m["bytes"] for m in moves]),
        "refs_per_move": summarize([m["refs"] for m in moves]),
        "votes_sent": votes_sent,
        "votes_shown": sum(r.get("vote_shown", False) for r in results),
        "votes_stored": len(stored),
        "distinct_voters_stored": len({v.voter_id for v in stored}),
        "server_peak_rss_mib": round(mem.get("peak_rss_kib", 0) / 1024, 1),
        "servers_peak_rss_mib": [round(m.get("peak_rss_kib", 0) / 1024, 1) for m in mems],
        "server_vmhwm_mib": round(mem.get("hwm_kib", 0) / 1024, 1),
        "server_max_threads": mem.get("max_threads", 0),
        "server_cpu_s": round(sum(b[0] - a[0] for a, b in zip(cpu0, cpu1)), 1),
        "server_event_loop_cpu_s": round(sum(b[1] - a[1] for a, b in zip(cpu0, cpu1)), 1),
        "client_cpu_s": round(client_cpu, 1),
        "server_threads_busiest": [{"tid": tid, "main": tid == pid, "name": name, "cpu_s": round(c, 1)}
                                   for c, tid, name in per_thread[:6]],
        "move_last_element_ms_p50": {k: round(percentile(v, 0.5), 1) for k, v in
                                     sorted(elements.items(), key=lambda kv: percentile(kv[1], 0.5))},
        "rss_samples_mib": [(t, round(k / 1024)) for t, k in mem.get("samples", [])[::25]],
        "moves": moves,
        "sessions": results,
    }


def print_report(rep: dict, args) -> None:
    print()
    print(f"LPIPS Explorer class load: {args.servers} server{'s' if args.servers > 1 else ''} "
          f"({'PostgreSQL' if args.postgres else 'SQLite'}), {args.sessions} sessions × {args.moves} moves, "
          f"think {args.think} s, "
          f"{'full' if args.full_reruns else 'fragment'} reruns, media {'off' if args.no_media else 'on'}"
          + (f", server env {' '.join(args.env)}" if args.env else "") + (", PROFILED" if args.profile else ""))
    rows = [
        ("wall time", f"{rep['wall_s']} s" + (" (CAPPED)" if rep["capped"] else "")),
        ("errors (target 0)", f"{rep['errors']} {rep['errors_by_kind'] or ''}"),
        ("sessions opened", f"{rep['sessions_opened']} / {args.sessions}"),
        ("moves ok / done", f"{rep['moves_ok']} / {rep['moves_done']} (planned {args.sessions * args.moves})"),
        ("update: send → LPIPS card", f"p50 {fmt(rep['update_metric_ms'], 'p50')}, "
                                       f"p95 {fmt(rep['update_metric_ms'], 'p95')}, max {fmt(rep['update_metric_ms'], 'max')}"),
        ("update: send → run finished", f"p50 {fmt(rep['update_finished_ms'], 'p50')}, "
                                         f"p95 {fmt(rep['update_finished_ms'], 'p95')}, max {fmt(rep['update_finished_ms'], 'max')}"),
        ("update: card → finished", f"p50 {fmt(rep['update_tail_ms'], 'p50')}, p95 {fmt(rep['update_tail_ms'], 'p95')}"),
        ("open Explore (full run)", f"p50 {fmt(rep['open_ms'], 'p50')}, p95 {fmt(rep['open_ms'], 'p95')}"),
        ("quiz page / code / vote", f"p50 {fmt(rep['quiz_page_ms'], 'p50')} / {fmt(rep['quiz_round_ms'], 'p50')} / "
                                     f"{fmt(rep['vote_ms'], 'p50')}; p95 {fmt(rep['quiz_page_ms'], 'p95')} / "
                                     f"{fmt(rep['quiz_round_ms'], 'p95')} / {fmt(rep['vote_ms'], 'p95')}"),
        ("slider values sent / computed", f"{rep.get('slider_values_sent', '–')} / "
                                           f"{rep.get('comparisons_computed', '–')} (computed includes the "
                                           f"{rep['sessions_opened']} page opens; drags of {args.drag} values)"),
        ("bytes per move (ws)", f"p50 {rep['bytes_per_move'].get('p50', '–')}, "
                                 f"cached refs p50 {rep['refs_per_move'].get('p50', '–')}"),
        ("votes stored / sent", f"{rep['votes_stored']} / {rep['votes_sent']} "
                                 f"(shown {rep['votes_shown']}, distinct voters {rep['distinct_voters_stored']})"),
        ("server peak RSS", f"{rep['server_peak_rss_mib']} MiB sampled, VmHWM {rep['server_vmhwm_mib']} MiB, "
                            f"{rep['server_max_threads']} threads max"
                            + (f"; every server: {rep['servers_peak_rss_mib']} MiB" if len(rep['servers_peak_rss_mib']) > 1
                               else "")),
        ("server CPU", f"{rep['server_cpu_s']} s total, of which event loop thread {rep['server_event_loop_cpu_s']} s "
                       f"(this load client: {rep['client_cpu_s']} s)"),
    ]
    rows.append(("move timeline p50 (ms)", ", ".join(f"{k} {v:.0f}" for k, v in rep["move_last_element_ms_p50"].items()
                                                     if k in ("metric", "imgs", "plotly_chart", "download_button"))))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    for e in rep["error_samples"][:10]:
        print(f"  ! s{e['session']} {e['kind']}: {e['detail']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--port", default="auto", help="'auto' for a free port, or a port number")
    parser.add_argument("--json", default=None, help="write the report (with every move) to this file")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between actions, seconds")
    parser.add_argument("--ramp", type=float, default=5.0, help="spread the session starts over this many seconds")
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout, seconds")
    parser.add_argument("--cap", type=float, default=1200.0, help="overall time cap, seconds")
    parser.add_argument("--full-reruns", action="store_true", help="full-app reruns instead of fragment reruns")
    parser.add_argument("--drag", type=int, default=1,
                        help="slider values per move: the first N-1 are sent without waiting (a drag)")
    parser.add_argument("--drag-step", type=float, default=0.05, help="seconds between the values of a drag")
    parser.add_argument("--servers", type=int, default=1,
                        help="app servers sharing one quiz database; student i talks to server i mod N")
    parser.add_argument("--postgres", action="store_true",
                        help="a throwaway PostgreSQL (tests/pg_server.py) as the quiz database instead of SQLite")
    parser.add_argument("--no-media", action="store_true", help="do not fetch the images over HTTP")
    parser.add_argument("--verbose", action="store_true", help="print every message (for one or two sessions)")
    parser.add_argument("--keep-log", default=None, help="copy the server log here")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the server, e.g. OMP_NUM_THREADS=1 (repeatable)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the server's script threads (where does a rerun spend its time?)")
    parser.add_argument("--quiz-rounds", type=int, default=0,
                        help="a quiz class instead (bench/quiz_class.py): each student judges this many rounds, "
                             "timing pick → 'saved' and 'Next round' → round shown")
    parser.add_argument("--kill-at", type=float, action="append", default=[], metavar="SECONDS",
                        help="with --quiz-rounds: SIGKILL the server this long after the start and restart it "
                             "(repeatable); students reconnect with the same address")
    parser.add_argument("--kill-after-votes", type=int, action="append", default=[], metavar="N",
                        help="with --quiz-rounds: SIGKILL and restart the server once the class has N "
                             "acknowledged votes (repeatable)")
    parser.add_argument("--no-nets", action="store_true",
                        help="with --quiz-rounds: prepare rounds without the LPIPS networks (PSNR/SSIM only)")
    parser.add_argument("--double-click-round", type=int, default=1,
                        help="with --quiz-rounds: the round (0-based) whose pick each student sends twice")
    args = parser.parse_args()
    if args.sessions < 1 or args.moves < 0 or args.servers < 1:
        parser.error("--sessions and --servers must be >= 1 and --moves >= 0")
    if args.quiz_rounds:
        from bench.quiz_class import QuizOptions, print_quiz_report, run_quiz_class

        env = dict(item.split("=", 1) for item in args.env if "=" in item)
        opts = QuizOptions(students=args.sessions, rounds=args.quiz_rounds, think=args.think, ramp=args.ramp,
                           timeout=args.timeout, kill_at=tuple(args.kill_at),
                           kill_after_votes=tuple(args.kill_after_votes), fetch_media=not args.no_media,
                           double_click_round=args.double_click_round, verbose=args.verbose)
        rep = run_quiz_class(opts, postgres=args.postgres, nets=not args.no_nets, env=env, keep_log=args.keep_log)
        print_quiz_report(rep)
        if args.json:
            Path(args.json).write_text(json.dumps(rep, indent=1, default=str))
            print(f"  report: {args.json}")
        return 0 if rep["ok"] else 1

    server_env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--env wants NAME=VALUE, got {item!r}")
        server_env[name] = value

    with tempfile.TemporaryDirectory(prefix="lpips-load-") as tmp, contextlib.ExitStack() as stack:
        if args.postgres:
            sys.path.insert(0, str(ROOT / "tests"))
            from pg_server import PostgresServer

            pg = PostgresServer().start()
            stack.callback(pg.stop)
            store_target = pg.create_database()
        else:
            store_target = str(Path(tmp) / "quiz.sqlite")
        # The session's rounds are prepared (and stored) before the class, as the server's background
        # preparation does after a teacher creates a session: the vote only reads and writes the store.
        from bench.quiz_class import prepare_session

        code, _seconds_per_round = prepare_session(store_target, n_rounds=3, nets=True)
        t_start = time.monotonic()
        profile_out = Path(tmp) / "profile.json" if args.profile else None
        count_file = Path(tmp) / "computations.txt"  # one line per comparison the servers really computed
        env = {**server_env, "LPIPS_EXPLORER_QUIZ_DB": store_target, "LPIPS_EXPLORER_COUNT_FILE": str(count_file)}
        procs, bases, logs = [], [], []
        try:
            for k in range(args.servers):
                port = free_port() if args.port == "auto" or k else int(args.port)
                logs.append(Path(tmp) / f"server-{k}.log")
                procs.append(start_server(port, env, logs[-1], profile_out=profile_out if k == 0 else None))
                bases.append(f"http://127.0.0.1:{port}")
            startup = time.monotonic() - t_start
            print(f"servers {[p.pid for p in procs]} on {bases} healthy after {startup:.1f} s; quiz code {code}",
                  flush=True)
            rep = asyncio.run(main_async(args, bases, code, [p.pid for p in procs], store_target))
        finally:
            for proc in procs:
                stop_server(proc)
            log_text = "".join(log.read_text(errors="replace") for log in logs if log.exists())
            if args.keep_log:
                Path(args.keep_log).write_text(log_text)
        if profile_out is not None and profile_out.exists():
            rep["profile"] = json.loads(profile_out.read_text())
        computed = count_file.read_text().count("comparison") if count_file.exists() else 0
        sent = sum(r.get("values_sent", 0) for r in rep["sessions"])
        rep.update(slider_values_sent=sent, comparisons_computed=computed, drag=args.drag)
        tracebacks = log_text.count("Traceback (most recent call last)")
        rep["server_log_tracebacks"] = tracebacks
        if tracebacks:
            rep["errors"] += tracebacks
            rep["errors_by_kind"]["server_traceback"] = tracebacks
            i = log_text.find("Traceback (most recent call last)")
            rep["server_log_excerpt"] = log_text[i:i + 2000]
        rep.update(server_startup_s=round(startup, 1), sessions=args.sessions, moves_per_session=args.moves,
                   servers=args.servers, quiz_db="postgresql" if args.postgres else "sqlite",
                   think_s=args.think, ramp_s=args.ramp, server_env=server_env, profiled=args.profile, fragment_reruns=not args.full_reruns,
                   fetch_media=not args.no_media, date=dt.datetime.now().isoformat(timespec="seconds"),
                   cpus=os.cpu_count(), loadavg_end=os.getloadavg(), session_results=rep.pop("sessions"))
    print_report(rep, args)
    prof = rep.get("profile")
    if prof and prof["samples"]:
        print(f"  profile: {prof['samples']} samples of script threads; share of samples whose stack holds:")
        for name, count in prof["inclusive"][:14]:
            print(f"    {100 * count / prof['samples']:5.1f}%  {name}")
        print("  innermost Python frames: " + ", ".join(f"{name} {100 * c / prof['samples']:.0f}%"
                                                       for name, c in prof["leaf"][:8]))
        print("  innermost project frame > innermost frame: " + ", ".join(
            f"{name} {100 * c / prof['samples']:.0f}%" for name, c in prof["innermost_project_frame_and_leaf"][:6]))
    if rep.get("server_log_excerpt"):
        print("  server log:", rep["server_log_excerpt"][:1000])
    if args.json:
        Path(args.json).write_text(json.dumps(rep, indent=1, default=str))
        print(f"  report: {args.json}")
    ok = rep["errors"] == 0 and rep["votes_stored"] == rep["votes_sent"] and not rep["capped"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
