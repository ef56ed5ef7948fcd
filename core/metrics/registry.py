"""The metric registry: one immutable :class:`MetricSpec` per metric, looked up by key.

A spec says what a metric is (key, label, direction, unit, range, map, differentiability,
minimum size) and how to compute it in two steps: ``prepare`` does the work that depends only
on the reference (LPIPS's features, SSIM's 8-bit luma), and ``score`` scores a batch of
distorted images against that prepared reference. Everything that lists metrics (the app's
cards, the sweeps, the quiz dashboard, the command line's columns) iterates :func:`names`.

>>> from core import metrics
>>> metrics.names()[:2]
('lpips', 'psnr')
>>> metrics.get("ssim").higher_is_better
True
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import InvalidArgumentError, LpipsExplorerError

if TYPE_CHECKING:
    import torch

    from ..lpips.engine import Engine

__all__ = [
    "Deferred", "MapSpec", "MetricContext", "MetricScore", "MetricSpec", "UnknownMetricError",
    "defaults", "get", "names", "register", "registered", "resolve", "specs", "unregister",
]


class UnknownMetricError(LpipsExplorerError, KeyError):
    """A metric key that no spec is registered under."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Deferred:
    """A function of another module, imported when first called.

    The catalog names each metric's implementation this way (``Deferred("core.metrics.psnr",
    "score")``), so that listing the metrics (the command line's ``--help`` and ``metrics``, the
    app's first screen) imports no PyTorch; the module loads on the metric's first use.

    >>> sqrt = Deferred("math", "sqrt")
    >>> sqrt(16.0), sqrt
    (4.0, Deferred('math', 'sqrt'))
    """

    __slots__ = ("module", "name", "_function")

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name, self._function = module, name, None

    def resolve(self) -> Callable:
        if self._function is None:
            import importlib

            self._function = getattr(importlib.import_module(self.module), self.name)
        return self._function

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Deferred({self.module!r}, {self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Deferred) and (self.module, self.name) == (other.module, other.name)

    def __hash__(self) -> int:
        return hash((self.module, self.name))

    def __reduce__(self):  # pickles as its name, not as the loaded function
        return (Deferred, (self.module, self.name))



@dataclass(frozen=True)
class MetricContext:
    """Everything besides the images that a metric may read.

    ``engine`` is the LPIPS engine (the network, its version and device); ``ssim_mode`` and
    ``precise`` are the SSIM family's settings; ``spatial`` asks for maps. Metrics run on
    ``device``: the engine's when there is one.
    """

    engine: Engine | None = None
    ssim_mode: str = "reference"
    precise: bool = True
    spatial: bool = True
    # Work one metric can hand to another within a single compare() call (SSIM's full-scale
    # maps, which MS-SSIM's finest scale also needs); None outside such a call.
    scratch: dict | None = field(default=None, compare=False, repr=False)

    @property
    def device(self) -> torch.device:
        import torch  # here, not at the top: listing the metrics must not import PyTorch

        return self.engine.device if self.engine is not None else torch.device("cpu")


@dataclass(frozen=True)
class MetricScore:
    """One metric's verdict on N distorted images: ``values`` (N,) and, where it has one and
    maps were asked for, ``map`` (N×1×h×w); ``detail`` is whatever else the metric returns
    (LPIPS: its :class:`~core.lpips.engine.LpipsResult` with layers). Tensors are on the CPU."""

    values: torch.Tensor
    map: torch.Tensor | None = None
    detail: Any = None


@dataclass(frozen=True)
class MapSpec:
    """A metric's per-pixel map, as a viewer needs to show it.

    ``higher_is_better`` is the map's own direction (PSNR's map is the squared error: lower is
    better although PSNR is higher-is-better); ``value_range`` its bounds (infinite where open);
    ``file_stem`` names it in downloads (``ssim_map.png``, ``raw_maps.npz``'s keys).
    """

    title: str
    unit: str
    file_stem: str
    higher_is_better: bool
    value_range: tuple[float, float] = (0.0, math.inf)


@dataclass(frozen=True)
class MetricSpec:
    """What a metric is and how to compute it.

    ``map`` describes the per-pixel map where the metric has one. ``prepare(ref, ctx)`` takes
    the reference (N×3×H×W in [0, 1] on ``ctx.device``) and returns what
    ``score(prepared, dist, ctx)`` needs; ``score`` returns a :class:`MetricScore`.
    ``min_size`` is the smallest side accepted (a callable of the context where it depends on
    it, like LPIPS's network). Below it, ``small_images="nan"`` makes :func:`core.compare` report
    NaN with the reason instead of raising. ``settings`` names the :class:`MetricContext` fields
    the values depend on (they travel with the values into CSV and JSON). ``tie`` is the
    smallest difference that counts when rankings are compared (teaching sweeps). ``extras(detail, i)``
    adds metric-specific fields to image ``i``'s row (LPIPS's layers). ``default=False`` marks a
    metric that costs too much per image to compute unasked on a CPU (a slider move, a default
    command-line run): :func:`defaults` leaves it out, :func:`names` still lists it.
    """

    key: str
    label: str
    higher_is_better: bool
    prepare: Callable[[torch.Tensor, MetricContext], Any]
    score: Callable[[Any, torch.Tensor, MetricContext], MetricScore]
    description: str = ""
    unit: str = ""
    value_range: tuple[float, float] = (-math.inf, math.inf)
    identical: float = math.nan  # the value two identical images get
    map: MapSpec | None = None
    differentiable: bool = False
    min_size: int | Callable[[MetricContext], int] = 1
    small_images: Literal["error", "nan"] = "error"
    digits: int = 4
    tie: float = 1e-3  # differences below this are ties when metrics are compared with each other
    settings: tuple[str, ...] = ()
    title_detail: Callable[[MetricContext], str] | None = field(default=None, repr=False)
    extras: Callable[[Any, int], dict[str, Any]] | None = field(default=None, repr=False)
    default: bool = True

    def __post_init__(self) -> None:
        if not self.key.isidentifier() or self.key != self.key.lower():
            raise InvalidArgumentError(f"A metric key must be a lower-case identifier (a CSV column), got {self.key!r}.")
        unknown = [s for s in self.settings if s not in MetricContext.__dataclass_fields__]
        if unknown:
            raise InvalidArgumentError(f"`settings` of {self.key!r} names unknown context fields {unknown}.")

    @property
    def has_map(self) -> bool:
        """Whether :attr:`score` returns a per-pixel map (described by :attr:`map`)."""
        return self.map is not None

    def minimum(self, ctx: MetricContext) -> int:
        """The smallest image side this metric accepts under ``ctx``."""
        return int(self.min_size(ctx)) if callable(self.min_size) else int(self.min_size)

    def title(self, ctx: MetricContext | None = None) -> str:
        """The label with the settings that shape the value: ``"LPIPS (alex v0.1)"``, ``"SSIM (rgb)"``."""
        detail = self.title_detail(ctx) if (self.title_detail is not None and ctx is not None) else ""
        return f"{self.label} ({detail})" if detail else self.label

    @property
    def direction(self) -> str:
        """How to read the value, in words."""
        if self.higher_is_better:
            return "higher = more similar"
        return "lower = more similar, higher = more different"

    @property
    def meaning(self) -> str:
        """The direction and, where known, what identical images score."""
        if math.isnan(self.identical):
            return self.direction
        same = ("∞" if self.identical > 0 else "-∞") if math.isinf(self.identical) else f"{self.identical:g}"
        return f"{self.direction} ({same} = identical)"

    def format(self, value: float, *, unit: bool = True) -> str:
        """A value as shown to people: ``n/a`` for NaN, ``∞`` for infinity, ``digits`` decimals."""
        if math.isnan(value):
            return "n/a"
        text = ("∞" if value > 0 else "-∞") if math.isinf(value) else f"{value:.{self.digits}f}"
        return f"{text} {self.unit}" if unit and self.unit else text


_lock = threading.Lock()
_registry: dict[str, MetricSpec] = {}


def register(spec: MetricSpec, *, replace: bool = False) -> MetricSpec:
    """Add ``spec`` to the registry (at the end of the display order); returns it."""
    if not isinstance(spec, MetricSpec):
        raise TypeError(f"register() takes a MetricSpec, got {type(spec).__name__}.")
    with _lock:
        if spec.key in _registry and not replace:
            raise InvalidArgumentError(f"A metric {spec.key!r} is already registered; pass replace=True to replace it.")
        _registry[spec.key] = spec
    return spec


def unregister(key: str) -> MetricSpec:
    """Remove and return the spec registered under ``key``."""
    with _lock:
        if key not in _registry:
            raise UnknownMetricError(_unknown_message(key))
        return _registry.pop(key)


@contextmanager
def registered(spec: MetricSpec) -> Iterator[MetricSpec]:
    """Register ``spec`` for the duration of a ``with`` block (tests, experiments)."""
    register(spec)
    try:
        yield spec
    finally:
        unregister(spec.key)


def names() -> tuple[str, ...]:
    """The registered keys, in display order."""
    with _lock:
        return tuple(_registry)


def specs() -> tuple[MetricSpec, ...]:
    """The registered specs, in display order."""
    with _lock:
        return tuple(_registry.values())


def defaults() -> tuple[str, ...]:
    """The keys computed when none are named (``default=True``), in display order: every
    metric but those too slow for an interactive move on a CPU.

    >>> defaults()
    ('lpips', 'psnr', 'ssim', 'ms_ssim', 'gmsd')
    """
    with _lock:
        return tuple(k for k, spec in _registry.items() if spec.default)


def _unknown_message(key: object) -> str:
    return f"Unknown metric {key!r}; the known metrics are {', '.join(names())}."


def get(key: str) -> MetricSpec:
    """The spec registered under ``key``; an unknown key raises an error listing the known ones.

    >>> get("psnr").unit
    'dB'
    >>> get("nope")
    Traceback (most recent call last):
    ...
    core.metrics.registry.UnknownMetricError: Unknown metric 'nope'; the known metrics are lpips, psnr, ssim, ms_ssim, dists, fsim, vif, vifp, gmsd, vsi, mad_iqa, cw_ssim, nlpd.
    """
    with _lock:
        spec = _registry.get(key)
    if spec is None:
        raise UnknownMetricError(_unknown_message(key))
    return spec


def resolve(metrics: str | Mapping | Any | None) -> tuple[str, ...]:
    """``None`` → the default keys (:func:`defaults`: every metric but the slow ones); a
    comma-separated string or a sequence → those keys, checked, in display order, without repeats.

    >>> resolve("ssim, lpips")
    ('lpips', 'ssim')
    """
    if metrics is None:
        return defaults()
    wanted = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    wanted = [m for m in wanted if m != ""]
    if not wanted:
        raise InvalidArgumentError(f"No metric named; choose from {', '.join(names())}.")
    for key in wanted:
        get(key)
    return tuple(k for k in names() if k in wanted)
