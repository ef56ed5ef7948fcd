"""The SQLite quiz store: one database file shared by every thread and process of the app.

The file is in WAL mode with ``synchronous=FULL``: when :meth:`QuizStore.record_vote`
returns, the vote is in the database file on disk and survives the process being killed or
the machine losing power. Many threads and processes may write at once; writers wait for
each other (up to ``busy_timeout``) instead of failing. Storage problems (read-only folder,
full disk, damaged file) raise :class:`~store.errors.QuizStorageError`, whose message starts
with "the quiz cannot ...", never a raw ``sqlite3`` error.

Everything but the SQL (validation, join codes, CSV, the summary) is in
:class:`store.base.BaseQuizStore`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from store.base import BaseQuizStore, Ballot, Cast, Receipt, SessionInfo, _now
from store.records import PreparedRound
from store.errors import QuizStorageError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "QuizStore", "default_db_path", "migrate"]

#: Schema migrations: ``MIGRATIONS[k]`` takes a database from version ``k`` to ``k + 1``
#: (``PRAGMA user_version``). Each runs in one transaction with the version bump, so a
#: database is always at a whole version. Append new scripts; never edit old ones. Each step
#: has its twin, same version and names, in :data:`store.postgres.MIGRATIONS`.
MIGRATIONS: list[str] = [
    # 1: the initial schema.
    """
    CREATE TABLE sessions (
        code TEXT PRIMARY KEY,
        teacher_key_hash TEXT NOT NULL,
        seed INTEGER NOT NULL,
        n_rounds INTEGER NOT NULL,
        created TEXT NOT NULL,
        title TEXT NOT NULL
    );
    CREATE TABLE votes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_code TEXT NOT NULL REFERENCES sessions(code),
        round_index INTEGER NOT NULL,
        voter_id TEXT NOT NULL,
        choice TEXT NOT NULL CHECK (choice IN ('A', 'B')),
        created TEXT NOT NULL,
        seed INTEGER NOT NULL,
        sample TEXT NOT NULL,
        family_a TEXT NOT NULL,
        family_b TEXT NOT NULL,
        chain_a TEXT NOT NULL,
        chain_b TEXT NOT NULL,
        metrics TEXT NOT NULL,
        UNIQUE (session_code, round_index, voter_id)
    );
    """,
    # 2: look up a student's votes across sessions (and show how a migration looks).
    """
    CREATE INDEX votes_by_voter ON votes (voter_id);
    """,
    # 3: students keep a token (only its hash is here) that survives reloads and restarts, and
    # every round is prepared once and stored (images as PNG, the metrics' values as JSON).
    """
    CREATE TABLE voters (
        token_hash TEXT PRIMARY KEY,
        session_code TEXT NOT NULL REFERENCES sessions(code),
        voter_id TEXT NOT NULL,
        created TEXT NOT NULL,
        UNIQUE (session_code, voter_id)
    );
    CREATE TABLE rounds (
        session_code TEXT NOT NULL REFERENCES sessions(code),
        round_index INTEGER NOT NULL,
        sample TEXT NOT NULL,
        family_a TEXT NOT NULL,
        family_b TEXT NOT NULL,
        chain_a TEXT NOT NULL,
        chain_b TEXT NOT NULL,
        ref_png BLOB NOT NULL,
        a_png BLOB NOT NULL,
        b_png BLOB NOT NULL,
        metrics TEXT NOT NULL,
        created TEXT NOT NULL,
        PRIMARY KEY (session_code, round_index)
    );
    """,
    # 4: a session asks one kind of question, '2afc' (which of A and B is closer to the reference?)
    # or 'jnd' (are these two images the same?), and a JND vote is 'same' or 'different'. SQLite
    # cannot change a CHECK constraint, so votes is rebuilt as SQLite's documented procedure
    # does it (new table, copy, drop, rename): same columns, same row ids, same index, and
    # AUTOINCREMENT's counter is carried over (an id is still never reused). Sessions and votes
    # of version 3 are 2AFC, as they were.
    """
    ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT '2afc' CHECK (kind IN ('2afc', 'jnd'));
    CREATE TABLE votes_v4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_code TEXT NOT NULL REFERENCES sessions(code),
        round_index INTEGER NOT NULL,
        voter_id TEXT NOT NULL,
        choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'same', 'different')),
        created TEXT NOT NULL,
        seed INTEGER NOT NULL,
        sample TEXT NOT NULL,
        family_a TEXT NOT NULL,
        family_b TEXT NOT NULL,
        chain_a TEXT NOT NULL,
        chain_b TEXT NOT NULL,
        metrics TEXT NOT NULL,
        UNIQUE (session_code, round_index, voter_id)
    );
    INSERT INTO votes_v4 (id, session_code, round_index, voter_id, choice, created, seed, sample, family_a,
                          family_b, chain_a, chain_b, metrics)
        SELECT id, session_code, round_index, voter_id, choice, created, seed, sample, family_a, family_b,
               chain_a, chain_b, metrics FROM votes;
    DELETE FROM sqlite_sequence WHERE name = 'votes_v4';
    INSERT INTO sqlite_sequence (name, seq) SELECT 'votes_v4', seq FROM sqlite_sequence WHERE name = 'votes';
    DROP TABLE votes;
    ALTER TABLE votes_v4 RENAME TO votes;
    CREATE INDEX votes_by_voter ON votes (voter_id);
    """,
    # 5: the metric stored as "vif" was the pixel-domain VIFp (vifp_mscale.m) until Sheikh &
    # Bovik's wavelet-domain VIF took that key; the old values keep their meaning under "vifp".
    # The column holds json.dumps output, where '"vif": ' can only be that metric's key (the
    # entries' own keys are "a", "b", "pick"), so a text replacement is exact, and it also
    # moves rows that JSON functions would refuse (NaN values).
    """
    UPDATE votes SET metrics = REPLACE(metrics, '"vif": ', '"vifp": ');
    UPDATE rounds SET metrics = REPLACE(metrics, '"vif": ', '"vifp": ');
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def default_db_path() -> Path:
    """``$LPIPS_EXPLORER_DATA/quiz.sqlite3``, else ``$XDG_DATA_HOME/lpips-explorer/quiz.sqlite3``
    (``~/.local/share/lpips-explorer/quiz.sqlite3``): outside the source tree.

    >>> default_db_path().name
    'quiz.sqlite3'
    """
    data = os.environ.get("LPIPS_EXPLORER_DATA")
    if data:
        return Path(data).expanduser() / "quiz.sqlite3"
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "lpips-explorer" / "quiz.sqlite3"


