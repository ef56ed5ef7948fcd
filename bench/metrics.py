"""Every registered metric's cost per image, at 256² and 512², alone and in a batch of 16.

    .venv/bin/python -m bench.metrics [--sizes 256 512] [--repeats 5] [--threads 0] [--json PATH]
                                      [--metrics KEYS] [--allpairs N] [--interleaved ROUNDS]

For each metric: the reference is prepared once (as the app and the command line do), then one
distorted image is scored against it — the cost one slider move adds for that metric — on the
app's path (``precise=False``: float32 on the CPU, maps on) and on the command line's path
(float64, no maps); then a batch of 16 distorted images against the same reference, reported per
image. Median of ``--repeats`` after one warm-up. The photo is the gallery's astronaut, resized
to each size; the distortion is a Gaussian blur plus noise. Run it on a quiet machine: ratios
within one run hold, absolute times move with the load. LPIPS (AlexNet) is the yardstick row.

``--interleaved ROUNDS`` also times one move at the largest size for every chosen metric in turn,
ROUNDS times round-robin (app and command-line paths), and prints each one's median and minimum:
on a loaded machine the metrics then share the same moments of load, so their ratios hold better
than those of the per-metric medians above.

``--allpairs N`` also runs the command line's ``allpairs`` on N PNGs of the largest size (the
photo with N different blur and noise draws) for each metric alone, and reports the whole
command's time per pair (N(N-1)/2 pairs; decoding, its default float32 precision and writing the
CSV included; the process start is not).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import torch


def _median_ms(fn: Callable[[], object], repeats: int, warm_up: bool = True) -> float:
    if warm_up:  # caches, lazily built filters and networks
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _pair(size: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch.nn.functional as F

    from core.images.samples import load_sample
    from core.images.tensors import quantize_8bit

    ref = F.interpolate(load_sample("astronaut"), size=(size, size), mode="bilinear", antialias=True,
                        align_corners=False).clamp(0, 1)
    ref = quantize_8bit(ref)
    generator = torch.Generator().manual_seed(0)
    kernel = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    kernel = (kernel[:, None] * kernel[None, :] / 256.0).expand(3, 1, 5, 5)
    blurred = F.conv2d(F.pad(ref, (2, 2, 2, 2), mode="replicate"), kernel, groups=3)
    dists = (blurred.expand(batch, -1, -1, -1) + 0.03 * torch.randn(batch, 3, size, size, generator=generator))
    return ref, quantize_8bit(dists.clamp(0, 1))


def measure(sizes: tuple[int, ...], repeats: int, keys: tuple[str, ...] | None = None) -> list[dict]:
    from core import metrics
    from core.lpips.engine import Engine
    from core.metrics import MetricContext

    engine = Engine("alex")
    rows = []
    for key in keys or metrics.names():
        spec = metrics.get(key)
        row: dict = {"metric": key, "default": spec.default}
        for size in sizes:
            ref, dists = _pair(size, 16)
            one = dists[:1]
            app = MetricContext(engine=engine, precise=False, spatial=True)
            cli = MetricContext(engine=engine, precise=True, spatial=False)
            prepared_app = spec.prepare(ref, app)
            prepared_cli = spec.prepare(ref, cli)
            row[f"app_{size}_ms"] = _median_ms(lambda: spec.score(prepared_app, one, app), repeats)
            row[f"cli_{size}_ms"] = _median_ms(lambda: spec.score(prepared_cli, one, cli), repeats)
            # Already warm from the calls above; the batch is timed fewer times (DISTS: 16 VGG16 passes).
            row[f"prepare_{size}_ms"] = _median_ms(lambda: spec.prepare(ref, cli), max(1, repeats // 2), False)
            batch_ms = _median_ms(lambda: spec.score(prepared_cli, dists, cli), max(1, repeats // 3), False)
            row[f"batch16_{size}_ms_per_image"] = batch_ms / dists.shape[0]
        rows.append(row)
        print(_format_row(row, sizes), flush=True)
    return rows


def interleaved_ms(keys: tuple[str, ...], size: int, rounds: int) -> dict[str, dict[str, float]]:
    """One move of each metric in turn, ``rounds`` times: median and minimum (ms) of the app's
    path and of the command line's, for each key."""
    from core import metrics
    from core.lpips.engine import Engine
    from core.metrics import MetricContext

    engine = Engine("alex")
    ref, dists = _pair(size, 1)
    contexts = {"app": MetricContext(engine=engine, precise=False, spatial=True),
                "cli": MetricContext(engine=engine, precise=True, spatial=False)}
    prepared = {(k, c): metrics.get(k).prepare(ref, ctx) for k in keys for c, ctx in contexts.items()}
    times: dict[tuple[str, str], list[float]] = {kc: [] for kc in prepared}
    for _ in range(rounds + 1):  # the first round warms up and is dropped
        for (key, path), state in prepared.items():
            start = time.perf_counter()
            metrics.get(key).score(state, dists, contexts[path])
            times[(key, path)].append((time.perf_counter() - start) * 1000)
    return {key: {f"{path}_{stat}": fn(times[(key, path)][1:]) for path in contexts
                  for stat, fn in (("median", statistics.median), ("min", min))} for key in keys}


