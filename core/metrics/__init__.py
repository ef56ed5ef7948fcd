"""The metrics, one module each, and the registry that lists them.

``names()`` gives the keys in display order (``lpips``, ``psnr``, ``ssim``, ``ms_ssim``, then
``dists``, ``fsim``, ``vif``, ``gmsd``) and ``get(key)`` the :class:`MetricSpec`;
:func:`core.compare` scores any of them. ``defaults()`` leaves out the metrics too slow for an
interactive move on a CPU (``MetricSpec.default``). Adding a metric is one new module here that
calls :func:`register`, and one import line below.

>>> from core import metrics
>>> metrics.names()
('lpips', 'psnr', 'ssim', 'ms_ssim', 'dists', 'fsim', 'vif', 'gmsd')
>>> metrics.get("lpips").higher_is_better
False
"""

from .registry import (MapSpec, MetricContext, MetricScore, MetricSpec, UnknownMetricError, defaults, get, names,
                       register, registered, resolve, specs, unregister)

# Importing a metric's module registers it; the order here is the display order.
from . import lpips, psnr, ssim, ms_ssim, dists, fsim, vif, gmsd  # noqa: E402,F401  isort: skip

__all__ = ["MapSpec", "MetricContext", "MetricScore", "MetricSpec", "UnknownMetricError", "defaults", "get", "names",
           "register", "registered", "resolve", "specs", "unregister"]
