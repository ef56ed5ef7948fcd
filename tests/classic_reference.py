"""Shared by the PSNR, SSIM and MS-SSIM tests: test pairs and independent references (scikit-image,
numpy/scipy), never core's own code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data as skdata
from skimage.metrics import structural_similarity


# MATLAB rgb2gray weights, written out here rather than imported from the module.
LUMA = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
MS_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])

# Odd sizes on purpose: they exercise the valid-region crop and the MS-SSIM downsampling
# of an odd last row/column.
H, W = 181, 197


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = rng(seed).normal(0.0, sigma, img.shape)
    return np.clip(np.round(img.astype(np.float64) + noise), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def natural() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[40 : 40 + H, 150 : 150 + W])


@pytest.fixture(scope="module")
def pairs(natural: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """uint8 H×W×3 (ref, dist) pairs: natural + noise, natural + blur, and pure noise."""
    rand_a = rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    rand_b = rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    blurred = ndimage.uniform_filter(natural, size=(5, 5, 1))
    return [
        (natural, noisy(natural, 3.0)),
        (natural, noisy(natural, 25.0, seed=1)),
        (natural, blurred),
        (rand_a, rand_b),
    ]


def to_tensor(*images: np.ndarray) -> torch.Tensor:
    """uint8 H×W×3 arrays → N×3×H×W float32 in [0, 1], as an app would load them."""
    stacked = np.stack(images).astype(np.float32) / 255.0
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()


def matlab_gray(img: np.ndarray) -> np.ndarray:
    """MATLAB rgb2gray on uint8: weighted sum in double, rounded half away from zero."""
    return np.floor(img.astype(np.float64) @ LUMA + 0.5).astype(np.uint8)


def sk_ssim_valid(a: np.ndarray, b: np.ndarray, rgb: bool) -> np.ndarray:
    """skimage's full SSIM map, cropped to the valid region (skimage pads the borders)."""
    kwargs = dict(data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True)
    if rgb:
        _, full = structural_similarity(a, b, channel_axis=2, **kwargs)
        return full[5:-5, 5:-5].mean(axis=2)
    _, full = structural_similarity(a, b, **kwargs)
    return full[5:-5, 5:-5]


# --- an independent float64 MS-SSIM (numpy/scipy), msssim.m conventions -------------------


def _window() -> np.ndarray:
    x = np.arange(-5, 6, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g)
    return w / w.sum()


def _ssim_cs_np(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    win = _window()

    def filt(z: np.ndarray) -> np.ndarray:
        return ndimage.correlate(z, win, mode="reflect")[5:-5, 5:-5]

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    s = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs
    return float(s.mean()), float(cs.mean())


def _down_np(x: np.ndarray) -> np.ndarray:
    x = np.pad(x, ((0, x.shape[0] % 2), (0, x.shape[1] % 2)), mode="symmetric")
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim_np(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.astype(np.float64), y.astype(np.float64)
    terms = []
    for level in range(5):
        s, cs = _ssim_cs_np(x, y)
        terms.append(s if level == 4 else cs)
        x, y = _down_np(x), _down_np(y)
    return float(np.prod(np.maximum(terms, 0.0) ** MS_WEIGHTS))
