"""Validation and conversion of image tensors at the edge of every public function.

Inside ``core`` an image batch is a float tensor N×3×H×W with values in [0, 1]. These checks
are cheap (a min/max over the batch) and build their message only when they fail.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch

from ..errors import ImageSizeMismatchError, InputRangeError, InputShapeError

# Float rounding in resampling or colour conversion can step a hair outside [0, 1];
# anything further out is a convention error (0-255 data, [-1, 1] data), not rounding.
RANGE_TOLERANCE = 1e-3


def as_batch(image: torch.Tensor, name: str = "image") -> torch.Tensor:
    """Return ``image`` as a float N×3×H×W batch, checking its layout.

    Accepts 3×H×W (one image) and N×1×H×W (grayscale, repeated to three channels).

    >>> as_batch(torch.zeros(3, 8, 8)).shape
    torch.Size([1, 3, 8, 8])
    >>> as_batch(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 3, 8, 8])
    """
    if not isinstance(image, torch.Tensor):
        raise InputShapeError(
            f"`{name}` must be a torch.Tensor of shape N×3×H×W, got {type(image).__name__}. "
            "Load files with core.load_image(), or convert arrays with core.from_numpy()."
        )
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4:
        raise InputShapeError(
            f"`{name}` must have shape N×3×H×W (or 3×H×W), got {tuple(image.shape)}."
        )
    if image.shape[1] == 1:
        image = image.expand(-1, 3, -1, -1)
    if image.shape[1] != 3:
        raise InputShapeError(
            f"`{name}` must have 3 (RGB) or 1 (grayscale) channels in dimension 1, got shape "
            f"{tuple(image.shape)}. For H×W×C arrays, use core.from_numpy()."
        )
    if not image.is_floating_point():
        raise InputRangeError(
            f"`{name}` has integer dtype {image.dtype}; expected floats in [0, 1]. "
            "Divide 8-bit data by 255 (or use core.from_numpy(), which does it)."
        )
    return image


# Tensors that passed a range check, by id: compare() hands one batch to every metric, and each
# checks it at its own edge; a pass over 512² costs ~0.2 ms, so the repeats are skipped while
# the tensor is alive and unmodified (its version counter unchanged).
_in_range: dict[int, tuple[weakref.ref, int, float, float]] = {}


def _version(image: torch.Tensor) -> int | None:
    try:
        return image._version
    except RuntimeError:  # inference-mode tensors keep no version counter: always check them
        return None


def _known_in_range(image: torch.Tensor, low: float, high: float) -> bool:
    entry = _in_range.get(id(image))
    if entry is None:
        return False
    ref, version, lo, hi = entry
    return ref() is image and version == _version(image) and low <= lo and hi <= high


def _remember_in_range(image: torch.Tensor, low: float, high: float) -> None:
    version = _version(image)
    if version is None:
        return
    key = id(image)
    try:
        ref = weakref.ref(image, lambda _, key=key: _in_range.pop(key, None))
    except TypeError:
        return
    _in_range[key] = (ref, version, low, high)


def check_range(image: torch.Tensor, low: float, high: float, name: str = "image", hint: str = "") -> None:
    """Raise :class:`InputRangeError` if values are NaN/inf or plainly outside [low, high]."""
    if image.numel() == 0:
        raise InputShapeError(f"`{name}` is empty (shape {tuple(image.shape)}).")
    if _known_in_range(image, low, high):
        return
    lo, hi = torch.aminmax(image.detach())
    lo_f, hi_f = float(lo), float(hi)
    if not (np.isfinite(lo_f) and np.isfinite(hi_f)):
        raise InputRangeError(f"`{name}` contains NaN or infinite values; expected finite values in [{low}, {high}].")
    if lo_f < low - RANGE_TOLERANCE or hi_f > high + RANGE_TOLERANCE:
        fix = hint
        if not fix:
            if hi_f > 2.0:
                fix = " It looks like 0-255 data: divide by 255."
            elif lo_f < -RANGE_TOLERANCE and low >= 0:
                fix = " It looks like [-1, 1] data: map it with (x + 1) / 2."
        raise InputRangeError(
            f"`{name}` values must lie in [{low}, {high}], got min {lo_f:.4g}, max {hi_f:.4g}.{fix}"
        )
    _remember_in_range(image, low, high)


def check_unit_batch(image: torch.Tensor, name: str = "image") -> torch.Tensor:
    """``as_batch`` plus a [0, 1] range check; returns the batch."""
    batch = as_batch(image, name)
    check_range(batch, 0.0, 1.0, name)
    return batch


def check_same_size(ref: torch.Tensor, dist: torch.Tensor) -> None:
    """Raise :class:`ImageSizeMismatchError` unless ``ref`` and ``dist`` share H×W."""
    if ref.shape[-2:] != dist.shape[-2:]:
        rh, rw = ref.shape[-2:]
        dh, dw = dist.shape[-2:]
        raise ImageSizeMismatchError(
            f"`ref` is {rw}×{rh} pixels but `dist` is {dw}×{dh}; LPIPS, PSNR and SSIM compare "
            "pixel by pixel. Crop or resize one of them first (core.match_size(), or "
            "--resize-to-ref on the command line)."
        )


def check_pair(ref: torch.Tensor, dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a ref/dist pair of [0, 1] batches: layout, range, same H×W, broadcastable N."""
    ref_b = check_unit_batch(ref, "ref")
    return ref_b, check_dist(ref_b, dist)


