"""Plotly charts of metric values (bars, lines). Computes no metric."""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go


def layer_contributions(names: Sequence[str], values: Sequence[float], total: float, *,
                        title: str | None = None) -> go.Figure:
    """Bar chart of each layer's share of the LPIPS distance; the bars add up to ``total``
    (the image's LPIPS, or a region's share of it).

    >>> fig = layer_contributions(["a", "b"], [0.1, 0.2], 0.3)
    >>> [round(v, 6) for v in fig.data[0].y]
    [0.1, 0.2]
    """
    shares = [100 * v / total if total > 0 else 0.0 for v in values]
    fig = go.Figure(go.Bar(
        x=list(names), y=list(values), text=[f"{v:.4f}<br>{s:.0f}%" for v, s in zip(values, shares)],
        textposition="outside", textangle=0, cliponaxis=False, marker_color="#7b3294",
        hovertemplate="%{x}: %{y:.4f} (%{customdata:.1f}% of the distance)<extra></extra>", customdata=shares,
    ))
    fig.update_layout(
        title=dict(text=title or f"Layer contributions (sum = {total:.4f})", font=dict(size=14)),
        yaxis_title="share of LPIPS", height=320,
        margin=dict(l=55, r=10, t=40, b=30), showlegend=False,
        yaxis_range=[0, max(values) * 1.25 if len(values) and max(values) > 0 else 1],
    )
    return fig


def dists_terms(names: Sequence[str], texture: Sequence[float], structure: Sequence[float],
                total: float) -> go.Figure:
    """DISTS per layer as stacked bars: its texture (mean/contrast) and structure (correlation)
    terms; every bar segment together adds up to ``total`` (the DISTS value, lower = more similar).

    >>> fig = dists_terms(["a", "b"], [0.1, 0.2], [0.05, 0.05], 0.4)
    >>> [list(t.y) for t in fig.data]
    [[0.1, 0.2], [0.05, 0.05]]
    """
    fig = go.Figure()
    for label, values, colour in (("texture", texture, "#e08214"), ("structure", structure, "#2166ac")):
        shares = [100 * v / total if total > 0 else 0.0 for v in values]
        fig.add_trace(go.Bar(
            x=list(names), y=list(values), name=label, marker_color=colour, customdata=shares,
            hovertemplate=f"%{{x}} {label}: %{{y:.4f}} (%{{customdata:.1f}}% of DISTS)<extra></extra>",
        ))
    fig.update_layout(
        barmode="stack", title=dict(text=f"DISTS by layer (sum = {total:.4f}; lower = more similar)",
                                    font=dict(size=14)),
        yaxis_title="share of DISTS", height=320, margin=dict(l=55, r=10, t=40, b=30),
        legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
    )
    return fig


# One colour per metric, by position in the order given (the registry's display order).
PALETTE = ("#7b3294", "#1b7837", "#2166ac", "#e08214", "#b2182b", "#35978f", "#8c510a")


# And one line style and marker each, so no line is told apart by its colour alone (WCAG 1.4.1).
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot", "solid")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "star", "triangle-down")
# Bar fills for grouped bars (the quiz dashboard): a pattern each, beside the colour.
PATTERNS = ("", "/", ".", "x", "\\", "+", "-")


def _line_style(names: Sequence[str]) -> dict[str, dict]:
    """Each name's colour, dash and marker, by position (the registry's display order)."""
    return {name: {"line": dict(color=PALETTE[i % len(PALETTE)], dash=DASHES[i % len(DASHES)]),
                   "marker": dict(symbol=SYMBOLS[i % len(SYMBOLS)], size=7)} for i, name in enumerate(names)}


def pattern_bars(fig: go.Figure) -> go.Figure:
    """Give each bar trace of ``fig`` its own fill pattern (in trace order) besides its colour, so
    grouped bars are told apart in grey scale and by people who do not see the colours.

    >>> fig = pattern_bars(go.Figure([go.Bar(y=[1]), go.Bar(y=[2])]))
    >>> [t.marker.pattern.shape for t in fig.data]
    ['', '/']
    """
    bars = [t for t in fig.data if t.type == "bar"]
    for i, trace in enumerate(bars):
        trace.marker.pattern = dict(shape=PATTERNS[i % len(PATTERNS)], solidity=0.35)
    return fig


