"""VIF (Sheikh & Bovik 2006): visual information fidelity in the wavelet domain, as published.

This is the VIF that papers report: Sheikh's ``vifvec.m`` (LIVE's ``vifvec_release``, with
``vifsub_est_M.m``, ``refparams_vecgsm.m`` and ``ind2wtree.m``) on matlabPyrTools' steerable
pyramid. The pixel-domain approximation is a different metric, VIFp (:mod:`core.metrics.vifp`).
Conventions, step by step:

- Input: the 8-bit grey image, MATLAB ``rgb2gray`` of the 8-bit RGB (rounded, as the project's
  SSIM reference mode and VIFp), on 0..255 as doubles.
- Transform: ``buildSpyr(img, 4, 'sp5Filters', 'reflect1')``: the image is correlated with
  ``lo0filt``; at each of the four levels the band filters are applied and the lowpass is
  correlated with ``lofilt`` (``2*`` the printed table) and sampled at odd MATLAB indices
  (``corrDn(…, [2 2], [1 1])``). Every ``corrDn`` is a correlation with the filter's origin at
  its centre and ``'reflect1'`` edges (mirrored about the edge pixel, which is not repeated).
  Filters from ``sp5Filters.m`` (:mod:`core.metrics._sp5`). ``buildSpyr`` refuses four levels
  unless every side halved three times (rounding down) is still at least ``lofilt``'s 9: sides
  of at least 72 pixels.
- Subbands: ``[4 7 10 13 16 19 22 25]`` of the ``ind2wtree`` order (coarse to fine, orientations
  reversed) are orientations 1 and 4 of every level, 0° and 90°; the high-pass residual and
  the lowpass residual are not used.
- Distortion channel (``vifsub_est_M.m``): each subband cropped to a multiple of M = 3 on both
  sides; local sums over a ``winsize`` square (``2^lev + 1`` = 3, 5, 9, 17 from the coarsest
  level to the finest) at the centre of each 3×3 block, ``'reflect1'`` edges; ``g = cov/(σ²_x +
  tol)``, ``vv = (σ²_y − g·cov)/winsize²`` with tol = 1e-15 and its overrides in its order
  (including that ``vv`` takes the unnormalized ``σ²_y`` where the reference is flat or ``g < 0``).
- Reference (``refparams_vecgsm.m``): the 9×9 covariance ``C_U`` of all overlapping 3×3 blocks
  (divided by their count, mean removed), ``s² = xᵀ C_U⁻¹ x / 9`` on the non-overlapping blocks,
  and the eigenvalues λ of ``C_U``.
- Value: ``ceil(((winsize − 1)/2)/3)`` blocks trimmed off each border, σ²_n = 0.4, and
  VIF = Σ log2(1 + g² s² λ_j / (vv + σ²_n)) / Σ log2(1 + s² λ_j / σ²_n) over subbands, blocks
  and eigenvalues.

Checked against a separate NumPy transcription of those files (``tests/vifvec_reference.py``)
to ≤ 1e-6 on photos (seen ≤ 3e-8, the float32 result's rounding). pyiqa's ``vif``
(``pyiqa/archs/vif_arch.py``, IQA-PyTorch at commit 01ae427, May 2026) transcribes the same files;
run in float64 on the same grey image it agrees with this module to 1e-13. As shipped it differs
in three places: the rounded YIQ luma (0.299, 0.587, 0.114) instead of ``rgb2gray``, a float32
pyramid, and tol = 1e-12 with a pseudo-inverse; on five TID2013 pairs that moves it by up to 4e-4
(I19: 0.17492, against 0.17451 here), almost all from float32. The values pyiqa's calibration
table lists for the authors' MATLAB code on those pairs (0.0172, 0.9891, 0.9924, 0.9103, 0.1745)
are reproduced to their four decimals (largest difference 3.8e-5, within print rounding;
``tests/test_metrics_vif.py``). ``precise=False`` (float32) stays within 5e-5 of float64.

There is no map: VIF is a ratio of information sums over the whole image, and a per-pixel ratio
of the two sums is not a quantity the paper defines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from ..errors import ImageTooSmallError
from ..images.tensors import check_dist, check_unit_batch
from ._levels import out_dtype, shared_luma, work_dtype
from ._sp5 import BAND_1, BAND_4, LO0FILT, LOFILT
from .catalog import VIF_MIN_SIZE
from .registry import MetricContext, MetricScore

__all__ = ["VIF_LEVELS", "VIF_MIN_SIZE", "VIF_NOISE_VARIANCE", "VIFReference", "prepare_reference", "score", "vif"]

VIF_LEVELS = 4  # buildSpyr(img, 4, ...)
VIF_NOISE_VARIANCE = 0.4  # sigma_nsq
_M = 3  # the GSM's M×M blocks
_TOL = 1e-15  # vifsub_est_M.m's tolerance for a zero variance
_LOFILT_SIDE = len(LOFILT)


def window_size(level: int) -> int:
    """vifvec.m's ``winsize = 2^lev + 1`` for pyramid level ``level`` (0 = finest): its ``lev`` counts
    from the coarsest level, so the finest subbands get 17×17 and the coarsest 3×3."""
    return 2 ** (VIF_LEVELS - level) + 1


def pyramid_height(side: int) -> int:
    """matlabPyrTools' ``maxPyrHt`` for one side: how many times ``lofilt`` fits while halving."""
    height = 0
    while side >= _LOFILT_SIDE:
        height, side = height + 1, side // 2
    return height


