"""Parametric image distortions and chains of them, for showing how metrics judge damage.

Every distortion is a pure function ``f(image, main_param, *other_params, rng=None)`` that
takes a float N×3×H×W batch in [0, 1] (see :mod:`core.tensors`) and returns a new batch of
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

import io
import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import LpipsExplorerError
from .tensors import check_unit_batch, to_uint8

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

ParamValue = float | int | str

# Order in which the app lists the families.
FAMILIES: tuple[str, ...] = (
    "photometric",
    "noise",
    "blur",
    "spatial",
    "compression",
    "resampling",
    "quantization",
    "sharpening",
)

CHAIN_FORMAT_VERSION = 1


class UnknownDistortionError(LpipsExplorerError, ValueError):
    """A chain names a distortion that is not in :data:`REGISTRY`."""


class DistortionParamError(LpipsExplorerError, ValueError):
    """A distortion parameter is unknown, of the wrong type or outside its range."""


# --------------------------------------------------------------------------------------
# Parameter and distortion descriptions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One parameter of a distortion, in natural units, with the range the app offers.

    ``identity`` is the value at which this parameter alone makes the distortion a no-op
    (bit-identical output), or ``None`` if no value does (an angle, a method).

    >>> p = Param("sigma", "Blur σ", 0.0, 8.0, 0.1, 2.0, 0.0, "px")
    >>> p.validate(3)
    3.0
    """

    name: str
    label: str
    min: float | None
    max: float | None
    step: float | None
    default: ParamValue
    identity: ParamValue | None
    unit: str
    kind: Literal["float", "int", "choice"] = "float"
    choices: tuple[str, ...] | None = None
    help: str = ""

    def range_text(self) -> str:
        """Human-readable range, e.g. ``'a number in [0, 8] px'``."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices or ())
        what = "an integer" if self.kind == "int" else "a number"
        unit = f" {self.unit}" if self.unit else ""
        return f"{what} in [{self.min:g}, {self.max:g}]{unit}"

    def validate(self, value: Any, owner: str = "") -> ParamValue:
        """Return ``value`` normalized to this parameter's kind, or raise :class:`DistortionParamError`."""
        where = f"{owner}: " if owner else ""

        def fail() -> DistortionParamError:
            return DistortionParamError(
                f"{where}parameter '{self.name}' ({self.label}) must be {self.range_text()}, got {value!r}."
            )

        if self.kind == "choice":
            if not isinstance(value, str) or value not in (self.choices or ()):
                raise fail()
            return value
        # bool is an int subclass; True as a blur radius is always a mistake.
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise fail()
        number = float(value)
        if not math.isfinite(number):
            raise fail()
        if self.kind == "int":
            if number != round(number):
                raise fail()
            number = int(round(number))
        if self.min is None or self.max is None or not self.min <= number <= self.max:
            raise fail()
        return number if self.kind == "int" else float(number)


@dataclass(frozen=True)
class Distortion:
    """A registered distortion: what it is called, what it does, and its parameters.

    ``fn(image, **params, rng=generator)`` applies it; calling the ``Distortion`` does the
    same after filling in defaults. ``params[0]`` is the main (severity) parameter.
    """

    name: str
    label: str
    family: str
    explanation: str
    params: tuple[Param, ...]
    fn: Callable[..., torch.Tensor] = field(repr=False)
    random: bool = False

    @property
    def main(self) -> Param:
        """The severity parameter that sweeps vary."""
        return self.params[0]

    def param(self, name: str) -> Param:
        """Look up a parameter by name, with a helpful error."""
        for p in self.params:
            if p.name == name:
                return p
        valid = ", ".join(p.name for p in self.params)
        raise DistortionParamError(f"{self.name} has no parameter '{name}'; its parameters are: {valid}.")

    def defaults(self) -> dict[str, ParamValue]:
        """Every parameter at its default value."""
        return {p.name: p.default for p in self.params}

    def resolve(self, params: Mapping[str, Any] | None = None) -> dict[str, ParamValue]:
        """Validate ``params`` and fill in defaults; the result lists every parameter in order."""
        params = dict(params or {})
        for key in params:
            self.param(key)  # raises for unknown names
        return {p.name: p.validate(params.get(p.name, p.default), self.name) for p in self.params}

    def __call__(
        self, image: torch.Tensor, rng: torch.Generator | None = None, **params: Any
    ) -> torch.Tensor:
        return self.fn(image, **self.resolve(params), rng=rng)


