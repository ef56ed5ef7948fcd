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
