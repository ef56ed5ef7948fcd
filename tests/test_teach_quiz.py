"""teach.quiz: reproducible 2AFC rounds, their scores, and the agreement statistics."""

from __future__ import annotations

import json

import numpy as np

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


# --------------------------------------------------------------------------------------
# JND rounds and the JND dashboard
# --------------------------------------------------------------------------------------


def test_jnd_rounds_are_reproducible_reference_first_and_sometimes_identical():
    specs = [quiz.make_jnd_round(12, i) for i in range(200)]
    assert specs[7] == quiz.make_jnd_round(12, 7) and all(s.kind == "jnd" and s.chain_a == () for s in specs)
    identical = [s for s in specs if s.identical]
    # About JND_IDENTICAL_SHARE of them (a binomial draw of 200: well inside 4 standard deviations).
    assert abs(len(identical) - 200 * quiz.JND_IDENTICAL_SHARE) < 4 * (200 * 0.25 * 0.75) ** 0.5
    for s in specs:
        if s.identical:
            assert s.family_b == quiz.NO_DISTORTION
        else:
            (step,) = s.chain_b
            param = REGISTRY[step.name].main
            assert step.params[param.name] != param.identity and REGISTRY[step.name].family == s.family_b
    assert (quiz.JND_SHOW_MS, quiz.JND_GAP_MS) == (1000, 250)  # the paper's section 2.2


def test_score_jnd_round_measures_the_pair_itself():
    spec = next(s for s in (quiz.make_jnd_round(3, i) for i in range(20)) if not s.identical)
    ref, first, second = render_round(spec, max_side=64)
    assert torch.equal(ref, first)
    values = quiz.score_jnd_round(spec, first, second, {}, others=("psnr", "ssim"))
    assert values["psnr"]["value"] == pytest.approx(psnr(first, second).item(), rel=1e-6)
    assert values["ssim"]["value"] == pytest.approx(ssim(first, second).item(), rel=1e-6)
    with pytest.raises(QuizInputError, match="JND round"):
        quiz.score_jnd_round(make_round(3, 0), first, second, {})


def test_jnd_summary_equals_the_official_jnd_score_on_the_class_answers(tmp_path):
    """Each metric's JND mAP on a class's answers is lpips.trainer.score_jnd_dataset's on the same
    pairs (PSNR and SSIM turned into distances), identical pairs left out and counted apart."""
    official = pytest.importorskip("lpips")
    from store import QuizStore
    from test_judgments_scores import _official_jnd

    store = QuizStore(tmp_path / "quiz.sqlite3")
    code, _ = store.create_session("JND", n_rounds=8, seed=2, kind="jnd")
    specs = [quiz.make_jnd_round(2, i) for i in range(8)]
    rng = np.random.default_rng(4)
    answers = {}
    for spec in specs:
        values = {"lpips_alex": {"value": float(rng.uniform(0, 0.5))}, "psnr": {"value": float(rng.uniform(20, 40))}}
        if spec.identical:
            values = {"lpips_alex": {"value": 0.0}, "psnr": {"value": float("inf")}}
        said = [rng.random() < 0.4 for _ in range(5)]
        answers[spec.index] = (values, said)
        for voter, same in enumerate(said):
            store.record_vote(code, spec.index, f"v{voter}", "same" if same else "different", spec, values)
    summary = quiz.summarize(store, code)
    differing = [s.index for s in specs if not s.identical]
    same = np.array([np.mean(answers[i][1]) for i in differing])
    lpips_d = np.array([answers[i][0]["lpips_alex"]["value"] for i in differing])
    psnr_d = -np.array([answers[i][0]["psnr"]["value"] for i in differing])  # a similarity, as a distance
    assert summary.kind == "jnd" and summary.metrics == {} and summary.jnd.pairs == len(differing)
    assert summary.jnd.map["lpips_alex"] == pytest.approx(_official_jnd(lpips_d, same), abs=1e-12)
    assert summary.jnd.map["psnr"] == pytest.approx(_official_jnd(psnr_d, same), abs=1e-12)
    assert summary.jnd.chance == pytest.approx(same.mean())
    # Two different people of five: k(k−1) + (5−k)(4−k) ordered pairs agree, of 5·4.
    k = np.array([sum(answers[i][1]) for i in differing])
    assert summary.jnd.people == pytest.approx(np.mean((k * (k - 1) + (5 - k) * (4 - k)) / 20))
    identical = [s.index for s in specs if s.identical]
    assert summary.jnd.same_identical == (sum(sum(answers[i][1]) for i in identical), 5 * len(identical))
    assert summary.jnd.same_differing == (sum(sum(answers[i][1]) for i in differing), 5 * len(differing))
    row = summary.rounds[differing[0]]
    assert row.votes_same == sum(answers[differing[0]][1]) and not row.identical
    assert row.metric_values["lpips_alex"] == answers[differing[0]][0]["lpips_alex"]["value"]
    del official


def test_jnd_summary_without_any_same_answer_says_undefined(tmp_path):
    from store import QuizStore

    store = QuizStore(tmp_path / "quiz.sqlite3")
    code, _ = store.create_session("JND", n_rounds=6, seed=2, kind="jnd")
    spec = next(s for s in (quiz.make_jnd_round(2, i) for i in range(6)) if not s.identical)
    store.record_vote(code, spec.index, "ana", "different", spec, {"psnr": {"value": 30.0}})
    summary = quiz.summarize(store, code)
    assert summary.jnd.map == {"psnr": None} and summary.jnd.chance == 0.0
    assert summary.jnd.people is None  # one answer: nobody to agree with
    empty = quiz.summarize(store, store.create_session("JND", n_rounds=2, seed=3, kind="jnd")[0])
    assert empty.jnd.map == {} and empty.jnd.chance is None and empty.n_votes == 0
