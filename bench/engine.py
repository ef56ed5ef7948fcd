"""Benchmark: our :class:`~core.lpips.engine.Engine` against the official ``lpips==0.1.4`` package.

``python -m bench.engine [--sizes 256,512,1024] [--nets alex,vgg,squeeze] [--repeats 5]
[--device cpu|cuda|auto|cpu,cuda] [--batch 16] [--half bf16|fp16] [--out bench/results.json] [--quick] [--full]
[--no-memory]``

Both implementations run in the same process with the SAME weights (the official model is built
with ``pnet_rand=True`` and our backbone's state is loaded strictly into its trunk; SqueezeNet,
whose weights are not provisioned offline, gets one seeded random trunk loaded into both). Calls
are interleaved (ours, official, ours, …), each timed callable gets one warm-up call, and the
median of ``repeats`` is reported. Cases, per net and image size:

* **cold pair** – ``Engine.compare(ref, dist, spatial=False)`` on two new [0, 1] images vs
  ``official(in0, in1)`` on the same images in [-1, 1] (under ``torch.no_grad()``);
* **cached update** – ``Engine.compare(cached_ref, new_dist)`` vs the official pair call (what an
  official user pays per slider move); the distorted image changes every repeat;
* **fast (bf16)** – the cached update with the backbone under ``torch.autocast(bfloat16)``, or
  float16 with ``--half fp16`` (a wrapper built here; ``core.lpips.engine`` is untouched), with its
  error against fp32; fp16 on the CPU runs only with ``--full``;
* **batch16** – 16 distorted images (``--batch N``: N) against one reference: ours in one call vs
  the official model on the N pairs as a batch (reference expanded); reported per image;
* **floor** – one backbone pass under ``inference_mode``: exactly as the engine runs it
  (``network.taps(x)``: scaling layer, the engine's memory layout, the trunk; the reference for the
  ``×1p``/``×2p`` ratios), and a copy of the trunk in NCHW and in channels_last, so each case
  shows how far it is from the floor and what the layout is worth.

Peak memory: on the CPU each configuration runs once more in a fresh child process (a fork
server that has already imported torch) and reports the peak-RSS increase of one call over the
RSS after loading the model and inputs (``/proc/self/clear_refs`` resets the peak; allocator
caches are trimmed after a warm-up call). On CUDA, ``torch.cuda.max_memory_allocated``.

Correctness: the largest absolute difference between our value and the official one over all
repeats of a case must be ≤ 1e-5 (``PASS``); any ``FAIL`` makes :func:`main` return 1.

To keep the default CPU run under ~10 minutes on two cores, VGG at 1024² and batch16 above 512²
(above 256² for VGG) are skipped unless ``--full``; ``--quick`` runs sizes 256 and 512 with
3 repeats and batch16 at 256² only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from core.lpips import weights
from core.lpips.engine import Engine, resolve_device

from .lpips_models import (BATCH, HALF_DTYPES, Models, build_models, distorted, engine_pass, median_ms, reference_image,
                           scaled_input)
from .machine import machine_info, native_bf16
from .peak_memory import MemoryRunner, cpu_memory, cuda_memory

TOL = 1e-5


# ---------------------------------------------------------------------------------------------
# Settings.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...]
    nets: tuple[str, ...]
    repeats: int
    batch_repeats: int
    devices: tuple[torch.device, ...]
    out: Path
    quick: bool
    full: bool
    memory: bool
    notes: tuple[str, ...]
    batch: int = BATCH
    half: str = "bf16"


def _csv(value, cast=str) -> tuple:
    if isinstance(value, (list, tuple)):
        return tuple(cast(v) for v in value)
    return tuple(cast(v.strip()) for v in str(value).split(",") if v.strip())


def _devices(spec: str) -> tuple[tuple[torch.device, ...], list[str]]:
    notes, devices = [], []
    for name in _csv(spec or "cpu"):
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        if name.startswith("cuda") and not torch.cuda.is_available():
            notes.append(f"device {name!r} requested but CUDA is not available: benchmarking the CPU only")
            name = "cpu"
        try:
            dev = resolve_device(name)
        except (ValueError, RuntimeError) as exc:
            notes.append(f"device {name!r}: {exc} Skipped.")
            continue
        if dev.type not in ("cpu", "cuda"):
            notes.append(f"device {name!r} is not benchmarked (cpu and cuda only)")
            continue
        if dev not in devices:
            devices.append(dev)
    return tuple(devices) or (torch.device("cpu"),), notes


def settings_from_args(args) -> Settings:
    quick = bool(getattr(args, "quick", False))
    full = bool(getattr(args, "full", False))
    sizes = _csv(getattr(args, "sizes", "256,512,1024"), int)
    repeats = int(getattr(args, "repeats", 5) or 5)
    if quick:
        sizes = tuple(s for s in sizes if s <= 512) or (256, 512)
        repeats = min(repeats, 3)
    nets = _csv(getattr(args, "nets", "alex,vgg,squeeze"))
    for net in nets:
        if net not in weights.NETS:
            raise ValueError(f"--nets: unknown net {net!r}; choose from {weights.NETS}.")
    if any(s < 32 for s in sizes):
        raise ValueError("--sizes: every size must be at least 32 pixels.")
    batch = getattr(args, "batch", None)
    batch = BATCH if batch is None else int(batch)
    if batch < 1:
        raise ValueError(f"--batch: need at least 1 image, got {batch}.")
    half = str(getattr(args, "half", "bf16") or "bf16")
    if half not in HALF_DTYPES:
        raise ValueError(f"--half: {half!r} is not one of {', '.join(HALF_DTYPES)}.")
    devices, notes = _devices(getattr(args, "device", "cpu"))
    batch_repeats = repeats if full else min(repeats, 2 if quick else 3)
    return Settings(sizes=sizes, nets=nets, repeats=max(1, repeats), batch_repeats=max(1, batch_repeats),
                    devices=devices, out=Path(getattr(args, "out", "bench/results.json")), quick=quick, full=full,
                    memory=not bool(getattr(args, "no_memory", False)), notes=tuple(notes), batch=batch, half=half)


def _skip_reason(net: str, size: int, device: torch.device, cfg: Settings) -> str | None:
    if cfg.full or device.type == "cuda":
        return None
    if net == "vgg" and size > 512:
        return "vgg above 512² is slow on the CPU (~10 s a pass on 2 cores); use --full"
    return None


def _fast_reason(m: "Models", size: int, device: torch.device, cfg: Settings) -> str | None:
    """Why the bf16 row is skipped for this case (None: run it).

    Without bf16 instructions oneDNN's bf16 convolutions are many times slower than fp32 (and the
    gap grows with the image), so on such CPUs the row runs only at the smallest size, and only
    when its projected cost (64² calibration × area × 2) stays under ~30 s.
    """
    if cfg.half == "fp16" and device.type == "cpu" and not cfg.full:
        return "fp16 is for CUDA here (the CPU's fp16 convolutions are not its fast path); --full forces it"
    if cfg.full or device.type == "cuda" or native_bf16():
        return None
    cal = m.bf16_calibration or {"ratio": float("nan"), "bf16_ms": float("inf")}
    why = f"no native bf16 on this CPU (a bf16 pass is {cal['ratio']:.1f}× fp32 at 64², worse when larger)"
    if size > min(cfg.sizes):
        return f"{why}: run at {min(cfg.sizes)}² only; --full forces it"
    projected_s = cal["bf16_ms"] / 1e3 * (size / 64) ** 2 * 2 * (cfg.repeats + 1)
    if projected_s > 30:
        return f"{why}: projected {projected_s:.0f} s; --full forces it"
    return None


def _batch_reason(net: str, size: int, device: torch.device, cfg: Settings) -> str | None:
    """Why the batch row is skipped for this case (None: run it)."""
    if cfg.full or device.type == "cuda":
        return None
    limit = 256 if (cfg.quick or net == "vgg") else 512
    if size > limit:
        return f"batch{cfg.batch} runs up to {limit}² for {net} on the CPU; use --full"
    return None


# ---------------------------------------------------------------------------------------------
# Timing.
# ---------------------------------------------------------------------------------------------

def _sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def interleaved(fns: dict[str, Callable[[int], Any]], repeats: int, device: torch.device):
    """Run the callables round-robin ``repeats + 1`` times; round 0 is the warm-up.

    Returns ``(times, outputs)``: seconds per timed round and every round's return value.
    """
    sync = _sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    outputs: dict[str, list[Any]] = {k: [] for k in fns}
    faults: dict[str, list[int]] = {k: [] for k in fns}
    for r in range(repeats + 1):
        for name, fn in fns.items():
            sync()
            f0 = _minor_faults()
            t0 = time.perf_counter()
            out = fn(r)
            sync()
            dt = time.perf_counter() - t0
            if r > 0:
                times[name].append(dt)
                faults[name].append(_minor_faults() - f0)
            outputs[name].append(out)
    interleaved.last_faults = {k: int(statistics.median(v)) for k, v in faults.items() if v}  # type: ignore[attr-defined]
    return times, outputs


def _minor_faults() -> int:
    """Minor page faults of this process so far (fresh memory being mapped in: a real CPU cost)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    except (ImportError, OSError):
        return 0



