"""Compiled CPU kernels for the SSIM family: separable 'valid' filtering and the fused SSIM map.

Why compiled: in PyTorch each of the 11 taps of the separable Gaussian, in each direction, is a
pass over the whole float64 image, and the map's arithmetic is a dozen more: about 12 ms per
512² luma on this project's 2-core CPU, half a backbone pass, memory-bound. Numba (LLVM, no
system compiler needed) runs the same sums in one pass per direction, vectorized: about 4× less
time, on one thread (``bench/move.py`` prints the stage). The sums are taken in the same order
as the PyTorch path (tap 0 first, rows then columns), so the two agree to float64 rounding
(≤ 1e-15 on maps, checked in ``tests/test_metrics_ssim.py``).

The kernels run on one thread and release the GIL: the app scores many sessions at once on
threads, and a parallel kernel per call would only add contention there. Accelerators keep the
PyTorch path (``core.metrics.ssim``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numba import njit

__all__ = ["filter_valid", "levels", "luma", "pair_means", "ssim_maps"]

_JIT = dict(nogil=True, cache=True, error_model="numpy", boundscheck=False)


@njit(**_JIT)
def _along_row(src, taps, dst):  # pragma: no cover - compiled
    """dst[j] = Σ_k taps[k] · src[j + k], tap 0 first (one row, 'valid')."""
    dst[:] = 0
    for k in range(taps.shape[0]):
        tk = taps[k]
        for j in range(dst.shape[0]):
            dst[j] += tk * src[j + k]


@njit(**_JIT)
def _down_rows(rows, i, taps, dst):  # pragma: no cover - compiled
    """dst[j] = Σ_k taps[k] · rows[i + k, j], tap 0 first (one output row of a column pass)."""
    dst[:] = 0
    for k in range(taps.shape[0]):
        tk = taps[k]
        src = rows[i + k]
        for j in range(dst.shape[0]):
            dst[j] += tk * src[j]


@njit(**_JIT)
def _filter_valid(x, taps, out):  # pragma: no cover - compiled
    """out[p] = taps ⊗ taps 'valid' correlation of x[p] (P×H×W → P×h×w), rows first."""
    planes, height, width = x.shape
    k_len = taps.shape[0]
    h, w = height - k_len + 1, width - k_len + 1
    rows = np.empty((height, w), dtype=x.dtype)
    for p in range(planes):
        for i in range(height):
            _along_row(x[p, i], taps, rows[i])
        for i in range(h):
            _down_rows(rows, i, taps, out[p, i])


@njit(**_JIT)
def _ssim_maps(x, y, mu_x, e_xx, taps, c1, c2, mid, ssim_out, cs_out):  # pragma: no cover - compiled
    """SSIM and contrast-structure maps of y against the reference's moments, fused.

    x: Nx×C×H×W reference levels minus ``mid``; y: Ny×C×H×W distorted levels (0..255);
    mu_x, e_xx: Nx×C×h×w the reference's filtered mean and second moment (of x);
    outputs N×C×h×w with N = max(Nx, Ny) (a batch of 1 on either side is broadcast).
    """
    n_out, channels, h, w = ssim_out.shape
    height, width = y.shape[2], y.shape[3]
    one_x, one_y = x.shape[0] == 1, y.shape[0] == 1
    rows = np.empty((3, height, w), dtype=y.dtype)
    yc = np.empty(width, dtype=y.dtype)
    y2 = np.empty(width, dtype=y.dtype)
    xy = np.empty(width, dtype=y.dtype)
    a = np.empty(w, dtype=y.dtype)
    b = np.empty(w, dtype=y.dtype)
    d = np.empty(w, dtype=y.dtype)
    for n in range(n_out):
        nx = 0 if one_x else n
        ny = 0 if one_y else n
        for c in range(channels):
            # Rows: the three moments that depend on y (its mean, E[y²], E[xy]).
            for i in range(height):
                xr, yr = x[nx, c, i], y[ny, c, i]
                for j in range(width):
                    v = yr[j] - mid
                    yc[j] = v
                    y2[j] = v * v
                    xy[j] = xr[j] * v
                _along_row(yc, taps, rows[0, i])
                _along_row(y2, taps, rows[1, i])
                _along_row(xy, taps, rows[2, i])
            # Columns, then the map, one output row at a time.
            for i in range(h):
                _down_rows(rows[0], i, taps, a)
                _down_rows(rows[1], i, taps, b)
                _down_rows(rows[2], i, taps, d)
                mx_row, exx_row = mu_x[nx, c, i], e_xx[nx, c, i]
                so, co = ssim_out[n, c, i], cs_out[n, c, i]
                for j in range(w):
                    mx = mx_row[j]
                    my = a[j]
                    var_x = exx_row[j] - mx * mx
                    var_y = b[j] - my * my
                    cov = d[j] - mx * my
                    cs = (2.0 * cov + c2) / (var_x + var_y + c2)
                    mxs = mx + mid
                    mys = my + mid
                    co[j] = cs
                    so[j] = (2.0 * (mxs * mys) + c1) / (mxs * mxs + mys * mys + c1) * cs


@njit(**_JIT)
def _row_sum(row):  # pragma: no cover - compiled
    """Sum of a row in float64 with four running sums, so that the additions need not wait on
    each other (the order moves only the last bits of a float64 sum)."""
    a0 = a1 = a2 = a3 = 0.0
    n = row.shape[0]
    j = 0
    while j + 4 <= n:
        a0 += row[j]
        a1 += row[j + 1]
        a2 += row[j + 2]
        a3 += row[j + 3]
        j += 4
    while j < n:
        a0 += row[j]
        j += 1
    return (a0 + a1) + (a2 + a3)


@njit(**_JIT)
def _pair_means(x, mu_x, var_x, y, mu_y, var_y, taps, c1, c2, mid, want_ssim, want_cs,
                ssim_mean, cs_mean):  # pragma: no cover - compiled
    """Means of the SSIM and cs maps of one image against each of B others, no map stored.

    x: C×H×W centred planes of the first image, mu_x/var_x: C×h×w its filtered mean and
    variance; y, mu_y, var_y: the same for B images (B×C×…). Only E[xy] is filtered here.
    ``want_ssim``/``want_cs`` skip the mean nobody asked for (MS-SSIM needs cs at its first four
    scales and SSIM at its last). ssim_mean, cs_mean: B×C, summed in float64.
    """
    n_b, channels, height, width = y.shape
    h, w = mu_x.shape[1], mu_x.shape[2]
    rows = np.empty((height, w), dtype=y.dtype)
    prod = np.empty(width, dtype=y.dtype)
    acc = np.empty(w, dtype=y.dtype)
    s_row = np.zeros(w, dtype=y.dtype)
    c_row = np.zeros(w, dtype=y.dtype)
    two = taps[0] * 0 + 2  # 2 in the planes' precision
    for b in range(n_b):
        for c in range(channels):
            for i in range(height):
                xr, yr = x[c, i], y[b, c, i]
                for j in range(width):
                    prod[j] = xr[j] * yr[j]
                _along_row(prod, taps, rows[i])
            s_sum = 0.0
            c_sum = 0.0
            for i in range(h):
                _down_rows(rows, i, taps, acc)
                mxr, vxr = mu_x[c, i], var_x[c, i]
                myr, vyr = mu_y[b, c, i], var_y[b, c, i]
                # The row's values first (a loop without a running sum vectorizes), then their sums.
                for j in range(w):
                    mx = mxr[j]
                    my = myr[j]
                    cs = (two * (acc[j] - mx * my) + c2) / (vxr[j] + vyr[j] + c2)
                    c_row[j] = cs
                    mxs = mx + mid
                    mys = my + mid
                    s_row[j] = (two * (mxs * mys) + c1) / (mxs * mxs + mys * mys + c1) * cs
                if want_cs:
                    c_sum += _row_sum(c_row)
                if want_ssim:
                    s_sum += _row_sum(s_row)
            ssim_mean[b, c] = s_sum / (h * w)
            cs_mean[b, c] = c_sum / (h * w)


@njit(**_JIT)
def _luma(levels, weights, out):  # pragma: no cover - compiled
    """MATLAB rgb2gray of N×3×H×W 8-bit levels into N×H×W: the float64 sum r·w0 + g·w1 + b·w2
    in that order, rounded half away from zero, as :func:`core.metrics._levels.matlab_luma`."""
    n, _, height, width = levels.shape
    w0, w1, w2 = weights[0], weights[1], weights[2]
    for b in range(n):
        for i in range(height):
            r, g, bl, dst = levels[b, 0, i], levels[b, 1, i], levels[b, 2, i], out[b, i]
            for j in range(width):
                v = np.floor(((np.float64(r[j]) * w0 + np.float64(g[j]) * w1) + np.float64(bl[j]) * w2) + 0.5)
                dst[j] = min(max(v, 0.0), 255.0)


@njit(**_JIT)
def _levels(image, peak, out):  # pragma: no cover - compiled
    """round(clamp(x, 0, 1) · 255) in the image's precision, halves to even, as PyTorch's
    ``clamp(0, 1).mul(255).round()``; flat arrays."""
    zero = peak - peak  # 0 and 1 in the image's precision: mixing in a float64 would change
    one = peak / peak  # the product's rounding (x·255 must be rounded to float32 first)
    for i in range(image.shape[0]):
        out[i] = np.round(min(max(image[i], zero), one) * peak)


def levels(image: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[0, 1] floats (CPU, float32/64) → 8-bit levels 0..255 as ``dtype``, in one pass."""
    src = _numpy(image)
    out = np.empty(src.shape, dtype=torch.empty(0, dtype=dtype).numpy().dtype)
    flat_src, flat_out, peak = src.reshape(-1), out.reshape(-1), src.dtype.type(255.0)
    size = flat_src.shape[0]
    _run_bands(lambda a, b: _levels(flat_src[a:b], peak, flat_out[a:b]), _bands(size, 1 << 20))
    return torch.from_numpy(out)


