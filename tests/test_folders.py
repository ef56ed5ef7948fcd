"""core.folders.scoring: allpairs from per-image states and dirs in batches give the values of today's
per-pair path, ``core.compare`` (itself checked against the official lpips package and
scikit-image in test_cli.py / test_metrics_*.py), for every tile layout and size group.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cli
from core.folders import scoring as folders
from core import metrics
from core.comparison import compare
from core.lpips.engine import Engine

SIDE = 176  # MS-SSIM's minimum: its five scales are exercised


def _image(seed: int, height: int = SIDE, width: int = SIDE) -> np.ndarray:
    from skimage import data

    photo = data.astronaut()
    top, left = (seed * 41) % (512 - 2 * height), (seed * 67) % (512 - 2 * width)
    crop = photo[top:top + 2 * height:2, left:left + 2 * width:2].astype(np.float64)
    noise = np.random.default_rng(seed).normal(0, 4 + 2 * seed, crop.shape)
    return np.clip(np.round(crop + noise), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> Path:
    """Five 176² images, two 64² ones (a second size group, too small for MS-SSIM), a damaged file."""
    folder = tmp_path_factory.mktemp("gallery")
    for i in range(5):
        Image.fromarray(_image(i)).save(folder / f"a{i}.png")
    for i in range(2):
        Image.fromarray(_image(10 + i, 64, 64)).save(folder / f"b{i}.png")
    (folder / "c_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    return folder


def _load(path: str) -> torch.Tensor:
    from core.images.imageio import load_image

    return load_image(path)


def _reference_row(engine, ref: str, dist: str, keys, ssim_mode: str = "reference") -> dict:
    """Today's path: one core.compare call per pair, float64 classic metrics."""
    result = compare(engine, _load(ref), _load(dist), metrics=keys, ssim_mode=ssim_mode, spatial=False, precise=True)
    return folders.comparison_row(ref, dist, result, 0)


def _allpairs(spec, files, block_size=None):
    folders.clear_state_cache()
    scanned = folders.scan_files(spec, files, warm=True)
    plan = folders.plan_allpairs(spec, files, scanned, block_size=block_size)
    return plan, list(folders.allpairs_rows(spec, plan))


def _assert_close(row: dict, want: dict, tolerance: dict[str, float]) -> None:
    for key, expected in want.items():
        if key in ("ref", "dist", "status", "error", "net", "version", "calibrated", "ssim_mode"):
            assert row[key] == expected, key
            continue
        got = row[key]
        if isinstance(expected, float) and math.isnan(expected):
            assert math.isnan(got), key
        elif isinstance(expected, float) and math.isinf(expected):
            assert got == expected, key
        else:
            assert got == pytest.approx(expected, abs=tolerance.get(key, 1e-6)), key


@pytest.mark.parametrize("block_size", [2, None], ids=["tiles-of-2", "one-tile"])
def test_allpairs_equals_compare_for_every_pair(gallery, block_size):
    files = [str(p) for p in folders.images_in(gallery)]
    keys = metrics.resolve("lpips,psnr,ssim,ms_ssim")
    spec = folders.ScoringSpec(metrics=keys, device="cpu", precision="float64", batch_size=3)
    plan, rows = _allpairs(spec, files, block_size)
    if block_size == 2:
        assert any(not t.diagonal for t in plan.tiles) and len(plan.tiles) > 3
    engine = Engine("alex", device="cpu")
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 10 + 1  # 5 images of one size, 2 of another
    assert len({(r["ref"], r["dist"]) for r in rows}) == len(rows)  # every pair once
    for row in ok:
        assert files.index(row["ref"]) < files.index(row["dist"])
        _assert_close(row, _reference_row(engine, row["ref"], row["dist"], keys), {})
    small = next(r for r in ok if Path(r["ref"]).name == "b0.png")
    assert math.isnan(small["ms_ssim"])  # below 176 px, as compare() reports it
    mismatched = [r for r in rows if "sizes differ" in r.get("error", "")]
    assert len(mismatched) == 5 * 2 and "176×176 vs 64×64" in mismatched[0]["error"]
    broken = [r for r in rows if "c_broken.png" in r["ref"]]
    assert len(broken) == 1 and broken[0]["dist"] == "" and "c_broken.png" in broken[0]["error"]
    assert rows[-1] is broken[0] or rows[-1] == broken[0]  # order: tiles, sizes that differ, unreadable files


def test_allpairs_float32_stays_within_its_documented_bound(gallery):
    files = [str(p) for p in folders.images_in(gallery)][:5]
    keys = metrics.resolve("lpips,psnr,ssim,ms_ssim")
    spec = folders.ScoringSpec(metrics=keys, device="cpu", precision="float32")
    _, rows = _allpairs(spec, files)
    engine = Engine("alex", device="cpu")
    for row in rows:
        # LPIPS and PSNR do not depend on the precision; SSIM/MS-SSIM within 2e-6 (written with 5 decimals).
        _assert_close(row, _reference_row(engine, row["ref"], row["dist"], keys), {"ssim": 2e-6, "ms_ssim": 2e-6})


