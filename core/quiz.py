"""A two-alternative forced-choice (2AFC) class quiz, as in the LPIPS paper's BAPPS data.

A teacher creates a session (:meth:`QuizStore.create_session` gives a short join code and a
secret teacher key); students join with the code. Each round shows a reference and two
distorted versions, A and B, and each person picks the one closer to the reference. Every
vote is stored with its round, the distortion parameters and each metric's values and pick,
so the teacher's dashboard (:meth:`QuizStore.summary`) can say how often each metric agrees
with the people, overall and by the pair of distortion families.

Rounds are not stored: :func:`make_round` rebuilds round ``index`` of a session from the
session's seed (for a fixed sample gallery and distortion registry), :func:`render_round`
draws its images and :func:`score_round` measures them. Each vote row nevertheless keeps the
sample, both chains and the metric values, so the data outlive changes to the code.

Storage is one SQLite file (:class:`QuizStore`) in WAL mode with ``synchronous=FULL``: when
:meth:`QuizStore.record_vote` returns, the vote is in the database file on disk and survives
the process being killed or the machine losing power. Many threads and processes may write at
once; writers wait for each other (up to ``busy_timeout``) instead of failing. Storage
problems (read-only folder, full disk, damaged file) raise :class:`QuizStorageError`, whose
message starts with "the quiz cannot ...", never a raw ``sqlite3`` error.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import math
import os
import random
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import quote

import torch

from .classic import psnr, ssim
from .distortions import REGISTRY, Param, ParamValue, Step, apply, chain_to_dict
from .errors import LpipsExplorerError
from .imageio import downscale_to_fit
from .lpips import Engine
from .samples import list_samples, load_sample
from .tensors import quantize_8bit

__all__ = [
    "CODE_ALPHABET",
    "CSV_COLUMNS",
    "METRICS",
    "MIGRATIONS",
    "QUIZ_LEVELS",
    "SCHEMA_VERSION",
    "Agreement",
    "QuizError",
    "QuizInputError",
    "QuizSessionNotFoundError",
    "QuizStorageError",
    "QuizStore",
    "QuizVoteError",
    "RoundSpec",
    "RoundSummary",
    "SessionInfo",
    "Summary",
    "Vote",
    "default_db_path",
    "make_round",
    "normalize_code",
    "pair_label",
    "render_round",
    "score_round",
    "wilson_interval",
]

Choice = Literal["A", "B"]
Pick = Literal["A", "B", "tie"]


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class QuizError(LpipsExplorerError):
    """Something about the quiz went wrong; ``str(err)`` says what and what to do."""


class QuizInputError(QuizError, ValueError):
    """An argument (title, number of rounds, seed, image size, engines) is not acceptable."""


class QuizVoteError(QuizInputError):
    """A vote was refused: bad choice, round out of range, empty voter id, foreign round."""


class QuizSessionNotFoundError(QuizError, LookupError):
    """No session has this join code."""


class QuizStorageError(QuizError):
    """The database cannot be opened, read or written (read-only, disk full, damaged)."""


# --------------------------------------------------------------------------------------
# Rounds
# --------------------------------------------------------------------------------------

#: The metrics a round is scored with, in display order, and whether lower means closer.
METRICS: dict[str, bool] = {"lpips_alex": True, "lpips_vgg": True, "psnr": False, "ssim": False}

#: Distortions used in the quiz and the moderate part of each one's range: the main
#: parameter runs from ``lo`` to ``hi`` of the way from its identity value to the end of its
#: range (either end, for parameters that go both ways). Milder settings are invisible at
#: quiz sizes, stronger ones make the choice obvious. A distortion missing here (a future
#: one, say) is not used until it is given a range.
QUIZ_LEVELS: dict[str, tuple[float, float]] = {
    "lightness": (0.10, 0.40),  # 5-20 ΔL*
    "color_shift": (0.05, 0.25),  # 9-45°
    "contrast": (0.15, 0.45),  # ×0.85-0.55 or ×1.3-1.9
    "gaussian_noise": (0.10, 0.40),  # σ 5-20 grey levels
    "salt_pepper": (0.02, 0.15),  # 0.5-3 % of pixels
    "gaussian_blur": (0.08, 0.30),  # σ 0.6-2.4 px
    "motion_blur": (0.10, 0.40),  # 3-12 px
    "translate": (0.03, 0.20),  # 0.5-3.25 px
    "rotate": (0.10, 0.50),  # 1-5°
    "ghosting": (0.20, 0.70),  # strength 0.1-0.35
    "chromatic_aberration": (0.06, 0.35),  # 0.5-2.75 px
    "jpeg": (0.45, 0.92),  # quality 57-13
    "resample": (0.08, 0.45),  # ×1.5-4.25
    "posterize": (0.35, 0.85),  # 6-3 bits
    "unsharp": (0.20, 0.80),  # amount 0.6-2.4
}

# Share of rounds that pit two distortions of the same family against each other
# (Gaussian vs motion blur, say); the others pair two different families.
_SAME_FAMILY_SHARE = 0.2
# Strength level of A in [0, 1] (position inside its QUIZ_LEVELS range), and how far B's
# level sits from it: similar, but never equal.
_LEVEL_A = (0.2, 0.8)
_LEVEL_GAP = (0.1, 0.3)


@dataclass(frozen=True)
class RoundSpec:
    """Round ``index`` of the session with seed ``seed``: a reference sample and two chains.

    ``noise_seed`` seeds the random distortions (:func:`core.distortions.apply`), so the
    noise pattern is part of the round too. Chains are tuples so the spec stays immutable.
    """

    index: int
    seed: int
    sample: str
    chain_a: tuple[Step, ...]
    chain_b: tuple[Step, ...]
    family_a: str
    family_b: str
    noise_seed: int = 0

    @property
    def pair(self) -> str:
        """The families of the pair, order-free, e.g. ``'blur vs noise'``."""
        return pair_label(self.family_a, self.family_b)


def pair_label(family_a: str, family_b: str) -> str:
    """Name a pair of distortion families independently of which side was A.

    >>> pair_label("noise", "blur"), pair_label("blur", "noise"), pair_label("blur", "blur")
    ('blur vs noise', 'blur vs noise', 'blur vs blur')
    """
    first, second = sorted((family_a, family_b))
    return f"{first} vs {second}"


def _check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        upper = f" and at most {high}" if high is not None else ""
        raise QuizInputError(f"{name} must be an integer of at least {low}{upper}, got {value!r}.")
    return int(value)


def _quiz_families() -> dict[str, list[str]]:
    """Family → quiz distortion names, in registry order."""
    families: dict[str, list[str]] = {}
    for name, distortion in REGISTRY.items():
        if name in QUIZ_LEVELS:
            families.setdefault(distortion.family, []).append(name)
    return families


def _snap(param: Param, value: float, toward: float) -> ParamValue:
    """Round ``value`` to the parameter's step, keep it in range and off the identity value."""
    step = 1.0 if param.kind == "int" else float(param.step or 0.0)
    if step:
        value = round(round(value / step) * step, 6)
    value = min(max(value, float(param.min)), float(param.max))  # type: ignore[arg-type]
    if param.identity is not None and value == param.identity:
        value += math.copysign(step or 1e-3, toward - float(param.identity))
    return param.validate(int(round(value)) if param.kind == "int" else value)


