"""NLPD (core.metrics.nlpd) checked against a NumPy/SciPy transcription of the authors' NLP_dist.m
(tests/classic_reference.py) and against pyiqa's NLPD where pyiqa is installed.

pyiqa is not a project dependency (it pulls in transformers, timm, opencv, ...); the pyiqa test
skips without it. It was run in a scratch virtual environment holding pyiqa 0.1.16 next to the
project's own packages: ``/tmp/pyiqa-venv/bin/python -m pytest tests/test_metrics_nlpd.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classic_reference import (blurred, gallery_photo, matlab_gray, natural, nlpd_matlab, noisy, pairs,  # noqa: F401
                               to_tensor)
from core.errors import ImageSizeMismatchError, ImageTooSmallError, InputRangeError
from core.metrics import nlpd as nlpd_module
from core.metrics.nlpd import NLPD_MIN_SIZE, level_sides, nlpd

# Both run in float64; the float32 result rounds at ~6e-8 (values up to ~1.2): 2e-7 is stated.
TOL = 2e-7


def _grey(img: np.ndarray) -> np.ndarray:
    return matlab_gray(img).astype(np.float64) / 255.0


def test_nlpd_matches_the_matlab_transcription_with_every_level(pairs):
    for a, b in pairs:  # 181×197: odd sides at every level (the upsampled level drops a row)
        want, differences = nlpd_matlab(_grey(a), _grey(b))
        got = nlpd(to_tensor(a), to_tensor(b), return_map=True)
        assert abs(got.value.item() - want) <= TOL, (got.value.item(), want)
        assert [tuple(level.shape[-2:]) for level in got.levels] == [d.shape for d in differences]
        for level, difference in zip(got.levels, differences):
            np.testing.assert_allclose(level[0, 0].numpy(), np.abs(difference), rtol=0, atol=1e-6)
        torch.testing.assert_close(got.map, got.levels[0], rtol=0, atol=0)


def test_nlpd_matches_on_a_photo_with_even_and_odd_levels():
    photo = gallery_photo("coffee")[:300, :322]  # 300 → 150 → 75 → 38 → 19 → 10; 322 → 161 → 81 → ...
    for b in (noisy(photo, 8.0, seed=4), blurred(photo, 2.0)):
        want, _ = nlpd_matlab(_grey(photo), _grey(b))
        assert abs(nlpd(to_tensor(photo), to_tensor(b)).item() - want) <= TOL


def test_nlpd_float32_path_is_close(pairs):
    for a, b in pairs[:3]:
        precise = nlpd(to_tensor(a), to_tensor(b)).item()
        assert abs(nlpd(to_tensor(a), to_tensor(b), precise=False).item() - precise) <= 1e-5


def test_nlpd_against_pyiqa(monkeypatch):
    nlpd_arch = pytest.importorskip("pyiqa.archs.nlpd_arch")
    model = nlpd_arch.NLPD().double()
    a = gallery_photo("coffee", 256)

    def theirs(x: torch.Tensor, y: torch.Tensor) -> float:  # pyiqa's nlpd() on a given grey plane
        levels = zip(model.pyramid(x), model.pyramid(y))
        return float(torch.stack([(p - q).square().mean().sqrt() for p, q in levels]).mean())

    for b in (noisy(a, 10.0), blurred(a, 1.5)):
        grey = [torch.from_numpy(_grey(x))[None, None] for x in (a, b)]
        ours = nlpd(to_tensor(a), to_tensor(b)).item()
        # pyiqa crops every normalization filter to its central 3×3, dropping NLP_dist.m's 0.0072
        # at (3, 5) of the finest one: about 5e-4 of NLPD on these pairs ...
        assert abs(ours - theirs(*grey)) > 1e-4
        # ... and without that tap the two agree on the same grey image to float32 rounding.
        with monkeypatch.context() as patch:
            finest = tuple(tap for tap in nlpd_module._DN_FILTERS[0] if tap[:2] != (2, 4))
            patch.setattr(nlpd_module, "_DN_FILTERS", (finest, *nlpd_module._DN_FILTERS[1:]))
            assert nlpd(to_tensor(a), to_tensor(b)).item() == pytest.approx(theirs(*grey), abs=1e-7)
        # Its own grey image is YIQ's unrounded luma, not rgb2gray's 8-bit levels: a few 1e-4 apart.
        assert float(model(to_tensor(a).double(), to_tensor(b).double())) == pytest.approx(ours, abs=1e-3)


def test_nlpd_identity_is_zero_symmetric_and_monotone_under_blur_and_noise():
    photo = gallery_photo("astronaut", 192)
    t = to_tensor(photo)
    assert nlpd(t, t).item() == 0.0
    for series in ([blurred(photo, s) for s in (0.6, 1.2, 2.5, 5.0)], [noisy(photo, s) for s in (2, 6, 15, 40)]):
        d = to_tensor(*series)
        values = nlpd(t, d).tolist()
        assert all(x < y for x, y in zip(values, values[1:])), values
        assert values[0] > 0
        torch.testing.assert_close(nlpd(d, t.expand_as(d)), nlpd(t, d), rtol=0, atol=1e-7)


def test_nlpd_minimum_size_keeps_every_halved_level_two_pixels_wide():
    # The five levels the pyramid halves get a mirror padding of 2 (the 5×5 filter): at 17 the
    # fifth is 2 pixels wide, at 16 it is 1 and the padding would mirror its own mirror.
    assert min(level_sides(NLPD_MIN_SIZE)[:-1]) == 2 and min(level_sides(NLPD_MIN_SIZE - 1)[:-1]) == 1
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, NLPD_MIN_SIZE, NLPD_MIN_SIZE + 4, generator=g)
    b = (a * 0.9).clamp(0, 1)
    want, _ = nlpd_matlab(_grey(np.round(a[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)),
                          _grey(np.round(b[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)))
    assert nlpd(a, b).item() == pytest.approx(want, abs=TOL)
    small = a[..., : NLPD_MIN_SIZE - 1, :]
    with pytest.raises(ImageTooSmallError, match=f"at least {NLPD_MIN_SIZE}"):
        nlpd(small, small)


def test_nlpd_batch_matches_singles(pairs):
    refs, dists = to_tensor(*[a for a, _ in pairs]), to_tensor(*[b for _, b in pairs])
    singles = [nlpd(to_tensor(a), to_tensor(b)).item() for a, b in pairs]
    np.testing.assert_allclose(nlpd(refs, dists).numpy(), singles, rtol=0, atol=1e-7)


def test_nlpd_bad_input_is_rejected(natural):
    t = to_tensor(natural)
    with pytest.raises(InputRangeError, match="255"):
        nlpd(t * 255, t * 255)
    with pytest.raises(ImageSizeMismatchError):
        nlpd(t, t[..., :-1])
