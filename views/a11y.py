"""What the pages share for people using a screen reader or a keyboard (docs/accessibility.md).

Small helpers the pages call in one line each: a chart with its words beside it, the metric
cards' polite live summary, and the words of an image. The words themselves come from
:mod:`viz.describe`; the CSS classes (``lpx-sr-only``) from :mod:`views.style`.
"""

from __future__ import annotations

import html
from typing import Mapping

import streamlit as st


def chart(fig, summary: str, *, visible: bool = False, **kwargs) -> None:
    """``st.plotly_chart(fig, **kwargs)`` with ``summary`` (what the chart shows, in words) right
    after it: a screen reader cannot read a Plotly figure's marks. ``visible``: also as a caption
    for everyone (where the words add to what the figure prints); else for screen readers only,
    which keeps the page calm where the figure already prints its numbers."""
    st.plotly_chart(fig, **kwargs)
    if visible:
        st.caption(summary)
    else:
        hidden(summary)


def hidden(text: str) -> None:
    """Text only a screen reader gets (visually hidden, in the page's reading order)."""
    st.markdown(f'<div class="lpx-sr-only">{html.escape(text)}</div>', unsafe_allow_html=True)


def live_summary(text: str) -> None:
    """A visually hidden, polite live region holding ``text``: a screen reader reads it when it
    changes, once a rerun has finished (Streamlit sends a slider's value when the drag ends, and
    this element is drawn only after the numbers: no announcement per intermediate value).

    Call it at the same place of the page on every run: Streamlit then updates the same element in
    place, which is what makes assistive technology announce the change (a region that is new
    each time is often not announced)."""
    st.markdown(f'<div class="lpx-sr-only" role="status" aria-live="polite" aria-atomic="true">'
                f"{html.escape(text)}</div>", unsafe_allow_html=True)


def cards_sentence(values: Mapping[str, str], directions: Mapping[str, str]) -> str:
    """The metric cards in one sentence: ``"LPIPS 0.2445 (lower = more similar); PSNR 24.1 dB
    (higher = more similar)."``

    >>> cards_sentence({"LPIPS": "0.2445"}, {"LPIPS": "lower = more similar"})
    'Results: LPIPS 0.2445 (lower = more similar).'
    """
    parts = [f"{name} {value}" + (f" ({directions[name]})" if directions.get(name) else "")
             for name, value in values.items()]
    return "Results: " + "; ".join(parts) + "."


def round_alt(which: str, index: int) -> str:
    """A quiz image's text alternative. It does not name the distortion: that would sway the pick
    the round asks for (the reveal names the metrics' picks and values after it).

    >>> round_alt("A", 0)
    'Image A of round 1: a distorted copy of the reference (not named, so as not to sway your pick).'
    """
    if which == "Reference":
        return f"Reference image of round {index + 1}."
    return (f"Image {which} of round {index + 1}: a distorted copy of the reference "
            "(not named, so as not to sway your pick).")


def family_summary(summary) -> str:
    """The dashboard's bars in words: each distortion pair's agreement per metric, from
    :func:`teach.quiz.summarize` (a :class:`teach.quiz.Summary`)."""
    from teach import quiz

    parts = []
    for pair, by_metric in summary.by_family.items():
        values = ", ".join(f"{quiz.metric_label(m)} {'–' if a is None or a.score is None else f'{100 * a.score:.0f}%'}"
                           for m, a in ((m, by_metric.get(m)) for m in summary.metrics))
        parts.append(f"{pair}: {values}")
    return "Agreement with people by distortion pair (higher = agrees more): " + "; ".join(parts) + "."
