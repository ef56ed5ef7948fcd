"""core.lpips.engine against the official lpips==0.1.4 package and its published example values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import load_png, natural_pair, official_model
from core.lpips import weights
from core.errors import ImageSizeMismatchError, ImageTooSmallError, InputRangeError, WeightsMissingError
from core.lpips.engine import LPIPS, Engine, LpipsNetwork, clear_network_cache, get_network
from core.lpips.nets import MIN_SIDE, Backbone, smallest_input

TOL = 1e-5


def backbone_state(net: str) -> dict[str, torch.Tensor]:
    """Real weights for alex/vgg; a seeded random trunk for squeeze (no offline source exists)."""
    if net == "squeeze":
        torch.manual_seed(1234)
        return Backbone("squeeze").features_state()
    return weights.load_backbone(net)


# ---------------------------------------------------------------------------------------------
# Published values: proves the converted offline weights are torchvision's.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["alex-v0.1-lin", "alex-v0.1-baseline", "alex-v0.0-lin",
                                 "vgg-v0.1-lin", "vgg-v0.1-baseline", "vgg-v0.0-lin"])
def test_matches_official_example_values(examples_dir, expected, key):
    net, version, kind = key.split("-")
    ref, p0, p1 = (load_png(examples_dir / n) for n in ("ex_ref.png", "ex_p0.png", "ex_p1.png"))
    result = Engine(net, version[1:], kind == "lin", "cpu").compare(ref, torch.cat([p0, p1]))
    want = expected[key]
    # expected.json is rounded to 6 decimals
    assert result.value[0].item() == pytest.approx(want["ref_vs_p0"], rel=1e-6, abs=1e-6)
    assert result.value[1].item() == pytest.approx(want["ref_vs_p1"], rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(result.layer_values[0].numpy(), want["ref_vs_p0_per_layer"], rtol=1e-6, atol=1e-6)
    if "ref_vs_p0_spatial_map_mean" in want:
        assert list(result.map[:1].shape) == want["spatial_map_shape"]
        assert result.map[0].mean().item() == pytest.approx(want["ref_vs_p0_spatial_map_mean"], abs=1e-6)


def test_alex_example_values_named_in_the_issue(examples_dir):
    ref, p0, p1 = (load_png(examples_dir / n) for n in ("ex_ref.png", "ex_p0.png", "ex_p1.png"))
    d = LPIPS(net="alex")
    assert d(ref, p0, normalize=True).item() == pytest.approx(0.721881, abs=1e-6)
    assert d(ref, p1, normalize=True).item() == pytest.approx(0.137566, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Parity with the official package on the same weights.
# ---------------------------------------------------------------------------------------------

PARITY_CASES = [
    # net, version, lpips, (H, W)
    ("alex", "0.1", True, (64, 64)),
    ("alex", "0.1", True, (97, 131)),
    ("alex", "0.1", False, (72, 48)),
    ("alex", "0.0", True, (64, 80)),
    ("alex", "0.1", True, (MIN_SIDE["alex"], MIN_SIDE["alex"])),
    ("vgg", "0.1", True, (64, 64)),
    ("vgg", "0.1", False, (48, 80)),
    ("vgg", "0.0", True, (40, 56)),
    ("squeeze", "0.1", True, (64, 64)),
    ("squeeze", "0.1", False, (50, 70)),
    ("squeeze", "0.0", True, (MIN_SIDE["squeeze"], 45)),
]


@pytest.fixture(scope="module")
def trunks():
    return {net: backbone_state(net) for net in ("alex", "vgg", "squeeze")}


@pytest.mark.parametrize("net,version,lpips_on,size", PARITY_CASES)
@pytest.mark.parametrize("spatial", [False, True])
def test_dropin_matches_official(trunks, net, version, lpips_on, size, spatial):
    ref, dist = natural_pair(*size)
    batch_ref = torch.cat([ref, ref.flip(-1)]) * 2 - 1
    batch_dist = torch.cat([dist, dist.flip(-2)]) * 2 - 1
    official = official_model(net, version, lpips_on, spatial, trunks[net])
    ours = LPIPS(net=net, version=version, lpips=lpips_on, spatial=spatial, pnet_rand=True)
    ours.network.backbone.load_state_dict(Backbone(net, trunks[net]).state_dict(), strict=True)
    with torch.no_grad():
        want_val, want_layers = official(batch_ref, batch_dist, retPerLayer=True)
        got_val, got_layers = ours(batch_ref, batch_dist, retPerLayer=True)
    assert got_val.shape == want_val.shape
    assert (got_val - want_val).abs().max().item() <= TOL
    assert len(got_layers) == len(want_layers)
    for g, w in zip(got_layers, want_layers):
        assert g.shape == w.shape
        assert (g - w).abs().max().item() <= TOL


@pytest.mark.parametrize("net,version,lpips_on,size", PARITY_CASES[:2] + PARITY_CASES[5:6] + PARITY_CASES[8:9])
def test_engine_matches_official_with_cached_reference(trunks, net, version, lpips_on, size):
    ref, dist = natural_pair(*size)
    dists = torch.cat([dist, (dist * 0.9 + 0.05), ref])
    network = LpipsNetwork(net, version, lpips_on, trunks[net],
                           weights.load_linear_heads(net, version) if lpips_on else None)
    engine = Engine(network=network)
    cached = engine.reference(ref)
    got = engine.compare(cached, dists)
    for spatial in (False, True):
        official = official_model(net, version, lpips_on, spatial, trunks[net])
        with torch.no_grad():
            want, want_layers = official(ref.expand_as(dists), dists, retPerLayer=True, normalize=True)
        if spatial:
            assert (got.map - want).abs().max().item() <= TOL
            for g, w in zip(got.layer_maps_upsampled, want_layers):
                assert (g - w).abs().max().item() <= TOL
        else:
            assert (got.value - want.flatten()).abs().max().item() <= TOL
            np.testing.assert_allclose(got.layer_values.numpy(), torch.cat(want_layers, 1).flatten(1).numpy(), atol=TOL)
    assert abs(got.value[2].item()) < 1e-9  # ref against itself (batched convs differ in the last bits)


# ---------------------------------------------------------------------------------------------
# The analysis API's own promises.
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def alex() -> Engine:
    return Engine("alex", device="cpu")


def test_layer_values_sum_to_value_and_maps_have_layer_resolution(alex):
    ref, dist = natural_pair(96, 128)
    result = alex.compare(ref, dist)
    assert torch.allclose(result.layer_values.sum(1), result.value, atol=1e-7)
    assert result.layer_names == ("relu1", "relu2", "relu3", "relu4", "relu5")
    assert [tuple(m.shape[-2:]) for m in result.layer_maps] == [(23, 31), (11, 15), (5, 7), (5, 7), (5, 7)]
    for m, v in zip(result.layer_maps, result.layer_values[0]):
        assert m.mean().item() == pytest.approx(v.item(), abs=1e-7)
    assert result.map.shape == (1, 1, 96, 128)


def test_cached_reference_batch_equals_single_pairs(alex):
    ref, dist = natural_pair(64, 64)
    dists = torch.cat([dist, dist.flip(-1), 1 - dist])
    cached = alex.reference(ref)
    batched = alex.distance(cached, dists)
    singles = torch.cat([alex.distance(ref, d[None]) for d in dists])
    assert torch.allclose(batched, singles, atol=1e-6)
    small_chunks = Engine(network=alex.network, chunk_size=2).distance(cached, dists)
    assert torch.allclose(small_chunks, batched, atol=1e-6)


def test_per_image_scores_with_paired_batches(alex):
    ref, dist = natural_pair(64, 64)
    refs, dists = torch.cat([ref, dist]), torch.cat([dist, dist])
    values = alex.distance(refs, dists)
    assert abs(values[1].item()) < 1e-9 and values[0].item() > 0.1


def test_grayscale_is_repeated_to_rgb(alex):
    ref, dist = natural_pair(64, 64)
    gray_ref, gray_dist = ref.mean(1, keepdim=True), dist.mean(1, keepdim=True)
    got = alex.distance(gray_ref, gray_dist)
    want = alex.distance(gray_ref.repeat(1, 3, 1, 1), gray_dist.repeat(1, 3, 1, 1))
    assert torch.equal(got, want)


def test_symmetry_and_identity(alex):
    ref, dist = natural_pair(64, 64)
    assert alex.distance(ref, ref).item() == 0.0
    assert alex.distance(ref, dist).item() == pytest.approx(alex.distance(dist, ref).item(), abs=1e-6)


def test_out_of_range_input_names_the_fix(alex):
    ref, _ = natural_pair(64, 64)
    with pytest.raises(InputRangeError, match="divide by 255"):
        alex.distance(ref * 255, ref * 255)
    with pytest.raises(ValueError, match="normalize=True"):
        LPIPS(net="alex")(ref * 255, ref * 255)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LPIPS(net="alex")(ref * 2 - 1, ref, normalize=True)
    with pytest.raises(InputRangeError, match="NaN"):
        alex.distance(ref, torch.full_like(ref, float("nan")))


@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_minimum_size_is_the_smallest_the_net_accepts(net):
    assert smallest_input(net) == MIN_SIDE[net]


def test_below_minimum_size_is_a_clear_error(alex):
    small = torch.rand(1, 3, 30, 200)
    with pytest.raises(ImageTooSmallError, match="at least 31×31"):
        alex.distance(small, small)


def test_different_sizes_are_an_error(alex):
    with pytest.raises(ImageSizeMismatchError, match="Crop or resize"):
        alex.distance(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 72))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"`net` must be one of \('alex', 'vgg', 'squeeze'\), got 'resnet'"):
        Engine("resnet")
    with pytest.raises(ValueError, match="`version`"):
        LPIPS(version="0.2")


def test_shared_model_is_one_instance_without_autograd():
    a = get_network("alex", "0.1", True, "cpu")
    assert a is get_network("alex", "0.1", True, "cpu")
    assert not any(p.requires_grad for p in a.parameters())
    ref, dist = natural_pair(64, 64)
    value = Engine(network=a).distance(ref, dist)
    assert not value.requires_grad


def test_a_shared_model_first_asked_for_in_inference_mode_still_takes_gradients():
    # A folder command runs under torch.inference_mode(); the synthesis page later in the same
    # process differentiates through the same shared model.
    clear_network_cache()
    try:
        with torch.inference_mode():
            network = get_network("alex")
        x = torch.rand(1, 3, 64, 64, requires_grad=True)
        y = torch.rand(1, 3, 64, 64)
        maps = network.layer_maps(network.features(x * 2 - 1), network.features(y * 2 - 1))
        sum(m.mean() for m in maps).backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
    finally:
        clear_network_cache()


def test_dropin_passes_gradients_to_inputs_for_use_as_a_loss():
    ref, dist = natural_pair(64, 64)
    dist = dist.clone().requires_grad_(True)
    LPIPS(net="alex")(ref, dist, normalize=True).sum().backward()
    assert dist.grad is not None and dist.grad.abs().sum() > 0


def test_strict_loading_rejects_a_missing_key():
    state = dict(weights.load_backbone("alex"))
    state.pop("features.3.weight")
    with pytest.raises(RuntimeError, match="Missing key"):
        Backbone("alex", state)


def test_squeeze_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path))
    with pytest.raises(WeightsMissingError, match="weights import --net squeeze"):
        Engine("squeeze", device="cpu")
    with pytest.raises(WeightsMissingError, match="python -m core weights fetch"):
        LPIPS(net="vgg")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    ref, dist = natural_pair(96, 96)
    cpu = Engine("alex", device="cpu").compare(ref, dist)
    gpu = Engine("alex", device="cuda").compare(ref, dist)
    assert (cpu.value - gpu.value).abs().max().item() <= TOL
    assert (cpu.map - gpu.map).abs().max().item() <= TOL


# ---------------------------------------------------------------------------------------------
# A shared reference is computed once, with the plain path's values and gradients.
# ---------------------------------------------------------------------------------------------

class _CountingBackbone(torch.nn.Module):
    """Wraps the trunk and records the batch size of every pass."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.batches = inner, []

    def forward(self, x, upto=None):
        self.batches.append(x.shape[0])
        return self.inner(x, upto)


