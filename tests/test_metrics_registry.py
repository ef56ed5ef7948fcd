"""The metric registry (core.metrics) and core.compare built on it.

A toy metric registered for the duration of a test must reach compare's result, the command
line's --json output and its CSV columns with no other file touched. Values are checked against
independent references (the official lpips package with the same weights, scikit-image), not
against core's own functions.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import core
from conftest import natural_pair, official_model
import cli
from core import metrics
from core.lpips import weights
from core.errors import ImageTooSmallError, LpipsExplorerError
from core.metrics import MetricContext, MetricScore, MetricSpec

# ---------------------------------------------------------------------------------------------
# A toy metric: mean absolute error in 8-bit levels, with a map.
# ---------------------------------------------------------------------------------------------


def _mae_prepare(ref: torch.Tensor, ctx: MetricContext) -> torch.Tensor:
    return ref.mul(255).round()


def _mae_score(prepared: torch.Tensor, dist: torch.Tensor, ctx: MetricContext) -> MetricScore:
    diff = (prepared - dist.mul(255).round()).abs()
    return MetricScore(values=diff.mean(dim=(1, 2, 3)).cpu(),
                       map=diff.mean(dim=1, keepdim=True).cpu() if ctx.spatial else None)


MAE = MetricSpec(key="mae", label="MAE", higher_is_better=False, prepare=_mae_prepare, score=_mae_score,
                 unit="levels", value_range=(0.0, 255.0), identical=0.0, differentiable=False,
                 map=metrics.MapSpec(title="Absolute error", unit="levels", file_stem="mae_map",
                                     higher_is_better=False, value_range=(0.0, 255.0)))


def numpy_mae(ref: torch.Tensor, dist: torch.Tensor) -> float:
    a = np.round(ref[0].numpy() * 255)
    b = np.round(dist[0].numpy() * 255)
    return float(np.abs(a - b).mean())


@pytest.fixture(scope="module")
def engine() -> core.Engine:
    return core.Engine("alex", device="cpu")


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    ref, dist = natural_pair(192, 208)
    # 8-bit images, as files would give
    return ref.mul(255).round().div(255), dist.mul(255).round().div(255)


# ---------------------------------------------------------------------------------------------
# The registry itself.
# ---------------------------------------------------------------------------------------------

def test_builtin_metrics_in_display_order():
    assert metrics.names() == ("lpips", "psnr", "ssim", "ms_ssim", "dists", "fsim", "vif", "vifp", "gmsd", "vsi",
                               "mad_iqa", "cw_ssim", "nlpd")
    assert [s.key for s in metrics.specs()] == list(metrics.names())


def test_defaults_leave_out_the_slow_metrics():
    # DISTS (a VGG16 pass), FSIM (16 FFT filters), VIF (a steerable pyramid and 9×9 covariances),
    # VIFp (four Gaussian scales), VSI (SDSP saliency of both images) and MAD (20 log-Gabor
    # subbands) cost tens of ms to seconds per image on a CPU (bench/metrics.py): they are
    # computed only when named.
    assert metrics.defaults() == ("lpips", "psnr", "ssim", "ms_ssim", "gmsd")
    assert metrics.resolve(None) == metrics.defaults()
    assert metrics.resolve("vif,dists") == ("dists", "vif")


@pytest.mark.parametrize("key,higher,has_map,differentiable,unit", [
    ("lpips", False, True, True, ""),
    ("psnr", True, True, False, "dB"),
    ("ssim", True, True, False, ""),
    ("ms_ssim", True, False, False, ""),
    ("dists", False, False, False, ""),
    ("fsim", True, True, False, ""),
    ("vif", True, False, False, ""),
    ("vifp", True, False, False, ""),
    ("gmsd", False, True, False, ""),
    ("vsi", True, True, False, ""),
    ("mad_iqa", False, True, False, ""),
    ("cw_ssim", True, True, False, ""),
    ("nlpd", False, True, False, ""),
])
def test_spec_fields(key, higher, has_map, differentiable, unit):
    spec = metrics.get(key)
    assert (spec.key, spec.higher_is_better, spec.has_map, spec.differentiable, spec.unit) == (
        key, higher, has_map, differentiable, unit)
    low, high = spec.value_range
    assert low <= spec.identical <= high
    with pytest.raises(Exception):  # frozen
        spec.label = "x"  # type: ignore[misc]


def test_minimum_sizes():
    assert metrics.get("ms_ssim").minimum(MetricContext()) == 176
    assert metrics.get("ssim").minimum(MetricContext()) == 11
    assert [metrics.get(k).minimum(MetricContext()) for k in ("dists", "fsim", "vif", "vifp", "gmsd")] == [16, 8, 72, 41, 4]
    assert [metrics.get(k).minimum(MetricContext()) for k in ("vsi", "mad_iqa")] == [8, 34]
    assert [metrics.get(k).minimum(MetricContext()) for k in ("cw_ssim", "nlpd")] == [64, 17]
    for net, side in (("alex", 31), ("vgg", 16)):
        assert metrics.get("lpips").minimum(MetricContext(engine=core.Engine(net, device="cpu"))) == side


def test_unknown_metric_lists_the_known_ones():
    known = "lpips, psnr, ssim, ms_ssim, dists, fsim, vif, vifp, gmsd, vsi, mad_iqa, cw_ssim, nlpd"
    with pytest.raises(metrics.UnknownMetricError, match=known) as info:
        metrics.get("mad")
    assert isinstance(info.value, LpipsExplorerError)
    with pytest.raises(metrics.UnknownMetricError, match="'nope'"):
        metrics.resolve("psnr,nope")


def test_resolve_keeps_display_order_and_drops_repeats():
    assert metrics.resolve(None) == metrics.defaults()
    assert metrics.resolve("ms_ssim,psnr,psnr") == ("psnr", "ms_ssim")
    assert metrics.resolve(["ssim"]) == ("ssim",)
    with pytest.raises(ValueError, match="No metric"):
        metrics.resolve(" , ")


def test_registering_twice_needs_replace_and_bad_keys_are_refused():
    with metrics.registered(MAE):
        with pytest.raises(ValueError, match="already registered"):
            metrics.register(MAE)
    assert "mae" not in metrics.names()
    with pytest.raises(ValueError, match="lower-case identifier"):
        MetricSpec(key="Bad Key", label="x", higher_is_better=True, prepare=_mae_prepare, score=_mae_score)
    with pytest.raises(ValueError, match="unknown context fields"):
        MetricSpec(key="x", label="x", higher_is_better=True, prepare=_mae_prepare, score=_mae_score,
                   settings=("colour",))


def test_format_and_meaning():
    psnr, lp = metrics.get("psnr"), metrics.get("lpips")
    assert psnr.format(math.inf) == "∞ dB" and psnr.format(31.234) == "31.23 dB"
    assert psnr.format(math.nan) == "n/a"
    assert lp.format(0.12345) == "0.1235"
    assert "higher = more different" in lp.meaning and "0 = identical" in lp.meaning
    assert metrics.get("ssim").meaning == "higher = more similar (1 = identical)"


# ---------------------------------------------------------------------------------------------
# core.compare on the registry.
# ---------------------------------------------------------------------------------------------

def test_compare_matches_the_references(engine, pair):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ref, dist = pair
    result = core.compare(engine, ref, dist)
    assert result.metrics == metrics.defaults()
    official = official_model("alex", "0.1", True, False, weights.load_backbone("alex"))
    with torch.no_grad():
        want_lpips = float(official(ref * 2 - 1, dist * 2 - 1))
    assert float(result["lpips"][0]) == pytest.approx(want_lpips, abs=1e-5)
    a, b = (np.round(x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8) for x in (ref, dist))
    assert float(result["psnr"][0]) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-4)
    luma = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    ya, yb = (np.floor(x.astype(np.float64) @ luma + 0.5) for x in (a, b))
    want_ssim = structural_similarity(ya, yb, data_range=255, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False)
    assert float(result["ssim"][0]) == pytest.approx(want_ssim, abs=1e-5)
    assert 0 < float(result["ms_ssim"][0]) < 1
    # maps: LPIPS and squared error at image size, SSIM on the valid region
    assert set(result.maps) == {"lpips", "psnr", "ssim", "gmsd"}
    assert result.maps["lpips"].shape == (1, 1, 192, 208) and result.maps["ssim"].shape == (1, 1, 182, 198)
    mse = float(result.maps["psnr"].mean())
    assert 10 * math.log10(255**2 / mse) == pytest.approx(float(result["psnr"][0]), abs=1e-4)
    assert result.lpips is not None and result.lpips.layer_values.sum().item() == pytest.approx(want_lpips, abs=1e-5)


def test_prepared_reference_gives_the_same_numbers(engine, pair):
    ref, dist = pair
    every = metrics.names()  # the slow ones too: each must give the same numbers from a prepared reference
    direct = core.compare(engine, ref, dist, metrics=every)
    prepared = core.prepare_reference(engine, ref, metrics=every)
    assert prepared.metrics == metrics.names()
    for other in (core.compare(engine, prepared, dist), core.compare(engine, engine.reference(ref), dist, metrics=every)):
        for key in metrics.names():
            torch.testing.assert_close(other[key], direct[key], rtol=0, atol=0)


def test_prepared_reference_refuses_other_settings(engine, pair):
    ref, dist = pair
    prepared = core.prepare_reference(engine, ref, metrics="ssim")
    with pytest.raises(ValueError, match="ssim_mode='reference'"):
        core.compare(engine, prepared, dist, ssim_mode="rgb")
    with pytest.raises(ValueError, match="no lpips"):
        core.compare(engine, prepared, dist, metrics="lpips,ssim")


def test_subset_needs_no_network_and_row_lists_settings(pair):
    ref, dist = pair
    result = core.compare(None, ref, dist, metrics=["ssim", "psnr"], ssim_mode="rgb", spatial=False)
    assert result.metrics == ("psnr", "ssim") and result.maps == {}
    assert set(result.row(0)) == {"psnr", "ssim", "ssim_mode"} and result.row(0)["ssim_mode"] == "rgb"
    with pytest.raises(ValueError, match="LPIPS needs a network"):
        core.compare(None, ref, dist, metrics="lpips")


def test_small_images_nan_for_ms_ssim_error_for_lpips(engine):
    ref, dist = natural_pair(48, 64)
    result = core.compare(engine, ref, dist)
    assert math.isnan(float(result["ms_ssim"][0])) and "176" in result.skipped["ms_ssim"]
    assert not math.isnan(float(result["ssim"][0]))
    tiny_ref, tiny_dist = natural_pair(24, 24)
    with pytest.raises(ImageTooSmallError, match="31×31"):
        core.compare(engine, tiny_ref, tiny_dist)


def test_batch_against_one_reference(engine, pair):
    ref, dist = pair
    batch = torch.cat([dist, ref, dist.flip(-1)])
    result = core.compare(engine, ref, batch, metrics=metrics.names())
    assert len(result) == 3 and float(result["lpips"][1]) == 0.0 and math.isinf(float(result["psnr"][1]))
    for i in (0, 2):
        single = core.compare(engine, ref, batch[i:i + 1], metrics=metrics.names())
        for key in metrics.names():
            assert float(result[key][i]) == pytest.approx(float(single[key][0]), abs=1e-6)


# ---------------------------------------------------------------------------------------------
# A newly registered metric appears everywhere, with no other file touched.
# ---------------------------------------------------------------------------------------------

def test_toy_metric_reaches_compare(engine, pair):
    ref, dist = pair
    with metrics.registered(MAE):
        assert metrics.names()[-1] == "mae"
        result = core.compare(engine, ref, dist)
        assert result.metrics[-1] == "mae"
        assert float(result["mae"][0]) == pytest.approx(numpy_mae(ref, dist), abs=1e-4)
        assert result.maps["mae"].shape == (1, 1, 192, 208)
        assert result.row(0)["mae"] == pytest.approx(numpy_mae(ref, dist), abs=1e-4)
    assert "mae" not in core.compare(engine, ref, dist).metrics


def _save(path, tensor) -> str:
    Image.fromarray(np.round(tensor[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(path)
    return str(path)


def test_toy_metric_reaches_the_command_line(tmp_path, capsys, pair):
    ref, dist = pair
    a, b = _save(tmp_path / "ref.png", ref), _save(tmp_path / "dist.png", dist)
    with metrics.registered(MAE):
        assert cli.main(["compare", a, b, "--json", "--device", "cpu"]) == 0
        row = json.loads(capsys.readouterr().out)
        assert row["mae"] == pytest.approx(numpy_mae(ref, dist), abs=1e-4)
        assert cli.main(["compare", a, b, "--json", "--metrics", "mae"]) == 0
        only = json.loads(capsys.readouterr().out)
        assert set(only) == {"mae", "ref", "dist"}
        assert cli.main(["compare", a, b, "--metrics", "mae,psnr"]) == 0
        table = capsys.readouterr().out
        assert any(line.startswith("MAE (levels)") for line in table.splitlines()), table
        for folder in ("d0", "d1"):
            (tmp_path / folder).mkdir()
        _save(tmp_path / "d0" / "x.png", ref)
        _save(tmp_path / "d1" / "x.png", dist)
        assert cli.main(["dirs", str(tmp_path / "d0"), str(tmp_path / "d1"), "-o", "-", "--metrics", "psnr,mae"]) == 0
        rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert float(rows[0]["mae"]) == pytest.approx(numpy_mae(ref, dist), abs=1e-4)
        assert "lpips" not in rows[0]
    with pytest.raises(SystemExit) as info:  # gone again: a usage error, as argparse reports it
        cli.main(["compare", a, b, "--json", "--metrics", "mae"])
    assert info.value.code == 2
    assert "Unknown metric 'mae'" in capsys.readouterr().err


def test_metrics_command_lists_the_registry(capsys):
    assert cli.main(["metrics"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split()[0] for line in lines] == list(metrics.names())


def test_the_catalog_is_light_and_its_minimum_sizes_are_the_metrics_own():
    """The catalog lists every metric without importing PyTorch or a metric module; the minimum
    sizes it states follow from each metric's own windows and scales."""
    import subprocess
    import sys

    code = ("import sys; from core import metrics; specs = metrics.specs(); "
            "print(len(specs), 'torch' in sys.modules, any(m.startswith('core.metrics.') and m.split('.')[-1] "
            "in metrics.names() for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(len(metrics.names())), "False", "False"]

    from core.metrics import catalog
    from core.metrics.ms_ssim import MS_SSIM_WEIGHTS
    from core.metrics.ssim import SSIM_WINDOW
    from core.metrics.vif import pyramid_height, VIF_LEVELS
    from core.metrics.vifp import _coarsest_side

    assert catalog.SSIM_MIN_SIZE == SSIM_WINDOW
    assert catalog.MS_SSIM_MIN_SIZE == SSIM_WINDOW * 2 ** (len(MS_SSIM_WEIGHTS) - 1)
    assert _coarsest_side(catalog.VIFP_MIN_SIZE) >= 1 > _coarsest_side(catalog.VIFP_MIN_SIZE - 1)
    assert pyramid_height(catalog.VIF_MIN_SIZE) == VIF_LEVELS > pyramid_height(catalog.VIF_MIN_SIZE - 1)
    from core.metrics.cw_ssim import CW_SSIM_LEVEL, max_levels
    from core.metrics.nlpd import level_sides

    assert max_levels(catalog.CW_SSIM_MIN_SIZE, 999) == CW_SSIM_LEVEL > max_levels(catalog.CW_SSIM_MIN_SIZE - 1, 999)
    assert min(level_sides(catalog.NLPD_MIN_SIZE)[:-1]) == 2 > min(level_sides(catalog.NLPD_MIN_SIZE - 1)[:-1])
    for spec in metrics.specs():  # each implementation resolves to a function of its module
        assert callable(spec.prepare) and callable(spec.score)
        if isinstance(spec.score, metrics.Deferred):
            assert spec.score.resolve().__module__ == spec.score.module
