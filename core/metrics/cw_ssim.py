"""CW-SSIM (Sampat, Wang, Gupta, Bovik & Markey 2009): SSIM on complex steerable-pyramid bands.

Conventions follow the authors' ``cwssim_index.m`` (Zhou Wang, Mehul Sampat, Alan Bovik; version
1.0, 2010; MATLAB Central File Exchange 43017, read here from copies in public repositories) on
matlabPyrTools' ``buildSCFpyr.m``/``buildSCFpyrLevs.m``/``rcosFn.m``/``pointOp.m`` (Simoncelli,
Portilla; LabForComputationalVision/matlabPyrTools):

* the grey image is MATLAB ``rgb2gray`` of the 8-bit RGB on 0..255, as SSIM's reference mode (with
  ``K = 0`` the value does not depend on the scale of the grey levels);
* the complex steerable pyramid is built in the Fourier domain: ``fftshift(fft2(im))``, the
  raised-cosine radial masks of ``rcosFn(1, -1/2)`` and the one-lobed angular masks
  ``2·sqrt(const)·cos^(n-1)`` read from their 1024-per-π tables by ``pointOp`` (linear
  interpolation), ``(-i)^(n-1)`` per band, and each coarser level the centred
  ``ceil((dims - 0.5)/2)`` block of the spectrum (an odd side keeps the larger half);
* CW-SSIM uses only the bands of the coarsest level asked for: ``level = 4`` with ``or = 8``
  orientations, ``guardb = 0``, ``K = 0``. ``cwssim_index.m`` has no defaults (all six arguments
  are required; its usage line shows 6 levels and 16 orientations); 4 and 8 are what pyiqa and
  the comparison toolboxes built on it use, and what reproduces the published calibration values
  on TID2013 images (pyiqa's ``ResultsCalibra``: 0.2763 on I03, where 6 and 16 give 0.9435).
  ``buildSCFpyr`` refuses more than ``floor(log2(min side)) - 2`` levels, so images need at least
  64 pixels per side;
* per band, ``corr = b1 .* conj(b2)`` and ``|b1|² + |b2|²`` are averaged over a 7×7 box
  (``filter2(..., 'valid')``), ``cssim = (2|corr| + K) / (var + K)``, and the band's value is
  ``sum(cssim .* w)`` with ``w = fspecial('gaussian', size - 6, rows/4)`` (its ``eps`` cut
  included); CW-SSIM is the mean over the orientations.

The one departure: where the 7×7 box holds nothing at all in both images (exactly zero energy,
``0/0``), MATLAB gives NaN; here that pixel counts as identical (1). Band energy of a real image
is never exactly zero (the FFT leaves ~1e-13), so this changes no value MATLAB gives a number for.

The map is the mean over orientations of ``cssim`` at the coarsest level's resolution, 6 pixels
smaller than the band (1/8 of the image side, less 6): the local values CW-SSIM's weighted sum
averages.

These settings reproduce the published values of the authors' MATLAB code on five TID2013 pairs
(the calibration table of pyiqa, ``ResultsCalibra/results_official.csv``) to their four printed
digits.

Where the popular port differs (pyiqa 0.1.16 ``cw_ssim``): it takes YIQ's luma on 0..255 unrounded
instead of ``rgb2gray``'s 8-bit levels (a few 1e-6 of CW-SSIM on photos), builds its masks in
float32, and its ``pointOp`` clamps where MATLAB's extrapolates (no difference with these tables,
whose ends are flat). On the same grey image the two agree to about 1e-8. ``tests/test_metrics_cw_ssim.py``
shows both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ImageTooSmallError
from ..images.tensors import check_dist, check_unit_batch
from ._levels import out_dtype, shared_luma, work_dtype
from .catalog import CW_SSIM_MIN_SIZE
from .registry import MetricContext, MetricScore

__all__ = ["CW_SSIM_K", "CW_SSIM_LEVEL", "CW_SSIM_MIN_SIZE", "CW_SSIM_ORIENTATIONS", "CWSSIMReference",
           "CWSSIMResult", "cw_ssim", "max_levels", "prepare_reference", "score"]

CW_SSIM_LEVEL = 4
CW_SSIM_ORIENTATIONS = 8
CW_SSIM_K = 0.0
_WINDOW = 7
_LUT_SIZE = 1024


def max_levels(height: int, width: int) -> int:
    """``buildSCFpyr``'s ``max_ht = floor(log2(min(size(im)))) - 2``."""
    return int(math.floor(math.log2(min(height, width)))) - 2