@pytest.mark.parametrize("options", [
    dict(metrics=("lpips",), calibrated=False),
    dict(metrics=("lpips", "ssim"), version="0.0", ssim_mode="rgb"),
], ids=["lpips-alone-baseline", "v0.0-ssim-rgb"])
def test_allpairs_options_equal_compare(gallery, options):
    files = [str(p) for p in folders.images_in(gallery)][:4]
    spec = folders.ScoringSpec(device="cpu", precision="float64", **options)
    _, rows = _allpairs(spec, files, block_size=3)
    engine = Engine("alex", spec.version, spec.calibrated, "cpu")
    assert len(rows) == 6
    for row in rows:
        want = _reference_row(engine, row["ref"], row["dist"], spec.metrics, spec.ssim_mode)
        assert set(want) <= set(row)
        _assert_close(row, want, {})


def test_identical_images_score_exactly_like_compare(tmp_path):
    img = _image(3, 64, 64)
    for name in ("x.png", "y.png"):
        Image.fromarray(img).save(tmp_path / name)
    spec = folders.ScoringSpec(metrics=("lpips", "psnr", "ssim"), device="cpu", precision="float64")
    _, rows = _allpairs(spec, [str(tmp_path / "x.png"), str(tmp_path / "y.png")])
    (row,) = rows
    assert (row["lpips"], row["psnr"], row["ssim"]) == (0.0, math.inf, 1.0)


def test_a_metric_without_a_fast_path_goes_through_compare(gallery):
    """A metric registered later (any name the registry gets) reaches allpairs with no change here."""
    from core.metrics import MetricScore, MetricSpec
    from core.metrics._levels import quantize

    def prepare(ref, ctx):
        return quantize(ref, torch.float64)

    def score(prepared, dist, ctx):
        return MetricScore(values=(prepared - quantize(dist, torch.float64)).abs().amax(dim=(1, 2, 3)).float())

    toy = MetricSpec(key="max_abs", label="Max |Δ|", higher_is_better=False, prepare=prepare, score=score)
    files = [str(p) for p in folders.images_in(gallery)][:3]
    with metrics.registered(toy):
        spec = folders.ScoringSpec(metrics=metrics.resolve("lpips,max_abs"), device="cpu")
        _, rows = _allpairs(spec, files, block_size=2)
    assert len(rows) == 3
    for row in rows:
        a = np.asarray(Image.open(row["ref"]).convert("RGB"), dtype=np.int64)
        b = np.asarray(Image.open(row["dist"]).convert("RGB"), dtype=np.int64)
        assert row["max_abs"] == float(np.abs(a - b).max())
        assert row["lpips"] > 0


def test_a_size_too_small_for_lpips_gives_its_own_message(tmp_path):
    for i in range(3):
        Image.fromarray(_image(i, 20, 20)).save(tmp_path / f"t{i}.png")
    files = [str(p) for p in folders.images_in(tmp_path)]
    spec = folders.ScoringSpec(metrics=("lpips", "psnr"), device="cpu")
    _, rows = _allpairs(spec, files)
    assert len(rows) == 3 and all(r["status"] == "error" and "31×31" in r["error"] for r in rows)


