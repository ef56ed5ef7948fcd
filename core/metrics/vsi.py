"""VSI (Zhang, Shen & Li 2014): the visual saliency-induced index.

Conventions follow the authors' ``VSI.m`` (Lin Zhang, Tongji University, 2013) with the SDSP
saliency model it embeds (``SDSP(image, sigmaF, omegaF, sigmaD, sigmaC)``, Zhang, Gu & Li,
ICIP 2013), on the 8-bit RGB planes as doubles (0..255):

- saliency (SDSP): each plane resized to 256×256 by MATLAB ``imresize(..., 'bilinear')``, which
  *antialiases* when it shrinks (a triangle widened by 1/scale) and mirrors at the borders; the
  script's own ``RGB2Lab`` (sRGB → XYZ with the sRGB matrix, then Lab against the D50 white
  0.9642 / 1 / 0.8251, ε = 0.008856, κ = 903.3); the frequency prior: a log-Gabor filter
  (ω0 = 0.021, σF = 1.34, zero beyond radius 0.5) on L, a and b, combined as
  √(L'² + a'² + b'²); the location prior exp(-‖x - c‖²/σD²), σD = 145, about the centre
  (128, 128) of 1-based pixel coordinates; the colour prior 1 - exp(-(â² + b̂²)/σC²), σC = 0.001,
  with â, b̂ min-max normalized per image; their product resized back by ``imresize`` and
  stretched to [0, 1] by ``mat2gray``;
- the opponent colour space L = .06R + .63G + .27B, M = .30R + .04G - .35B, N = .34R - .60G + .17B;
- L, M, N and both saliency maps shrunk by ``F = max(1, round(min(H, W) / 256))`` as in FSIM
  (an F×F average by ``conv2 'same'``, zero padded, then every F-th pixel);
- Scharr gradients ``[3 0 -3; 10 0 -10; 3 0 -3]/16`` of L by ``conv2 'same'`` (zero padded);
- C1 = 1.27 (saliency), C2 = 386 (gradient), C3 = 130 (chroma), α = 0.40, λ = 0.020, and the
  local similarity S = S_GM^α · S_VS · real((S_M S_N)^λ), pooled as Σ S·VS_m / Σ VS_m with
  VS_m = max(VS_ref, VS_dist).

Where ``VSI.m`` returns NaN this module returns a number (each case is a division 0/0 that real
photographs never reach): an image whose a (or b) channel is constant after the resize (any grey
image, R = G = B) gets 0 for that normalized channel instead of NaN, and a pair in which
neither image has any saliency (both flat) is pooled with equal weights (so identical flat
images score 1).

Where the popular port differs (piq 0.8.0 ``vsi``; pyiqa 0.1.16's ``vsi_arch.py`` is a copy of
it and gives the same values to 6 decimals at 256×256): it resizes to 256×256 with
``interpolate(..., 'bilinear', align_corners=False)`` (no antialiasing, so images larger than
256 px are sampled rather than averaged) and back with ``align_corners=True`` (corner pixels
aligned, not pixel centres); it shrinks by F with replicate padding and plain average pooling
instead of the zero-padded ``conv2 'same'`` box;
its Lab uses the D50 white 0.96421 / 1 / 0.82519; it adds machine epsilon to every min-max
normalization and to both sums of the pooling; and it takes float input unrounded (this module
rounds to the 8 bits a file stores). At 256×256 (where both resizes are the identity) the two
agree to about 1e-7 on photographs; at 400×400 they differ by about 1e-4, the antialiasing.
This module follows ``VSI.m``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from ..errors import ImageTooSmallError
from ..images.tensors import check_dist, check_unit_batch
from ._levels import out_dtype, shared_levels, work_dtype
from ._matlab import average_downsample, conv2_same
from .catalog import VSI_MIN_SIZE
from .fsim import downsample_factor
from .registry import MetricContext, MetricScore

__all__ = ["VSI_MIN_SIZE", "VSIReference", "VSIResult", "imresize_matrix", "prepare_reference", "saliency", "score",
           "vsi"]

# VSI.m's constants (all marked "fixed" there).
C_VS, C_GM, C_CHROMA, ALPHA, LAMBDA = 1.27, 386.0, 130.0, 0.40, 0.020
SIGMA_F, OMEGA_0, SIGMA_D, SIGMA_C = 1.34, 0.021, 145.0, 0.001
SALIENCY_SIZE = 256  # SDSP computes its priors on a 256×256 copy
_LMN = ((0.06, 0.63, 0.27), (0.30, 0.04, -0.35), (0.34, -0.60, 0.17))
_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750),
               (0.0193339, 0.1191920, 0.9503041))
_WHITE_D50 = (0.9642, 1.0, 0.8251)


@dataclass(frozen=True)
class VSIReference:
    """The reference after VSI.m's reduction: its saliency map, gradient magnitude and the M, N
    chroma planes (each N×1×h×w at the reduced size), and what they were made under."""

    saliency: torch.Tensor
    gradient: torch.Tensor
    m: torch.Tensor
    n: torch.Tensor
    shape: torch.Size
    out_dtype: torch.dtype


@dataclass(frozen=True)
class VSIResult:
    """VSI values (N,) and the local similarity map S = S_GM^α · S_VS · S_C (N×1×h×w at the
    reduced size, 1 = same), which the value averages weighted by the larger saliency."""

    value: torch.Tensor
    map: torch.Tensor


def _triangle(x: torch.Tensor) -> torch.Tensor:
    """MATLAB imresize's bilinear kernel: (1 + x) on [-1, 0), (1 - x) on [0, 1]."""
    return ((x + 1) * ((x >= -1) & (x < 0)) + (1 - x) * ((x >= 0) & (x <= 1))).to(x.dtype)


