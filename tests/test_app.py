"""The Streamlit app, driven headless through ``streamlit.testing.v1.AppTest``.

Every number a metric card shows is checked against ``core`` computed directly here, on the
same pixels the app computes on: the image decoded and downscaled to the compute size limit,
then 8-bit quantized; the distortion chain applied with the chain's seed and quantized again.
A card shows 4 decimals (PSNR 2), so it must equal the core value to within half a unit of
its last digit.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import distortions
from core.lpips import weights
from core.metrics.ms_ssim import MS_SSIM_MIN_SIZE
from core.metrics.ms_ssim import ms_ssim as core_ms_ssim
from core.metrics.psnr import psnr as core_psnr
from core.metrics.ssim import ssim as core_ssim
from core.errors import LpipsExplorerError
from core.images.imageio import downscale_to_fit, load_image_info, match_size
from core.lpips.engine import Engine
from core.images.samples import list_samples, load_sample
from core.images.tensors import from_numpy, quantize_8bit, to_uint8

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

APP = Path(__file__).resolve().parents[1] / "views" / "app.py"
TIMEOUT = 120  # seconds per script run; the first loads torch and the networks on a 2-core CPU
MAX_SIDE = 512  # the app's default compute size limit (settings.max_side)
SMALL = 256  # a lower limit, for tests about wiring rather than the default numbers (2-core CPU)
DEFAULT_SAMPLE = "astronaut"
DEFAULT_CHAIN = [distortions.Step("gaussian_blur", {"sigma": 1.5})]


# ---------------------------------------------------------------------------------------------
# What core says.
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def engine(net: str = "alex", version: str = "0.1", calibrated: bool = True) -> Engine:
    return Engine(net, version, calibrated, "cpu")


def prepared(tensor: torch.Tensor, max_side: int = MAX_SIDE) -> torch.Tensor:
    """What the app computes on: downscaled to the size limit, then 8-bit."""
    small, _ = downscale_to_fit(tensor, max_side)
    return from_numpy(to_uint8(small))


@lru_cache(maxsize=None)
def sample_ref(key: str, max_side: int = MAX_SIDE) -> torch.Tensor:
    return prepared(load_sample(key), max_side)


def decoded(data: bytes, max_side: int = MAX_SIDE) -> torch.Tensor:
    return prepared(load_image_info(data).tensor, max_side)


def distorted(ref: torch.Tensor, chain, seed: int = 0) -> torch.Tensor:
    return quantize_8bit(distortions.apply(chain, ref, seed=seed))


def expected(ref: torch.Tensor, dist: torch.Tensor, *, net: str = "alex", version: str = "0.1",
             calibrated: bool = True, ssim_mode: str = "reference") -> dict[str, float]:
    return {
        "lpips": float(engine(net, version, calibrated).distance(ref, dist)[0]),
        "psnr": float(core_psnr(ref, dist)[0]),
        "ssim": float(core_ssim(ref, dist, mode=ssim_mode)[0]),
        "ms_ssim": (float(core_ms_ssim(ref, dist, mode=ssim_mode)[0])
                    if min(ref.shape[-2:]) >= MS_SSIM_MIN_SIZE else math.nan),
    }


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def sample_pixels(key: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """A sample's pixels (optionally resized to ``size`` = (width, height)), H×W×3 uint8."""
    pixels = to_uint8(load_sample(key))
    if size is None:
        return pixels
    return np.array(Image.fromarray(pixels).resize(size, Image.Resampling.BICUBIC))


# ---------------------------------------------------------------------------------------------
# What the app shows.
# ---------------------------------------------------------------------------------------------

# A card's delta: the signed change since the previous setting (a suffix naming it is optional).
DELTA = re.compile(r"([+-]\d+\.\d+)(?: since last setting)?")
CARD_PREFIX = {"lpips": "LPIPS (", "psnr": "PSNR", "ssim": "SSIM (", "ms_ssim": "MS-SSIM"}


def start(**state) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert not at.warning, [w.value for w in at.warning]


