"""Heatmaps as pictures: colour maps, overlays, and small numeric grids for hover.

Maps travel to the browser as compressed images (the big ones) or as numeric grids no larger
than ``max_side`` per side (the ones you hover), never as megabytes of JSON numbers.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import get_colorscale, hex_to_rgb, sample_colorscale
from plotly.subplots import make_subplots
from PIL import Image

DEFAULT_COLORSCALE = "Magma"
# Axes of an image: no ticks, grid or zero line.
_BARE = dict(showticklabels=False, ticks="", showgrid=False, zeroline=False, showline=False)


def robust_max(values: np.ndarray, percentile: float = 99.5) -> float:
    """Upper end of a colour scale that a few outlier pixels cannot wash out (1.0 if all zero).

    >>> robust_max(np.r_[np.zeros(999), 1000.0], 99.0)
    1.0
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    top = float(np.percentile(finite, percentile)) if finite.size else 0.0
    return top if top > 0 else 1.0


@lru_cache(maxsize=8)
def colormap_lut(name: str = DEFAULT_COLORSCALE) -> np.ndarray:
    """A 256×3 uint8 lookup table sampled from a Plotly colour scale.

    >>> colormap_lut("Viridis").shape
    (256, 3)
    """
    colors = sample_colorscale(get_colorscale(name), list(np.linspace(0.0, 1.0, 256)), colortype="rgb")
    rows = []
    for c in colors:
        if c.startswith("#"):
            rows.append(hex_to_rgb(c))
        else:
            rows.append(tuple(int(round(float(v))) for v in c[c.index("(") + 1:-1].split(",")[:3]))
    return np.asarray(rows, dtype=np.uint8)


def colorize(values: np.ndarray, vmin: float, vmax: float, colorscale: str = DEFAULT_COLORSCALE) -> np.ndarray:
    """Map a 2-D float array to H×W×3 uint8 colours; NaN becomes mid-grey.

    >>> colorize(np.array([[0.0, 1.0]]), 0.0, 1.0).shape
    (1, 2, 3)
    """
    arr = np.asarray(values, dtype=np.float64)
    span = vmax - vmin if vmax > vmin else 1.0
    # In place, and one 4-byte lookup per pixel: this runs on every slider move (4 ms → 1.5 ms
    # for a 512² map), with the same rounding as round(clip((x - vmin) / span) * 255).
    idx = arr - vmin
    idx /= span
    np.clip(idx, 0.0, 1.0, out=idx)
    idx *= 255
    np.round(idx, out=idx)
    nan = np.isnan(arr)
    has_nan = bool(nan.any())
    if has_nan:
        idx[nan] = 0
    out = np.ascontiguousarray(_packed_lut(colorscale)[idx.astype(np.uint8)].view(np.uint8)
                               .reshape(arr.shape + (4,))[..., :3])
    if has_nan:
        out[nan] = 128
    return out


@lru_cache(maxsize=8)
def _packed_lut(name: str) -> np.ndarray:
    """:func:`colormap_lut` as one uint32 per entry (R, G, B, 0 in memory order)."""
    packed = np.zeros(256, dtype=np.uint32)
    packed.view(np.uint8).reshape(256, 4)[:, :3] = colormap_lut(name)
    return packed


def overlay(image: np.ndarray, heat: np.ndarray, opacity: float) -> np.ndarray:
    """Blend a colourized heatmap over an H×W×3 uint8 image (``opacity`` 0 = image only)."""
    if image.shape != heat.shape:
        raise ValueError(f"image {image.shape} and heatmap {heat.shape} must have the same shape.")
    a = float(np.clip(opacity, 0.0, 1.0))
    return np.round(image.astype(np.float32) * (1 - a) + heat.astype(np.float32) * a).astype(np.uint8)


def encode(image: np.ndarray, fmt: str = "JPEG", quality: int = 90, chroma: str = "4:4:4") -> bytes:
    """Encode an H×W×3 uint8 array (PNG is lossless; JPEG is ~5× smaller for display).

    JPEG keeps full colour resolution by default (a distortion's colour fringes stay visible);
    ``chroma="4:2:0"`` halves it, for smooth colour maps (smaller and faster to encode)."""
    buf = io.BytesIO()
    pil = Image.fromarray(image)
    if fmt.upper() == "JPEG":
        pil.save(buf, "JPEG", quality=quality, subsampling=chroma)
    else:
        pil.save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def shrink(values: np.ndarray, max_side: int) -> np.ndarray:
    """Block-average a 2-D map so neither side exceeds ``max_side`` (display only; keeps the mean
    of each block, ignoring NaN)."""
    arr = np.asarray(values, dtype=np.float64)
    h, w = arr.shape
    factor = int(np.ceil(max(h, w) / max_side))
    if factor <= 1:
        return arr
    ph, pw = -h % factor, -w % factor
    padded = np.pad(arr, ((0, ph), (0, pw)), constant_values=np.nan)
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    with np.errstate(invalid="ignore"):
        return np.nanmean(blocks, axis=(1, 3))


