"""VSI (core.metrics.vsi) checked against a NumPy transcription of the authors' VSI.m with its
embedded SDSP and MATLAB's imresize/mat2gray (tests/vsi_mad_reference.py), and against piq 0.8.0
where its conventions agree (256×256, where both of its resizes are the identity)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classic_reference import blurred, gallery_photo, natural, noisy, pairs, to_tensor  # noqa: F401
from core.errors import ImageSizeMismatchError, ImageTooSmallError, InputRangeError
from core.metrics.vsi import imresize_matrix, saliency, vsi
from vsi_mad_reference import imresize_bilinear, sdsp, vsi_matlab

# Both in float64 (FFTs and resizes included): seen ≤ 1e-14. float32 input gets a float32
# value, whose rounding (~6e-8) the 2e-7 covers.
TOL = 2e-7


def test_vsi_matches_the_matlab_transcription_with_its_map(pairs):
    for a, b in pairs[:3]:  # 181×197: F = 1, SDSP enlarges to 256 and shrinks back (antialiased)
        want, want_map = vsi_matlab(a, b)
        got = vsi(to_tensor(a).double(), to_tensor(b).double(), return_map=True)
        assert abs(got.value.item() - want) <= 1e-10, (got.value.item(), want)
        np.testing.assert_allclose(got.map[0, 0].numpy(), want_map, rtol=0, atol=1e-10)
        assert abs(vsi(to_tensor(a), to_tensor(b)).item() - want) <= TOL


def test_vsi_shrinks_by_two_and_antialiases_above_384_px():
    # 401×419: F = round(401/256) = 2 with an odd last row and column; SDSP's 256×256 copy is an
    # antialiased shrink (a triangle 1.6 px wide per axis), which piq's interpolate does not do.
    photo = gallery_photo("coffee")
    big = np.ascontiguousarray(np.concatenate([photo, photo[::-1]], axis=0)[:401, :419])
    dist = blurred(big, 2.0)
    want, want_map = vsi_matlab(big, dist)
    got = vsi(to_tensor(big).double(), to_tensor(dist).double(), return_map=True)
    assert got.map.shape == (1, 1, 201, 210)
    assert abs(got.value.item() - want) <= 1e-10
    np.testing.assert_allclose(got.map[0, 0].numpy(), want_map, rtol=0, atol=1e-10)


def test_imresize_matrix_is_matlab_imresize_both_ways():
    x = np.random.default_rng(0).random((37, 300))
    for rows, cols in ((256, 256), (37, 300), (512, 100)):
        want = imresize_bilinear(x, rows, cols)
        got = imresize_matrix(37, rows) @ torch.from_numpy(x) @ imresize_matrix(300, cols).T
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)
    # A shrink averages (antialiasing), an identity size changes nothing.
    assert torch.allclose(imresize_matrix(8, 8), torch.eye(8, dtype=torch.float64))
    assert set((imresize_matrix(512, 256) > 0).sum(dim=1)[1:-1].tolist()) == {4}  # the borders mirror onto 3


def test_saliency_is_sdsp(natural):
    got = saliency(to_tensor(natural).double().mul(255).round())
    want = sdsp(natural, 1.34, 0.021, 145.0, 0.001)
    np.testing.assert_allclose(got[0, 0].numpy(), want, rtol=0, atol=1e-12)
    assert float(got.min()) == 0.0 and float(got.max()) == 1.0


def test_vsi_against_piq_where_conventions_agree():
    piq = pytest.importorskip("piq")
    # 256×256: piq's bilinear resizes are then identities too; left are its D50 white
    # (0.96421/0.82519 against 0.9642/0.8251) and its epsilons.
    for key in ("coffee", "astronaut"):
        a = gallery_photo(key, 256)
        for b in (noisy(a, 10.0), blurred(a, 1.5)):
            ta, tb = to_tensor(a).double(), to_tensor(b).double()
            theirs = float(piq.vsi(ta, tb, data_range=1.0, reduction="none"))
            assert vsi(ta, tb).item() == pytest.approx(theirs, abs=1e-6)


def test_vsi_differs_from_piq_where_piq_does_not_antialias():
    piq = pytest.importorskip("piq")
    a = gallery_photo("astronaut", 400)
    ta, tb = to_tensor(a).double(), to_tensor(noisy(a, 10.0)).double()
    theirs = float(piq.vsi(ta, tb, data_range=1.0, reduction="none"))
    assert 1e-5 < abs(vsi(ta, tb).item() - theirs) < 1e-3


def test_vsi_identity_is_one_symmetric_and_monotone_under_blur_and_noise():
    photo = gallery_photo("astronaut", 128)
    t = to_tensor(photo)
    assert vsi(t, t).item() == pytest.approx(1.0, abs=1e-12)
    for series in ([blurred(photo, s) for s in (0.7, 1.5, 4.0)], [noisy(photo, s) for s in (3, 12, 40)]):
        values = vsi(t, to_tensor(*series)).tolist()
        assert all(x > y for x, y in zip(values, values[1:])), values
        assert values[0] < 1
    other = to_tensor(noisy(photo, 12))
    assert vsi(t, other).item() == pytest.approx(vsi(other, t).item(), abs=1e-7)


def test_vsi_flat_and_grey_images_give_numbers_not_nan():
    # VSI.m divides 0 by 0 for these (constant a/b channels; no saliency anywhere).
    flat = torch.full((1, 3, 24, 24), 0.5)
    grey = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(0)).expand(1, 3, 24, 24)
    assert vsi(flat, flat).item() == pytest.approx(1.0)
    for a, b in ((flat, grey), (grey, flat), (grey, grey.flip(-1))):
        value = vsi(a, b).item()
        assert 0.0 <= value < 1.0


def test_vsi_batch_matches_singles(pairs):
    refs, dists = to_tensor(*[a for a, _ in pairs]), to_tensor(*[b for _, b in pairs])
    singles = [vsi(to_tensor(a), to_tensor(b)).item() for a, b in pairs]
    np.testing.assert_allclose(vsi(refs, dists).numpy(), singles, rtol=0, atol=1e-7)
    # one reference against several distorted images
    a = pairs[0][0]
    np.testing.assert_allclose(vsi(to_tensor(a), dists).numpy(), [vsi(to_tensor(a), to_tensor(b)).item()
                                                                  for _, b in pairs], rtol=0, atol=1e-7)


def test_vsi_float32_path_is_close(pairs):
    a, b = pairs[1]
    assert abs(vsi(to_tensor(a), to_tensor(b), precise=False).item() - vsi(to_tensor(a), to_tensor(b)).item()) <= 1e-5


def test_vsi_bad_input_is_rejected(natural):
    t = to_tensor(natural)
    with pytest.raises(InputRangeError, match="255"):
        vsi(t * 255, t * 255)
    with pytest.raises(ImageSizeMismatchError):
        vsi(t, t[..., :-1])
    with pytest.raises(ImageTooSmallError, match="at least 8"):
        vsi(t[..., :7, :7], t[..., :7, :7])
