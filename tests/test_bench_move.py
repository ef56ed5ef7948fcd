"""bench/move.py runs end to end on a small image and reports every stage (no timing asserted:
benchmarks print figures, tests only keep them working)."""

from __future__ import annotations

import json

from bench import move


def test_move_benchmark_reports_each_stage(tmp_path, capsys):
    out = tmp_path / "move.json"
    assert move.main(["--size", "96", "--moves", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "total, layer view collapsed (default)" in printed and "floor: one backbone pass" in printed
    report = json.loads(out.read_text())
    assert report["size"] == [96, 96] or max(report["size"]) == 96
    assert report["floor_ms"] > 0 and report["total_open_ms"] >= report["total_collapsed_ms"] > report["floor_ms"]
    assert {"distortion (apply, 8-bit)", "LPIPS with its map (card sent next)"} <= set(report["stages_ms"])
    assert report["floor_ms"] < report["to_card_ms"] < report["total_collapsed_ms"]
    assert report["cpu_ms_per_move"] > 0 and report["wall_ms_per_move"] > 0
    from core import metrics

    # Every metric the page shows by default, but MS-SSIM: 96 px is below its 176.
    assert set(report["metrics_alone_ms"]) == set(metrics.defaults()) - {"ms_ssim"}
    assert "Streamlit's gc.collect() after the run" in report["stages_ms"] and report["gc_unfrozen_ms"] > 0
