"""LPIPS as a registered metric: the :class:`~core.lpips.engine.Engine` with its cached reference.

The algorithm, the drop-in module and the engine live in :mod:`core.lpips.engine`; this module only
describes LPIPS to the registry. Preparing the reference computes its normalized features once,
so each distorted image costs one backbone pass.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import InvalidArgumentError
from ..lpips.engine import LpipsResult, ReferenceFeatures
from .registry import MetricContext, MetricScore

__all__ = ["prepare_reference", "score"]


def _engine(ctx: MetricContext):
    if ctx.engine is None:
        raise InvalidArgumentError("LPIPS needs a network: pass `engine=core.Engine(net)` (or leave 'lpips' out of `metrics`).")
    return ctx.engine


def prepare_reference(ref: torch.Tensor, ctx: MetricContext) -> ReferenceFeatures:
    """The reference's normalized features (one backbone pass)."""
    return _engine(ctx).reference(ref)


def score(prepared: ReferenceFeatures, dist: torch.Tensor, ctx: MetricContext) -> MetricScore:
    """LPIPS of each image in ``dist``; the map is the sum of the upsampled layer maps."""
    result = _engine(ctx).compare(prepared, dist, spatial=ctx.spatial)
    return MetricScore(values=result.value, map=result.map, detail=result)


def row_extras(result: LpipsResult, i: int) -> dict[str, Any]:
    return {
        "lpips_layers": [float(v) for v in result.layer_values[i]],
        "lpips_layer_names": list(result.layer_names),
        "net": result.net,
        "version": result.version,
        "calibrated": result.lpips,
        **({"heads": result.heads} if result.heads else {}),
    }
