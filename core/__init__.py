"""LPIPS Explorer's engine: LPIPS (exactly as the official package), PSNR, SSIM, distortions.

Images are float tensors N×3×H×W in [0, 1] everywhere except the drop-in :class:`LPIPS`, which
keeps the official [-1, 1] convention (or [0, 1] with ``normalize=True``). Higher LPIPS means
more different; higher PSNR/SSIM means more similar.

>>> import core
>>> sorted(core.NETS)
['alex', 'squeeze', 'vgg']
"""

from .analysis import Comparison, compare
from .classic import SSIMResult, ms_ssim, psnr, ssim
from .errors import (ImageLoadError, ImageSizeMismatchError, ImageTooLargeError, ImageTooSmallError,
                     InputRangeError, InputShapeError, LpipsExplorerError, UnsafeWeightsError,
                     WeightsCorruptError, WeightsError, WeightsMissingError)
from .imageio import LoadedImage, load_image, load_image_info, match_size, save_image, to_png_bytes
from .lpips import LPIPS, Engine, LpipsResult, ReferenceFeatures, default_device, get_network, lpips_distance
from .nets import MIN_SIDE
from .tensors import from_numpy, to_uint8
from .weights import NETS, VERSIONS

__all__ = [
    "LPIPS", "Engine", "LpipsResult", "ReferenceFeatures", "Comparison", "SSIMResult",
    "compare", "lpips_distance", "psnr", "ssim", "ms_ssim", "get_network", "default_device",
    "load_image", "load_image_info", "LoadedImage", "match_size", "save_image", "to_png_bytes",
    "from_numpy", "to_uint8", "MIN_SIDE", "NETS", "VERSIONS",
    "LpipsExplorerError", "WeightsError", "WeightsMissingError", "WeightsCorruptError", "UnsafeWeightsError",
    "ImageLoadError", "ImageTooLargeError", "ImageTooSmallError", "ImageSizeMismatchError",
    "InputRangeError", "InputShapeError",
]
