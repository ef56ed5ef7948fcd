"""Synthesis: optimize images by gradient to pit the metrics against each other.

- :func:`mad` (:mod:`.competition`) — the maximum differentiation (MAD) competition of Wang & Simoncelli (2008): hold
  one metric at a level, find the best and the worst image for another.
- :func:`restore` (:mod:`.metric_loss`) — a metric as a loss ("LPIPS as a loss"): start from a degraded image and
  optimize it towards the reference with L2, SSIM, LPIPS or a weighted mix.

Pure PyTorch, no Streamlit; runs where the LPIPS engine runs (CUDA when present). Each result
is typed and carries its history (the metrics at every step).
"""

from .._lazy import lazy_attributes

# Public names → the submodule that defines them, loaded on first use (PEP 562): the command
# line reads the limits (``.limits``) to build its --help without importing PyTorch.
_EXPORTS = {
    **dict.fromkeys(("MAX_SIZE", "MAX_STEPS", "MIN_SIZE", "SCORE_KEYS"), "limits"),
    **dict.fromkeys(("StepReport", "score_images", "square_reference"), "common"),
    **dict.fromkeys(("HOLD_TOLERANCE", "MadResult", "MadStep", "UnreachableLevelError", "mad", "reachable_range"),
                    "competition"),
    **dict.fromkeys(("DEGRADATIONS", "LOSS_TERMS", "LossSpec", "RestoreResult", "RestoreRun", "degrade", "parse_loss",
                     "restore"), "metric_loss"),
    **dict.fromkeys(("METRICS", "MetricInfo", "Objective", "metric_key", "objective"), "objectives"),
}


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)


__all__ = sorted(_EXPORTS)