@functools.lru_cache(maxsize=16)
def _imresize_matrix_cpu(in_length: int, out_length: int) -> torch.Tensor:
    scale = out_length / in_length
    width = 2.0
    if scale < 1:  # antialiasing: the kernel stretched by 1/scale (and lowered to keep its area)
        width = width / scale
    u = torch.arange(1, out_length + 1, dtype=torch.float64) / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]  # 1-based, may leave the image
    distance = u[:, None] - indices
    weights = scale * _triangle(scale * distance) if scale < 1 else _triangle(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Out-of-range indices mirror into the image: aux = [1:n, n:-1:1], index mod 2n.
    wrapped = torch.remainder(indices.long() - 1, 2 * in_length)
    source = torch.where(wrapped < in_length, wrapped, 2 * in_length - 1 - wrapped)
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    matrix.scatter_add_(1, source, weights)
    return matrix


def imresize_matrix(in_length: int, out_length: int, dtype: torch.dtype = torch.float64,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """MATLAB ``imresize(..., 'bilinear')`` along one axis as an out×in matrix (antialiased when
    shrinking, borders mirrored), so ``R_rows @ x @ R_colsᵀ`` resizes an image.

    >>> imresize_matrix(4, 2)  # halving: a triangle four pixels wide, the border pixel mirrored
    tensor([[0.5000, 0.3750, 0.1250, 0.0000],
            [0.0000, 0.1250, 0.3750, 0.5000]], dtype=torch.float64)
    """
    return _imresize_matrix_cpu(in_length, out_length).to(dtype=dtype, device=device)


def _imresize(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Resize the last two dimensions of ``x`` to rows×cols as MATLAB ``imresize`` (bilinear)."""
    r = imresize_matrix(x.shape[-2], rows, x.dtype, x.device)
    c = imresize_matrix(x.shape[-1], cols, x.dtype, x.device)
    return r @ x @ c.T


def _rgb2lab(rgb: torch.Tensor) -> torch.Tensor:
    """SDSP's ``RGB2Lab`` on N×3×H×W values in 0..255 (sRGB curve, the sRGB matrix, D50 white)."""
    v = rgb / 255.0
    linear = torch.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    matrix = torch.tensor(_RGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device)
    white = torch.tensor(_WHITE_D50, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    xyz = torch.einsum("kc,nchw->nkhw", matrix, linear) / white
    f = torch.where(xyz > 0.008856, xyz.clamp(min=0) ** (1.0 / 3.0), (903.3 * xyz + 16.0) / 116.0)
    fx, fy, fz = f.unbind(dim=1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


@functools.lru_cache(maxsize=2)
def _priors_cpu() -> tuple[torch.Tensor, torch.Tensor]:
    """SDSP's log-Gabor filter (frequency prior) and centre prior on the 256×256 grid."""
    n = SALIENCY_SIZE
    u = (torch.arange(1, n + 1, dtype=torch.float64) - (n // 2 + 1)) / (n - n % 2)
    u2, u1 = torch.meshgrid(u, u, indexing="ij")  # u1 varies along columns, u2 along rows
    inside = (u1**2 + u2**2) <= 0.25
    radius = torch.fft.ifftshift(torch.sqrt(u1**2 + u2**2) * inside)
    radius[0, 0] = 1.0
    # log(0) = -inf and exp(-inf) = 0: the masked frequencies get 0, written out here.
    safe = torch.where(radius > 0, radius, torch.ones_like(radius))
    log_gabor = torch.where(radius > 0, torch.exp(-(torch.log(safe / OMEGA_0) ** 2) / (2 * SIGMA_F**2)),
                            torch.zeros_like(radius))
    log_gabor[0, 0] = 0.0
    coords = torch.arange(1, n + 1, dtype=torch.float64) - n / 2
    centre = torch.exp(-(coords[:, None] ** 2 + coords[None, :] ** 2) / SIGMA_D**2)
    return log_gabor, centre


def _min_max(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.amin(dim=(-2, -1), keepdim=True), x.amax(dim=(-2, -1), keepdim=True)


def _normalized(x: torch.Tensor) -> torch.Tensor:
    """(x - min) / (max - min) per plane; a constant plane gives 0 (VSI.m: 0/0 = NaN)."""
    low, high = _min_max(x)
    span = high - low
    return torch.where(span > 0, (x - low) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(x))


def _mat2gray(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``mat2gray``: min-max to [0, 1]; a constant plane is returned clipped to [0, 1]."""
    low, high = _min_max(x)
    span = high - low
    stretched = (x - low) / torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, stretched, x).clamp(0.0, 1.0)


def saliency(levels: torch.Tensor) -> torch.Tensor:
    """SDSP saliency as ``VSI.m`` computes it, for N×3×H×W RGB levels (0..255): N×1×H×W in [0, 1]."""
    height, width = levels.shape[-2:]
    log_gabor, centre = (t.to(dtype=levels.dtype, device=levels.device) for t in _priors_cpu())
    lab = _rgb2lab(_imresize(levels, SALIENCY_SIZE, SALIENCY_SIZE))
    filtered = torch.fft.ifft2(torch.fft.fft2(lab) * log_gabor).real
    frequency = torch.sqrt((filtered**2).sum(dim=1, keepdim=True))
    a, b = _normalized(lab[:, 1:2]), _normalized(lab[:, 2:3])
    colour = 1.0 - torch.exp(-(a**2 + b**2) / SIGMA_C**2)
    small = frequency * centre * colour
    return _mat2gray(_imresize(small, height, width))


def _scharr(dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    dx = torch.tensor([[3.0, 0.0, -3.0], [10.0, 0.0, -10.0], [3.0, 0.0, -3.0]], dtype=dtype, device=device) / 16.0
    return dx, dx.T.contiguous()


def _features(batch: torch.Tensor, dtype: torch.dtype, scratch: dict | None) -> tuple[torch.Tensor, ...]:
    """[0, 1] RGB → reduced saliency, gradient magnitude of L, and the M and N planes."""
    levels = shared_levels(batch, dtype, scratch)
    lmn = torch.einsum("kc,nchw->nkhw", torch.tensor(_LMN, dtype=dtype, device=batch.device), levels)
    factor = downsample_factor(*batch.shape[-2:])
    vs = average_downsample(saliency(levels), factor)
    lum, m, n = average_downsample(lmn, factor).split(1, dim=1)
    dx, dy = _scharr(dtype, batch.device)
    gradient = torch.sqrt(conv2_same(lum, dx) ** 2 + conv2_same(lum, dy) ** 2)
    return vs, gradient, m, n


def _check_size(ref: torch.Tensor) -> None:
    height, width = ref.shape[-2:]
    if min(height, width) < VSI_MIN_SIZE:
        raise ImageTooSmallError(f"VSI needs images of at least {VSI_MIN_SIZE}×{VSI_MIN_SIZE} pixels, got "
                                 f"{width}×{height}. Use larger images.")


def _prepare(ref: torch.Tensor, precise: bool, scratch: dict | None = None) -> VSIReference:
    ref_b = check_unit_batch(ref, "ref")
    _check_size(ref_b)
    vs, gradient, m, n = _features(ref_b, work_dtype(ref_b, precise), scratch)
    return VSIReference(vs, gradient, m, n, ref_b.shape, out_dtype(ref_b))


@torch.no_grad()
def prepare_reference(ref: torch.Tensor, ctx: MetricContext | None = None) -> VSIReference:
    """What VSI needs of the reference (its saliency, gradient and chroma at the reduced size),
    computed once."""
    ctx = ctx or MetricContext()
    return _prepare(ref, ctx.precise, ctx.scratch)


def _real_power(base: torch.Tensor, exponent: float) -> torch.Tensor:
    """MATLAB ``real(base .^ exponent)``: a negative base has the principal complex power."""
    magnitude = base.abs() ** exponent
    return torch.where(base < 0, magnitude * math.cos(math.pi * exponent), magnitude)


def _similarity(a: torch.Tensor, b: torch.Tensor, constant: float) -> torch.Tensor:
    return (2.0 * a * b + constant) / (a**2 + b**2 + constant)


def _vsi(prepared: VSIReference, dist: torch.Tensor, scratch: dict | None = None) -> VSIResult:
    device = prepared.saliency.device
    dist_b = check_dist(torch.empty(prepared.shape, device="meta"), dist).to(device)
    vs2, g2, m2, n2 = _features(dist_b, prepared.saliency.dtype, scratch)
    vs1 = prepared.saliency
    local = (_similarity(prepared.gradient, g2, C_GM) ** ALPHA * _similarity(vs1, vs2, C_VS)
             * _real_power(_similarity(prepared.m, m2, C_CHROMA) * _similarity(prepared.n, n2, C_CHROMA), LAMBDA))
    weight = torch.maximum(vs1, vs2)
    total = weight.sum(dim=(1, 2, 3))
    weighted = (local * weight).sum(dim=(1, 2, 3)) / torch.where(total > 0, total, torch.ones_like(total))
    # Neither image salient anywhere (both flat): VSI.m divides 0 by 0; pool with equal weights.
    value = torch.where(total > 0, weighted, local.mean(dim=(1, 2, 3)))
    return VSIResult(value.to(prepared.out_dtype), local.to(prepared.out_dtype))


@torch.no_grad()
def score(prepared: VSIReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> MetricScore:
    """VSI of each image in ``dist`` against the prepared reference, with the local similarity map."""
    result = _vsi(prepared, dist, ctx.scratch if ctx is not None else None)
    want_map = ctx is None or ctx.spatial
    return MetricScore(values=result.value.float().cpu(), map=result.map.float().cpu() if want_map else None)


@torch.no_grad()
def vsi(ref: torch.Tensor, dist: torch.Tensor, return_map: bool = False,
        precise: bool = True) -> torch.Tensor | VSIResult:
    """Visual saliency-induced index (Zhang, Shen & Li 2014), one value per image (shape N).

    Higher = more similar, 1 = identical. Computed as ``VSI.m`` does on the 8-bit RGB image (see
    the module docstring for its conventions and how piq differs). ``return_map=True`` also
    returns the local similarity map at the reduced size (⌈H/F⌉×⌈W/F⌉, F = round(min(H, W)/256)),
    which the value averages weighted by the larger of the two saliency maps. Images must be at
    least 8×8. ``precise=False`` computes in float32.

    >>> ref = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> round(vsi(ref, ref).item(), 6)
    1.0
    >>> vsi(ref, ref.flip(-1)).item() < 1
    True
    """
    check_dist(check_unit_batch(ref, "ref"), dist)
    result = _vsi(_prepare(ref, precise), dist)
    return result if return_map else result.value
