"""The metrics, one module each, and the registry that lists them.

``names()`` gives the keys in display order (``lpips``, ``psnr``, ``ssim``, ``ms_ssim``, then
``dists``, ``fsim``, ``vif``, ``vifp``, ``gmsd``, ``vsi``, ``mad_iqa``, ``cw_ssim``, ``nlpd``) and ``get(key)`` the :class:`MetricSpec`;
:func:`core.compare` scores any of them. ``defaults()`` leaves out the metrics too slow for an
interactive move on a CPU (``MetricSpec.default``). The specs live in :mod:`.catalog`, which
names each metric's module without importing it: importing this package (and listing the
metrics) imports no PyTorch. Adding a metric is one new module here and one spec in the catalog.

>>> from core import metrics
>>> metrics.names()
('lpips', 'psnr', 'ssim', 'ms_ssim', 'dists', 'fsim', 'vif', 'vifp', 'gmsd', 'vsi', 'mad_iqa', 'cw_ssim', 'nlpd')
>>> metrics.get("lpips").higher_is_better
False
"""

from .registry import (Deferred, MapSpec, MetricContext, MetricScore, MetricSpec, UnknownMetricError, defaults, get,
                       names, register, registered, resolve, specs, unregister)
from .catalog import BUILT_IN

for _spec in BUILT_IN:
    register(_spec)

__all__ = ["Deferred", "MapSpec", "MetricContext", "MetricScore", "MetricSpec", "UnknownMetricError", "defaults", "get", "names",
           "register", "registered", "resolve", "specs", "unregister"]
