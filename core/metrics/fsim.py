"""FSIM and FSIMc (Zhang, Zhang, Mou & Zhang 2011): phase congruency and gradient similarity.

Conventions follow the authors' ``FeatureSIM.m``: the 8-bit RGB planes as doubles (0..255) turned
into YIQ with the rounded coefficients written there (Y = 0.299 R + 0.587 G + 0.114 B, not
rounded to 8 bits), every plane shrunk by ``F = max(1, round(min(H, W) / 256))`` with an F×F
average by ``conv2(..., 'same')`` (zero padded) keeping every F-th pixel; phase congruency by
Kovesi's ``phasecong2`` as embedded there (4 scales, 4 orientations, shortest wavelength 6,
σ_f/f = 0.55, Butterworth low-pass 0.45 of order 15, noise threshold k = 2 divided by 1.7,
MATLAB's median); Scharr-like gradients ``[3 0 -3; 10 0 -10; 3 0 -3]/16`` by ``conv2 'same'``;
T1 = 0.85, T2 = 160, T3 = T4 = 200, λ = 0.03, with ``real((S_I S_Q)^λ)`` as MATLAB computes a
negative base's power. Colour images get FSIMc, the second value ``FeatureSIM.m`` returns for
them (``chromatic=False`` gives the first, FSIM on Y alone).

Where the popular port differs (piq 0.8.0 ``fsim``): it shrinks by plain F×F average pooling
(an odd last row/column is dropped instead of averaged with MATLAB's zero padding), takes
``|S_I S_Q|^λ`` instead of the real part of the power, the lower median instead of MATLAB's mean
of the two middle values, machine epsilon instead of phasecong2's 1e-4, and rounds F with
Python's ``round`` (2.5 → 2, MATLAB 3). On even sizes below 384 px the two agree to about 1e-5.
This module follows ``FeatureSIM.m``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from ..errors import ImageTooSmallError
from ..images.tensors import check_dist, check_unit_batch
from ._levels import out_dtype, quantize, work_dtype
from ._matlab import average_downsample, conv2_same
from .registry import MetricContext, MetricScore
from .catalog import FSIM_MIN_SIZE

__all__ = ["FSIM_MIN_SIZE", "FSIMReference", "FSIMResult", "fsim", "phase_congruency", "prepare_reference", "score"]

# FeatureSIM.m's constants.
T1, T2, T3, T4, LAMBDA = 0.85, 160.0, 200.0, 200.0, 0.03
_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))
# phasecong2's parameters as FeatureSIM.m sets them.
_NSCALE, _NORIENT, _MIN_WAVELENGTH, _MULT, _SIGMA_ON_F, _D_THETA_ON_SIGMA, _K, _EPSILON = 4, 4, 6, 2, 0.55, 1.2, 2.0, 1e-4


def downsample_factor(height: int, width: int) -> int:
    """``F = max(1, round(min(H, W) / 256))``, rounding halves up as MATLAB does."""
    return max(1, math.floor(min(height, width) / 256 + 0.5))


@dataclass(frozen=True)
class FSIMReference:
    """The reference after FeatureSIM.m's reduction: Y, I, Q planes, phase congruency and
    gradient magnitude (each N×1×h×w), and what they were made under."""

    y: torch.Tensor
    i: torch.Tensor
    q: torch.Tensor
    pc: torch.Tensor
    gradient: torch.Tensor
    shape: torch.Size
    chromatic: bool
    out_dtype: torch.dtype


@dataclass(frozen=True)
class FSIMResult:
    """FSIM(c) values (N,) and the local similarity map S_L (N×1×h×w at the reduced size, 1 = same)."""

    value: torch.Tensor
    map: torch.Tensor


def _centred_range(n: int) -> torch.Tensor:
    if n % 2:
        return torch.arange(-(n - 1) / 2, (n - 1) / 2 + 1, dtype=torch.float64) / (n - 1)
    return torch.arange(-n / 2, n / 2, dtype=torch.float64) / n


@functools.lru_cache(maxsize=8)
def _filters_cpu(rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """phasecong2's log-Gabor filters for a rows×cols image (S×O×rows×cols, float64), the mean
    squared smallest-scale filter per orientation (EM_n), and the noise-energy factor per
    orientation, ``2 Σ ifft(f_s)² + 4 Σ_{s<t} ifft(f_s) ifft(f_t)``: all independent of the image."""
    y, x = torch.meshgrid(_centred_range(rows), _centred_range(cols), indexing="ij")
    radius = torch.sqrt(x**2 + y**2)
    lowpass = torch.fft.ifftshift(1.0 / (1.0 + (radius / 0.45) ** (2 * 15)))
    theta = torch.fft.ifftshift(torch.atan2(-y, x))
    radius = torch.fft.ifftshift(radius)
    radius[0, 0] = 1.0
    sin_t, cos_t = torch.sin(theta), torch.cos(theta)
    log_gabor = []
    for s in range(_NSCALE):
        fo = 1.0 / (_MIN_WAVELENGTH * _MULT**s)
        g = torch.exp(-(torch.log(radius / fo) ** 2) / (2 * math.log(_SIGMA_ON_F) ** 2)) * lowpass
        g[0, 0] = 0.0
        log_gabor.append(g)
    theta_sigma = math.pi / _NORIENT / _D_THETA_ON_SIGMA
    spread = []
    for o in range(_NORIENT):
        angle = o * math.pi / _NORIENT
        ds = sin_t * math.cos(angle) - cos_t * math.sin(angle)
        dc = cos_t * math.cos(angle) + sin_t * math.sin(angle)
        spread.append(torch.exp(-(torch.abs(torch.atan2(ds, dc)) ** 2) / (2 * theta_sigma**2)))
    filters = torch.stack([torch.stack([g * sp for sp in spread]) for g in log_gabor])  # S×O×h×w
    spatial = torch.fft.ifft2(filters).real * math.sqrt(rows * cols)
    em_n = (filters[0] ** 2).sum(dim=(-2, -1))  # O
    sum_an2 = (spatial**2).sum(dim=(0, -2, -1))
    sum_aiaj = torch.zeros(_NORIENT, dtype=torch.float64)
    for si in range(_NSCALE - 1):
        for sj in range(si + 1, _NSCALE):
            sum_aiaj += (spatial[si] * spatial[sj]).sum(dim=(-2, -1))
    return filters, em_n, 2.0 * sum_an2 + 4.0 * sum_aiaj


def _filters(rows: int, cols: int, dtype: torch.dtype, device: torch.device):
    return tuple(t.to(dtype=dtype, device=device) for t in _filters_cpu(rows, cols))


def _matlab_median(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``median`` over the last dimension: the mean of the two middle values for an even count."""
    ordered = x.sort(dim=-1).values
    n = x.shape[-1]
    if n % 2:
        return ordered[..., n // 2]
    return (ordered[..., n // 2 - 1] + ordered[..., n // 2]) / 2.0


def phase_congruency(y: torch.Tensor) -> torch.Tensor:
    """Kovesi's ``phasecong2`` as FeatureSIM.m embeds it, for N×1×h×w planes (0..255 levels)."""
    rows, cols = y.shape[-2:]
    filters, em_n, noise_factor = _filters(rows, cols, y.dtype, y.device)
    spectrum = torch.fft.fft2(y)  # N×1×h×w
    energy_all = torch.zeros_like(y)
    an_all = torch.zeros_like(y)
    for o in range(_NORIENT):
        eo = torch.fft.ifft2(spectrum * filters[:, o])  # N×S×h×w: one response per scale
        even, odd = eo.real, eo.imag
        sum_e, sum_o = even.sum(dim=1, keepdim=True), odd.sum(dim=1, keepdim=True)
        x_energy = torch.sqrt(sum_e**2 + sum_o**2) + _EPSILON
        mean_e, mean_o = sum_e / x_energy, sum_o / x_energy
        energy = (even * mean_e + odd * mean_o - torch.abs(even * mean_o - odd * mean_e)).sum(dim=1, keepdim=True)
        median_e2n = _matlab_median((eo[:, 0].abs() ** 2).flatten(1))  # N
        noise_power = (-median_e2n / math.log(0.5)) / em_n[o]
        tau = torch.sqrt(noise_power * noise_factor[o] / 2.0)
        threshold = (tau * math.sqrt(math.pi / 2.0) + _K * torch.sqrt((2.0 - math.pi / 2.0) * tau**2)) / 1.7
        energy_all += torch.clamp(energy - threshold.view(-1, 1, 1, 1), min=0.0)
        an_all += eo.abs().sum(dim=1, keepdim=True)
    return energy_all / an_all


def _scharr(dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    dx = torch.tensor([[3.0, 0.0, -3.0], [10.0, 0.0, -10.0], [3.0, 0.0, -3.0]], dtype=dtype, device=device) / 16.0
    dy = torch.tensor([[3.0, 10.0, 3.0], [0.0, 0.0, 0.0], [-3.0, -10.0, -3.0]], dtype=dtype, device=device) / 16.0
    return dx, dy


def _features(batch: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """[0, 1] RGB → reduced Y, I, Q planes, phase congruency and gradient magnitude of Y."""
    levels = quantize(batch, dtype)
    yiq = torch.tensor(_YIQ, dtype=dtype, device=batch.device)
    planes = torch.einsum("kc,nchw->nkhw", yiq, levels)
    planes = average_downsample(planes, downsample_factor(*batch.shape[-2:]))
    y, i, q = planes.split(1, dim=1)
    dx, dy = _scharr(dtype, batch.device)
    gradient = torch.sqrt(conv2_same(y, dx) ** 2 + conv2_same(y, dy) ** 2)
    return y, i, q, phase_congruency(y), gradient


def _prepare(ref: torch.Tensor, precise: bool, chromatic: bool) -> FSIMReference:
    ref_b = check_unit_batch(ref, "ref")
    height, width = ref_b.shape[-2:]
    if min(height, width) < FSIM_MIN_SIZE:
        raise ImageTooSmallError(f"FSIM needs images of at least {FSIM_MIN_SIZE}×{FSIM_MIN_SIZE} pixels, got "
                                 f"{width}×{height}. Use larger images.")
    y, i, q, pc, gradient = _features(ref_b, work_dtype(ref_b, precise))
    return FSIMReference(y, i, q, pc, gradient, ref_b.shape, chromatic, out_dtype(ref_b))


@torch.no_grad()
def prepare_reference(ref: torch.Tensor, ctx: MetricContext | None = None) -> FSIMReference:
    """What FSIMc needs of the reference (its reduced YIQ planes, phase congruency and
    gradient), computed once."""
    ctx = ctx or MetricContext()
    return _prepare(ref, ctx.precise, chromatic=True)


def _real_power(base: torch.Tensor, exponent: float) -> torch.Tensor:
    """MATLAB ``real(base .^ exponent)``: a negative base has the principal complex power."""
    magnitude = base.abs() ** exponent
    return torch.where(base < 0, magnitude * math.cos(math.pi * exponent), magnitude)


def _fsim(prepared: FSIMReference, dist: torch.Tensor) -> FSIMResult:
    device = prepared.y.device
    dist_b = check_dist(torch.empty(prepared.shape, device="meta"), dist).to(device)
    _, i2, q2, pc2, g2 = _features(dist_b, prepared.y.dtype)
    pc1, g1 = prepared.pc, prepared.gradient
    pc_sim = (2.0 * pc1 * pc2 + T1) / (pc1**2 + pc2**2 + T1)
    g_sim = (2.0 * g1 * g2 + T2) / (g1**2 + g2**2 + T2)
    pc_max = torch.maximum(pc1, pc2)
    local = g_sim * pc_sim
    if prepared.chromatic:
        i1, q1 = prepared.i, prepared.q
        i_sim = (2.0 * i1 * i2 + T3) / (i1**2 + i2**2 + T3)
        q_sim = (2.0 * q1 * q2 + T4) / (q1**2 + q2**2 + T4)
        local = local * _real_power(i_sim * q_sim, LAMBDA)
    value = (local * pc_max).sum(dim=(1, 2, 3)) / pc_max.sum(dim=(1, 2, 3))
    return FSIMResult(value.to(prepared.out_dtype), local.to(prepared.out_dtype))


@torch.no_grad()
def score(prepared: FSIMReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> MetricScore:
    """FSIMc of each image in ``dist`` against the prepared reference, with the local similarity map."""
    result = _fsim(prepared, dist)
    want_map = ctx is None or ctx.spatial
    return MetricScore(values=result.value.float().cpu(), map=result.map.float().cpu() if want_map else None)


@torch.no_grad()
def fsim(ref: torch.Tensor, dist: torch.Tensor, chromatic: bool = True, return_map: bool = False,
         precise: bool = True) -> torch.Tensor | FSIMResult:
    """Feature similarity (Zhang et al. 2011), one value per image (shape N).

    Higher = more similar, 1 = identical. ``chromatic=True`` gives FSIMc (what ``FeatureSIM.m``
    reports for colour images as its second value), ``False`` FSIM on the luma alone. The map
    (``return_map=True``) is the local similarity S_L at the reduced size (⌈H/F⌉×⌈W/F⌉ with
    F = round(min(H, W)/256)), which the score averages weighted by the larger phase congruency.
    Images must be at least 8×8. ``precise=False`` computes in float32.

    >>> ref = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> round(fsim(ref, ref).item(), 6)
    1.0
    """
    check_dist(check_unit_batch(ref, "ref"), dist)
    result = _fsim(_prepare(ref, precise, chromatic), dist)
    return result if return_map else result.value
