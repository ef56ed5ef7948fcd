"""φ: the per-pair vector that makes LPIPS a dot product with its heads.

For a pair (ref, dist) and each layer ``l``, LPIPS takes the channel-normalized features
``f̂_l``, squares their difference, weights channel ``c`` by the head ``w_lc`` and averages over
space. The weights do not depend on the position, so the average can be taken first::

    LPIPS(ref, dist) = Σ_l Σ_c w_lc · mean_xy (f̂_l(ref) − f̂_l(dist))²_c = w · φ(ref, dist)

with φ the per-channel spatial means concatenated over layers (AlexNet: 64 + 192 + 384 + 256 +
256 = 1,152 numbers). Once φ is stored, any heads give the distance for free, which is what
fitting heads to judgments needs (:mod:`core.judgments.fit`).

Each distinct patch goes through the backbone once: a 2AFC triplet costs three passes (the
reference is shared by both pairs), not the four of computing both distances separately.

>>> import torch
>>> heads = {"lin0.model.1.weight": torch.ones(1, 2, 1, 1), "lin1.model.1.weight": torch.full((1, 1, 1, 1), 3.0)}
>>> heads_vector(heads, (2, 1)).tolist()
[1.0, 1.0, 3.0]
>>> distances(torch.tensor([[0.5, 0.25, 0.125]]), heads_vector(heads, (2, 1))).tolist()
[1.125]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Sequence

import torch

from core.errors import InputRangeError, InputShapeError, InvalidArgumentError, WeightsCorruptError
from core.lpips.engine import Engine, check_min_size
from core.lpips.heads import head_key
from core.lpips.names import CHANNELS

__all__ = ["CHANNELS", "head_key", "heads_from_vector", "heads_vector", "distances", "feature_size", "jnd_features",
           "pair_features", "set_features", "triplet_features", "uniform_heads"]

Progress = Callable[[int, int], None]




def _channels(net_or_channels: str | Sequence[int]) -> tuple[int, ...]:
    if isinstance(net_or_channels, str):
        if net_or_channels not in CHANNELS:
            raise InvalidArgumentError(f"Argument `net` must be one of {tuple(CHANNELS)}, got {net_or_channels!r}.")
        return CHANNELS[net_or_channels]
    return tuple(int(c) for c in net_or_channels)


def feature_size(net: str) -> int:
    """Length of φ for ``net`` (alex: 1152).

    >>> feature_size("alex"), feature_size("vgg"), feature_size("squeeze")
    (1152, 1472, 2240)
    """
    return sum(_channels(net))


def heads_vector(heads: Mapping[str, torch.Tensor], net: str | Sequence[int]) -> torch.Tensor:
    """Heads in the official format (``lin{k}.model.1.weight``, 1×C×1×1) as one float32 vector."""
    channels = _channels(net)
    parts = []
    for k, c in enumerate(channels):
        w = heads.get(head_key(k))
        if w is None or w.numel() != c:
            got = "missing" if w is None else f"{w.numel()} weights"
            raise WeightsCorruptError(f"Head `{head_key(k)}` should hold {c} weights for this network, got {got}.")
        parts.append(w.detach().reshape(-1).to(torch.float32).cpu())
    return torch.cat(parts)


def heads_from_vector(w: torch.Tensor, net: str | Sequence[int]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`heads_vector`: a dict that ``LpipsNetwork(..., heads=...)`` takes."""
    channels = _channels(net)
    flat = torch.as_tensor(w).detach().reshape(-1).to(torch.float32).cpu()
    if flat.numel() != sum(channels):
        raise InvalidArgumentError(f"A heads vector for these layers has {sum(channels)} weights, got {flat.numel()}.")
    return {head_key(k): part.clone().view(1, -1, 1, 1) for k, part in enumerate(torch.split(flat, list(channels)))}


def uniform_heads(net: str) -> dict[str, torch.Tensor]:
    """Every weight 1: LPIPS's uncalibrated baseline (``lpips=False``: channels summed)."""
    return heads_from_vector(torch.ones(feature_size(net)), net)


