"""Human judgments as the LPIPS paper uses them: 2AFC and JND scores, the BAPPS folder layout,
per-pair feature vectors, and fitting LPIPS's linear heads to judgments.

Zhang et al. (CVPR 2018) calibrate LPIPS by training non-negative per-channel weights ("heads")
on two-alternative forced-choice (2AFC) judgments of the BAPPS data set. Because LPIPS is linear
in its heads (``distance = w · φ``, :mod:`core.judgments.features`), the whole calibration can
run on stored φ vectors after one backbone pass per patch (:mod:`core.judgments.fit`).

Modules (import them directly; nothing here is imported eagerly, so listing the package does not
pay for torch):

* :mod:`~core.judgments.scores` — 2AFC score, the human ceiling, JND mAP, every metric at once;
* :mod:`~core.judgments.bapps` — read and write ``2afc/<split>/<set>`` and ``jnd/val/<set>``;
* :mod:`~core.judgments.features` — φ per pair, one backbone pass per distinct patch;
* :mod:`~core.judgments.fit` — the official Trainer's objective on φ, and a held-out split;
* :mod:`~core.judgments.heads` — fitted heads as safetensors with a manifest, loaded back safely.
"""

__all__ = ["bapps", "features", "fit", "heads", "scores"]
