"""The classic full-reference metrics: PSNR, SSIM and MS-SSIM, computed the way papers report them.

All three take a ``ref``/``dist`` pair of float N×3×H×W tensors in [0, 1] (see
:mod:`core.tensors`) and return one value per image, shape N. Both images are first
quantized to 8 bits, because published PSNR/SSIM numbers are measured on 8-bit files;
a float image and its saved PNG then score the same.

SSIM conventions (``mode="reference"``) follow Wang et al.'s ``ssim_index.m`` (2004):
MATLAB ``rgb2gray`` luma rounded to 8 bits, an 11×11 Gaussian window with σ = 1.5,
K1 = 0.01, K2 = 0.03, L = 255, and the mean of the SSIM map over the *valid* region
(no padding). The later ``ssim.m`` (2009) also downsamples by
``f = max(1, round(min(H, W) / 256))`` before filtering; that step is deliberately not
applied here, so large images are scored at full resolution. ``mode="rgb"`` applies the
same window to each 8-bit RGB channel and averages.

Computation runs on the inputs' device, in float64 (float32 only on Apple MPS, which has
no float64): the variance terms E[x²] - E[x]² of 0-255 data lose digits to cancellation,
about 1e-4 of SSIM in float32, and CUDA convolutions in float32 default to TF32, which
would lose far more. The filtering is small next to LPIPS, so float64 costs little even
on GPUs with slow float64. Nothing here tracks gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from .errors import ImageTooSmallError, InputShapeError
from .tensors import check_pair

__all__ = [
    "MS_SSIM_MIN_SIZE",
    "MS_SSIM_WEIGHTS",
    "SSIM_MIN_SIZE",
    "SSIMResult",
    "ms_ssim",
    "psnr",
    "ssim",
    "ssim_map_full_size",
]

SSIMMode = Literal["reference", "rgb"]

# MATLAB rgb2gray: the first row of inv([1 .956 .621; 1 -.272 -.647; 1 -1.106 1.703]),
# not the rounded Rec. 601 weights (0.299, 0.587, 0.114); they differ by one grey level on
# some pixels, which is enough to move SSIM in the fifth decimal.
MATLAB_LUMA = (0.298936021293775, 0.587043074451121, 0.114020904255103)

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_PEAK = 255.0
# The valid map loses (window - 1) / 2 pixels on every border.
SSIM_BORDER = (SSIM_WINDOW - 1) // 2
SSIM_MIN_SIZE = SSIM_WINDOW

# Wang, Simoncelli & Bovik (2003), Table 1: finest scale first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
# The coarsest of the five scales (four 2× reductions) must still hold one 11×11 window.
MS_SSIM_MIN_SIZE = SSIM_WINDOW * 2 ** (len(MS_SSIM_WEIGHTS) - 1)


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


def _work_dtype(image: torch.Tensor, precise: bool = True) -> torch.dtype:
    # float64 keeps the E[x²] - E[x]² variance terms exact enough to match the reference
    # implementations to 1e-6 on every device (float32 on CUDA would also hit TF32 convs).
    # precise=False trades that for speed on the CPU (about 5× faster, values within ~1e-5):
    # what an interactive view needs, where 4 decimals are shown.
    if image.device.type == "mps" or (not precise and image.device.type == "cpu"):
        return torch.float32
    return torch.float64


def _out_dtype(image: torch.Tensor) -> torch.dtype:
    # Half-precision results would round SSIM 0.9995 to 1.0; report at least float32.
    return torch.float64 if image.dtype == torch.float64 else torch.float32


def _quantize(image: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[0, 1] floats → 8-bit grey levels 0..255 (as floats), rounding like ``to_uint8``."""
    # Rounded in the input's precision: k/255 stored as float32 maps back to exactly k.
    return image.clamp(0.0, 1.0).mul(255.0).round().to(dtype)


def _matlab_luma(levels: torch.Tensor) -> torch.Tensor:
    """N×3×H×W 8-bit levels → N×1×H×W 8-bit luma, as MATLAB ``rgb2gray`` on uint8 input."""
    # MPS has no float64; elsewhere the weighted sum is formed in float64 so that the
    # rounding below falls on the same side as MATLAB's double arithmetic.
    dtype = torch.float32 if levels.device.type == "mps" else torch.float64
    weights = torch.tensor(MATLAB_LUMA, dtype=dtype, device=levels.device).view(1, 3, 1, 1)
    luma = (levels.to(dtype) * weights).sum(dim=1, keepdim=True)
    # MATLAB rounds halves away from zero (round() in torch rounds them to even).
    return torch.floor(luma + 0.5).clamp(0.0, 255.0).to(levels.dtype)


def _gaussian_1d(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # fspecial('gaussian', 11, 1.5) is the outer product of this normalized 1-D kernel.
    coords = torch.arange(SSIM_WINDOW, dtype=dtype, device=device) - SSIM_BORDER
    kernel = torch.exp(-(coords**2) / (2.0 * SSIM_SIGMA**2))
    return kernel / kernel.sum()


def _filter_valid(x: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filtering of every channel, 'valid' region only (no padding)."""
    channels = x.shape[1]
    g = _gaussian_1d(x.dtype, x.device)
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


_MID_GREY = 127.5


def _ssim_maps(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and contrast-structure maps (valid region) of N×C×H×W 0-255 images, per channel."""
    c1 = (SSIM_K1 * _PEAK) ** 2
    c2 = (SSIM_K2 * _PEAK) ** 2
    channels = x.shape[1]
    # Centring on mid-grey first shrinks E[x²] - E[x]² cancellation 4× (it matters in float32);
    # (co)variances are shift-invariant, and the means get the offset back below.
    x, y = x - _MID_GREY, y - _MID_GREY
    # One grouped convolution filters all five moments at once.
    moments = _filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1))
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.split(channels, dim=1)
    var_x, var_y, cov = e_xx - mu_x * mu_x, e_yy - mu_y * mu_y, e_xy - mu_x * mu_y
    mu_x, mu_y = mu_x + _MID_GREY, mu_y + _MID_GREY
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    cs_map = (2.0 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2.0 * mu_xy + c1) / (mu_xx + mu_yy + c1) * cs_map
    return ssim_map, cs_map


