"""The LPIPS model: the engine and the drop-in (:mod:`.engine`), the backbones and their taps
(:mod:`.nets`), fetching and verifying weights (:mod:`.weights`), and the plain facts about
nets and versions (:mod:`.names`).

The engine's public names are importable from here (``from core.lpips import Engine, LPIPS``).
They load on first use, so that ``core.lpips.names`` alone does not import torch.

>>> from core.lpips import names
>>> names.CHANNELS["alex"]
(64, 192, 384, 256, 256)
"""

from .._lazy import lazy_attributes

_ENGINE_NAMES = (
    "LPIPS", "Engine", "LpipsNetwork", "LpipsResult", "ReferenceFeatures", "available_devices", "build_network",
    "check_min_size", "clear_network_cache", "default_device", "get_network", "lpips_distance",
    "normalize_channels", "resolve_device", "upsample_to",
)


__getattr__, __dir__ = lazy_attributes(__name__, dict.fromkeys(_ENGINE_NAMES, "engine"))


__all__ = list(_ENGINE_NAMES)
