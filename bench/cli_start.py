"""How fast the command line answers: wall time of whole processes, as a user waits for them.

    .venv/bin/python -m bench.cli_start [--runs 5]

Prints, median of ``--runs`` fresh processes each (after one warm-up run that fills the OS's file
cache), for the installed ``lpips-explorer`` command:

* ``--help``, ``metrics`` and a usage error (``compare`` with one file): none may import PyTorch
  (checked, not assumed: each is also run once with ``-X importtime``), target ≤ 0.5 s;
* ``compare`` on two 64×64 PNGs (default metrics, CPU) against ``python -c "import torch"`` in
  the same run: target ≤ ``import torch`` + 0.7 s;
* where the rest of ``compare``'s time goes: the slowest imports of one run (``-X importtime``).

The app's server start → first metrics on the page is measured by ``bench/app_loop.py``.
A benchmark prints figures; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

COMMAND = Path(sys.executable).with_name("lpips-explorer")


def timed(argv: list[str], runs: int, env: dict[str, str]) -> tuple[float, int]:
    """Median wall seconds of ``runs`` fresh processes (after a warm-up), and the exit status."""
    subprocess.run(argv, capture_output=True, env=env, timeout=600)
    times, status = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        status = subprocess.run(argv, capture_output=True, env=env, timeout=600).returncode
        times.append(time.perf_counter() - start)
    return statistics.median(times), status


def imports(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Cumulative import time (s) per top-level module of one run, from ``-X importtime``."""
    result = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, env=env,
                            timeout=600)
    cumulative: dict[str, float] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if cum.isdigit() and "." not in name and name.strip() == name:
            cumulative[name] = max(cumulative.get(name, 0.0), int(cum) / 1e6)
    return cumulative


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        pair = []
        for name in ("ref.png", "dist.png"):
            path = Path(tmp) / name
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
            pair.append(str(path))
        cli = [str(COMMAND)]
        module = ["-m", "cli"]
        rows = [
            ("lpips-explorer --help", cli + ["--help"], module + ["--help"]),
            ("lpips-explorer metrics", cli + ["metrics"], module + ["metrics"]),
            ("usage error (compare, one file)", cli + ["compare", pair[0]], module + ["compare", pair[0]]),
        ]
        print(f"Command line start-up, median of {args.runs} runs ({os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.1f})")
        for label, argv, as_module in rows:
            seconds, status = timed(argv, args.runs, env)
            torch_loaded = "torch" in imports(as_module, env)
            print(f"  {label:<34}{seconds:>7.2f} s  exit {status}  torch imported: {'yes' if torch_loaded else 'no'}"
                  f"  (target ≤ 0.50 s, no torch)")
        torch_s, _ = timed([sys.executable, "-c", "import torch"], args.runs, env)
        compare_s, status = timed(cli + ["compare", *pair, "--device", "cpu"], args.runs, env)
        label = 'python -c "import torch"'
        print(f"  {label:<34}{torch_s:>7.2f} s")
        print(f"  {'compare, two 64x64 PNGs':<34}{compare_s:>7.2f} s  exit {status}  = import torch "
              f"+ {compare_s - torch_s:.2f} s (target ≤ + 0.70 s)")
        slowest = sorted(imports(module + ["compare", *pair, "--device", "cpu"], env).items(), key=lambda kv: -kv[1])
        print("  compare's slowest top-level imports (cumulative, one run): "
              + ", ".join(f"{name} {sec:.2f} s" for name, sec in slowest[:8]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
