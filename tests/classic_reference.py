"""Shared by the PSNR, SSIM, MS-SSIM, GMSD, VIF, FSIM and DISTS tests: test pairs, gallery photos
and independent references (scikit-image; numpy/scipy transcriptions of the authors' MATLAB
releases), never core's own code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage, signal
from skimage import data as skdata
from skimage.metrics import structural_similarity


# MATLAB rgb2gray weights, written out here rather than imported from the module.
LUMA = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
MS_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])

# Odd sizes on purpose: they exercise the valid-region crop and the MS-SSIM downsampling
# of an odd last row/column.
H, W = 181, 197


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = rng(seed).normal(0.0, sigma, img.shape)
    return np.clip(np.round(img.astype(np.float64) + noise), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def natural() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[40 : 40 + H, 150 : 150 + W])


@pytest.fixture(scope="module")
def pairs(natural: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """uint8 H×W×3 (ref, dist) pairs: natural + noise, natural + blur, and pure noise."""
    rand_a = rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    rand_b = rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    blurred = ndimage.uniform_filter(natural, size=(5, 5, 1))
    return [
        (natural, noisy(natural, 3.0)),
        (natural, noisy(natural, 25.0, seed=1)),
        (natural, blurred),
        (rand_a, rand_b),
    ]


def to_tensor(*images: np.ndarray) -> torch.Tensor:
    """uint8 H×W×3 arrays → N×3×H×W float32 in [0, 1], as an app would load them."""
    stacked = np.stack(images).astype(np.float32) / 255.0
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()


def matlab_gray(img: np.ndarray) -> np.ndarray:
    """MATLAB rgb2gray on uint8: weighted sum in double, rounded half away from zero."""
    return np.floor(img.astype(np.float64) @ LUMA + 0.5).astype(np.uint8)


def sk_ssim_valid(a: np.ndarray, b: np.ndarray, rgb: bool) -> np.ndarray:
    """skimage's full SSIM map, cropped to the valid region (skimage pads the borders)."""
    kwargs = dict(data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True)
    if rgb:
        _, full = structural_similarity(a, b, channel_axis=2, **kwargs)
        return full[5:-5, 5:-5].mean(axis=2)
    _, full = structural_similarity(a, b, **kwargs)
    return full[5:-5, 5:-5]


# --- an independent float64 MS-SSIM (numpy/scipy), msssim.m conventions -------------------


def _window() -> np.ndarray:
    x = np.arange(-5, 6, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g)
    return w / w.sum()


