"""What both synthesis modes share: the square 8-bit reference, the scores of the results,
progress reports and the limits that bound a run's cost."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError, WeightsError
from ..images.tensors import check_unit_batch, quantize_8bit
from .limits import MAX_SIZE, MAX_STEPS, MIN_SIZE, SCORE_KEYS
from .objectives import METRICS

__all__ = ["MAX_SIZE", "MIN_SIZE", "MAX_STEPS", "SCORE_KEYS", "StepReport", "check_size", "check_steps",
           "score_images", "square_reference"]


StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class StepReport:
    """What a running optimization tells its caller after each step.

    ``values`` maps a series name (``best_psnr``, ``worst_lpips_alex``, ``l2``...) to its value
    at this step; ``images()`` returns a CPU copy of the images being optimized (N×3×H×W), on
    demand, since copying every step would cost more than a viewer needs.
    """

    step: int  # steps done, 1-based
    total: int
    values: Mapping[str, float]
    images: Callable[[], torch.Tensor]


ProgressFn = Callable[[StepReport], None]


def check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise InvalidArgumentError(f"`size` must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE}, got {size!r}.")
    return size


def check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise InvalidArgumentError(f"`steps` must be a whole number from 1 to {MAX_STEPS}, got {steps!r}.")
    return steps


def square_reference(image: torch.Tensor, size: int) -> torch.Tensor:
    """The centre square of ``image`` resized to ``size``×``size`` and rounded to 8 bits.

    >>> tuple(square_reference(torch.rand(1, 3, 60, 90), 32).shape)
    (1, 3, 32, 32)
    """
    check_size(size)
    batch = check_unit_batch(image, "ref")[:1].float()
    height, width = batch.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = batch[..., top:top + side, left:left + side]
    if side != size:
        square = F.interpolate(square, size=(size, size), mode="bilinear", antialias=side > size, align_corners=False)
    return quantize_8bit(square).contiguous()


def score_images(ref: torch.Tensor, images: torch.Tensor, device: torch.device | str | None = None,
                 keys: tuple[str, ...] = SCORE_KEYS) -> list[dict[str, float | None]]:
    """Every metric of each 8-bit image in ``images`` against ``ref``, as the registry computes
    it (PSNR and SSIM on 8-bit values, LPIPS v0.1). An LPIPS whose weights are missing is ``None``.
    """
    from ..comparison import compare
    from ..lpips.engine import Engine

    images = images.detach().cpu()
    classic = [k for k in keys if k in ("psnr", "ssim")]
    rows: list[dict[str, float | None]] = [{} for _ in range(images.shape[0])]
    if classic:
        result = compare(None, ref.cpu(), images, metrics=classic, spatial=False)
        for key in classic:
            for row, value in zip(rows, result[key].tolist()):
                row[key] = float(value)
    for key in keys:
        if not key.startswith("lpips_"):
            continue
        try:
            engine = Engine(key.split("_", 1)[1], "0.1", True, device)
        except WeightsError:
            for row in rows:
                row[key] = None
            continue
        for row, value in zip(rows, engine.distance(ref, images).tolist()):
            row[key] = float(value)
    return [{k: row[k] for k in keys} for row in rows]


def describe_scores(scores: Mapping[str, float | None]) -> str:
    """``PSNR 24.00 dB, SSIM 0.6021, ...`` for messages and logs."""
    parts = []
    for key, value in scores.items():
        meta = METRICS[key]
        parts.append(f"{meta.label} {'n/a' if value is None or math.isnan(value) else meta.format(value)}")
    return ", ".join(parts)