def _quietly(fn: Callable, *args) -> object:
    """``fn(*args)`` with its progress lines (stdout, stderr) dropped."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn(*args)


def allpairs_per_pair_ms(keys: tuple[str, ...], size: int, count: int) -> dict[str, float]:
    """Each metric alone through ``lpips-explorer allpairs`` on ``count`` PNGs of ``size``²:
    the command's wall time per pair, in ms (one untimed run first: weights, caches)."""
    import tempfile
    from pathlib import Path

    import numpy as np
    from PIL import Image

    import cli

    _, dists = _pair(size, count)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i, image in enumerate(dists):
            pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
        pairs = count * (count - 1) // 2
        for key in keys:
            argv = ["allpairs", str(folder), "-o", str(Path(tmp) / "pairs.csv"), "--metrics", key, "--device", "cpu"]
            out[key] = _median_ms(lambda: _quietly(cli.main, argv), 1) / pairs
    return out


def _header(sizes: tuple[int, ...]) -> str:
    cols = ["metric", "default"]
    for size in sizes:
        cols += [f"app {size}² ms", f"CLI {size}² ms", f"batch16 {size}² ms/img", f"prepare {size}² ms"]
    return "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)


def _format_row(row: dict, sizes: tuple[int, ...]) -> str:
    cells = [row["metric"], "yes" if row["default"] else "no"]
    for size in sizes:
        cells += [f"{row[f'app_{size}_ms']:.1f}", f"{row[f'cli_{size}_ms']:.1f}",
                  f"{row[f'batch16_{size}_ms_per_image']:.1f}", f"{row[f'prepare_{size}_ms']:.1f}"]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--metrics", help="comma-separated keys (default: every registered metric)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--interleaved", type=int, default=0, metavar="ROUNDS",
                        help="also time one move of every metric in turn, ROUNDS times (0: skip)")
    parser.add_argument("--allpairs", type=int, default=0, metavar="N",
                        help="also time `allpairs` on N images of the largest size, per pair (0: skip)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = tuple(args.sizes)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load:.2f} at start")
    print(_header(sizes), flush=True)
    keys = tuple(k.strip() for k in args.metrics.split(",")) if args.metrics else None
    rows = measure(sizes, args.repeats, keys)
    if args.interleaved:
        size = max(sizes)
        print(f"\ninterleaved, one move at {size}², {args.interleaved} rounds, ms (median / min):")
        print("| metric | app | CLI |\n|---|---|---|")
        figures = interleaved_ms(tuple(row["metric"] for row in rows), size, args.interleaved)
        for row in rows:
            f = figures[row["metric"]]
            row[f"interleaved_{size}"] = f
            print(f"| {row['metric']} | {f['app_median']:.1f} / {f['app_min']:.1f} | "
                  f"{f['cli_median']:.1f} / {f['cli_min']:.1f} |", flush=True)
    if args.allpairs:
        size = max(sizes)
        print(f"\nallpairs, {args.allpairs} images of {size}² ({args.allpairs * (args.allpairs - 1) // 2} pairs), "
              "ms per pair for the whole command:")
        per_pair = allpairs_per_pair_ms(tuple(row["metric"] for row in rows), size, args.allpairs)
        for row in rows:
            row[f"allpairs_{size}_ms_per_pair"] = per_pair[row["metric"]]
            print(f"| {row['metric']} | {per_pair[row['metric']]:.1f} |", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": torch.get_num_threads(), "load_at_start": load, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
