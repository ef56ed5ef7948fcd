"""``lpips-explorer bapps score|fit``: human judgments in the BAPPS layout (:mod:`core.judgments`).

* ``bapps score ROOT`` — every metric's 2AFC score and JND mAP on every set under ``ROOT``, as the
  LPIPS paper tabulates them (a row per metric, a column per set), with the human ceiling.
* ``bapps fit ROOT --out heads.safetensors`` — LPIPS's linear heads fitted to ROOT's 2AFC
  judgments (the official Trainer's objective on stored per-pair features), with held-out 2AFC
  before and after, saved with a manifest that ``--heads`` and ``LPIPS(model_path=...)`` read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import EXIT_STATUSES, Progress, UsageError, device_arg, jsonable, metrics_arg, positive

__all__ = ["add_parsers", "run_fit", "run_score"]

# Patches per compare() call while scoring: bounded memory, batched work.
_CHUNK = 64


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {value}")
    return value


def add_parsers(sub) -> None:
    p = sub.add_parser("bapps", help="human judgments in the BAPPS layout: score the metrics, fit LPIPS's heads")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser(
        "score", epilog=EXIT_STATUSES, help="each metric's 2AFC score and JND mAP on every set, and the human ceiling",
        description="The LPIPS paper's table for the sets under ROOT (ROOT/2afc/<split>/<set>, ROOT/jnd/<split>/<set>): "
                    "2AFC = how often a metric picks the patch people picked, weighted by the share of people "
                    "(ties count half); JND = mean average precision of finding the 'same' pairs by small "
                    "distance. Human = the agreement of a random person with the rest. Higher is better for both.")
    a.add_argument("root", help="a BAPPS folder (holding 2afc/ and/or jnd/)")
    a.add_argument("--split", default=None, help="only this split (e.g. val; default: every split)")
    a.add_argument("--metrics", type=metrics_arg, default=None, metavar="NAMES",
                   help="comma-separated metrics (default: the fast ones; MS-SSIM needs 176 px and is n/a on 64² patches)")
    a.add_argument("--net", choices=("alex", "vgg", "squeeze"), default="alex", help="LPIPS backbone (default alex)")
    a.add_argument("--heads", metavar="FILE", default=None, help="LPIPS heads from a file (as for compare)")
    a.add_argument("--device", type=device_arg, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    a.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    a.set_defaults(func=run_score)

    a = actions.add_parser(
        "fit", epilog=EXIT_STATUSES, help="fit LPIPS's linear heads to ROOT's 2AFC judgments",
        description="Fits non-negative per-channel heads with the official Trainer's objective (the ranking network "
                    "on (d0, d1), BCE against the share of people, Adam lr 1e-4, beta1 0.5, epochs then linear decay), "
                    "backbone frozen, on each pair's stored per-channel features (one backbone pass per patch). "
                    "Held-out 2AFC before (v0.1 heads, uniform 'baseline' heads) and after is printed.")
    a.add_argument("root", help="a BAPPS folder: its 2afc/train sets are fitted on (every 2afc set if it has no train/)")
    a.add_argument("--out", required=True, help="the heads file to write (.safetensors; a .json manifest goes beside it)")
    a.add_argument("--net", choices=("alex", "vgg", "squeeze"), default="alex", help="backbone (default alex)")
    a.add_argument("--from", dest="init", choices=("v0.1", "scratch"), default="v0.1",
                   help="start from the published v0.1 heads (default) or the official Trainer's random start")
    a.add_argument("--val", default=None, metavar="ROOT",
                   help="held-out BAPPS folder (its 2afc/val sets, or every 2afc set); default: ROOT's own 2afc/val "
                        "when it has train/ and val/, else a split of ROOT's triplets by reference patch")
    a.add_argument("--heldout", type=_fraction, default=0.2, help="held-out share when there is no --val (default 0.2)")
    a.add_argument("--epochs", type=positive("--epochs", 1000), default=5, help="epochs at the full rate (default 5)")
    a.add_argument("--decay", type=int, default=5, help="epochs of linear decay to 0 after them (default 5)")
    a.add_argument("--seed", type=int, default=0, help="initial weights, batch order and split (default 0)")
    a.add_argument("--device", type=device_arg, default="auto", help="where the backbone runs (default auto)")
    a.set_defaults(func=run_fit)


# ---------------------------------------------------------------------------------------------
# score
# ---------------------------------------------------------------------------------------------

def _sets(root: str, kind: str, split: str | None) -> dict:
    from core.judgments import bapps

    folder = Path(root) / kind
    if not folder.is_dir():
        return {}
    return bapps.list_sets(root, kind, split)


def _metric_values(engine, keys, a, b) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Each metric's values for the pairs (a[i], b[i]); metrics that skip these images, and why."""
    from core.comparison import compare

    result = compare(engine, a, b, metrics=keys, spatial=False)
    values = {k: [float(v) for v in result[k]] for k in result.metrics if k not in result.skipped}
    return values, dict(result.skipped)