def sweep_raw(values: Sequence[float], series: Mapping[str, Sequence[float]], titles: Mapping[str, str], *,
              xlabel: str) -> go.Figure:
    """Each metric against severity on its own axis (one stacked panel per metric, in ``titles`` order).

    ``titles`` maps a metric key to its panel title (with unit and direction); infinite and NaN
    values (PSNR of an identical image) are left as gaps.
    """
    from plotly.subplots import make_subplots

    names = [m for m in titles if m in series]
    styles = _line_style(names)
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[titles[m] for m in names])
    for row, name in enumerate(names, start=1):
        y = [None if v is None or v != v or v in (float("inf"), float("-inf")) else v for v in series[name]]
        label = titles[name].split(" (")[0].split(",")[0]
        fig.add_trace(go.Scatter(x=list(values), y=y, mode="lines+markers", name=label,
                                 **styles[name],
                                 hovertemplate=f"{xlabel}=%{{x:g}}<br>{label}=%{{y:.4f}}<extra></extra>"),
                      row=row, col=1)
    fig.update_xaxes(title_text=xlabel, row=len(names), col=1)
    fig.update_layout(height=170 * len(names) + 60, showlegend=False, margin=dict(l=50, r=10, t=30, b=40))
    return fig


def sweep_normalized(values: Sequence[float], normalized: Mapping[str, Sequence[float]], titles: Mapping[str, str], *,
                     xlabel: str, marks: Sequence[tuple[int, int, str]] = ()) -> go.Figure:
    """All metrics on one "how bad" axis (0 = mildest level, 1 = worst by that metric).

    ``marks`` are (level i, level j, text) pairs where two metrics disagree on which is worse;
    they are drawn as a dotted connector on the first metric's curve with the text on hover.
    """
    fig = go.Figure()
    names = [m for m in titles if m in normalized]
    styles = _line_style(names)
    for name in names:
        label = titles[name].split(" (")[0].split(",")[0]
        fig.add_trace(go.Scatter(x=list(values), y=list(normalized[name]), mode="lines+markers",
                                 name=titles[name], **styles[name],
                                 hovertemplate=f"{xlabel}=%{{x:g}}<br>badness=%{{y:.2f}}<extra>{label}</extra>"))
    anchor = normalized[names[0]] if names else []
    for k, (i, j, text) in enumerate(marks):
        fig.add_trace(go.Scatter(x=[values[i], values[j]], y=[anchor[i], anchor[j]],
                                 mode="markers+lines", line=dict(color="#d6604d", dash="dot", width=2),
                                 marker=dict(symbol="x", size=11, color="#d6604d"),
                                 name="metrics disagree" if k == 0 else None, showlegend=k == 0,
                                 hovertemplate=f"{text}<extra></extra>"))
    fig.update_layout(xaxis_title=xlabel, yaxis_title="normalized: 0 = best, 1 = worst in this sweep",
                      height=420, margin=dict(l=50, r=10, t=30, b=40),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def head_moves(layers: Sequence[str], relative_pct: Sequence[float | None], mean_abs_change: Sequence[float],
               channels: Sequence[int], *, title: str = "How much each layer's weights moved in the fit") -> go.Figure:
    """Bar chart of each layer's head change in a fit: the bar is the change as a percentage of the
    layer's starting weight (Σ|Δw| / Σ|w₀|), the hover adds the mean change per channel. A layer
    that started at all zeros has no percentage (no bar, "n/a" above it).

    >>> fig = head_moves(["relu1", "relu2"], [12.5, None], [0.01, 0.02], [64, 192])
    >>> list(fig.data[0].y), list(fig.data[0].text)
    ([12.5, None], ['12%', 'n/a'])
    """
    y = [None if v is None else float(v) for v in relative_pct]
    text = ["n/a" if v is None else (f"{v:.2g}%" if v < 10 else f"{v:.0f}%") for v in y]
    fig = go.Figure(go.Bar(
        x=list(layers), y=y, text=text, textposition="outside", textangle=0, cliponaxis=False,
        marker_color="#2166ac", customdata=[[m, c] for m, c in zip(mean_abs_change, channels)],
        hovertemplate="%{x} (%{customdata[1]} channels): moved %{y:.3g}% of its starting weight; "
                      "mean change per channel %{customdata[0]:.3g}<extra></extra>",
    ))
    top = max((v for v in y if v is not None), default=0.0)
    fig.update_layout(title=dict(text=title, font=dict(size=14)), yaxis_title="change (% of the layer's start)",
                      height=320, margin=dict(l=55, r=10, t=40, b=30), showlegend=False,
                      yaxis_range=[0, top * 1.25 if top > 0 else 1])
    return fig
