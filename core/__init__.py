"""LPIPS Explorer's engine: LPIPS (exactly as the official package), PSNR, SSIM, distortions.

Images are float tensors N×3×H×W in [0, 1] everywhere except the drop-in :class:`LPIPS`, which
keeps the official [-1, 1] convention (or [0, 1] with ``normalize=True``). Higher LPIPS means
more different; higher PSNR/SSIM means more similar.

>>> import core
>>> sorted(core.NETS)
['alex', 'squeeze', 'vgg']
"""

from ._lazy import lazy_attributes

# Public names → the submodule that defines them. Loaded on first use (PEP 562), so that
# `import core.images.samples` or `core.NETS` does not pay for importing torch.
_EXPORTS = {
    "Comparison": "comparison", "PreparedReference": "comparison", "compare": "comparison",
    "prepare_reference": "comparison",
    "SSIMResult": "metrics.ssim", "ms_ssim": "metrics.ms_ssim", "psnr": "metrics.psnr", "ssim": "metrics.ssim",
    "ImageLoadError": "errors", "ImageSizeMismatchError": "errors", "ImageTooLargeError": "errors",
    "ImageTooSmallError": "errors", "InputRangeError": "errors", "InputShapeError": "errors",
    "LpipsExplorerError": "errors", "UnsafeWeightsError": "errors", "WeightsCorruptError": "errors",
    "WeightsError": "errors", "WeightsMissingError": "errors",
    "LoadedImage": "images.imageio", "load_image": "images.imageio", "load_image_info": "images.imageio",
    "match_size": "images.imageio", "save_image": "images.imageio", "to_png_bytes": "images.imageio",
    "LPIPS": "lpips.engine", "Engine": "lpips.engine", "LpipsResult": "lpips.engine",
    "ReferenceFeatures": "lpips.engine", "default_device": "lpips.engine", "get_network": "lpips.engine",
    "lpips_distance": "lpips.engine", "MIN_SIDE": "lpips.names", "from_numpy": "images.tensors",
    "to_uint8": "images.tensors", "NETS": "lpips.names", "VERSIONS": "lpips.names",
}


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)


__all__ = [
    "LPIPS", "Engine", "LpipsResult", "ReferenceFeatures", "Comparison", "PreparedReference", "SSIMResult",
    "compare", "prepare_reference", "lpips_distance", "psnr", "ssim", "ms_ssim", "get_network", "default_device",
    "load_image", "load_image_info", "LoadedImage", "match_size", "save_image", "to_png_bytes",
    "from_numpy", "to_uint8", "MIN_SIDE", "NETS", "VERSIONS",
    "LpipsExplorerError", "WeightsError", "WeightsMissingError", "WeightsCorruptError", "UnsafeWeightsError",
    "ImageLoadError", "ImageTooLargeError", "ImageTooSmallError", "ImageSizeMismatchError",
    "InputRangeError", "InputShapeError",
]
