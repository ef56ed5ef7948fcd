"""Explore: pick or upload an image, distort it with sliders, watch LPIPS, PSNR and SSIM react.

Wiring only. A slider move reruns just the fragment that owns the distortion chain and the
results; the reference's features stay cached, so it costs one backbone pass.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from core.errors import LpipsExplorerError
from viz import charts, describe, heatmaps
from views import a11y, browser_input, explore_model as model
from views.common import (UPLOAD_MAX_MB, UPLOAD_TYPES, PreparedImage, Settings, fmt_metric, get_engine,
                          metric_context, note_computation, prepare_sample, prepared_for, prepare_upload,
                          sample_catalogue, show_error, sidebar_settings)

if TYPE_CHECKING:
    from core import distortions

# torch-based modules (core.distortions, core.comparison, core.images.tensors) are imported inside the
# functions that use them, so the first controls render before torch has finished loading.

DEFAULT_CHAIN = [("gaussian_blur", {"sigma": 1.5})]

INTRO = """
**LPIPS** (Zhang et al., CVPR 2018) compares what a deep network *sees* in two images: features
from several layers, normalized, weighted by a small model fitted to human judgments. **PSNR**
counts pixel errors; **SSIM** compares local brightness, contrast and structure. Move a slider
and watch which metric agrees with your eyes.
"""
WHY_SHIFTS = """
A one-pixel **shift** or a small **rotation** barely changes what you see, yet almost every
pixel now differs from the reference, so PSNR and SSIM drop sharply. LPIPS's features tolerate
small displacements, so it stays low. **Blur** is the opposite: few large pixel errors, but the
texture the network relies on is gone, so LPIPS rises.
"""


# ---------------------------------------------------------------------------------------------
# Images in.
# ---------------------------------------------------------------------------------------------

def reference_source(kind_slot, value_slot):
    """The reference widgets only (no decoding yet): ``(kind, value)`` or ``None``. The kind goes
    in ``kind_slot``, the sample or file picker beside it in ``value_slot`` (one compact row)."""
    kinds = ["Sample", "Upload", "Camera"]
    # required=True: a person cannot pick nothing, or anything else; a browser can send it.
    browser_input.widget_value("source.kind", lambda v: browser_input.choice(v, kinds), "Sample")
    with kind_slot:
        source = st.segmented_control("Reference image", kinds, default="Sample",
                                      key="source.kind", required=True)
    with value_slot:
        if source == "Upload":
            upload = st.file_uploader("Upload a reference image", type=UPLOAD_TYPES, key="source.upload",
                                      max_upload_size=UPLOAD_MAX_MB,
                                      help="PNG, JPEG, WebP, BMP, GIF or TIFF. Large images are downscaled.")
            if upload is None:
                st.info("Upload an image to use as the reference, or pick a sample.", icon=":material/upload:")
                return None
            return "upload", upload
        if source == "Camera":
            shot = st.camera_input("Take a picture", key="source.camera")
            if shot is None:
                st.info("Allow camera access and take a picture, or pick a sample.", icon=":material/photo_camera:")
                return None
            return "camera", shot
        catalogue = sample_catalogue()
        titles = {s["key"]: s["title"] for s in catalogue}
        about = "  \n".join(f"**{s['title']}**: {s['description']} ({s['credit']})" for s in catalogue)
        key = st.selectbox("Sample", list(titles), format_func=titles.get, key="source.sample",
                           persist_state="session", help=about)
    return "sample", key


def comparison_source():
    """The comparison widgets only: ``"distort"``, an uploaded file, or ``None``."""
    modes = ["A distortion", "A second image"]
    # required=True: a person cannot pick nothing (which would read as "a second image"); a browser can.
    browser_input.widget_value("compare.mode", lambda v: browser_input.choice(v, modes), "A distortion")
    mode = st.segmented_control("Compare the reference with", modes,
                                default="A distortion", key="compare.mode", required=True,
                                help="Second image: e.g. the outputs of two restoration methods.")
    if mode == "A distortion":
        return "distort"
    upload = st.file_uploader("Upload the image to compare", type=UPLOAD_TYPES, key="compare.upload",
                              max_upload_size=UPLOAD_MAX_MB)
    if upload is None:
        st.info("Upload a second image of the same scene to compare it with the reference.", icon=":material/upload:")
    return upload


def load_reference(settings: Settings, source) -> PreparedImage | None:
    kind, value = source
    try:
        if kind == "sample":
            return prepare_sample(value, settings.max_side)
        return prepare_upload(value.getvalue(), kind, settings.max_side)
    except LpipsExplorerError as err:
        show_error(err, "This image cannot be used")
        return None


def load_comparison(settings: Settings, ref: PreparedImage, upload) -> PreparedImage | None:
    """The second image, fitted to ``ref``'s size only when the person chooses how."""
    from core.images.imageio import match_size
    from core.images.tensors import from_numpy, to_uint8

    try:
        other = prepare_upload(upload.getvalue(), "second image", max(settings.max_side, max(ref.size)))
    except LpipsExplorerError as err:
        show_error(err, "The second image cannot be used")
        return None
    if other.size == ref.size:
        return other
    (rh, rw), (oh, ow) = ref.size, other.size
    how = st.radio(f"The second image is {ow}×{oh} px, the reference {rw}×{rh} px. Make them match by:",
                   ["resize", "crop"], index=None, key="compare.fit", horizontal=True,
                   format_func={"resize": "resizing it to the reference", "crop": "center-cropping it"}.get)
    if how is None:
        st.info("Choose how to match the sizes: every metric compares pixel by pixel.", icon=":material/aspect_ratio:")
        return None
    try:
        fitted = match_size(from_numpy(ref.pixels), from_numpy(other.pixels), how=how)
    except LpipsExplorerError as err:
        show_error(err, "The sizes cannot be matched that way")
        return None
    return PreparedImage(to_uint8(fitted), other.digest + how, other.name, other.notes + (f"{how}d to {rw}×{rh} px",))