@dataclass(frozen=True)
class BandStats:
    """The reference's subbands at one level (orientations 1 and 4 as two channels, cropped to
    a multiple of 3), their local means and sums of squares, and the GSM fit."""

    band: torch.Tensor  # N×2×h×w
    mean: torch.Tensor  # N×2×(h/3)×(w/3)
    sum_sq: torch.Tensor  # Σ(y - mean)² over the window, clamped at 0
    s_field: torch.Tensor  # N×2×(h/3 - 2·offset)×(w/3 - 2·offset), trimmed
    eigenvalues: torch.Tensor  # N×2×9, of each subband's C_U


@dataclass(frozen=True)
class VIFReference:
    """The reference's statistics at the four pyramid levels, and what they were made from."""

    levels: tuple[BandStats, ...]
    information: torch.Tensor  # N: Σ log2(1 + s² λ / σ²_n), VIF's denominator
    shape: torch.Size  # the reference batch's N×3×H×W
    out_dtype: torch.dtype


Kernel = tuple[tuple[float, ...], ...]
_LO0: Kernel = LO0FILT
_LO: Kernel = tuple(tuple(2.0 * v for v in row) for row in LOFILT)  # sp5Filters.m: lofilt = 2*[...] (exact)
_BANDS: tuple[Kernel, Kernel] = (BAND_1, BAND_4)


def _corr_reflect(x: torch.Tensor, kernel: Kernel, step: int = 1) -> torch.Tensor:
    """matlabPyrTools ``corrDn(x, filt, 'reflect1', [step step], [1 1])`` for an odd square
    filter: correlation with the origin at the centre, the image mirrored about its edge pixels
    (PyTorch's 'reflect'), every ``step``-th output from the first.

    Written as a sum of shifted, weighted copies: PyTorch's float64 ``conv2d`` on a CPU copies
    the image once per tap (im2col) and was 10× slower; only the outputs kept are computed."""
    pad = len(kernel) // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    height, width = -(-x.shape[-2] // step), -(-x.shape[-1] // step)
    out = x.new_zeros(*x.shape[:-2], height, width)
    for a, row in enumerate(kernel):
        for b, weight in enumerate(row):
            if weight != 0.0:
                out.add_(padded[..., a : a + step * (height - 1) + 1 : step, b : b + step * (width - 1) + 1 : step],
                         alpha=weight)
    return out


def _subbands(grey: torch.Tensor) -> list[torch.Tensor]:
    """N×1×H×W grey → the used subbands per level, finest first: N×2×h×w (orientations 1, 4),
    each cropped to a multiple of 3 on both sides as vifsub_est_M.m and refparams_vecgsm.m do."""
    low = _corr_reflect(grey, _LO0)
    levels = []
    for level in range(VIF_LEVELS):
        band = torch.cat([_corr_reflect(low, kernel) for kernel in _BANDS], dim=1)
        h, w = band.shape[-2:]
        levels.append(band[..., : h - h % _M, : w - w % _M])
        if level < VIF_LEVELS - 1:  # the last lowpass is not used
            low = _corr_reflect(low, _LO, step=2)  # corrDn(lo, lofilt, 'reflect1', [2 2], [1 1])
    return levels


def _block_sums(x: torch.Tensor, size: int) -> torch.Tensor:
    """corrDn(x, ones(size), 'reflect1', [3 3], [2 2], size(x) - 1): window sums centred on the
    middle pixel of each 3×3 block (a box is separable: rows, then columns)."""
    pad = size // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")[..., 1:, 1:]  # first centre: MATLAB index 2
    rows = F.avg_pool2d(padded, (size, 1), stride=(_M, 1))
    return F.avg_pool2d(rows, (1, size), stride=(1, _M)) * float(size * size)