def _maxdiff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x.flatten().double() - y.flatten().double()).abs().max()) for x, y in zip(a, b))


def run_case(m: Models, size: int, cfg: Settings) -> dict:
    dev, reps = m.device, cfg.repeats
    ref = reference_image(size).to(dev)
    dists = [distorted(ref.cpu(), seed=100 + r).to(dev) for r in range(reps + 1)]
    ref_m1, dists_m1 = ref * 2 - 1, [d * 2 - 1 for d in dists]
    x_floor = [scaled_input(d) for d in dists]
    x_floor_cl = [x.contiguous(memory_format=torch.channels_last) for x in x_floor]
    one_pass = engine_pass(m.network)
    cached = m.engine.reference(ref)
    fast_skip = _fast_reason(m, size, dev, cfg)
    cached_fast = None if fast_skip else m.fast_engine.reference(ref)

    def official_pair(r):
        with torch.no_grad():
            return m.official(ref_m1, dists_m1[r]).flatten().cpu()

    def floor(backbone, xs):
        def fn(r):
            with torch.inference_mode():
                backbone(xs[r])
        return fn

    fns = {
        "ours_cold": lambda r: m.engine.compare(ref, dists[r], spatial=False).value,
        "official_pair": official_pair,
        "ours_update": lambda r: m.engine.compare(cached, dists[r], spatial=False).value,
        "floor_engine": floor(one_pass, dists_m1),
        "floor_nchw": floor(m.floor_nchw, x_floor),
        "fast_update": lambda r: m.fast_engine.compare(cached_fast, dists[r], spatial=False).value,
        "floor_channels_last": floor(m.floor_cl, x_floor_cl),
    }
    if fast_skip:
        del fns["fast_update"]
    times, outs = interleaved(fns, reps, dev)
    page_faults = getattr(interleaved, "last_faults", {})
    ms = {k: median_ms(v) for k, v in times.items()}
    diff_cold = _maxdiff(outs["ours_cold"], outs["official_pair"])
    diff_update = _maxdiff(outs["ours_update"], outs["official_pair"])
    fast_err = None if fast_skip else _maxdiff(outs["fast_update"], outs["ours_update"])
    if fast_skip:
        ms["fast_update"] = None
    floor1 = ms["floor_engine"]
    result = {
        "net": m.net, "size": size, "device": str(dev), "trunk": m.trunk, "repeats": reps,
        "value_mean": float(torch.stack(outs["official_pair"]).mean()),
        "ms": ms, "ms_min": {k: min(v) * 1e3 for k, v in times.items()},
        "minor_page_faults_per_call": page_faults, "ms_samples": {k: [round(t * 1e3, 3) for t in v] for k, v in times.items()},
        "speedup_official_over_ours": {
            "cold": ms["official_pair"] / ms["ours_cold"],
            "update": ms["official_pair"] / ms["ours_update"],
            "fast_update": None if fast_skip else ms["official_pair"] / ms["fast_update"],
        },
        "over_floor": {  # 1.0 = the cost of the backbone passes alone, as the engine runs them
            "ours_cold_over_2_passes": ms["ours_cold"] / (2 * floor1),
            "official_pair_over_2_passes": ms["official_pair"] / (2 * floor1),
            "ours_update_over_1_pass": ms["ours_update"] / floor1,
            "fast_update_over_1_pass": None if fast_skip else ms["fast_update"] / floor1,
            "nchw_pass_over_engine_pass": ms["floor_nchw"] / floor1,
            "channels_last_pass_over_engine_pass": ms["floor_channels_last"] / floor1,
        },
        "max_abs_diff": {"cold": diff_cold, "update": diff_update},
        "fast_abs_err_vs_fp32": fast_err,
        "fast_skipped": fast_skip,
        "half": cfg.half,
        "bf16_calibration_64px": m.bf16_calibration,
        "pass": bool(diff_cold <= TOL and diff_update <= TOL),
    }
    del x_floor, x_floor_cl
    reason = _batch_reason(m.net, size, dev, cfg)
    result["batch"] = {"skipped": reason, "n": cfg.batch} if reason else run_batch(m, ref, size, cfg)
    if result["batch"].get("pass") is False:
        result["pass"] = False
    return result


