"""LPIPS Explorer's engine: LPIPS (exactly as the official package), PSNR, SSIM, distortions.

Images are float tensors N×3×H×W in [0, 1] everywhere except the drop-in :class:`LPIPS`, which
keeps the official [-1, 1] convention (or [0, 1] with ``normalize=True``). Higher LPIPS means
more different; higher PSNR/SSIM means more similar.

>>> import core
>>> sorted(core.NETS)
['alex', 'squeeze', 'vgg']
"""

import importlib

# Public names → the submodule that defines them. Loaded on first use (PEP 562), so that
# `import core.samples` or `core.NETS` does not pay for importing torch.
_EXPORTS = {
    "Comparison": "comparison", "PreparedReference": "comparison", "compare": "comparison",
    "prepare_reference": "comparison",
    "SSIMResult": "metrics.ssim", "ms_ssim": "metrics.ms_ssim", "psnr": "metrics.psnr", "ssim": "metrics.ssim",
    "ImageLoadError": "errors", "ImageSizeMismatchError": "errors", "ImageTooLargeError": "errors",
    "ImageTooSmallError": "errors", "InputRangeError": "errors", "InputShapeError": "errors",
    "LpipsExplorerError": "errors", "UnsafeWeightsError": "errors", "WeightsCorruptError": "errors",
    "WeightsError": "errors", "WeightsMissingError": "errors",
    "LoadedImage": "imageio", "load_image": "imageio", "load_image_info": "imageio", "match_size": "imageio",
    "save_image": "imageio", "to_png_bytes": "imageio",
    "LPIPS": "lpips", "Engine": "lpips", "LpipsResult": "lpips", "ReferenceFeatures": "lpips",
    "default_device": "lpips", "get_network": "lpips", "lpips_distance": "lpips",
    "MIN_SIDE": "nets", "from_numpy": "tensors", "to_uint8": "tensors",
    "NETS": "names", "VERSIONS": "names",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = [
    "LPIPS", "Engine", "LpipsResult", "ReferenceFeatures", "Comparison", "PreparedReference", "SSIMResult",
    "compare", "prepare_reference", "lpips_distance", "psnr", "ssim", "ms_ssim", "get_network", "default_device",
    "load_image", "load_image_info", "LoadedImage", "match_size", "save_image", "to_png_bytes",
    "from_numpy", "to_uint8", "MIN_SIDE", "NETS", "VERSIONS",
    "LpipsExplorerError", "WeightsError", "WeightsMissingError", "WeightsCorruptError", "UnsafeWeightsError",
    "ImageLoadError", "ImageTooLargeError", "ImageTooSmallError", "ImageSizeMismatchError",
    "InputRangeError", "InputShapeError",
]
