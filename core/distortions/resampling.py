"""Resampling distortions: downscaling and upscaling back, which loses detail finer than the small size."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .spec import Param, _register


@_register(
    "resample",
    "Down- and upsampling",
    "resampling",
    "Shrinks then enlarges the picture: detail finer than the small size is gone; the method "
    "trades jaggies for softness.",
    (
        Param("factor", "Downscale factor", 1.0, 8.0, 0.25, 4.0, 1.0, "×",
              help="The image is shrunk by this factor, then scaled back to its size."),
        Param("method", "Interpolation", None, None, None, "bilinear", None, "", kind="choice",
              choices=("nearest", "bilinear", "bicubic"),
              help="Used both ways; bilinear and bicubic low-pass (antialias) when shrinking."),
    ),
)
def resample(
    image: torch.Tensor, factor: float, method: str = "bilinear", *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Downscale by ``factor`` and upscale back to the original size with ``method``.

    >>> x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> resample(x, 4.0, "nearest").unique().numel() <= 3 * 16  # 4×4 blocks of 16 colours
    True
    """
    h, w = image.shape[-2:]
    small = (max(1, round(h / factor)), max(1, round(w / factor)))
    if method == "nearest":
        # "nearest-exact" samples pixel centres; plain "nearest" is biased towards the top-left.
        down = F.interpolate(image, size=small, mode="nearest-exact")
        return F.interpolate(down, size=(h, w), mode="nearest-exact")
    down = F.interpolate(image, size=small, mode=method, align_corners=False, antialias=True)
    return F.interpolate(down, size=(h, w), mode=method, align_corners=False)
