"""Property-based tests of the public API: any tensor gives a finite, correct result or one of the
project's own errors with a message, never another exception.

Generated inputs: any dtype, shape (including empty and 0-d), value range, NaN/Inf, batch sizes,
against psnr, ssim, ms_ssim, core.compare, the Engine and the drop-in core.LPIPS.
"""

from __future__ import annotations

import math

import hypothesis_profiles  # noqa: F401  (loads the profile)
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import core
from core.errors import LpipsExplorerError

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8, torch.int64, torch.bool,
          torch.complex64]


@st.composite
def tensors(draw, max_side: int = 48):
    """Tensors of any rank 0-5, small sides (0 included), any dtype, values in odd ranges."""
    if draw(st.integers(0, 2)):  # mostly image-like N×C×H×W (or C×H×W)
        shape = (draw(st.integers(1, 3)), draw(st.sampled_from([1, 3, 3, 4])),
                 draw(st.integers(1, max_side)), draw(st.integers(1, max_side)))
        if draw(st.integers(0, 4)) == 0:
            shape = shape[1:]
    else:  # any rank 0-5 with small sides (0 included): at most 6⁵ elements
        rank = draw(st.integers(0, 5))
        shape = tuple(draw(st.lists(st.integers(0, 6), min_size=rank, max_size=rank)))
    dtype = draw(st.sampled_from(DTYPES))
    low, high = draw(st.sampled_from([(0.0, 1.0), (-1.0, 1.0), (0.0, 255.0), (-1e6, 1e6), (0.0, 1.0)]))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = torch.rand(shape, generator=gen, dtype=torch.float64) * (high - low) + low
    if x.numel() and draw(st.integers(0, 5)) == 0:
        x.view(-1)[0] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    if dtype.is_complex:
        return x.to(torch.complex64)
    if dtype == torch.bool:
        return x > 0.5
    if not dtype.is_floating_point:
        return x.clamp(0, 255).round().to(dtype) if dtype == torch.uint8 else x.round().to(dtype)
    return x.to(dtype)


@st.composite
def pairs(draw, max_side: int = 48):
    """Two tensors, half the time of one shape (so checks past the size check are reached)."""
    first = draw(tensors(max_side))
    if draw(st.booleans()) and first.ndim:
        shape = list(first.shape)
        if shape and draw(st.booleans()):
            shape[0] = draw(st.integers(1, 3))  # another batch size, same image size
        gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
        dtype = draw(st.sampled_from([first.dtype, torch.float32, torch.float64, torch.float16]))
        second = torch.rand(shape, generator=gen).to(dtype) if not dtype.is_complex else torch.rand(shape).to(dtype)
        return first, second
    return first, draw(tensors(max_side))


@st.composite
def near_valid_pairs(draw, low: float = 0.0):
    """Image pairs that pass most checks: 3 (or 1) channels, 31-64 px, values in [low, 1], and
    then one thing off at a time: dtype, batch sizes, a NaN, a size."""
    n0, n1 = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    c = draw(st.sampled_from([3, 3, 1]))
    h, w = draw(st.integers(31, 64)), draw(st.integers(31, 64))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    a = torch.rand(n0, c, h, w, generator=gen, dtype=torch.float64) * (1 - low) + low
    b = torch.rand(n1, c, h, w, generator=gen, dtype=torch.float64) * (1 - low) + low
    a = a.to(draw(st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16])))
    b = b.to(draw(st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16])))
    if draw(st.integers(0, 5)) == 0:
        b = b[..., : h - draw(st.integers(1, 5)), :]
    return a, b


def outcome(fn, *args, **kwargs):
    """The call's result, or the project's error; any other exception fails the test."""
    try:
        return fn(*args, **kwargs)
    except LpipsExplorerError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return err


def assert_finite_or_inf(values: torch.Tensor, allow_inf: bool = False) -> None:
    v = values.detach().double()
    assert not torch.isnan(v).any(), values
    if not allow_inf:
        assert torch.isfinite(v).all(), values


