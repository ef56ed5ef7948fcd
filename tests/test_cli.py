"""The command line, end to end: ``python -m core compare|dirs|allpairs|weights``.

Numbers are checked against the official lpips package (with the same backbone weights),
scikit-image's PSNR/SSIM on the 8-bit files, and the published example values; never against
core itself. Most runs go through ``cli.entry.main`` in-process (the model loads once); the
missing-weights case runs ``python -m core`` as a subprocess (a fresh process with an empty
cache, as a user would meet it; it also covers ``__main__`` and the exit-code plumbing).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from conftest import load_png, official_model
import cli
from core.lpips import weights

ROOT = Path(__file__).resolve().parents[1]
FIX = "python -m core weights fetch"
LUMA = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])  # MATLAB rgb2gray
CPU = ["--device", "cpu"]


# ---------------------------------------------------------------------------------------------
# Test images and independent references.
# ---------------------------------------------------------------------------------------------

def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """An 8-bit crop of skimage's astronaut (every second pixel), different per seed."""
    from skimage import data

    top, left = (seed * 37) % 200, 40 + (seed * 53) % 150
    return np.ascontiguousarray(data.astronaut()[top:top + 2 * height:2, left:left + 2 * width:2])


def distorted(img: np.ndarray, seed: int = 0, radius: float = 1.2) -> np.ndarray:
    """A blurred, noisy 8-bit copy."""
    blurred = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)), dtype=np.float64)
    noise = np.random.default_rng(seed).normal(0, 6, img.shape)
    return np.clip(np.round(blurred + noise), 0, 255).astype(np.uint8)


def save(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr).save(path)
    return path


def read_u8(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img.convert("RGB"))


_OFFICIAL: dict = {}


def official_lpips(ref: Path, dist: Path | torch.Tensor, net: str = "alex", version: str = "0.1",
                   lpips_on: bool = True) -> float:
    """The official lpips.LPIPS on the two files, with our cached backbone in its trunk."""
    key = (net, version, lpips_on)
    if key not in _OFFICIAL:
        _OFFICIAL[key] = official_model(net, version, lpips_on, False, weights.load_backbone(net))
    dist_t = dist if isinstance(dist, torch.Tensor) else load_png(dist)
    with torch.no_grad():
        return _OFFICIAL[key](load_png(ref), dist_t, normalize=True).item()


def sk_psnr(ref: Path, dist: Path) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(read_u8(ref), read_u8(dist), data_range=255))


def sk_ssim(ref: Path, dist: Path, mode: str = "reference") -> float:
    """SSIM as Wang et al.'s ssim_index.m (valid region); rgb: mean of the channel maps."""
    from skimage.metrics import structural_similarity

    a, b = read_u8(ref), read_u8(dist)
    kwargs = dict(data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True)
    if mode == "rgb":
        _, full = structural_similarity(a, b, channel_axis=2, **kwargs)
        return float(full[5:-5, 5:-5].mean())
    gray = [np.floor(x.astype(np.float64) @ LUMA + 0.5).astype(np.uint8) for x in (a, b)]
    _, full = structural_similarity(*gray, **kwargs)
    return float(full[5:-5, 5:-5].mean())


