"""One distortion at evenly spaced severities, scored by every registered metric, and the
shared "badness" axis its result puts them on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.comparison import compare, prepare_reference
from core.distortions import ParamValue
from core.images.tensors import check_unit_batch
from core.lpips.engine import Engine, ReferenceFeatures

from .disagreements import Disagreement, find_disagreements
from .levels import (ProgressFn, check_base, check_callable, check_ssim_mode, check_values, higher_is_better,
                     metric_order, numeric_param, render, severity_levels)

__all__ = ["PSNR_CAP", "SweepResult", "disagreements_between", "severity_sweep"]

# Where the "badness" axis puts an identical image (PSNR = inf): at least this many dB, and
# always above every finite PSNR in the sweep (see SweepResult.normalized).
PSNR_CAP = 60.0
PSNR_CAP_MARGIN = 1.0


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
        scores = {key: frozen(self.scores[key]) for key in metric_order(self.scores)}
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
        return {key: _badness(_cap_infinite(values), higher_is_worse=not higher_is_better(key))
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
        p = numeric_param(self.name, self.param)
        return render(check_unit_batch(ref_image, "ref_image"), self.name, p,
                       [float(self.values[index])], self.seed, self.base_params)

    def disagreements(
        self, metrics: Sequence[str] | None = None, *, limit: int = 20,
        ties: Mapping[str, float] | None = None,
    ) -> list[Disagreement]:
        """Pairs of levels ``(i, j)`` where LPIPS and a metric in ``metrics`` disagree on which is worse.

        Rare within one monotonic sweep (every metric gets worse with severity); see
        :func:`disagreements_between` for the common, cross-family case. Same arguments.
        """
        return find_disagreements([self], metrics, limit, ties, across_only=False)


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
    p = numeric_param(name, param)
    check_ssim_mode(ssim_mode)
    check_callable(progress)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    if values is not None:
        if low is not None or high is not None:
            raise ValueError("give either explicit `values` or a `low`/`high` range, not both.")
        severities = check_values(name, p, values)
    else:
        severities = severity_levels(name, p.name, levels=levels, low=low, high=high)
    base = check_base(name, p, base_params)

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
        dist = render(image, name, p, chunk, seed, base).to(engine.device, torch.float32)
        result = compare(engine, prepared, dist, metrics=tuple(parts), spatial=False)
        for key in parts:
            parts[key].append(result[key].double().numpy())
        if progress is not None:
            progress(min(start + len(chunk), total), total)
    return SweepResult(
        name=name, param=p.name, values=severities, scores={k: np.concatenate(v) for k, v in parts.items()},
        unit=p.unit, integer=p.kind == "int", seed=seed, base_params=base, ssim_mode=ssim_mode, net=engine.net,
    )


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
    for r in results:
        if not isinstance(r, SweepResult):
            raise TypeError(f"expected SweepResult objects, got {type(r).__name__}.")
    return find_disagreements(results, metrics, limit, ties, across_only=True)
