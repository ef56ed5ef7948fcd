"""Blur distortions: Gaussian blur and motion blur, which remove detail (in every or in one direction)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ._ops import _blur, _pad
from .spec import Param, _register


@_register(
    "gaussian_blur",
    "Gaussian blur",
    "blur",
    "Removes fine detail and texture; the error sits at edges and in texture, which deep "
    "features are sensitive to.",
    (
        Param("sigma", "Blur σ", 0.0, 8.0, 0.1, 2.0, 0.0, "px",
              help="Standard deviation of the Gaussian kernel in pixels."),
    ),
)
def gaussian_blur(image: torch.Tensor, sigma: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Blur with a Gaussian of standard deviation ``sigma`` pixels (kernel radius 3σ, reflect padding).

    >>> x = torch.zeros(1, 3, 9, 9); x[..., 4, 4] = 1.0
    >>> round(gaussian_blur(x, 1.0).sum().item() / 3, 4)  # blurring keeps the total
    1.0
    """
    return _blur(image, sigma)


def _motion_kernel(length: int, angle: float) -> torch.Tensor:
    """A normalized line of ``length`` pixels at ``angle`` degrees, splatted bilinearly (anti-aliased)."""
    half = (length - 1) / 2.0
    theta = math.radians(angle)
    t = np.linspace(-half, half, 8 * length)
    # Image rows grow downwards, so a counter-clockwise angle moves up: y = -t sin.
    xs, ys = t * math.cos(theta), -t * math.sin(theta)
    radius = math.ceil(half) + 1
    size = 2 * radius + 1
    k = np.zeros((size, size))
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    corners = ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy))
    for dx, dy, wgt in corners:
        np.add.at(k, (y0 + dy + radius, x0 + dx + radius), wgt)
    return torch.from_numpy(k / k.sum())


@_register(
    "motion_blur",
    "Motion blur",
    "blur",
    "Smears the picture along one direction, like camera shake: detail across the motion is "
    "lost, along it kept.",
    (
        Param("length", "Blur length", 0, 31, 1, 9, 0, "px", kind="int",
              help="Length of the motion path in pixels; 0 or 1 = no blur."),
        Param("angle", "Direction", 0.0, 180.0, 1.0, 0.0, None, "°",
              help="Direction of motion, counter-clockwise from horizontal."),
    ),
)
def motion_blur(
    image: torch.Tensor, length: int, angle: float = 0.0, *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Average along a straight path of ``length`` pixels at ``angle`` degrees (reflect padding).

    >>> x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> torch.equal(motion_blur(x, 0, 45.0), x), motion_blur(x, 5, 45.0).shape
    (True, torch.Size([1, 3, 16, 16]))
    """
    if length <= 1:
        return image  # a one-pixel path is the identity kernel
    k = _motion_kernel(length, angle).to(device=image.device, dtype=image.dtype)
    r = k.shape[-1] // 2
    c = image.shape[1]
    h, w = image.shape[-2:]
    ry, rx = min(r, h - 1), min(r, w - 1)
    k = k[r - ry : r + ry + 1, r - rx : r + rx + 1]
    k = k / k.sum()
    weight = k.flip(0, 1).view(1, 1, *k.shape).expand(c, 1, -1, -1)  # conv2d correlates
    return F.conv2d(_pad(image, rx, rx, ry, ry), weight, groups=c)