def run_main(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def strict_json(text: str) -> dict:
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def compare_json(capsys, ref: Path, dist: Path, *options) -> dict:
    rc, out, err = run_main(capsys, "compare", ref, dist, "--json", *CPU, *options)
    assert rc == 0, err
    return strict_json(out)


def read_csv(path_or_text: Path | str) -> list[dict]:
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    ref = photo(64, 80, seed=1)
    return save(tmp_path / "ref.png", ref), save(tmp_path / "dist.png", distorted(ref, seed=1))


# ---------------------------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------------------------

def test_compare_table(capsys, pair):
    ref, dist = pair
    rc, out, err = run_main(capsys, "compare", ref, dist, *CPU)
    assert rc == 0, err
    lines = out.splitlines()
    lpips_line = next(line for line in lines if line.startswith("LPIPS (alex v0.1)"))
    assert float(lpips_line.split()[3]) == pytest.approx(official_lpips(ref, dist), abs=6e-5)
    psnr_line = next(line for line in lines if line.startswith("PSNR (dB)"))
    assert float(psnr_line.split()[2]) == pytest.approx(sk_psnr(ref, dist), abs=6e-3)
    ssim_line = next(line for line in lines if line.startswith("SSIM (reference)"))
    assert float(ssim_line.split()[2]) == pytest.approx(sk_ssim(ref, dist), abs=6e-5)
    for name in ("relu1", "relu2", "relu3", "relu4", "relu5"):
        assert any(line.strip().startswith(name) for line in lines), name
    assert any(line.startswith("MS-SSIM") and "176" in line for line in lines)  # too small for MS-SSIM


def test_compare_json_matches_the_references(capsys, pair):
    ref, dist = pair
    row = compare_json(capsys, ref, dist)
    assert {"lpips", "lpips_layers", "psnr", "ssim", "ssim_mode", "net", "version"} <= set(row)
    assert (row["net"], row["version"], row["ssim_mode"], row["calibrated"]) == ("alex", "0.1", "reference", True)
    assert isinstance(row["lpips_layers"], list) and len(row["lpips_layers"]) == 5
    assert sum(row["lpips_layers"]) == pytest.approx(row["lpips"], abs=1e-6)
    assert row["lpips"] == pytest.approx(official_lpips(ref, dist), abs=1e-5)
    assert row["psnr"] == pytest.approx(sk_psnr(ref, dist), abs=1e-4)
    assert row["ssim"] == pytest.approx(sk_ssim(ref, dist), abs=1e-5)
    assert row["ms_ssim"] is None  # 64×80 is below MS-SSIM's minimum
    assert 0.05 < row["lpips"] < 1  # a real, non-trivial distance


@pytest.mark.parametrize("options,config", [
    (["--baseline"], ("alex", "0.1", False)),
    (["--version", "0.0"], ("alex", "0.0", True)),
    (["--net", "vgg"], ("vgg", "0.1", True)),
    (["--ssim-mode", "rgb"], ("alex", "0.1", True)),
], ids=["baseline", "v0.0", "vgg", "ssim-rgb"])
def test_compare_options(capsys, pair, options, config):
    ref, dist = pair
    row = compare_json(capsys, ref, dist, *options)
    net, version, lpips_on = config
    assert (row["net"], row["version"], row["calibrated"]) == config
    if net == "alex":  # VGG's value is checked on the published examples (an official VGG is slow to build)
        assert row["lpips"] == pytest.approx(official_lpips(ref, dist, net, version, lpips_on), abs=1e-5)
    assert len(row["lpips_layers"]) == 5
    assert sum(row["lpips_layers"]) == pytest.approx(row["lpips"], rel=1e-6, abs=1e-6)
    mode = "rgb" if "rgb" in options else "reference"
    assert row["ssim_mode"] == mode
    assert row["ssim"] == pytest.approx(sk_ssim(ref, dist, mode), abs=1e-5)


def test_identical_images_give_zero_and_infinite_psnr(capsys, pair):
    ref, _ = pair
    row = compare_json(capsys, ref, ref)
    assert row["lpips"] == 0.0
    assert row["psnr"] == "inf"
    assert row["ssim"] == pytest.approx(1.0, abs=1e-12)


EXAMPLE_OPTIONS = {"lin": [], "baseline": ["--baseline"]}


# All six configurations are checked through the Python API in test_lpips.py; here the options'
# plumbing, with one VGG network only (each VGG configuration costs a model load).
@pytest.mark.parametrize("key", ["alex-v0.1-lin", "alex-v0.1-baseline", "alex-v0.0-lin", "vgg-v0.1-lin"])
def test_compare_official_examples(capsys, examples_dir, expected, key):
    net, version, kind = key.split("-")
    options = ["--net", net, "--version", version[1:], *EXAMPLE_OPTIONS[kind]]
    want = expected[key]
    row = compare_json(capsys, examples_dir / "ex_ref.png", examples_dir / "ex_p0.png", *options)
    assert row["lpips"] == pytest.approx(want["ref_vs_p0"], abs=1e-6)
    np.testing.assert_allclose(row["lpips_layers"], want["ref_vs_p0_per_layer"], atol=1e-6)
    row = compare_json(capsys, examples_dir / "ex_ref.png", examples_dir / "ex_p1.png", *options)
    assert row["lpips"] == pytest.approx(want["ref_vs_p1"], abs=1e-6)


def test_size_mismatch_needs_resize_to_ref(capsys, tmp_path):
    ref_arr = photo(64, 64, seed=2)
    big = photo(80, 96, seed=2)
    ref, dist = save(tmp_path / "ref.png", ref_arr), save(tmp_path / "big.png", distorted(big, seed=2))
    rc, out, err = run_main(capsys, "compare", ref, dist, "--json", *CPU)
    assert rc == 1
    assert out == ""
    assert "--resize-to-ref" in err and "96×80" in err
    row = compare_json(capsys, ref, dist, "--resize-to-ref")
    # Documented: DIST is resized to REF's size, bicubic with antialiasing, clamped to [0, 1].
    resized = F.interpolate(load_png(dist), size=(64, 64), mode="bicubic", antialias=True,
                            align_corners=False).clamp(0, 1)
    assert row["lpips"] == pytest.approx(official_lpips(ref, resized), abs=1e-5)


def test_compare_unreadable_file_is_exit_1(capsys, tmp_path, pair):
    ref, _ = pair
    bad = tmp_path / "bad.png"
    bad.write_text("this is not a PNG")
    rc, out, err = run_main(capsys, "compare", ref, bad, *CPU)
    assert rc == 1 and "bad.png" in err
    rc, out, err = run_main(capsys, "compare", ref, tmp_path / "missing.png", *CPU)
    assert rc == 1 and "missing.png" in err


def test_missing_weights_exit_2_with_the_fix(tmp_path, pair):
    ref, dist = pair
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    env = dict(os.environ, **{weights.CACHE_ENV: str(empty)})
    proc = subprocess.run([sys.executable, "-m", "core", "compare", str(ref), str(dist)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert FIX in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------------------
# dirs
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def two_dirs(tmp_path):
    """dir0/dir1 with good pairs of two sizes, a missing counterpart, a broken file and bad pairs."""
    d0, d1 = tmp_path / "dir0", tmp_path / "dir1"
    d0.mkdir()
    d1.mkdir()
    sizes = {"a": (64, 64), "b": (64, 64), "e": (72, 96), "f": (72, 96), "g": (64, 64), "h": (64, 64)}
    for i, (name, (h, w)) in enumerate(sizes.items()):
        img = photo(h, w, seed=10 + i)
        save(d0 / f"{name}.png", img)
        save(d1 / f"{name}.png", distorted(img, seed=i, radius=0.6 + 0.3 * i))
    save(d0 / "c.png", photo(64, 64, seed=3))  # no counterpart in dir1
    save(d1 / "z.png", photo(64, 64, seed=4))  # no counterpart in dir0
    save(d0 / ".hidden.png", photo(64, 64, seed=5))  # hidden files are not pairs
    for d in (d0, d1):
        (d / "d.png").write_bytes(b"just some text, not an image\n")
        (d / "notes.txt").write_text("ignored")
    save(d0 / "i.png", photo(64, 64, seed=30))  # sizes differ within the pair
    save(d1 / "i.png", photo(64, 72, seed=30))
    save(d0 / "t.png", photo(20, 20, seed=31))  # too small for AlexNet
    save(d1 / "t.png", photo(20, 20, seed=32))
    return d0, d1, ["a", "b", "e", "f", "g", "h"]


def test_dirs(capsys, tmp_path, two_dirs):
    d0, d1, good = two_dirs
    out = tmp_path / "out.csv"
    # Sorted pairs a b | d (broken) | e f (another size) | g h | i (sizes differ) | t (too small):
    # batches of two, of two sizes, with failures between them.
    rc, _, err = run_main(capsys, "dirs", d0, d1, "-o", out, "--batch-size", "2", "--precision", "float64", *CPU)
    assert rc == 1
    rows = read_csv(out)
    by_name = {Path(r["ref"] or r["dist"]).name: r for r in rows}
    assert len(rows) == len(by_name) == len(good) + 5  # one row per pair, nothing for notes.txt
    assert sorted(by_name) == sorted([f"{n}.png" for n in good] + ["c.png", "d.png", "i.png", "t.png", "z.png"])
    for name in good:
        row = by_name[f"{name}.png"]
        ref, dist = d0 / f"{name}.png", d1 / f"{name}.png"
        assert (row["status"], row["error"], Path(row["ref"]), Path(row["dist"])) == ("ok", "", ref, dist)
        assert float(row["lpips"]) == pytest.approx(official_lpips(ref, dist), abs=2e-6)
        assert float(row["psnr"]) == pytest.approx(sk_psnr(ref, dist), abs=2e-6 + 1e-4)
        assert float(row["ssim"]) == pytest.approx(sk_ssim(ref, dist), abs=2e-6)
        single = compare_json(capsys, ref, dist)
        for key in ("lpips", "psnr", "ssim"):
            assert float(row[key]) == pytest.approx(single[key], abs=1e-6), key
        layers = [float(row[f"lpips_relu{k}"]) for k in range(1, 6)]
        np.testing.assert_allclose(layers, single["lpips_layers"], atol=1e-6)
    errors = {n: by_name[n] for n in ("c.png", "d.png", "i.png", "t.png", "z.png")}
    assert all(r["status"] == "error" and r["lpips"] == "" for r in errors.values())
    assert "c.png" in errors["c.png"]["error"] and str(d1) in errors["c.png"]["error"]
    assert (errors["c.png"]["dist"], errors["z.png"]["ref"]) == ("", "")
    assert "z.png" in errors["z.png"]["error"] and str(d0) in errors["z.png"]["error"]
    assert errors["d.png"]["error"]
    assert "--resize-to-ref" in errors["i.png"]["error"]
    assert "31" in errors["t.png"]["error"]
    assert "6 pairs scored, 5 failed" in err


def test_dirs_with_good_files_only_exits_0_and_writes_stdout(capsys, two_dirs):
    d0, d1, good = two_dirs
    for d in (d0, d1):
        for name in ("c", "d", "i", "t", "z"):
            (d / f"{name}.png").unlink(missing_ok=True)
    rc, out, err = run_main(capsys, "dirs", d0, d1, "-o", "-", "--baseline", *CPU)
    assert rc == 0, err
    rows = read_csv(out)
    assert [Path(r["ref"]).stem for r in rows if r["status"] == "ok"] == good
    assert len(rows) == len(good)
    row = rows[0]
    assert row["calibrated"] == "False"
    assert float(row["lpips"]) == pytest.approx(official_lpips(d0 / "a.png", d1 / "a.png", lpips_on=False), abs=2e-6)


# ---------------------------------------------------------------------------------------------
# allpairs
# ---------------------------------------------------------------------------------------------

def test_allpairs(capsys, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    base = photo(64, 64, seed=5)
    same = [save(folder / "p1.png", base), save(folder / "p2.png", distorted(base, seed=1)),
            save(folder / "p3.png", distorted(base, seed=2, radius=2.0))]
    odd = save(folder / "q.png", photo(80, 64, seed=6))
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "all.csv"
    rc, _, err = run_main(capsys, "allpairs", folder, "-o", out, "--batch-size", "1", "--precision", "float64", *CPU)
    assert rc == 1
    rows = read_csv(out)
    assert not any("notes.txt" in r["ref"] + r["dist"] for r in rows)
    ok = {(Path(r["ref"]).name, Path(r["dist"]).name): r for r in rows if r["status"] == "ok"}
    assert set(ok) == {("p1.png", "p2.png"), ("p1.png", "p3.png"), ("p2.png", "p3.png")}
    for (a, b), row in ok.items():
        assert float(row["lpips"]) == pytest.approx(official_lpips(folder / a, folder / b), abs=2e-6)
        assert float(row["psnr"]) == pytest.approx(sk_psnr(folder / a, folder / b), abs=1e-4)
        assert float(row["lpips"]) == pytest.approx(compare_json(capsys, folder / a, folder / b)["lpips"], abs=1e-6)
    errors = [r for r in rows if r["status"] == "error"]
    mismatched = {frozenset((Path(r["ref"]).name, Path(r["dist"]).name)) for r in errors if "sizes differ" in r["error"]}
    assert mismatched == {frozenset((p.name, odd.name)) for p in same}
    broken = [r for r in errors if "broken.png" in r["ref"] + r["dist"]]
    assert len(broken) == 1
    assert len(errors) == 4 and len(rows) == 7


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------

def test_weights_list_and_verify(capsys):
    rc, out, err = run_main(capsys, "weights", "list")
    assert rc == 0, err
    for net in ("alex", "vgg"):
        assert any(line.split()[:3] == ["backbone", net, "ok"] for line in out.splitlines()), out
    rc, out, err = run_main(capsys, "weights", "verify")
    assert rc == 0, out + err
    for net in ("alex", "vgg"):
        line = next(line for line in out.splitlines() if line.split()[1:3] == ["backbone", net])
        assert line.startswith("ok")
        assert line.split()[-1] == weights.sha256_file(weights.backbone_path(net))[:16]
    assert "squeeze" not in " ".join(line for line in out.splitlines() if "backbone" in line)


def test_weights_verify_squeeze_fails(capsys, tmp_path, monkeypatch):
    if not (weights.cache_dir() / "squeeze.safetensors").exists():
        rc, out, _ = run_main(capsys, "weights", "verify", "--net", "squeeze")
        assert rc == 1 and "FAIL backbone squeeze" in out
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path))  # an empty cache: always missing
    rc, out, _ = run_main(capsys, "weights", "verify", "--net", "squeeze")
    assert rc == 1
    assert "FAIL backbone squeeze" in out and "weights import --net squeeze" in out
    rc, out, _ = run_main(capsys, "weights", "verify", "--net", "alex")
    assert rc == 1 and FIX in out


def test_weights_import_of_a_wrong_file_is_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "cache"))
    fake = tmp_path / "squeezenet1_1-b8a52dc0.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, fake)
    rc, _, err = run_main(capsys, "weights", "import", fake, "--net", "squeeze")
    assert rc == 2
    assert "b8a52dc0" in err and "Traceback" not in err
    assert not (tmp_path / "cache" / "squeeze.safetensors").exists()
    with pytest.raises(SystemExit) as info:
        cli.main(["weights", "import"])
    assert info.value.code == 2


