"""One hostile student cannot disturb the class (issue #27).

A websocket client (tests/hostile_client.py, on bench/class_client.py's protocol code) sends a
real server, on a loopback port, what no page offers: unknown options, out-of-range and
non-finite numbers, megabytes of text, malformed component events, the "Clear cache" message,
session after session. Each test checks that the sender gets no exception box and keeps a
working page, that another tab keeps working, and that nothing is stored that should not be.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import unicodedata

import hypothesis_profiles  # noqa: F401  (40 examples in make test, 600 in make fuzz)
import pytest
from hypothesis import given, strategies as st

from bench.class_client import proc_status
from tests.browser import ROOT, running_app
from tests.hostile_client import Tab, component_event, state, trigger


SESSIONS_PER_HOUR = 3
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    env = {"LPIPS_EXPLORER_QUIZ_DB": str(folder / "quiz.sqlite3"), "LPIPS_EXPLORER_QUIZ_SIDE": "64",
           "LPIPS_EXPLORER_QUIZ_SESSIONS_PER_HOUR": str(SESSIONS_PER_HOUR),
           "LPIPS_EXPLORER_QUIZ_MAX_PREPARING": "8",
           "LPIPS_EXPLORER_COUNT_FILE": str(folder / "computed.txt")}
    with running_app(env=env, timeout=180) as (url, proc, _):
        info = {"url": url, "proc": proc, "db": folder / "quiz.sqlite3", "count": folder / "computed.txt"}
        yield info
        report(info)


def rss_gib(proc) -> float:
    return proc_status(proc.pid).get("VmRSS", 0) / 2**20


def report(info: dict) -> None:
    """The figures docs/reliability-and-security.md quotes, in tests/artifacts/hostile.json."""
    if ARTIFACTS.is_dir() and "rss_start" in info:
        ARTIFACTS.joinpath("hostile.json").write_text(json.dumps(
            {"messages_sent": Tab.sent, "rss_gib_after_first_page": round(info["rss_start"], 3),
             "rss_gib_at_end": round(info.get("rss_end", 0.0), 3),
             "property_messages": info.get("property_messages"),
             "rss_gib_before_and_after_property": [round(r, 3) for r in info.get("rss_property", [])]}, indent=2))


def run(coro):
    return asyncio.run(coro)


def sessions(db) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as con:
        return con.execute("SELECT code, title FROM sessions ORDER BY created").fetchall()


def computations(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


async def explore(url: str) -> Tab:
    tab = Tab(url)
    run_ = await tab.open("")
    assert any(k.startswith("LPIPS") for k in run_.metrics), run_.metrics
    assert tab.take_problems() == []
    return tab


async def still_works(tab: Tab, sigma: float) -> str:
    """A move a person can make: the LPIPS card is computed again, with no error, for this tab."""
    run_ = await tab.send(f"sigma {sigma}", widgets=[state(tab.widgets["dist.0.sigma"].id, "double_array_value",
                                                            [sigma])])
    assert tab.take_problems() == []
    card = next((v for k, v in run_.metrics.items() if k.startswith("LPIPS")), None)
    assert card is not None, run_.metrics
    return card


def option(tab: Tab, key: str, starts: str) -> str:
    return next(o for o in tab.options[key] if o.startswith(starts))


def step_count(tab: Tab, run_) -> int:
    return sum(1 for t in run_.texts if t.startswith("**") and ". " in t[:8])


# ---------------------------------------------------------------------------------------------
# Values the page never offers, read by the app's own code.
# ---------------------------------------------------------------------------------------------

def test_chain_editor_ignores_choices_it_never_offers(server):
    async def scenario():
        tab, other = await explore(server["url"]), await explore(server["url"])
        server.setdefault("rss_start", rss_gib(server["proc"]))
        add, choice = tab.widgets["chain.add"].id, tab.widgets["chain.add_choice"].id
        for name in ("JPEG", "Down- and upsampling"):  # a person adds two steps with choices
            await tab.send(f"add {name}", widgets=[state(choice, "string_value", option(tab, "chain.add_choice", name))],
                           triggers=[trigger(add)])
        assert tab.take_problems() == []
        before = sorted(k for k in tab.widgets if k.startswith("dist."))
        assert "dist.1.subsampling" in before and "dist.2.method" in before
        steps = step_count(tab, await tab.send("look"))
        hostile = [
            ("unknown name", [state(choice, "string_value", "no_such_distortion")], [trigger(add)]),
            ("index past the end", [state(choice, "int_value", 10_000)], [trigger(add)]),
            ("a 1 MB name", [state(choice, "string_value", "x" * 1_000_000)], [trigger(add)]),
            ("unknown JPEG subsampling", [state(tab.widgets["dist.1.subsampling"].id, "string_value", "4:1:1")], []),
            ("unknown resample method", [state(tab.widgets["dist.2.method"].id, "string_value", "lanczos")], []),
            ("quality far past its range", [state(tab.widgets["dist.1.quality"].id, "double_array_value", [1e300])], []),
            ("seed past its range", [state(tab.widgets["chain.seed"].id, "double_value", 1e30)], []),
            ("negative seed", [state(tab.widgets["chain.seed"].id, "int_value", -5)], []),
        ]
        for label, widgets, triggers in hostile:
            run_ = await tab.send(label, widgets=widgets, triggers=triggers, keep=False)
            assert tab.take_problems() == [], label
            assert any(k.startswith("LPIPS") for k in run_.metrics), label
            assert step_count(tab, run_) == steps, f"{label}: the chain changed"
        await still_works(tab, 3.0)
        await still_works(other, 2.5)
        assert sessions(server["db"]) == []
        await tab.close()
        await other.close()

    run(scenario())


def test_look_closer_ignores_malformed_region_events(server):
    async def scenario():
        tab = await explore(server["url"])
        await tab.send("open the viewer", widgets=[state(tab.widgets["view.closer"].id, "bool_value", True)])
        assert tab.take_problems() == []
        viewer = tab.widgets["closer"].id
        hostile = ["a string", float("nan"), [1, 2, 3, 4], None, 7,
                   {"x0": "a", "y0": 0, "x1": 10, "y1": 10}, {"x0": float("nan"), "y0": 0, "x1": 10, "y1": 10},
                   {"x0": 0, "y0": 0, "x1": float("inf"), "y1": 10}, {"x0": 0, "y0": 0},
                   {"x0": 10**12, "y0": 0, "x1": 10**13, "y1": 10}, {"x0": -64, "y0": -64, "x1": 0, "y1": 0},
                   {"x0": 5, "y0": 5, "x1": 6, "y1": 6}, {"x0": True, "y0": 0, "x1": 64, "y1": 64}]
        for value in hostile:
            run_ = await tab.send(f"region {value!r}", triggers=[component_event(viewer, "region", value)])
            assert tab.take_problems() == [], value
            assert "Patch LPIPS" not in run_.metrics, f"{value!r} was taken for a region"
        for raw in ("not json", "[1, 2", "{}", '[{"event": 5}]', '[{"event": "region"}]', "x" * 1_000_000):
            await tab.send("malformed event", triggers=[component_event(viewer, "region", None, raw=raw)])
            assert tab.take_problems() == [], raw[:40]
        run_ = await tab.send("region side never offered",
                              widgets=[state(tab.widgets["region.side"].id, "string_array_value", ["999"])], keep=False)
        assert tab.take_problems() == []
        # A region a person picks still works afterwards.
        run_ = await tab.send("a real pick", triggers=[component_event(viewer, "region", {"x0": 0, "y0": 0, "x1": 64,
                                                                                          "y1": 64})])
        assert tab.take_problems() == []
        assert "Patch LPIPS" in run_.metrics
        await tab.close()

    run(scenario())


# ---------------------------------------------------------------------------------------------
# Every Explore widget × generated values of the widget's own protobuf type.
# ---------------------------------------------------------------------------------------------

#: The Explore widgets on the first screen and the protobuf field Streamlit reads for each.
EXPLORE_WIDGETS = {
    "source.kind": "string_array_value", "source.sample": "string_value", "compare.mode": "string_array_value",
    "settings.net": "string_value", "settings.version": "string_value", "settings.ssim_mode": "string_value",
    "settings.device": "string_value", "settings.max_side": "string_array_value",
    "settings.metrics": "string_array_value", "settings.calibrated": "bool_value",
    "dist.0.sigma": "double_array_value", "chain.seed": "double_value", "chain.add_choice": "string_value",
    "view.opacity": "double_array_value", "view.overlay": "bool_value", "view.reference": "bool_value",
}
odd_text = st.one_of(st.text(max_size=40), st.sampled_from(["", "\x00", "\u202e", "x" * 100_000, "../../etc",
                                                            "<script>alert(1)</script>", "VGG16 ", "None"]))
finite = st.floats(allow_nan=False, allow_infinity=False)
VALUES = {
    "string_value": odd_text,
    "string_array_value": st.lists(odd_text, max_size=4),
    "double_array_value": st.lists(finite, min_size=1, max_size=3),
    "double_value": finite,
    "bool_value": st.booleans(),
}


@pytest.fixture(scope="module")
def explorer(server):
    """One tab that takes every generated value in turn (Hypothesis calls the test many times)."""
    loop = asyncio.new_event_loop()
    tab = loop.run_until_complete(explore(server["url"]))
    server["rss_property"], sent = [rss_gib(server["proc"])], Tab.sent
    yield loop, tab
    server["rss_property"].append(rss_gib(server["proc"]))
    server["property_messages"] = Tab.sent - sent
    loop.run_until_complete(tab.close())
    loop.close()


@given(data=st.data())
def test_any_value_of_the_right_type_for_any_explore_widget(explorer, data):
    loop, tab = explorer
    key = data.draw(st.sampled_from(sorted(EXPLORE_WIDGETS)), label="widget")
    field = EXPLORE_WIDGETS[key]
    offered = set(tab.options.get(key, ()))
    value = data.draw(VALUES[field].filter(lambda v: not (set(v) & offered if isinstance(v, list) else v in offered)),
                      label="value")
    widget = tab.widgets[key]
    triggers = [trigger(tab.widgets["chain.add"].id)] if key == "chain.add_choice" else []
    run_ = loop.run_until_complete(tab.send(f"{key}={value!r:.40}", widgets=[state(widget.id, field, value)],
                                            triggers=triggers, keep=False))
    assert tab.take_problems() == [], (key, value)
    # The page keeps working for this tab: its next run (the hostile value no longer sent)
    # computes the LPIPS card again, with no error.
    after = loop.run_until_complete(tab.send("after"))
    assert tab.take_problems() == [], (key, value)
    assert any(k.startswith("LPIPS") for k in after.metrics) or any(k.startswith("LPIPS") for k in run_.metrics), \
        (key, value, run_.kinds, after.kinds)


# ---------------------------------------------------------------------------------------------
# What Streamlit itself does with values of the wrong protobuf type (documented, not fixed).
# ---------------------------------------------------------------------------------------------

def test_values_streamlit_cannot_read_break_only_the_senders_page(server):
    async def scenario():
        hostile = [("settings.net", "int_value", 3), ("settings.max_side", "double_array_value", [512.0]),
                   ("chain.seed", "double_value", float("nan")), ("chain.seed", "string_value", "seven"),
                   (None, "string_value", "an id Streamlit never gave")]
        other = await explore(server["url"])
        for key, field, value in hostile:
            tab = await explore(server["url"])
            widget_id = tab.widgets[key].id if key else "x" * 10_000
            await tab.send(f"{key} as {field}", widgets=[state(widget_id, field, value)])
            # Whatever Streamlit does with it happens in this tab only: the other keeps working...
            await still_works(other, 1.0 + len(key or "") / 10)
            tab.take_problems()
            await tab.close()
            # ...and the sender's next visit (a reload: a new session) works too.
            again = await explore(server["url"])
            await still_works(again, 4.0)
            await again.close()
        assert server["proc"].poll() is None
        await other.close()

    run(scenario())


def test_protocol_messages_a_page_never_sends_do_not_stop_the_server(server):
    """Development-mode messages, unknown pages and fragments, state for widgets that do not exist:
    the server stays up and another tab keeps working."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    async def scenario():
        other, tab = await explore(server["url"]), await explore(server["url"])
        for field in ("debug_shutdown_runtime", "debug_disconnect_websocket"):
            back = BackMsg()
            setattr(back, field, True)
            await tab.send_raw(back)
        await tab.send("unknown page", page_hash="", page_name="../../etc/passwd" + "x" * 10_000)
        # Streamlit answers an unknown fragment with nothing at all: sent, not waited for.
        await tab.send_only("no-such-fragment", ())
        Tab.sent += 1
        await tab.send("unknown widget", widgets=[state("$$ID-0-nothing", "string_value", "x" * 1_000_000),
                                                  state("$$ID-1-nothing", "double_array_value", [math.nan] * 1000)],
                       keep=False)
        assert all(p["kind"] != "exception" for p in tab.take_problems())
        await still_works(other, 7.5)
        assert server["proc"].poll() is None
        await tab.close()
        await other.close()

    run(scenario())


