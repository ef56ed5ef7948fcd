"""VIFp (Sheikh & Bovik 2006): visual information fidelity, the pixel-domain version.

Not the VIF that papers report: that is the wavelet-domain ``vifvec.m`` (key ``vif``,
:mod:`core.metrics.vif`); VIFp is the authors' simpler approximation on Gaussian scales, and on
photos the two differ by up to about 0.05. Until issue 23 this metric was registered as ``vif``;
quiz values stored under that key were moved to ``vifp`` by the store's schema 4.

Conventions follow Sheikh's ``vifp_mscale.m`` (LIVE): the 8-bit grey image (here MATLAB
``rgb2gray`` of the 8-bit RGB, as SSIM's reference mode) on 0..255, four scales with Gaussian
windows ``fspecial('gaussian', N, N/5)``, N = 17, 9, 5, 3; before scales 2-4 both images are
filtered with that scale's window (``'valid'``, no padding) and every other pixel is kept;
statistics use ``'valid'`` filtering, σ²_n = 2, the same ``1e-10`` guards in the same order, and
the value is Σ log10(1 + g²σ²_x / (σ²_v + σ²_n)) / Σ log10(1 + σ²_x / σ²_n) over every scale.

Where the popular port differs (piq 0.8.0 ``vif_p``): it uses the unrounded YIQ luma, guards
with 1e-8 instead of 1e-10 and adds 1e-8 to the numerator and denominator. On the same grey
input the two agree to about 1e-6. This module follows ``vifp_mscale.m``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ImageTooSmallError
from ..images.tensors import check_dist, check_unit_batch
from ._levels import matlab_luma, out_dtype, quantize, work_dtype
from ._matlab import every_other, filter2_valid, gaussian_window, valid_size
from .registry import MetricContext, MetricScore
from .catalog import VIFP_MIN_SIZE

__all__ = ["VIFP_MIN_SIZE", "VIFP_NOISE_VARIANCE", "VIFpReference", "prepare_reference", "score", "vifp"]

VIFP_NOISE_VARIANCE = 2.0  # sigma_nsq
VIFP_SCALES = 4
_EPS = 1e-10
_MID_GREY = 127.5


def _window_size(scale: int) -> int:
    """N = 2^(4 - scale + 1) + 1 for scale = 1..4 (MATLAB numbering)."""
    return 2 ** (VIFP_SCALES - scale + 1) + 1


def _coarsest_side(side: int) -> int:
    """The smallest side of any scale's statistics for an image side ``side``."""
    smallest = side
    for scale in range(1, VIFP_SCALES + 1):
        n = _window_size(scale)
        if scale > 1:
            side = every_other(valid_size(side, n))
        smallest = min(smallest, valid_size(side, n))
    return smallest


def _smallest_side() -> int:
    side = 1
    while _coarsest_side(side) < 1:
        side += 1
    return side


@dataclass(frozen=True)
class ScaleStats:
    """The reference at one scale: its centred plane and the filtered mean and variance."""

    plane: torch.Tensor
    mu: torch.Tensor
    var: torch.Tensor


@dataclass(frozen=True)
class VIFpReference:
    """The reference's statistics at the four scales, and what they were made from."""

    scales: tuple[ScaleStats, ...]
    shape: torch.Size  # the reference batch's N×3×H×W
    out_dtype: torch.dtype


