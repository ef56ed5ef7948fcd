"""Benchmark: scoring folders (``dirs``, ``allpairs``) against the official package's plain loop
and against the per-pair path this project used before (printed figures, never a timed test).

``python -m bench.batch [--quick] [--pairs 200] [--sizes 20,40,80] [--before 40] [--out FILE.json]``
(``make bench-batch``)

Images: 256×256 crops of the gallery's astronaut photo (every crop its own content), as PNG files
in a temporary folder; ``dirs`` pairs each crop with a blurred, noisy copy. AlexNet v0.1, CPU.
Each figure is the median of ``--repeats`` runs, taken in one process and interleaved, so the
ratios hold even when the machine is busy.

* **dirs** — the command line in-process (``cli.entry.main``: decoding, batching, the CSV
  included) with ``--metrics lpips`` and with every metric, against the official ``lpips==0.1.4``
  package's plain loop as its ``lpips_2dirs.py`` runs it: for each pair, load both images, convert
  with ``lpips.im2tensor``, call ``lpips.LPIPS(net='alex')`` on the pair, write a line. (The
  official ``load_image`` needs OpenCV for PNG, which is not installed here; Pillow decodes
  the same pixels. Its trunk gets the same backbone weights as ours, loaded strictly.)
* **allpairs** — the command line with ``--metrics lpips`` at N = 20, 40, 80 (time per pair
  should fall as N grows: N backbone passes for N(N−1)/2 pairs), every metric at 40, and the
  path before this work (a copy of its loop: each image against every later one through
  ``core.compare``, float64 classic metrics) at N = ``--before``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import io
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

import cli
from core.lpips import weights
from core.images.imageio import load_image

SIDE = 256
# The metrics the figures were taken with (metrics registered since cost their own time).
FOUR = "lpips,psnr,ssim,ms_ssim"
SAMPLE = Path(__file__).resolve().parents[1] / "core" / "images" / "gallery" / "astronaut.png"


def make_crops(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` 256² crops of the sample photo at distinct offsets (PNG)."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = np.asarray(Image.open(SAMPLE).convert("RGB"))
    rng = np.random.default_rng(seed)
    height, width = photo.shape[:2]
    paths = []
    for k in range(count):
        top, left = int(rng.integers(0, height - SIDE)), int(rng.integers(0, width - SIDE))
        crop = photo[top:top + SIDE, left:left + SIDE]
        if k % 2:
            crop = crop[:, ::-1]  # mirrored half: more distinct content
        path = folder / f"crop{k:04d}.png"
        Image.fromarray(np.ascontiguousarray(crop)).save(path)
        paths.append(path)
    return paths


def make_dirs(root: Path, pairs: int) -> tuple[Path, Path]:
    ref_dir, dist_dir = root / "ref", root / "dist"
    refs = make_crops(ref_dir, pairs, seed=1)
    dist_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for path in refs:
        img = Image.open(path).filter(ImageFilter.GaussianBlur(0.8 + float(rng.random())))
        noisy = np.asarray(img, dtype=np.float64) + rng.normal(0, 4, (SIDE, SIDE, 3))
        Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8)).save(dist_dir / path.name)
    return ref_dir, dist_dir


def official_model():
    """The official lpips.LPIPS(net='alex') with our cached backbone weights in its trunk."""
    import lpips

    model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    names = {re.sub(r"^slice\d+\.", "features.", k): k for k in model.net.state_dict()}
    model.net.load_state_dict({names[k]: v for k, v in weights.load_backbone("alex").items() if k in names},
                              strict=True)
    return model.eval()


def official_loop(model, ref_dir: Path, dist_dir: Path, out: Path) -> None:
    """lpips_2dirs.py's loop: two images loaded per pair, one pair call, one line written."""
    import lpips

    with open(out, "w") as f, torch.no_grad():
        for name in sorted(os.listdir(ref_dir)):
            img0 = lpips.im2tensor(np.asarray(Image.open(ref_dir / name).convert("RGB")))
            img1 = lpips.im2tensor(np.asarray(Image.open(dist_dir / name).convert("RGB")))
            dist01 = model.forward(img0, img1)
            f.write(f"{name}: {dist01.item():.6f}\n")


