"""The LPIPS computation: the official algorithm, a drop-in ``LPIPS`` module and the ``Engine``.

The algorithm (Zhang et al., CVPR 2018, and the official ``lpips`` 0.1.4 code, step for step):

1. map the input to [-1, 1]; for version 0.1 apply the scaling layer ``(x - shift) / scale``;
2. run the backbone and keep five (seven for SqueezeNet) activations;
3. unit-normalize each activation over channels: ``f / (||f||_2 + 1e-10)``;
4. square the difference of the normalized features of the two images;
5. weight channels with the learned 1×1 head (or sum them, for the uncalibrated baseline);
6. average each layer's map over space and sum the layers.

:class:`Engine` is the analysis API: it caches a reference image's normalized features, so each
new distorted image costs one backbone pass, takes batches, and returns every intermediate a
viewer wants (per-layer values that sum to the distance, per-layer maps, the upsampled total map).
"""

from __future__ import annotations

import threading
from pathlib import Path
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import weights
from ..errors import ImageTooSmallError, InputShapeError, InvalidArgumentError
from .nets import CHANNELS, MIN_SIDE, TAP_NAMES, Backbone
from ..images.tensors import as_batch, check_batch_counts, check_batch_sizes, check_range, check_same_size

NetName = Literal["alex", "vgg", "squeeze"]
Version = Literal["0.1", "0.0"]
NORM_EPS = 1e-10
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def default_device() -> torch.device:
    """CUDA when present, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def available_devices() -> list[str]:
    """The device names this machine accepts: ``auto``, ``cpu``, then ``cuda``/``cuda:N`` and
    ``mps`` only where present."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        names += ["cuda"] + [f"cuda:{i}" for i in range(count)]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` → :func:`default_device`; otherwise the device named, if available here.

    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("gpu")
    Traceback (most recent call last):
    ...
    core.errors.InvalidArgumentError: Unknown device 'gpu'; on this machine use one of: auto, cpu.
    """
    if device is None or device == "auto":
        return default_device()
    here = ", ".join(available_devices())
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidArgumentError(f"Unknown device {device!r}; on this machine use one of: {here}.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError(f"Device {device!r} was requested but no CUDA GPU is available; use one of: {here}.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InvalidArgumentError(f"Device {device!r} does not exist here; use one of: {here}.")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InvalidArgumentError(f"Device {device!r} was requested but Apple's MPS is not available; use one of: {here}.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise InvalidArgumentError(f"Device {device!r} is not supported; use one of: {here}.")
    return dev


def _check_choice(name: str, value, choices: Sequence) -> None:
    if value not in choices:
        raise InvalidArgumentError(f"Argument `{name}` must be one of {tuple(choices)}, got {value!r}.")


def check_min_size(net: str, height: int, width: int) -> None:
    """Raise :class:`ImageTooSmallError` if ``net`` cannot take an image of this size."""
    side = MIN_SIDE[net]
    if height < side or width < side:
        raise ImageTooSmallError(
            f"The {net} network needs images of at least {side}×{side} pixels, got {width}×{height}. "
            "Use a larger image (or upscale it explicitly before comparing)."
        )


def normalize_channels(features: torch.Tensor) -> torch.Tensor:
    """Unit-normalize over the channel dimension, exactly as the official ``normalize_tensor``."""
    norm = torch.sqrt(torch.sum(features * features, dim=1, keepdim=True))
    return features / (norm + NORM_EPS)


def _channel_norms(features: torch.Tensor) -> torch.Tensor:
    """``‖f‖ + eps`` over channels for inference: one reduction, no feature-sized temporary
    (``sum(f * f)`` writes a squared copy first; at alex 512² that copy cost more than the sum).
    Within a rounding of the official arithmetic. Where a gradient is wanted,
    :func:`normalize_channels` keeps the official expression (its bits and its autograd graph)."""
    return torch.linalg.vector_norm(features, dim=1, keepdim=True).add_(NORM_EPS)


def _weighted_channel_sum(diff: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A linear head (1×C×1×1, no bias) over ``diff`` N×C×h×w → N×1×h×w.

    On a channels-last map this is one matrix-vector product over the (N·h·w)×C rows, which ran
    2–4× faster than the equivalent 1×1 ``conv2d`` at alex's layer sizes on the CPU (the
    convolution's per-call setup dominates on maps this thin); other layouts use the convolution.
    """
    n, c, h, w = diff.shape
    if diff.device.type != "cpu" or not diff.is_contiguous(memory_format=torch.channels_last):
        return F.conv2d(diff, weight)
    rows = diff.permute(0, 2, 3, 1).reshape(n * h * w, c)  # a view: channels-last is N×h×w×C in memory
    return (rows @ weight.reshape(c, 1)).reshape(n, h, w, 1).permute(0, 3, 1, 2)