def test_dirs_rows_equal_compare_in_pair_order(gallery, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    names = ["a0.png", "a1.png", "a2.png", "b0.png", "b1.png", "c_broken.png"]
    for k, name in enumerate(names[:-1]):
        arr = np.asarray(Image.open(gallery / name).convert("RGB"))
        Image.fromarray(np.clip(arr.astype(int) + 7 * (k + 1), 0, 255).astype(np.uint8)).save(other / name)
    (other / "c_broken.png").write_bytes(b"nope")
    pairs, missing = folders.dirs_pairs(gallery, other)
    assert [Path(a).name for a, _ in pairs] == names and [Path(r["ref"]).name for r in missing] == ["a3.png", "a4.png"]
    keys = metrics.names()
    spec = folders.ScoringSpec(metrics=keys, device="cpu", precision="float64", batch_size=2, decode_workers=3)
    rows = list(folders.score_dirs(spec, pairs))
    assert [(r["ref"], r["dist"]) for r in rows] == pairs
    engine = Engine("alex", device="cpu")
    for row in rows[:-1]:
        _assert_close(row, _reference_row(engine, row["ref"], row["dist"], keys), {})
    assert rows[-1]["status"] == "error" and "c_broken.png" in rows[-1]["error"]


def test_dirs_of_reference_copies_computes_the_reference_once(tmp_path, monkeypatch):
    """`lpips_2dirs.py`-style input: DIR0 holds copies of one reference under the names of DIR1's
    variants. Each batch's reference side is computed once, with the per-pair values."""
    ref_dir, dist_dir = tmp_path / "ref", tmp_path / "dist"
    ref_dir.mkdir(), dist_dir.mkdir()
    reference = _image(3)
    for k in range(5):
        Image.fromarray(reference).save(ref_dir / f"v{k}.png")
        Image.fromarray(_image(20 + k)).save(dist_dir / f"v{k}.png")
    seen = []
    real = Engine.reference
    monkeypatch.setattr(Engine, "reference", lambda self, ref: seen.append(ref.shape[0]) or real(self, ref))
    pairs, _ = folders.dirs_pairs(ref_dir, dist_dir)
    keys = ("lpips", "psnr", "ssim", "ms_ssim")
    spec = folders.ScoringSpec(metrics=keys, device="cpu", precision="float64", batch_size=4)
    rows = list(folders.score_dirs(spec, pairs))
    assert seen == [1, 1]  # batches of 4 and 1: one reference image each, not 4 + 1
    monkeypatch.setattr(Engine, "reference", real)
    engine = Engine("alex", device="cpu")
    for row in rows:
        _assert_close(row, _reference_row(engine, row["ref"], row["dist"], keys), {})


def test_block_size_follows_the_memory_budget():
    spec = folders.ScoringSpec(metrics=("lpips", "psnr", "ssim", "ms_ssim"), memory_mb=64)
    per_image = folders.state_bytes(spec, 256, 256)
    assert 4 * 2**20 < per_image < 12 * 2**20  # features (float64) + levels + moments of a 256² image
    sizes = [((256, 256), None)] * 40
    plan = folders.plan_allpairs(spec, [f"{i}.png" for i in range(40)], sizes)
    block = len(plan.tiles[0].rows)
    assert 2 * block * per_image <= 64 * 2**20 < 2 * (block + 1) * per_image
    assert sum(t.n_pairs for t in plan.tiles) == 40 * 39 // 2 == plan.n_pairs


# ---------------------------------------------------------------------------------------------
# Through the command line: Parquet, the matrix, digits, the progress line.
# ---------------------------------------------------------------------------------------------

def test_cli_parquet_and_matrix_agree_with_the_csv(gallery, tmp_path):
    import pyarrow.parquet as pq

    csv_out, pq_out, npy = tmp_path / "all.csv", tmp_path / "all.parquet", tmp_path / "m.npy"
    common = ["allpairs", str(gallery), "--device", "cpu", "--metrics", "lpips,psnr,ssim", "--block-size", "3"]
    assert cli.main([*common, "-o", str(csv_out), "--matrix", str(npy)]) == 1
    assert cli.main([*common, "-o", str(pq_out)]) == 1
    import csv

    rows = list(csv.DictReader(io.StringIO(csv_out.read_text())))
    table = pq.read_table(pq_out)
    assert table.schema.field("lpips").type == "double" and table.schema.field("calibrated").type == "bool"
    records = table.to_pylist()
    assert [(r["ref"], r["dist"], r["status"]) for r in records] == [(r["ref"], r["dist"], r["status"]) for r in rows]
    for text_row, record in zip(rows, records):
        if text_row["status"] == "ok":
            assert float(text_row["lpips"]) == pytest.approx(record["lpips"], abs=5e-7)
            assert len(text_row["ssim"].split(".")[1]) == 5  # float32 SSIM: 5 decimals
            assert len(text_row["lpips"].split(".")[1]) == 6
            assert text_row["precision"] == record["precision"] == "float32"
        else:
            assert record["lpips"] is None and record["error"] == text_row["error"]
    matrix = np.load(npy)
    files = [str(p) for p in folders.images_in(gallery)]
    assert matrix.shape == (len(files), len(files)) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, matrix.T)
    assert np.all(np.diag(matrix)[:-1] == 0) and np.isnan(matrix[-1]).all()  # the damaged file: NaN
    for record in records:
        i, j = files.index(record["ref"]), files.index(record["dist"]) if record["dist"] else None
        if record["status"] == "ok":
            assert matrix[i, j] == pytest.approx(record["lpips"], abs=1e-7)
        elif j is not None:
            assert np.isnan(matrix[i, j])


def test_cli_parquet_to_stdout_is_a_usage_error(gallery, capsys):
    assert cli.main(["allpairs", str(gallery), "-o", "-", "--format", "parquet"]) == 2
    assert "Parquet cannot go to standard output" in capsys.readouterr().err


def test_progress_line_shows_pairs_per_second_and_eta():
    progress = cli.Progress(100, "allpairs", stream=io.StringIO())
    progress.start -= 10.0  # as if 10 s had passed
    progress.done = 25
    line = progress.line()
    assert "25/100" in line and "2.5 pairs/s" in line and "ETA 00:30" in line