# ---------------------------------------------------------------------------------------------
# The distortion chain editor (session state: a list of {id, name}; values live in widget keys).
# ---------------------------------------------------------------------------------------------

def _chain_state() -> list[dict]:
    if "chain.steps" not in st.session_state:
        st.session_state["chain.steps"] = []
        st.session_state["chain.next_id"] = 0
        for name, params in DEFAULT_CHAIN:
            _add_step(name, params)
    return st.session_state["chain.steps"]


def _add_step(name: str, params: dict | None = None) -> None:
    from core import distortions

    step_id = st.session_state.get("chain.next_id", 0)
    st.session_state["chain.next_id"] = step_id + 1
    values = {**distortions.REGISTRY[name].defaults(), **(params or {})}
    for pname, value in values.items():
        st.session_state[f"dist.{step_id}.{pname}"] = value
    st.session_state["chain.steps"].append({"id": step_id, "name": name})


def _on_add() -> None:
    from core import distortions

    # The page offers the registry's names only; anything else (an unknown name, a megabyte of
    # text) adds nothing and the picker goes back to its last good choice.
    names = list(distortions.REGISTRY)
    try:
        name = browser_input.choice(st.session_state.get("chain.add_choice"), names)
    except browser_input.BAD_INPUT:
        # Dropped, not set: a value of another type than the picker's (an index where its text
        # belongs) would break Streamlit's own bookkeeping of it; dropped, it shows its first option.
        if "chain.add_choice" in st.session_state:
            del st.session_state["chain.add_choice"]
        return
    _add_step(name)


def _on_remove(step_id: int) -> None:
    st.session_state["chain.steps"] = [s for s in st.session_state["chain.steps"] if s["id"] != step_id]


def _on_move(step_id: int, offset: int) -> None:
    steps = st.session_state["chain.steps"]
    i = next((k for k, s in enumerate(steps) if s["id"] == step_id), None)
    if i is None:  # a button of a step removed meanwhile (a stale or replayed click)
        return
    j = i + offset
    if 0 <= j < len(steps):
        steps[i], steps[j] = steps[j], steps[i]


def _param_widget(step_id: int, param: distortions.Param):
    key = f"dist.{step_id}.{param.name}"
    label = f"{param.label}" + (f" ({param.unit})" if param.unit and param.kind != "choice" else "")
    if param.kind == "choice":
        return st.radio(label, list(param.choices), key=key, horizontal=True, persist_state="session",
                        help=param.help or None)
    if param.kind == "int":
        return st.slider(label, int(param.min), int(param.max), step=int(param.step or 1), key=key,
                         persist_state="session", help=param.help or None)
    return st.slider(label, float(param.min), float(param.max), step=float(param.step), key=key,
                     persist_state="session", help=param.help or None)


SEED_MAX = 2**31 - 1


def chain_from_state() -> tuple[list[distortions.Step], int]:
    """The chain and seed the editor's widgets hold, read before they are drawn.

    A rerun starts with the browser's widget values already in ``st.session_state``, so the
    page can compute and send the numbers first and draw the editor's widgets (dozens of
    elements, ~60 ms of Streamlit's time) after them. :func:`chain_editor` returns the same chain;
    the fragment checks that it does.

    Streamlit has not checked these values yet (it does when it draws a widget), so each is
    checked here against the parameter's own range or choices; one the page does not offer
    goes back to its last good value (:func:`views.browser_input.widget_value`)."""
    from core import distortions

    chain = []
    for step in _chain_state():
        spec = distortions.REGISTRY[step["name"]]
        defaults = spec.defaults()
        chain.append(distortions.Step(step["name"], {
            p.name: browser_input.widget_value(f"dist.{step['id']}.{p.name}", p.validate, defaults[p.name])
            for p in spec.params}))
    seed = browser_input.widget_value("chain.seed", lambda v: browser_input.number(v, 0, SEED_MAX, integer=True), 0)
    return chain, int(seed)


