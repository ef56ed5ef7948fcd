"""What a folder-scoring task is given and what it keeps per image: the :class:`ScoringSpec`
(which metrics, network and precision; picklable, so cluster workers get the same one) and an
image's :class:`ImageState` (computed once, then paired with every other image). Both the
scoring tasks (:mod:`.scoring`) and the tile math (:mod:`.pairwise`) read them, so they live
below both.

>>> ScoringSpec(metrics=("psnr",)).precise
False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["FAST_METRICS", "PRECISIONS", "ImageState", "Row", "ScoringSpec"]

Row = dict[str, Any]
PRECISIONS = ("float32", "float64")
# The metrics scored here from per-image states; any other registered metric goes through compare().
FAST_METRICS = ("lpips", "psnr", "ssim", "ms_ssim")


@dataclass(frozen=True)
class ScoringSpec:
    """Everything a task needs besides its paths: which metrics, which network, which precision.

    ``precision`` is the classic metrics' working precision: ``float32`` (SSIM, MS-SSIM within
    2e-6 of float64, about 2× faster) or ``float64`` (the values of :func:`core.compare`). LPIPS's
    network always runs in float32 and PSNR is exact in both. ``memory_mb`` bounds the
    per-image states kept in one process; ``decode_workers`` threads decode images.
    """

    metrics: tuple[str, ...]
    net: str = "alex"
    version: str = "0.1"
    calibrated: bool = True
    device: str = "auto"
    ssim_mode: str = "reference"
    precision: str = "float32"
    resize_to_ref: bool = False
    batch_size: int = 16
    decode_workers: int = 2
    memory_mb: int = 1024
    heads: str | None = None  # a heads file (core.lpips.heads) instead of the published heads of `version`

    @property
    def precise(self) -> bool:
        return self.precision == "float64"

    def engine(self):
        """The LPIPS engine (the network is loaded once per process), or None without LPIPS."""
        if "lpips" not in self.metrics:
            return None
        if self.heads is not None:
            from ..judgments.heads import engine_from_file

            return engine_from_file(self.heads, self.net, self.version, self.device, chunk_size=max(1, self.batch_size))
        from ..lpips.engine import Engine

        return Engine(self.net, self.version, self.calibrated, self.device, chunk_size=max(1, self.batch_size))

    def state_key(self) -> tuple:
        """What a cached per-image state depends on."""
        return (self.metrics, self.net, self.version, self.calibrated, self.device, self.ssim_mode, self.precision,
                self.heads)


@dataclass
class ImageState:
    """What an image contributes to every pair it is in, computed once."""

    image: torch.Tensor  # 1×3×H×W in [0, 1]
    # LPIPS: per layer, the normalized features times √w (the head's channel weights), flattened,
    # float64; and their squared norms Σ w f². A pair's layer value is then
    # (‖g_a‖² + ‖g_b‖² − 2 g_a·g_b) / (h·w): one matrix product for a whole tile.
    lpips: tuple[torch.Tensor, ...] | None = None
    lpips_sq: torch.Tensor | None = None
    lpips_hw: tuple[int, ...] = ()
    levels: torch.Tensor | None = None  # PSNR: 8-bit levels, flattened, uint8 (8× smaller than floats)
    moments: tuple | None = None  # SSIM: ScaleMoments at each scale (1×C×h×w)
    nbytes: int = 0
