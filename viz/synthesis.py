"""Plotly charts for the Synthesis page: metrics over optimization steps. Computes no metric."""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go

BEST, WORST, LEVEL = "#1b7837", "#b2182b", "#555555"
LOSS_COLOURS = ("#2166ac", "#e08214", "#7b3294", "#1b7837", "#b2182b", "#35978f")


def mad_history(steps: Sequence[int], best_attack: Sequence[float], worst_attack: Sequence[float],
                best_hold: Sequence[float], worst_hold: Sequence[float], *, attack_title: str, hold_title: str,
                level: float) -> go.Figure:
    """Two stacked panels over the steps: the attacked metric of the best and worst images
    (they should move apart), and the held metric of both (it should stay on the level line).

    >>> fig = mad_history([0, 1], [0.3, 0.2], [0.3, 0.5], [24, 24], [24, 24.01],
    ...                   attack_title="LPIPS", hold_title="PSNR, dB", level=24)
    >>> [trace.name for trace in fig.data]
    ['best', 'worst', 'best ', 'worst ', 'level']
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.14, row_heights=[0.62, 0.38],
                        subplot_titles=[f"Attacked: {attack_title}", f"Held: {hold_title}"])
    x = list(steps)
    for row, (best, worst, suffix) in enumerate(((best_attack, worst_attack, ""), (best_hold, worst_hold, " ")), 1):
        fig.add_trace(go.Scatter(x=x, y=list(best), mode="lines", name="best" + suffix, line=dict(color=BEST, width=2),
                                 showlegend=row == 1, legendgroup="best",
                                 hovertemplate="step %{x}<br>best image: %{y:.4f}<extra></extra>"), row=row, col=1)
        fig.add_trace(go.Scatter(x=x, y=list(worst), mode="lines", name="worst" + suffix,
                                 line=dict(color=WORST, width=2, dash="dash"), showlegend=row == 1, legendgroup="worst",
                                 hovertemplate="step %{x}<br>worst image: %{y:.4f}<extra></extra>"), row=row, col=1)
    fig.add_trace(go.Scatter(x=[x[0] if x else 0, x[-1] if x else 1], y=[level, level], mode="lines", name="level",
                             line=dict(color=LEVEL, width=1, dash="dot"), showlegend=False,
                             hovertemplate=f"level {level:g}<extra></extra>"), row=2, col=1)
    fig.update_xaxes(title_text="step", row=2, col=1)
    # The legend sits top left: the chart's toolbar takes the top right corner.
    fig.update_layout(height=440, margin=dict(l=50, r=10, t=60, b=40), hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=1.08, xanchor="left", x=0))
    return fig


def loss_history(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]]) -> go.Figure:
    """Each loss's value over its steps (1 = its value at the start), one line per loss.

    >>> fig = loss_history({"L2": ([0, 1, 2], [1.0, 0.5, 0.2])})
    >>> list(fig.data[0].y)
    [1.0, 0.5, 0.2]
    """
    fig = go.Figure()
    for k, (label, (steps, values)) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=list(steps), y=list(values), mode="lines", name=label,
                                 line=dict(color=LOSS_COLOURS[k % len(LOSS_COLOURS)], width=2),
                                 hovertemplate=f"{label}<br>step %{{x}}: %{{y:.4f}}<extra></extra>"))
    fig.update_layout(height=300, margin=dict(l=50, r=10, t=30, b=40), xaxis_title="step",
                      yaxis_title="loss (1 = at the start)", yaxis_type="log",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0))
    return fig
