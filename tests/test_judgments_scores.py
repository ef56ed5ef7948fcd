"""2AFC and JND scores against the official ``lpips.trainer`` functions, fed a tiny fake loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import InvalidArgumentError
from core.judgments import scores

official = pytest.importorskip("lpips")


class _Loader:
    """What ``score_*_dataset`` needs of a data loader: ``load_data()`` yielding dict batches."""

    def __init__(self, batches: list[dict]) -> None:
        self.batches = batches

    def load_data(self):
        return iter(self.batches)


def _official_2afc(d0: np.ndarray, d1: np.ndarray, judge: np.ndarray, batch: int = 7) -> float:
    # Each "image" is the triplet's index; func looks its distance up, so the official code sees
    # exactly the distances we score (as float64 tensors: nothing is rounded on the way).
    batches = []
    for start in range(0, len(d0), batch):
        idx = torch.arange(start, min(start + batch, len(d0)), dtype=torch.float64)
        batches.append({"ref": -idx - 1, "p0": idx, "p1": idx + len(d0),
                        "judge": torch.from_numpy(judge[start:start + batch]).view(-1, 1, 1, 1)})
    table = torch.from_numpy(np.concatenate([d0, d1]))

    def func(_ref, patch):
        return table[patch.long()]

    return float(official.trainer.score_2afc_dataset(_Loader(batches), func)[0])


def _official_jnd(d: np.ndarray, same: np.ndarray, batch: int = 5) -> float:
    batches = []
    for start in range(0, len(d), batch):
        idx = torch.arange(start, min(start + batch, len(d)), dtype=torch.float64)
        batches.append({"p0": idx, "p1": idx, "same": torch.from_numpy(same[start:start + batch]).view(-1, 1, 1, 1)})
    table = torch.from_numpy(d)
    return float(official.trainer.score_jnd_dataset(_Loader(batches), lambda p0, _p1: table[p0.long()])[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_2afc_matches_the_official_function_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n = 101
    d0, d1 = rng.random(n), rng.random(n)
    judge = rng.integers(0, 6, n) / 5.0
    assert abs(scores.score_2afc(d0, d1, judge) - _official_2afc(d0, d1, judge)) <= 1e-12


def test_2afc_matches_the_official_function_with_ties():
    rng = np.random.default_rng(3)
    n = 60
    d0 = rng.integers(0, 4, n) / 4.0  # few distinct values: many d0 == d1
    d1 = rng.integers(0, 4, n) / 4.0
    judge = rng.random(n)
    assert (d0 == d1).sum() > 5
    ours = scores.score_2afc(d0, d1, judge)
    assert abs(ours - _official_2afc(d0, d1, judge)) <= 1e-12
    per = scores.score_2afc_per_triplet(d0, d1, judge)
    assert np.all(per[d0 == d1] == 0.5)


@pytest.mark.parametrize("seed", [0, 1])
def test_jnd_matches_the_official_function_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n = 83
    d, same = rng.random(n), rng.integers(0, 4, n) / 3.0
    assert abs(scores.score_jnd(d, same) - _official_jnd(d, same)) <= 1e-12


def test_jnd_matches_the_official_function_with_tied_distances():
    rng = np.random.default_rng(5)
    n = 40
    d = rng.integers(0, 5, n) / 5.0
    same = rng.random(n)
    assert abs(scores.score_jnd(d, same) - _official_jnd(d, same)) <= 1e-12


def test_voc_ap_matches_the_official_function():
    rng = np.random.default_rng(0)
    recall = np.sort(rng.random(30))
    precision = rng.random(30)
    assert abs(scores.voc_ap(recall, precision) - official.voc_ap(recall, precision)) <= 1e-15


def test_human_ceiling_is_the_expected_agreement_of_two_random_observers():
    # Simulated: 5 observers per triplet; two picked at random (with replacement) agree with
    # probability p² + (1 − p)².
    rng = np.random.default_rng(0)
    judge = rng.integers(0, 6, 4000) / 5.0
    a = rng.random(judge.size) < judge
    b = rng.random(judge.size) < judge
    assert abs(scores.human_ceiling_2afc(judge) - np.mean(a == b)) < 0.02
    assert scores.human_ceiling_2afc([0.0, 1.0]) == 1.0
    assert scores.human_ceiling_2afc([0.5]) == 0.5


def test_metrics_are_scored_in_their_own_direction():
    judge = np.array([0.0, 1.0, 0.2])
    lp0, lp1 = np.array([0.1, 0.5, 0.2]), np.array([0.3, 0.2, 0.4])  # LPIPS: distance
    out = scores.score_metrics_2afc({"ssim": 1 - lp0, "lpips": lp0}, {"ssim": 1 - lp1, "lpips": lp1}, judge)
    assert list(out) == ["lpips", "ssim"]  # registry order
    assert out["lpips"] == out["ssim"] == scores.score_2afc(lp0, lp1, judge)
    jnd = scores.score_metrics_jnd({"psnr": [40.0, 20.0], "lpips": [0.01, 0.3]}, [1.0, 0.0])
    assert jnd == {"lpips": 1.0, "psnr": 1.0}


@pytest.mark.parametrize("call, message", [
    (lambda: scores.score_2afc([0.1], [0.2, 0.3], [0.5]), "One value per triplet"),
    (lambda: scores.score_2afc([0.1], [0.2], [1.5]), "fractions of people"),
    (lambda: scores.score_2afc([np.nan], [0.2], [0.5]), "NaN"),
    (lambda: scores.score_2afc([], [], []), "empty"),
    (lambda: scores.score_jnd([0.1, 0.2], [0.0, 0.0]), "undefined"),
    (lambda: scores.score_metrics_2afc({"lpips": [0.1]}, {"ssim": [0.1]}, [0.5]), "same metrics"),
    (lambda: scores.score_metrics_2afc({"nope": [0.1]}, {"nope": [0.1]}, [0.5]), "Unknown metric"),
])
def test_bad_inputs_are_refused_with_a_message(call, message):
    with pytest.raises((InvalidArgumentError, KeyError), match=message):
        call()
