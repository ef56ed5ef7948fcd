"""A NumPy/SciPy transcription of Sheikh's ``vifvec.m`` (LIVE's ``vifvec_release``: vifvec.m,
vifsub_est_M.m, refparams_vecgsm.m, ind2wtree.m) and of matlabPyrTools' ``buildSpyr`` with
``sp5Filters``, line by line and in float64, for tests/test_metrics_vif.py. It shares no code with
core: the filters are parsed from the MATLAB text of ``sp5Filters.m`` below (pasted as printed),
the pyramid is built whole (all six orientations, the high-pass and lowpass residuals) and cut
into subbands with ind2wtree's order, and MATLAB's column-major reshapes are spelled out."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

# sp5Filters.m from "hi0filt = [" to the end, verbatim (MATLAB: "..." continues a line, ";" ends
# a row, "2*[...]" scales, "]'" transposes).
SP5_FILTERS_M = """
hi0filt = [ 
-0.00033429 -0.00113093 -0.00171484 -0.00133542 -0.00080639 -0.00133542 -0.00171484 -0.00113093 -0.00033429
-0.00113093 -0.00350017 -0.00243812 0.00631653 0.01261227 0.00631653 -0.00243812 -0.00350017 -0.00113093
-0.00171484 -0.00243812 -0.00290081 -0.00673482 -0.00981051 -0.00673482 -0.00290081 -0.00243812 -0.00171484
-0.00133542 0.00631653 -0.00673482 -0.07027679 -0.11435863 -0.07027679 -0.00673482 0.00631653 -0.00133542
-0.00080639 0.01261227 -0.00981051 -0.11435863 0.81380200 -0.11435863 -0.00981051 0.01261227 -0.00080639
-0.00133542 0.00631653 -0.00673482 -0.07027679 -0.11435863 -0.07027679 -0.00673482 0.00631653 -0.00133542
-0.00171484 -0.00243812 -0.00290081 -0.00673482 -0.00981051 -0.00673482 -0.00290081 -0.00243812 -0.00171484
-0.00113093 -0.00350017 -0.00243812 0.00631653 0.01261227 0.00631653 -0.00243812 -0.00350017 -0.00113093
-0.00033429 -0.00113093 -0.00171484 -0.00133542 -0.00080639 -0.00133542 -0.00171484 -0.00113093 -0.00033429];


lo0filt = [
0.00341614 -0.01551246 -0.03848215 -0.01551246 0.00341614
-0.01551246 0.05586982 0.15925570 0.05586982 -0.01551246
-0.03848215 0.15925570 0.40304148 0.15925570 -0.03848215
-0.01551246 0.05586982 0.15925570 0.05586982 -0.01551246
0.00341614 -0.01551246 -0.03848215 -0.01551246 0.00341614];

lofilt = 2*[
0.00085404 -0.00244917 -0.00387812 -0.00944432 -0.00962054 -0.00944432 -0.00387812 -0.00244917 0.00085404
-0.00244917 -0.00523281 -0.00661117 0.00410600 0.01002988 0.00410600 -0.00661117 -0.00523281 -0.00244917
-0.00387812 -0.00661117 0.01396746 0.03277038 0.03981393 0.03277038 0.01396746 -0.00661117 -0.00387812
-0.00944432 0.00410600 0.03277038 0.06426333 0.08169618 0.06426333 0.03277038 0.00410600 -0.00944432
-0.00962054 0.01002988 0.03981393 0.08169618 0.10096540 0.08169618 0.03981393 0.01002988 -0.00962054
-0.00944432 0.00410600 0.03277038 0.06426333 0.08169618 0.06426333 0.03277038 0.00410600 -0.00944432
-0.00387812 -0.00661117 0.01396746 0.03277038 0.03981393 0.03277038 0.01396746 -0.00661117 -0.00387812
-0.00244917 -0.00523281 -0.00661117 0.00410600 0.01002988 0.00410600 -0.00661117 -0.00523281 -0.00244917
0.00085404 -0.00244917 -0.00387812 -0.00944432 -0.00962054 -0.00944432 -0.00387812 -0.00244917 0.00085404];