REGISTRY: dict[str, Distortion] = {}


def _register(
    name: str, label: str, family: str, explanation: str, params: tuple[Param, ...], random: bool = False
) -> Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]:
    """Wrap a kernel so it validates its inputs and honours identity values, and register it."""

    def decorate(kernel: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        names = [p.name for p in params]

        def public(
            image: torch.Tensor, *args: Any, rng: torch.Generator | None = None, **kwargs: Any
        ) -> torch.Tensor:
            if len(args) > len(names):
                raise DistortionParamError(
                    f"{name} takes at most {len(names)} parameters ({', '.join(names)})."
                )
            given = dict(zip(names, args))
            for key in kwargs:
                if key in given:
                    raise DistortionParamError(f"{name}: parameter '{key}' given twice.")
            given.update(kwargs)
            values = REGISTRY[name].resolve(given)
            batch = check_unit_batch(image)
            # Identity is an early return rather than a property of the arithmetic, so it is
            # exact even where a round trip (Lab, JPEG, resampling) would move the last bit.
            if any(p.identity is not None and values[p.name] == p.identity for p in params):
                return batch.clone()
            if rng is not None and not isinstance(rng, torch.Generator):
                raise TypeError(f"`rng` must be a torch.Generator or None, got {type(rng).__name__}.")
            work = batch if batch.dtype in (torch.float32, torch.float64) else batch.float()
            # Out of place: a kernel may hand back its input unchanged (a one-pixel blur path).
            return kernel(work, **values, rng=rng).clamp(0.0, 1.0).to(batch.dtype)

        public.__name__ = public.__qualname__ = kernel.__name__
        public.__doc__ = kernel.__doc__
        public.__module__ = kernel.__module__
        public.__wrapped__ = kernel  # type: ignore[attr-defined]
        REGISTRY[name] = Distortion(name, label, family, explanation, params, public, random)
        return public

    return decorate


def _generator(rng: torch.Generator | None) -> torch.Generator:
    # A missing generator means seed 0, not global state: distortions stay reproducible.
    return rng if rng is not None else torch.Generator().manual_seed(0)


# --------------------------------------------------------------------------------------
# Shared kernels
# --------------------------------------------------------------------------------------


def _pad(x: torch.Tensor, left: int, right: int, top: int, bottom: int) -> torch.Tensor:
    """Reflect-pad, falling back to edge replication where the image is too small to reflect."""
    h, w = x.shape[-2:]
    mode = "reflect" if max(left, right) < w and max(top, bottom) < h else "replicate"
    return F.pad(x, (left, right, top, bottom), mode=mode)


def _gaussian_kernel1d(sigma: float, radius: int, like: torch.Tensor) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, dtype=like.dtype, device=like.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding; the kernel reaches 3σ."""
    h, w = x.shape[-2:]
    radius = max(1, math.ceil(3.0 * sigma))
    k = _gaussian_kernel1d(sigma, radius, x)
    c = x.shape[1]
    ry, rx = min(radius, h - 1), min(radius, w - 1)
    # Tiny images cannot hold the whole kernel; truncating it keeps the output size.
    ky = k[radius - ry : radius + ry + 1]
    kx = k[radius - rx : radius + rx + 1]
    ky, kx = ky / ky.sum(), kx / kx.sum()
    x = F.conv2d(_pad(x, 0, 0, ry, ry), ky.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(_pad(x, rx, rx, 0, 0), kx.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def _shift_axis(x: torch.Tensor, d: float, dim: int) -> torch.Tensor:
    """Move content by ``d`` pixels along ``dim`` (positive = right/down), reflect-padded.

    Integer shifts are pure copies; a fractional part blends the two neighbouring integer
    shifts linearly (bilinear interpolation along one axis).
    """
    if d == 0:
        return x
    n = x.shape[dim]
    whole = math.floor(d)
    frac = d - whole
    pad = abs(whole) + 1
    padded = _pad(x, pad, pad, 0, 0) if dim == -1 else _pad(x, 0, 0, pad, pad)
    # out[j] = in[j - d]; in padded coordinates in[j] is padded[j + pad].
    start = pad - whole
    out = padded.narrow(dim, start, n)
    if frac:
        out = (1.0 - frac) * out + frac * padded.narrow(dim, start - 1, n)
    return out


def _shift(x: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    # Cosines of multiples of 90° are not exact zeros; snap so axis-aligned shifts stay exact.
    dx = 0.0 if abs(dx) < 1e-9 else dx
    dy = 0.0 if abs(dy) < 1e-9 else dy
    return _shift_axis(_shift_axis(x, dx, -1), dy, -2)


# sRGB (D65) <-> CIE Lab. Constants from IEC 61966-2-1 and CIE 15.
_RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
_XYZ_TO_RGB = tuple(map(tuple, np.linalg.inv(np.array(_RGB_TO_XYZ)).tolist()))
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_LAB_EPS = 216.0 / 24389.0
_LAB_KAPPA = 24389.0 / 27.0


def _rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    lin = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    m = torch.tensor(_RGB_TO_XYZ, dtype=x.dtype, device=x.device)
    white = torch.tensor(_WHITE_D65, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    xyz = torch.einsum("ij,njhw->nihw", m, lin) / white
    f = torch.where(xyz > _LAB_EPS, xyz.clamp_min(_LAB_EPS) ** (1.0 / 3.0), (_LAB_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f.unbind(1)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=1)


def _lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    L, a, b = lab.unbind(1)
    fy = (L + 16.0) / 116.0
    f = torch.stack((fy + a / 500.0, fy, fy - b / 200.0), dim=1)
    xyz = torch.where(f**3 > _LAB_EPS, f**3, (116.0 * f - 16.0) / _LAB_KAPPA)
    white = torch.tensor(_WHITE_D65, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    m_inv = torch.tensor(_XYZ_TO_RGB, dtype=lab.dtype, device=lab.device)
    # Out-of-gamut colours clip in linear light; negative values would make the power NaN.
    lin = torch.einsum("ij,njhw->nihw", m_inv, xyz * white).clamp(0.0, 1.0)
    return torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1.0 / 2.4) - 0.055)


# --------------------------------------------------------------------------------------
# Photometric
# --------------------------------------------------------------------------------------


@_register(
    "lightness",
    "Lightness",
    "photometric",
    "Shifts CIE L* everywhere: every pixel changes, so PSNR drops fast, yet no edge or texture moves.",
    (
        Param("delta", "Lightness shift", -50.0, 50.0, 1.0, 15.0, 0.0, "ΔL*",
              help="Change of CIE L* (0 = black, 100 = white); 10 is clearly visible."),
    ),
)
def lightness(image: torch.Tensor, delta: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Add ``delta`` to CIE L* (a scale of 0 to 100) at constant a*, b*; colours that leave the gamut clip.

    >>> x = torch.full((1, 3, 4, 4), 0.5)
    >>> bool((lightness(x, 10.0) > x).all())
    True
    """
    lab = _rgb_to_lab(image)
    lab[:, 0] += delta
    return _lab_to_rgb(lab)


@_register(
    "color_shift",
    "Colour shift (hue)",
    "photometric",
    "Rotates hue at constant lightness and chroma: shapes are untouched, but colour channels all change.",
    (
        Param("degrees", "Hue rotation", -180.0, 180.0, 1.0, 30.0, 0.0, "°",
              help="Rotation of the hue angle in the CIE a*b* plane; 180° swaps complementary colours."),
    ),
)
def color_shift(image: torch.Tensor, degrees: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Rotate hue by ``degrees`` in the CIE a*b* plane (L* and chroma kept; out-of-gamut colours clip).

    >>> x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.equal(color_shift(x, 0.0), x)), color_shift(x, 90.0).shape
    (True, torch.Size([1, 3, 8, 8]))
    """
    lab = _rgb_to_lab(image)
    theta = math.radians(degrees)
    c, s = math.cos(theta), math.sin(theta)
    a, b = lab[:, 1].clone(), lab[:, 2].clone()
    lab[:, 1] = c * a - s * b
    lab[:, 2] = s * a + c * b
    return _lab_to_rgb(lab)


@_register(
    "contrast",
    "Contrast",
    "photometric",
    "Stretches or squeezes values about the mean grey: a smooth global change people tolerate well.",
    (
        Param("factor", "Contrast factor", 0.0, 3.0, 0.05, 1.5, 1.0, "×",
              help="1 = unchanged, 0 = flat grey, 2 = twice the contrast."),
    ),
)
def contrast(image: torch.Tensor, factor: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Scale each image's deviation from its mean luma (Rec. 601) by ``factor``, as torchvision does.

    >>> x = torch.tensor([0.25, 0.75]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    >>> contrast(x, 0.0)[0, 0, 0].tolist()
    [0.5, 0.5]
    """
    weights = torch.tensor((0.299, 0.587, 0.114), dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    mean = (image * weights).sum(1, keepdim=True).mean((-2, -1), keepdim=True)
    return mean + factor * (image - mean)


# --------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------


@_register(
    "gaussian_noise",
    "Gaussian noise",
    "noise",
    "Independent random error in every pixel and channel: the distortion MSE and PSNR were designed for.",
    (
        Param("sigma", "Noise σ", 0.0, 50.0, 1.0, 15.0, 0.0, "8-bit levels",
              help="Standard deviation in 8-bit grey levels (0-255); 5 is faint, 25 is heavy."),
    ),
    random=True,
)
def gaussian_noise(image: torch.Tensor, sigma: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Add white Gaussian noise of standard deviation ``sigma``/255, independent per pixel and channel.

    The same generator state gives the same noise pattern for every ``sigma``, only scaled.

    >>> x = torch.full((1, 3, 8, 8), 0.5)
    >>> torch.equal(gaussian_noise(x, 10.0, rng=torch.Generator().manual_seed(1)),
    ...             gaussian_noise(x, 10.0, rng=torch.Generator().manual_seed(1)))
    True
    """
    noise = torch.randn(image.shape, generator=_generator(rng), dtype=torch.float32)
    return image + noise.to(device=image.device, dtype=image.dtype) * (sigma / 255.0)


@_register(
    "salt_pepper",
    "Salt & pepper",
    "noise",
    "Sets a few pixels to pure black or white: large errors in few places, so MSE is big "
    "while the picture stays readable.",
    (
        Param("fraction", "Corrupted pixels", 0.0, 0.2, 0.005, 0.02, 0.0, "fraction",
              help="Share of pixels replaced, half by white and half by black; 0.01 = 1 %."),
    ),
    random=True,
)
def salt_pepper(image: torch.Tensor, fraction: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Replace a random ``fraction`` of pixels (all three channels) by white or black, with equal odds.

    Which pixels are hit and their colour are drawn separately, so with one generator
    state a larger fraction corrupts a superset of the pixels of a smaller one.

    >>> x = torch.full((1, 3, 32, 32), 0.5)
    >>> y = salt_pepper(x, 0.1, rng=torch.Generator().manual_seed(0))
    >>> sorted(set(y.unique().tolist()))
    [0.0, 0.5, 1.0]
    """
    g = _generator(rng)
    n, _, h, w = image.shape
    hit = torch.rand((n, 1, h, w), generator=g) < fraction
    white = torch.rand((n, 1, h, w), generator=g) < 0.5
    hit, white = hit.to(image.device), white.to(image.device)
    value = white.to(image.dtype).expand_as(image)
    return torch.where(hit.expand_as(image), value, image)


# --------------------------------------------------------------------------------------
# Blur
# --------------------------------------------------------------------------------------


@_register(
    "gaussian_blur",
    "Gaussian blur",
    "blur",
    "Removes fine detail and texture; the error sits at edges and in texture, which deep "
    "features are sensitive to.",
    (
        Param("sigma", "Blur σ", 0.0, 8.0, 0.1, 2.0, 0.0, "px",
              help="Standard deviation of the Gaussian kernel in pixels."),
    ),
)
def gaussian_blur(image: torch.Tensor, sigma: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Blur with a Gaussian of standard deviation ``sigma`` pixels (kernel radius 3σ, reflect padding).

    >>> x = torch.zeros(1, 3, 9, 9); x[..., 4, 4] = 1.0
    >>> round(gaussian_blur(x, 1.0).sum().item() / 3, 4)  # blurring keeps the total
    1.0
    """
    return _blur(image, sigma)


def _motion_kernel(length: int, angle: float) -> torch.Tensor:
    """A normalized line of ``length`` pixels at ``angle`` degrees, splatted bilinearly (anti-aliased)."""
    half = (length - 1) / 2.0
    theta = math.radians(angle)
    t = np.linspace(-half, half, 8 * length)
    # Image rows grow downwards, so a counter-clockwise angle moves up: y = -t sin.
    xs, ys = t * math.cos(theta), -t * math.sin(theta)
    radius = math.ceil(half) + 1
    size = 2 * radius + 1
    k = np.zeros((size, size))
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    corners = ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy))
    for dx, dy, wgt in corners:
        np.add.at(k, (y0 + dy + radius, x0 + dx + radius), wgt)
    return torch.from_numpy(k / k.sum())


@_register(
    "motion_blur",
    "Motion blur",
    "blur",
    "Smears the picture along one direction, like camera shake: detail across the motion is "
    "lost, along it kept.",
    (
        Param("length", "Blur length", 0, 31, 1, 9, 0, "px", kind="int",
              help="Length of the motion path in pixels; 0 or 1 = no blur."),
        Param("angle", "Direction", 0.0, 180.0, 1.0, 0.0, None, "°",
              help="Direction of motion, counter-clockwise from horizontal."),
    ),
)
def motion_blur(
    image: torch.Tensor, length: int, angle: float = 0.0, *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Average along a straight path of ``length`` pixels at ``angle`` degrees (reflect padding).

    >>> x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> torch.equal(motion_blur(x, 0, 45.0), x), motion_blur(x, 5, 45.0).shape
    (True, torch.Size([1, 3, 16, 16]))
    """
    if length <= 1:
        return image  # a one-pixel path is the identity kernel
    k = _motion_kernel(length, angle).to(device=image.device, dtype=image.dtype)
    r = k.shape[-1] // 2
    c = image.shape[1]
    h, w = image.shape[-2:]
    ry, rx = min(r, h - 1), min(r, w - 1)
    k = k[r - ry : r + ry + 1, r - rx : r + rx + 1]
    k = k / k.sum()
    weight = k.flip(0, 1).view(1, 1, *k.shape).expand(c, 1, -1, -1)  # conv2d correlates
    return F.conv2d(_pad(image, rx, rx, ry, ry), weight, groups=c)


# --------------------------------------------------------------------------------------
# Spatial
# --------------------------------------------------------------------------------------


@_register(
    "translate",
    "Shift (translate)",
    "spatial",
    "Moves the whole picture a pixel or two: nothing is lost to the eye, yet every edge now "
    "mismatches, so PSNR collapses.",
    (
        Param("shift", "Shift", 0.0, 16.0, 0.25, 1.0, 0.0, "px",
              help="Distance moved in pixels; fractions interpolate bilinearly."),
        Param("direction", "Direction", 0.0, 360.0, 15.0, 0.0, None, "°",
              help="0° = right, 90° = up."),
    ),
)
def translate(
    image: torch.Tensor, shift: float, direction: float = 0.0, *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Move the image by ``shift`` pixels towards ``direction`` degrees (reflect padding at the borders).

    Whole-pixel shifts along an axis are exact copies; fractional ones interpolate bilinearly.

    >>> x = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 3, 1, 4) / 4
    >>> translate(x, 1.0)[0, 0, 0].tolist()  # the left border reflects
    [0.25, 0.0, 0.25, 0.5]
    """
    theta = math.radians(direction)
    return _shift(image, shift * math.cos(theta), -shift * math.sin(theta))


@_register(
    "rotate",
    "Rotation",
    "spatial",
    "A small rotation is barely visible, but pixels far from the centre move several pixels, "
    "so pixel-wise metrics punish it.",
    (
        Param("degrees", "Rotation", -10.0, 10.0, 0.5, 2.0, 0.0, "°",
              help="Counter-clockwise rotation about the image centre."),
    ),
)
def rotate(image: torch.Tensor, degrees: float, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Rotate counter-clockwise by ``degrees`` about the centre (bilinear, reflected borders).

    >>> x = torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(0))
    >>> rotate(x, 5.0).shape
    torch.Size([1, 3, 12, 16])
    """
    n, _, h, w = image.shape
    theta = math.radians(degrees)
    c, s = math.cos(theta), math.sin(theta)
    # affine_grid works in coordinates normalized to [-1, 1] per axis; the aspect-ratio
    # factors keep the rotation rigid on non-square images.
    mat = torch.tensor([[c, -s * h / w, 0.0], [s * w / h, c, 0.0]], dtype=image.dtype, device=image.device)
    grid = F.affine_grid(mat.expand(n, 2, 3), [n, 3, h, w], align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@_register(
    "ghosting",
    "Ghosting (echo)",
    "spatial",
    "Adds a faint shifted copy, like a TV echo: a structural error laid over an otherwise intact picture.",
    (
        Param("strength", "Ghost strength", 0.0, 0.5, 0.01, 0.3, 0.0, "",
              help="Weight of the shifted copy; 0.5 = both copies equally strong."),
        Param("offset", "Ghost offset", 0.0, 32.0, 0.5, 8.0, 0.0, "px",
              help="How far right the copy sits, in pixels."),
    ),
)
def ghosting(
    image: torch.Tensor, strength: float, offset: float = 8.0, *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Blend in a copy shifted right by ``offset`` pixels with weight ``strength``.

    >>> x = torch.rand(1, 3, 8, 16, generator=torch.Generator().manual_seed(0))
    >>> torch.equal(ghosting(x, 0.3, 0.0), x)
    True
    """
    return (1.0 - strength) * image + strength * _shift(image, offset, 0.0)


@_register(
    "chromatic_aberration",
    "Chromatic aberration",
    "spatial",
    "Shifts red and blue in opposite directions, giving coloured fringes at edges, as from a cheap lens.",
    (
        Param("shift", "Channel shift", 0.0, 8.0, 0.25, 2.0, 0.0, "px",
              help="Red moves this far right and blue this far left; green stays."),
    ),
)
def chromatic_aberration(
    image: torch.Tensor, shift: float, *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Move the red channel ``shift`` pixels right and the blue channel as far left.

    >>> x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> torch.equal(chromatic_aberration(x, 1.0)[:, 1], x[:, 1])  # green is the anchor
    True
    """
    r, g, b = image.split(1, dim=1)
    return torch.cat((_shift(r, shift, 0.0), g, _shift(b, -shift, 0.0)), dim=1)


# --------------------------------------------------------------------------------------
# Compression, resampling, quantization, sharpening
# --------------------------------------------------------------------------------------


@_register(
    "jpeg",
    "JPEG compression",
    "compression",
    "Lossy compression in 8×8 blocks: blocking, ringing and colour bleeding; quality 100 here "
    "means no compression at all.",
    (
        Param("quality", "JPEG quality", 5, 100, 1, 30, 100, "", kind="int",
              help="Encoder quality; 100 = off (not encoded at all), 75 = typical web, 10 = heavy."),
        Param("subsampling", "Chroma subsampling", None, None, None, "4:2:0", None, "", kind="choice",
              choices=("4:2:0", "4:2:2", "4:4:4"),
              help="4:2:0 (what cameras and the web use) halves colour resolution in both directions."),
    ),
)
def jpeg(
    image: torch.Tensor, quality: int, subsampling: str = "4:2:0", *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Encode and decode each image as an 8-bit JPEG with Pillow (libjpeg) at ``quality``.

    ``quality`` 100 returns the input untouched; every other value goes through the codec.

    >>> x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> y = jpeg(x, 10)
    >>> y.shape, bool((y * 255 - (y * 255).round()).abs().max() < 1e-4)  # 8-bit output
    (torch.Size([1, 3, 16, 16]), True)
    """
    out = []
    for img in image:
        buf = io.BytesIO()
        Image.fromarray(to_uint8(img)).save(buf, format="JPEG", quality=quality, subsampling=subsampling)
        buf.seek(0)
        with Image.open(buf) as decoded:
            arr = np.asarray(decoded.convert("RGB"))
        out.append(torch.from_numpy(arr.copy()).permute(2, 0, 1))
    return torch.stack(out).to(device=image.device, dtype=image.dtype).div_(255.0)


@_register(
    "resample",
    "Down- and upsampling",
    "resampling",
    "Shrinks then enlarges the picture: detail finer than the small size is gone; the method "
    "trades jaggies for softness.",
    (
        Param("factor", "Downscale factor", 1.0, 8.0, 0.25, 4.0, 1.0, "×",
              help="The image is shrunk by this factor, then scaled back to its size."),
        Param("method", "Interpolation", None, None, None, "bilinear", None, "", kind="choice",
              choices=("nearest", "bilinear", "bicubic"),
              help="Used both ways; bilinear and bicubic low-pass (antialias) when shrinking."),
    ),
)
def resample(
    image: torch.Tensor, factor: float, method: str = "bilinear", *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Downscale by ``factor`` and upscale back to the original size with ``method``.

    >>> x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> resample(x, 4.0, "nearest").unique().numel() <= 3 * 16  # 4×4 blocks of 16 colours
    True
    """
    h, w = image.shape[-2:]
    small = (max(1, round(h / factor)), max(1, round(w / factor)))
    if method == "nearest":
        # "nearest-exact" samples pixel centres; plain "nearest" is biased towards the top-left.
        down = F.interpolate(image, size=small, mode="nearest-exact")
        return F.interpolate(down, size=(h, w), mode="nearest-exact")
    down = F.interpolate(image, size=small, mode=method, align_corners=False, antialias=True)
    return F.interpolate(down, size=(h, w), mode=method, align_corners=False)


@_register(
    "posterize",
    "Posterize (bit depth)",
    "quantization",
    "Keeps fewer bits per channel: smooth gradients turn into bands with false contours.",
    (
        Param("bits", "Bits per channel", 2, 8, 1, 3, 8, "bits", kind="int",
              help="8 = unchanged (256 levels), 4 = 16 levels, 2 = 4 levels."),
    ),
)
def posterize(image: torch.Tensor, bits: int, *, rng: torch.Generator | None = None) -> torch.Tensor:
    """Keep the top ``bits`` bits of each 8-bit channel value, like ``PIL.ImageOps.posterize``.

    >>> x = torch.linspace(0, 1, 256).view(1, 1, 1, 256).expand(1, 3, 1, 256)
    >>> posterize(x, 2).unique().mul(255).round().tolist()
    [0.0, 64.0, 128.0, 192.0]
    """
    levels = image.mul(255.0).round_().to(torch.int32)
    mask = 256 - (1 << (8 - bits))
    return levels.bitwise_and_(mask).to(image.dtype).div_(255.0)


@_register(
    "unsharp",
    "Unsharp mask (sharpen)",
    "sharpening",
    "Exaggerates edges: it can look crisper to people, yet every metric counts it as a "
    "departure from the reference.",
    (
        Param("amount", "Amount", 0.0, 3.0, 0.1, 1.0, 0.0, "×",
              help="How much of the detail layer (image − blurred image) is added back."),
        Param("radius", "Radius σ", 0.5, 5.0, 0.1, 1.5, None, "px",
              help="Gaussian σ that defines what counts as detail."),
    ),
)
def unsharp(
    image: torch.Tensor, amount: float, radius: float = 1.5, *, rng: torch.Generator | None = None
) -> torch.Tensor:
    """Unsharp masking: ``image + amount * (image - gaussian_blur(image, radius))``.

    >>> x = torch.tensor([0.4, 0.4, 0.6, 0.6]).view(1, 1, 1, 4).expand(1, 3, 4, 4)
    >>> y = unsharp(x, 1.0, 1.0)[0, 0, 0]
    >>> bool(y[1] < 0.4 and y[2] > 0.6)  # overshoot on both sides of the edge
    True
    """
    return image + amount * (image - _blur(image, radius))


# --------------------------------------------------------------------------------------
# Chains
# --------------------------------------------------------------------------------------


def _lookup(name: Any) -> Distortion:
    if not isinstance(name, str) or name not in REGISTRY:
        valid = ", ".join(sorted(REGISTRY))
        raise UnknownDistortionError(f"unknown distortion {name!r}; valid names are: {valid}.")
    return REGISTRY[name]


@dataclass(frozen=True)
class Step:
    """One distortion in a chain. Construction validates and fills in defaults for missing params.

    >>> Step("gaussian_blur", {"sigma": 2})
    Step(name='gaussian_blur', params={'sigma': 2.0})
    """

    name: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        distortion = _lookup(self.name)
        if not isinstance(self.params, Mapping):
            raise DistortionParamError(
                f"{self.name}: params must be a mapping of parameter name to value, "
                f"got {type(self.params).__name__}."
            )
        object.__setattr__(self, "params", distortion.resolve(self.params))

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.params.items())))

    @property
    def distortion(self) -> Distortion:
        return REGISTRY[self.name]


def _step_generator(seed: int, name: str, occurrence: int) -> torch.Generator:
    # SeedSequence mixes the key into a well-spread 64-bit seed; crc32 (unlike hash()) is
    # the same in every process.
    state = np.random.SeedSequence([seed, zlib.crc32(name.encode()), occurrence]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _check_chain(chain: Any) -> list[Step]:
    if isinstance(chain, (str, bytes, Step)) or not isinstance(chain, Iterable):
        raise DistortionParamError(f"a chain must be a sequence of Step objects, got {type(chain).__name__}.")
    steps = list(chain)
    for i, step in enumerate(steps):
        if not isinstance(step, Step):
            raise DistortionParamError(
                f"chain item {i} is a {type(step).__name__}, not a Step; build items with Step(name, params)."
            )
    return steps


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DistortionParamError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def apply(chain: Sequence[Step], image: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Apply the steps of ``chain`` to ``image`` in order; an empty chain returns a copy.

    Random steps draw from their own generator, keyed by ``(seed, name, occurrence)``, so
    other steps can be added, removed or reordered without changing their noise.

    >>> x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> chain = [Step("gaussian_blur", {"sigma": 1.0}), Step("gaussian_noise", {"sigma": 10})]
    >>> torch.equal(apply(chain, x, seed=3), apply(chain, x, seed=3))
    True
    """
    steps = _check_chain(chain)
    seed = _check_seed(seed)
    out = check_unit_batch(image)
    if not steps:
        return out.clone()
    seen: dict[str, int] = {}
    for step in steps:
        distortion = step.distortion
        rng = None
        if distortion.random:
            occurrence = seen.get(step.name, 0)
            seen[step.name] = occurrence + 1
            rng = _step_generator(seed, step.name, occurrence)
        out = distortion.fn(out, **step.params, rng=rng)
    return out


def _format_value(value: ParamValue) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def describe(chain: Sequence[Step]) -> str:
    """A one-line description; shows the main parameter and any parameter off its default.

    >>> describe([Step("gaussian_blur", {"sigma": 2}), Step("jpeg", {"quality": 30})])
    'gaussian_blur(sigma=2.0) → jpeg(quality=30)'
    >>> describe([])
    'original'
    """
    steps = _check_chain(chain)
    if not steps:
        return "original"
    parts = []
    for step in steps:
        d = step.distortion
        shown = [
            f"{p.name}={_format_value(step.params[p.name])}"
            for i, p in enumerate(d.params)
            if i == 0 or step.params[p.name] != p.default
        ]
        parts.append(f"{step.name}({', '.join(shown)})")
    return " → ".join(parts)


def chain_to_dict(chain: Sequence[Step]) -> dict[str, Any]:
    """A JSON-able dict for ``chain``; :func:`chain_from_dict` reads it back.

    >>> chain_to_dict([Step("posterize", {"bits": 4})])
    {'version': 1, 'steps': [{'name': 'posterize', 'params': {'bits': 4}}]}
    """
    steps = _check_chain(chain)
    return {
        "version": CHAIN_FORMAT_VERSION,
        "steps": [{"name": s.name, "params": dict(s.params)} for s in steps],
    }


def chain_from_dict(data: Mapping[str, Any]) -> list[Step]:
    """Rebuild and validate a chain written by :func:`chain_to_dict` (e.g. after ``json.loads``).

    >>> chain = [Step("resample", {"factor": 2.0, "method": "nearest"})]
    >>> chain_from_dict(chain_to_dict(chain)) == chain
    True
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("steps"), list):
        raise DistortionParamError(
            "a stored chain must be a dict with a 'steps' list, as written by chain_to_dict()."
        )
    version = data.get("version", CHAIN_FORMAT_VERSION)
    if version != CHAIN_FORMAT_VERSION:
        raise DistortionParamError(
            f"stored chain has format version {version!r}; this version reads {CHAIN_FORMAT_VERSION}."
        )
    steps = []
    for i, item in enumerate(data["steps"]):
        if not isinstance(item, Mapping) or "name" not in item:
            raise DistortionParamError(
                f"stored chain step {i} must be a dict with 'name' and 'params', got {item!r}."
            )
        steps.append(Step(item["name"], item.get("params", {})))
    return steps


def sweep(
    name: str,
    param: str,
    values: Sequence[ParamValue],
    image: torch.Tensor,
    seed: int = 0,
    base_params: Mapping[str, ParamValue] | None = None,
) -> torch.Tensor:
    """Render ``name`` once per value of ``param``: a len(values)×3×H×W batch for one input image.

    Other parameters come from ``base_params`` or their defaults. Random distortions use the
    same generator for every value, so a noise sweep shows one pattern growing stronger.

    >>> x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> out = sweep("gaussian_blur", "sigma", [0.0, 1.0, 2.0], x)
    >>> out.shape, torch.equal(out[0], x[0])
    (torch.Size([3, 3, 16, 16]), True)
    """
    distortion = _lookup(name)
    distortion.param(param)
    batch = check_unit_batch(image)
    if batch.shape[0] != 1:
        raise DistortionParamError(f"sweep() takes one image (N = 1), got a batch of {batch.shape[0]}.")
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise DistortionParamError(f"sweep values must be a sequence of {param} values, got {values!r}.")
    values = list(values)
    if not values:
        raise DistortionParamError("sweep() needs at least one value.")
    base = dict(base_params or {})
    return torch.cat([apply([Step(name, {**base, param: v})], batch, seed) for v in values])
