"""Parametric image distortions and chains of them, for showing how metrics judge damage.

Every distortion is a pure function ``f(image, main_param, *other_params, rng=None)`` that
takes a float N×3×H×W batch in [0, 1] (see :mod:`core.images.tensors`) and returns a new batch of
the same shape and dtype, clamped to [0, 1], on the image's device (JPEG goes through
Pillow on the CPU and comes back). The first parameter is the *main* one (the "severity"
that sweeps vary); at its identity value the input comes back bit-identical.

:data:`REGISTRY` describes each distortion (:class:`Distortion`) and its parameters
(:class:`Param`) in natural units, so the app can build sliders from it. A chain is a
sequence of :class:`Step`; :func:`apply` runs one, :func:`describe` names one,
:func:`chain_to_dict`/:func:`chain_from_dict` store one as JSON, and :func:`sweep` renders
one distortion at several severities.

Randomness: random distortions take a ``torch.Generator``; random numbers are drawn on
the CPU and then moved, so a seed gives the same picture on every device. In a chain the
generator of each random step is derived from ``(seed, step name, how many earlier steps
had that name)``, not from the step's position, so inserting, removing or reordering
other steps never changes a step's noise pattern.
"""

from __future__ import annotations

# Shared machinery first, then one module per family in FAMILIES order: importing a family
# module registers its distortions, so this order is REGISTRY's order (and the app's).
# isort: off
from .spec import (
    FAMILIES,
    REGISTRY,
    Distortion,
    DistortionParamError,
    Param,
    ParamValue,
    UnknownDistortionError,
)
from .photometric import color_shift, contrast, lightness
from .noise import gaussian_noise, salt_pepper
from .blur import gaussian_blur, motion_blur
from .spatial import chromatic_aberration, ghosting, rotate, translate
from .compression import jpeg
from .resampling import resample
from .quantization import posterize
from .sharpening import unsharp
from .chain import CHAIN_FORMAT_VERSION, Step, apply, chain_from_dict, chain_to_dict, describe, sweep
# isort: on

__all__ = [
    "FAMILIES",
    "REGISTRY",
    "Distortion",
    "DistortionParamError",
    "Param",
    "Step",
    "UnknownDistortionError",
    "apply",
    "chain_from_dict",
    "chain_to_dict",
    "chromatic_aberration",
    "color_shift",
    "contrast",
    "describe",
    "gaussian_blur",
    "gaussian_noise",
    "ghosting",
    "jpeg",
    "lightness",
    "motion_blur",
    "posterize",
    "resample",
    "rotate",
    "salt_pepper",
    "sweep",
    "translate",
    "unsharp",
]

# Registration order must follow FAMILIES; the app lists distortions in REGISTRY order.
if tuple(dict.fromkeys(d.family for d in REGISTRY.values())) != FAMILIES:  # the app lists them in this order
    raise ImportError("core.distortions: the family modules must be imported in FAMILIES order.")