def _main_value(name: str, level: float, rng: random.Random) -> ParamValue:
    """The main parameter of ``name`` at ``level`` (0 = mildest, 1 = strongest quiz setting)."""
    param = REGISTRY[name].main
    identity = float(param.identity)  # type: ignore[arg-type]
    ends = [float(e) for e in (param.min, param.max) if e is not None and float(e) != identity]
    end = rng.choice(ends)  # either direction for signed parameters (lighter / darker)
    lo, hi = QUIZ_LEVELS[name]
    fraction = lo + level * (hi - lo)
    return _snap(param, identity + fraction * (end - identity), end)


def _other_params(name: str, rng: random.Random) -> dict[str, ParamValue]:
    """Secondary parameters: a random direction where one exists, otherwise the defaults."""
    if name == "motion_blur":
        return {"angle": float(rng.randrange(0, 180, 15))}
    if name == "translate":
        return {"direction": float(rng.randrange(0, 360, 15))}
    if name == "ghosting":
        return {"offset": float(rng.choice((3, 4, 6, 8, 12)))}
    if name == "resample":
        return {"method": rng.choice(("bilinear", "bicubic"))}
    return {}


def _step(name: str, level: float, rng: random.Random) -> Step:
    main = REGISTRY[name].main.name
    return Step(name, {main: _main_value(name, level, rng), **_other_params(name, rng)})


