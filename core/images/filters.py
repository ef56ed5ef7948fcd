"""Separable filtering for image batches, as shifted multiply-adds.

On the CPU, PyTorch's depthwise ``conv2d`` (oneDNN) took 15–25 ms for a Gaussian blur of a
3×512×512 image on this project's 2-core machine; the same correlation written as one
multiply-add per tap takes 2–5 ms and gives the same numbers, tap order included
(``python -m bench.move`` shows the distortion stage). Used by the distortions and by the
MATLAB-style filters of the classic metrics (SSIM itself runs compiled kernels on the CPU).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def correlate_valid(x: torch.Tensor, taps: Sequence[float], dim: int) -> torch.Tensor:
    """``sum_k taps[k] * x[..., k : k + n]`` along ``dim``: a 'valid' 1-D correlation.

    The output is ``len(taps) - 1`` shorter than ``x`` along ``dim``; pad first for a 'same' size.

    >>> x = torch.arange(5.0).view(1, 1, 1, 5)
    >>> correlate_valid(x, [0.25, 0.5, 0.25], -1)
    tensor([[[[1., 2., 3.]]]])
    """
    if len(taps) == 0 or len(taps) > x.shape[dim]:
        raise ValueError(f"need 1 to {x.shape[dim]} taps along dim {dim}, got {len(taps)}")
    n = x.shape[dim] - len(taps) + 1
    out = x.narrow(dim, 0, n) * taps[0]
    for k in range(1, len(taps)):
        out.add_(x.narrow(dim, k, n), alpha=float(taps[k]))
    return out
