"""What a benchmark ran on: the CPU (model, vector flags), PyTorch's threads and build, the
official package's version, the load, and which code was measured."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path

import torch

__all__ = ["cpu_flags", "cpu_model", "machine_info", "native_bf16"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
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
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
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


def native_bf16() -> bool:
    """Whether the CPU has bf16 instructions (else oneDNN's bf16 convolutions take a very slow path)."""
    flags = set(cpu_flags())
    return bool(flags & {"avx512_bf16", "amx_bf16"})
