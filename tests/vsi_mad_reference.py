"""NumPy/SciPy transcriptions of the authors' MATLAB for the VSI and MAD tests, line by line and
independent of core's code: ``VSI.m`` with its embedded SDSP (Lin Zhang 2013; MATLAB's
``imresize`` and ``mat2gray`` written out as MATLAB documents and implements them), and
``MAD_index.m`` (Eric Larson, September 2011) with its C helpers ``ical_std.c`` and
``ical_stat.c`` as loops over blocks in MATLAB's column-major indexing."""

from __future__ import annotations

import math

import numpy as np

from classic_reference import conv2_same


def matlab_round(x: np.ndarray) -> np.ndarray:
    """MATLAB round (halves away from zero) for the non-negative values used here."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


# --- MATLAB imresize (bilinear, antialiasing on by default) ------------------------------------


def _bilinear_kernel(x: np.ndarray) -> np.ndarray:
    return (x + 1) * ((-1 <= x) & (x < 0)) + (1 - x) * ((0 <= x) & (x <= 1))


def _contributions(in_length: int, out_length: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """imresize.m's contributions(): weights and (1-based, mirrored) source indices per output."""
    kernel_width = 2.0
    if scale < 1:
        def h(x):
            return scale * _bilinear_kernel(scale * x)
        kernel_width = kernel_width / scale
    else:
        h = _bilinear_kernel
    x = np.arange(1, out_length + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    indices = left + np.arange(p)[None, :]
    weights = h(u - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, in_length + 1), np.arange(in_length, 0, -1)])
    indices = aux[np.mod(indices.astype(int) - 1, len(aux))]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _resize_along(a: np.ndarray, axis: int, out_length: int) -> np.ndarray:
    in_length = a.shape[axis]
    weights, indices = _contributions(in_length, out_length, out_length / in_length)
    moved = np.moveaxis(a, axis, 0)
    out = np.zeros((out_length,) + moved.shape[1:])
    for k in range(out_length):
        for w, i in zip(weights[k], indices[k]):
            out[k] += w * moved[i - 1]
    return np.moveaxis(out, 0, axis)


def imresize_bilinear(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """imresize(a, [rows cols], 'bilinear') on a 2-D double array; the dimension with the
    smaller scale is resized first, as imresize orders them."""
    scales = (rows / a.shape[0], cols / a.shape[1])
    out = a.astype(np.float64)
    for axis in np.argsort(scales, kind="stable"):
        out = _resize_along(out, int(axis), (rows, cols)[axis])
    return out


def mat2gray(a: np.ndarray) -> np.ndarray:
    low, high = a.min(), a.max()
    out = a.astype(np.float64) if high == low else (a - low) / (high - low)
    return np.clip(out, 0.0, 1.0)


# --- VSI.m and SDSP ----------------------------------------------------------------------------


def rgb2lab_sdsp(image: np.ndarray) -> np.ndarray:
    """SDSP's RGB2Lab (0..255 doubles in, Lab out; D50 white 0.9642/1/0.8251)."""
    image = image.astype(np.float64)
    channels = []
    for c in range(3):
        n = image[:, :, c] / 255
        le = n <= 0.04045
        channels.append((n / 12.92) * le + np.power((n + 0.055) / 1.055, 2.4) * (1 - le))
    r, g, b = channels
    x = r * 0.4124564 + g * 0.3575761 + b * 0.1804375
    y = r * 0.2126729 + g * 0.7151522 + b * 0.0721750
    z = r * 0.0193339 + g * 0.1191920 + b * 0.9503041
    epsilon, kappa = 0.008856, 903.3
    out = []
    for v, white in ((x, 0.9642), (y, 1.0), (z, 0.8251)):
        t = v / white
        gt = t > epsilon
        out.append(np.power(np.maximum(t, 0), 1.0 / 3.0) * gt + (kappa * t + 16.0) / 116.0 * (1 - gt))
    fx, fy, fz = out
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=2)


