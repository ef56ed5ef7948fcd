"""An ordered ``map`` over a Dask cluster, with a bounded number of tasks in flight.

Why Dask's distributed scheduler (and not Ray): the tasks are plain Python functions of small
picklable arguments whose results are lists of rows, which is what ``Client.submit`` does with
no actor or object-store setup; a worker that dies has its tasks (and the results it held)
rescheduled on the others by the scheduler itself; and ``dask scheduler`` / ``dask worker`` are
two commands any machine with this project's requirements can run, CPU or GPU.

Each result is gathered once, by its task's key, in submission order: a task that ran twice
(because its first worker died) still yields its rows once. The model is loaded once per worker
process (:func:`core.lpips.engine.get_network` caches it), from that worker's weights cache; nothing is
downloaded.

>>> runner = connect("tcp://127.0.0.1:8786")          # doctest: +SKIP
>>> list(runner.map(len, [[1, 2], [3]]))              # doctest: +SKIP
[2, 1]
"""

from __future__ import annotations

import uuid
from collections import deque
from typing import Any, Callable, Iterable, Iterator

from core.errors import LpipsExplorerError

__all__ = ["ClusterError", "DaskRunner", "connect"]


class ClusterError(LpipsExplorerError):
    """The cluster cannot be reached or failed in a way no retry fixes."""


class DaskRunner:
    """Runs tasks on the Dask scheduler at ``address``; :meth:`map` yields results in order.

    ``window`` is how many tasks are submitted ahead of the one being written (default: two per
    worker thread), which bounds the rows held anywhere at once.
    """

    def __init__(self, address: str, *, window: int | None = None) -> None:
        from distributed import Client

        try:  # gives up after dask's `distributed.comm.timeouts.connect` (30 s by default)
            self.client = Client(address, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"Could not reach the Dask scheduler at {address} ({exc}). Start one with "
                               "`dask scheduler` and workers with `dask worker ADDRESS`, or check the address.") from None
        threads = sum(self.client.nthreads().values())
        if threads == 0:
            self.client.close()
            raise ClusterError(f"The Dask scheduler at {address} has no workers; start some with `dask worker {address}`.")
        self.window = window or max(4, 2 * threads)
        self.address = address

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """``function(item)`` for each item, computed on the cluster, yielded in item order."""
        run = uuid.uuid4().hex[:12]
        name = getattr(function, "func", function).__name__
        pending: deque = deque()
        source = enumerate(items)

        def submit_more() -> None:
            while len(pending) < self.window:
                try:
                    k, item = next(source)
                except StopIteration:
                    return
                pending.append(self.client.submit(function, item, key=f"{name}-{run}-{k}", pure=False))

        submit_more()
        try:
            while pending:
                future = pending.popleft()
                try:
                    result = future.result()
                except LpipsExplorerError as exc:
                    raise type(exc)(f"A cluster worker reported: {exc}") from None
                except Exception as exc:  # KilledWorker (died too often), lost scheduler, a task's bug
                    raise ClusterError(f"The cluster run failed: {type(exc).__name__}: {exc}") from None
                finally:
                    future.release()
                submit_more()
                yield result
        finally:
            for future in pending:  # stopped early (an error, Ctrl-C): nothing left running
                future.cancel()

    def close(self) -> None:
        self.client.close()


def connect(address: str) -> DaskRunner:
    """The command line's ``--cluster ADDRESS`` (the ``dask`` entry point)."""
    return DaskRunner(address)
