"""core.regions: a box's share of LPIPS by layer and by channel, against brute force.

The brute force never uses core's overlap arithmetic: it cuts every pixel into ``h×w`` equal
sub-pixels (then every cell boundary of an ``h×w`` map falls on a sub-pixel boundary), gives each
sub-pixel the value of the cell its centre lies in, and sums the sub-pixels inside the box.
Per-channel terms come from the official ``lpips`` package's own network and heads.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from classic_reference import matlab_gray, sk_ssim_valid
from conftest import natural_pair, official_model
from core.lpips import weights
from core.errors import InvalidArgumentError
from core.lpips.engine import Engine
from core.regions import (Box, box_around, box_fractions, channel_contributions, patch_scores,
                          region_contributions)


def brute_share(layer_map: np.ndarray, image_size: tuple[int, int], box: Box) -> float:
    """Σ over sub-pixels inside ``box`` of the map value of the cell under them, × sub-pixel area / image area
    (exact for boxes with whole-pixel corners)."""
    (h, w), (height, width) = layer_map.shape, image_size
    ys = (np.arange(height * h) + 0.5) / h  # sub-pixel centres, in image pixels
    xs = (np.arange(width * w) + 0.5) / w
    rows = np.floor(ys * h / height).astype(int)
    cols = np.floor(xs * w / width).astype(int)
    inside_y = (ys >= box.y0) & (ys < box.y1)
    inside_x = (xs >= box.x0) & (xs < box.x1)
    values = layer_map[np.ix_(rows[inside_y], cols[inside_x])]
    return float(values.sum() * (1 / (h * w)) / (height * width))


# AlexNet-like: each layer coarser than the last, none dividing the image size evenly.
IMAGE = (37, 53)
SHAPES = [(9, 13), (4, 6), (2, 3), (5, 7)]


def random_maps(seed: int = 0) -> list[np.ndarray]:
    gen = np.random.default_rng(seed)
    return [gen.random(shape) for shape in SHAPES]


@pytest.mark.parametrize("box", [Box(0, 0, 53, 37), Box(3, 5, 20, 31), Box(40, 0, 53, 2), Box(17, 11, 18, 12)])
def test_layer_shares_match_brute_force(box):
    maps = random_maps()
    region = region_contributions(maps, IMAGE, box)
    for got, layer_map in zip(region.layer_shares, maps):
        assert got == pytest.approx(brute_share(layer_map, IMAGE, box), rel=1e-12, abs=1e-15)
    assert region.share == pytest.approx(sum(brute_share(m, IMAGE, box) for m in maps), rel=1e-12)
    area = box.area / (IMAGE[0] * IMAGE[1])
    assert region.lpips == pytest.approx(region.share / area, rel=1e-12)
    assert region.fraction_of_area == pytest.approx(area)


def test_boxes_that_tile_the_image_add_up_to_each_layer_mean():
    maps = random_maps(1)
    xs, ys = [0, 7.25, 30.5, 53], [0, 12.75, 37]  # fractional cuts: cells split between boxes
    totals = np.zeros(len(maps))
    for x0, x1 in zip(xs, xs[1:]):
        for y0, y1 in zip(ys, ys[1:]):
            totals += region_contributions(maps, IMAGE, Box(x0, y0, x1, y1)).layer_shares
    np.testing.assert_allclose(totals, [m.mean() for m in maps], rtol=1e-12)


def test_whole_image_box_gives_the_engines_layer_values():
    ref, dist = natural_pair(64, 96)
    result = Engine("alex", device="cpu").compare(ref, dist, spatial=False)
    region = region_contributions(result, (64, 96), Box(0, 0, 96, 64))
    np.testing.assert_allclose(region.layer_shares, result.layer_values[0].numpy(), rtol=1e-6)
    assert region.lpips == pytest.approx(float(result.value[0]), rel=1e-6)
    assert region.layer_names == result.layer_names


def test_box_fractions_example_and_box_around_stays_inside():
    np.testing.assert_allclose(box_fractions((2, 2), (4, 4), Box(1, 1, 3, 3)), [[0.25, 0.25], [0.25, 0.25]])
    assert box_around(100, 100, 32, (64, 80)) == Box(48, 32, 80, 64)
    assert box_around(5, 5, 100, (64, 80)) == Box(0, 0, 80, 64)


@pytest.mark.parametrize("box", [Box(0, 0, 0, 10), Box(-1, 0, 5, 5), Box(0, 0, 54, 10), Box(5, 5, 3, 8),
                                 Box(0, 0, math.nan, 4)])
def test_bad_boxes_are_refused_with_the_rule(box):
    with pytest.raises(InvalidArgumentError, match="inside the 53×37 image|finite"):
        region_contributions(random_maps(), IMAGE, box)


# ---------------------------------------------------------------------------------------------
# Channels, against the official package.
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def official_alex():
    return official_model("alex", "0.1", True, False, weights.load_backbone("alex"))


def official_channel_terms(official, ref: torch.Tensor, dist: torch.Tensor, layer: int) -> np.ndarray:
    """C×h×w: head weight × squared difference of the normalized features, from the official code."""
    import lpips

    with torch.no_grad():
        outs0 = official.net.forward(official.scaling_layer(ref * 2 - 1))
        outs1 = official.net.forward(official.scaling_layer(dist * 2 - 1))
        diff = (lpips.normalize_tensor(outs0[layer]) - lpips.normalize_tensor(outs1[layer])) ** 2
        head = official.lins[layer].model[-1].weight.detach().view(1, -1, 1, 1)
        return (diff * head)[0].double().numpy()


@pytest.mark.parametrize("layer", [0, 3])
@pytest.mark.parametrize("box", [None, Box(10, 4, 70, 41)])  # whole pixels: exact for the brute force
def test_channels_match_the_official_terms_and_add_up_to_the_layer(official_alex, layer, box):
    ref, dist = natural_pair(64, 96)
    engine = Engine("alex", device="cpu")
    ch = channel_contributions(engine, engine.reference(ref), dist, layer, box=box, top_k=8)
    terms = official_channel_terms(official_alex, ref, dist, layer)
    size = (64, 96)
    whole = Box(0, 0, 96, 64)
    expected = np.array([brute_share(t, size, box or whole) for t in terms])
    np.testing.assert_allclose(ch.values, expected, rtol=1e-4, atol=1e-9)
    # The channels add up to the layer's contribution over the same area, from the engine's maps.
    result = engine.compare(ref, dist, spatial=False)
    layer_share = region_contributions(result, size, box or whole).layer_shares[layer]
    assert ch.values.sum() == pytest.approx(layer_share, rel=1e-5)
    assert ch.layer_value == pytest.approx(layer_share, rel=1e-5)
    # The top 8 are the 8 largest, largest first, with their shares and maps.
    assert list(ch.top) == list(np.argsort(-expected)[:8])
    np.testing.assert_allclose(ch.top_shares, expected[list(ch.top)] / expected.sum(), rtol=1e-4)
    assert ch.top_maps.shape == (8, *terms.shape[1:])
    np.testing.assert_allclose(ch.top_maps, terms[list(ch.top)], rtol=1e-4, atol=1e-9)
    assert ch.layer_name == engine.network.layer_names[layer]


def test_channels_of_the_baseline_are_unweighted():
    ref, dist = natural_pair(64, 64)
    engine = Engine("alex", lpips=False, device="cpu")
    ch = channel_contributions(engine, engine.reference(ref), dist, "relu1")
    assert ch.values.sum() == pytest.approx(float(engine.compare(ref, dist).layer_values[0, 0]), rel=1e-5)


def test_channel_arguments_are_checked():
    ref, dist = natural_pair(64, 64)
    engine = Engine("alex", device="cpu")
    prepared = engine.reference(ref)
    with pytest.raises(InvalidArgumentError, match="Unknown layer 'conv9'"):
        channel_contributions(engine, prepared, dist, "conv9")
    with pytest.raises(InvalidArgumentError, match="index 0–4"):
        channel_contributions(engine, prepared, dist, 7)
    with pytest.raises(InvalidArgumentError, match="top_k"):
        channel_contributions(engine, prepared, dist, 0, top_k=0)
    with pytest.raises(InvalidArgumentError, match="same size"):
        channel_contributions(engine, prepared, dist[..., :48], 0)


# ---------------------------------------------------------------------------------------------
# A patch's own PSNR and SSIM.
# ---------------------------------------------------------------------------------------------

def test_patch_psnr_and_ssim_match_independent_references():
    ref, dist = natural_pair(64, 96)
    ref_px = (ref[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    dist_px = (dist[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    ref_q, dist_q = (torch.from_numpy(p).permute(2, 0, 1)[None].float() / 255 for p in (ref_px, dist_px))
    box = Box(20.5, 8, 60, 40)  # touches pixels 20..59 × 8..39
    scores = patch_scores(ref_q, dist_q, box)
    a, b = ref_px[8:40, 20:60], dist_px[8:40, 20:60]
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    assert scores["psnr"] == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-4)
    want_ssim = sk_ssim_valid(matlab_gray(a), matlab_gray(b), rgb=False).mean()
    assert scores["ssim"] == pytest.approx(want_ssim, abs=1e-4)


def test_patch_too_small_for_ssim_gives_nan_not_an_error():
    ref, dist = natural_pair(64, 64)
    scores = patch_scores(ref, dist, Box(0, 0, 8, 8))
    assert math.isnan(scores["ssim"]) and scores["psnr"] > 0
