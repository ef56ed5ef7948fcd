"""Benchmark: the drop-in ``core.LPIPS`` against the official ``lpips.LPIPS``, called the same way.

    .venv/bin/python -m bench.dropin [--repeats 7] [--threads 2]

Both models hold the same weights (the official one built with ``pnet_rand=True`` and our trunk
loaded strictly into it), run under ``torch.no_grad()`` on the CPU, in one process; calls are
interleaved (ours, official, ours, …) after one warm-up each, and the median is reported. Cases:

* **cold pair** — ``model(in0, in1)`` on two new 1×3×S×S images in [-1, 1], alex and vgg at 256²
  and 512² (target: ours ≥ 1.2× the official's pairs per second);
* **batch of 16 vs a broadcast reference** — ``model(ref.expand(16, …), dists)`` at alex 256², how
  people score many variants of one image with these packages (target ≥ 2× images per second);
* **floor** — two backbone passes (the trunk alone, as our model runs it) for the cold pair.

Parity: the largest |ours − official| of every case must be ≤ 1e-5 (``PASS``); the script
returns 1 otherwise. A benchmark prints figures; nothing here is a pass/fail test of speed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
import warnings

import torch

from core.lpips import weights
from core.lpips.engine import LPIPS

CASES = (("alex", 256), ("alex", 512), ("vgg", 256), ("vgg", 512))


def official_model(net: str, state: dict[str, torch.Tensor]):
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=net, version="0.1", pnet_rand=True, verbose=False)
    names = {re.sub(r"^slice\d+\.", "features.", k): k for k in model.net.state_dict()}
    model.net.load_state_dict({names[k]: v for k, v in state.items() if k in names}, strict=True)
    return model.eval()


def images(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def interleaved(calls: dict, repeats: int, make_inputs) -> tuple[dict[str, float], float]:
    """Median ms per callable (fresh inputs each repeat, the same for every callable) and the
    largest |ours − official| over the repeats."""
    times = {name: [] for name in calls}
    worst = 0.0
    with torch.no_grad():
        for name, call in calls.items():  # warm-up
            call(*make_inputs(-1))
        for r in range(repeats):
            inputs = make_inputs(r)
            out = {}
            for name, call in calls.items():
                start = time.perf_counter()
                out[name] = call(*inputs)
                times[name].append((time.perf_counter() - start) * 1000)
            if "ours" in out and "official" in out:
                worst = max(worst, (out["ours"] - out["official"]).abs().max().item())
    return {name: statistics.median(v) for name, v in times.items()}, worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"The drop-in vs lpips==0.1.4, CPU, {args.threads} PyTorch threads, median of {args.repeats} interleaved "
          f"calls (load {os.getloadavg()[0]:.1f})")
    print(f"{'case':<34}{'ours ms':>10}{'official':>10}{'speed-up':>10}{'floor':>9}  parity")
    failed = False
    models = {}
    for net, size in CASES:
        if net not in models:
            state = weights.load_backbone(net)
            models[net] = (LPIPS(net=net), official_model(net, state))
        ours, official = models[net]
        trunk = ours.network

        def floor(a, b, trunk=trunk):
            trunk.taps(a)
            return trunk.taps(b)

        ms, worst = interleaved({"ours": ours, "official": official, "floor": floor}, args.repeats,
                                lambda r, size=size: (images(1, size, 2 * r + 10), images(1, size, 2 * r + 11)))
        failed |= worst > 1e-5
        print(f"{f'{net} {size}² cold pair':<34}{ms['ours']:>10.1f}{ms['official']:>10.1f}"
              f"{ms['official'] / ms['ours']:>9.2f}×{ms['ours'] / ms['floor']:>7.2f}×2p  "
              f"{'PASS' if worst <= 1e-5 else 'FAIL'} ({worst:.1e})")
    ours, official = models["alex"]

    def batch_inputs(r):
        ref = images(1, 256, 100 + r)
        return ref.expand(16, -1, -1, -1), images(16, 256, 200 + r)

    ms, worst = interleaved({"ours": ours, "official": official}, args.repeats, batch_inputs)
    failed |= worst > 1e-5
    print(f"{'alex 256² 16 vs broadcast ref /img':<34}{ms['ours'] / 16:>10.1f}{ms['official'] / 16:>10.1f}"
          f"{ms['official'] / ms['ours']:>9.2f}×{'':>9}  {'PASS' if worst <= 1e-5 else 'FAIL'} ({worst:.1e})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