def run_batch(m: Models, ref: torch.Tensor, size: int, cfg: Settings) -> dict:
    dev, reps, n = m.device, cfg.batch_repeats, cfg.batch
    pool = distorted(ref.cpu(), seed=7, count=n + reps).to(dev)
    ref_m1 = (ref * 2 - 1).expand(n, -1, -1, -1)
    pool_m1 = pool * 2 - 1

    def official_batch(r):
        with torch.no_grad():
            return m.official(ref_m1, pool_m1[r:r + n]).flatten().cpu()

    fns = {
        "ours_batch": lambda r: m.engine.compare(ref, pool[r:r + n], spatial=False).value,
        "official_batch": official_batch,
    }
    times, outs = interleaved(fns, reps, dev)
    ms = {k: median_ms(v) for k, v in times.items()}
    diff = _maxdiff(outs["ours_batch"], outs["official_batch"])
    return {
        "n": n, "repeats": reps,
        "ms_per_image": {"ours": ms["ours_batch"] / n, "official": ms["official_batch"] / n},
        "ms_call": ms,
        "speedup_official_over_ours": ms["official_batch"] / ms["ours_batch"],
        "max_abs_diff": diff, "pass": bool(diff <= TOL),
    }


# ---------------------------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------------------------

_COLS = ("net", "size", "case", "ours ms", "official ms", "off/ours", "ours/floor", "off/floor",
         "MB ours", "MB off", "max|Δ|", "check")