@pytest.fixture
def counted():
    model = LPIPS(net="alex")
    model.network.backbone = _CountingBackbone(model.network.backbone)
    return model


def _dists(n: int, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    ref, _ = natural_pair(size, size)
    gen = torch.Generator().manual_seed(n)
    dists = (ref + 0.1 * torch.randn(n, 3, size, size, generator=gen)).clamp(0, 1)
    return ref * 2 - 1, dists * 2 - 1


@pytest.mark.parametrize("how", ["expand", "equal copies"])
def test_a_broadcast_reference_is_computed_once_with_the_same_values(trunks, counted, how):
    ref, dists = _dists(6)
    in0 = ref.expand(6, -1, -1, -1) if how == "expand" else ref.repeat(6, 1, 1, 1)
    official = official_model("alex", "0.1", True, False, trunks["alex"])
    with torch.no_grad():
        got = counted(in0, dists)
        want = official(ref.repeat(6, 1, 1, 1), dists)
    assert counted.network.backbone.batches == [1, 6]  # not [12]: the reference once, the six once
    assert got.shape == want.shape == (6, 1, 1, 1)
    assert (got - want).abs().max().item() <= TOL
    with torch.no_grad():  # the same as our own plain path (the broadcast on the other side too)
        plain = counted(ref.repeat(6, 1, 1, 1) + 0.0 * dists, dists)  # equal rows? no: differs by -0.0
        other_side = counted(dists, in0)
    assert (got - plain).abs().max().item() <= 1e-6 and (got - other_side).abs().max().item() <= 1e-6


def test_identical_inputs_are_one_pass_and_zero(counted):
    _, dists = _dists(3)
    with torch.no_grad():
        d = counted(dists, dists)
    assert counted.network.backbone.batches == [3] and torch.equal(d, torch.zeros(3, 1, 1, 1))


def test_distinct_sides_are_one_pass_each_and_match_the_official(trunks, counted):
    ref, dists = _dists(2)
    in0 = torch.cat([ref, ref.flip(-1)])
    official = official_model("alex", "0.1", True, True, trunks["alex"])
    counted.spatial = True
    with torch.no_grad():
        got = counted(in0, dists)
        want = official(in0, dists)
    assert counted.network.backbone.batches == [2, 2]
    assert (got - want).abs().max().item() <= TOL


@pytest.mark.parametrize("spatial", [False, True])
def test_the_gradient_through_a_broadcast_reference_is_the_plain_paths(spatial):
    # In float64 the two paths agree to rounding (float32 sums the four copies' gradients in
    # another order: about 1e-5 of the largest component).
    ref, dists = (t.double() for t in _dists(4))
    model = LPIPS(net="alex", spatial=spatial).double()
    shared = ref.clone().requires_grad_(True)
    d_shared = model(shared.expand(4, -1, -1, -1), dists)
    d_shared.sum().backward()
    plain = ref.clone().requires_grad_(True)
    d_plain = model(torch.cat([plain] * 4), dists)  # rows that need a gradient: never shortcut
    d_plain.sum().backward()
    assert (d_shared - d_plain).abs().max().item() <= 1e-12
    assert (shared.grad - plain.grad).abs().max().item() <= 1e-9 * plain.grad.abs().max().item()
    assert shared.grad.abs().sum() > 0


def test_copies_that_each_need_a_gradient_each_get_their_own(counted):
    ref, dists = _dists(3)
    copies = ref.repeat(3, 1, 1, 1).requires_grad_(True)
    counted(copies, dists).sum().backward()
    assert counted.network.backbone.batches == [3, 3]  # the plain path: every row has its own gradient
    assert all(copies.grad[i].abs().sum() > 0 for i in range(3))
    expanded_leaf = ref.expand(3, -1, -1, -1).clone().requires_grad_(True)
    assert expanded_leaf.stride(0) != 0  # a clone is a real tensor; the shortcut is for views


# ---------------------------------------------------------------------------------------------
# Inference arithmetic: the one-pass forms against the official expressions.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels_last", [True, False])
def test_a_linear_head_as_rows_equals_the_one_by_one_convolution(channels_last):
    from core.lpips.engine import _weighted_channel_sum

    g = torch.Generator().manual_seed(7)
    diff = torch.rand(3, 192, 13, 17, generator=g)
    if channels_last:
        diff = diff.contiguous(memory_format=torch.channels_last)
    weight = torch.rand(1, 192, 1, 1, generator=g)
    got, want = _weighted_channel_sum(diff, weight), torch.nn.functional.conv2d(diff, weight)
    assert got.shape == want.shape == (3, 1, 13, 17)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_inference_features_equal_the_official_normalize_tensor_and_leave_the_input_alone(net):
    import lpips

    network = get_network(net)
    x = torch.rand(2, 3, 80, 72, generator=torch.Generator().manual_seed(3)) * 2 - 1
    before = x.clone()
    with torch.no_grad():
        got = network.features(x)
        want = [lpips.normalize_tensor(t) for t in network.taps(x)]
    assert torch.equal(x, before)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-6)


def test_features_that_need_a_gradient_keep_the_official_expression():
    import lpips

    network = get_network("alex")
    x = (torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4)) * 2 - 1).requires_grad_(True)
    got = network.features(x)
    want = [lpips.normalize_tensor(t) for t in network.taps(x)]
    assert all(torch.equal(g, w) for g, w in zip(got, want))
    sum(f.sum() for f in got).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
