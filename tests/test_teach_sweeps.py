"""teach.sweeps: severity sweeps, the badness axis, disagreements, and equal-PSNR matching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from core.metrics import registry
from core.metrics.psnr import psnr as core_psnr
from core.metrics.ssim import ssim as core_ssim
from core.distortions import REGISTRY, DistortionParamError, UnknownDistortionError, sweep
from core.images.imageio import downscale_to_fit
from core.lpips.engine import Engine
from core.images.samples import load_sample
from core.images.tensors import quantize_8bit, to_uint8
from teach.sweeps import (
    MAX_LEVELS,
    SweepResult,
    default_range,
    disagreements_between,
    equal_psnr_set,
    match_psnr,
    severity_levels,
    severity_sweep,
)

TOL = 0.05


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine("alex", device="cpu")


@pytest.fixture(scope="module")
def ref() -> torch.Tensor:
    """A 96×112 crop of the astronaut sample, downscaled to 128 px first and saved-as-8-bit."""
    small, _ = downscale_to_fit(load_sample("astronaut"), 128)
    return quantize_8bit(small[:, :, 8:104, 8:120]).contiguous()


@pytest.fixture(scope="module")
def ref_features(engine, ref):
    return engine.reference(ref)


@pytest.fixture(scope="module")
def blur_sweep(engine, ref_features, ref):
    calls: list[tuple[int, int]] = []
    result = severity_sweep(engine, ref_features, ref, "gaussian_blur", levels=8, batch_size=3,
                            progress=lambda done, total: calls.append((done, total)))
    return result, calls


def skimage_psnr(ref: torch.Tensor, image: torch.Tensor) -> float:
    return float(peak_signal_noise_ratio(to_uint8(ref), to_uint8(image), data_range=255))


# --------------------------------------------------------------------------------------
# Levels and validation
# --------------------------------------------------------------------------------------


def test_default_levels_run_from_mildest_to_harshest():
    blur = severity_levels("gaussian_blur", levels=16)
    np.testing.assert_allclose(blur, np.linspace(0.0, 8.0, 16))
    jpeg = severity_levels("jpeg")
    assert jpeg[0] == 100 and jpeg[-1] == 5 and len(jpeg) == 16  # quality 100 = identity
    assert np.all(np.diff(jpeg) < 0) and np.all(jpeg == np.round(jpeg))
    assert severity_levels("posterize").tolist() == [8, 7, 6, 5, 4, 3, 2]  # rounded and de-duplicated
    assert severity_levels("translate", "direction", levels=8).tolist()[0] == 0.0  # no identity: min
    assert default_range(REGISTRY["contrast"].main) == (1.0, 3.0)
    assert severity_levels("gaussian_noise", levels=8, low=10, high=0)[0] == 10  # explicit order kept


@pytest.mark.parametrize("levels", [7, 33, 8.5, True, "16"])
def test_levels_must_be_8_to_32(engine, ref_features, levels):
    with pytest.raises(ValueError, match="levels"):
        severity_sweep(engine, ref_features, None, "gaussian_blur", levels=levels)


def test_sweep_arguments_are_validated(engine, ref_features, ref):
    def run(**kwargs):
        args = {"name": "gaussian_blur", **kwargs}
        return severity_sweep(engine, ref_features, ref, **args)

    with pytest.raises(ValueError, match="2 to 32"):
        run(values=[1.0])
    with pytest.raises(ValueError, match="2 to 32"):
        run(values=np.linspace(0, 8, MAX_LEVELS + 1))
    with pytest.raises(ValueError, match="not both"):
        run(values=[1.0, 2.0], low=0.5)
    with pytest.raises(DistortionParamError, match="sigma"):
        run(values=[1.0, 9.0])  # outside [0, 8]
    with pytest.raises(DistortionParamError, match="integer"):
        run(name="jpeg", values=[50, 50.5])
    with pytest.raises(DistortionParamError, match="choice"):
        run(name="jpeg", param="subsampling")
    with pytest.raises(DistortionParamError, match="no parameter"):
        run(param="radius")
    with pytest.raises(UnknownDistortionError):
        run(name="vignette")
    with pytest.raises(ValueError, match="two different ends"):
        run(low=2.0, high=2.0)
    with pytest.raises(ValueError, match="batch_size"):
        run(batch_size=0)
    with pytest.raises(ValueError, match="ssim_mode"):
        run(ssim_mode="luma")
    with pytest.raises(TypeError, match="progress"):
        run(progress="yes")
    with pytest.raises(DistortionParamError, match="swept parameter"):
        run(name="unsharp", base_params={"amount": 1.0})
    with pytest.raises(ValueError, match="same image"):
        severity_sweep(engine, ref_features, ref[:, :, :64, :64], "gaussian_blur")


# --------------------------------------------------------------------------------------
# Sweeps against direct computation
# --------------------------------------------------------------------------------------


def test_sweep_matches_metrics_computed_directly(engine, ref, blur_sweep):
    result, _ = blur_sweep
    assert (result.name, result.param, result.unit, len(result)) == ("gaussian_blur", "sigma", "px", 8)
    images = quantize_8bit(sweep("gaussian_blur", "sigma", result.values.tolist(), ref))
    lpips = engine.distance(engine.reference(ref), images).double().numpy()
    np.testing.assert_allclose(result.lpips, lpips, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(result.psnr, core_psnr(ref, images).double().numpy())
    np.testing.assert_allclose(result.ssim, core_ssim(ref, images).double().numpy(), rtol=0, atol=1e-7)
    assert math.isinf(result.psnr[0]) and result.ssim[0] == 1.0 and result.lpips[0] < 1e-6
    assert np.all(np.diff(result.lpips) > 0) and np.all(np.diff(result.psnr) < 0)
    # One redrawn level is the image that was scored.
    assert torch.equal(result.image(ref, 3), images[3:4])


def test_progress_reports_each_chunk_up_to_the_total(blur_sweep):
    _, calls = blur_sweep
    assert calls == [(3, 8), (6, 8), (8, 8)]


def test_batch_size_does_not_change_the_numbers(engine, ref_features, ref):
    values = [0.0, 6.0, 12.0, 30.0, 50.0]
    one = severity_sweep(engine, ref_features, ref, "gaussian_noise", values=values, batch_size=1)
    many = severity_sweep(engine, ref, None, "gaussian_noise", values=values, batch_size=4)
    np.testing.assert_array_equal(one.values, values)
    np.testing.assert_allclose(one.lpips, many.lpips, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(one.psnr, many.psnr)
    np.testing.assert_array_equal(one.ssim, many.ssim)
    # One noise pattern growing stronger: every level's PSNR matches an independent check.
    for i in (1, 4):
        assert one.psnr[i] == pytest.approx(skimage_psnr(ref, one.image(ref, i)), abs=1e-4)


# --------------------------------------------------------------------------------------
# The badness axis and CSV rows
# --------------------------------------------------------------------------------------


def test_normalized_is_a_badness_axis_with_inf_psnr_handled(blur_sweep):
    result, _ = blur_sweep
    norm = result.normalized()
    # Every default metric that scores a 96×112 image (MS-SSIM needs 176 px).
    assert set(norm) == {k for k in registry.defaults() if k != "ms_ssim"}
    for metric, values in norm.items():
        assert values.shape == (8,) and np.all(np.isfinite(values)), metric
        assert values.min() == 0.0 and values.max() == 1.0, metric
        assert values[0] == 0.0 and values[-1] == 1.0, metric  # severity 0 is the least bad
        assert np.all(np.diff(values) >= 0), metric  # blur gets worse monotonically


def synthetic(name: str, values, lpips, psnr, ssim, integer: bool = False) -> SweepResult:
    return SweepResult(name=name, param="p", values=values, scores={"lpips": lpips, "psnr": psnr, "ssim": ssim},
                       integer=integer)


def test_normalized_edge_cases():
    flat = synthetic("x", [0, 1, 2], [0.2, 0.2, 0.2], [math.inf] * 3, [1.0, 1.0, 1.0]).normalized()
    for values in flat.values():
        np.testing.assert_array_equal(values, [0.0, 0.0, 0.0])
    # A finite PSNR above 60 dB stays below the capped inf: order is kept.
    psnr = synthetic("x", [0, 1, 2], [0, 0.1, 0.3], [math.inf, 95.0, 30.0], [1, 0.99, 0.5]).normalized()["psnr"]
    assert psnr[0] == 0.0 and 0.0 < psnr[1] < psnr[2] == 1.0
    capped = synthetic("x", [0, 1], [0, 1], [math.inf, 30.0], [1, 0]).normalized()["psnr"]
    np.testing.assert_array_equal(capped, [0.0, 1.0])  # inf → 60 dB


def test_sweep_result_checks_lengths_and_is_read_only():
    with pytest.raises(ValueError, match="equal length"):
        synthetic("x", [0, 1], [0, 1], [1], [0, 1])
    r = synthetic("x", [0, 1], [0, 1], [30, 20], [1, 0.5])
    with pytest.raises(ValueError):
        r.lpips[0] = 5.0


def test_to_rows_for_csv():
    r = synthetic("jpeg", [100, 50], [0.0, 0.1], [math.inf, 30.5], [1.0, 0.9], integer=True)
    rows = r.to_rows()
    assert rows == [
        {"distortion": "jpeg", "param": "p", "value": 100, "lpips": 0.0, "psnr": math.inf, "ssim": 1.0},
        {"distortion": "jpeg", "param": "p", "value": 50, "lpips": 0.1, "psnr": 30.5, "ssim": 0.9},
    ]
    assert isinstance(rows[0]["value"], int)


# --------------------------------------------------------------------------------------
# Disagreements
# --------------------------------------------------------------------------------------

# A 1-2 px shift: PSNR collapses, LPIPS barely moves. Light noise: the reverse.
SHIFT = dict(values=[0, 1, 2], lpips=[0.0, 0.05, 0.10], psnr=[math.inf, 20.0, 16.0], ssim=[1.0, 0.8, 0.7])
NOISE = dict(values=[0, 5, 10], lpips=[0.0, 0.20, 0.40], psnr=[math.inf, 34.0, 28.0], ssim=[1.0, 0.9, 0.8])


def pairs(found, metric):
    return {(d.a_index, d.b_index) for d in found if d.metric == metric}


def test_disagreements_between_finds_the_known_pairs():
    shift, noise = synthetic("translate", **SHIFT), synthetic("gaussian_noise", **NOISE)
    found = disagreements_between([shift, noise])
    # LPIPS calls every noisy level worse than every shifted one; PSNR says the opposite.
    assert pairs(found, "psnr") == {(1, 1), (1, 2), (2, 1), (2, 2)}
    # SSIM ties shift level 1 with noise level 2 (0.8 each): no disagreement there.
    assert pairs(found, "ssim") == {(1, 1), (2, 1), (2, 2)}
    assert all((d.a_result, d.b_result) == (0, 1) for d in found)
    assert all((d.a_name, d.b_name) == ("translate", "gaussian_noise") for d in found)
    # Most striking first: both metrics two ranks apart beats one rank apart.
    assert [(d.metric, d.pair, d.rank_gap) for d in found[:2]] == [("psnr", (1, 1), 2.0), ("psnr", (2, 2), 2.0)]
    assert [d.rank_gap for d in found] == sorted((d.rank_gap for d in found), reverse=True)
    first = found[0]
    assert first.lpips_worse == "b" and (first.a_value, first.b_value) == (1.0, 5.0)
    assert (first.other_a, first.other_b) == (20.0, 34.0)
    assert first.describe() == ("LPIPS says gaussian_noise @ 5 is worse than translate @ 1; "
                                "PSNR says the opposite.")


def test_disagreements_between_limits_ties_and_validation():
    shift, noise = synthetic("translate", **SHIFT), synthetic("gaussian_noise", **NOISE)
    assert len(disagreements_between([shift, noise], limit=2)) == 2
    assert pairs(disagreements_between([shift, noise], metrics=("ssim",)), "psnr") == set()
    # Differences under the tie thresholds never count.
    assert disagreements_between([shift, noise], metrics="psnr", ties={"psnr": 20.0}) == []
    assert disagreements_between([shift, noise], ties={"lpips": 0.5}) == []
    with pytest.raises(ValueError, match="at least two"):
        disagreements_between([shift])
    with pytest.raises(ValueError, match="metrics"):
        disagreements_between([shift, noise], metrics=("lpips",))
    with pytest.raises(ValueError, match="limit"):
        disagreements_between([shift, noise], limit=0)
    with pytest.raises(TypeError, match="SweepResult"):
        disagreements_between([shift, {"lpips": [0]}])


def test_disagreements_within_one_sweep(blur_sweep):
    result, _ = blur_sweep
    assert result.disagreements() == []  # every metric agrees that more blur is worse
    odd = synthetic("x", [0, 1, 2, 3], [0.0, 0.1, 0.3, 0.2], [math.inf, 30.0, 25.0, 20.0], [1.0, 0.9, 0.8, 0.7])
    found = odd.disagreements()
    assert {(d.metric, d.pair) for d in found} == {("psnr", (2, 3)), ("ssim", (2, 3))}


def test_real_disagreements_are_consistent(engine, ref, ref_features, blur_sweep):
    blur, _ = blur_sweep
    shift = severity_sweep(engine, ref_features, ref, "translate", values=[0.25, 1.0, 4.0, 16.0])
    found = disagreements_between([blur, shift], limit=10)
    assert 0 < len(found) <= 10
    for d in found:
        assert {d.a_name, d.b_name} == {"gaussian_blur", "translate"}
        # LPIPS ranks the pair one way, the other metric (in its own direction) the other way.
        other_badness = d.other_b - d.other_a if registry.get(d.metric).higher_is_better else d.other_a - d.other_b
        assert (d.lpips_a - d.lpips_b) * other_badness < 0


# --------------------------------------------------------------------------------------
# Equal PSNR
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, target", [("gaussian_blur", 27.0), ("gaussian_noise", 30.0), ("translate", 24.0)])
def test_match_psnr_reaches_the_target(ref, name, target):
    m = match_psnr(ref, name, target_psnr=target, tol=TOL)
    assert m.reached and m.message == "" and m.name == name
    assert abs(m.psnr - target) <= TOL
    assert abs(skimage_psnr(ref, m.image) - target) <= TOL + 1e-6
    assert torch.equal(m.image, quantize_8bit(m.image))  # 8-bit, as saved
    p = REGISTRY[name].main
    assert torch.equal(m.image, quantize_8bit(sweep(name, p.name, [m.value], ref)))


def test_match_psnr_on_an_integer_parameter_picks_the_closest_integer(ref):
    target = 28.0
    m = match_psnr(ref, "jpeg", target_psnr=target)
    assert isinstance(m.value, int) and m.reached
    assert m.psnr == pytest.approx(skimage_psnr(ref, m.image), abs=1e-4)
    error = abs(skimage_psnr(ref, m.image) - target)
    for q in (m.value - 1, m.value + 1):
        neighbour = quantize_8bit(sweep("jpeg", "quality", [q], ref))
        assert error <= abs(skimage_psnr(ref, neighbour) - target)


def test_match_psnr_reports_an_unreachable_target(ref):
    m = match_psnr(ref, "gaussian_noise", target_psnr=5.0)
    assert not m.reached and m.value == 50.0 and "cannot reach" in m.message
    assert m.psnr == pytest.approx(skimage_psnr(ref, m.image), abs=1e-4)
    for bad in (0.0, -3.0, math.inf, math.nan, "30"):
        with pytest.raises(ValueError, match="target_psnr"):
            match_psnr(ref, "gaussian_noise", target_psnr=bad)
    with pytest.raises(ValueError, match="tol"):
        match_psnr(ref, "gaussian_noise", target_psnr=30.0, tol=0)


def test_equal_psnr_set_puts_the_families_at_one_psnr(engine, ref, ref_features):
    result = equal_psnr_set(engine, ref, ref_features=ref_features)
    names = ("gaussian_blur", "gaussian_noise", "translate", "jpeg")
    assert tuple(e.name for e in result.entries) == names and result.target_auto
    assert 20.0 < result.target_psnr < 40.0
    floats = [result[n] for n in names[:3]]
    for e in floats:
        assert e.reached and abs(e.psnr - result.target_psnr) <= TOL
    assert max(e.psnr for e in floats) - min(e.psnr for e in floats) <= 2 * TOL
    jpeg = result["jpeg"]
    assert jpeg.reached and isinstance(jpeg.value, int) and abs(jpeg.psnr - result.target_psnr) < 1.5
    assert (result["translate"].unit, result["gaussian_noise"].unit) == ("px", "8-bit levels")
    images = torch.cat([e.image for e in result.entries])
    lpips = engine.distance(ref_features, images).numpy()
    np.testing.assert_allclose([e.lpips for e in result.entries], lpips, atol=1e-6)
    np.testing.assert_allclose([e.ssim for e in result.entries], core_ssim(ref, images).numpy(), atol=1e-6)
    assert sorted(result.ranking) == sorted(names)
    assert [result[n].lpips for n in result.ranking] == sorted(e.lpips for e in result.entries)
    # The point of the demonstration: equal PSNR, very different LPIPS.
    assert max(lpips) > 2 * min(lpips)
    assert len(result.to_rows()) == 4 and "image" not in result.to_rows()[0]


def test_equal_psnr_set_reports_a_family_that_cannot_reach_the_target(engine, ref, ref_features):
    result = equal_psnr_set(engine, ref, ("gaussian_blur", "jpeg"), target_psnr=16.0, ref_features=ref_features)
    assert not result.target_auto and result.target_psnr == 16.0
    assert result["gaussian_blur"].reached and abs(result["gaussian_blur"].psnr - 16.0) <= TOL
    jpeg = result["jpeg"]
    assert not jpeg.reached and jpeg.value == 5 and "cannot reach" in jpeg.message
    assert jpeg.message in result.message
    with pytest.raises(ValueError, match="twice"):
        equal_psnr_set(engine, ref, ("jpeg", "jpeg"))
    with pytest.raises(KeyError):
        result["translate"]
