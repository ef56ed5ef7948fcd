"""The class quiz's store: sessions and votes, durable, shared by every thread and process.

A teacher creates a session (:meth:`~store.base.BaseQuizStore.create_session` gives a short
join code and a secret teacher key); students join with the code. Every vote is stored with
its round, the distortion parameters and each metric's values and pick, so the teacher's
dashboard (:meth:`~store.base.BaseQuizStore.summary`) can say how often each metric agrees
with the people, overall and by the pair of distortion families.

:func:`open_store` picks the backend from a path or URL; today that is SQLite
(:class:`QuizStore`, :mod:`store.sqlite`). The interface and everything that does not depend
on the database are in :mod:`store.base`, so another backend (PostgreSQL) only adds its SQL.

Dependencies: this package uses :mod:`core` (distortion chains as dicts) and
:mod:`teach.quiz` (the :class:`~teach.quiz.RoundSpec` that :meth:`record_vote` takes, the
metric order and the agreement statistics of the summary, the base errors); neither
:mod:`core` nor :mod:`teach` imports :mod:`store`.

>>> open_store("postgresql://class@db/quiz")  # doctest: +ELLIPSIS
Traceback (most recent call last):
store.errors.QuizStorageError: the quiz cannot use a PostgreSQL database: PostgreSQL support is not installed yet...
"""

from __future__ import annotations

import os
import re
from typing import Any

from store.base import (
    CODE_ALPHABET,
    CODE_LENGTH,
    CSV_COLUMNS,
    BaseQuizStore,
    RoundSummary,
    SessionInfo,
    Summary,
    Vote,
    normalize_code,
)
from store.errors import QuizError, QuizInputError, QuizSessionNotFoundError, QuizStorageError, QuizVoteError
from store.sqlite import MIGRATIONS, SCHEMA_VERSION, QuizStore, default_db_path, migrate

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "CSV_COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "BaseQuizStore",
    "QuizError",
    "QuizInputError",
    "QuizSessionNotFoundError",
    "QuizStorageError",
    "QuizStore",
    "QuizVoteError",
    "RoundSummary",
    "SessionInfo",
    "Summary",
    "Vote",
    "default_db_path",
    "migrate",
    "normalize_code",
    "open_store",
]

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def open_store(url_or_path: str | os.PathLike[str] | None = None, **options: Any) -> BaseQuizStore:
    """The quiz store at ``url_or_path``: a SQLite file path, or ``None`` for :func:`default_db_path`.

    ``options`` go to the backend (for SQLite: ``busy_timeout``, ``read_only``). Text that
    starts like a URL (``scheme://``) is taken as one: a ``postgresql://`` URL raises
    :class:`QuizStorageError` until that backend exists, and so does any other scheme.
    """
    if isinstance(url_or_path, str):
        match = _URL.match(url_or_path.strip())
        if match:
            scheme = match.group(1).lower()
            if scheme.split("+")[0] in ("postgresql", "postgres"):
                raise QuizStorageError(
                    "the quiz cannot use a PostgreSQL database: PostgreSQL support is not installed yet. "
                    "Use a SQLite file path (or nothing, for the default file) for now."
                )
            raise QuizStorageError(
                f"the quiz cannot use a {scheme}:// database: only SQLite file paths are supported. "
                "Give a file path (or nothing, for the default file)."
            )
    return QuizStore(url_or_path, **options)
