"""Background runs for the Synthesis page: one optimization per session, in its own thread.

A Streamlit script run that looped over 200 optimization steps would hold that session's page
until it ended and could not notice a Stop button. Instead the run happens in a thread; it
writes its progress (step, the metrics so far, a snapshot of the images every few steps) into a
:class:`Job` kept in the session's state, and the page polls it with a fragment that reruns
every second. Stop sets an event the optimization checks before every step.

Bounded cost: at most :data:`MAX_RUNNING` runs at once in this server process (others wait,
shown as queued), and a run whose page has not polled for :data:`ABANDON_AFTER_S` seconds
(the tab was closed) stops itself at the next step. Nothing here imports Streamlit.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np

MAX_RUNNING = 2
ABANDON_AFTER_S = 30.0
SNAPSHOT_EVERY_S = 0.7  # a new picture for the page at most this often (copying costs little, encoding more)
_slots = threading.BoundedSemaphore(MAX_RUNNING)


class Job:
    """One optimization running in a thread; every field is read under :attr:`lock`."""

    def __init__(self, kind: str, config: tuple, run: Callable[..., Any]) -> None:
        self.kind, self.config, self._run = kind, config, run
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.state = "queued"  # queued → running → done | stopped | failed
        self.step = 0
        self.total = 0
        self.rows: list[dict[str, float]] = []
        self.snapshot: np.ndarray | None = None  # N×H×W×3 uint8
        self.snapshot_step = 0
        self.result: Any = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.finished: float | None = None
        self.last_seen = time.monotonic()
        self._last_snapshot = 0.0
        self.thread = threading.Thread(target=self._main, name=f"synthesis-{kind}", daemon=True)

    def start(self) -> "Job":
        self.thread.start()
        return self

    # --- called by the page -------------------------------------------------------------------
    def seen(self) -> None:
        """The page is still looking (resets the abandonment clock)."""
        with self.lock:
            self.last_seen = time.monotonic()

    def request_stop(self) -> None:
        self.stop_event.set()

    @property
    def active(self) -> bool:
        with self.lock:
            return self.state in ("queued", "running")

    def view(self) -> dict[str, Any]:
        """A consistent copy of the progress for drawing."""
        with self.lock:
            return {"state": self.state, "step": self.step, "total": self.total, "rows": list(self.rows),
                    "snapshot": self.snapshot, "snapshot_step": self.snapshot_step, "result": self.result,
                    "error": self.error, "seconds": (self.finished or time.monotonic()) - self.started,
                    "stopping": self.stop_event.is_set()}

    # --- the thread -----------------------------------------------------------------------------
    def _should_stop(self) -> bool:
        with self.lock:
            abandoned = time.monotonic() - self.last_seen > ABANDON_AFTER_S
        return self.stop_event.is_set() or abandoned

    def _progress(self, report) -> None:
        now = time.monotonic()
        take = now - self._last_snapshot >= SNAPSHOT_EVERY_S or report.step == report.total
        pixels = None
        if take:
            import torch

            images = report.images()
            pixels = images.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            self._last_snapshot = now
        with self.lock:
            self.step, self.total = report.step, report.total
            self.rows.append({"step": report.step, **report.values})
            if pixels is not None:
                self.snapshot, self.snapshot_step = pixels, report.step

    def _main(self) -> None:
        with _slots:
            if self._should_stop():
                with self.lock:
                    self.state, self.finished = "stopped", time.monotonic()
                return
            with self.lock:
                self.state = "running"
            try:
                result = self._run(progress=self._progress, should_stop=self._should_stop)
            except BaseException as exc:  # shown on the page, never a traceback
                with self.lock:
                    self.state, self.error, self.finished = "failed", exc, time.monotonic()
                return
            with self.lock:
                self.result = result
                self.state = "stopped" if getattr(result, "stopped", False) else "done"
                self.finished = time.monotonic()