def chain_editor() -> tuple[list[distortions.Step], int]:
    from core import distortions

    steps = _chain_state()
    chain_from_state()  # checks (and resets) the widgets' values before they are drawn
    chain: list[distortions.Step] = []
    st.markdown("##### Distortion chain", help="Applied top to bottom; reorder with the arrows.")
    if not steps:
        st.caption("No distortion: the distorted image equals the reference. Add one below.")
    for pos, step in enumerate(steps):
        spec = distortions.REGISTRY[step["name"]]
        with st.container(border=True):
            head, buttons = st.columns([3, 2], vertical_alignment="center")
            head.markdown(f"**{pos + 1}. {spec.label}**  \n:gray[{spec.family}]")
            with buttons:
                with st.container(horizontal=True, gap="small", horizontal_alignment="right"):
                    st.button("Apply earlier", key=f"chain.{step['id']}.up", on_click=_on_move, args=(step["id"], -1),
                              disabled=pos == 0, help="Apply earlier", icon=":material/arrow_upward:",
                              type="tertiary")
                    st.button("Apply later", key=f"chain.{step['id']}.down", on_click=_on_move, args=(step["id"], 1),
                              disabled=pos == len(steps) - 1, help="Apply later", icon=":material/arrow_downward:",
                              type="tertiary")
                    st.button("Remove", key=f"chain.{step['id']}.remove", on_click=_on_remove, args=(step["id"],),
                              help="Remove this distortion", icon=":material/close:", type="tertiary")
            st.caption(spec.explanation)
            values = {p.name: _param_widget(step["id"], p) for p in spec.params}
            chain.append(distortions.Step(step["name"], values))
    add_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
    names = list(distortions.REGISTRY)
    add_col.selectbox("Add a distortion", names, key="chain.add_choice",
                      format_func=lambda n: f"{distortions.REGISTRY[n].label} ({distortions.REGISTRY[n].family})")
    button_col.button("Add", key="chain.add", on_click=_on_add, icon=":material/add:", width="stretch",
                      help="Add this distortion at the end of the chain")
    seed = st.number_input("Seed", 0, SEED_MAX, 0, step=1, key="chain.seed", persist_state="session",
                                 help="Fixes the random noise; the same seed gives the same image.")
    return chain, int(seed)


@st.cache_data(show_spinner=False, max_entries=64)
def distorted_pixels(ref_digest: str, chain_json: str, seed: int, _ref_pixels: np.ndarray) -> np.ndarray:
    """The distorted image as 8-bit pixels: what is measured is exactly what one can download."""
    from core import distortions
    from core.images.tensors import from_numpy, quantize_8bit, to_uint8

    chain = distortions.chain_from_dict(json.loads(chain_json))
    dist = distortions.apply(chain, from_numpy(_ref_pixels), seed=seed)
    return to_uint8(quantize_8bit(dist))


# ---------------------------------------------------------------------------------------------
# Results.
# ---------------------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=64)  # two entries per setting: LPIPS, then the others
def comparison(ref_digest: str, dist_digest: str, net: str, version: str, calibrated: bool, ssim_mode: str,
               device: str, metrics: tuple[str, ...], all_maps: bool, _engine, _prepared,
               _dist_pixels: np.ndarray, counted: bool = True) -> dict:
    """Display-ready numbers and maps (numpy, CPU) for one pair: the metrics asked for, LPIPS's
    map always (it sits beside the photos) and the other maps only when they are on screen.
    ``counted``: this call is the one that counts the setting as computed (the first part)."""
    from core.comparison import compare
    from core.images.tensors import from_numpy

    if counted:
        note_computation("comparison")
    result = compare(_engine, _prepared, from_numpy(_dist_pixels), metrics=metrics,
                     spatial=True if all_maps else ("lpips",))
    return model.explore_data(result)


