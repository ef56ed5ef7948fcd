"""``lpips-explorer compare REF DIST``: every asked-for metric of one pair, as a table or JSON,
with LPIPS's layers (which layer drives the distance)."""

from __future__ import annotations

import json
from pathlib import Path

from .common import EXIT_STATUSES, add_metric_options, engine_for, fmt, jsonable, wanted_metrics

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two images", epilog=EXIT_STATUSES,
                       description="Every asked-for metric of one pair. Higher LPIPS = more different; "
                                   "higher PSNR/SSIM = more similar (each row says which way its metric reads).")
    p.add_argument("ref")
    p.add_argument("dist")
    add_metric_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run)


def _load_pair(ref_path: Path, dist_path: Path, resize: bool):
    from core.images.imageio import load_image, match_size

    ref, dist = load_image(ref_path), load_image(dist_path)
    if resize and ref.shape[-2:] != dist.shape[-2:]:
        dist = match_size(ref, dist, how="resize")
    return ref, dist


def run(args) -> int:
    from core import metrics
    from core.comparison import compare

    ref, dist = _load_pair(Path(args.ref), Path(args.dist), args.resize_to_ref)
    result = compare(engine_for(args), ref, dist, metrics=wanted_metrics(args), ssim_mode=args.ssim_mode,
                     spatial=False)
    row = result.row(0)
    row.update(ref=str(args.ref), dist=str(args.dist))
    if args.json:
        print(json.dumps({k: jsonable(v) for k, v in row.items()}, indent=2))
        return 0
    print(f"ref:  {args.ref}\ndist: {args.dist}\n")
    labels = {key: metrics.get(key).title(result.context) + (f" ({metrics.get(key).unit})" if metrics.get(key).unit
                                                              else "") for key in result.metrics}
    width = max(22, *(len(label) + 2 for label in labels.values()))
    print(f"{'metric':<{width}}{'value':>10}   meaning")
    for key in result.metrics:
        spec = metrics.get(key)
        label = labels[key]
        value = row[key]
        note = result.skipped.get(key, spec.meaning)
        if key == "lpips" and not row["calibrated"]:
            note = "baseline (uncalibrated); " + note
        print(f"{label:<{width}}{spec.format(value, unit=False):>10}   {note}")
        if key == "lpips":  # LPIPS's own breakdown: which layer drives the distance
            for name, layer_value in zip(row["lpips_layer_names"], row["lpips_layers"]):
                share = 100 * layer_value / value if value > 0 else 0.0
                print(f"{'  ' + name:<{width}}{fmt(layer_value):>10}   {share:.0f}% of the distance")
    return 0