def cards(at: AppTest) -> dict:
    found = {}
    for metric in at.metric:
        for name, prefix in CARD_PREFIX.items():
            if metric.label.startswith(prefix):
                assert name not in found, f"two {name} cards: {[m.label for m in at.metric]}"
                found[name] = metric
    assert set(found) == set(CARD_PREFIX), [m.label for m in at.metric]
    # Other registered metrics shown by default (their own tests check them) have one card each.
    from core import metrics

    others = [m.label for m in at.metric if not any(m.label.startswith(p) for p in CARD_PREFIX.values())]
    assert sorted(others) == sorted({o for o in others}), others
    assert all(any(o.startswith(s.label) for s in metrics.specs()) for o in others), others
    return found


def shown_number(name: str, text: str) -> float:
    if text == "n/a":
        return math.nan
    if name == "psnr":
        if text == "∞ dB (identical)":
            return math.inf
        assert re.fullmatch(r"-?\d+\.\d\d dB", text), text
        return float(text[:-3])
    assert re.fullmatch(r"-?\d+\.\d{4}", text), text
    return float(text)


def assert_cards_match(at: AppTest, want: dict[str, float]) -> dict[str, float]:
    """Every card equals ``want`` rounded to its displayed digits; returns the shown numbers."""
    shown = {}
    for name, metric in cards(at).items():
        value = shown_number(name, metric.value)
        shown[name] = value
        if math.isinf(want[name]) or math.isnan(want[name]):
            assert text_matches_special(value, want[name]), (name, metric.value, want[name])
            continue
        digits = 2 if name == "psnr" else 4
        # Half a unit in the last digit, plus float noise between the batched and direct paths
        # (the page computes SSIM/MS-SSIM on the float64 reference path, as `expected` does).
        noise = 1e-6
        assert abs(value - want[name]) <= 0.5 * 10**-digits + noise, (name, metric.value, want[name])
    return shown


def delta_of(metric) -> float:
    match = DELTA.fullmatch(metric.delta)
    assert match, f"{metric.label}: delta {metric.delta!r}"
    return float(match.group(1))


def text_matches_special(shown: float, want: float) -> bool:
    return (math.isnan(shown) and math.isnan(want)) or shown == want


def steps(at: AppTest) -> list[str]:
    return [s["name"] for s in at.session_state["chain.steps"]]


# ---------------------------------------------------------------------------------------------
# Tests.
# ---------------------------------------------------------------------------------------------

def test_default_page_shows_core_numbers():
    at = start()
    assert [t.value for t in at.title] == ["LPIPS Explorer"]
    assert at.select_slider(key="settings.max_side").value == MAX_SIDE  # LPIPS_EXPLORER_MAX_SIDE unset
    assert at.segmented_control(key="source.kind").value == "Sample"
    assert at.segmented_control(key="compare.mode").value == "A distortion"
    assert at.selectbox(key="source.sample").value == DEFAULT_SAMPLE == list_samples()[0].key
    assert steps(at) == ["gaussian_blur"]
    assert at.slider(key="dist.0.sigma").value == 1.5
    assert at.number_input(key="chain.seed").value == 0

    metrics = cards(at)
    assert metrics["lpips"].label == "LPIPS (alex v0.1)"
    assert metrics["ssim"].label == "SSIM (reference)"
    assert all(not m.delta for m in metrics.values())  # nothing to compare with yet
    ref = sample_ref(DEFAULT_SAMPLE)
    want = expected(ref, distorted(ref, DEFAULT_CHAIN))
    assert_cards_match(at, want)
    assert metrics["psnr"].value == f"{want['psnr']:.2f} dB"
    assert at.caption.values.count(f"Distortion: {distortions.describe(DEFAULT_CHAIN)}") == 1


def test_another_sample_changes_and_matches():
    at = start()
    before = {n: m.value for n, m in cards(at).items()}
    at.selectbox(key="source.sample").set_value("cat").run()
    assert_clean(at)
    ref = sample_ref("cat")
    assert tuple(ref.shape[-2:]) == (300, 451)
    assert_cards_match(at, expected(ref, distorted(ref, DEFAULT_CHAIN)))
    after = {n: m.value for n, m in cards(at).items()}
    assert after["lpips"] != before["lpips"] and after["psnr"] != before["psnr"]

    # A lower compute size limit shrinks the sample before anything is measured.
    at.select_slider(key="settings.max_side").set_value(256).run()
    assert_clean(at)
    small = prepared(load_sample("cat"), 256)
    assert tuple(small.shape[-2:]) == (170, 256)
    assert any("downscaled from 451×300 to 256×170" in c for c in at.caption.values), at.caption.values
    shown = assert_cards_match(at, expected(small, distorted(small, DEFAULT_CHAIN)))
    assert cards(at)["ms_ssim"].value == "n/a"  # MS-SSIM needs 176 px per side
    assert shown["lpips"] != float(after["lpips"])