def _windows(dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
    return [gaussian_window(_window_size(s), _window_size(s) / 5.0, dtype, device) for s in range(1, VIFP_SCALES + 1)]


def _pyramid(plane: torch.Tensor, windows: list[torch.Tensor]) -> list[torch.Tensor]:
    """The plane at each scale: scales 2-4 are filtered ('valid') with their own window, then
    every other pixel is kept."""
    levels = [plane]
    for window in windows[1:]:
        plane = filter2_valid(plane, window)[..., ::2, ::2]
        levels.append(plane)
    return levels


def _plane(batch: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # Centred on mid-grey: (co)variances do not change, and float32 keeps their digits.
    return matlab_luma(quantize(batch, dtype)) - _MID_GREY


@torch.no_grad()
def prepare_reference(ref: torch.Tensor, ctx: MetricContext | None = None) -> VIFpReference:
    """What VIFp needs of the reference (its statistics at four scales), computed once."""
    ctx = ctx or MetricContext()
    ref_b = check_unit_batch(ref, "ref")
    height, width = ref_b.shape[-2:]
    if min(height, width) < VIFP_MIN_SIZE:
        raise ImageTooSmallError(f"VIFp needs images of at least {VIFP_MIN_SIZE}×{VIFP_MIN_SIZE} pixels, got "
                                 f"{width}×{height}: its coarsest scale must hold one window. Use larger images.")
    dtype = work_dtype(ref_b, ctx.precise)
    windows = _windows(dtype, ref_b.device)
    scales = []
    for plane, window in zip(_pyramid(_plane(ref_b, dtype), windows), windows):
        mu = filter2_valid(plane, window)
        scales.append(ScaleStats(plane, mu, filter2_valid(plane * plane, window) - mu * mu))
    return VIFpReference(tuple(scales), ref_b.shape, out_dtype(ref_b))


def _vifp(prepared: VIFpReference, dist: torch.Tensor) -> torch.Tensor:
    first = prepared.scales[0].plane
    dist_b = check_dist(torch.empty(prepared.shape, device="meta"), dist).to(first.device)
    windows = _windows(first.dtype, first.device)
    num = den = None
    for ref, y, window in zip(prepared.scales, _pyramid(_plane(dist_b, first.dtype), windows), windows):
        mu2 = filter2_valid(y, window)
        sigma1_sq = ref.var.clamp(min=0.0)
        sigma2_sq = (filter2_valid(y * y, window) - mu2 * mu2).clamp(min=0.0)
        sigma12 = filter2_valid(ref.plane * y, window) - ref.mu * mu2
        sigma1_sq, sigma2_sq, sigma12 = torch.broadcast_tensors(sigma1_sq, sigma2_sq, sigma12)
        # The guards of vifp_mscale.m, in its order: each later rule overrides the earlier ones.
        g = sigma12 / (sigma1_sq + _EPS)
        sv_sq = sigma2_sq - g * sigma12
        flat_ref = sigma1_sq < _EPS
        g = torch.where(flat_ref, 0.0, g)
        sv_sq = torch.where(flat_ref, sigma2_sq, sv_sq)
        sigma1_sq = torch.where(flat_ref, 0.0, sigma1_sq)
        flat_dist = sigma2_sq < _EPS
        g = torch.where(flat_dist, 0.0, g)
        sv_sq = torch.where(flat_dist, 0.0, sv_sq)
        negative = g < 0
        sv_sq = torch.where(negative, sigma2_sq, sv_sq)
        g = torch.where(negative, 0.0, g)
        sv_sq = torch.where(sv_sq <= _EPS, _EPS, sv_sq)
        scale_num = torch.log10(1.0 + g * g * sigma1_sq / (sv_sq + VIFP_NOISE_VARIANCE)).sum(dim=(1, 2, 3))
        scale_den = torch.log10(1.0 + sigma1_sq / VIFP_NOISE_VARIANCE).sum(dim=(1, 2, 3))
        num = scale_num if num is None else num + scale_num
        den = scale_den if den is None else den + scale_den
    return (num / den).to(prepared.out_dtype)


@torch.no_grad()
def score(prepared: VIFpReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> MetricScore:
    """VIFp of each image in ``dist`` against the prepared reference (no map)."""
    return MetricScore(values=_vifp(prepared, dist).float().cpu())


@torch.no_grad()
def vifp(ref: torch.Tensor, dist: torch.Tensor, precise: bool = True) -> torch.Tensor:
    """Pixel-domain visual information fidelity (Sheikh & Bovik 2006), one value per image (N).

    Higher = more similar: 1 for identical images, 0 when the distorted image carries none of
    the reference's information (it can exceed 1 for contrast enhancement). A flat reference
    has no information to keep: its VIFp is NaN. Conventions as ``vifp_mscale.m`` (see the
    module docstring). Images must be at least 41×41. ``precise=False`` computes in float32.

    >>> ref = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    >>> round(vifp(ref, ref).item(), 6)
    1.0
    """
    check_dist(check_unit_batch(ref, "ref"), dist)
    return _vifp(prepare_reference(ref, MetricContext(precise=precise)), dist)