def _ssim_cs_np(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    win = _window()

    def filt(z: np.ndarray) -> np.ndarray:
        return ndimage.correlate(z, win, mode="reflect")[5:-5, 5:-5]

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    s = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs
    return float(s.mean()), float(cs.mean())


def _down_np(x: np.ndarray) -> np.ndarray:
    x = np.pad(x, ((0, x.shape[0] % 2), (0, x.shape[1] % 2)), mode="symmetric")
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim_np(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.astype(np.float64), y.astype(np.float64)
    terms = []
    for level in range(5):
        s, cs = _ssim_cs_np(x, y)
        terms.append(s if level == 4 else cs)
        x, y = _down_np(x), _down_np(y)
    return float(np.prod(np.maximum(terms, 0.0) ** MS_WEIGHTS))


# --- NumPy/SciPy transcriptions of the authors' MATLAB releases (GMSD.m, vifp_mscale.m, ------
# --- FeatureSIM.m), line by line, for the GMSD, VIF and FSIM tests -----------------------------


def conv2_same(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """MATLAB conv2(x, h, 'same'): the full convolution, rows/columns from floor(k/2) on.
    (scipy's mode='same' centres even kernels one sample differently, so it is not used.)"""
    full = signal.convolve2d(x, h, mode="full")
    r0, c0 = h.shape[0] // 2, h.shape[1] // 2
    return full[r0 : r0 + x.shape[0], c0 : c0 + x.shape[1]]


def filter2_valid(h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """MATLAB filter2(h, x, 'valid'): correlation where h fits."""
    return signal.correlate2d(x, h, mode="valid")


def fspecial_gaussian(n: int, sigma: float) -> np.ndarray:
    r = np.arange(n) - (n - 1) / 2
    xx, yy = np.meshgrid(r, r)
    h = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def fspecial_average(n: int) -> np.ndarray:
    return np.ones((n, n)) / (n * n)


def gmsd_matlab(y1: np.ndarray, y2: np.ndarray) -> tuple[float, np.ndarray]:
    """GMSD.m on two grey images (double, 0..255): (score, quality_map)."""
    t = 170.0
    dx = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]]) / 3.0
    dy = dx.T
    ave = fspecial_average(2)
    y1 = conv2_same(y1, ave)[::2, ::2]
    y2 = conv2_same(y2, ave)[::2, ::2]
    g1 = np.sqrt(conv2_same(y1, dx) ** 2 + conv2_same(y1, dy) ** 2)
    g2 = np.sqrt(conv2_same(y2, dx) ** 2 + conv2_same(y2, dy) ** 2)
    quality_map = (2 * g1 * g2 + t) / (g1**2 + g2**2 + t)
    return float(np.std(quality_map, ddof=1)), quality_map  # std2: N - 1


def vifp_matlab(ref: np.ndarray, dist: np.ndarray) -> float:
    """vifp_mscale.m on two grey images (double, 0..255)."""
    sigma_nsq = 2.0
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        win = fspecial_gaussian(n, n / 5)
        if scale > 1:
            ref = filter2_valid(win, ref)[::2, ::2]
            dist = filter2_valid(win, dist)[::2, ::2]
        mu1, mu2 = filter2_valid(win, ref), filter2_valid(win, dist)
        sigma1_sq = filter2_valid(win, ref * ref) - mu1 * mu1
        sigma2_sq = filter2_valid(win, dist * dist) - mu2 * mu2
        sigma12 = filter2_valid(win, ref * dist) - mu1 * mu2
        sigma1_sq[sigma1_sq < 0] = 0
        sigma2_sq[sigma2_sq < 0] = 0
        g = sigma12 / (sigma1_sq + 1e-10)
        sv_sq = sigma2_sq - g * sigma12
        m = sigma1_sq < 1e-10
        g[m] = 0
        sv_sq[m] = sigma2_sq[m]
        sigma1_sq[m] = 0
        m = sigma2_sq < 1e-10
        g[m] = 0
        sv_sq[m] = 0
        m = g < 0
        sv_sq[m] = sigma2_sq[m]
        g[m] = 0
        sv_sq[sv_sq <= 1e-10] = 1e-10
        num += np.sum(np.log10(1 + g**2 * sigma1_sq / (sv_sq + sigma_nsq)))
        den += np.sum(np.log10(1 + sigma1_sq / sigma_nsq))
    return float(num / den)


def _matlab_range(n: int) -> np.ndarray:
    if n % 2:
        return np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)
    return np.arange(-n / 2, n / 2) / n


def _lowpassfilter(rows: int, cols: int, cutoff: float, n: int) -> np.ndarray:
    x, y = np.meshgrid(_matlab_range(cols), _matlab_range(rows))
    radius = np.sqrt(x**2 + y**2)
    return np.fft.ifftshift(1.0 / (1.0 + (radius / cutoff) ** (2 * n)))