def _extend(store: dict[str, list[float]], values: dict[str, list[float]]) -> None:
    for key, vals in values.items():
        store.setdefault(key, []).extend(vals)


def run_score(args) -> int:
    from core.judgments.bapps import BappsError

    try:
        return _score(args)
    except BappsError as exc:  # not a BAPPS folder, a missing or bad judge file: the input, exit 2
        raise UsageError(str(exc)) from None


def _score(args) -> int:
    from core import metrics
    from core.judgments import bapps
    from core.judgments.scores import human_ceiling_2afc, score_metrics_2afc, score_metrics_jnd

    if not Path(args.root).is_dir():
        raise UsageError(f"{args.root} is not a folder; give the root of a BAPPS folder (holding 2afc/ or jnd/).")
    keys = args.metrics if args.metrics is not None else metrics.defaults()
    twoafc, jnd = _sets(args.root, "2afc", args.split), _sets(args.root, "jnd", args.split)
    if not twoafc and not jnd:
        raise bapps.BappsError(f"{args.root} holds no 2afc/<split>/<set> or jnd/<split>/<set> folders"
                               + (f" for the split {args.split!r}" if args.split else "")
                               + "; give the root of a BAPPS folder.", Path(args.root))
    engine = _engine(args, keys)
    table: dict[str, dict[str, float]] = {}
    skipped: dict[str, str] = {}
    human: dict[str, float] = {}
    counts: dict[str, int] = {}
    total = sum(len(bapps.read_2afc(f)) for f in twoafc.values()) + sum(len(bapps.read_jnd(f)) for f in jnd.values())
    progress = Progress(total, "bapps score", unit="judgments")
    for name, folder in twoafc.items():
        data = bapps.read_2afc(folder)
        d0: dict[str, list[float]] = {}
        d1: dict[str, list[float]] = {}
        for start in range(0, len(data), _CHUNK):
            ref, p0, p1 = data.images(start, start + _CHUNK)
            values0, skip0 = _metric_values(engine, keys, ref, p0)
            values1, _ = _metric_values(engine, keys, ref, p1)
            _extend(d0, values0)
            _extend(d1, values1)
            skipped.update(skip0)
            progress.advance(min(_CHUNK, len(data) - start))
        column = f"2afc/{name}"
        table[column] = score_metrics_2afc(d0, d1, data.judge)
        human[column] = human_ceiling_2afc(data.judge)
        counts[column] = len(data)
    for name, folder in jnd.items():
        data = bapps.read_jnd(folder)
        d: dict[str, list[float]] = {}
        for start in range(0, len(data), _CHUNK):
            p0, p1 = data.images(start, start + _CHUNK)
            values, skip = _metric_values(engine, keys, p0, p1)
            _extend(d, values)
            skipped.update(skip)
            progress.advance(min(_CHUNK, len(data) - start))
        column = f"jnd/{name}"
        table[column] = score_metrics_jnd(d, data.same)
        counts[column] = len(data)
    progress.close()
    if args.json:
        out = {"root": str(args.root), "sets": {c: {"n": counts[c], "scores": table[c], "human": human.get(c)}
                                                for c in table},
               "skipped": skipped, "lpips": _lpips_label(engine)}
        print(json.dumps(out, indent=2, default=jsonable))
        return 0
    _print_table(keys, table, human, counts, skipped, engine)
    return 0


def _lpips_label(engine) -> str | None:
    if engine is None:
        return None
    heads = getattr(engine.network, "heads_origin", "")
    return f"{engine.net}, heads {heads}" if heads else f"{engine.net} v{engine.version}"


def _engine(args, keys):
    if "lpips" not in keys:
        return None
    if args.heads is not None:
        from core.judgments.heads import engine_from_file

        return engine_from_file(args.heads, args.net, "0.1", args.device)
    from core.lpips.engine import Engine

    return Engine(args.net, "0.1", True, args.device)


