"""Fitting LPIPS's heads: our fast path (φ once, then the official objective on φ) against the
official ``lpips.trainer.Trainer``, on the same synthetic 2AFC data.

    .venv/bin/python -m bench.fit_heads [--data DIR] [--triplets 10000] [--heldout 2000]
        [--seeds 0 1 2] [--nepoch 5] [--nepoch-decay 5] [--official-nepoch 1]
        [--official-nepoch-decay 1] [--threads 2] [--json PATH]

1. Data: ``DIR`` (default ``/tmp/lpips-explorer-bapps-synth``) is reused when it holds the asked
   numbers of triplets, else written by :mod:`bench.bapps_synth` (not timed: it is the data set).
2. Ours: φ of every training and held-out triplet (reading the PNGs included; timed apart, since
   the official run's time covers training only), then
   :func:`core.judgments.fit.fit_heads` from the official "scratch" start for
   ``nepoch + nepoch_decay`` epochs (the official defaults: 5 + 5), once per seed.
3. Official: ``lpips.Trainer(is_train=True)`` (AlexNet, trunk frozen, the project's cached trunk
   weights loaded into it, since it cannot download them offline), fed batches of 50 from the
   same triplets by a shuffling ``DataLoader``, with ``train.py``'s loop and learning-rate
   decay, for ``official-nepoch + official-nepoch-decay`` epochs (default 1 + 1: its epochs are
   slow). The images are decoded once beforehand and kept in memory, which only helps it.
   Its per-epoch time is measured; the time of a full ``nepoch + nepoch_decay`` run is that
   times the number of epochs, printed as an extrapolation.
4. Held-out 2AFC (:func:`core.judgments.scores.score_2afc`) on the held-out photos for the
   published v0.1 heads, uniform heads (the uncalibrated baseline), ours (mean, spread and range
   over the seeds) and the official Trainer's, whose heads are scored as ``w · φ`` (equal to its
   forward pass in eval mode: tests/test_judgments_features.py). Ours is also fitted with the
   official run's short schedule, so the two are compared at equal epochs, from the same draw of
   the official init; and once from the v0.1 heads.
5. Paired timing: because other users of a shared machine change absolute times from minute to
   minute, ``--paired-rounds`` alternates slices of ``--paired-size`` triplets between our
   features and one official epoch's steps on the same slice, and estimates the full run's
   speed-up from each round (our measured fit time added per triplet-epoch).
6. The seed-0 heads are saved with :func:`core.judgments.heads.save_heads` to
   ``DIR/fitted_alex.safetensors`` and loaded back into an Engine; with a JND set in ``DIR``,
   its mAP is printed for v0.1, uniform and fitted heads.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from core.judgments import bapps, features, fit, heads, scores
from core.lpips import Engine

DEFAULT_DATA = Path("/tmp/lpips-explorer-bapps-synth")


def _dataset(root: Path, triplets: int, heldout: int, seed: int) -> tuple[bapps.TwoAfcSet, bapps.TwoAfcSet, float]:
    train_dir, val_dir = root / "2afc" / "train" / "synth", root / "2afc" / "val" / "synth"
    try:
        train, val = bapps.read_2afc(train_dir), bapps.read_2afc(val_dir)
        if (len(train), len(val)) == (triplets, heldout):
            return train, val, 0.0
    except bapps.BappsError:
        pass
    from bench import bapps_synth

    start = time.perf_counter()
    bapps_synth.generate(root, triplets=triplets, heldout=heldout, jnd=0, seed=seed)
    return bapps.read_2afc(train_dir), bapps.read_2afc(val_dir), time.perf_counter() - start


def _heldout(w: torch.Tensor, phi0: torch.Tensor, phi1: torch.Tensor, judge: np.ndarray) -> float:
    return scores.score_2afc(features.distances(phi0, w).numpy(), features.distances(phi1, w).numpy(), judge)


def _official_trainer():
    import lpips

    from core.lpips import weights

    trainer = lpips.Trainer()
    trainer.initialize(model="lpips", net="alex", use_gpu=False, is_train=True, pnet_rand=True)
    names = {re.sub(r"^slice\d+\.", "features.", k): k for k in trainer.net.net.state_dict()}
    trainer.net.net.load_state_dict({names[k]: v for k, v in weights.load_backbone("alex").items()}, strict=True)
    return trainer


class _Triplets(torch.utils.data.Dataset):
    """The official TwoAFCDataset's items ([-1, 1] patches, judge 1×1×1), from memory."""

    def __init__(self, ref: torch.Tensor, p0: torch.Tensor, p1: torch.Tensor, judge: np.ndarray) -> None:
        self.ref, self.p0, self.p1 = ref * 2 - 1, p0 * 2 - 1, p1 * 2 - 1
        self.judge = torch.tensor(judge, dtype=torch.float32).view(-1, 1, 1, 1)

    def __len__(self) -> int:
        return self.ref.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {"ref": self.ref[i], "p0": self.p0[i], "p1": self.p1[i], "judge": self.judge[i]}