def distances(phi: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``phi @ w`` in float64: the LPIPS distance of each pair under heads ``w`` (N,)."""
    return phi.to(torch.float64) @ torch.as_tensor(w).to(torch.float64).reshape(-1)


def _check_patches(batch: torch.Tensor, name: str, net: str) -> torch.Tensor:
    if not isinstance(batch, torch.Tensor) or batch.ndim != 4 or batch.shape[1] != 3:
        shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
        raise InputShapeError(f"`{name}` must be an N×3×H×W tensor of patches, got {shape}.")
    if not batch.is_floating_point():
        raise InputRangeError(f"`{name}` has dtype {batch.dtype}; expected floats in [0, 1] (divide 8-bit data by 255).")
    if batch.numel() and (batch.min() < 0 or batch.max() > 1):
        raise InputRangeError(f"`{name}` has values in [{float(batch.min()):.3g}, {float(batch.max()):.3g}]; "
                              "patches must be in [0, 1].")
    check_min_size(net, batch.shape[-2], batch.shape[-1])
    return batch


def _check_chunk(chunk: int) -> None:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise InvalidArgumentError(f"`chunk` must be a positive whole number of patches per pass, got {chunk!r}.")


def _phi(feats_a: Sequence[torch.Tensor], feats_b: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([(a - b).square_().mean(dim=(2, 3)) for a, b in zip(feats_a, feats_b)], dim=1)


@torch.inference_mode()
def _features(engine: Engine, batch01: torch.Tensor) -> list[torch.Tensor]:
    x = batch01.to(engine.device, torch.float32) * 2 - 1
    return engine.network.features(x)


def triplet_features(engine: Engine, ref: torch.Tensor, p0: torch.Tensor, p1: torch.Tensor, *,
                     chunk: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """φ(ref, p0) and φ(ref, p1), each N×D float32 on the CPU, from three passes per triplet.

    ``chunk`` triplets go through the backbone together (3·chunk patches), which bounds memory.
    With the engine's heads, ``phi0 @ w`` is ``engine.distance(ref, p0)`` to float rounding.

    Shape:
        - ref, p0, p1: N×3×H×W in [0, 1]
        - outputs: N×D, D = :func:`feature_size` of the engine's net
    """
    _check_chunk(chunk)
    for name, batch in (("ref", ref), ("p0", p0), ("p1", p1)):
        _check_patches(batch, name, engine.net)
    if not ref.shape == p0.shape == p1.shape:
        raise InputShapeError(f"`ref`, `p0` and `p1` must have the same shape; got {tuple(ref.shape)}, "
                              f"{tuple(p0.shape)} and {tuple(p1.shape)}.")
    out0, out1 = [], []
    for start in range(0, ref.shape[0], chunk):
        n = min(chunk, ref.shape[0] - start)
        window = slice(start, start + n)
        feats = _features(engine, torch.cat([ref[window], p0[window], p1[window]]))
        f_ref, f0, f1 = zip(*(f.split(n) for f in feats))
        out0.append(_phi(f_ref, f0).cpu())
        out1.append(_phi(f_ref, f1).cpu())
    return _cat(out0, engine.net), _cat(out1, engine.net)


def pair_features(engine: Engine, ref: torch.Tensor, dist: torch.Tensor, *, chunk: int = 192) -> torch.Tensor:
    """φ(ref, dist) for N pairs (N×D float32 on the CPU): JND pairs, or any pairs."""
    _check_chunk(chunk)
    _check_patches(ref, "ref", engine.net)
    _check_patches(dist, "dist", engine.net)
    if ref.shape != dist.shape:
        raise InputShapeError(f"`ref` and `dist` must have the same shape; got {tuple(ref.shape)} and {tuple(dist.shape)}.")
    out = []
    for start in range(0, ref.shape[0], chunk):
        n = min(chunk, ref.shape[0] - start)
        feats = _features(engine, torch.cat([ref[start:start + n], dist[start:start + n]]))
        out.append(_phi(*zip(*(f.split(n) for f in feats))).cpu())
    return _cat(out, engine.net)


def _cat(parts: list[torch.Tensor], net: str) -> torch.Tensor:
    return torch.cat(parts) if parts else torch.empty(0, feature_size(net))


def set_features(engine: Engine, data, *, chunk: int = 128,
                 progress: Progress | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`triplet_features` of a whole :class:`~core.judgments.bapps.TwoAfcSet`, read from disk
    ``chunk`` triplets at a time (memory stays bounded by the chunk, not the set).

    ``progress(done, total)`` is called after each chunk.
    """
    _check_chunk(chunk)
    out0, out1 = [], []
    for start in range(0, len(data), chunk):
        phi0, phi1 = triplet_features(engine, *data.images(start, start + chunk), chunk=chunk)
        out0.append(phi0)
        out1.append(phi1)
        if progress is not None:
            progress(min(start + chunk, len(data)), len(data))
    return _cat(out0, engine.net), _cat(out1, engine.net)


def jnd_features(engine: Engine, data, *, chunk: int = 192, progress: Progress | None = None) -> torch.Tensor:
    """:func:`pair_features` of a whole :class:`~core.judgments.bapps.JndSet`, chunk by chunk."""
    _check_chunk(chunk)
    out = []
    for start in range(0, len(data), chunk):
        out.append(pair_features(engine, *data.images(start, start + chunk), chunk=chunk))
        if progress is not None:
            progress(min(start + chunk, len(data)), len(data))
    return _cat(out, engine.net)