# ---------------------------------------------------------------------------------------------
# Shared state.
# ---------------------------------------------------------------------------------------------

def test_clear_cache_message_leaves_what_other_students_use(server):
    async def scenario():
        student, hostile = await explore(server["url"]), await explore(server["url"])
        await still_works(student, 6.5)
        before = computations(server["count"])
        for _ in range(5):
            await hostile.clear_cache()
        await hostile.send("after clearing")  # the message is handled before this rerun
        # The same setting again: served from the shared cache, not computed again.
        await still_works(student, 6.5)
        assert computations(server["count"]) == before
        assert hostile.take_problems() == []
        await student.close()
        await hostile.close()

    run(scenario())


def test_quiz_sessions_titles_and_addresses(server):
    async def scenario():
        teacher = Tab(server["url"])
        await teacher.open("quiz")
        await teacher.send("teacher", widgets=[state(teacher.widgets["quiz.role"].id, "string_array_value",
                                                     ["The teacher"])])
        title, rounds = teacher.widgets["quiz.title"].id, teacher.widgets["quiz.rounds"].id
        submit = teacher.widgets["FormSubmitter:quiz.create-Create session"].id

        async def create(text: str):
            run_ = await teacher.send("create", widgets=[state(title, "string_value", text),
                                                         state(rounds, "double_value", 1)], triggers=[trigger(submit)])
            return run_

        # Only control characters: nothing left to show, a message that says what to do, nothing stored.
        await create("\x00\x1b\u202e\u2066\n\t")
        problems = teacher.take_problems()
        assert len(problems) == 1 and "title must be text of 1 to 200" in problems[0]["detail"], problems
        assert sessions(server["db"]) == []
        # A megabyte of title: Streamlit keeps the text box's first 200 characters (max_chars).
        await create("x" * 1_000_000)
        assert teacher.take_problems() == []
        assert [len(t) for _, t in sessions(server["db"])] == [200]
        # Control and bidi characters never reach the store, hence never another screen.
        evil = "Week\x00 3\x1b[2J \u202eevil\u2066 quiz\n\ttwo" + "e" + "\u0301" * 50
        await create(evil)
        assert teacher.take_problems() == []
        stored = sessions(server["db"])
        assert len(stored) == 2
        code, shown = stored[-1]
        assert not any(unicodedata.category(c)[0] == "C" for c in shown), shown
        assert shown.startswith("Week 3[2J evil quiz two")
        # A student sees the cleaned title.
        student = Tab(server["url"], idx=1)
        await student.open("quiz")
        run_ = await student.send("join", widgets=[state(student.widgets["quiz.code"].id, "string_value", code)])
        assert any("Week 3" in t for t in run_.texts)
        assert not any("\x1b" in t or "\u202e" in t for t in run_.texts)
        student.take_problems()
        # Hostile addresses: a megabyte of code or token, odd characters; a message or a new token.
        for query in (f"code={'A' * 1_000_000}", f"code={code}&voter={'v' * 100_000}", "code=%00%1b&voter=%e2%80%ae"):
            visitor = Tab(server["url"], idx=2)
            visitor.query_string = query
            await visitor.open("quiz")
            assert all(p["kind"] != "exception" for p in visitor.take_problems()), query
            await visitor.close()
        # At most SESSIONS_PER_HOUR creations per address: then a message, and nothing stored.
        for n in range(SESSIONS_PER_HOUR - 2):
            await create(f"Quiz {n}")
            assert teacher.take_problems() == []
        run_ = await create("One too many")
        assert teacher.take_problems() == []
        assert any("sessions in the last hour" in a for a in run_.alerts), run_.alerts
        assert len(sessions(server["db"])) == SESSIONS_PER_HOUR
        await teacher.close()
        await student.close()

    run(scenario())


