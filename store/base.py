"""What every quiz store is, whatever database holds it: the interface and everything but the SQL.

:class:`BaseQuizStore` is the public interface (:meth:`~BaseQuizStore.create_session`,
:meth:`~BaseQuizStore.session`, :meth:`~BaseQuizStore.check_teacher_key`,
:meth:`~BaseQuizStore.record_vote`, :meth:`~BaseQuizStore.votes`,
:meth:`~BaseQuizStore.export_csv`, :meth:`~BaseQuizStore.summary`,
:meth:`~BaseQuizStore.close`). It validates every argument, makes join codes and teacher keys
(only a key's hash is stored), writes the CSV export and builds the dashboard summary; a
backend (:class:`store.sqlite.QuizStore`, :class:`store.postgres.PostgresQuizStore`) subclasses it and only
implements the few abstract methods that talk to its database, each documented with the
transaction it must run in.

The records (:class:`SessionInfo`, :class:`Vote`, :class:`RoundSummary`, :class:`Summary`) are
the same for every backend. A store keeps what :mod:`teach.quiz` makes (a round's
:class:`~teach.quiz.RoundSpec`, the :func:`~teach.quiz.score_round` values) and summarizes it
with its statistics (:class:`~teach.quiz.Agreement`), so this package imports :mod:`teach.quiz`;
:mod:`teach` never imports :mod:`store`.
"""

from __future__ import annotations

import abc
import csv
import hashlib
import hmac
import json
import os
import re
import secrets
import unicodedata
from dataclasses import replace
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Self, TextIO

from core.distortions import chain_to_dict
from store.errors import (
    check_int,
    QuizInputError,
    QuizRoundNotReadyError,
    QuizSessionNotFoundError,
    QuizStorageError,
    QuizTokenError,
    QuizVoteConflictError,
    QuizVoteError,
)
from store.records import PNG_SIGNATURE, PreparedRound, RoundSpec, metric_order, pair_label

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "KINDS",
    "CSV_COLUMNS",
    "BaseQuizStore",
    "Ballot",
    "Cast",
    "Receipt",
    "RoundSummary",
    "SessionInfo",
    "StoredRound",
    "Summary",
    "TOKEN_LENGTH",
    "Vote",
    "check_kind",
    "check_token",
    "clean_title",
    "normalize_code",
]

Choice = Literal["A", "B", "same", "different"]

#: The kinds of question a session asks, as in the LPIPS paper's BAPPS data: ``"2afc"`` (which
#: of A and B is closer to the reference? answers ``"A"``/``"B"``) and ``"jnd"`` (a just
#: noticeable difference: are these two images the same? answers ``"same"``/``"different"``).
KINDS = ("2afc", "jnd")
_CHOICES = {"2afc": ("A", "B"), "jnd": ("same", "different")}

#: Join codes: no 0/O, 1/I/L, so a code read off a projector is typed right.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6

#: The fixed leading columns of :meth:`BaseQuizStore.export_csv`; each metric then adds
#: ``<metric>_a``, ``<metric>_b`` and ``<metric>_pick``.
CSV_COLUMNS = (
    "session", "round", "seed", "reference", "family_a", "family_b",
    "chain_a", "chain_b", "choice", "voter", "time",
)

_MAX_ROUNDS = 500
_MAX_TITLE = 200
#: Combining marks kept after one character: enough for any script's accents, not for "Zalgo"
#: text whose stacked marks spill over the lines around the title on everyone's screen.
_MAX_MARKS = 4
_MAX_VOTER = 100

#: A student token: ``secrets.token_urlsafe(16)``, 128 random bits as 22 URL-safe characters.
TOKEN_LENGTH = 22
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}")


