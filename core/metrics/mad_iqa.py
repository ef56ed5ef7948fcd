"""MAD, most apparent distortion (Larson & Chandler, J. Electronic Imaging 2010).

Not the "MAD competition" of the Synthesis page (``cli mad``, Wang & Simoncelli's maximum
differentiation): this is Larson and Chandler's full-reference distance, keyed ``mad_iqa``.

Conventions follow the authors' ``MAD_index.m`` (Eric Larson, the September 2011 release: "Fixed
constant of 200 on d_detect", "Mad is now faster") with its C helpers ``ical_std.c`` and
``ical_stat.c``, on 8-bit images:

- grey: the script's ``myrgb2gray`` on uint8 RGB, ``uint8(0.299*R + 0.587*G + 0.114*B)``, in
  which MATLAB rounds each uint8 product to an integer (halves away from zero) before adding;
- detection (``hi_index``): luminance ``0.02874 · g^(2.2/3)`` by the script's look-up table,
  indexed ``LUT(g + 1)`` with uint8 arithmetic, so level 255 saturates and reads the entry of
  254; the CSF ``make_csf(M, N, 32)'`` (2.6 (0.0192 + 0.114 f) e^{-(0.114 f)^1.1}, 0.9809 below
  f = 7.8909, the oblique effect w = 0.7) applied by ``fftshift``/``ifftshift`` FFT filtering;
  ``ical_std``'s 16×16 blocks every 4 pixels (the block's statistics written to its top-left 4×4
  cell, zeros where no block starts): the standard deviation (N - 1) of the filtered
  ``dist - ref``, the mean of the filtered reference, and the reference's "modified" deviation,
  the smallest (N - 1) deviation of the 8×8 windows at the block's origin and 4 pixels further
  right/down (``ical_std.c`` reads them at offset 5 and skips the farther one when
  ``i + 5 >= size - 15``); log contrasts with G = 0.5, C_slope = 1, Ci = Cd = -5; the mask times
  ``filter2(ones(16)/256, (ref - dst).^2, 'same')``; 17 border pixels dropped per side
  (``BSIZE+1 : end-BSIZE-1``) and d_detect = 200 · RMS;
- appearance (``lo_index``): Kovesi's ``gaborconvolve`` as altered there (5 scales of wavelength
  3·3^s, 4 orientations, σ/f = 0.55, dθ/σ = 1.5, ``fftshift`` of the centred grid, the centre
  sample zeroed), ``ical_stat``'s 16×16 blocks every 4 pixels on each subband's magnitude:
  standard deviation (N - 1), skewness and kurtosis (population moments; 0 where the block is
  flat); Σ over subbands of w_s (|Δσ| + 2|Δskew| + |Δkurt|), w = [0.5 0.75 1 5 6]/13.25 by
  scale; the same 17-pixel crop and d_appear = RMS;
- blend: α = 1 / (1 + β1 d_detect^β2) with β1 = e^{-2.55/3.35} = 0.467, β2 = 1/(3.35 ln 10) =
  0.130, and MAD = d_appear^(1-α) · d_detect^α. Lower = more similar, 0 = identical.

The map is the detection map (``MAD_index.m``'s ``map.HI``: the contrast mask times the local
MSE, at image size, before the crop); :func:`mad_iqa` with ``return_map=True`` also returns the
appearance map (``map.LO``), d_detect, d_appear and α.

Where the popular port differs (pyiqa's ``mad_arch.py``, from IQA-optimization's ``MAD.py``; piq
has no MAD): it greys with the YCbCr luma Y (16..235), not ``myrgb2gray``; it skips the look-up
table (so 255 is not saturated) and adds 1e-12 before the power; its CSF grid is built for
H×W and reshaped, not transposed (the same only for square images); its block statistics are
kept on the 4-pixel grid without the zero margin and without the 17-pixel crop; its "modified"
deviation is a 2×2 minimum of 16×16 deviations halved, with N, not N - 1, and 1e-12 added; it
computes lmse with stride 4 and no padding; and in ``lo_index`` it weights the subbands by the
*orientation* index (w[0..3]) instead of the scale (so the coarsest scale's weight 6/13.25 is
never used). Its values are therefore not comparable with this module's: on 256×256 crops of
the gallery's astronaut and coffee with noise (σ = 10, 40) or blur (σ = 1.5), pyiqa 0.1.16 gives
1.65-1.9× this module's value, even when fed this module's grey image (checked in a scratch
environment; pyiqa is not a dependency, see docs/metrics.md).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from ..errors import ImageTooSmallError
from ..images.tensors import check_dist, check_unit_batch
from ._levels import out_dtype, shared_levels, work_dtype
from ._matlab import conv2_same
from .catalog import MAD_IQA_MIN_SIZE
from .registry import MetricContext, MetricScore

__all__ = ["MAD_IQA_MIN_SIZE", "MADReference", "MADResult", "mad_iqa", "myrgb2gray", "prepare_reference", "score"]

# hi_index's masking/luminance parameters.
K_LUM, GAMMA, G_THRESHOLD, C_SLOPE, CI_THRESHOLD, CD_THRESHOLD = 0.02874, 2.2 / 3.0, 0.5, 1.0, -5.0, -5.0
BSIZE, BLOCK, STEP, HALF = 16, 16, 4, 8  # the crop, ical_std/ical_stat's block and step, the modified std's window
DETECT_SCALE = 200.0  # "2010 (june): Fixed constant of 200 on d_detect"
THRESH1, THRESH2 = 2.55, 3.35
BETA1, BETA2 = math.exp(-THRESH1 / THRESH2), 1.0 / (math.log(10.0) * THRESH2)
# gaborconvolve's parameters.
_NSCALE, _NORIENT, _MIN_WAVELENGTH, _MULT, _SIGMA_ON_F, _D_THETA_ON_SIGMA = 5, 4, 3, 3, 0.55, 1.5
_SCALE_WEIGHTS = tuple(w / 13.25 for w in (0.5, 0.75, 1.0, 5.0, 6.0))


@dataclass(frozen=True)
class MADReference:
    """What MAD needs of the reference: its grey levels, CSF-filtered luminance, block mean and
    modified deviation (``ical_std``), and the block statistics of its 20 log-Gabor subbands."""

    grey: torch.Tensor  # N×1×H×W, 0..255
    luminance: torch.Tensor  # N×1×H×W, CSF filtered
    block_mean: torch.Tensor  # N×1×Kr×Kc
    block_std_mod: torch.Tensor  # N×1×Kr×Kc
    subband_stats: tuple[torch.Tensor, ...]  # 20 × (N×3×Kr×Kc): std, skewness, kurtosis
    shape: torch.Size
    out_dtype: torch.dtype


@dataclass(frozen=True)
class MADResult:
    """MAD values (N,), the detection map (``map.HI``, N×1×H×W), the appearance map (``map.LO``,
    N×1×H×W), d_detect and d_appear (N,) and the blend weight α (N,) given to d_detect."""

    value: torch.Tensor
    map: torch.Tensor
    appearance_map: torch.Tensor
    detect: torch.Tensor
    appear: torch.Tensor
    alpha: torch.Tensor


def _round_half_up(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's rounding of non-negative doubles to integers (halves away from zero), exactly."""
    low = torch.floor(x)
    return low + (x - low >= 0.5).to(x.dtype)


