"""The three backbones and the layers ("taps") whose features LPIPS compares.

Each backbone is built with the same module indices as torchvision's ``<model>.features`` so that
torchvision state dicts (and our converted caches, which use its key names) load strictly. Only the
conv trunk is built: torchvision's full VGG16 would allocate a 500 MB classifier we never use.
Nothing comes from torchvision: importing it costs about a second on every command-line run.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import torch
from torch import nn

from ..errors import InvalidArgumentError
from .packed import PackedConvs
from .names import CHANNELS, MIN_SIDE, TAP_NAMES  # noqa: F401  (re-exported; the nets' facts live in names)

# `features[start:end]` for each tap, as the official lpips.pretrained_networks slices them.
_SLICES: dict[str, tuple[tuple[int, int], ...]] = {
    "alex": ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12)),
    "vgg": ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30)),
    "squeeze": ((0, 2), (2, 5), (5, 8), (8, 10), (10, 11), (11, 12), (12, 13)),
}


class Fire(nn.Module):
    """SqueezeNet's fire module as torchvision defines it (same attribute names, so the same
    state-dict keys): a 1×1 squeeze, then 1×1 and 3×3 expands concatenated."""

    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


def _alexnet_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if width == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = width
    return nn.Sequential(*layers)


def _squeezenet1_1_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=3, stride=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(64, 16, 64, 64), Fire(128, 16, 64, 64),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(128, 32, 128, 128), Fire(256, 32, 128, 128),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
        Fire(384, 64, 256, 256), Fire(512, 64, 256, 256),
    )


def build_features(net: str) -> nn.Sequential:
    """An uninitialised copy of torchvision's ``<net>.features`` (same indices and shapes)."""
    builders = {"alex": _alexnet_features, "vgg": _vgg16_features, "squeeze": _squeezenet1_1_features}
    if net not in builders:
        raise InvalidArgumentError(f"Argument `net` must be one of {tuple(builders)}, got {net!r}.")
    with torch.device("meta"):
        features = builders[net]()
    return features


class Backbone(nn.Module):
    """A conv trunk cut into slices; ``forward`` returns the activation after each slice."""

    def __init__(self, net: str, state: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        features = build_features(net)
        if state is None:
            features = features.to_empty(device="cpu")
            for module in features.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        else:
            # strict: a missing or unexpected key is an error, never a silently random layer.
            # assign: the loaded tensors become the parameters of the meta-device trunk (no empty
            # copy to fill first; `to_empty` alone imports half a second of PyTorch's reference ops).
            features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()}, strict=True,
                                     assign=True)
        self.net = net
        # Keep torchvision's indices inside each slice so state keys map back to `features.<i>`.
        self.slices = nn.ModuleList(
            nn.Sequential(OrderedDict((str(i), features[i]) for i in range(a, b))) for a, b in _SLICES[net]
        )
        for p in self.parameters():
            p.requires_grad_(False)
        self.packed = PackedConvs()

    def features_state(self) -> dict[str, torch.Tensor]:
        """The weights under torchvision's ``features.<i>.<param>`` names."""
        return {re.sub(r"^slices\.\d+\.", "features.", k): v for k, v in self.state_dict().items()}

    def forward(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """The taps of every slice, or of the slices ``0..upto`` only (the later ones cost the rest)."""
        if self.packed.usable(self.slices, x):  # inference on the CPU: weights laid out once per shape
            taps = self.packed.run(self.slices, x, upto)
            if taps is not None:
                return taps
        taps = []
        for block in self.slices[: None if upto is None else upto + 1]:
            x = block(x)
            taps.append(x)
        return taps


def smallest_input(net: str, limit: int = 64) -> int:
    """Smallest square side the net accepts, found by trying (used to check ``MIN_SIDE``)."""
    features = build_features(net)[: _SLICES[net][-1][1]]
    for side in range(1, limit):
        try:
            features(torch.empty(1, 3, side, side, device="meta"))
        except RuntimeError:
            continue
        return side
    raise RuntimeError(f"no side below {limit} works for {net}")


# --------------------------------------------------------------------------------------------
# DISTS (Ding et al. 2020): VGG16 with L2 pooling in place of each max pooling.
# --------------------------------------------------------------------------------------------

# The max-pooling indices of torchvision's vgg16.features that DISTS replaces, with the
# channels each pools over; the conv/ReLU layers around them keep their indices and weights.
DISTS_POOLS: dict[int, int] = {4: 64, 9: 128, 16: 256, 23: 512}
# The stages whose outputs DISTS compares (relu1_2 ... relu5_3), as `features[start:end]`.
_DISTS_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))


class L2Pooling(nn.Module):
    """``sqrt(hann3x3 * x² + 1e-12)`` with stride 2, per channel: DISTS's anti-aliased pooling.

    The 3×3 window is the outer product of ``np.hanning(5)[1:-1]`` normalized to sum 1
    (weights 1/16, 1/8, 1/4), padding 1, as the authors' ``L2pooling(filter_size=5)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        import numpy as np

        a = np.hanning(5)[1:-1]
        window = torch.tensor(a[:, None] * a[None, :], dtype=torch.float32)
        window = window / window.sum()
        self.register_buffer("filter", window[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.nn.functional.conv2d(x * x, self.filter.to(x.dtype), stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DistsBackbone(nn.Module):
    """VGG16's conv trunk with L2 pooling; ``forward`` returns the five stage outputs
    (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3). ``state`` is torchvision's ``features.*``
    (the project's cached VGG16, :func:`core.lpips.weights.load_backbone`); ``None`` leaves random weights."""

    def __init__(self, state: dict[str, torch.Tensor] | None) -> None:
        super().__init__()
        features = build_features("vgg").to_empty(device="cpu")
        if state is None:
            for module in features.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        else:
            features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()}, strict=True)
        layers: list[nn.Module] = [L2Pooling(DISTS_POOLS[i]) if i in DISTS_POOLS else features[i]
                                   for i in range(len(features))]
        self.stages = nn.ModuleList(
            nn.Sequential(OrderedDict((str(i), layers[i]) for i in range(a, b))) for a, b in _DISTS_SLICES
        )
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for stage in self.stages:
            x = stage(x)
            taps.append(x)
        return taps
