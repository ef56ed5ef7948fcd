"""LPIPS as a registered metric: the :class:`~core.lpips.Engine` with its cached reference.

The algorithm, the drop-in module and the engine live in :mod:`core.lpips`; this module only
describes LPIPS to the registry. Preparing the reference computes its normalized features once,
so each distorted image costs one backbone pass.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import InvalidArgumentError
from ..lpips import LpipsResult, ReferenceFeatures
from ..nets import MIN_SIDE
from .registry import MapSpec, MetricContext, MetricScore, MetricSpec, register

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


def _extras(result: LpipsResult, i: int) -> dict[str, Any]:
    return {
        "lpips_layers": [float(v) for v in result.layer_values[i]],
        "lpips_layer_names": list(result.layer_names),
        "net": result.net,
        "version": result.version,
        "calibrated": result.lpips,
    }


def _title_detail(ctx: MetricContext) -> str:
    engine = ctx.engine
    if engine is None:
        return ""
    return f"{engine.net} v{engine.version}{'' if engine.lpips else ', baseline'}"


SPEC = register(MetricSpec(
    key="lpips",
    label="LPIPS",
    higher_is_better=False,
    prepare=prepare_reference,
    score=score,
    description="Learned perceptual distance. Lower is better: 0 = identical, higher = more different.",
    value_range=(0.0, math.inf),
    identical=0.0,
    map=MapSpec(title="LPIPS map (bright = more different)", unit="LPIPS", file_stem="lpips_map",
                higher_is_better=False),
    differentiable=True,  # core.LPIPS passes gradients to its inputs
    min_size=lambda ctx: MIN_SIDE[ctx.engine.net] if ctx.engine is not None else min(MIN_SIDE.values()),
    title_detail=_title_detail,
    extras=_extras,
))
