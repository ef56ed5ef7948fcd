"""The models and images :mod:`bench.engine` and :mod:`bench.peak_memory` measure: ours, the
official ``lpips.LPIPS`` holding the same weights, the bf16 wrapper, the floor backbones, and the
benchmark's reference photo and distorted copies."""

from __future__ import annotations

import copy
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.lpips import weights
from core.lpips.engine import Engine, LpipsNetwork, build_network, get_network
from core.lpips.nets import Backbone

from .machine import native_bf16

__all__ = ["BATCH", "HALF_DTYPES", "AutocastBackbone", "Models", "build_models", "distorted", "engine_pass", "fast_network",
           "median_ms", "official_network", "our_network", "reference_image", "scaled_input"]

BATCH = 16
# The half precisions the "fast" row can run the backbone in (--half): bf16 is what CPUs with AMX /
# AVX-512 BF16 and recent GPUs run natively; fp16 is the usual GPU choice.
HALF_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
SQUEEZE_SEED = 1234
VERSION = "0.1"
_SHIFT = torch.tensor((-0.030, -0.088, -0.188)).view(1, 3, 1, 1)
_SCALE = torch.tensor((0.458, 0.448, 0.450)).view(1, 3, 1, 1)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def _bf16_slowdown(network: LpipsNetwork) -> dict:
    """bf16-autocast vs fp32 time of one backbone pass at 64² (median of 3, after a warm-up)."""
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(network.shift.device)
    fast = AutocastBackbone(network.backbone, x.device.type)
    out = {}
    for name, fn in (("fp32_ms", network.backbone), ("bf16_ms", fast)):
        samples = []
        with torch.inference_mode():
            for i in range(4):
                t0 = time.perf_counter()
                fn(x)
                if i:
                    samples.append(time.perf_counter() - t0)
        out[name] = median_ms(samples)
    out["ratio"] = out["bf16_ms"] / out["fp32_ms"]
    return out


def _photo() -> torch.Tensor:
    """The gallery's astronaut (512×512) as 1×3×H×W in [0, 1]."""
    from core.images.samples import load_sample

    return load_sample("astronaut")


def reference_image(size: int) -> torch.Tensor:
    img = _photo()
    out = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False,
                        antialias=size < img.shape[-1])
    return out.clamp(0, 1).contiguous()


def distorted(ref: torch.Tensor, seed: int, count: int = 1) -> torch.Tensor:
    """``count`` noisy (σ=0.08), 3×3-blurred copies of ``ref``, each with its own noise."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((count,) + tuple(ref.shape[1:]), generator=gen)
    noisy = (ref + 0.08 * noise).clamp(0, 1)
    return F.avg_pool2d(noisy, 3, stride=1, padding=1, count_include_pad=False).contiguous()


# ---------------------------------------------------------------------------------------------
# Models: ours, the official one with the same weights, the floor backbones, the bf16 wrapper.
# ---------------------------------------------------------------------------------------------

class AutocastBackbone(nn.Module):
    """Runs a backbone under ``torch.autocast(dtype)`` (bf16 unless told) and hands fp32 taps to the LPIPS head."""

    def __init__(self, inner: nn.Module, device_type: str, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.inner, self.device_type, self.dtype = inner, device_type, dtype

    def forward(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        with torch.autocast(self.device_type, dtype=self.dtype):
            taps = self.inner(x, upto)
        return [t.float() for t in taps]


def fast_network(network: LpipsNetwork, half: str = "bf16") -> LpipsNetwork:
    """A copy of ``network`` whose backbone runs in ``half`` (a key of :data:`HALF_DTYPES`; the
    normalization and heads stay fp32)."""
    fast = copy.deepcopy(network)
    fast.backbone = AutocastBackbone(fast.backbone, network.shift.device.type, HALF_DTYPES[half])
    return fast.eval()


def our_network(net: str, device: torch.device) -> tuple[LpipsNetwork, str]:
    """The shared model for alex/vgg (pretrained); a seeded random trunk when none is cached.

    The random model is built by :func:`~core.lpips.engine.build_network`, the factory behind
    :func:`get_network`, so it gets the same layout and device preparation as the real models.
    """
    ok, _ = weights.backbone_available(net)
    if ok:
        return get_network(net, VERSION, True, device), "pretrained"
    torch.manual_seed(SQUEEZE_SEED)
    state = Backbone(net).features_state()
    trunk = f"random (seed {SQUEEZE_SEED}, loaded into both)"
    return build_network(net, VERSION, True, device, state).eval(), trunk


def official_network(net: str, backbone_state: dict[str, torch.Tensor], device: torch.device):
    """The official ``lpips.LPIPS`` with ``backbone_state`` loaded strictly into its trunk."""
    import re

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lpips as official

        model = official.LPIPS(net=net, version=VERSION, lpips=True, spatial=False, pnet_rand=True, verbose=False)
    names = {re.sub(r"^slice\d+\.", "features.", k): k for k in model.net.state_dict()}
    model.net.load_state_dict({names[k]: v for k, v in backbone_state.items() if k in names}, strict=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(device).eval()


def scaled_input(batch01: torch.Tensor) -> torch.Tensor:
    """What the backbone sees: [0, 1] → [-1, 1] → the v0.1 scaling layer."""
    return ((batch01 * 2 - 1) - _SHIFT.to(batch01.device)) / _SCALE.to(batch01.device)


@dataclass
class Models:
    net: str
    device: torch.device
    trunk: str
    network: LpipsNetwork
    engine: Engine
    official: nn.Module
    fast_engine: Engine
    floor_nchw: nn.Module
    floor_cl: nn.Module
    bf16_calibration: dict | None


def build_models(net: str, device: torch.device, half: str = "bf16") -> Models:
    network, trunk = our_network(net, device)
    official = official_network(net, {k: v.cpu() for k, v in network.backbone.features_state().items()}, device)
    floor_nchw = copy.deepcopy(network.backbone).to(memory_format=torch.contiguous_format).eval()
    floor_cl = copy.deepcopy(network.backbone).to(memory_format=torch.channels_last).eval()
    calibration = None if device.type == "cuda" or native_bf16() else _bf16_slowdown(network)
    return Models(net, device, trunk, network, Engine(network=network), official,
                  Engine(network=fast_network(network, half)), floor_nchw, floor_cl, calibration)


def engine_pass(network: LpipsNetwork) -> Callable[[torch.Tensor], Any]:
    """One backbone pass the way the engine runs it, for an input in [-1, 1]."""
    taps = getattr(network, "taps", None)
    if callable(taps):
        return taps
    return lambda x: network.backbone((x - network.shift) / network.scale)
