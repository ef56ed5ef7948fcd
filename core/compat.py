"""The official ``lpips`` package's module-level names, for code written against it.

Code written for the official package (its README, ``lpips_2imgs.py``, ``lpips_2dirs.py``) runs
with one import line changed::

    import core.compat as lpips

    loss_fn = lpips.LPIPS(net="alex")
    img0 = lpips.im2tensor(lpips.load_image("ex_ref.png"))   # 1×3×H×W in [-1, 1]
    img1 = lpips.im2tensor(lpips.load_image("ex_p0.png"))
    d = loss_fn(img0, img1)                                  # higher = more different

Every name keeps the official signature and returns what the official function computes (tested
against ``lpips==0.1.4``), with two deliberate differences where the official one cannot run
today:

* :func:`load_image` decodes with Pillow (the official one needs OpenCV, and its fallback names
  an undefined ``plt``): the same H×W×3 ``uint8`` RGB array for PNG/JPEG/BMP files; EXIF
  orientation is applied as OpenCV does; an embedded non-sRGB colour profile is converted to
  sRGB (OpenCV ignores it); decompression bombs are refused with a clear message.
* :func:`dssim` computes what the official one meant — ``(1 − SSIM) / 2`` with scikit-image's
  old ``compare_ssim(p0, p1, data_range=range, multichannel=True)``: a 7×7 uniform window, sample
  covariances, K1 = 0.01, K2 = 0.03, the mean over the valid window positions of each channel,
  then over channels — without scikit-image (``compare_ssim`` was removed from it years ago).

The Lab helpers (``rgb2lab``, ``tensor2tensorlab``, ``tensorlab2tensor``) are not provided.

>>> import numpy as np
>>> a = np.zeros((8, 8, 3), np.uint8); b = a.copy(); b[0, 0, 0] = 255
>>> round(float(psnr(a, b)), 4), float(l2(a, a))
(22.833, 0.0)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .lpips.engine import LPIPS

__all__ = ["LPIPS", "dssim", "im2tensor", "l2", "load_image", "normalize_tensor", "np2tensor", "psnr", "tensor2im",
           "tensor2np", "tensor2vec", "voc_ap"]


def normalize_tensor(in_feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit-normalize over the channel dimension (dim 1): ``x / (‖x‖ + eps)``."""
    norm_factor = torch.sqrt(torch.sum(in_feat ** 2, dim=1, keepdim=True))
    return in_feat / (norm_factor + eps)


def l2(p0: np.ndarray, p1: np.ndarray, range: float = 255.0) -> float:  # noqa: A002  (the official name)
    """Half the mean squared difference of two images scaled by ``range``."""
    return 0.5 * np.mean((p0 / range - p1 / range) ** 2)


def psnr(p0: np.ndarray, p1: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of two arrays with the given peak (infinite for identical arrays)."""
    with np.errstate(divide="ignore"):
        return 10 * np.log10(peak ** 2 / np.mean((1.0 * p0 - 1.0 * p1) ** 2))


_SSIM_WINDOW = 7


def _valid_window_means(x: np.ndarray) -> np.ndarray:
    """Means over every 7×7 window lying inside the image (H−6)×(W−6), by summed-area table."""
    table = np.pad(x, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    w = _SSIM_WINDOW
    sums = table[w:, w:] - table[:-w, w:] - table[w:, :-w] + table[:-w, :-w]
    return sums / (w * w)


def _ssim_channel(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    # scikit-image filters the whole image with a reflecting 7×7 mean, then keeps only the pixels
    # at least 3 from the border: exactly the window positions inside the image, computed here.
    cov_norm = _SSIM_WINDOW ** 2 / (_SSIM_WINDOW ** 2 - 1)
    ux, uy = _valid_window_means(x), _valid_window_means(y)
    vx = cov_norm * (_valid_window_means(x * x) - ux * ux)
    vy = cov_norm * (_valid_window_means(y * y) - uy * uy)
    vxy = cov_norm * (_valid_window_means(x * y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    return float(s.mean(dtype=np.float64))


def dssim(p0: np.ndarray, p1: np.ndarray, range: float = 255.0) -> float:  # noqa: A002  (the official name)
    """Structural dissimilarity ``(1 − SSIM) / 2`` of two H×W×C images (see the module notes)."""
    x, y = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 3 or min(x.shape[:2]) < _SSIM_WINDOW:
        raise ValueError(f"dssim needs two H×W×C images of the same shape, at least {_SSIM_WINDOW}×{_SSIM_WINDOW}; "
                         f"got {x.shape} and {y.shape}.")
    ssim = np.mean([_ssim_channel(x[..., c], y[..., c], range) for c in np.arange(x.shape[2])])
    return (1 - ssim) / 2.0


def load_image(path: str | Path) -> np.ndarray:
    """An image file as an H×W×3 ``uint8`` RGB array (see the module notes)."""
    from .images.imageio import load_image as load_unit
    from .images.tensors import to_uint8

    return to_uint8(load_unit(path))


def tensor2np(tensor_obj: torch.Tensor) -> np.ndarray:
    """The first image of an N×C×H×W tensor as an H×W×C float32 array."""
    return tensor_obj[0].cpu().float().numpy().transpose((1, 2, 0))


def np2tensor(np_obj: np.ndarray) -> torch.Tensor:
    """An H×W×C array as a 1×C×H×W float32 tensor."""
    return torch.Tensor(np_obj[:, :, :, np.newaxis].transpose((3, 2, 0, 1)))


def tensor2im(image_tensor: torch.Tensor, imtype=np.uint8, cent: float = 1.0, factor: float = 255.0 / 2.0) -> np.ndarray:
    """The first image of a [-1, 1] tensor as an H×W×C array of ``imtype`` (truncating, as the official)."""
    image_numpy = image_tensor[0].cpu().float().numpy()
    image_numpy = (np.transpose(image_numpy, (1, 2, 0)) + cent) * factor
    return image_numpy.astype(imtype)


def im2tensor(image: np.ndarray, imtype=np.uint8, cent: float = 1.0, factor: float = 255.0 / 2.0) -> torch.Tensor:
    """An H×W×C 0–255 array as a 1×C×H×W float32 tensor in [-1, 1] (what ``LPIPS`` takes)."""
    return torch.Tensor((image / factor - cent)[:, :, :, np.newaxis].transpose((3, 2, 0, 1)))


def tensor2vec(vector_tensor: torch.Tensor) -> np.ndarray:
    """An N×C×1×1 tensor as an N×C array."""
    return vector_tensor.data.cpu().numpy()[:, :, 0, 0]


def voc_ap(rec: np.ndarray, prec: np.ndarray, use_07_metric: bool = False) -> float:
    """Average precision from recall and precision arrays, as PASCAL VOC (the JND score's mAP)."""
    if use_07_metric:  # the 11-point metric
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the precision envelope
    i = np.where(mrec[1:] != mrec[:-1])[0]  # where recall changes
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])
