"""The metrics as differentiable functions of the distorted image, for optimizing images.

The registry's PSNR and SSIM round both images to 8 bits first (that is how papers report
them), which has no useful gradient. Here they are written again in PyTorch without the
rounding of the image being optimized, so that gradients flow:

- **PSNR** is ``10·log10(1 / MSE)`` on [0, 1] values. On 8-bit images it *is* the registry's
  value (the registry's rounding then changes nothing).
- **SSIM** (``reference`` mode: MATLAB luma, 11×11 Gaussian window, σ = 1.5, K1 = 0.01,
  K2 = 0.03, L = 255, mean over the valid region). The registry rounds the luma to 8 bits;
  ``round_luma=True`` does the same (with a straight-through gradient), and then the value on
  8-bit images equals the registry's. The optimizer uses the smooth version (``round_luma=False``),
  whose value differs from the rounded one by about 1e-3 at most on photos.
- **LPIPS** (v0.1, AlexNet or VGG16, calibrated) is the engine's network itself, with the
  reference's features computed once; it is differentiable as it is.

Every objective reports values in the metric's own units and direction (PSNR in dB, higher =
more similar; SSIM, higher = more similar; LPIPS, higher = more different), one per image.

>>> import torch
>>> ref = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
>>> x = (ref + 0.05).clamp(0, 1).requires_grad_()
>>> value = objective("psnr", ref).value(x)
>>> value.sum().backward(); tuple(x.grad.shape)
(1, 3, 32, 32)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from ..metrics._levels import MATLAB_LUMA, PEAK
from ..metrics.ssim import SSIM_BORDER, SSIM_K1, SSIM_K2, SSIM_MIN_SIZE, SSIM_SIGMA, SSIM_WINDOW
from ..lpips.nets import MIN_SIDE
from ..images.tensors import check_unit_batch

__all__ = ["METRICS", "MetricInfo", "Objective", "info", "objective", "metric_key", "lpips_value", "psnr_value",
           "ssim_value"]


@dataclass(frozen=True)
class MetricInfo:
    """How a synthesis metric is named and read."""

    key: str  # psnr, ssim, lpips_alex, lpips_vgg
    label: str
    unit: str
    higher_is_better: bool
    digits: int

    def format(self, value: float) -> str:
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "∞" + (f" {self.unit}" if self.unit else "")
        return f"{value:.{self.digits}f}" + (f" {self.unit}" if self.unit else "")

    @property
    def direction(self) -> str:
        return "higher = more similar" if self.higher_is_better else "higher = more different"


METRICS: dict[str, MetricInfo] = {
    "psnr": MetricInfo("psnr", "PSNR", "dB", True, 2),
    "ssim": MetricInfo("ssim", "SSIM", "", True, 4),
    "lpips_alex": MetricInfo("lpips_alex", "LPIPS (alex)", "", False, 4),
    "lpips_vgg": MetricInfo("lpips_vgg", "LPIPS (vgg)", "", False, 4),
}
_ALIASES = {"mse": "psnr", "lpips": "lpips_alex", "alex": "lpips_alex", "vgg": "lpips_vgg"}


def metric_key(name: str, net: str = "alex") -> str:
    """``psnr``/``mse`` → ``psnr``; ``lpips`` → ``lpips_<net>``; the canonical keys pass through.

    >>> metric_key("lpips", "vgg"), metric_key("mse")
    ('lpips_vgg', 'psnr')
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"A metric is named by text, one of {', '.join(METRICS)}; got {name!r}.")
    key = name.strip().lower()
    if key == "lpips":
        if net not in ("alex", "vgg"):
            raise InvalidArgumentError(f"Synthesis uses LPIPS with alex or vgg, got net {net!r}.")
        return f"lpips_{net}"
    key = _ALIASES.get(key, key)
    if key not in METRICS:
        raise InvalidArgumentError(f"Unknown metric {name!r} for synthesis; choose one of "
                                   f"{', '.join(METRICS)} (or lpips, with --net; mse means PSNR).")
    return key


def info(key: str) -> MetricInfo:
    return METRICS[metric_key(key)]


# ---------------------------------------------------------------------------------------------
# The differentiable values.
# ---------------------------------------------------------------------------------------------

