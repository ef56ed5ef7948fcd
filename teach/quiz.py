"""The class quiz, as in the LPIPS paper's BAPPS data: its rounds and statistics, for both questions.

A two-alternative forced-choice (2AFC) round shows a reference and two distorted versions, A and
B, and each person picks the one closer to the reference. A just-noticeable-difference (JND)
round (:func:`make_jnd_round`) shows the reference, then a distorted version of it (or, now and
then, the reference again), one after the other, and each person answers "same" or "different";
the LPIPS paper's JND test (Zhang et al. 2018, section 2.2): "The two image patches are shown for
1 second each, with a 250 ms gap in between" (:data:`JND_SHOW_MS`, :data:`JND_GAP_MS`).

Rounds are not stored: :func:`make_round` (:func:`make_jnd_round`) rebuilds round ``index`` of a
session from the session's seed (for a fixed sample gallery and distortion registry),
:func:`render_round` draws its images and :func:`score_round` (:func:`score_jnd_round`) measures
them with every metric. :func:`wilson_interval` and :class:`Agreement` say how often a metric agrees
with the people (the 2AFC score, ties counting half).

Sessions and votes live in the quiz store (:mod:`store`, :class:`store.QuizStore`), which keeps
the records this module makes (:class:`~store.records.RoundSpec`, defined there with
:func:`~store.records.metric_order` and the errors, and importable from here) and returns rows;
:func:`summarize` turns a session's votes into the teacher's dashboard (each metric's
:class:`Agreement` with the people). Nothing here writes to a database.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import torch

from core import metrics
from core.comparison import compare
from core.distortions import REGISTRY, Param, ParamValue, Step, apply
from core.images.imageio import downscale_to_fit
from core.lpips.engine import Engine
from core.lpips.names import NET_LABELS
from core.images.samples import list_samples, load_sample
from core.images.tensors import quantize_8bit
from store.base import BaseQuizStore, SessionInfo, Vote
from store.errors import QuizError, QuizInputError, check_int
from store.records import RoundSpec, metric_order, pair_label

__all__ = [
    "QUIZ_LEVELS",
    "QUIZ_NETS",
    "Agreement",
    "QuizError",
    "QuizInputError",
    "RoundSpec",
    "agreement",
    "JND_GAP_MS",
    "JND_IDENTICAL_SHARE",
    "JND_SHOW_MS",
    "JndScores",
    "check_int",
    "make_jnd_round",
    "make_round",
    "metric_label",
    "metric_order",
    "quiz_metrics",
    "pair_label",
    "render_round",
    "score_jnd_round",
    "score_round",
    "summarize",
    "wilson_interval",
]

Pick = Literal["A", "B", "tie"]


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------




# --------------------------------------------------------------------------------------
# Rounds
# --------------------------------------------------------------------------------------

#: LPIPS is scored once per network here (``lpips_alex``, ``lpips_vgg``): the class sees
#: whether the networks agree with each other as well as with the people.
QUIZ_NETS: tuple[str, ...] = ("alex", "vgg")


def quiz_metrics() -> dict[str, bool]:
    """The metrics a round is scored with, in display order, and whether lower means closer:
    LPIPS once per :data:`QUIZ_NETS` network, then every other registered metric.

    >>> list(quiz_metrics())[:3]
    ['lpips_alex', 'lpips_vgg', 'psnr']
    """
    out = {f"lpips_{net}": True for net in QUIZ_NETS}
    out.update({spec.key: not spec.higher_is_better for spec in metrics.specs() if spec.key != "lpips"})
    return out


def metric_label(name: str) -> str:
    """A quiz metric's label: ``"LPIPS (AlexNet)"``, ``"PSNR"``; an unknown name as it is."""
    if name.startswith("lpips_") and name.removeprefix("lpips_") in NET_LABELS:
        return f"LPIPS ({NET_LABELS[name.removeprefix('lpips_')]})"
    try:
        return metrics.get(name).label
    except metrics.UnknownMetricError:
        return name


def metric_unit(name: str) -> str:
    """A quiz metric's unit (``"dB"`` for PSNR), empty for LPIPS and unknown names."""
    try:
        return metrics.get(name).unit
    except metrics.UnknownMetricError:
        return ""

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


def _jnd_step(name: str, rng: random.Random) -> Step:
    """A distortion near the threshold of seeing it: from half of the mildest quiz setting (often
    unseen at a glance) to the middle of its quiz range (seen by most)."""
    param = REGISTRY[name].main
    identity = float(param.identity)  # type: ignore[arg-type]
    ends = [float(e) for e in (param.min, param.max) if e is not None and float(e) != identity]
    end = rng.choice(ends)
    lo, hi = QUIZ_LEVELS[name]
    fraction = rng.uniform(0.5 * lo, lo + 0.5 * (hi - lo))
    value = _snap(param, identity + fraction * (end - identity), end)
    return Step(name, {param.name: value, **_other_params(name, rng)})


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
    seed = check_int(seed, "The session seed", 0)
    index = check_int(index, "The round index", 0)
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