def run_official(data: bapps.TwoAfcSet, nepoch: int, nepoch_decay: int, seed: int,
                 same_start: bool = True) -> tuple[torch.Tensor, list[float], list[float]]:
    """The official Trainer for ``nepoch + nepoch_decay`` epochs (train.py's loop); its heads and
    each epoch's wall-clock and CPU seconds. ``same_start`` starts it from :func:`fit_heads`'s initial heads and
    ranking net for ``seed`` (both are draws of the official init)."""
    import contextlib
    import io

    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):  # the official code prints as it goes
        trainer = _official_trainer()
    if same_start:
        # The same draw of the official init as ours for this seed, so that the comparison
        # measures the training, not two different random starts.
        start = torch.split(fit.initial_heads("alex", "scratch", seed), list(features.CHANNELS["alex"]))
        for lin, part in zip(trainer.net.lins, start):
            lin.model[-1].weight.data = part.view(1, -1, 1, 1).clone()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            trainer.rankLoss.net.load_state_dict(fit.RankNet().state_dict())
    loader = torch.utils.data.DataLoader(_Triplets(*data.images(), data.judge), batch_size=50, shuffle=True,
                                         num_workers=0)
    seconds, cpu_seconds = [], []
    for epoch in range(1, nepoch + nepoch_decay + 1):
        start, cpu = time.perf_counter(), time.process_time()
        for batch in loader:
            trainer.set_input(batch)
            trainer.optimize_parameters()
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu)
        if epoch > nepoch:
            with contextlib.redirect_stdout(io.StringIO()):
                trainer.update_learning_rate(nepoch_decay)
    w = torch.cat([lin.model[-1].weight.detach().reshape(-1) for lin in trainer.net.lins])
    return w, seconds, cpu_seconds


