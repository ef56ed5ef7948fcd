"""The trunk's convolutions on the CPU with their weights laid out once per input shape.

PyTorch's CPU convolution (oneDNN) reads its weights in a blocked layout chosen for the input's
shape, and reorders the plain weights into that layout on *every* call: for AlexNet that is 2.5
million floats per pass, about 15% of a 256² pass on this project's 2-core VM. Here each conv's
weight is reordered once per input shape (``torch.ops.mkldnn._reorder_convolution_weight``, the
op PyTorch's own compiler uses when it freezes a model) and the conv runs with its ReLU fused
(``_convolution_pointwise``). The arithmetic is oneDNN's in both cases: the taps are bit-identical
at the sizes the tests try, and within 6e-6 of the plain call at the few small sizes where the
plain call picks another algorithm (docs/performance.md has the measurements).

Used only where it is safe: CPU, float32, channels-last input, oneDNN enabled, and no gradient
wanted (the fused op has no backward); a trunk of plain ``Conv2d``/``ReLU``/``MaxPool2d`` layers
(AlexNet and VGG, not SqueezeNet's fire modules). Anything else takes the plain modules.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn
from torch.nn.modules.utils import _pair

# Layouts kept per trunk, least recently used dropped first: AlexNet's take 10 MB per input shape,
# VGG16's 59 MB, so the app's usual two or three shapes (reference, one image, a batch) fit.
PACKED_BYTES_BUDGET = 160 * 1024 * 1024

_Step = tuple  # ("conv", Conv2d, packed weight, attr) or ("module", nn.Module)


def _supported(slices: Sequence[nn.Sequential]) -> bool:
    return all(isinstance(m, (nn.Conv2d, nn.ReLU, nn.MaxPool2d)) for s in slices for m in s)


def _ops_available() -> bool:
    mkldnn = getattr(torch.ops, "mkldnn", None)
    return (mkldnn is not None and hasattr(mkldnn, "_convolution_pointwise")
            and hasattr(mkldnn, "_reorder_convolution_weight"))


class PackedConvs:
    """Per-input-shape weight layouts for one trunk; thread-safe; copies and pickles start empty."""

    def __init__(self, budget_bytes: int = PACKED_BYTES_BUDGET) -> None:
        self.budget_bytes = budget_bytes
        self._lock = threading.Lock()
        self._plans: OrderedDict[tuple, tuple[list[list[_Step]], int]] = OrderedDict()
        self._failed = False

    # A model is copied or sent to another process with its parameters only; its layouts are
    # rebuilt there on first use (a lock cannot be copied, and the layouts belong to this process).
    def __getstate__(self) -> dict:
        return {"budget_bytes": self.budget_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["budget_bytes"])

    def __deepcopy__(self, memo: dict) -> "PackedConvs":
        return PackedConvs(self.budget_bytes)

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """The input shapes whose layouts are kept now, oldest first."""
        with self._lock:
            return [key[0] for key in self._plans]

    def usable(self, slices: Sequence[nn.Sequential], x: torch.Tensor) -> bool:
        """Whether ``x`` may take the packed path through ``slices``."""
        if self._failed or x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 4:
            return False
        if torch.is_autocast_enabled("cpu"):  # the caller asked for lower precision: the plain convs honour it
            return False
        if not (torch.backends.mkldnn.enabled and torch.backends.mkldnn.is_available() and _ops_available()):
            return False
        if not x.is_contiguous(memory_format=torch.channels_last) or x.shape[0] == 0:
            return False
        if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for s in slices for p in s.parameters())):
            return False
        return _supported(slices)

    def run(self, slices: Sequence[nn.Sequential], x: torch.Tensor, upto: int | None) -> list[torch.Tensor] | None:
        """The taps of ``slices[:upto + 1]`` (all when ``upto`` is None), or None when the layout
        cannot be made here (then this trunk keeps to the plain path from now on)."""
        plan = self._plan(slices, tuple(x.shape))
        if plan is None:
            return None
        taps = []
        for steps in plan[: None if upto is None else upto + 1]:
            for step in steps:
                if step[0] == "conv":
                    _, conv, weight, attr = step
                    x = torch.ops.mkldnn._convolution_pointwise(
                        x, weight, conv.bias, list(conv.padding), list(conv.stride), list(conv.dilation),
                        conv.groups, attr, [], "")
                else:
                    x = step[1](x)
            taps.append(x)
        return taps

    def _plan(self, slices: Sequence[nn.Sequential], shape: tuple[int, ...]) -> list[list[_Step]] | None:
        convs = [m for s in slices for m in s if isinstance(m, nn.Conv2d)]
        # The weights' identity and version: a reloaded or edited weight gets a new layout.
        key = (shape, tuple((c.weight.data_ptr(), _version(c.weight)) for c in convs))
        with self._lock:
            if key in self._plans:
                self._plans.move_to_end(key)
                return self._plans[key][0]
        try:
            plan, nbytes = _build_plan(slices, shape)
        except (RuntimeError, TypeError, NotImplementedError):  # an oneDNN build without these ops' support
            self._failed = True
            return None
        with self._lock:
            self._plans[key] = (plan, nbytes)
            total = sum(n for _, n in self._plans.values())
            while total > self.budget_bytes and len(self._plans) > 1:
                _, (_, dropped) = self._plans.popitem(last=False)
                total -= dropped
        return plan


@torch.no_grad()
def _build_plan(slices: Sequence[nn.Sequential], shape: tuple[int, ...]) -> tuple[list[list[_Step]], int]:
    """Each conv's weight in the layout oneDNN picks for its input's shape, a conv followed by a
    ReLU fused with it. Shapes are followed by arithmetic: the meta device would import PyTorch's
    meta registrations, 0.3 s on the first call of a process."""
    n, _, height, width = shape
    plan: list[list[_Step]] = []
    nbytes = 0
    for block in slices:
        modules = list(block)
        steps: list[_Step] = []
        i = 0
        while i < len(modules):
            m = modules[i]
            if isinstance(m, nn.Conv2d):
                fuse_relu = i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU)
                weight = torch.ops.mkldnn._reorder_convolution_weight(
                    m.weight.detach().contiguous(), list(m.padding), list(m.stride), list(m.dilation),
                    m.groups, [n, m.in_channels, height, width])
                nbytes += m.weight.numel() * m.weight.element_size()
                steps.append(("conv", m, weight, "relu" if fuse_relu else "none"))
                height, width = (_out_side(side, k, st, p, d, False) for side, k, st, p, d in
                                 zip((height, width), m.kernel_size, m.stride, m.padding, m.dilation))
                i += 2 if fuse_relu else 1
            else:
                steps.append(("module", m))
                if isinstance(m, nn.MaxPool2d):
                    height, width = (_out_side(side, k, st, p, d, m.ceil_mode) for side, k, st, p, d in
                                     zip((height, width), _pair(m.kernel_size), _pair(m.stride or m.kernel_size),
                                         _pair(m.padding), _pair(m.dilation)))
                i += 1
        plan.append(steps)
    return plan, nbytes


def _version(t: torch.Tensor) -> int:
    # A weight made under torch.inference_mode() keeps no version counter (and is edited in place
    # by nobody: outside inference mode that is refused); its address alone then names it.
    return -1 if t.is_inference() else t._version


def _out_side(side: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """A conv's or max pooling's output side, as PyTorch computes it (pooling_output_shape)."""
    span = side + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= side + padding:  # the last window may not start in the padding
        out -= 1
    return out