bfilts = [...
 0.00277643 0.00496194 0.01026699 0.01455399 0.01026699 0.00496194 0.00277643 ...
-0.00986904 -0.00893064 0.01189859 0.02755155 0.01189859 -0.00893064 -0.00986904 ...
-0.01021852 -0.03075356 -0.08226445 -0.11732297 -0.08226445 -0.03075356 -0.01021852 ...
 0.00000000 0.00000000 0.00000000 0.00000000 0.00000000 0.00000000 0.00000000 ...
 0.01021852 0.03075356 0.08226445 0.11732297 0.08226445 0.03075356 0.01021852 ...
 0.00986904 0.00893064 -0.01189859 -0.02755155 -0.01189859 0.00893064 0.00986904 ...
-0.00277643 -0.00496194 -0.01026699 -0.01455399 -0.01026699 -0.00496194 -0.00277643;
...
-0.00343249 -0.00640815 -0.00073141 0.01124321 0.00182078 0.00285723 0.01166982 ...
-0.00358461 -0.01977507 -0.04084211 -0.00228219 0.03930573 0.01161195 0.00128000 ...
 0.01047717 0.01486305 -0.04819057 -0.12227230 -0.05394139 0.00853965 -0.00459034 ...
 0.00790407 0.04435647 0.09454202 -0.00000000 -0.09454202 -0.04435647 -0.00790407 ...
 0.00459034 -0.00853965 0.05394139 0.12227230 0.04819057 -0.01486305 -0.01047717 ...
-0.00128000 -0.01161195 -0.03930573 0.00228219 0.04084211 0.01977507 0.00358461 ...
-0.01166982 -0.00285723 -0.00182078 -0.01124321 0.00073141 0.00640815 0.00343249;
...
 0.00343249 0.00358461 -0.01047717 -0.00790407 -0.00459034 0.00128000 0.01166982 ...
 0.00640815 0.01977507 -0.01486305 -0.04435647 0.00853965 0.01161195 0.00285723 ...
 0.00073141 0.04084211 0.04819057 -0.09454202 -0.05394139 0.03930573 0.00182078 ...
-0.01124321 0.00228219 0.12227230 -0.00000000 -0.12227230 -0.00228219 0.01124321 ...
-0.00182078 -0.03930573 0.05394139 0.09454202 -0.04819057 -0.04084211 -0.00073141 ...
-0.00285723 -0.01161195 -0.00853965 0.04435647 0.01486305 -0.01977507 -0.00640815 ...
-0.01166982 -0.00128000 0.00459034 0.00790407 0.01047717 -0.00358461 -0.00343249;
...
-0.00277643 0.00986904 0.01021852 -0.00000000 -0.01021852 -0.00986904 0.00277643 ...
-0.00496194 0.00893064 0.03075356 -0.00000000 -0.03075356 -0.00893064 0.00496194 ...
-0.01026699 -0.01189859 0.08226445 -0.00000000 -0.08226445 0.01189859 0.01026699 ...
-0.01455399 -0.02755155 0.11732297 -0.00000000 -0.11732297 0.02755155 0.01455399 ...
-0.01026699 -0.01189859 0.08226445 -0.00000000 -0.08226445 0.01189859 0.01026699 ...
-0.00496194 0.00893064 0.03075356 -0.00000000 -0.03075356 -0.00893064 0.00496194 ...
-0.00277643 0.00986904 0.01021852 -0.00000000 -0.01021852 -0.00986904 0.00277643;
...
-0.01166982 -0.00128000 0.00459034 0.00790407 0.01047717 -0.00358461 -0.00343249 ...
-0.00285723 -0.01161195 -0.00853965 0.04435647 0.01486305 -0.01977507 -0.00640815 ...
-0.00182078 -0.03930573 0.05394139 0.09454202 -0.04819057 -0.04084211 -0.00073141 ...
-0.01124321 0.00228219 0.12227230 -0.00000000 -0.12227230 -0.00228219 0.01124321 ...
 0.00073141 0.04084211 0.04819057 -0.09454202 -0.05394139 0.03930573 0.00182078 ...
 0.00640815 0.01977507 -0.01486305 -0.04435647 0.00853965 0.01161195 0.00285723 ...
 0.00343249 0.00358461 -0.01047717 -0.00790407 -0.00459034 0.00128000 0.01166982;
...
-0.01166982 -0.00285723 -0.00182078 -0.01124321 0.00073141 0.00640815 0.00343249 ...
-0.00128000 -0.01161195 -0.03930573 0.00228219 0.04084211 0.01977507 0.00358461 ...
 0.00459034 -0.00853965 0.05394139 0.12227230 0.04819057 -0.01486305 -0.01047717 ...
 0.00790407 0.04435647 0.09454202 -0.00000000 -0.09454202 -0.04435647 -0.00790407 ...
 0.01047717 0.01486305 -0.04819057 -0.12227230 -0.05394139 0.00853965 -0.00459034 ...
-0.00358461 -0.01977507 -0.04084211 -0.00228219 0.03930573 0.01161195 0.00128000 ...
-0.00343249 -0.00640815 -0.00073141 0.01124321 0.00182078 0.00285723 0.01166982]';
"""


def _matlab_matrix(name: str) -> np.ndarray:
    """The matrix assigned to ``name`` in :data:`SP5_FILTERS_M`, as MATLAB would read it."""
    start = SP5_FILTERS_M.index(f"\n{name} = ")
    rhs = SP5_FILTERS_M[start + len(name) + 4 : SP5_FILTERS_M.index("]", start) + 2]
    scale = 2.0 if rhs.lstrip().startswith("2*") else 1.0
    body = rhs[rhs.index("[") + 1 : rhs.index("]")].replace("...", " ")
    rows = [np.array(r.split(), dtype=float) for r in body.replace(";", "\n").split("\n") if r.split()]
    if name == "bfilts":  # written one filter per ";"-row, continued over several lines
        rows = [np.array(r.split(), dtype=float) for r in body.split(";") if r.split()]
    matrix = scale * np.vstack(rows)
    return matrix.T if rhs.rstrip().endswith("]'") or rhs.rstrip().endswith("]';") else matrix


def sp5_filters() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """[lo0filt, hi0filt, lofilt, bfilts] = sp5Filters(); bfilts is 49×6."""
    return (_matlab_matrix("lo0filt"), _matlab_matrix("hi0filt"), _matlab_matrix("lofilt"),
            _matlab_matrix("bfilts"))


def corr_dn(im: np.ndarray, filt: np.ndarray, step: tuple[int, int] = (1, 1), start: tuple[int, int] = (1, 1),
            stop: tuple[int, int] | None = None) -> np.ndarray:
    """corrDn(im, filt, 'reflect1', step, start, stop) for odd filters: correlation with the
    origin at floor(size/2)+1, edges mirrored about the edge pixel (scipy's 'mirror'), then the
    samples start:step:stop (MATLAB indices)."""
    stop = im.shape if stop is None else stop
    full = ndimage.correlate(im, filt, mode="mirror")
    return full[start[0] - 1 : stop[0] : step[0], start[1] - 1 : stop[1] : step[1]]


def max_pyr_ht(imsz: tuple[int, int], filtsz: int) -> int:
    """maxPyrHt.m for a 2-D image and a square filter."""
    if min(imsz) < filtsz:
        return 0
    return 1 + max_pyr_ht((imsz[0] // 2, imsz[1] // 2), filtsz)


def build_spyr(im: np.ndarray, ht: int) -> list[np.ndarray]:
    """buildSpyr(im, ht, 'sp5Filters', 'reflect1'): [hi0, level 1 bands 1..6, ..., lowpass]."""
    lo0filt, hi0filt, lofilt, bfilts = sp5_filters()
    if ht > max_pyr_ht(im.shape, lofilt.shape[0]):
        raise ValueError(f"Cannot build pyramid higher than {max_pyr_ht(im.shape, lofilt.shape[0])} levels.")
    pyr = [corr_dn(im, hi0filt)]
    lo = corr_dn(im, lo0filt)
    bfiltsz = round(math.sqrt(bfilts.shape[0]))
    for _ in range(ht):  # buildSpyrLevs, unrolled
        for b in range(bfilts.shape[1]):
            filt = bfilts[:, b].reshape(bfiltsz, bfiltsz, order="F")  # reshape(bfilts(:,b), sz, sz)
            pyr.append(corr_dn(lo, filt))
        lo = corr_dn(lo, lofilt, (2, 2), (1, 1))
    pyr.append(lo)
    return pyr


def ind2wtree(pyr: list[np.ndarray]) -> list[np.ndarray]:
    """wtree{numsubs - i + 1} = subband i: the list reversed (index 0 here is MATLAB's wtree{1})."""
    return pyr[::-1]


def vifsub_est_m(org: list[np.ndarray], dist: list[np.ndarray], subbands: list[int], m: int):
    tol = 1e-15
    g_all, vv_all = [], []
    for sub in subbands:
        y, yn = org[sub - 1], dist[sub - 1]
        lev = math.ceil((sub - 1) / 6)
        winsize = 2**lev + 1
        win = np.ones((winsize, winsize))
        newsize = (y.shape[0] // m * m, y.shape[1] // m * m)
        y, yn = y[: newsize[0], : newsize[1]], yn[: newsize[0], : newsize[1]]
        winstep = (m, m)
        winstart = (m // 2 + 1, m // 2 + 1)
        winstop = (y.shape[0] - math.ceil(m / 2) + 1, y.shape[1] - math.ceil(m / 2) + 1)
        mean_x = corr_dn(y, win / win.sum(), winstep, winstart, winstop)
        mean_y = corr_dn(yn, win / win.sum(), winstep, winstart, winstop)
        cov_xy = corr_dn(y * yn, win, winstep, winstart, winstop) - win.sum() * mean_x * mean_y
        ss_x = corr_dn(y**2, win, winstep, winstart, winstop) - win.sum() * mean_x**2
        ss_y = corr_dn(yn**2, win, winstep, winstart, winstop) - win.sum() * mean_y**2
        ss_x[ss_x < 0] = 0
        ss_y[ss_y < 0] = 0
        g = cov_xy / (ss_x + tol)
        vv = (ss_y - g * cov_xy) / win.sum()
        mask = ss_x < tol
        g[mask] = 0
        vv[mask] = ss_y[mask]
        ss_x[mask] = 0
        mask = ss_y < tol
        g[mask] = 0
        vv[mask] = 0
        mask = g < 0
        vv[mask] = ss_y[mask]
        g[mask] = 0
        vv[vv <= tol] = tol
        g_all.append(g)
        vv_all.append(vv)
    return g_all, vv_all


def refparams_vecgsm(org: list[np.ndarray], subbands: list[int], m: int):
    ssarr, l_arr = {}, {}
    for sub in subbands:
        y = org[sub - 1]
        sizey = (y.shape[0] // m * m, y.shape[1] // m * m)
        y = y[: sizey[0], : sizey[1]]
        rows = []
        for j in range(1, m + 1):
            for k in range(1, m + 1):  # y(k:end-(M-k), j:end-(M-j)), flattened column-major
                rows.append(y[k - 1 : y.shape[0] - (m - k), j - 1 : y.shape[1] - (m - j)].reshape(-1, order="F"))
        temp = np.array(rows)
        mcu = temp.mean(axis=1, keepdims=True)
        cu = (temp - mcu) @ (temp - mcu).T / temp.shape[1]
        rows = []
        for j in range(1, m + 1):
            for k in range(1, m + 1):  # y(k:M:end, j:M:end)
                rows.append(y[k - 1 :: m, j - 1 :: m].reshape(-1, order="F"))
        temp = np.array(rows)
        ss = np.linalg.inv(cu) @ temp
        ss = (ss * temp).sum(axis=0) / (m * m)
        ssarr[sub] = ss.reshape(sizey[0] // m, sizey[1] // m, order="F")
        l_arr[sub] = np.linalg.eigvalsh(cu)
    return ssarr, l_arr


def vifvec(orig_img: np.ndarray, dist_img: np.ndarray) -> float:
    """vifvec.m on two grey images (double, 0..255): the reference first."""
    m = 3
    subbands = [4, 7, 10, 13, 16, 19, 22, 25]
    sigma_nsq = 0.4
    org = ind2wtree(build_spyr(orig_img.astype(np.float64), 4))
    dist = ind2wtree(build_spyr(dist_img.astype(np.float64), 4))
    g_all, vv_all = vifsub_est_m(org, dist, subbands, m)
    ssarr, larr = refparams_vecgsm(org, subbands, m)
    num = den = 0.0
    for i, sub in enumerate(subbands):
        g, vv, ss, lam = g_all[i], vv_all[i], ssarr[sub], larr[sub]
        lev = math.ceil((sub - 1) / 6)
        winsize = 2**lev + 1
        offset = math.ceil(((winsize - 1) / 2) / m)
        g = g[offset : g.shape[0] - offset, offset : g.shape[1] - offset]
        vv = vv[offset : vv.shape[0] - offset, offset : vv.shape[1] - offset]
        ss = ss[offset : ss.shape[0] - offset, offset : ss.shape[1] - offset]
        for lj in lam:
            num += np.sum(np.log2(1 + g * g * ss * lj / (vv + sigma_nsq)))
            den += np.sum(np.log2(1 + ss * lj / sigma_nsq))
    return float(num / den)