def phasecong2_matlab(im: np.ndarray) -> np.ndarray:
    """phasecong2 as embedded in FeatureSIM.m."""
    nscale, norient, min_wave, mult, sigma_onf, d_theta_on_sigma, k, epsilon = 4, 4, 6, 2, 0.55, 1.2, 2.0, 1e-4
    theta_sigma = np.pi / norient / d_theta_on_sigma
    rows, cols = im.shape
    imagefft = np.fft.fft2(im)
    x, y = np.meshgrid(_matlab_range(cols), _matlab_range(rows))
    radius = np.fft.ifftshift(np.sqrt(x**2 + y**2))
    theta = np.fft.ifftshift(np.arctan2(-y, x))
    radius[0, 0] = 1
    sintheta, costheta = np.sin(theta), np.cos(theta)
    lp = _lowpassfilter(rows, cols, 0.45, 15)
    log_gabor = []
    for s in range(1, nscale + 1):
        fo = 1.0 / (min_wave * mult ** (s - 1))
        g = np.exp(-(np.log(radius / fo)) ** 2 / (2 * np.log(sigma_onf) ** 2)) * lp
        g[0, 0] = 0
        log_gabor.append(g)
    spread = []
    for o in range(1, norient + 1):
        angl = (o - 1) * np.pi / norient
        ds = sintheta * np.cos(angl) - costheta * np.sin(angl)
        dc = costheta * np.cos(angl) + sintheta * np.sin(angl)
        spread.append(np.exp(-np.abs(np.arctan2(ds, dc)) ** 2 / (2 * theta_sigma**2)))
    energy_all = np.zeros((rows, cols))
    an_all = np.zeros((rows, cols))
    for o in range(norient):
        sum_e = np.zeros((rows, cols))
        sum_o = np.zeros((rows, cols))
        sum_an = np.zeros((rows, cols))
        energy = np.zeros((rows, cols))
        eo, ifft_filters = [], []
        for s in range(nscale):
            filt = log_gabor[s] * spread[o]
            ifft_filters.append(np.real(np.fft.ifft2(filt)) * np.sqrt(rows * cols))
            eo.append(np.fft.ifft2(imagefft * filt))
            sum_an += np.abs(eo[s])
            sum_e += np.real(eo[s])
            sum_o += np.imag(eo[s])
            if s == 0:
                em_n = np.sum(filt**2)
        x_energy = np.sqrt(sum_e**2 + sum_o**2) + epsilon
        mean_e, mean_o = sum_e / x_energy, sum_o / x_energy
        for s in range(nscale):
            e, od = np.real(eo[s]), np.imag(eo[s])
            energy += e * mean_e + od * mean_o - np.abs(e * mean_o - od * mean_e)
        median_e2n = np.median(np.abs(eo[0]).ravel() ** 2)
        noise_power = (-median_e2n / np.log(0.5)) / em_n
        est_sum_an2 = sum(f**2 for f in ifft_filters)
        est_sum_aiaj = np.zeros((rows, cols))
        for si in range(nscale - 1):
            for sj in range(si + 1, nscale):
                est_sum_aiaj += ifft_filters[si] * ifft_filters[sj]
        est_noise_energy2 = 2 * noise_power * est_sum_an2.sum() + 4 * noise_power * est_sum_aiaj.sum()
        tau = np.sqrt(est_noise_energy2 / 2)
        t = (tau * np.sqrt(np.pi / 2) + k * np.sqrt((2 - np.pi / 2) * tau**2)) / 1.7
        energy_all += np.maximum(energy - t, 0)
        an_all += sum_an
    return energy_all / an_all


def fsim_matlab(img1: np.ndarray, img2: np.ndarray) -> tuple[float, float]:
    """FeatureSIM.m on two uint8 H×W×3 images: (FSIM, FSIMc)."""
    a, b = img1.astype(np.float64), img2.astype(np.float64)
    rows, cols = a.shape[:2]

    def yiq(im):
        r, g, bl = im[..., 0], im[..., 1], im[..., 2]
        return (0.299 * r + 0.587 * g + 0.114 * bl, 0.596 * r - 0.274 * g - 0.322 * bl,
                0.211 * r - 0.523 * g + 0.312 * bl)

    (y1, i1, q1), (y2, i2, q2) = yiq(a), yiq(b)
    f = max(1, int(np.floor(min(rows, cols) / 256 + 0.5)))  # MATLAB round: halves away from zero
    ave = fspecial_average(f)

    def shrink(p):
        return conv2_same(p, ave)[0:rows:f, 0:cols:f]

    y1, y2, i1, i2, q1, q2 = map(shrink, (y1, y2, i1, i2, q1, q2))
    pc1, pc2 = phasecong2_matlab(y1), phasecong2_matlab(y2)
    dx = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]]) / 16.0
    dy = np.array([[3, 10, 3], [0, 0, 0], [-3, -10, -3]]) / 16.0
    g1 = np.sqrt(conv2_same(y1, dx) ** 2 + conv2_same(y1, dy) ** 2)
    g2 = np.sqrt(conv2_same(y2, dx) ** 2 + conv2_same(y2, dy) ** 2)
    pc_sim = (2 * pc1 * pc2 + 0.85) / (pc1**2 + pc2**2 + 0.85)
    g_sim = (2 * g1 * g2 + 160) / (g1**2 + g2**2 + 160)
    pcm = np.maximum(pc1, pc2)
    fsim = np.sum(g_sim * pc_sim * pcm) / np.sum(pcm)
    i_sim = (2 * i1 * i2 + 200) / (i1**2 + i2**2 + 200)
    q_sim = (2 * q1 * q2 + 200) / (q1**2 + q2**2 + 200)
    chroma = np.real(np.power((i_sim * q_sim).astype(complex), 0.03))
    fsimc = np.sum(g_sim * pc_sim * chroma * pcm) / np.sum(pcm)
    return float(fsim), float(fsimc)


