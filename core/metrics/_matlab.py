"""MATLAB's filtering rules, for metrics whose reference release is MATLAB code.

The classic full-reference metrics were published as MATLAB scripts, and their numbers depend
on how those scripts filter: ``conv2(x, h, 'same')`` pads with zeros (so borders darken),
``filter2(h, x, 'valid')`` keeps only the pixels where the window fits, and
``fspecial('average', F)`` followed by ``x(1:F:end, 1:F:end)`` is how FSIM and GMSD shrink an
image. These helpers reproduce those rules on N×C×H×W tensors, so that each metric module reads
like the MATLAB it follows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..images.filters import correlate_valid

__all__ = ["average_downsample", "conv2_same", "filter2_valid", "gaussian_window"]


def gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The 1-D factor of ``fspecial('gaussian', size, sigma)`` (normalized; its outer product is
    the 2-D window, whose ``eps``-cut never bites at the sizes used here)."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    kernel = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def _depthwise(x: torch.Tensor, kernel: torch.Tensor, padding: tuple[int, int, int, int] | None) -> torch.Tensor:
    """Correlate every channel of ``x`` (N×C×H×W) with the 2-D ``kernel`` (kh×kw)."""
    n, c, h, w = x.shape
    flat = x.reshape(n * c, 1, h, w)
    if padding is not None:
        flat = F.pad(flat, padding)
    out = F.conv2d(flat, kernel.to(x.dtype).view(1, 1, *kernel.shape))
    return out.reshape(n, c, *out.shape[-2:])


def conv2_same(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """MATLAB ``conv2(x, kernel, 'same')`` on each channel: a true convolution (the kernel is
    flipped), zero padding, output the size of ``x`` (its centre chosen as MATLAB does for even
    kernels: ``floor(k/2)`` rows after the first of the full result)."""
    kh, kw = kernel.shape
    top, left = kh - 1 - kh // 2, kw - 1 - kw // 2
    return _depthwise(x, kernel.flip(0, 1), (left, kw // 2, top, kh // 2))


def filter2_valid(x: torch.Tensor, window_1d: torch.Tensor) -> torch.Tensor:
    """MATLAB ``filter2(w, x, 'valid')`` for a separable window ``w = g gᵀ``: correlation, only
    where the window fits (the output is ``len(g) - 1`` pixels smaller per axis)."""
    if x.device.type != "cpu":
        x = _depthwise(x, window_1d.view(1, -1), None)
        return _depthwise(x, window_1d.view(-1, 1), None)
    # On the CPU, shifted multiply-adds beat PyTorch's depthwise convolution (no fast float64
    # kernel) several times over and give the same sums (as SSIM's filter does).
    taps = [float(v) for v in window_1d.double().cpu()]
    return correlate_valid(correlate_valid(x, taps, -1), taps, -2)


def average_downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``conv2(x, fspecial('average', F), 'same')`` then ``x(1:F:end, 1:F:end)``: the F×F box
    whose ``'same'`` alignment puts ``F//2`` zero rows after the image and ``F-1-F//2`` before it,
    so an odd last row is averaged with zeros (dimmed), as in FSIM's and GMSD's MATLAB code."""
    if factor <= 1:
        return x
    before, after = factor - 1 - factor // 2, factor // 2
    padded = F.pad(x, (before, after, before, after))
    # Stride-F pooling of the padded image is the stride-1 box filter sampled at 0, F, 2F, ...
    return F.avg_pool2d(padded, kernel_size=factor, stride=factor, ceil_mode=False)


def valid_size(size: int, window: int) -> int:
    """Side of a ``'valid'`` filtering result (0 when the window does not fit)."""
    return max(size - window + 1, 0)


def every_other(size: int) -> int:
    """Length of ``x(1:2:end)``."""
    return math.ceil(size / 2) if size > 0 else 0
