"""Severity sweeps and equal-PSNR sets: where LPIPS, PSNR and SSIM agree, and where they do not.

:func:`severity_sweep` renders one distortion at evenly spaced severities and scores every
level with LPIPS (batched against one cached reference), PSNR and SSIM; its
:class:`SweepResult` puts the three on a shared "badness" axis (:meth:`SweepResult.normalized`),
exports CSV rows (:meth:`SweepResult.to_rows`) and lists pairs of levels the metrics rank
oppositely (:meth:`SweepResult.disagreements`, and :func:`disagreements_between` across
families, where such pairs are common).

:func:`match_psnr` searches one distortion's severity for a target PSNR, and
:func:`equal_psnr_set` does it for several families at once and ranks the results by LPIPS:
the classic demonstration that images PSNR calls equally damaged do not look equally damaged.

Every distorted image is rounded to 8 bits (:func:`core.images.tensors.quantize_8bit`) before it is
scored, so the numbers are those of the PNG a user would save. Nothing here imports Streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core import metrics as registry
from core.comparison import compare, prepare_reference
from core.distortions import REGISTRY, DistortionParamError, Param, ParamValue, UnknownDistortionError, sweep
from core.lpips.engine import Engine, ReferenceFeatures
from core.metrics.psnr import psnr as classic_psnr
from core.images.tensors import check_unit_batch, quantize_8bit

__all__ = [
    "DEFAULT_EQUAL_PSNR_FAMILIES",
    "DEFAULT_TARGET_PSNR",
    "MAX_LEVELS",
    "MIN_LEVELS",
    "PSNR_CAP",
    "Disagreement",
    "EqualPSNREntry",
    "EqualPSNRResult",
    "Match",
    "SweepResult",
    "default_range",
    "disagreements_between",
    "equal_psnr_set",
    "match_psnr",
    "severity_levels",
    "severity_sweep",
]

MIN_LEVELS = 8
MAX_LEVELS = 32
# Where the "badness" axis puts an identical image (PSNR = inf): at least this many dB, and
# always above every finite PSNR in the sweep (see SweepResult.normalized).
PSNR_CAP = 60.0
PSNR_CAP_MARGIN = 1.0
DEFAULT_TARGET_PSNR = 26.0
# How far above the hardest family's lowest reachable PSNR an automatic target sits.
TARGET_MARGIN = 1.0
DEFAULT_EQUAL_PSNR_FAMILIES: tuple[str, ...] = ("gaussian_blur", "gaussian_noise", "translate", "jpeg")

ProgressFn = Callable[[int, int], None]


# --------------------------------------------------------------------------------------
# Parameters and severity levels
# --------------------------------------------------------------------------------------


def _numeric_param(name: str, param: str | None) -> Param:
    """The distortion's ``param`` (its main one by default), which must be numeric."""
    if not isinstance(name, str) or name not in REGISTRY:
        valid = ", ".join(sorted(REGISTRY))
        raise UnknownDistortionError(f"unknown distortion {name!r}; valid names are: {valid}.")
    distortion = REGISTRY[name]
    p = distortion.main if param is None else distortion.param(param)
    if p.kind == "choice" or p.min is None or p.max is None:
        numeric = ", ".join(q.name for q in distortion.params if q.kind != "choice")
        raise DistortionParamError(
            f"{name}: parameter '{p.name}' is a choice, not a severity; sweep one of: {numeric}."
        )
    return p


def default_range(p: Param) -> tuple[float, float]:
    """``(mildest, harshest)`` severity of a numeric parameter.

    The mild end is the identity (the no-op value) or, without one, the minimum; the harsh
    end is whichever bound lies farther from it. So JPEG quality runs 100 → 5 and blur σ
    0 → 8.

    >>> default_range(REGISTRY["jpeg"].main)
    (100.0, 5.0)
    """
    assert p.min is not None and p.max is not None
    mild = float(p.identity) if isinstance(p.identity, (int, float)) else float(p.min)
    harsh = float(p.max) if abs(p.max - mild) >= abs(p.min - mild) else float(p.min)
    return mild, harsh


def severity_levels(
    name: str,
    param: str | None = None,
    *,
    levels: int = 16,
    low: float | None = None,
    high: float | None = None,
) -> np.ndarray:
    """``levels`` evenly spaced values of ``param`` from ``low`` to ``high``, in that order.

    ``low``/``high`` default to :func:`default_range` (mildest to harshest). Integer
    parameters are rounded and de-duplicated (keeping order), so they can give fewer than
    ``levels`` values: posterize has only 7 bit depths.

    >>> severity_levels("gaussian_blur", levels=8, high=7).tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    """
    p = _numeric_param(name, param)
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not MIN_LEVELS <= levels <= MAX_LEVELS:
        raise ValueError(f"`levels` must be an integer from {MIN_LEVELS} to {MAX_LEVELS}, got {levels!r}.")
    mild, harsh = default_range(p)
    start = float(p.validate(mild if low is None else low, name))
    stop = float(p.validate(harsh if high is None else high, name))
    if start == stop:
        raise ValueError(f"{name}: `low` and `high` are both {start:g}; a sweep needs two different ends.")
    values = np.linspace(start, stop, int(levels))
    if p.kind == "int":
        values = np.array(list(dict.fromkeys(np.round(values).tolist())), dtype=np.float64)
    return values


