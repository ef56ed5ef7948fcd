"""The BAPPS layout: written, read back identically, and every kind of damage refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.judgments import bapps
from core.judgments.bapps import BappsError


def _triplets(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    patches = [rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8) for _ in range(3)]
    judge = rng.integers(0, 6, n) / 5.0
    return (*patches, judge)


@pytest.fixture
def twoafc(tmp_path) -> tuple[Path, tuple]:
    data = _triplets(5)
    folder = bapps.write_2afc(tmp_path / "2afc" / "val" / "demo", *data)
    return folder, data


def test_round_trip_gives_the_same_triplets_and_judgments(twoafc):
    folder, (ref, p0, p1, judge) = twoafc
    data = bapps.read_2afc(folder)
    assert len(data) == 5 and data.names == tuple(f"{i:06d}" for i in range(5))
    np.testing.assert_array_equal(data.judge, judge)
    back = data.images()
    for tensor, original in zip(back, (ref, p0, p1)):
        assert tensor.dtype == torch.float32 and tensor.shape == (5, 3, 64, 64)
        np.testing.assert_array_equal((tensor * 255).round().byte().permute(0, 2, 3, 1).numpy(), original)
    part = data.subset([3, 1])
    assert part.names == ("000003", "000001") and part.judge.tolist() == [judge[3], judge[1]]


def test_files_follow_the_official_naming_and_shape(twoafc):
    folder, (_, _, _, judge) = twoafc
    assert sorted(p.name for p in (folder / "ref").iterdir())[:2] == ["000000.png", "000001.png"]
    saved = np.load(folder / "judge" / "000002.npy")
    assert saved.shape == (1,) and saved.dtype == np.float64 and saved[0] == judge[2]
    # What the official TwoAFCDataset does with it:
    assert float(torch.FloatTensor(saved.reshape((1, 1, 1)))) == pytest.approx(judge[2])


def test_writing_in_chunks_continues_the_numbering(tmp_path):
    first, second = _triplets(2, 0), _triplets(3, 1)
    folder = tmp_path / "set"
    bapps.write_2afc(folder, *first)
    bapps.write_2afc(folder, *second, start=2)
    data = bapps.read_2afc(folder)
    np.testing.assert_array_equal(data.judge, np.concatenate([first[3], second[3]]))


def test_jnd_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    p0, p1 = (rng.integers(0, 256, (4, 64, 64, 3), dtype=np.uint8) for _ in range(2))
    same = np.array([0.0, 1 / 3, 2 / 3, 1.0])
    data = bapps.read_jnd(bapps.write_jnd(tmp_path / "jnd" / "val" / "demo", p0, p1, same))
    np.testing.assert_array_equal(data.same, same)
    a, b = data.images(1, 3)
    np.testing.assert_array_equal((b * 255).round().byte().permute(0, 2, 3, 1).numpy(), p1[1:3])
    assert bapps.list_sets(tmp_path, "jnd") == {"val/demo": tmp_path / "jnd" / "val" / "demo"}


def test_list_sets_finds_every_split_and_set(tmp_path):
    for split, name in (("train", "a"), ("val", "b"), ("val", "c")):
        bapps.write_2afc(tmp_path / "2afc" / split / name, *_triplets(1))
    assert list(bapps.list_sets(tmp_path)) == ["train/a", "val/b", "val/c"]
    assert list(bapps.list_sets(tmp_path, split="val")) == ["val/b", "val/c"]


def test_a_folder_that_is_not_bapps_is_refused(tmp_path, twoafc):
    folder, _ = twoafc
    with pytest.raises(BappsError, match="is not a BAPPS 2AFC set.*give one of those"):
        bapps.read_2afc(folder.parent.parent)  # the split folder, not a set
    with pytest.raises(BappsError, match="is not a folder"):
        bapps.read_2afc(tmp_path / "nowhere")
    with pytest.raises(BappsError, match="has no 2afc/ folder"):
        bapps.list_sets(folder)


def test_a_missing_folder_or_judgment_is_named(twoafc):
    folder, _ = twoafc
    (folder / "judge" / "000003.npy").unlink()
    with pytest.raises(BappsError, match=r"judge/000003\.npy is missing") as err:
        bapps.read_2afc(folder)
    assert "different numbers of files" in str(err.value)
    for f in (folder / "judge").iterdir():
        f.unlink()
    (folder / "judge").rmdir()
    with pytest.raises(BappsError, match=r"lacks judge/"):
        bapps.read_2afc(folder)


def test_renamed_files_are_reported_even_when_counts_match(twoafc):
    folder, _ = twoafc
    (folder / "p1" / "000004.png").rename(folder / "p1" / "000009.png")
    with pytest.raises(BappsError, match=r"p1/000004\.png is missing \(ref/ has '000004'\)"):
        bapps.read_2afc(folder)


@pytest.mark.parametrize("content, message", [
    (np.array([1.5]), r"holds 1\.5, but the share of people who chose p1 is a fraction"),
    (np.array([np.nan]), r"holds nan"),
    (np.array([0.2, 0.3]), r"shape \(2,\)"),
    (b"not numpy", r"could not be read as a NumPy \.npy file"),
])
def test_bad_judgments_are_named(twoafc, content, message):
    folder, _ = twoafc
    target = folder / "judge" / "000001.npy"
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        np.save(target, content)
    with pytest.raises(BappsError, match=message) as err:
        bapps.read_2afc(folder)
    assert err.value.path == target


def test_an_unreadable_image_is_named_when_read(twoafc):
    folder, _ = twoafc
    broken = folder / "p0" / "000002.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    data = bapps.read_2afc(folder)
    with pytest.raises(BappsError, match=r"000002\.png could not be read as an image") as err:
        data.images()
    assert err.value.path == broken


@pytest.mark.parametrize("kwargs, message", [
    ({"judge": [0.1, 0.2, 0.3, 0.4, 1.2]}, r"value 4 is 1\.2"),
    ({"judge": [0.1]}, "has 1 values for 5 patches"),
    ({"ref": np.zeros((5, 64, 64, 3), np.float32)}, "must be uint8 patches"),
    ({"p1": np.zeros((5, 32, 32, 3), np.uint8)}, "must have the same shape"),
])
def test_the_writer_refuses_bad_input(tmp_path, kwargs, message):
    ref, p0, p1, judge = _triplets(5)
    args = {"ref": ref, "p0": p0, "p1": p1, "judge": judge, **kwargs}
    with pytest.raises(BappsError, match=message):
        bapps.write_2afc(tmp_path / "x", args["ref"], args["p0"], args["p1"], args["judge"])


def test_the_synthetic_generator_writes_valid_sets_that_repeat_with_a_seed(tmp_path):
    from bench import bapps_synth
    from core.judgments.scores import human_ceiling_2afc

    record = bapps_synth.generate(tmp_path / "a", triplets=40, heldout=10, jnd=8, seed=4)
    again = bapps_synth.generate(tmp_path / "b", triplets=40, heldout=10, jnd=8, seed=4)
    train = bapps.read_2afc(tmp_path / "a" / "2afc" / "train" / "synth")
    held = bapps.read_2afc(tmp_path / "a" / "2afc" / "val" / "synth")
    jnd = bapps.read_jnd(tmp_path / "a" / "jnd" / "val" / "synth")
    assert (len(train), len(held), len(jnd)) == (40, 10, 8)
    np.testing.assert_array_equal(train.judge, bapps.read_2afc(tmp_path / "b" / "2afc" / "train" / "synth").judge)
    assert record["train"] == again["train"]
    assert np.all(np.isin(train.judge * 5, np.arange(6)))  # 5 people: fractions k/5
    assert 0.5 < human_ceiling_2afc(train.judge) < 1.0
    assert {r["photo"] for r in record["train"]}.isdisjoint({r["photo"] for r in record["val"]})
    assert {r["p0"]["name"] for r in record["train"]} <= set(bapps_synth.distortions.REGISTRY)
    ref, p0, _ = train.images(0, 4)
    assert ref.shape == (4, 3, 64, 64) and not torch.equal(ref, p0)


def test_grayscale_and_palette_patches_are_read_as_rgb(tmp_path):
    from PIL import Image

    folder = bapps.write_2afc(tmp_path / "s", *_triplets(2))
    gray = np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)
    Image.fromarray(gray, "L").save(folder / "p0" / "000001.png")
    _, p0, _ = bapps.read_2afc(folder).images()
    expected = torch.from_numpy(gray).float() / 255
    for channel in range(3):
        torch.testing.assert_close(p0[1, channel], expected)
