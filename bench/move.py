"""One slider move on the Explore page, stage by stage, against its floor (one backbone pass).

    .venv/bin/python -m bench.move [--size 512] [--net alex] [--moves 15]

Replays the server work of the Explore page for one new slider value — exactly the functions
the page calls, without Streamlit — and prints the median time of each stage, their sum, and
the ratio to one LPIPS backbone pass of the new image (the floor: what no implementation can
avoid). Stages: the distortion; the metrics (LPIPS with its maps, then every other registered
metric against the prepared reference); the figures as the page builds them (Plotly objects
serialized to JSON, as Streamlit sends them); the JPEG images. Run it on a quiet machine:
ratios are measured within one run, absolute times move with the load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch


def _timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.move", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="compute size (longest side), as the sidebar's limit")
    parser.add_argument("--net", default="alex")
    parser.add_argument("--moves", type=int, default=15, help="slider values timed per stage (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    import plotly.io as pio
    import streamlit  # noqa: F401  (imported as in the server, so the garbage collector sees what it sees)

    from core import distortions
    from core.comparison import compare, prepare_reference
    from core.images.imageio import downscale_to_fit
    from core.lpips.engine import Engine
    from core.images.samples import load_sample
    from core.images.tensors import from_numpy, quantize_8bit, to_uint8
    from views import explore_model as render
    from viz import charts

    ref_t, _ = downscale_to_fit(load_sample("astronaut"), args.size)
    ref_px = to_uint8(ref_t)
    ref = from_numpy(ref_px)
    engine = Engine(args.net, device="cpu")
    prepared = prepare_reference(engine, ref, precise=True)  # cached per reference by the page
    sigmas = np.linspace(0.6, 3.0, args.moves)
    state = {"i": 0}

    def next_chain():
        state["i"] = (state["i"] + 1) % len(sigmas)
        return [distortions.Step("gaussian_blur", {"sigma": float(sigmas[state["i"]])})]

    # Warm-up: first calls allocate, JIT-select kernels, fill caches.
    for _ in range(3):
        dist = quantize_8bit(distortions.apply(next_chain(), ref, seed=0))
        compare(engine, prepared, dist)
        engine.network.taps(dist * 2 - 1)

    n = max(3, args.moves)
    with torch.inference_mode():
        floor, _ = _timed(lambda: engine.network.taps(dist * 2 - 1), n)

    # What the page does for one slider value, in its order (views/explore.py).
    rows: list[tuple[str, float, str]] = []  # stage, ms, when
    t, dist_px = _timed(lambda: to_uint8(quantize_8bit(distortions.apply(next_chain(), ref, seed=0))), n)
    rows.append(("distortion (apply, 8-bit)", t, "always"))
    dist = from_numpy(dist_px)
    # The page computes LPIPS first and sends its card, then the other metrics (views/explore.py).
    shown = tuple(prepared.metrics)
    rest = tuple(k for k in shown if k != "lpips")
    t, lpips_part = _timed(lambda: compare(engine, prepared, dist, metrics=("lpips",), spatial=("lpips",)), n)
    rows.append(("LPIPS with its map (card sent next)", t, "always"))
    t, rest_closed = _timed(lambda: compare(engine, prepared, dist, metrics=rest, spatial=False), n)
    rows.append((f"other {len(rest)} metrics, no maps", t, "collapsed"))
    t, rest_open = _timed(lambda: compare(engine, prepared, dist, metrics=rest, spatial=True), n)
    rows.append((f"other {len(rest)} metrics with their maps", t, "open"))
    lp = render.explore_data(lpips_part)
    data_closed = render.merge_data([lp, render.explore_data(rest_closed)], shown)
    data = render.merge_data([lp, render.explore_data(rest_open)], shown)
    t, _ = _timed(lambda: render.images(dist_px, data_closed), n)
    rows.append(("JPEG images (distorted, LPIPS map)", t, "always"))
    figures: dict = {}  # as the page keeps them per session: built on the first move only
    render.layer_figure(data, ref_px.shape[:2], True, figures)
    for k in data["maps"]:
        if k != "lpips":
            render.map_figure(k, data["maps"][k], ref_px.shape[:2], figures)
    t, _ = _timed(lambda: pio.to_json(render.layer_figure(data, ref_px.shape[:2], True, figures), validate=False), n)
    rows.append(("per-layer figure (update + JSON)", t, "open"))
    t, _ = _timed(lambda: pio.to_json(charts.layer_contributions(data["row"]["lpips_layer_names"],
                                                                 data["row"]["lpips_layers"],
                                                                 data["row"]["lpips"]), validate=False), n)
    rows.append(("layer bars (build + JSON)", t, "open"))
    t, _ = _timed(lambda: [pio.to_json(render.map_figure(k, data["maps"][k], ref_px.shape[:2], figures),
                                       validate=False) for k in data["maps"] if k != "lpips"], n)
    rows.append(("other maps' figures (update + JSON)", t, "open"))

    # Streamlit runs gc.collect() after every rerun (runner.postScriptGC); the app freezes what was
    # imported once its first engine is loaded (views.common.freeze_imported_objects).
    import gc

    gc_unfrozen, _ = _timed(gc.collect, 5)
    gc.collect()
    gc.freeze()
    t, _ = _timed(gc.collect, n)
    frozen = gc.get_freeze_count()
    gc.unfreeze()  # leave the process as it was (this runs inside the test suite too)
    rows.append(("Streamlit's gc.collect() after the run", t, "always"))

    # Where the metrics' time goes (each alone; in one call SSIM and MS-SSIM share a scale).
    detail: list[tuple[str, float]] = []
    for key in prepared.parts:  # not those too small to score (MS-SSIM below 176 px)
        t, _ = _timed(lambda key=key: compare(engine, prepared, dist, metrics=key, spatial=("lpips",)), n)
        detail.append((key, t))

    collapsed = sum(t for _, t, when in rows if when in ("always", "collapsed"))
    opened_total = sum(t for _, t, when in rows if when in ("always", "open"))
    to_card = rows[0][1] + rows[1][1]  # distortion + LPIPS: when the LPIPS card can leave

    # CPU time of one whole move (default view), all threads: what a class of N costs the server.
    def whole_move():
        d = from_numpy(to_uint8(quantize_8bit(distortions.apply(next_chain(), ref, seed=0))))
        a = compare(engine, prepared, d, metrics=("lpips",), spatial=("lpips",))
        b = compare(engine, prepared, d, metrics=rest, spatial=False)
        render.images(dist_px, render.merge_data([render.explore_data(a), render.explore_data(b)], shown))

    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for _ in range(n):
        whole_move()
    cpu_per_move = (time.process_time() - cpu_start) / n * 1000
    wall_per_move = (time.perf_counter() - wall_start) / n * 1000
    print(f"One slider move on Explore: {args.net} at {ref_px.shape[1]}×{ref_px.shape[0]}, CPU, "
          f"{torch.get_num_threads()} threads, median of {n}")
    print(f"  {'stage':<40}{'ms':>8}{'× pass':>9}   when")
    for name, t, when in rows:
        print(f"  {name:<40}{t:>8.1f}{t / floor:>9.2f}   {when}")
    print(f"  {'total, layer view collapsed (default)':<40}{collapsed:>8.1f}{collapsed / floor:>9.2f}")
    print(f"  {'total, layer view open':<40}{opened_total:>8.1f}{opened_total / floor:>9.2f}")
    print(f"  {'floor: one backbone pass':<40}{floor:>8.1f}{1.0:>9.2f}")
    print(f"  {'LPIPS card ready (distortion + LPIPS)':<40}{to_card:>8.1f}{to_card / floor:>9.2f}")
    print(f"  whole move (default view) in a loop: {wall_per_move:.1f} ms wall, {cpu_per_move:.1f} ms CPU "
          f"(all threads; a class of N moving once a second needs N × {cpu_per_move / 1000:.3f} CPU-s/s)")
    print("  metrics alone: " + ", ".join(f"{k} {t:.1f} ms ({t / floor:.2f}×)" for k, t in detail))
    print(f"  gc.collect() before the imports are frozen: {gc_unfrozen:.1f} ms ({gc_unfrozen / floor:.2f}×), "
          f"over {frozen} objects")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"stages_ms": {name: t for name, t, _ in rows}, "when": {name: w for name, _, w in rows},
                       "metrics_alone_ms": dict(detail), "total_collapsed_ms": collapsed,
                       "total_open_ms": opened_total, "floor_ms": floor, "to_card_ms": to_card,
                       "cpu_ms_per_move": cpu_per_move, "wall_ms_per_move": wall_per_move, "ratio_collapsed": collapsed / floor,
                       "ratio_open": opened_total / floor, "gc_unfrozen_ms": gc_unfrozen, "size": list(ref_px.shape[:2]), "net": args.net,
                       "threads": torch.get_num_threads()}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