def myrgb2gray(levels: torch.Tensor) -> torch.Tensor:
    """``MAD_index.m``'s ``myrgb2gray`` on uint8 RGB (N×3×H×W levels 0..255): each product is
    rounded to uint8 before the (saturating) sum, as MATLAB's integer arithmetic does."""
    weights = torch.tensor((0.299, 0.587, 0.114), dtype=torch.float64, device=levels.device).view(1, 3, 1, 1)
    terms = _round_half_up(levels.to(torch.float64) * weights)
    return terms.sum(dim=1, keepdim=True).clamp(max=255.0).to(levels.dtype)


@functools.lru_cache(maxsize=8)
def _csf_cpu(rows: int, cols: int) -> torch.Tensor:
    """``ifftshift(make_csf(M, N, 32)')``: the CSF as a filter on the unshifted spectrum (rows×cols)."""
    # make_csf(x=M, y=N) builds an N×M grid that the caller transposes; written here directly in
    # its transposed (M×N) form: x runs down the rows, y along the columns, both divided by N.
    x = torch.arange(rows, dtype=torch.float64) - rows / 2 + 0.5
    y = torch.arange(cols, dtype=torch.float64) - cols / 2 + 0.5
    re, im = x[:, None].expand(rows, cols) / cols * 64.0, y[None, :].expand(rows, cols) / cols * 64.0
    radfreq = torch.sqrt(re**2 + im**2)
    w = 0.7
    s = (1 - w) / 2 * torch.cos(4 * torch.atan2(im, re)) + (1 + w) / 2
    radfreq = radfreq / s
    csf = 2.6 * (0.0192 + 0.114 * radfreq) * torch.exp(-((0.114 * radfreq) ** 1.1))
    csf = torch.where(radfreq < 7.8909, torch.full_like(csf, 0.9809), csf)
    return torch.fft.ifftshift(csf)


