"""FSIM/FSIMc (core.metrics.fsim) checked against a NumPy transcription of the authors'
FeatureSIM.m with its embedded phasecong2 (tests/classic_reference.py), and against piq 0.8.0."""

from __future__ import annotations

import numpy as np
import pytest

from classic_reference import blurred, fsim_matlab, gallery_photo, natural, noisy, pairs, to_tensor  # noqa: F401
from core.errors import ImageSizeMismatchError, ImageTooSmallError, InputRangeError
from core.metrics.fsim import downsample_factor, fsim

# Both in float64 (FFTs included); the float32 result rounds at ~6e-8: 2e-7 stated.
TOL = 2e-7


def test_fsim_and_fsimc_match_the_matlab_transcription(pairs):
    for a, b in pairs[1:3]:  # odd sizes, F = 1: strong noise, blur
        want_fsim, want_fsimc = fsim_matlab(a, b)
        assert abs(fsim(to_tensor(a), to_tensor(b), chromatic=False).item() - want_fsim) <= TOL
        assert abs(fsim(to_tensor(a), to_tensor(b)).item() - want_fsimc) <= TOL


def test_fsim_with_matlab_downsampling_odd_size():
    # 387×390: F = round(387/256) = 2; an odd side keeps a last row averaged with conv2's zeros.
    photo = gallery_photo("coffee")
    a = np.ascontiguousarray(np.concatenate([photo, photo[::-1]], axis=0)[:387, :390])
    b = noisy(a, 8.0, seed=3)
    assert downsample_factor(387, 390) == 2
    result = fsim(to_tensor(a), to_tensor(b), return_map=True)
    assert result.map.shape == (1, 1, 194, 195)
    assert abs(result.value.item() - fsim_matlab(a, b)[1]) <= TOL


def test_downsample_factor_rounds_halves_up_as_matlab():
    assert [downsample_factor(s, 1000) for s in (100, 383, 384, 640, 767, 768)] == [1, 1, 2, 3, 3, 3]


def test_fsim_float32_path_is_close(pairs):
    a, b = pairs[0]
    assert abs(fsim(to_tensor(a), to_tensor(b), precise=False).item() - fsim(to_tensor(a), to_tensor(b)).item()) <= 1e-5


def test_fsim_against_piq_where_conventions_agree():
    piq = pytest.importorskip("piq")
    # Even sides below 384 px (F = 1): left are piq's lower median and machine-epsilon guards.
    a = gallery_photo("coffee", 128)
    for b in (noisy(a, 10.0),):
        ta, tb = to_tensor(a).double(), to_tensor(b).double()
        for chromatic in (True, False):
            theirs = float(piq.fsim(tb, ta, data_range=1.0, reduction="none", chromatic=chromatic))
            assert fsim(ta, tb, chromatic=chromatic).item() == pytest.approx(theirs, abs=2e-5)


def test_fsim_identity_is_one_and_monotone_under_blur_and_noise():
    photo = gallery_photo("astronaut", 128)
    t = to_tensor(photo)
    assert fsim(t, t).item() == pytest.approx(1.0, abs=1e-12)
    for series in ([blurred(photo, s) for s in (0.7, 1.5, 4.0)], [noisy(photo, s) for s in (3, 12, 40)]):
        values = fsim(t, to_tensor(*series)).tolist()
        assert all(x > y for x, y in zip(values, values[1:])), values
        assert values[0] < 1


def test_fsim_batch_matches_singles(pairs):
    chosen = pairs[2:]
    refs, dists = to_tensor(*[a for a, _ in chosen]), to_tensor(*[b for _, b in chosen])
    singles = [fsim(to_tensor(a), to_tensor(b)).item() for a, b in chosen]
    np.testing.assert_allclose(fsim(refs, dists).numpy(), singles, rtol=0, atol=1e-7)


def test_fsim_bad_input_is_rejected(natural):
    t = to_tensor(natural)
    with pytest.raises(InputRangeError, match="255"):
        fsim(t * 255, t * 255)
    with pytest.raises(ImageSizeMismatchError):
        fsim(t, t[..., :-1])
    with pytest.raises(ImageTooSmallError, match="at least 8"):
        fsim(t[..., :7, :7], t[..., :7, :7])