def test_sigma_slider_updates_lpips_with_delta_then_identity_at_zero():
    at = start(**{"settings.max_side": SMALL})
    ref = sample_ref(DEFAULT_SAMPLE, SMALL)
    first = assert_cards_match(at, expected(ref, distorted(ref, DEFAULT_CHAIN)))

    at.slider(key="dist.0.sigma").set_value(3.0).run()
    assert_clean(at)
    chain = [distortions.Step("gaussian_blur", {"sigma": 3.0})]
    want = expected(ref, distorted(ref, chain))
    second = assert_cards_match(at, want)
    assert second["lpips"] > first["lpips"]
    assert second["psnr"] < first["psnr"]
    assert delta_of(cards(at)["lpips"]) == pytest.approx(second["lpips"] - first["lpips"], abs=2e-4)
    assert delta_of(cards(at)["psnr"]) == pytest.approx(second["psnr"] - first["psnr"], abs=0.02)
    assert delta_of(cards(at)["psnr"]) < 0

    at.slider(key="dist.0.sigma").set_value(0.0).run()
    assert_clean(at)
    metrics = cards(at)
    assert metrics["lpips"].value == "0.0000"
    assert metrics["psnr"].value == "∞ dB (identical)"
    assert not metrics["psnr"].delta  # no delta to or from infinity
    assert metrics["ssim"].value == "1.0000"
    assert metrics["ms_ssim"].value == "1.0000"
    assert delta_of(metrics["lpips"]) == pytest.approx(-second["lpips"], abs=2e-4)


def test_chain_add_seed_reorder_remove():
    at = start(**{"settings.max_side": SMALL})
    ref = sample_ref(DEFAULT_SAMPLE, SMALL)
    blur, noise = DEFAULT_CHAIN[0], distortions.Step("gaussian_noise", {})

    at.selectbox(key="chain.add_choice").set_value("gaussian_noise").run()
    at.button(key="chain.add").click().run()
    assert_clean(at)
    assert steps(at) == ["gaussian_blur", "gaussian_noise"]
    assert at.slider(key="dist.1.sigma").value == distortions.REGISTRY["gaussian_noise"].defaults()["sigma"]
    assert {"chain.1.up", "chain.1.down", "chain.1.remove"} <= {b.key for b in at.button}
    seed = at.number_input(key="chain.seed").value
    added = assert_cards_match(at, expected(ref, distorted(ref, [blur, noise], seed)))

    at.number_input(key="chain.seed").set_value(7).run()
    assert_clean(at)
    reseeded = assert_cards_match(at, expected(ref, distorted(ref, [blur, noise], 7)))
    assert reseeded != added

    at.button(key="chain.1.up").click().run()
    assert_clean(at)
    assert steps(at) == ["gaussian_noise", "gaussian_blur"]
    reordered = assert_cards_match(at, expected(ref, distorted(ref, [noise, blur], 7)))
    assert reordered["lpips"] != reseeded["lpips"]
    assert at.button(key="chain.1.up").disabled and not at.button(key="chain.0.up").disabled

    at.button(key="chain.0.remove").click().run()
    assert_clean(at)
    assert steps(at) == ["gaussian_noise"]
    assert "dist.0.sigma" not in {s.key for s in at.slider}
    assert_cards_match(at, expected(ref, distorted(ref, [noise], 7)))

    at.button(key="chain.1.remove").click().run()
    assert_clean(at)
    assert steps(at) == []
    assert at.metric[0].value == "0.0000"
    # The numbers were computed from the widgets' state before the editor was drawn, and the
    # editor always agreed (else the page would have switched this session to editor-first).
    assert "explore.editor_first" not in at.session_state


