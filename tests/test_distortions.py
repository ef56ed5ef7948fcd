"""Tests for core.distortions: the per-distortion contract, chains, seeds and validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from skimage import data

from core import distortions as D
from core.distortions import REGISTRY, Step, apply, chain_from_dict, chain_to_dict, describe, sweep
from core.errors import InputRangeError, LpipsExplorerError
from core.images.tensors import from_numpy

NAMES = sorted(REGISTRY)
RANDOM = sorted(n for n, d in REGISTRY.items() if d.random)

# Spatial distortions compare each pixel with a displaced one, so their MSE follows the
# image's autocorrelation, which need not fall monotonically with distance (periodic
# texture, stripes). For them only "every non-identity value changes the image" is asserted.
NOT_NECESSARILY_MONOTONE = {"translate", "rotate", "chromatic_aberration"}


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    # 512×512 subsampled to 128×128: a natural photo with faces, edges and flat regions.
    return from_numpy(data.astronaut()[::4, ::4])


@pytest.fixture(scope="module")
def small() -> torch.Tensor:
    # Not on the 8-bit grid, so a distortion that quantizes cannot pass as identity by luck.
    g = torch.Generator().manual_seed(1234)
    return torch.rand(1, 3, 48, 64, generator=g)


def _severity_values(name: str, count: int = 6) -> list:
    """Main-parameter values from identity to the far end of its range, in order of distance."""
    p = REGISTRY[name].main
    far = p.min if abs(p.min - p.identity) > abs(p.max - p.identity) else p.max
    values = np.linspace(p.identity, far, count)
    if p.kind == "int":
        return sorted({int(round(v)) for v in values}, key=lambda v: abs(v - p.identity))
    return [float(v) for v in values]


# --- registry -------------------------------------------------------------------------


def test_registry_has_required_distortions():
    required = {
        "lightness", "color_shift", "contrast", "gaussian_noise", "salt_pepper", "gaussian_blur",
        "motion_blur", "translate", "rotate", "ghosting", "chromatic_aberration", "jpeg",
        "resample", "posterize", "unsharp",
    }
    assert required <= set(REGISTRY)


@pytest.mark.parametrize("name", NAMES)
def test_registry_entry_well_formed(name):
    d = REGISTRY[name]
    assert d.name == name
    assert d.family in D.FAMILIES
    assert d.explanation and "\n" not in d.explanation
    assert d.params and d.main.identity is not None, "the main parameter needs an identity value"
    assert d.main.kind != "choice"
    assert d.main.default != d.main.identity, "the default should show a visible distortion"
    assert len({p.name for p in d.params}) == len(d.params)
    for p in d.params:
        assert p.label and p.kind in ("float", "int", "choice")
        assert p.validate(p.default) == p.default
        if p.kind == "choice":
            assert p.choices and p.default in p.choices
        else:
            assert p.min < p.max and p.step > 0
            if p.identity is not None:
                assert p.min <= p.identity <= p.max
    assert d.resolve() == d.defaults()


# --- per-distortion contract ----------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_identity_is_bit_identical(name, small):
    d = REGISTRY[name]
    for p in d.params:
        if p.identity is None:
            continue
        out = d(small, **{p.name: p.identity})
        assert torch.equal(out, small), f"{name} with {p.name}={p.identity} changed the image"
        assert out.data_ptr() != small.data_ptr(), "identity must return a copy, not the input"
        assert torch.equal(apply([Step(name, {p.name: p.identity})], small, seed=5), small)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_shape_dtype_range(name, dtype, small):
    image = torch.cat([small, small.flip(-1)]).to(dtype)  # N = 2
    before = image.clone()
    out = REGISTRY[name](image, rng=torch.Generator().manual_seed(0))
    assert out.shape == image.shape and out.dtype == dtype and out.device == image.device
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, image), f"{name} at its default should change the image"
    assert torch.equal(image, before), f"{name} modified its input"


@pytest.mark.parametrize("name", NAMES)
def test_extreme_parameters_stay_in_range(name, small):
    d = REGISTRY[name]
    for p in d.params:
        if p.kind == "choice":
            continue
        for v in (p.min, p.max):
            out = d(small, **{p.name: v})
            assert out.shape == small.shape and torch.isfinite(out).all()
            assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_seeds(name, small):
    chain = [Step(name)]
    same = torch.equal(apply(chain, small, seed=1), apply(chain, small, seed=1))
    assert same
    differ = not torch.equal(apply(chain, small, seed=1), apply(chain, small, seed=2))
    assert differ == REGISTRY[name].random


@pytest.mark.parametrize("name", NAMES)
def test_error_grows_with_severity(name, astronaut):
    p = REGISTRY[name].main
    values = _severity_values(name)
    out = sweep(name, p.name, values, astronaut, seed=0)
    mse = ((out - astronaut) ** 2).mean((1, 2, 3)).tolist()
    assert mse[0] == 0.0
    assert all(m > 0 for m in mse[1:]), f"{name}: some severity left the image unchanged: {mse}"
    if name in NOT_NECESSARILY_MONOTONE:
        assert mse[-1] > mse[1]
    else:
        assert all(b > a for a, b in zip(mse, mse[1:])), f"{name}: MSE not increasing over {values}: {mse}"


@pytest.mark.parametrize("name", RANDOM)
def test_random_distortion_default_rng_is_reproducible(name, small):
    fn = REGISTRY[name].fn
    assert torch.equal(fn(small, **REGISTRY[name].defaults()), fn(small, **REGISTRY[name].defaults()))


# --- specific behaviour ---------------------------------------------------------------


def test_integer_translate_is_a_pure_shift(small):
    right = D.translate(small, 1.0)
    assert torch.equal(right[..., 1:], small[..., :-1])
    up = D.translate(small, 2.0, 90.0)
    assert torch.equal(up[..., :-2, :], small[..., 2:, :])
    half = D.translate(small, 0.5)
    torch.testing.assert_close(half[..., 1:], (small[..., 1:] + small[..., :-1]) / 2)


def test_chromatic_aberration_moves_red_and_blue_oppositely(small):
    out = D.chromatic_aberration(small, 2.0)
    assert torch.equal(out[:, 0, :, 2:], small[:, 0, :, :-2])
    assert torch.equal(out[:, 2, :, :-2], small[:, 2, :, 2:])
    assert torch.equal(out[:, 1], small[:, 1])


def test_jpeg_output_is_8_bit_and_subsampling_matters(astronaut):
    a = D.jpeg(astronaut, 50, "4:2:0")
    b = D.jpeg(astronaut, 50, "4:4:4")
    torch.testing.assert_close(a * 255, (a * 255).round(), atol=1e-4, rtol=0)
    assert not torch.equal(a, b)


def test_resample_methods_differ(astronaut):
    outs = [D.resample(astronaut, 4.0, m) for m in ("nearest", "bilinear", "bicubic")]
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])


def test_motion_blur_direction_matters(astronaut):
    assert not torch.equal(D.motion_blur(astronaut, 9, 0.0), D.motion_blur(astronaut, 9, 90.0))


def test_lightness_keeps_grey_grey():
    grey = torch.full((1, 3, 4, 4), 0.4)
    out = D.lightness(grey, 10.0)
    assert float(out.mean()) > 0.4
    torch.testing.assert_close(out[:, 0], out[:, 1], atol=2e-3, rtol=0)


# --- chains ---------------------------------------------------------------------------


def test_chain_order_matters(small):
    blur = Step("gaussian_blur", {"sigma": 2.0})
    noise = Step("gaussian_noise", {"sigma": 20.0})
    assert not torch.equal(apply([blur, noise], small), apply([noise, blur], small))


def test_empty_chain_returns_a_copy(small):
    out = apply([], small)
    assert torch.equal(out, small) and out.data_ptr() != small.data_ptr()


def _mid_grey_image() -> torch.Tensor:
    # Values in [0.3, 0.7]: mild noise never clips, so the noise can be read back by subtraction.
    g = torch.Generator().manual_seed(7)
    return 0.3 + 0.4 * torch.rand(1, 3, 32, 32, generator=g)


def test_noise_pattern_unchanged_when_a_deterministic_step_is_added():
    x = _mid_grey_image()
    noise = Step("gaussian_noise", {"sigma": 5.0})
    pre = Step("contrast", {"factor": 1.2})
    alone = apply([noise], x, seed=11) - x
    after_pre = apply([pre, noise], x, seed=11) - apply([pre], x, seed=11)
    torch.testing.assert_close(after_pre, alone, atol=1e-6, rtol=0)
    # ... and when another random step of a different kind is added after it.
    with_sp = apply([noise, Step("salt_pepper", {"fraction": 0.05})], x, seed=11)
    hit = (with_sp == 0) | (with_sp == 1)
    torch.testing.assert_close(with_sp[~hit], (x + alone)[~hit], atol=1e-6, rtol=0)


def test_repeated_random_steps_get_different_noise():
    x = _mid_grey_image()
    noise = Step("gaussian_noise", {"sigma": 3.0})
    once = apply([noise], x, seed=0) - x
    twice = apply([noise, noise], x, seed=0) - x
    torch.testing.assert_close(twice.std(), once.std() * 2**0.5, rtol=0.1, atol=0)


def test_chain_dict_round_trip_through_json():
    chain = [
        Step("gaussian_blur", {"sigma": 2.0}),
        Step("motion_blur", {"length": 7, "angle": 45}),
        Step("resample", {"factor": 2.5, "method": "nearest"}),
        Step("jpeg", {"quality": 30}),
    ]
    restored = chain_from_dict(json.loads(json.dumps(chain_to_dict(chain))))
    assert restored == chain
    assert hash(restored[0]) == hash(chain[0])


def test_describe():
    chain = [Step("gaussian_blur", {"sigma": 2.0}), Step("jpeg", {"quality": 30})]
    assert describe(chain) == "gaussian_blur(sigma=2.0) → jpeg(quality=30)"
    text = describe([Step("resample", {"factor": 2, "method": "nearest"})])
    assert text == "resample(factor=2.0, method=nearest)"


def test_step_fills_defaults_and_normalizes_types():
    step = Step("motion_blur", {"length": 5.0})
    assert step.params == {"length": 5, "angle": 0.0}
    assert isinstance(step.params["length"], int)


def test_sweep(small):
    out = sweep("gaussian_noise", "sigma", [0, 10, 20], small, seed=3)
    assert out.shape == (3, *small.shape[1:])
    assert torch.equal(out[0], small[0])
    x = _mid_grey_image()
    noisy = sweep("gaussian_noise", "sigma", [5.0, 10.0], x, seed=3) - x
    torch.testing.assert_close(noisy[1], 2 * noisy[0], atol=1e-5, rtol=0)  # one pattern, scaled
    angled = sweep("motion_blur", "length", [9], small, base_params={"angle": 90.0})
    assert torch.equal(angled, D.motion_blur(small, 9, 90.0))


# --- validation -----------------------------------------------------------------------


def test_unknown_distortion_lists_valid_names():
    with pytest.raises(ValueError, match="valid names are: .*gaussian_blur") as err:
        Step("gausian_blur", {"sigma": 1.0})
    assert isinstance(err.value, LpipsExplorerError)
    with pytest.raises(ValueError, match="valid names"):
        chain_from_dict({"steps": [{"name": "nope", "params": {}}]})
    with pytest.raises(ValueError, match="valid names"):
        sweep("nope", "x", [1], torch.zeros(1, 3, 8, 8))


def test_parameter_out_of_range_names_the_range(small):
    with pytest.raises(ValueError, match=r"'sigma'.*\[0, 8\] px.*got 9"):
        Step("gaussian_blur", {"sigma": 9})
    with pytest.raises(ValueError, match=r"\[5, 100\]"):
        D.jpeg(small, 2)
    with pytest.raises(ValueError, match=r"integer in \[0, 31\]"):
        Step("motion_blur", {"length": 2.5})
    with pytest.raises(ValueError, match="one of 'nearest', 'bilinear', 'bicubic'"):
        Step("resample", {"method": "lanczos"})
    with pytest.raises(ValueError, match="must be a number"):
        Step("gaussian_blur", {"sigma": float("nan")})
    with pytest.raises(ValueError, match="must be a number"):
        Step("gaussian_blur", {"sigma": "2"})
    with pytest.raises(ValueError, match=r"\[0, 8\]"):
        sweep("gaussian_blur", "sigma", [1.0, 20.0], small)


def test_unknown_parameter_lists_valid_ones(small):
    with pytest.raises(ValueError, match="has no parameter 'radius'; its parameters are: sigma"):
        Step("gaussian_blur", {"radius": 1.0})
    with pytest.raises(ValueError, match="its parameters are: length, angle"):
        D.motion_blur(small, 5, direction=3.0)
    with pytest.raises(ValueError, match="has no parameter"):
        sweep("gaussian_blur", "radius", [1.0], small)


def test_other_validation(small):
    with pytest.raises(ValueError, match="non-negative integer"):
        apply([], small, seed=-1)
    with pytest.raises(ValueError, match="not a Step"):
        apply([("gaussian_blur", {"sigma": 1.0})], small)
    with pytest.raises(ValueError, match="one image"):
        sweep("gaussian_blur", "sigma", [1.0], torch.cat([small, small]))
    with pytest.raises(ValueError, match="'steps' list"):
        chain_from_dict({"chain": []})
    with pytest.raises(ValueError, match="format version"):
        chain_from_dict({"version": 99, "steps": []})
    with pytest.raises(InputRangeError, match="divide by 255"):
        D.gaussian_blur(small * 255, 1.0)
    with pytest.raises(TypeError, match="torch.Generator"):
        D.gaussian_noise(small, 5.0, rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def alex_engine():
    from core.lpips.engine import Engine

    return Engine("alex", device="cpu")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sample", ["astronaut", "coffee"])
def test_lpips_grows_with_severity_on_sample_images(name, sample, alex_engine):
    """LPIPS (not only pixel error) rises from mild to strong along each distortion's main
    parameter, on the gallery's photos at the app's quiz size."""
    from core.images.imageio import downscale_to_fit
    from core.images.samples import load_sample
    from core.images.tensors import quantize_8bit

    ref = quantize_8bit(downscale_to_fit(load_sample(sample), 160)[0])
    values = _severity_values(name, count=4)[1:]  # skip the identity
    dists = torch.cat([quantize_8bit(apply([Step(name, {REGISTRY[name].main.name: v})],
                                      ref, seed=1)) for v in values])
    scores = alex_engine.distance(alex_engine.reference(ref), dists).tolist()
    assert scores[0] > 0
    assert scores[-1] > scores[0], (name, values, scores)