_WIDTHS = (7, 5, 16, 9, 11, 8, 10, 9, 8, 8, 9, 6)


def _f(x, fmt="{:.1f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return fmt.format(x)


def _line(cells) -> str:
    text = "  ".join(str(c).rjust(w) if i >= 3 else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, _WIDTHS)))
    return text + ("  " + " ".join(str(c) for c in cells[len(_WIDTHS):]) if len(cells) > len(_WIDTHS) else "")


def format_rows(res: dict) -> list[str]:
    net, size = res["net"] + ("*" if res["trunk"].startswith("random") else ""), res["size"]
    if "skipped" in res:
        return [_line((net, size, "skipped", "", "", "", "", "", "", "", "", "", res["skipped"]))]
    ms, fl, mem = res["ms"], res["over_floor"], res.get("memory") or {}
    d = res["max_abs_diff"]
    ok = lambda v: "PASS" if v <= TOL else "FAIL"  # noqa: E731
    rows = [
        (net, size, "cold pair", _f(ms["ours_cold"]), _f(ms["official_pair"]),
         _f(ms["official_pair"] / ms["ours_cold"], "{:.2f}x"), _f(fl["ours_cold_over_2_passes"], "{:.2f}×2p"),
         _f(fl["official_pair_over_2_passes"], "{:.2f}×2p"), _f(mem.get("ours_cold")), _f(mem.get("official_pair")),
         _f(d["cold"], "{:.1e}"), ok(d["cold"])),
        (net, size, "cached update", _f(ms["ours_update"]), _f(ms["official_pair"]),
         _f(ms["official_pair"] / ms["ours_update"], "{:.2f}x"), _f(fl["ours_update_over_1_pass"], "{:.2f}×1p"),
         _f(fl["official_pair_over_2_passes"] * 2, "{:.2f}×1p"), _f(mem.get("ours_update")),
         _f(mem.get("official_pair")), _f(d["update"], "{:.1e}"), ok(d["update"])),
    ]
    fast = f"fast ({res.get('half', 'bf16')}) upd"
    if res.get("fast_skipped"):
        rows.append((net, size, fast, "skipped", "", "", "", "", "", "", "", "", res["fast_skipped"]))
    else:
        rows.append((net, size, fast, _f(ms["fast_update"]), _f(ms["official_pair"]),
                     _f(ms["official_pair"] / ms["fast_update"], "{:.2f}x"),
                     _f(fl["fast_update_over_1_pass"], "{:.2f}×1p"), "", _f(mem.get("fast_update")), "",
                     _f(res["fast_abs_err_vs_fp32"], "{:.1e}"), "vsfp32"))
    b = res.get("batch") or {}
    batch = f"batch{b.get('n', BATCH)} /img"
    if "skipped" in b:
        rows.append((net, size, batch, "skipped", "", "", "", "", "", "", "", "", b["skipped"]))
    elif b:
        rows.append((net, size, batch, _f(b["ms_per_image"]["ours"]), _f(b["ms_per_image"]["official"]),
                     _f(b["speedup_official_over_ours"], "{:.2f}x"),
                     _f(b["ms_per_image"]["ours"] / ms["floor_engine"], "{:.2f}×1p"),
                     _f(b["ms_per_image"]["official"] / ms["floor_engine"], "{:.2f}×1p"),
                     _f(mem.get("batch_ours")), _f(mem.get("batch_official")),
                     _f(b["max_abs_diff"], "{:.1e}"), "PASS" if b["pass"] else "FAIL"))
    rows.append((net, size, "floor (engine)", _f(ms["floor_engine"]), "", "", "1.00×1p", "", "", "", "", ""))
    rows.append((net, size, "floor NCHW", _f(ms["floor_nchw"]), "", "",
                 _f(fl["nchw_pass_over_engine_pass"], "{:.2f}×1p"), "", "", "", "", ""))
    rows.append((net, size, "floor ch_last", _f(ms["floor_channels_last"]), "", "",
                 _f(fl["channels_last_pass_over_engine_pass"], "{:.2f}×1p"), "", "", "", "", ""))
    return [_line(r) for r in rows]


