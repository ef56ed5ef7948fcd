"""What the quiz store keeps, as plain records: a round's spec (:class:`RoundSpec`), a prepared
round (:class:`PreparedRound`: PNGs and metric values), and the display order of metric names.
:mod:`teach` makes these records; the store persists and returns them. Nothing here computes
statistics: agreement with the people is :mod:`teach.quiz`'s business.

>>> metric_order({"psnr", "lpips_vgg", "zzz", "lpips_alex"})
['lpips_alex', 'lpips_vgg', 'psnr', 'zzz']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import metrics
from core.distortions import Step
from core.lpips.names import NETS

__all__ = ["PNG_SIGNATURE", "PreparedRound", "RoundSpec", "metric_order", "pair_label"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class RoundSpec:
    """Round ``index`` of the session with seed ``seed``: a reference sample and two chains.

    In a JND round (``kind == "jnd"``) ``chain_a`` is empty (image A is the reference) and
    ``chain_b`` is the distortion, or empty too in an identical pair (:attr:`identical`).

    ``noise_seed`` seeds the random distortions (:func:`core.distortions.apply`), so the
    noise pattern is part of the round too. Chains are tuples so the spec stays immutable.
    """

    index: int
    seed: int
    sample: str
    chain_a: tuple[Step, ...]
    chain_b: tuple[Step, ...]
    family_a: str
    family_b: str
    noise_seed: int = 0
    #: ``"2afc"`` (A and B are two distortions of the reference) or ``"jnd"`` (A is the reference
    #: itself, B a distortion of it, or the reference again in an identical pair).
    kind: str = "2afc"

    @property
    def pair(self) -> str:
        """The families of the pair, order-free, e.g. ``'blur vs noise'``."""
        return pair_label(self.family_a, self.family_b)

    @property
    def identical(self) -> bool:
        """Whether both images are the same pixels (a JND round whose chains are both empty)."""
        return not self.chain_a and not self.chain_b


def pair_label(family_a: str, family_b: str) -> str:
    """Name a pair of distortion families independently of which side was A.

    >>> pair_label("noise", "blur"), pair_label("blur", "noise"), pair_label("blur", "blur")
    ('blur vs noise', 'blur vs noise', 'blur vs blur')
    """
    first, second = sorted((family_a, family_b))
    return f"{first} vs {second}"


@dataclass(frozen=True)
class PreparedRound:
    """One round, ready to show: its spec, the three images as PNG (8-bit, exactly the pixels
    that were measured) and :func:`~teach.quiz.score_round`'s values.

    A JND round stores the reference as ``ref_png`` and ``a_png`` (the first image shown) and the
    second image as ``b_png``; its values are :func:`~teach.quiz.score_jnd_round`'s.
    """

    spec: RoundSpec
    ref_png: bytes
    a_png: bytes
    b_png: bytes
    metrics: dict[str, dict[str, Any]]

    @property
    def index(self) -> int:
        return self.spec.index


def metric_order(names: set[str] | list[str]) -> list[str]:
    """``names`` in display order: LPIPS once per network (``lpips_alex``, ``lpips_vgg``…, in the
    order of :data:`core.lpips.names.NETS`), then the registry's metrics in its order, then any
    other name (older records) sorted."""
    lpips = [f"lpips_{net}" for net in NETS]
    known = [m for m in (*lpips, *(k for k in metrics.names() if k != "lpips")) if m in names]
    return known + sorted(set(names) - set(known))