def _pick_pair(rng: random.Random) -> tuple[str, str]:
    """Two different quiz distortions: same family now and then, different families mostly."""
    families = _quiz_families()
    shared = sorted(f for f, names in families.items() if len(names) >= 2)
    if shared and rng.random() < _SAME_FAMILY_SHARE:
        name_a, name_b = rng.sample(families[rng.choice(shared)], 2)
        return name_a, name_b
    family_a, family_b = rng.sample(sorted(families), 2)
    return rng.choice(families[family_a]), rng.choice(families[family_b])


def make_round(seed: int, index: int) -> RoundSpec:
    """Round ``index`` of the session with ``seed``; the same arguments give the same round.

    The two chains use two different distortions at similar, never equal, strength levels
    inside their moderate :data:`QUIZ_LEVELS` ranges, on a sample drawn from the gallery.

    >>> make_round(7, 3) == make_round(7, 3), make_round(7, 3) == make_round(7, 4)
    (True, False)
    """
    seed = _check_int(seed, "The session seed", 0)
    index = _check_int(index, "The round index", 0)
    rng = random.Random(f"{seed}:{index}")
    samples = list_samples()
    sample = rng.choice(samples).key
    name_a, name_b = _pick_pair(rng)
    level_a = rng.uniform(*_LEVEL_A)
    gap = rng.uniform(*_LEVEL_GAP) * rng.choice((-1, 1))
    level_b = level_a + gap if 0.0 <= level_a + gap <= 1.0 else level_a - gap
    step_a, step_b = _step(name_a, level_a, rng), _step(name_b, level_b, rng)
    return RoundSpec(
        index=index,
        seed=seed,
        sample=sample,
        chain_a=(step_a,),
        chain_b=(step_b,),
        family_a=REGISTRY[name_a].family,
        family_b=REGISTRY[name_b].family,
        noise_seed=rng.randrange(2**31),
    )


@lru_cache(maxsize=16)
def _reference(sample: str, max_side: int) -> torch.Tensor:
    image, _ = downscale_to_fit(load_sample(sample), max_side)
    return quantize_8bit(image)


