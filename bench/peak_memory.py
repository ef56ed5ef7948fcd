"""Peak memory of one call: on the CPU in a fresh child process (a fork server that has already
imported torch), the peak-RSS increase over the RSS after loading the model and inputs
(``/proc/self/clear_refs`` resets the peak; allocator caches are trimmed after a warm-up call);
on CUDA, ``torch.cuda.max_memory_allocated``. Used by :mod:`bench.engine`."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from core.lpips.engine import Engine

from .lpips_models import BATCH, Models, distorted, fast_network, official_network, our_network, reference_image

__all__ = ["cpu_memory", "cuda_memory", "memory_child", "memory_server", "MemoryRunner"]


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


def _memory_callable(kind: str, net: str, size: int, device: torch.device, batch: int = BATCH,
                     half: str = "bf16") -> Callable[[], Any]:
    """Build (outside the measurement) everything one ``kind`` of call needs; return the call."""
    ref = reference_image(size).to(device)
    if kind.startswith("batch"):
        dist = distorted(ref.cpu(), seed=7, count=batch).to(device)
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
        network = fast_network(network, half)
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
        call = _memory_callable(spec["kind"], spec["net"], spec["size"], torch.device("cpu"),
                                spec.get("batch", BATCH), spec.get("half", "bf16"))
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


class MemoryRunner:
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
            [sys.executable, "-c", "from bench.peak_memory import memory_server; memory_server()"],
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


def cpu_memory(runner: MemoryRunner, net: str, size: int, with_batch: bool, with_fast: bool,
               batch: int = BATCH, half: str = "bf16") -> dict:
    kinds = ["ours_cold", "official_pair", "ours_update"] + (["fast_update"] if with_fast else [])
    if with_batch:
        kinds += ["batch_ours", "batch_official"]
    out, method = {}, None
    for kind in kinds:
        res = runner.run({"kind": kind, "net": net, "size": size, "threads": torch.get_num_threads(),
                          "batch": batch, "half": half})
        out[kind] = None if res.get("peak_mb") is None else round(res["peak_mb"], 1)
        method = res.get("method", method)
        if "error" in res:
            out[kind + "_error"] = res["error"]
    out["method"] = method
    return out


def cuda_memory(m: Models, size: int, with_batch: bool, with_fast: bool = True, batch: int = BATCH) -> dict:
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
        pool = distorted(ref.cpu(), seed=7, count=batch).to(dev)
        calls["batch_ours"] = lambda: m.engine.compare(ref, pool, spatial=False)
        calls["batch_official"] = lambda: m.official((ref * 2 - 1).expand(batch, -1, -1, -1), pool * 2 - 1)
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