def gallery_photo(key: str, size: int | None = None) -> np.ndarray:
    """A gallery photo (uint8 H×W×3), centre-cropped to size×size when given."""
    from PIL import Image

    from core.images.samples import list_samples

    path = next(s.path for s in list_samples() if s.key == key)
    img = np.asarray(Image.open(path).convert("RGB"))
    if size is not None:
        top, left = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        img = img[top : top + size, left : left + size]
    return np.ascontiguousarray(img)


def blurred(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma == 0:
        return img
    out = ndimage.gaussian_filter(img.astype(np.float64), sigma=(sigma, sigma, 0), mode="reflect")
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


# --- CW-SSIM: cwssim_index.m on matlabPyrTools' buildSCFpyr.m, line by line ---------------------


def _interp1_extrap(x_table: np.ndarray, y_table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """MATLAB interp1(X, Y, x, 'linear', 'extrap') (pointOp.m's fallback)."""
    out = np.interp(x, x_table, y_table)
    left, right = x < x_table[0], x > x_table[-1]
    out[left] = y_table[0] + (x[left] - x_table[0]) * (y_table[1] - y_table[0]) / (x_table[1] - x_table[0])
    out[right] = y_table[-1] + (x[right] - x_table[-1]) * (y_table[-1] - y_table[-2]) / (x_table[-1] - x_table[-2])
    return out


def point_op(im: np.ndarray, lut: np.ndarray, origin: float, increment: float) -> np.ndarray:
    """pointOp.m: X = origin + increment*[0:size(lut(:),1)-1]; interp1(X, lut, im, 'linear', 'extrap')."""
    x_table = origin + increment * np.arange(lut.size)
    return _interp1_extrap(x_table, lut, im.ravel()).reshape(im.shape)


def rcos_fn(width: float, position: float, values: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """rcosFn.m."""
    sz = 256
    x = np.pi * np.arange(-sz - 1, 2) / (2 * sz)
    y = values[0] + (values[1] - values[0]) * np.cos(x) ** 2
    y[0] = y[1]
    y[sz + 2] = y[sz + 1]
    return position + (2 * width / np.pi) * (x + np.pi / 4), y


def _mfftshift(x: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(x)  # MATLAB's fftshift/ifftshift shift by floor(n/2)/ceil(n/2), as NumPy's


def build_scf_pyr(im: np.ndarray, ht: int, order: int) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """buildSCFpyr.m (twidth = 1) with buildSCFpyrLevs.m: the bands in pyrBand order (high-pass
    residual, ht levels of order+1 complex bands, low-pass residual) and their sizes (pind)."""
    max_ht = int(np.floor(np.log2(min(im.shape)))) - 2
    assert ht <= max_ht, f"Cannot build pyramid higher than {max_ht} levels."
    nbands = order + 1
    dims = np.array(im.shape)
    ctr = np.ceil((dims + 0.5) / 2).astype(int)
    xramp, yramp = np.meshgrid((np.arange(1, dims[1] + 1) - ctr[1]) / (dims[1] / 2),
                               (np.arange(1, dims[0] + 1) - ctr[0]) / (dims[0] / 2))
    angle = np.arctan2(yramp, xramp)
    log_rad = np.sqrt(xramp**2 + yramp**2)
    log_rad[ctr[0] - 1, ctr[1] - 1] = log_rad[ctr[0] - 1, ctr[1] - 2]
    log_rad = np.log2(log_rad)
    xrcos, yrcos = rcos_fn(1, -0.5, (0, 1))
    yrcos = np.sqrt(yrcos)
    yircos = np.sqrt(1.0 - yrcos**2)
    lo0mask = point_op(log_rad, yircos, xrcos[0], xrcos[1] - xrcos[0])
    imdft = _mfftshift(np.fft.fft2(im))
    lo0dft = imdft * lo0mask
    pyr, pind = _build_scf_pyr_levs(lo0dft, log_rad, xrcos, yrcos, angle, ht, nbands)
    hi0mask = point_op(log_rad, yrcos, xrcos[0], xrcos[1] - xrcos[0])
    hi0 = np.fft.ifft2(np.fft.ifftshift(imdft * hi0mask))
    return [np.real(hi0)] + pyr, [hi0.shape] + pind


def _build_scf_pyr_levs(lodft, log_rad, xrcos, yrcos, angle, ht, nbands):
    if ht <= 0:
        lo0 = np.fft.ifft2(np.fft.ifftshift(lodft))
        return [np.real(lo0)], [lo0.shape]
    xrcos = xrcos - np.log2(2)
    lutsize = 1024
    xcosn = np.pi * np.arange(-(2 * lutsize + 1), lutsize + 2) / lutsize
    order = nbands - 1
    const = (2 ** (2 * order)) * (math.factorial(order) ** 2) / (nbands * math.factorial(2 * order))
    alfa = np.mod(np.pi + xcosn, 2 * np.pi) - np.pi
    ycosn = 2 * np.sqrt(const) * (np.cos(xcosn) ** order) * (np.abs(alfa) < np.pi / 2)
    himask = point_op(log_rad, yrcos, xrcos[0], xrcos[1] - xrcos[0])
    bands, bind = [], []
    for b in range(1, nbands + 1):
        anglemask = point_op(angle, ycosn, xcosn[0] + np.pi * (b - 1) / nbands, xcosn[1] - xcosn[0])
        banddft = ((-1j) ** (nbands - 1)) * lodft * anglemask * himask
        band = np.fft.ifft2(np.fft.ifftshift(banddft))
        bands.append(band)
        bind.append(band.shape)
    dims = np.array(lodft.shape)
    ctr = np.ceil((dims + 0.5) / 2).astype(int)
    lodims = np.ceil((dims - 0.5) / 2).astype(int)
    loctr = np.ceil((lodims + 0.5) / 2).astype(int)
    lostart = ctr - loctr + 1
    loend = lostart + lodims - 1
    rows, cols = slice(lostart[0] - 1, loend[0]), slice(lostart[1] - 1, loend[1])
    log_rad, angle, lodft = log_rad[rows, cols], angle[rows, cols], lodft[rows, cols]
    yircos = np.abs(np.sqrt(1.0 - yrcos**2))
    lomask = point_op(log_rad, yircos, xrcos[0], xrcos[1] - xrcos[0])
    npyr, nind = _build_scf_pyr_levs(lomask * lodft, log_rad, xrcos, yrcos, angle, ht - 1, nbands)
    return bands + npyr, bind + nind


def fspecial_gaussian_rect(rows: int, cols: int, sigma: float) -> np.ndarray:
    """fspecial('gaussian', [rows cols], sigma)."""
    siz = ((rows - 1) / 2, (cols - 1) / 2)
    x, y = np.meshgrid(np.arange(-siz[1], siz[1] + 1), np.arange(-siz[0], siz[0] + 1))
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def cwssim_matlab(img1: np.ndarray, img2: np.ndarray, level: int = 4, orientations: int = 8, guardb: int = 0,
                  k: float = 0.0) -> tuple[float, np.ndarray]:
    """cwssim_index.m on two grey images (double): (cwssim, the cssim maps, orientations×h×w)."""
    pyr1, pind = build_scf_pyr(img1, level, orientations - 1)
    pyr2, _ = build_scf_pyr(img2, level, orientations - 1)
    winsize = 7
    window = np.ones((7, 7)) / 49
    gb = int(guardb / (2 ** (level - 1)))
    s = pind[(level - 1) * orientations + 1]  # pind((level-1)*or+2, :), 1-based
    w = fspecial_gaussian_rect(s[0] - winsize + 1, s[1] - winsize + 1, s[0] / 4)
    band_cssim, maps = [], []
    for i in range(1, orientations + 1):
        bandind = i + (level - 1) * orientations + 1
        band1, band2 = pyr1[bandind - 1], pyr2[bandind - 1]
        band1 = band1[gb : band1.shape[0] - gb, gb : band1.shape[1] - gb]
        band2 = band2[gb : band2.shape[0] - gb, gb : band2.shape[1] - gb]
        corr = band1 * np.conj(band2)
        varr = np.abs(band1) ** 2 + np.abs(band2) ** 2
        corr_band = filter2_valid(window, corr.real) + 1j * filter2_valid(window, corr.imag)
        varr_band = filter2_valid(window, varr)
        cssim_map = (2 * np.abs(corr_band) + k) / (varr_band + k)
        band_cssim.append(np.sum(cssim_map * w))
        maps.append(cssim_map)
    return float(np.mean(band_cssim)), np.stack(maps)


# --- NLPD: NLP_dist.m (Laparra et al. 2016), line by line ----------------------------------------

NLP_SIGMAS = [0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782]


def nlp_dn_filters() -> list[np.ndarray]:
    """DN_filters of NLP_dist.m: the 5×5 F2 of each level (assignments into 2:4 and (5,5) grow
    MATLAB's matrices to 5×5)."""
    f = [np.zeros((5, 5)) for _ in range(6)]
    f[0] = np.array([[0, 0, 0, 0, 0], [0, 0, 0.1011, 0, 0], [0, 0.1493, 0, 0.1460, 0.0072],
                     [0, 0, 0.1015, 0, 0], [0, 0, 0, 0, 0]], dtype=float)
    f[1][1:4, 1:4] = [[0, 0.0757, 0], [0.1986, 0, 0.1846], [0, 0.0837, 0]]
    f[2][1:4, 1:4] = [[0, 0.0477, 0], [0.2138, 0, 0.2243], [0, 0.0467, 0]]
    f[3][1:4, 1:4] = [[0, 0, 0], [0.2503, 0, 0.2616], [0, 0, 0]]
    f[4][1:4, 1:4] = [[0, 0, 0], [0.2598, 0, 0.2552], [0, 0, 0]]
    f[5][1:4, 1:4] = [[0, 0, 0], [0.2215, 0, 0.0717], [0, 0, 0]]
    return f


def _nlp_filter() -> np.ndarray:
    f = np.array([0.05, 0.25, 0.4, 0.25, 0.05])
    return np.outer(f, f)


def _nlp_downsample(im: np.ndarray) -> np.ndarray:
    # imfilter(I, filter, 'symmetric'): correlation, mirror padding that repeats the edge
    # (scipy's 'reflect'), output the size of I; then R(1:2:r, 1:2:c).
    r = ndimage.correlate(im, _nlp_filter(), mode="reflect")
    return r[0::2, 0::2]


def _nlp_upsample(im: np.ndarray, odd: np.ndarray) -> np.ndarray:
    im = np.pad(im, 1, mode="edge")  # padarray(I, [1 1 0], 'replicate')
    r, c = 2 * im.shape[0], 2 * im.shape[1]
    out = np.zeros((r, c))
    out[0:r:2, 0:c:2] = 4 * im
    out = ndimage.correlate(out, _nlp_filter(), mode="constant", cval=0.0)  # imfilter: zero padding
    return out[2 : r - 2 - odd[0], 2 : c - 2 - odd[1]]  # R(3:r-2-odd(1), 3:c-2-odd(2))


def laplacian_pyramid_s(im: np.ndarray, nlev: int = 6) -> list[np.ndarray]:
    pyr = []
    j = im
    for _ in range(nlev - 1):
        i = _nlp_downsample(j)
        odd = 2 * np.array(i.shape) - np.array(j.shape)
        pyr.append(j - _nlp_upsample(i, odd))
        j = i
    pyr.append(j)
    return pyr


def nlp_matlab(im: np.ndarray) -> list[np.ndarray]:
    """NLP(IM, DN_filts): the normalized levels of a grey image in [0, 1]."""
    filters = nlp_dn_filters()
    lap = laplacian_pyramid_s(im, 6)
    return [lap[n] / (NLP_SIGMAS[n] + conv2_same(np.abs(lap[n]), filters[n])) for n in range(6)]


def nlpd_matlab(im1: np.ndarray, im2: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """NLP_dist.m's DMOS_Lap_dn2 on two grey images in [0, 1], with the normalized differences."""
    y1, y2 = nlp_matlab(im1), nlp_matlab(im2)
    rr = [np.sqrt(np.mean((a - b) ** 2)) for a, b in zip(y1, y2)]
    return float(np.mean(rr)), [a - b for a, b in zip(y1, y2)]
