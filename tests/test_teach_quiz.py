"""teach.quiz: reproducible 2AFC rounds, their scores, and the agreement statistics."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import wilson_by_formula
from core.metrics.psnr import psnr
from core.metrics.ssim import ssim
from core.distortions import REGISTRY
from core.errors import WeightsError
from core.lpips.engine import Engine
from teach import quiz
from teach.quiz import (
    QUIZ_LEVELS,
    QuizInputError,
    RoundSpec,
    make_round,
    pair_label,
    render_round,
    score_round,
    wilson_interval,
)


@pytest.fixture(scope="module")
def alex() -> Engine:
    try:
        return Engine("alex", "0.1", True, "cpu")
    except WeightsError as exc:
        pytest.skip(f"AlexNet LPIPS weights are not provisioned here: {exc}")


# --------------------------------------------------------------------------------------
# Rounds
# --------------------------------------------------------------------------------------


def test_rounds_are_reproducible_from_seed_and_index():
    for index in range(8):
        assert make_round(2024, index) == make_round(2024, index)
    assert [make_round(1, i) for i in range(5)] != [make_round(2, i) for i in range(5)]
    spec = make_round(2024, 0)
    assert isinstance(spec, RoundSpec) and hash(spec) == hash(make_round(2024, 0))  # immutable


def test_rounds_are_varied_and_never_trivial():
    specs = [make_round(99, i) for i in range(40)]
    pairs = {(s.chain_a[0].name, s.chain_b[0].name) for s in specs}
    assert len(pairs) >= 20
    assert len({s.sample for s in specs}) >= 4
    assert len({s.pair for s in specs}) >= 8
    for spec in specs:
        assert spec.chain_a != spec.chain_b
        assert spec.chain_a[0].name != spec.chain_b[0].name
        for chain, family in ((spec.chain_a, spec.family_a), (spec.chain_b, spec.family_b)):
            (step,) = chain
            distortion = REGISTRY[step.name]
            assert step.name in QUIZ_LEVELS and distortion.family == family
            main = distortion.main
            value = step.params[main.name]
            assert value != main.identity
            assert main.min <= value <= main.max


def test_quiz_levels_stay_in_range_and_off_identity():
    import random

    for name, (lo, hi) in QUIZ_LEVELS.items():
        assert name in REGISTRY and 0 < lo < hi <= 1
        main = REGISTRY[name].main
        for level in (0.0, 0.5, 1.0):
            for seed in range(4):  # both directions of signed parameters
                value = quiz._main_value(name, level, random.Random(seed))
                assert value != main.identity and main.min <= value <= main.max


def test_make_round_rejects_bad_arguments():
    for seed, index in ((-1, 0), (0, -1), (True, 0), (0, 1.5), ("1", 0)):
        with pytest.raises(QuizInputError):
            make_round(seed, index)


def test_render_round_is_deterministic_8bit_and_small():
    spec = make_round(7, 2)
    ref, a, b = render_round(spec, max_side=64)
    assert max(ref.shape[-2:]) == 64 and ref.shape == a.shape == b.shape and ref.shape[:2] == (1, 3)
    for image in (ref, a, b):
        assert torch.equal(image, image.mul(255).round().div(255))  # what is measured is what is shown
    assert not torch.equal(a, ref) and not torch.equal(b, ref) and not torch.equal(a, b)
    again = render_round(spec, max_side=64)
    assert all(torch.equal(x, y) for x, y in zip((ref, a, b), again))
    with pytest.raises(QuizInputError):
        render_round(spec, max_side=8)


@pytest.mark.parametrize("index", [0, 5])
def test_score_round_agrees_with_direct_metric_calls(alex, index):
    spec = make_round(31, index)
    ref, a, b = render_round(spec, max_side=96)
    scores = score_round(spec, ref, a, b, {"alex": alex}, others=("psnr", "ssim"))
    assert list(scores) == ["lpips_alex", "psnr", "ssim"]
    direct = {
        "lpips_alex": (alex.distance(ref, a).item(), alex.distance(ref, b).item(), True),
        "psnr": (psnr(ref, a).item(), psnr(ref, b).item(), False),
        "ssim": (ssim(ref, a).item(), ssim(ref, b).item(), False),
    }
    for metric, (value_a, value_b, lower_is_closer) in direct.items():
        entry = scores[metric]
        assert entry["a"] == pytest.approx(value_a, rel=1e-5, abs=1e-6)
        assert entry["b"] == pytest.approx(value_b, rel=1e-5, abs=1e-6)
        a_closer = value_a < value_b if lower_is_closer else value_a > value_b
        assert entry["pick"] == ("A" if a_closer else "B")
    json.dumps(scores)  # stored as JSON


def test_score_round_ties_and_engine_checks(alex):
    spec = make_round(31, 0)
    ref, a, _ = render_round(spec, max_side=64)
    scores = score_round(spec, ref, a, a.clone(), {"lpips_alex": alex}, others=("ssim", "psnr"))
    assert {m: e["pick"] for m, e in scores.items()} == {"lpips_alex": "tie", "psnr": "tie", "ssim": "tie"}
    assert list(score_round(spec, ref, a, a, {}, others=("psnr",))) == ["psnr"]  # only the engines given
    assert score_round(spec, ref, a, a, {}, others=()) == {}
    with pytest.raises(QuizInputError, match="vgg"):
        score_round(spec, ref, a, a, {"vgg": alex})
    for bad in (("lpips",), ("psnr", "no_such_metric"), "psnr"):
        with pytest.raises(QuizInputError, match="registered metric names"):
            score_round(spec, ref, a, a, {}, others=bad)


def test_score_round_scores_every_registered_metric_by_default():
    from core import metrics

    spec = make_round(31, 1)
    ref, a, b = render_round(spec, max_side=64)
    scores = score_round(spec, ref, a, b, {})
    registered = [k for k in metrics.names() if k != "lpips"]
    assert {"psnr", "ssim"} <= set(scores) <= set(registered)
    assert list(scores) == [k for k in registered if k in scores]  # display order
    assert "ms_ssim" not in scores  # MS-SSIM needs 176 px: it sits a 64 px round out instead of voting NaN


def test_pair_label_is_order_free():
    assert pair_label("noise", "blur") == pair_label("blur", "noise") == "blur vs noise"


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------



@pytest.mark.parametrize("s, n", [(3, 6), (3.5, 6), (8, 10), (1, 1), (0, 5), (49.5, 100)])
def test_wilson_interval_matches_the_formula(s, n):
    low, high = wilson_interval(s, n)
    want_low, want_high = wilson_by_formula(s, n)
    assert low == pytest.approx(max(0.0, want_low), abs=1e-12)
    assert high == pytest.approx(min(1.0, want_high), abs=1e-12)
    assert low <= s / n <= high