def _check_values(name: str, p: Param, values: Sequence[float]) -> np.ndarray:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ValueError(f"`values` must be a sequence of {p.name} values, got {values!r}.")
    if not 2 <= len(values) <= MAX_LEVELS:
        raise ValueError(f"`values` must hold 2 to {MAX_LEVELS} severities, got {len(values)}.")
    return np.array([float(p.validate(v, name)) for v in values], dtype=np.float64)


def _native(p: Param, value: float) -> ParamValue:
    """A severity as the distortion expects it: ``int`` for integer parameters."""
    return int(round(value)) if p.kind == "int" else float(value)


def _render(
    image: torch.Tensor, name: str, p: Param, values: Sequence[float], seed: int,
    base_params: Mapping[str, ParamValue] | None,
) -> torch.Tensor:
    """The distorted images at ``values``, rounded to 8 bits (one noise pattern for all)."""
    native = [_native(p, v) for v in values]
    return quantize_8bit(sweep(name, p.name, native, image, seed=seed, base_params=base_params))


def _check_ssim_mode(mode: str) -> None:
    if mode not in ("reference", "rgb"):
        raise ValueError(f"`ssim_mode` must be 'reference' (MATLAB luma) or 'rgb' (per channel), got {mode!r}.")


def _check_base(name: str, p: Param, base_params: Mapping[str, Any] | None) -> dict[str, ParamValue]:
    base = dict(base_params or {})
    if p.name in base:
        raise DistortionParamError(f"{name}: '{p.name}' is the swept parameter; leave it out of `base_params`.")
    for key, value in base.items():
        REGISTRY[name].param(key).validate(value, name)
    return base


