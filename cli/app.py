"""``lpips-explorer app``: start the Streamlit app with the server settings of ``make run``.

The app (``views/app.py``, its pages, ``views/.streamlit/config.toml`` and the gallery) is
package data, so this works from any folder once the package is installed. The server runs in
this process, which becomes the server (``exec``): the glibc heap settings below must be in the
environment when a process starts, which a console script cannot arrange for itself.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from .common import UsageError, positive

__all__ = ["SERVER_ENV", "add_parser", "app_script", "run", "server_command", "server_env"]

# The server's environment, as `make run` sets it (docs/performance.md has the measurements):
# MALLOC_ARENA_MAX=2: glibc's per-thread arenas (each rerun runs in a thread) kept ~200 MB more
# for a class of 30; MALLOC_MMAP_THRESHOLD_: buffers of 1 MB and more go back to the OS when
# freed (class of 30 peak 1.43 vs 1.64 GiB); OMP_WAIT_POLICY=PASSIVE: idle OpenMP teams sleep
# at once instead of spinning on the cores the next rerun needs. A value already set wins.
SERVER_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "1048576", "OMP_WAIT_POLICY": "PASSIVE"}


def app_script() -> Path:
    """The app's entry script, wherever the package is installed. Found, not imported: the app
    runs in the server process, and the command line depends on none of its code."""
    spec = importlib.util.find_spec("views")
    if spec is None or spec.origin is None:
        raise UsageError("the app's package (views) is not installed; reinstall lpips-explorer.")
    return Path(spec.origin).resolve().parent / "app.py"


def server_command(host: str = "127.0.0.1", port: int = 8501, extra: list[str] | None = None,
                   script: Path | None = None) -> list[str]:
    """The command line that serves the app: ``streamlit run`` through ``views.serve`` (which
    warms the library up while the first browser loads the page), with the project's settings;
    its other settings come from ``views/.streamlit/config.toml`` beside the script (``script``:
    another checkout's ``views/app.py``; default: this installation's)."""
    return [sys.executable, "-m", "views.serve", "run", str(script or app_script()), "--server.address", host,
            "--server.port", str(port), "--browser.gatherUsageStats", "false", *(extra or [])]


def server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with :data:`SERVER_ENV` where unset."""
    env = dict(os.environ if base is None else base)
    for key, value in SERVER_ENV.items():
        env.setdefault(key, value)
    return env


def _host(text: str) -> str:
    if not text or any(c.isspace() for c in text):
        import argparse

        raise argparse.ArgumentTypeError(f"must be a host name or address such as 127.0.0.1, got {text!r}")
    return text


def add_parser(sub) -> None:
    p = sub.add_parser("app", help="start the app in the browser (Streamlit server)",
                       description="Serve LPIPS Explorer on http://HOST:PORT with the settings of `make run`. "
                                   "Loopback by default: to serve a class on a network, see "
                                   "docs/serving-a-class.md before choosing --host 0.0.0.0.")
    p.add_argument("--host", type=_host, default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=positive("--port", 65535), default=8501, help="port (default 8501)")
    p.set_defaults(func=run)


def run(args) -> int:
    script = app_script()
    if not script.is_file():
        raise UsageError(f"the app's files are missing ({script}); reinstall the package.")
    command = server_command(args.host, args.port)
    print(f"LPIPS Explorer on http://{args.host}:{args.port} (Ctrl+C stops it)", file=sys.stderr, flush=True)
    os.execve(command[0], command, server_env())
    return 0  # not reached: exec replaces this process
