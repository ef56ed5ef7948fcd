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
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Self, TextIO

from core.distortions import chain_to_dict
from store.errors import QuizInputError, QuizSessionNotFoundError, QuizStorageError, QuizVoteError
from teach.quiz import Agreement, RoundSpec, agreement, check_int, metric_order, pair_label

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "CSV_COLUMNS",
    "BaseQuizStore",
    "Ballot",
    "RoundSummary",
    "SessionInfo",
    "Summary",
    "Vote",
    "normalize_code",
]

Choice = Literal["A", "B"]

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
_MAX_VOTER = 100


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
class RoundSummary:
    """The votes of one round; ``majority`` is ``"A"``, ``"B"``, ``"tie"`` or ``None`` (no votes).

    ``sample``, ``pair`` and ``metric_picks`` come from the stored votes (empty without votes).
    """

    index: int
    votes_a: int
    votes_b: int
    majority: Literal["A", "B", "tie"] | None
    sample: str = ""
    pair: str = ""
    metric_picks: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    """The teacher dashboard: every round, and each metric's agreement with the people."""

    session: SessionInfo
    n_votes: int
    n_voters: int
    rounds: tuple[RoundSummary, ...]
    metrics: dict[str, Agreement]
    by_family: dict[str, dict[str, Agreement]]


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




def _check_choice(choice: Any) -> Choice:
    value = choice.strip().upper() if isinstance(choice, str) else None
    if value not in ("A", "B"):
        raise QuizVoteError(f"A vote must be 'A' or 'B' (the image closer to the reference), got {choice!r}.")
    return value  # type: ignore[return-value]


def _check_voter(voter_id: Any) -> str:
    value = voter_id.strip() if isinstance(voter_id, str) else ""
    if not value or len(value) > _MAX_VOTER or not value.isprintable():
        raise QuizVoteError(
            f"The voter id must be printable text of 1 to {_MAX_VOTER} characters, got {voter_id!r}."
        )
    return value


def _check_metrics(metrics: Any) -> str:
    """Validate a :func:`~teach.quiz.score_round` result and return it as JSON."""
    problem = None
    if not isinstance(metrics, Mapping):
        problem = f"got {type(metrics).__name__}"
    else:
        for name, entry in metrics.items():
            if not isinstance(name, str) or not isinstance(entry, Mapping):
                problem = f"entry {name!r} is not a dict"
            elif entry.get("pick") not in ("A", "B", "tie"):
                problem = f"{name}'s pick is {entry.get('pick')!r}, not 'A', 'B' or 'tie'"
            elif not all(isinstance(entry.get(k), (int, float)) for k in ("a", "b")):
                problem = f"{name} needs numeric values 'a' and 'b'"
            if problem:
                break
    if problem:
        raise QuizVoteError(f"metrics must be what score_round() returns; {problem}.")
    return json.dumps(dict(metrics), sort_keys=True)


