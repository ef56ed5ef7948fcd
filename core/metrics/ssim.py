"""SSIM (Wang, Bovik, Sheikh & Simoncelli 2004), computed the way the reference code does.

Conventions (``mode="reference"``) follow Wang et al.'s ``ssim_index.m``: MATLAB ``rgb2gray``
luma rounded to 8 bits, an 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255,
and the mean of the SSIM map over the *valid* region (no padding). The later ``ssim.m`` (2009)
also downsamples by ``f = max(1, round(min(H, W) / 256))`` before filtering; that step is
deliberately not applied here, so large images are scored at full resolution. ``mode="rgb"``
applies the same window to each 8-bit RGB channel and averages. Nothing here tracks gradients.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ..errors import ImageTooSmallError, InputShapeError, InvalidArgumentError
from ..images.tensors import check_dist, check_unit_batch
from ._levels import PEAK, out_dtype, shared, shared_levels, shared_luma, use_kernels, work_dtype
from .registry import MetricContext, MetricScore
from .catalog import SSIM_MIN_SIZE

__all__ = [
    "SSIM_BORDER", "SSIM_MIN_SIZE", "SSIMMode", "SSIMReference", "SSIMResult", "ScaleMoments",
    "prepare_reference", "score", "ssim", "ssim_map_full_size",
]

SSIMMode = Literal["reference", "rgb"]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# The valid map loses (window - 1) / 2 pixels on every border.
SSIM_BORDER = (SSIM_WINDOW - 1) // 2
_MID_GREY = 127.5


@dataclass(frozen=True)
class SSIMResult:
    """SSIM values with the map they average.

    ``value`` has shape N. ``map`` has shape N×1×(H-10)×(W-10): it covers only the *valid*
    region where the 11×11 window fits, so it is 5 px smaller than the image on every border
    (RGB mode averages the three channel maps). Use :func:`ssim_map_full_size` to lay it
    over the image.
    """

    value: torch.Tensor
    map: torch.Tensor


@dataclass(frozen=True)
class ScaleMoments:
    """The reference's side of SSIM at one scale: its centred planes and their filtered
    mean and second moment, which every distorted image reuses."""

    planes: torch.Tensor  # N×C×h×w, 8-bit levels minus mid-grey
    mu: torch.Tensor  # Gaussian-filtered planes (valid region)
    e_xx: torch.Tensor  # Gaussian-filtered squares (valid region)


@dataclass(frozen=True)
class SSIMReference:
    """The reference as the SSIM family sees it: 8-bit planes (luma, or R, G, B) in the
    working precision, with the settings they were made under, and the reference's moments
    at each scale that was asked for (one for SSIM, five for MS-SSIM)."""

    planes: torch.Tensor  # N×C×H×W, 0..255
    mode: str
    precise: bool
    out_dtype: torch.dtype
    scales: tuple[ScaleMoments, ...] = ()


def _gaussian_1d(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # fspecial('gaussian', 11, 1.5) is the outer product of this normalized 1-D kernel.
    coords = torch.arange(SSIM_WINDOW, dtype=dtype, device=device) - SSIM_BORDER
    kernel = torch.exp(-(coords**2) / (2.0 * SSIM_SIGMA**2))
    return kernel / kernel.sum()


@functools.lru_cache(maxsize=None)
def _cpu_taps(dtype: torch.dtype) -> torch.Tensor:
    # The float64 kernel rounded once to the working precision, as PyTorch rounds a scalar.
    return _gaussian_1d(torch.float64, torch.device("cpu")).to(dtype)


def _on_kernels(x: torch.Tensor) -> bool:
    """Whether the compiled CPU kernels take this tensor (accelerators and small images keep
    PyTorch: :func:`~core.metrics._levels.use_kernels`)."""
    return use_kernels(x)


def _filter_valid(x: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filtering of every channel, 'valid' region only (no padding)."""
    if _on_kernels(x):  # the compiled kernel: one pass per direction (core/metrics/_ssim_kernels.py)
        from . import _ssim_kernels

        return _ssim_kernels.filter_valid(x, _cpu_taps(x.dtype))
    return _filter_valid_torch(x)


def _filter_valid_torch(x: torch.Tensor) -> torch.Tensor:
    """The same filtering in PyTorch: one grouped convolution per direction."""
    channels = x.shape[1]
    g = _gaussian_1d(x.dtype, x.device)
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def scale_moments(x: torch.Tensor) -> ScaleMoments:
    """The reference's moments at one scale (``x``: N×C×h×w 8-bit levels)."""
    # Centring on mid-grey first shrinks E[x²] - E[x]² cancellation 4× (it matters in float32);
    # (co)variances are shift-invariant, and the means get the offset back below.
    x = x - _MID_GREY
    mu, e_xx = _filter_valid(torch.cat([x, x * x], dim=1)).split(x.shape[1], dim=1)
    return ScaleMoments(x.contiguous(), mu.contiguous(), e_xx.contiguous())