def psnr_value(ref: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of [0, 1] images ``x`` (N×3×H×W) against ``ref``, differentiable in ``x``.

    >>> ref = torch.full((1, 3, 4, 4), 100 / 255)
    >>> round(float(psnr_value(ref, torch.full_like(ref, 101 / 255))), 2)
    48.13
    """
    mse = (x - ref).square().mean(dim=(1, 2, 3))
    return -10.0 * torch.log10(mse)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    coords = torch.arange(SSIM_WINDOW, dtype=dtype, device=device) - SSIM_BORDER
    kernel = torch.exp(-(coords**2) / (2.0 * SSIM_SIGMA**2))
    return kernel / kernel.sum()


def _filter(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter, 'valid' region, on every channel of ``x``."""
    channels = x.shape[1]
    x = F.conv2d(x, window.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, window.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def _luma(x01: torch.Tensor, dtype: torch.dtype, round_luma: bool) -> torch.Tensor:
    weights = torch.tensor(MATLAB_LUMA, dtype=dtype, device=x01.device).view(1, 3, 1, 1)
    luma = (x01.to(dtype) * PEAK * weights).sum(dim=1, keepdim=True)
    if round_luma:  # MATLAB rounds halves away from zero; the gradient passes straight through
        luma = luma + (torch.floor(luma + 0.5).clamp(0.0, PEAK) - luma).detach()
    return luma


class _SSIMReference:
    """The reference's luma and filtered moments, computed once."""

    def __init__(self, ref: torch.Tensor, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.window = _gaussian_window(dtype, ref.device)
        # The reference is 8-bit (it is rounded here as the registry does), its luma rounded too.
        levels = ref.clamp(0, 1).mul(PEAK).round().div(PEAK)
        self.luma = _luma(levels, dtype, round_luma=True) - 127.5
        moments = _filter(torch.cat([self.luma, self.luma * self.luma]), self.window)
        self.mu, self.e_xx = moments[:1], moments[1:]


def ssim_value(ref: torch.Tensor | _SSIMReference, x: torch.Tensor, *, round_luma: bool = False) -> torch.Tensor:
    """SSIM (reference mode) of [0, 1] images ``x`` against ``ref``, differentiable in ``x``.

    ``round_luma=True`` rounds the luma to 8 bits as the registry does (then equal to
    :func:`core.ssim` on 8-bit images); the gradient ignores that rounding.

    >>> ref = (torch.arange(3 * 16 * 16) % 256).float().div(255).reshape(1, 3, 16, 16)  # 8-bit values
    >>> round(float(ssim_value(ref, ref, round_luma=True)), 6)
    1.0
    """
    prepared = ref if isinstance(ref, _SSIMReference) else _SSIMReference(ref, _ssim_dtype(x))
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    y = _luma(x, prepared.dtype, round_luma) - 127.5
    x_ref = prepared.luma.expand(y.shape[0], -1, -1, -1)
    filtered = _filter(torch.cat([y, y * y, x_ref * y], dim=1), prepared.window)
    mu_y, e_yy, e_xy = filtered[:, :1], filtered[:, 1:2], filtered[:, 2:3]
    mu_x, e_xx = prepared.mu, prepared.e_xx
    var_x, var_y, cov = e_xx - mu_x * mu_x, e_yy - mu_y * mu_y, e_xy - mu_x * mu_y
    mu_x, mu_y = mu_x + 127.5, mu_y + 127.5
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1) * (2 * cov + c2) / (var_x + var_y + c2)
    return ssim_map.mean(dim=(1, 2, 3)).to(x.dtype)


def _ssim_dtype(x: torch.Tensor) -> torch.dtype:
    # float64 like the registry (variances of 0-255 data lose digits in float32); MPS has none.
    return torch.float32 if x.device.type == "mps" else torch.float64


def lpips_value(network, ref_features, x: torch.Tensor) -> torch.Tensor:
    """LPIPS of [0, 1] images ``x`` against the reference's normalized features, differentiable."""
    maps = network.layer_maps(ref_features, network.features(x * 2 - 1))
    total = maps[0].mean(dim=(1, 2, 3))
    for layer_map in maps[1:]:
        total = total + layer_map.mean(dim=(1, 2, 3))
    return total


# ---------------------------------------------------------------------------------------------
# Objectives: a metric bound to one reference.
# ---------------------------------------------------------------------------------------------

class Objective:
    """One metric against one reference: ``value(x)`` per image, differentiable in ``x``.

    ``exact=True`` gives the value the registry reports on 8-bit images (SSIM's luma rounded);
    the default is the smooth value the optimizer follows.
    """

    def __init__(self, key: str, ref: torch.Tensor, device: torch.device | str | None = None) -> None:
        self.key = metric_key(key)
        self.info = METRICS[self.key]
        batch = check_unit_batch(ref, "ref")
        if batch.shape[0] != 1:
            raise InvalidArgumentError(f"Synthesis works on one reference image (1×3×H×W), got {tuple(batch.shape)}.")
        height, width = batch.shape[-2:]
        if self.key.startswith("lpips"):
            from ..lpips.engine import get_network

            net = self.key.split("_", 1)[1]
            self.network = get_network(net, "0.1", True, device)
            self.device = self.network.shift.device
            side = MIN_SIDE[net]
        else:
            from ..lpips.engine import resolve_device

            self.network = None
            self.device = resolve_device(device)
            side = SSIM_MIN_SIZE if self.key == "ssim" else 1
        if min(height, width) < side:
            raise InvalidArgumentError(f"{self.info.label} needs images of at least {side}×{side} pixels, "
                                       f"got {width}×{height}; use a larger --size.")
        self.ref = batch.detach().to(self.device, torch.float32)
        if self.network is not None:
            with torch.no_grad():
                self._features = [f.detach() for f in self.network.features(self.ref * 2 - 1)]
        elif self.key == "ssim":
            self._ssim = _SSIMReference(self.ref, _ssim_dtype(self.ref))

    def value(self, x: torch.Tensor, *, exact: bool = False) -> torch.Tensor:
        """The metric of each image in ``x`` (N×3×H×W in [0, 1] on this objective's device)."""
        if self.key == "psnr":
            return psnr_value(self.ref, x)
        if self.key == "ssim":
            return ssim_value(self._ssim, x, round_luma=exact)
        return lpips_value(self.network, self._features, x)

    def badness(self, x: torch.Tensor) -> torch.Tensor:
        """The value turned so that higher always means more different (for gradient steps)."""
        value = self.value(x)
        return -value if self.info.higher_is_better else value

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Values (N,) and their gradients with respect to ``x`` (each image's own gradient)."""
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            value = self.value(leaf)
            (grad,) = torch.autograd.grad(value.sum(), leaf)
        return value.detach(), grad


def objective(key: str, ref: torch.Tensor, device: torch.device | str | None = None) -> Objective:
    """The :class:`Objective` for ``key`` (``psnr``, ``ssim``, ``lpips_alex``, ``lpips_vgg``)."""
    return Objective(key, ref, device)