@pytest.fixture(scope="module")
def engine():
    return core.Engine("alex", device="cpu")


@pytest.fixture(scope="module")
def drop_in():
    return core.LPIPS(net="alex")


@given(pair=pairs())
def test_psnr_any_tensors(pair):
    ref, dist = pair
    result = outcome(core.psnr, ref, dist)
    if isinstance(result, torch.Tensor):
        assert_finite_or_inf(result, allow_inf=True)


@given(pair=pairs(), mode=st.sampled_from(["reference", "rgb", "luma", ""]))
def test_ssim_any_tensors(pair, mode):
    ref, dist = pair
    result = outcome(core.ssim, ref, dist, mode=mode)
    if isinstance(result, torch.Tensor):
        assert_finite_or_inf(result)
        assert ((result >= -1 - 1e-6) & (result <= 1 + 1e-6)).all()


@given(pair=pairs(max_side=200))
def test_ms_ssim_any_tensors(pair):
    ref, dist = pair
    result = outcome(core.ms_ssim, ref, dist)
    if isinstance(result, torch.Tensor):
        assert_finite_or_inf(result)


@given(pair=pairs())
def test_engine_any_tensors(engine, pair):
    ref, dist = pair
    result = outcome(engine.compare, ref, dist)
    if not isinstance(result, Exception):
        assert_finite_or_inf(result.value)
        torch.testing.assert_close(result.layer_values.sum(1), result.value, rtol=1e-5, atol=1e-6)


@given(pair=pairs(), metrics=st.sampled_from([None, "psnr,ssim", "lpips", "ms_ssim", "x"]))
def test_compare_any_tensors(engine, pair, metrics):
    ref, dist = pair
    result = outcome(core.compare, engine, ref, dist, metrics=metrics)
    if not isinstance(result, Exception):
        for key, values in result.values.items():
            if key not in result.skipped:
                assert_finite_or_inf(values, allow_inf=key == "psnr")


@given(pair=pairs(), normalize=st.booleans(), per_layer=st.booleans())
def test_drop_in_any_tensors(drop_in, pair, normalize, per_layer):
    in0, in1 = pair
    result = outcome(drop_in, in0, in1, retPerLayer=per_layer, normalize=normalize)
    if not isinstance(result, Exception):
        value = result[0] if per_layer else result
        assert_finite_or_inf(value)


@given(pair=near_valid_pairs())
def test_engine_near_valid_images(engine, pair):
    result = outcome(engine.compare, *pair)
    if not isinstance(result, Exception):
        assert_finite_or_inf(result.value)
        assert result.value.shape == (max(pair[0].shape[0], pair[1].shape[0]),)


@given(pair=near_valid_pairs())
def test_compare_near_valid_images(engine, pair):
    result = outcome(core.compare, engine, *pair)
    if not isinstance(result, Exception):
        for key, values in result.values.items():
            if key not in result.skipped:
                assert_finite_or_inf(values, allow_inf=key == "psnr")


@given(pair=near_valid_pairs(low=-1.0), per_layer=st.booleans())
def test_drop_in_near_valid_images(drop_in, pair, per_layer):
    result = outcome(drop_in, *pair, retPerLayer=per_layer)
    if not isinstance(result, Exception):
        value = result[0] if per_layer else result
        assert_finite_or_inf(value)
        assert value.shape == (max(pair[0].shape[0], pair[1].shape[0]), 1, 1, 1)


@given(value=st.one_of(st.integers(-3, 3), st.floats(-2, 2), st.text(max_size=3), st.booleans(), st.none()))
def test_engine_options_are_checked(value):
    result = outcome(core.Engine, "alex", device="cpu", chunk_size=value)
    if not isinstance(result, Exception):
        assert isinstance(value, int) and not isinstance(value, bool) and value >= 1 and result.chunk_size == value
    for name in ("net", "version", "device"):
        assert isinstance(outcome(core.Engine, **{name: str(value) + "?"}), LpipsExplorerError), name