# --------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disagreement:
    """Two levels that LPIPS and another metric rank oppositely.

    ``a_*`` and ``b_*`` describe the two levels: which result (index into the list given to
    :func:`disagreements_between`; 0 for :meth:`SweepResult.disagreements`), its distortion,
    level index and severity, and the scores. ``metric`` is the metric that contradicts
    LPIPS (any other registered metric: "psnr", "ssim"...). ``rank_gap`` measures how striking the clash is: the smaller of
    the two metrics' rank differences between the levels (in the pooled ranking), so it is
    large only when *both* metrics are confident, in opposite directions.
    """

    metric: str
    a_result: int
    a_name: str
    a_index: int
    a_value: float
    b_result: int
    b_name: str
    b_index: int
    b_value: float
    lpips_a: float
    lpips_b: float
    other_a: float
    other_b: float
    rank_gap: float

    @property
    def pair(self) -> tuple[int, int]:
        """The two level indices ``(a_index, b_index)``."""
        return self.a_index, self.b_index

    @property
    def lpips_worse(self) -> str:
        """``"a"`` or ``"b"``: the level LPIPS calls worse (the other metric says the opposite)."""
        return "a" if self.lpips_a > self.lpips_b else "b"

    def describe(self) -> str:
        """A one-line explanation, e.g. for a table caption."""
        worse, better = (("a", "b") if self.lpips_worse == "a" else ("b", "a"))

        def level(side: str) -> str:
            return f"{getattr(self, side + '_name')} @ {getattr(self, side + '_value'):g}"

        return (f"LPIPS says {level(worse)} is worse than {level(better)}; "
                f"{self.metric.upper()} says the opposite.")


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Metrics of one distortion at several severities (one entry per level, in sweep order).

    ``values`` are the severities of ``param`` (in its natural ``unit``); ``scores`` maps each
    metric (:mod:`core.metrics` keys, display order) to a float64 array of the same length,
    also reachable as an attribute (``result.lpips``, ``result.psnr``: dB, ``inf`` for an
    identical image). A metric that cannot score images this small (MS-SSIM) is left out.
    ``seed`` and ``base_params`` are what rendered the images, so :meth:`image` can redraw one.
    The arrays are read-only.
    """

    name: str
    param: str
    values: np.ndarray
    scores: Mapping[str, np.ndarray]
    unit: str = ""
    integer: bool = False
    seed: int = 0
    base_params: Mapping[str, ParamValue] = field(default_factory=dict)
    ssim_mode: str = "reference"
    net: str = ""

    def __post_init__(self) -> None:
        def frozen(values) -> np.ndarray:
            arr = np.array(values, dtype=np.float64).reshape(-1)
            arr.setflags(write=False)
            return arr

        object.__setattr__(self, "values", frozen(self.values))
        if "lpips" not in self.scores:
            raise ValueError(f"SweepResult needs LPIPS scores (the axis the others are compared with), "
                             f"got {list(self.scores)}.")
        scores = {key: frozen(self.scores[key]) for key in _order(self.scores)}
        object.__setattr__(self, "scores", scores)
        lengths = {"values": len(self.values), **{k: len(v) for k, v in scores.items()}}
        if len(set(lengths.values())) != 1 or lengths["values"] == 0:
            raise ValueError(f"SweepResult arrays must be non-empty and of equal length, got {lengths}.")
        object.__setattr__(self, "base_params", dict(self.base_params))

    def __getattr__(self, key: str) -> np.ndarray:
        scores = self.__dict__.get("scores", {})
        if key in scores:
            return scores[key]
        raise AttributeError(f"{type(self).__name__} has no attribute or metric {key!r}.")

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics scored, in display order."""
        return tuple(self.scores)

    def __len__(self) -> int:
        return len(self.values)

    def normalized(self) -> dict[str, np.ndarray]:
        """Each metric rescaled to a shared *badness* axis in [0, 1], higher = worse.

        Within this sweep: a lower-is-better metric (LPIPS) maps ``(x - min) / (max - min)``;
        a higher-is-better one (PSNR, SSIM) is inverted, ``(max - x) / (max - min)``. A metric
        that is constant over the sweep maps to all zeros. An infinite value (the PSNR of an
        identical image, e.g. severity 0) is first replaced by ``max(PSNR_CAP, largest finite
        value + PSNR_CAP_MARGIN)`` = at least 60 dB, so it is the least bad level and finite
        values keep their order; an all-infinite metric maps to zeros. The axis is relative:
        1 is the worst level *of this sweep*, not an absolute quality.
        """
        return {key: _badness(_cap_infinite(values), higher_is_worse=not _higher_is_better(key))
                for key, values in self.scores.items()}

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per level for CSV export: distortion, param, value, then each metric.

        Integer parameters give ``int`` values; an identical image has ``psnr = inf``.
        """
        return [
            {
                "distortion": self.name,
                "param": self.param,
                "value": int(round(v)) if self.integer else float(v),
                **{key: float(values[i]) for key, values in self.scores.items()},
            }
            for i, v in enumerate(self.values)
        ]

    def image(self, ref_image: torch.Tensor, index: int) -> torch.Tensor:
        """Redraw level ``index`` (1×3×H×W, 8-bit quantized) from the same reference image."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"level {index} is out of range for a sweep of {len(self)} levels.")
        p = _numeric_param(self.name, self.param)
        return _render(check_unit_batch(ref_image, "ref_image"), self.name, p,
                       [float(self.values[index])], self.seed, self.base_params)

    def disagreements(
        self, metrics: Sequence[str] | None = None, *, limit: int = 20,
        ties: Mapping[str, float] | None = None,
    ) -> list[Disagreement]:
        """Pairs of levels ``(i, j)`` where LPIPS and a metric in ``metrics`` disagree on which is worse.

        Rare within one monotonic sweep (every metric gets worse with severity); see
        :func:`disagreements_between` for the common, cross-family case. Same arguments.
        """
        return _find_disagreements([self], metrics, limit, ties, across_only=False)


def _order(names) -> list[str]:
    """Registered metrics in display order, then any others (a metric no longer registered)."""
    known = [k for k in registry.names() if k in names]
    return known + sorted(set(names) - set(known))


def _higher_is_better(key: str) -> bool:
    try:
        return registry.get(key).higher_is_better
    except registry.UnknownMetricError:
        raise ValueError(f"{key!r} is not a registered metric, so its direction is unknown; "
                         f"the known metrics are {', '.join(registry.names())}.") from None


def _cap_infinite(values: np.ndarray) -> np.ndarray:
    out = np.array(values, dtype=np.float64)
    if not np.isposinf(out).any():
        return out
    finite = out[np.isfinite(out)]
    if finite.size == 0:
        return np.zeros_like(out)  # nothing but identical images: no spread to show
    cap = max(PSNR_CAP, float(finite.max()) + PSNR_CAP_MARGIN)
    return np.where(np.isposinf(out), cap, out)


def _badness(values: np.ndarray, *, higher_is_worse: bool) -> np.ndarray:
    lo, hi = float(np.min(values)), float(np.max(values))
    if not hi > lo:
        return np.zeros_like(values, dtype=np.float64)
    scaled = (values - lo) / (hi - lo) if higher_is_worse else (hi - values) / (hi - lo)
    return np.clip(scaled, 0.0, 1.0)


def _check_callable(progress: ProgressFn | None) -> None:
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be a callable progress(done, total) or None, got {progress!r}.")


