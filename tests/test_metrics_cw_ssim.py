"""CW-SSIM (core.metrics.cw_ssim) checked against a NumPy transcription of the authors'
cwssim_index.m on matlabPyrTools' buildSCFpyr.m (tests/classic_reference.py: the whole pyramid,
read back with pyrBand's indices) and against pyiqa's CW_SSIM where pyiqa is installed.

pyiqa is not a project dependency (it pulls in transformers, timm, opencv, ...); the pyiqa test
skips without it. It was run in a scratch virtual environment holding pyiqa 0.1.16 next to the
project's own packages: ``/tmp/pyiqa-venv/bin/python -m pytest tests/test_metrics_cw_ssim.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classic_reference import (blurred, cwssim_matlab, gallery_photo, matlab_gray, natural, noisy, pairs,  # noqa: F401
                               to_tensor)
from core.errors import ImageSizeMismatchError, ImageTooSmallError, InputRangeError
from core.metrics.cw_ssim import CW_SSIM_LEVEL, CW_SSIM_MIN_SIZE, cw_ssim, max_levels

# Both run in float64 (FFTs included); the float32 result rounds at ~6e-8: 2e-7 is stated.
TOL = 2e-7


def _grey(img: np.ndarray) -> np.ndarray:
    return matlab_gray(img).astype(np.float64)


def test_cw_ssim_matches_the_matlab_transcription_with_its_map(pairs):
    for a, b in pairs:  # 181×197: odd sides at every level (the spectrum's larger half is kept)
        want, want_maps = cwssim_matlab(_grey(a), _grey(b))
        got = cw_ssim(to_tensor(a), to_tensor(b), return_map=True)
        assert abs(got.value.item() - want) <= TOL, (got.value.item(), want)
        assert got.map.shape == (1, 1, *want_maps.shape[1:])
        np.testing.assert_allclose(got.map[0, 0].numpy(), want_maps.mean(axis=0), rtol=0, atol=1e-6)


def test_cw_ssim_matches_on_a_wide_photo():
    # 96×333: a band 12×42 at the 4th level, so fspecial's Gaussian (sigma = rows/4 = 3 on both
    # axes) drops its tails below eps along the long side: that cut is part of the weights.
    photo = gallery_photo("coffee")[100:196, :333]
    for b in (noisy(photo, 8.0, seed=4), blurred(photo, 2.0)):
        want, _ = cwssim_matlab(_grey(photo), _grey(b))
        assert abs(cw_ssim(to_tensor(photo), to_tensor(b)).item() - want) <= TOL


def test_cw_ssim_float32_path_is_close(pairs):
    for a, b in pairs[:3]:
        precise = cw_ssim(to_tensor(a), to_tensor(b)).item()
        assert abs(cw_ssim(to_tensor(a), to_tensor(b), precise=False).item() - precise) <= 1e-5


def test_cw_ssim_against_pyiqa():
    ssim_arch = pytest.importorskip("pyiqa.archs.ssim_arch")
    model = ssim_arch.CW_SSIM()  # pyiqa's defaults: 4 levels, 8 orientations, guardb 0, K 0, as here
    for size in (256, 200):
        a = gallery_photo("coffee", size)
        for b in (noisy(a, 10.0), blurred(a, 1.5)):
            ours = cw_ssim(to_tensor(a), to_tensor(b)).item()
            # Fed the same 8-bit grey image, only pyiqa's float32 masks are left: ~1e-8 here.
            grey = [torch.from_numpy(_grey(x))[None, None] for x in (a, b)]
            assert ours == pytest.approx(float(model.cw_ssim(grey[0], grey[1], test_y_channel=False)), abs=1e-6)
            # Its own grey image is YIQ's unrounded luma: a few 1e-6 apart on these pairs.
            assert ours == pytest.approx(float(model(to_tensor(a), to_tensor(b))), abs=2e-5)


def test_cw_ssim_identity_is_one_symmetric_and_monotone_under_blur_and_noise():
    photo = gallery_photo("astronaut", 192)
    t = to_tensor(photo)
    assert cw_ssim(t, t).item() == pytest.approx(1.0, abs=1e-12)
    for series in ([blurred(photo, s) for s in (0.6, 1.2, 2.5, 5.0)], [noisy(photo, s) for s in (2, 6, 15, 40)]):
        d = to_tensor(*series)
        values = cw_ssim(t, d).tolist()
        assert all(x > y for x, y in zip(values, values[1:])), values
        assert values[0] < 1
        torch.testing.assert_close(cw_ssim(d, t.expand_as(d)), cw_ssim(t, d), rtol=0, atol=1e-7)


def test_cw_ssim_minimum_size_is_buildscfpyrs_height_limit():
    # buildSCFpyr builds at most floor(log2(side)) - 2 levels; CW-SSIM reads the 4th.
    assert max_levels(CW_SSIM_MIN_SIZE, 500) == CW_SSIM_LEVEL > max_levels(CW_SSIM_MIN_SIZE - 1, 500)
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, CW_SSIM_MIN_SIZE, CW_SSIM_MIN_SIZE + 9, generator=g)
    assert 0 < cw_ssim(a, (a * 0.9).clamp(0, 1)).item() < 1
    small = a[..., : CW_SSIM_MIN_SIZE - 1, :]
    with pytest.raises(ImageTooSmallError, match=f"at least {CW_SSIM_MIN_SIZE}"):
        cw_ssim(small, small)


def test_cw_ssim_batch_matches_singles(pairs):
    refs, dists = to_tensor(*[a for a, _ in pairs]), to_tensor(*[b for _, b in pairs])
    singles = [cw_ssim(to_tensor(a), to_tensor(b)).item() for a, b in pairs]
    np.testing.assert_allclose(cw_ssim(refs, dists).numpy(), singles, rtol=0, atol=1e-7)


def test_cw_ssim_flat_images_are_identical_not_nan():
    flat = torch.full((1, 3, 64, 64), 0.5)
    assert cw_ssim(flat, flat).item() == pytest.approx(1.0, abs=1e-9)


def test_cw_ssim_bad_input_is_rejected(natural):
    t = to_tensor(natural)
    with pytest.raises(InputRangeError, match="255"):
        cw_ssim(t * 255, t * 255)
    with pytest.raises(ImageSizeMismatchError):
        cw_ssim(t, t[..., :-1])