def test_network_version_and_baseline_settings():
    # At the lower compute limit: VGG on a 2-core CPU is slow, and only the settings matter here.
    at = start(**{"settings.max_side": SMALL})
    ref = sample_ref(DEFAULT_SAMPLE, SMALL)
    assert tuple(ref.shape[-2:]) == (SMALL, SMALL)
    dist = distorted(ref, DEFAULT_CHAIN)
    assert_cards_match(at, expected(ref, dist))

    at.radio(key="settings.net").set_value("vgg").run()
    assert_clean(at)
    assert "vgg" in cards(at)["lpips"].label
    assert_cards_match(at, expected(ref, dist, net="vgg"))

    at.radio(key="settings.net").set_value("alex")
    at.radio(key="settings.version").set_value("0.0").run()
    assert_clean(at)
    assert cards(at)["lpips"].label == "LPIPS (alex v0.0)"
    assert_cards_match(at, expected(ref, dist, version="0.0"))

    at.radio(key="settings.version").set_value("0.1")
    at.toggle(key="settings.calibrated").set_value(False).run()
    assert_clean(at)
    assert cards(at)["lpips"].label == "LPIPS (alex v0.1, baseline)"
    baseline = assert_cards_match(at, expected(ref, dist, calibrated=False))

    at.selectbox(key="settings.device").set_value("cpu").run()  # "auto" is the CPU here too
    assert_clean(at)
    assert assert_cards_match(at, expected(ref, dist, calibrated=False)) == baseline


def test_ssim_rgb_mode():
    at = start(**{"settings.max_side": SMALL})
    at.radio(key="settings.ssim_mode").set_value("rgb").run()
    assert_clean(at)
    assert cards(at)["ssim"].label == "SSIM (rgb)"
    ref = sample_ref(DEFAULT_SAMPLE, SMALL)
    dist = distorted(ref, DEFAULT_CHAIN)
    want = expected(ref, dist, ssim_mode="rgb")
    assert want["ssim"] != pytest.approx(float(core_ssim(ref, dist, mode="reference")[0]), abs=1e-4)
    assert_cards_match(at, want)


def test_missing_squeeze_weights_explained(monkeypatch):
    from views import common

    ok, reason = weights.backbone_available("squeeze")
    if ok:  # provisioned on this machine: make it look missing, the way weights.py reports it
        real = weights.backbone_available
        reason = ("SqueezeNet weights are not installed. Online, run "
                  f"`{weights.FIX_COMMAND} --net squeeze`.")
        monkeypatch.setattr(weights, "backbone_available",
                            lambda net: (False, reason) if net == "squeeze" else real(net))
    common.weights_status.clear()
    try:
        at = start()
        at.radio(key="settings.net").set_value("squeeze").run()
        assert not at.exception, [e.value for e in at.exception]
        messages = [e.value for e in at.error] + [w.value for w in at.warning]
        assert any("squeeze" in m and reason in m for m in messages), messages
        assert any(weights.FIX_COMMAND in m for m in messages), messages
        assert not at.metric  # nothing computed with a network that is not there
        assert "weights missing" in " ".join(at.radio(key="settings.net").proto.captions)

        at.radio(key="settings.net").set_value("alex").run()
        assert_clean(at)
        from core import metrics

        assert len(at.metric) == len(metrics.defaults())
    finally:
        common.weights_status.clear()


