"""The 8-bit levels and luma that PSNR, SSIM, MS-SSIM and GMSD share (core/metrics/_levels.py):
made once per image within one compare() or prepare_reference() call, with the same values as
each metric computing them alone."""

from __future__ import annotations

import torch

import core
from core.comparison import compare, prepare_reference
from core.metrics import _levels

FAMILY = ("psnr", "ssim", "ms_ssim", "gmsd")


def _images():
    gen = torch.Generator().manual_seed(3)
    ref = torch.rand(1, 3, 180, 190, generator=gen)
    dist = (ref + 0.05 * torch.randn(2, 3, 180, 190, generator=gen)).clamp(0, 1)
    return ref, dist


def test_shared_values_equal_each_metric_alone():
    ref, dist = _images()
    together = compare(None, ref, dist, metrics=FAMILY)
    for key in FAMILY:
        alone = compare(None, ref, dist, metrics=key)
        assert torch.equal(together[key], alone[key]), key
        if key in alone.maps:
            assert torch.equal(together.maps[key], alone.maps[key]), key


def test_luma_is_made_once_per_image_and_call(monkeypatch):
    ref, dist = _images()
    calls = []
    original = _levels.matlab_luma

    def counting(levels):
        calls.append(tuple(levels.shape))
        return original(levels)

    monkeypatch.setattr(_levels, "matlab_luma", counting)
    prepared = prepare_reference(None, ref, metrics=FAMILY)
    assert calls == [(1, 3, 180, 190)]  # SSIM, MS-SSIM and GMSD share the reference's luma
    calls.clear()
    compare(None, prepared, dist, metrics=FAMILY)
    assert calls == [(2, 3, 180, 190)]  # ... and the distorted images'
    calls.clear()
    compare(None, prepared, dist, metrics=FAMILY)
    assert calls == [(2, 3, 180, 190)]  # nothing is kept between calls


def test_shared_is_keyed_by_the_tensor_itself():
    scratch: dict = {}
    a, b = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    la = _levels.shared_levels(a, torch.float64, scratch)
    lb = _levels.shared_levels(b, torch.float64, scratch)
    assert la.max() == 0 and lb.min() == 255
    assert _levels.shared_levels(a, torch.float64, scratch) is la
    assert _levels.shared_levels(a, torch.float32, scratch).dtype == torch.float32  # dtype is part of the key
    assert _levels.shared_levels(a, torch.float64, None) is not la  # no scratch: computed every time


def test_public_functions_still_validate_every_call():
    ref, _ = _images()
    bad = ref.clone()
    bad[0, 0, 0, 0] = 2.0
    for fn in (core.psnr, core.ssim):
        try:
            fn(ref, bad)
        except core.InputRangeError as err:
            assert "[0.0, 1.0]" in str(err) or "[0, 1]" in str(err)
        else:
            raise AssertionError(f"{fn.__name__} accepted values above 1")


def test_compiled_luma_equals_the_pytorch_formula_for_every_colour():
    # All 16.7 million 8-bit colours, in float64 and float32 levels: the compiled rgb2gray
    # rounds every one of them to the same grey level as the PyTorch formula it replaces.
    g, b = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    for r in range(256):
        levels = torch.stack([torch.full_like(g, r), g, b]).unsqueeze(0)
        for dtype in (torch.float64, torch.float32):
            lv = levels.to(dtype)
            assert torch.equal(_levels.matlab_luma(lv), _levels._matlab_luma_torch(lv)), (r, dtype)


def test_compiled_levels_round_like_pytorch():
    # Every k/255 and every half-way (k + 0.5)/255, a step either side of each, values outside
    # [0, 1] and 2 million random ones, from float32 and float64, into float32 and float64.
    gen = torch.Generator().manual_seed(0)
    k = torch.arange(256, dtype=torch.float64)
    special = torch.cat([k / 255, (k + 0.5) / 255, torch.tensor([0.0, -0.0, 1.0, 1e-45, 0.9999999, -0.3, 1.7])])
    for src_dtype in (torch.float32, torch.float64):
        s = special.to(src_dtype)
        s = torch.cat([s, torch.nextafter(s, torch.tensor(2.0, dtype=src_dtype)),
                       torch.nextafter(s, torch.tensor(-2.0, dtype=src_dtype)),
                       torch.rand(2_000_000, generator=gen, dtype=src_dtype)])
        for dtype in (torch.float32, torch.float64):
            want = s.clamp(0.0, 1.0).mul(255.0).round().to(dtype)
            assert torch.equal(_levels.quantize(s, dtype), want), (src_dtype, dtype)


def test_levels_in_a_second_precision_come_from_the_first():
    scratch: dict = {}
    image = torch.rand(1, 3, 8, 8)
    as64 = _levels.shared_levels(image, torch.float64, scratch)
    as32 = _levels.shared_levels(image, torch.float32, scratch)
    assert as32.dtype == torch.float32 and torch.equal(as32.double(), as64)
