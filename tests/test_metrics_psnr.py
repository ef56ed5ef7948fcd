"""PSNR (core.metrics.psnr) checked against scikit-image."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from classic_reference import natural, pairs, to_tensor  # noqa: F401 (fixtures)
from core.errors import ImageSizeMismatchError, InputRangeError
from core.metrics.psnr import psnr


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


@pytest.mark.parametrize("metric", [psnr])
def test_0_255_input_is_rejected(natural, metric):
    t = to_tensor(natural)
    with pytest.raises(InputRangeError, match="255"):
        metric(t * 255, t * 255)


@pytest.mark.parametrize("metric", [psnr])
def test_size_mismatch_is_rejected(metric):
    a = torch.rand(1, 3, 200, 200)
    with pytest.raises(ImageSizeMismatchError):
        metric(a, a[..., :199])
