"""Benchmark: our :class:`~core.lpips.engine.Engine` against the official ``lpips==0.1.4`` package.

``python -m bench.engine [--sizes 256,512,1024] [--nets alex,vgg,squeeze] [--repeats 5]
[--device cpu|cuda|auto|cpu,cuda] [--out bench/results.json] [--quick] [--full] [--no-memory]``

Both implementations run in the same process with the SAME weights (the official model is built
with ``pnet_rand=True`` and our backbone's state is loaded strictly into its trunk; SqueezeNet,
whose weights are not provisioned offline, gets one seeded random trunk loaded into both). Calls
are interleaved (ours, official, ours, …), each timed callable gets one warm-up call, and the
median of ``repeats`` is reported. Cases, per net and image size:

* **cold pair** – ``Engine.compare(ref, dist, spatial=False)`` on two new [0, 1] images vs
  ``official(in0, in1)`` on the same images in [-1, 1] (under ``torch.no_grad()``);
* **cached update** – ``Engine.compare(cached_ref, new_dist)`` vs the official pair call (what an
  official user pays per slider move); the distorted image changes every repeat;
* **fast (bf16)** – the cached update with the backbone under ``torch.autocast(bfloat16)``
  (a wrapper built here; ``core.lpips.engine`` is untouched), with its error against fp32;
* **batch16** – 16 distorted images against one reference: ours in one call vs the official
  model on the 16 pairs as a batch (reference expanded); reported per image;
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
import copy
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.lpips import weights
from core.lpips.engine import Engine, LpipsNetwork, build_network, get_network, resolve_device
from core.lpips.nets import Backbone

TOL = 1e-5
BATCH = 16
SQUEEZE_SEED = 1234
VERSION = "0.1"
_SHIFT = torch.tensor((-0.030, -0.088, -0.188)).view(1, 3, 1, 1)
_SCALE = torch.tensor((0.458, 0.448, 0.450)).view(1, 3, 1, 1)


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
    devices, notes = _devices(getattr(args, "device", "cpu"))
    batch_repeats = repeats if full else min(repeats, 2 if quick else 3)
    return Settings(sizes=sizes, nets=nets, repeats=max(1, repeats), batch_repeats=max(1, batch_repeats),
                    devices=devices, out=Path(getattr(args, "out", "bench/results.json")), quick=quick, full=full,
                    memory=not bool(getattr(args, "no_memory", False)), notes=tuple(notes))


def _skip_reason(net: str, size: int, device: torch.device, cfg: Settings) -> str | None:
    if cfg.full or device.type == "cuda":
        return None
    if net == "vgg" and size > 512:
        return "vgg above 512² is slow on the CPU (~10 s a pass on 2 cores); use --full"
    return None


def native_bf16() -> bool:
    """Whether the CPU has bf16 instructions (else oneDNN's bf16 convolutions take a very slow path)."""
    flags = set(_cpu_flags())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def _bf16_slowdown(network: LpipsNetwork) -> dict:
    """bf16-autocast vs fp32 time of one backbone pass at 64² (median of 3, after a warm-up)."""
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(network.shift.device)
    fast = AutocastBackbone(network.backbone, x.device.type)
    out = {}
    for name, fn in (("fp32_ms", network.backbone), ("bf16_ms", fast)):
        samples = []
        with torch.inference_mode():
            for i in range(4):
                t0 = time.perf_counter()
                fn(x)
                if i:
                    samples.append(time.perf_counter() - t0)
        out[name] = _ms(samples)
    out["ratio"] = out["bf16_ms"] / out["fp32_ms"]
    return out


def _fast_reason(m: "Models", size: int, device: torch.device, cfg: Settings) -> str | None:
    """Why the bf16 row is skipped for this case (None: run it).

    Without bf16 instructions oneDNN's bf16 convolutions are many times slower than fp32 (and the
    gap grows with the image), so on such CPUs the row runs only at the smallest size, and only
    when its projected cost (64² calibration × area × 2) stays under ~30 s.
    """
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
    """Why batch16 is skipped for this case (None: run it)."""
    if cfg.full or device.type == "cuda":
        return None
    limit = 256 if (cfg.quick or net == "vgg") else 512
    if size > limit:
        return f"batch16 runs up to {limit}² for {net} on the CPU; use --full"
    return None


# ---------------------------------------------------------------------------------------------
# Machine description.
# ---------------------------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
    except OSError:
        pass
    return []


def _source_state() -> dict:
    """Which code was measured: git HEAD (+ dirty flag) and the sha256 of core/lpips/engine.py."""
    import hashlib
    import subprocess

    root = Path(__file__).resolve().parent.parent
    out = {"core_lpips_sha256": hashlib.sha256((root / "core" / "lpips" / "engine.py").read_bytes()).hexdigest()[:16]}
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "core"], cwd=root, capture_output=True,
                               text=True, timeout=10)
        if head.returncode == 0:
            out["git_head"] = head.stdout.strip()
            out["core_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def machine_info(devices) -> dict:
    import importlib.metadata

    try:
        lpips_version = importlib.metadata.version("lpips")
    except importlib.metadata.PackageNotFoundError:
        lpips_version = None
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "lpips": lpips_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))},
        "source": _source_state(),
    }
    if any(d.type == "cuda" for d in devices):
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["cudnn_tf32"] = torch.backends.cudnn.allow_tf32
    return info


