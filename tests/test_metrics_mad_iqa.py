"""MAD of Larson & Chandler (core.metrics.mad_iqa) checked against a NumPy transcription of the
authors' MAD_index.m with its C helpers ical_std.c and ical_stat.c (tests/vsi_mad_reference.py).
piq has no MAD; pyiqa's differs in the ways the module docstring lists (checked in a scratch
environment, not here: pyiqa is not a dependency). Images are kept small: MAD costs 20 FFT
filterings and block moments per image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classic_reference import blurred, gallery_photo, noisy, to_tensor
from core.errors import ImageSizeMismatchError, ImageTooSmallError, InputRangeError
from core.metrics.mad_iqa import BETA1, BETA2, mad_iqa, myrgb2gray
from vsi_mad_reference import mad_matlab
from vsi_mad_reference import myrgb2gray as myrgb2gray_matlab


@pytest.fixture(scope="module")
def photo_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Crops of real photos: 64×64 (sizes ≡ 0 mod 4, where ical_std.c skips the last neighbour)
    and 67×81 (odd); mild and strong noise, blur."""
    astronaut, coffee = gallery_photo("astronaut"), gallery_photo("coffee")
    a = np.ascontiguousarray(astronaut[100:164, 150:214])
    c = np.ascontiguousarray(coffee[:67, 100:181])
    return [(a, noisy(a, 10.0)), (a, blurred(a, 1.5)), (c, noisy(c, 15.0, seed=2)), (c, noisy(c, 40.0, seed=3))]


def test_mad_matches_the_matlab_transcription_with_its_maps(photo_pairs):
    for a, b in photo_pairs:
        want = mad_matlab(a, b)
        got = mad_iqa(to_tensor(a).double(), to_tensor(b).double(), return_map=True)
        assert got.value.item() == pytest.approx(want["MAD"], rel=1e-9, abs=1e-9)
        assert got.detect.item() == pytest.approx(want["HI"], rel=1e-9)
        assert got.appear.item() == pytest.approx(want["LO"], rel=1e-9)
        assert got.alpha.item() == pytest.approx(want["sig"], abs=1e-12)
        np.testing.assert_allclose(got.map[0, 0].numpy(), want["map_hi"], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(got.appearance_map[0, 0].numpy(), want["map_lo"], rtol=1e-9, atol=1e-9)
        # the app's float32 input: within 1e-6 of the value (relative; MAD runs to ~100)
        assert mad_iqa(to_tensor(a), to_tensor(b)).item() == pytest.approx(want["MAD"], rel=1e-6)


def test_blend_constants_are_the_papers():
    assert (round(BETA1, 3), round(BETA2, 3)) == (0.467, 0.130)


def test_myrgb2gray_rounds_each_product_as_uint8_arithmetic_does():
    rgb = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    got = myrgb2gray(torch.from_numpy(rgb).permute(2, 0, 1)[None].double())[0, 0].numpy()
    np.testing.assert_array_equal(got, myrgb2gray_matlab(rgb))
    # the per-product rounding matters: rounding the unrounded sum differs on some pixels
    plain = np.floor(rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) + 0.5)
    assert (plain != got).mean() > 0.1


def test_white_reads_the_look_up_tables_254_entry():
    # LUT(img + 1) in uint8: 255 + 1 saturates, so 254 and 255 have the same luminance and a
    # change between them is invisible to the detection stage (its local MSE is not zero).
    a = np.full((40, 40, 3), 254, np.uint8)
    a[::2] = 200
    b = a.copy()
    b[b == 254] = 255
    result = mad_iqa(to_tensor(a).double(), to_tensor(b).double(), return_map=True)
    assert result.detect.item() == 0.0 and result.value.item() == 0.0


def test_mad_identity_is_zero_and_monotone_under_blur_and_noise():
    photo = np.ascontiguousarray(gallery_photo("coffee")[100:196, 100:196])
    t = to_tensor(photo)
    assert mad_iqa(t, t).item() == 0.0
    for series in ([blurred(photo, s) for s in (0.7, 1.5, 4.0)], [noisy(photo, s) for s in (3, 6, 12, 40)]):
        values = mad_iqa(t, to_tensor(*series)).tolist()
        assert all(x < y for x, y in zip(values, values[1:])), values
        assert values[0] > 0


def test_distortion_below_the_detection_threshold_scores_zero():
    # MAD_index.m: where the distortion's log contrast stays under the reference's (textured
    # regions mask it), d_detect = 0, so α = 1 and MAD = d_appear^0 · 0 = 0 however large d_appear is.
    photo = gallery_photo("astronaut", 96)
    result = mad_iqa(to_tensor(photo), to_tensor(noisy(photo, 12.0)), return_map=True)
    assert result.detect.item() == 0.0 and result.alpha.item() == 1.0 and result.appear.item() > 0.5
    assert result.value.item() == 0.0


def test_mad_is_not_symmetric(photo_pairs):
    # the reference alone sets the masking (its contrast, its luminance threshold)
    a, b = photo_pairs[0]
    assert abs(mad_iqa(to_tensor(a), to_tensor(b)).item() - mad_iqa(to_tensor(b), to_tensor(a)).item()) > 1e-3


def test_mad_batch_matches_singles(photo_pairs):
    chosen = photo_pairs[:2]
    refs, dists = to_tensor(*[a for a, _ in chosen]), to_tensor(*[b for _, b in chosen])
    singles = [mad_iqa(to_tensor(a), to_tensor(b)).item() for a, b in chosen]
    np.testing.assert_allclose(mad_iqa(refs, dists).numpy(), singles, rtol=1e-6)
    a = chosen[0][0]
    np.testing.assert_allclose(mad_iqa(to_tensor(a), dists).numpy(), singles, rtol=1e-6)


def test_mad_float32_path_is_close(photo_pairs):
    a, b = photo_pairs[2]
    precise = mad_iqa(to_tensor(a), to_tensor(b)).item()
    assert mad_iqa(to_tensor(a), to_tensor(b), precise=False).item() == pytest.approx(precise, rel=1e-4)


def test_mad_bad_input_is_rejected(photo_pairs):
    t = to_tensor(photo_pairs[0][0])
    with pytest.raises(InputRangeError, match="255"):
        mad_iqa(t * 255, t * 255)
    with pytest.raises(ImageSizeMismatchError):
        mad_iqa(t, t[..., :-1])
    with pytest.raises(ImageTooSmallError, match="at least 34"):
        mad_iqa(t[..., :33, :40], t[..., :33, :40])
    smallest = mad_iqa(t[..., :34, :34], t[..., :34, :34].flip(-1), return_map=True)  # one row, one column left
    assert smallest.map.shape == (1, 1, 34, 34) and smallest.appear.item() > 0
