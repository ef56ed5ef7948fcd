"""What one browser may do to the work and the caches every student shares.

Any browser can send any message, so server-wide work is bounded per server and per client
address, and the "Clear cache" message no longer empties what the whole class uses:

- :data:`MAX_PREPARING` sessions' rounds at most are queued or prepared at once per server
  (``LPIPS_EXPLORER_QUIZ_MAX_PREPARING``, default 4; :class:`teach.preparation.RoundPreparer`
  refuses one more with a message);
- :data:`SESSIONS_PER_HOUR` session creations at most per client address in any hour
  (``LPIPS_EXPLORER_QUIZ_SESSIONS_PER_HOUR``, default 10; :data:`session_creations`);
- :func:`guard_clear_cache`: the "Clear cache" message clears only the sender's own session
  state, not the server-wide caches (the engines, the prepared references, the quiz store).

The state lives in this module (imported once per server process), not in a Streamlit cache,
so the message that clears those caches cannot reset the counts either.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time

import streamlit as st

__all__ = ["MAX_PREPARING", "SESSIONS_PER_HOUR", "RateLimit", "client_address", "guard_clear_cache",
           "session_creations"]

_LOGGER = logging.getLogger(__name__)


def _setting(name: str, default: int, low: int = 1) -> int:
    """A whole-number setting from the environment; an unusable value falls back to ``default``
    (with a log line) rather than stopping the server for a typo."""
    raw = os.environ.get(name, "")
    try:
        value = int(raw) if raw.strip() else default
    except ValueError:
        value = None
    if value is None or value < low:
        _LOGGER.warning("%s=%r is not a whole number of at least %d; using %d", name, raw, low, default)
        return default
    return value


MAX_PREPARING = _setting("LPIPS_EXPLORER_QUIZ_MAX_PREPARING", 4)
SESSIONS_PER_HOUR = _setting("LPIPS_EXPLORER_QUIZ_SESSIONS_PER_HOUR", 10)
#: Optional: the request header a reverse proxy puts the client's address in (``X-Forwarded-For``,
#: ``X-Real-IP``). Unset, the connection's own address is used: a header is trusted only when the
#: person serving the app says a proxy sets it, since any client can send one.
ADDRESS_HEADER = os.environ.get("LPIPS_EXPLORER_CLIENT_ADDRESS_HEADER", "").strip()


class RateLimit:
    """At most ``limit`` events per key in any ``window`` seconds (a sliding window), thread-safe.

    >>> limit = RateLimit(2, 3600)
    >>> [limit.allow("10.0.0.7", now=t) for t in (0, 1, 2)], limit.allow("10.0.0.8", now=2)
    ([True, True, False], True)
    >>> limit.allow("10.0.0.7", now=3600), limit.retry_after("10.0.0.7", now=3600)  # the event at 0 has expired
    (True, 1.0)
    """

    def __init__(self, limit: int, window: float, max_keys: int = 10_000) -> None:
        self.limit, self.window, self.max_keys = int(limit), float(window), int(max_keys)
        self._events: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Count one event for ``key`` if fewer than ``limit`` happened in the window; whether it was."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._recent(key, now)
            if len(events) >= self.limit:
                return False
            if key not in self._events and len(self._events) >= self.max_keys:
                self._forget_idle(now)  # many addresses: drop those with nothing in the window
            self._events.setdefault(key, events).append(now)
            return True

    def retry_after(self, key: str, now: float | None = None) -> float:
        """Seconds until ``key`` may have one more event (0 if it may now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._recent(key, now)
            return 0.0 if len(events) < self.limit else max(0.0, events[0] + self.window - now)

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        events = self._events.get(key, collections.deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, e in self._events.items() if not e or e[-1] <= now - self.window]:
            del self._events[key]


#: Session creations per client address (one per server process).
session_creations = RateLimit(SESSIONS_PER_HOUR, 3600.0)


def client_address() -> str:
    """Who is asking, for the per-address limits: the proxy's header when one is configured
    (:data:`ADDRESS_HEADER`, its last entry: the one the proxy added), else the connection's
    address. Every loopback client (``st.context.ip_address`` is ``None`` for them) shares one."""
    if ADDRESS_HEADER:
        values = st.context.headers.get_all(ADDRESS_HEADER)
        if values and isinstance(values[-1], str):
            last = values[-1].split(",")[-1].strip()
            if last:
                return last[:64]
    address = st.context.ip_address
    # Text only: where no browser is connected (AppTest, bare mode) Streamlit has no address.
    return address if isinstance(address, str) and address else "loopback"


_guard_lock = threading.Lock()


def guard_clear_cache() -> bool:
    """Make Streamlit's "Clear cache" message clear only the sender's session state.

    Streamlit 1.67 handles that message (``BackMsg.clear_cache``, the toolbar's "Clear cache"
    and the C key) by clearing every ``st.cache_data`` and ``st.cache_resource`` of the server,
    for every session, and offers no setting to turn it off (``client.toolbarMode = "minimal"``
    only hides the menu item; the message still works). The shared caches hold what the whole
    class uses: the engines, the prepared references, the quiz store and the round preparer
    (a new preparer would forget the sessions being prepared and start another thread). So the
    handler is replaced, once per server process, by one that clears the sender's own session
    state only (what Streamlit's handler also does). Whether it worked: ``False`` if this
    Streamlit has no such handler (then ``tests/test_hostile_client.py`` fails, by design)."""
    from streamlit.runtime.app_session import AppSession

    with _guard_lock:
        original = getattr(AppSession, "_handle_clear_cache_request", None)
        if original is None:
            _LOGGER.warning("this Streamlit has no clear-cache handler to guard; a client can clear shared caches")
            return False
        if getattr(original, "_lpips_explorer_guard", False):
            return True

        def clear_own_state_only(self) -> None:
            self._session_state.clear()

        clear_own_state_only._lpips_explorer_guard = True  # type: ignore[attr-defined]
        AppSession._handle_clear_cache_request = clear_own_state_only  # type: ignore[method-assign]
        return True