def log_gabor_sdsp(rows: int, cols: int, omega0: float, sigma_f: float) -> np.ndarray:
    u1, u2 = np.meshgrid((np.arange(1, cols + 1) - (cols // 2 + 1)) / (cols - cols % 2),
                         (np.arange(1, rows + 1) - (rows // 2 + 1)) / (rows - rows % 2))
    mask = np.ones((rows, cols))
    mask[u1**2 + u2**2 > 0.25] = 0
    u1, u2 = np.fft.ifftshift(u1 * mask), np.fft.ifftshift(u2 * mask)
    radius = np.sqrt(u1**2 + u2**2)
    radius[0, 0] = 1
    with np.errstate(divide="ignore"):
        lg = np.exp(-(np.log(radius / omega0)) ** 2 / (2 * sigma_f**2))
    lg[0, 0] = 0
    return lg


def sdsp(image: np.ndarray, sigma_f: float, omega0: float, sigma_d: float, sigma_c: float) -> np.ndarray:
    ori_rows, ori_cols = image.shape[:2]
    image = image.astype(np.float64)
    ds = np.stack([imresize_bilinear(image[:, :, c], 256, 256) for c in range(3)], axis=2)
    lab = rgb2lab_sdsp(ds)
    rows, cols = 256, 256
    lg = log_gabor_sdsp(rows, cols, omega0, sigma_f)
    results = [np.real(np.fft.ifft2(np.fft.fft2(lab[:, :, c]) * lg)) for c in range(3)]
    sf_map = np.sqrt(results[0] ** 2 + results[1] ** 2 + results[2] ** 2)
    yy, xx = np.meshgrid(np.arange(1, rows + 1), np.arange(1, cols + 1), indexing="ij")
    sd_map = np.exp(-((yy - rows / 2) ** 2 + (xx - cols / 2) ** 2) / sigma_d**2)
    a, b = lab[:, :, 1], lab[:, :, 2]
    na = (a - a.min()) / (a.max() - a.min())
    nb = (b - b.min()) / (b.max() - b.min())
    sc_map = 1 - np.exp(-(na**2 + nb**2) / sigma_c**2)
    vs_map = sf_map * sd_map * sc_map
    return mat2gray(imresize_bilinear(vs_map, ori_rows, ori_cols))


def vsi_matlab(image1: np.ndarray, image2: np.ndarray) -> tuple[float, np.ndarray]:
    """VSI.m on two uint8 RGB images: (sim, the local similarity map before weighting)."""
    const_vs, const_gm, const_chrom, alpha, lam = 1.27, 386.0, 130.0, 0.40, 0.020
    sigma_f, omega0, sigma_d, sigma_c = 1.34, 0.0210, 145.0, 0.001
    s1 = sdsp(image1, sigma_f, omega0, sigma_d, sigma_c)
    s2 = sdsp(image2, sigma_f, omega0, sigma_d, sigma_c)
    rows, cols = image1.shape[:2]
    i1, i2 = image1.astype(np.float64), image2.astype(np.float64)
    l1 = 0.06 * i1[:, :, 0] + 0.63 * i1[:, :, 1] + 0.27 * i1[:, :, 2]
    l2 = 0.06 * i2[:, :, 0] + 0.63 * i2[:, :, 1] + 0.27 * i2[:, :, 2]
    m1 = 0.30 * i1[:, :, 0] + 0.04 * i1[:, :, 1] - 0.35 * i1[:, :, 2]
    m2 = 0.30 * i2[:, :, 0] + 0.04 * i2[:, :, 1] - 0.35 * i2[:, :, 2]
    n1 = 0.34 * i1[:, :, 0] - 0.60 * i1[:, :, 1] + 0.17 * i1[:, :, 2]
    n2 = 0.34 * i2[:, :, 0] - 0.60 * i2[:, :, 1] + 0.17 * i2[:, :, 2]
    f = max(1, int(matlab_round(min(rows, cols) / 256)))
    ave = np.ones((f, f)) / (f * f)

    def down(x):
        return conv2_same(x, ave)[::f, ::f]

    m1, m2, n1, n2, l1, l2, s1, s2 = (down(x) for x in (m1, m2, n1, n2, l1, l2, s1, s2))
    dx = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]]) / 16
    dy = np.array([[3, 10, 3], [0, 0, 0], [-3, -10, -3]]) / 16
    g1 = np.sqrt(conv2_same(l1, dx) ** 2 + conv2_same(l1, dy) ** 2)
    g2 = np.sqrt(conv2_same(l2, dx) ** 2 + conv2_same(l2, dy) ** 2)
    vs_sim = (2 * s1 * s2 + const_vs) / (s1**2 + s2**2 + const_vs)
    gm_sim = (2 * g1 * g2 + const_gm) / (g1**2 + g2**2 + const_gm)
    weight = np.maximum(s1, s2)
    i_sim = (2 * m1 * m2 + const_chrom) / (m1**2 + m2**2 + const_chrom)
    q_sim = (2 * n1 * n2 + const_chrom) / (n1**2 + n2**2 + const_chrom)
    chroma = np.real(np.power((i_sim * q_sim).astype(complex), lam))
    local = (gm_sim**alpha) * vs_sim * chroma
    return float(np.sum(local * weight) / np.sum(weight)), local


# --- MAD_index.m (September 2011) with ical_std.c and ical_stat.c ---------------------------------


def myrgb2gray(img: np.ndarray) -> np.ndarray:
    """uint8(0.299*R + 0.587*G + 0.114*B) with img uint8: every double*uint8 product is a uint8
    (rounded), and uint8 sums saturate at 255."""
    img = img.astype(np.float64)
    total = np.zeros(img.shape[:2])
    for c, w in enumerate((0.299, 0.587, 0.114)):
        total = np.minimum(total + np.clip(matlab_round(w * img[:, :, c]), 0, 255), 255)
    return total.astype(np.uint8)


def make_csf(x: int, y: int, nfreq: float) -> np.ndarray:
    # meshgrid(-x/2+0.5 : x/2-0.5, -y/2+0.5 : y/2-0.5): x values along columns, an N×M grid
    xplane, yplane = np.meshgrid(np.arange(-x / 2 + 0.5, x / 2 - 0.5 + 0.25),
                                 np.arange(-y / 2 + 0.5, y / 2 - 0.5 + 0.25))
    plane = (xplane + 1j * yplane) / y * 2 * nfreq
    radfreq = np.abs(plane)
    w = 0.7
    s = (1 - w) / 2 * np.cos(4 * np.angle(plane)) + (1 + w) / 2
    radfreq = radfreq / s
    csf = 2.6 * (0.0192 + 0.114 * radfreq) * np.exp(-(0.114 * radfreq) ** 1.1)
    csf[radfreq < 7.8909] = 0.9809
    return csf


def ical_std(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ical_std.c: [std of x (16×16, N-1), modified std of y, mean of y (16×16)], column-major:
    i runs over columns (rowLen = N), j over rows (colLen = M)."""
    col_len, row_len = x.shape  # M rows, N columns
    out_std, out_std_mod, out_mean, tmp = (np.zeros_like(x, dtype=np.float64) for _ in range(4))
    for i in range(0, row_len - 15, 4):
        for j in range(0, col_len - 15, 4):
            xb, yb = x[j : j + 16, i : i + 16], y[j : j + 16, i : i + 16]
            mean, mean2 = xb.sum() / 256.0, yb.sum() / 256.0
            stdev = math.sqrt(((xb - mean) ** 2).sum() / 255.0)
            out_mean[j : j + 4, i : i + 4] = mean2
            out_std[j : j + 4, i : i + 4] = stdev
    for i in range(0, row_len - 15, 4):
        for j in range(0, col_len - 15, 4):
            yb = y[j : j + 8, i : i + 8]
            mean = yb.sum() / 64.0
            stdev = math.sqrt(((yb - mean) ** 2).sum() / 63.0)
            tmp[j : j + 4, i : i + 4] = stdev
            out_std_mod[j : j + 4, i : i + 4] = stdev
    for i in range(0, row_len - 15, 4):
        for j in range(0, col_len - 15, 4):
            mean = tmp[j, i]
            for ib in (i, i + 5):
                for jb in (j, j + 5):
                    if ib < row_len - 15 and jb < col_len - 15 and mean > tmp[jb, ib]:
                        mean = tmp[jb, ib]
            out_std_mod[j : j + 4, i : i + 4] = mean
    return out_std, out_std_mod, out_mean


def ical_stat(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ical_stat.c: std (N-1), skewness and kurtosis (population) of 16×16 blocks every 4 px."""
    col_len, row_len = x.shape
    out_std, out_skw, out_krt = (np.zeros_like(x, dtype=np.float64) for _ in range(3))
    for i in range(0, row_len - 15, 4):
        for j in range(0, col_len - 15, 4):
            b = x[j : j + 16, i : i + 16]
            mean = b.sum() / 256.0
            d = b - mean
            stdev, skw, krt = (d**2).sum(), (d**3).sum(), (d**4).sum()
            stmp = math.sqrt(stdev / 256.0)
            stdev = math.sqrt(stdev / 255.0)
            if stmp != 0:
                skw = (skw / 256.0) / stmp**3
                krt = (krt / 256.0) / stmp**4
            else:
                skw = krt = 0.0
            out_std[j : j + 4, i : i + 4] = stdev
            out_skw[j : j + 4, i : i + 4] = skw
            out_krt[j : j + 4, i : i + 4] = krt
    return out_std, out_skw, out_krt


def hi_index(ref_img: np.ndarray, dst_img: np.ndarray) -> tuple[float, np.ndarray]:
    k, g_thr, c_slope, ci_thrsh, cd_thrsh, ms_scale = 0.02874, 0.5, 1.0, -5.0, -5.0, 1.0
    lut = k * np.arange(256, dtype=np.float64) ** (2.2 / 3)
    # LUT(img + 1) with uint8 arithmetic: 255 + 1 saturates at 255.
    ref = lut[np.minimum(ref_img.astype(int) + 1, 255) - 1]
    dst = lut[np.minimum(dst_img.astype(int) + 1, 255) - 1]
    m, n = ref.shape
    csf = make_csf(m, n, 32).T
    ref = np.real(np.fft.ifft2(np.fft.ifftshift(np.fft.fftshift(np.fft.fft2(ref)) * csf)))
    dst = np.real(np.fft.ifft2(np.fft.ifftshift(np.fft.fftshift(np.fft.fft2(dst)) * csf)))
    std_2, std_1, m1_1 = ical_std(dst - ref, ref)
    bsize = 16
    with np.errstate(divide="ignore", invalid="ignore"):
        ci_ref = np.log(std_1 / m1_1)
        ci_dst = np.log(std_2 / m1_1)
    ci_dst[m1_1 < g_thr] = -np.inf
    msk = np.zeros(ci_dst.shape)
    with np.errstate(invalid="ignore"):
        idx1 = (ci_ref > ci_thrsh) & (ci_dst > (c_slope * (ci_ref - ci_thrsh) + cd_thrsh))
        idx2 = (ci_ref <= ci_thrsh) & (ci_dst > cd_thrsh)
    msk[idx1] = (ci_dst[idx1] - (c_slope * (ci_ref[idx1] - ci_thrsh) + cd_thrsh)) / ms_scale
    msk[idx2] = (ci_dst[idx2] - cd_thrsh) / ms_scale
    win = np.ones((bsize, bsize)) / bsize**2
    diff2 = (ref_img.astype(np.float64) - dst_img.astype(np.float64)) ** 2
    lmse = conv2_same(diff2, np.rot90(win, 2))  # filter2(win, x, 'same')
    mp = msk * lmse
    mp2 = mp[bsize : m - bsize - 1, bsize : n - bsize - 1]
    return float(np.linalg.norm(mp2.ravel()) / math.sqrt(mp2.size) * 200), mp


def gaborconvolve(im: np.ndarray) -> list[list[np.ndarray]]:
    """EO{s, o} (5 scales × 4 orientations), the 2011 precomputed version."""
    nscale, norient, min_wave, mult, sigma_onf, d_theta_on_sigma = 5, 4, 3, 3, 0.55, 1.5
    wavelength = [min_wave * mult**s for s in range(nscale)]
    rows, cols = im.shape
    imagefft = np.fft.fft2(im)
    x = np.ones((rows, 1)) * np.arange(-cols / 2, cols / 2 - 1 + 0.5)[None, :] / (cols / 2)
    y = np.arange(-rows / 2, rows / 2 - 1 + 0.5)[:, None] * np.ones((1, cols)) / (rows / 2)
    radius = np.sqrt(x**2 + y**2)
    r0, c0 = int(matlab_round(rows / 2 + 1)) - 1, int(matlab_round(cols / 2 + 1)) - 1
    radius[r0, c0] = 1
    radius = np.log(radius)
    theta = np.arctan2(-y, x)
    sintheta, costheta = np.sin(theta), np.cos(theta)
    theta_sigma = np.pi / norient / d_theta_on_sigma
    log_gabors = []
    for s in range(nscale):
        fo = 1.0 / wavelength[s]
        rfo = fo / 0.5
        tmp = -(2 * np.log(sigma_onf) ** 2)
        tmp2 = np.log(rfo)
        lg = np.exp((radius - tmp2) ** 2 / tmp)
        lg[r0, c0] = 0
        log_gabors.append(lg)
    eo = [[None] * norient for _ in range(nscale)]
    for o in range(norient):
        angl = o * np.pi / norient
        ds = sintheta * np.cos(angl) - costheta * np.sin(angl)
        dc = costheta * np.cos(angl) + sintheta * np.sin(angl)
        dtheta = np.abs(np.arctan2(ds, dc))
        spread = np.exp((-dtheta**2) / (2 * theta_sigma**2))
        for s in range(nscale):
            filt = np.fft.fftshift(log_gabors[s] * spread)
            eo[s][o] = np.fft.ifft2(imagefft * filt)
    return eo


def lo_index(ref: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray]:
    gab_ref, gab_dst = gaborconvolve(ref.astype(np.float64)), gaborconvolve(dst.astype(np.float64))
    m, n = gab_ref[0][0].shape
    s = np.array([0.5, 0.75, 1, 5, 6])
    s = s / s.sum()
    mp = np.zeros((m, n))
    for gb_i in range(5):
        for gb_j in range(4):
            std_r, skw_r, krt_r = ical_stat(np.abs(gab_ref[gb_i][gb_j]))
            std_d, skw_d, krt_d = ical_stat(np.abs(gab_dst[gb_i][gb_j]))
            mp = mp + s[gb_i] * (np.abs(std_r - std_d) + 2 * np.abs(skw_r - skw_d) + np.abs(krt_r - krt_d))
    bsize = 16
    mp2 = mp[bsize : m - bsize - 1, bsize : n - bsize - 1]
    return float(np.linalg.norm(mp2.ravel()) / math.sqrt(mp2.size)), mp


def mad_matlab(ref_rgb: np.ndarray, dst_rgb: np.ndarray) -> dict:
    """MAD_index.m on two uint8 RGB images: MAD, HI, LO, sig and the HI/LO maps."""
    ref_img, dst_img = myrgb2gray(ref_rgb), myrgb2gray(dst_rgb)
    hi, hi_map = hi_index(ref_img, dst_img)
    lo, lo_map = lo_index(ref_img.astype(np.float64), dst_img.astype(np.float64))
    thresh1, thresh2 = 2.55, 3.35
    b1 = math.exp(-thresh1 / thresh2)
    b2 = 1 / (math.log(10) * thresh2)
    sig = 1 / (1 + b1 * hi**b2)
    return {"MAD": lo ** (1 - sig) * hi**sig, "HI": hi, "LO": lo, "sig": sig, "map_hi": hi_map, "map_lo": lo_map}
