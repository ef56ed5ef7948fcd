"""core.synthesis: the differentiable metrics, the MAD competition and the metric-as-a-loss mode.

Values are checked against the registry's metrics (PSNR, SSIM on 8-bit images, the LPIPS engine),
gradients against central finite differences, and the MAD constraint against the registry's
measurement of the saved 8-bit images.
"""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch

import core
from core.errors import InvalidArgumentError
from core.synthesis import (HOLD_TOLERANCE, UnreachableLevelError, mad, objective, parse_loss, restore,
                            square_reference)
from core.synthesis.competition import _correct
from core.images.tensors import quantize_8bit

from conftest import natural_pair


@pytest.fixture(scope="module")
def small_ref() -> torch.Tensor:
    ref, _ = natural_pair(48, 48)
    return quantize_8bit(ref)


def _noisy(ref: torch.Tensor, sigma: float = 0.06, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return quantize_8bit((ref + sigma * torch.randn(ref.shape, generator=gen)).clamp(0, 1))


# ---------------------------------------------------------------------------------------------
# The differentiable metrics.
# ---------------------------------------------------------------------------------------------

def test_values_on_8bit_images_equal_the_registry(small_ref):
    dist = _noisy(small_ref)
    assert objective("psnr", small_ref).value(dist).item() == pytest.approx(core.psnr(small_ref, dist).item(), abs=1e-4)
    ssim_exact = objective("ssim", small_ref).value(dist, exact=True).item()
    assert ssim_exact == pytest.approx(core.ssim(small_ref, dist).item(), abs=1e-6)
    # The smooth SSIM the optimizer follows differs only by the luma's 8-bit rounding.
    assert objective("ssim", small_ref).value(dist).item() == pytest.approx(ssim_exact, abs=2e-3)
    for net in ("alex", "vgg"):
        engine = core.Engine(net, "0.1", True, "cpu")
        expected = engine.distance(small_ref, dist).item()
        assert objective(f"lpips_{net}", small_ref, "cpu").value(dist).item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("key", ["psnr", "ssim", "lpips_alex", "lpips_vgg"])
def test_gradient_matches_finite_differences(small_ref, key):
    obj = objective(key, small_ref, "cpu")
    if key.startswith("lpips"):
        # The same function on a float64 copy of the network: finite differences in float32 are
        # too coarse to resolve ReLU and max-pool kinks.
        obj.network = copy.deepcopy(obj.network).double()
        obj.ref = obj.ref.double()
        with torch.no_grad():
            obj._features = obj.network.features(obj.ref * 2 - 1)
    x = (small_ref * 0.8 + 0.1 + 0.05 * torch.randn(small_ref.shape, generator=torch.Generator().manual_seed(2)))
    x = x.clamp(0.05, 0.95)  # away from the clamp, so the function is smooth around x
    x = x.double()
    _, grad = obj.value_and_grad(x)
    gen = torch.Generator().manual_seed(3)
    for _ in range(2):
        direction = torch.randn(x.shape, generator=gen, dtype=x.dtype)  # about one unit per pixel
        eps = 1e-6
        with torch.no_grad():
            numeric = (obj.value(x + eps * direction) - obj.value(x - eps * direction)).item() / (2 * eps)
        analytic = float((grad * direction).sum())
        assert analytic == pytest.approx(numeric, rel=2e-2, abs=1e-5), key


def test_square_reference_is_the_centre_square_in_8_bits():
    image = torch.rand(1, 3, 60, 90, generator=torch.Generator().manual_seed(0))
    out = square_reference(image, 60)
    assert out.shape == (1, 3, 60, 60)
    assert torch.equal(out, quantize_8bit(image[..., 15:75]))
    with pytest.raises(InvalidArgumentError, match="from 32 to 512"):
        square_reference(image, 8)


# ---------------------------------------------------------------------------------------------
# MAD.
# ---------------------------------------------------------------------------------------------

def test_newton_correction_returns_to_the_level(small_ref):
    obj = objective("lpips_alex", small_ref, "cpu")
    x = torch.cat([_noisy(small_ref, 0.05, 4), _noisy(small_ref, 0.12, 5)])
    corrected, value, _ = _correct(obj, x, 0.2, 1e-4, 8)
    assert value.tolist() == pytest.approx([0.2, 0.2], abs=1e-4)
    with torch.no_grad():  # the returned value is the value at the returned image
        assert obj.value(corrected).tolist() == pytest.approx(value.tolist(), abs=1e-6)
    assert corrected.min() >= 0 and corrected.max() <= 1


@pytest.mark.parametrize("hold, level, attack", [("psnr", 22.0, "ssim"), ("ssim", 0.6, "psnr"),
                                                 ("lpips_alex", 0.25, "psnr")])
def test_projection_keeps_the_held_metric_on_its_level(small_ref, hold, level, attack):
    result = mad(small_ref, hold, level, attack, steps=12, device="cpu")
    tolerance = HOLD_TOLERANCE[hold]
    # Every step, as the optimizer saw it ...
    for step in result.history:
        assert abs(step.best_hold - level) <= tolerance and abs(step.worst_hold - level) <= tolerance
    # ... and the saved 8-bit images, measured by the registry.
    if hold == "psnr":
        measured = core.psnr(result.ref, torch.cat([result.best, result.worst])).tolist()
    elif hold == "ssim":
        measured = core.ssim(result.ref, torch.cat([result.best, result.worst])).tolist()
    else:
        measured = core.Engine("alex", device="cpu").distance(result.ref, torch.cat([result.best, result.worst])).tolist()
    assert measured == pytest.approx([level, level], abs=tolerance)
    assert measured == pytest.approx([result.best_scores[hold], result.worst_scores[hold]], abs=1e-5)
    # The competition did its job: the attacked metric separates the two images.
    a = result.attack
    higher = result.best_scores[a] > result.worst_scores[a]
    assert higher == (a in ("psnr", "ssim"))
    for image in (result.best, result.worst):
        assert torch.equal(image, quantize_8bit(image))


def test_hold_psnr_attack_lpips_separates_the_images(small_ref):
    result = mad(small_ref, "psnr", 24.0, "lpips_alex", steps=25, device="cpu")
    assert result.worst_scores["lpips_alex"] >= 3 * result.best_scores["lpips_alex"]
    assert result.history[-1].worst_attack > result.history[0].worst_attack
    assert result.history[-1].best_attack < result.history[0].best_attack


def test_fixed_seed_is_reproducible(small_ref):
    first = mad(small_ref, "psnr", 25.0, "ssim", steps=6, seed=7, score=False)
    again = mad(small_ref, "psnr", 25.0, "ssim", steps=6, seed=7, score=False)
    other = mad(small_ref, "psnr", 25.0, "ssim", steps=6, seed=8, score=False)
    assert torch.equal(first.best, again.best) and torch.equal(first.worst, again.worst)
    assert first.history == again.history
    assert not torch.equal(first.start, other.start)


@pytest.mark.parametrize("hold, level, words", [("psnr", 80.0, "PSNR = 80.00 dB cannot be reached"),
                                                ("lpips_alex", 2.0, "LPIPS (alex) = 2.0000 cannot be reached")])
def test_unreachable_level_names_the_reachable_range(small_ref, hold, level, words):
    with pytest.raises(UnreachableLevelError, match=re.escape(words)) as info:
        mad(small_ref, hold, level, "ssim", steps=3)
    message = str(info.value)
    assert "spans" in message and "Choose a level in that range" in message
    numbers = [float(t) for t in re.findall(r"spans (\d+\.\d+)(?: dB)? to (\d+\.\d+)", message)[0]]
    assert numbers[0] < numbers[1] and not numbers[0] <= level <= numbers[1]


def test_bad_arguments_are_refused_with_a_message(small_ref):
    with pytest.raises(InvalidArgumentError, match="two different metrics"):
        mad(small_ref, "psnr", 24, "mse")
    with pytest.raises(InvalidArgumentError, match="Unknown metric 'ms_ssim'"):
        mad(small_ref, "ms_ssim", 0.9, "psnr")
    with pytest.raises(InvalidArgumentError, match="from 1 to 2000"):
        mad(small_ref, "psnr", 24, "ssim", steps=0)
    with pytest.raises(InvalidArgumentError, match="at most 512×512"):
        mad(torch.zeros(1, 3, 600, 600), "psnr", 24, "ssim")


def test_stop_ends_the_run_and_still_lands_on_the_level(small_ref):
    seen = []
    result = mad(small_ref, "psnr", 23.0, "ssim", steps=50, progress=seen.append,
                 should_stop=lambda: len(seen) >= 4)
    assert result.stopped and result.steps_done == 4 and len(seen) == 4
    assert seen[-1].step == 4 and seen[-1].total == 50 and seen[-1].images().shape == (2, 3, 48, 48)
    assert abs(result.best_scores["psnr"] - 23.0) <= HOLD_TOLERANCE["psnr"]


# ---------------------------------------------------------------------------------------------
# A metric as a loss.
# ---------------------------------------------------------------------------------------------

def test_parse_loss_reads_names_weights_and_mix():
    assert parse_loss("l2").weights == (("l2", 1.0),)
    assert parse_loss("mix").weights == (("l2", 0.5), ("lpips_alex", 0.5))
    assert parse_loss(" 0.7*l2 + .3*lpips_vgg ").weights == (("l2", 0.7), ("lpips_vgg", 0.3))
    with pytest.raises(InvalidArgumentError, match="Unknown loss term 'psnr'"):
        parse_loss("psnr")
    with pytest.raises(InvalidArgumentError, match="Unknown loss term"):
        parse_loss("-1*l2")


def test_each_loss_improves_its_own_metric(small_ref):
    result = restore(small_ref, ["l2", "ssim", "lpips_alex", "mix"], degradation="gaussian_noise", strength=30,
                     steps=15, lr=0.02, device="cpu")
    start = result.start_scores
    by_loss = {run.loss.text: run for run in result.runs}
    assert by_loss["l2"].scores["psnr"] > start["psnr"] + 1
    assert by_loss["ssim"].scores["ssim"] > start["ssim"] + 0.05
    assert by_loss["lpips_alex"].scores["lpips_alex"] < start["lpips_alex"] - 0.05
    mix = by_loss["0.5*l2+0.5*lpips_alex"]
    assert mix.history[-1]["loss"] < mix.history[0]["loss"] == pytest.approx(1.0)
    # Every reported score is the registry's value of the saved 8-bit image.
    image = by_loss["l2"].image
    assert torch.equal(image, quantize_8bit(image))
    assert by_loss["l2"].scores["psnr"] == pytest.approx(core.psnr(result.ref, image).item(), abs=1e-4)


def test_degraded_start_comes_from_the_registry(small_ref):
    from core import distortions

    result = restore(small_ref, ["l2"], degradation="gaussian_blur", strength=2.0, steps=1, score=False)
    expected = quantize_8bit(distortions.apply([distortions.Step("gaussian_blur", {"sigma": 2.0})], small_ref))
    assert torch.equal(result.start, expected)
    coarse = restore(small_ref, ["l2"], steps=3, scale=4, score=False)
    assert coarse.runs[0].image.shape == small_ref.shape
    with pytest.raises(InvalidArgumentError, match="scale"):
        restore(small_ref, ["l2"], steps=3, scale=3)
