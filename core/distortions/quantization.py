"""Quantization distortions: fewer bits per channel (posterize), which bands smooth gradients."""

from __future__ import annotations

import torch

from .spec import Param, _register


@_register(
    "posterize",
    "Posterize (bit depth)",
    "quantization",
    "Keeps fewer bits per channel: smooth gradients turn into bands with false contours.",
    (
        Param("bits", "Bits per channel", 2, 8, 1, 3, 8, "bits", kind="int",
              help="8 = unchanged (256 levels), 4 = 16 levels, 2 = 4 levels."),
    ),
)
def posterize(image: torch.Tensor, bits: int, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Keep the top ``bits`` bits of each 8-bit channel value, like ``PIL.ImageOps.posterize``.

    >>> x = torch.linspace(0, 1, 256).view(1, 1, 1, 256).expand(1, 3, 1, 256)
    >>> posterize(x, 2).unique().mul(255).round().tolist()
    [0.0, 64.0, 128.0, 192.0]
    """
    levels = image.mul(255.0).round_().to(torch.int32)
    mask = 256 - (1 << (8 - bits))
    return levels.bitwise_and_(mask).to(image.dtype).div_(255.0)
