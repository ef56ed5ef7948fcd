"""``python -m core mad`` and ``python -m core optimize`` end to end, in-process, on 64² images.

The values the commands print are checked against the registry's metrics of the PNG files they
wrote, so a number that does not belong to its image cannot pass.
"""

from __future__ import annotations

import csv
import json

import pytest
import torch

import core
from cli import main
from core.images.imageio import load_image
from core.synthesis import HOLD_TOLERANCE


def _run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_mad_writes_images_history_and_json(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = _run(capsys, ["mad", "cat", "--hold", "psnr", "--level", "24", "--attack", "lpips",
                                    "--steps", "6", "--size", "64", "--seed", "0", "--out", str(out), "--json"])
    assert code == 0
    report = json.loads(stdout)
    for key in ("hold", "attack", "level", "best", "worst", "steps", "seconds"):
        assert key in report
    assert (report["hold"], report["attack"], report["level"], report["steps"]) == ("psnr", "lpips_alex", 24.0, 6)
    ref = load_image(out / "reference.png")
    assert ref.shape == (1, 3, 64, 64)
    for name in ("best", "worst"):
        image = load_image(out / f"{name}.png")
        scores = report[name]
        assert set(scores) == {"psnr", "ssim", "lpips_alex", "lpips_vgg"}
        assert scores["psnr"] == pytest.approx(core.psnr(ref, image).item(), abs=1e-4)
        assert scores["ssim"] == pytest.approx(core.ssim(ref, image).item(), abs=1e-6)
        assert scores["lpips_alex"] == pytest.approx(core.lpips_distance(ref, image, net="alex").item(), abs=1e-5)
        assert scores["lpips_vgg"] == pytest.approx(core.lpips_distance(ref, image, net="vgg").item(), abs=1e-5)
        assert abs(scores["psnr"] - 24.0) <= HOLD_TOLERANCE["psnr"]
    assert report["worst"]["lpips_alex"] > report["best"]["lpips_alex"]
    with open(out / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["step", "best_psnr", "best_lpips_alex", "worst_psnr", "worst_lpips_alex"]
    assert [int(r["step"]) for r in rows] == list(range(7))
    assert float(rows[-1]["worst_lpips_alex"]) > float(rows[0]["worst_lpips_alex"])


def test_mad_table_says_how_to_read_the_numbers(tmp_path, capsys):
    code, stdout, stderr = _run(capsys, ["mad", "cat", "--hold", "ssim", "--level", "0.7", "--attack", "psnr",
                                         "--steps", "2", "--size", "48", "--out", str(tmp_path)])
    assert code == 0
    assert "SSIM held at 0.7000" in stdout and "best for PSNR" in stdout and "worst for PSNR" in stdout
    assert "Higher LPIPS = more different" in stdout
    assert "2/2 steps" in stderr


@pytest.mark.parametrize("hold, level, words", [("psnr", "80", "PSNR = 80.00 dB cannot be reached"),
                                                ("lpips", "2.0", "LPIPS (alex) = 2.0000 cannot be reached")])
def test_unreachable_level_is_a_clear_error(tmp_path, capsys, hold, level, words):
    code, stdout, stderr = _run(capsys, ["mad", "cat", "--hold", hold, "--level", level, "--attack", "ssim",
                                         "--steps", "2", "--size", "48", "--out", str(tmp_path)])
    assert code == 1 and stdout == ""
    assert words in stderr and "spans" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "best.png").exists()


def test_bad_usage_exits_2_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["mad", "cat", "--level", "24", "--size", "4", "--out", str(tmp_path)])
    assert info.value.code == 2 and "from 32 to 512" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    code, _, stderr = _run(capsys, ["mad", "cat", "--level", "24", "--steps", "1", "--size", "48",
                                    "--out", str(tmp_path / "file")])
    assert code == 2 and "is a file" in stderr
    code, _, stderr = _run(capsys, ["mad", "no-such-image", "--level", "24", "--out", str(tmp_path / "x")])
    assert code == 1 and "neither an image file nor a gallery sample" in stderr


def test_optimize_writes_one_image_per_loss(tmp_path, capsys):
    code, stdout, _ = _run(capsys, ["optimize", "cat", "--loss", "l2,0.5*l2+0.5*lpips_alex", "--steps", "4",
                                    "--size", "64", "--degradation", "gaussian_blur", "--strength", "2",
                                    "--out", str(tmp_path), "--json"])
    assert code == 0
    report = json.loads(stdout)
    ref = load_image(tmp_path / "reference.png")
    start = load_image(tmp_path / "start.png")
    assert report["start"]["psnr"] == pytest.approx(core.psnr(ref, start).item(), abs=1e-4)
    assert [r["loss"] for r in report["runs"]] == ["l2", "0.5*l2+0.5*lpips_alex"]
    for run in report["runs"]:
        image = load_image(tmp_path / run["file"])
        assert run["scores"]["lpips_alex"] == pytest.approx(core.lpips_distance(ref, image).item(), abs=1e-5)
    assert report["runs"][0]["scores"]["psnr"] > report["start"]["psnr"]
    with open(tmp_path / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 5 and {"loss", "step", "psnr", "lpips_alex"} <= set(rows[0])