def clean_title(title: str) -> str:
    r"""A session title as it may be shown to a whole class: NFC-normalized, without control,
    format (bidi overrides and isolates, zero-width characters), surrogate, private-use or
    unassigned characters, line breaks and tabs turned into single spaces, at most
    :data:`_MAX_MARKS` combining marks per character, trimmed. The length is checked by the
    caller (:meth:`BaseQuizStore.create_session`) on the cleaned text.

    >>> clean_title("Quiz\x00 \x1b[31mred\u202egnp.exe\n\tweek 3")
    'Quiz [31mredgnp.exe week 3'
    """
    out: list[str] = []
    marks = 0
    for ch in unicodedata.normalize("NFC", title):
        category = unicodedata.category(ch)
        if ch.isspace() or category in ("Zl", "Zp"):
            if out and out[-1] != " ":
                out.append(" ")
            marks = 0
            continue
        if category[0] == "C":  # Cc, Cf, Cs, Co, Cn: nothing a person means to show
            continue
        if category in ("Mn", "Me"):
            marks += 1
            if marks > _MAX_MARKS:
                continue
        else:
            marks = 0
        out.append(ch)
    return "".join(out).strip()


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionInfo:
    """A quiz session as the app shows it (the teacher key's hash stays in the store)."""

    code: str
    title: str
    seed: int
    n_rounds: int
    created: str
    kind: str = "2afc"


@dataclass(frozen=True)
class Vote:
    """One stored judgment. ``chain_a``/``chain_b`` are :func:`~core.distortions.chain_to_dict`
    dicts; ``metrics`` is what :func:`~teach.quiz.score_round` returned when the vote was cast."""

    id: int
    session_code: str
    round_index: int
    voter_id: str
    choice: Choice
    created: str
    seed: int
    sample: str
    family_a: str
    family_b: str
    chain_a: dict[str, Any]
    chain_b: dict[str, Any]
    metrics: dict[str, dict[str, Any]]

    @property
    def pair(self) -> str:
        return pair_label(self.family_a, self.family_b)


@dataclass(frozen=True)
class Ballot:
    """A validated vote on its way into a backend (:meth:`BaseQuizStore._upsert_vote`).

    ``code`` is the join code as the caller gave it (for messages), ``session_code`` its
    normalized form (the key); ``chain_a``, ``chain_b`` and ``metrics`` are already JSON text.
    """

    code: str
    session_code: str
    round_index: int
    voter_id: str
    choice: Choice
    spec: RoundSpec
    chain_a: str
    chain_b: str
    metrics: str


@dataclass(frozen=True)
class Cast:
    """A student's validated pick on its way into a backend (:meth:`BaseQuizStore._cast_vote`):
    ``code`` as given (for messages), ``session_code`` normalized, the token's hash, the round
    and the choice."""

    code: str
    session_code: str
    token_hash: str
    round_index: int
    choice: Choice


@dataclass(frozen=True)
class Receipt:
    """A vote the store holds: its row id, round, the pick stored, and whether this call only
    repeated a pick already stored (a re-sent vote, acknowledged again, counted once)."""

    vote_id: int
    round_index: int
    choice: Choice
    repeated: bool


@dataclass(frozen=True)
class StoredRound:
    """A prepared round as stored: the images (PNG, exactly what was measured), where they come
    from, and every metric's values and pick. Read by every student; never changed."""

    session_code: str
    index: int
    sample: str
    family_a: str
    family_b: str
    chain_a: dict[str, Any]
    chain_b: dict[str, Any]
    ref_png: bytes
    a_png: bytes
    b_png: bytes
    metrics: dict[str, dict[str, Any]]

    @property
    def pair(self) -> str:
        return pair_label(self.family_a, self.family_b)


# --------------------------------------------------------------------------------------
# Validation and small helpers
# --------------------------------------------------------------------------------------


def normalize_code(code: Any) -> str:
    """A join code as stored: upper case, without spaces or dashes.

    >>> normalize_code("  abc-d2e ")
    'ABCD2E'
    """
    if not isinstance(code, str):
        raise QuizInputError(f"A join code is text like 'K7QX2M', got {type(code).__name__}.")
    return "".join(code.split()).replace("-", "").upper()