def _csv_text(value: str) -> str:
    """Defuse spreadsheet formulas in free text (OWASP: prefix with a quote)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _write_csv(fh: TextIO, header: list[str], rows: list[list[Any]]) -> None:
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def _round_summary(index: int, votes: list[Vote]) -> RoundSummary:
    votes_a = sum(1 for v in votes if v.choice == "A")
    votes_b = len(votes) - votes_a
    majority = None if not votes else "A" if votes_a > votes_b else "B" if votes_b > votes_a else "tie"
    first = votes[0] if votes else None
    return RoundSummary(
        index=index,
        votes_a=votes_a,
        votes_b=votes_b,
        majority=majority,
        sample=first.sample if first else "",
        pair=first.pair if first else "",
        metric_picks={m: e.get("pick", "") for m, e in first.metrics.items()} if first else {},
    )


# --------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------


class BaseQuizStore(abc.ABC):
    """A quiz database: sessions (join code, teacher key hash, seed, rounds) and their votes.

    The public methods are the same for every backend and are implemented here; a backend
    implements the abstract ``_``-methods (the SQL) and :meth:`close`, and turns every failure
    of its database or filesystem into a :class:`QuizStorageError` whose message starts with
    "the quiz cannot ...". When :meth:`record_vote` returns, the vote must be durable.

    A re-vote (same session, round and voter) **replaces** the earlier choice: the last
    answer counts, the row keeps its id and gets the new time.
    """

    # -- what a backend implements -----------------------------------------------------

    @abc.abstractmethod
    def _insert_session(self, code: str, key_hash: str, seed: int, n_rounds: int, title: str) -> bool:
        """In one write transaction: unless a session already has ``code``, insert it (created
        :func:`_now`); return whether it was inserted (``False``: the code is taken)."""

    @abc.abstractmethod
    def _fetch_session(self, code: str) -> SessionInfo | None:
        """The session with the (normalized) join ``code``, or ``None``."""

    @abc.abstractmethod
    def _fetch_teacher_key_hash(self, code: str) -> str | None:
        """The stored teacher key hash of session ``code``, or ``None`` when there is no such session."""

    @abc.abstractmethod
    def _upsert_vote(self, ballot: Ballot) -> int:
        """In one write transaction: read ``(seed, n_rounds)`` of ``ballot.session_code`` (``None``
        when there is no such session) and pass it to :meth:`_check_ballot`, which raises for an
        unknown session, a round out of range or a foreign round; then insert the vote (created
        :func:`_now`, seed from the session), or replace the vote of the same session, round and
        voter in place, keeping its id. Returns the row id; durable on return."""

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

    def create_session(self, title: str, n_rounds: int = 10, seed: int | None = None) -> tuple[str, str]:
        """Create a session; returns ``(join_code, teacher_key)``. Only the key's hash is stored,
        so the teacher must keep the key: it cannot be shown again."""
        if not isinstance(title, str) or not title.strip() or len(title.strip()) > _MAX_TITLE:
            raise QuizInputError(f"The session title must be text of 1 to {_MAX_TITLE} characters, got {title!r}.")
        n_rounds = check_int(n_rounds, "The number of rounds", 1, _MAX_ROUNDS)
        seed = secrets.randbits(32) if seed is None else check_int(seed, "The session seed", 0, 2**63 - 1)
        key = secrets.token_urlsafe(16)
        for _ in range(20):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if self._insert_session(code, _hash_key(key), seed, n_rounds, title.strip()):
                return code, key
            # taken (one in a billion): try another code
        raise QuizStorageError("the quiz cannot create a session: no free join code was found; try again.")

    def session(self, code: str) -> SessionInfo | None:
        """The session with this join code (any case, spaces and dashes ignored), or ``None``."""
        return self._fetch_session(normalize_code(code))

    def _require_session(self, code: str) -> SessionInfo:
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
        """Store one judgment durably and return its row id; a re-vote replaces the choice.

        Raises :class:`QuizSessionNotFoundError` for an unknown code, :class:`QuizVoteError`
        for a bad choice, voter id, round index or a ``spec`` of another session or round,
        and :class:`QuizStorageError` when the database cannot be written.
        """
        normalized = normalize_code(code)
        choice = _check_choice(choice)
        voter_id = _check_voter(voter_id)
        if isinstance(round_index, bool) or not isinstance(round_index, int):
            raise QuizVoteError(f"The round index must be an integer, got {round_index!r}.")
        if not isinstance(spec, RoundSpec):
            raise QuizVoteError(f"spec must be the round's RoundSpec from make_round(), got {type(spec).__name__}.")
        metrics_json = _check_metrics(metrics)
        chain_a = json.dumps(chain_to_dict(spec.chain_a), sort_keys=True)
        chain_b = json.dumps(chain_to_dict(spec.chain_b), sort_keys=True)
        ballot = Ballot(code, normalized, round_index, voter_id, choice, spec, chain_a, chain_b, metrics_json)
        return int(self._upsert_vote(ballot))

    @staticmethod
    def _check_ballot(ballot: Ballot, session: tuple[int, int] | None) -> int:
        """Check ``ballot`` against its session's ``(seed, n_rounds)`` (``None``: no such session)
        inside the backend's write transaction; returns the session's seed."""
        if session is None:
            raise QuizSessionNotFoundError(f"There is no quiz session with the code {ballot.code!r}; check the code.")
        seed, n_rounds = session
        round_index, spec = ballot.round_index, ballot.spec
        if not 0 <= round_index < n_rounds:
            raise QuizVoteError(f"Round {round_index} does not exist; this session has rounds 0 to {n_rounds - 1}.")
        if spec.seed != seed or spec.index != round_index:
            raise QuizVoteError(
                f"This vote shows round {spec.index} of seed {spec.seed}, but session {ballot.session_code} round "
                f"{round_index} is make_round({seed}, {round_index}); reload the round."
            )
        return seed

    def votes(self, code: str) -> list[Vote]:
        """Every vote of a session, by round and then in the order cast."""
        info = self._require_session(code)
        rows = self._fetch_vote_rows(info.code)
        try:
            return [Vote(*row[:10], json.loads(row[10]), json.loads(row[11]), json.loads(row[12])) for row in rows]
        except (TypeError, ValueError) as exc:
            raise QuizStorageError(f"the quiz cannot read its database: a vote row is damaged ({exc}).") from None

    def export_csv(self, code: str, file: TextIO | str | os.PathLike[str]) -> int:
        """Write one row per judgment to ``file`` (a text stream or a path); returns the row count.

        Header: :data:`CSV_COLUMNS` (``session, round, seed, reference, family_a, family_b,
        chain_a, chain_b, choice, voter, time``), then ``<metric>_a, <metric>_b, <metric>_pick``
        for every metric present, in :func:`~teach.quiz.metric_order`. Chains are
        ``chain_to_dict`` JSON, time is ISO 8601 UTC, a missing metric is an empty cell, and a
        voter id starting with ``= + - @`` gets a leading ``'`` so spreadsheets do not run it as
        a formula.
        """
        votes = self.votes(code)
        metrics = metric_order({name for vote in votes for name in vote.metrics})
        header = list(CSV_COLUMNS) + [f"{m}_{part}" for m in metrics for part in ("a", "b", "pick")]
        rows = []
        for v in votes:
            row: list[Any] = [
                v.session_code, v.round_index, v.seed, v.sample, v.family_a, v.family_b,
                json.dumps(v.chain_a, sort_keys=True), json.dumps(v.chain_b, sort_keys=True),
                v.choice, _csv_text(v.voter_id), v.created,
            ]
            for m in metrics:
                entry = v.metrics.get(m, {})
                row += [entry.get("a", ""), entry.get("b", ""), entry.get("pick", "")]
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

    def summary(self, code: str) -> Summary:
        """Votes per round, and each metric's agreement with the people (overall and per family pair)."""
        info = self._require_session(code)
        votes = self.votes(info.code)
        by_round: dict[int, list[Vote]] = {}
        credits: dict[str, list[float]] = {}
        family_credits: dict[str, dict[str, list[float]]] = {}
        for v in votes:
            by_round.setdefault(v.round_index, []).append(v)
            for metric, entry in v.metrics.items():
                pick = entry.get("pick")
                credit = 0.5 if pick == "tie" else float(pick == v.choice)
                credits.setdefault(metric, []).append(credit)
                family_credits.setdefault(v.pair, {}).setdefault(metric, []).append(credit)
        rounds = tuple(_round_summary(i, by_round.get(i, [])) for i in range(info.n_rounds))
        metric_names = metric_order(set(credits))
        return Summary(
            session=info,
            n_votes=len(votes),
            n_voters=len({v.voter_id for v in votes}),
            rounds=rounds,
            metrics={m: agreement(m, credits[m]) for m in metric_names},
            by_family={
                pair: {m: agreement(m, per[m]) for m in metric_order(set(per))}
                for pair, per in sorted(family_credits.items())
            },
        )
