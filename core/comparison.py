"""Every registered metric for a reference and any number of distorted images, in one result.

This is what the app, the teaching pages and the command line call. :func:`prepare_reference`
does, once per reference, the work of every metric that depends only on the reference (LPIPS's
features, SSIM's 8-bit luma...); :func:`compare` then scores distorted images against it. The
metrics come from :mod:`core.metrics`: a newly registered metric shows up here with no change.
Nothing here decides how anything is shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import torch

from . import metrics as registry
from .errors import InvalidArgumentError
from .lpips.engine import Engine, LpipsResult, ReferenceFeatures
from .metrics import MetricContext
from .images.tensors import check_dist, check_unit_batch

__all__ = ["Comparison", "PreparedReference", "compare", "prepare_reference"]


@dataclass(frozen=True)
class PreparedReference:
    """A reference image with each metric's prepared state, made under ``context``.

    ``skipped`` maps a metric to the reason it cannot score images of this size (its values
    will be NaN), for metrics registered with ``small_images="nan"``.
    """

    image: torch.Tensor  # N×3×H×W in [0, 1] on the context's device
    parts: Mapping[str, Any]
    skipped: Mapping[str, str]
    context: MetricContext

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(k for k in registry.names() if k in self.parts or k in self.skipped)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.image.shape[-2:])  # type: ignore[return-value]


@dataclass(frozen=True)
class Comparison:
    """Metrics of N distorted images against one reference, keyed by metric name.

    ``values[key]`` has shape (N,) (NaN where ``skipped[key]`` says why); ``maps[key]`` is
    N×1×h×w for metrics with a map when maps were asked for (LPIPS: image size; PSNR: the
    squared error, image size; SSIM: the valid region, 5 px smaller per border). ``lpips`` keeps
    LPIPS's layers and maps typed. Tensors are on the CPU.
    """

    values: Mapping[str, torch.Tensor]
    maps: Mapping[str, torch.Tensor] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)
    context: MetricContext = field(default_factory=MetricContext)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics in this result, in display order."""
        return tuple(self.values)

    @property
    def lpips(self) -> LpipsResult | None:
        return self.details.get("lpips")

    @property
    def ssim_mode(self) -> str:
        return self.context.ssim_mode

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self.values:
            registry.get(key)  # an unknown name lists the known ones
            raise KeyError(f"{key!r} was not computed; this result has {', '.join(self.values)}.")
        return self.values[key]

    def __len__(self) -> int:
        return int(next(iter(self.values.values())).shape[0]) if self.values else 0

    def row(self, i: int = 0) -> dict[str, Any]:
        """Image ``i``'s values as plain Python (JSON-able; +inf kept as float, NaN where skipped),
        each metric's extras (LPIPS: layers, net, version, calibrated) and the settings they
        depend on (SSIM: ``ssim_mode``)."""
        out: dict[str, Any] = {}
        settings: dict[str, Any] = {}
        for key, values in self.values.items():
            spec = registry.get(key)
            out[key] = float(values[i])
            detail = self.details.get(key)
            if spec.extras is not None and detail is not None:
                out.update(spec.extras(detail, i))
            for name in spec.settings:
                settings[name] = getattr(self.context, name)
        out.update(settings)
        return out


def _context(engine: Engine | None, ssim_mode: str, precise: bool, spatial: bool) -> MetricContext:
    if engine is not None and not isinstance(engine, Engine):
        raise TypeError(f"`engine` must be a core.Engine or None, got {type(engine).__name__}.")
    return MetricContext(engine=engine, ssim_mode=ssim_mode, precise=bool(precise), spatial=bool(spatial))


def prepare_reference(engine: Engine | None, ref: torch.Tensor, *, metrics: str | Sequence[str] | None = None,
                      ssim_mode: str = "reference", precise: bool = True,
                      features: ReferenceFeatures | None = None) -> PreparedReference:
    """Do, once, each metric's work that depends only on ``ref`` (N×3×H×W in [0, 1]).

    ``engine`` is needed when LPIPS is among ``metrics`` (default: every registered metric);
    ``features`` reuses LPIPS features already computed for ``ref`` (``engine.reference(ref)``).
    """
    keys = registry.resolve(metrics)
    ctx = _context(engine, ssim_mode, precise, True)
    if features is not None and tuple(features.image.shape[-2:]) != tuple(ref.shape[-2:]):
        raise InvalidArgumentError(f"`features` were computed on a {features.size} image but `ref` is "
                                   f"{tuple(ref.shape[-2:])}; pass the same image to both.")
    batch = check_unit_batch(ref, "ref").detach().to(ctx.device, torch.float32)
    # The metrics hand each other the reference's 8-bit levels, luma and SSIM moments
    # (MetricContext.scratch); the stored context keeps no such scratch.
    prepare_ctx = replace(ctx, scratch={})
    parts: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    height, width = batch.shape[-2:]
    for key in keys:
        spec = registry.get(key)
        side = spec.minimum(ctx)
        if spec.small_images == "nan" and min(height, width) < side:
            skipped[key] = f"{spec.label} needs at least {side}×{side} pixels; this image is {width}×{height}"
            continue
        parts[key] = features if key == "lpips" and features is not None else spec.prepare(batch, prepare_ctx)
    return PreparedReference(batch, MappingProxyType(parts), MappingProxyType(skipped), ctx)


