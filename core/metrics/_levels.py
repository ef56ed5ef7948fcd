"""8-bit levels and working precision, shared by PSNR and the SSIM family.

Published PSNR/SSIM numbers are measured on 8-bit files, so both images are first rounded to
the 256 levels a PNG stores; a float image and its saved PNG then score the same.

Computation runs on the inputs' device, in float64 (float32 only on Apple MPS, which has no
float64): the variance terms E[x²] - E[x]² of 0-255 data lose digits to cancellation, about
1e-4 of SSIM in float32, and CUDA convolutions in float32 default to TF32, which would lose
far more. ``precise=False`` trades that for speed on the CPU (about 5× faster, within ~1e-5).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

PEAK = 255.0

# MATLAB rgb2gray: the first row of inv([1 .956 .621; 1 -.272 -.647; 1 -1.106 1.703]),
# not the rounded Rec. 601 weights (0.299, 0.587, 0.114); they differ by one grey level on
# some pixels, which is enough to move SSIM in the fifth decimal.
MATLAB_LUMA = (0.298936021293775, 0.587043074451121, 0.114020904255103)

# Below this many elements a tensor stays on the PyTorch path: the compiled kernels
# (_ssim_kernels) save ~9 ms per 512² image but cost ~0.5 s to load (numba and the cached
# machine code) the first time a process uses them, which a one-shot `compare` of two small
# images would pay for nothing. Both paths give the same sums (≤ 1e-12, tested).
KERNEL_MIN_ELEMENTS = 128 * 128


def use_kernels(x: torch.Tensor) -> bool:
    """Whether the compiled CPU kernels take ``x`` (accelerators and small tensors keep PyTorch)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.numel() >= KERNEL_MIN_ELEMENTS


def work_dtype(image: torch.Tensor, precise: bool = True) -> torch.dtype:
    """float64 (exact enough to match the reference implementations to 1e-6), or float32 on
    MPS and, with ``precise=False``, on the CPU (what an interactive view needs)."""
    if image.device.type == "mps" or (not precise and image.device.type == "cpu"):
        return torch.float32
    return torch.float64


def out_dtype(image: torch.Tensor) -> torch.dtype:
    """Half-precision results would round SSIM 0.9995 to 1.0; report at least float32."""
    return torch.float64 if image.dtype == torch.float64 else torch.float32


def quantize(image: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[0, 1] floats → 8-bit grey levels 0..255 (as floats), rounding like ``to_uint8``."""
    # Rounded in the input's precision: k/255 stored as float32 maps back to exactly k.
    if use_kernels(image):
        from . import _ssim_kernels  # the same four steps in one compiled pass (equal, tested)

        return _ssim_kernels.levels(image, dtype)
    return image.clamp(0.0, 1.0).mul(255.0).round().to(dtype)


def matlab_luma(levels: torch.Tensor) -> torch.Tensor:
    """N×3×H×W 8-bit levels → N×1×H×W 8-bit luma, as MATLAB ``rgb2gray`` on uint8 input."""
    if use_kernels(levels):
        from . import _ssim_kernels  # one compiled pass: the same float64 sums, 4-10× less time

        return _ssim_kernels.luma(levels, MATLAB_LUMA)
    return _matlab_luma_torch(levels)


def _matlab_luma_torch(levels: torch.Tensor) -> torch.Tensor:
    """:func:`matlab_luma` in PyTorch (accelerators; the reference for the compiled kernel)."""
    # MPS has no float64; elsewhere the weighted sum is formed in float64 so that the
    # rounding below falls on the same side as MATLAB's double arithmetic.
    dtype = torch.float32 if levels.device.type == "mps" else torch.float64
    weights = torch.tensor(MATLAB_LUMA, dtype=dtype, device=levels.device).view(1, 3, 1, 1)
    luma = (levels.to(dtype) * weights).sum(dim=1, keepdim=True)
    # MATLAB rounds halves away from zero (round() in torch rounds them to even).
    return torch.floor(luma + 0.5).clamp(0.0, 255.0).to(levels.dtype)


def shared(scratch: dict | None, name: tuple, image: torch.Tensor, make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``make()``, computed once per ``image`` within one ``compare``/``prepare_reference`` call.

    PSNR, SSIM, MS-SSIM and GMSD all start from the same 8-bit levels (and three of them from
    the same luma); ``scratch`` (``MetricContext.scratch``) lets the first one hand them on.
    The entry keeps ``image`` itself alive, so its ``id`` cannot be reused by another tensor.
    """
    if scratch is None:
        return make()
    key = (name, id(image))
    hit = scratch.get(key)
    if hit is not None and hit[0] is image:
        return hit[1]
    value = make()
    scratch[key] = (image, value)
    return value


def shared_levels(image: torch.Tensor, dtype: torch.dtype, scratch: dict | None) -> torch.Tensor:
    """:func:`quantize`, shared within one call (see :func:`shared`); levels already made in
    another precision are converted (integers 0..255 are exact in both)."""
    def make() -> torch.Tensor:
        for other in (torch.float64, torch.float32):
            hit = scratch.get((("levels", other), id(image))) if scratch is not None else None
            if other != dtype and hit is not None and hit[0] is image:
                return hit[1].to(dtype)
        return quantize(image, dtype)

    return shared(scratch, ("levels", dtype), image, make)


def shared_luma(image: torch.Tensor, dtype: torch.dtype, scratch: dict | None) -> torch.Tensor:
    """:func:`matlab_luma` of :func:`quantize`, shared within one call (see :func:`shared`)."""
    return shared(scratch, ("luma", dtype), image, lambda: matlab_luma(shared_levels(image, dtype, scratch)))