@functools.lru_cache(maxsize=8)
def _log_gabors_cpu(rows: int, cols: int) -> torch.Tensor:
    """gaborconvolve's 5×4 filters (scale × orientation × rows × cols), already ``fftshift``-ed."""
    x = ((torch.arange(cols, dtype=torch.float64) - cols / 2) / (cols / 2))[None, :].expand(rows, cols)
    y = ((torch.arange(rows, dtype=torch.float64) - rows / 2) / (rows / 2))[:, None].expand(rows, cols)
    radius = torch.sqrt(x**2 + y**2)
    centre = ((rows + 1) // 2, (cols + 1) // 2)  # round(rows/2 + 1), 1-based
    radius[centre] = 1.0
    log_radius = torch.log(radius)
    theta = torch.atan2(-y, x)
    sin_t, cos_t = torch.sin(theta), torch.cos(theta)
    theta_sigma = math.pi / _NORIENT / _D_THETA_ON_SIGMA
    filters = torch.empty(_NSCALE, _NORIENT, rows, cols, dtype=torch.float64)
    for s in range(_NSCALE):
        rfo = (1.0 / (_MIN_WAVELENGTH * _MULT**s)) / 0.5
        log_gabor = torch.exp((log_radius - math.log(rfo)) ** 2 / -(2 * math.log(_SIGMA_ON_F) ** 2))
        log_gabor[centre] = 0.0
        for o in range(_NORIENT):
            angle = o * math.pi / _NORIENT
            ds = sin_t * math.cos(angle) - cos_t * math.sin(angle)
            dc = cos_t * math.cos(angle) + sin_t * math.sin(angle)
            spread = torch.exp(-(torch.abs(torch.atan2(ds, dc)) ** 2) / (2 * theta_sigma**2))
            filters[s, o] = torch.fft.fftshift(log_gabor * spread)
    return filters


def _block_counts(rows: int, cols: int) -> tuple[int, int]:
    """How many block origins 0, 4, 8, ... satisfy ``origin < size - 15`` per axis."""
    return (rows - BLOCK) // STEP + 1, (cols - BLOCK) // STEP + 1


def _spread_cells(values: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Block statistics (…×Kr×Kc) written to each block's top-left 4×4 cell of a zero rows×cols map."""
    kr, kc = values.shape[-2:]
    cells = values.repeat_interleave(STEP, dim=-2).repeat_interleave(STEP, dim=-1)
    out = values.new_zeros(*values.shape[:-2], rows, cols)
    out[..., : kr * STEP, : kc * STEP] = cells
    return out


def _rms_cropped(full: torch.Tensor) -> torch.Tensor:
    """``norm(mp(BSIZE+1:end-BSIZE-1, ...)(:)) / sqrt(numel)`` per image."""
    crop = full[..., BSIZE : full.shape[-2] - BSIZE - 1, BSIZE : full.shape[-1] - BSIZE - 1]
    return torch.sqrt((crop**2).mean(dim=(-3, -2, -1)))


def _luminance(grey: torch.Tensor) -> torch.Tensor:
    """hi_index's ``LUT(img + 1)`` on uint8 (255 + 1 saturates, reading 254's entry), CSF filtered."""
    lum = K_LUM * grey.clamp(max=254.0) ** GAMMA
    csf = _csf_cpu(*grey.shape[-2:]).to(dtype=grey.dtype, device=grey.device)
    return torch.fft.ifft2(torch.fft.fft2(lum) * csf).real


def _reference_contrast(lum: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ical_std's outputs that depend on the reference alone: block mean and modified deviation."""
    rows, cols = lum.shape[-2:]
    kr, kc = _block_counts(rows, cols)
    mean = _block_moments(lum)[0]
    small = torch.sqrt(_block_moments(lum, HALF)[1] / (HALF * HALF - 1))  # the 8×8 window at every origin
    # The neighbour 4 px further down/right counts only where ical_std.c's bound `i + 5 < size - 15` holds.
    down = torch.tensor([STEP * a + 5 < rows - 15 for a in range(kr)], device=lum.device).view(kr, 1)
    right = torch.tensor([STEP * b + 5 < cols - 15 for b in range(kc)], device=lum.device).view(1, kc)
    inf = torch.full_like(small, math.inf)
    shifted_r = torch.cat([small[..., 1:, :], inf[..., :1, :]], dim=-2)
    shifted_c = torch.cat([small[..., :, 1:], inf[..., :, :1]], dim=-1)
    shifted_rc = torch.cat([shifted_r[..., :, 1:], inf[..., :, :1]], dim=-1)
    modified = torch.minimum(small, torch.where(down, shifted_r, inf))
    modified = torch.minimum(modified, torch.where(right, shifted_c, inf))
    modified = torch.minimum(modified, torch.where(down & right, shifted_rc, inf))
    return mean, modified


def _block_moments(x: torch.Tensor, size: int = BLOCK) -> tuple[torch.Tensor, ...]:
    """Mean and central moment sums Σ(x - μ)^p, p = 2, 3, 4, of the size×size windows (16 or 8)
    at every block origin (every 4 px where a 16×16 block fits): each N×C×Kr×Kc.

    A window is (size/4)² cells of 4×4 pixels: the cells' own central sums (two-pass, each pixel
    read once) are combined by the exact shift formulas M_p = Σ_c Σ_k C(p, k) δ_c^(p-k) M_k,c
    with δ_c the cell mean minus the window mean, so no power sum of raw values (which would
    cancel catastrophically where a block is nearly constant) is ever formed, and no 16×16
    window is copied out (a batch of 512² images would need gigabytes).
    """
    kr, kc = _block_counts(*x.shape[-2:])
    per_side = size // STEP
    rows, cols = STEP * (kr + per_side - 1), STEP * (kc + per_side - 1)
    cells = x[..., :rows, :cols].unflatten(-1, (cols // STEP, STEP)).unflatten(-3, (rows // STEP, STEP))
    cells = cells.transpose(-3, -2).flatten(-2)  # …×R×C×16
    cell_mean = cells.mean(dim=-1)
    d = cells - cell_mean[..., None]
    d2 = d * d
    m2, m3, m4 = d2.sum(dim=-1), (d2 * d).sum(dim=-1), (d2 * d2).sum(dim=-1)

    def windows(t: torch.Tensor) -> torch.Tensor:  # the cells of each window: …×kr×kc×cells
        return t.unfold(-2, per_side, 1).unfold(-2, per_side, 1).flatten(-2)

    means, w2, w3, w4 = windows(cell_mean), windows(m2), windows(m3), windows(m4)
    mean = means.mean(dim=-1)
    delta = means - mean[..., None]
    n = float(STEP * STEP)
    delta2 = delta * delta
    block_m2 = (w2 + n * delta2).sum(dim=-1)
    block_m3 = (w3 + 3.0 * delta * w2 + n * delta2 * delta).sum(dim=-1)
    block_m4 = (w4 + 4.0 * delta * w3 + 6.0 * delta2 * w2 + n * delta2 * delta2).sum(dim=-1)
    return mean, block_m2, block_m3, block_m4


def _subband_stats(grey: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """ical_stat of |EO| for each of the 20 log-Gabor subbands (scale-major): N×3×Kr×Kc each
    (standard deviation with N - 1, skewness, kurtosis; 0 and 0 where a block is flat)."""
    filters = _log_gabors_cpu(*grey.shape[-2:]).to(device=grey.device, dtype=grey.dtype)
    spectrum = torch.fft.fft2(grey)
    count = BLOCK * BLOCK
    stats = []
    for s in range(_NSCALE):
        for o in range(_NORIENT):
            _, m2, m3, m4 = _block_moments(torch.fft.ifft2(spectrum * filters[s, o]).abs())
            variance = m2 / count
            flat = variance == 0
            safe = torch.where(flat, torch.ones_like(variance), variance)
            skew = torch.where(flat, 0.0, m3 / count / (safe * torch.sqrt(safe)))
            kurt = torch.where(flat, 0.0, m4 / count / (safe * safe))
            stats.append(torch.cat([torch.sqrt(m2 / (count - 1)), skew, kurt], dim=1))
    return tuple(stats)


def _check_size(ref: torch.Tensor) -> None:
    height, width = ref.shape[-2:]
    if min(height, width) < MAD_IQA_MIN_SIZE:
        raise ImageTooSmallError(f"MAD (Larson–Chandler) needs images of at least {MAD_IQA_MIN_SIZE}×"
                                 f"{MAD_IQA_MIN_SIZE} pixels, got {width}×{height}. Use larger images.")


def _grey(batch: torch.Tensor, dtype: torch.dtype, scratch: dict | None) -> torch.Tensor:
    return myrgb2gray(shared_levels(batch, dtype, scratch))


def _prepare(ref: torch.Tensor, precise: bool, scratch: dict | None = None) -> MADReference:
    ref_b = check_unit_batch(ref, "ref")
    _check_size(ref_b)
    grey = _grey(ref_b, work_dtype(ref_b, precise), scratch)
    lum = _luminance(grey)
    mean, modified = _reference_contrast(lum)
    return MADReference(grey, lum, mean, modified, _subband_stats(grey), ref_b.shape, out_dtype(ref_b))


@torch.no_grad()
def prepare_reference(ref: torch.Tensor, ctx: MetricContext | None = None) -> MADReference:
    """What MAD needs of the reference (grey levels, filtered luminance, block statistics of the
    luminance and of its 20 log-Gabor subbands), computed once."""
    ctx = ctx or MetricContext()
    return _prepare(ref, ctx.precise, ctx.scratch)


def _detection(prepared: MADReference, grey: torch.Tensor) -> torch.Tensor:
    """hi_index's map: the contrast mask times the local MSE (N×1×H×W, before the crop)."""
    rows, cols = grey.shape[-2:]
    error_std = torch.sqrt(_block_moments(_luminance(grey) - prepared.luminance)[1] / (BLOCK * BLOCK - 1))
    mean = prepared.block_mean
    ci_ref = torch.log(prepared.block_std_mod / mean)
    ci_dst = torch.log(error_std / mean)
    ci_dst = torch.where(mean < G_THRESHOLD, -math.inf, ci_dst)
    sloped = C_SLOPE * (ci_ref - CI_THRESHOLD) + CD_THRESHOLD
    idx1 = (ci_ref > CI_THRESHOLD) & (ci_dst > sloped)
    idx2 = (ci_ref <= CI_THRESHOLD) & (ci_dst > CD_THRESHOLD)
    mask = torch.where(idx1, ci_dst - sloped, torch.where(idx2, ci_dst - CD_THRESHOLD, 0.0))
    box = torch.full((BLOCK, BLOCK), 1.0 / (BLOCK * BLOCK), dtype=grey.dtype, device=grey.device)
    lmse = conv2_same((prepared.grey - grey) ** 2, box)
    return _spread_cells(mask, rows, cols) * lmse


def _appearance(prepared: MADReference, grey: torch.Tensor) -> torch.Tensor:
    """lo_index's map: the weighted differences of subband statistics (N×1×H×W, before the crop)."""
    rows, cols = grey.shape[-2:]
    total = None
    for k, dist_stats in enumerate(_subband_stats(grey)):
        diff = (prepared.subband_stats[k] - dist_stats).abs()
        term = _SCALE_WEIGHTS[k // _NORIENT] * (diff[:, 0:1] + 2.0 * diff[:, 1:2] + diff[:, 2:3])
        total = term if total is None else total + term
    return _spread_cells(total, rows, cols)


def _mad(prepared: MADReference, dist: torch.Tensor, scratch: dict | None = None) -> MADResult:
    device = prepared.grey.device
    dist_b = check_dist(torch.empty(prepared.shape, device="meta"), dist).to(device)
    grey = _grey(dist_b, prepared.grey.dtype, scratch)
    detection, appearance = _detection(prepared, grey), _appearance(prepared, grey)
    detect = _rms_cropped(detection) * DETECT_SCALE
    appear = _rms_cropped(appearance)
    alpha = 1.0 / (1.0 + BETA1 * detect**BETA2)
    value = appear ** (1.0 - alpha) * detect**alpha
    dtype = prepared.out_dtype
    return MADResult(value.to(dtype), detection.to(dtype), appearance.to(dtype), detect.to(dtype), appear.to(dtype),
                     alpha.to(dtype))


@torch.no_grad()
def score(prepared: MADReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> MetricScore:
    """MAD of each image in ``dist`` against the prepared reference, with the detection map."""
    result = _mad(prepared, dist, ctx.scratch if ctx is not None else None)
    want_map = ctx is None or ctx.spatial
    return MetricScore(values=result.value.float().cpu(), map=result.map.float().cpu() if want_map else None)


@torch.no_grad()
def mad_iqa(ref: torch.Tensor, dist: torch.Tensor, return_map: bool = False,
            precise: bool = True) -> torch.Tensor | MADResult:
    """Most apparent distortion (Larson & Chandler 2010), one value per image (shape N).

    Lower = more similar (0 = identical), higher = more different; not the MAD competition of
    the Synthesis page. Computed as ``MAD_index.m`` does on its 8-bit grey image (see the module
    docstring). ``return_map=True`` returns a :class:`MADResult` with the detection and
    appearance maps (image size), d_detect, d_appear and the blend weight α. Images must be at
    least 34×34. ``precise=False`` computes in float32.

    >>> ref = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    >>> mad_iqa(ref, ref).item()
    0.0
    >>> mad_iqa(ref, ref.flip(-1)).item() > 0
    True
    """
    check_dist(check_unit_batch(ref, "ref"), dist)
    result = _mad(_prepare(ref, precise), dist)
    return result if return_map else result.value