#: The LPIPS paper's JND presentation (Zhang et al. 2018, arXiv:1801.03924v2, section 2.2, "Just
#: noticeable differences"): "The two image patches are shown for 1 second each, with a 250 ms gap
#: in between."
JND_SHOW_MS = 1000
JND_GAP_MS = 250
#: Share of JND rounds whose two images are identical. The paper's JND pairs are all reference
#: vs distorted; identical pairs were its sentinels and training examples (32 of each subject's 40
#: sentinels, 4 of 10 training pairs), there to keep people from answering "different" to
#: everything. Here they play that part: shown like any round, they are left out of the JND mAP
#: and the BAPPS export (as the paper's sentinels are left out of its data) and reported apart.
JND_IDENTICAL_SHARE = 0.25
#: The family recorded for "no distortion": image A of every JND round, image B of an identical pair.
NO_DISTORTION = "none"


def make_jnd_round(seed: int, index: int) -> RoundSpec:
    """JND round ``index`` of the session with ``seed``: the reference (A) and, second (B), one quiz
    distortion of it near the threshold of seeing it, or the reference again in about
    :data:`JND_IDENTICAL_SHARE` of the rounds. The same arguments give the same round.

    >>> make_jnd_round(7, 3) == make_jnd_round(7, 3), make_jnd_round(7, 3).chain_a, make_jnd_round(7, 3).kind
    (True, (), 'jnd')
    """
    seed = check_int(seed, "The session seed", 0)
    index = check_int(index, "The round index", 0)
    rng = random.Random(f"jnd:{seed}:{index}")
    sample = rng.choice(list_samples()).key
    if rng.random() < JND_IDENTICAL_SHARE:
        chain_b: tuple[Step, ...] = ()
        family_b = NO_DISTORTION
    else:
        families = _quiz_families()
        name = rng.choice(families[rng.choice(sorted(families))])
        chain_b, family_b = (_jnd_step(name, rng),), REGISTRY[name].family
    return RoundSpec(index=index, seed=seed, sample=sample, chain_a=(), chain_b=chain_b, family_a=NO_DISTORTION,
                     family_b=family_b, noise_seed=rng.randrange(2**31), kind="jnd")


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
    max_side = check_int(max_side, "max_side", 32)
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
    others: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each metric's values for A and B and its pick, keyed by metric name.

    ``engines`` maps a network name (``"alex"``, ``"vgg"``; ``"lpips_alex"`` works too) to an
    :class:`~core.lpips.engine.Engine`; only the LPIPS variants given are computed (an empty dict
    gives just the other registered metrics). The result looks like
    ``{"lpips_alex": {"a": 0.21, "b": 0.34, "pick": "A"}, "psnr": {...}, "ssim": {...}}``:
    each metric's direction comes from :mod:`core.metrics` (SSIM in reference luma mode); equal values
    give the pick ``"tie"``. ``spec`` is the round the images belong to (for the record).
    ``others`` limits the non-LPIPS metrics to these registry names (default: every registered
    one), e.g. ``("psnr", "ssim")`` where a network metric would cost too much.
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
    # Every other registered metric (reference SSIM mode); one that cannot score images this
    # small (MS-SSIM below 176 px) sits the round out rather than voting with NaN.
    registered = tuple(k for k in metrics.names() if k != "lpips")
    if others is not None:
        unknown = sorted(set(others) - set(registered))
        if unknown or isinstance(others, str):
            raise QuizInputError(f"others must be registered metric names other than 'lpips' {registered}, got "
                                 f"{others!r}.")
        registered = tuple(k for k in registered if k in others)
    others = registered
    result = compare(None, ref, pair, metrics=others, spatial=False) if others else None
    for key in others if result is not None else ():
        if key not in result.skipped:
            values = result[key]
            scores[key] = _metric_entry(values[0].item(), values[1].item(), not metrics.get(key).higher_is_better)
    return {name: scores[name] for name in metric_order(set(scores))}


