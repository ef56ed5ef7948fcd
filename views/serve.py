"""The app's server process (``lpips-explorer app`` runs ``python -m views.serve run views/app.py …``):
Streamlit's own command line, plus a warm-up thread started with the server.

Streamlit runs the app's script only when a browser connects, so the first visitor used to wait
for everything the first page needs — importing PyTorch, loading the network, loading the
compiled SSIM kernels — after the browser had finished loading Streamlit's own files. The
warm-up does that work while the server starts and the browser loads, into the same
process-wide caches the page uses (imported modules, the network cache of
:func:`core.lpips.engine.get_network`, numba's loaded kernels). It changes no result: the page
computes everything as before, only sooner. A failure here is ignored: the page meets the same
problem (missing weights, say) and explains it.
"""

from __future__ import annotations

import sys
import threading
import time

__all__ = ["main", "warm_up"]


def warm_up() -> None:
    """Import and load what the first Explore view needs, with the page's default settings."""
    _wait_for_the_server()
    try:
        import plotly.graph_objects  # noqa: F401  (the charts)
        import torch

        from core import metrics
        from core.comparison import compare
        from core.lpips.engine import Engine, resolve_device
        from core.metrics._ssim_kernels import compile_all
        from viz import charts, heatmaps  # noqa: F401

        for key in metrics.defaults():  # each default metric's module
            for function in (metrics.get(key).prepare, metrics.get(key).score):
                getattr(function, "resolve", lambda: None)()
        engine = Engine("alex", "0.1", True, resolve_device("auto"))
        compile_all()  # loads the cached machine code (compiled by `make setup`)
        image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        compare(engine, image, image.flip(-1), spatial=False)  # first pass: PyTorch's thread pool, oneDNN
    except Exception:  # noqa: BLE001  (the page reports any real problem with its own message)
        pass


def _wait_for_the_server(timeout: float = 30.0) -> None:
    """Until Streamlit's runtime is up (about a second): importing PyTorch beside the server's own
    start would only slow both down (the interpreter runs one thread at a time)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.runtime import RuntimeState

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Runtime.exists() and Runtime.instance().state not in (RuntimeState.INITIAL,):
            return
        time.sleep(0.05)


def main() -> None:
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    from streamlit.web.cli import main as streamlit_main

    sys.argv = ["streamlit", *sys.argv[1:]]
    streamlit_main()


if __name__ == "__main__":
    main()
