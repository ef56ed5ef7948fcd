"""Synthetic BAPPS: 2AFC and JND sets in the official layout, judged by simulated people.

    .venv/bin/python -m bench.bapps_synth OUT [--triplets 10000] [--heldout 2000] [--jnd 1000]
                                               [--people 5] [--seed 0]

writes ``OUT/2afc/train/synth`` (``--triplets``), ``OUT/2afc/val/synth`` (``--heldout``),
``OUT/jnd/val/synth`` (``--jnd``) and ``OUT/synth.json`` (the settings, and each triplet's source
photo and distortions). Training and held-out triplets come from different gallery photos
(:data:`HELDOUT_PHOTOS`), so no reference image is in both.

Patches: 64×64 crops of the gallery photos (:mod:`core.images.samples`) at scales 1, ¾ and ½, stored
as 8-bit PNGs. Each distorted patch gets one distortion drawn uniformly from the registry
(:data:`core.distortions.REGISTRY`) at a random severity between its identity value and 70 % of
the way to the end of its range (:func:`random_params`).

The simulated observer (deliberately not LPIPS): a person's perceived distance is

    D(ref, p) = ½ (1 − SSIM(ref, p)) / 0.25 + ½ GMSD(ref, p) / 0.1

(both on 8-bit luma, the registry's ``ssim`` and ``gmsd``; the divisors put the two terms on a
similar scale). This observer is blind to pure hue changes and sensitive to structure and
gradients, unlike LPIPS-alex v0.1. Each of ``--people`` people then chooses p1 with probability
``sigmoid((D0 − D1)/0.35)``, independently (Bernoulli), and ``judge`` is the fraction who did
(the noise is set so that the human ceiling, :func:`~core.judgments.scores.human_ceiling_2afc`,
is about 0.77, near BAPPS val's);
for JND each of them says "same" with probability ``exp(−D/0.15)``.

Runs single-threaded (``torch.set_num_threads(1)``: per-patch distortions on 64×64 are far
faster without thread hand-offs): 10,000 + 2,000 triplets and 1,000 JND pairs took 34 s.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

import core
from core import distortions
from core.judgments import bapps
from core.images.samples import list_samples, load_sample

PATCH = 64
SCALES = (1.0, 0.75, 0.5)
HELDOUT_PHOTOS = ("coffee", "gravel")
CHUNK = 500


@dataclass(frozen=True)
class Observer:
    """The simulated people: perceived distance from SSIM and GMSD, logistic choice noise."""

    ssim_scale: float = 0.25
    gmsd_scale: float = 0.1
    choice_noise: float = 0.35
    same_scale: float = 0.15

    def distance(self, ref: torch.Tensor, dist: torch.Tensor) -> np.ndarray:
        scores = core.compare(None, ref, dist, metrics="ssim,gmsd", spatial=False, precise=False)
        ssim = scores["ssim"].double().numpy()
        gmsd = scores["gmsd"].double().numpy()
        return 0.5 * (1.0 - ssim) / self.ssim_scale + 0.5 * gmsd / self.gmsd_scale

    def choose_p1(self, d0: np.ndarray, d1: np.ndarray, people: int, rng: np.random.Generator) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(d0 - d1) / self.choice_noise))
        return (rng.random((d0.size, people)) < p[:, None]).mean(axis=1)

    def say_same(self, d: np.ndarray, people: int, rng: np.random.Generator) -> np.ndarray:
        p = np.exp(-d / self.same_scale)
        return (rng.random((d.size, people)) < p[:, None]).mean(axis=1)

    def describe(self) -> str:
        return (f"D = ½(1 − SSIM)/{self.ssim_scale} + ½·GMSD/{self.gmsd_scale} (8-bit luma); each person picks p1 "
                f"with p = sigmoid((D0 − D1)/{self.choice_noise}); JND: 'same' with p = exp(−D/{self.same_scale})")


def random_params(d: distortions.Distortion, rng: np.random.Generator, strength: tuple[float, float] = (0.05, 0.7)):
    """Random parameters for ``d``: the main one between its identity and ``strength`` of the way to
    an end of its range (either end where the identity is inside it); the others anywhere in their
    range but at their identity (which would switch the distortion off)."""
    params = {}
    for i, p in enumerate(d.params):
        if p.kind == "choice":
            params[p.name] = str(rng.choice(p.choices))
            continue
        if p.identity is not None:
            ends = [e for e in (p.min, p.max) if e != p.identity]
            end = ends[int(rng.integers(len(ends)))]
            low, high = strength if i == 0 else (0.2, 1.0)
            value = p.identity + rng.uniform(low, high) * (end - p.identity)
        else:
            value = rng.uniform(p.min, p.max)
        if p.kind == "int":
            value = int(round(value))
            if value == p.identity:
                value += 1 if p.max is not None and p.identity < p.max else -1
        params[p.name] = value
    return params


def _pyramids(keys: Sequence[str]) -> dict[str, list[torch.Tensor]]:
    out = {}
    for key in keys:
        image = load_sample(key)
        levels = []
        for scale in SCALES:
            size = (max(PATCH, round(image.shape[-2] * scale)), max(PATCH, round(image.shape[-1] * scale)))
            levels.append(image if scale == 1.0 else
                          F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1))
        out[key] = levels
    return out


def _to_uint8(batch: torch.Tensor) -> np.ndarray:
    return (batch.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _quantized(batch: torch.Tensor) -> torch.Tensor:
    return (batch.clamp(0, 1) * 255).round() / 255  # what the PNG will hold: the observer judges that


def _crops(pyramids, keys, n, rng) -> tuple[torch.Tensor, list[dict]]:
    patches, meta = [], []
    for _ in range(n):
        key = keys[int(rng.integers(len(keys)))]
        level = int(rng.integers(len(SCALES)))
        image = pyramids[key][level]
        y = int(rng.integers(image.shape[-2] - PATCH + 1))
        x = int(rng.integers(image.shape[-1] - PATCH + 1))
        patches.append(image[0, :, y:y + PATCH, x:x + PATCH])
        meta.append({"photo": key, "scale": SCALES[level], "y": y, "x": x})
    return _quantized(torch.stack(patches)), meta


def _distort(ref: torch.Tensor, rng: np.random.Generator, strength: tuple[float, float]) -> tuple[torch.Tensor, list]:
    names = list(distortions.REGISTRY)
    out, applied = [], []
    for i in range(ref.shape[0]):
        d = distortions.REGISTRY[names[int(rng.integers(len(names)))]]
        params = random_params(d, rng, strength)
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        out.append(d(ref[i:i + 1], rng=gen, **params)[0])
        applied.append({"name": d.name, **params})
    return _quantized(torch.stack(out)), applied


def make_2afc(folder: str | Path, triplets: int, *, photos: Sequence[str], seed: int, people: int = 5,
              observer: Observer = Observer()) -> list[dict]:
    """Write ``triplets`` judged triplets from ``photos`` to ``folder`` (BAPPS 2AFC layout);
    returns each triplet's source photo, crop and distortions."""
    rng = np.random.default_rng(seed)
    pyramids = _pyramids(photos)
    records = []
    for start in range(0, triplets, CHUNK):
        n = min(CHUNK, triplets - start)
        ref, meta = _crops(pyramids, list(photos), n, rng)
        p0, dist0 = _distort(ref, rng, (0.05, 0.7))
        p1, dist1 = _distort(ref, rng, (0.05, 0.7))
        d0, d1 = observer.distance(ref, p0), observer.distance(ref, p1)
        judge = observer.choose_p1(d0, d1, people, rng)
        bapps.write_2afc(folder, _to_uint8(ref), _to_uint8(p0), _to_uint8(p1), judge, start=start)
        records += [{**m, "p0": a, "p1": b} for m, a, b in zip(meta, dist0, dist1)]
    return records