def _statements(script: str) -> Iterator[str]:
    """Split an SQL script into statements (``sqlite3.complete_statement`` handles triggers)."""
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                yield buffer.strip()
            buffer = ""


def migrate(conn: sqlite3.Connection, migrations: list[str] | None = None) -> int:
    """Bring the database of ``conn`` (in autocommit mode) up to date; returns its version.

    The version is read inside a write transaction, so two processes opening an old
    database at once migrate it once.
    """
    migrations = MIGRATIONS if migrations is None else migrations
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(migrations):
            raise QuizStorageError(
                f"the quiz cannot use this database: it has schema version {version}, written by a newer "
                f"LPIPS Explorer (this one knows up to {len(migrations)}). Update the app or use another file."
            )
        for target in range(version + 1, len(migrations) + 1):
            for statement in _statements(migrations[target - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(target)}")  # PRAGMAs take no parameters
        conn.execute("COMMIT")
        return max(version, len(migrations))
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class QuizStore(BaseQuizStore):
    """The quiz database: one SQLite file shared by every thread and process of the app.

    * WAL journal, ``synchronous=FULL``: a vote acknowledged (``record_vote`` returned) is on
      disk; readers never block writers.
    * ``busy_timeout`` (10 s by default): concurrent writers queue instead of failing; writes
      take the lock up front (``BEGIN IMMEDIATE``) so no transaction has to give up midway.
    * One connection per thread (and per process, after a fork); :meth:`close` closes the
      calling thread's.
    * ``read_only=True`` opens an existing, current database for reading only (a dashboard).
    * One vote per voter and round: the same pick again is acknowledged again (same row), a
      different one is refused (:class:`~store.errors.QuizVoteConflictError`).

    Every ``sqlite3``/filesystem failure becomes a :class:`QuizStorageError`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = 10.0,
                 read_only: bool = False) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self.busy_timeout = float(busy_timeout)
        self.read_only = bool(read_only)
        self._local = threading.local()
        if not self.read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise QuizStorageError(
                    f"the quiz cannot save votes: the folder {self.path.parent} cannot be created ({exc}). "
                    "Point LPIPS_EXPLORER_QUIZ_DB at a writable file path, or LPIPS_EXPLORER_DATA at a "
                    "writable folder."
                ) from None
        with self._guard("open its database"):
            conn = self._conn()
            if self.read_only:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    raise QuizStorageError(
                        f"the quiz cannot read {self.path}: its schema version is {version}, this app needs "
                        f"{SCHEMA_VERSION}. Open it once for writing to migrate it."
                    )
            else:
                migrate(conn)

    # -- connections -------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self.read_only:
            uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, isolation_level=None)
        else:
            conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if not self.read_only:
                # Persistent in the file; a filesystem without WAL support keeps its old mode.
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "conn", None) is None or local.pid != os.getpid():
            local.conn, local.pid = self._open(), os.getpid()
        return local.conn

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise QuizStorageError(
                f"the quiz cannot {action}: {exc} (database {self.path}). Check that the folder is "
                "writable and the disk has free space."
            ) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the lock from the start; commits or rolls back."""
        with self._guard("save votes"):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._guard("read its database"):
            return self._conn().execute(sql, params).fetchall()

    def backup(self, destination: str | os.PathLike[str]) -> Path:
        """Copy the whole database, votes still in the ``-wal`` file included, to the new file
        ``destination`` (SQLite's online backup: servers keep writing meanwhile); returns its path.

        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> store = QuizStore(folder / "quiz.sqlite3")
        >>> code, _ = store.create_session("Friday")
        >>> QuizStore(store.backup(folder / "copy.sqlite3")).session(code).title
        'Friday'
        """
        target = Path(destination).expanduser()
        if target.exists():
            raise QuizStorageError(f"the quiz cannot back up to {target}: the file exists. Choose a new file name.")
        with self._guard("back up its database"):
            copy = sqlite3.connect(str(target))
            try:
                self._conn().backup(copy)
            finally:
                copy.close()
        return target

    # -- the SQL behind BaseQuizStore ---------------------------------------------------

    def _insert_session(self, code: str, key_hash: str, seed: int, n_rounds: int, title: str, kind: str) -> bool:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM sessions WHERE code = ?", (code,)).fetchone():
                return False  # taken; the transaction just commits nothing
            conn.execute(
                "INSERT INTO sessions (code, teacher_key_hash, seed, n_rounds, created, title, kind) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (code, key_hash, seed, n_rounds, _now(), title, kind),
            )
            return True

    def _fetch_session(self, code: str) -> SessionInfo | None:
        rows = self._read("SELECT code, title, seed, n_rounds, created, kind FROM sessions WHERE code = ?", (code,))
        return SessionInfo(*rows[0]) if rows else None

    def _fetch_teacher_key_hash(self, code: str) -> str | None:
        rows = self._read("SELECT teacher_key_hash FROM sessions WHERE code = ?", (code,))
        return rows[0][0] if rows else None

    def _insert_vote(self, ballot: Ballot) -> int:
        spec = ballot.spec
        with self._write() as conn:
            row = conn.execute("SELECT seed, n_rounds, kind FROM sessions WHERE code = ?",
                               (ballot.session_code,)).fetchone()
            seed = self._check_ballot(ballot, row)
            stored = conn.execute(
                "SELECT id, choice FROM votes WHERE session_code = ? AND round_index = ? AND voter_id = ?",
                (ballot.session_code, ballot.round_index, ballot.voter_id),
            ).fetchone()
            if stored is not None:
                return self._repeated(ballot.round_index, ballot.choice, stored)
            (vote_id,) = conn.execute(
                "INSERT INTO votes (session_code, round_index, voter_id, choice, created, seed, sample, "
                "family_a, family_b, chain_a, chain_b, metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (ballot.session_code, ballot.round_index, ballot.voter_id, ballot.choice, _now(), seed, spec.sample,
                 spec.family_a, spec.family_b, ballot.chain_a, ballot.chain_b, ballot.metrics),
            ).fetchone()
        return int(vote_id)

    def _insert_voter(self, code: str, token_hash: str, voter_id: str) -> bool:
        with self._write() as conn:
            if not conn.execute("SELECT 1 FROM sessions WHERE code = ?", (code,)).fetchone():
                return False
            conn.execute("INSERT INTO voters (token_hash, session_code, voter_id, created) VALUES (?, ?, ?, ?)",
                         (token_hash, code, voter_id, _now()))
            return True

    def _fetch_voter(self, token_hash: str) -> tuple[str, str] | None:
        rows = self._read("SELECT session_code, voter_id FROM voters WHERE token_hash = ?", (token_hash,))
        return tuple(rows[0]) if rows else None  # type: ignore[return-value]

    def _fetch_picks(self, code: str, voter_id: str) -> list[tuple[int, str]]:
        return self._read("SELECT round_index, choice FROM votes WHERE session_code = ? AND voter_id = ? "
                          "ORDER BY round_index", (code, voter_id))  # type: ignore[return-value]

    def _count_voters(self, code: str) -> int:
        return self._read("SELECT COUNT(*) FROM voters WHERE session_code = ?", (code,))[0][0]

    def _cast_vote(self, cast: Cast) -> Receipt:
        with self._write() as conn:
            session = conn.execute("SELECT seed, n_rounds, kind FROM sessions WHERE code = ?",
                                   (cast.session_code,)).fetchone()
            voter = conn.execute("SELECT session_code, voter_id FROM voters WHERE token_hash = ?",
                                 (cast.token_hash,)).fetchone()
            voter_id = self._check_cast(cast, session, voter)
            stored = conn.execute(
                "SELECT id, choice FROM votes WHERE session_code = ? AND round_index = ? AND voter_id = ?",
                (cast.session_code, cast.round_index, voter_id),
            ).fetchone()
            if stored is not None:
                vote_id = self._repeated(cast.round_index, cast.choice, stored)
                return Receipt(vote_id, cast.round_index, cast.choice, True)
            inserted = conn.execute(
                "INSERT INTO votes (session_code, round_index, voter_id, choice, created, seed, sample, family_a, "
                "family_b, chain_a, chain_b, metrics) SELECT r.session_code, r.round_index, ?, ?, ?, ?, r.sample, "
                "r.family_a, r.family_b, r.chain_a, r.chain_b, r.metrics FROM rounds r "
                "WHERE r.session_code = ? AND r.round_index = ? RETURNING id",
                (voter_id, cast.choice, _now(), session[0], cast.session_code, cast.round_index),
            ).fetchone()
            if inserted is None:
                raise self._not_ready(cast)
        return Receipt(int(inserted[0]), cast.round_index, cast.choice, False)

    def _insert_round(self, code: str, prepared: PreparedRound, metrics_json: str, chain_a: str,
                      chain_b: str) -> bool:
        spec = prepared.spec
        with self._write() as conn:
            self._check_round(code, prepared, conn.execute("SELECT seed, n_rounds, kind FROM sessions WHERE code = ?",
                                                           (code,)).fetchone())
            inserted = conn.execute(
                "INSERT INTO rounds (session_code, round_index, sample, family_a, family_b, chain_a, chain_b, ref_png, "
                "a_png, b_png, metrics, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (session_code, round_index) DO NOTHING RETURNING round_index",
                (code, spec.index, spec.sample, spec.family_a, spec.family_b, chain_a, chain_b, prepared.ref_png,
                 prepared.a_png, prepared.b_png, metrics_json, _now()),
            ).fetchone()
        return inserted is not None

    def _fetch_round_row(self, code: str, index: int) -> tuple[Any, ...] | None:
        rows = self._read("SELECT sample, family_a, family_b, chain_a, chain_b, ref_png, a_png, b_png, metrics "
                          "FROM rounds WHERE session_code = ? AND round_index = ?", (code, index))
        return rows[0] if rows else None

    def _fetch_round_indices(self, code: str) -> list[int]:
        return [r[0] for r in self._read("SELECT round_index FROM rounds WHERE session_code = ? ORDER BY round_index",
                                         (code,))]

    def _fetch_vote_rows(self, code: str) -> list[tuple[Any, ...]]:
        return self._read(
            "SELECT id, session_code, round_index, voter_id, choice, created, seed, sample, family_a, family_b, "
            "chain_a, chain_b, metrics FROM votes WHERE session_code = ? ORDER BY round_index, id",
            (code,),
        )
