"""VIFp (core.metrics.vifp) checked against a NumPy transcription of Sheikh's vifp_mscale.m
(tests/classic_reference.py) and against piq 0.8.0's vif_p on the same grey image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classic_reference import (blurred, gallery_photo, matlab_gray, natural, noisy, pairs, to_tensor,  # noqa: F401
                               vifp_matlab)
from core.errors import ImageSizeMismatchError, ImageTooSmallError, InputRangeError
from core.metrics.vifp import VIFP_MIN_SIZE, vifp

# Both run in float64; the float32 result rounds at ~6e-8, so 2e-7 is the stated tolerance.
TOL = 2e-7


def test_vifp_matches_the_matlab_transcription(pairs):
    for a, b in pairs:
        want = vifp_matlab(matlab_gray(a).astype(float), matlab_gray(b).astype(float))
        got = vifp(to_tensor(a), to_tensor(b)).item()
        assert abs(got - want) <= TOL, (got, want)


def test_vifp_float32_path_is_close(pairs):
    for a, b in pairs[:3]:
        assert abs(vifp(to_tensor(a), to_tensor(b), precise=False).item() - vifp(to_tensor(a), to_tensor(b)).item()) <= 1e-5


def test_vifp_against_piq_on_the_same_grey_image():
    piq = pytest.importorskip("piq")
    # piq guards with 1e-8 instead of 1e-10 and adds 1e-8 to both sums: about 1e-6 apart.
    a = gallery_photo("photographer", 192)
    for b in (noisy(a, 10.0), blurred(a, 1.5)):
        grey = [torch.from_numpy(matlab_gray(x).astype(np.float64) / 255.0)[None, None] for x in (a, b)]
        theirs = float(piq.vif_p(grey[1], grey[0], data_range=1.0, reduction="none"))  # piq: (dist, ref)
        assert vifp(to_tensor(a), to_tensor(b)).item() == pytest.approx(theirs, abs=1e-5)


def test_vifp_identity_is_one_and_monotone_under_blur_and_noise():
    photo = gallery_photo("astronaut", 192)
    t = to_tensor(photo)
    assert vifp(t, t).item() == pytest.approx(1.0, abs=1e-9)
    for series in ([blurred(photo, s) for s in (0.6, 1.2, 2.5, 5.0)], [noisy(photo, s) for s in (2, 6, 15, 40)]):
        values = vifp(t, to_tensor(*series)).tolist()
        assert all(x > y for x, y in zip(values, values[1:])), values
        assert values[0] < 1


def test_vifp_minimum_size_is_where_the_coarsest_window_fits():
    # One pixel less and the coarsest scale's 3×3 window no longer fits: MATLAB would sum nothing.
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, VIFP_MIN_SIZE, VIFP_MIN_SIZE, generator=g)
    assert np.isfinite(vifp(a, (a * 0.9).clamp(0, 1)).item())
    small = a[..., : VIFP_MIN_SIZE - 1, : VIFP_MIN_SIZE - 1]
    with pytest.raises(ImageTooSmallError, match=f"at least {VIFP_MIN_SIZE}"):
        vifp(small, small)

    def coarsest(side: int) -> int:  # vifp_mscale.m's sizes: 'valid' filter, then 1:2:end
        for n in (9, 5, 3):
            side = -(-(side - n + 1) // 2)
        return side - 3 + 1

    assert coarsest(VIFP_MIN_SIZE) == 1 and coarsest(VIFP_MIN_SIZE - 1) == 0


def test_vifp_batch_matches_singles(pairs):
    refs, dists = to_tensor(*[a for a, _ in pairs]), to_tensor(*[b for _, b in pairs])
    singles = [vifp(to_tensor(a), to_tensor(b)).item() for a, b in pairs]
    np.testing.assert_allclose(vifp(refs, dists).numpy(), singles, rtol=0, atol=1e-7)


def test_vifp_bad_input_is_rejected(natural):
    t = to_tensor(natural)
    with pytest.raises(InputRangeError, match="255"):
        vifp(t * 255, t * 255)
    with pytest.raises(ImageSizeMismatchError):
        vifp(t, t[..., :-1])
