"""Why a region differs: a box's share of the LPIPS distance, layer by layer and channel by channel.

LPIPS is a sum over layers of each layer's map averaged over space (:mod:`core.lpips.engine`). A layer's
map has its own resolution (AlexNet's first layer is about a quarter of the image's side); as in
the official ``spatial=True`` upsampling, cell ``(i, j)`` of an ``h×w`` map stands for the image
rectangle ``[j·W/w, (j+1)·W/w) × [i·H/h, (i+1)·H/h)``. A box in image pixels covers some cells
fully and some in part; weighting each cell by the fraction of it inside the box gives

* each layer's **share**: ``Σ map·fraction / (h·w)``, the part of that layer's value that comes
  from the box. Boxes that tile the image have shares that add up to the image's LPIPS, exactly;
* the box's own **LPIPS** (a density): the shares' sum divided by the box's fraction of the image,
  the value a whole image distorted like this box would get. The whole image's box gives the
  image's LPIPS.

Per channel, a layer's map is a sum of ``head weight × (normalized ref feature − normalized dist
feature)²`` over channels (LPIPS's step 5), so each channel has its own map and share, and the
channels of a layer add up to that layer's share (:func:`channel_contributions`).

>>> import torch
>>> maps = [torch.ones(1, 1, 4, 4), torch.full((1, 1, 2, 2), 2.0)]
>>> region = region_contributions(maps, (8, 8), Box(0, 0, 4, 8), layer_names=("a", "b"))
>>> region.layer_shares, region.share, region.lpips
((0.5, 1.0), 1.5, 3.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .errors import InvalidArgumentError
from .lpips.engine import Engine, LpipsResult, ReferenceFeatures, normalize_channels

__all__ = ["Box", "ChannelContributions", "RegionContributions", "box_fractions", "box_around",
           "channel_contributions", "patch_scores", "region_contributions"]


@dataclass(frozen=True)
class Box:
    """A rectangle in image pixels: columns ``x0 ≤ x < x1``, rows ``y0 ≤ y < y1`` (floats allowed)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.width * self.height

    def pixels(self) -> tuple[int, int, int, int]:
        """The whole pixels the box touches, ``(x0, y0, x1, y1)`` as ints (for cropping)."""
        return math.floor(self.x0), math.floor(self.y0), math.ceil(self.x1), math.ceil(self.y1)

    def check(self, image_size: tuple[int, int]) -> Box:
        """This box, if it lies inside an image of ``image_size`` (H, W) and is not empty."""
        height, width = image_size
        values = (self.x0, self.y0, self.x1, self.y1)
        if not all(math.isfinite(float(v)) for v in values):
            raise InvalidArgumentError(f"A box needs finite corners, got {values}.")
        if not (0 <= self.x0 < self.x1 <= width and 0 <= self.y0 < self.y1 <= height):
            raise InvalidArgumentError(
                f"The box x {self.x0:g}–{self.x1:g}, y {self.y0:g}–{self.y1:g} must be a non-empty rectangle inside "
                f"the {width}×{height} image (0 ≤ x0 < x1 ≤ {width}, 0 ≤ y0 < y1 ≤ {height}).")
        return self


def box_around(x: float, y: float, side: int, image_size: tuple[int, int]) -> Box:
    """A ``side``×``side`` box centred on pixel (x, y), moved (not shrunk) to fit inside the image.

    >>> box_around(2, 50, 16, (64, 64))
    Box(x0=0, y0=42, x1=16, y1=58)
    """
    height, width = image_size
    side_x, side_y = min(side, width), min(side, height)
    x0 = int(min(max(round(x - side_x / 2), 0), width - side_x))
    y0 = int(min(max(round(y - side_y / 2), 0), height - side_y))
    return Box(x0, y0, x0 + side_x, y0 + side_y)


def _axis_fractions(cells: int, extent: int, low: float, high: float) -> np.ndarray:
    """The fraction of each of ``cells`` equal intervals of [0, extent) that lies in [low, high)."""
    step = extent / cells
    starts = np.arange(cells, dtype=np.float64) * step
    overlap = np.clip(np.minimum(starts + step, high) - np.maximum(starts, low), 0.0, None)
    return overlap / step


