"""A class taking the quiz over Streamlit's websocket protocol, optionally through server crashes.

    .venv/bin/python bench/load_class.py --quiz-rounds 10 [--sessions 30] [--kill-at 5 --kill-at 20]
    .venv/bin/python bench/load_class.py --quiz-rounds 10 --quiz-kind jnd   # a JND session

(``bench/load_class.py`` hands ``--quiz-rounds`` runs to :func:`main_quiz`.) Each simulated
student (:class:`bench.load_class.Student`, one browser tab) opens ``/quiz`` directly, types the
join code, and then, round after round, thinks, picks A or B and presses "Next round". Timed:
pick → "You chose … (saved)" on the page, and "Next round" → the new round's images. The rounds
are prepared before the class starts (``--prepare``: with both LPIPS networks, as the server's
background preparation makes them; ``--no-nets``: PSNR/SSIM only), and the time that took is
reported per round.

``--quiz-kind jnd``: a JND session. Each round the student presses "Show the two images", waits
for the presentation to end (a cross, 1 s, 250 ms, 1 s: what the browser shows) and thinks, then
answers "Same" or "Different"; timed: that answer → "You answered … (saved)".

``--kill-at S`` (repeatable) kills the server with SIGKILL ``S`` seconds after the class started
and restarts it at once on the same port and database. A student whose connection drops does
what a browser tab does: it reconnects and reloads the same address (``/quiz?code=…&voter=…``,
which the server set on joining), with no widget state. The run then checks that the page shows
the student's first unvoted round (the round after the last acknowledged pick, or one further if
the pick in flight at the crash was stored), that every acknowledged pick is in the database
with its choice, that the dashboard counts as many people as there are students, and that one
double-clicked pick per student (``--double-click-round``) was stored once.

Exit status 0 only with no error and nothing lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402  (a Streamlit dependency)
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402

from bench.class_client import (  # noqa: E402
    LoadError,
    Student,
    cpu_seconds,
    free_port,
    start_server,
    stop_server,
    summarize,
)

ROUND_TEXT = re.compile(r"Round (\d+) of (\d+)")
#: How long a JND pair's presentation lasts in the browser: the cross, 1 s, 250 ms, 1 s.
JND_PRESENTATION_S = 2.75
DONE_TEXT = "You have judged every round"


@dataclass
class QuizOptions:
    students: int = 30
    rounds: int = 10
    think: float = 1.0  # mean pause before each click, seconds (uniform 0.5×–1.5×)
    ramp: float = 5.0  # students start spread over this many seconds
    timeout: float = 120.0  # per request
    kill_at: tuple[float, ...] = ()  # seconds after the start: SIGKILL the server, restart it
    kill_after_votes: tuple[int, ...] = ()  # …or once the class has this many acknowledged votes
    double_click_round: int = 1  # each student sends its pick twice in this round (-1: never)
    fetch_media: bool = True
    verbose: bool = False
    reconnect_timeout: float = 180.0
    kind: str = "2afc"  # or "jnd": "Show the two images", then "Same" / "Different"


class RestartableServer:
    """``streamlit run views/app.py`` on a fixed loopback port that can be killed and started again."""

    def __init__(self, env: dict, log_dir: Path) -> None:
        self.port = free_port()
        self.env = env
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.restart_s: list[float] = []
        self.cpu_s = 0.0  # CPU seconds of every server process that has ended (start-up included)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        self.proc = start_server(self.port, self.env, self.log_dir / f"server-{self.starts}.log")

    def kill9_and_restart(self) -> None:
        assert self.proc is not None
        self.cpu_s += cpu_seconds(self.proc.pid)[0]
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        started = time.monotonic()
        self.start()
        self.restart_s.append(round(time.monotonic() - started, 1))

    def cpu_now(self) -> float:
        return self.cpu_s + (cpu_seconds(self.proc.pid)[0] if self.proc is not None else 0.0)

    def stop(self) -> None:
        if self.proc is not None:
            self.cpu_s += cpu_seconds(self.proc.pid)[0]
            stop_server(self.proc)
            self.proc = None

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("server-*.log")))


@dataclass
class StudentRecord:
    idx: int
    query_string: str = ""
    acked: dict[int, str] = field(default_factory=dict)  # round -> pick the page confirmed
    in_flight_at_crash: list[tuple[int, str]] = field(default_factory=list)
    pick_ms: list[float] = field(default_factory=list)
    next_ms: list[float] = field(default_factory=list)
    resumes: list[dict] = field(default_factory=list)
    double_clicks: int = 0
    finished: bool = False


def shown_round(run, n_rounds: int) -> int | None:
    """The 0-based round the page shows (``n_rounds`` once every round is judged), or ``None``."""
    for text in run.progress:
        found = ROUND_TEXT.search(text)
        if found:
            return int(found.group(1)) - 1
    if any(DONE_TEXT in a for a in run.alerts):
        return n_rounds
    return None


async def _reload(s: Student, opts: QuizOptions) -> object:
    """What a browser tab does after its connection dropped: reconnect, reload the same address."""
    await s.close()
    s.widgets, s.states, s.cache = {}, {}, {}
    s.page_hash, s.closed_reason, s.run = "", None, None
    deadline = time.monotonic() + opts.reconnect_timeout
    while True:
        try:
            await s.connect()
            return await s.rerun("reload", page_hash="", page_name="quiz")
        except (OSError, LoadError, websockets.InvalidHandshake, websockets.ConnectionClosed, asyncio.TimeoutError):
            await s.close()
            s.closed_reason = None
            if time.monotonic() > deadline:
                raise LoadError("the server did not come back")
            await asyncio.sleep(0.5)


async def quiz_student(idx: int, opts: QuizOptions, base: str, code: str, errors: list, rec: StudentRecord,
                       start_delay: float) -> None:
    rng = random.Random(1000 + idx)
    await asyncio.sleep(start_delay)
    s = Student(idx, base, opts.timeout, opts.verbose, opts.fetch_media, errors)
    n = opts.rounds

    async def think() -> None:
        await asyncio.sleep(opts.think * rng.uniform(0.5, 1.5))

    current: int | None = None  # the 0-based round on the page; None: not in the session yet
    in_flight: tuple[int, str] | None = None
    opened = False
    try:
        while current is None or current < n:
            try:
                if not opened:
                    await s.connect()
                    await s.rerun("open quiz", page_hash="", page_name="quiz")
                    opened = True
                if current is None:  # the join box: type the code
                    code_box = s.widget("quiz.code")
                    run = await s.rerun("enter code", widgets=(WidgetState(id=code_box.id, string_value=code),))
                    current = shown_round(run, n)
                    if current is None:
                        raise LoadError("no round on the page after entering the code")
                    continue
                if current in rec.acked:  # a reload showed a voted round (not expected)
                    s.error("resume", f"the page shows round {current + 1}, already voted")
                    break
                if opts.kind == "jnd":  # the pair is shown first (once), then the answer
                    show = s.widget("quiz.jnd.show")
                    await s.rerun(f"show round {current + 1}", triggers=(WidgetState(id=show.id, trigger_value=True),),
                                  fragment_id=show.fragment_id)
                    await asyncio.sleep(JND_PRESENTATION_S)  # the browser flashes the two images
                await think()
                options = ("same", "different") if opts.kind == "jnd" else ("A", "B")
                choice = in_flight[1] if in_flight and in_flight[0] == current else rng.choice(options)
                button = s.widget(f"quiz.jnd.{choice}" if opts.kind == "jnd" else f"quiz.pick.{choice}")
                trigger = WidgetState(id=button.id, trigger_value=True)
                in_flight = (current, choice)
                doubled = current == opts.double_click_round
                # A button in a fragment reruns only its fragment, as the browser asks (fragment_id).
                if doubled:  # a double click: the same pick sent twice, the second before any answer
                    await s.send_only(button.fragment_id, (), triggers=(trigger,))
                    rec.double_clicks += 1
                run = await s.rerun(f"pick {choice} in round {current + 1}", triggers=(trigger,),
                                    fragment_id=button.fragment_id)
                if doubled:
                    await asyncio.sleep(1.0)  # let the second run finish; not timed
                said = "You answered" if opts.kind == "jnd" else "You chose"
                if not any(t.startswith(f"{said} **{choice}** (saved)") for t in run.texts):
                    raise LoadError(f"round {current + 1}: no '{said} {choice} (saved)' after the pick")
                rec.acked[current] = choice
                in_flight = None
                if not doubled and run.t_saved is not None:
                    rec.pick_ms.append(run.ms(run.t_saved))
                await think()
                button = s.widget("quiz.next")
                nxt = WidgetState(id=button.id, trigger_value=True)
                run = await s.rerun(f"next after round {current + 1}", triggers=(nxt,),
                                    fragment_id=button.fragment_id)
                shown = shown_round(run, n)
                if shown != current + 1:
                    raise LoadError(f"after 'Next round' from round {current + 1} the page shows {shown}")
                if shown < n:
                    t_images = run.kind_last.get("imgs")
                    rec.next_ms.append(run.ms(t_images if t_images is not None else run.t_end))
                current = shown
            except (LoadError, OSError, websockets.InvalidHandshake) as exc:
                if not (opts.kill_at or opts.kill_after_votes) or (isinstance(exc, LoadError)
                                                                    and "closed" not in str(exc)):
                    raise
                if in_flight is not None:
                    rec.in_flight_at_crash.append(in_flight)
                run = await _reload(s, opts)
                opened = True
                shown = shown_round(run, n)
                if not s.query_string:  # the crash came before the server gave this tab a token
                    if shown is not None:
                        s.error("resume", f"a tab without a token shows round {shown + 1}")
                        break
                    current = None
                    continue
                expected = {len(rec.acked)}
                if in_flight is not None and in_flight[0] == len(rec.acked):
                    expected.add(len(rec.acked) + 1)  # the pick in flight may have been stored
                welcome = any("Welcome back" in a for a in run.alerts)
                rec.resumes.append({"shown": shown, "expected": sorted(expected), "acked": len(rec.acked),
                                    "welcome": welcome})
                if shown not in expected:
                    s.error("resume", f"after the restart the page shows round {shown} (0-based), expected "
                                      f"{sorted(expected)} with {len(rec.acked)} acknowledged picks")
                    break
                if rec.acked and not welcome:
                    s.error("resume", "after the restart the page does not say 'Welcome back'")
                if in_flight is not None and shown == in_flight[0] + 1:
                    in_flight = None  # stored, though never acknowledged: the page moved on
                current = shown
        rec.finished = current == n
    except LoadError as exc:
        s.error("disconnect" if "closed" in str(exc) else "timeout" if "timeout" in str(exc) else "flow", str(exc))
    except (OSError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
        s.error("connect", f"{type(exc).__name__}: {exc}")
    finally:
        rec.query_string = s.query_string
        await s.close()


async def warm_up(base: str, timeout: float) -> None:
    """Open the quiz page once, as the teacher would before the class: the first run imports the app."""
    s = Student(-1, base, timeout, False, False, [])
    try:
        await s.connect()
        await s.rerun("warm-up", page_hash="", page_name="quiz")
    finally:
        await s.close()


async def run_class(opts: QuizOptions, server: RestartableServer, code: str) -> tuple[list[StudentRecord], list, float]:
    errors: list[dict] = []
    records = [StudentRecord(i) for i in range(opts.students)]
    t0 = time.monotonic()
    tasks = [asyncio.create_task(quiz_student(i, opts, server.base, code, errors, records[i],
                                              opts.ramp * i / max(1, opts.students - 1)))
             for i in range(opts.students)]

    async def killer() -> None:
        for at in sorted(opts.kill_at):
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
            if all(t.done() for t in tasks):
                return
            await asyncio.to_thread(server.kill9_and_restart)
        for votes in sorted(opts.kill_after_votes):
            while sum(len(r.acked) for r in records) < votes:
                if all(t.done() for t in tasks):
                    return
                await asyncio.sleep(0.02)
            await asyncio.to_thread(server.kill9_and_restart)

    kill_task = asyncio.create_task(killer())
    await asyncio.gather(*tasks)
    kill_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await kill_task
    return records, errors, time.monotonic() - t0


def check_store(store_target: str, code: str, records: list[StudentRecord]) -> dict:
    """What the database holds against what the pages acknowledged."""
    from store import open_store

    lost, unexplained, tokens, stored_unacked = [], [], set(), 0
    with open_store(store_target) as store:
        for rec in records:
            token = (parse_qs(rec.query_string).get("voter") or [""])[0]
            if not token:
                lost.append({"student": rec.idx, "detail": "no token in the page address"})
                continue
            tokens.add(token)
            stored = store.picks(code, token)
            for index, choice in rec.acked.items():
                if stored.get(index) != choice:
                    lost.append({"student": rec.idx, "round": index, "acked": choice, "stored": stored.get(index)})
            extra = {i: c for i, c in stored.items() if i not in rec.acked}
            allowed = dict(rec.in_flight_at_crash)
            for index, choice in extra.items():
                if allowed.get(index) != choice:
                    unexplained.append({"student": rec.idx, "round": index, "stored": choice})
                else:
                    stored_unacked += 1
        from teach.quiz import summarize

        summary = summarize(store, code)
        joined = store.joined(code)
        votes = store.votes(code)
    integrity = "n/a"
    if "://" not in store_target:
        with contextlib.closing(sqlite3.connect(store_target)) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return {
        "acknowledged_votes": sum(len(r.acked) for r in records),
        "stored_votes": len(votes),
        "lost_acknowledged": lost,
        "unexplained_stored": unexplained,
        "stored_in_flight_unacknowledged": stored_unacked,
        "distinct_tokens": len(tokens),
        "joined": joined,
        "people_on_dashboard": summary.n_voters,
        "duplicate_rows": len(votes) - len({(v.round_index, v.voter_id) for v in votes}),
        "integrity": integrity,
    }


def prepare_session(store_target: str, n_rounds: int, nets: bool, seed: int = 1234,
                    kind: str = "2afc") -> tuple[str, float]:
    """Create the session (``kind``: ``"2afc"`` or ``"jnd"``) and prepare every round as the server's
    background thread does; returns (code, seconds per round). ``nets=False``: PSNR and SSIM only,
    no network at all."""
    from core.lpips.engine import Engine
    from store import open_store
    from teach.preparation import RoundPreparer

    with open_store(store_target) as store:
        code, _key = store.create_session("Quiz load test", n_rounds=n_rounds, seed=seed, kind=kind)
        engines = {net: Engine(net, "0.1", True, "cpu") for net in ("alex", "vgg")} if nets else {}
        preparer = RoundPreparer(store, nice=0)
        started = time.monotonic()
        preparer.submit(code, seed, n_rounds, engines, max_side=int(os.environ.get("LPIPS_EXPLORER_QUIZ_SIDE", "256")),
                        others=None if nets else ("psnr", "ssim"), kind=kind)
        status = preparer.wait(code, timeout=3600)
        preparer.close()
        if status is None or status.error or status.ready < n_rounds:
            raise RuntimeError(f"preparing the rounds failed: {status}")
        return code, (time.monotonic() - started) / n_rounds


def run_quiz_class(opts: QuizOptions, *, postgres: bool = False, nets: bool = True, env: dict | None = None,
                   keep_log: str | None = None, store_target: str | None = None) -> dict:
    """Prepare a session, start a server, run the class (with the kills), check the store; the report.
    ``store_target``: an existing database (SQLite path or PostgreSQL URL) instead of a new one."""
    with tempfile.TemporaryDirectory(prefix="lpips-quiz-") as tmp, contextlib.ExitStack() as stack:
        if store_target is not None:
            postgres = "://" in store_target
        elif postgres:
            sys.path.insert(0, str(ROOT / "tests"))
            from pg_server import PostgresServer

            pg = PostgresServer().start()
            stack.callback(pg.stop)
            store_target = pg.create_database()
        else:
            store_target = str(Path(tmp) / "quiz.sqlite3")
        code, prep_s = prepare_session(store_target, opts.rounds, nets, kind=opts.kind)
        server = RestartableServer({**(env or {}), "LPIPS_EXPLORER_QUIZ_DB": store_target}, Path(tmp))
        load_start = os.getloadavg()
        server.start()
        asyncio.run(warm_up(server.base, opts.timeout))
        cpu_before = server.cpu_now()  # start-up and the first page run's imports excluded
        try:
            records, errors, wall = asyncio.run(run_class(opts, server, code))
            class_cpu = server.cpu_now() - cpu_before
        finally:
            server.stop()
            log = server.log_text()
            if keep_log:
                Path(keep_log).write_text(log)
        checks = check_store(store_target, code, records)
    tracebacks = log.count("Traceback (most recent call last)")
    # An image being downloaded when the server is killed fails as it would in a browser (which then
    # reloads the page with the dropped websocket): with kills, a refused or reset image download is
    # reported apart, as what the kill cut, not as an error of the server.
    cut = [e for e in errors if (opts.kill_at or opts.kill_after_votes) and e["kind"] == "media"
           and any(w in e["detail"] for w in ("Connection refused", "Connection reset", "Remote end closed"))]
    errors = [e for e in errors if e not in cut]
    by_kind: dict[str, int] = {}
    for e in errors:
        by_kind[e["kind"]] = by_kind.get(e["kind"], 0) + 1
    resumes = [r for rec in records for r in rec.resumes]
    report = {
        "students": opts.students, "rounds": opts.rounds, "think_s": opts.think, "kind": opts.kind,
        "kill_at_s": list(opts.kill_at) + [f"{v} votes" for v in opts.kill_after_votes],
        "store": "postgresql" if postgres else "sqlite", "nets": nets,
        "prepare_s_per_round": round(prep_s, 2),
        "wall_s": round(wall, 1),
        "errors": len(errors) + tracebacks, "errors_by_kind": {**by_kind, **({"server_traceback": tracebacks}
                                                                            if tracebacks else {})},
        "error_samples": errors[:10],
        "media_cut_by_kill": len(cut),
        "finished_students": sum(r.finished for r in records),
        "pick_to_saved_ms": summarize([v for r in records for v in r.pick_ms]),
        "next_to_round_ms": summarize([v for r in records for v in r.next_ms]),
        "server_restarts_s": server.restart_s,
        "server_cpu_s": round(class_cpu, 1),
        "server_cpu_ms_per_click": round(1000 * class_cpu / max(1, sum(len(r.pick_ms) + len(r.next_ms) + 1
                                                                         for r in records)), 1),
        "reconnects": len(resumes),
        "resumed_at_expected_round": sum(r["shown"] in r["expected"] for r in resumes),
        "double_clicks": sum(r.double_clicks for r in records),
        "loadavg_start": [round(x, 2) for x in load_start], "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        **checks,
        "records": [rec.__dict__ for rec in records],
    }
    report["ok"] = (report["errors"] == 0 and not checks["lost_acknowledged"] and not checks["unexplained_stored"]
                    and checks["duplicate_rows"] == 0 and checks["people_on_dashboard"] == opts.students
                    and checks["joined"] == opts.students and checks["integrity"] in ("ok", "n/a"))
    return report


def print_quiz_report(rep: dict) -> None:
    def ms(stats: dict, key: str) -> str:
        return "–" if stats.get(key) is None else f"{stats[key]:.0f} ms"

    print()
    print(f"LPIPS Explorer quiz class: {rep['students']} students × {rep['rounds']} {rep['kind'].upper()} rounds "
          f"({rep['store']}), "
          f"think {rep['think_s']} s, kills at {rep['kill_at_s'] or 'none'}")
    pick, nxt = rep["pick_to_saved_ms"], rep["next_to_round_ms"]
    what = "both LPIPS nets and every registered metric" if rep["nets"] else "PSNR, SSIM only"
    rows = [
        ("rounds prepared ahead", f"{rep['prepare_s_per_round']} s per round ({what})"),
        ("wall time", f"{rep['wall_s']} s; load average {rep['loadavg_start']} → {rep['loadavg_end']}"),
        ("errors (target 0)", f"{rep['errors']} {rep['errors_by_kind'] or ''}"
                              + (f"; image downloads cut by a kill: {rep['media_cut_by_kill']}"
                                 if rep['media_cut_by_kill'] else "")),
        ("students finished", f"{rep['finished_students']} / {rep['students']}"),
        ("pick → 'saved' on the page",
         f"p50 {ms(pick, 'p50')}, p95 {ms(pick, 'p95')}, max {ms(pick, 'max')} (n={pick.get('n', 0)})"),
        ("'Next round' → round shown", f"p50 {ms(nxt, 'p50')}, p95 {ms(nxt, 'p95')}, max {ms(nxt, 'max')}"),
        ("server CPU for the class", f"{rep['server_cpu_s']} s, about {rep['server_cpu_ms_per_click']} ms per click "
                                     "(join, pick, next; restarts' start-up included)"),
        ("server kill -9 → healthy again", f"{rep['server_restarts_s']} s"),
        ("reconnects, at the expected round", f"{rep['reconnects']}, {rep['resumed_at_expected_round']}"),
        ("votes acknowledged / stored", f"{rep['acknowledged_votes']} / {rep['stored_votes']}; lost acknowledged: "
                                        f"{len(rep['lost_acknowledged'])}; stored, not explained: "
                                        f"{len(rep['unexplained_stored'])}"),
        ("double clicks, duplicate rows", f"{rep['double_clicks']}, {rep['duplicate_rows']}"),
        ("people: tokens / joined / dashboard",
         f"{rep['distinct_tokens']} / {rep['joined']} / {rep['people_on_dashboard']}"),
        ("SQLite integrity", rep["integrity"]),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    for e in rep["error_samples"]:
        print(f"  ! s{e['session']} {e['kind']}: {e['detail']}")
    for item in rep["lost_acknowledged"][:5] + rep["unexplained_stored"][:5]:
        print(f"  ! {item}")
