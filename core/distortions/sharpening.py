"""Sharpening distortions: unsharp masking, which exaggerates edges."""

from __future__ import annotations

import torch

from ._ops import _blur
from .spec import Param, _register


@_register(
    "unsharp",
    "Unsharp mask (sharpen)",
    "sharpening",
    "Exaggerates edges: it can look crisper to people, yet every metric counts it as a "
    "departure from the reference.",
    (
        Param("amount", "Amount", 0.0, 3.0, 0.1, 1.0, 0.0, "×",
              help="How much of the detail layer (image − blurred image) is added back."),
        Param("radius", "Radius σ", 0.5, 5.0, 0.1, 1.5, None, "px",
              help="Gaussian σ that defines what counts as detail."),
    ),
)
def unsharp(
    image: torch.Tensor, amount: float, radius: float = 1.5, *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Unsharp masking: ``image + amount * (image - gaussian_blur(image, radius))``.

    >>> x = torch.tensor([0.4, 0.4, 0.6, 0.6]).view(1, 1, 1, 4).expand(1, 3, 4, 4)
    >>> y = unsharp(x, 1.0, 1.0)[0, 0, 0]
    >>> bool(y[1] < 0.4 and y[2] > 0.6)  # overshoot on both sides of the edge
    True
    """
    return image + amount * (image - _blur(image, radius))
