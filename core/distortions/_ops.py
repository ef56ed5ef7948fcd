"""Helpers shared by the distortion families: the default generator, padding, Gaussian blur, shifts, sRGB <-> Lab."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..images.filters import correlate_valid

def _generator(rng: torch.Generator | None) -> torch.Generator:
    # A missing generator means seed 0, not global state: distortions stay reproducible.
    return rng if rng is not None else torch.Generator().manual_seed(0)


def _pad(x: torch.Tensor, left: int, right: int, top: int, bottom: int) -> torch.Tensor:
    """Reflect-pad, falling back to edge replication where the image is too small to reflect."""
    h, w = x.shape[-2:]
    mode = "reflect" if max(left, right) < w and max(top, bottom) < h else "replicate"
    return F.pad(x, (left, right, top, bottom), mode=mode)


def _gaussian_kernel1d(sigma: float, radius: int, like: torch.Tensor) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, dtype=like.dtype, device=like.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding; the kernel reaches 3σ."""
    h, w = x.shape[-2:]
    radius = max(1, math.ceil(3.0 * sigma))
    k = _gaussian_kernel1d(sigma, radius, x)
    ry, rx = min(radius, h - 1), min(radius, w - 1)
    # Tiny images cannot hold the whole kernel; truncating it keeps the output size.
    ky = k[radius - ry : radius + ry + 1]
    kx = k[radius - rx : radius + rx + 1]
    ky, kx = ky / ky.sum(), kx / kx.sum()
    x = correlate_valid(_pad(x, 0, 0, ry, ry), ky.tolist(), -2)
    return correlate_valid(_pad(x, rx, rx, 0, 0), kx.tolist(), -1)


def _shift_axis(x: torch.Tensor, d: float, dim: int) -> torch.Tensor:
    """Move content by ``d`` pixels along ``dim`` (positive = right/down), reflect-padded.

    Integer shifts are pure copies; a fractional part blends the two neighbouring integer
    shifts linearly (bilinear interpolation along one axis).
    """
    if d == 0:
        return x
    n = x.shape[dim]
    whole = math.floor(d)
    frac = d - whole
    pad = abs(whole) + 1
    padded = _pad(x, pad, pad, 0, 0) if dim == -1 else _pad(x, 0, 0, pad, pad)
    # out[j] = in[j - d]; in padded coordinates in[j] is padded[j + pad].
    start = pad - whole
    out = padded.narrow(dim, start, n)
    if frac:
        out = (1.0 - frac) * out + frac * padded.narrow(dim, start - 1, n)
    return out


def _shift(x: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    # Cosines of multiples of 90° are not exact zeros; snap so axis-aligned shifts stay exact.
    dx = 0.0 if abs(dx) < 1e-9 else dx
    dy = 0.0 if abs(dy) < 1e-9 else dy
    return _shift_axis(_shift_axis(x, dx, -1), dy, -2)


# sRGB (D65) <-> CIE Lab. Constants from IEC 61966-2-1 and CIE 15.
_RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
_XYZ_TO_RGB = tuple(map(tuple, np.linalg.inv(np.array(_RGB_TO_XYZ)).tolist()))
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_LAB_EPS = 216.0 / 24389.0
_LAB_KAPPA = 24389.0 / 27.0


def _rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    lin = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    m = torch.tensor(_RGB_TO_XYZ, dtype=x.dtype, device=x.device)
    white = torch.tensor(_WHITE_D65, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    xyz = torch.einsum("ij,njhw->nihw", m, lin) / white
    f = torch.where(xyz > _LAB_EPS, xyz.clamp_min(_LAB_EPS) ** (1.0 / 3.0), (_LAB_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f.unbind(1)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=1)


def _lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    L, a, b = lab.unbind(1)
    fy = (L + 16.0) / 116.0
    f = torch.stack((fy + a / 500.0, fy, fy - b / 200.0), dim=1)
    xyz = torch.where(f**3 > _LAB_EPS, f**3, (116.0 * f - 16.0) / _LAB_KAPPA)
    white = torch.tensor(_WHITE_D65, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    m_inv = torch.tensor(_XYZ_TO_RGB, dtype=lab.dtype, device=lab.device)
    # Out-of-gamut colours clip in linear light; negative values would make the power NaN.
    lin = torch.einsum("ij,njhw->nihw", m_inv, xyz * white).clamp(0.0, 1.0)
    return torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1.0 / 2.4) - 0.055)
