"""How well a distance agrees with people: the LPIPS paper's 2AFC score and JND mAP.

The formulas are those of the official ``lpips`` 0.1.4 package (``lpips.trainer.score_2afc_dataset``
and ``score_jnd_dataset``), written out here on plain arrays so that callers with distances
already computed (any metric, stored φ vectors, a quiz's answers) need no data loader. The tests
check them against the official functions to 1e-12.

Conventions, as in BAPPS: ``d0``/``d1`` are the distances of the reference to patch 0 and patch 1
(higher = more different); ``judge`` is the fraction of people who found patch 1 closer to the
reference (0 = everyone chose p0, 1 = everyone chose p1); ``same`` is the fraction of people who
saw no difference in a JND pair.

>>> round(score_2afc([0.1, 0.4], [0.3, 0.2], [0.0, 0.75]), 6)
0.875
>>> round(human_ceiling_2afc([0.0, 0.5]), 6)
0.75
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Sequence, Union

import numpy as np

from core import metrics
from core.errors import InvalidArgumentError

__all__ = ["human_ceiling_2afc", "score_2afc", "score_2afc_per_triplet", "score_jnd", "score_metrics_2afc",
           "score_metrics_jnd", "voc_ap"]

ArrayLike = Union[Sequence[float], np.ndarray]


def _vector(values: ArrayLike, name: str) -> np.ndarray:
    """``values`` as a 1-D float64 array (torch tensors included), or a clear error."""
    if hasattr(values, "detach"):  # a torch tensor, possibly on a GPU
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"`{name}` must be a sequence of numbers, got {type(values).__name__}.") from None
    array = array.reshape(-1) if array.ndim > 1 and array.size == max(array.shape) else array
    if array.ndim != 1:
        raise InvalidArgumentError(f"`{name}` must be one number per triplet (1-D), got shape {array.shape}.")
    if array.size == 0:
        raise InvalidArgumentError(f"`{name}` is empty; give at least one triplet.")
    # ±inf is a value (PSNR of identical images): it compares and sorts as the official
    # functions compare and sort it. NaN is not: it would silently count as "not smaller".
    if np.isnan(array).any():
        bad = int(np.flatnonzero(np.isnan(array))[0])
        raise InvalidArgumentError(f"`{name}` holds a NaN (first at index {bad}); "
                                   "score only triplets where every distance is defined.")
    return array


def _fraction(values: ArrayLike, name: str) -> np.ndarray:
    array = _vector(values, name)
    outside = (array < 0) | (array > 1)
    if outside.any():
        bad = int(np.flatnonzero(outside)[0])
        raise InvalidArgumentError(f"`{name}` must be fractions of people in [0, 1]; index {bad} is {float(array[bad])!r}.")
    return array


def _same_length(**arrays: np.ndarray) -> None:
    sizes = {name: a.size for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"`{k}` {v}" for k, v in sizes.items())
        raise InvalidArgumentError(f"One value per triplet is needed in each argument; got {listed}.")


def score_2afc_per_triplet(d0: ArrayLike, d1: ArrayLike, judge: ArrayLike) -> np.ndarray:
    """Each triplet's agreement in [0, 1]: the share of people whose choice the distance makes.

    Patch 0 closer (``d0 < d1``) agrees with the ``1 − judge`` who chose p0, patch 1 closer with
    the ``judge`` who chose p1, and a tie counts ½, as ``score_2afc_dataset``'s ``scores``.

    >>> score_2afc_per_triplet([0.1, 0.2, 0.3], [0.2, 0.1, 0.3], [0.25, 0.25, 1.0]).tolist()
    [0.75, 0.25, 0.5]
    """
    a, b, j = _vector(d0, "d0"), _vector(d1, "d1"), _fraction(judge, "judge")
    _same_length(d0=a, d1=b, judge=j)
    # Written as the official expression, term for term, so ties and rounding match it exactly.
    return (a < b) * (1.0 - j) + (b < a) * j + (b == a) * 0.5


def score_2afc(d0: ArrayLike, d1: ArrayLike, judge: ArrayLike) -> float:
    """The 2AFC score in [0, 1]: the mean of :func:`score_2afc_per_triplet`.

    Equal to ``lpips.trainer.score_2afc_dataset(loader, func)[0]`` for the same distances and
    judgments. 0.5 is chance; :func:`human_ceiling_2afc` is what a person scores.

    References:
        Zhang, Isola, Efros, Shechtman, Wang (2018). The Unreasonable Effectiveness of Deep
        Features as a Perceptual Metric. CVPR. DOI: `10.1109/CVPR.2018.00068`

    >>> score_2afc([1.0, 2.0], [2.0, 1.0], [0.0, 1.0])
    1.0
    """
    return float(np.mean(score_2afc_per_triplet(d0, d1, judge)))


def human_ceiling_2afc(judge: ArrayLike) -> float:
    """How often one person agrees with another on the same triplet: mean of ``p² + (1 − p)²``.

    With a fraction ``p`` of a triplet's observers choosing patch 1, an observer drawn at random
    makes the same choice as another drawn at random with probability ``p·p + (1−p)·(1−p)``. The
    LPIPS paper reports this agreement between people as the "Human" 2AFC score, the ceiling a
    metric is compared against (Zhang et al. 2018, the "Human" entries of its 2AFC results). It
    is an expectation over observers (drawn with replacement), so it needs no distances and uses
    ``judge`` only.

    >>> round(human_ceiling_2afc([1.0, 0.0, 0.6]), 6)  # unanimous, unanimous, 3 of 5
    0.84
    """
    p = _fraction(judge, "judge")
    return float(np.mean(p * p + (1.0 - p) * (1.0 - p)))


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (PASCAL VOC's "correct" AP), as ``lpips.voc_ap``.

    >>> voc_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5]))
    0.75
    """
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the envelope: best precision at any recall ≥ r
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def score_jnd(d: ArrayLike, same: ArrayLike) -> float:
    """The JND score in [0, 1]: average precision of finding the "same" pairs by small distance.

    Pairs are sorted by distance (``np.argsort``, as the official code); each pair counts
    ``same`` as a true and ``1 − same`` as a false positive. Equal to
    ``lpips.trainer.score_jnd_dataset(loader, func)[0]``.

    >>> round(score_jnd([0.1, 0.5, 0.9], [1.0, 0.0, 1.0]), 4)
    0.8333
    """
    distances, sames = _vector(d, "d"), _fraction(same, "same")
    _same_length(d=distances, same=sames)
    if sames.sum() == 0:
        raise InvalidArgumentError("`same` is 0 for every pair, so no pair was judged identical and the average "
                                   "precision is undefined; score a set where some observers saw no difference.")
    order = np.argsort(distances)
    sorted_same = sames[order]
    true_pos = np.cumsum(sorted_same)
    false_pos = np.cumsum(1.0 - sorted_same)
    false_neg = np.sum(sorted_same) - true_pos
    return voc_ap(true_pos / (true_pos + false_neg), true_pos / (true_pos + false_pos))


