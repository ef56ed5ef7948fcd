"""The checks on what a browser sends (views/browser_input.py), the shared-work limits
(views/class_limits.py, RoundPreparer's bound) and the title cleaner (store.clean_title).
The same classes of hostile values against a real server: tests/test_hostile_client.py."""

from __future__ import annotations

import math
import threading
import unicodedata

import hypothesis_profiles  # noqa: F401  (40 examples in make test, 600 in make fuzz)
import pytest
from hypothesis import given, strategies as st

from store import QuizBusyError, QuizInputError, clean_title, open_store
from teach.preparation import RoundPreparer
from views import browser_input as bi
from views import class_limits

ANY = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
                st.lists(st.integers(), max_size=4), st.dictionaries(st.text(max_size=4), st.integers(), max_size=4))


# ---------------------------------------------------------------------------------------------
# The checks.
# ---------------------------------------------------------------------------------------------

def test_choice_takes_only_an_offered_option_of_the_same_type():
    assert bi.choice("4:2:0", ("4:2:0", "4:4:4")) == "4:2:0"
    for bad in ("4:1:1", "", None, 0, ["4:2:0"], "x" * 1_000_000):
        with pytest.raises(bi.BAD_INPUT):
            bi.choice(bad, ("4:2:0", "4:4:4"))
    with pytest.raises(bi.BAD_INPUT):  # True == 1 in Python; not an option a person picked
        bi.choice(True, (1, 2))
    with pytest.raises(bi.BAD_INPUT):
        bi.choice(64.0, (16, 64))


def test_number_takes_finite_numbers_in_range_only():
    assert bi.number(3, 0, 10) == 3.0 and bi.number(3.0, 0, 10, integer=True) == 3
    assert isinstance(bi.number(3.0, 0, 10, integer=True), int)
    for bad in (math.nan, math.inf, -math.inf, -1, 11, 1e300, "3", None, True, [3], 2.5):
        with pytest.raises(bi.BAD_INPUT):
            bi.number(bad, 0, 10, integer=True)


def test_region_takes_whole_coordinates_inside_the_image_only():
    assert bi.region({"x0": 0, "y0": 0, "x1": 64, "y1": 32}, 100, 50) == (0, 0, 64, 32)
    assert bi.region({"x0": 1.0, "y0": 2.0, "x1": 100, "y1": 50, "extra": "ignored"}, 100, 50) == (1, 2, 100, 50)
    for bad in ("region", math.nan, [0, 0, 64, 64], None, 7, {"x0": 0, "y0": 0},
                {"x0": "0", "y0": 0, "x1": 64, "y1": 32}, {"x0": math.nan, "y0": 0, "x1": 64, "y1": 32},
                {"x0": 0, "y0": 0, "x1": 101, "y1": 32}, {"x0": -1, "y0": 0, "x1": 64, "y1": 32},
                {"x0": 10, "y0": 0, "x1": 11, "y1": 32}, {"x0": 64, "y0": 0, "x1": 0, "y1": 32},
                {"x0": True, "y0": 0, "x1": 64, "y1": 32}, {"x0": 0.5, "y0": 0, "x1": 64, "y1": 32}):
        with pytest.raises(bi.BAD_INPUT):
            bi.region(bad, 100, 50)


@given(value=st.one_of(ANY, st.fixed_dictionaries({k: ANY for k in ("x0", "y0", "x1", "y1")})))
def test_region_returns_a_box_inside_the_image_or_refuses(value):
    try:
        x0, y0, x1, y1 = bi.region(value, 100, 50)
    except bi.BAD_INPUT:
        return
    assert all(type(v) is int for v in (x0, y0, x1, y1))
    assert 0 <= x0 < x1 <= 100 and 0 <= y0 < y1 <= 50


def test_short_text_limits_length_and_characters():
    assert bi.short_text("K7PQ2M", 12) == "K7PQ2M"
    for bad in ("x" * 13, "K7\x00Q", "\u202eabc", None, 5, ["K7PQ2M"]):
        with pytest.raises(bi.BAD_INPUT):
            bi.short_text(bad, 12)


def test_widget_value_resets_a_refused_value_to_the_last_good_one():
    """A text box stands in for a widget whose value a browser sets freely; the check offers
    "a" and "b" only, as a radio would."""
    from streamlit.testing.v1 import AppTest

    def page():
        import streamlit as st

        from views import browser_input as bi

        st.session_state["seen"] = bi.widget_value("w", lambda v: bi.choice(v, ("a", "b")), "a")
        st.text_input("w", key="w")

    at = AppTest.from_function(page).run()
    assert at.session_state["seen"] == "a" and not at.exception  # no value yet: the default
    at.text_input(key="w").set_value("b").run()
    assert at.session_state["seen"] == "b"
    at.text_input(key="w").set_value("x" * 100_000).run()
    assert at.session_state["seen"] == "b" and at.text_input(key="w").value == "b" and not at.exception
    at.text_input(key="w").set_value("a").run()
    assert at.session_state["seen"] == "a"


# ---------------------------------------------------------------------------------------------
# Titles.
# ---------------------------------------------------------------------------------------------

def test_clean_title_drops_control_and_bidi_characters():
    assert clean_title("  Week 3\x00 quiz\x1b[2J ") == "Week 3 quiz[2J"
    assert clean_title("abc\u202egnp.exe\u2066x\u2069\u200b\ufeff") == "abcgnp.exex"
    assert clean_title("line\nbreak\r\n\ttab\u2028sep") == "line break tab sep"
    assert clean_title("Café ☕ 日本語 😀") == "Café ☕ 日本語 😀"
    assert clean_title("e" + "\u0301" * 40) == "é" + "\u0301" * 4  # NFC makes "é" one letter; 4 marks kept
    assert clean_title("\x00\x1b\u202e\n") == ""


