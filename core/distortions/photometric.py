"""Photometric distortions: global changes of lightness, hue and contrast that move no edge."""

from __future__ import annotations

import math

import torch

from ._ops import _lab_to_rgb, _rgb_to_lab
from .spec import Param, _register


@_register(
    "lightness",
    "Lightness",
    "photometric",
    "Shifts CIE L* everywhere: every pixel changes, so PSNR drops fast, yet no edge or texture moves.",
    (
        Param("delta", "Lightness shift", -50.0, 50.0, 1.0, 15.0, 0.0, "ΔL*",
              help="Change of CIE L* (0 = black, 100 = white); 10 is clearly visible."),
    ),
)
def lightness(image: torch.Tensor, delta: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Add ``delta`` to CIE L* (a scale of 0 to 100) at constant a*, b*; colours that leave the gamut clip.

    >>> x = torch.full((1, 3, 4, 4), 0.5)
    >>> bool((lightness(x, 10.0) > x).all())
    True
    """
    lab = _rgb_to_lab(image)
    lab[:, 0] += delta
    return _lab_to_rgb(lab)


@_register(
    "color_shift",
    "Colour shift (hue)",
    "photometric",
    "Rotates hue at constant lightness and chroma: shapes are untouched, but colour channels all change.",
    (
        Param("degrees", "Hue rotation", -180.0, 180.0, 1.0, 30.0, 0.0, "°",
              help="Rotation of the hue angle in the CIE a*b* plane; 180° swaps complementary colours."),
    ),
)
def color_shift(image: torch.Tensor, degrees: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Rotate hue by ``degrees`` in the CIE a*b* plane (L* and chroma kept; out-of-gamut colours clip).

    >>> x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.equal(color_shift(x, 0.0), x)), color_shift(x, 90.0).shape
    (True, torch.Size([1, 3, 8, 8]))
    """
    lab = _rgb_to_lab(image)
    theta = math.radians(degrees)
    c, s = math.cos(theta), math.sin(theta)
    a, b = lab[:, 1].clone(), lab[:, 2].clone()
    lab[:, 1] = c * a - s * b
    lab[:, 2] = s * a + c * b
    return _lab_to_rgb(lab)


@_register(
    "contrast",
    "Contrast",
    "photometric",
    "Stretches or squeezes values about the mean grey: a smooth global change people tolerate well.",
    (
        Param("factor", "Contrast factor", 0.0, 3.0, 0.05, 1.5, 1.0, "×",
              help="1 = unchanged, 0 = flat grey, 2 = twice the contrast."),
    ),
)
def contrast(image: torch.Tensor, factor: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Scale each image's deviation from its mean luma (Rec. 601) by ``factor``, as torchvision does.

    >>> x = torch.tensor([0.25, 0.75]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    >>> contrast(x, 0.0)[0, 0, 0].tolist()
    [0.5, 0.5]
    """
    weights = torch.tensor((0.299, 0.587, 0.114), dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    mean = (image * weights).sum(1, keepdim=True).mean((-2, -1), keepdim=True)
    return mean + factor * (image - mean)