def _as_distance(key: str, values: ArrayLike, name: str) -> np.ndarray:
    """Similarities (PSNR, SSIM: higher = more similar) negated, so every metric reads as a distance."""
    array = _vector(values, f"{name}[{key!r}]")
    return -array if metrics.get(key).higher_is_better else array


def score_metrics_2afc(d0: Mapping[str, ArrayLike], d1: Mapping[str, ArrayLike],
                       judge: ArrayLike) -> dict[str, float]:
    """:func:`score_2afc` of each metric, given each metric's own values for (ref, p0) and (ref, p1).

    Keys are registry keys (:func:`core.metrics.names`); the registry says which direction each
    metric reads, so PSNR or SSIM values go in as computed. The result keeps the registry's
    display order.

    >>> score_metrics_2afc({"psnr": [30.0, 20.0]}, {"psnr": [25.0, 28.0]}, [0.0, 1.0])
    {'psnr': 1.0}
    """
    _check_keys(d0, d1)
    return {key: score_2afc(_as_distance(key, d0[key], "d0"), _as_distance(key, d1[key], "d1"), judge)
            for key in _ordered(d0)}


def score_metrics_jnd(d: Mapping[str, ArrayLike], same: ArrayLike) -> dict[str, float]:
    """:func:`score_jnd` of each metric, given each metric's values for the JND pairs.

    >>> score_metrics_jnd({"ssim": [0.99, 0.5]}, [1.0, 0.0])
    {'ssim': 1.0}
    """
    _check_keys(d)
    return {key: score_jnd(_as_distance(key, d[key], "d"), same) for key in _ordered(d)}


def _check_keys(*maps: Mapping[str, ArrayLike]) -> None:
    if not maps[0]:
        raise InvalidArgumentError("No metric given; pass a mapping from registry keys to values.")
    for key in maps[0]:
        metrics.get(key)  # an unknown key names the known ones
    if len(maps) == 2 and set(maps[0]) != set(maps[1]):
        raise InvalidArgumentError(f"`d0` and `d1` must score the same metrics; got {sorted(maps[0])} "
                                   f"and {sorted(maps[1])}.")


def _ordered(values: Mapping[str, ArrayLike]) -> list[str]:
    order = {key: i for i, key in enumerate(metrics.names())}
    return sorted(values, key=order.__getitem__)
