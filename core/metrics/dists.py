"""DISTS (Ding, Ma, Wang & Simoncelli, TPAMI 2020): deep image structure and texture similarity.

The authors' model (``DISTS_pt.py`` in ``dists-pytorch==0.1``), rebuilt offline: torchvision's
VGG16 conv weights (the project's cached ``vgg`` backbone, :func:`core.lpips.weights.load_backbone`)
with each max pooling replaced by L2 pooling (:class:`core.lpips.nets.DistsBackbone`), inputs
normalized with the ImageNet mean and std, and the learned α/β from the wheel's ``weights.pt``
(:func:`core.lpips.weights.load_dists_weights`). Six "layers" are compared: the [0, 1] image itself
(not normalized, as in the original) and relu1_2 ... relu5_3. Per channel, the texture term
compares global means, ``(2 μx μy + c1) / (μx² + μy² + c1)``, and the structure term the global
covariance, ``(2 σxy + c2) / (σx² + σy² + c2)`` (c1 = c2 = 1e-6); DISTS = 1 - Σ (α·texture +
β·structure) with α, β normalized to sum to 1. Images are not resized (the authors' example
script shrinks the short side to 256 first; pass such images if you want those numbers).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from ..errors import ImageTooSmallError
from ..lpips.nets import DistsBackbone
from ..images.tensors import check_dist, check_unit_batch
from .registry import MetricContext, MetricScore
from .catalog import DISTS_MIN_SIZE

__all__ = ["DISTS_LAYERS", "DISTS_MIN_SIZE", "DistsNetwork", "DistsReference", "DistsResult", "dists",
           "network", "prepare_reference", "score"]

DISTS_LAYERS = ("image", "relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_C1 = _C2 = 1e-6


class DistsNetwork(torch.nn.Module):
    """The DISTS feature extractor with its normalized α/β (each 1×1475×1×1)."""

    def __init__(self, backbone_state: dict[str, torch.Tensor] | None, alpha: torch.Tensor, beta: torch.Tensor) -> None:
        super().__init__()
        self.backbone = DistsBackbone(backbone_state)
        total = alpha.sum() + beta.sum()
        self.register_buffer("alpha", alpha / total)
        self.register_buffer("beta", beta / total)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The image and the five stage outputs."""
        return [x, *self.backbone((x - self.mean) / self.std)]


_networks: dict[str, DistsNetwork] = {}
_networks_lock = threading.Lock()


def network(device: torch.device | str = "cpu") -> DistsNetwork:
    """The shared DISTS network on ``device``, built once from the cached, verified weights.

    Raises :class:`~core.errors.WeightsMissingError` (with the command that fixes it) when the
    VGG16 backbone or the α/β file is not provisioned.
    """
    from ..lpips.weights import load_backbone, load_dists_weights

    key = str(torch.device(device))
    with _networks_lock:
        if key not in _networks:
            weights = load_dists_weights()
            _networks[key] = DistsNetwork(load_backbone("vgg"), weights["alpha"], weights["beta"]).to(device)
        return _networks[key]


@dataclass(frozen=True)
class LayerStats:
    """One layer of the reference: its features and their per-channel global mean and variance."""

    features: torch.Tensor
    mean: torch.Tensor
    var: torch.Tensor


@dataclass(frozen=True)
class DistsReference:
    """The reference's six layers, computed once."""

    layers: tuple[LayerStats, ...]
    shape: torch.Size


@dataclass(frozen=True)
class DistsResult:
    """DISTS values (N,) and what they are made of: ``texture`` and ``structure`` (N×6), each
    layer's weighted ``Σ α (1 - texture similarity)`` and ``Σ β (1 - structure similarity)``.
    All twelve add up to ``value`` (to float rounding): bars that stack to the score."""

    value: torch.Tensor
    texture: torch.Tensor
    structure: torch.Tensor
    layer_names: tuple[str, ...] = DISTS_LAYERS


def _stats(features: list[torch.Tensor]) -> tuple[LayerStats, ...]:
    out = []
    for f in features:
        mean = f.mean(dim=(2, 3), keepdim=True)
        out.append(LayerStats(f, mean, ((f - mean) ** 2).mean(dim=(2, 3), keepdim=True)))
    return tuple(out)