def _as_prepared(engine: Engine | None, ref, keys: tuple[str, ...], ssim_mode: str,
                 precise: bool) -> PreparedReference:
    if isinstance(ref, PreparedReference):
        missing = [k for k in keys if k not in ref.parts and k not in ref.skipped]
        if missing:
            raise InvalidArgumentError(f"This prepared reference has no {', '.join(missing)}; "
                                       "prepare it with those metrics (prepare_reference(..., metrics=...)).")
        ctx = ref.context
        if (ctx.ssim_mode, ctx.precise) != (ssim_mode, bool(precise)) and any(
                "ssim_mode" in registry.get(k).settings for k in keys):
            raise InvalidArgumentError(f"This reference was prepared with ssim_mode={ctx.ssim_mode!r}, "
                                       f"precise={ctx.precise}; asked for ssim_mode={ssim_mode!r}, "
                                       f"precise={bool(precise)}. Prepare it again.")
        if engine is not None and ctx.engine is not None and engine is not ctx.engine and "lpips" in keys:
            if (engine.net, engine.version, engine.lpips) != (ctx.engine.net, ctx.engine.version, ctx.engine.lpips):
                raise InvalidArgumentError("This reference was prepared with another LPIPS network; prepare it again.")
        return ref
    if isinstance(ref, ReferenceFeatures):  # LPIPS features already computed: reuse them
        return prepare_reference(engine, ref.image, metrics=keys, ssim_mode=ssim_mode, precise=precise, features=ref)
    return prepare_reference(engine, ref, metrics=keys, ssim_mode=ssim_mode, precise=precise)


def compare(engine: Engine | None, ref: PreparedReference | ReferenceFeatures | torch.Tensor, dist: torch.Tensor, *,
            metrics: str | Sequence[str] | None = None, ssim_mode: str | None = None,
            spatial: bool | Sequence[str] = True, precise: bool | None = None) -> Comparison:
    """Each metric of each image in ``dist`` (N×3×H×W in [0, 1]) against ``ref``.

    ``ref`` is an image batch, LPIPS's :class:`~core.lpips.engine.ReferenceFeatures`, or a
    :class:`PreparedReference` (then each new image costs one backbone pass plus the classic
    metrics' own work). ``metrics`` (default: all registered, see :func:`core.metrics.names`)
    picks which; ``engine`` is needed for LPIPS. ``spatial`` adds maps (``True``: every metric
    that has one; a sequence of keys: only those, e.g. ``("lpips",)`` while other maps are not on
    screen); ``precise=False``
    computes SSIM and MS-SSIM in float32 on the CPU (within ~1e-5, about 5× faster): for
    interactive views; the command line keeps the float64 default. A prepared reference brings
    its own ``ssim_mode`` and ``precise``; asking for others is an error.

    >>> import torch, core
    >>> ref = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> result = core.compare(None, ref, ref.flip(-1), metrics="psnr,ssim")
    >>> result.metrics, round(float(result["ssim"][0]), 3) < 1
    (('psnr', 'ssim'), True)
    """
    if isinstance(ref, PreparedReference) and metrics is None:
        keys = ref.metrics
    else:
        keys = registry.resolve(metrics)
    if isinstance(ref, PreparedReference):  # its own settings, unless others are asked for
        ssim_mode = ref.context.ssim_mode if ssim_mode is None else ssim_mode
        precise = ref.context.precise if precise is None else precise
    ssim_mode = "reference" if ssim_mode is None else ssim_mode
    precise = True if precise is None else precise
    prepared = _as_prepared(engine, ref, keys, ssim_mode, precise)
    base = prepared.context
    mapped = set(keys) if spatial is True else set() if spatial is False else set(registry.resolve(spatial))
    ctx = _context(base.engine if base.engine is not None else engine, base.ssim_mode, base.precise, bool(mapped))
    scratch: dict = {}  # one call's shared work (8-bit levels, luma, SSIM's full-scale maps)
    # The metrics run where the engine runs (the GPU when there is one).
    batch = check_dist(prepared.image, dist).detach().to(ctx.device, torch.float32)
    n = max(batch.shape[0], prepared.image.shape[0])
    values: dict[str, torch.Tensor] = {}
    maps: dict[str, torch.Tensor] = {}
    details: dict[str, Any] = {}
    for key in keys:
        if key in prepared.skipped:
            values[key] = torch.full((n,), math.nan)
            continue
        call_ctx = replace(ctx, spatial=key in mapped, scratch=scratch)
        scored = registry.get(key).score(prepared.parts[key], batch, call_ctx)
        values[key] = scored.values
        if key in mapped and scored.map is not None:
            maps[key] = scored.map
        if scored.detail is not None:
            details[key] = scored.detail
    return Comparison(values=MappingProxyType(values), maps=MappingProxyType(maps),
                      details=MappingProxyType(details), skipped=MappingProxyType({k: v for k, v in prepared.skipped.items() if k in keys}),
                      context=ctx)
