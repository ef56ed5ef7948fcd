"""What a screen reader gets on Explore, through Streamlit's AppTest: the cards' polite live
summary and the images' text alternatives, checked against the numbers the cards show and the
map core computes (tests/test_browser_a11y.py checks the same pages in a browser with axe-core)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from test_app import DEFAULT_CHAIN, DEFAULT_SAMPLE, assert_clean, distorted, engine, sample_ref, start

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest


def live_text(at) -> str:
    found = [m.value for m in at.markdown if 'aria-live="polite"' in m.value]
    assert len(found) == 1, "exactly one polite live region on Explore"
    return re.sub(r"<[^>]+>", "", found[0])


def image_alts(at) -> list[str]:
    return [img.alt for element in at.get("image") for img in element.proto.imgs]


def test_the_live_summary_reads_every_card_and_follows_a_move():
    at = start()
    text = live_text(at)
    for card in at.metric:
        assert f"{card.label} {card.value}" in text, (card.label, card.value, text)
    assert "(lower = more similar)" in text and "(higher = more similar)" in text
    at.session_state["dist.0.sigma"] = 3.0
    at.run()
    assert_clean(at)
    moved = live_text(at)
    lpips = next(m for m in at.metric if m.label.startswith("LPIPS"))
    assert moved != text and f"{lpips.label} {lpips.value}" in moved


def test_the_map_alt_says_where_core_s_map_is_brightest():
    from core.comparison import compare
    from viz.describe import where_brightest

    at = start()
    alts = image_alts(at)
    assert "Distorted image: gaussian_blur(sigma=1.5)." in alts
    (map_alt,) = [a for a in alts if a.startswith("LPIPS map")]
    # The same pair, scored here with core: where its LPIPS map is brightest, and its value.
    ref = sample_ref(DEFAULT_SAMPLE)
    result = compare(engine(), ref, distorted(ref, DEFAULT_CHAIN), metrics=("lpips",), spatial=("lpips",))
    values = result.maps["lpips"][0, 0].numpy()
    assert f"brightest at the {where_brightest(values)}" in map_alt
    lpips = next(m for m in at.metric if m.label.startswith("LPIPS"))
    assert f"; {lpips.value} overall." in map_alt
    assert np.isfinite(values).all()
