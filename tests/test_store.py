"""store: the vote store (sessions, votes, summary, CSV) under stress, on both backends.

Every test of the store's interface runs twice, through the ``store`` fixture: on SQLite
(``[sqlite]``) and on a fresh database of a throwaway PostgreSQL server (``[postgres]``,
tests/pg_server.py). SQLite-specific tests (file paths, WAL, migrations on sqlite3
connections, read-only files, a full disk) take ``store`` on SQLite only; the
PostgreSQL-specific ones (its migrations, connection errors) are at the end.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import math
import multiprocessing
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import wilson_by_formula
from core.distortions import chain_to_dict
from core.errors import LpipsExplorerError
from store import (
    CODE_ALPHABET,
    CSV_COLUMNS,
    TOKEN_LENGTH,
    QuizError,
    QuizInputError,
    QuizRoundNotReadyError,
    QuizSessionNotFoundError,
    QuizStorageError,
    QuizStore,
    QuizTokenError,
    QuizVoteConflictError,
    QuizVoteError,
    base,
    open_store,
)
from store.sqlite import MIGRATIONS, SCHEMA_VERSION, default_db_path, migrate
from teach.preparation import prepare_round
from teach.quiz import make_round, summarize

REPO = Path(__file__).resolve().parents[1]


BACKENDS = ["sqlite", "postgres"]
SQLITE_ONLY = pytest.mark.parametrize("store", ["sqlite"], indirect=True)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path: Path):
    """A fresh, empty store: a SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        with QuizStore(tmp_path / "data" / "quiz.sqlite3") as s:  # the parent folder does not exist yet
            yield s
    else:
        with open_store(request.getfixturevalue("postgres_url")) as s:
            yield s


def is_sqlite(store) -> bool:
    return isinstance(store, QuizStore)


def target(store) -> str:
    """What ``open_store`` takes to open the same database in another process."""
    return str(store.path) if is_sqlite(store) else store.url


def check_integrity(store) -> str:
    """SQLite's integrity check; on PostgreSQL, that no vote is duplicated or orphaned."""
    if is_sqlite(store):
        return integrity(store.path)
    with store._raw() as conn:
        total, distinct, orphans = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT (session_code, round_index, voter_id)), "
            "COUNT(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.code = v.session_code)) "
            "FROM votes v"
        ).fetchone()
    return "ok" if total == distinct and orphans == 0 else f"{total} votes, {distinct} distinct, {orphans} orphans"


