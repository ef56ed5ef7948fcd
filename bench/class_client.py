"""What the class benchmarks share: a simulated browser tab speaking Streamlit's websocket
protocol (:class:`Student`), starting and stopping a real server on a loopback port, and
measuring its CPU and memory. ``bench/load_class.py`` (a class moving sliders) and
``bench/quiz_class.py`` (a class voting) both build on it; neither imports the other's runner."""

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ``--profile``: the server runs under this wrapper, which samples the Python stacks of every
# thread but the main one (the event loop) every 5 ms and counts, per project function
# (views/, core/, viz/), the samples whose stack contains it: where script runs spend
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
    cmd = [sys.executable, *launcher, "run", str(ROOT / "views" / "app.py"), "--server.address", "127.0.0.1",
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
