"""Heads as one download (core.lpips.heads.pack_heads / unpack_heads): the zip of a heads file and its
manifest, unpacked where the app keeps uploads, with hostile bundles refused before anything is parsed."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch

from core.judgments.features import heads_from_vector
from core.lpips.heads import MAX_HEADS_BYTES, HeadsError, load_heads, manifest_path, pack_heads, save_heads, unpack_heads


@pytest.fixture()
def saved(tmp_path):
    w = torch.rand(1152, generator=torch.Generator().manual_seed(1))
    return save_heads(tmp_path / "src" / "fit.safetensors", heads_from_vector(w, "alex"), net="alex", origin="v0.1",
                      data="test")


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def test_round_trip_keeps_the_manifest_check(saved, tmp_path):
    path = unpack_heads(pack_heads(saved), "class.zip", tmp_path / "up")
    assert path == tmp_path / "up" / "fit.safetensors" and manifest_path(path).read_bytes() == manifest_path(saved).read_bytes()
    loaded, original = load_heads(path, "alex"), load_heads(saved, "alex")
    assert all(torch.equal(loaded[k], original[k]) for k in original)
    # The manifest travelled with it, so a changed file is still caught.
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(HeadsError, match="not the file its manifest"):
        load_heads(path, "alex")


def test_plain_files_and_names(saved, tmp_path):
    folder = tmp_path / "up"
    first = unpack_heads(pack_heads(saved), "a.zip", folder)
    # A plain .safetensors with the same name replaces it, and the earlier manifest goes.
    again = unpack_heads(saved.read_bytes(), "../../fit.safetensors", folder)
    assert again == first and again.parent == folder and not manifest_path(again).exists()
    assert unpack_heads(saved.read_bytes(), "x/<b>.SAFETENSORS", folder).name == "b.safetensors"
    with pytest.raises(HeadsError, match="ends in .safetensors or .pth"):
        unpack_heads(b"x", "heads.txt", folder)


def test_hostile_bundles_are_refused(saved, tmp_path):
    folder = tmp_path / "up"
    data = saved.read_bytes()
    with pytest.raises(HeadsError, match="not a readable zip"):
        unpack_heads(b"PK\x03\x04 broken", "a.zip", folder)
    with pytest.raises(HeadsError, match="one heads file"):
        unpack_heads(_zip({"a.safetensors": data, "b.safetensors": data}), "a.zip", folder)
    with pytest.raises(HeadsError, match="one heads file"):
        unpack_heads(_zip({"a.safetensors": data, "run.sh": b"echo"}), "a.zip", folder)
    bomb = _zip({"a.safetensors": bytes(MAX_HEADS_BYTES + 1)})  # compresses to about 1 kB
    assert len(bomb) < 10_000
    with pytest.raises(HeadsError, match="unpacks to"):
        unpack_heads(bomb, "a.zip", folder)
    with pytest.raises(HeadsError, match="a heads file is a few kB"):
        unpack_heads(bytes(MAX_HEADS_BYTES + 1), "big.pth", folder)
    assert not folder.exists() or not any(folder.iterdir())  # nothing was written for any of them
