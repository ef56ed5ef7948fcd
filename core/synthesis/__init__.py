"""Synthesis: optimize images by gradient to pit the metrics against each other.

- :func:`mad` — the maximum differentiation (MAD) competition of Wang & Simoncelli (2008): hold
  one metric at a level, find the best and the worst image for another.
- :func:`restore` — a metric as a loss ("LPIPS as a loss"): start from a degraded image and
  optimize it towards the reference with L2, SSIM, LPIPS or a weighted mix.

Pure PyTorch, no Streamlit; runs where the LPIPS engine runs (CUDA when present). Each result
is typed and carries its history (the metrics at every step).
"""

from .common import MAX_SIZE, MAX_STEPS, MIN_SIZE, SCORE_KEYS, StepReport, score_images, square_reference
from .mad import HOLD_TOLERANCE, MadResult, MadStep, UnreachableLevelError, mad, reachable_range
from .restore import DEGRADATIONS, LOSS_TERMS, LossSpec, RestoreResult, RestoreRun, degrade, parse_loss, restore
from .objectives import METRICS, MetricInfo, Objective, metric_key, objective

__all__ = ["HOLD_TOLERANCE", "MAX_SIZE", "MAX_STEPS", "METRICS", "MIN_SIZE", "MadResult", "MadStep", "MetricInfo",
           "Objective", "SCORE_KEYS", "StepReport", "UnreachableLevelError", "mad", "metric_key", "objective",
           "reachable_range", "score_images", "square_reference", "DEGRADATIONS", "LOSS_TERMS", "LossSpec",
           "RestoreResult", "RestoreRun", "degrade", "parse_loss", "restore"]
