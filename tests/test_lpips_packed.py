"""core.lpips.packed: the trunk's convolutions with weights laid out once per input shape.

The reference is the plain module path (``nn.Sequential`` of PyTorch's own layers), run on the
same trunk with the packed path switched off; the drop-in's values against the official package
stay covered by tests/test_lpips.py.
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.lpips import packed as packed_module
from core.lpips.nets import Backbone, _SLICES, build_features
from core.lpips.packed import PackedConvs, _out_side
from core.lpips.weights import load_backbone

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs PyTorch built with oneDNN")


@pytest.fixture(scope="module", params=["alex", "vgg"])
def trunk(request) -> Backbone:
    return Backbone(request.param, load_backbone(request.param)).to(memory_format=torch.channels_last)


def plain_taps(trunk: Backbone, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
    taps = []
    for block in trunk.slices[: None if upto is None else upto + 1]:
        x = block(x)
        taps.append(x)
    return taps


def image(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) * 2 - 1).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("shape", [(1, 3, 256, 256), (2, 3, 100, 111), (3, 3, 64, 80), (1, 3, 97, 161)])
def test_packed_taps_equal_the_plain_modules(trunk: Backbone, shape) -> None:
    x = image(*shape)
    trunk.packed = PackedConvs()
    with torch.inference_mode():
        got = trunk(x)
        want = plain_taps(trunk, x)
    assert trunk.packed.shapes == [shape], "the packed path was not taken"
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.is_contiguous(memory_format=torch.channels_last)
        # oneDNN's arithmetic both ways; bit-identical where the plain call picks the same algorithm.
        torch.testing.assert_close(g, w, rtol=0, atol=1e-5 * max(1.0, float(w.abs().max())))


def test_upto_returns_the_first_taps_only(trunk: Backbone) -> None:
    x = image(1, 3, 128, 128)
    with torch.inference_mode():
        got = trunk(x, upto=1)
        want = plain_taps(trunk, x, upto=1)
    assert len(got) == 2
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-5)


def test_a_gradient_takes_the_plain_path_and_flows(trunk: Backbone) -> None:
    trunk.packed = PackedConvs()
    x = image(1, 3, 64, 64).requires_grad_(True)
    taps = trunk(x)
    assert trunk.packed.shapes == []
    taps[-1].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_grad_mode_without_inputs_needing_it_still_packs(trunk: Backbone) -> None:
    # `d = loss_fn(a, b)` outside torch.no_grad(), as the official README writes it.
    trunk.packed = PackedConvs()
    x = image(1, 3, 64, 64)
    taps = trunk(x)
    assert trunk.packed.shapes == [(1, 3, 64, 64)] and not taps[-1].requires_grad


def test_other_devices_dtypes_and_layouts_take_the_plain_path(trunk: Backbone) -> None:
    trunk.packed = PackedConvs()
    with torch.inference_mode():
        trunk(image(1, 3, 64, 64).contiguous())  # NCHW: not the layout the plan is for
        with torch.backends.mkldnn.flags(enabled=False):
            trunk(image(1, 3, 64, 64))
    assert trunk.packed.shapes == []


def test_autocast_takes_the_plain_path_in_the_precision_asked_for(trunk: Backbone) -> None:
    # The packed convolutions are float32 oneDNN calls that autocast does not see: under
    # torch.autocast the caller asked for bf16, so the plain modules run (and differ from fp32).
    trunk.packed = PackedConvs()
    x = image(1, 3, 64, 64)
    with torch.inference_mode():
        fp32 = trunk(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = trunk(x)
    assert trunk.packed.shapes == [tuple(x.shape)]  # only the fp32 call packed
    assert bf16[-1].dtype == torch.bfloat16
    assert not torch.equal(bf16[-1].float(), fp32[-1])


def test_layouts_are_kept_within_the_budget_newest_first(trunk: Backbone) -> None:
    per_shape = sum(m.weight.numel() * 4 for s in trunk.slices for m in s if isinstance(m, nn.Conv2d))
    trunk.packed = PackedConvs(budget_bytes=2 * per_shape)
    shapes = [(1, 3, 64, 64 + 8 * k) for k in range(4)]
    with torch.inference_mode():
        for shape in shapes:
            trunk(image(*shape))
        trunk(image(*shapes[2]))  # used again: the most recent
    assert trunk.packed.shapes == [shapes[3], shapes[2]]


def test_changed_weights_get_a_new_layout() -> None:
    trunk = Backbone("alex", load_backbone("alex")).to(memory_format=torch.channels_last)
    x = image(1, 3, 96, 96)
    with torch.inference_mode():
        before = trunk(x)[-1].clone()
    with torch.no_grad():
        trunk.slices[0][0].weight.mul_(0.5)
    with torch.inference_mode():
        after = trunk(x)
        want = plain_taps(trunk, x)
    assert not torch.equal(after[-1], before)
    # Relative to each tap's scale: at 96² oneDNN may pick another kernel for the kept layout than
    # for the plain call (on an AVX-512/AMX Xeon, 1.0e-5 apart on a tap whose largest value is
    # ~10); a stale layout (conv1 twice too large) is off by a good fraction of that scale.
    for g, w in zip(after, want):
        torch.testing.assert_close(g, w, rtol=0, atol=2e-6 * w.abs().max().item())


def test_copies_and_pickles_start_without_layouts() -> None:
    trunk = Backbone("alex", load_backbone("alex")).to(memory_format=torch.channels_last)
    x = image(1, 3, 64, 64)
    with torch.inference_mode():
        want = trunk(x)
    for other in (copy.deepcopy(trunk), pickle.loads(pickle.dumps(trunk))):
        assert other.packed.shapes == [] and other.packed is not trunk.packed
        with torch.inference_mode():
            got = other(x)
        assert other.packed.shapes == [(1, 3, 64, 64)]
        for g, w in zip(got, want):
            assert torch.equal(g, w)


def test_squeezenet_keeps_its_modules() -> None:
    trunk = Backbone("squeeze", None).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        trunk(image(1, 3, 64, 64))
    assert trunk.packed.shapes == []


def test_a_failed_layout_falls_back_for_good(monkeypatch) -> None:
    trunk = Backbone("alex", load_backbone("alex")).to(memory_format=torch.channels_last)

    def refuse(*args, **kwargs):
        raise RuntimeError("this oneDNN cannot reorder")

    monkeypatch.setattr(packed_module, "_build_plan", refuse)
    x = image(1, 3, 64, 64)
    with torch.inference_mode():
        got = trunk(x)
        want = plain_taps(trunk, x)
    assert trunk.packed._failed and trunk.packed.shapes == []
    for g, w in zip(got, want):
        assert torch.equal(g, w)


@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_shape_arithmetic_matches_pytorch(net: str) -> None:
    features = build_features(net)[: _SLICES[net][-1][1]]
    layers = [m for m in features if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    for side in range(16, 80, 7):
        for m in layers:
            x = torch.zeros(1, 1, side, side)
            if isinstance(m, nn.Conv2d):
                got = _out_side(side, m.kernel_size[0], m.stride[0], m.padding[0], m.dilation[0], False)
                want = F.conv2d(x, torch.zeros(1, 1, *m.kernel_size), None, m.stride, m.padding, m.dilation).shape[-1]
            else:
                got = _out_side(side, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
                want = m(x).shape[-1]
            assert got == want, (m, side)
    for ceil in (False, True):
        for k, s, p in [(3, 2, 0), (3, 2, 1), (2, 2, 0), (5, 3, 2)]:
            for side in range(5, 40):
                pool = nn.MaxPool2d(k, s, p, ceil_mode=ceil)
                assert _out_side(side, k, s, p, 1, ceil) == pool(torch.zeros(1, 1, side, side)).shape[-1]
