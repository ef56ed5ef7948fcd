"""``lpips-explorer dirs DIR0 DIR1`` and ``lpips-explorer allpairs DIR``: whole folders scored in
batches (:mod:`core.folders`), one row per pair, errors as rows; CSV, Parquet or an N×N matrix;
locally or on a Dask cluster (``--cluster``, a runner found through an entry point)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Iterable, Sequence, TextIO

from .common import EXIT_STATUSES, Progress, UsageError, add_metric_options, positive, wanted_metrics

__all__ = ["add_parsers", "run_allpairs", "run_dirs"]

MAX_BATCH = 256
# What each metric costs: the work it does per pair. Measured figures: docs/scoring-at-scale.md
# (`make bench-batch`, bench/batch.py).
DIRS_COSTS = """Scores the pairs with the same file name in DIR0 and DIR1, in batches, while the next
images decode on other threads. One row per pair, in file-name order; a pair that fails
becomes an error row and the run goes on.

What each metric costs per pair (measured on a 2-core CPU, decoding included):
  lpips     two backbone passes (ref and dist): the bulk of the time (alex, 256x256,
            2-core CPU: about 17 ms per pair with decoding)
  psnr      one pass over the pixels, exact: about 5 ms alone, nearly all of it decoding
  ssim      five Gaussian-filtered moments per pair: about 4.5 ms alone at 256x256 in
            float32 (the default), 5.5 ms in float64 (--precision), decoding included
  ms_ssim   the same at five scales, sharing SSIM's first: about 5 ms (float32) alone
  others    (see `python -m core metrics`) their own cost, through the same path as `compare`
`--metrics lpips` computes LPIPS alone; `--metrics psnr,ssim` needs no network at all.
Measured figures: README, "Scoring at scale" (make bench-batch)."""
ALLPAIRS_COSTS = """Scores every pair of images in DIR: N images cost N backbone passes (each image's
features are computed once), then every pair is cheap. Images of different sizes are not
compared (an error row per such pair); each size group is scored on its own.

What each metric costs (measured on a 2-core CPU, 256x256, alex, decoding included):
  lpips     one backbone pass per image, then one matrix product of the normalized
            features for all pairs of a block (N=40 at 256x256: 0.7 ms per pair in all)
  psnr      one matrix product of the 8-bit levels (exact): about 0.2 ms per pair
  ssim      each image's moments once, then one filtered cross moment E[xy] per pair:
            about 0.3 ms per pair in float32 (the default), 0.36 ms in float64
  ms_ssim   the same at five scales (the coarser ones are small): about 0.4 ms per pair
  others    (see `python -m core metrics`) each image prepared once, its partners scored
            through the same path as `compare`