def header(machine: dict, cfg: Settings, device: torch.device) -> list[str]:
    lines = [
        f"LPIPS benchmark  {machine['date']}  device={device}"
        + (f" ({machine.get('cuda_device')})" if device.type == "cuda" else ""),
        f"CPU: {machine['cpu_model']} | {machine['logical_cpus']} logical CPUs | torch threads "
        f"{machine['torch_threads']} (interop {machine['torch_interop_threads']}) | "
        f"{machine['torch_cpu_capability']} | torch {machine['torch']} | lpips {machine['lpips']} | "
        f"load avg at start {', '.join(f'{x:.2f}' for x in machine.get('load_average_at_start') or [])}",
        f"median of {cfg.repeats} interleaved repeats after 1 warm-up (batch{cfg.batch}: {cfg.batch_repeats}); "
        f"ours: Engine.compare(spatial=False) on [0,1]; official: lpips.LPIPS(in0, in1) on [-1,1] under no_grad, "
        f"same weights. off/ours > 1 means ours is faster. ×2p / ×1p: time over 2 / 1 backbone passes as the engine runs them "
        f"(floor (engine)). "
        f"MB: peak RSS increase of one call{' (CUDA: max_memory_allocated)' if device.type == 'cuda' else ''}. "
        f"max|Δ| vs official must be ≤ {TOL:g}; the {cfg.half} row shows its error vs our fp32 value.",
        _line(_COLS),
        _line(tuple("-" * w for w in _WIDTHS)),
    ]
    return lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.engine",
                                description="Benchmark against the official lpips package (prints a table, writes JSON).")
    p.add_argument("--sizes", default="256,512,1024")
    p.add_argument("--nets", default="alex,vgg,squeeze")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="bench/results.json")
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto, or a list such as cpu,cuda")
    p.add_argument("--quick", action="store_true", help="sizes up to 512, 3 repeats (a few minutes on 2 cores)")
    p.add_argument("--full", action="store_true", help="also VGG at 1024² and batches above 512²")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--batch", type=int, default=BATCH, help="images against one reference in the batch row")
    p.add_argument("--half", default="bf16", choices=sorted(HALF_DTYPES),
                   help="the fast row's backbone precision (fp16 on the CPU only with --full)")
    return p


