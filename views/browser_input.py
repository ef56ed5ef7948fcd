"""What the browser sends, checked against what the page offers before the app uses it.

A browser can send any value for any widget (Streamlit's websocket protocol carries whatever a
client puts in it), any event from a component, any query parameter. Streamlit resets some
values when it draws a widget, but the app reads several before or without drawing one: a
callback reads the state of the widgets that triggered it, the Explore fragment reads the
distortion chain from widget state before drawing the editor (:func:`views.explore.chain_from_state`),
the Look closer viewer's events carry coordinates. Each such read goes through here.

A value no person could have entered with the page (an option that is not offered, a number
out of range, a NaN coordinate, a list where a dict belongs) is ignored: the widget goes back to
its last good value, quietly. An error box would only tell a hostile sender that the check
works; a person never sees one, since the page cannot produce such a value.

Checks return the value (normalized) or raise :class:`ValueError`/:class:`TypeError`;
:func:`widget_value` applies one to a widget's state and resets the widget when it fails.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import streamlit as st

from core.errors import LpipsExplorerError

__all__ = ["BAD_INPUT", "choice", "number", "region", "short_text", "widget_value"]

T = TypeVar("T")

#: The exceptions a check raises for a value that is not acceptable (the project's own errors
#: included: :meth:`core.distortions.Param.validate` raises one).
BAD_INPUT = (ValueError, TypeError, LookupError, LpipsExplorerError)

#: Session-state key of this session's last good value per widget key.
_GOOD = "browser_input.good"


def choice(value: Any, options: Iterable[T]) -> T:
    """``value`` if it is one of ``options`` (same type too: ``True`` is not the option ``1``)."""
    for option in options:
        if type(value) is type(option) and value == option:
            return option
    raise ValueError(f"not one of the options offered: {_short(value)}")


def number(value: Any, low: float, high: float, *, integer: bool = False) -> float | int:
    """``value`` if it is a finite real number in ``[low, high]`` (a whole one if ``integer``);
    bools, strings, NaN and infinities are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"not a number: {_short(value)}")
    x = float(value)
    if not math.isfinite(x) or not low <= x <= high:
        raise ValueError(f"not a number in [{low}, {high}]: {_short(value)}")
    if integer:
        if x != round(x):
            raise ValueError(f"not a whole number: {_short(value)}")
        return int(round(x))
    return x


def region(value: Any, width: int, height: int, min_side: int = 2) -> tuple[int, int, int, int]:
    """A region event of the Look closer viewer, ``{"x0", "y0", "x1", "y1"}`` in image pixels, as
    ``(x0, y0, x1, y1)`` ints: whole numbers inside the ``width`` × ``height`` image, at least
    ``min_side`` pixels a side (the viewer sends nothing smaller). Anything else is refused."""
    if not isinstance(value, Mapping):
        raise TypeError(f"a region is a mapping of x0, y0, x1, y1, got {_short(value)}")
    try:
        x0, y0, x1, y1 = (number(value[k], 0, limit, integer=True)
                          for k, limit in (("x0", width), ("y0", height), ("x1", width), ("y1", height)))
    except KeyError as err:
        raise ValueError(f"a region needs x0, y0, x1 and y1, got {_short(value)}") from err
    if x1 - x0 < min_side or y1 - y0 < min_side:
        raise ValueError(f"a region of at least {min_side}×{min_side} px, got {_short(value)}")
    return x0, y0, x1, y1


def short_text(value: Any, max_chars: int, allowed: Callable[[str], bool] = str.isprintable) -> str:
    """``value`` if it is text of at most ``max_chars`` characters that ``allowed`` accepts
    (printable by default): for query parameters and text the page limits itself."""
    if not isinstance(value, str):
        raise TypeError(f"not text: {_short(value)}")
    if len(value) > max_chars or not allowed(value):
        raise ValueError(f"not text of at most {max_chars} allowed characters: {_short(value)}")
    return value


def widget_value(key: str, check: Callable[[Any], T], default: T) -> T:
    """The value of widget ``key`` in this session's state, checked by ``check``.

    A value ``check`` refuses is replaced, in the widget's state too, by this widget's last
    good value (or ``default``), so the page draws the widget as it was; a missing key gives
    ``default``. Call it before the widget is drawn in this run (Streamlit allows setting a
    widget's state only then) or from a callback."""
    good: dict = st.session_state.setdefault(_GOOD, {})
    if key not in st.session_state:
        return default
    try:
        value = check(st.session_state[key])
    except BAD_INPUT:
        value = good.get(key, default)
        # Dropped first: a value of another protobuf type than the widget's (a number where its
        # text belongs) would otherwise stay in Streamlit's own record of the widget and break
        # its drawing; then set, so the widget shows its last good value again.
        del st.session_state[key]
        st.session_state[key] = value
        return value
    good[key] = value
    return value


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut short: a refused value may be a megabyte of text."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"