def score_jnd_round(
    spec: RoundSpec,
    first: torch.Tensor,
    second: torch.Tensor,
    engines: Mapping[str, Engine],
    others: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Each metric's value between a JND round's two images, keyed by metric name, e.g.
    ``{"lpips_alex": {"value": 0.08}, "psnr": {"value": 38.2}, ...}``: LPIPS as a distance
    (higher = more different), the others as :mod:`core.metrics` computes them (PSNR and SSIM
    are similarities: higher = more alike; an identical pair gives PSNR ``inf``). ``engines`` and
    ``others`` as in :func:`score_round`.
    """
    if not isinstance(spec, RoundSpec) or spec.kind != "jnd":
        raise QuizInputError(f"score_jnd_round() needs the RoundSpec of a JND round (make_jnd_round()), got {spec!r}.")
    if not isinstance(engines, Mapping):
        raise QuizInputError(f"engines must be a dict of network name to Engine, got {type(engines).__name__}.")
    scores: dict[str, dict[str, float]] = {}
    for key, engine in engines.items():
        net = key.removeprefix("lpips_") if isinstance(key, str) else key
        if not isinstance(engine, Engine) or engine.net != net:
            raise QuizInputError(f"engines[{key!r}] must be an Engine for the {net!r} network, got {engine!r}.")
        scores[f"lpips_{net}"] = {"value": float(engine.distance(first, second)[0].item())}
    registered = tuple(k for k in metrics.names() if k != "lpips")
    if others is not None:
        unknown = sorted(set(others) - set(registered))
        if unknown or isinstance(others, str):
            raise QuizInputError(f"others must be registered metric names other than 'lpips' {registered}, got "
                                 f"{others!r}.")
        registered = tuple(k for k in registered if k in others)
    result = compare(None, first, second, metrics=registered, spatial=False) if registered else None
    for key in registered if result is not None else ():
        if key not in result.skipped:
            scores[key] = {"value": float(result[key][0].item())}
    return {name: scores[name] for name in metric_order(set(scores))}


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


def agreement(metric: str, credits: list[float]) -> Agreement:
    """The :class:`Agreement` of ``metric`` from one credit per judgment (1 agree, ½ tie, 0 not)."""
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
# The teacher dashboard: statistics over the votes the store returns
# --------------------------------------------------------------------------------------


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
    #: JND rounds: the answers "same" and "different", the distortion's family (``"none"`` for an
    #: identical pair), whether the two images were identical, and each metric's value on the pair.
    votes_same: int = 0
    votes_different: int = 0
    distortion: str = ""
    identical: bool = False
    metric_values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    """The teacher dashboard: every round, and each metric's agreement with the people.

    ``metrics`` counts every vote (a round with more voters weighs more). ``paper_2afc`` is the
    LPIPS paper's 2AFC score on this class's answers: each voted round is one triplet with the
    share ``p`` of the class that picked B; a metric that picks B earns ``p``, A earns ``1 − p``, a
    tie ½ (``lpips.trainer.score_2afc_dataset``), averaged over rounds. ``human_2afc`` is the
    ceiling beside it: how often one person agrees with another, the mean of ``p² + (1 − p)²``
    (None without votes).
    """

    session: SessionInfo
    n_votes: int
    n_voters: int
    rounds: tuple[RoundSummary, ...]
    metrics: dict[str, Agreement]
    by_family: dict[str, dict[str, Agreement]]
    paper_2afc: dict[str, float] = field(default_factory=dict)
    human_2afc: float | None = None
    #: ``"2afc"`` or ``"jnd"``; a JND session's scores are in ``jnd`` (``metrics``, ``by_family``
    #: and ``paper_2afc`` stay empty: a metric does not answer "same or different").
    kind: str = "2afc"
    jnd: "JndScores | None" = None


@dataclass(frozen=True)
class JndScores:
    """A JND session's scores, over its voted rounds whose images differ (the identical ones are
    checks, as the paper's sentinels, reported apart).

    ``map`` is each metric's JND score as the LPIPS paper computes it (``score_jnd_dataset``: the
    pairs ranked by the metric from most to least alike, the average precision of finding the
    "same" answers; :func:`core.judgments.scores.score_jnd`); ``None`` while it is undefined (no
    one has answered "same" to a pair that differed). ``chance`` is what a ranking that knows
    nothing scores on average: the share of "same" answers. ``people`` is how often two different
    people give the same answer to a pair: over the pairs with at least two answers, ``k`` of
    ``n`` "same", the mean of ``(k(k−1) + (n−k)(n−k−1)) / (n(n−1))`` (two answers drawn without
    replacement, so one person never counts as agreeing with themself); ``None`` until a pair has
    two answers. It is the class's consistency, on another scale than mAP (the paper gives no
    human mAP ceiling for JND). ``same_differing``/``same_identical`` are ``(same answers, answers)`` on
    pairs that differed and on identical pairs.
    """

    pairs: int
    map: dict[str, float | None]
    chance: float | None
    people: float | None
    same_differing: tuple[int, int]
    same_identical: tuple[int, int]


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


def summarize(store: BaseQuizStore, code: str) -> Summary:
    """Votes per round, and each metric's agreement with the people (overall and per family pair);
    for a JND session, the answers per round and each metric's JND mAP (:class:`JndScores`)."""
    info = store.require_session(code)
    votes = store.votes(info.code)
    if info.kind == "jnd":
        return _summarize_jnd(info, votes)
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
    paper, human = _paper_scores(by_round, metric_names)
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
        paper_2afc=paper,
        human_2afc=human,
    )