def _offset(level: int) -> int:
    """Blocks trimmed off each border (vifvec.m: ``ceil(((winsize - 1)/2) / M)``)."""
    return math.ceil((window_size(level) - 1) / 2 / _M)


def _trim(x: torch.Tensor, level: int) -> torch.Tensor:
    k = _offset(level)
    return x[..., k : x.shape[-2] - k, k : x.shape[-1] - k]


def _gsm(band: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor]:
    """refparams_vecgsm.m for N×2×h×w subbands: the trimmed s² field and the eigenvalues of C_U."""
    n, c, h, w = band.shape
    flat = band.reshape(n * c, h, w)
    # C_U over every overlapping 3×3 block, as Σ (u_a − ū_a)(u_b − ū_b) / P over the blocks'
    # 9 shifted copies u_a (no 9×P matrix: the products are summed pair by pair). A subband's
    # own mean is taken out first so that the E[ab] − E[a]E[b] form loses no digits.
    flat_c = flat - flat.mean(dim=(1, 2), keepdim=True)
    shifts = [flat_c[:, k : k + h - _M + 1, j : j + w - _M + 1] for k in range(_M) for j in range(_M)]
    means = torch.stack([u.mean(dim=(1, 2)) for u in shifts], dim=1)
    cov = flat.new_empty(n * c, _M * _M, _M * _M)
    for a in range(_M * _M):
        for b in range(a, _M * _M):
            cov[:, a, b] = cov[:, b, a] = (shifts[a] * shifts[b]).mean(dim=(1, 2)) - means[:, a] * means[:, b]
    # The 9×9 inverse and eigenvalues on the CPU in float64: tiny, and MPS has neither routine.
    cov64 = cov.to("cpu", torch.float64)
    inverse, info = torch.linalg.inv_ex(cov64)  # MATLAB inv(cu); singular (a flat subband): NaN
    inverse = torch.where((info != 0)[:, None, None], torch.nan, inverse).to(flat.device, flat.dtype)
    # The non-overlapping blocks (row by row), in the same component order (k, j) as the shifts.
    tiles = F.unfold(flat[:, None], _M, stride=_M)
    s_field = ((inverse @ tiles) * tiles).sum(dim=1) / (_M * _M)
    s_field = s_field.reshape(n, c, h // _M, w // _M)
    eigenvalues = torch.linalg.eigvalsh(cov64).to(flat.device, flat.dtype).reshape(n, c, _M * _M)
    return _trim(s_field, level), eigenvalues


def _check_size(ref: torch.Tensor) -> None:
    height, width = ref.shape[-2:]
    if min(height, width) < VIF_MIN_SIZE:
        raise ImageTooSmallError(
            f"VIF needs images of at least {VIF_MIN_SIZE}×{VIF_MIN_SIZE} pixels, got {width}×{height}: its "
            f"steerable pyramid has {VIF_LEVELS} levels and the last one must still hold the 9×9 lowpass "
            "filter. Use larger images (or VIFp, which needs 41 pixels)."
        )


def _grey(batch: torch.Tensor, dtype: torch.dtype, scratch: dict | None) -> torch.Tensor:
    return shared_luma(batch, dtype, scratch)


@torch.no_grad()
def prepare_reference(ref: torch.Tensor, ctx: MetricContext | None = None) -> VIFReference:
    """What VIF needs of the reference (its subbands, their local statistics and GSM fit), once."""
    ctx = ctx or MetricContext()
    ref_b = check_unit_batch(ref, "ref")
    _check_size(ref_b)
    dtype = work_dtype(ref_b, ctx.precise)
    grey = _grey(ref_b, dtype, ctx.scratch)
    levels = []
    for level, band in enumerate(_subbands(grey)):
        size = window_size(level)
        mean = _block_sums(band, size) / (size * size)
        sum_sq = (_block_sums(band * band, size) - size * size * mean * mean).clamp(min=0.0)
        s_field, eigenvalues = _gsm(band, level)
        levels.append(BandStats(band, mean, sum_sq, s_field, eigenvalues))
    return VIFReference(tuple(levels), _reference_information(levels), ref_b.shape, out_dtype(ref_b))


def _channel(ref: BandStats, band: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """vifsub_est_M.m: the gain g and the noise variance vv of each block, with its guards."""
    area = float(size * size)
    mean = _block_sums(band, size) / area
    cov = _block_sums(ref.band * band, size) - area * ref.mean * mean
    ss_x = ref.sum_sq
    ss_y = (_block_sums(band * band, size) - area * mean * mean).clamp(min=0.0)
    ss_x, ss_y, cov = torch.broadcast_tensors(ss_x, ss_y, cov)
    g = cov / (ss_x + _TOL)
    vv = (ss_y - g * cov) / area
    # Its overrides in its order: each later rule wins where two apply.
    flat_ref = ss_x < _TOL
    g = torch.where(flat_ref, 0.0, g)
    vv = torch.where(flat_ref, ss_y, vv)  # not divided by the window's area: as vifsub_est_M.m
    flat_dist = ss_y < _TOL
    g = torch.where(flat_dist, 0.0, g)
    vv = torch.where(flat_dist, 0.0, vv)
    negative = g < 0
    vv = torch.where(negative, ss_y, vv)
    g = torch.where(negative, 0.0, g)
    vv = torch.where(vv <= _TOL, _TOL, vv)
    return g, vv


def _pick(stats: BandStats, index: int) -> BandStats:
    return BandStats(*(getattr(stats, f.name)[index : index + 1] for f in fields(BandStats)))


def _vif_one(levels: tuple[BandStats, ...], grey: torch.Tensor) -> torch.Tensor:
    """The distorted image's information about the reference, Σ log2(1 + g² s² λ / (vv + σ²_n))
    over the subbands, their blocks and the 9 eigenvalues, for one grey image (1×1×H×W)."""
    total = None
    for level, (ref, band) in enumerate(zip(levels, _subbands(grey))):
        g, vv = _channel(ref, band, window_size(level))
        g, vv = _trim(g, level), _trim(vv, level)
        signal = (g * g * ref.s_field / (vv + VIF_NOISE_VARIANCE))[:, :, None]  # 1×2×1×h×w
        part = torch.log2(1.0 + signal * ref.eigenvalues[..., None, None]).sum(dim=(1, 2, 3, 4))
        total = part if total is None else total + part
    return total


def _reference_information(levels: tuple[BandStats, ...]) -> torch.Tensor:
    """The reference's information, Σ log2(1 + s² λ / σ²_n), per reference image (N)."""
    total = None
    for ref in levels:
        part = torch.log2(1.0 + (ref.s_field / VIF_NOISE_VARIANCE)[:, :, None] * ref.eigenvalues[..., None, None])
        total = part.sum(dim=(1, 2, 3, 4)) if total is None else total + part.sum(dim=(1, 2, 3, 4))
    return total


def _vif(prepared: VIFReference, dist: torch.Tensor, scratch: dict | None = None) -> torch.Tensor:
    first = prepared.levels[0].band
    dist_b = check_dist(torch.empty(prepared.shape, device="meta"), dist).to(first.device)
    grey = _grey(dist_b, first.dtype, scratch)
    n_ref, n_dist = prepared.shape[0], grey.shape[0]
    # One image at a time: a batch's float64 subbands outgrow the CPU's caches (measured 2× slower
    # per image for 16 at 512²), and nothing is shared between the images of a batch.
    num = []
    for i in range(max(n_ref, n_dist)):
        levels = tuple(_pick(stats, i) for stats in prepared.levels) if n_ref > 1 else prepared.levels
        num.append(_vif_one(levels, grey[i : i + 1] if n_dist > 1 else grey))
    return (torch.cat(num) / prepared.information).to(prepared.out_dtype)


@torch.no_grad()
def score(prepared: VIFReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> MetricScore:
    """VIF of each image in ``dist`` against the prepared reference (no map)."""
    return MetricScore(values=_vif(prepared, dist, ctx.scratch if ctx is not None else None).float().cpu())


@torch.no_grad()
def vif(ref: torch.Tensor, dist: torch.Tensor, precise: bool = True) -> torch.Tensor:
    """Visual information fidelity (Sheikh & Bovik 2006, ``vifvec.m``), one value per image (N).

    Higher = more similar: 1 for identical images, 0 when the distorted image carries none of
    the reference's information (it can exceed 1 for contrast enhancement). A flat reference
    has no information to keep: its VIF is NaN. Images must be at least 72×72 (the pyramid's
    four levels). ``precise=False`` computes in float32. Conventions: the module docstring.

    >>> ref = torch.rand(1, 3, 80, 80, generator=torch.Generator().manual_seed(0))
    >>> round(vif(ref, ref).item(), 6)
    1.0
    """
    check_dist(check_unit_batch(ref, "ref"), dist)
    return _vif(prepare_reference(ref, MetricContext(precise=precise)), dist)