Memory is bounded by --memory: blocks of images whose states fit are paired with each other.
Measured figures: README, "Scoring at scale" (make bench-batch)."""


def _out_arg(text: str) -> str:
    if text == "-":
        return text
    path = Path(text)
    if not text.strip() or path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder or no name; give a file name such as out.csv, "
                                         "or '-' for standard output")
    return text


def default_decode_workers() -> int:
    """Threads that decode images: as many as cores, at most 4 (Pillow releases the GIL)."""
    return max(1, min(4, os.cpu_count() or 1))


def _batch_args(parser: argparse.ArgumentParser, allpairs: bool = False) -> None:
    parser.add_argument("-o", "--out", type=_out_arg, required=True,
                        help="table to write: a .csv file ('-' for stdout), or a .parquet file "
                             "(typed columns, full precision; also --format parquet)")
    parser.add_argument("--format", choices=("csv", "parquet"), default=None,
                        help="output format (default: from --out's extension, else csv)")
    parser.add_argument("--parents", action="store_true", help="create the output file's folder if it is missing")
    parser.add_argument("--batch-size", type=positive("--batch-size", MAX_BATCH), default=16,
                        help=f"images per network pass, 1 to {MAX_BATCH} (default 16)")
    parser.add_argument("--precision", choices=("float32", "float64"), default="float32",
                        help="working precision of the classic metrics (SSIM, MS-SSIM, ...). float32 (default): "
                             "within 2e-6 of float64, so their columns are written with 5 decimals; about 2x "
                             "faster on a CPU. float64: the values of `compare`, 6 decimals. LPIPS (a float32 "
                             "network) and PSNR (exact integer sums) do not depend on it")
    parser.add_argument("--decode-workers", type=positive("--decode-workers", 64), default=default_decode_workers(),
                        help="threads decoding images while the network runs "
                             f"(default {default_decode_workers()}: the cores, at most 4)")
    what = "images per block (allpairs pairs blocks of images; default: what --memory holds, 32 on a cluster)" \
        if allpairs else "pairs per cluster task (default 16 x --batch-size)"
    parser.add_argument("--block-size", type=positive("--block-size", 1_000_000), default=None, help=what)
    parser.add_argument("--memory", type=positive("--memory", 1 << 20), default=1024, metavar="MIB",
                        help="MiB of per-image states (features, moments) kept at once, per process (default 1024)")
    parser.add_argument("--cluster", metavar="ADDRESS", default=None,
                        help="run the tasks on a Dask cluster, e.g. tcp://scheduler:8786: each worker loads the "
                             "network once from its own weights cache (`python -m core weights fetch` there first; "
                             "no downloads) and reads the images by absolute path (a shared file system); the "
                             "rows come back in the same order as a local run")
    parser.add_argument("--allow-empty", action="store_true",
                        help="accept a run with nothing to compare (exit 0, empty table) instead of an error")


# Metrics whose printed digits do not depend on --precision: LPIPS's network is float32 either
# way, PSNR is exact integer arithmetic either way.
_PRECISION_FREE = ("lpips", "psnr")
# float32 keeps SSIM and MS-SSIM within 2e-6 of float64 (measured on 256² photos: 1.7e-6), so
# in float32 those columns carry 5 decimals: what is printed is what was computed.
_FLOAT32_DIGITS = 5


def _spec(args):
    from core.folders.scoring import ScoringSpec

    return ScoringSpec(metrics=wanted_metrics(args), net=args.net, version=args.version, calibrated=not args.baseline,
                       device=args.device, ssim_mode=args.ssim_mode, precision=args.precision,
                       resize_to_ref=args.resize_to_ref, batch_size=args.batch_size,
                       decode_workers=args.decode_workers, memory_mb=args.memory, heads=args.heads)


def _fields(keys: Sequence[str], net: str, heads: str | None = None) -> list[str]:
    """The table's columns: names, status, each metric, LPIPS's layers, then the settings (with
    the heads file's name when --heads replaced the published heads)."""
    from core import metrics
    from core.lpips.names import TAP_NAMES

    settings = ["net", "version", "calibrated"] if "lpips" in keys else []
    if heads is not None and "lpips" in keys:
        settings.append("heads")
    for key in keys:
        settings += [s for s in metrics.get(key).settings if s not in settings]
    if any(k not in _PRECISION_FREE for k in keys):
        settings.append("precision")
    layers = [f"lpips_{n}" for n in TAP_NAMES[net]] if "lpips" in keys else []
    return ["ref", "dist", "status", "error", *keys, *layers, *settings]


def _digits(keys: Sequence[str], net: str, precision: str) -> dict[str, int]:
    from core.lpips.names import TAP_NAMES

    digits = {k: 6 if precision == "float64" or k in _PRECISION_FREE else _FLOAT32_DIGITS for k in keys}
    if "lpips" in keys:
        digits.update({f"lpips_{n}": 6 for n in TAP_NAMES[net]})
    return digits


def _output_format(args) -> str:
    if args.format:
        return args.format
    return "parquet" if str(args.out).lower().endswith((".parquet", ".pq")) else "csv"


def _check_output_place(path: str, make_parents: bool) -> None:
    target = Path(path)
    if not target.parent.is_dir():
        if not make_parents:
            raise UsageError(f"cannot write {path}: the folder {target.parent} does not exist "
                             "(create it, or pass --parents to create it).")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the folder {target.parent}: {exc.strerror or exc}.") from None


def _open_output(path: str, make_parents: bool) -> TextIO:
    """The CSV's file (or standard output), opened before any work so a bad place fails first."""
    if path == "-":
        return sys.stdout
    _check_output_place(path, make_parents)
    try:
        return open(path, "w", newline="", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}. Choose another output file.") from None


def _open_sink(args, fields: list[str]):
    from core.folders.tables import CsvSink, ParquetSink

    keys = wanted_metrics(args)
    if _output_format(args) == "parquet":
        if args.out == "-":
            raise UsageError("Parquet cannot go to standard output; give a file name such as out.parquet.")
        _check_output_place(args.out, args.parents)
        numeric = [f for f in fields if f in keys or f.startswith("lpips_")]
        try:
            return ParquetSink(Path(args.out), fields, numeric)
        except OSError as exc:
            raise UsageError(f"cannot write {args.out}: {exc}. Choose another output file.") from None
    return CsvSink(_open_output(args.out, args.parents), fields, _digits(keys, args.net, args.precision))


def _write(sinks: list, rows: Iterable[dict], progress: Progress) -> tuple[int, int]:
    ok = failed = 0
    try:
        for row in rows:
            for sink in sinks:
                sink.write(row)
            ok += row["status"] == "ok"
            failed += row["status"] != "ok"
            if row["ref"] and row["dist"]:
                progress.advance()
            if row["status"] != "ok":
                print(f"error: {row['ref'] or '-'} vs {row['dist'] or '-'}: {row['error']}", file=sys.stderr)
    finally:
        for sink in sinks:
            sink.close()
    return ok, failed


def _finish(args, sinks: list, rows: Iterable[dict], progress: Progress) -> int:
    """Write every row, report the counts; exit status 1 if any pair failed."""
    if any(k not in _PRECISION_FREE for k in wanted_metrics(args)):
        rows = ({**row, "precision": args.precision} if row["status"] == "ok" else row for row in rows)
    ok, failed = _write(sinks, rows, progress)
    progress.close()
    print(f"{ok} pairs scored, {failed} failed → {args.out}", file=sys.stderr)
    return 1 if failed else 0


def _nothing_to_do(args, reason: str) -> int | None:
    """A run with nothing to compare is an error (exit 1), unless --allow-empty asked for it."""
    if args.allow_empty:
        print(f"nothing to compare: {reason} (--allow-empty: an empty table is written)", file=sys.stderr)
        return None
    print(f"error: nothing to compare: {reason}. Pass --allow-empty to accept an empty result.", file=sys.stderr)
    return 1


def _images_in(directory: Path) -> list[Path]:
    if not directory.is_dir():
        what = "a file" if directory.is_file() else "missing"
        raise UsageError(f"{directory} is not a folder ({what}); give a folder of images.")
    from core.folders.scoring import images_in

    return images_in(directory)


RUNNER_GROUP = "lpips_explorer.runners"


def _cluster(address: str):
    """The runner for ``--cluster``: a plugin registered under the entry-point group
    ``lpips_explorer.runners`` (this project's ``cluster`` package registers Dask's), so that the
    engine does not depend on a distributed scheduler."""
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group=RUNNER_GROUP)}
    if "dask" not in found:
        raise UsageError("--cluster needs the Dask runner, registered when the project is installed: "
                         "run `make setup` (pip install -e .) and `pip install -r requirements.txt`.")
    try:
        factory = found["dask"].load()
    except ImportError as exc:
        raise UsageError(f"--cluster needs dask.distributed ({exc}); run `pip install -r requirements.txt`.") from None
    return factory(address)