def _hash_key(key: str) -> str:
    # The key is 128 random bits, so a plain SHA-256 is enough: there is nothing to brute-force
    # that a slow hash (scrypt) would protect. The prefix leaves room for another scheme later.
    return "sha256$" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> str:
    """The current time as stored: ISO 8601, UTC, milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")




def check_kind(kind: Any) -> str:
    """``kind`` if it is one of :data:`KINDS`, else :class:`QuizInputError`."""
    if kind not in KINDS:
        raise QuizInputError(f"The kind of question must be '2afc' (which of two is closer to the reference) or "
                             f"'jnd' (are two images the same?), got {kind!r}.")
    return kind


def _check_choice(choice: Any) -> Choice:
    """Any answer a session may get, normalized: ``'A'``/``'B'`` (any case) or ``'same'``/``'different'``.
    Whether it fits the session's kind is checked with the session (:func:`_check_choice_kind`)."""
    text = choice.strip() if isinstance(choice, str) else ""
    if text.upper() in ("A", "B"):
        return text.upper()  # type: ignore[return-value]
    if text.lower() in ("same", "different"):
        return text.lower()  # type: ignore[return-value]
    raise QuizVoteError(f"A vote must be 'A' or 'B' (the image closer to the reference) or, in a JND session, "
                        f"'same' or 'different', got {choice!r}.")


def _check_choice_kind(choice: str, kind: str, round_index: int) -> None:
    allowed = _CHOICES.get(kind, ())
    if choice not in allowed:
        question = ("asks whether two images are the same" if kind == "jnd"
                    else "asks which image is closer to the reference")
        raise QuizVoteError(f"This session {question}: round {round_index + 1} takes "
                            f"{' or '.join(repr(a) for a in allowed)}, not {choice!r}. Nothing was saved.")


def check_token(token: Any) -> str:
    """``token`` if it looks like a student token (22 URL-safe characters), else :class:`QuizTokenError`.

    >>> check_token("x" * 22) == "x" * 22
    True
    >>> check_token("not a token")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    store.errors.QuizTokenError: The student token in this link is damaged...
    """
    value = token.strip() if isinstance(token, str) else ""
    if not _TOKEN.fullmatch(value):
        raise QuizTokenError(
            f"The student token in this link is damaged (a token is {TOKEN_LENGTH} letters, digits, '-' or '_'). "
            "Join again with the session code."
        )
    return value


def _check_round_number(round_index: Any) -> int:
    if isinstance(round_index, bool) or not isinstance(round_index, int):
        raise QuizVoteError(f"The round index must be an integer, got {round_index!r}.")
    return round_index


def _check_voter(voter_id: Any) -> str:
    value = voter_id.strip() if isinstance(voter_id, str) else ""
    if not value or len(value) > _MAX_VOTER or not value.isprintable():
        raise QuizVoteError(
            f"The voter id must be printable text of 1 to {_MAX_VOTER} characters, got {voter_id!r}."
        )
    return value


def _check_metrics(metrics: Any, kind: str = "2afc") -> str:
    """Validate a :func:`~teach.quiz.score_round` result (2AFC: ``a``, ``b`` and ``pick`` per
    metric) or a :func:`~teach.quiz.score_jnd_round` one (JND: the metric's ``value`` for the pair, per
    metric) and return it as JSON."""
    problem = None
    if not isinstance(metrics, Mapping):
        problem = f"got {type(metrics).__name__}"
    else:
        for name, entry in metrics.items():
            if not isinstance(name, str) or not isinstance(entry, Mapping):
                problem = f"entry {name!r} is not a dict"
            elif kind == "jnd":
                if isinstance(entry.get("value"), bool) or not isinstance(entry.get("value"), (int, float)):
                    problem = f"{name} needs a numeric 'value' for the pair of images"
            elif entry.get("pick") not in ("A", "B", "tie"):
                problem = f"{name}'s pick is {entry.get('pick')!r}, not 'A', 'B' or 'tie'"
            elif not all(isinstance(entry.get(k), (int, float)) for k in ("a", "b")):
                problem = f"{name} needs numeric values 'a' and 'b'"
            if problem:
                break
    if problem:
        made_by = "score_jnd_round()" if kind == "jnd" else "score_round()"
        raise QuizVoteError(f"metrics must be what {made_by} returns; {problem}.")
    return json.dumps(dict(metrics), sort_keys=True)