def _point_op(x: np.ndarray, lut: np.ndarray, origin: float, increment: float) -> np.ndarray:
    """matlabPyrTools ``pointOp``: the equi-spaced table ``lut`` read at ``x`` by linear
    interpolation, extrapolated linearly from the end segments."""
    position = (x - origin) / increment
    index = np.clip(np.floor(position), 0, lut.size - 2).astype(np.int64)
    return lut[index] + (lut[index + 1] - lut[index]) * (position - index)


def _rcos() -> tuple[np.ndarray, np.ndarray]:
    """``rcosFn(1, -1/2, [0 1])``: the raised cosine's abscissae and values (ends repeated)."""
    size = 256
    x = np.pi * np.arange(-size - 1, 2) / (2 * size)
    y = np.cos(x) ** 2
    y[0], y[size + 2] = y[1], y[size + 1]
    return -0.5 + (2 / np.pi) * (x + np.pi / 4), y


def _block(height: int, width: int, level: int) -> tuple[int, int, int, int]:
    """``(top, left, h, w)``: where ``buildSCFpyrLevs``'s nested crops of the centred spectrum
    (``ceil((dims - 0.5)/2)`` samples around the centre, once per level above ``level``) end."""
    top, left, dims = 0, 0, (height, width)
    for _ in range(level - 1):
        lo_dims = tuple(math.ceil((d - 0.5) / 2) for d in dims)
        start = tuple(math.ceil((d + 0.5) / 2) - math.ceil((lo + 0.5) / 2) for d, lo in zip(dims, lo_dims))
        top, left, dims = top + start[0], left + start[1], lo_dims
    return top, left, dims[0], dims[1]


