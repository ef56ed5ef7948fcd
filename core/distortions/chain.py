"""Chains of distortions: :class:`Step`, :func:`apply`, :func:`describe`, JSON round trips and :func:`sweep`.

In a chain the generator of each random step is derived from ``(seed, step name, how many
earlier steps had that name)``, not from the step's position, so inserting, removing or
reordering other steps never changes a step's noise pattern.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..images.tensors import check_unit_batch
from .spec import REGISTRY, Distortion, DistortionParamError, ParamValue, UnknownDistortionError

CHAIN_FORMAT_VERSION = 1


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
