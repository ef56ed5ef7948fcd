"""MS-SSIM (Wang, Simoncelli & Bovik 2003): SSIM's contrast-structure term over five scales.

Conventions are those of Wang's reference ``msssim.m`` (checked line by line against it): the
grey image as doubles (here MATLAB ``rgb2gray`` of the 8-bit RGB, rounded, as ``ssim_index.m``'s
users call it; ``msssim.m`` itself takes a grey image), at every scale ``ssim_index_new`` with
``fspecial('gaussian', 11, 1.5)``, K = [0.01 0.03], L = 255 and ``'valid'`` filtering; between
scales ``imfilter(im, ones(2)/4, 'symmetric', 'same')`` then ``im(1:2:end, 1:2:end)``, i.e. a
2×2 mean whose odd last row/column is averaged with its mirror (itself), never with zeros; the
result ``prod(mcs(1:4) .^ w(1:4)) * mssim(5) ^ w(5)`` with Table 1's weights. One addition: a
negative term is clamped to 0 before its fractional power (MATLAB would return a complex number).

Where the popular ports differ: piq's ``multi_scale_ssim`` and pytorch_msssim downsample by
``avg_pool2d`` with *zero* padding on odd sides, which darkens the last row/column of every odd
scale; on a 300×451 photo that moves MS-SSIM in the fourth decimal (third on noisy RGB pairs).
On sides that stay even at every scale (e.g. 256, 512) they agree with this module to 1e-8.

Published values: the MS-SSIM numbers pyiqa's calibration table gives for "the original MATLAB
script" on five TID2013 pairs (0.6733, 0.9996, 0.9998, 0.9566, 0.8462) come from ``msssim.m``'s
*other* pooling, ``method = 'wtd_sum'`` (weights normalized to sum 1, the scales' mcs and the
last mssim added): with everything else as here it reproduces all five to their four decimals
(max difference 3.4e-5). This module keeps ``method = 'product'``, the paper's eq. 7 and
``msssim.m``'s default, which is 4.4e-3 below on I19 (0.8418) and 3.3e-3 on I03 (0.6700). No
variant of the product comes closer (unrounded luma 4.3e-3, ``ssim.m``'s automatic downsampling
6.0e-3, zero-padded or bicubic downsampling ≥ 1.2e-2, padded SSIM maps 1.4e-2, YCbCr Y 2.4e-2):
the table is in docs/metrics.md, and ``tests/test_metrics_ms_ssim.py`` rechecks it when the pairs
are at hand.
"""

from __future__ import annotations

import torch

from ..images.tensors import check_dist, check_unit_batch
from .registry import MetricContext, MetricScore
from .catalog import MS_SSIM_MIN_SIZE
from .ssim import (SSIM_WINDOW, SSIMMode, SSIMReference, check_mode, dist_planes, downsample, first_scale_maps,
                   moments_maps, prepare_planes)

__all__ = ["MS_SSIM_MIN_SIZE", "MS_SSIM_WEIGHTS", "ms_ssim", "prepare_reference", "score"]

# Wang, Simoncelli & Bovik (2003), Table 1: finest scale first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _ms_ssim(prepared: SSIMReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> torch.Tensor:
    y = dist_planes(prepared, dist, ctx)
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=y.dtype, device=y.device)
    terms = []
    for scale, ref in enumerate(prepared.scales):
        last = scale == len(MS_SSIM_WEIGHTS) - 1
        if scale == 0:  # the finest scale is SSIM's own: shared with it within one compare call
            ssim_map, cs_map = first_scale_maps(prepared, y, ctx)
        else:
            y = downsample(y)
            ssim_map, cs_map = moments_maps(ref, y)
        terms.append((ssim_map if last else cs_map).mean(dim=(2, 3)))
    stacked = torch.stack(terms).clamp(min=0.0)  # scales × N × C
    per_channel = stacked.pow(weights.view(-1, 1, 1)).prod(dim=0)
    return per_channel.mean(dim=1).to(prepared.out_dtype)


@torch.no_grad()
def ms_ssim(ref: torch.Tensor, dist: torch.Tensor, mode: SSIMMode = "reference", precise: bool = True) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003), one value per image (shape N).

    Five scales with weights ``MS_SSIM_WEIGHTS``, 2×2 mean downsampling between them and the
    window and constants of :func:`~core.metrics.ssim.ssim`; on the 8-bit luma
    (``"reference"``) or per RGB channel, averaged (``"rgb"``). The result is
    ``prod(cs_1..cs_4 ** w_1..w_4) * ssim_5 ** w_5``, each term the mean of its map.
    A term below zero (anti-correlated images) is clamped to 0 before the fractional power,
    as pytorch_msssim does, so the result is 0 rather than NaN. The short side must be at
    least 176 px (11 · 2⁴), so that the coarsest scale holds one window. ``precise`` as in
    :func:`~core.metrics.ssim.ssim`.

    >>> ref = torch.rand(1, 3, 176, 176, generator=torch.Generator().manual_seed(0))
    >>> ms_ssim(ref, ref).item()
    1.0
    """
    check_mode(mode)
    check_dist(check_unit_batch(ref, "ref"), dist)
    return _ms_ssim(prepare_planes(ref, mode, precise, MS_SSIM_MIN_SIZE, "MS-SSIM", len(MS_SSIM_WEIGHTS)), dist)


@torch.no_grad()
def prepare_reference(ref: torch.Tensor, ctx: MetricContext | None = None) -> SSIMReference:
    """What MS-SSIM needs of the reference (its 8-bit planes), computed once."""
    ctx = ctx or MetricContext()
    return prepare_planes(ref, ctx.ssim_mode, ctx.precise, MS_SSIM_MIN_SIZE, "MS-SSIM", len(MS_SSIM_WEIGHTS),
                          scratch=ctx.scratch)


@torch.no_grad()
def score(prepared: SSIMReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> MetricScore:
    """MS-SSIM of each image in ``dist`` against the prepared reference (no map)."""
    return MetricScore(values=_ms_ssim(prepared, dist, ctx).float().cpu())