# ---------------------------------------------------------------------------------------------
# Images.
# ---------------------------------------------------------------------------------------------

def _photo() -> torch.Tensor:
    """The gallery's astronaut (512×512) as 1×3×H×W in [0, 1]."""
    from core.images.samples import load_sample

    return load_sample("astronaut")


def reference_image(size: int) -> torch.Tensor:
    img = _photo()
    out = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False,
                        antialias=size < img.shape[-1])
    return out.clamp(0, 1).contiguous()


def distorted(ref: torch.Tensor, seed: int, count: int = 1) -> torch.Tensor:
    """``count`` noisy (σ=0.08), 3×3-blurred copies of ``ref``, each with its own noise."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((count,) + tuple(ref.shape[1:]), generator=gen)
    noisy = (ref + 0.08 * noise).clamp(0, 1)
    return F.avg_pool2d(noisy, 3, stride=1, padding=1, count_include_pad=False).contiguous()


# ---------------------------------------------------------------------------------------------
# Models: ours, the official one with the same weights, the floor backbones, the bf16 wrapper.
# ---------------------------------------------------------------------------------------------

class AutocastBackbone(nn.Module):
    """Runs a backbone under ``torch.autocast(bfloat16)`` and hands fp32 taps to the LPIPS head."""

    def __init__(self, inner: nn.Module, device_type: str, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.inner, self.device_type, self.dtype = inner, device_type, dtype

    def forward(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        with torch.autocast(self.device_type, dtype=self.dtype):
            taps = self.inner(x, upto)
        return [t.float() for t in taps]


def fast_network(network: LpipsNetwork) -> LpipsNetwork:
    """A copy of ``network`` whose backbone runs in bf16 (the normalization and heads stay fp32)."""
    fast = copy.deepcopy(network)
    fast.backbone = AutocastBackbone(fast.backbone, network.shift.device.type)
    return fast.eval()


def our_network(net: str, device: torch.device) -> tuple[LpipsNetwork, str]:
    """The shared model for alex/vgg (pretrained); a seeded random trunk when none is cached.

    The random model is built by :func:`~core.lpips.engine.build_network`, the factory behind
    :func:`get_network`, so it gets the same layout and device preparation as the real models.
    """
    ok, _ = weights.backbone_available(net)
    if ok:
        return get_network(net, VERSION, True, device), "pretrained"
    torch.manual_seed(SQUEEZE_SEED)
    state = Backbone(net).features_state()
    trunk = f"random (seed {SQUEEZE_SEED}, loaded into both)"
    return build_network(net, VERSION, True, device, state).eval(), trunk


def official_network(net: str, backbone_state: dict[str, torch.Tensor], device: torch.device):
    """The official ``lpips.LPIPS`` with ``backbone_state`` loaded strictly into its trunk."""
    import re

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lpips as official

        model = official.LPIPS(net=net, version=VERSION, lpips=True, spatial=False, pnet_rand=True, verbose=False)
    names = {re.sub(r"^slice\d+\.", "features.", k): k for k in model.net.state_dict()}
    model.net.load_state_dict({names[k]: v for k, v in backbone_state.items() if k in names}, strict=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(device).eval()


def _scaled(batch01: torch.Tensor) -> torch.Tensor:
    """What the backbone sees: [0, 1] → [-1, 1] → the v0.1 scaling layer."""
    return ((batch01 * 2 - 1) - _SHIFT.to(batch01.device)) / _SCALE.to(batch01.device)


@dataclass
class Models:
    net: str
    device: torch.device
    trunk: str
    network: LpipsNetwork
    engine: Engine
    official: nn.Module
    fast_engine: Engine
    floor_nchw: nn.Module
    floor_cl: nn.Module
    bf16_calibration: dict | None


def build_models(net: str, device: torch.device) -> Models:
    network, trunk = our_network(net, device)
    official = official_network(net, {k: v.cpu() for k, v in network.backbone.features_state().items()}, device)
    floor_nchw = copy.deepcopy(network.backbone).to(memory_format=torch.contiguous_format).eval()
    floor_cl = copy.deepcopy(network.backbone).to(memory_format=torch.channels_last).eval()
    calibration = None if device.type == "cuda" or native_bf16() else _bf16_slowdown(network)
    return Models(net, device, trunk, network, Engine(network=network), official,
                  Engine(network=fast_network(network)), floor_nchw, floor_cl, calibration)


def engine_pass(network: LpipsNetwork) -> Callable[[torch.Tensor], Any]:
    """One backbone pass the way the engine runs it, for an input in [-1, 1]."""
    taps = getattr(network, "taps", None)
    if callable(taps):
        return taps
    return lambda x: network.backbone((x - network.shift) / network.scale)


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


def _ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def _maxdiff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x.flatten().double() - y.flatten().double()).abs().max()) for x, y in zip(a, b))


def run_case(m: Models, size: int, cfg: Settings) -> dict:
    dev, reps = m.device, cfg.repeats
    ref = reference_image(size).to(dev)
    dists = [distorted(ref.cpu(), seed=100 + r).to(dev) for r in range(reps + 1)]
    ref_m1, dists_m1 = ref * 2 - 1, [d * 2 - 1 for d in dists]
    x_floor = [_scaled(d) for d in dists]
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
    ms = {k: _ms(v) for k, v in times.items()}
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
        "bf16_calibration_64px": m.bf16_calibration,
        "pass": bool(diff_cold <= TOL and diff_update <= TOL),
    }
    del x_floor, x_floor_cl
    reason = _batch_reason(m.net, size, dev, cfg)
    result["batch"] = {"skipped": reason} if reason else run_batch(m, ref, size, cfg)
    if result["batch"].get("pass") is False:
        result["pass"] = False
    return result


def run_batch(m: Models, ref: torch.Tensor, size: int, cfg: Settings) -> dict:
    dev, reps = m.device, cfg.batch_repeats
    pool = distorted(ref.cpu(), seed=7, count=BATCH + reps).to(dev)
    ref_m1 = (ref * 2 - 1).expand(BATCH, -1, -1, -1)
    pool_m1 = pool * 2 - 1

    def official_batch(r):
        with torch.no_grad():
            return m.official(ref_m1, pool_m1[r:r + BATCH]).flatten().cpu()

    fns = {
        "ours_batch": lambda r: m.engine.compare(ref, pool[r:r + BATCH], spatial=False).value,
        "official_batch": official_batch,
    }
    times, outs = interleaved(fns, reps, dev)
    ms = {k: _ms(v) for k, v in times.items()}
    diff = _maxdiff(outs["ours_batch"], outs["official_batch"])
    return {
        "n": BATCH, "repeats": reps,
        "ms_per_image": {"ours": ms["ours_batch"] / BATCH, "official": ms["official_batch"] / BATCH},
        "ms_call": ms,
        "speedup_official_over_ours": ms["official_batch"] / ms["ours_batch"],
        "max_abs_diff": diff, "pass": bool(diff <= TOL),
    }


# ---------------------------------------------------------------------------------------------
# Peak memory.
# ---------------------------------------------------------------------------------------------

def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _trim_heap() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _memory_callable(kind: str, net: str, size: int, device: torch.device) -> Callable[[], Any]:
    """Build (outside the measurement) everything one ``kind`` of call needs; return the call."""
    ref = reference_image(size).to(device)
    if kind.startswith("batch"):
        dist = distorted(ref.cpu(), seed=7, count=BATCH).to(device)
    else:
        dist = distorted(ref.cpu(), seed=101).to(device)
    network, _ = our_network(net, device)
    if kind.startswith("official") or kind == "batch_official":
        official = official_network(net, {k: v.cpu() for k, v in network.backbone.features_state().items()}, device)
        del network
        in0 = (ref * 2 - 1).expand(dist.shape[0], -1, -1, -1)
        in1 = dist * 2 - 1

        def call():
            with torch.no_grad():
                return official(in0, in1).flatten().cpu()
        return call
    if kind == "fast_update":
        network = fast_network(network)
    engine = Engine(network=network)
    if kind in ("ours_update", "fast_update"):
        cached = engine.reference(ref)
        return lambda: engine.compare(cached, dist, spatial=False).value
    return lambda: engine.compare(ref, dist, spatial=False).value  # ours_cold, batch_ours


def memory_child(spec: dict) -> dict:
    """Run in a fresh process: peak RSS increase (MB) of one call over the RSS after loading."""
    import resource

    torch.set_num_threads(spec["threads"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        call = _memory_callable(spec["kind"], spec["net"], spec["size"], torch.device("cpu"))
    call()  # warm-up: one-time allocations (kernels, thread pools) are not per-call memory
    import gc

    gc.collect()
    _trim_heap()
    base_kb = _status_kb("VmRSS")
    if base_kb is not None and _reset_peak():
        call()
        peak_kb = _status_kb("VmHWM")
        method = "VmHWM after clear_refs minus VmRSS after load+warm-up (malloc_trim)"
    else:
        base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        call()
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        method = "ru_maxrss delta (lower bound)"
    return {"peak_mb": max(0, peak_kb - base_kb) / 1024, "baseline_mb": base_kb / 1024, "method": method}


class _MemoryRunner:
    """A helper process that imports torch and lpips once, then forks one child per configuration.

    (multiprocessing's spawn/forkserver would re-run an unguarded ``__main__`` such as
    ``core/__main__.py``; this helper is started with ``python -c`` instead.) The helper never
    runs a parallel torch op itself, so forking it is safe.
    """

    def __init__(self) -> None:
        import subprocess

        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from bench.engine import memory_server; memory_server()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=root)
        self.ready = self.proc.stdout.readline().strip() == "ready"  # imports done: no overlap with timing

    def run(self, spec: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(spec) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            return json.loads(line) if line else {"peak_mb": None, "error": "memory helper exited"}
        except (OSError, ValueError) as exc:
            return {"peak_mb": None, "error": f"{type(exc).__name__}: {exc}"}

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self.proc.kill()


def memory_server() -> None:
    """The helper's loop: one JSON spec per stdin line → fork → one JSON result per stdout line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lpips  # noqa: F401 - imported once here, inherited by every forked child
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        spec = json.loads(line)
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(rfd)
            try:
                out = memory_child(spec)
            except BaseException as exc:  # noqa: BLE001
                out = {"peak_mb": None, "error": f"{type(exc).__name__}: {exc}"}
            with os.fdopen(wfd, "w") as fh:
                fh.write(json.dumps(out))
            os._exit(0)
        os.close(wfd)
        with os.fdopen(rfd) as fh:
            data = fh.read()
        _, status = os.waitpid(pid, 0)
        if not data:
            data = json.dumps({"peak_mb": None, "error": f"child died (wait status {status})"})
        sys.stdout.write(data.replace("\n", " ") + "\n")
        sys.stdout.flush()