def severity_sweep(
    engine: Engine,
    ref_features_or_tensor: ReferenceFeatures | torch.Tensor,
    ref_image: torch.Tensor | None,
    name: str,
    param: str | None = None,
    values: Sequence[float] | None = None,
    *,
    levels: int = 16,
    low: float | None = None,
    high: float | None = None,
    seed: int = 0,
    base_params: Mapping[str, ParamValue] | None = None,
    ssim_mode: str = "reference",
    batch_size: int = 8,
    progress: ProgressFn | None = None,
) -> SweepResult:
    """Score distortion ``name`` at a range of severities of ``param`` (its main one by default).

    Severities are ``values`` if given (2 to 32 of them, in that order; then ``levels``,
    ``low`` and ``high`` must be left alone), else :func:`severity_levels` (``levels`` from 8
    to 32, evenly from ``low`` to ``high``, by default mildest to harshest). Random
    distortions use one ``seed``, hence one noise pattern growing stronger.

    ``ref_features_or_tensor`` is the reference as cached by ``engine.reference()`` (or the
    image, then it is cached here); ``ref_image`` is the 1×3×H×W image to distort and score
    the other metrics against (``None``: the one in the features). Work is done ``batch_size`` levels
    at a time (rendering, LPIPS against the one cached reference, PSNR, SSIM), so memory stays
    bounded; ``progress(done, total)`` is called after each chunk, ending with ``done == total``.
    Every registered metric is scored (:mod:`core.metrics`), except one that cannot take images
    this small (MS-SSIM below 176 px).

    Distorted images are rounded to 8 bits before scoring; give an 8-bit reference too (as
    loaded from a file, or through ``quantize_8bit`` after resizing), or severity 0 scores a
    small non-zero LPIPS (PSNR and SSIM round both images themselves).
    """
    p = _numeric_param(name, param)
    _check_ssim_mode(ssim_mode)
    _check_callable(progress)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    if values is not None:
        if low is not None or high is not None:
            raise ValueError("give either explicit `values` or a `low`/`high` range, not both.")
        severities = _check_values(name, p, values)
    else:
        severities = severity_levels(name, p.name, levels=levels, low=low, high=high)
    base = _check_base(name, p, base_params)

    ref = ref_features_or_tensor
    if not isinstance(ref, ReferenceFeatures):
        ref = engine.reference(ref)
    if ref.image.shape[0] != 1:
        raise ValueError(f"a sweep takes one reference image, got a batch of {ref.image.shape[0]}.")
    image = check_unit_batch(ref.image if ref_image is None else ref_image, "ref_image")
    if image.shape[0] != 1:
        raise ValueError(f"`ref_image` must be one image (1×3×H×W), got a batch of {image.shape[0]}.")
    if tuple(image.shape[-2:]) != ref.size:
        raise ValueError(f"`ref_image` is {tuple(image.shape[-2:])} but the reference features were computed "
                         f"on a {ref.size} image; pass the same image to both.")
    # Everything that depends only on the reference, once: LPIPS's features (given), SSIM's luma...
    prepared = prepare_reference(engine, image, ssim_mode=ssim_mode, features=ref)

    total = len(severities)
    parts: dict[str, list[np.ndarray]] = {key: [] for key in prepared.parts}
    for start in range(0, total, int(batch_size)):
        chunk = severities[start:start + int(batch_size)]
        dist = _render(image, name, p, chunk, seed, base).to(engine.device, torch.float32)
        result = compare(engine, prepared, dist, metrics=tuple(parts), spatial=False)
        for key in parts:
            parts[key].append(result[key].double().numpy())
        if progress is not None:
            progress(min(start + len(chunk), total), total)
    return SweepResult(
        name=name, param=p.name, values=severities, scores={k: np.concatenate(v) for k, v in parts.items()},
        unit=p.unit, integer=p.kind == "int", seed=seed, base_params=base, ssim_mode=ssim_mode, net=engine.net,
    )