@lru_cache(maxsize=8)
def _band_filters(height: int, width: int, level: int,
                  orientations: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The Fourier-domain filters (``orientations``×h×w, complex) of the bands at ``level`` and
    the block ``(top, left, h, w)`` of the centred spectrum they apply to: ``buildSCFpyr``'s
    masks multiplied along the path to that level. Every mask is pointwise and every crop keeps a
    centred block, so each mask is evaluated on the final block only (the same values)."""
    top, left, h, w = _block(height, width, level)
    ctr = (math.ceil((height + 0.5) / 2), math.ceil((width + 0.5) / 2))  # 1-based, as MATLAB
    xramp, yramp = np.meshgrid((np.arange(left + 1, left + w + 1) - ctr[1]) / (width / 2),
                               (np.arange(top + 1, top + h + 1) - ctr[0]) / (height / 2))
    angle = np.arctan2(yramp, xramp)
    radius = np.sqrt(xramp**2 + yramp**2)
    # log_rad(ctr(1), ctr(2)) = log_rad(ctr(1), ctr(2) - 1): the centre takes its left neighbour's
    # radius (xramp = -1/(width/2), yramp = 0 there), written out as MATLAB computes it.
    neighbour_x = (ctr[1] - 1 - ctr[1]) / (width / 2)
    radius[ctr[0] - 1 - top, ctr[1] - 1 - left] = np.sqrt(neighbour_x**2 + 0.0**2)
    log_rad = np.log2(radius)
    xrcos, yrcos = _rcos()
    yrcos = np.sqrt(yrcos)
    yircos = np.sqrt(1.0 - yrcos**2)
    mask = _point_op(log_rad, yircos, xrcos[0], xrcos[1] - xrcos[0])  # lo0mask
    for _ in range(level - 1):  # the levels above the one used: each low-passes (lomask)
        xrcos = xrcos - 1.0
        mask = mask * _point_op(log_rad, np.abs(np.sqrt(1.0 - yrcos**2)), xrcos[0], xrcos[1] - xrcos[0])
    xrcos = xrcos - 1.0
    himask = _point_op(log_rad, yrcos, xrcos[0], xrcos[1] - xrcos[0])
    xcosn = np.pi * np.arange(-(2 * _LUT_SIZE + 1), _LUT_SIZE + 2) / _LUT_SIZE
    order = orientations - 1
    const = (2 ** (2 * order)) * (math.factorial(order) ** 2) / (orientations * math.factorial(2 * order))
    alpha = np.mod(np.pi + xcosn, 2 * np.pi) - np.pi
    ycosn = 2 * np.sqrt(const) * np.cos(xcosn) ** order * (np.abs(alpha) < np.pi / 2)
    factor = (-1j) ** order
    filters = np.stack([
        factor * mask * himask * _point_op(angle, ycosn, xcosn[0] + np.pi * b / orientations, xcosn[1] - xcosn[0])
        for b in range(orientations)])
    return filters, (top, left, h, w)


def _gaussian_weights(rows: int, cols: int, sigma: float) -> np.ndarray:
    """``fspecial('gaussian', [rows cols], sigma)``, with its cut of values below ``eps·max``."""
    y, x = np.meshgrid(np.arange(rows) - (rows - 1) / 2, np.arange(cols) - (cols - 1) / 2, indexing="ij")
    h = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


@dataclass(frozen=True)
class CWSSIMReference:
    """The reference's bands at the coarsest level used (N×B×h×w complex), their energy, and the
    settings they were made with."""

    bands: torch.Tensor
    energy: torch.Tensor  # |bands|², real
    filters: torch.Tensor  # B×h×w complex: the bands' Fourier-domain filters
    block: tuple[int, int, int, int]
    weights: torch.Tensor  # (h - 6)×(w - 6)
    shape: torch.Size  # the reference batch's N×3×H×W
    out_dtype: torch.dtype


@dataclass(frozen=True)
class CWSSIMResult:
    """CW-SSIM values (N,) and the orientation-mean ``cssim`` map (N×1×(h-6)×(w-6), 1 = same)."""

    value: torch.Tensor
    map: torch.Tensor


def _centred_block(plane: torch.Tensor, block: tuple[int, int, int, int]) -> torch.Tensor:
    """``fftshift(fft2(plane))(top:top+h, left:left+w)`` of a real N×1×H×W plane, read from its
    half spectrum (``rfft2``): a column past W/2 is the conjugate of the mirrored row and column.
    Only the block is gathered; the full spectrum is never shifted or completed."""
    top, left, h, w = block
    height, width = plane.shape[-2:]
    half = torch.fft.rfft2(plane)
    # fftshift puts frequency (i - n//2) mod n at index i.
    rows = (torch.arange(top, top + h, device=plane.device) - height // 2) % height
    cols = (torch.arange(left, left + w, device=plane.device) - width // 2) % width
    direct = cols <= width // 2
    stored = half.index_select(-2, rows).index_select(-1, torch.where(direct, cols, 0))
    mirrored = half.index_select(-2, (-rows) % height).index_select(-1, torch.where(direct, 0, width - cols)).conj()
    return torch.where(direct, stored, mirrored)


def _bands(plane: torch.Tensor, filters: torch.Tensor, block: tuple[int, int, int, int]) -> torch.Tensor:
    """N×1×H×W grey plane → N×B×h×w complex bands: the centred spectrum's block times each filter."""
    return torch.fft.ifft2(torch.fft.ifftshift(_centred_block(plane, block) * filters, dim=(-2, -1)))


def _box_valid(x: torch.Tensor) -> torch.Tensor:
    """``filter2(ones(7)/49, x, 'valid')`` on each band of N×B×h×w (real)."""
    return F.avg_pool2d(x, _WINDOW, stride=1)


def _check_size(ref: torch.Tensor) -> None:
    height, width = ref.shape[-2:]
    if min(height, width) < CW_SSIM_MIN_SIZE:
        raise ImageTooSmallError(
            f"CW-SSIM needs images of at least {CW_SSIM_MIN_SIZE}×{CW_SSIM_MIN_SIZE} pixels, got {width}×{height}: "
            f"its steerable pyramid needs {CW_SSIM_LEVEL} levels, and an image builds floor(log2(side)) - 2. "
            "Use larger images.")


@torch.no_grad()
def prepare_reference(ref: torch.Tensor, ctx: MetricContext | None = None) -> CWSSIMReference:
    """What CW-SSIM needs of the reference (its complex bands at the fourth level), computed once."""
    ctx = ctx or MetricContext()
    ref_b = check_unit_batch(ref, "ref")
    _check_size(ref_b)
    dtype = work_dtype(ref_b, ctx.precise)
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    height, width = ref_b.shape[-2:]
    filters, block = _band_filters(height, width, CW_SSIM_LEVEL, CW_SSIM_ORIENTATIONS)
    filters_t = torch.from_numpy(filters).to(dtype=complex_dtype, device=ref_b.device)
    bands = _bands(shared_luma(ref_b, dtype, ctx.scratch), filters_t, block)
    rows, cols = block[2] - _WINDOW + 1, block[3] - _WINDOW + 1
    weights = torch.from_numpy(_gaussian_weights(rows, cols, block[2] / 4)).to(dtype=dtype, device=ref_b.device)
    return CWSSIMReference(bands, bands.real.square() + bands.imag.square(), filters_t, block, weights, ref_b.shape,
                           out_dtype(ref_b))


def _cw_ssim(prepared: CWSSIMReference, dist: torch.Tensor, scratch: dict | None = None) -> CWSSIMResult:
    ref_bands = prepared.bands
    dist_b = check_dist(torch.empty(prepared.shape, device="meta"), dist).to(ref_bands.device)
    dist_bands = _bands(shared_luma(dist_b, prepared.weights.dtype, scratch), prepared.filters, prepared.block)
    corr = ref_bands * dist_bands.conj()
    energy = prepared.energy + dist_bands.real.square() + dist_bands.imag.square()
    corr_band = torch.complex(_box_valid(corr.real), _box_valid(corr.imag))
    energy_band = _box_valid(energy)
    energy_band, corr_band = torch.broadcast_tensors(energy_band, corr_band)
    cssim = (2 * corr_band.abs() + CW_SSIM_K) / (energy_band + CW_SSIM_K)
    cssim = torch.where(energy_band + CW_SSIM_K == 0, 1.0, cssim)  # 0/0: nothing in either image
    value = (cssim * prepared.weights).sum(dim=(-2, -1)).mean(dim=1)
    return CWSSIMResult(value.to(prepared.out_dtype), cssim.mean(dim=1, keepdim=True).to(prepared.out_dtype))


@torch.no_grad()
def score(prepared: CWSSIMReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> MetricScore:
    """CW-SSIM of each image in ``dist`` against the prepared reference, with its ``cssim`` map."""
    result = _cw_ssim(prepared, dist, ctx.scratch if ctx is not None else None)
    want_map = ctx is None or ctx.spatial
    return MetricScore(values=result.value.float().cpu(), map=result.map.float().cpu() if want_map else None)


@torch.no_grad()
def cw_ssim(ref: torch.Tensor, dist: torch.Tensor, return_map: bool = False,
            precise: bool = True) -> torch.Tensor | CWSSIMResult:
    """Complex wavelet SSIM (Sampat et al. 2009), one value per image (shape N).

    Higher = more similar: 1 for identical images, 0 when no band structure is shared. Computed
    as ``cwssim_index(img1, img2, 4, 8, 0, 0)`` on the 8-bit MATLAB ``rgb2gray`` luma (see the
    module docstring for the conventions and how pyiqa differs). ``return_map=True`` also returns
    the orientation-mean ``cssim`` map at the fourth level's resolution. Images must be at least
    64×64. ``precise=False`` computes in float32 on the CPU.

    >>> ref = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    >>> round(cw_ssim(ref, ref).item(), 6)
    1.0
    >>> cw_ssim(ref, ref.flip(-1), return_map=True).map.shape
    torch.Size([1, 1, 2, 2])
    """
    check_dist(check_unit_batch(ref, "ref"), dist)
    result = _cw_ssim(prepare_reference(ref, MetricContext(precise=precise)), dist)
    return result if return_map else result.value