def check_dist(ref_b: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Validate ``dist`` against an already checked reference batch; returns the dist batch."""
    dist_b = check_unit_batch(dist, "dist")
    check_same_size(ref_b, dist_b)
    check_batch_sizes(ref_b, dist_b)
    return dist_b


def check_batch_sizes(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str] = ("ref", "dist")) -> None:
    """Raise :class:`InputShapeError` unless the batch sizes are equal or one of them is 1."""
    check_batch_counts(a.shape[0], b.shape[0], names)


def check_batch_counts(n_a: int, n_b: int, names: tuple[str, str] = ("ref", "dist")) -> None:
    """:func:`check_batch_sizes` on the counts themselves."""
    if n_a != n_b and 1 not in (n_a, n_b):
        raise InputShapeError(
            f"`{names[0]}` has batch size {n_a} and `{names[1]}` {n_b}; they must be "
            "equal, or one of them 1 (one reference against many distorted images)."
        )


def from_numpy(array: np.ndarray) -> torch.Tensor:
    """Convert an H×W×3 (or H×W) uint8/float array to a 1×3×H×W float tensor in [0, 1].

    uint8 is divided by 255, uint16 by 65535; float arrays are taken as already in [0, 1].

    >>> from_numpy(np.full((4, 5, 3), 255, np.uint8)).amax().item()
    1.0
    """
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise InputShapeError(f"expected an H×W×3 or H×W array, got shape {arr.shape}.")
    if arr.dtype == np.uint8:
        t = torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)
    elif arr.dtype == np.uint16:
        t = torch.from_numpy(arr.astype(np.float32) / 65535.0)
    elif np.issubdtype(arr.dtype, np.floating):
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    else:
        raise InputRangeError(f"unsupported array dtype {arr.dtype}; use uint8, uint16 or float in [0, 1].")
    t = t.permute(2, 0, 1).unsqueeze(0)
    return check_unit_batch(t, "array").contiguous()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """Convert the first image of a [0, 1] batch (or a 3×H×W tensor) to an H×W×3 uint8 array.

    >>> to_uint8(torch.ones(1, 3, 2, 2)).shape
    (2, 2, 3)
    """
    batch = as_batch(image)
    img = batch[0].detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return img.permute(1, 2, 0).cpu().numpy()


def quantize_8bit(image: torch.Tensor) -> torch.Tensor:
    """Round a [0, 1] batch to the 256 levels an 8-bit PNG stores, so what is measured is what
    is saved.

    >>> quantize_8bit(torch.tensor([0.5001])).mul(255).item()
    128.0
    """
    return image.clamp(0, 1).mul(255).round().div(255)
