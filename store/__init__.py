"""The class quiz's store: sessions and votes, durable, shared by every thread and process.

A session asks one kind of question (:data:`KINDS`): 2AFC (votes ``"A"``/``"B"``) or JND (votes
``"same"``/``"different"``); the kind is chosen when it is created and stored with it.

A teacher creates a session (:meth:`~store.base.BaseQuizStore.create_session` gives a short
join code and a secret teacher key) and its rounds are prepared and stored
(:meth:`~store.base.BaseQuizStore.save_round`); students join with the code and get a random
token (:meth:`~store.base.BaseQuizStore.join`) that identifies them across reloads, restarts and
servers, and vote with it (:meth:`~store.base.BaseQuizStore.cast_vote`). Every vote is stored with
its round, the distortion parameters and each metric's values and pick, so the teacher's
dashboard (:meth:`~store.base.BaseQuizStore.summary`) can say how often each metric agrees
with the people, overall and by the pair of distortion families.

:func:`open_store` picks the backend from a path or URL: a file path (or nothing) is SQLite
(:class:`QuizStore`, :mod:`store.sqlite`), the default, for one app server; a
``postgresql://`` (or ``postgres://``) URL is PostgreSQL
(:class:`~store.postgres.PostgresQuizStore`, :mod:`store.postgres`), for several app servers
behind one address writing to one database. The app reads the path or URL from
``LPIPS_EXPLORER_QUIZ_DB``. Both backends have the same schema, migrations and guarantees;
the interface and everything that does not depend on the database are in :mod:`store.base`.

Dependencies: this package uses :mod:`core` only (distortion chains as dicts, the metric
names). It stores and returns rows (:mod:`store.records`: the round specs and prepared rounds
that :mod:`teach` makes); what they mean — each metric's agreement with the people, the
dashboard — is computed by :mod:`teach.quiz` (:func:`~teach.quiz.summarize`). :mod:`store.postgres` (and psycopg) is
imported only when a PostgreSQL URL is opened.

A server that cannot be reached (here: nothing listens on port 1) is a
:class:`QuizStorageError` that names the variable to fix and never shows the password:

>>> open_store("postgresql://class:s3cret@127.0.0.1:1/quiz")  # doctest: +ELLIPSIS
Traceback (most recent call last):
store.errors.QuizStorageError: the quiz cannot connect to the PostgreSQL database postgresql://class:***@127.0.0.1:1/quiz: ... LPIPS_EXPLORER_QUIZ_DB names the right host, port, database, user and password.
>>> open_store("mysql://class@db/quiz")  # doctest: +ELLIPSIS
Traceback (most recent call last):
store.errors.QuizStorageError: the quiz cannot use a mysql:// database: only SQLite file paths and postgresql:// URLs are supported...
"""

from __future__ import annotations

import os
import re
from typing import Any

from store.base import (
    CODE_ALPHABET,
    CODE_LENGTH,
    CSV_COLUMNS,
    KINDS,
    TOKEN_LENGTH,
    BaseQuizStore,
    Receipt,
    SessionInfo,
    StoredRound,
    Vote,
    check_kind,
    check_token,
    clean_title,
    normalize_code,
)
from store.errors import (
    QuizBusyError,
    QuizError,
    QuizInputError,
    QuizRoundNotReadyError,
    QuizSessionNotFoundError,
    QuizStorageError,
    QuizTokenError,
    QuizVoteConflictError,
    QuizVoteError,
)
from store.sqlite import MIGRATIONS, SCHEMA_VERSION, QuizStore, default_db_path, migrate

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "CSV_COLUMNS",
    "KINDS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "BaseQuizStore",
    "QuizBusyError",
    "QuizError",
    "QuizInputError",
    "QuizRoundNotReadyError",
    "QuizSessionNotFoundError",
    "QuizStorageError",
    "QuizStore",
    "QuizTokenError",
    "QuizVoteConflictError",
    "QuizVoteError",
    "Receipt",
    "SessionInfo",
    "StoredRound",
    "TOKEN_LENGTH",
    "Vote",
    "check_kind",
    "check_token",
    "clean_title",
    "default_db_path",
    "migrate",
    "normalize_code",
    "open_store",
]

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def open_store(url_or_path: str | os.PathLike[str] | None = None, **options: Any) -> BaseQuizStore:
    """The quiz store at ``url_or_path``: a SQLite file path, ``None`` for :func:`default_db_path`,
    or a PostgreSQL URL (``postgresql://user:password@host:5432/dbname``, ``postgres://`` too).

    ``options`` go to the backend (SQLite: ``busy_timeout``, ``read_only``; PostgreSQL:
    ``connect_timeout``). Text that starts like a URL (``scheme://``) is taken as one; a
    scheme other than PostgreSQL's raises :class:`QuizStorageError`, and so does a PostgreSQL
    server that cannot be reached or refuses the login.
    """
    if isinstance(url_or_path, str):
        text = url_or_path.strip()
        match = _URL.match(text)
        if match:
            scheme = match.group(1).lower()
            if scheme.split("+")[0] in ("postgresql", "postgres"):
                from store.postgres import PostgresQuizStore  # psycopg only when it is used

                # "postgresql+psycopg://" (SQLAlchemy's spelling) is libpq's "postgresql://".
                return PostgresQuizStore("postgresql://" + text[match.end():], **options)
            raise QuizStorageError(
                f"the quiz cannot use a {scheme}:// database: only SQLite file paths and postgresql:// URLs are "
                "supported. Set LPIPS_EXPLORER_QUIZ_DB to a file path, a postgresql:// URL, or nothing (the "
                "default SQLite file)."
            )
    return QuizStore(url_or_path, **options)
