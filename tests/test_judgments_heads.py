"""Fitted heads on disk: round trip, the official loader, and every refusal."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import natural_pair
from core.judgments import features, heads
from core.judgments.heads import HeadsError
from core.lpips import Engine


def _fitted() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return features.heads_from_vector(torch.rand(1152, generator=gen) * 0.3, "alex")


@pytest.fixture
def saved(tmp_path):
    return heads.save_heads(tmp_path / "fit.safetensors", _fitted(), net="alex", origin="scratch",
                            data="2afc/train/synth", heldout_2afc=0.71, extra={"seed": 3})


def test_round_trip_and_manifest(saved):
    loaded = heads.load_heads(saved, "alex")
    original = _fitted()
    assert list(loaded) == [f"lin{k}.model.1.weight" for k in range(5)]
    assert all(torch.equal(loaded[k], original[k]) for k in original)
    manifest = json.loads(heads.manifest_path(saved).read_text())
    import hashlib

    assert manifest["sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert (manifest["net"], manifest["from"], manifest["data"], manifest["heldout_2afc"], manifest["seed"]) == (
        "alex", "scratch", "2afc/train/synth", 0.71, 3)
    assert manifest["channels"] == [64, 192, 384, 256, 256] and manifest["version"] == "0.1"


def test_loaded_heads_drive_the_engine_and_the_official_lpips(saved, tmp_path):
    official = pytest.importorskip("lpips")
    from core.lpips import weights
    import re

    loaded = heads.load_heads(saved, "alex")
    engine = heads.engine_with_heads(loaded, "alex", device="cpu")
    ref, dist = natural_pair(64, 64, 0)
    ours = engine.distance(ref, dist)
    pth = heads.export_pth(loaded, tmp_path / "fit.pth", "alex")
    model = official.LPIPS(net="alex", model_path=str(pth), pnet_rand=True, verbose=False)
    names = {re.sub(r"^slice\d+\.", "features.", k): k for k in model.net.state_dict()}
    model.net.load_state_dict({names[k]: v for k, v in weights.load_backbone("alex").items()}, strict=True)
    with torch.no_grad():
        theirs = model(ref * 2 - 1, dist * 2 - 1).reshape(-1)
    assert (ours - theirs).abs().max() <= 1e-6
    # and the .pth reads back through load_heads (as an official file would)
    assert all(torch.equal(heads.load_heads(pth, "alex")[k], loaded[k]) for k in loaded)
    default = Engine("alex", device="cpu").distance(ref, dist)
    assert not torch.allclose(ours, default)  # the engine really uses the given heads


def test_the_official_package_files_and_checkpoints_load(tmp_path):
    from core.lpips import weights

    published = weights.load_linear_heads("alex", "0.1")
    path = weights.linear_head_file("alex", "0.1").path
    loaded = heads.load_heads(path, "alex")
    assert all(torch.equal(loaded[k], published[k]) for k in loaded)
    checkpoint = {"scaling_layer.shift": torch.zeros(1, 3, 1, 1), "net.slice1.0.weight": torch.zeros(64, 3, 11, 11),
                  **published}  # what Trainer.save writes as latest_net_.pth
    torch.save(checkpoint, tmp_path / "latest_net_.pth")
    assert set(heads.load_heads(tmp_path / "latest_net_.pth", "alex")) == set(published)


def test_a_truncated_file_is_refused(saved):
    heads.manifest_path(saved).unlink()
    saved.write_bytes(saved.read_bytes()[:200])
    with pytest.raises(HeadsError, match="damaged or truncated"):
        heads.load_heads(saved, "alex")


def test_a_changed_file_does_not_match_its_manifest(saved):
    data = bytearray(saved.read_bytes())
    data[-5] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(HeadsError, match="is not the file its manifest fit.safetensors.json describes"):
        heads.load_heads(saved, "alex")


def test_another_nets_heads_are_named(tmp_path, saved):
    vgg = heads.save_heads(tmp_path / "vgg.safetensors", features.uniform_heads("vgg"), net="vgg", origin="uniform",
                           data="-")
    with pytest.raises(HeadsError, match="holds heads for vgg .*not alex"):
        heads.load_heads(vgg, "alex")
    heads.manifest_path(vgg).unlink()  # without the manifest, the shapes tell
    with pytest.raises(HeadsError, match=r"holds heads for vgg \(5 layers of \(64, 128, 256, 512, 512\)"):
        heads.load_heads(vgg, "alex")
    heads.manifest_path(saved).unlink()
    with pytest.raises(HeadsError, match=r"squeeze \(7 layers"):
        heads.load_heads(saved, "squeeze")


def _raw(tmp_path, change) -> object:
    from safetensors.torch import save_file

    state = _fitted()
    change(state)
    path = tmp_path / "raw.safetensors"
    save_file(state, str(path))
    return path


def test_negative_weights_are_refused(tmp_path):
    path = _raw(tmp_path, lambda s: s["lin2.model.1.weight"].view(-1)[17].fill_(-0.03))
    with pytest.raises(HeadsError, match=r"lin2.model.1.weight` has 1 negative weights \(e.g. channel 17: -0.03\)"):
        heads.load_heads(path, "alex")
    with pytest.raises(HeadsError, match="negative"):
        heads.save_heads(tmp_path / "x.safetensors", {**_fitted(), "lin0.model.1.weight": -torch.ones(1, 64, 1, 1)},
                         net="alex", origin="-", data="-")


def test_nan_weights_are_refused(tmp_path):
    path = _raw(tmp_path, lambda s: s["lin4.model.1.weight"].view(-1)[0].fill_(float("nan")))
    with pytest.raises(HeadsError, match="NaN or infinite"):
        heads.load_heads(path, "alex")


def test_unexpected_entries_and_missing_files(tmp_path):
    path = _raw(tmp_path, lambda s: s.update(extra=torch.zeros(1)))
    with pytest.raises(HeadsError, match="unexpected entry `extra`"):
        heads.load_heads(path, "alex")
    with pytest.raises(HeadsError, match="does not exist"):
        heads.load_heads(tmp_path / "none.safetensors", "alex")
    with pytest.raises(HeadsError, match="could not be read as a PyTorch state dict"):
        (tmp_path / "bad.pth").write_bytes(b"garbage")
        heads.load_heads(tmp_path / "bad.pth", "alex")
