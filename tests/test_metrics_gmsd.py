"""GMSD (core.metrics.gmsd) checked against a NumPy transcription of the authors' GMSD.m
(tests/classic_reference.py) and against piq 0.8.0, whose conventions differ in three stated ways."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classic_reference import (blurred, gallery_photo, gmsd_matlab, matlab_gray, natural, noisy,  # noqa: F401
                               pairs, to_tensor)
from core.errors import ImageSizeMismatchError, ImageTooSmallError, InputRangeError
from core.metrics.gmsd import gmsd

# Tolerance: the module and the transcription both run in float64; the value is returned as
# float32 for float32 input, so 1e-7 covers that rounding.
TOL = 1e-7


def test_gmsd_matches_the_matlab_transcription_with_its_map(pairs):
    for a, b in pairs:  # odd sizes (181×197): the zero-padded 2×2 average's last row dims
        want, want_map = gmsd_matlab(matlab_gray(a).astype(float), matlab_gray(b).astype(float))
        got = gmsd(to_tensor(a), to_tensor(b), return_map=True)
        assert abs(got.value.item() - want) <= TOL, (got.value.item(), want)
        np.testing.assert_allclose(got.map[0, 0].numpy(), want_map, rtol=0, atol=1e-6)


def test_gmsd_float32_path_is_close(pairs):
    for a, b in pairs[:3]:
        precise = gmsd(to_tensor(a), to_tensor(b)).item()
        fast = gmsd(to_tensor(a), to_tensor(b), precise=False).item()
        assert abs(precise - fast) <= 1e-5


def test_gmsd_against_piq_where_conventions_agree():
    piq = pytest.importorskip("piq")
    # Even sides (no padding question) and piq fed the same 8-bit grey image; piq divides by N
    # where MATLAB's std2 divides by N - 1, so its value is rescaled by sqrt(N / (N - 1)).
    a = gallery_photo("coffee", 256)
    b = noisy(a, 12.0)
    grey = [torch.from_numpy(matlab_gray(x).astype(np.float64) / 255.0)[None, None] for x in (a, b)]
    theirs = float(piq.gmsd(grey[0], grey[1], data_range=1.0, reduction="none"))
    n = 128 * 128
    ours = gmsd(to_tensor(a), to_tensor(b)).item()
    assert ours == pytest.approx(theirs * np.sqrt(n / (n - 1)), abs=1e-6)


def test_gmsd_identity_is_zero_and_monotone_under_blur_and_noise():
    photo = gallery_photo("astronaut", 192)
    t = to_tensor(photo)
    assert gmsd(t, t).item() == 0.0
    for series in ([blurred(photo, s) for s in (0.6, 1.2, 2.5, 5.0)], [noisy(photo, s) for s in (2, 6, 15, 40)]):
        values = gmsd(t, to_tensor(*series)).tolist()
        assert all(x < y for x, y in zip(values, values[1:])), values
        assert values[0] > 0


def test_gmsd_batch_matches_singles(pairs):
    refs, dists = to_tensor(*[a for a, _ in pairs]), to_tensor(*[b for _, b in pairs])
    singles = [gmsd(to_tensor(a), to_tensor(b)).item() for a, b in pairs]
    np.testing.assert_allclose(gmsd(refs, dists).numpy(), singles, rtol=0, atol=1e-7)


def test_gmsd_bad_input_is_rejected(natural):
    t = to_tensor(natural)
    with pytest.raises(InputRangeError, match="255"):
        gmsd(t * 255, t * 255)
    with pytest.raises(ImageSizeMismatchError):
        gmsd(t, t[..., :-1])
    with pytest.raises(ImageTooSmallError, match="at least 4"):
        gmsd(t[..., :3, :3], t[..., :3, :3])