def _absolute(paths: Iterable, cluster) -> list[str]:
    # Workers run in other folders (and on other machines): they get absolute paths.
    return [str(Path(p).resolve()) if cluster is not None else str(p) for p in paths]


def run_dirs(args) -> int:
    from core.folders.scoring import dirs_pairs, score_dirs, score_dirs_block

    dir0, dir1 = Path(args.dir0), Path(args.dir1)
    for d in (dir0, dir1):
        _images_in(d)
    cluster = _cluster(args.cluster) if args.cluster else None
    try:
        if cluster is not None:
            dir0, dir1 = dir0.resolve(), dir1.resolve()
        pairs, missing = dirs_pairs(dir0, dir1)
        if not pairs:
            has0, has1 = bool(_images_in(dir0)), bool(_images_in(dir1))
            reason = (f"{dir0} and {dir1} have no image file names in common" if has0 and has1
                      else f"{dir0 if not has0 else dir1} holds no images")
            if (code := _nothing_to_do(args, reason)) is not None:
                return code
        spec = _spec(args)
        sinks = [_open_sink(args, _fields(spec.metrics, spec.net, spec.heads))]
        progress = Progress(len(pairs), "dirs")
        if cluster is None:
            if pairs and "lpips" in spec.metrics:
                spec.engine()  # missing weights: exit 2 before any row
            rows = score_dirs(spec, pairs)
        else:
            from functools import partial

            step = args.block_size or 16 * spec.batch_size
            blocks = [pairs[k:k + step] for k in range(0, len(pairs), step)]
            rows = (row for block in cluster.map(partial(score_dirs_block, spec), blocks) for row in block)

        def all_rows():
            yield from rows
            yield from missing

        return _finish(args, sinks, all_rows(), progress)
    finally:
        if cluster is not None:
            cluster.close()


