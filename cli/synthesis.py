"""``lpips-explorer mad`` and ``lpips-explorer optimize``: the synthesis modes from the command line.

Hooked into :mod:`cli.entry` by :func:`add_parsers` and dispatched through each parser's
``func``. Errors are the project's own (exit 1 for a level that cannot be reached and other
bad values found while running, 2 for bad usage caught by the parser or missing weights).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence, TextIO

from typing import TYPE_CHECKING

from core.synthesis.limits import MAX_SIZE, MAX_STEPS, MIN_SIZE, SCORE_KEYS

from .common import UsageError, device_arg  # the same --device check as every other command

if TYPE_CHECKING:
    from core.synthesis.common import StepReport

__all__ = ["add_parsers", "run_mad", "run_optimize"]

METRIC_CHOICES = ("psnr", "mse", "ssim", "lpips", "lpips_alex", "lpips_vgg")


def _int_in(low: int, high: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high} ({what}), got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high} ({what}), got {value}")
        return value
    return parse


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ref", help="reference image file, or the key of a gallery sample (astronaut, cat, ...)")
    parser.add_argument("--steps", type=_int_in(1, MAX_STEPS, "optimization steps"), default=200,
                        help=f"optimization steps, 1 to {MAX_STEPS} (default 200)")
    parser.add_argument("--size", type=_int_in(MIN_SIZE, MAX_SIZE, "pixels per side"), default=256,
                        help=f"the reference's centre square is resized to SIZE×SIZE, {MIN_SIZE} to {MAX_SIZE} (default 256)")
    parser.add_argument("--seed", type=_int_in(0, 2**31 - 1, "random seed"), default=0,
                        help="seed of the start's random noise (default 0)")
    parser.add_argument("--out", required=True, help="folder to write the images and history.csv into (created if missing)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--device", type=device_arg, default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")


def add_parsers(sub, epilog: str = "") -> None:
    """Add the ``mad`` and ``optimize`` subcommands to ``sub`` (argparse sub-parsers)."""
    p = sub.add_parser("mad", epilog=epilog,
                       help="MAD competition: hold one metric at a level, find the best and worst image for another",
                       description="Maximum differentiation competition (Wang & Simoncelli 2008): two images with "
                                   "the same held metric, as similar and as different as possible by the attacked "
                                   "one. Writes best.png, worst.png, start.png, reference.png and history.csv.")
    _common(p)
    p.add_argument("--hold", choices=METRIC_CHOICES, default="psnr", help="the metric held at --level (default psnr)")
    p.add_argument("--level", type=_finite, required=True,
                   help="the held metric's value: PSNR in dB (e.g. 24), SSIM (e.g. 0.7), LPIPS (e.g. 0.2)")
    p.add_argument("--attack", choices=METRIC_CHOICES, default="lpips", help="the metric attacked (default lpips)")
    p.add_argument("--net", choices=("alex", "vgg"), default="alex", help="network for 'lpips' (default alex)")
    p.add_argument("--step-size", type=_finite, default=0.1,
                   help="first step as a fraction of the start's RMS error (default 0.1)")
    p.set_defaults(func=run_mad)

    p = sub.add_parser("optimize", epilog=epilog,
                       help="a metric as a loss: optimize a degraded image towards the reference, one loss each",
                       description="Start from the reference with a distortion (noise, blur, JPEG...) and optimize "
                                   "it towards the reference with each loss; writes start.png, one PNG per loss, "
                                   "reference.png and history.csv, and scores every result with every metric.")
    _common(p)
    p.add_argument("--loss", default="l2,ssim,lpips_alex,mix",
                   help="comma-separated losses: l2, ssim, lpips_alex, lpips_vgg, mix (= 0.5*l2+0.5*lpips_alex) "
                        "or a weighted sum like 0.7*l2+0.3*lpips_vgg (default l2,ssim,lpips_alex,mix)")
    p.add_argument("--degradation", default="gaussian_noise",
                   help="the start: a distortion from `python -m core` Explore's list, e.g. gaussian_noise, "
                        "gaussian_blur, jpeg (default gaussian_noise)")
    p.add_argument("--strength", type=_finite, default=None,
                   help="its main parameter (noise sigma in 8-bit levels, blur sigma in px, JPEG quality); "
                        "default: the distortion's default")
    p.add_argument("--scale", type=int, choices=(1, 2, 4), default=1,
                   help="1: every pixel free; 2 or 4: optimize a grid that much coarser, upscaled (default 1)")
    p.add_argument("--lr", type=_finite, default=0.01, help="Adam learning rate in pixel units (default 0.01)")
    p.set_defaults(func=run_optimize)


class _Bar:
    """A one-line progress bar on stderr (only on a terminal), with the latest values."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label, self.stream, self.start = label, stream or sys.stderr, time.monotonic()
        self.enabled = self.stream.isatty()

    def __call__(self, report: StepReport) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * report.step / max(1, report.total))
        rate = report.step / max(1e-9, time.monotonic() - self.start)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {report.step}/{report.total} "
                          f"({rate:.1f} steps/s)")
        self.stream.flush()

    def close(self, done: int, total: int) -> None:
        if self.enabled:
            self.stream.write("\n")
        print(f"{self.label}: {done}/{total} steps in {time.monotonic() - self.start:.1f} s", file=self.stream)


