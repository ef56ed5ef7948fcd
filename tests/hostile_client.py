"""A browser tab that sends the server what no page would: the hostile-client tests' helper.

Built on bench/class_client.py's :class:`~bench.class_client.Student` (Streamlit's websocket
protocol: BackMsg and WidgetState protobufs), with what a hostile sender needs beside it: any
value of any protobuf type for any widget, component events, the "clear cache" message, and a
record of every exception box and error alert the server sent back to this tab.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.class_client import LoadError, Run, Student, Widget
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

__all__ = ["Tab", "LoadError", "state", "trigger", "component_event", "PROTO_FIELDS"]

#: WidgetState's value fields a hostile sender can fill (file uploads and Arrow aside).
PROTO_FIELDS = ("bool_value", "double_value", "int_value", "string_value", "double_array_value",
                "int_array_value", "string_array_value", "json_value", "trigger_value")


def state(widget_id: str, field: str, value: Any) -> WidgetState:
    """A WidgetState for ``widget_id`` whose ``field`` holds ``value`` (arrays as lists)."""
    ws = WidgetState(id=widget_id)
    if field.endswith("_array_value"):
        getattr(ws, field).data.extend(value)
    else:
        setattr(ws, field, value)
    return ws


def trigger(widget_id: str) -> WidgetState:
    return WidgetState(id=widget_id, trigger_value=True)


def component_event(component_id: str, event: str, value: Any, raw: str | None = None) -> WidgetState:
    """A components-v2 event as the browser sends it: one JSON list of ``{event, value}`` payloads
    on the component's trigger aggregator. ``raw`` replaces the whole JSON text (malformed payloads)."""
    aggregator = f"$$STREAMLIT_INTERNAL_KEY_{component_id}__events"
    text = raw if raw is not None else json.dumps([{"event": event, "value": value}], allow_nan=True)
    return WidgetState(id=aggregator, json_trigger_value=text)


class Tab(Student):
    """One tab: :class:`Student` plus the widgets drawn as blocks (keyed expanders) and a list of
    what went wrong for it (``problems``: exception boxes and error alerts, as text)."""

    #: Messages sent by every tab of this process (the hostile tests report how many).
    sent = 0

    def __init__(self, base: str, idx: int = 0, timeout: float = 240.0):
        self.problems: list[dict] = []
        self.options: dict[str, list[str]] = {}  # user key -> the options a radio, selectbox… offers
        super().__init__(idx, base, timeout, verbose=False, fetch_media=False, errors=self.problems)

    def _delta(self, msg: ForwardMsg, now: float) -> None:
        super()._delta(msg, now)
        delta = msg.delta
        if delta.WhichOneof("type") == "new_element":
            element = getattr(delta.new_element, delta.new_element.WhichOneof("type") or "", None)
            wid = getattr(element, "id", "")
            if isinstance(wid, str) and wid.startswith("$$ID-") and wid.count("-") >= 2 \
                    and hasattr(element, "options"):
                self.options[wid.split("-", 2)[2]] = [o if isinstance(o, str) else getattr(o, "content", str(o))
                                                      for o in element.options]
        if delta.WhichOneof("type") == "add_block" and delta.add_block.WhichOneof("type") == "expandable":
            wid = delta.add_block.expandable.id
            if wid.startswith("$$ID-") and wid.count("-") >= 2:
                self.widgets[wid.split("-", 2)[2]] = Widget(wid, "expandable", delta.fragment_id)
        elif delta.WhichOneof("type") == "new_element" and delta.new_element.WhichOneof("type") == "bidi_component":
            wid = delta.new_element.bidi_component.id
            self.widgets.setdefault("closer", Widget(wid, "bidi_component", delta.fragment_id))

    async def rerun(self, label: str, **kwargs) -> Run:
        Tab.sent += 1
        return await super().rerun(label, **kwargs)

    async def open(self, page: str = "") -> Run:
        """Connect and run ``page`` (a URL path; '' is the default page) as a typed address does."""
        await self.connect()
        return await self.rerun(f"open {page or 'default'}", page_hash="", page_name=page)

    async def send(self, label: str, *, widgets=(), triggers=(), fragment: bool = False, keep: bool = True,
                   **rerun) -> Run:
        """A rerun with ``widgets`` and ``triggers``; ``fragment``: in the fragment of the first one's
        widget (as a slider move inside the Explore fragment is sent). ``keep=False``: the hostile
        values are sent once and not resent with later reruns (as a page reload would forget them)."""
        frag = ""
        if fragment and widgets:
            frag = next((w.fragment_id for w in self.widgets.values() if w.id == widgets[0].id), "")
        before = dict(self.states)
        run = await self.rerun(label, fragment_id=frag, widgets=tuple(widgets), triggers=tuple(triggers), **rerun)
        if not keep:
            self.states = before
        return run

    async def clear_cache(self) -> None:
        """The toolbar's "Clear cache" message (no reply is expected)."""
        back = BackMsg()
        back.clear_cache = True
        Tab.sent += 1
        await self.ws.send(back.SerializeToString())

    async def send_raw(self, back: BackMsg) -> None:
        Tab.sent += 1
        await self.ws.send(back.SerializeToString())

    def take_problems(self) -> list[dict]:
        found, self.problems[:] = list(self.problems), []
        return found


async def wait_for(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()
