"""A tile's pairs from per-image states, as matrix products and compiled passes.

``allpairs`` (:mod:`core.folders.scoring`) computes each image's state once (LPIPS's normalized
features scaled by √w, PSNR's 8-bit levels, SSIM's filtered moments at each scale); this module
turns two lists of states into every pair's values: LPIPS and PSNR as float64 Gram matrices
(exact for PSNR's integers; for LPIPS nothing is lost that the float32 features hold), SSIM and
MS-SSIM by filtering only the cross moment E[xy] per pair and scale. Each function returns the
values in the order of its inputs; which pairs are wanted is the caller's business.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import torch

from ..errors import InvalidArgumentError

from .states import ImageState, ScoringSpec

__all__ = ["head_roots", "lpips_matrix", "psnr_matrix", "ssim_pairs"]


def head_roots(engine) -> list[torch.Tensor]:
    """√w per channel of each layer's head (ones for the uncalibrated baseline), float64."""
    network = engine.network
    roots = []
    for k, channels in enumerate(_channels(network)):
        if network.lpips:
            w = network.head_weights[k].detach().double().reshape(-1)
            if bool((w < 0).any()):  # the official heads are trained non-negative; anything else is not LPIPS
                raise InvalidArgumentError(f"LPIPS head {k} has negative channel weights; reinstall lpips==0.1.4.")
            roots.append(w.sqrt().to(network.shift.device))
        else:
            roots.append(torch.ones(channels, dtype=torch.float64, device=network.shift.device))
    return roots


def _channels(network) -> tuple[int, ...]:
    from ..lpips.nets import CHANNELS

    return CHANNELS[network.net]


def lpips_matrix(engine, A: list[ImageState], B: list[ImageState], wanted: torch.Tensor) -> torch.Tensor:
    """Each layer's LPIPS for every (a, b): mean over space of Σ_c w_c (f_a − f_b)², expanded as
    ‖g_a‖² + ‖g_b‖² − 2 g_a·g_b with g = √w f, a matrix product, in float64 so that the
    expansion loses nothing that the float32 features hold. ``wanted`` (a × b, bool) marks the
    pairs that are used."""
    out = []
    same = A is B
    for k in range(len(A[0].lpips)):
        ga = torch.stack([s.lpips[k] for s in A])
        gb = ga if same else torch.stack([s.lpips[k] for s in B])
        sq_a = torch.stack([s.lpips_sq[k] for s in A])
        sq_b = sq_a if same else torch.stack([s.lpips_sq[k] for s in B])
        hw = A[0].lpips_hw[k]
        value = (sq_a[:, None] + sq_b[None, :] - 2.0 * (ga @ gb.T)).clamp_(min=0.0) / hw
        # Below the expansion's rounding (about D·ε·‖g‖² ≈ 1e-10) a value cannot be told from
        # zero: those pairs (identical images, in practice) are summed directly, exactly.
        for a, b in ((value < 1e-9) & wanted.to(value.device)).nonzero().tolist():
            value[a, b] = (ga[a] - gb[b]).square().sum() / hw
        out.append(value.float().cpu())
    return torch.stack(out, dim=-1)


def psnr_matrix(A: list[ImageState], B: list[ImageState]) -> torch.Tensor:
    """PSNR for every (a, b) from the levels' Gram matrix: every term is an integer below 2⁵³,
    so float64 gives exactly the sum of squared differences that PSNR's own loop sums."""
    from ..metrics._levels import PEAK

    dtype = torch.float32 if A[0].levels.device.type == "mps" else torch.float64  # exact integers
    la = torch.stack([s.levels for s in A]).to(dtype)
    lb = la if B is A else torch.stack([s.levels for s in B]).to(dtype)
    sq_a = (la * la).sum(dim=1)
    sq_b = sq_a if B is A else (lb * lb).sum(dim=1)
    sse = sq_a[:, None] + sq_b[None, :] - 2.0 * (la @ lb.T)
    mse = sse / la.shape[1]
    values = torch.where(mse > 0, 10.0 * torch.log10(PEAK**2 / mse), torch.full_like(mse, math.inf))
    return values.float().cpu()


