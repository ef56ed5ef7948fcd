"""GMSD (Xue, Zhang, Mou & Bovik 2014): the spread of the gradient-magnitude similarity map.

Conventions follow the authors' ``GMSD.m``: the 8-bit grey image (here MATLAB ``rgb2gray`` of
the 8-bit RGB, as SSIM's reference mode), a 2×2 average by ``conv2(..., 'same')`` (zero padded)
sampled every other pixel, Prewitt gradients ``[1 0 -1; 1 0 -1; 1 0 -1]/3`` by ``conv2 'same'``
(zero padded: the image border shows as an edge in both images), ``T = 170`` for 0..255 levels,
and the score is ``std2`` of the map, the *sample* standard deviation (N - 1).

Where the popular port differs (piq 0.8.0 ``gmsd``): it uses the unrounded YIQ luma, pads
*both* sides with a zero row/column when either side is odd (an even side then gets one output
too many), and reports the population standard deviation (N, not ``std2``'s N - 1). This module
follows ``GMSD.m``; ``tests/test_metrics_gmsd.py`` shows both agreements and differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..images.tensors import check_dist, check_unit_batch
from ._levels import out_dtype, shared_luma, work_dtype
from ._matlab import average_downsample, conv2_same
from .registry import MetricContext, MetricScore
from .catalog import GMSD_MIN_SIZE

__all__ = ["GMSD_MIN_SIZE", "GMSD_T", "GMSDReference", "GMSDResult", "gmsd", "prepare_reference", "score"]

GMSD_T = 170.0


@dataclass(frozen=True)
class GMSDReference:
    """The reference's gradient magnitude at half resolution, and the settings it was made in."""

    magnitude: torch.Tensor  # N×1×h×w
    shape: torch.Size  # the reference batch's N×3×H×W
    precise: bool
    out_dtype: torch.dtype


@dataclass(frozen=True)
class GMSDResult:
    """GMSD values (N,) and the gradient-magnitude similarity map (N×1×⌈H/2⌉×⌈W/2⌉, 1 = same)."""

    value: torch.Tensor
    map: torch.Tensor


def _prewitt(dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    dx = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=dtype, device=device) / 3.0
    return dx, dx.T.contiguous()


def _magnitude(batch: torch.Tensor, dtype: torch.dtype, scratch: dict | None = None) -> torch.Tensor:
    """[0, 1] RGB → 8-bit luma → 2×2 average, every other pixel → Prewitt gradient magnitude."""
    luma = average_downsample(shared_luma(batch, dtype, scratch), 2)
    dx, dy = _prewitt(dtype, batch.device)
    return torch.sqrt(conv2_same(luma, dx) ** 2 + conv2_same(luma, dy) ** 2)


def _check_size(ref: torch.Tensor) -> None:
    from ..errors import ImageTooSmallError

    height, width = ref.shape[-2:]
    if min(height, width) < GMSD_MIN_SIZE:
        raise ImageTooSmallError(f"GMSD needs images of at least {GMSD_MIN_SIZE}×{GMSD_MIN_SIZE} pixels, "
                                 f"got {width}×{height}. Use larger images.")


@torch.no_grad()
def prepare_reference(ref: torch.Tensor, ctx: MetricContext | None = None) -> GMSDReference:
    """What GMSD needs of the reference (its gradient magnitude), computed once."""
    ctx = ctx or MetricContext()
    ref_b = check_unit_batch(ref, "ref")
    _check_size(ref_b)
    return GMSDReference(_magnitude(ref_b, work_dtype(ref_b, ctx.precise), ctx.scratch), ref_b.shape, ctx.precise,
                         out_dtype(ref_b))


def _gmsd(prepared: GMSDReference, dist: torch.Tensor, scratch: dict | None = None) -> GMSDResult:
    ref_mag = prepared.magnitude
    dist_b = check_dist(torch.empty(prepared.shape, device="meta"), dist).to(ref_mag.device)
    dist_mag = _magnitude(dist_b, ref_mag.dtype, scratch)
    gms = (2.0 * ref_mag * dist_mag + GMSD_T) / (ref_mag**2 + dist_mag**2 + GMSD_T)
    value = gms.flatten(1).std(dim=1, correction=1)  # MATLAB std2: N - 1
    return GMSDResult(value.to(prepared.out_dtype), gms.to(prepared.out_dtype))


@torch.no_grad()
def score(prepared: GMSDReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> MetricScore:
    """GMSD of each image in ``dist`` against the prepared reference, with its similarity map."""
    result = _gmsd(prepared, dist, ctx.scratch if ctx is not None else None)
    want_map = ctx is None or ctx.spatial
    return MetricScore(values=result.value.float().cpu(), map=result.map.float().cpu() if want_map else None)


@torch.no_grad()
def gmsd(ref: torch.Tensor, dist: torch.Tensor, return_map: bool = False,
         precise: bool = True) -> torch.Tensor | GMSDResult:
    """Gradient Magnitude Similarity Deviation (Xue et al. 2014), one value per image (shape N).

    Lower = more similar (0 = identical), higher = more different. Computed as ``GMSD.m`` does
    on the 8-bit MATLAB ``rgb2gray`` luma (see the module docstring for the conventions and how
    piq differs). ``return_map=True`` also returns the gradient-magnitude similarity map at half
    resolution (1 = same local gradient). ``precise=False`` computes in float32 on the CPU.

    >>> ref = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> gmsd(ref, ref).item()
    0.0
    >>> gmsd(ref, ref.flip(-1), return_map=True).map.shape
    torch.Size([1, 1, 16, 16])
    """
    check_dist(check_unit_batch(ref, "ref"), dist)
    result = _gmsd(prepare_reference(ref, MetricContext(precise=precise)), dist)
    return result if return_map else result.value
