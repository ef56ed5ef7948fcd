"""Severity sweeps and equal-PSNR sets: where LPIPS, PSNR and SSIM agree, and where they do not.

:func:`severity_sweep` renders one distortion at evenly spaced severities and scores every
level with LPIPS (batched against one cached reference), PSNR and SSIM; its
:class:`SweepResult` puts the three on a shared "badness" axis (:meth:`SweepResult.normalized`),
exports CSV rows (:meth:`SweepResult.to_rows`) and lists pairs of levels the metrics rank
oppositely (:meth:`SweepResult.disagreements`, and :func:`disagreements_between` across
families, where such pairs are common).

:func:`match_psnr` searches one distortion's severity for a target PSNR, and
:func:`equal_psnr_set` does it for several families at once and ranks the results by LPIPS:
the classic demonstration that images PSNR calls equally damaged do not look equally damaged.

Every distorted image is rounded to 8 bits (:func:`core.images.tensors.quantize_8bit`) before it is
scored, so the numbers are those of the PNG a user would save. Nothing here imports Streamlit.
"""

from .disagreements import Disagreement
from .equal_psnr import (DEFAULT_EQUAL_PSNR_FAMILIES, DEFAULT_TARGET_PSNR, EqualPSNREntry, EqualPSNRResult, Match,
                         equal_psnr_set, match_psnr)
from .levels import MAX_LEVELS, MIN_LEVELS, default_range, severity_levels
from .severity import PSNR_CAP, SweepResult, disagreements_between, severity_sweep

__all__ = [
    "DEFAULT_EQUAL_PSNR_FAMILIES",
    "DEFAULT_TARGET_PSNR",
    "MAX_LEVELS",
    "MIN_LEVELS",
    "PSNR_CAP",
    "Disagreement",
    "EqualPSNREntry",
    "EqualPSNRResult",
    "Match",
    "SweepResult",
    "default_range",
    "disagreements_between",
    "equal_psnr_set",
    "match_psnr",
    "severity_levels",
    "severity_sweep",
]