def _check_size(batch: torch.Tensor) -> None:
    height, width = batch.shape[-2:]
    if min(height, width) < DISTS_MIN_SIZE:
        raise ImageTooSmallError(f"DISTS needs images of at least {DISTS_MIN_SIZE}×{DISTS_MIN_SIZE} pixels, "
                                 f"got {width}×{height}. Use larger images.")


@torch.no_grad()
def prepare_reference(ref: torch.Tensor, ctx: MetricContext | None = None) -> DistsReference:
    """The reference's features and their statistics (one backbone pass)."""
    ctx = ctx or MetricContext()
    ref_b = check_unit_batch(ref, "ref")
    _check_size(ref_b)
    net = network(ctx.device)
    return DistsReference(_stats(net.features(ref_b.to(ctx.device, torch.float32))), ref_b.shape)


def _dists(prepared: DistsReference, dist: torch.Tensor, net: DistsNetwork) -> DistsResult:
    device = prepared.layers[0].features.device
    dist_b = check_dist(torch.empty(prepared.shape, device="meta"), dist).to(device, torch.float32)
    alphas = torch.split(net.alpha, DISTS_CHANNELS, dim=1)
    betas = torch.split(net.beta, DISTS_CHANNELS, dim=1)
    similar = 0.0
    texture, structure = [], []
    for ref, feats, alpha, beta in zip(prepared.layers, net.features(dist_b), alphas, betas):
        y_mean = feats.mean(dim=(2, 3), keepdim=True)
        y_var = ((feats - y_mean) ** 2).mean(dim=(2, 3), keepdim=True)
        cov = (ref.features * feats).mean(dim=(2, 3), keepdim=True) - ref.mean * y_mean
        s1 = (2 * ref.mean * y_mean + _C1) / (ref.mean**2 + y_mean**2 + _C1)
        s2 = (2 * cov + _C2) / (ref.var + y_var + _C2)
        # Summed in the original's order, so the value matches DISTS_pt.py to float rounding.
        similar = similar + (alpha * s1).sum(1, keepdim=True) + (beta * s2).sum(1, keepdim=True)
        texture.append((alpha * (1 - s1)).sum(dim=(1, 2, 3)))
        structure.append((beta * (1 - s2)).sum(dim=(1, 2, 3)))
    value = (1 - similar).flatten()
    return DistsResult(value, torch.stack(texture, dim=1), torch.stack(structure, dim=1))


@torch.no_grad()
def score(prepared: DistsReference, dist: torch.Tensor, ctx: MetricContext | None = None) -> MetricScore:
    """DISTS of each image in ``dist`` against the prepared reference; the detail is the
    per-layer texture and structure terms (:class:`DistsResult`); DISTS has no per-pixel map."""
    ctx = ctx or MetricContext()
    result = _dists(prepared, dist, network(ctx.device))
    detail = DistsResult(result.value.cpu(), result.texture.cpu(), result.structure.cpu())
    return MetricScore(values=detail.value, detail=detail)


@torch.no_grad()
def dists(ref: torch.Tensor, dist: torch.Tensor, device: torch.device | str = "cpu",
          return_terms: bool = False) -> torch.Tensor | DistsResult:
    """DISTS (Ding et al. 2020), one value per image (shape N).

    Lower = more similar (0 = identical), higher = more different. ``return_terms=True`` returns
    a :class:`DistsResult` with the per-layer texture and structure terms that add up to it.
    Needs the provisioned VGG16 backbone and α/β (``python -m core weights fetch`` and
    :func:`core.lpips.weights.fetch_dists`). Images must be at least 16×16.

    >>> ref = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    >>> abs(dists(ref, ref).item()) < 1e-6
    True
    """
    ref_b = check_unit_batch(ref, "ref")
    check_dist(ref_b, dist)
    _check_size(ref_b)
    net = network(device)
    result = _dists(DistsReference(_stats(net.features(ref_b.to(device, torch.float32))), ref_b.shape), dist, net)
    result = DistsResult(result.value.cpu(), result.texture.cpu(), result.structure.cpu())
    return result if return_terms else result.value


def row_extras(result: DistsResult, i: int) -> dict:
    """Image ``i``'s per-layer terms for its row (JSON; the CSV keeps only the value)."""
    return {
        "dists_layer_names": list(result.layer_names),
        "dists_texture": [float(v) for v in result.texture[i]],
        "dists_structure": [float(v) for v in result.structure[i]],
    }