def main(argv: list[str] | argparse.Namespace | None = None) -> int:
    """Run the benchmark; ``argv`` is a list of command-line arguments (default ``sys.argv[1:]``)
    or an already parsed :class:`argparse.Namespace`."""
    args = argv if isinstance(argv, argparse.Namespace) else build_parser().parse_args(argv)
    cfg = settings_from_args(args)
    for note in cfg.notes:
        print(f"note: {note}", file=sys.stderr)
    machine = machine_info(cfg.devices)
    results: list[dict] = []
    report: dict = {"machine": machine, "settings": {
        "sizes": list(cfg.sizes), "nets": list(cfg.nets), "repeats": cfg.repeats, "batch_repeats": cfg.batch_repeats,
        "batch": cfg.batch, "half": cfg.half, "devices": [str(d) for d in cfg.devices], "quick": cfg.quick, "full": cfg.full,
        "memory": cfg.memory, "tolerance": TOL, "notes": list(cfg.notes),
    }, "results": results}
    t_start = time.perf_counter()
    use_fork = hasattr(os, "fork")
    runner = MemoryRunner() if cfg.memory and use_fork and any(d.type == "cpu" for d in cfg.devices) else None
    for device in cfg.devices:
        for line in header(machine, cfg, device):
            print(line, flush=True)
        for net in cfg.nets:
            models = None
            for size in cfg.sizes:
                reason = _skip_reason(net, size, device, cfg)
                if reason:
                    res = {"net": net, "size": size, "device": str(device), "trunk": "", "skipped": reason,
                           "pass": True}
                else:
                    if models is None:
                        models = build_models(net, device, cfg.half)
                    t_case = time.perf_counter()
                    res = run_case(models, size, cfg)
                    res["elapsed_s"] = {"timing": round(time.perf_counter() - t_case, 1)}
                    t_case = time.perf_counter()
                    with_batch = "skipped" not in res["batch"]
                    if device.type == "cuda":
                        res["memory"] = cuda_memory(models, size, with_batch, batch=cfg.batch)
                    elif runner is not None:
                        res["memory"] = cpu_memory(runner, net, size, with_batch, not res["fast_skipped"],
                                                   cfg.batch, cfg.half)
                    res["elapsed_s"]["memory"] = round(time.perf_counter() - t_case, 1)
                results.append(res)
                for line in format_rows(res):
                    print(line, flush=True)
            del models
    if runner is not None:
        runner.close()
    elapsed = time.perf_counter() - t_start
    report["elapsed_s"] = round(elapsed, 1)
    report["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    if any(r.get("trunk", "").startswith("random") for r in results):
        print("* random backbone (no cached weights): timing and parity only, values are not meaningful LPIPS.")
    failed = [f"{r['net']}@{r['size']} ({r['device']})" for r in results if not r.get("pass", True)]
    print(f"{'FAIL: ' + ', '.join(failed) if failed else 'all cases PASS'} | {elapsed:.0f} s")
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"wrote {cfg.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
