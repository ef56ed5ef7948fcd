"""Severity levels of a distortion's numeric parameter, rendering them (8-bit), and the checks
every sweep shares; also each metric's display order and direction, which the sweeps' results use."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from core import metrics as registry
from core.distortions import REGISTRY, DistortionParamError, Param, ParamValue, UnknownDistortionError, sweep
from core.images.tensors import quantize_8bit

__all__ = ["MAX_LEVELS", "MIN_LEVELS", "ProgressFn", "check_base", "check_callable", "check_ssim_mode",
           "check_values", "default_range", "higher_is_better", "metric_order", "native", "numeric_param",
           "render", "severity_levels"]

MIN_LEVELS = 8
MAX_LEVELS = 32

ProgressFn = Callable[[int, int], None]


def numeric_param(name: str, param: str | None) -> Param:
    """The distortion's ``param`` (its main one by default), which must be numeric."""
    if not isinstance(name, str) or name not in REGISTRY:
        valid = ", ".join(sorted(REGISTRY))
        raise UnknownDistortionError(f"unknown distortion {name!r}; valid names are: {valid}.")
    distortion = REGISTRY[name]
    p = distortion.main if param is None else distortion.param(param)
    if p.kind == "choice" or p.min is None or p.max is None:
        numeric = ", ".join(q.name for q in distortion.params if q.kind != "choice")
        raise DistortionParamError(
            f"{name}: parameter '{p.name}' is a choice, not a severity; sweep one of: {numeric}."
        )
    return p


def default_range(p: Param) -> tuple[float, float]:
    """``(mildest, harshest)`` severity of a numeric parameter.

    The mild end is the identity (the no-op value) or, without one, the minimum; the harsh
    end is whichever bound lies farther from it. So JPEG quality runs 100 → 5 and blur σ
    0 → 8.

    >>> default_range(REGISTRY["jpeg"].main)
    (100.0, 5.0)
    """
    assert p.min is not None and p.max is not None
    mild = float(p.identity) if isinstance(p.identity, (int, float)) else float(p.min)
    harsh = float(p.max) if abs(p.max - mild) >= abs(p.min - mild) else float(p.min)
    return mild, harsh


def severity_levels(
    name: str,
    param: str | None = None,
    *,
    levels: int = 16,
    low: float | None = None,
    high: float | None = None,
) -> np.ndarray:
    """``levels`` evenly spaced values of ``param`` from ``low`` to ``high``, in that order.

    ``low``/``high`` default to :func:`default_range` (mildest to harshest). Integer
    parameters are rounded and de-duplicated (keeping order), so they can give fewer than
    ``levels`` values: posterize has only 7 bit depths.

    >>> severity_levels("gaussian_blur", levels=8, high=7).tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    """
    p = numeric_param(name, param)
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not MIN_LEVELS <= levels <= MAX_LEVELS:
        raise ValueError(f"`levels` must be an integer from {MIN_LEVELS} to {MAX_LEVELS}, got {levels!r}.")
    mild, harsh = default_range(p)
    start = float(p.validate(mild if low is None else low, name))
    stop = float(p.validate(harsh if high is None else high, name))
    if start == stop:
        raise ValueError(f"{name}: `low` and `high` are both {start:g}; a sweep needs two different ends.")
    values = np.linspace(start, stop, int(levels))
    if p.kind == "int":
        values = np.array(list(dict.fromkeys(np.round(values).tolist())), dtype=np.float64)
    return values


def check_values(name: str, p: Param, values: Sequence[float]) -> np.ndarray:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ValueError(f"`values` must be a sequence of {p.name} values, got {values!r}.")
    if not 2 <= len(values) <= MAX_LEVELS:
        raise ValueError(f"`values` must hold 2 to {MAX_LEVELS} severities, got {len(values)}.")
    return np.array([float(p.validate(v, name)) for v in values], dtype=np.float64)


def native(p: Param, value: float) -> ParamValue:
    """A severity as the distortion expects it: ``int`` for integer parameters."""
    return int(round(value)) if p.kind == "int" else float(value)


def render(
    image: torch.Tensor, name: str, p: Param, values: Sequence[float], seed: int,
    base_params: Mapping[str, ParamValue] | None,
) -> torch.Tensor:
    """The distorted images at ``values``, rounded to 8 bits (one noise pattern for all)."""
    severities = [native(p, v) for v in values]
    return quantize_8bit(sweep(name, p.name, severities, image, seed=seed, base_params=base_params))


def check_ssim_mode(mode: str) -> None:
    if mode not in ("reference", "rgb"):
        raise ValueError(f"`ssim_mode` must be 'reference' (MATLAB luma) or 'rgb' (per channel), got {mode!r}.")


def check_base(name: str, p: Param, base_params: Mapping[str, Any] | None) -> dict[str, ParamValue]:
    base = dict(base_params or {})
    if p.name in base:
        raise DistortionParamError(f"{name}: '{p.name}' is the swept parameter; leave it out of `base_params`.")
    for key, value in base.items():
        REGISTRY[name].param(key).validate(value, name)
    return base



def metric_order(names) -> list[str]:
    """Registered metrics in display order, then any others (a metric no longer registered)."""
    known = [k for k in registry.names() if k in names]
    return known + sorted(set(names) - set(known))


def higher_is_better(key: str) -> bool:
    try:
        return registry.get(key).higher_is_better
    except registry.UnknownMetricError:
        raise ValueError(f"{key!r} is not a registered metric, so its direction is unknown; "
                         f"the known metrics are {', '.join(registry.names())}.") from None



def check_callable(progress: ProgressFn | None) -> None:
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be a callable progress(done, total) or None, got {progress!r}.")