def plotly_colorscale(name: str) -> list[list]:
    """The named scale as explicit stops, with near-black nudged off ``#0000xx``: Streamlit's
    front end treats colours ``#000001``… as theme placeholders and repaints them (Magma's
    ``#000004`` turned lavender)."""
    stops = []
    for pos, color in get_colorscale(name):
        if isinstance(color, str) and color.lower().startswith("#0000"):
            color = "#010106"
        stops.append([pos, color])
    return stops


def _heatmap_trace(z: np.ndarray, zmin: float, zmax: float, colorscale: str, name: str, unit: str,
                   height: int, width: int, showscale: bool, colorbar_x: float | None = None) -> go.Heatmap:
    sy, sx = height / z.shape[0], width / z.shape[1]
    colorbar = dict(thickness=10, len=0.9)
    if colorbar_x is not None:
        colorbar["x"] = colorbar_x
    # float32 travels as 4 bytes a value (base64) instead of 8; x0/dx give image-pixel
    # coordinates for the hover without sending two coordinate arrays.
    return go.Heatmap(
        z=z.astype(np.float32), x0=0.5 * sx, dx=sx, y0=0.5 * sy, dy=sy, zmin=zmin, zmax=zmax,
        colorscale=plotly_colorscale(colorscale), showscale=showscale, colorbar=colorbar, name=name,
        hovertemplate=f"{name}<br>x=%{{x:.0f}}, y=%{{y:.0f}} px<br>{unit}=%{{z:.4f}}<extra></extra>",
    )


def _layer_title(name: str, value: float) -> str:
    return f"{name}<br>{value:.4f}"


def layer_grid(maps: Sequence[np.ndarray], names: Sequence[str], values: Sequence[float], *,
               image_size: tuple[int, int], shared_scale: bool = True, max_side: int = 48,
               colorscale: str = DEFAULT_COLORSCALE, columns: int = 5) -> go.Figure:
    """One heatmap per LPIPS layer, at the layer's own resolution (shrunk to ``max_side``).

    ``values`` are each layer's contribution to the distance (shown in the titles). With
    ``shared_scale`` all maps use one colour range, so the layers compare at a glance; otherwise
    each has its own range and colour bar.
    """
    height, width = image_size
    small = [shrink(m, max_side) for m in maps]
    rows = int(np.ceil(len(small) / columns))
    titles = [_layer_title(n, v) for n, v in zip(names, values)]
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=titles,
                        horizontal_spacing=0.03 if shared_scale else 0.06, vertical_spacing=0.12)
    gmax = max(float(np.nanmax(m)) for m in small) if small else 1.0
    for i, z in enumerate(small):
        zmax = gmax if shared_scale else float(np.nanmax(z))
        r, c = divmod(i, columns)
        show = (i == len(small) - 1) if shared_scale else True
        bar_x = None if shared_scale else (c + 1) / columns - 0.01
        fig.add_trace(_heatmap_trace(z, 0.0, zmax if zmax > 0 else 1.0, colorscale, names[i], "distance",
                                     height, width, show, bar_x), row=r + 1, col=c + 1)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{i + 1 if i else ''}", row=r + 1, col=c + 1, **_BARE)
        fig.update_xaxes(constrain="domain", row=r + 1, col=c + 1, **_BARE)
    # Two-line titles in a small font: five panels side by side stay legible on a phone too.
    fig.update_annotations(font=dict(size=12))
    fig.update_layout(height=50 + 200 * rows, margin=dict(l=10, r=10, t=40, b=5))
    return fig


def update_layer_grid(fig: go.Figure, maps: Sequence[np.ndarray], names: Sequence[str], values: Sequence[float], *,
                      shared_scale: bool = True, max_side: int = 48) -> go.Figure:
    """Put another comparison's maps into a figure made by :func:`layer_grid` with the same
    layout (image size, map sizes, scale mode): about 1 ms, against about 30 ms to build one.

    >>> maps = [np.ones((4, 4)), np.zeros((2, 2))]
    >>> fig = layer_grid(maps, ["a", "b"], [0.1, 0.0], image_size=(8, 8))
    >>> fig = update_layer_grid(fig, [np.zeros((4, 4)), np.ones((2, 2))], ["a", "b"], [0.0, 0.2])
    >>> fig.data[1].z.tolist(), fig.layout.annotations[1].text
    ([[1.0, 1.0], [1.0, 1.0]], 'b<br>0.2000')
    """
    small = [shrink(m, max_side) for m in maps]
    if len(small) != len(fig.data) or any(tr.z.shape != z.shape for tr, z in zip(fig.data, small)):
        raise ValueError("update_layer_grid() needs maps of the sizes the figure was built for; build a new one.")
    gmax = max(float(np.nanmax(m)) for m in small) if small else 1.0
    with fig.batch_update():
        for trace, z, in zip(fig.data, small):
            zmax = gmax if shared_scale else float(np.nanmax(z))
            trace.z = z.astype(np.float32)
            trace.zmax = zmax if zmax > 0 else 1.0
        for annotation, name, value in zip(fig.layout.annotations, names, values):
            annotation.text = _layer_title(name, value)
    return fig


