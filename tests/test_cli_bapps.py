"""``lpips-explorer bapps score|fit`` and ``--heads``: the paper's table computed from core.compare's
distances with the official 2AFC/JND formulas, fitted heads that the command line, the drop-in and
the engine all read to the same distance, and bad folders and files refused with exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import cli
from bench import bapps_synth
from core.comparison import compare
from core.judgments import bapps
from core.judgments.heads import engine_from_file
from core.lpips.engine import LPIPS, Engine
from core.lpips.heads import read_manifest

official = pytest.importorskip("lpips")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("bapps")
    bapps_synth.generate(root, triplets=48, heldout=24, jnd=16, seed=3)
    return root


def _official_2afc(d0, d1, judge) -> float:
    # lpips.trainer.score_2afc_dataset's formula, on the same distances
    d0, d1, judge = map(np.asarray, (d0, d1, judge))
    return float(np.mean((d0 < d1) * (1.0 - judge) + (d1 < d0) * judge + (d1 == d0) * 0.5))


def _official_jnd(d, same) -> float:
    # lpips.trainer.score_jnd_dataset's formula
    order = np.argsort(np.asarray(d))
    sorted_same = np.asarray(same)[order]
    tp = np.cumsum(sorted_same)
    fp = np.cumsum(1 - sorted_same)
    fn = np.sum(sorted_same) - tp
    return float(official.voc_ap(tp / (tp + fn), tp / (tp + fp)))


def test_score_is_the_official_formula_on_core_compare_distances(folder, capsys):
    assert cli.main(["bapps", "score", str(folder), "--metrics", "lpips,psnr,ssim", "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    engine = Engine("alex", device="cpu")
    data = bapps.read_2afc(folder / "2afc" / "val" / "synth")
    ref, p0, p1 = data.images()
    r0 = compare(engine, ref, p0, metrics=("lpips", "psnr", "ssim"), spatial=False)
    r1 = compare(engine, ref, p1, metrics=("lpips", "psnr", "ssim"), spatial=False)
    column = out["sets"]["2afc/val/synth"]
    assert column["n"] == len(data) == 24
    for key, sign in (("lpips", 1), ("psnr", -1), ("ssim", -1)):  # similarities read as negated distances
        want = _official_2afc(sign * r0[key].numpy(), sign * r1[key].numpy(), data.judge)
        assert column["scores"][key] == pytest.approx(want, abs=1e-12)
    assert column["human"] == pytest.approx(float(np.mean(data.judge ** 2 + (1 - data.judge) ** 2)), abs=1e-12)
    jnd = bapps.read_jnd(folder / "jnd" / "val" / "synth")
    a, b = jnd.images()
    d = compare(engine, a, b, metrics=("lpips",), spatial=False)["lpips"].numpy()
    assert out["sets"]["jnd/val/synth"]["scores"]["lpips"] == pytest.approx(_official_jnd(d, jnd.same), abs=1e-12)


def test_fit_writes_heads_that_every_way_in_reads_the_same(folder, tmp_path, capsys):
    out = tmp_path / "class.safetensors"
    assert cli.main(["bapps", "fit", str(folder), "--out", str(out), "--epochs", "2", "--decay", "1",
                     "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "held-out 2AFC (24 triplets" in printed and "baseline (uniform)" in printed
    manifest = read_manifest(out)
    assert manifest["net"] == "alex" and manifest["from"] == "v0.1" and 0 <= manifest["heldout_2afc"] <= 1
    assert set(manifest["heldout_2afc_before"]) == {"v0.1", "baseline (uniform)"}

    data = bapps.read_2afc(folder / "2afc" / "val" / "synth")
    ref, p0, _ = data.images(0, 3)
    from PIL import Image

    paths = []
    for name, image in (("r.png", ref[:1]), ("d.png", p0[:1])):
        Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    assert cli.main(["compare", *paths, "--metrics", "lpips", "--heads", str(out), "--device", "cpu", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["heads"] == "class.safetensors"
    from core import load_image

    r, d = load_image(paths[0]), load_image(paths[1])
    via_engine = engine_from_file(out, "alex", device="cpu").distance(r, d)
    with torch.no_grad():
        via_dropin = LPIPS(net="alex", model_path=str(out))(r, d, normalize=True)
    assert abs(row["lpips"] - float(via_engine)) <= 1e-6
    assert abs(row["lpips"] - float(via_dropin)) <= 1e-6
    # A file of uniform heads is the paper's uncalibrated baseline: the file, not v0.1, is what is used.
    from core.judgments.features import uniform_heads
    from core.lpips.heads import save_heads

    ones = save_heads(tmp_path / "ones.safetensors", uniform_heads("alex"), net="alex", origin="uniform", data="-")
    assert cli.main(["compare", *paths, "--metrics", "lpips", "--heads", str(ones), "--device", "cpu", "--json"]) == 0
    baseline = Engine("alex", lpips=False, device="cpu").distance(r, d)
    assert abs(json.loads(capsys.readouterr().out)["lpips"] - float(baseline)) <= 1e-6


def test_dirs_with_heads_names_them_in_a_column(folder, tmp_path, capsys):
    heads = tmp_path / "h.safetensors"
    assert cli.main(["bapps", "fit", str(folder), "--out", str(heads), "--epochs", "1", "--decay", "0",
                     "--device", "cpu"]) == 0
    capsys.readouterr()
    ref_dir, dist_dir = folder / "2afc" / "val" / "synth" / "ref", folder / "2afc" / "val" / "synth" / "p0"
    table = tmp_path / "rows.csv"
    assert cli.main(["dirs", str(ref_dir), str(dist_dir), "-o", str(table), "--metrics", "lpips",
                     "--heads", str(heads), "--device", "cpu"]) == 0
    header, first = table.read_text().splitlines()[:2]
    assert "heads" in header.split(",") and "h.safetensors" in first


@pytest.mark.parametrize("case", ["not a folder", "not bapps", "judge out of range", "bad heads", "heads and baseline"])
def test_bad_input_is_refused_with_a_message_and_exit_2(folder, tmp_path, capsys, case):
    if case == "not a folder":
        argv = ["bapps", "score", str(tmp_path / "missing")]
    elif case == "not bapps":
        (tmp_path / "2afc" / "val" / "x" / "ref").mkdir(parents=True)
        argv = ["bapps", "score", str(tmp_path)]
    elif case == "judge out of range":
        bapps.write_2afc(tmp_path / "2afc" / "val" / "x", *(np.zeros((2, 64, 64, 3), np.uint8),) * 3,
                         np.array([0.5, 0.5]))
        np.save(tmp_path / "2afc" / "val" / "x" / "judge" / "000001.npy", np.array([1.5]))
        argv = ["bapps", "score", str(tmp_path), "--metrics", "psnr"]
    elif case == "bad heads":
        (tmp_path / "h.safetensors").write_bytes(b"not safetensors")
        argv = ["compare", "a.png", "b.png", "--heads", str(tmp_path / "h.safetensors")]
    else:
        argv = ["compare", "a.png", "b.png", "--heads", "h.safetensors", "--baseline"]
    if case in ("bad heads", "heads and baseline"):
        from PIL import Image

        for name in ("a.png", "b.png"):
            Image.new("RGB", (48, 48), (10, 20, 30)).save(tmp_path / name)
        argv[1:3] = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert cli.main([*argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    expected = {"not a folder": "not a folder", "not bapps": "lacks", "judge out of range": "000001.npy",
                "bad heads": "h.safetensors", "heads and baseline": "--baseline"}[case]
    assert expected in err, err