def run_cli(*argv) -> None:
    with contextlib.redirect_stderr(io.StringIO()):
        code = cli.main([str(a) for a in argv])
    if code != 0:
        raise RuntimeError(f"`python -m core {' '.join(map(str, argv))}` exited {code}")


def allpairs_before(files: list[Path], metrics: str, batch_size: int = 8) -> int:
    """The allpairs loop before this work (cli/entry.py at commit 01b26ca): decode every image,
    then each image against every later one, in batches, through core.compare (float64)."""
    from core import metrics as registry
    from core.comparison import compare
    from core.lpips.engine import Engine

    keys = registry.resolve(metrics)
    engine = Engine("alex", device="cpu") if "lpips" in keys else None
    images = [load_image(p) for p in files]
    scored = 0
    for i, ref in enumerate(images):
        later = images[i + 1:]
        for start in range(0, len(later), batch_size):
            chunk = torch.cat(later[start:start + batch_size])
            result = compare(engine, ref, chunk, metrics=keys, ssim_mode="reference", spatial=False, precise=True)
            scored += len(result)
            [result.row(k) for k in range(len(result))]
    return scored


def timed(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=200, help="dirs: pairs (default 200)")
    parser.add_argument("--sizes", default="20,40,80", help="allpairs: image counts (default 20,40,80)")
    parser.add_argument("--before", type=int, default=40, help="allpairs: N for the path before this work (0: skip)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100 pairs, N = 20,40, one repeat")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument("--per-metric", action="store_true", help="also time each classic metric alone")
    parser.add_argument("--threads", type=int, default=None,
                        help="PyTorch threads for both sides (default: PyTorch's, the cores)")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each figure as soon as it is measured
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.pairs, args.sizes, args.repeats = 100, "20,40", 1
    sizes = [int(s) for s in args.sizes.split(",")]
    cpu = ["--device", "cpu"]
    report: dict = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                    "torch_threads": torch.get_num_threads(), "load_average_start": load_average()}
    print(f"bench.batch: {report['machine']}, torch threads {report['torch_threads']}, "
          f"load average {report['load_average_start']}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ref_dir, dist_dir = make_dirs(root / "dirs", args.pairs)
        out = root / "out.csv"
        model = official_model()
        run_cli("dirs", ref_dir, dist_dir, "-o", out, "--metrics", "lpips", *cpu)  # warm-up: model, caches
        official_loop(model, ref_dir, dist_dir, root / "official.txt")

        dirs = {}
        for _ in range(args.repeats):  # interleaved: each round runs all three once
            for name, work in (("official", lambda: official_loop(model, ref_dir, dist_dir, root / "official.txt")),
                               ("lpips", lambda: run_cli("dirs", ref_dir, dist_dir, "-o", out, "--metrics", "lpips", *cpu)),
                               ("all", lambda: run_cli("dirs", ref_dir, dist_dir, "-o", out, "--metrics", FOUR, *cpu))):
                dirs.setdefault(name, []).append(timed(work, 1))
        dirs = {k: statistics.median(v) for k, v in dirs.items()}
        n = args.pairs
        report["dirs"] = {"pairs": n, **{f"{k}_s": round(v, 3) for k, v in dirs.items()}}
        print(f"\ndirs, {n} pairs of 256² (alex, CPU):")
        print(f"  official plain loop (LPIPS only)   {dirs['official']:6.2f} s  {n / dirs['official']:6.1f} pairs/s")
        print(f"  ours, --metrics lpips              {dirs['lpips']:6.2f} s  {n / dirs['lpips']:6.1f} pairs/s  "
              f"{dirs['official'] / dirs['lpips']:.2f}× the official loop (target ≥ 1.2×)")
        print(f"  ours, LPIPS+PSNR+SSIM+MS-SSIM      {dirs['all']:6.2f} s  {n / dirs['all']:6.1f} pairs/s  "
              f"{dirs['all'] / dirs['lpips']:.2f}× LPIPS alone (target ≤ 1.5×)")

        print("\nallpairs, 256² (alex, CPU):")
        report["allpairs"] = []
        folder = root / "all"
        crops = make_crops(folder / "pool", max(sizes + [args.before]), seed=3)
        for count in sizes:
            sub = folder / f"n{count}"
            sub.mkdir()
            for path in crops[:count]:
                os.link(path, sub / path.name)
            pairs = count * (count - 1) // 2
            lpips_s = timed(lambda: run_cli("allpairs", sub, "-o", out, "--metrics", "lpips", *cpu), args.repeats)
            entry = {"n": count, "pairs": pairs, "lpips_s": round(lpips_s, 3),
                     "lpips_ms_per_pair": round(1000 * lpips_s / pairs, 3)}
            line = f"  N={count:3d} ({pairs:4d} pairs)  --metrics lpips {lpips_s:6.2f} s  {1000 * lpips_s / pairs:6.2f} ms/pair"
            if count == 40 or count == sizes[-1] and 40 not in sizes:
                all_s = timed(lambda: run_cli("allpairs", sub, "-o", out, "--metrics", FOUR, *cpu), args.repeats)
                entry.update(all_s=round(all_s, 3), all_over_lpips=round(all_s / lpips_s, 2))
                line += f"   LPIPS+PSNR+SSIM+MS-SSIM {all_s:6.2f} s ({all_s / lpips_s:.2f}× LPIPS alone, target ≤ 1.5×)"
            if count == args.before:
                files = sorted(sub.iterdir())
                before_lpips = timed(lambda: allpairs_before(files, "lpips"), 1)
                before_all = timed(lambda: allpairs_before(files, FOUR), 1)
                entry.update(before_lpips_s=round(before_lpips, 2), before_all_s=round(before_all, 2))
                line += (f"\n           before this work: --metrics lpips {before_lpips:6.2f} s "
                         f"({before_lpips / lpips_s:.1f}× slower), the four metrics {before_all:6.2f} s "
                         f"({before_all / entry.get('all_s', lpips_s):.1f}× slower than ours with the four; "
                         f"{before_all / lpips_s:.1f}× ours LPIPS-only; target ≥ 20×)")
            report["allpairs"].append(entry)
            print(line)
        if args.per_metric:
            print("\nEach metric alone (decoding and writing included), per pair:")
            report["per_metric"] = {}
            sub = folder / "n40" if (folder / "n40").exists() else folder / f"n{sizes[0]}"
            count = len(list(sub.iterdir()))
            for metric, precision in (("psnr", "float32"), ("ssim", "float32"), ("ssim", "float64"),
                                      ("ms_ssim", "float32"), ("ms_ssim", "float64")):
                opts = ["--metrics", metric, "--precision", precision, *cpu]
                d = timed(lambda: run_cli("dirs", ref_dir, dist_dir, "-o", out, *opts), args.repeats) / n
                a = timed(lambda: run_cli("allpairs", sub, "-o", out, *opts), args.repeats) / (count * (count - 1) // 2)
                report["per_metric"][f"{metric}-{precision}"] = {"dirs_ms": round(1000 * d, 3), "allpairs_ms": round(1000 * a, 3)}
                print(f"  {metric:8s} {precision}: dirs {1000 * d:6.2f} ms/pair, allpairs (N={count}) {1000 * a:6.2f} ms/pair")
    report["load_average_end"] = load_average()
    print(f"\nload average at the end: {report['load_average_end']}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
