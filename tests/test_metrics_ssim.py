"""SSIM (core.metrics.ssim) checked against scikit-image; the no-autograd and CUDA checks cover
the whole 8-bit family (PSNR, SSIM, MS-SSIM)."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from classic_reference import (H, W, matlab_gray, natural, noisy, pairs, rng, sk_ssim_valid, to_tensor)  # noqa: F401 (fixtures)
from core.errors import ImageSizeMismatchError, ImageTooSmallError, InputRangeError
from core.metrics.ms_ssim import ms_ssim
from core.metrics.psnr import psnr
from core.metrics.ssim import SSIMResult, ssim, ssim_map_full_size


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
    a = rng(3).integers(0, 256, (11, 11, 3), dtype=np.uint8)
    b = noisy(a, 10.0)
    value = ssim(to_tensor(a), to_tensor(b), return_map=True)
    assert value.map.shape == (1, 1, 1, 1)
    # The valid map is a single pixel: skimage's centre pixel.
    expected = sk_ssim_valid(matlab_gray(a), matlab_gray(b), rgb=False)
    assert abs(value.value.item() - expected.item()) <= 1e-6


@pytest.mark.parametrize("metric", [ssim])
def test_0_255_input_is_rejected(natural, metric):
    t = to_tensor(natural)
    with pytest.raises(InputRangeError, match="255"):
        metric(t * 255, t * 255)


@pytest.mark.parametrize("metric", [ssim])
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


# The compiled CPU kernels (core/metrics/_ssim_kernels.py) against the PyTorch path they replace.
# Small tensors stay on PyTorch (loading the kernels would cost more than they save); these tests
# lower that threshold so that the kernels are what is compared.

@pytest.fixture
def kernels_for_every_size(monkeypatch):
    from core.metrics import _levels

    monkeypatch.setattr(_levels, "KERNEL_MIN_ELEMENTS", 0)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("mode", ["reference", "rgb"])
@pytest.mark.parametrize("n_ref,n_dist", [(1, 1), (1, 3), (3, 3), (3, 1)])
def test_compiled_maps_equal_the_pytorch_path(dtype, tol, mode, n_ref, n_dist, kernels_for_every_size):
    from core.metrics import ssim as ssim_module

    gen = torch.Generator().manual_seed(n_ref * 10 + n_dist)
    ref = torch.rand(n_ref, 3, 37, 52, generator=gen)
    dist = (ref[:1].expand(n_dist, -1, -1, -1) + 0.1 * torch.randn(n_dist, 3, 37, 52, generator=gen)).clamp(0, 1)
    prepared = ssim_module.prepare_planes(ref, mode, dtype == torch.float64, 11, "SSIM")
    y = ssim_module.planes(dist, mode, dtype)
    scale = prepared.scales[0]
    assert scale.planes.dtype == dtype and ssim_module._on_kernels(y)
    got_ssim, got_cs = ssim_module.moments_maps(scale, y)
    want_ssim, want_cs = ssim_module._moments_maps_torch(scale, y, (0.01 * 255) ** 2, (0.03 * 255) ** 2)
    assert got_ssim.shape == want_ssim.shape == (max(n_ref, n_dist), 3 if mode == "rgb" else 1, 27, 42)
    assert got_ssim.dtype == dtype
    assert torch.max(torch.abs(got_ssim - want_ssim)) <= tol
    assert torch.max(torch.abs(got_cs - want_cs)) <= tol
    x = torch.rand(2, 3, 30, 20, generator=gen, dtype=dtype) * 255
    assert torch.allclose(ssim_module._filter_valid(x), ssim_module._filter_valid_torch(x), rtol=0, atol=tol * 255)


def test_compiled_maps_take_strided_views(kernels_for_every_size):
    # The reference's moments are views of one filtered stack; the kernels must read them right.
    from core.metrics import ssim as ssim_module

    gen = torch.Generator().manual_seed(5)
    x = torch.rand(1, 3, 40, 40, generator=gen)
    y = x.flip(-1)
    prepared = ssim_module.prepare_planes(x, "rgb", True, 11, "SSIM")
    scale = prepared.scales[0]
    mu, e_xx = torch.cat([scale.mu, scale.e_xx], dim=1).split(3, dim=1)  # non-contiguous views
    strided = ssim_module.ScaleMoments(scale.planes, mu[:, :, :, :], e_xx.transpose(-1, -2).transpose(-1, -2))
    planes = ssim_module.planes(y, "rgb", torch.float64)
    a = ssim_module.moments_maps(scale, planes)
    b = ssim_module.moments_maps(strided, planes)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_small_images_stay_on_pytorch_and_large_ones_take_the_kernels():
    import subprocess
    import sys

    code = ("import sys, torch; from core.metrics.ssim import ssim; a = torch.rand(1, 3, 64, 64); "
            "ssim(a, a.flip(-1)); small = 'numba' in sys.modules; b = torch.rand(1, 3, 160, 160); "
            "ssim(b, b.flip(-1)); print(small, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


def test_every_kernel_compiles_for_both_precisions():
    from core.metrics._ssim_kernels import compile_all

    assert compile_all() >= 0.0  # `make setup` runs it so that no page view pays for compiling
