"""bench/engine.py runs end to end on a small image with the options a GPU run uses (--batch,
--half) and reports parity with the official package (no timing asserted: benchmarks print
figures, tests only keep them working)."""

from __future__ import annotations

import json

import pytest

from bench import engine


def test_batch_and_half_precision_rows_are_what_was_asked_for(tmp_path, capsys):
    out = tmp_path / "engine.json"
    argv = ["--sizes", "64", "--nets", "alex", "--repeats", "1", "--batch", "3", "--half", "bf16",
            "--no-memory", "--out", str(out)]
    assert engine.main(argv) == 0
    printed = capsys.readouterr().out
    assert "batch3 /img" in printed and "fast (bf16) upd" in printed and "all cases PASS" in printed
    report = json.loads(out.read_text())
    assert report["settings"]["batch"] == 3 and report["settings"]["half"] == "bf16"
    (case,) = report["results"]
    assert case["batch"]["n"] == 3 and case["batch"]["max_abs_diff"] <= 1e-5
    assert case["max_abs_diff"]["cold"] <= 1e-5 and case["max_abs_diff"]["update"] <= 1e-5
    # The backbone really ran in bf16 (not silently in fp32), and close to the fp32 value.
    assert 0 < case["fast_abs_err_vs_fp32"] < 1e-2


def test_fp16_on_the_cpu_is_skipped_with_the_reason(tmp_path, capsys):
    argv = ["--sizes", "64", "--nets", "alex", "--repeats", "1", "--batch", "2", "--half", "fp16",
            "--no-memory", "--out", str(tmp_path / "engine.json")]
    assert engine.main(argv) == 0
    assert "fast (fp16) upd" in capsys.readouterr().out
    (case,) = json.loads((tmp_path / "engine.json").read_text())["results"]
    assert "--full forces it" in case["fast_skipped"]


@pytest.mark.parametrize("argv, message", [(["--batch", "0"], "--batch"), (["--nets", "resnet"], "--nets")])
def test_bad_settings_name_the_option(argv, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        engine.settings_from_args(engine.build_parser().parse_args(argv + ["--out", str(tmp_path / "x.json")]))
