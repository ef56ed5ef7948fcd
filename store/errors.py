"""The quiz's errors; every one is a :class:`QuizError`, hence a :class:`core.errors.LpipsExplorerError`.

:class:`QuizError` and :class:`QuizInputError` are defined here, below :mod:`teach` (making a
round can fail on bad input too; :mod:`teach.quiz` re-exports them), so that the store depends
on nothing above it.
"""

from __future__ import annotations

from typing import Any

from core.errors import LpipsExplorerError

__all__ = [
    "check_int",
    "QuizBusyError",
    "QuizError",
    "QuizInputError",
    "QuizRoundNotReadyError",
    "QuizSessionNotFoundError",
    "QuizStorageError",
    "QuizTokenError",
    "QuizVoteConflictError",
    "QuizVoteError",
]


class QuizError(LpipsExplorerError):
    """Something about the quiz went wrong; ``str(err)`` says what and what to do."""


class QuizInputError(QuizError, ValueError):
    """An argument (title, number of rounds, seed, image size, engines) is not acceptable."""


def check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    """``value`` if it is an integer (not a bool) in ``[low, high]``, else :class:`QuizInputError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        upper = f" and at most {high}" if high is not None else ""
        raise QuizInputError(f"{name} must be an integer of at least {low}{upper}, got {value!r}.")
    return int(value)


class QuizVoteError(QuizInputError):
    """A vote was refused: bad choice, round out of range, empty voter id, foreign round."""


class QuizVoteConflictError(QuizVoteError):
    """A different pick for a round this voter has already voted in (the first pick stands)."""


class QuizTokenError(QuizVoteError):
    """A student token that is malformed, was never issued, or belongs to another session."""


class QuizRoundNotReadyError(QuizError):
    """The round's images and metric values have not been prepared (stored) yet."""


class QuizSessionNotFoundError(QuizError, LookupError):
    """No session has this join code."""


class QuizStorageError(QuizError):
    """The database cannot be opened, read or written (read-only, disk full, damaged)."""


class QuizBusyError(QuizError):
    """The server is already preparing as many sessions' rounds as it allows at once, or this
    client has created as many sessions as it may in an hour; ``str(err)`` says when to try again."""
