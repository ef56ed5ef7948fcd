"""PSNR: peak signal-to-noise ratio in dB on 8-bit RGB, the way papers report it.

Its map is the per-pixel squared error (mean over R, G, B, in 8-bit levels): what PSNR averages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import InvalidArgumentError
from ..images.tensors import check_dist, check_pair, check_unit_batch
from ._levels import PEAK, out_dtype, quantize, shared_levels, work_dtype
from .registry import MetricContext, MetricScore

__all__ = ["PSNRReference", "psnr", "prepare_reference", "score"]


def _from_levels(x: torch.Tensor, y: torch.Tensor, peak: float, diff: torch.Tensor | None = None) -> torch.Tensor:
    d = (x - y if diff is None else diff).flatten(1)
    # One pass for the squares and their sum (exact either way on 8-bit levels in float64).
    mse = torch.einsum("nk,nk->n", d, d) / d.shape[1]
    # Explicit inf instead of log10(peak²/0), which is inf in torch but trips numpy users.
    return torch.where(mse > 0, 10.0 * torch.log10(peak**2 / mse), torch.full_like(mse, math.inf))


@torch.no_grad()
def psnr(
    ref: torch.Tensor, dist: torch.Tensor, data_range: float = 1.0, quantize: bool = True
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, one value per image (shape N).

    With ``quantize=True`` (the default) both images are first rounded to 8 bits
    (``round(x * 255)``), matching how PSNR is reported on 8-bit images: the result equals
    ``10 * log10(255² / MSE)`` on the uint8 files, the MSE taken over all channels and pixels
    of each image. ``data_range`` is the peak value in input units (1.0 for [0, 1] images).
    Identical images give ``inf``.

    >>> ref = torch.full((1, 3, 8, 8), 100 / 255)
    >>> psnr(ref, ref).item()
    inf
    >>> round(psnr(ref, torch.full_like(ref, 101 / 255)).item(), 2)  # one grey level off
    48.13
    """
    if not (isinstance(data_range, (int, float)) and math.isfinite(data_range) and data_range > 0):
        raise InvalidArgumentError(
            f"`data_range` must be a positive number (1.0 for [0, 1] images), got {data_range!r}."
        )
    ref_b, dist_b = check_pair(ref, dist)
    dtype = work_dtype(ref_b)
    if quantize:
        # The MSE of grey levels is 255² times that of [0, 1] values, so the peak scales too.
        x, y, peak = _quantize(ref_b, dtype), _quantize(dist_b, dtype), data_range * PEAK
    else:
        x, y, peak = ref_b.to(dtype), dist_b.to(dtype), float(data_range)
    return _from_levels(x, y, peak).to(out_dtype(ref_b))


_quantize = quantize  # the keyword argument `quantize` shadows the function inside psnr()


@dataclass(frozen=True)
class PSNRReference:
    """The reference's 8-bit levels (N×3×H×W, float64 or MPS float32)."""

    levels: torch.Tensor
    out_dtype: torch.dtype


@torch.no_grad()
def prepare_reference(ref: torch.Tensor, ctx: MetricContext | None = None) -> PSNRReference:
    """What PSNR needs of the reference, computed once."""
    ref_b = check_unit_batch(ref, "ref")
    scratch = ctx.scratch if ctx is not None else None
    return PSNRReference(shared_levels(ref_b, work_dtype(ref_b), scratch), out_dtype(ref_b))


@torch.no_grad()
def score(prepared: PSNRReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> MetricScore:
    """PSNR of each image in ``dist`` against the prepared reference; the squared-error map
    (N×1×H×W, 8-bit levels², mean over RGB) when ``ctx.spatial``."""
    dist_b = check_dist(prepared.levels, dist)
    y = shared_levels(dist_b.to(prepared.levels.device), prepared.levels.dtype,
                      ctx.scratch if ctx is not None else None)
    x, y = torch.broadcast_tensors(prepared.levels, y)
    diff = x - y
    values = _from_levels(x, y, PEAK, diff).to(prepared.out_dtype)
    error_map = None
    if ctx is None or ctx.spatial:
        error_map = diff.square_().mean(dim=1, keepdim=True).float().cpu()
    return MetricScore(values=values.float().cpu(), map=error_map)