def _prepare(
    ref: torch.Tensor, dist: torch.Tensor, mode: str, min_size: int, metric: str, precise: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate the pair and return the 0-255 planes the SSIM family works on."""
    if mode not in ("reference", "rgb"):
        raise ValueError(f"`mode` must be 'reference' (MATLAB luma) or 'rgb' (per channel), got {mode!r}.")
    ref_b, dist_b = check_pair(ref, dist)
    height, width = ref_b.shape[-2:]
    if min(height, width) < min_size:
        raise ImageTooSmallError(
            f"{metric} needs images of at least {min_size}×{min_size} pixels, got {width}×{height}. "
            "Use larger images (or PSNR, which has no minimum size)."
        )
    ref_b, dist_b = torch.broadcast_tensors(ref_b, dist_b)
    dtype = _work_dtype(ref_b, precise)
    x, y = _quantize(ref_b, dtype), _quantize(dist_b, dtype)
    if mode == "reference":
        x, y = _matlab_luma(x), _matlab_luma(y)
    return x, y


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
        raise ValueError(
            f"`data_range` must be a positive number (1.0 for [0, 1] images), got {data_range!r}."
        )
    ref_b, dist_b = check_pair(ref, dist)
    dtype = _work_dtype(ref_b)
    if quantize:
        # The MSE of grey levels is 255² times that of [0, 1] values, so the peak scales too.
        x, y, peak = _quantize(ref_b, dtype), _quantize(dist_b, dtype), data_range * _PEAK
    else:
        x, y, peak = ref_b.to(dtype), dist_b.to(dtype), float(data_range)
    mse = (x - y).pow(2).mean(dim=(1, 2, 3))
    # Explicit inf instead of log10(peak²/0), which is inf in torch but trips numpy users.
    out = torch.where(mse > 0, 10.0 * torch.log10(peak**2 / mse), torch.full_like(mse, math.inf))
    return out.to(_out_dtype(ref_b))


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
    x, y = _prepare(ref, dist, mode, SSIM_MIN_SIZE, "SSIM", precise)
    ssim_map, _ = _ssim_maps(x, y)
    ssim_map = ssim_map.mean(dim=1, keepdim=True)
    value = ssim_map.mean(dim=(1, 2, 3)).to(_out_dtype(ref))
    if return_map:
        return SSIMResult(value=value, map=ssim_map.to(_out_dtype(ref)))
    return value


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
    raise ValueError(f"`fill` must be 'nan' or 'edge', got {fill!r}.")


def _downsample(x: torch.Tensor) -> torch.Tensor:
    """2×2 mean, as ``msssim.m``: imfilter(ones(2)/4, 'symmetric') then every other pixel."""
    # An odd last row/column is averaged with its mirror (itself) rather than with zeros,
    # which would darken the border the way zero-padded average pooling does.
    pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return F.avg_pool2d(x, kernel_size=2)


@torch.no_grad()
def ms_ssim(ref: torch.Tensor, dist: torch.Tensor, mode: SSIMMode = "reference", precise: bool = True) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003), one value per image (shape N).

    Five scales with weights ``MS_SSIM_WEIGHTS``, 2×2 mean downsampling between them and the
    window and constants of :func:`ssim`; on the 8-bit luma (``"reference"``) or per RGB
    channel, averaged (``"rgb"``). The result is
    ``prod(cs_1..cs_4 ** w_1..w_4) * ssim_5 ** w_5``, each term the mean of its map.
    A term below zero (anti-correlated images) is clamped to 0 before the fractional power,
    as pytorch_msssim does, so the result is 0 rather than NaN. The short side must be at
    least 176 px (11 · 2⁴), so that the coarsest scale holds one window. ``precise`` as in
    :func:`ssim`.

    >>> ref = torch.rand(1, 3, 176, 176, generator=torch.Generator().manual_seed(0))
    >>> ms_ssim(ref, ref).item()
    1.0
    """
    x, y = _prepare(ref, dist, mode, MS_SSIM_MIN_SIZE, "MS-SSIM", precise)
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=x.dtype, device=x.device)
    terms = []
    for scale in range(len(MS_SSIM_WEIGHTS)):
        ssim_map, cs_map = _ssim_maps(x, y)
        last = scale == len(MS_SSIM_WEIGHTS) - 1
        terms.append((ssim_map if last else cs_map).mean(dim=(2, 3)))
        if not last:
            x, y = _downsample(x), _downsample(y)
    stacked = torch.stack(terms).clamp(min=0.0)  # scales × N × C
    per_channel = stacked.pow(weights.view(-1, 1, 1)).prod(dim=0)
    return per_channel.mean(dim=1).to(_out_dtype(ref))
