"""All metrics for a reference and any number of distorted images, in one typed result.

This is what the app and the command line call: LPIPS (with its layers and maps) from the
:class:`~core.lpips.Engine` and its cached reference, plus PSNR, SSIM (with its map) and MS-SSIM
from :mod:`core.classic`. Nothing here decides how anything is shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .classic import MS_SSIM_MIN_SIZE, ms_ssim, psnr, ssim
from .lpips import Engine, LpipsResult, ReferenceFeatures
from .tensors import as_batch

# Direction of each metric, for anything that displays or ranks them.
HIGHER_IS_BETTER = {"lpips": False, "psnr": True, "ssim": True, "ms_ssim": True}


@dataclass(frozen=True)
class Comparison:
    """Metrics of N distorted images against one reference (tensors on the CPU).

    ``ms_ssim`` is NaN where the image is smaller than MS-SSIM's minimum (176 px per side).
    """

    lpips: LpipsResult
    psnr: torch.Tensor  # (N,), +inf for identical images
    ssim: torch.Tensor  # (N,)
    ssim_map: torch.Tensor  # (N, 1, H-10, W-10)
    ms_ssim: torch.Tensor  # (N,)
    ssim_mode: str
    error_map: torch.Tensor | None = None  # (N, 1, H, W): squared error in 8-bit levels, mean over RGB

    def row(self, i: int = 0) -> dict:
        """Image ``i``'s scalars as plain Python values (JSON-able, +inf kept as float)."""
        return {
            "lpips": float(self.lpips.value[i]),
            "lpips_layers": [float(v) for v in self.lpips.layer_values[i]],
            "lpips_layer_names": list(self.lpips.layer_names),
            "psnr": float(self.psnr[i]),
            "ssim": float(self.ssim[i]),
            "ms_ssim": float(self.ms_ssim[i]),
            "ssim_mode": self.ssim_mode,
            "net": self.lpips.net,
            "version": self.lpips.version,
            "calibrated": self.lpips.lpips,
        }


def compare(engine: Engine, ref: ReferenceFeatures | torch.Tensor, dist: torch.Tensor, *,
            ssim_mode: str = "reference", spatial: bool = True, precise: bool = True) -> Comparison:
    """Every metric of each image in ``dist`` (N×3×H×W in [0, 1]) against ``ref``.

    ``precise=False`` computes SSIM and MS-SSIM in float32 on the CPU (within ~1e-5, about
    5× faster): for interactive views; the command line keeps the float64 default.
    """
    if not isinstance(ref, ReferenceFeatures):
        ref = engine.reference(ref)
    lpips_result = engine.compare(ref, dist, spatial=spatial)
    # The classic metrics run where the engine runs (the GPU when there is one).
    ref_image = ref.image
    dist_dev = as_batch(dist, "dist").detach().to(engine.device, torch.float32)
    ssim_result = ssim(ref_image, dist_dev, mode=ssim_mode, return_map=True, precise=precise)
    n = dist_dev.shape[0]
    if min(dist_dev.shape[-2:]) >= MS_SSIM_MIN_SIZE:
        ms = ms_ssim(ref_image, dist_dev, mode=ssim_mode, precise=precise).cpu()
    else:
        ms = torch.full((n,), math.nan)
    error_map = None
    if spatial:  # what PSNR averages: per-pixel squared error, on the 0-255 scale
        error_map = ((ref_image - dist_dev) * 255).square().mean(dim=1, keepdim=True).cpu()
    return Comparison(lpips=lpips_result, psnr=psnr(ref_image, dist_dev).float().cpu(),
                      ssim=ssim_result.value.float().cpu(), ssim_map=ssim_result.map.float().cpu(),
                      ms_ssim=ms.float(), ssim_mode=ssim_mode, error_map=error_map)