def _print_table(keys, table, human, counts, skipped, engine) -> None:
    from core import metrics

    columns = list(table)
    width = max(14, *(len(c) + 2 for c in columns))
    labels = {key: metrics.get(key).label + (f" ({_lpips_label(engine)})" if key == "lpips" else "") for key in keys}
    first = max(22, *(len(label) + 2 for label in labels.values()))
    print("2AFC: share of judgments a metric agrees with (weighted by the share of people; ties ½). "
          "JND: mean average precision. Higher is better for both.\n")
    print(f"{'metric':<{first}}" + "".join(f"{c:>{width}}" for c in columns))
    print(f"{'triplets / pairs':<{first}}" + "".join(f"{counts[c]:>{width}}" for c in columns))
    for key in keys:
        if key in skipped:
            continue
        print(f"{labels[key]:<{first}}" + "".join(f"{table[c].get(key, float('nan')):>{width}.3f}" for c in columns))
    print(f"{'human':<{first}}" + "".join((f"{human[c]:>{width}.3f}" if c in human else f"{'–':>{width}}") for c in columns))
    for key, why in skipped.items():
        print(f"n/a {metrics.get(key).label}: {why}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------

def _train_sets(root: str, kind_split: str | None) -> list:
    from core.judgments import bapps

    sets = bapps.list_sets(root, "2afc", kind_split) if kind_split else {}
    if not sets:
        sets = bapps.list_sets(root, "2afc")
    return [bapps.read_2afc(folder) for folder in sets.values()]


def _features(engine, sets, label: str):
    import torch

    from core.judgments.features import set_features

    total = sum(len(s) for s in sets)
    progress = Progress(total, label, unit="triplets")
    parts0, parts1, judges = [], [], []
    for data in sets:
        start = progress.done  # set_features reports its own set's count: advance by what is new
        phi0, phi1 = set_features(engine, data, progress=lambda n, _total, start=start:
                                  progress.advance(start + n - progress.done))
        parts0.append(phi0)
        parts1.append(phi1)
        judges.append(torch.as_tensor(data.judge, dtype=torch.float64))
    progress.close()
    return torch.cat(parts0), torch.cat(parts1), torch.cat(judges)


def _reference_keys(sets) -> list[str]:
    """A triplet's reference identity for the held-out split: the reference patch's bytes."""
    import hashlib

    return [hashlib.sha256(path.read_bytes()).hexdigest() for data in sets for path in data.ref]


def run_fit(args) -> int:
    from core.judgments.bapps import BappsError

    try:
        return _fit(args)
    except BappsError as exc:
        raise UsageError(str(exc)) from None


def _fit(args) -> int:
    from core.judgments import bapps
    from core.judgments.features import uniform_heads
    from core.judgments.fit import fit_heads, score_heads, split_by_reference
    from core.lpips import weights
    from core.lpips.engine import Engine
    from core.lpips.heads import save_heads

    if not str(args.out).endswith(".safetensors"):
        raise UsageError(f"--out {args.out}: heads are saved as safetensors; give a name ending in .safetensors.")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: the folder {out.parent} does not exist.")
    if args.decay < 0:
        raise UsageError(f"--decay must be 0 or more epochs, got {args.decay}.")
    if not Path(args.root).is_dir():
        raise UsageError(f"{args.root} is not a folder; give the root of a BAPPS folder (holding 2afc/).")
    engine = Engine(args.net, "0.1", True, args.device)
    train_sets = _train_sets(args.root, "train")
    if not train_sets:
        raise bapps.BappsError(f"{args.root} holds no 2afc sets to fit on.", Path(args.root))
    phi0, phi1, judge = _features(engine, train_sets, "features (train)")
    val_root = args.val if args.val is not None else (args.root if (Path(args.root) / "2afc" / "val").is_dir()
                                                        and (Path(args.root) / "2afc" / "train").is_dir() else None)
    if val_root is not None:
        val_sets = _train_sets(val_root, "val")
        v0, v1, vj = _features(engine, val_sets, "features (held-out)")
        data_text = f"{args.root} 2afc/train (held out: {val_root} 2afc/val)"
    else:
        train, held = split_by_reference(_reference_keys(train_sets), args.heldout, seed=args.seed)
        v0, v1, vj = phi0[held], phi1[held], judge[held]
        phi0, phi1, judge = phi0[train], phi1[train], judge[train]
        data_text = f"{args.root} ({len(train)} triplets; {len(held)} held out by reference patch)"
    before = {"v0.1": score_heads(weights.load_linear_heads(args.net, "0.1"), v0, v1, vj, args.net),
              "baseline (uniform)": score_heads(uniform_heads(args.net), v0, v1, vj, args.net)}
    epochs = args.epochs + args.decay
    bar = Progress(epochs, "fit", unit="epochs")

    def report(epoch, loss, heldout):
        bar.advance()

    result = fit_heads(phi0, phi1, judge, net=args.net, init=args.init, heldout=(v0, v1, vj), nepoch=args.epochs,
                       nepoch_decay=args.decay, seed=args.seed, callback=report)
    bar.close()
    after = result.heldout_2afc
    save_heads(out, result.heads, net=args.net, origin=args.init, data=data_text, heldout_2afc=after,
               extra={"epochs": args.epochs, "decay": args.decay, "seed": args.seed,
                      "heldout_2afc_before": before, "triplets": int(len(judge)), "heldout_triplets": int(len(vj))})
    print(f"held-out 2AFC ({len(vj)} triplets; higher = agrees with people more often):")
    for label, score in before.items():
        print(f"  {label:<22}{score:.4f}")
    print(f"  {'fitted (from ' + args.init + ')':<22}{after:.4f}")
    print(f"heads → {out} (manifest {out.name}.json); use them with --heads {out}")
    return 0
