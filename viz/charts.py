"""Plotly charts of metric values (bars, lines). Computes no metric."""

from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go


def layer_contributions(names: Sequence[str], values: Sequence[float], total: float) -> go.Figure:
    """Bar chart of each layer's share of the LPIPS distance; the bars add up to ``total``.

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
        title=dict(text=f"Layer contributions (sum = {total:.4f})", font=dict(size=14)),
        yaxis_title="share of LPIPS", height=320,
        margin=dict(l=55, r=10, t=40, b=10), showlegend=False,
        yaxis_range=[0, max(values) * 1.25 if len(values) and max(values) > 0 else 1],
    )
    return fig


METRIC_STYLE = {
    "lpips": ("LPIPS (lower = more similar)", "#7b3294"),
    "psnr": ("PSNR, dB (higher = more similar)", "#1b7837"),
    "ssim": ("SSIM (higher = more similar)", "#2166ac"),
}


def sweep_raw(values: Sequence[float], series: dict[str, Sequence[float]], *, xlabel: str) -> go.Figure:
    """Each metric against severity on its own axis (three stacked panels)."""
    from plotly.subplots import make_subplots

    names = [m for m in ("lpips", "psnr", "ssim") if m in series]
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[METRIC_STYLE[m][0] for m in names])
    for row, name in enumerate(names, start=1):
        y = [None if v is None or v != v or v == float("inf") else v for v in series[name]]
        fig.add_trace(go.Scatter(x=list(values), y=y, mode="lines+markers", name=name.upper(),
                                 line=dict(color=METRIC_STYLE[name][1]),
                                 hovertemplate=f"{xlabel}=%{{x:g}}<br>{name.upper()}=%{{y:.4f}}<extra></extra>"),
                      row=row, col=1)
    fig.update_xaxes(title_text=xlabel, row=len(names), col=1)
    fig.update_layout(height=170 * len(names) + 60, showlegend=False, margin=dict(l=50, r=10, t=30, b=40))
    return fig


def sweep_normalized(values: Sequence[float], normalized: dict[str, Sequence[float]], *, xlabel: str,
                     marks: Sequence[tuple[int, int, str]] = ()) -> go.Figure:
    """All metrics on one "how bad" axis (0 = mildest level, 1 = worst by that metric).

    ``marks`` are (level i, level j, text) pairs where two metrics disagree on which is worse;
    they are drawn as a dotted connector with the text on hover.
    """
    fig = go.Figure()
    for name in ("lpips", "psnr", "ssim"):
        if name in normalized:
            fig.add_trace(go.Scatter(x=list(values), y=list(normalized[name]), mode="lines+markers",
                                     name=METRIC_STYLE[name][0], line=dict(color=METRIC_STYLE[name][1]),
                                     hovertemplate=f"{xlabel}=%{{x:g}}<br>badness=%{{y:.2f}}<extra>{name.upper()}</extra>"))
    for k, (i, j, text) in enumerate(marks):
        fig.add_trace(go.Scatter(x=[values[i], values[j]], y=[normalized["lpips"][i], normalized["lpips"][j]],
                                 mode="markers+lines", line=dict(color="#d6604d", dash="dot", width=2),
                                 marker=dict(symbol="x", size=11, color="#d6604d"),
                                 name="metrics disagree" if k == 0 else None, showlegend=k == 0,
                                 hovertemplate=f"{text}<extra></extra>"))
    fig.update_layout(xaxis_title=xlabel, yaxis_title="normalized: 0 = best, 1 = worst in this sweep",
                      height=420, margin=dict(l=50, r=10, t=30, b=40),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig
