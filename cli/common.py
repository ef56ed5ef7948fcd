"""What every command shares: the exit statuses, the usage error, option types that check their
value in the parser (so a bad value is a usage message, never a traceback), the metric options,
a progress bar and the value formatting.

Nothing here imports PyTorch: the parser is built, and ``--help`` answers, before any model or
metric module loads.

>>> positive("--batch-size", 8)("3")
3
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from typing import TextIO

from core.errors import LpipsExplorerError
from core.lpips.names import NETS, VERSIONS

__all__ = ["EXIT_STATUSES", "Progress", "UsageError", "add_metric_options", "device_arg", "engine_for", "fmt",
           "jsonable", "metrics_arg", "positive", "wanted_metrics"]

EXIT_STATUSES = ("exit status: 0 done; 1 some inputs failed (good rows and error rows are written) or "
                 "there was nothing to compare; 2 bad usage, an output that cannot be written, or missing weights")

# What --device accepts in form; whether that device exists here is checked after parsing
# (it needs PyTorch, which --help must not import).
_DEVICE_FORM = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


class UsageError(LpipsExplorerError):
    """The command line asks for something that cannot be done as asked (exit status 2)."""


def device_arg(text: str) -> str:
    """``--device``: auto, cpu, cuda, cuda:N or mps (existence is checked once parsed)."""
    if not _DEVICE_FORM.fullmatch(text):
        raise argparse.ArgumentTypeError(f"Unknown device {text!r}; use auto, cpu, cuda, cuda:N or mps.")
    return text


def check_device(parser: argparse.ArgumentParser, device: str) -> None:
    """A usage error (exit 2) when the named device is not on this machine."""
    if device in ("auto", "cpu"):
        return
    from core.lpips.engine import resolve_device

    try:
        resolve_device(device)
    except LpipsExplorerError as exc:
        parser.error(f"argument --device: {exc}")


def positive(name: str, top: int):
    """An option type: a whole number from 1 to ``top``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {top}, got {text!r}") from None
        if not 1 <= value <= top:
            raise argparse.ArgumentTypeError(f"{name} must be from 1 to {top}, got {value}")
        return value
    return parse


def metrics_arg(text: str) -> tuple[str, ...]:
    """``--metrics``: comma-separated registry keys, checked, in display order."""
    from core import metrics

    try:
        return metrics.resolve(text)
    except (LpipsExplorerError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_metric_options(parser: argparse.ArgumentParser) -> None:
    """--metrics, the LPIPS network options, --ssim-mode, --resize-to-ref and --device."""
    parser.add_argument("--metrics", type=metrics_arg, default=None, metavar="NAMES",
                        help="comma-separated metrics to compute (default: the fast ones, marked "
                             "'yes' under 'default' by `lpips-explorer metrics`; DISTS, FSIM, VIF and "
                             "VIFp only when named)")
    parser.add_argument("--net", choices=NETS, default="alex", help="backbone (default alex)")
    parser.add_argument("--version", choices=VERSIONS, default="0.1", help="linear-head version (default 0.1)")
    parser.add_argument("--baseline", action="store_true",
                        help="the paper's uncalibrated baseline: equal channel weights, no learned heads")
    parser.add_argument("--heads", metavar="FILE", default=None,
                        help="LPIPS's linear heads from a file instead of --version's: fitted heads "
                             "(.safetensors with its .json manifest, from `lpips-explorer bapps fit`) or an "
                             "official .pth; checked (network, sha256, non-negative weights) before use")
    parser.add_argument("--ssim-mode", choices=("reference", "rgb"), default="reference",
                        help="reference: luma as Wang et al.'s code (default); rgb: mean over channels")
    parser.add_argument("--resize-to-ref", action="store_true",
                        help="resize DIST to REF's size when they differ (otherwise that is an error)")
    parser.add_argument("--device", type=device_arg, default="auto",
                        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps (those present here)")


def wanted_metrics(args) -> tuple[str, ...]:
    """The metrics asked for with --metrics, or the registry's defaults."""
    from core import metrics

    return args.metrics if args.metrics is not None else metrics.defaults()


def engine_for(args):
    """The LPIPS engine, or None when LPIPS is not asked for (then no weights are needed)."""
    if "lpips" not in wanted_metrics(args):
        return None
    if getattr(args, "heads", None) is not None:
        if args.baseline:
            raise UsageError("--heads and --baseline contradict each other: the baseline has no heads; give one.")
        from core.judgments.heads import engine_from_file

        return engine_from_file(args.heads, args.net, args.version, args.device)
    from core.lpips.engine import Engine

    return Engine(args.net, args.version, not args.baseline, args.device)


def jsonable(value):
    """NaN → null, ±inf → "inf"/"-inf": JSON has neither."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def fmt(value: float, digits: int = 4) -> str:
    if math.isinf(value):
        return "inf"
    if math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


class Progress:
    """A one-line progress bar on stderr with pairs per second and the time left (drawn only
    when stderr is a terminal, at most 10 times a second); the summary line always."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr, unit: str = "pairs") -> None:
        self.total, self.label, self.stream, self.unit = total, label, stream, unit
        self.done, self.start = 0, time.monotonic()
        self.enabled = stream.isatty()
        self.drawn = 0.0

    def rate(self) -> float:
        return self.done / max(1e-9, time.monotonic() - self.start)

    def line(self) -> str:
        width = 30
        filled = int(width * self.done / max(1, self.total))
        rate = self.rate()
        left = (self.total - self.done) / rate if rate > 0 else math.inf
        eta = "--:--" if not math.isfinite(left) else f"{int(left // 60):02d}:{int(left % 60):02d}"
        return (f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{rate:.1f} {self.unit}/s, ETA {eta}")

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self.drawn >= 0.1 or self.done >= self.total):
            self.drawn = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
        elapsed = time.monotonic() - self.start
        print(f"{self.label}: {self.done}/{self.total} {self.unit} in {elapsed:.1f} s ({self.rate():.1f} {self.unit}/s)",
              file=sys.stderr)