@given(st.text(max_size=300))
def test_clean_title_leaves_nothing_that_moves_other_text(text):
    cleaned = clean_title(text)
    assert not any(unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp") for c in cleaned)
    assert cleaned == cleaned.strip() and "  " not in cleaned
    assert clean_title(cleaned) == cleaned  # cleaning twice changes nothing (titles are cleaned on the way out too)


def test_store_cleans_titles_and_refuses_empty_or_long_ones(tmp_path):
    with open_store(str(tmp_path / "quiz.sqlite3")) as store:
        code, _ = store.create_session("Friday\x00 \u202equiz\n", n_rounds=2, seed=1)
        assert store.session(code).title == "Friday quiz"
        for bad in ("\x00\x1b\u202e", "x" * 201, "\u200b" * 5):
            with pytest.raises(QuizInputError, match="1 to 200 characters"):
                store.create_session(bad, n_rounds=2, seed=1)
        # 200 characters once cleaned is fine, however many control characters came with them.
        code, _ = store.create_session("x" * 200 + "\x00" * 500, n_rounds=2, seed=1)
        assert store.session(code).title == "x" * 200


# ---------------------------------------------------------------------------------------------
# Shared work.
# ---------------------------------------------------------------------------------------------

def test_rate_limit_per_key_in_a_sliding_window():
    limit = class_limits.RateLimit(3, 60)
    assert [limit.allow("a", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limit.allow("b", now=3)
    assert limit.retry_after("a", now=30) == pytest.approx(30)
    assert limit.allow("a", now=60.5) and not limit.allow("a", now=60.6)


def test_rate_limit_forgets_idle_addresses_beyond_its_bound():
    limit = class_limits.RateLimit(1, 10, max_keys=100)
    for i in range(1000):
        assert limit.allow(f"10.0.{i // 256}.{i % 256}", now=20 * i)
    assert len(limit._events) <= 101


class _SlowSink:
    """A sink whose first save blocks until released: the preparation stays busy meanwhile."""

    def __init__(self):
        self.release = threading.Event()
        self.rounds: dict[str, set[int]] = {}

    def prepared_rounds(self, code):
        return sorted(self.rounds.get(code, ()))

    def save_round(self, code, prepared):
        self.release.wait(60)
        self.rounds.setdefault(code, set()).add(prepared.index)
        return True


def test_round_preparer_refuses_more_sessions_than_its_bound():
    sink = _SlowSink()
    preparer = RoundPreparer(sink, max_sessions=2)
    try:
        for code in ("AAAAAA", "BBBBBB"):
            preparer.submit(code, seed=1, n_rounds=1, engines={}, max_side=32, others=("psnr",))
        assert preparer.busy() == 2
        with pytest.raises(QuizBusyError, match="try again"):
            preparer.submit("CCCCCC", seed=1, n_rounds=1, engines={}, max_side=32, others=("psnr",))
        preparer.submit("AAAAAA", seed=1, n_rounds=1, engines={}, max_side=32, others=("psnr",))  # already there: no-op
        assert preparer.status("CCCCCC") is None
        sink.release.set()
        assert preparer.wait("BBBBBB", timeout=60).ready == 1
        preparer.submit("CCCCCC", seed=1, n_rounds=1, engines={}, max_side=32, others=("psnr",))
        assert preparer.wait("CCCCCC", timeout=60).ready == 1
    finally:
        sink.release.set()
        preparer.close()


def test_settings_from_the_environment(monkeypatch, caplog):
    monkeypatch.setenv("LPIPS_EXPLORER_X", "7")
    assert class_limits._setting("LPIPS_EXPLORER_X", 3) == 7
    for bad in ("seven", "0", "-2"):
        monkeypatch.setenv("LPIPS_EXPLORER_X", bad)
        assert class_limits._setting("LPIPS_EXPLORER_X", 3) == 3
    monkeypatch.delenv("LPIPS_EXPLORER_X")
    assert class_limits._setting("LPIPS_EXPLORER_X", 3) == 3


def test_clear_cache_message_clears_only_the_senders_state():
    import streamlit as st
    from streamlit.runtime.app_session import AppSession

    calls = []

    @st.cache_resource
    def shared(x):
        calls.append(x)
        return [x]

    class Sender:
        class _session_state:  # noqa: N801  (stands in for the sender's SessionState)
            cleared = False

            @classmethod
            def clear(cls):
                cls.cleared = True

    assert class_limits.guard_clear_cache() and class_limits.guard_clear_cache()  # idempotent
    shared(1)
    AppSession._handle_clear_cache_request(Sender())
    assert Sender._session_state.cleared
    shared(1)
    assert calls == [1]  # still cached for everyone else


def test_client_address_trusts_a_header_only_when_told(monkeypatch):
    import types

    headers = {"x-forwarded-for": ["203.0.113.9, 10.0.0.7"]}
    context = types.SimpleNamespace(ip_address="192.0.2.4",
                                    headers=types.SimpleNamespace(get_all=lambda k: headers.get(k.lower(), [])))
    monkeypatch.setattr(class_limits, "st", types.SimpleNamespace(context=context))
    monkeypatch.setattr(class_limits, "ADDRESS_HEADER", "")
    assert class_limits.client_address() == "192.0.2.4"  # any client can send the header: not read
    monkeypatch.setattr(class_limits, "ADDRESS_HEADER", "X-Forwarded-For")
    assert class_limits.client_address() == "10.0.0.7"  # the entry the proxy added, not the client's claim
    headers.clear()
    assert class_limits.client_address() == "192.0.2.4"
    context.ip_address = None  # a loopback client
    assert class_limits.client_address() == "loopback"
