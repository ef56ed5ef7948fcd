"""Metric properties on small random images (Hypothesis): identity gives the best value, the
symmetric metrics are symmetric, values stay in their documented range, and LPIPS's layer
contributions add up to the total."""

from __future__ import annotations

import math

import hypothesis_profiles  # noqa: F401  (loads the profile)
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import core
from core import metrics


@st.composite
def image_pairs(draw, min_side: int = 31, max_side: int = 56):
    """Two 8-bit images of one size: random, smooth, or one a small change of the other."""
    h, w = draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side))
    n = draw(st.integers(1, 2))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    a = torch.rand(n, 3, h, w, generator=gen)
    if draw(st.booleans()):  # smooth content, like a photo
        a = torch.nn.functional.avg_pool2d(a, 5, stride=1, padding=2, count_include_pad=False)
    kind = draw(st.sampled_from(["random", "noise", "shift", "flat"]))
    if kind == "random":
        b = torch.rand(n, 3, h, w, generator=gen)
    elif kind == "noise":
        b = (a + draw(st.floats(0.001, 0.3)) * torch.randn(a.shape, generator=gen)).clamp(0, 1)
    elif kind == "shift":
        b = a.roll(draw(st.integers(1, 4)), dims=-1)
    else:
        b = torch.full_like(a, draw(st.floats(0.0, 1.0)))
    return a.mul(255).round().div(255), b.mul(255).round().div(255)


@pytest.fixture(scope="module")
def engine():
    return core.Engine("alex", device="cpu")


@given(pair=image_pairs())
def test_identity_gives_the_best_value(engine, pair):
    a, _ = pair
    result = core.compare(engine, a, a, metrics="lpips,psnr,ssim")
    assert torch.all(result["lpips"] == 0)
    assert torch.all(torch.isinf(result["psnr"]))
    torch.testing.assert_close(result["ssim"], torch.ones_like(result["ssim"]), rtol=0, atol=1e-12)
    for key in ("lpips", "psnr", "ssim"):
        assert torch.all(result[key] == metrics.get(key).identical) or key == "ssim"


@given(pair=image_pairs())
def test_symmetric_metrics_are_symmetric(engine, pair):
    a, b = pair
    ab = core.compare(engine, a, b, metrics="lpips,psnr,ssim")
    ba = core.compare(engine, b, a, metrics="lpips,psnr,ssim")
    torch.testing.assert_close(ab["psnr"], ba["psnr"], rtol=0, atol=0)
    torch.testing.assert_close(ab["ssim"], ba["ssim"], rtol=0, atol=1e-6)
    torch.testing.assert_close(ab["lpips"], ba["lpips"], rtol=1e-5, atol=1e-6)


@given(pair=image_pairs())
def test_values_stay_in_their_documented_range(engine, pair):
    a, b = pair
    result = core.compare(engine, a, b, metrics="lpips,psnr,ssim")
    for key in result.metrics:
        low, high = metrics.get(key).value_range
        values = result[key].double()
        assert torch.all((values >= low - 1e-6) & (values <= high + 1e-6)), (key, values)
        assert not torch.isnan(values).any(), key


@given(pair=image_pairs())
def test_layer_contributions_add_up_to_lpips(engine, pair):
    a, b = pair
    result = engine.compare(a, b)
    torch.testing.assert_close(result.layer_values.sum(dim=1), result.value, rtol=1e-6, atol=1e-7)
    assert torch.all(result.layer_values >= 0)
    # the spatial map's mean is the distance up to the upsampling's interpolation
    assert result.map.shape[-2:] == a.shape[-2:]


@given(pair=image_pairs(min_side=176, max_side=190))
def test_ms_ssim_identity_symmetry_and_range(pair):
    a, b = pair
    assert torch.all((core.ms_ssim(a, a) - 1).abs() <= 1e-12)
    ab, ba = core.ms_ssim(a, b), core.ms_ssim(b, a)
    torch.testing.assert_close(ab, ba, rtol=0, atol=1e-6)
    assert torch.all((ab >= 0) & (ab <= 1 + 1e-9)) and not math.isnan(float(ab[0]))


# ---------------------------------------------------------------------------------------------
# Every registered metric without a network (LPIPS and DISTS have their own tests above and in
# test_metrics_dists.py), read from the registry so that a new metric is checked as it registers.
# ---------------------------------------------------------------------------------------------

CLASSIC = tuple(k for k in metrics.names() if k not in ("lpips", "dists"))
# Symmetric by construction (the two images play the same role). Not: VIF (the reference's
# variance is the signal) and MAD (the reference sets the masking and the luminance threshold).
SYMMETRIC = {"psnr", "ssim", "ms_ssim", "fsim", "gmsd", "vsi", "cw_ssim", "nlpd"}