def paired_timing(engine: Engine, data: bapps.TwoAfcSet, rounds: int, size: int) -> list[tuple[float, float]]:
    """Alternating slices of ``size`` triplets: our features (PNGs read, one pass per patch), then
    one official epoch's worth of steps on the same triplets; (ours, official) seconds per round.

    Back to back, both sides see the same load from other users of the machine, so the ratio
    holds even when absolute times drift."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        trainer = _official_trainer()
    times = []
    for r in range(rounds):
        part = data.subset(np.arange(r * size, (r + 1) * size) % len(data))
        start = time.perf_counter()
        features.set_features(engine, part)
        ours = time.perf_counter() - start
        loader = torch.utils.data.DataLoader(_Triplets(*part.images(), part.judge), batch_size=50, shuffle=True)
        start = time.perf_counter()
        for batch in loader:
            trainer.set_input(batch)
            trainer.optimize_parameters()
        times.append((ours, time.perf_counter() - start))
    return times


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.fit_heads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--triplets", type=int, default=10_000)
    parser.add_argument("--heldout", type=int, default=2_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--nepoch", type=int, default=5)
    parser.add_argument("--nepoch-decay", type=int, default=5)
    parser.add_argument("--official-nepoch", type=int, default=1)
    parser.add_argument("--official-nepoch-decay", type=int, default=1)
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument("--paired-rounds", type=int, default=3, help="alternating timing rounds (0: none)")
    parser.add_argument("--paired-size", type=int, default=1000, help="triplets per timing round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out: dict = {"threads": args.threads, "triplets": args.triplets, "heldout": args.heldout}

    train, val, made = _dataset(args.data, args.triplets, args.heldout, seed=0)
    if made:
        print(f"data: wrote {args.triplets} + {args.heldout} triplets to {args.data} in {made:.1f} s (not timed below)")
    print(f"data: {len(train)} training triplets, {len(val)} held-out (other photos); human ceiling on held-out "
          f"{scores.human_ceiling_2afc(val.judge):.3f}")

    engine = Engine("alex", "0.1", device="cpu")
    start, cpu = time.perf_counter(), time.process_time()
    phi0, phi1 = features.set_features(engine, train)
    feature_s, feature_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    val0, val1 = features.set_features(engine, val)
    heldout_feature_s = time.perf_counter() - start
    print(f"ours: features of the training set (read {3 * len(train)} PNGs, one backbone pass each): "
          f"{feature_s:.1f} s (CPU time {feature_cpu:.1f} s); of the held-out set: {heldout_feature_s:.1f} s")

    epochs = args.nepoch + args.nepoch_decay
    fits = []
    fit_cpu = 0.0
    for seed in args.seeds:
        start, cpu = time.perf_counter(), time.process_time()
        result = fit.fit_heads(phi0, phi1, train.judge, init="scratch", heldout=(val0, val1, val.judge),
                               nepoch=args.nepoch, nepoch_decay=args.nepoch_decay, seed=seed)
        fits.append((time.perf_counter() - start, result))
        fit_cpu = fit_cpu or time.process_time() - cpu  # the first seed's, as the total below
    fit_s = [s for s, _ in fits]
    ours = [r.heldout_2afc for _, r in fits]
    total = feature_s + fit_s[0]
    print(f"ours: fit ({epochs} epochs, {len(train)} triplets, batch 50): {fit_s[0]:.1f} s "
          f"(seeds: {', '.join(f'{s:.1f}' for s in fit_s)} s)")
    print(f"ours: training total (training-set features + one fit): {total:.1f} s; with the held-out "
          f"features: {total + heldout_feature_s:.1f} s")

    start = time.perf_counter()
    from_v01 = fit.fit_heads(phi0, phi1, train.judge, init="v0.1", heldout=(val0, val1, val.judge),
                             nepoch=args.nepoch, nepoch_decay=args.nepoch_decay, seed=args.seeds[0])
    print(f"ours: the same fit started from the v0.1 heads: {time.perf_counter() - start:.1f} s")
    saved = heads.save_heads(args.data / "fitted_alex.safetensors", fits[0][1].heads, net="alex", origin="scratch",
                             data=str(train.folder), heldout_2afc=ours[0],
                             extra={"seed": args.seeds[0], "epochs": epochs, "heldout_data": str(val.folder)})
    engine_fitted = heads.engine_with_heads(heads.load_heads(saved, "alex"), "alex", device="cpu")
    check = engine_fitted.distance(*val.images(0, 8)[:2]).double()
    w_fitted = features.heads_vector(fits[0][1].heads, "alex")
    gap = float((check - features.distances(val0[:8], w_fitted)).abs().max())
    print(f"ours: heads saved to {saved}; loaded into an Engine, its distances equal w · φ to {gap:.1e}")

    v01 = fit.initial_heads("alex", "v0.1")
    ones = torch.ones(features.feature_size("alex"))
    table = {"v0.1 heads": _heldout(v01, val0, val1, val.judge), "uniform heads (baseline)":
             _heldout(ones, val0, val1, val.judge)}
    table[f"ours from v0.1 heads ({epochs} epochs, seed {args.seeds[0]})"] = from_v01.heldout_2afc
    spread = statistics.stdev(ours) if len(ours) > 1 else 0.0
    out.update(feature_s=feature_s, feature_cpu_s=feature_cpu, heldout_feature_s=heldout_feature_s, fit_s=fit_s, ours_total_s=total, ours_heldout=ours,
               v01_heldout=table["v0.1 heads"], uniform_heldout=table["uniform heads (baseline)"],
               ours_from_v01_heldout=from_v01.heldout_2afc)

    if not args.skip_official:
        official_epochs = args.official_nepoch + args.official_nepoch_decay
        w_official, seconds, cpu_seconds = run_official(train, args.official_nepoch, args.official_nepoch_decay,
                                                        args.seeds[0])
        per_epoch = statistics.mean(seconds)
        cpu_per_epoch = statistics.mean(cpu_seconds)
        official_heldout = _heldout(w_official, val0, val1, val.judge)
        short = [fit.fit_heads(phi0, phi1, train.judge, init="scratch", nepoch=args.official_nepoch,
                               nepoch_decay=args.official_nepoch_decay, seed=s,
                               heldout=(val0, val1, val.judge)).heldout_2afc for s in args.seeds]
        full_estimate = per_epoch * epochs
        print(f"official: Trainer, {official_epochs} epochs measured: {sum(seconds):.1f} s "
              f"({per_epoch:.1f} s per epoch; epochs {', '.join(f'{s:.1f}' for s in seconds)} s; "
              f"CPU time {cpu_per_epoch:.1f} s per epoch)")
        print(f"official: a {epochs}-epoch run, EXTRAPOLATED as {epochs} × {per_epoch:.1f} s: {full_estimate:.0f} s")
        print(f"speed: ours {total:.1f} s for {epochs} epochs vs official {full_estimate:.0f} s (extrapolated): "
              f"{full_estimate / total:.0f}× faster; at {official_epochs} epochs, measured on both sides: ours "
              f"{feature_s + statistics.mean(fit_s) * official_epochs / epochs:.1f} s vs {sum(seconds):.1f} s")
        table[f"official Trainer ({official_epochs} epochs)"] = official_heldout
        table[f"ours ({official_epochs} epochs, mean of {len(short)} seeds)"] = statistics.mean(short)
        ours_cpu = feature_cpu + fit_cpu
        print(f"speed in CPU time (less sensitive to other users of the machine): ours {ours_cpu:.1f} s vs "
              f"official {cpu_per_epoch * epochs:.0f} s (extrapolated): {cpu_per_epoch * epochs / ours_cpu:.0f}×")
        out.update(official_epoch_s=seconds, official_epoch_cpu_s=cpu_seconds, ours_cpu_s=ours_cpu, official_full_estimate_s=full_estimate,
                   official_heldout=official_heldout, ours_short_heldout=short,
                   speedup=full_estimate / total)
    if not args.skip_official and args.paired_rounds:
        rounds = paired_timing(engine, train, args.paired_rounds, args.paired_size)
        fit_per_triplet_epoch = fit_s[0] / (len(train) * epochs)
        ratios = [epochs * theirs / (ours_s + fit_per_triplet_epoch * args.paired_size * epochs)
                  for ours_s, theirs in rounds]
        print(f"paired timing ({len(rounds)} alternating rounds of {args.paired_size} triplets; ours = features, "
              f"official = one epoch of steps): " + "; ".join(f"{a:.1f} s vs {b:.1f} s" for a, b in rounds))
        print(f"paired estimate of a full {epochs}-epoch run's speed-up (our fit time per triplet-epoch from "
              f"above): median {statistics.median(ratios):.0f}× (rounds: {', '.join(f'{r:.0f}' for r in ratios)})")
        out.update(paired_rounds=rounds, paired_speedups=ratios)
    print("held-out 2AFC (held-out photos):")
    for name, value in table.items():
        print(f"  {name:<42} {100 * value:6.2f}")
    print(f"  {f'ours ({epochs} epochs, {len(ours)} seeds)':<42} {100 * statistics.mean(ours):6.2f} "
          f"± {100 * spread:.2f} (min {100 * min(ours):.2f}, max {100 * max(ours):.2f})")
    jnd_dir = args.data / "jnd" / "val" / "synth"
    if jnd_dir.is_dir():
        jnd = bapps.read_jnd(jnd_dir)
        phi = features.jnd_features(engine, jnd)
        rows = {"v0.1": v01, "uniform": ones, "ours": w_fitted}
        values = {k: scores.score_jnd(features.distances(phi, w).numpy(), jnd.same) for k, w in rows.items()}
        out["jnd"] = values
        print(f"JND mAP ({len(jnd)} pairs, held-out photos): " + ", ".join(f"{k} {100 * v:.2f}" for k, v in values.items()))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