def render_round(spec: RoundSpec, max_side: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The round's reference, A and B as 1×3×H×W tensors in [0, 1], all 8-bit exact.

    The sample is shrunk to fit ``max_side`` first, then distorted, then quantized, so the
    images shown (and saved as PNG) are exactly the ones :func:`score_round` measures.
    """
    if not isinstance(spec, RoundSpec):
        raise QuizInputError(f"render_round() needs a RoundSpec from make_round(), got {type(spec).__name__}.")
    max_side = _check_int(max_side, "max_side", 32)
    ref = _reference(spec.sample, max_side).clone()
    dist_a = quantize_8bit(apply(spec.chain_a, ref, seed=spec.noise_seed))
    dist_b = quantize_8bit(apply(spec.chain_b, ref, seed=spec.noise_seed))
    return ref, dist_a, dist_b


def _pick(value_a: float, value_b: float, lower_is_closer: bool) -> Pick:
    """Which image the metric calls closer to the reference.

    >>> _pick(0.1, 0.2, True), _pick(30.0, 25.0, False), _pick(1.0, 1.0, False)
    ('A', 'A', 'tie')
    """
    if value_a == value_b or math.isclose(value_a, value_b, rel_tol=1e-12, abs_tol=1e-12):
        return "tie"
    a_closer = value_a < value_b if lower_is_closer else value_a > value_b
    return "A" if a_closer else "B"


def _metric_entry(value_a: float, value_b: float, lower_is_closer: bool) -> dict[str, Any]:
    return {"a": float(value_a), "b": float(value_b), "pick": _pick(float(value_a), float(value_b), lower_is_closer)}


def score_round(
    spec: RoundSpec,
    ref: torch.Tensor,
    dist_a: torch.Tensor,
    dist_b: torch.Tensor,
    engines: Mapping[str, Engine],
) -> dict[str, dict[str, Any]]:
    """Each metric's values for A and B and its pick, keyed by metric name.

    ``engines`` maps a network name (``"alex"``, ``"vgg"``; ``"lpips_alex"`` works too) to an
    :class:`~core.lpips.Engine`; only the LPIPS variants given are computed (an empty dict
    gives just PSNR and SSIM). The result looks like
    ``{"lpips_alex": {"a": 0.21, "b": 0.34, "pick": "A"}, "psnr": {...}, "ssim": {...}}``:
    LPIPS lower = closer, PSNR and SSIM (reference luma mode) higher = closer; equal values
    give the pick ``"tie"``. ``spec`` is the round the images belong to (for the record).
    """
    if not isinstance(spec, RoundSpec):
        raise QuizInputError(f"score_round() needs the RoundSpec of the images, got {type(spec).__name__}.")
    if not isinstance(engines, Mapping):
        raise QuizInputError(f"engines must be a dict of network name to Engine, got {type(engines).__name__}.")
    pair = torch.cat([dist_a, dist_b])
    scores: dict[str, dict[str, Any]] = {}
    for key, engine in engines.items():
        net = key.removeprefix("lpips_") if isinstance(key, str) else key
        if not isinstance(engine, Engine) or engine.net != net:
            raise QuizInputError(
                f"engines[{key!r}] must be an Engine for the {net!r} network, got {engine!r}; "
                "use {'alex': Engine('alex')} and the like."
            )
        values = engine.distance(ref, pair)
        scores[f"lpips_{net}"] = _metric_entry(values[0].item(), values[1].item(), True)
    psnr_values = psnr(ref, pair)
    ssim_values = ssim(ref, pair)
    scores["psnr"] = _metric_entry(psnr_values[0].item(), psnr_values[1].item(), False)
    scores["ssim"] = _metric_entry(ssim_values[0].item(), ssim_values[1].item(), False)
    order = list(METRICS)
    return dict(sorted(scores.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0])))


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------

_Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson_interval(successes: float, n: int, z: float = _Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; ``successes`` may be fractional (ties = ½).

    >>> low, high = wilson_interval(8, 10)
    >>> round(low, 4), round(high, 4)
    (0.4902, 0.9433)
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


@dataclass(frozen=True)
class Agreement:
    """How often a metric picked what the people picked: the 2AFC score over judgments.

    ``score = (agree + ties / 2) / n`` (a metric tie counts half, as in the LPIPS paper);
    ``low``/``high`` is its 95 % Wilson interval. ``score`` is ``None`` when ``n == 0``.
    """

    metric: str
    n: int
    agree: int
    ties: int
    score: float | None
    low: float
    high: float


def _agreement(metric: str, credits: list[float]) -> Agreement:
    n = len(credits)
    total = sum(credits)
    low, high = wilson_interval(total, n)
    return Agreement(
        metric=metric,
        n=n,
        agree=sum(1 for c in credits if c == 1.0),
        ties=sum(1 for c in credits if c == 0.5),
        score=total / n if n else None,
        low=low,
        high=high,
    )


# --------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------

#: Schema migrations: ``MIGRATIONS[k]`` takes a database from version ``k`` to ``k + 1``
#: (``PRAGMA user_version``). Each runs in one transaction with the version bump, so a
#: database is always at a whole version. Append new scripts; never edit old ones.
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
]

SCHEMA_VERSION = len(MIGRATIONS)

#: Join codes: no 0/O, 1/I/L, so a code read off a projector is typed right.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6

#: The fixed leading columns of :meth:`QuizStore.export_csv`; each metric then adds
#: ``<metric>_a``, ``<metric>_b`` and ``<metric>_pick``.
CSV_COLUMNS = (
    "session", "round", "seed", "reference", "family_a", "family_b",
    "chain_a", "chain_b", "choice", "voter", "time",
)

_MAX_ROUNDS = 500
_MAX_TITLE = 200
_MAX_VOTER = 100


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
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


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
    dicts; ``metrics`` is what :func:`score_round` returned when the vote was cast."""

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


def _metric_order(names: set[str]) -> list[str]:
    known = [m for m in METRICS if m in names]
    return known + sorted(names - set(METRICS))


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
    """Validate a :func:`score_round` result and return it as JSON."""
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


class QuizStore:
    """The quiz database: one SQLite file shared by every thread and process of the app.

    * WAL journal, ``synchronous=FULL``: a vote acknowledged (``record_vote`` returned) is on
      disk; readers never block writers.
    * ``busy_timeout`` (10 s by default): concurrent writers queue instead of failing; writes
      take the lock up front (``BEGIN IMMEDIATE``) so no transaction has to give up midway.
    * One connection per thread (and per process, after a fork); :meth:`close` closes the
      calling thread's.
    * ``read_only=True`` opens an existing, current database for reading only (a dashboard).
    * A re-vote (same session, round and voter) **replaces** the earlier choice: the last
      answer counts, the row keeps its id and gets the new time.

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

    def __enter__(self) -> QuizStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    # -- sessions ----------------------------------------------------------------------

    def create_session(self, title: str, n_rounds: int = 10, seed: int | None = None) -> tuple[str, str]:
        """Create a session; returns ``(join_code, teacher_key)``. Only the key's hash is stored,
        so the teacher must keep the key: it cannot be shown again."""
        if not isinstance(title, str) or not title.strip() or len(title.strip()) > _MAX_TITLE:
            raise QuizInputError(f"The session title must be text of 1 to {_MAX_TITLE} characters, got {title!r}.")
        n_rounds = _check_int(n_rounds, "The number of rounds", 1, _MAX_ROUNDS)
        seed = secrets.randbits(32) if seed is None else _check_int(seed, "The session seed", 0, 2**63 - 1)
        key = secrets.token_urlsafe(16)
        for _ in range(20):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            with self._write() as conn:
                if conn.execute("SELECT 1 FROM sessions WHERE code = ?", (code,)).fetchone():
                    continue  # taken (one in a billion); the transaction just commits nothing
                conn.execute(
                    "INSERT INTO sessions (code, teacher_key_hash, seed, n_rounds, created, title) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (code, _hash_key(key), seed, n_rounds, _now(), title.strip()),
                )
                return code, key
        raise QuizStorageError("the quiz cannot create a session: no free join code was found; try again.")

    def session(self, code: str) -> SessionInfo | None:
        """The session with this join code (any case, spaces and dashes ignored), or ``None``."""
        rows = self._read(
            "SELECT code, title, seed, n_rounds, created FROM sessions WHERE code = ?", (normalize_code(code),)
        )
        return SessionInfo(*rows[0]) if rows else None

    def _require_session(self, code: str) -> SessionInfo:
        info = self.session(code)
        if info is None:
            raise QuizSessionNotFoundError(f"There is no quiz session with the code {code!r}; check the code.")
        return info

    def check_teacher_key(self, code: str, key: str) -> bool:
        """Whether ``key`` is the teacher key of session ``code`` (constant-time comparison)."""
        if not isinstance(key, str):
            return False
        rows = self._read("SELECT teacher_key_hash FROM sessions WHERE code = ?", (normalize_code(code),))
        stored = rows[0][0] if rows else _hash_key(secrets.token_urlsafe(16))  # same work either way
        return hmac.compare_digest(stored.encode(), _hash_key(key.strip()).encode()) and bool(rows)

    # -- votes -------------------------------------------------------------------------

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
        with self._write() as conn:
            row = conn.execute("SELECT seed, n_rounds FROM sessions WHERE code = ?", (normalized,)).fetchone()
            if row is None:
                raise QuizSessionNotFoundError(f"There is no quiz session with the code {code!r}; check the code.")
            seed, n_rounds = row
            if not 0 <= round_index < n_rounds:
                raise QuizVoteError(f"Round {round_index} does not exist; this session has rounds 0 to {n_rounds - 1}.")
            if spec.seed != seed or spec.index != round_index:
                raise QuizVoteError(
                    f"This vote shows round {spec.index} of seed {spec.seed}, but session {normalized} round "
                    f"{round_index} is make_round({seed}, {round_index}); reload the round."
                )
            (vote_id,) = conn.execute(
                "INSERT INTO votes (session_code, round_index, voter_id, choice, created, seed, sample, "
                "family_a, family_b, chain_a, chain_b, metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (session_code, round_index, voter_id) DO UPDATE SET choice = excluded.choice, "
                "created = excluded.created, sample = excluded.sample, family_a = excluded.family_a, "
                "family_b = excluded.family_b, chain_a = excluded.chain_a, chain_b = excluded.chain_b, "
                "metrics = excluded.metrics RETURNING id",
                (normalized, round_index, voter_id, choice, _now(), seed, spec.sample, spec.family_a,
                 spec.family_b, chain_a, chain_b, metrics_json),
            ).fetchone()
        return int(vote_id)

    def votes(self, code: str) -> list[Vote]:
        """Every vote of a session, by round and then in the order cast."""
        info = self._require_session(code)
        rows = self._read(
            "SELECT id, session_code, round_index, voter_id, choice, created, seed, sample, family_a, family_b, "
            "chain_a, chain_b, metrics FROM votes WHERE session_code = ? ORDER BY round_index, id",
            (info.code,),
        )
        try:
            return [Vote(*row[:10], json.loads(row[10]), json.loads(row[11]), json.loads(row[12])) for row in rows]
        except (TypeError, ValueError) as exc:
            raise QuizStorageError(f"the quiz cannot read its database: a vote row is damaged ({exc}).") from None

    def export_csv(self, code: str, file: TextIO | str | os.PathLike[str]) -> int:
        """Write one row per judgment to ``file`` (a text stream or a path); returns the row count.

        Header: :data:`CSV_COLUMNS` (``session, round, seed, reference, family_a, family_b,
        chain_a, chain_b, choice, voter, time``), then ``<metric>_a, <metric>_b, <metric>_pick``
        for every metric present, in :data:`METRICS` order. Chains are ``chain_to_dict`` JSON,
        time is ISO 8601 UTC, a missing metric is an empty cell, and a voter id starting with
        ``= + - @`` gets a leading ``'`` so spreadsheets do not run it as a formula.
        """
        votes = self.votes(code)
        metrics = _metric_order({name for vote in votes for name in vote.metrics})
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
        metric_names = _metric_order(set(credits))
        return Summary(
            session=info,
            n_votes=len(votes),
            n_voters=len({v.voter_id for v in votes}),
            rounds=rounds,
            metrics={m: _agreement(m, credits[m]) for m in metric_names},
            by_family={
                pair: {m: _agreement(m, per[m]) for m in _metric_order(set(per))}
                for pair, per in sorted(family_credits.items())
            },
        )


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
