"""Spatial distortions: shifts, rotation, ghosting and chromatic aberration, which move content rather than change it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._ops import _shift
from .spec import Param, _register


@_register(
    "translate",
    "Shift (translate)",
    "spatial",
    "Moves the whole picture a pixel or two: nothing is lost to the eye, yet every edge now "
    "mismatches, so PSNR collapses.",
    (
        Param("shift", "Shift", 0.0, 16.0, 0.25, 1.0, 0.0, "px",
              help="Distance moved in pixels; fractions interpolate bilinearly."),
        Param("direction", "Direction", 0.0, 360.0, 15.0, 0.0, None, "°",
              help="0° = right, 90° = up."),
    ),
)
def translate(
    image: torch.Tensor, shift: float, direction: float = 0.0, *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Move the image by ``shift`` pixels towards ``direction`` degrees (reflect padding at the borders).

    Whole-pixel shifts along an axis are exact copies; fractional ones interpolate bilinearly.

    >>> x = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 3, 1, 4) / 4
    >>> translate(x, 1.0)[0, 0, 0].tolist()  # the left border reflects
    [0.25, 0.0, 0.25, 0.5]
    """
    theta = math.radians(direction)
    return _shift(image, shift * math.cos(theta), -shift * math.sin(theta))


@_register(
    "rotate",
    "Rotation",
    "spatial",
    "A small rotation is barely visible, but pixels far from the centre move several pixels, "
    "so pixel-wise metrics punish it.",
    (
        Param("degrees", "Rotation", -10.0, 10.0, 0.5, 2.0, 0.0, "°",
              help="Counter-clockwise rotation about the image centre."),
    ),
)
def rotate(image: torch.Tensor, degrees: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Rotate counter-clockwise by ``degrees`` about the centre (bilinear, reflected borders).

    >>> x = torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(0))
    >>> rotate(x, 5.0).shape
    torch.Size([1, 3, 12, 16])
    """
    n, _, h, w = image.shape
    theta = math.radians(degrees)
    c, s = math.cos(theta), math.sin(theta)
    # affine_grid works in coordinates normalized to [-1, 1] per axis; the aspect-ratio
    # factors keep the rotation rigid on non-square images.
    mat = torch.tensor([[c, -s * h / w, 0.0], [s * w / h, c, 0.0]], dtype=image.dtype, device=image.device)
    grid = F.affine_grid(mat.expand(n, 2, 3), [n, 3, h, w], align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@_register(
    "ghosting",
    "Ghosting (echo)",
    "spatial",
    "Adds a faint shifted copy, like a TV echo: a structural error laid over an otherwise intact picture.",
    (
        Param("strength", "Ghost strength", 0.0, 0.5, 0.01, 0.3, 0.0, "",
              help="Weight of the shifted copy; 0.5 = both copies equally strong."),
        Param("offset", "Ghost offset", 0.0, 32.0, 0.5, 8.0, 0.0, "px",
              help="How far right the copy sits, in pixels."),
    ),
)
def ghosting(
    image: torch.Tensor, strength: float, offset: float = 8.0, *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Blend in a copy shifted right by ``offset`` pixels with weight ``strength``.

    >>> x = torch.rand(1, 3, 8, 16, generator=torch.Generator().manual_seed(0))
    >>> torch.equal(ghosting(x, 0.3, 0.0), x)
    True
    """
    return (1.0 - strength) * image + strength * _shift(image, offset, 0.0)


@_register(
    "chromatic_aberration",
    "Chromatic aberration",
    "spatial",
    "Shifts red and blue in opposite directions, giving coloured fringes at edges, as from a cheap lens.",
    (
        Param("shift", "Channel shift", 0.0, 8.0, 0.25, 2.0, 0.0, "px",
              help="Red moves this far right and blue this far left; green stays."),
    ),
)
def chromatic_aberration(
    image: torch.Tensor, shift: float, *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Move the red channel ``shift`` pixels right and the blue channel as far left.

    >>> x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> torch.equal(chromatic_aberration(x, 1.0)[:, 1], x[:, 1])  # green is the anchor
    True
    """
    r, g, b = image.split(1, dim=1)
    return torch.cat((_shift(r, shift, 0.0), g, _shift(b, -shift, 0.0)), dim=1)