def update_single_map(fig: go.Figure, values: np.ndarray, *, zmin: float, zmax: float, max_side: int = 64) -> go.Figure:
    """Put another map of the same size into a figure made by :func:`single_map`."""
    z = shrink(values, max_side)
    trace = fig.data[0]
    if trace.z.shape != z.shape:
        raise ValueError("update_single_map() needs a map of the size the figure was built for; build a new one.")
    with fig.batch_update():
        trace.z = z.astype(np.float32)
        trace.zmin, trace.zmax = zmin, zmax
    return fig


def single_map(values: np.ndarray, *, title: str, unit: str, image_size: tuple[int, int],
               zmin: float, zmax: float, colorscale: str = DEFAULT_COLORSCALE, max_side: int = 64) -> go.Figure:
    """One hoverable heatmap (SSIM map, squared error), shrunk to ``max_side`` for the browser."""
    z = shrink(values, max_side)
    fig = go.Figure(_heatmap_trace(z, zmin, zmax, colorscale, title, unit, image_size[0], image_size[1], True))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", **_BARE)
    fig.update_xaxes(constrain="domain", **_BARE)
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=320, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def _channel_title(channel: int, share: float) -> str:
    return f"ch {channel}<br>{100 * share:.1f}%"


def channel_grid(maps: np.ndarray, channels: Sequence[int], shares: Sequence[float], *, image_size: tuple[int, int],
                 layer: str, max_side: int = 32, columns: int = 4, colorscale: str = DEFAULT_COLORSCALE) -> go.Figure:
    """One small heatmap per channel (k×h×w maps of one layer), on one shared colour scale, titled
    with the channel's index and its share of the layer's value.

    >>> fig = channel_grid(np.ones((2, 3, 3)), [5, 1], [0.6, 0.4], image_size=(6, 6), layer="relu1")
    >>> [a.text for a in fig.layout.annotations]
    ['ch 5<br>60.0%', 'ch 1<br>40.0%']
    """
    height, width = image_size
    small = [shrink(m, max_side) for m in maps]
    rows = max(1, int(np.ceil(len(small) / columns)))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[_channel_title(c, s) for c, s in zip(channels, shares)],
                        horizontal_spacing=0.03, vertical_spacing=0.14)
    gmax = max((float(np.nanmax(z)) for z in small), default=1.0) or 1.0
    for i, z in enumerate(small):
        r, c = divmod(i, columns)
        fig.add_trace(_heatmap_trace(z, 0.0, gmax, colorscale, f"{layer} ch {channels[i]}", "weighted diff²",
                                     height, width, i == len(small) - 1), row=r + 1, col=c + 1)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{i + 1 if i else ''}", row=r + 1, col=c + 1, **_BARE)
        fig.update_xaxes(constrain="domain", row=r + 1, col=c + 1, **_BARE)
    fig.update_annotations(font=dict(size=12))
    fig.update_layout(height=40 + 170 * rows, margin=dict(l=10, r=10, t=40, b=5))
    return fig


def update_channel_grid(fig: go.Figure, maps: np.ndarray, channels: Sequence[int], shares: Sequence[float], *,
                        layer: str, max_side: int = 32) -> go.Figure:
    """Put another ranking's maps (same layer size and count) into a :func:`channel_grid` figure."""
    small = [shrink(m, max_side) for m in maps]
    if len(small) != len(fig.data) or any(tr.z.shape != z.shape for tr, z in zip(fig.data, small)):
        raise ValueError("update_channel_grid() needs maps of the sizes the figure was built for; build a new one.")
    gmax = max((float(np.nanmax(z)) for z in small), default=1.0) or 1.0
    with fig.batch_update():
        for trace, z, channel in zip(fig.data, small, channels):
            trace.z = z.astype(np.float32)
            trace.zmax = gmax
            trace.name = f"{layer} ch {channel}"
            trace.hovertemplate = f"{layer} ch {channel}<br>x=%{{x:.0f}}, y=%{{y:.0f}} px<br>weighted diff²=%{{z:.4f}}<extra></extra>"
        for annotation, channel, share in zip(fig.layout.annotations, channels, shares):
            annotation.text = _channel_title(channel, share)
    return fig


def outline_box(fig: go.Figure, box: tuple[float, float, float, float] | None, colour: str = "#00e5ff") -> go.Figure:
    """Draw ``box`` (x0, y0, x1, y1 in image pixels) on every panel of a grid of maps (or remove it)."""
    shapes = []
    if box is not None:
        x0, y0, x1, y1 = box
        for i in range(len(fig.data)):
            suffix = str(i + 1) if i else ""
            shapes.append(dict(type="rect", xref=f"x{suffix}", yref=f"y{suffix}", x0=x0, y0=y0, x1=x1, y1=y1,
                               line=dict(color=colour, width=1.5)))
    fig.layout.shapes = shapes
    return fig