def test_upload_reference_and_bad_file():
    at = start()
    at.segmented_control(key="source.kind").set_value("Upload").run()
    assert_clean(at)
    assert not at.metric
    assert any("Upload an image" in i.value for i in at.info)

    pixels = sample_pixels("coffee", (320, 224))
    at.file_uploader(key="source.upload").set_value(("mine.png", png_bytes(pixels), "image/png")).run()
    assert_clean(at)
    ref = from_numpy(pixels)
    assert_cards_match(at, expected(ref, distorted(ref, DEFAULT_CHAIN)))

    text = b"this is not an image, just text that someone named .png\n"
    with pytest.raises(LpipsExplorerError) as loader:
        load_image_info(text)
    at.file_uploader(key="source.upload").set_value(("notes.png", text, "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1
    assert "This image cannot be used" in at.error[0].value
    assert str(loader.value) in at.error[0].value
    assert not at.metric


def test_large_upload_is_downscaled_with_a_note():
    at = start()
    at.segmented_control(key="source.kind").set_value("Upload").run()
    pixels = sample_pixels("astronaut", (700, 600))
    data = png_bytes(pixels)
    at.file_uploader(key="source.upload").set_value(("big.png", data, "image/png")).run()
    assert_clean(at)
    assert any("downscaled from 700×600 to 512×439" in c.value for c in at.caption), at.caption.values
    ref = decoded(data)
    assert tuple(ref.shape[-2:]) == (439, 512)
    assert_cards_match(at, expected(ref, distorted(ref, DEFAULT_CHAIN)))


def test_second_image_of_other_size_resize_and_crop():
    at = start()
    at.selectbox(key="source.sample").set_value("cat").run()
    at.segmented_control(key="compare.mode").set_value("A second image").run()
    assert_clean(at)
    assert not at.metric
    assert any("Upload a second image" in i.value for i in at.info)

    other = sample_pixels("cat", (480, 320))  # the same scene, a little larger
    at.file_uploader(key="compare.upload").set_value(("other.png", png_bytes(other), "image/png")).run()
    assert_clean(at)
    fit = at.radio(key="compare.fit")
    assert fit.value is None and fit.options == ["resizing it to the reference", "center-cropping it"]
    assert "480×320" in fit.label and "451×300" in fit.label
    assert not at.metric

    ref = sample_ref("cat")
    at.radio(key="compare.fit").set_value("resize").run()
    assert_clean(at)
    resized = from_numpy(to_uint8(match_size(ref, from_numpy(other), "resize")))
    resize_shown = assert_cards_match(at, expected(ref, resized))

    at.radio(key="compare.fit").set_value("crop").run()
    assert_clean(at)
    cropped = from_numpy(to_uint8(match_size(ref, from_numpy(other), "crop")))
    crop_shown = assert_cards_match(at, expected(ref, cropped))
    assert crop_shown != resize_shown

    smaller = sample_pixels("cat", (400, 266))  # crop cannot make this larger
    at.file_uploader(key="compare.upload").set_value(("small.png", png_bytes(smaller), "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1 and "The sizes cannot be matched that way" in at.error[0].value
    assert not at.metric


def test_second_image_same_size_needs_no_fit():
    at = start()
    at.segmented_control(key="compare.mode").set_value("A second image").run()
    ref = sample_ref(DEFAULT_SAMPLE)
    other = to_uint8(distortions.apply([distortions.Step("jpeg", {"quality": 20})], ref))
    at.file_uploader(key="compare.upload").set_value(("other.png", png_bytes(other), "image/png")).run()
    assert_clean(at)
    assert "compare.fit" not in {r.key for r in at.radio}
    assert_cards_match(at, expected(ref, from_numpy(other)))


def test_camera_reference():
    at = start()
    at.segmented_control(key="source.kind").set_value("Camera").run()
    assert_clean(at)
    assert not at.metric
    data = jpeg_bytes(sample_pixels("coffee", (320, 240)))
    at.camera_input(key="source.camera").set_value(("shot.jpg", data, "image/jpeg")).run()
    assert_clean(at)
    ref = decoded(data)
    assert_cards_match(at, expected(ref, distorted(ref, DEFAULT_CHAIN)))


def test_view_toggles_do_not_raise_or_change_numbers():
    at = start()
    before = {n: m.value for n, m in cards(at).items()}
    assert at.slider(key="view.opacity").disabled
    at.toggle(key="view.overlay").set_value(True).run()
    assert_clean(at)
    assert not at.slider(key="view.opacity").disabled
    at.slider(key="view.opacity").set_value(0.3).run()
    assert_clean(at)
    at.session_state["view.layers"] = True  # open the layer view (as a click on the expander does)
    at.run()
    assert_clean(at)
    at.toggle(key="view.shared_scale").set_value(False).run()
    assert_clean(at)
    assert {n: m.value for n, m in cards(at).items()} == before
    assert all(not m.delta for m in at.metric)  # a view change is not a new setting


def test_layer_view_is_computed_only_when_open():
    at = start()
    assert not at.get("plotly_chart")  # collapsed: no layer maps, no SSIM or error map computed
    shown = {n: m.value for n, m in cards(at).items()}
    at.session_state["view.layers"] = True
    at.run()
    assert_clean(at)
    charts = at.get("plotly_chart")
    # the per-layer grid, the layer bars and one chart per other shown metric with a map (PSNR's error, SSIM...)
    from core import metrics

    with_maps = [k for k in metrics.defaults() if k != "lpips" and metrics.get(k).has_map]
    assert len(charts) == 2 + len(with_maps), [c.proto for c in charts][:1]
    assert {n: m.value for n, m in cards(at).items()} == shown
    at.session_state["view.layers"] = False
    at.run()
    assert_clean(at)
    assert not at.get("plotly_chart")


def test_too_small_upload_is_explained():
    at = start()
    at.segmented_control(key="source.kind").set_value("Upload").run()
    tiny = sample_pixels("cat", (20, 20))
    at.file_uploader(key="source.upload").set_value(("tiny.png", png_bytes(tiny), "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1, [e.value for e in at.error]
    assert "at least 31×31 pixels, got 20×20" in at.error[0].value
    assert not at.metric


def test_every_distortion_in_one_chain_matches_core():
    """Each registry entry added with its default parameters (sliders, int sliders, choice radios)."""
    at = start()
    at.segmented_control(key="source.kind").set_value("Upload").run()
    pixels = sample_pixels("coffee", (96, 64))  # small: 16 script runs stay quick
    at.file_uploader(key="source.upload").set_value(("small.png", png_bytes(pixels), "image/png")).run()
    for name in distortions.REGISTRY:  # pick and click in one run: the callback sees the new choice
        at.selectbox(key="chain.add_choice").set_value(name)
        at.button(key="chain.add").click().run()
        assert_clean(at)
    assert steps(at) == ["gaussian_blur", *distortions.REGISTRY]
    for i, name in enumerate(distortions.REGISTRY, start=1):
        for param, value in distortions.REGISTRY[name].defaults().items():
            assert at.session_state[f"dist.{i}.{param}"] == value, (name, param)
    at.number_input(key="chain.seed").set_value(11).run()
    assert_clean(at)
    chain = DEFAULT_CHAIN + [distortions.Step(name, {}) for name in distortions.REGISTRY]
    ref = from_numpy(pixels)
    assert_cards_match(at, expected(ref, distorted(ref, chain, 11)))
    assert cards(at)["ms_ssim"].value == "n/a"


def test_delta_after_changing_reference_with_a_second_image():
    at = start()
    at.selectbox(key="source.sample").set_value("cat").run()
    at.segmented_control(key="compare.mode").set_value("A second image").run()
    other = sample_pixels("cat", (480, 320))
    at.file_uploader(key="compare.upload").set_value(("other.png", png_bytes(other), "image/png")).run()
    at.radio(key="compare.fit").set_value("resize").run()
    assert_clean(at)
    before = shown_number("lpips", cards(at)["lpips"].value)

    at.selectbox(key="source.sample").set_value("coffee").run()
    assert_clean(at)
    ref = sample_ref("coffee")
    fitted = from_numpy(to_uint8(match_size(ref, from_numpy(other), "resize")))
    now = assert_cards_match(at, expected(ref, fitted))["lpips"]
    assert delta_of(cards(at)["lpips"]) == pytest.approx(now - before, abs=2e-4)


def test_hidden_metric_is_neither_shown_nor_computed():
    from core import metrics

    calls = []
    spec = metrics.get("ms_ssim")
    original = spec.score
    import streamlit as st

    st.cache_data.clear()  # earlier tests may have cached this very comparison
    # A counting copy of MS-SSIM's spec in the registry (specs are frozen), put back at the end.
    metrics.register(dataclasses.replace(spec, score=lambda *a, **k: calls.append(1) or original(*a, **k)),
                     replace=True)
    try:
        at = start(**{"settings.metrics": ["psnr", "ssim"]})
        labels = [m.label for m in at.metric]
        assert not any(label.startswith("MS-SSIM") for label in labels), labels
        assert any(label.startswith("LPIPS (") for label in labels) and len(labels) == 3
        assert calls == []
        at.multiselect(key="settings.metrics").set_value(["psnr", "ssim", "ms_ssim"]).run()
        assert_clean(at)
        assert any(m.label.startswith("MS-SSIM") for m in at.metric) and calls
    finally:
        metrics.register(spec, replace=True)


def test_vif_and_vifp_cards_are_two_metrics():
    """VIF (wavelet domain, vifvec.m) and VIFp (pixel domain) have their own cards and values:
    each equals core's metric on the pair the page shows."""
    from core.metrics.vif import vif as core_vif
    from core.metrics.vifp import vifp as core_vifp

    at = start(**{"settings.max_side": 256, "settings.metrics": ["psnr", "vif", "vifp"]})
    ref = sample_ref(DEFAULT_SAMPLE, 256)
    dist = distorted(ref, DEFAULT_CHAIN)
    for label, value in (("VIF", core_vif(ref, dist)), ("VIFp", core_vifp(ref, dist))):
        card = metric_named(at, label)
        assert abs(float(card.value) - float(value[0])) <= 1e-4, (label, card.value, float(value[0]))
    assert abs(float(metric_named(at, "VIF").value) - float(metric_named(at, "VIFp").value)) > 1e-3


# ---------------------------------------------------------------------------------------------
# The comparison view and the region it asks about (issue 10).
# ---------------------------------------------------------------------------------------------

def metric_named(at: AppTest, label: str):
    found = [m for m in at.metric if m.label == label]
    assert len(found) == 1, [m.label for m in at.metric]
    return found[0]


def test_each_card_states_its_direction_from_the_registry():
    from core import metrics

    at = start()
    captions = at.caption.values
    shown = [m for m in at.metric]
    for metric in shown:
        spec = next(s for s in metrics.specs() if metric.label.startswith(s.label))
        want = "higher = more similar" if spec.higher_is_better else "lower = more similar"
        assert want in captions
    assert captions.count("lower = more similar") == sum(
        1 for m in shown if not next(s for s in metrics.specs() if m.label.startswith(s.label)).higher_is_better)


def test_comparison_view_and_region_are_computed_only_when_asked_for():
    at = start()
    assert not at.get("bidi_component")  # collapsed: no images sent for it
    at.session_state["view.closer"] = True
    at.run()
    assert_clean(at)
    views = at.get("bidi_component")
    assert len(views) == 1
    assert not [m for m in at.metric if m.label.startswith("Patch")]  # no region picked yet: nothing computed
    assert not at.get("plotly_chart")


def test_region_numbers_and_channels_come_from_core():
    from core.regions import Box, channel_contributions, patch_scores, region_contributions

    at = start()
    digest = at.session_state["explore.last"]["key"].split("|")[0]
    box = (100, 120, 164, 184)
    at.session_state["view.closer"] = True
    at.session_state["region.box"] = (digest, box)
    at.run()
    assert_clean(at)
    ref = sample_ref(DEFAULT_SAMPLE)
    dist = distorted(ref, DEFAULT_CHAIN)
    result = engine().compare(ref, dist, spatial=False)
    region = region_contributions(result, tuple(ref.shape[-2:]), Box(*box))
    scores = patch_scores(ref, dist, Box(*box))
    assert metric_named(at, "Patch LPIPS").value == f"{region.lpips:.4f}"
    assert metric_named(at, "Share of the image's LPIPS").value == f"{region.share:.4f}"
    assert metric_named(at, "Patch PSNR").value == f"{scores['psnr']:.2f} dB"
    assert metric_named(at, "Patch SSIM").value == f"{scores['ssim']:.4f}"
    assert any(f"Region x 100–164, y 120–184 px (64×64 px, {100 * 64 * 64 / (512 * 512):.1f}% of the image)" in m
               for m in at.markdown.values)
    # The layer bars are the region's layer shares, adding up to its share.
    bars = next(c for c in at.get("plotly_chart") if "Layers' share from this region" in c.proto.spec)
    import json

    spec = json.loads(bars.proto.spec)
    np.testing.assert_allclose(spec["data"][0]["y"], region.layer_shares, rtol=1e-9)
    # Channels: the layer with the largest share is preselected; its top 8 and their total.
    largest = region.layer_names[int(np.argmax(region.layer_shares))]
    assert at.selectbox(key="region.layer").value == largest
    channels = channel_contributions(engine(), engine().reference(ref), dist, largest, box=Box(*box))
    caption = next(c for c in at.caption.values if c.startswith("The top 8 of"))
    assert f"of {largest} carry {100 * sum(channels.top_shares):.0f}% of its {channels.layer_value:.5f}" in caption
    assert channels.layer_value == pytest.approx(region.layer_shares[region.layer_names.index(largest)], rel=1e-5)
    # Another layer, over the whole image: the channels add up to that layer's value for the image.
    at.selectbox(key="region.layer").set_value("relu1")
    at.segmented_control(key="region.area").set_value("The whole image").run()
    assert_clean(at)
    whole = channel_contributions(engine(), engine().reference(ref), dist, "relu1")
    caption = next(c for c in at.caption.values if c.startswith("The top 8 of"))
    assert f"of relu1 carry {100 * sum(whole.top_shares):.0f}% of its {whole.layer_value:.5f}" in caption
    assert whole.layer_value == pytest.approx(float(result.layer_values[0, 0]), rel=1e-5)
    # Clearing forgets the region.
    at.button(key="region.clear").click().run()
    assert_clean(at)
    assert not [m for m in at.metric if m.label.startswith("Patch")]


def test_a_region_of_another_reference_is_not_shown():
    at = start()
    at.session_state["view.closer"] = True
    at.session_state["region.box"] = ("another image", (0, 0, 64, 64))
    at.run()
    assert_clean(at)
    assert not [m for m in at.metric if m.label.startswith("Patch")]


def test_dists_terms_show_as_bars_that_add_up_to_its_card():
    """DISTS has no map: the layer view shows its per-layer texture and structure terms, which
    add up to the value on its card and equal core's DISTS computed directly."""
    import json

    from core.metrics.dists import dists as core_dists

    at = start(**{"settings.max_side": 256, "settings.metrics": ["psnr", "ssim", "ms_ssim", "dists"]})
    from core import metrics

    card = next(m for m in at.metric if m.label.startswith(metrics.get("dists").label))
    at.session_state["view.layers"] = True
    at.run()
    assert_clean(at)
    chart = next(c for c in at.get("plotly_chart") if "DISTS by layer" in c.proto.spec)
    texture, structure = (np.asarray(t["y"], dtype=float) for t in json.loads(chart.proto.spec)["data"])
    ref = sample_ref(DEFAULT_SAMPLE, 256)
    want = core_dists(ref, distorted(ref, DEFAULT_CHAIN), return_terms=True)
    np.testing.assert_allclose(texture, want.texture[0].numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(structure, want.structure[0].numpy(), rtol=1e-5, atol=1e-7)
    assert texture.sum() + structure.sum() == pytest.approx(float(want.value[0]), abs=1e-6)
    assert card.value == f"{float(want.value[0]):.4f}"


def test_cw_ssim_and_nlpd_cards_and_maps():
    """Added in the sidebar, CW-SSIM and NLPD get a card with core's value (read the way the
    registry says) and, in the layer view, their maps: CW-SSIM's at 1/8 of the side less 6,
    NLPD's finest level at full size (shrunk for the browser as every full-size map is)."""
    import base64
    import json

    from core.metrics.cw_ssim import cw_ssim
    from core.metrics.nlpd import nlpd

    at = start(**{"settings.max_side": 256, "settings.metrics": ["psnr", "cw_ssim", "nlpd"]})
    ref = sample_ref(DEFAULT_SAMPLE, 256)
    dist = distorted(ref, DEFAULT_CHAIN)
    assert metric_named(at, "CW-SSIM").value == f"{cw_ssim(ref, dist).item():.5f}"
    assert metric_named(at, "NLPD").value == f"{nlpd(ref, dist).item():.4f}"
    at.session_state["view.layers"] = True
    at.run()
    assert_clean(at)
    pixels = {}  # each map's title → how many values its heatmap holds (float32, base64)
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = (spec["layout"].get("title") or {}).get("text") or ""
        if spec["data"][0].get("type") == "heatmap" and title:
            pixels[title.split(" ")[0].rstrip(",")] = len(base64.b64decode(spec["data"][0]["z"]["bdata"])) // 4
    # NLPD's map is full size: the browser gets it shrunk exactly as PSNR's squared error.
    assert pixels.get("CW-SSIM") == (256 // 8 - 6) ** 2 and pixels.get("NLPD") == pixels["Squared"], pixels