def normalize_channels_(features: torch.Tensor) -> torch.Tensor:
    """:func:`normalize_channels` in place, for raw taps no gradient is asked of."""
    return features.div_(_channel_norms(features))


class LpipsNetwork(nn.Module):
    """Backbone + scaling layer + linear heads: the model, without any caching or validation.

    Inputs of :meth:`features` are in [-1, 1] (the official convention). Parameters never require
    grad; the module holds no state that ``forward`` mutates, so one instance can serve many
    threads at once.
    """

    def __init__(self, net: str, version: str, lpips: bool, backbone_state: dict[str, torch.Tensor] | None,
                 heads: dict[str, torch.Tensor] | None, *, heads_origin: str = "") -> None:
        super().__init__()
        # Where the heads come from when they are not the published ones of `version` (a fitted
        # heads file's name): titles and rows say so.
        self.heads_origin = heads_origin
        _check_choice("net", net, weights.NETS)
        _check_choice("version", version, weights.VERSIONS)
        self.net, self.version, self.lpips = net, version, lpips
        self.layer_names = TAP_NAMES[net]
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.backbone = Backbone(net, backbone_state)
        self.head_weights = nn.ParameterList()
        if lpips:
            if heads is None:
                raise InvalidArgumentError("lpips=True needs linear-head weights.")
            for k, channels in enumerate(CHANNELS[net]):
                key = f"lin{k}.model.1.weight"
                if key not in heads:
                    raise weights.WeightsCorruptError(
                        f"The linear-head file for {net} v{version} lacks `{key}`; reinstall lpips==0.1.4."
                    )
                w = heads[key]
                if tuple(w.shape) != (1, channels, 1, 1):
                    raise weights.WeightsCorruptError(
                        f"Linear head `{key}` for {net} v{version} has shape {tuple(w.shape)}, expected (1, {channels}, 1, 1)."
                    )
                self.head_weights.append(nn.Parameter(w.clone(), requires_grad=False))
        self.eval()

    def taps(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Raw activations of the taps, for an input in [-1, 1] (only taps ``0..upto`` if given)."""
        if self.version == "0.1":
            x = (x - self.shift) / self.scale
        if self.shift.device.type != "mps":  # channels-last is ~25% faster for mkldnn/cuDNN convs
            x = x.contiguous(memory_format=torch.channels_last)
        return self.backbone(x, upto)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Channel-normalized activations of the taps, for an input in [-1, 1]."""
        taps = self.taps(x)
        if torch.is_grad_enabled() and (x.requires_grad or any(t.requires_grad for t in taps)):
            return [normalize_channels(t) for t in taps]
        return [normalize_channels_(t) for t in taps]  # the taps are this call's own tensors

    def layer_maps_inplace(self, ref_features: Sequence[torch.Tensor], taps: list[torch.Tensor]) -> list[torch.Tensor]:
        """:meth:`layer_maps` for inference, consuming ``taps`` (raw, not normalized) in place.

        The same arithmetic in the same order (the channel norm within a rounding: one reduction,
        :func:`_channel_norms`), but without allocating feature-sized temporaries per layer (at
        512² that allocation cost more than the math).
        """
        maps = []
        for k, (f0, f1) in enumerate(zip(ref_features, taps)):
            # f0 − f1/‖f1‖ in one pass written over f1 (-1·a/b is exactly −(a/b)), then squared.
            diff = torch.addcdiv(f0, f1, _channel_norms(f1), value=-1, out=f1).square_()
            maps.append(_weighted_channel_sum(diff, self.head_weights[k]) if self.lpips
                        else diff.sum(dim=1, keepdim=True))
        return maps

    def layer_maps(self, feats0: Sequence[torch.Tensor], feats1: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Per-layer distance maps N×1×h×w at each layer's own resolution (batch dims broadcast)."""
        maps = []
        for k, (f0, f1) in enumerate(zip(feats0, feats1)):
            diff = (f0 - f1) ** 2
            if self.lpips:
                maps.append(F.conv2d(diff, self.head_weights[k]))
            else:
                maps.append(diff.sum(dim=1, keepdim=True))
        return maps


_network_lock = threading.Lock()


def build_network(net: str, version: str, lpips: bool, device: torch.device,
                  backbone_state: dict[str, torch.Tensor]) -> LpipsNetwork:
    """A model prepared exactly as the shared ones (layout, device) from the given trunk weights."""
    model = LpipsNetwork(net, version, lpips, backbone_state,
                         weights.load_linear_heads(net, version) if lpips else None)
    if device.type != "mps":
        model = model.to(memory_format=torch.channels_last)
    return model.to(device)


@lru_cache(maxsize=None)
def _cached_network(net: str, version: str, lpips: bool, device: torch.device) -> LpipsNetwork:
    return build_network(net, version, lpips, device, weights.load_backbone(net))


def get_network(net: str = "alex", version: str = "0.1", lpips: bool = True,
                device: str | torch.device | None = None) -> LpipsNetwork:
    """The shared, read-only model for (net, version, lpips, device), loaded once per process.

    Raises :class:`~core.errors.WeightsMissingError` (with the command that fixes it) when the
    backbone is not provisioned; the failure is not cached, so a later call after repair succeeds.
    """
    _check_choice("net", net, weights.NETS)
    _check_choice("version", version, weights.VERSIONS)
    dev = resolve_device(device)
    # Built outside inference mode whoever asks first (a folder command runs under it): the shared
    # model's tensors would otherwise be inference tensors, and a later gradient through it (the
    # synthesis page, LPIPS as a loss) would fail with "Inference tensors cannot be saved for backward".
    with _network_lock, torch.inference_mode(False):  # two threads asking at once must not build two copies
        return _cached_network(net, version, bool(lpips), dev)


def clear_network_cache() -> None:
    """Forget loaded models (after the weights were re-provisioned, say)."""
    with _network_lock:
        _cached_network.cache_clear()


def upsample_to(layer_map: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with ``align_corners=False``, as the official ``spatial=True`` path."""
    return F.interpolate(layer_map, size=size, mode="bilinear", align_corners=False)


# ---------------------------------------------------------------------------------------------
# The analysis API.
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReferenceFeatures:
    """A reference image with its normalized features, computed once and reused."""

    image: torch.Tensor  # 1×3×H×W (or N×3×H×W) in [0, 1], on the engine's device
    features: tuple[torch.Tensor, ...]
    net: str
    version: str

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.image.shape[-2:])  # type: ignore[return-value]


@dataclass(frozen=True)
class LpipsResult:
    """Everything one comparison produced; tensors are on the CPU.

    ``value[i] == layer_values[i].sum()``; ``map`` is the sum of the upsampled layer maps (the
    official ``spatial=True`` output), whose mean is close to but not exactly ``value``.
    """

    net: str
    version: str
    lpips: bool
    layer_names: tuple[str, ...]
    value: torch.Tensor  # (N,)
    layer_values: torch.Tensor  # (N, L)
    layer_maps: tuple[torch.Tensor, ...]  # L × (N, 1, h_l, w_l)
    layer_maps_upsampled: tuple[torch.Tensor, ...] | None  # L × (N, 1, H, W)
    map: torch.Tensor | None  # (N, 1, H, W)
    heads: str = ""  # a fitted heads file's name; "" for the published heads of `version`

    def __len__(self) -> int:
        return int(self.value.shape[0])


class Engine:
    """LPIPS with a cached reference: one backbone pass per distorted image.

    >>> engine = Engine("alex")                               # doctest: +SKIP
    >>> ref = engine.reference(ref_image)                     # doctest: +SKIP
    >>> result = engine.compare(ref, dist_images)             # doctest: +SKIP
    >>> result.value, result.layer_values.sum(1)              # doctest: +SKIP

    Images are N×3×H×W float tensors in [0, 1] (N×1×H×W grayscale is repeated to RGB).
    Higher LPIPS means more different.
    """

    def __init__(self, net: NetName = "alex", version: Version = "0.1", lpips: bool = True,
                 device: str | torch.device | None = None, *, network: LpipsNetwork | None = None,
                 chunk_size: int = 16) -> None:
        self.network = network if network is not None else get_network(net, version, lpips, device)
        self.net, self.version, self.lpips = self.network.net, self.network.version, self.network.lpips
        self.device = self.network.shift.device
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise InvalidArgumentError(f"`chunk_size` must be a positive whole number of images per pass, "
                                       f"got {chunk_size!r}.")
        self.chunk_size = chunk_size

    def _prepare(self, image: torch.Tensor, name: str) -> torch.Tensor:
        batch = as_batch(image, name)
        check_range(batch, 0.0, 1.0, name)
        check_min_size(self.net, batch.shape[-2], batch.shape[-1])
        return batch.to(self.device, torch.float32)

    @torch.inference_mode()
    def _features(self, batch01: torch.Tensor) -> list[torch.Tensor]:
        return self.network.features(batch01 * 2 - 1)

    @torch.inference_mode()
    def reference(self, ref: torch.Tensor) -> ReferenceFeatures:
        """Compute and keep ``ref``'s features (1×3×H×W, or N×3×H×W paired with N dists)."""
        batch = self._prepare(ref, "ref")
        return ReferenceFeatures(batch, tuple(self._features(batch)), self.net, self.version)

    @torch.inference_mode()
    def compare(self, ref: ReferenceFeatures | torch.Tensor, dist: torch.Tensor, *,
                spatial: bool = True) -> LpipsResult:
        """LPIPS of each image in ``dist`` against ``ref``; ``spatial`` adds image-size maps."""
        if not isinstance(ref, ReferenceFeatures):
            ref = self.reference(ref)
        elif (ref.net, ref.version) != (self.net, self.version):
            raise InvalidArgumentError(f"These reference features were computed with {ref.net} v{ref.version}; "
                                       f"this engine is {self.net} v{self.version}. Call engine.reference() again.")
        batch = self._prepare(dist, "dist")
        check_same_size(ref.image, batch)
        n_ref = ref.image.shape[0]
        if n_ref not in (1, batch.shape[0]):
            raise InputShapeError(f"`ref` has {n_ref} images and `dist` {batch.shape[0]}; use one reference or one per image.")
        chunks = []
        for start in range(0, batch.shape[0], self.chunk_size):
            part = batch[start:start + self.chunk_size]
            feats_ref = ref.features if n_ref == 1 else [f[start:start + self.chunk_size] for f in ref.features]
            chunks.append(self.network.layer_maps_inplace(feats_ref, self.network.taps(part * 2 - 1)))
        layer_maps = chunks[0] if len(chunks) == 1 else [torch.cat([c[k] for c in chunks]) for k in range(len(chunks[0]))]
        layer_values = torch.stack([m.mean(dim=(2, 3)).squeeze(1) for m in layer_maps], dim=1)
        value = layer_values.sum(dim=1)
        upsampled = total = None
        if spatial:
            size = tuple(batch.shape[-2:])
            upsampled = tuple(upsample_to(m, size) for m in layer_maps)
            total = upsampled[0].clone()
            for layer in upsampled[1:]:  # in the official order: ((l0 + l1) + l2) + ...
                total += layer
        return LpipsResult(
            net=self.net, version=self.version, lpips=self.lpips, layer_names=self.network.layer_names,
            value=value.cpu(), layer_values=layer_values.cpu(),
            layer_maps=tuple(m.cpu() for m in layer_maps),
            layer_maps_upsampled=None if upsampled is None else tuple(m.cpu() for m in upsampled),
            map=None if total is None else total.cpu(), heads=self.network.heads_origin,
        )

    def distance(self, ref: ReferenceFeatures | torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """Just the LPIPS values, shape (N,)."""
        return self.compare(ref, dist, spatial=False).value


def lpips_distance(ref: torch.Tensor, dist: torch.Tensor, net: NetName = "alex", version: Version = "0.1",
                   device: str | torch.device | None = None) -> torch.Tensor:
    """LPIPS between [0, 1] images, one value per image; higher means more different.

    >>> import torch
    >>> x = torch.rand(1, 3, 64, 64)
    >>> float(lpips_distance(x, x))  # doctest: +SKIP
    0.0
    """
    return Engine(net, version, True, device).distance(ref, dist)


# ---------------------------------------------------------------------------------------------
# The drop-in replacement for ``lpips.LPIPS``.
# ---------------------------------------------------------------------------------------------

def _one_image(x: torch.Tensor) -> bool:
    """Whether batch ``x`` is one image repeated, so its features can be computed once: a
    broadcast (stride 0 on the batch axis, as ``ref.expand(n, …)`` makes), or equal images that
    no gradient is asked of (each copy of a tensor that requires grad gets its own gradient)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] < 2:
        return False
    wants_grad = torch.is_grad_enabled() and x.requires_grad
    if x.stride(0) == 0:
        return not (wants_grad and x.is_leaf)  # a leaf's rows are its own; a view's gradient sums back
    return not wants_grad and bool(torch.equal(x, x[:1].expand_as(x)))


class LPIPS(nn.Module):
    """Drop-in for the official ``lpips.LPIPS``: same arguments, same ``forward`` and outputs.

    Differences, all on the safe side: weights come from the offline cache and load strictly;
    nothing is printed; inputs outside [-1, 1] (or [0, 1] with ``normalize=True``) raise a
    ``ValueError`` that names the fix; N×1×H×W grayscale is repeated to RGB. Gradients flow to the
    inputs (so it still works as a loss); the network's own parameters are frozen.

    >>> import torch
    >>> loss_fn = LPIPS(net="alex")                           # doctest: +SKIP
    >>> d = loss_fn(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))  # doctest: +SKIP
    >>> d.shape                                               # doctest: +SKIP
    torch.Size([1, 1, 1, 1])
    """

    def __init__(self, pretrained: bool = True, net: NetName = "alex", version: Version = "0.1",
                 lpips: bool = True, spatial: bool = False, pnet_rand: bool = False, pnet_tune: bool = False,
                 use_dropout: bool = True, model_path: str | None = None, eval_mode: bool = True,
                 verbose: bool = False) -> None:
        super().__init__()
        _check_choice("net", net, weights.NETS)
        _check_choice("version", version, weights.VERSIONS)
        if pnet_tune:
            raise InvalidArgumentError("pnet_tune=True (training the backbone) is not supported; use the official package to train.")
        backbone_state = None if pnet_rand else weights.load_backbone(net)
        heads = None
        if lpips:
            if model_path is not None:  # fitted heads (.safetensors) or an official .pth, checked
                from .heads import load_heads

                heads = load_heads(model_path, net)
            elif pretrained:
                heads = weights.load_linear_heads(net, version)
            else:  # the official package's random (untrained) heads
                heads = {f"lin{k}.model.1.weight": nn.init.kaiming_uniform_(torch.empty(1, c, 1, 1), a=5 ** 0.5)
                         for k, c in enumerate(CHANNELS[net])}
        # The engine's layout (build_network): channels-last weights and inputs (taps() hands the
        # trunk channels-last tensors), which is also what lets the trunk use the weight layouts
        # it keeps per input shape (core/lpips/packed.py) instead of reordering on every call.
        origin = Path(model_path).name if (lpips and model_path is not None) else ""
        self.network = LpipsNetwork(net, version, lpips, backbone_state, heads,
                                    heads_origin=origin).to(memory_format=torch.channels_last)
        self.pnet_type, self.version, self.lpips, self.spatial = net, version, lpips, spatial
        self.L = len(CHANNELS[net])

    def _check(self, x: torch.Tensor, name: str, normalize: bool) -> torch.Tensor:
        batch = as_batch(x, name)
        if normalize:
            check_range(batch, 0.0, 1.0, name, hint=" With normalize=True inputs must be in [0, 1]; divide 0-255 data by 255.")
        else:
            check_range(batch, -1.0, 1.0, name, hint=(
                " LPIPS expects [-1, 1] by default: pass normalize=True for [0, 1] data, or use x / 127.5 - 1 for 0-255 data."))
        check_min_size(self.pnet_type, batch.shape[-2], batch.shape[-1])
        # The network computes in its own precision (float32): float64/half inputs are converted,
        # as the Engine does, instead of failing inside a convolution. Gradients flow through.
        return batch.to(self.network.shift.dtype)

    def forward(self, in0: torch.Tensor, in1: torch.Tensor, retPerLayer: bool = False, normalize: bool = False):
        # One image broadcast to the batch (`ref.expand(16, …)`, or 16 equal copies when no
        # gradient is asked of them) has its features computed once; so do identical inputs.
        one0, one1 = _one_image(in0), _one_image(in1)
        x0 = self._check(in0[:1] if one0 else in0, "in0", normalize)
        x1 = x0 if in1 is in0 else self._check(in1[:1] if one1 else in1, "in1", normalize)
        check_same_size(x0, x1)
        n0, n1 = (in0.shape[0] if one0 else x0.shape[0]), (in1.shape[0] if one1 else x1.shape[0])
        check_batch_counts(n0, n1, ("in0", "in1"))
        if normalize:
            x0 = 2 * x0 - 1
            x1 = x0 if in1 is in0 else 2 * x1 - 1
        grad = torch.is_grad_enabled() and (x0.requires_grad or x1.requires_grad)
        # Two passes, not one pass over both sides concatenated: on a 2-core CPU the batch of two
        # ran no faster than two batches of one (bench/dropin.py), and it costs a copy.
        if in1 is in0:
            feats0 = feats1 = self.network.features(x0)
        else:
            feats0 = self.network.features(x0)
            feats1 = self.network.taps(x1) if not grad else self.network.features(x1)
        if not grad and in1 is not in0 and x1.shape[0] >= x0.shape[0]:
            # No gradient asked: in1's raw taps are normalized and differenced in place (the
            # engine's arithmetic, which writes into in1's side and so needs its batch the larger).
            maps = self.network.layer_maps_inplace(feats0, feats1)
        else:
            if not grad and in1 is not in0:
                feats1 = [normalize_channels_(t) for t in feats1]
            maps = self.network.layer_maps(feats0, feats1)
        n = max(n0, n1)
        maps = [m.expand(n, -1, -1, -1) if m.shape[0] != n else m for m in maps]
        if self.spatial:
            res = [upsample_to(m, tuple(x0.shape[2:])) for m in maps]
        else:
            res = [m.mean(dim=(2, 3), keepdim=True) for m in maps]
        val = res[0]
        for layer in res[1:]:
            val = val + layer
        return (val, res) if retPerLayer else val