def _csv_text(value: str) -> str:
    """Defuse spreadsheet formulas in free text (OWASP: prefix with a quote)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _write_csv(fh: TextIO, header: list[str], rows: list[list[Any]]) -> None:
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


# --------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------


class BaseQuizStore(abc.ABC):
    """A quiz database: sessions (join code, teacher key hash, seed, rounds) and their votes.

    The public methods are the same for every backend and are implemented here; a backend
    implements the abstract ``_``-methods (the SQL) and :meth:`close`, and turns every failure
    of its database or filesystem into a :class:`QuizStorageError` whose message starts with
    "the quiz cannot ...". When :meth:`record_vote` returns, the vote must be durable.

    A voter has one vote per round: the first pick stands. Sending the same pick again is
    acknowledged again (the same row, counted once); a different pick for a voted round is
    refused with :class:`QuizVoteConflictError`.

    Students are identified by a *token* (:meth:`join`): 128 random bits that the student's
    browser keeps in the page's URL, tied to one session. The store keeps only the token's
    SHA-256 and a random pseudonym (``voter_id``, in the CSV); nothing personal.
    """

    # -- what a backend implements -----------------------------------------------------

    @abc.abstractmethod
    def _insert_session(self, code: str, key_hash: str, seed: int, n_rounds: int, title: str, kind: str) -> bool:
        """In one write transaction: unless a session already has ``code``, insert it (created
        :func:`_now`); return whether it was inserted (``False``: the code is taken)."""

    @abc.abstractmethod
    def _fetch_session(self, code: str) -> SessionInfo | None:
        """The session with the (normalized) join ``code``, or ``None``."""

    @abc.abstractmethod
    def _fetch_teacher_key_hash(self, code: str) -> str | None:
        """The stored teacher key hash of session ``code``, or ``None`` when there is no such session."""

    @abc.abstractmethod
    def _insert_vote(self, ballot: Ballot) -> int:
        """In one write transaction: read ``(seed, n_rounds, kind)`` of ``ballot.session_code`` (``None``
        when there is no such session) and pass it to :meth:`_check_ballot`, which raises for an
        unknown session, a round out of range or a foreign round; then insert the vote (created
        :func:`_now`, seed from the session) unless the voter has voted in that round; if so, pass
        the stored ``(id, choice)`` to :meth:`_repeated` (it returns the id for the same choice and
        raises for another). Returns the row id; durable on return."""

    @abc.abstractmethod
    def _insert_voter(self, code: str, token_hash: str, voter_id: str) -> bool:
        """In one write transaction: if session ``code`` exists, insert a voter (created :func:`_now`)
        and return ``True``; ``False`` when there is no such session."""

    @abc.abstractmethod
    def _fetch_voter(self, token_hash: str) -> tuple[str, str] | None:
        """``(session_code, voter_id)`` of the token with this hash, or ``None``."""

    @abc.abstractmethod
    def _fetch_picks(self, code: str, voter_id: str) -> list[tuple[int, str]]:
        """``(round_index, choice)`` of every vote of ``voter_id`` in session ``code``, by round."""

    @abc.abstractmethod
    def _count_voters(self, code: str) -> int:
        """How many tokens session ``code`` has issued (students who joined)."""

    @abc.abstractmethod
    def _cast_vote(self, cast: Cast) -> Receipt:
        """In one write transaction: read the session's ``(seed, n_rounds, kind)`` and the token's
        ``(session_code, voter_id)`` (each ``None`` when missing) and pass them to
        :meth:`_check_cast`; if the voter has voted in the round, return :meth:`_repeated` of the
        stored ``(id, choice)``; if the round is not stored, raise :class:`QuizRoundNotReadyError`
        (:meth:`_not_ready`); else insert the vote with the stored round's sample, families,
        chains and metrics (created :func:`_now`). A concurrent identical insert is handled as a
        repeat. Durable on return."""

    @abc.abstractmethod
    def _insert_round(self, code: str, prepared: PreparedRound, metrics_json: str, chain_a: str,
                      chain_b: str) -> bool:
        """In one write transaction: pass the session's ``(seed, n_rounds, kind)`` (or ``None``) to
        :meth:`_check_round`, then insert the round unless it is stored; whether it was inserted."""

    @abc.abstractmethod
    def _fetch_round_row(self, code: str, index: int) -> tuple[Any, ...] | None:
        """``(sample, family_a, family_b, chain_a, chain_b, ref_png, a_png, b_png, metrics)`` of a
        stored round (chains and metrics as the JSON text stored, images as bytes), or ``None``."""

    @abc.abstractmethod
    def _fetch_round_indices(self, code: str) -> list[int]:
        """The indices of session ``code``'s stored rounds, in order."""

    @abc.abstractmethod
    def _fetch_vote_rows(self, code: str) -> list[tuple[Any, ...]]:
        """Session ``code``'s votes, ordered by round and then by id, as tuples ``(id, session_code,
        round_index, voter_id, choice, created, seed, sample, family_a, family_b, chain_a, chain_b,
        metrics)``, the last three the JSON text that was stored."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release this store's connection(s) held by the calling thread (PostgreSQL: its idle ones);
        the store stays usable and reconnects when used again."""

    # -- the interface -----------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backup(self, destination: str | os.PathLike[str]) -> Any:
        """A consistent copy of the whole database at ``destination`` while servers keep writing.
        Backends that cannot (PostgreSQL: use ``pg_dump``) raise :class:`QuizStorageError`."""
        raise QuizStorageError(
            f"the quiz cannot back up a {type(self).__name__} database itself; use the database's own tool "
            "(PostgreSQL: pg_dump)."
        )

    def create_session(self, title: str, n_rounds: int = 10, seed: int | None = None,
                       kind: str = "2afc") -> tuple[str, str]:
        """Create a session asking ``kind`` questions (:data:`KINDS`: ``"2afc"`` or ``"jnd"``);
        returns ``(join_code, teacher_key)``. Only the key's hash is stored, so the key cannot be
        read back from the store: the app keeps it in the teacher's page address."""
        kind = check_kind(kind)
        cleaned = clean_title(title) if isinstance(title, str) else ""
        if not cleaned or len(cleaned) > _MAX_TITLE:
            shown = repr(title) if len(repr(title)) <= 80 else repr(title)[:80] + "…"
            raise QuizInputError(f"The session title must be text of 1 to {_MAX_TITLE} characters (control "
                                 f"characters do not count), got {shown}; shorten it and create the session again.")
        n_rounds = check_int(n_rounds, "The number of rounds", 1, _MAX_ROUNDS)
        seed = secrets.randbits(32) if seed is None else check_int(seed, "The session seed", 0, 2**63 - 1)
        key = secrets.token_urlsafe(16)
        for _ in range(20):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if self._insert_session(code, _hash_key(key), seed, n_rounds, cleaned, kind):
                return code, key
            # taken (one in a billion): try another code
        raise QuizStorageError("the quiz cannot create a session: no free join code was found; try again.")

    def session(self, code: str) -> SessionInfo | None:
        """The session with this join code (any case, spaces and dashes ignored), or ``None``."""
        found = self._fetch_session(normalize_code(code))
        # Cleaned again on the way out: a title stored before titles were cleaned, or written
        # into the database by something else, reaches the class's screens the same way.
        return None if found is None else replace(found, title=clean_title(found.title))

    def require_session(self, code: str) -> SessionInfo:
        """The session with this join code; :class:`QuizSessionNotFoundError` when there is none."""
        info = self.session(code)
        if info is None:
            raise QuizSessionNotFoundError(f"There is no quiz session with the code {code!r}; check the code.")
        return info

    def check_teacher_key(self, code: str, key: str) -> bool:
        """Whether ``key`` is the teacher key of session ``code`` (constant-time comparison)."""
        if not isinstance(key, str):
            return False
        found = self._fetch_teacher_key_hash(normalize_code(code))
        stored = found if found is not None else _hash_key(secrets.token_urlsafe(16))  # same work either way
        return hmac.compare_digest(stored.encode(), _hash_key(key.strip()).encode()) and found is not None

    def record_vote(self, code: str, round_index: int, voter_id: str, choice: str, spec: RoundSpec,
                    metrics: Mapping[str, Mapping[str, Any]]) -> int:
        """Store one judgment of ``voter_id`` (any pseudonym) durably and return its row id.

        The low-level door (tests, imports); the app uses :meth:`cast_vote` with a student token
        and the stored round. The same pick again returns the same id; another pick for a voted
        round raises :class:`QuizVoteConflictError`. Raises :class:`QuizSessionNotFoundError` for
        an unknown code, :class:`QuizVoteError` for a bad choice, voter id, round index or a
        ``spec`` of another session or round, and :class:`QuizStorageError` when the database
        cannot be written.
        """
        normalized = normalize_code(code)
        choice = _check_choice(choice)
        voter_id = _check_voter(voter_id)
        round_index = _check_round_number(round_index)
        if not isinstance(spec, RoundSpec):
            raise QuizVoteError(f"spec must be the round's RoundSpec from make_round(), got {type(spec).__name__}.")
        metrics_json = _check_metrics(metrics, spec.kind)
        chain_a = json.dumps(chain_to_dict(spec.chain_a), sort_keys=True)
        chain_b = json.dumps(chain_to_dict(spec.chain_b), sort_keys=True)
        ballot = Ballot(code, normalized, round_index, voter_id, choice, spec, chain_a, chain_b, metrics_json)
        return int(self._insert_vote(ballot))

    # -- students: tokens, votes by token, progress ---------------------------------------

    def join(self, code: str) -> str:
        """Issue a new student token for session ``code`` (raises :class:`QuizSessionNotFoundError`).

        The token is 128 random bits (``secrets.token_urlsafe``); only its SHA-256 is stored, with
        a random pseudonym for the CSV. It carries nothing about the student.
        """
        normalized = normalize_code(code)
        token = secrets.token_urlsafe(16)
        if not self._insert_voter(normalized, _hash_key(token), secrets.token_hex(6)):
            raise QuizSessionNotFoundError(f"There is no quiz session with the code {code!r}; check the code.")
        return token

    def voter(self, code: str, token: str) -> str:
        """The pseudonym (``voter_id``) of ``token`` in session ``code``; :class:`QuizTokenError` for a
        malformed token, one this store never issued, or one issued for another session."""
        normalized = normalize_code(code)
        return self._check_token_owner(code, normalized, self._fetch_voter(_hash_key(check_token(token))))

    def picks(self, code: str, token: str) -> dict[int, Choice]:
        """The student's stored picks in session ``code``, round index → ``"A"``/``"B"``."""
        normalized = normalize_code(code)
        voter_id = self.voter(normalized, token)
        return {int(index): choice for index, choice in self._fetch_picks(normalized, voter_id)}

    def joined(self, code: str) -> int:
        """How many students have joined session ``code`` (tokens issued)."""
        return int(self._count_voters(self.require_session(code).code))

    def cast_vote(self, code: str, token: str, round_index: int, choice: str) -> Receipt:
        """Store the student's pick for a prepared round; durable when it returns.

        The stored round's sample, chains and metric values go with the vote (the student's page
        showed exactly those). Sending the same pick again returns the same vote
        (``repeated=True``); a different pick for a voted round raises
        :class:`QuizVoteConflictError`. A bad token raises :class:`QuizTokenError`, a round out of
        range :class:`QuizVoteError`, a round not prepared yet :class:`QuizRoundNotReadyError`; in
        each case nothing is stored.
        """
        normalized = normalize_code(code)
        choice = _check_choice(choice)
        round_index = _check_round_number(round_index)
        token_hash = _hash_key(check_token(token))
        return self._cast_vote(Cast(code, normalized, token_hash, round_index, choice))

    @staticmethod
    def _check_token_owner(code: str, normalized: str, found: tuple[str, str] | None) -> str:
        if found is None:
            raise QuizTokenError(
                "This student token was not issued by this quiz (a link typed by hand or from another "
                "server's database?). Join again with the session code."
            )
        session_code, voter_id = found
        if session_code != normalized:
            raise QuizTokenError(
                f"This student token belongs to another quiz session, not {normalized}. Join session "
                f"{normalized} with its code to get your own."
            )
        return voter_id

    @classmethod
    def _check_cast(cls, cast: Cast, session: tuple[int, int, str] | None, voter: tuple[str, str] | None) -> str:
        """Check ``cast`` inside the backend's write transaction; returns the voter id."""
        if session is None:
            raise QuizSessionNotFoundError(f"There is no quiz session with the code {cast.code!r}; check the code.")
        _, n_rounds, kind = session
        if not 0 <= cast.round_index < n_rounds:
            raise QuizVoteError(
                f"Round {cast.round_index + 1} does not exist: session {cast.session_code} has rounds 1 to "
                f"{n_rounds}. Nothing was saved."
            )
        _check_choice_kind(cast.choice, kind, cast.round_index)
        return cls._check_token_owner(cast.code, cast.session_code, voter)

    @staticmethod
    def _repeated(round_index: int, choice: str, stored: tuple[int, str]) -> int:
        """The stored vote's id when ``choice`` repeats it; :class:`QuizVoteConflictError` otherwise."""
        vote_id, stored_choice = stored
        if stored_choice != choice:
            raise QuizVoteConflictError(
                f"Round {round_index + 1} already has your pick {stored_choice}; a vote cannot be changed, "
                f"so {choice} was not saved."
            )
        return int(vote_id)

    @staticmethod
    def _not_ready(cast: Cast) -> QuizRoundNotReadyError:
        return QuizRoundNotReadyError(
            f"Round {cast.round_index + 1} of session {cast.session_code} is still being prepared; "
            "wait a moment and pick again. Nothing was saved."
        )

    # -- prepared rounds ------------------------------------------------------------------

    def save_round(self, code: str, prepared: PreparedRound) -> bool:
        """Store a prepared round (:func:`teach.preparation.prepare_round`) of session ``code``;
        ``False`` (nothing changed) when that round is stored already: the first copy stands."""
        normalized = normalize_code(code)
        if not isinstance(prepared, PreparedRound):
            raise QuizInputError(f"save_round() needs a PreparedRound from prepare_round(), got "
                                 f"{type(prepared).__name__}.")
        for name in ("ref_png", "a_png", "b_png"):
            if not isinstance(getattr(prepared, name), bytes) or not getattr(prepared, name).startswith(PNG_SIGNATURE):
                raise QuizInputError(f"The prepared round's {name} is not PNG data.")
        metrics_json = _check_metrics(prepared.metrics, prepared.spec.kind)
        chain_a = json.dumps(chain_to_dict(prepared.spec.chain_a), sort_keys=True)
        chain_b = json.dumps(chain_to_dict(prepared.spec.chain_b), sort_keys=True)
        return bool(self._insert_round(normalized, prepared, metrics_json, chain_a, chain_b))

    @staticmethod
    def _check_round(code: str, prepared: PreparedRound, session: tuple[int, int, str] | None) -> None:
        if session is None:
            raise QuizSessionNotFoundError(f"There is no quiz session with the code {code!r}; check the code.")
        seed, n_rounds, kind = session
        spec = prepared.spec
        if not 0 <= spec.index < n_rounds or spec.seed != seed:
            raise QuizInputError(
                f"This prepared round is make_round({spec.seed}, {spec.index}), but session {code} has seed "
                f"{seed} and rounds 0 to {n_rounds - 1}."
            )
        if spec.kind != kind:
            raise QuizInputError(f"This prepared round asks a {spec.kind.upper()} question, but session {code} asks "
                                 f"{kind.upper()} questions; prepare it with kind={kind!r}.")

    def prepared_rounds(self, code: str) -> list[int]:
        """The indices of the rounds of session ``code`` that are prepared and stored, in order."""
        return [int(i) for i in self._fetch_round_indices(normalize_code(code))]

    def stored_round(self, code: str, index: int) -> StoredRound | None:
        """Round ``index`` of session ``code`` as prepared, or ``None`` while it is not stored."""
        normalized = normalize_code(code)
        index = _check_round_number(index)
        row = self._fetch_round_row(normalized, index)
        if row is None:
            return None
        sample, family_a, family_b, chain_a, chain_b, ref_png, a_png, b_png, metrics = row
        try:
            values = json.loads(metrics)
            ordered = {name: values[name] for name in metric_order(set(values))}  # JSON keeps them sorted
            return StoredRound(normalized, index, sample, family_a, family_b, json.loads(chain_a), json.loads(chain_b),
                               bytes(ref_png), bytes(a_png), bytes(b_png), ordered)
        except (TypeError, ValueError) as exc:
            raise QuizStorageError(f"the quiz cannot read its database: a round row is damaged ({exc}).") from None

    @staticmethod
    def _check_ballot(ballot: Ballot, session: tuple[int, int, str] | None) -> int:
        """Check ``ballot`` against its session's ``(seed, n_rounds, kind)`` (``None``: no such session)
        inside the backend's write transaction; returns the session's seed."""
        if session is None:
            raise QuizSessionNotFoundError(f"There is no quiz session with the code {ballot.code!r}; check the code.")
        seed, n_rounds, kind = session
        round_index, spec = ballot.round_index, ballot.spec
        if not 0 <= round_index < n_rounds:
            raise QuizVoteError(f"Round {round_index} does not exist; this session has rounds 0 to {n_rounds - 1}.")
        if spec.seed != seed or spec.index != round_index:
            raise QuizVoteError(
                f"This vote shows round {spec.index} of seed {spec.seed}, but session {ballot.session_code} round "
                f"{round_index} is make_round({seed}, {round_index}); reload the round."
            )
        if spec.kind != kind:
            raise QuizVoteError(f"This vote shows a {spec.kind.upper()} round, but session {ballot.session_code} asks "
                                f"{kind.upper()} questions.")
        _check_choice_kind(ballot.choice, kind, round_index)
        return seed

    def votes(self, code: str) -> list[Vote]:
        """Every vote of a session, by round and then in the order cast."""
        info = self.require_session(code)
        rows = self._fetch_vote_rows(info.code)
        try:
            return [Vote(*row[:10], json.loads(row[10]), json.loads(row[11]), json.loads(row[12])) for row in rows]
        except (TypeError, ValueError) as exc:
            raise QuizStorageError(f"the quiz cannot read its database: a vote row is damaged ({exc}).") from None

    def export_csv(self, code: str, file: TextIO | str | os.PathLike[str]) -> int:
        """Write one row per judgment to ``file`` (a text stream or a path); returns the row count.

        Header: :data:`CSV_COLUMNS` (``session, round, seed, reference, family_a, family_b,
        chain_a, chain_b, choice, voter, time``), then ``<metric>_a, <metric>_b, <metric>_pick``
        for every metric present, in :func:`~teach.quiz.metric_order` (a JND session: ``<metric>_value``,
        the metric between the pair's two images, and choices ``same``/``different``). Chains are
        ``chain_to_dict`` JSON, time is ISO 8601 UTC, a missing metric is an empty cell, and a
        voter id starting with ``= + - @`` gets a leading ``'`` so spreadsheets do not run it as
        a formula.
        """
        info = self.require_session(code)
        votes = self.votes(info.code)
        metrics = metric_order({name for vote in votes for name in vote.metrics})
        parts = ("value",) if info.kind == "jnd" else ("a", "b", "pick")  # JND: the metric on the pair
        header = list(CSV_COLUMNS) + [f"{m}_{part}" for m in metrics for part in parts]
        rows = []
        for v in votes:
            row: list[Any] = [
                v.session_code, v.round_index, v.seed, v.sample, v.family_a, v.family_b,
                json.dumps(v.chain_a, sort_keys=True), json.dumps(v.chain_b, sort_keys=True),
                v.choice, _csv_text(v.voter_id), v.created,
            ]
            for m in metrics:
                entry = v.metrics.get(m, {})
                row += [entry.get(part, "") for part in parts]
            rows.append(row)
        if isinstance(file, (str, os.PathLike)):
            try:
                with open(file, "w", newline="", encoding="utf-8") as fh:
                    _write_csv(fh, header, rows)
            except OSError as exc:
                raise QuizStorageError(f"the quiz cannot write the CSV file {file}: {exc}.") from None
        else:
            _write_csv(file, header, rows)
        return len(rows)