def _ssim_side(states: list[ImageState], scale: int, shifted: bool = True) -> tuple[torch.Tensor | None, ...]:
    """One side of a tile at one scale: each image's centred planes, filtered mean, variance,
    and mean (shifted back) with its square: everything of SSIM that is not a cross term
    (the compiled kernel shifts the means itself: ``shifted=False`` leaves those two None)."""
    planes = torch.cat([s.moments[scale].planes for s in states])
    mu = torch.cat([s.moments[scale].mu for s in states])
    var = torch.cat([s.moments[scale].e_xx for s in states]).sub_(mu * mu)
    if not shifted:
        return planes, mu, var, None, None
    mean = mu + _mid_grey()
    return planes, mu, var, mean, mean * mean


def _mid_grey() -> float:
    from ..metrics.ssim import _MID_GREY

    return _MID_GREY


def ssim_pairs(spec: ScoringSpec, A: list[ImageState], B: list[ImageState], diagonal: bool,
                chunk: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and MS-SSIM of the tile's pairs in :func:`pairs_of_tile` order (NaN where not
    computed). Per pair only E[xy] is filtered; each image's E[x] and E[x²] were filtered once
    (its state), and its variance and mean terms are formed once per tile. The arithmetic is
    :func:`core.metrics.ssim.moments_maps`'s, operation for operation (the same values)."""
    from ..metrics import _ssim_kernels
    from ..metrics.ms_ssim import MS_SSIM_WEIGHTS
    from ..metrics.ssim import SSIM_K1, SSIM_K2, _cpu_taps, _filter_valid, _on_kernels
    from ..metrics._levels import PEAK

    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    scales = len(A[0].moments)
    want_ms = "ms_ssim" in spec.metrics and scales == len(MS_SSIM_WEIGHTS)
    used = scales if want_ms else 1
    compiled = _on_kernels(A[0].moments[0].planes)
    side_a = [_ssim_side(A, k, not compiled) for k in range(used)]
    side_b = side_a if diagonal else [_ssim_side(B, k, not compiled) for k in range(used)]
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64, device=side_a[0][0].device)

    def pair_chunk(a: int, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """SSIM (and MS-SSIM) of image a of A against images start..stop of B."""
        terms, ssim_values = [], None
        for k in range(used):
            x, mu_x, var_x, sx, sxx = (None if t is None else t[a:a + 1] for t in side_a[k])
            y, mu_y, var_y, sy, syy = (None if t is None else t[start:stop] for t in side_b[k])
            if compiled:  # one compiled pass per pair and scale, no map stored
                last = k == len(MS_SSIM_WEIGHTS) - 1
                ssim_mean, cs_mean = _ssim_kernels.pair_means(x, mu_x, var_x, y, mu_y, var_y, _cpu_taps(x.dtype),
                                                              c1, c2, _mid_grey(), want_ssim=k == 0 or last,
                                                              want_cs=want_ms and not last)
            else:
                cov = _filter_valid(x * y).sub_(mu_x * mu_y)
                cs_map = cov.mul_(2.0).add_(c2).div_((var_x + var_y).add_(c2))
                ssim_map = (sx * sy).mul_(2.0).add_(c1).div_((sxx + syy).add_(c1)).mul_(cs_map)
                ssim_mean, cs_mean = ssim_map.mean(dim=(2, 3)).double(), cs_map.mean(dim=(2, 3)).double()
            if k == 0:
                ssim_values = ssim_mean.mean(dim=1).float().cpu()
            if want_ms:
                terms.append(ssim_mean if k == len(MS_SSIM_WEIGHTS) - 1 else cs_mean)
        if not want_ms:
            return ssim_values, None
        per_channel = torch.stack(terms).clamp(min=0.0).pow(weights.view(-1, 1, 1)).prod(dim=0)
        return ssim_values, per_channel.mean(dim=1).float().cpu()

    jobs = [(a, start, min(start + chunk, len(B))) for a in range(len(A))
            for start in range(a + 1 if diagonal else 0, len(B), chunk)]
    if compiled and len(jobs) > 1:
        # The compiled kernel runs on one core and releases the GIL: spread the chunks over the
        # cores PyTorch would use.
        with ThreadPoolExecutor(max(1, torch.get_num_threads()), thread_name_prefix="ssim") as pool:
            results = list(pool.map(lambda job: pair_chunk(*job), jobs))
    else:
        results = [pair_chunk(*job) for job in jobs]
    ssim_parts = [r[0] for r in results]
    ms_parts = [r[1] for r in results if r[1] is not None]
    ssim_values = torch.cat(ssim_parts) if ssim_parts else torch.empty(0)
    ms_values = torch.cat(ms_parts) if ms_parts else torch.full_like(ssim_values, math.nan)
    return ssim_values, ms_values