def fake_metrics(alex_pick: str = "A", psnr_pick: str = "B") -> dict:
    return {
        "lpips_alex": {"a": 0.2, "b": 0.3, "pick": alex_pick},
        "psnr": {"a": 25.0, "b": 27.5, "pick": psnr_pick},
    }


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def count_votes(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
    finally:
        conn.close()


# --------------------------------------------------------------------------------------
# Sessions and votes
# --------------------------------------------------------------------------------------


def test_default_db_path_is_outside_the_source_tree(monkeypatch, tmp_path):
    monkeypatch.setenv("LPIPS_EXPLORER_DATA", str(tmp_path))
    assert default_db_path() == tmp_path / "quiz.sqlite3"
    monkeypatch.delenv("LPIPS_EXPLORER_DATA")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local" / "share" / "lpips-explorer" / "quiz.sqlite3"
    assert REPO not in default_db_path().parents


def test_create_and_join_session(store):
    code, key = store.create_session("  Friday class ", n_rounds=5, seed=42)
    assert len(code) == 6 and set(code) <= set(CODE_ALPHABET) and not set(code) & set("0O1I")
    assert len(key) >= 20
    info = store.session(f" {code[:3].lower()}-{code[3:].lower()} ")
    assert (info.code, info.title, info.seed, info.n_rounds) == (code, "Friday class", 42, 5)
    assert store.session("ZZZZZZ") is None
    # Only a hash of the key is stored, and the database is configured as documented.
    if is_sqlite(store):
        raw = store.path.read_bytes() + Path(f"{store.path}-wal").read_bytes()
        assert key.encode() not in raw
        conn = store._conn()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    else:
        with store._raw() as conn:
            assert key not in repr(conn.execute("SELECT * FROM sessions").fetchall())
            assert not conn.autocommit
            assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"
            assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    other, _ = store.create_session("Second", seed=None)
    assert other != code and 0 <= store.session(other).seed < 2**32


def test_create_session_validates(store):
    for title, n_rounds, seed in (("", 5, 1), ("x" * 201, 5, 1), ("T", 0, 1), ("T", 501, 1), ("T", 5, -3), (None, 5, 1)):
        with pytest.raises(QuizInputError):
            store.create_session(title, n_rounds, seed)


def test_teacher_key_check_is_constant_time(store, monkeypatch):
    code, key = store.create_session("Class", seed=1)
    calls = []
    real = base.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(base.hmac, "compare_digest", spy)
    assert store.check_teacher_key(code, key)
    assert store.check_teacher_key(code.lower(), f" {key} ")
    assert not store.check_teacher_key(code, key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert not store.check_teacher_key(code, "")
    assert not store.check_teacher_key("ZZZZZZ", key)  # unknown session: same work, False
    assert not store.check_teacher_key(code, None)
    assert len(calls) == 5
    assert all(a.startswith(b"sha256$") and b.startswith(b"sha256$") for a, b in calls)


def test_vote_validation(store):
    code, _ = store.create_session("Class", n_rounds=3, seed=5)
    spec = make_round(5, 1)
    cases = [
        (dict(choice="C"), QuizVoteError, "'A' or 'B'"),
        (dict(choice=None), QuizVoteError, "'A' or 'B'"),
        (dict(round_index=3), QuizVoteError, "rounds 0 to 2"),
        (dict(round_index=-1), QuizVoteError, "rounds 0 to 2"),
        (dict(round_index=True), QuizVoteError, "integer"),
        (dict(voter_id="  "), QuizVoteError, "voter id"),
        (dict(voter_id="x" * 101), QuizVoteError, "voter id"),
        (dict(voter_id="a\nb"), QuizVoteError, "voter id"),
        (dict(spec=make_round(6, 1)), QuizVoteError, "reload the round"),
        (dict(spec=make_round(5, 2)), QuizVoteError, "reload the round"),
        (dict(spec="round 1"), QuizVoteError, "RoundSpec"),
        (dict(metrics={"psnr": {"a": 1.0, "b": 2.0, "pick": "C"}}), QuizVoteError, "pick"),
        (dict(metrics={"psnr": {"a": "x", "b": 2.0, "pick": "A"}}), QuizVoteError, "numeric"),
        (dict(metrics=[1, 2]), QuizVoteError, "score_round"),
        (dict(code="NOPE22"), QuizSessionNotFoundError, "no quiz session"),
    ]
    for change, error, message in cases:
        args = dict(code=code, round_index=1, voter_id="ana", choice="A", spec=spec, metrics=fake_metrics())
        args.update(change)
        with pytest.raises(error, match=message) as info:
            store.record_vote(**args)
        assert isinstance(info.value, QuizError) and isinstance(info.value, LpipsExplorerError)
    assert store.votes(code) == []
    with pytest.raises(QuizSessionNotFoundError):
        store.votes("NOPE22")
    with pytest.raises(QuizSessionNotFoundError):
        summarize(store, "NOPE22")


def test_the_first_pick_stands_a_resend_is_acknowledged_again(store):
    code, _ = store.create_session("Class", n_rounds=2, seed=5)
    spec = make_round(5, 0)
    first = store.record_vote(code, 0, "ana", "a", spec, fake_metrics())  # lower case is fine
    assert [v.choice for v in store.votes(code)] == ["A"]
    again = store.record_vote(code.lower(), 0, " ana ", "A", spec, fake_metrics())  # a re-sent vote
    assert again == first
    with pytest.raises(QuizVoteConflictError, match="already has your pick A; a vote cannot be changed"):
        store.record_vote(code, 0, "ana", "B", spec, fake_metrics())
    (vote,) = store.votes(code)
    assert vote.id == first and vote.choice == "A" and vote.voter_id == "ana"
    assert vote.chain_a == chain_to_dict(spec.chain_a) and vote.sample == spec.sample
    assert vote.metrics == fake_metrics() and vote.seed == 5
    store.record_vote(code, 0, "ben", "B", spec, fake_metrics())
    assert [(v.voter_id, v.choice) for v in store.votes(code)] == [("ana", "A"), ("ben", "B")]


# --------------------------------------------------------------------------------------
# Students' tokens and prepared rounds
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def prepared(seed: int, index: int):
    """A real prepared round, small and without LPIPS (PSNR and SSIM only) to stay fast."""
    return prepare_round(seed, index, engines={}, max_side=48, others=("psnr", "ssim"))


def raw_contents(store) -> bytes:
    """Everything the database holds, as bytes (to prove a secret is not in it)."""
    if is_sqlite(store):
        return store.path.read_bytes() + Path(f"{store.path}-wal").read_bytes()
    with store._raw() as conn:
        return repr([conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("sessions", "voters", "votes")]).encode()


def test_a_token_identifies_one_student_of_one_session(store):
    code, key = store.create_session("Class", n_rounds=3, seed=21)
    ana, ben = store.join(code), store.join(code.lower())
    assert len(ana) == TOKEN_LENGTH and ana != ben and ana != key
    assert ana not in raw_contents(store).decode("latin-1")  # only the token's hash is stored
    assert store.voter(code, ana) != store.voter(code, ben)
    assert store.joined(code) == 2 and store.picks(code, ana) == {}
    assert not store.check_teacher_key(code, ana)  # a student's token never opens the dashboard
    with pytest.raises(QuizSessionNotFoundError):
        store.join("NOPE22")
    assert store.joined(code) == 2


def test_cast_vote_stores_the_prepared_round_and_counts_people(store):
    code, _ = store.create_session("Class", n_rounds=3, seed=21)
    assert store.prepared_rounds(code) == [] and store.stored_round(code, 0) is None
    rounds = [prepared(21, i) for i in range(3)]
    assert [store.save_round(code, r) for r in rounds] == [True, True, True]
    assert store.save_round(code, rounds[0]) is False  # the first copy stands
    assert store.prepared_rounds(code) == [0, 1, 2]
    shown = store.stored_round(code, 1)
    assert (shown.ref_png, shown.a_png, shown.b_png) == (rounds[1].ref_png, rounds[1].a_png, rounds[1].b_png)
    assert shown.metrics == json.loads(json.dumps(rounds[1].metrics)) and shown.sample == rounds[1].spec.sample
    assert shown.chain_b == chain_to_dict(rounds[1].spec.chain_b) and shown.pair == rounds[1].spec.pair

    ana, ben = store.join(code), store.join(code)
    receipt = store.cast_vote(code, ana, 1, "b")
    assert (receipt.round_index, receipt.choice, receipt.repeated) == (1, "B", False)
    again = store.cast_vote(code, f" {ana} ", 1, "B")  # re-sent after a lost acknowledgement
    assert again.vote_id == receipt.vote_id and again.repeated
    with pytest.raises(QuizVoteConflictError, match="Round 2 already has your pick B"):
        store.cast_vote(code, ana, 1, "A")
    store.cast_vote(code, ana, 0, "A")
    store.cast_vote(code, ben, 1, "A")
    assert store.picks(code, ana) == {0: "A", 1: "B"} and store.picks(code, ben) == {1: "A"}

    votes = store.votes(code)
    assert len(votes) == 3 and {v.voter_id for v in votes} == {store.voter(code, ana), store.voter(code, ben)}
    (vote,) = [v for v in votes if v.id == receipt.vote_id]
    assert vote.metrics == shown.metrics and vote.sample == shown.sample and vote.seed == 21
    assert (vote.chain_a, vote.chain_b) == (shown.chain_a, shown.chain_b)
    summary = summarize(store, code)
    assert (summary.n_votes, summary.n_voters) == (3, 2)  # people, not votes or tabs
    assert (summary.rounds[1].votes_a, summary.rounds[1].votes_b) == (1, 1)


def test_bad_tokens_and_rounds_are_refused_and_store_nothing(store):
    code, _ = store.create_session("Class", n_rounds=2, seed=21)
    other, _ = store.create_session("Other class", n_rounds=2, seed=22)
    for index in range(2):
        store.save_round(code, prepared(21, index))
    store.save_round(other, prepared(22, 0))
    mine, theirs = store.join(code), store.join(other)
    forged = "A" * TOKEN_LENGTH
    cases = [
        (dict(token="not-a-token"), QuizTokenError, "token in this link is damaged"),
        (dict(token=mine + "x"), QuizTokenError, "damaged"),
        (dict(token=None), QuizTokenError, "damaged"),
        (dict(token="é" * TOKEN_LENGTH), QuizTokenError, "damaged"),
        (dict(token=forged), QuizTokenError, "was not issued by this quiz"),
        (dict(token=theirs), QuizTokenError, f"belongs to another quiz session, not {code}"),
        (dict(round_index=2), QuizVoteError, "Round 3 does not exist: session .* has rounds 1 to 2"),
        (dict(round_index=-1), QuizVoteError, "Round 0 does not exist"),
        (dict(round_index="1"), QuizVoteError, "integer"),
        (dict(choice="C"), QuizVoteError, "'A' or 'B'"),
        (dict(code="NOPE22"), QuizSessionNotFoundError, "no quiz session"),
    ]
    for change, error, message in cases:
        args = dict(code=code, token=mine, round_index=1, choice="A")
        args.update(change)
        with pytest.raises(error, match=message):
            store.cast_vote(**args)
    with pytest.raises(QuizTokenError, match="another quiz session"):
        store.picks(code, theirs)
    with pytest.raises(QuizTokenError, match="not issued"):
        store.voter(code, forged)
    unready, _ = store.create_session("Unprepared", n_rounds=2, seed=23)
    student = store.join(unready)
    with pytest.raises(QuizRoundNotReadyError, match="still being prepared"):
        store.cast_vote(unready, student, 0, "A")
    assert store.votes(code) == [] and store.votes(other) == [] and store.votes(unready) == []
    assert (store.joined(code), store.joined(other), store.joined(unready)) == (1, 1, 1)
    assert store.cast_vote(code, mine, 1, "A").repeated is False  # the good token still works


def test_save_round_checks_the_round_belongs_to_the_session(store):
    code, _ = store.create_session("Class", n_rounds=2, seed=21)
    with pytest.raises(QuizInputError, match="session .* has seed 21 and rounds 0 to 1"):
        store.save_round(code, prepared(99, 0))
    with pytest.raises(QuizInputError, match="rounds 0 to 1"):
        store.save_round(code, prepared(21, 2))
    with pytest.raises(QuizInputError, match="not PNG"):
        store.save_round(code, dataclasses.replace(prepared(21, 0), a_png=b"GIF89a"))
    with pytest.raises(QuizInputError, match="PreparedRound"):
        store.save_round(code, {"index": 0})
    with pytest.raises(QuizSessionNotFoundError):
        store.save_round("NOPE22", prepared(21, 0))
    assert store.prepared_rounds(code) == []


def test_a_vote_sent_by_eight_threads_at_once_is_stored_once(store):
    code, _ = store.create_session("Double click", n_rounds=1, seed=21)
    store.save_round(code, prepared(21, 0))
    token = store.join(code)
    barrier = threading.Barrier(8)
    receipts, errors = [], []

    def send() -> None:
        try:
            barrier.wait(timeout=30)
            receipts.append(store.cast_vote(code, token, 0, "B"))
            store.close()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({r.vote_id for r in receipts}) == 1 and sum(not r.repeated for r in receipts) == 1
    assert len(store.votes(code)) == 1 and summarize(store, code).rounds[0].votes_b == 1


def test_summary_against_a_hand_computation(store):
    code, _ = store.create_session("Class", n_rounds=4, seed=11)
    specs = [make_round(11, i) for i in range(4)]
    # round, voter, human choice, lpips_alex pick, psnr pick
    table = [
        (0, "v1", "A", "A", "tie"),
        (0, "v2", "A", "A", "tie"),
        (0, "v3", "B", "A", "tie"),
        (1, "v1", "B", "A", "B"),
        (3, "v1", "A", "B", "A"),
        (3, "v2", "B", "B", "A"),
    ]
    for index, voter, choice, alex_pick, psnr_pick in table:
        store.record_vote(code, index, voter, choice, specs[index], fake_metrics(alex_pick, psnr_pick))
    summary = summarize(store, code)
    assert (summary.n_votes, summary.n_voters, summary.session.code) == (6, 3, code)
    rounds = [(r.index, r.votes_a, r.votes_b, r.majority) for r in summary.rounds]
    assert rounds == [(0, 2, 1, "A"), (1, 0, 1, "B"), (2, 0, 0, None), (3, 1, 1, "tie")]
    assert summary.rounds[0].sample == specs[0].sample and summary.rounds[0].pair == specs[0].pair
    assert summary.rounds[3].metric_picks == {"lpips_alex": "B", "psnr": "A"}
    assert list(summary.metrics) == ["lpips_alex", "psnr"]

    # lpips_alex agrees on v1, v2 of round 0 and v2 of round 3: 3 of 6.
    alex_agreement = summary.metrics["lpips_alex"]
    assert (alex_agreement.n, alex_agreement.agree, alex_agreement.ties) == (6, 3, 0)
    assert alex_agreement.score == pytest.approx(0.5)
    assert (alex_agreement.low, alex_agreement.high) == pytest.approx(wilson_by_formula(3, 6))
    # psnr: three ties (1.5), agrees in round 1 and with v1 in round 3: 3.5 of 6.
    psnr_agreement = summary.metrics["psnr"]
    assert (psnr_agreement.n, psnr_agreement.agree, psnr_agreement.ties) == (6, 2, 3)
    assert psnr_agreement.score == pytest.approx(3.5 / 6)
    assert (psnr_agreement.low, psnr_agreement.high) == pytest.approx(wilson_by_formula(3.5, 6))

    # The paper's 2AFC, a voted round = a triplet with the class's share p of B: round 0 p = 1/3,
    # round 1 p = 1, round 3 p = 1/2. lpips_alex picks A, A, B: (2/3 + 0 + 1/2) / 3; psnr picks
    # tie, B, A: (1/2 + 1 + 1/2) / 3. Human ceiling: mean of p² + (1 − p)².
    assert summary.paper_2afc["lpips_alex"] == pytest.approx((2 / 3 + 0 + 1 / 2) / 3)
    assert summary.paper_2afc["psnr"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert summary.human_2afc == pytest.approx(((1 / 9 + 4 / 9) + 1 + (1 / 4 + 1 / 4)) / 3)

    # By family pair: group the same table by each round's pair.
    expected: dict[str, dict[str, list[float]]] = {}
    for index, _, choice, alex_pick, psnr_pick in table:
        per = expected.setdefault(specs[index].pair, {"lpips_alex": [], "psnr": []})
        per["lpips_alex"].append(1.0 if alex_pick == choice else 0.0)
        per["psnr"].append(0.5 if psnr_pick == "tie" else float(psnr_pick == choice))
    assert set(summary.by_family) == set(expected)
    for pair, per in expected.items():
        for metric, credits in per.items():
            got = summary.by_family[pair][metric]
            assert got.n == len(credits) and got.score == pytest.approx(sum(credits) / len(credits))


def test_summary_of_an_empty_session(store):
    code, _ = store.create_session("Class", n_rounds=2, seed=1)
    summary = summarize(store, code)
    assert summary.n_votes == 0 and summary.metrics == {} and summary.by_family == {}
    assert [r.majority for r in summary.rounds] == [None, None]


def test_export_csv(store, tmp_path):
    code, _ = store.create_session("Class", n_rounds=2, seed=3)
    specs = [make_round(3, 0), make_round(3, 1)]
    store.record_vote(code, 0, "ana", "A", specs[0], fake_metrics("A", "tie"))
    store.record_vote(code, 1, "=HYPERLINK(1)", "B", specs[1], {"ssim": {"a": 0.9, "b": 0.8, "pick": "A"}})
    buffer = io.StringIO()
    assert store.export_csv(code, buffer) == 2
    lines = buffer.getvalue().splitlines()
    metric_columns = [f"{m}_{p}" for m in ("lpips_alex", "psnr", "ssim") for p in ("a", "b", "pick")]
    assert lines[0].split(",") == list(CSV_COLUMNS) + metric_columns
    assert list(CSV_COLUMNS) == ["session", "round", "seed", "reference", "family_a", "family_b",
                                 "chain_a", "chain_b", "choice", "voter", "time"]
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert rows[0]["session"] == code and rows[0]["round"] == "0" and rows[0]["seed"] == "3"
    assert rows[0]["reference"] == specs[0].sample and rows[0]["choice"] == "A" and rows[0]["voter"] == "ana"
    assert json.loads(rows[0]["chain_a"]) == chain_to_dict(specs[0].chain_a)
    assert (rows[0]["family_a"], rows[0]["family_b"]) == (specs[0].family_a, specs[0].family_b)
    assert (rows[0]["lpips_alex_a"], rows[0]["lpips_alex_pick"], rows[0]["psnr_pick"]) == ("0.2", "A", "tie")
    assert rows[0]["ssim_a"] == "" and rows[1]["psnr_a"] == "" and rows[1]["ssim_pick"] == "A"
    assert rows[1]["voter"] == "'=HYPERLINK(1)"  # no formula runs in a spreadsheet
    assert rows[0]["time"].endswith("+00:00")
    path = tmp_path / "out.csv"
    assert store.export_csv(code, path) == 2
    assert path.read_text(encoding="utf-8") == buffer.getvalue()


# --------------------------------------------------------------------------------------
# Concurrency and durability
# --------------------------------------------------------------------------------------

VOTES_PER_WRITER = 50


def _write_votes(path: str, code: str, seed: int, writer: str, barrier) -> None:
    """Child process body: wait for the others, then one vote per round for voter ``writer``
    (``path``: a SQLite file or a PostgreSQL URL)."""
    specs = [make_round(seed, index) for index in range(VOTES_PER_WRITER)]
    store = open_store(path)
    barrier.wait(timeout=60)  # all four write at the same time
    for index in range(VOTES_PER_WRITER):
        store.record_vote(code, index, writer, "AB"[index % 2], specs[index], fake_metrics())
    store.close()


def test_eight_threads_never_lose_a_vote(store):
    code, _ = store.create_session("Threads", n_rounds=VOTES_PER_WRITER, seed=8)
    specs = [make_round(8, i) for i in range(VOTES_PER_WRITER)]
    errors = []

    def work(t: int) -> None:
        try:
            for i in range(VOTES_PER_WRITER):
                store.record_vote(code, i, f"thread-{t}", "AB"[(i + t) % 2], specs[i], fake_metrics())
            store.close()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    votes = store.votes(code)
    assert len(votes) == 8 * VOTES_PER_WRITER
    assert len({(v.round_index, v.voter_id) for v in votes}) == 8 * VOTES_PER_WRITER
    assert check_integrity(store) == "ok"


def test_four_processes_never_lose_a_vote(store):
    # Fresh interpreters with their own connections, as with "spawn"; a forkserver that has
    # imported teach.quiz and store once forks them, because four spawned imports of torch take 30-70 s
    # on a 2-core machine. The server never opens the database, so nothing is inherited.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["teach.quiz", "store", _write_votes.__module__])
    code, _ = store.create_session("Processes", n_rounds=VOTES_PER_WRITER, seed=9)
    barrier = context.Barrier(4)
    processes = [
        context.Process(target=_write_votes, args=(target(store), code, 9, f"proc-{p}", barrier))
        for p in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    votes = store.votes(code)
    assert len(votes) == 4 * VOTES_PER_WRITER
    assert {v.voter_id for v in votes} == {f"proc-{p}" for p in range(4)}
    assert check_integrity(store) == "ok"


KILL_SCRIPT = """
import sys
from store import open_store
from teach.quiz import make_round
store = open_store(sys.argv[1])
code = sys.argv[2]
specs = [make_round(77, i) for i in range(20)]
metrics = {"psnr": {"a": 20.0, "b": 21.0, "pick": "B"}}
for n in range(1_000_000):
    vote_id = store.record_vote(code, n % 20, f"voter-{n // 20}", "A", specs[n % 20], metrics)
    print(vote_id, flush=True)
"""


def test_acknowledged_votes_survive_kill_9(store):
    path = target(store)
    code, _ = store.create_session("Kill", n_rounds=20, seed=77)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, path, code], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acknowledged = []
    deadline = time.monotonic() + 60
    try:
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acknowledged.append(int(line))
        os.kill(child.pid, signal.SIGKILL)  # in the middle of writing
        rest, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert len(acknowledged) >= 40, err
    # A line cut short by the kill was never acknowledged.
    acknowledged += [int(line) for line in rest.splitlines(keepends=True) if line.endswith("\n")]
    assert child.returncode == -signal.SIGKILL
    assert check_integrity(store) == "ok"
    with open_store(path) as fresh:
        stored = {v.id for v in fresh.votes(code)}
    assert set(acknowledged) <= stored
    assert len(stored) - len(acknowledged) <= 1  # at most the vote in flight, committed but not printed


# --------------------------------------------------------------------------------------
# Schema migrations and storage failures
# --------------------------------------------------------------------------------------


def test_migration_from_a_version_1_database(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    spec = make_round(4, 0)
    conn.execute("INSERT INTO sessions VALUES ('ABCDEF', 'sha256$x', 4, 3, '2024-01-01T00:00:00+00:00', 'Old')")
    conn.execute(
        "INSERT INTO votes (session_code, round_index, voter_id, choice, created, seed, sample, family_a, family_b,"
        " chain_a, chain_b, metrics) VALUES ('ABCDEF', 0, 'ana', 'B', 't', 4, ?, ?, ?, ?, ?, '{}')",
        (spec.sample, spec.family_a, spec.family_b, json.dumps(chain_to_dict(spec.chain_a)),
         json.dumps(chain_to_dict(spec.chain_b))),
    )
    conn.commit()
    conn.close()

    store = QuizStore(path)
    conn = store._conn()
    assert SCHEMA_VERSION == 5 and conn.execute("PRAGMA user_version").fetchone()[0] == 5
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'votes_by_voter'").fetchone()
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} >= {"voters", "rounds"}
    assert store.session("abcdef").title == "Old"
    assert [(v.voter_id, v.choice) for v in store.votes("ABCDEF")] == [("ana", "B")]
    store.record_vote("ABCDEF", 0, "ben", "A", spec, {})
    assert summarize(store, "ABCDEF").rounds[0].votes_a == 1
    # An old session gets tokens and prepared rounds like a new one.
    assert store.save_round("ABCDEF", prepare_round(4, 1, engines={}, max_side=48, others=("psnr",)))
    token = store.join("ABCDEF")
    store.cast_vote("ABCDEF", token, 1, "B")
    assert store.picks("ABCDEF", token) == {1: "B"} and summarize(store, "ABCDEF").n_voters == 3
    assert QuizStore(path).session("ABCDEF") is not None  # reopening a current database is a no-op


def _version_3_with_vifp_stored_as_vif(execute) -> tuple[dict, dict]:
    """A session of a version-3 database with a vote and a prepared round scored when "vif"
    was VIFp; returns (the vote's metrics, the round's metrics) as they were stored."""
    spec = make_round(4, 0)
    vote_metrics = {**fake_metrics(), "vif": {"a": 0.41, "b": float("nan"), "pick": "A"}}
    round_metrics = {"psnr": {"a": 25.0, "b": 27.5, "pick": "B"}, "vif": {"a": 0.5, "b": 0.25, "pick": "A"}}
    chains = (json.dumps(chain_to_dict(spec.chain_a)), json.dumps(chain_to_dict(spec.chain_b)))
    execute("INSERT INTO sessions VALUES ('ABCDEF', 'sha256$x', 4, 3, '2024-01-01T00:00:00+00:00', 'Old')", ())
    execute("INSERT INTO votes (session_code, round_index, voter_id, choice, created, seed, sample, family_a, family_b,"
            " chain_a, chain_b, metrics) VALUES ('ABCDEF', 0, 'ana', 'B', 't', 4, ?, ?, ?, ?, ?, ?)",
            (spec.sample, spec.family_a, spec.family_b, *chains, json.dumps(vote_metrics, sort_keys=True)))
    png = b"\x89PNG\r\n\x1a\n"
    execute("INSERT INTO rounds VALUES ('ABCDEF', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, 't')",
            (spec.sample, spec.family_a, spec.family_b, *chains, png, png, png, json.dumps(round_metrics, sort_keys=True)))
    return vote_metrics, round_metrics


def _check_vif_moved_to_vifp(store, vote_metrics: dict, round_metrics: dict) -> None:
    def renamed(values: dict) -> dict:
        return {("vifp" if k == "vif" else k): v for k, v in values.items()}

    (vote,) = store.votes("ABCDEF")
    assert set(vote.metrics) == {"lpips_alex", "psnr", "vifp"}
    assert vote.metrics["vifp"]["a"] == 0.41 and math.isnan(vote.metrics["vifp"]["b"])
    assert {k: v for k, v in vote.metrics.items() if k != "vifp"} == {
        k: v for k, v in renamed(vote_metrics).items() if k != "vifp"}
    assert store.stored_round("ABCDEF", 0).metrics == renamed(round_metrics)
    # Values scored from now on keep the key they are given: "vif" is the wavelet VIF.
    spec = make_round(4, 1)
    store.record_vote("ABCDEF", 1, "ana", "A", spec, {"vif": {"a": 0.3, "b": 0.2, "pick": "A"}})
    assert [v.metrics for v in store.votes("ABCDEF")][1] == {"vif": {"a": 0.3, "b": 0.2, "pick": "A"}}


def test_migration_5_moves_vifp_values_stored_as_vif(tmp_path):
    path = tmp_path / "v3.sqlite3"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:3]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 3")
    stored = _version_3_with_vifp_stored_as_vif(conn.execute)
    conn.commit()
    conn.close()
    with QuizStore(path) as store:
        _check_vif_moved_to_vifp(store, *stored)


@SQLITE_ONLY
def test_a_failing_migration_leaves_the_database_untouched(store):
    conn = store._conn()
    broken = MIGRATIONS + ["CREATE TABLE extra (x); CREATE TABLE broken ("]
    with pytest.raises(sqlite3.Error):
        migrate(conn, broken)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchone() is None


def test_a_newer_database_is_refused(tmp_path):
    path = tmp_path / "new.sqlite3"
    QuizStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(QuizStorageError, match="newer"):
        QuizStore(path)


def test_unusable_paths_raise_storage_errors(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(QuizStorageError, match="^the quiz cannot save votes"):
        QuizStore(blocker / "quiz.sqlite3")
    with pytest.raises(QuizStorageError, match="^the quiz cannot"):
        QuizStore(tmp_path)  # a folder, not a database file
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(QuizStorageError, match="^the quiz cannot"):
        QuizStore(garbage)
    with pytest.raises(QuizStorageError, match="^the quiz cannot"):
        QuizStore(tmp_path / "missing.sqlite3", read_only=True)


@SQLITE_ONLY
def test_read_only_database_refuses_writes_cleanly(store):
    # Tests run as root, where chmod does not stop writes; a read-only open (mode=ro) does.
    code, _ = store.create_session("Class", n_rounds=2, seed=1)
    store.record_vote(code, 0, "ana", "A", make_round(1, 0), fake_metrics())
    reader = QuizStore(store.path, read_only=True)
    assert reader.session(code).title == "Class" and summarize(reader, code).n_votes == 1
    with pytest.raises(QuizStorageError, match="^the quiz cannot save votes: .*readonly"):
        reader.record_vote(code, 1, "ana", "B", make_round(1, 1), fake_metrics())
    with pytest.raises(QuizStorageError, match="^the quiz cannot save votes"):
        reader.create_session("Other")
    assert summarize(reader, code).n_votes == 1  # the reader is still usable


@SQLITE_ONLY
def test_full_disk_raises_storage_error_and_loses_nothing(store):
    code, _ = store.create_session("Class", n_rounds=200, seed=1)
    spec_for = {i: make_round(1, i) for i in range(200)}
    conn = store._conn()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # the "disk" fills after a few pages
    big = {f"metric_{k}": {"a": 0.1 * k, "b": 0.2, "pick": "A"} for k in range(40)}
    saved = []
    with pytest.raises(QuizStorageError, match="^the quiz cannot save votes: .*full"):
        for i in range(200):
            saved.append(store.record_vote(code, i, "ana", "A", spec_for[i], big))
    assert len(saved) < 200
    conn.execute("PRAGMA max_page_count = 1073741823")  # space freed: the store works again
    store.record_vote(code, 199, "ben", "B", spec_for[199], fake_metrics())
    assert [v.id for v in store.votes(code)][: len(saved)] == saved
    assert len(store.votes(code)) == len(saved) + 1
    assert integrity(store.path) == "ok"


@SQLITE_ONLY
def test_backup_copies_votes_still_in_the_wal_file(store, tmp_path):
    code, _ = store.create_session("Class", n_rounds=2, seed=21)
    store.save_round(code, prepared(21, 0))
    token = store.join(code)
    store.cast_vote(code, token, 0, "B")
    assert Path(f"{store.path}-wal").stat().st_size > 0  # not checkpointed: the vote is in the -wal file
    copy = store.backup(tmp_path / "backup.sqlite3")
    assert not Path(f"{copy}-wal").exists() or Path(f"{copy}-wal").stat().st_size == 0
    with QuizStore(copy) as restored:
        assert restored.picks(code, token) == {0: "B"} and restored.stored_round(code, 0).a_png == prepared(21, 0).a_png
        assert integrity(copy) == "ok"
    with pytest.raises(QuizStorageError, match="the file exists"):
        store.backup(copy)
    # The command line: the database named by the environment, exit 0; an existing file, exit 2.
    env = {**os.environ, "PYTHONPATH": str(REPO), "LPIPS_EXPLORER_QUIZ_DB": str(store.path)}
    command = [sys.executable, "-m", "store", "backup"]
    done = subprocess.run(command + [str(tmp_path / "cli.sqlite3")], env=env, capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0 and "backed up" in done.stdout, done.stderr
    with QuizStore(tmp_path / "cli.sqlite3") as restored:
        assert len(restored.votes(code)) == 1
    again = subprocess.run(command + [str(copy)], env=env, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert again.returncode == 2 and "the file exists" in again.stderr and "Traceback" not in again.stderr


def test_postgres_backup_points_to_pg_dump(postgres_url, tmp_path):
    with open_store(postgres_url) as store, pytest.raises(QuizStorageError, match="pg_dump"):
        store.backup(tmp_path / "backup")


def test_quiz_rounds_and_store_do_not_import_streamlit():
    for path in [REPO / "teach" / "quiz.py", *sorted((REPO / "store").glob("*.py"))]:
        source = path.read_text(encoding="utf-8")
        assert "streamlit" not in source, path


# --------------------------------------------------------------------------------------
# PostgreSQL: the same schema and migrations, and errors that say what to fix
# --------------------------------------------------------------------------------------


def _pg_version(conn) -> int:
    return conn.execute("SELECT version FROM schema_version").fetchone()[0]


def test_postgres_schema_matches_sqlite(postgres_url, tmp_path):
    from store import postgres

    assert postgres.SCHEMA_VERSION == SCHEMA_VERSION == len(postgres.MIGRATIONS) == len(MIGRATIONS)
    lite = QuizStore(tmp_path / "quiz.sqlite3")
    with open_store(postgres_url) as pg, pg._raw() as conn:
        for table in ("sessions", "votes", "voters", "rounds"):
            sqlite_columns = [row[1] for row in lite._conn().execute(f"PRAGMA table_info({table})")]
            pg_columns = [row[0] for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (table,))]
            assert pg_columns == sqlite_columns
        assert conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'votes_by_voter'").fetchone()
        assert _pg_version(conn) == SCHEMA_VERSION
    assert lite._conn().execute("SELECT name FROM sqlite_master WHERE name = 'votes_by_voter'").fetchone()


def test_postgres_migration_from_a_version_1_database(postgres_url):
    import psycopg

    from store import postgres

    spec = make_round(4, 0)
    with psycopg.connect(postgres_url) as conn:
        conn.execute(postgres.MIGRATIONS[0])
        conn.execute("CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1, 1)")
        conn.execute("INSERT INTO sessions VALUES ('ABCDEF', 'sha256$x', 4, 3, '2024-01-01T00:00:00+00:00', 'Old')")
        conn.execute(
            "INSERT INTO votes (session_code, round_index, voter_id, choice, created, seed, sample, family_a, family_b,"
            " chain_a, chain_b, metrics) VALUES ('ABCDEF', 0, 'ana', 'B', 't', 4, %s, %s, %s, %s, %s, '{}')",
            (spec.sample, spec.family_a, spec.family_b, json.dumps(chain_to_dict(spec.chain_a)),
             json.dumps(chain_to_dict(spec.chain_b))),
        )
    store = open_store(postgres_url)
    with store._raw() as conn:
        assert _pg_version(conn) == SCHEMA_VERSION
        assert conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'votes_by_voter'").fetchone()
        assert conn.execute("SELECT to_regclass('voters'), to_regclass('rounds')").fetchone() == ("voters", "rounds")
    assert store.session("abcdef").title == "Old"
    assert [(v.voter_id, v.choice) for v in store.votes("ABCDEF")] == [("ana", "B")]
    store.record_vote("ABCDEF", 0, "ben", "A", spec, {})
    assert summarize(store, "ABCDEF").rounds[0].votes_a == 1
    store.close()
    with open_store(postgres_url) as again:  # reopening a current database is a no-op
        assert again.session("ABCDEF") is not None and len(again.votes("ABCDEF")) == 2


def test_postgres_migration_5_moves_vifp_values_stored_as_vif(postgres_url):
    import psycopg

    from store import postgres

    with psycopg.connect(postgres_url) as conn:
        for script in postgres.MIGRATIONS[:3]:
            conn.execute(script)
        conn.execute("CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1, 3)")
        stored = _version_3_with_vifp_stored_as_vif(lambda sql, args: conn.execute(sql.replace("?", "%s"), args))
    with open_store(postgres_url) as store:
        _check_vif_moved_to_vifp(store, *stored)


def test_postgres_failing_migration_and_newer_database(postgres_url):
    import psycopg

    from store import postgres

    store = open_store(postgres_url)
    with store._raw() as conn:
        broken = postgres.MIGRATIONS + ["CREATE TABLE extra (x INTEGER); CREATE TABLE broken ("]
        with pytest.raises(psycopg.Error):
            postgres.migrate(conn, broken)
        assert _pg_version(conn) == SCHEMA_VERSION
        assert conn.execute("SELECT to_regclass('extra')").fetchone()[0] is None
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
        conn.commit()
    store.close()
    with pytest.raises(QuizStorageError, match="newer.*LPIPS_EXPLORER_QUIZ_DB"):
        open_store(postgres_url)


def test_postgres_store_reconnects_after_the_server_drops_its_connections(postgres_url, postgres_server):
    import psycopg

    store = open_store(postgres_url)
    code, _ = store.create_session("Class", n_rounds=2, seed=1)
    # What a server restart does to the pooled, idle connections.
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (postgres_url.rsplit("/", 1)[1],))
    assert store.session(code).title == "Class"
    store.record_vote(code, 0, "ana", "A", make_round(1, 0), fake_metrics())
    assert len(store.votes(code)) == 1
    store.close()


def _assert_explains(info, password: str, *fragments: str) -> None:
    message = str(info.value)
    assert message.startswith("the quiz cannot"), message
    assert "LPIPS_EXPLORER_QUIZ_DB" in message, message
    assert password not in message and password not in repr(info.value.args), message
    for fragment in fragments:
        assert fragment in message, message


def test_postgres_connection_errors_name_the_variable_and_hide_the_password(postgres_server):
    from pg_server import free_port

    secret = "Hunter2-secret-pw"
    closed = free_port()  # nothing listens there
    with pytest.raises(QuizStorageError) as info:
        open_store(f"postgresql://quiz:{secret}@127.0.0.1:{closed}/quiz")
    _assert_explains(info, secret, "connect to", f"postgresql://quiz:***@127.0.0.1:{closed}/quiz", "refused")

    wrong = postgres_server.url(password=secret)
    with pytest.raises(QuizStorageError) as info:
        open_store(wrong)
    _assert_explains(info, secret, "password authentication failed")
    assert postgres_server.password not in str(info.value)

    missing = postgres_server.url("no_such_database")
    with pytest.raises(QuizStorageError) as info:
        open_store(missing)
    _assert_explains(info, postgres_server.password, "no_such_database", "does not exist")

    for bad in (f"postgresql://quiz:{secret}@[::1/quiz", f"postgres://quiz:{secret}@host:notaport/quiz",
                f"postgresql://db/quiz?password={secret}&bogus_option=1"):
        with pytest.raises(QuizStorageError) as info:
            open_store(bad, connect_timeout=2)
        _assert_explains(info, secret)


def test_postgres_connect_gives_up_after_the_timeout():
    # A server that accepts the connection and never answers: the page must not hang.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(QuizStorageError) as info:
            open_store(f"postgresql://quiz:pw-12345@127.0.0.1:{port}/quiz", connect_timeout=2)
        elapsed = time.monotonic() - start
    assert elapsed < 10, elapsed
    _assert_explains(info, "pw-12345", "connect to")


# --------------------------------------------------------------------------------------
# JND sessions: "same or different?" votes, on both backends
# --------------------------------------------------------------------------------------


def jnd_prepared(seed: int, index: int):
    """A real prepared JND round, small and without LPIPS."""
    return prepare_round(seed, index, engines={}, max_side=48, others=("psnr", "ssim"), kind="jnd")


def test_a_jnd_session_takes_same_or_different_once_per_student_and_round(store):
    code, _ = store.create_session("JND class", n_rounds=3, seed=8, kind="jnd")
    assert store.session(code).kind == "jnd"
    assert store.session(store.create_session("2AFC class", n_rounds=1, seed=8)[0]).kind == "2afc"
    with pytest.raises(QuizInputError, match="'2afc'.*'jnd'"):
        store.create_session("Bad", n_rounds=1, kind="triplet")
    rounds = [jnd_prepared(8, i) for i in range(3)]
    assert all(store.save_round(code, r) for r in rounds)
    with pytest.raises(QuizInputError, match="asks JND questions"):  # a 2AFC round cannot enter a JND session
        store.save_round(code, prepare_round(8, 0, engines={}, max_side=48, others=("psnr",)))
    ana, ben = store.join(code), store.join(code)
    first = store.cast_vote(code, ana, 0, " Same ")
    assert (first.choice, first.repeated) == ("same", False)
    again = store.cast_vote(code, ana, 0, "same")  # re-sent after a lost acknowledgement: one vote
    assert again.vote_id == first.vote_id and again.repeated
    with pytest.raises(QuizVoteConflictError, match="already has your pick same"):
        store.cast_vote(code, ana, 0, "different")
    for wrong in ("A", "B"):  # 2AFC answers are refused in a JND session, and store nothing
        with pytest.raises(QuizVoteError, match="'same' or 'different'"):
            store.cast_vote(code, ben, 1, wrong)
    with pytest.raises(QuizVoteError):
        store.cast_vote(code, ben, 1, "maybe")
    store.cast_vote(code, ben, 0, "different")
    store.cast_vote(code, ben, 1, "same")
    assert store.picks(code, ana) == {0: "same"} and store.picks(code, ben) == {0: "different", 1: "same"}
    votes = store.votes(code)
    assert [(v.round_index, v.choice) for v in votes] == [(0, "same"), (0, "different"), (1, "same")]
    assert votes[0].metrics == json.loads(json.dumps(rounds[0].metrics))
    assert check_integrity(store) == "ok"
    # And "same"/"different" are refused in a 2AFC session.
    other, _ = store.create_session("2AFC", n_rounds=1, seed=9)
    store.save_round(other, prepared(9, 0))
    with pytest.raises(QuizVoteError, match="'A' or 'B'"):
        store.cast_vote(other, store.join(other), 0, "same")


def test_jnd_votes_through_record_vote_and_the_csv(store):
    code, _ = store.create_session("JND", n_rounds=2, seed=8, kind="jnd")
    spec = jnd_prepared(8, 1).spec
    values = {"lpips_alex": {"value": 0.12}, "psnr": {"value": 31.5}}
    vote_id = store.record_vote(code, 1, "ana", "different", spec, values)
    assert store.record_vote(code, 1, "ana", "different", spec, values) == vote_id
    with pytest.raises(QuizVoteError, match="score_jnd_round"):
        store.record_vote(code, 1, "ben", "same", spec, {"psnr": {"a": 1.0, "b": 2.0, "pick": "A"}})
    with pytest.raises(QuizVoteError, match="JND round, but session"):
        store.record_vote(store.create_session("2AFC", n_rounds=2, seed=8)[0], 1, "ben", "A", spec, values)
    buffer = io.StringIO()
    assert store.export_csv(code, buffer) == 1
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert rows[0]["choice"] == "different" and float(rows[0]["lpips_alex_value"]) == 0.12
    assert "lpips_alex_pick" not in rows[0]


def test_a_jnd_vote_sent_by_eight_threads_at_once_is_stored_once(store):
    code, _ = store.create_session("JND", n_rounds=1, seed=8, kind="jnd")
    store.save_round(code, jnd_prepared(8, 0))
    token = store.join(code)
    barrier = threading.Barrier(8)
    receipts, errors = [], []

    def send() -> None:
        barrier.wait()
        try:
            receipts.append(store.cast_vote(code, token, 0, "different"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len({r.vote_id for r in receipts}) == 1
    assert sum(not r.repeated for r in receipts) == 1 and len(store.votes(code)) == 1


@SQLITE_ONLY
def test_acknowledged_jnd_votes_survive_kill_9(store):
    """A writer process killed with SIGKILL mid-stream: every JND vote it acknowledged is in the file."""
    code, _ = store.create_session("JND", n_rounds=40, seed=8, kind="jnd")
    for i in range(40):
        store.save_round(code, jnd_prepared(8, i))
    token = store.join(code)
    script = (
        "import sys\n"
        "from store import QuizStore\n"
        "s = QuizStore(sys.argv[1])\n"
        "for i in range(40):\n"
        "    s.cast_vote(sys.argv[2], sys.argv[3], i, 'same' if i % 3 else 'different')\n"
        "    print(i, flush=True)\n"
        "    if i == 19:\n"
        "        sys.stdin.readline()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(store.path), code, token], cwd=REPO,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    acknowledged = [int(child.stdout.readline()) for _ in range(20)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    picks = QuizStore(store.path).picks(code, token)
    assert set(acknowledged) <= set(picks)
    assert all(picks[i] == ("same" if i % 3 else "different") for i in acknowledged)
    assert integrity(store.path) == "ok"


def _version_3_sqlite(path: Path) -> None:
    """A database as version 3 left it: a 2AFC session, a prepared round, a student and two votes,
    the second vote's id deleted (so AUTOINCREMENT's counter is ahead of the largest id)."""
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:3]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 3")
    conn.execute("INSERT INTO sessions VALUES ('ABCDEF', 'sha256$x', 4, 3, '2024-01-01T00:00:00+00:00', 'Old')")
    spec = make_round(4, 0)
    for voter in ("ana", "ben"):
        conn.execute(
            "INSERT INTO votes (session_code, round_index, voter_id, choice, created, seed, sample, family_a,"
            " family_b, chain_a, chain_b, metrics) VALUES ('ABCDEF', 0, ?, 'B', 't', 4, ?, ?, ?, ?, ?, '{}')",
            (voter, spec.sample, spec.family_a, spec.family_b, json.dumps(chain_to_dict(spec.chain_a)),
             json.dumps(chain_to_dict(spec.chain_b))),
        )
    conn.execute("DELETE FROM votes WHERE voter_id = 'ben'")
    conn.commit()
    conn.close()


def test_migration_from_version_3_keeps_votes_ids_and_adds_jnd(tmp_path):
    path = tmp_path / "v3.sqlite3"
    _version_3_sqlite(path)
    store = QuizStore(path)
    conn = store._conn()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    assert store.session("ABCDEF").kind == "2afc"  # an old session keeps asking 2AFC questions
    assert [(v.id, v.voter_id, v.choice) for v in store.votes("ABCDEF")] == [(1, "ana", "B")]
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'votes_by_voter'").fetchone()
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'votes_v4'").fetchone() is None
    assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'votes'").fetchone() == (2,)
    assert integrity(path) == "ok" and conn.execute("PRAGMA foreign_key_check").fetchall() == []
    # The old session still votes as before; a deleted id is never reused.
    assert store.record_vote("ABCDEF", 0, "cyd", "A", make_round(4, 0), {}) == 3
    with pytest.raises(QuizVoteError):
        store.record_vote("ABCDEF", 1, "cyd", "same", make_round(4, 1), {})
    # The unique constraint survived the rebuild.
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO votes (session_code, round_index, voter_id, choice, created, seed, sample, family_a,"
                     " family_b, chain_a, chain_b, metrics) VALUES ('ABCDEF', 0, 'cyd', 'A', 't', 4, 's', 'a', 'b',"
                     " '{}', '{}', '{}')")
    # A JND session in the migrated file works end to end.
    code, _ = store.create_session("JND", n_rounds=1, seed=8, kind="jnd")
    store.save_round(code, jnd_prepared(8, 0))
    assert store.cast_vote(code, store.join(code), 0, "same").vote_id == 4
    store.close()
    assert QuizStore(path).session(code).kind == "jnd"  # reopening a current database is a no-op


def test_postgres_migration_from_version_3_keeps_votes_and_adds_jnd(postgres_url):
    import psycopg

    from store import postgres

    spec = make_round(4, 0)
    with psycopg.connect(postgres_url) as conn:
        for script in postgres.MIGRATIONS[:3]:
            conn.execute(script)
        conn.execute("CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1, 3)")
        conn.execute("INSERT INTO sessions VALUES ('ABCDEF', 'sha256$x', 4, 3, '2024-01-01T00:00:00+00:00', 'Old')")
        conn.execute(
            "INSERT INTO votes (session_code, round_index, voter_id, choice, created, seed, sample, family_a, family_b,"
            " chain_a, chain_b, metrics) VALUES ('ABCDEF', 0, 'ana', 'B', 't', 4, %s, %s, %s, %s, %s, '{}')",
            (spec.sample, spec.family_a, spec.family_b, json.dumps(chain_to_dict(spec.chain_a)),
             json.dumps(chain_to_dict(spec.chain_b))),
        )
    with open_store(postgres_url) as store:
        with store._raw() as conn:
            assert _pg_version(conn) == SCHEMA_VERSION == 5
        assert store.session("ABCDEF").kind == "2afc"
        assert [(v.voter_id, v.choice) for v in store.votes("ABCDEF")] == [("ana", "B")]
        code, _ = store.create_session("JND", n_rounds=1, seed=8, kind="jnd")
        store.save_round(code, jnd_prepared(8, 0))
        store.cast_vote(code, store.join(code), 0, "different")
        assert [v.choice for v in store.votes(code)] == ["different"]
        with store._raw() as conn, pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE votes SET choice = 'maybe' WHERE voter_id = 'ana'")