def test_jnd_answers_and_teacher_addresses(server):
    """A JND session: both answers sent at once, answers before the pair was shown, a 2AFC answer;
    one vote at most, no exception. Teachers' addresses with a megabyte of key, odd characters or a
    wrong key: a message, no results, no exception; the right one opens the dashboard."""
    from store import QuizStore
    from teach.preparation import prepare_round

    with QuizStore(server["db"]) as store:
        code, key = store.create_session("JND under fire", n_rounds=2, seed=43, kind="jnd")
        for index in range(2):
            store.save_round(code, prepare_round(43, index, engines={}, max_side=64, others=("psnr",), kind="jnd"))

    async def scenario():
        student = Tab(server["url"], idx=3)
        await student.open("quiz")
        await student.send("join", widgets=[state(student.widgets["quiz.code"].id, "string_value", code)])
        assert student.take_problems() == []
        show = student.widgets["quiz.jnd.show"].id
        await student.send("show", triggers=[trigger(show)], fragment=False)
        assert student.take_problems() == []
        same, different = student.widgets["quiz.jnd.same"].id, student.widgets["quiz.jnd.different"].id
        run_ = await student.send("both at once", triggers=[trigger(same), trigger(different)])
        problems = student.take_problems()
        assert all(p["kind"] != "exception" for p in problems), problems
        with QuizStore(server["db"]) as store:
            votes = store.votes(code)
        assert len(votes) == 1 and votes[0].choice in ("same", "different"), votes
        assert any("saved" in t for t in run_.texts) or problems, run_.texts
        await student.close()

        for query in (f"dash={code}&key={'k' * 1_000_000}", f"dash={'A' * 100_000}&key={key}",
                      "dash=%00%1b&key=%e2%80%ae", f"dash={code}&key={key[:-1]}x"):
            visitor = Tab(server["url"], idx=4)
            visitor.query_string = query
            run_ = await visitor.open("quiz")
            problems = visitor.take_problems()
            assert all(p["kind"] != "exception" for p in problems), (query[:40], problems)
            assert not any("judgment" in t for t in run_.texts), query[:40]
            await visitor.close()
        teacher = Tab(server["url"], idx=4)
        teacher.query_string = f"dash={code}&key={key}"
        run_ = await teacher.open("quiz")
        assert teacher.take_problems() == []
        assert any("1 judgment from 1 person" in t for t in run_.texts), run_.texts
        await teacher.close()

    run(scenario())