def make_jnd(folder: str | Path, pairs: int, *, photos: Sequence[str], seed: int, people: int = 3,
             observer: Observer = Observer()) -> list[dict]:
    """Write ``pairs`` JND pairs (a patch and a mildly distorted copy) to ``folder``."""
    rng = np.random.default_rng(seed)
    pyramids = _pyramids(photos)
    records = []
    for start in range(0, pairs, CHUNK):
        n = min(CHUNK, pairs - start)
        ref, meta = _crops(pyramids, list(photos), n, rng)
        dist, applied = _distort(ref, rng, (0.0, 0.25))
        same = observer.say_same(observer.distance(ref, dist), people, rng)
        bapps.write_jnd(folder, _to_uint8(ref), _to_uint8(dist), same, start=start)
        records += [{**m, "p1": a} for m, a in zip(meta, applied)]
    return records


def generate(out: str | Path, *, triplets: int, heldout: int, jnd: int = 0, seed: int = 0, people: int = 5,
             heldout_photos: Sequence[str] = HELDOUT_PHOTOS) -> dict:
    """The whole synthetic data set under ``out``; returns (and writes to ``out/synth.json``) its record."""
    out = Path(out)
    keys = [s.key for s in list_samples()]
    held_keys = [k for k in keys if k in heldout_photos]
    train_keys = [k for k in keys if k not in heldout_photos]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        record = {"seed": seed, "people": people, "observer": Observer().describe(),
                  "train_photos": train_keys, "heldout_photos": held_keys, "patch": PATCH, "scales": list(SCALES)}
        record["train"] = make_2afc(out / "2afc" / "train" / "synth", triplets, photos=train_keys, seed=seed,
                                    people=people)
        if heldout:
            record["val"] = make_2afc(out / "2afc" / "val" / "synth", heldout, photos=held_keys, seed=seed + 1,
                                      people=people)
        if jnd:
            record["jnd"] = make_jnd(out / "jnd" / "val" / "synth", jnd, photos=held_keys, seed=seed + 2)
        record["seconds"] = round(time.perf_counter() - start, 2)
    finally:
        torch.set_num_threads(threads)
    (out / "synth.json").write_text(json.dumps(record, indent=1))
    return record


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bapps_synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (the root of a BAPPS-like tree)")
    parser.add_argument("--triplets", type=int, default=10_000, help="training triplets (default 10000)")
    parser.add_argument("--heldout", type=int, default=2_000, help="held-out triplets from other photos (default 2000)")
    parser.add_argument("--jnd", type=int, default=1_000, help="JND pairs (default 1000)")
    parser.add_argument("--people", type=int, default=5, help="simulated people per triplet (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    record = generate(args.out, triplets=args.triplets, heldout=args.heldout, jnd=args.jnd, seed=args.seed,
                      people=args.people)
    print(f"wrote {args.triplets} training + {args.heldout} held-out triplets and {args.jnd} JND pairs to "
          f"{args.out} in {record['seconds']:.1f} s")


if __name__ == "__main__":
    main()