# Where the authors' code divides 0 by 0 and the module follows it: FeatureSIM.m's phase
# congruency of a flat image (no energy at any scale) can be 0/0, so FSIM against a flat image
# may be NaN (seen for some grey levels, not all).
NAN_AGAINST_FLAT = {"fsim"}


def _scorable(key: str, side: int) -> bool:
    return metrics.get(key).minimum(metrics.MetricContext()) <= side


@pytest.mark.parametrize("key", [k for k in CLASSIC if _scorable(k, 34)])
@settings(max_examples=max(8, settings.default.max_examples // 4))  # ten metrics, some of them slow
@given(pair=image_pairs(min_side=34, max_side=48))
def test_every_metric_identity_range_and_symmetry(key, pair):
    a, b = pair
    spec = metrics.get(key)
    same = core.compare(None, a, a, metrics=key, spatial=False)[key].double()
    if math.isinf(spec.identical):
        assert torch.all(same == spec.identical), (key, same)
    else:
        torch.testing.assert_close(same, torch.full_like(same, spec.identical), rtol=0, atol=1e-6)
    ab = core.compare(None, a, b, metrics=key, spatial=False)[key].double()
    low, high = spec.value_range
    flat = (b.amax(dim=(1, 2, 3)) == b.amin(dim=(1, 2, 3))).expand(ab.shape)
    if key in NAN_AGAINST_FLAT:
        assert not torch.isnan(ab[~flat]).any(), (key, ab)  # NaN only ever against a flat image
        ab = ab[~flat]
    assert not torch.isnan(ab).any() and torch.all((ab >= low - 1e-6) & (ab <= high + 1e-6)), (key, ab)
    if key in SYMMETRIC and ab.numel():
        ba = core.compare(None, b, a, metrics=key, spatial=False)[key].double()
        torch.testing.assert_close(ab, ba[~flat] if key in NAN_AGAINST_FLAT else ba, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def photo_series():
    """A 176×176 crop of a gallery photo (MS-SSIM's smallest size) with three blurs and three
    noises of rising strength (noise from σ = 6: MAD's detection stage ignores weaker noise here)."""
    from classic_reference import blurred, gallery_photo, noisy, to_tensor

    photo = gallery_photo("coffee")[100:276, 150:326].copy()
    return (to_tensor(photo), to_tensor(*[blurred(photo, s) for s in (0.7, 1.5, 4.0)]),
            to_tensor(*[noisy(photo, s) for s in (6.0, 12.0, 40.0)]))


@pytest.mark.parametrize("key", CLASSIC)
def test_every_metric_worsens_with_blur_and_noise(key, photo_series):
    ref, blurs, noises = photo_series
    spec = metrics.get(key)
    for series in (blurs, noises):
        values = core.compare(None, ref, series, metrics=key, spatial=False)[key].tolist()
        worse = values if not spec.higher_is_better else [-v for v in values]
        assert all(x < y for x, y in zip(worse, worse[1:])), (key, values)
        assert values[0] != spec.identical, (key, values)


@pytest.mark.parametrize("key", ["cw_ssim", "nlpd"])
@given(pair=image_pairs(min_side=64, max_side=80))
def test_wavelet_and_pyramid_metrics_identity_symmetry_and_range(key, pair):
    """CW-SSIM and NLPD: identity gives the spec's identical value, both are symmetric in the
    pair, and values stay in the spec's range (flat images included)."""
    a, b = pair
    spec = metrics.get(key)
    same = core.compare(None, a, a, metrics=key)[key].double()
    torch.testing.assert_close(same, torch.full_like(same, spec.identical), rtol=0, atol=1e-7)
    ab, ba = core.compare(None, a, b, metrics=key)[key], core.compare(None, b, a, metrics=key)[key]
    torch.testing.assert_close(ab, ba, rtol=0, atol=1e-6)
    low, high = spec.value_range
    assert torch.all((ab >= low - 1e-6) & (ab <= high + 1e-6)) and not torch.isnan(ab).any(), ab
    best = spec.identical
    assert torch.all(ab <= best + 1e-6) if spec.higher_is_better else torch.all(ab >= best - 1e-6)


@pytest.mark.parametrize("key", metrics.names())
def test_every_metric_refuses_rgba_nan_and_bad_layouts_with_a_message(engine, key):
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 192, 192, generator=gen)
    nan = a.clone()
    nan[0, 1, 5, 7] = math.nan
    for bad in (torch.cat([a, a[:, :1]], dim=1), nan, a[0, 0], a * 255):
        with pytest.raises(core.errors.LpipsExplorerError) as info:
            core.compare(engine, a, bad, metrics=key)
        assert str(info.value).strip()
    grey = core.compare(engine, a, a[:, :1], metrics=key)[key]  # greyscale: taken as R = G = B
    assert grey.shape == (1,) and not torch.isnan(grey).any()
