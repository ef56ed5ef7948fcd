"""φ: with the published heads, w · φ is LPIPS, checked against the Engine and the official package."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import natural_pair, official_model
from core.errors import InputRangeError, InputShapeError, InvalidArgumentError, WeightsCorruptError
from core.judgments import bapps, features
from core.lpips import Engine


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine("alex", "0.1", device="cpu")


def _patches(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Natural 64×64 crops with noise/blur of varying strength: distances spread like real data."""
    ref, _ = natural_pair(128, 128, seed)
    gen = torch.Generator().manual_seed(seed)
    crops = torch.stack([ref[0, :, y:y + 64, x:x + 64] for y, x in torch.randint(0, 64, (n, 2), generator=gen)])
    levels = torch.rand(2, n, 1, 1, 1, generator=gen) * 0.2
    p0 = (crops + levels[0] * torch.randn(crops.shape, generator=gen)).clamp(0, 1)
    p1 = torch.nn.functional.avg_pool2d(crops, 3, 1, 1, count_include_pad=False).lerp(crops, levels[1] * 4).clamp(0, 1)
    return crops, p0, p1


def test_alex_phi_has_1152_numbers_in_layer_order(engine):
    ref, p0, p1 = _patches(3, 0)
    phi0, phi1 = features.triplet_features(engine, ref, p0, p1)
    assert phi0.shape == phi1.shape == (3, 1152) and phi0.dtype == torch.float32
    assert (phi0 >= 0).all()
    per_layer = engine.compare(ref, p0, spatial=False).layer_values  # with the heads
    heads = features.heads_vector(features.heads_from_vector(torch.ones(1152), "alex"), "alex")
    assert heads.shape == (1152,)
    split = torch.split(phi0, list(features.CHANNELS["alex"]), dim=1)
    w = torch.split(features.heads_vector(engine_heads(engine), "alex"), list(features.CHANNELS["alex"]))
    for k in range(5):
        torch.testing.assert_close((split[k].double() @ w[k].double()).float(), per_layer[:, k], atol=1e-6, rtol=0)


def engine_heads(engine: Engine) -> dict[str, torch.Tensor]:
    return {features.head_key(k): w.detach() for k, w in enumerate(engine.network.head_weights)}


def test_w_dot_phi_is_the_engine_distance(engine):
    ref, p0, p1 = _patches(20, 1)
    phi0, phi1 = features.triplet_features(engine, ref, p0, p1, chunk=7)  # chunks must not matter
    w = features.heads_vector(engine_heads(engine), "alex")
    for phi, dist in ((phi0, p0), (phi1, p1)):
        expected = engine.distance(ref, dist).double()
        assert expected.max() > 0.05  # real distances, not all near zero
        assert (features.distances(phi, w) - expected).abs().max() <= 1e-6


def test_w_dot_phi_is_the_official_lpips_distance(engine):
    from core.lpips import weights

    official = official_model("alex", "0.1", True, False, weights.load_backbone("alex"))
    ref, p0, p1 = _patches(8, 2)
    phi0, phi1 = features.triplet_features(engine, ref, p0, p1)
    official_heads = {k: v for k, v in official.state_dict().items() if k.startswith("lin")}
    w = features.heads_vector(official_heads, "alex")
    with torch.no_grad():
        for phi, dist in ((phi0, p0), (phi1, p1)):
            expected = official(ref * 2 - 1, dist * 2 - 1).reshape(-1).double()
            assert (features.distances(phi, w) - expected).abs().max() <= 1e-6
    # Uniform heads are the official uncalibrated baseline (lpips=False).
    baseline = official_model("alex", "0.1", False, False, weights.load_backbone("alex"))
    with torch.no_grad():
        expected = baseline(ref * 2 - 1, p0 * 2 - 1).reshape(-1).double()
    ones = features.heads_vector(features.uniform_heads("alex"), "alex")
    assert (features.distances(phi0, ones) - expected).abs().max() <= 1e-5 * max(1.0, float(expected.max()))


def test_pairs_and_sets_from_disk_give_the_same_phi(engine, tmp_path):
    ref, p0, p1 = _patches(5, 3)
    as_uint8 = [(t * 255).round().byte().permute(0, 2, 3, 1).numpy() for t in (ref, p0, p1)]
    folder = bapps.write_2afc(tmp_path / "s", *as_uint8, np.full(5, 0.5))
    data = bapps.read_2afc(folder)
    seen = []
    phi0, phi1 = features.set_features(engine, data, chunk=2, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 5), (4, 5), (5, 5)]
    r, a, b = data.images()
    torch.testing.assert_close(phi1, features.pair_features(engine, r, b), atol=1e-7, rtol=1e-5)
    jnd = bapps.read_jnd(bapps.write_jnd(tmp_path / "j", as_uint8[0], as_uint8[1], np.full(5, 0.5)))
    torch.testing.assert_close(features.jnd_features(engine, jnd, chunk=3), phi0, atol=1e-7, rtol=1e-5)


def test_heads_vector_round_trip_and_refusals():
    w = torch.rand(1152)
    heads = features.heads_from_vector(w, "alex")
    assert heads["lin2.model.1.weight"].shape == (1, 384, 1, 1)
    torch.testing.assert_close(features.heads_vector(heads, "alex"), w)
    with pytest.raises(WeightsCorruptError, match="lin4.model.1.weight"):
        features.heads_vector({k: v for k, v in heads.items() if k != "lin4.model.1.weight"}, "alex")
    with pytest.raises(InvalidArgumentError, match="1152 weights, got 3"):
        features.heads_from_vector(torch.ones(3), "alex")
    with pytest.raises(InvalidArgumentError, match="must be one of"):
        features.feature_size("resnet")


def test_bad_patches_are_refused(engine):
    ok = torch.rand(2, 3, 64, 64)
    with pytest.raises(InputRangeError, match=r"must be in \[0, 1\]"):
        features.triplet_features(engine, ok * 255, ok, ok)
    with pytest.raises(InputShapeError, match="same shape"):
        features.triplet_features(engine, ok, ok[:1], ok)
    with pytest.raises(InputShapeError, match="N×3×H×W"):
        features.pair_features(engine, ok[0], ok[0])
    with pytest.raises(InvalidArgumentError, match="`chunk`"):
        features.pair_features(engine, ok, ok, chunk=0)
