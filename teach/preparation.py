"""Quiz rounds prepared ahead of the class: images and every metric's values, made once, in the background.

A quiz round costs two LPIPS networks (AlexNet and VGG) and every other metric. Computed when
the first student reaches it, that cost lands on a student's click. Instead, when a teacher
creates a session, :class:`RoundPreparer` computes every round in a background thread
(:func:`prepare_round`) and hands each one to a *sink* that stores it (the quiz store,
:meth:`store.base.BaseQuizStore.save_round`), so showing a round and recording a vote only
read what was stored.

This module does not import :mod:`store`: the sink is anything with ``prepared_rounds(code)``
and ``save_round(code, prepared)`` (:class:`RoundSink`).

>>> prepared = prepare_round(7, 0, engines={}, max_side=64, others=("psnr", "ssim"))  # no network
>>> prepared.spec == make_round(7, 0), prepared.ref_png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
(True, True)
>>> sorted(prepared.metrics)
['psnr', 'ssim']
"""

from __future__ import annotations

import atexit
import io
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from core.errors import LpipsExplorerError
from core.lpips.engine import Engine
from core.images.tensors import to_uint8
from store.records import PNG_SIGNATURE, PreparedRound, RoundSpec
from store.errors import QuizBusyError
from teach.quiz import (
    QuizInputError,
    check_int,
    make_jnd_round,
    make_round,
    render_round,
    score_jnd_round,
    score_round,
)

__all__ = [
    "PNG_SIGNATURE",
    "PreparationStatus",
    "PreparedRound",
    "RoundPreparer",
    "RoundSink",
    "encode_png",
    "prepare_round",
]

def encode_png(image: torch.Tensor | np.ndarray) -> bytes:
    """A 1×3×H×W tensor in [0, 1] (or an H×W×3 uint8 array) as lossless PNG bytes."""
    pixels = to_uint8(image) if isinstance(image, torch.Tensor) else np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise QuizInputError(f"encode_png() needs H×W×3 uint8 pixels, got {pixels.dtype} {pixels.shape}.")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def prepare_round(seed: int, index: int, engines: Mapping[str, Engine], max_side: int = 256,
                  others: Sequence[str] | None = None, kind: str = "2afc") -> PreparedRound:
    """Round ``index`` of the session with ``seed``: rendered at ``max_side``, scored with
    ``engines`` (``{"alex": Engine("alex"), ...}``; ``{}`` scores only the non-LPIPS metrics)
    and ``others`` (default: every other registered metric; see :func:`~teach.quiz.score_round`).
    ``kind="jnd"`` makes a JND round (:func:`~teach.quiz.make_jnd_round`): A is the reference, B
    the second image, and the metrics are measured between the two
    (:func:`~teach.quiz.score_jnd_round`)."""
    if kind not in ("2afc", "jnd"):
        raise QuizInputError(f"kind must be '2afc' or 'jnd', got {kind!r}.")
    spec = make_jnd_round(seed, index) if kind == "jnd" else make_round(seed, index)
    ref, dist_a, dist_b = render_round(spec, max_side=max_side)
    if kind == "jnd":
        metrics = score_jnd_round(spec, dist_a, dist_b, engines, others)
    else:
        metrics = score_round(spec, ref, dist_a, dist_b, engines, others)
    return PreparedRound(spec, encode_png(ref), encode_png(dist_a), encode_png(dist_b), metrics)


class RoundSink(Protocol):
    """Where prepared rounds go (the quiz store implements it)."""

    def prepared_rounds(self, code: str) -> list[int]:
        """The indices of the rounds of session ``code`` already stored."""

    def save_round(self, code: str, prepared: PreparedRound) -> bool:
        """Store ``prepared`` unless that round is stored already; whether it was stored now."""


@dataclass
class PreparationStatus:
    """How far the preparation of one session has come on this server.

    ``ready`` counts the rounds stored (by this server or another); ``running`` is whether this
    server is still working on it; ``error`` is the message of the failure that stopped it.
    """

    code: str
    total: int
    ready: int = 0
    running: bool = True
    error: str | None = None
    seconds_per_round: float | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> bool:
        return self.ready >= self.total


@dataclass(frozen=True)
class _Job:
    code: str
    seed: int
    n_rounds: int
    engines: Mapping[str, Engine]
    max_side: int
    others: tuple[str, ...] | None
    kind: str = "2afc"