def box_fractions(map_size: tuple[int, int], image_size: tuple[int, int], box: Box) -> np.ndarray:
    """``h×w`` array: the fraction of each cell of an ``h×w`` layer map that lies inside ``box``.

    >>> box_fractions((2, 2), (4, 4), Box(0, 0, 3, 2)).tolist()
    [[1.0, 0.5], [0.0, 0.0]]
    """
    box = box.check(image_size)
    (h, w), (height, width) = map_size, image_size
    return np.outer(_axis_fractions(h, height, box.y0, box.y1), _axis_fractions(w, width, box.x0, box.x1))


def _plane(layer_map, index: int) -> np.ndarray:
    arr = layer_map.detach().cpu().double().numpy() if isinstance(layer_map, torch.Tensor) else np.asarray(layer_map, np.float64)
    if arr.ndim == 4:
        arr = arr[index, 0]
    elif arr.ndim == 3:
        arr = arr[0]
    if arr.ndim != 2:
        raise InvalidArgumentError(f"A layer map must be h×w, 1×h×w or N×1×h×w, got shape {arr.shape}.")
    return arr


@dataclass(frozen=True)
class RegionContributions:
    """A box's part in one comparison's LPIPS (see the module's docstring).

    ``layer_shares[l]`` is layer ``l``'s contribution from the box to the image's LPIPS and
    ``share`` their sum; ``layer_lpips`` and ``lpips`` are the same per unit of area (the box's own
    LPIPS, comparable with the image's). ``fraction_of_area`` is the box's area over the image's.
    """

    box: Box
    image_size: tuple[int, int]
    layer_names: tuple[str, ...]
    layer_shares: tuple[float, ...]
    layer_lpips: tuple[float, ...]
    share: float
    lpips: float
    fraction_of_area: float


def region_contributions(layer_maps: LpipsResult | Sequence, image_size: tuple[int, int], box: Box, *,
                         layer_names: Sequence[str] | None = None, index: int = 0) -> RegionContributions:
    """The LPIPS of ``box`` and each layer's share of it, from a comparison's per-layer maps.

    ``layer_maps`` is an :class:`~core.lpips.engine.LpipsResult` (image ``index`` of it) or its
    ``layer_maps`` (each N×1×h×w, or h×w arrays); ``image_size`` is (H, W) of the compared images.
    """
    if isinstance(layer_maps, LpipsResult):
        layer_names = layer_maps.layer_names if layer_names is None else layer_names
        layer_maps = layer_maps.layer_maps
    planes = [_plane(m, index) for m in layer_maps]
    names = tuple(layer_names) if layer_names is not None else tuple(f"layer {k + 1}" for k in range(len(planes)))
    if len(names) != len(planes):
        raise InvalidArgumentError(f"{len(planes)} layer maps but {len(names)} layer names.")
    box = box.check(image_size)
    shares = tuple(float((p * box_fractions(p.shape, image_size, box)).sum() / p.size) for p in planes)
    area = box.area / (image_size[0] * image_size[1])
    share = float(sum(shares))
    return RegionContributions(box=box, image_size=tuple(image_size), layer_names=names, layer_shares=shares,
                               layer_lpips=tuple(s / area for s in shares), share=share, lpips=share / area,
                               fraction_of_area=area)


@dataclass(frozen=True)
class ChannelContributions:
    """One layer's channels ranked by their part in the distance (over the image or a box).

    ``values[c]`` is channel ``c``'s contribution (all channels; they add up to ``layer_value``,
    the layer's contribution over the same area); ``top`` holds the ``top_k`` largest channel
    indices, largest first, with their ``top_shares`` (fractions of ``layer_value``) and
    ``top_maps`` (``top_k``×h×w, the channel's term at the layer's resolution: head weight ×
    squared difference of the normalized features).
    """

    layer: int
    layer_name: str
    box: Box | None
    values: np.ndarray  # (C,)
    layer_value: float
    top: tuple[int, ...]
    top_values: tuple[float, ...]
    top_shares: tuple[float, ...]
    top_maps: np.ndarray  # (top_k, h, w)


