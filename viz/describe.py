"""Words for what a picture or a chart shows: the text alternatives a screen reader reads.

Computes no metric: it says where a map the library computed is brightest, and puts numbers the
library computed into sentences (``"LPIPS map: brightest at the top left; 0.2445 overall"``).
The words change with the picture, so a person who cannot see it hears what changed.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

_ROWS = ("top", "middle", "bottom")
_COLS = ("left", "centre", "right")
# A map whose brightest ninth is within this factor of the whole map's mean has no "where".
EVEN_FACTOR = 1.25


def where_brightest(values: np.ndarray) -> str:
    """Which ninth of a 2-D map (a 3×3 grid) has the largest mean, in words: ``"top left"``,
    ``"centre"``, ``"bottom centre"``…; ``"evenly spread"`` when no ninth stands out (its mean
    is within ``EVEN_FACTOR`` of the whole map's) and ``"nowhere (the map is zero)"`` for an empty one.

    >>> m = np.zeros((30, 30)); m[:10, :10] = 1.0
    >>> where_brightest(m)
    'top left'
    >>> where_brightest(np.ones((9, 12)))
    'evenly spread'
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or min(values.shape) < 1:
        raise ValueError(f"where_brightest needs a 2-D map (H×W, both ≥ 1), got shape {values.shape}")
    finite = np.where(np.isfinite(values), values, 0.0)
    mean = float(finite.mean())
    if not mean > 0:
        return "nowhere (the map is zero)"
    h, w = finite.shape
    ys, xs = np.linspace(0, h, 4).round().astype(int), np.linspace(0, w, 4).round().astype(int)
    best, where = -np.inf, (1, 1)
    for r in range(3):
        for c in range(3):
            cell = finite[ys[r]:max(ys[r + 1], ys[r] + 1), xs[c]:max(xs[c + 1], xs[c] + 1)]
            if cell.size and float(cell.mean()) > best:
                best, where = float(cell.mean()), (r, c)
    if best <= EVEN_FACTOR * mean:
        return "evenly spread"
    r, c = where
    if r == 1:
        return "centre" if c == 1 else _COLS[c]
    return f"{_ROWS[r]} {_COLS[c]}" if c != 1 else f"{_ROWS[r]} centre"


def map_alt(title: str, values: np.ndarray, overall: float, *, digits: int = 4, reading: str = "") -> str:
    """A heat map's text alternative: where it is brightest and the metric's value for the image.

    >>> m = np.zeros((8, 8)); m[6:, 6:] = 2.0
    >>> map_alt("LPIPS map", m, 0.24451, reading="bright = more different")
    'LPIPS map (bright = more different): brightest at the bottom right; 0.2445 overall.'
    """
    where = where_brightest(values)
    at = {"evenly spread": "about evenly bright", "nowhere (the map is zero)": "zero everywhere"}.get(
        where, f"brightest at the {where}")
    head = f"{title} ({reading})" if reading else title
    return f"{head}: {at}; {overall:.{digits}f} overall."


def image_alt(what: str, how: str = "") -> str:
    """An image's text alternative: what it is and, if given, how it was made.

    >>> image_alt("Distorted image", "the reference after gaussian_blur(sigma=1.5)")
    'Distorted image: the reference after gaussian_blur(sigma=1.5).'
    >>> image_alt("Reference image")
    'Reference image.'
    """
    return f"{what}: {how}." if how else f"{what}."


def bars_summary(title: str, names: Sequence[str], values: Sequence[float], *, digits: int = 4,
                 total: float | None = None) -> str:
    """A bar chart in one sentence: each bar's value (and share of ``total``), the largest named.

    >>> bars_summary("Layer contributions", ["a", "b"], [0.1, 0.3], total=0.4)
    'Layer contributions: a 0.1000 (25%), b 0.3000 (75%); largest: b.'
    """
    if len(names) != len(values):
        raise ValueError(f"bars_summary needs one value per name, got {len(names)} names and {len(values)} values")
    if not len(names):
        return f"{title}: no bars."
    parts = []
    for name, v in zip(names, values):
        share = f" ({100 * v / total:.0f}%)" if total else ""
        parts.append(f"{name} {v:.{digits}f}{share}")
    largest = names[int(np.nanargmax(np.asarray(values, dtype=float)))]
    return f"{title}: {', '.join(parts)}; largest: {largest}."


def series_summary(xlabel: str, xs: Sequence[float], series: Mapping[str, Sequence[float | None]],
                   *, digits: int = 4) -> str:
    """Line charts in words: for each series, its value at the first and the last x, and whether it
    rose or fell in between (gaps skipped).

    >>> series_summary("sigma", [1, 2, 3], {"LPIPS": [0.1, 0.2, 0.3], "PSNR": [30.0, None, 20.0]}, digits=2)
    'As sigma goes from 1 to 3: LPIPS rises from 0.10 to 0.30; PSNR falls from 30.00 to 20.00.'
    """
    parts = []
    for name, ys in series.items():
        pts = [(x, y) for x, y in zip(xs, ys) if y is not None and np.isfinite(y)]
        if len(pts) < 2:
            parts.append(f"{name} has too few finite values to describe")
            continue
        (_, a), (_, b) = pts[0], pts[-1]
        trend = "rises" if b > a else ("falls" if b < a else "stays")
        parts.append(f"{name} {trend} from {a:.{digits}f} to {b:.{digits}f}" if trend != "stays"
                     else f"{name} stays at {a:.{digits}f}")
    return f"As {xlabel} goes from {xs[0]:g} to {xs[-1]:g}: " + "; ".join(parts) + "."
