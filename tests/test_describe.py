"""viz.describe: the words of the text alternatives, checked on maps whose bright part is placed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from viz import describe

PLACES = {(0, 0): "top left", (0, 1): "top centre", (0, 2): "top right", (1, 0): "left", (1, 1): "centre",
          (1, 2): "right", (2, 0): "bottom left", (2, 1): "bottom centre", (2, 2): "bottom right"}


@pytest.mark.parametrize(("cell", "words"), sorted(PLACES.items()))
@pytest.mark.parametrize("shape", [(30, 30), (31, 47), (9, 3)])
def test_the_bright_ninth_is_named(cell, words, shape):
    h, w = shape
    m = np.full(shape, 0.01)
    r, c = cell
    # A spot inside that ninth (by thirds of the height and width), however the map's size divides.
    m[int((r + 0.5) * h / 3), int((c + 0.5) * w / 3)] = 5.0
    assert describe.where_brightest(m) == words


def test_even_and_empty_maps_say_so():
    rng = np.random.default_rng(0)
    assert describe.where_brightest(1 + 0.01 * rng.random((64, 64))) == "evenly spread"
    assert describe.where_brightest(np.zeros((8, 8))) == "nowhere (the map is zero)"
    m = np.zeros((6, 6))
    m[0, 5] = np.nan  # a NaN counts as nothing, not as the brightest
    m[5, 0] = 1.0
    assert describe.where_brightest(m) == "bottom left"


def test_bad_maps_are_refused_with_the_shape():
    with pytest.raises(ValueError, match=r"2-D map.*\(3,\)"):
        describe.where_brightest(np.ones(3))


def test_map_alt_changes_with_the_map_and_the_value():
    m = np.zeros((12, 12))
    m[:4, :4] = 1
    first = describe.map_alt("LPIPS map", m, 0.24451, reading="bright = more different")
    assert first == "LPIPS map (bright = more different): brightest at the top left; 0.2445 overall."
    moved = np.rot90(m, 2)
    assert "bottom right" in describe.map_alt("LPIPS map", moved, 0.1)
    assert describe.map_alt("X", np.zeros((3, 3)), 0.0) == "X: zero everywhere; 0.0000 overall."


def test_bars_summary_shares_and_largest():
    text = describe.bars_summary("Layers", ["conv1", "conv2", "conv3"], [0.01, 0.03, 0.06], total=0.1)
    assert text == "Layers: conv1 0.0100 (10%), conv2 0.0300 (30%), conv3 0.0600 (60%); largest: conv3."
    with pytest.raises(ValueError, match="one value per name"):
        describe.bars_summary("Layers", ["a"], [1.0, 2.0])


def test_series_summary_skips_gaps_and_infinities():
    text = describe.series_summary("sigma (px)", [0.5, 1.0, 2.0],
                                   {"LPIPS": [0.05, 0.2, 0.4], "PSNR": [float("inf"), 30.0, 24.0], "Flat": [1, 1, 1]},
                                   digits=2)
    assert text == ("As sigma (px) goes from 0.5 to 2: LPIPS rises from 0.05 to 0.40; PSNR falls from 30.00 to "
                    "24.00; Flat stays at 1.00.")
