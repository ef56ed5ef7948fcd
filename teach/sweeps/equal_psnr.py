"""Several distortion families brought to one PSNR and ranked by LPIPS: the classic
demonstration that images PSNR calls equally damaged do not look equally damaged."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.comparison import compare, prepare_reference
from core.distortions import REGISTRY, Param, ParamValue
from core.lpips.engine import Engine, ReferenceFeatures
from core.metrics.psnr import psnr as classic_psnr
from core.images.tensors import check_unit_batch

from .levels import check_base, check_ssim_mode, default_range, native, numeric_param, render

__all__ = ["DEFAULT_EQUAL_PSNR_FAMILIES", "DEFAULT_TARGET_PSNR", "EqualPSNREntry", "EqualPSNRResult", "Match",
           "equal_psnr_set", "match_psnr"]

DEFAULT_TARGET_PSNR = 26.0
# How far above the hardest family's lowest reachable PSNR an automatic target sits.
TARGET_MARGIN = 1.0
DEFAULT_EQUAL_PSNR_FAMILIES: tuple[str, ...] = ("gaussian_blur", "gaussian_noise", "translate", "jpeg")


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
        value = float(native(self.p, value))
        if value not in self.cache:
            image = render(self.ref, self.name, self.p, [value], self.seed, self.base)
            self.cache[value] = float(classic_psnr(self.ref, image)[0])
        return self.cache[value]

    def image(self, value: float) -> torch.Tensor:
        return render(self.ref, self.name, self.p, [value], self.seed, self.base)


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
    p = numeric_param(name, param)
    target = _check_target(target_psnr)
    if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"`tol` must be a positive number of dB, got {tol!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"`max_iter` must be a positive integer, got {max_iter!r}.")
    image = check_unit_batch(ref_image, "ref_image")
    if image.shape[0] != 1:
        raise ValueError(f"`ref_image` must be one image (1×3×H×W), got a batch of {image.shape[0]}.")
    probe = _PsnrProbe(image, name, p, seed, check_base(name, p, base_params))
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
        name=probe.name, param=p.name, value=native(p, value), unit=p.unit, target_psnr=target,
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
    check_ssim_mode(ssim_mode)
    target = None if target_psnr is None else _check_target(target_psnr)
    image = check_unit_batch(ref_image, "ref_image")
    if image.shape[0] != 1:
        raise ValueError(f"`ref_image` must be one image (1×3×H×W), got a batch of {image.shape[0]}.")
    if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"`tol` must be a positive number of dB, got {tol!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"`max_iter` must be a positive integer, got {max_iter!r}.")
    params = [numeric_param(name, None) for name in families]  # fail before any work
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