def _load_reference(text: str, size: int):
    from core.errors import ImageLoadError
    from core.images.imageio import load_image
    from core.images.samples import list_samples
    from core.synthesis.common import square_reference

    path = Path(text)
    if path.is_file():
        return square_reference(load_image(path), size)
    keys = {s.key: s for s in list_samples()}
    if text in keys:
        return square_reference(load_image(keys[text].path), size)
    raise ImageLoadError(f"{text} is neither an image file nor a gallery sample ({', '.join(keys)}).")


def _out_dir(text: str) -> Path:

    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {text} is a file; give a folder to write the images into.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the folder {text}: {exc.strerror or exc}.") from None
    return folder


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _write_csv(path: Path, rows: Sequence[dict]) -> None:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _score_line(label: str, scores: dict) -> str:
    from core.synthesis.objectives import METRICS

    cells = []
    for key in SCORE_KEYS:
        value = scores.get(key)
        cells.append(f"{'n/a' if value is None else METRICS[key].format(value):>12}")
    return f"{label:<28}" + "".join(cells)


def _table_header() -> str:
    from core.synthesis.objectives import METRICS

    return f"{'':<28}" + "".join(f"{METRICS[k].label:>12}" for k in SCORE_KEYS)


def run_mad(args) -> int:
    from core.synthesis.objectives import METRICS

    from core.images.imageio import save_image
    from core.synthesis.competition import mad
    from core.synthesis.objectives import metric_key

    ref = _load_reference(args.ref, args.size)
    folder = _out_dir(args.out)
    hold, attack = metric_key(args.hold, args.net), metric_key(args.attack, args.net)
    bar = _Bar(f"mad {hold} {args.level:g} vs {attack}")
    result = mad(ref, hold, args.level, attack, steps=args.steps, seed=args.seed, step_size=args.step_size,
                 device=args.device, progress=bar)
    bar.close(result.steps_done, result.steps)
    for name, image in (("best", result.best), ("worst", result.worst), ("start", result.start),
                        ("reference", result.ref)):
        save_image(image, folder / f"{name}.png")
    _write_csv(folder / "history.csv", result.history_rows())
    report = result.to_dict()
    report["out"] = str(folder)
    if args.json:
        print(json.dumps(_json_value(report), indent=2))
        return 0
    hold_label, attack_label = METRICS[hold].label, METRICS[attack].label
    print(f"{hold_label} held at {METRICS[hold].format(result.level)}; {attack_label} attacked "
          f"({METRICS[attack].direction}); {result.steps_done} steps in {result.seconds:.1f} s on {result.device}\n")
    print(_table_header())
    print(_score_line(f"best for {attack_label}", result.best_scores))
    print(_score_line(f"worst for {attack_label}", result.worst_scores))
    print(_score_line("start (reference + noise)", result.start_scores))
    print("\nHigher LPIPS = more different; higher PSNR/SSIM = more similar. "
          f"Images and history.csv are in {folder}.")
    return 0


def run_optimize(args) -> int:
    from core.images.imageio import save_image
    from core.synthesis.metric_loss import parse_loss, restore

    ref = _load_reference(args.ref, args.size)
    losses = [parse_loss(text) for text in args.loss.split(",") if text.strip()]
    folder = _out_dir(args.out)
    bar = _Bar("optimize")
    result = restore(ref, losses, degradation=args.degradation, strength=args.strength, steps=args.steps,
                     lr=args.lr, scale=args.scale, seed=args.seed, device=args.device, progress=bar)
    bar.close(sum(r.steps_done for r in result.runs), result.steps * len(losses))
    save_image(result.start, folder / "start.png")
    save_image(result.ref, folder / "reference.png")
    files = {}
    for run in result.runs:
        name = f"loss_{run.loss.slug}.png"
        save_image(run.image, folder / name)
        files[run.loss.text] = name
    _write_csv(folder / "history.csv", result.history_rows())
    report = result.to_dict()
    for entry in report["runs"]:
        entry["file"] = files[entry["loss"]]
    report["out"] = str(folder)
    if args.json:
        print(json.dumps(_json_value(report), indent=2))
        return 0
    print(f"Start: {result.degradation}; {result.steps} Adam steps per loss, scale {result.scale}, "
          f"{result.seconds:.1f} s on {result.device}\n")
    print(_table_header())
    print(_score_line("start", result.start_scores))
    for run in result.runs:
        print(_score_line(run.loss.label, run.scores))
    print("\nHigher LPIPS = more different; higher PSNR/SSIM = more similar. "
          f"Images and history.csv are in {folder}.")
    return 0
