"""Explore's data and pictures for one comparison, without Streamlit.

What one slider move produces between the metrics and the page: the display-ready numbers
and maps (:func:`explore_data`), the colour range of each metric's map (:func:`map_scale`),
the figures (:func:`layer_figure`, :func:`map_figure`) and the JPEG images (:func:`images`).
The page (:mod:`views.explore`) and the move benchmark (``bench/move.py``) call the same
functions, so the benchmark measures what the page does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from viz import heatmaps


def explore_data(result) -> dict[str, Any]:
    """A :class:`core.Comparison` of one image → plain numbers and numpy maps (CPU)."""
    return {
        "row": result.row(0),
        "metrics": result.metrics,
        "skipped": dict(result.skipped),
        "layer_maps": [m[0, 0].numpy() for m in result.lpips.layer_maps] if result.lpips is not None else [],
        "maps": {key: m[0, 0].numpy() for key, m in result.maps.items()},
    }


def merge_data(parts: list[dict[str, Any]], order: tuple[str, ...]) -> dict[str, Any]:
    """One :func:`explore_data` dict from those of separate calls on disjoint metrics (the page
    computes LPIPS first, so that its card is sent before the other metrics are computed)."""
    if len(parts) == 1:
        return parts[0]
    row: dict[str, Any] = {}
    merged: dict[str, Any] = {"row": row, "metrics": tuple(k for k in order if any(k in p["metrics"] for p in parts)),
                              "skipped": {}, "layer_maps": [], "maps": {}}
    for part in parts:
        row.update(part["row"])
        merged["skipped"].update(part["skipped"])
        merged["maps"].update(part["maps"])
        merged["layer_maps"] = merged["layer_maps"] or part["layer_maps"]
    return merged


def map_scale(key: str, values: np.ndarray) -> tuple[float, float, str]:
    """``(zmin, zmax, colour scale)`` for metric ``key``'s map: its declared range where it is
    bounded, a robust maximum where it is open; Viridis where higher is better (dark = worse
    both ways)."""
    from core import metrics

    spec = metrics.get(key).map
    low, high = spec.value_range
    zmin = max(low, min(0.0, float(np.nanmin(values))))
    zmax = high if math.isfinite(high) else heatmaps.robust_max(values)
    return zmin, zmax, "Viridis" if spec.higher_is_better else heatmaps.DEFAULT_COLORSCALE


def map_figure(key: str, values: np.ndarray, image_size: tuple[int, int], cache: dict | None = None):
    """The hoverable heatmap of metric ``key``'s map (shrunk for the browser). With a ``cache``
    (one per browser session) the figure is built once per layout and only its data changes."""
    from core import metrics

    spec = metrics.get(key).map
    zmin, zmax, colours = map_scale(key, values)
    layout = (image_size, values.shape, colours)
    fig = _cached(cache, f"map.{key}", layout)
    if fig is not None:
        return heatmaps.update_single_map(fig, values, zmin=zmin, zmax=zmax)
    fig = heatmaps.single_map(values, title=spec.title, unit=spec.unit, image_size=image_size,
                              zmin=zmin, zmax=zmax, colorscale=colours)
    return _store(cache, f"map.{key}", layout, fig)


def layer_figure(data: dict, image_size: tuple[int, int], shared: bool, cache: dict | None = None):
    """LPIPS's per-layer maps, one hoverable panel each; with a ``cache``, built once per layout."""
    row = data["row"]
    layout = (image_size, shared, tuple(m.shape for m in data["layer_maps"]), tuple(row["lpips_layer_names"]))
    fig = _cached(cache, "layers", layout)
    if fig is not None:
        return heatmaps.update_layer_grid(fig, data["layer_maps"], row["lpips_layer_names"], row["lpips_layers"],
                                          shared_scale=shared)
    fig = heatmaps.layer_grid(data["layer_maps"], row["lpips_layer_names"], row["lpips_layers"],
                              image_size=image_size, shared_scale=shared)
    return _store(cache, "layers", layout, fig)


def _cached(cache: dict | None, name: str, layout: tuple):
    if cache is None:
        return None
    entry = cache.get(name)
    return entry[1] if entry is not None and entry[0] == layout else None


def _store(cache: dict | None, name: str, layout: tuple, fig):
    if cache is not None:  # one figure per name: a new layout replaces the old one
        cache[name] = (layout, fig)
    return fig


def lpips_heat(data: dict) -> tuple[np.ndarray, float]:
    """The LPIPS map in colour and the top of its scale."""
    lp_map = data["maps"]["lpips"]
    vmax = float(np.max(lp_map)) if np.max(lp_map) > 0 else 1.0
    return heatmaps.colorize(lp_map, 0.0, vmax), vmax


def images(dist_pixels: np.ndarray, data: dict, overlay: bool = False, opacity: float = 0.6) -> dict[str, Any]:
    """The JPEGs a move sends: the distorted image and the LPIPS map (or the map over the image)."""
    heat, vmax = lpips_heat(data)
    shown = heatmaps.overlay(dist_pixels, heat, opacity) if overlay else heat
    # The map alone is smooth colour: half-resolution chroma loses nothing visible there.
    return {"distorted": heatmaps.encode(dist_pixels),
            "lpips_map": heatmaps.encode(shown, chroma="4:4:4" if overlay else "4:2:0"), "vmax": vmax}


def channel_figure(channels, image_size: tuple[int, int], cache: dict | None = None):
    """The top channels' maps of one layer (a :class:`core.regions.ChannelContributions`); with a
    ``cache``, built once per layout and then only updated."""
    maps = channels.top_maps
    layout = (image_size, maps.shape)
    fig = _cached(cache, "channels", layout)
    if fig is not None:
        heatmaps.update_channel_grid(fig, maps, channels.top, channels.top_shares, layer=channels.layer_name)
    else:
        fig = _store(cache, "channels", layout, heatmaps.channel_grid(maps, channels.top, channels.top_shares,
                                                                      image_size=image_size, layer=channels.layer_name))
    box = channels.box
    heatmaps.outline_box(fig, None if box is None else (box.x0, box.y0, box.x1, box.y1))
    return fig


def patch_pictures(ref_pixels: np.ndarray, dist_pixels: np.ndarray, box: tuple[int, int, int, int]) -> tuple[bytes, bytes]:
    """The two patches inside ``box`` (x0, y0, x1, y1, whole pixels) as lossless PNGs; the page
    enlarges them with nearest-neighbour pixels."""
    x0, y0, x1, y1 = box
    return (heatmaps.encode(np.ascontiguousarray(ref_pixels[y0:y1, x0:x1]), "PNG"),
            heatmaps.encode(np.ascontiguousarray(dist_pixels[y0:y1, x0:x1]), "PNG"))