def run_allpairs(args) -> int:
    from functools import partial

    from core import metrics
    from core.folders.scoring import plan_allpairs, scan_files, allpairs_rows
    from core.folders.tables import MatrixSink

    files = _images_in(Path(args.dir))
    if len(files) < 2:
        if (code := _nothing_to_do(args, f"{args.dir} holds {len(files)} image{'s' if len(files) != 1 else ''}; "
                                         "allpairs needs at least two")) is not None:
            return code
    if args.matrix and Path(args.matrix).resolve() == Path(args.out).resolve():
        raise UsageError("--matrix and --out name the same file; give the matrix its own name (e.g. out.npy).")
    cluster = _cluster(args.cluster) if args.cluster else None
    try:
        spec = _spec(args)
        names = _absolute(files, cluster)
        sinks = [_open_sink(args, _fields(spec.metrics, spec.net, spec.heads))]
        if len(files) >= 2 and "lpips" in spec.metrics:
            spec.engine()  # missing weights: exit 2 before any work
        if cluster is None:
            scanned = scan_files(spec, names, warm=True)
            run = None
        else:
            chunks = [names[k:k + 64] for k in range(0, len(names), 64)]
            scanned = [entry for part in cluster.map(partial(scan_files, spec), chunks) for entry in part]
            run = cluster.map
        block = args.block_size or (32 if cluster is not None else None)
        plan = plan_allpairs(spec, names, scanned, block_size=block)
        if args.matrix:
            key = spec.metrics[0]
            _check_output_place(args.matrix, args.parents)
            try:
                sinks.append(MatrixSink(Path(args.matrix), names, key, metrics.get(key).identical,
                                        [s is not None for s in plan.sizes]))
            except OSError as exc:
                raise UsageError(f"cannot write {args.matrix}: {exc}. Choose another file.") from None
        progress = Progress(plan.n_pairs, "allpairs")
        return _finish(args, sinks, allpairs_rows(spec, plan, run), progress)
    finally:
        if cluster is not None:
            cluster.close()


def add_parsers(sub) -> None:
    p = sub.add_parser("dirs", help="pairs with the same file name in two folders (like lpips_2dirs.py)",
                       description=DIRS_COSTS, epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir0")
    p.add_argument("dir1")
    _batch_args(p)
    add_metric_options(p)
    p.set_defaults(func=run_dirs)

    p = sub.add_parser("allpairs", help="every pair of images in one folder (like lpips_1dir_allpairs.py)",
                       description=ALLPAIRS_COSTS, epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    _batch_args(p, allpairs=True)
    p.add_argument("--matrix", type=_out_arg, default=None, metavar="OUT.npy",
                   help="also write the N×N matrix of the first --metrics metric (LPIPS by default) as float32 .npy; "
                        "rows and columns in sorted file-name order (the files the table names), the diagonal "
                        "the identical-images value, NaN where a pair was not scored")
    add_metric_options(p)
    p.set_defaults(func=run_allpairs)