def _layer_index(engine: Engine, layer: int | str) -> int:
    names = engine.network.layer_names
    if isinstance(layer, str):
        if layer not in names:
            raise InvalidArgumentError(f"Unknown layer {layer!r}; {engine.net} has {', '.join(names)}.")
        return names.index(layer)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(names):
        raise InvalidArgumentError(f"`layer` must be a name ({', '.join(names)}) or an index 0–{len(names) - 1}, got {layer!r}.")
    return layer


@torch.inference_mode()
def channel_contributions(engine: Engine, ref: ReferenceFeatures, dist: torch.Tensor, layer: int | str, *,
                          box: Box | None = None, top_k: int = 8) -> ChannelContributions:
    """Each channel of ``layer`` ranked by its contribution to LPIPS between ``ref`` and ``dist``
    (1×3×H×W in [0, 1]), over the whole image or over ``box``. The backbone up to ``layer``: at
    most one pass.

    >>> engine = Engine("alex")                                          # doctest: +SKIP
    >>> ch = channel_contributions(engine, engine.reference(ref), dist, "conv1")  # doctest: +SKIP
    >>> ch.values.sum(), ch.layer_value                                  # doctest: +SKIP
    """
    k = _layer_index(engine, layer)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InvalidArgumentError(f"`top_k` must be a positive whole number of channels, got {top_k!r}.")
    batch = engine._prepare(dist, "dist")
    if batch.shape[0] != 1 or ref.image.shape[0] != 1:
        raise InvalidArgumentError("channel_contributions() takes one reference and one distorted image (1×3×H×W).")
    if tuple(batch.shape[-2:]) != ref.size:
        raise InvalidArgumentError(f"`dist` is {tuple(batch.shape[-2:])} but the reference is {ref.size}; "
                                   "compare images of the same size.")
    f1 = normalize_channels(engine.network.taps(batch * 2 - 1, upto=k)[k])  # the layers after k are not needed
    terms = (ref.features[k] - f1) ** 2  # 1×C×h×w
    if engine.lpips:
        terms = terms * engine.network.head_weights[k].view(1, -1, 1, 1)
    terms = terms[0].double().cpu().numpy()
    channels, h, w = terms.shape
    weights = np.ones((h, w)) if box is None else box_fractions((h, w), ref.size, box)
    values = (terms * weights).sum(axis=(1, 2)) / (h * w)
    layer_value = float(values.sum())
    order = np.argsort(-values, kind="stable")[:min(top_k, channels)]
    shares = tuple(float(values[c] / layer_value) if layer_value > 0 else 0.0 for c in order)
    return ChannelContributions(layer=k, layer_name=engine.network.layer_names[k], box=box, values=values,
                                layer_value=layer_value, top=tuple(int(c) for c in order),
                                top_values=tuple(float(values[c]) for c in order), top_shares=shares,
                                top_maps=terms[order].astype(np.float32))


def patch_scores(ref: torch.Tensor, dist: torch.Tensor, box: Box, *, metrics: Sequence[str] = ("psnr", "ssim"),
                 ssim_mode: str = "reference") -> dict[str, float]:
    """Metrics of the pixels inside ``box`` alone (the box's whole pixels cropped from both
    1×3×H×W images), e.g. the patch's PSNR and SSIM; NaN with no error where the patch is smaller
    than a metric accepts. Needs no LPIPS engine: pass metrics that need none.

    >>> import torch
    >>> ref = torch.zeros(1, 3, 32, 32); dist = ref.clone(); dist[..., :16, :16] = 0.4
    >>> round(patch_scores(ref, dist, Box(0, 0, 16, 16), metrics=("psnr",))["psnr"], 2)
    7.96
    """
    from . import metrics as registry
    from .comparison import compare

    box = box.check(tuple(ref.shape[-2:]))
    x0, y0, x1, y1 = box.pixels()
    ref_patch, dist_patch = ref[..., y0:y1, x0:x1], dist[..., y0:y1, x0:x1]
    side = min(y1 - y0, x1 - x0)
    out: dict[str, float] = {}
    for key in registry.resolve(metrics):
        spec = registry.get(key)
        if side < spec.minimum(registry.MetricContext(ssim_mode=ssim_mode)):
            out[key] = math.nan
            continue
        out[key] = float(compare(None, ref_patch, dist_patch, metrics=key, ssim_mode=ssim_mode, spatial=False)[key][0])
    return out
