"""PSNR / SSIM / MS-SSIM checked against independent references (scikit-image, numpy/scipy)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from core.classic import SSIMResult, ms_ssim, psnr, ssim, ssim_map_full_size
from core.errors import ImageSizeMismatchError, ImageTooSmallError, InputRangeError

# MATLAB rgb2gray weights, written out here rather than imported from the module.
LUMA = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
MS_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])

# Odd sizes on purpose: they exercise the valid-region crop and the MS-SSIM downsampling
# of an odd last row/column.
H, W = 181, 197


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = _rng(seed).normal(0.0, sigma, img.shape)
    return np.clip(np.round(img.astype(np.float64) + noise), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def natural() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[40 : 40 + H, 150 : 150 + W])


@pytest.fixture(scope="module")
def pairs(natural: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """uint8 H×W×3 (ref, dist) pairs: natural + noise, natural + blur, and pure noise."""
    rand_a = _rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    rand_b = _rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    blurred = ndimage.uniform_filter(natural, size=(5, 5, 1))
    return [
        (natural, _noisy(natural, 3.0)),
        (natural, _noisy(natural, 25.0, seed=1)),
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


# --- PSNR ---------------------------------------------------------------------------------


def test_psnr_matches_skimage(pairs):
    for a, b in pairs:
        expected = peak_signal_noise_ratio(a, b, data_range=255)
        got = psnr(to_tensor(a), to_tensor(b)).item()
        assert got == pytest.approx(expected, rel=1e-6)


def test_psnr_batch_matches_singles(pairs):
    refs = to_tensor(*[a for a, _ in pairs])
    dists = to_tensor(*[b for _, b in pairs])
    batch = psnr(refs, dists)
    assert batch.shape == (len(pairs),)
    expected = [peak_signal_noise_ratio(a, b, data_range=255) for a, b in pairs]
    np.testing.assert_allclose(batch.double().numpy(), expected, rtol=1e-6)


def test_psnr_identical_is_inf_without_warnings(natural):
    t = to_tensor(natural)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = psnr(t, t)
    assert value.item() == math.inf


def test_psnr_quantizes_to_8_bit(natural):
    t = to_tensor(natural)
    # Below half a grey level: the same 8-bit file, so infinite PSNR.
    assert psnr(t, (t + 0.4 / 255).clamp(0, 1)).item() == math.inf
    unquantized = psnr(t, (t + 0.4 / 255).clamp(0, 1), quantize=False).item()
    assert math.isfinite(unquantized) and unquantized > 50


def test_psnr_unquantized_matches_float_formula(pairs):
    a, b = pairs[1]
    ta, tb = to_tensor(a), to_tensor(b)
    mse = np.mean((ta.double().numpy() - tb.double().numpy()) ** 2)
    assert psnr(ta, tb, quantize=False).item() == pytest.approx(10 * np.log10(1.0 / mse), rel=1e-6)


# --- SSIM ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reference", "rgb"])
def test_ssim_matches_skimage(pairs, mode):
    for a, b in pairs:
        if mode == "reference":
            expected_map = sk_ssim_valid(matlab_gray(a), matlab_gray(b), rgb=False)
        else:
            expected_map = sk_ssim_valid(a, b, rgb=True)
        result = ssim(to_tensor(a), to_tensor(b), mode=mode, return_map=True)
        assert isinstance(result, SSIMResult)
        assert result.value.shape == (1,)
        assert result.map.shape == (1, 1, H - 10, W - 10)
        assert np.max(np.abs(result.map[0, 0].double().numpy() - expected_map)) <= 1e-6
        assert abs(result.value.item() - expected_map.mean()) <= 1e-6


def test_ssim_luma_is_matlab_rgb2gray():
    # rgb2gray(uint8([255 0 0])) = 76, ([0 255 0]) = 150, ([0 0 255]) = 29 in MATLAB;
    # a grey image stays grey, so SSIM of a grey level shift depends only on those levels.
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = 255
    assert matlab_gray(img)[0, 0] == 76
    flat = np.full((16, 16, 3), 76, np.uint8)
    # Pure red and grey 76 have the same MATLAB luma: reference-mode SSIM is exactly 1.
    assert ssim(to_tensor(img), to_tensor(flat)).item() == pytest.approx(1.0, abs=1e-12)
    assert ssim(to_tensor(img), to_tensor(flat), mode="rgb").item() < 0.9


def test_ssim_identical_is_one(natural):
    t = to_tensor(natural)
    for mode in ("reference", "rgb"):
        assert ssim(t, t, mode=mode).item() == pytest.approx(1.0, abs=1e-12)


def test_ssim_batch_and_broadcast_match_singles(pairs):
    refs = to_tensor(*[a for a, _ in pairs])
    dists = to_tensor(*[b for _, b in pairs])
    batch = ssim(refs, dists, return_map=True)
    singles = [ssim(to_tensor(a), to_tensor(b)).item() for a, b in pairs]
    np.testing.assert_allclose(batch.value.numpy(), singles, rtol=0, atol=1e-12)
    assert batch.map.shape == (len(pairs), 1, H - 10, W - 10)
    # One reference against many distorted images.
    ref = to_tensor(pairs[0][0])
    fan_out = ssim(ref, dists[:3])
    np.testing.assert_allclose(fan_out.numpy(), singles[:3], rtol=0, atol=1e-12)


def test_ssim_map_full_size(pairs):
    a, b = pairs[0]
    result = ssim(to_tensor(a), to_tensor(b), return_map=True)
    padded = ssim_map_full_size(result.map, H, W)
    assert padded.shape == (1, 1, H, W)
    assert torch.equal(padded[..., 5:-5, 5:-5], result.map)
    border = torch.ones(H, W, dtype=torch.bool)
    border[5:-5, 5:-5] = False
    assert padded[0, 0][border].isnan().all()
    edge = ssim_map_full_size(result.map, H, W, fill="edge")
    assert not edge.isnan().any()
    assert edge[0, 0, 0, 0] == result.map[0, 0, 0, 0]
    with pytest.raises(ValueError):
        ssim_map_full_size(result.map, H + 1, W)


def test_ssim_smallest_size():
    a = _rng(3).integers(0, 256, (11, 11, 3), dtype=np.uint8)
    b = _noisy(a, 10.0)
    value = ssim(to_tensor(a), to_tensor(b), return_map=True)
    assert value.map.shape == (1, 1, 1, 1)
    # The valid map is a single pixel: skimage's centre pixel.
    expected = sk_ssim_valid(matlab_gray(a), matlab_gray(b), rgb=False)
    assert abs(value.value.item() - expected.item()) <= 1e-6


# --- MS-SSIM ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reference", "rgb"])
def test_ms_ssim_matches_numpy_reference(pairs, mode):
    for a, b in pairs:
        if mode == "reference":
            expected = ms_ssim_np(matlab_gray(a), matlab_gray(b))
        else:
            expected = np.mean([ms_ssim_np(a[..., c], b[..., c]) for c in range(3)])
        got = ms_ssim(to_tensor(a), to_tensor(b), mode=mode).item()
        assert abs(got - expected) <= 1e-5, (got, expected)


def test_ms_ssim_identity_and_monotonic(natural):
    t = to_tensor(natural)
    assert ms_ssim(t, t).item() == pytest.approx(1.0, abs=1e-12)
    values = [ms_ssim(t, to_tensor(_noisy(natural, s))).item() for s in (2.0, 8.0, 20.0, 50.0)]
    assert all(x > y for x, y in zip(values, values[1:])), values


def test_ms_ssim_batch_matches_singles(pairs):
    refs = to_tensor(*[a for a, _ in pairs])
    dists = to_tensor(*[b for _, b in pairs])
    batch = ms_ssim(refs, dists)
    singles = [ms_ssim(to_tensor(a), to_tensor(b)).item() for a, b in pairs]
    np.testing.assert_allclose(batch.numpy(), singles, rtol=0, atol=1e-12)


def test_ms_ssim_anticorrelated_is_zero_not_nan(natural):
    t = to_tensor(natural)
    value = ms_ssim(t, 1.0 - t).item()
    assert math.isfinite(value) and 0.0 <= value < 0.5


# --- errors and conventions ---------------------------------------------------------------


@pytest.mark.parametrize("metric", [psnr, ssim, ms_ssim])
def test_0_255_input_is_rejected(natural, metric):
    t = to_tensor(natural)
    with pytest.raises(InputRangeError, match="255"):
        metric(t * 255, t * 255)


@pytest.mark.parametrize("metric", [psnr, ssim, ms_ssim])
def test_size_mismatch_is_rejected(metric):
    a = torch.rand(1, 3, 200, 200)
    with pytest.raises(ImageSizeMismatchError):
        metric(a, a[..., :199])


def test_too_small_is_rejected():
    with pytest.raises(ImageTooSmallError, match="11"):
        ssim(torch.rand(1, 3, 10, 40), torch.rand(1, 3, 10, 40))
    with pytest.raises(ImageTooSmallError, match="176"):
        ms_ssim(torch.rand(1, 3, 175, 300), torch.rand(1, 3, 175, 300))
    # 176 itself is enough: the coarsest scale is exactly one 11×11 window.
    assert ms_ssim(torch.rand(1, 3, 176, 180), torch.rand(1, 3, 176, 180)).shape == (1,)


def test_unknown_mode_is_rejected():
    a = torch.rand(1, 3, 20, 20)
    with pytest.raises(ValueError, match="mode"):
        ssim(a, a, mode="luma")  # type: ignore[arg-type]


def test_no_autograd():
    a = torch.rand(1, 3, 180, 180, requires_grad=True)
    b = torch.rand(1, 3, 180, 180)
    for value in (psnr(a, b), ssim(a, b), ms_ssim(a, b), ssim(a, b, return_map=True).map):
        assert not value.requires_grad


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(pairs):
    refs = to_tensor(*[a for a, _ in pairs])
    dists = to_tensor(*[b for _, b in pairs])
    gpu_r, gpu_d = refs.cuda(), dists.cuda()
    torch.testing.assert_close(psnr(gpu_r, gpu_d).cpu(), psnr(refs, dists), rtol=1e-5, atol=0)
    for mode in ("reference", "rgb"):
        gpu = ssim(gpu_r, gpu_d, mode=mode, return_map=True)
        cpu = ssim(refs, dists, mode=mode, return_map=True)
        assert gpu.value.device.type == "cuda"
        # Both compute in float64; only summation order differs (and TF32 must not leak in).
        torch.testing.assert_close(gpu.value.cpu(), cpu.value, rtol=0, atol=1e-7)
        torch.testing.assert_close(gpu.map.cpu(), cpu.map, rtol=0, atol=1e-7)
        torch.testing.assert_close(
            ms_ssim(gpu_r, gpu_d, mode=mode).cpu(), ms_ssim(refs, dists, mode=mode), rtol=0, atol=1e-7
        )


@pytest.mark.parametrize("mode", ["reference", "rgb"])
def test_fast_float32_path_stays_within_1e5_of_skimage(mode):
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(3)
    from skimage import data

    ref8 = data.astronaut()[:200, :220].copy()
    dist8 = np.clip(ref8.astype(np.int16) + rng.normal(0, 20, ref8.shape).round(), 0, 255).astype(np.uint8)
    ref, dist = (torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255 for a in (ref8, dist8))
    fast = ssim(ref, dist, mode=mode, return_map=True, precise=False)
    if mode == "rgb":
        _, full = structural_similarity(ref8, dist8, data_range=255, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, full=True, channel_axis=2)
        want_map = full.mean(axis=2)[5:-5, 5:-5]
    else:
        w = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
        luma = lambda a: np.floor(a.astype(np.float64) @ w + 0.5).clip(0, 255)  # noqa: E731
        _, full = structural_similarity(luma(ref8), luma(dist8), data_range=255, gaussian_weights=True,
                                        sigma=1.5, use_sample_covariance=False, full=True)
        want_map = full[5:-5, 5:-5]
    assert abs(fast.value.item() - want_map.mean()) <= 1e-5
    assert np.abs(fast.map[0, 0].numpy() - want_map).max() <= 1e-3
    precise_ms = ms_ssim(ref, dist, mode=mode) if min(ref.shape[-2:]) >= 176 else None
    if precise_ms is not None:
        assert abs(ms_ssim(ref, dist, mode=mode, precise=False).item() - precise_ms.item()) <= 1e-5