def cpu_memory(runner: _MemoryRunner, net: str, size: int, with_batch: bool, with_fast: bool) -> dict:
    kinds = ["ours_cold", "official_pair", "ours_update"] + (["fast_update"] if with_fast else [])
    if with_batch:
        kinds += ["batch_ours", "batch_official"]
    out, method = {}, None
    for kind in kinds:
        res = runner.run({"kind": kind, "net": net, "size": size, "threads": torch.get_num_threads()})
        out[kind] = None if res.get("peak_mb") is None else round(res["peak_mb"], 1)
        method = res.get("method", method)
        if "error" in res:
            out[kind + "_error"] = res["error"]
    out["method"] = method
    return out


def cuda_memory(m: Models, size: int, with_batch: bool, with_fast: bool = True) -> dict:
    dev = m.device
    ref = reference_image(size).to(dev)
    dist = distorted(ref.cpu(), seed=101).to(dev)
    cached, cached_fast = m.engine.reference(ref), m.fast_engine.reference(ref)
    calls = {
        "ours_cold": lambda: m.engine.compare(ref, dist, spatial=False),
        "official_pair": lambda: m.official(ref * 2 - 1, dist * 2 - 1),
        "ours_update": lambda: m.engine.compare(cached, dist, spatial=False),
        "fast_update": lambda: m.fast_engine.compare(cached_fast, dist, spatial=False),
    }
    if with_batch:
        pool = distorted(ref.cpu(), seed=7, count=BATCH).to(dev)
        calls["batch_ours"] = lambda: m.engine.compare(ref, pool, spatial=False)
        calls["batch_official"] = lambda: m.official((ref * 2 - 1).expand(BATCH, -1, -1, -1), pool * 2 - 1)
    out = {}
    for kind, call in calls.items():
        torch.cuda.synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        with torch.no_grad():
            res = call()
        torch.cuda.synchronize(dev)
        out[kind] = round((torch.cuda.max_memory_allocated(dev) - base) / 2 ** 20, 1)
        del res
    out["method"] = "torch.cuda.max_memory_allocated minus memory_allocated before the call"
    return out


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
    if res.get("fast_skipped"):
        rows.append((net, size, "fast (bf16) upd", "skipped", "", "", "", "", "", "", "", "", res["fast_skipped"]))
    else:
        rows.append((net, size, "fast (bf16) upd", _f(ms["fast_update"]), _f(ms["official_pair"]),
                     _f(ms["official_pair"] / ms["fast_update"], "{:.2f}x"),
                     _f(fl["fast_update_over_1_pass"], "{:.2f}×1p"), "", _f(mem.get("fast_update")), "",
                     _f(res["fast_abs_err_vs_fp32"], "{:.1e}"), "vsfp32"))
    b = res.get("batch") or {}
    if "skipped" in b:
        rows.append((net, size, "batch16 /img", "skipped", "", "", "", "", "", "", "", "", b["skipped"]))
    elif b:
        rows.append((net, size, "batch16 /img", _f(b["ms_per_image"]["ours"]), _f(b["ms_per_image"]["official"]),
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
        f"median of {cfg.repeats} interleaved repeats after 1 warm-up (batch16: {cfg.batch_repeats}); "
        f"ours: Engine.compare(spatial=False) on [0,1]; official: lpips.LPIPS(in0, in1) on [-1,1] under no_grad, "
        f"same weights. off/ours > 1 means ours is faster. ×2p / ×1p: time over 2 / 1 backbone passes as the engine runs them "
        f"(floor (engine)). "
        f"MB: peak RSS increase of one call{' (CUDA: max_memory_allocated)' if device.type == 'cuda' else ''}. "
        f"max|Δ| vs official must be ≤ {TOL:g}; the bf16 row shows its error vs our fp32 value.",
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
        "batch": BATCH, "devices": [str(d) for d in cfg.devices], "quick": cfg.quick, "full": cfg.full,
        "memory": cfg.memory, "tolerance": TOL, "notes": list(cfg.notes),
    }, "results": results}
    t_start = time.perf_counter()
    use_fork = hasattr(os, "fork")
    runner = _MemoryRunner() if cfg.memory and use_fork and any(d.type == "cpu" for d in cfg.devices) else None
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
                        models = build_models(net, device)
                    t_case = time.perf_counter()
                    res = run_case(models, size, cfg)
                    res["elapsed_s"] = {"timing": round(time.perf_counter() - t_case, 1)}
                    t_case = time.perf_counter()
                    with_batch = "skipped" not in res["batch"]
                    if device.type == "cuda":
                        res["memory"] = cuda_memory(models, size, with_batch)
                    elif runner is not None:
                        res["memory"] = cpu_memory(runner, net, size, with_batch, not res["fast_skipped"])
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