# --------------------------------------------------------------------------------------
# Disagreements
# --------------------------------------------------------------------------------------


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (0-based; ties share the mean rank); works with ±inf."""
    order = np.sort(x)
    return (np.searchsorted(order, x, "left") + np.searchsorted(order, x, "right") - 1) / 2.0


def disagreements_between(
    results: Sequence[SweepResult], metrics: Sequence[str] | None = None, *, limit: int = 20,
    ties: Mapping[str, float] | None = None,
) -> list[Disagreement]:
    """Pairs (a level of one result, a level of another) that LPIPS and another metric rank oppositely.

    For each metric in ``metrics`` (default: every non-LPIPS metric all results have, e.g.
    "psnr", "ssim"), a pair counts when LPIPS says one level is worse and the metric says the
    other is (each in its own direction), each by more than its tie threshold (``ties``,
    defaults from each metric's spec: 0.001 LPIPS, 0.1 dB PSNR, 0.001 SSIM), so near-equal
    scores never count. The classic case: a 1 px shift has a lower PSNR than
    light noise, yet LPIPS calls the noise worse. Only pairs from *different* results are
    considered; at most ``limit`` are returned, most striking (largest ``rank_gap``, ranks
    pooled over all levels of all results) first.
    """
    results = list(results)
    if len(results) < 2:
        raise ValueError(f"disagreements_between() needs at least two sweep results, got {len(results)}.")
    return _find_disagreements(results, metrics, limit, ties, across_only=True)


def _find_disagreements(
    results: Sequence[SweepResult], metrics: Sequence[str], limit: int,
    ties: Mapping[str, float] | None, *, across_only: bool,
) -> list[Disagreement]:
    for r in results:
        if not isinstance(r, SweepResult):
            raise TypeError(f"expected SweepResult objects, got {type(r).__name__}.")
    common = [k for k in results[0].scores if all(k in r.scores for r in results)]
    if metrics is None:
        metrics = tuple(k for k in common if k != "lpips")
    elif isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(metrics)
    bad = [m for m in metrics if m not in common or m == "lpips"]
    if bad or not metrics:
        choices = ", ".join(repr(k) for k in common if k != "lpips")
        raise ValueError(f"`metrics` must name metrics to compare with LPIPS that every result has ({choices}), "
                         f"got {metrics!r}.")
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"`limit` must be a positive integer, got {limit!r}.")
    defaults = {key: registry.get(key).tie for key in common}
    tie = {**defaults, **dict(ties or {})}
    for key, value in tie.items():
        if key not in defaults or isinstance(value, bool) \
                or not isinstance(value, (int, float, np.integer, np.floating)) or not value >= 0:
            raise ValueError(f"`ties` maps {', '.join(repr(k) for k in defaults)} to non-negative numbers, "
                             f"got {key!r}: {value!r}.")

    owner = np.concatenate([np.full(len(r), k) for k, r in enumerate(results)])
    index = np.concatenate([np.arange(len(r)) for r in results])
    lpips = np.concatenate([r.lpips for r in results])
    upper = np.triu(np.ones((len(owner), len(owner)), dtype=bool), k=1)
    if across_only:
        upper &= owner[:, None] != owner[None, :]
    d_lpips = lpips[:, None] - lpips[None, :]  # > 0: LPIPS says the row level is worse
    r_lpips = _ranks(lpips)
    # Score every clash as arrays first; build objects only for the `limit` that are returned.
    hits: list[np.ndarray] = []  # rows: metric number, a, b, min rank gap, summed rank gap
    scores = {m: np.concatenate([r.scores[m] for r in results]) for m in metrics}
    for k, metric in enumerate(metrics):
        badness = -scores[metric] if _higher_is_better(metric) else scores[metric]
        with np.errstate(invalid="ignore"):  # inf - inf: a tie, never a disagreement
            d_other = badness[:, None] - badness[None, :]
            clash = upper & (((d_lpips > tie["lpips"]) & (d_other < -tie[metric]))
                             | ((d_lpips < -tie["lpips"]) & (d_other > tie[metric])))
        a, b = np.nonzero(clash)
        r_other = _ranks(badness)
        gap_l, gap_o = np.abs(r_lpips[a] - r_lpips[b]), np.abs(r_other[a] - r_other[b])
        hits.append(np.stack([np.full(len(a), k), a, b, np.minimum(gap_l, gap_o), gap_l + gap_o], axis=1))
    table = np.concatenate(hits) if hits else np.empty((0, 5))
    # Most striking first; equal gaps keep metric order, then pool order (lexsort is stable).
    order = np.lexsort((-table[:, 4], -table[:, 3]))[:int(limit)]
    out = []
    for k, a, b, gap, _ in table[order]:
        metric, a, b = metrics[int(k)], int(a), int(b)
        ra, rb = results[owner[a]], results[owner[b]]
        out.append(Disagreement(
            metric=metric,
            a_result=int(owner[a]), a_name=ra.name, a_index=int(index[a]), a_value=float(ra.values[index[a]]),
            b_result=int(owner[b]), b_name=rb.name, b_index=int(index[b]), b_value=float(rb.values[index[b]]),
            lpips_a=float(lpips[a]), lpips_b=float(lpips[b]),
            other_a=float(scores[metric][a]), other_b=float(scores[metric][b]), rank_gap=float(gap),
        ))
    return out


# --------------------------------------------------------------------------------------
# Equal PSNR
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Match:
    """The result of :func:`match_psnr`.

    ``value`` is the severity found (``int`` for integer parameters) in ``unit``; ``image``
    the distorted image there (1×3×H×W, 8-bit quantized) and ``psnr`` its PSNR in dB.
    ``reached`` is True when the target lies within the family's achievable PSNR range and
    the search got within ``tol`` of it, or, for integer parameters, found the closest integer
    (which can be further than ``tol`` from the target). Otherwise ``value`` is the closest
    severity tried and ``message`` says why the target was missed.
    """

    name: str
    param: str
    value: ParamValue
    unit: str
    target_psnr: float
    psnr: float
    image: torch.Tensor = field(repr=False)
    reached: bool
    message: str = ""
    evaluations: int = 0

    @property
    def error(self) -> float:
        """Achieved minus target PSNR, in dB."""
        return self.psnr - self.target_psnr


class _PsnrProbe:
    """PSNR of one distortion at any severity, cached per severity; images are not kept (memory)
    but redrawn on demand, which is exact because rendering is seeded."""

    def __init__(self, ref: torch.Tensor, name: str, p: Param, seed: int, base: dict[str, ParamValue]) -> None:
        self.ref, self.name, self.p, self.seed, self.base = ref, name, p, seed, base
        self.cache: dict[float, float] = {}

    def __call__(self, value: float) -> float:
        value = float(_native(self.p, value))
        if value not in self.cache:
            image = _render(self.ref, self.name, self.p, [value], self.seed, self.base)
            self.cache[value] = float(classic_psnr(self.ref, image)[0])
        return self.cache[value]

    def image(self, value: float) -> torch.Tensor:
        return _render(self.ref, self.name, self.p, [value], self.seed, self.base)


def _check_target(target_psnr: Any) -> float:
    if isinstance(target_psnr, bool) or not isinstance(target_psnr, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(target_psnr)) or target_psnr <= 0:
        raise ValueError(f"`target_psnr` must be a positive, finite number of dB, got {target_psnr!r}.")
    return float(target_psnr)


def _search(probe: _PsnrProbe, target: float, mild: float, harsh: float, tol: float, max_iter: int,
            ) -> tuple[float, bool, str]:
    """Bisect ``mild``..``harsh`` for PSNR = ``target``; returns (severity, reached, message)."""
    p, label = probe.p, REGISTRY[probe.name].label
    unit = f" {p.unit}" if p.unit else ""
    ends = {mild: probe(mild), harsh: probe(harsh)}
    # Direction comes from the ends, not from assumptions: JPEG quality 100 is the mild end.
    hi_v, lo_v = (mild, harsh) if ends[mild] >= ends[harsh] else (harsh, mild)
    hi_psnr, lo_psnr = ends[hi_v], ends[lo_v]

    def closest() -> float:
        return min(probe.cache, key=lambda v: (abs(probe.cache[v] - target), abs(v - mild)))

    if not lo_psnr - tol <= target <= hi_psnr + tol:
        best = closest()
        return best, False, (
            f"{label} cannot reach {target:.2f} dB: over {p.name} from {mild:g} to {harsh:g}{unit} its PSNR "
            f"spans {lo_psnr:.2f} to {hi_psnr:.2f} dB; the closest is {p.name} = {best:g}{unit} "
            f"({probe.cache[best]:.2f} dB).")
    for v in (hi_v, lo_v):
        if abs(ends[v] - target) <= tol:
            return v, True, ""

    if p.kind == "int":
        steps = 0
        while abs(hi_v - lo_v) > 1 and steps < max_iter:
            mid = float((int(hi_v) + int(lo_v)) // 2)
            steps += 1
            if probe(mid) >= target:
                hi_v = mid
            else:
                lo_v = mid
        best = hi_v if abs(probe(hi_v) - target) <= abs(probe(lo_v) - target) else lo_v
        # PSNR need not be monotonic in quality: step to a neighbour while that is closer.
        while steps < max_iter:
            nearby = [v for v in (best - 1, best + 1) if min(p.min, p.max) <= v <= max(p.min, p.max)]
            steps += len([v for v in nearby if float(v) not in probe.cache])
            better = min(nearby, key=lambda v: abs(probe(v) - target), default=best)
            if abs(probe(better) - target) >= abs(probe(best) - target):
                break
            best = better
        if abs(hi_v - lo_v) > 1:
            return best, False, (f"{label}: stopped after {max_iter} steps; the closest {p.name} found is "
                                 f"{best:g}{unit} ({probe.cache[best]:.2f} dB).")
        note = "" if abs(probe.cache[best] - target) <= tol else (
            f"{p.name} is an integer: the closest, {best:g}{unit}, gives {probe.cache[best]:.2f} dB.")
        return best, True, note

    for _ in range(max_iter):
        mid = (hi_v + lo_v) / 2.0
        if mid in (hi_v, lo_v):
            break  # no float between the two: the PSNR jumps over the target here
        value = probe(mid)
        if abs(value - target) <= tol:
            return mid, True, ""
        if value > target:
            hi_v = mid
        else:
            lo_v = mid
    best = closest()
    return best, False, (
        f"{label}: PSNR did not come within {tol:g} dB of {target:.2f} dB in {max_iter} steps (after 8-bit "
        f"rounding it can jump past the target); the closest is {p.name} = {best:g}{unit} "
        f"({probe.cache[best]:.2f} dB).")


def match_psnr(
    ref_image: torch.Tensor,
    name: str,
    param: str | None = None,
    *,
    target_psnr: float,
    seed: int = 0,
    tol: float = 0.05,
    max_iter: int = 40,
    low: float | None = None,
    high: float | None = None,
    base_params: Mapping[str, ParamValue] | None = None,
) -> Match:
    """Find the severity of ``name`` (its ``param``, main by default) whose image has ``target_psnr``.

    A 1-D bisection between ``low`` and ``high`` (default :func:`default_range`, mildest to
    harshest). PSNR is assumed to fall monotonically from one end to the other; which end is
    the high one is read off the PSNR at both ends, so JPEG quality (high = mild) needs no
    special case. Float parameters stop within ``tol`` dB; integer ones (JPEG quality,
    posterize bits) bisect over integers, then return the closest integer. If the target lies
    outside the PSNR range of the two ends, the closest end comes back with ``reached=False``
    and a ``message``. ``max_iter`` bounds the evaluations after the two ends.
    """
    p = _numeric_param(name, param)
    target = _check_target(target_psnr)
    if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"`tol` must be a positive number of dB, got {tol!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"`max_iter` must be a positive integer, got {max_iter!r}.")
    image = check_unit_batch(ref_image, "ref_image")
    if image.shape[0] != 1:
        raise ValueError(f"`ref_image` must be one image (1×3×H×W), got a batch of {image.shape[0]}.")
    probe = _PsnrProbe(image, name, p, seed, _check_base(name, p, base_params))
    mild, harsh = _ends(name, p, low, high)
    return _match(probe, target, mild, harsh, float(tol), int(max_iter))


def _ends(name: str, p: Param, low: float | None, high: float | None) -> tuple[float, float]:
    mild, harsh = default_range(p)
    mild = float(p.validate(mild if low is None else low, name))
    harsh = float(p.validate(harsh if high is None else high, name))
    if mild == harsh:
        raise ValueError(f"{name}: `low` and `high` are both {mild:g}; the search needs two different ends.")
    return mild, harsh


def _match(probe: _PsnrProbe, target: float, mild: float, harsh: float, tol: float, max_iter: int) -> Match:
    value, reached, message = _search(probe, target, mild, harsh, tol, max_iter)
    p = probe.p
    return Match(
        name=probe.name, param=p.name, value=_native(p, value), unit=p.unit, target_psnr=target,
        psnr=probe(value), image=probe.image(value), reached=reached, message=message,
        evaluations=len(probe.cache),
    )


@dataclass(frozen=True, eq=False)
class EqualPSNREntry:
    """One family in an :class:`EqualPSNRResult`: its severity, scores and image.

    ``scores`` holds every registered metric (display order) that can score the image; ``psnr``
    is the one the family was tuned to (the search's own value, as its image is exactly that).
    """

    name: str
    label: str
    param: str
    value: ParamValue
    unit: str
    scores: Mapping[str, float]
    image: torch.Tensor = field(repr=False)
    reached: bool
    message: str = ""

    @property
    def psnr(self) -> float:
        return self.scores["psnr"]

    @property
    def ssim(self) -> float:
        return self.scores["ssim"]

    @property
    def lpips(self) -> float:
        return self.scores["lpips"]

    def row(self) -> dict[str, Any]:
        """Plain values for a table or CSV (no image): the family, then every metric's score."""
        return {"distortion": self.name, "param": self.param, "value": self.value, "unit": self.unit,
                **self.scores, "reached": self.reached, "message": self.message}


@dataclass(frozen=True, eq=False)
class EqualPSNRResult:
    """Several distortions tuned to one PSNR, and how LPIPS and SSIM score them.

    ``entries`` follow the requested family order; ``ranking`` lists family names from the
    lowest LPIPS (looks most like the reference) to the highest. ``target_auto`` is True when
    the target was chosen by :func:`equal_psnr_set`. ``message`` collects the notes of
    families that missed the target.
    """

    target_psnr: float
    entries: tuple[EqualPSNREntry, ...]
    ranking: tuple[str, ...]
    target_auto: bool
    ssim_mode: str
    net: str
    message: str = ""

    def __getitem__(self, name: str) -> EqualPSNREntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(f"{name!r} is not in this set; it holds {', '.join(e.name for e in self.entries)}.")

    @property
    def ssim_ranking(self) -> tuple[str, ...]:
        """Family names from the highest SSIM (most similar) to the lowest."""
        return tuple(e.name for e in sorted(self.entries, key=lambda e: -e.ssim))

    @property
    def psnr_spread(self) -> float:
        """Largest minus smallest achieved PSNR over the families that reached the target (dB)."""
        values = [e.psnr for e in self.entries if e.reached]
        return float(max(values) - min(values)) if values else math.nan

    def to_rows(self) -> list[dict[str, Any]]:
        """One :meth:`EqualPSNREntry.row` per family, in ``entries`` order."""
        return [e.row() for e in self.entries]


def _choose_target(spans: Sequence[tuple[float, float]]) -> float:
    """A PSNR every family can reach: :data:`DEFAULT_TARGET_PSNR` moved into the common range.

    The common range runs from the highest of the families' lowest PSNRs (plus
    :data:`TARGET_MARGIN`) to the lowest of their highest PSNRs; if the families share no
    range, its middle is used and the families that cannot reach it say so.
    """
    floor = max(lo for lo, _ in spans) + TARGET_MARGIN
    ceiling = min(hi for _, hi in spans)
    if floor <= ceiling:
        return float(min(max(DEFAULT_TARGET_PSNR, floor), ceiling))
    return float((floor - TARGET_MARGIN + ceiling) / 2.0)


def equal_psnr_set(
    engine: Engine,
    ref_image: torch.Tensor,
    families: Sequence[str] = DEFAULT_EQUAL_PSNR_FAMILIES,
    target_psnr: float | None = None,
    seed: int = 0,
    ssim_mode: str = "reference",
    *,
    tol: float = 0.05,
    max_iter: int = 40,
    ref_features: ReferenceFeatures | None = None,
) -> EqualPSNRResult:
    """Tune each distortion in ``families`` (main parameter) to one PSNR and score them all.

    With ``target_psnr=None`` the target is :data:`DEFAULT_TARGET_PSNR` (26 dB) moved, if
    needed, into the range every family reaches (at least 1 dB above the highest of their
    lowest PSNRs). Each family is searched with :func:`match_psnr` (``tol``, ``max_iter``,
    ``seed``); a family that cannot reach the target (a 1 px shift may already be below it on
    a detailed image, and JPEG quality is an integer) keeps its closest severity and says so
    in its ``message``. The images are then scored in one batch with every registered metric:
    LPIPS against the cached reference (``ref_features``, computed here if not given), SSIM
    in ``ssim_mode``.
    """
    if isinstance(families, str) or not isinstance(families, Sequence) or not families:
        raise ValueError(f"`families` must be a non-empty sequence of distortion names, got {families!r}.")
    if len(set(families)) != len(families):
        raise ValueError(f"`families` lists a distortion twice: {list(families)!r}.")
    _check_ssim_mode(ssim_mode)
    target = None if target_psnr is None else _check_target(target_psnr)
    image = check_unit_batch(ref_image, "ref_image")
    if image.shape[0] != 1:
        raise ValueError(f"`ref_image` must be one image (1×3×H×W), got a batch of {image.shape[0]}.")
    if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"`tol` must be a positive number of dB, got {tol!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"`max_iter` must be a positive integer, got {max_iter!r}.")
    params = [_numeric_param(name, None) for name in families]  # fail before any work
    if ref_features is None:
        ref_features = engine.reference(image)
    elif tuple(image.shape[-2:]) != ref_features.size:
        raise ValueError(f"`ref_image` is {tuple(image.shape[-2:])} but `ref_features` were computed on a "
                         f"{ref_features.size} image; pass the same image to both.")

    probes = [_PsnrProbe(image, name, p, seed, {}) for name, p in zip(families, params)]
    ranges = [default_range(p) for p in params]
    spans = []
    for probe, (mild, harsh) in zip(probes, ranges):
        ends = (probe(mild), probe(harsh))
        spans.append((min(ends), max(ends)))
    auto = target is None
    if target is None:
        target = _choose_target(spans)
    matches = [_match(probe, target, mild, harsh, float(tol), int(max_iter))
               for probe, (mild, harsh) in zip(probes, ranges)]

    dist = torch.cat([m.image for m in matches]).to(engine.device, torch.float32)
    prepared = prepare_reference(engine, image, ssim_mode=ssim_mode, features=ref_features)
    scored = compare(engine, prepared, dist, spatial=False)
    keys = [k for k in scored.metrics if k not in scored.skipped]
    entries = tuple(
        EqualPSNREntry(name=m.name, label=REGISTRY[m.name].label, param=m.param, value=m.value, unit=m.unit,
                       scores={k: (m.psnr if k == "psnr" else float(scored[k][i])) for k in keys},
                       image=m.image, reached=m.reached, message=m.message)
        for i, m in enumerate(matches)
    )
    ranking = tuple(e.name for e in sorted(entries, key=lambda e: e.lpips))
    notes = " ".join(e.message for e in entries if e.message)
    return EqualPSNRResult(target_psnr=target, entries=entries, ranking=ranking, target_auto=auto,
                           ssim_mode=ssim_mode, net=engine.net, message=notes)
