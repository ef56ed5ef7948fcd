"""What a distortion is: :class:`Param`, :class:`Distortion`, the :data:`REGISTRY` and its errors.

Family modules register their kernels with :func:`_register`, which wraps each one so it
validates its inputs, honours identity values and clamps its output; see the package
docstring of :mod:`core.distortions` for the contract every distortion keeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ..errors import LpipsExplorerError
from ..images.tensors import check_unit_batch

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
