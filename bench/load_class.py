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

The script starts the app itself (``streamlit run views/app.py`` on a free loopback port) with
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

from bench.class_client import (  # noqa: E402
    CODE_KEY,
    LoadError,
    PICK_KEY,
    QUIZ_PATH,
    ROOT,
    Run,
    SLIDER_KEY,
    Student,
    cpu_seconds,
    fmt,
    free_port,
    percentile,
    sample_memory,
    start_server,
    stop_server,
    summarize,
    thread_cpu,
)


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
    parser.add_argument("--quiz-kind", choices=("2afc", "jnd"), default="2afc",
                        help="with --quiz-rounds: the session's question, 2AFC (default) or JND (same or different?)")
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
                           double_click_round=args.double_click_round, verbose=args.verbose, kind=args.quiz_kind)
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