def _paper_scores(by_round: dict[int, list[Vote]], metric_names: list[str]) -> tuple[dict[str, float], float | None]:
    """The paper's 2AFC score of each metric and the human ceiling, a voted round = a triplet."""
    from core.judgments.scores import human_ceiling_2afc, score_2afc

    judge, picks = [], {m: [] for m in metric_names}
    for votes in by_round.values():
        judge.append(sum(v.choice == "B" for v in votes) / len(votes))
        first = votes[0].metrics  # every vote of a round stores the round's same metric values
        for m in metric_names:
            picks[m].append(first.get(m, {}).get("pick"))
    if not judge:
        return {}, None
    # A metric's pick as distances the official formula reads: A closer → d0 < d1, tie → equal.
    as_distances = {"A": (0.0, 1.0), "B": (1.0, 0.0), "tie": (0.0, 0.0)}
    scores = {}
    for m in metric_names:
        known = [(as_distances[p], j) for p, j in zip(picks[m], judge) if p in as_distances]
        if known:
            scores[m] = score_2afc([d[0] for d, _ in known], [d[1] for d, _ in known], [j for _, j in known])
    return scores, human_ceiling_2afc(judge)


# --------------------------------------------------------------------------------------
# JND sessions
# --------------------------------------------------------------------------------------


def _jnd_round_summary(index: int, votes: list[Vote]) -> RoundSummary:
    same = sum(1 for v in votes if v.choice == "same")
    first = votes[0] if votes else None
    identical = bool(first) and not first.chain_a.get("steps") and not first.chain_b.get("steps")
    return RoundSummary(
        index=index, votes_a=0, votes_b=0, majority=None,
        sample=first.sample if first else "",
        votes_same=same, votes_different=len(votes) - same,
        distortion=first.family_b if first else "", identical=identical,
        metric_values={m: float(e["value"]) for m, e in first.metrics.items() if "value" in e} if first else {},
    )


def _agreement_between_people(counts: list[tuple[int, int]]) -> float | None:
    """How often two different people answer a pair alike, averaged over pairs with two answers or more.

    >>> _agreement_between_people([(2, 2), (1, 2), (0, 1)])  # agree, disagree; a lone answer is left out
    0.5
    """
    shares = [(k * (k - 1) + (n - k) * (n - k - 1)) / (n * (n - 1)) for k, n in counts if n >= 2]
    return sum(shares) / len(shares) if shares else None


def _summarize_jnd(info: SessionInfo, votes: list[Vote]) -> Summary:
    from core.judgments.scores import score_jnd

    by_round: dict[int, list[Vote]] = {}
    for v in votes:
        by_round.setdefault(v.round_index, []).append(v)
    rounds = tuple(_jnd_round_summary(i, by_round.get(i, [])) for i in range(info.n_rounds))
    voted = [r for r in rounds if r.votes_same + r.votes_different]
    differing = [r for r in voted if not r.identical]
    identical = [r for r in voted if r.identical]
    same = [r.votes_same / (r.votes_same + r.votes_different) for r in differing]
    names = metric_order({m for r in differing for m in r.metric_values})
    lower = quiz_metrics()
    scores: dict[str, float | None] = {}
    for m in names:
        known = [(r.metric_values[m], s) for r, s in zip(differing, same) if m in r.metric_values]
        # Every metric as a distance: the paper ranks pairs from small to large distance.
        sign = 1.0 if lower.get(m, True) else -1.0
        defined = known and sum(s for _, s in known) > 0
        scores[m] = score_jnd([sign * d for d, _ in known], [s for _, s in known]) if defined else None
    jnd = JndScores(
        pairs=len(differing),
        map=scores,
        chance=sum(same) / len(same) if same else None,
        people=_agreement_between_people([(r.votes_same, r.votes_same + r.votes_different) for r in differing]),
        same_differing=(sum(r.votes_same for r in differing), sum(r.votes_same + r.votes_different for r in differing)),
        same_identical=(sum(r.votes_same for r in identical), sum(r.votes_same + r.votes_different for r in identical)),
    )
    return Summary(session=info, n_votes=len(votes), n_voters=len({v.voter_id for v in votes}), rounds=rounds,
                   metrics={}, by_family={}, kind="jnd", jnd=jnd)