def test_class_fit_panel_takes_only_what_it_offers(server):
    """The dashboard's "Fit LPIPS to this class": choices it never offers, a start while a fit runs,
    and "use in Explore" before any fit: messages for the sender, one fit at most, the server up."""
    from store import QuizStore
    from teach.preparation import prepare_round

    with QuizStore(server["db"]) as store:  # a class of 6 small voted rounds, made beside the server
        code, key = store.create_session("Fit", n_rounds=6, seed=7)
        for index in range(6):
            store.save_round(code, prepare_round(7, index, engines={}, max_side=96, others=("psnr",)))
        token = store.join(code)
        for index in range(6):
            store.cast_vote(code, token, index, "AB"[index % 2])

    async def scenario():
        teacher = Tab(server["url"], idx=3)
        await teacher.open("quiz")
        await teacher.send("teacher", widgets=[state(teacher.widgets["quiz.role"].id, "string_array_value",
                                                     ["The teacher"])])
        run_ = await teacher.send("dashboard", widgets=[state(teacher.widgets["quiz.dash.code"].id, "string_value", code),
                                                        state(teacher.widgets["quiz.dash.key"].id, "string_value", key)])
        assert teacher.take_problems() == []
        assert "classfit.start" in teacher.widgets, run_.texts
        # "Use in Explore" before any fit exists: the button is not there; its id triggered anyway does nothing.
        await teacher.send("explore first", triggers=[trigger("$$ID-0-classfit.explore")])
        assert all(p["kind"] != "exception" for p in teacher.take_problems())
        # Choices never offered, then the start: no traceback; at most a message for this tab.
        for key_, value in (("classfit.net", "squeeze"), ("classfit.init", "../../etc"), ("classfit.length", "x" * 10_000)):
            await teacher.send(f"{key_} odd", widgets=[state(teacher.widgets[key_].id, "string_value", value)],
                               triggers=[trigger(teacher.widgets["classfit.start"].id)], keep=False)
            assert all(p["kind"] != "exception" for p in teacher.take_problems()), key_
        # Ten starts in a row while it runs: one fit, which finishes and shows its scores.
        for _ in range(10):
            await teacher.send("start", triggers=[trigger(teacher.widgets["classfit.start"].id)])
        assert all(p["kind"] != "exception" for p in teacher.take_problems())
        deadline = asyncio.get_running_loop().time() + 240
        while True:
            run_ = await teacher.send("poll")
            if any(t.startswith("Held out: rounds") for t in run_.texts) or \
                    asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(1.0)
        assert any(t.startswith("Held out: rounds") for t in run_.texts), (run_.texts, run_.progress)
        assert teacher.take_problems() == []
        await teacher.close()
        assert server["proc"].poll() is None

    run(scenario())


def test_server_survives_and_memory_stays_bounded(server):
    """Last: the server is alive, answers a new tab, and did not grow without bound."""
    rss = server["rss_end"] = rss_gib(server["proc"])
    assert server["proc"].poll() is None
    assert 0 < rss < 4.0, f"{rss:.2f} GiB"

    async def scenario():
        tab = await explore(server["url"])
        await still_works(tab, 5.0)
        await tab.close()

    run(scenario())