def test_the_documented_import_command_parses(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "cache"))
    assert "weights import --net squeeze PATH" in weights.missing_message("squeeze")
    fake = tmp_path / "squeezenet1_1-b8a52dc0.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, fake)
    try:
        rc, _, err = run_main(capsys, "weights", "import", "--net", "squeeze", fake)
    except SystemExit as exc:
        pytest.fail(f"argparse rejected the documented command (exit {exc.code}): {capsys.readouterr().err}")
    assert rc == 2 and "b8a52dc0" in err  # parsed, then refused for its hash


def test_console_script_is_the_same_command():
    import importlib.metadata

    try:
        importlib.metadata.distribution("lpips-explorer")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the project is not installed in this environment (make setup installs it)")
    script = Path(sys.executable).with_name("lpips-explorer")
    assert script.exists(), f"{script} is missing: the [project.scripts] entry did not install"
    result = subprocess.run([str(script), "metrics"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    from core import metrics

    listed = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert listed[:4] == ["lpips", "psnr", "ssim", "ms_ssim"] and listed == list(metrics.names())
    usage = subprocess.run([str(script), "compare"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: lpips-explorer compare")


# ---------------------------------------------------------------------------------------------
# dirs / allpairs options: LPIPS alone, the precision's digits, the matrix's own file
# ---------------------------------------------------------------------------------------------

def test_dirs_lpips_alone_has_only_its_columns(capsys, two_dirs, tmp_path):
    d0, d1, good = two_dirs
    out = tmp_path / "lpips.csv"
    rc, _, err = run_main(capsys, "dirs", d0, d1, "-o", out, "--metrics", "lpips", *CPU)
    assert rc == 1, err  # the broken and missing files
    rows = read_csv(out)
    assert list(rows[0]) == ["ref", "dist", "status", "error", "lpips", *[f"lpips_relu{k}" for k in range(1, 6)],
                             "net", "version", "calibrated"]
    for row in rows:
        if row["status"] == "ok":
            assert float(row["lpips"]) == pytest.approx(official_lpips(Path(row["ref"]), Path(row["dist"])), abs=2e-6)
    assert "pairs/s" in err


def test_float32_writes_ssim_with_five_decimals_within_its_bound(capsys, two_dirs, tmp_path):
    d0, d1, good = two_dirs
    out = tmp_path / "f32.csv"
    run_main(capsys, "dirs", d0, d1, "-o", out, "--metrics", "ssim", *CPU)
    rows = [r for r in read_csv(out) if r["status"] == "ok"]
    assert len(rows) == len(good) + 1  # t.png, too small for LPIPS, is large enough for SSIM
    for row in rows:
        assert len(row["ssim"].split(".")[1]) == 5 and row["precision"] == "float32"
        assert float(row["ssim"]) == pytest.approx(sk_ssim(Path(row["ref"]), Path(row["dist"])), abs=2e-6 + 5e-6)


def test_matrix_and_table_must_be_two_files(capsys, two_dirs, tmp_path):
    d0, _, _ = two_dirs
    rc, _, err = run_main(capsys, "allpairs", d0, "-o", tmp_path / "x.npy", "--matrix", tmp_path / "x.npy", *CPU)
    assert rc == 2 and "--matrix and --out name the same file" in err
