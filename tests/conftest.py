"""Shared fixtures: the official example images, the official lpips package, test images."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lpips_examples"


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    if not (SHARED_EXAMPLES / "expected.json").is_file():
        pytest.skip(f"official example images not found at {SHARED_EXAMPLES} (only in the team's checkout)")
    return SHARED_EXAMPLES


@pytest.fixture(scope="session")
def expected(examples_dir) -> dict:
    return json.loads((examples_dir / "expected.json").read_text())


def load_png(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as img:
        arr = np.array(img.convert("RGB"))
    return torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255


def natural_pair(height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A crop of a natural photo and a noisy, slightly blurred copy, both in [0, 1]."""
    from skimage import data

    img = torch.from_numpy(data.astronaut()[:height * 2:2, 40:40 + width * 2:2].copy()).permute(2, 0, 1)[None].float() / 255
    gen = torch.Generator().manual_seed(seed)
    noisy = (img + 0.08 * torch.randn(img.shape, generator=gen)).clamp(0, 1)
    blurred = torch.nn.functional.avg_pool2d(noisy, 3, stride=1, padding=1, count_include_pad=False)
    return img, blurred


def official_model(net: str, version: str, lpips: bool, spatial: bool, backbone_state: dict):
    """The official lpips.LPIPS with the given backbone weights loaded (strictly) into its trunk."""
    official = pytest.importorskip("lpips")
    model = official.LPIPS(net=net, version=version, lpips=lpips, spatial=spatial, pnet_rand=True, verbose=False)
    trunk_state = {re.sub(r"^slice\d+\.", "features.", k): k for k in model.net.state_dict()}
    model.net.load_state_dict({trunk_state[k]: v for k, v in backbone_state.items() if k in trunk_state}, strict=True)
    return model.eval()


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid 1×1 PNG whose IHDR is patched to claim width × height (CRC recomputed)."""
    import io
    import struct
    import zlib

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    if data[12:16] != b"IHDR":
        raise AssertionError("unexpected PNG layout")
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def wilson_by_formula(s: float, n: int) -> tuple[float, float]:
    """The Wilson score interval (95 %) written out from its formula: the reference for the quiz
    statistics (teach.quiz.wilson_interval, the store's summaries)."""
    import math

    z = 1.959963984540054
    p = s / n
    center = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return center - half, center + half


# ---------------------------------------------------------------------------------------------
# A throwaway PostgreSQL server (tests/pg_server.py), for the quiz store's PostgreSQL backend.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server on a free loopback port for the whole run, stopped and deleted at the end
    (also when tests fail). Missing PostgreSQL fails the tests (run `make postgres`), unless
    LPIPS_EXPLORER_SKIP_POSTGRES=1 is set: then they are skipped."""
    import os

    from pg_server import SKIP_VARIABLE, PostgresNotFound, PostgresServer

    if os.environ.get(SKIP_VARIABLE) == "1":
        pytest.skip(f"{SKIP_VARIABLE}=1: the PostgreSQL tests are skipped")
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"psycopg is not installed ({exc}): run `make setup-test` (pip install -r requirements.txt)",
                    pytrace=False)
    try:
        server = PostgresServer()
    except PostgresNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a fresh, empty database on :func:`postgres_server`, dropped after the test."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)