def moments_maps(ref: ScaleMoments, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and contrast-structure maps (valid region) of distorted 8-bit planes ``y`` against
    the reference's moments at the same scale, per channel. Only ``y``'s three moments are
    filtered here; the reference's two were filtered once."""
    c1 = (SSIM_K1 * PEAK) ** 2
    c2 = (SSIM_K2 * PEAK) ** 2
    if _on_kernels(y) and ref.planes.dtype == y.dtype:  # one fused pass (core/metrics/_ssim_kernels.py)
        from . import _ssim_kernels

        return _ssim_kernels.ssim_maps(ref.planes, y, ref.mu, ref.e_xx, _cpu_taps(y.dtype), c1, c2, _MID_GREY)
    return _moments_maps_torch(ref, y, c1, c2)


def _moments_maps_torch(ref: ScaleMoments, y: torch.Tensor, c1: float, c2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`moments_maps` in PyTorch (accelerators)."""
    channels = y.shape[1]
    x = ref.planes
    y = y - _MID_GREY
    x, y = torch.broadcast_tensors(x, y)
    # One grouped convolution filters the three moments that depend on y at once.
    mu_y, e_yy, e_xy = _filter_valid(torch.cat([y, y * y, x * y], dim=1)).split(channels, dim=1)
    mu_x, e_xx = ref.mu.expand_as(mu_y), ref.e_xx.expand_as(e_yy)
    var_x, var_y, cov = e_xx - mu_x * mu_x, e_yy - mu_y * mu_y, e_xy - mu_x * mu_y
    mu_x, mu_y = mu_x + _MID_GREY, mu_y + _MID_GREY
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    cs_map = (2.0 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2.0 * mu_xy + c1) / (mu_xx + mu_yy + c1) * cs_map
    return ssim_map, cs_map


def check_mode(mode: str) -> None:
    if mode not in ("reference", "rgb"):
        raise InvalidArgumentError(f"`mode` must be 'reference' (MATLAB luma) or 'rgb' (per channel), got {mode!r}.")


def planes(batch: torch.Tensor, mode: str, dtype: torch.dtype, scratch: dict | None = None) -> torch.Tensor:
    """A [0, 1] batch → the 8-bit planes the SSIM family works on (shared through ``scratch``
    with the other metrics of one call that start from the same levels or luma)."""
    return shared_luma(batch, dtype, scratch) if mode == "reference" else shared_levels(batch, dtype, scratch)


def prepare_planes(ref: torch.Tensor, mode: str, precise: bool, min_size: int, metric: str,
                   scales: int = 1, scratch: dict | None = None) -> SSIMReference:
    """Validate the reference and make its planes and its moments at ``scales`` scales.

    Within one :func:`core.prepare_reference` call (``scratch``) SSIM (one scale) and MS-SSIM
    (five) filter the reference's finest scale once between them."""
    check_mode(mode)
    ref_b = check_unit_batch(ref, "ref")
    height, width = ref_b.shape[-2:]
    if min(height, width) < min_size:
        raise ImageTooSmallError(
            f"{metric} needs images of at least {min_size}×{min_size} pixels, got {width}×{height}. "
            "Use larger images (or PSNR, which has no minimum size)."
        )
    dtype = work_dtype(ref_b, precise)
    x = planes(ref_b, mode, dtype, scratch)
    moments = []
    level = x
    for scale in range(scales):
        if scale:
            level = downsample(level)
        moments.append(shared(scratch, ("ssim.moments", mode, dtype, scale), ref_b,
                              lambda level=level: scale_moments(level)))
    return SSIMReference(x, mode, precise, out_dtype(ref_b), tuple(moments))


def downsample(x: torch.Tensor) -> torch.Tensor:
    """2×2 mean, as ``msssim.m``: imfilter(ones(2)/4, 'symmetric') then every other pixel."""
    # An odd last row/column is averaged with its mirror (itself) rather than with zeros,
    # which would darken the border the way zero-padded average pooling does.
    pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return F.avg_pool2d(x, kernel_size=2)


def dist_planes(prepared: SSIMReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> torch.Tensor:
    """The distorted images' 8-bit planes, checked against the reference (made once per
    ``compare`` call for every metric that needs them)."""
    dist_b = check_dist(prepared.planes, dist).to(prepared.planes.device)
    return planes(dist_b, prepared.mode, prepared.planes.dtype, ctx.scratch if ctx is not None else None)


def first_scale_maps(prepared: SSIMReference, y: torch.Tensor,
                     ctx: MetricContext | None) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and cs maps at full resolution. SSIM and MS-SSIM both need them: within one
    :func:`core.compare` call (``ctx.scratch``) the second metric reuses the first one's."""
    key = ("ssim.first_scale", prepared.mode, prepared.precise, tuple(prepared.planes.shape))
    scratch = ctx.scratch if ctx is not None else None
    if scratch is not None and key in scratch:
        return scratch[key]
    maps = moments_maps(prepared.scales[0], y)
    if scratch is not None:
        scratch[key] = maps
    return maps


@torch.no_grad()
def prepare_reference(ref: torch.Tensor, ctx: MetricContext | None = None) -> SSIMReference:
    """What SSIM needs of the reference (its 8-bit planes), computed once."""
    ctx = ctx or MetricContext()
    return prepare_planes(ref, ctx.ssim_mode, ctx.precise, SSIM_MIN_SIZE, "SSIM", scratch=ctx.scratch)


def _ssim(prepared: SSIMReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> SSIMResult:
    ssim_map, _ = first_scale_maps(prepared, dist_planes(prepared, dist, ctx), ctx)
    ssim_map = ssim_map.mean(dim=1, keepdim=True)
    value = ssim_map.mean(dim=(1, 2, 3)).to(prepared.out_dtype)
    return SSIMResult(value=value, map=ssim_map.to(prepared.out_dtype))


@torch.no_grad()
def score(prepared: SSIMReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> MetricScore:
    """SSIM of each image in ``dist`` against the prepared reference, with the valid-region map."""
    result = _ssim(prepared, dist, ctx)
    want_map = ctx is None or ctx.spatial
    return MetricScore(values=result.value.float().cpu(), map=result.map.float().cpu() if want_map else None)


@torch.no_grad()
def ssim(
    ref: torch.Tensor,
    dist: torch.Tensor,
    mode: SSIMMode = "reference",
    return_map: bool = False,
    precise: bool = True,
) -> torch.Tensor | SSIMResult:
    """Structural similarity (Wang et al. 2004), one value per image (shape N).

    ``mode="reference"`` reproduces ``ssim_index.m``: 8-bit MATLAB ``rgb2gray`` luma, 11×11
    Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03, L = 255, mean of the map over the valid
    region (no padding, no ``ssim.m``-style downsampling). ``mode="rgb"`` uses the 8-bit RGB
    channels instead and averages the channel maps. Images must be at least 11×11.

    With ``return_map=True`` returns an :class:`SSIMResult` whose ``map`` is N×1×(H-10)×(W-10).
    ``precise=False`` computes in float32 on the CPU (about 5× faster, within ~1e-5 of the
    float64 default that matches the reference implementations to 1e-6).

    >>> ref = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
    >>> ssim(ref, ref).item()
    1.0
    >>> result = ssim(ref, ref.flip(-1), mode="rgb", return_map=True)
    >>> result.value.shape, result.map.shape
    (torch.Size([1]), torch.Size([1, 1, 6, 6]))
    """
    check_mode(mode)
    check_dist(check_unit_batch(ref, "ref"), dist)
    result = _ssim(prepare_planes(ref, mode, precise, SSIM_MIN_SIZE, "SSIM"), dist)
    return result if return_map else result.value


def ssim_map_full_size(
    ssim_map: torch.Tensor, height: int, width: int, fill: Literal["nan", "edge"] = "nan"
) -> torch.Tensor:
    """Pad a valid-region SSIM map (N×C×(H-10)×(W-10)) back to N×C×H×W for display.

    The 5-px border where the window does not fit is filled with NaN (``fill="nan"``,
    shown as blank by plotting libraries, and honest: there is no SSIM there) or with the
    nearest map value (``fill="edge"``, for colour maps that cannot show NaN).

    >>> ssim_map_full_size(torch.ones(1, 1, 2, 3), 12, 13).shape
    torch.Size([1, 1, 12, 13])
    >>> ssim_map_full_size(torch.ones(1, 1, 2, 3), 12, 13, fill="edge").isnan().any().item()
    False
    """
    if ssim_map.ndim != 4:
        raise InputShapeError(f"`ssim_map` must have shape N×C×h×w, got {tuple(ssim_map.shape)}.")
    expected = (height - 2 * SSIM_BORDER, width - 2 * SSIM_BORDER)
    if tuple(ssim_map.shape[-2:]) != expected:
        raise InputShapeError(
            f"an SSIM map for a {width}×{height} image must be {expected[1]}×{expected[0]} "
            f"(5 px smaller per border), got {ssim_map.shape[-1]}×{ssim_map.shape[-2]}."
        )
    pad = (SSIM_BORDER,) * 4
    if fill == "nan":
        return F.pad(ssim_map, pad, mode="constant", value=math.nan)
    if fill == "edge":
        return F.pad(ssim_map, pad, mode="replicate")
    raise InvalidArgumentError(f"`fill` must be 'nan' or 'edge', got {fill!r}.")