def card_slots(keys: Sequence[str]) -> dict:
    """One column per metric card, in display order (filled by :func:`write_card`)."""
    # Up to five cards in a row (legible at 1280 px); more metrics wrap into even rows.
    per_row = len(keys) if len(keys) <= 5 else -(-len(keys) // -(-len(keys) // 5))
    columns = [col for start in range(0, len(keys), per_row) for col in st.columns(per_row)]
    return dict(zip(keys, columns))


def previous_row(key: str) -> dict | None:
    """The numbers of the previous setting (for the cards' arrows), or None."""
    previous = st.session_state.get("explore.previous")
    last = st.session_state.get("explore.last")
    if last is not None and last["key"] != key:
        previous = last
    return previous["row"] if previous and previous["key"] != key else None


def remember_row(key: str, row: dict) -> None:
    last = st.session_state.get("explore.last")
    if last is not None and last["key"] != key:
        st.session_state["explore.previous"] = last
    st.session_state["explore.last"] = {"key": key, "row": row}


def write_card(column, name: str, data: dict, prev_row: dict | None, ctx) -> None:
    from core import metrics

    spec = metrics.get(name)
    row = data["row"]
    note = data["skipped"].get(name)
    delta = None
    if prev_row is not None and name in prev_row:
        a, b = row[name], prev_row[name]
        if not any(math.isinf(v) or math.isnan(v) for v in (a, b)):
            delta = f"{a - b:+.{spec.digits}f}"
    with column.container(border=True, gap=None, key=f"card_{name}"):
        st.metric(spec.title(ctx), fmt_metric(name, row[name]), delta,
                  delta_color="normal" if spec.higher_is_better else "inverse",
                  help=(f"{spec.description} {note}." if note else spec.description)
                  + " The arrow shows the change since the last setting.")
        st.caption(card_direction(spec))


def cards_summary(data: dict, ctx) -> str:
    """The cards' values in one sentence, for the polite live region (:func:`views.a11y.live_summary`)."""
    from core import metrics

    row = data["row"]
    specs = {name: metrics.get(name) for name in data["metrics"] if name in row}
    return a11y.cards_sentence({s.title(ctx): fmt_metric(n, row[n]) for n, s in specs.items()},
                               {s.title(ctx): card_direction(s) for s in specs.values()})


def card_direction(spec) -> str:
    """How to read a card, in its visible text: from the registry, so a new metric gets it too."""
    return "higher = more similar" if spec.higher_is_better else "lower = more similar"


def image_row(ref: PreparedImage, dist_pixels: np.ndarray, data: dict, chain_text: str) -> dict | None:
    """The first screen's pictures: the distorted image (or the reference) beside the LPIPS map,
    each half of the results column (at least 300 px wide at 1280×800). Returns the plain
    distorted image and map JPEGs for the comparison view (None under an overlay)."""
    ctl_text, ctl_show, ctl_overlay, ctl_opacity = st.columns([1.6, 1.2, 1.05, 0.75], vertical_alignment="center")
    ctl_text.caption(f"Distortion: {chain_text}")
    show_ref = ctl_show.toggle("Reference", key="view.reference", persist_state="session",
                               help="Show the reference in place of the distorted image")
    overlay_on = ctl_overlay.toggle("Overlay", key="view.overlay", persist_state="session",
                                    help="Draw the LPIPS map over the distorted image")
    opacity = ctl_opacity.slider("Map opacity", 0.0, 1.0, 0.6, 0.05, key="view.opacity", disabled=not overlay_on,
                                 persist_state="session", label_visibility="collapsed",
                                 help="Opacity of the LPIPS map over the distorted image")
    pictures = model.images(dist_pixels, data, overlay_on, opacity)
    left, right = st.columns(2, gap="small")
    if show_ref:
        left.image(reference_jpeg(ref.digest, ref.pixels), caption="Reference", width="stretch",
                   alt=describe.image_alt("Reference image"))
    else:
        left.image(pictures["distorted"], caption="Distorted", width="stretch",
                   alt=describe.image_alt("Distorted image", chain_text))
    right.image(pictures["lpips_map"], width="stretch",
                caption=f"LPIPS map (bright = more different; max {pictures['vmax']:.3f})",
                alt=describe.map_alt("LPIPS map" + (" over the distorted image" if overlay_on else ""),
                                     data["maps"]["lpips"], data["row"]["lpips"], reading="bright = more different"))
    return pictures if not overlay_on else None


@st.cache_data(show_spinner=False, max_entries=16)
def reference_jpeg(digest: str, _pixels: np.ndarray) -> bytes:
    """The reference changes only with the image: encode it once."""
    return heatmaps.encode(_pixels)


CLOSER_VIEW = "Look closer: zoom, swipe, flicker, and ask why a region differs"
REGION_SIDES = (16, 32, 48, 64, 96, 128)


def closer_open() -> bool:
    """Whether the comparison view is open: its images are sent and its region computed only then."""
    return bool(st.session_state.get("view.closer", False))


def closer_view(engine, settings: Settings, ref: PreparedImage, dist_pixels: np.ndarray, dist_digest: str,
                data: dict, pictures: dict | None) -> None:
    with st.expander(f"**{CLOSER_VIEW}**", key="view.closer", on_change="rerun", icon=":material/zoom_in:"):
        if closer_open():
            closer_body(engine, settings, ref, dist_pixels, dist_digest, data, pictures)


def current_box(ref: PreparedImage):
    """The region picked on this reference (a :class:`core.regions.Box`), if any and still inside it."""
    from core.errors import InvalidArgumentError
    from core.regions import Box

    stored = st.session_state.get("region.box")
    if not stored or stored[0] != ref.digest:
        return None
    try:
        return Box(*stored[1]).check(ref.size)
    except InvalidArgumentError:
        return None


def closer_body(engine, settings: Settings, ref: PreparedImage, dist_pixels: np.ndarray, dist_digest: str,
                data: dict, pictures: dict | None) -> None:
    from views.look_closer import look_closer

    pictures = pictures or model.images(dist_pixels, data)
    # Read before its widget is drawn below: checked here, as Streamlit has not yet.
    side = browser_input.widget_value("region.side", lambda v: browser_input.choice(v, REGION_SIDES), 64)
    box = current_box(ref)
    picked = look_closer(reference_jpeg(ref.digest, ref.pixels), pictures["distorted"], pictures["lpips_map"],
                         ref.size, box.pixels() if box else None, side, alts=closer_alts(data))
    if picked is not None:
        st.session_state["region.box"] = (ref.digest, picked)
        box = current_box(ref)
    hint, size_col, clear_col = st.columns([3, 1.3, 0.7], vertical_alignment="bottom")
    hint.caption("**Ask why:** click a spot of the LPIPS map (or of any view) to pick a region around it, or "
                 "Shift+drag to draw one: its LPIPS, each layer's and each channel's part in it appear below.")
    size_col.select_slider("Region picked by a click (px)", REGION_SIDES, value=64, key="region.side")
    clear_col.button("Clear", key="region.clear", disabled=box is None, icon=":material/close:",
                     on_click=lambda: st.session_state.pop("region.box", None), width="stretch")
    if box is not None:
        region_panel(engine, settings, ref, dist_pixels, dist_digest, data, box)


def closer_alts(data: dict) -> dict[str, str]:
    """The comparison view's words for its LPIPS map (they change with it)."""
    return {"map": describe.map_alt("LPIPS map", data["maps"]["lpips"], data["row"]["lpips"],
                                    reading="bright = more different")}


def region_panel(engine, settings: Settings, ref: PreparedImage, dist_pixels: np.ndarray, dist_digest: str,
                 data: dict, box) -> None:
    """The picked region: its LPIPS and share, each layer's part, the patches, PSNR/SSIM, channels.
    Every number comes from :mod:`core.regions`."""
    from core import metrics
    from core.regions import patch_scores, region_contributions
    from core.images.tensors import from_numpy

    row = data["row"]
    region = region_contributions(data["layer_maps"], ref.size, box, layer_names=row["lpips_layer_names"])
    x0, y0, x1, y1 = box.pixels()
    total = row["lpips"]
    percent = 100 * region.share / total if total > 0 else 0.0
    st.markdown(f"##### Region x {x0}–{x1}, y {y0}–{y1} px ({x1 - x0}×{y1 - y0} px, "
                f"{100 * region.fraction_of_area:.1f}% of the image)")
    scores = patch_scores(from_numpy(ref.pixels), from_numpy(dist_pixels), box, ssim_mode=settings.ssim_mode)
    cols = st.columns(4)
    with cols[0].container(border=True, gap=None, key="region_lpips"):
        st.metric("Patch LPIPS", f"{region.lpips:.4f}",
                  help="The region's own LPIPS: the layers' maps averaged over the region only "
                       "(what a whole image distorted like this region would score).")
        st.caption(f"lower = more similar; whole image {total:.4f}")
    with cols[1].container(border=True, gap=None, key="region_share"):
        st.metric("Share of the image's LPIPS", f"{region.share:.4f}",
                  help="How much of the image's LPIPS comes from this region: regions that tile the image "
                       "add up to it.")
        st.caption(f"{percent:.1f}% of the distance from {100 * region.fraction_of_area:.1f}% of the area")
    for col, name in zip(cols[2:], ("psnr", "ssim")):
        spec = metrics.get(name)
        with col.container(border=True, gap=None, key=f"region_{name}"):
            st.metric(f"Patch {spec.label}", fmt_metric(name, scores[name]),
                      help=f"{spec.label} of the region's pixels alone ({spec.meaning}).")
            st.caption(card_direction(spec))
    bars, patches = st.columns([1, 1.2], gap="medium")
    with bars:
        a11y.chart(charts.layer_contributions(region.layer_names, region.layer_shares, region.share,
                                              title=f"Layers' share from this region (sum = {region.share:.4f})"),
                   describe.bars_summary("Layers' share from this region", region.layer_names, region.layer_shares,
                                         total=region.share),
                   key="chart.region_bars", config={"displaylogo": False}, theme=None)
    with patches.container(key="region_patches"):
        ref_patch, dist_patch = model.patch_pictures(ref.pixels, dist_pixels, (x0, y0, x1, y1))
        left, right = st.columns(2, gap="small")
        left.image(ref_patch, caption="Reference patch", width="stretch",
                   alt=describe.image_alt("Reference patch", f"the region x {x0}–{x1}, y {y0}–{y1} px, enlarged"))
        right.image(dist_patch, caption="Distorted patch", width="stretch",
                    alt=describe.image_alt("Distorted patch", f"the same region of the distorted image, enlarged; "
                                                              f"its LPIPS {region.lpips:.4f}"))
    channel_view(engine, settings, ref, dist_pixels, dist_digest, region, box)


@st.cache_data(show_spinner=False, max_entries=16)
def channel_data(ref_digest: str, dist_digest: str, label: str, device: str, layer: str, box_key: tuple | None,
                 _engine, _features, _dist_pixels: np.ndarray):
    """One layer's channels over the image or a region: the backbone up to that layer (at most
    one pass), then cached."""
    from core.regions import Box, channel_contributions
    from core.images.tensors import from_numpy

    box = Box(*box_key) if box_key else None
    return channel_contributions(_engine, _features, from_numpy(_dist_pixels), layer, box=box, top_k=8)


def channel_view(engine, settings: Settings, ref: PreparedImage, dist_pixels: np.ndarray, dist_digest: str,
                 region, box) -> None:
    st.markdown("##### Which channels of a layer drive it",
                help="Each channel's part: head weight × squared difference of the normalized features, averaged "
                     "over the area. A layer's channels add up to that layer's part.")
    names = list(region.layer_names)
    largest = names[int(np.argmax(region.layer_shares))]
    pick_layer, pick_area = st.columns([1, 1.4], vertical_alignment="bottom")
    if st.session_state.get("region.layer") not in names:
        st.session_state["region.layer"] = largest
    layer = pick_layer.selectbox("Layer", names, key="region.layer",
                                 help=f"Preselected: the layer with the largest part in this region ({largest}).")
    area = pick_area.segmented_control("Averaged over", ["This region", "The whole image"], default="This region",
                                       key="region.area", required=True)
    features = prepared_for(engine, settings, ref).parts["lpips"]
    box_key = (box.x0, box.y0, box.x1, box.y1) if area == "This region" else None
    channels = channel_data(ref.digest, dist_digest, settings.label, settings.device, layer, box_key, engine,
                            features, dist_pixels)
    top_sum = sum(channels.top_shares)
    st.caption(f"The top {len(channels.top)} of {len(channels.values)} channels of {layer} carry "
               f"{100 * top_sum:.0f}% of its {channels.layer_value:.5f}; all {len(channels.values)} add up to it. "
               "Bright = that channel differs more.")
    a11y.chart(model.channel_figure(channels, ref.size, figure_cache()),
               "; ".join(describe.map_alt(f"Channel {c}", m, v, digits=5)[:-1]
                         for c, m, v in zip(channels.top, channels.top_maps, channels.top_values)) + ".",
               key="chart.channels", config={"displaylogo": False}, theme=None)


LAYER_VIEW = "Which layers and which regions drive the distance"


def layers_open() -> bool:
    """Whether the layer view is open: its maps are computed only then."""
    return bool(st.session_state.get("view.layers", False))


def layer_view(ref: PreparedImage, data: dict) -> None:
    # Collapsed, nothing below is computed; opening it reruns the fragment with every map.
    with st.expander(f"**{LAYER_VIEW}**", key="view.layers", on_change="rerun", icon=":material/layers:"):
        if layers_open():
            layer_view_body(ref, data)


def layer_view_body(ref: PreparedImage, data: dict) -> None:
    row = data["row"]
    shared = st.toggle("Shared colour scale across layers", value=True, key="view.shared_scale",
                       persist_state="session",
                       help="On: compare layers with each other. Off: see each layer's own pattern.")
    a11y.chart(model.layer_figure(data, ref.size, shared, figure_cache()),
               "; ".join(describe.map_alt(f"Layer {n} map", m, v)[:-1]
                         for n, m, v in zip(row["lpips_layer_names"], data["layer_maps"], row["lpips_layers"])) + ".",
               key="chart.layers", config={"displaylogo": False}, theme=None)
    # LPIPS's own map sits beside the photos; every other metric's map goes here, from the registry.
    others = [name for name in data["metrics"] if name != "lpips" and name in data["maps"]]
    columns = st.columns(1 + len(others))
    with columns[0]:
        a11y.chart(charts.layer_contributions(row["lpips_layer_names"], row["lpips_layers"], row["lpips"]),
                   describe.bars_summary("Layer contributions", row["lpips_layer_names"], row["lpips_layers"],
                                         total=row["lpips"]),
                   key="chart.bars", config={"displaylogo": False}, theme=None)
    for col, name in zip(columns[1:], others):
        with col:
            metric_map_chart(name, data["maps"][name], ref.size)
    if "dists_texture" in row:  # DISTS has no map; its per-layer terms add up to its value instead
        a11y.chart(charts.dists_terms(row["dists_layer_names"], row["dists_texture"], row["dists_structure"],
                                      row["dists"]),
                   describe.bars_summary("DISTS by layer, texture + structure", row["dists_layer_names"],
                                         [t + s for t, s in zip(row["dists_texture"], row["dists_structure"])],
                                         total=row["dists"]),
                   key="chart.dists", config={"displaylogo": False}, theme=None)


def figure_cache() -> dict:
    """This session's figures: built once per layout, then only their data changes per move."""
    return st.session_state.setdefault("explore.figures", {})


def metric_map_chart(name: str, values: np.ndarray, image_size: tuple[int, int]) -> None:
    from core import metrics

    spec = metrics.get(name)
    a11y.chart(model.map_figure(name, values, image_size, figure_cache()),
               f"{spec.map.title}: {describe.where_brightest(values)} is where its values are highest.",
               key=f"chart.{name}", config={"displaylogo": False}, theme=None)


def downloads(dist_pixels: np.ndarray, data: dict, chain_text: str, seed: int, full_data) -> None:
    row = data["row"]
    record = {**row, "distortions": chain_text, "seed": seed}

    def metrics_csv() -> bytes:
        buf = io.StringIO()
        flat = {k: v for k, v in record.items() if not isinstance(v, list)}
        flat.update({f"lpips_{n}": v for n, v in zip(row["lpips_layer_names"], row["lpips_layers"])})
        writer = csv.DictWriter(buf, fieldnames=list(flat))
        writer.writeheader()
        writer.writerow(flat)
        return buf.getvalue().encode()

    def maps_zip() -> bytes:
        from core import metrics

        data = full_data()  # the maps not on screen are computed now, when asked for
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, m in data["maps"].items():
                spec = metrics.get(name).map
                low, high = spec.value_range
                colours = model.map_scale(name, m)[2]
                vmax = high if math.isfinite(high) else (float(np.nanmax(m)) or 1.0)
                zf.writestr(f"{spec.file_stem}.png",
                            heatmaps.encode(heatmaps.colorize(m, max(low, 0.0), vmax, colours), "PNG"))
            for name, m in zip(row["lpips_layer_names"], data["layer_maps"]):
                zf.writestr(f"lpips_{name}.png", heatmaps.encode(heatmaps.colorize(m, 0, float(np.max(m)) or 1.0), "PNG"))
            zf.writestr("raw_maps.npz", _npz(data))
        return buf.getvalue()

    cols = st.columns(4)
    cols[0].download_button("Distorted image (PNG)", lambda: heatmaps.encode(dist_pixels, "PNG"),
                            file_name="distorted.png", mime="image/png", key="dl.image", on_click="ignore",
                            icon=":material/download:")
    cols[1].download_button("All maps (PNG + raw, ZIP)", maps_zip, file_name="maps.zip", mime="application/zip",
                            key="dl.maps", on_click="ignore", icon=":material/download:")
    cols[2].download_button("Metrics (CSV)", metrics_csv, file_name="metrics.csv", mime="text/csv", key="dl.csv",
                            on_click="ignore", icon=":material/download:")
    cols[3].download_button("Metrics (JSON)", lambda: json.dumps(_jsonable(record), indent=2).encode(),
                            file_name="metrics.json", mime="application/json", key="dl.json", on_click="ignore",
                            icon=":material/download:")


def _npz(data: dict) -> bytes:
    from core import metrics

    buf = io.BytesIO()
    arrays = {metrics.get(name).map.file_stem: m for name, m in data["maps"].items()}
    arrays.update({f"lpips_{n}": m for n, m in zip(data["row"]["lpips_layer_names"], data["layer_maps"])})
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _jsonable(record: dict) -> dict:
    def fix(v):
        if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
            return None if math.isnan(v) else "inf"
        return v
    return {k: ([fix(x) for x in v] if isinstance(v, list) else fix(v)) for k, v in record.items()}


@st.fragment
def explore_fragment(settings: Settings, ref: PreparedImage, target) -> None:
    from core import distortions

    engine = get_engine(settings)
    cards = st.container()
    # The results column gets two thirds and a bit: its two pictures stay ≥ 300 px wide at 1280×800.
    controls, results = st.columns([1, 2.15], gap="small")
    drawn: list = []  # the chain editor's (chain, seed), once it is drawn

    def draw_editor() -> tuple | None:
        """Draw the chain editor (for a distortion) once, wherever this run stops."""
        if target == "distort" and not drawn:
            with controls:
                drawn.append(chain_editor())
        return drawn[0] if drawn else None

    if target == "distort":
        # Numbers first: the chain is read from the widgets' state and the editor is drawn after
        # the cards, so a slider move's LPIPS card leaves the server before the editor's elements.
        # Should the widgets ever disagree with their state, this session draws them first instead.
        if st.session_state.get("explore.editor_first"):
            chain, seed = draw_editor()
        else:
            chain, seed = chain_from_state()
        chain_text = distortions.describe(chain)
        try:
            chain_json = json.dumps(distortions.chain_to_dict(chain), sort_keys=True)
            dist_pixels = distorted_pixels(ref.digest, chain_json, seed, ref.pixels)
        except LpipsExplorerError as err:
            draw_editor()
            show_error(err, "The distortion could not be applied")
            return
        dist_digest = f"{ref.digest}:{chain_json}:{seed}"
    else:
        dist_pixels, dist_digest, chain_text, seed = target.pixels, target.digest, f"uploaded: {target.name}", 0
        with controls:
            for note in target.notes:
                st.caption(f"Second image: {note}")
    if engine is None:
        draw_editor()
        return
    shown = settings.shown_metrics
    first = tuple(k for k in shown if k == "lpips")  # the card people watch: computed and sent first
    rest = tuple(k for k in shown if k != "lpips")
    parts_order = [part for part in (first, rest) if part]

    def compute(keys: tuple[str, ...], all_maps: bool) -> dict:
        return comparison(ref.digest, dist_digest, settings.net, settings.heads_key, settings.calibrated,
                          settings.ssim_mode, settings.device, keys, all_maps, engine,
                          prepared_for(engine, settings, ref), dist_pixels, counted=keys is parts_order[0])

    def compute_all(all_maps: bool) -> dict:
        return model.merge_data([compute(part, all_maps) for part in parts_order], shown)

    key = f"{ref.digest}|{dist_digest}|{settings.label}|{settings.ssim_mode}"
    ctx = metric_context(engine, settings)
    prev_row = previous_row(key)
    maps_open = layers_open()
    try:
        with cards:
            slots = card_slots(shown)
            parts = []
            for part in parts_order:
                parts.append(compute(part, maps_open))
                for name in part:
                    write_card(slots[name], name, parts[-1], prev_row, ctx)
        data = model.merge_data(parts, shown)
    except LpipsExplorerError as err:
        show_error(err, "The metrics could not be computed")
        draw_editor()
        return
    remember_row(key, data["row"])
    a11y.live_summary(cards_summary(data, ctx))
    if target == "distort" and draw_editor() != (chain, seed):
        # Never show the numbers of another chain than the widgets show.
        st.session_state["explore.editor_first"] = True
        st.rerun(scope="fragment")
    with results:
        pictures = image_row(ref, dist_pixels, data, chain_text)
    closer_view(engine, settings, ref, dist_pixels, dist_digest, data, pictures)
    layer_view(ref, data)
    downloads(dist_pixels, data, chain_text, seed, lambda: compute_all(True))


def render() -> None:
    head, about = st.columns([3, 1], vertical_alignment="bottom")
    head.title("LPIPS Explorer", anchor=False)
    with about.popover("What am I looking at?", icon=":material/help:", width="content"):
        st.markdown(INTRO)
        st.markdown(WHY_SHIFTS)
    # The pickers one sets once sit in one compact row. They come first; the network and images
    # (torch) load after them, so a fresh server shows its controls while the imports run.
    kind_col, value_col, compare_col = st.columns([1, 1, 1], gap="small")
    source = reference_source(kind_col, value_col)
    with compare_col:
        target_source = comparison_source()
    with st.spinner("Loading the metric engine…"):
        settings = sidebar_settings()
    if settings.net_problem:
        st.error(f"The {settings.net} network cannot be used here: {settings.net_problem}", icon=":material/error:")
        return
    if source is None:
        return
    with value_col:
        ref = load_reference(settings, source)
        for note in ref.notes if ref is not None else ():
            st.caption(f"Reference: {note}", help="What the loader did to the file")
    if ref is None or target_source is None:
        return
    target = target_source
    if target_source != "distort":
        with compare_col:
            target = load_comparison(settings, ref, target_source)
        if target is None:
            return
    explore_fragment(settings, ref, target)


render()
