"""Tests for core.images.samples and the bundled gallery in core/images/gallery/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.errors import ImageLoadError
from core.images.imageio import load_image_info
from core.images.samples import SAMPLES_DIR, Sample, list_samples, load_sample

LICENSES = SAMPLES_DIR / "LICENSES.md"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def test_gallery_lists_nine_or_more_unique_samples() -> None:
    samples = list_samples()
    assert 9 <= len(samples) <= 12
    assert len({s.key for s in samples}) == len(samples)
    for sample in samples:
        assert isinstance(sample, Sample)
        assert sample.title.strip() and sample.description.strip() and sample.credit.strip()
        assert sample.path.parent == SAMPLES_DIR and sample.path.is_file()


def test_every_image_file_is_indexed_and_licensed() -> None:
    on_disk = {p.name for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    indexed = {s.path.name for s in list_samples()}
    assert on_disk == indexed
    licenses = LICENSES.read_text(encoding="utf-8")
    for name in indexed:
        assert f"`{name}`" in licenses, f"{name} has no row in core/images/gallery/LICENSES.md"


def test_samples_are_small_clean_rgb() -> None:
    total = 0
    for sample in list_samples():
        info = load_image_info(sample.path)
        assert info.original_mode == "RGB" and info.notes == (), sample.key
        assert max(info.width, info.height) <= 512
        assert info.tensor.shape == (1, 3, info.height, info.width)
        total += sample.path.stat().st_size
    assert total < 3 * 1024 * 1024


def test_load_sample() -> None:
    image = load_sample("gravel")
    assert image.shape == (1, 3, 512, 512) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0


def test_unknown_sample_lists_available_ones() -> None:
    with pytest.raises(ImageLoadError, match="available samples: .*gravel"):
        load_sample("no-such-sample")


def write_index(folder: Path, entries: object) -> None:
    (folder / "index.json").write_text(json.dumps(entries), encoding="utf-8")


def test_custom_folder_and_broken_indexes(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="missing"):
        list_samples(tmp_path)
    (tmp_path / "index.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ImageLoadError, match="cannot be read"):
        list_samples(tmp_path)
    write_index(tmp_path, [])
    with pytest.raises(ImageLoadError, match='"samples" list'):
        list_samples(tmp_path)
    entry = {"key": "a", "file": "../a.png", "title": "A", "description": "d"}
    write_index(tmp_path, {"samples": [entry]})
    with pytest.raises(ImageLoadError, match="plain file name"):
        list_samples(tmp_path)
    write_index(tmp_path, {"samples": [{"key": "a"}]})
    with pytest.raises(ImageLoadError, match="non-empty text fields"):
        list_samples(tmp_path)
    entry["file"] = "a.png"
    write_index(tmp_path, {"samples": [entry, entry]})
    with pytest.raises(ImageLoadError, match="more than once: a"):
        list_samples(tmp_path)
    write_index(tmp_path, {"samples": [entry]})
    (tmp_path / "a.png").write_bytes((SAMPLES_DIR / "cat.png").read_bytes())
    assert list_samples(tmp_path)[0].credit == ""
    assert load_sample("a", tmp_path).shape == (1, 3, 300, 451)