class RoundPreparer:
    """One background thread that prepares sessions' rounds, in order, one session after another.

    :meth:`submit` queues a session (a session already queued or being prepared is not queued
    twice; one whose preparation stopped is queued again); the thread skips the rounds the sink
    already has, so resubmitting after a restart continues where the last server stopped, and
    several servers preparing the same session only waste work (the sink keeps the first copy).
    The thread runs at a lower CPU priority (``nice``, Linux) so students' clicks go first.
    ``max_sessions`` bounds the sessions queued or being prepared at once (``None``: no bound):
    any browser can create sessions, and each queued one holds its engines and, once it runs,
    the CPU; one more is refused with :class:`~store.errors.QuizBusyError` until one finishes.

    >>> class Memory:
    ...     def __init__(self): self.rounds = {}
    ...     def prepared_rounds(self, code): return sorted(self.rounds)
    ...     def save_round(self, code, prepared): return self.rounds.setdefault(prepared.index, prepared) is prepared
    >>> sink = Memory()
    >>> preparer = RoundPreparer(sink)
    >>> preparer.submit("K7QX2M", seed=3, n_rounds=2, engines={}, max_side=48, others=("psnr",))
    >>> status = preparer.wait("K7QX2M", timeout=60)
    >>> status.ready, status.running, status.error, sorted(sink.rounds)
    (2, False, None, [0, 1])
    >>> preparer.close()
    """

    def __init__(self, sink: RoundSink, *, nice: int = 10,
                 on_error: Callable[[str, BaseException], None] | None = None,
                 max_sessions: int | None = None) -> None:
        self.sink = sink
        self.nice = int(nice)
        self.max_sessions = None if max_sessions is None else check_int(max_sessions, "max_sessions", 1)
        self.on_error = on_error
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._status: dict[str, PreparationStatus] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # A thread stopped mid-computation at interpreter exit can abort the process (PyTorch's
        # thread pool); stop after the current round instead.
        atexit.register(self.close)

    def submit(self, code: str, seed: int, n_rounds: int, engines: Mapping[str, Engine],
               max_side: int = 256, others: Sequence[str] | None = None, kind: str = "2afc") -> None:
        """Prepare every round of session ``code`` not stored yet (no-op while it is queued or running);
        ``engines``, ``max_side``, ``others`` and ``kind`` as in :func:`prepare_round`. Raises
        :class:`~store.errors.QuizBusyError` when ``max_sessions`` other sessions are queued or running."""
        seed = check_int(seed, "The session seed", 0)
        n_rounds = check_int(n_rounds, "The number of rounds", 1)
        max_side = check_int(max_side, "max_side", 32)
        with self._lock:
            current = self._status.get(code)
            if current is not None and current.running:
                return
            self._check_room_locked()
            self._status[code] = PreparationStatus(code, n_rounds, ready=current.ready if current else 0)
            self._jobs.put(_Job(code, seed, n_rounds, dict(engines), max_side,
                                None if others is None else tuple(others), kind))
            self._stopping.clear()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="quiz-round-preparer", daemon=True)
                self._thread.start()

    def busy(self) -> int:
        """How many sessions are queued or being prepared here now."""
        with self._lock:
            return self._busy_locked()

    def check_room(self) -> None:
        """Raise :class:`~store.errors.QuizBusyError` if one more session would be refused now."""
        with self._lock:
            self._check_room_locked()

    def _check_room_locked(self) -> None:
        if self.max_sessions is not None and self._busy_locked() >= self.max_sessions:
            raise QuizBusyError(
                f"this server is already preparing the rounds of {self.max_sessions} session"
                f"{'' if self.max_sessions == 1 else 's'}; try again in a minute, once one of them is ready.")

    def _busy_locked(self) -> int:
        return sum(1 for status in self._status.values() if status.running)

    def status(self, code: str) -> PreparationStatus | None:
        """A copy of this server's status for session ``code``; ``None`` if never submitted here."""
        with self._lock:
            found = self._status.get(code)
            return None if found is None else PreparationStatus(**found.__dict__)

    def wait(self, code: str, timeout: float) -> PreparationStatus | None:
        """Block until session ``code`` is no longer being prepared here (or ``timeout`` s passed)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (found := self._status.get(code)) is not None and found.running:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        return self.status(code)

    def close(self, timeout: float = 60.0) -> None:
        """Stop the thread after the round it is preparing (queued sessions are dropped; they
        continue when submitted again, here or on another server)."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._jobs.put(None)
            thread.join(timeout=timeout)

    # -- the thread --------------------------------------------------------------------

    def _update(self, code: str, **changes: Any) -> None:
        with self._changed:
            status = self._status[code]
            for name, value in changes.items():
                setattr(status, name, value)
            self._changed.notify_all()

    def _work(self) -> None:
        if self.nice and hasattr(os, "setpriority"):
            try:  # on Linux a thread is a task with its own priority
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            except OSError:
                pass
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._prepare(job)
            except BaseException as exc:  # the thread must survive anything one job does
                message = str(exc) if isinstance(exc, LpipsExplorerError) else f"{type(exc).__name__}: {exc}"
                self._update(job.code, running=False, error=message)
                if self.on_error is not None:
                    self.on_error(job.code, exc)
            else:
                self._update(job.code, running=False)

    def _prepare(self, job: _Job) -> None:
        done = set(self.sink.prepared_rounds(job.code))
        self._update(job.code, ready=len(done))
        spent, made = 0.0, 0
        for index in range(job.n_rounds):
            if index in done:
                continue
            if self._stopping.is_set():
                raise InterruptedError("the server is stopping; the remaining rounds are prepared when it is back")
            start = time.monotonic()
            prepared = prepare_round(job.seed, index, job.engines, job.max_side, job.others, job.kind)
            self.sink.save_round(job.code, prepared)
            done.add(index)
            spent, made = spent + time.monotonic() - start, made + 1
            self._update(job.code, ready=len(done), seconds_per_round=spent / made)
