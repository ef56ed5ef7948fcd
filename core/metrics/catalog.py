"""The built-in metrics: what each one is (key, label, direction, unit, range, map, minimum
size, cost class) and which module computes it.

This module imports no PyTorch and none of the metric modules: each spec names its
``prepare_reference`` and ``score`` functions as :class:`~core.metrics.registry.Deferred`, loaded
on first use. So the command line's ``--help`` and ``metrics`` and the app's first screen list
the metrics at once, and a command pays only for the metrics it computes. Adding a metric is one
module in this package (``prepare_reference(ref, ctx)`` and ``score(prepared, dist, ctx)``) and
one spec below; the order here is the display order.

>>> [spec.key for spec in BUILT_IN][:4]
['lpips', 'psnr', 'ssim', 'ms_ssim']
"""

from __future__ import annotations

import math

from ..lpips.names import MIN_SIDE
from .registry import Deferred, MapSpec, MetricContext, MetricSpec

__all__ = ["BUILT_IN", "CW_SSIM_MIN_SIZE", "DISTS_MIN_SIZE", "FSIM_MIN_SIZE", "GMSD_MIN_SIZE", "MAD_IQA_MIN_SIZE",
           "MS_SSIM_MIN_SIZE", "NLPD_MIN_SIZE", "SSIM_MIN_SIZE", "VIF_MIN_SIZE", "VIFP_MIN_SIZE", "VSI_MIN_SIZE"]

# Smallest image side each metric accepts; the metric modules check against these same numbers
# (and their tests derive them from each metric's own windows and scales).
SSIM_MIN_SIZE = 11  # the 11×11 Gaussian window
MS_SSIM_MIN_SIZE = 11 * 2 ** 4  # that window at the coarsest of five scales: 176
DISTS_MIN_SIZE = 16
FSIM_MIN_SIZE = 8
VIF_MIN_SIZE = 72  # vifvec.m's 4-level steerable pyramid: the 4th level still holds the 9×9 lowpass filter
VIFP_MIN_SIZE = 41  # the coarsest of VIFp's four scales still holds one 3×3 window
GMSD_MIN_SIZE = 4
VSI_MIN_SIZE = 8  # no window needs more (3×3 gradients); as FSIM, whose pipeline VSI's reduction shares
MAD_IQA_MIN_SIZE = 34  # MAD_index.m drops 17 border pixels per side (BSIZE + 1 and BSIZE): 34 leaves one row
# CW-SSIM: buildSCFpyr builds at most floor(log2(side)) - 2 levels, and CW-SSIM uses the fourth.
CW_SSIM_MIN_SIZE = 2 ** (4 + 2)
# NLPD: the five levels its six-level pyramid halves are each at least 2 pixels wide (the 5×5
# filter's mirror padding of 2 then mirrors real pixels): ⌈17/16⌉ = 2, ⌈16/16⌉ = 1.
NLPD_MIN_SIZE = 17


def _lpips_title(ctx: MetricContext) -> str:
    engine = ctx.engine
    if engine is None:
        return ""
    heads = getattr(engine.network, "heads_origin", "")
    if heads:
        return f"{engine.net}, heads {heads}"
    return f"{engine.net} v{engine.version}{'' if engine.lpips else ', baseline'}"