def luma(levels: torch.Tensor, weights: tuple[float, float, float]) -> torch.Tensor:
    """MATLAB ``rgb2gray`` of 8-bit levels (N×3×H×W, CPU, float32/64) as N×1×H×W in their dtype."""
    n, _, height, width = levels.shape
    src = _numpy(levels)
    out = np.empty((n, height, width), dtype=src.dtype)
    _luma(src, np.asarray(weights, dtype=np.float64), out)
    return torch.from_numpy(out).view(n, 1, height, width)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def filter_valid(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' correlation of every plane of ``x`` (N×C×H×W, CPU, float32/64) with
    ``taps`` ⊗ ``taps``: N×C×(H−k+1)×(W−k+1)."""
    n, c, height, width = x.shape
    k = taps.numel()
    src = _numpy(x).reshape(n * c, height, width)
    tn = _numpy(taps.to(x.dtype))
    out = np.empty((n * c, height - k + 1, width - k + 1), dtype=src.dtype)
    planes = n * c
    if planes > 1:  # whole planes per thread (a batch of images, or an image and its square)
        _run_bands(lambda a, b: _filter_valid(src[a:b], tn, out[a:b]), _bands(planes, 1))
    else:
        rows = out.shape[1]

        def band(start: int, stop: int) -> None:
            _filter_valid(src[:, start:stop + k - 1], tn, out[:, start:stop])

        _run_bands(band, _bands(rows, _MIN_BAND_ROWS))
    return torch.from_numpy(out).view(n, c, height - k + 1, width - k + 1)


# Bands of at least this many output rows are worth a thread of their own.
_MIN_BAND_ROWS = 48
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _bands(items: int, min_per_band: int) -> list[tuple[int, int]]:
    """Split ``items`` (rows, planes, values) into one band per core PyTorch may use, each of at
    least ``min_per_band`` (one band when the work is small or PyTorch runs on one thread, as the
    app does for a class)."""
    count = max(1, min(torch.get_num_threads(), items // min_per_band))
    edges = [round(k * items / count) for k in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _run_bands(work, bands: list[tuple[int, int]]) -> None:
    """``work(start, stop)`` for each band: on this thread when there is one band, else on a
    small shared pool (the kernels release the GIL, so the bands run at once)."""
    global _pool
    if len(bands) == 1:
        work(*bands[0])
        return
    with _pool_lock:
        if _pool is None or _pool._max_workers < len(bands):
            _pool = ThreadPoolExecutor(len(bands), thread_name_prefix="ssim-band")
        pool = _pool
    for future in [pool.submit(work, *band) for band in bands]:
        future.result()


def ssim_maps(x: torch.Tensor, y: torch.Tensor, mu_x: torch.Tensor, e_xx: torch.Tensor, taps: torch.Tensor,
              c1: float, c2: float, mid: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and cs maps (valid region) of ``y`` against the reference's centred planes ``x``
    and moments; CPU tensors of one dtype. See :func:`_ssim_maps`. Large maps are computed in
    horizontal bands on several cores (each band reads its rows plus the window's 10)."""
    n = max(x.shape[0], y.shape[0])
    height = mu_x.shape[2]
    shape = (n, y.shape[1], height, mu_x.shape[3])
    xn, yn, mun, exn = _numpy(x), _numpy(y), _numpy(mu_x), _numpy(e_xx)
    tn = _numpy(taps.to(y.dtype))
    ssim_out, cs_out = np.empty(shape, dtype=yn.dtype), np.empty(shape, dtype=yn.dtype)
    k = tn.shape[0] - 1

    def band(start: int, stop: int) -> None:
        _ssim_maps(xn[:, :, start:stop + k], yn[:, :, start:stop + k], mun[:, :, start:stop], exn[:, :, start:stop],
                   tn, float(c1), float(c2), float(mid), ssim_out[:, :, start:stop], cs_out[:, :, start:stop])

    _run_bands(band, _bands(height, _MIN_BAND_ROWS))
    return torch.from_numpy(ssim_out), torch.from_numpy(cs_out)


def pair_means(x: torch.Tensor, mu_x: torch.Tensor, var_x: torch.Tensor, y: torch.Tensor, mu_y: torch.Tensor,
               var_y: torch.Tensor, taps: torch.Tensor, c1: float, c2: float, mid: float,
               want_ssim: bool = True, want_cs: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and cs (B×C, float64) of one image (``x``: 1×C×H×W centred planes, with its
    moments) against B others, on the CPU: ``allpairs``' inner loop (see :func:`_pair_means`).
    The map's arithmetic runs in the planes' precision, as the PyTorch path's does."""
    shape = (y.shape[0], y.shape[1])
    ssim_mean, cs_mean = np.zeros(shape), np.zeros(shape)
    yn = _numpy(y)
    scalar = yn.dtype.type
    _pair_means(_numpy(x[0]), _numpy(mu_x[0]), _numpy(var_x[0]), yn, _numpy(mu_y), _numpy(var_y),
                _numpy(taps.to(y.dtype)), scalar(c1), scalar(c2), scalar(mid), bool(want_ssim), bool(want_cs),
                ssim_mean, cs_mean)
    return torch.from_numpy(ssim_mean), torch.from_numpy(cs_mean)


def compile_all() -> float:
    """Compile (or load from numba's cache) every kernel for float32 and float64 on tiny inputs,
    so that no page view or command pays for it; returns the seconds it took."""
    import time

    start = time.perf_counter()
    for dtype in (torch.float32, torch.float64):
        taps = torch.tensor([0.25, 0.5, 0.25], dtype=dtype)
        x = torch.rand(2, 1, 8, 8, dtype=dtype) * 255
        filter_valid(x, taps)
        moments = filter_valid(x, taps)
        ssim_maps(x[:1] - 127.5, x, moments[:1], moments[:1] ** 2, taps, 6.5, 58.5, 127.5)
        pair_means(x[:1], moments[:1], moments[:1], x, moments, moments, taps, 6.5, 58.5, 127.5)
        luma(torch.rand(1, 3, 4, 4, dtype=dtype).mul(255).round(), (0.299, 0.587, 0.114))
        for out in (torch.float32, torch.float64):
            levels(torch.rand(1, 3, 4, 4, dtype=dtype), out)
    return time.perf_counter() - start
