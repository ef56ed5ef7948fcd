"""Noise distortions: random per-pixel errors (Gaussian, salt & pepper), seeded by a ``torch.Generator``."""

from __future__ import annotations

import torch

from ._ops import _generator
from .spec import Param, _register


@_register(
    "gaussian_noise",
    "Gaussian noise",
    "noise",
    "Independent random error in every pixel and channel: the distortion MSE and PSNR were designed for.",
    (
        Param("sigma", "Noise σ", 0.0, 50.0, 1.0, 15.0, 0.0, "8-bit levels",
              help="Standard deviation in 8-bit grey levels (0-255); 5 is faint, 25 is heavy."),
    ),
    random=True,
)
def gaussian_noise(image: torch.Tensor, sigma: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Add white Gaussian noise of standard deviation ``sigma``/255, independent per pixel and channel.

    The same generator state gives the same noise pattern for every ``sigma``, only scaled.

    >>> x = torch.full((1, 3, 8, 8), 0.5)
    >>> torch.equal(gaussian_noise(x, 10.0, rng=torch.Generator().manual_seed(1)),
    ...             gaussian_noise(x, 10.0, rng=torch.Generator().manual_seed(1)))
    True
    """
    noise = torch.randn(image.shape, generator=_generator(rng), dtype=torch.float32)
    return image + noise.to(device=image.device, dtype=image.dtype) * (sigma / 255.0)


@_register(
    "salt_pepper",
    "Salt & pepper",
    "noise",
    "Sets a few pixels to pure black or white: large errors in few places, so MSE is big "
    "while the picture stays readable.",
    (
        Param("fraction", "Corrupted pixels", 0.0, 0.2, 0.005, 0.02, 0.0, "fraction",
              help="Share of pixels replaced, half by white and half by black; 0.01 = 1 %."),
    ),
    random=True,
)
def salt_pepper(image: torch.Tensor, fraction: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Replace a random ``fraction`` of pixels (all three channels) by white or black, with equal odds.

    Which pixels are hit and their colour are drawn separately, so with one generator
    state a larger fraction corrupts a superset of the pixels of a smaller one.

    >>> x = torch.full((1, 3, 32, 32), 0.5)
    >>> y = salt_pepper(x, 0.1, rng=torch.Generator().manual_seed(0))
    >>> sorted(set(y.unique().tolist()))
    [0.0, 0.5, 1.0]
    """
    g = _generator(rng)
    n, _, h, w = image.shape
    hit = torch.rand((n, 1, h, w), generator=g) < fraction
    white = torch.rand((n, 1, h, w), generator=g) < 0.5
    hit, white = hit.to(image.device), white.to(image.device)
    value = white.to(image.dtype).expand_as(image)
    return torch.where(hit.expand_as(image), value, image)
