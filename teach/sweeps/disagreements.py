"""Pairs of levels that LPIPS and another metric rank oppositely: the array work behind
:meth:`~teach.sweeps.severity.SweepResult.disagreements` and
:func:`~teach.sweeps.severity.disagreements_between`. Results are taken by what they hold
(``scores``, ``lpips``, ``name``, ``values``), so this module needs no sweep type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core import metrics as registry

from .levels import higher_is_better

__all__ = ["Disagreement", "find_disagreements"]


@dataclass(frozen=True)
class Disagreement:
    """Two levels that LPIPS and another metric rank oppositely.

    ``a_*`` and ``b_*`` describe the two levels: which result (index into the list given to
    :func:`disagreements_between`; 0 for :meth:`SweepResult.disagreements`), its distortion,
    level index and severity, and the scores. ``metric`` is the metric that contradicts
    LPIPS (any other registered metric: "psnr", "ssim"...). ``rank_gap`` measures how striking the clash is: the smaller of
    the two metrics' rank differences between the levels (in the pooled ranking), so it is
    large only when *both* metrics are confident, in opposite directions.
    """

    metric: str
    a_result: int
    a_name: str
    a_index: int
    a_value: float
    b_result: int
    b_name: str
    b_index: int
    b_value: float
    lpips_a: float
    lpips_b: float
    other_a: float
    other_b: float
    rank_gap: float

    @property
    def pair(self) -> tuple[int, int]:
        """The two level indices ``(a_index, b_index)``."""
        return self.a_index, self.b_index

    @property
    def lpips_worse(self) -> str:
        """``"a"`` or ``"b"``: the level LPIPS calls worse (the other metric says the opposite)."""
        return "a" if self.lpips_a > self.lpips_b else "b"

    def describe(self) -> str:
        """A one-line explanation, e.g. for a table caption."""
        worse, better = (("a", "b") if self.lpips_worse == "a" else ("b", "a"))

        def level(side: str) -> str:
            return f"{getattr(self, side + '_name')} @ {getattr(self, side + '_value'):g}"

        return (f"LPIPS says {level(worse)} is worse than {level(better)}; "
                f"{self.metric.upper()} says the opposite.")


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (0-based; ties share the mean rank); works with ±inf."""
    order = np.sort(x)
    return (np.searchsorted(order, x, "left") + np.searchsorted(order, x, "right") - 1) / 2.0


def find_disagreements(
    results: Sequence[Any], metrics: Sequence[str], limit: int,
    ties: Mapping[str, float] | None, *, across_only: bool,
) -> list[Disagreement]:
    common = [k for k in results[0].scores if all(k in r.scores for r in results)]
    if metrics is None:
        metrics = tuple(k for k in common if k != "lpips")
    elif isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(metrics)
    bad = [m for m in metrics if m not in common or m == "lpips"]
    if bad or not metrics:
        choices = ", ".join(repr(k) for k in common if k != "lpips")
        raise ValueError(f"`metrics` must name metrics to compare with LPIPS that every result has ({choices}), "
                         f"got {metrics!r}.")
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"`limit` must be a positive integer, got {limit!r}.")
    defaults = {key: registry.get(key).tie for key in common}
    tie = {**defaults, **dict(ties or {})}
    for key, value in tie.items():
        if key not in defaults or isinstance(value, bool) \
                or not isinstance(value, (int, float, np.integer, np.floating)) or not value >= 0:
            raise ValueError(f"`ties` maps {', '.join(repr(k) for k in defaults)} to non-negative numbers, "
                             f"got {key!r}: {value!r}.")

    owner = np.concatenate([np.full(len(r), k) for k, r in enumerate(results)])
    index = np.concatenate([np.arange(len(r)) for r in results])
    lpips = np.concatenate([r.lpips for r in results])
    upper = np.triu(np.ones((len(owner), len(owner)), dtype=bool), k=1)
    if across_only:
        upper &= owner[:, None] != owner[None, :]
    d_lpips = lpips[:, None] - lpips[None, :]  # > 0: LPIPS says the row level is worse
    r_lpips = _ranks(lpips)
    # Score every clash as arrays first; build objects only for the `limit` that are returned.
    hits: list[np.ndarray] = []  # rows: metric number, a, b, min rank gap, summed rank gap
    scores = {m: np.concatenate([r.scores[m] for r in results]) for m in metrics}
    for k, metric in enumerate(metrics):
        badness = -scores[metric] if higher_is_better(metric) else scores[metric]
        with np.errstate(invalid="ignore"):  # inf - inf: a tie, never a disagreement
            d_other = badness[:, None] - badness[None, :]
            clash = upper & (((d_lpips > tie["lpips"]) & (d_other < -tie[metric]))
                             | ((d_lpips < -tie["lpips"]) & (d_other > tie[metric])))
        a, b = np.nonzero(clash)
        r_other = _ranks(badness)
        gap_l, gap_o = np.abs(r_lpips[a] - r_lpips[b]), np.abs(r_other[a] - r_other[b])
        hits.append(np.stack([np.full(len(a), k), a, b, np.minimum(gap_l, gap_o), gap_l + gap_o], axis=1))
    table = np.concatenate(hits) if hits else np.empty((0, 5))
    # Most striking first; equal gaps keep metric order, then pool order (lexsort is stable).
    order = np.lexsort((-table[:, 4], -table[:, 3]))[:int(limit)]
    out = []
    for k, a, b, gap, _ in table[order]:
        metric, a, b = metrics[int(k)], int(a), int(b)
        ra, rb = results[owner[a]], results[owner[b]]
        out.append(Disagreement(
            metric=metric,
            a_result=int(owner[a]), a_name=ra.name, a_index=int(index[a]), a_value=float(ra.values[index[a]]),
            b_result=int(owner[b]), b_name=rb.name, b_index=int(index[b]), b_value=float(rb.values[index[b]]),
            lpips_a=float(lpips[a]), lpips_b=float(lpips[b]),
            other_a=float(scores[metric][a]), other_b=float(scores[metric][b]), rank_gap=float(gap),
        ))
    return out
