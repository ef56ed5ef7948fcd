"""The quiz store's errors; every one is a :class:`teach.quiz.QuizError`, hence a :class:`core.errors.LpipsExplorerError`.

:class:`QuizError` and :class:`QuizInputError` come from :mod:`teach.quiz` (making a round can
fail on bad input too) and are re-exported here, so the store's users need one import.
"""

from __future__ import annotations

from teach.quiz import QuizError, QuizInputError

__all__ = [
    "QuizError",
    "QuizInputError",
    "QuizRoundNotReadyError",
    "QuizSessionNotFoundError",
    "QuizStorageError",
    "QuizTokenError",
    "QuizVoteConflictError",
    "QuizVoteError",
]


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