BUILT_IN: tuple[MetricSpec, ...] = (
    MetricSpec(
        key="lpips",
        label="LPIPS",
        higher_is_better=False,
        prepare=Deferred("core.metrics.lpips", "prepare_reference"),
        score=Deferred("core.metrics.lpips", "score"),
        description="Learned perceptual distance. Lower is better: 0 = identical, higher = more different.",
        value_range=(0.0, math.inf),
        identical=0.0,
        map=MapSpec(title="LPIPS map (bright = more different)", unit="LPIPS", file_stem="lpips_map",
                    higher_is_better=False),
        differentiable=True,  # core.LPIPS passes gradients to its inputs
        min_size=lambda ctx: MIN_SIDE[ctx.engine.net] if ctx.engine is not None else min(MIN_SIDE.values()),
        title_detail=_lpips_title,
        extras=Deferred("core.metrics.lpips", "row_extras"),
    ),
    MetricSpec(
        key="psnr",
        label="PSNR",
        higher_is_better=True,
        prepare=Deferred("core.metrics.psnr", "prepare_reference"),
        score=Deferred("core.metrics.psnr", "score"),
        description="Peak signal-to-noise ratio on 8-bit RGB. Higher is better (more similar).",
        unit="dB",
        value_range=(0.0, math.inf),
        identical=math.inf,
        map=MapSpec(title="Squared error (what PSNR averages)", unit="error²", file_stem="squared_error_map",
                    higher_is_better=False),
        differentiable=False,  # scored on 8-bit levels: rounding has no useful gradient
        min_size=1,
        digits=2,
        tie=0.1,
    ),
    MetricSpec(
        key="ssim",
        label="SSIM",
        higher_is_better=True,
        prepare=Deferred("core.metrics.ssim", "prepare_reference"),
        score=Deferred("core.metrics.ssim", "score"),
        description="Structural similarity, 11×11 Gaussian window. Higher is better; 1 = identical.",
        value_range=(-1.0, 1.0),
        identical=1.0,
        map=MapSpec(title="SSIM map (dark = less similar)", unit="SSIM", file_stem="ssim_map", higher_is_better=True,
                    value_range=(-1.0, 1.0)),
        differentiable=False,  # scored on 8-bit levels
        min_size=SSIM_MIN_SIZE,
        settings=("ssim_mode",),
        title_detail=lambda ctx: ctx.ssim_mode,
    ),
    MetricSpec(
        key="ms_ssim",
        label="MS-SSIM",
        higher_is_better=True,
        prepare=Deferred("core.metrics.ms_ssim", "prepare_reference"),
        score=Deferred("core.metrics.ms_ssim", "score"),
        description="Multi-scale SSIM over 5 scales. Higher is better. Needs at least 176 px per side.",
        value_range=(0.0, 1.0),
        identical=1.0,
        differentiable=False,  # scored on 8-bit levels
        min_size=MS_SSIM_MIN_SIZE,
        small_images="nan",
        settings=("ssim_mode",),
    ),
    MetricSpec(
        key="dists",
        label="DISTS",
        higher_is_better=False,
        prepare=Deferred("core.metrics.dists", "prepare_reference"),
        score=Deferred("core.metrics.dists", "score"),
        description="Deep image structure and texture similarity (Ding et al. 2020): VGG16 features with L2 "
                    "pooling, compared by global means (texture) and covariances (structure) with learned "
                    "weights. Lower is better: 0 = identical, higher = more different.",
        value_range=(0.0, 1.0),
        identical=0.0,
        differentiable=False,
        min_size=DISTS_MIN_SIZE,
        small_images="nan",
        default=False,  # too slow for a slider move on a CPU: see README, "More metrics"
        tie=1e-3,
        extras=Deferred("core.metrics.dists", "row_extras"),
    ),
    MetricSpec(
        key="fsim",
        label="FSIM",
        higher_is_better=True,
        prepare=Deferred("core.metrics.fsim", "prepare_reference"),
        score=Deferred("core.metrics.fsim", "score"),
        description="Feature similarity with colour (FSIMc, Zhang et al. 2011): phase congruency and gradient "
                    "similarity, weighted where structure is. Higher is better; 1 = identical.",
        value_range=(0.0, 1.0),
        identical=1.0,
        map=MapSpec(title="FSIM map (dark = less similar)", unit="S_L", file_stem="fsim_map",
                    higher_is_better=True, value_range=(0.0, 1.0)),
        differentiable=False,  # scored on 8-bit levels
        min_size=FSIM_MIN_SIZE,
        small_images="nan",
        default=False,  # too slow for a slider move on a CPU: see README, "More metrics"
    ),
    MetricSpec(
        key="vif",
        label="VIF",
        higher_is_better=True,
        prepare=Deferred("core.metrics.vif", "prepare_reference"),
        score=Deferred("core.metrics.vif", "score"),
        description="Visual information fidelity (Sheikh & Bovik 2006, vifvec.m): the share of the reference's "
                    "information, measured in a steerable pyramid with a Gaussian scale mixture model, that the "
                    "distorted image keeps. Higher is better; 1 = identical.",
        value_range=(0.0, float("inf")),
        identical=1.0,
        differentiable=False,  # scored on 8-bit levels
        min_size=VIF_MIN_SIZE,
        small_images="nan",
        default=False,  # too slow for a slider move on a CPU: see README, "More metrics"
    ),
    MetricSpec(
        key="vifp",
        label="VIFp",
        higher_is_better=True,
        prepare=Deferred("core.metrics.vifp", "prepare_reference"),
        score=Deferred("core.metrics.vifp", "score"),
        description="Visual information fidelity, pixel domain (VIFp, vifp_mscale.m): VIF's simpler cousin on "
                    "Gaussian-filtered scales, not the published VIF. Higher is better; 1 = identical.",
        value_range=(0.0, float("inf")),
        identical=1.0,
        differentiable=False,  # scored on 8-bit levels
        min_size=VIFP_MIN_SIZE,
        small_images="nan",
        default=False,  # too slow for a slider move on a CPU: see README, "More metrics"
    ),
    MetricSpec(
        key="gmsd",
        label="GMSD",
        higher_is_better=False,
        prepare=Deferred("core.metrics.gmsd", "prepare_reference"),
        score=Deferred("core.metrics.gmsd", "score"),
        description="Gradient Magnitude Similarity Deviation (Xue et al. 2014): how unevenly the local "
                    "gradients change. Lower is better: 0 = identical, higher = more different.",
        value_range=(0.0, 1.0),
        identical=0.0,
        map=MapSpec(title="GMSD map (dark = less similar)", unit="GMS", file_stem="gmsd_map",
                    higher_is_better=True, value_range=(0.0, 1.0)),
        differentiable=False,  # scored on 8-bit levels
        min_size=GMSD_MIN_SIZE,
        small_images="nan",
    ),
    MetricSpec(
        key="vsi",
        label="VSI",
        higher_is_better=True,
        prepare=Deferred("core.metrics.vsi", "prepare_reference"),
        score=Deferred("core.metrics.vsi", "score"),
        description="Visual saliency-induced index (Zhang, Shen & Li 2014): gradient, chroma and saliency "
                    "similarity, weighted by where the eye is drawn (SDSP saliency). Higher is better; "
                    "1 = identical.",
        value_range=(0.0, 1.0),
        identical=1.0,
        map=MapSpec(title="VSI map (dark = less similar)", unit="S", file_stem="vsi_map",
                    higher_is_better=True, value_range=(0.0, 1.0)),
        differentiable=False,  # scored on 8-bit levels
        min_size=VSI_MIN_SIZE,
        small_images="nan",
        default=False,  # too slow for a slider move on a CPU: see README, "More metrics"
    ),
    MetricSpec(
        key="mad_iqa",
        label="MAD (Larson–Chandler)",
        higher_is_better=False,
        prepare=Deferred("core.metrics.mad_iqa", "prepare_reference"),
        score=Deferred("core.metrics.mad_iqa", "score"),
        description="Most apparent distortion (Larson & Chandler 2010): a detection-based distance (CSF, "
                    "contrast masking) blended with an appearance-based one (log-Gabor statistics) by how "
                    "visible the distortion is. Not the MAD competition of the Synthesis page. Lower is "
                    "better: 0 = identical, higher = more different.",
        value_range=(0.0, math.inf),
        identical=0.0,
        map=MapSpec(title="MAD detection map (bright = more visible distortion)", unit="masked local MSE",
                    file_stem="mad_iqa_detection_map", higher_is_better=False),
        differentiable=False,  # scored on 8-bit levels
        min_size=MAD_IQA_MIN_SIZE,
        small_images="nan",
        default=False,  # too slow for a slider move on a CPU: see README, "More metrics"
        digits=2,  # values run to ~200 (d_detect's 200 scale)
        tie=0.1,
    ),
    MetricSpec(
        key="cw_ssim",
        label="CW-SSIM",
        higher_is_better=True,
        prepare=Deferred("core.metrics.cw_ssim", "prepare_reference"),
        score=Deferred("core.metrics.cw_ssim", "score"),
        description="Complex wavelet SSIM (Sampat et al. 2009): SSIM's structure term on the complex steerable "
                    "pyramid's 4th-level bands (8 orientations), insensitive to small shifts. Higher is better; "
                    "1 = identical. Needs at least 64 px per side.",
        value_range=(0.0, 1.0),
        identical=1.0,
        map=MapSpec(title="CW-SSIM map, 1/8 size (dark = less similar)", unit="CW-SSIM", file_stem="cw_ssim_map",
                    higher_is_better=True, value_range=(0.0, 1.0)),
        differentiable=False,  # scored on 8-bit levels
        min_size=CW_SSIM_MIN_SIZE,
        small_images="nan",
        digits=5,  # mild distortions stay within 1e-3 of 1 at the 4th level
        tie=1e-4,
        default=False,  # not one of the fast set: chosen in the sidebar or with --metrics
    ),
    MetricSpec(
        key="nlpd",
        label="NLPD",
        higher_is_better=False,
        prepare=Deferred("core.metrics.nlpd", "prepare_reference"),
        score=Deferred("core.metrics.nlpd", "score"),
        description="Normalized Laplacian pyramid distance (Laparra et al. 2016): six Laplacian levels, each "
                    "divided by its local amplitude, compared by RMS. Lower is better: 0 = identical, higher = "
                    "more different.",
        value_range=(0.0, math.inf),
        identical=0.0,
        map=MapSpec(title="NLPD, finest level (bright = more different)", unit="NLPD",
                    file_stem="nlpd_map", higher_is_better=False),
        differentiable=False,  # scored on 8-bit levels
        min_size=NLPD_MIN_SIZE,
        small_images="nan",
        default=False,  # not one of the fast set: chosen in the sidebar or with --metrics
    ),
)
