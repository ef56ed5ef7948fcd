"""Teach · Sweeps: metric vs severity, where metrics disagree, and the one-click equal-PSNR view."""

from __future__ import annotations

import csv
import io

import streamlit as st

from core import distortions
from core.errors import LpipsExplorerError
from core.images.tensors import from_numpy, to_uint8
from teach import sweeps
from viz import charts, describe, heatmaps
from views import a11y
from views.common import (direction_summary, fmt_metric, get_engine, prepare_sample, sample_catalogue, show_error,
                          sidebar_settings, features_for)

PLOT_CONFIG = {"displaylogo": False,
               "toImageButtonOptions": {"format": "png", "filename": "lpips-sweep", "scale": 2}}


def _csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def pick_sample(settings):
    catalogue = sample_catalogue()
    titles = {s["key"]: s["title"] for s in catalogue}
    key = st.selectbox("Reference image", list(titles), format_func=titles.get, key="teach.sample",
                       persist_state="session")
    try:
        return prepare_sample(key, settings.max_side)
    except LpipsExplorerError as err:
        show_error(err, "The sample cannot be loaded")
        return None


def _titles(keys) -> dict[str, str]:
    """Each metric's chart title with its unit and direction: "PSNR, dB (higher = more similar)"."""
    from core import metrics

    titles = {}
    for key in keys:
        spec = metrics.get(key)
        direction = "higher = more similar" if spec.higher_is_better else "lower = more similar"
        titles[key] = f"{spec.label}{', ' + spec.unit if spec.unit else ''} ({direction})"
    return titles


def sweep_section(settings, engine, ref) -> None:
    st.subheader("Severity sweep", anchor=False)
    st.caption("One distortion at 8–32 strengths, scored in batches against the cached reference.")
    names = list(distortions.REGISTRY)
    c1, c2, c3 = st.columns([2, 2, 1])
    name = c1.selectbox("Distortion", names, key="sweep.name",
                        format_func=lambda n: f"{distortions.REGISTRY[n].label} ({distortions.REGISTRY[n].family})")
    spec = distortions.REGISTRY[name]
    numeric = [p for p in spec.params if p.kind != "choice"]
    param = c2.selectbox("Parameter", [p.name for p in numeric], key=f"sweep.param.{name}",
                         format_func=lambda n: spec.param(n).label)
    p = spec.param(param)
    levels = c3.number_input("Levels", sweeps.MIN_LEVELS, sweeps.MAX_LEVELS, 16, key="sweep.levels")
    mild, harsh = sweeps.default_range(p)
    lo, hi = sorted((mild, harsh))
    step = float(p.step or 1)
    chosen = st.slider(f"Range ({p.unit})" if p.unit else "Range", float(p.min), float(p.max), (float(lo), float(hi)),
                       step=step, key=f"sweep.range.{name}.{param}")
    config = (ref.digest, name, param, chosen, int(levels), settings.label, settings.ssim_mode, settings.device)
    if st.button("Run sweep", key="sweep.run", type="primary", icon=":material/play_arrow:"):
        bar = st.progress(0.0, text="Scoring…")
        try:
            result = sweeps.severity_sweep(
                engine, features_for(engine, settings, ref), from_numpy(ref.pixels), name, param,
                levels=int(levels), low=chosen[0], high=chosen[1], ssim_mode=settings.ssim_mode,
                progress=lambda done, total: bar.progress(done / total, text=f"Scored {done} of {total} levels"))
        except LpipsExplorerError as err:
            show_error(err, "The sweep could not run")
            return
        finally:
            bar.empty()
        st.session_state["sweep.result"] = (config, result)
    stored = st.session_state.get("sweep.result")
    if not stored:
        st.info("Choose a distortion and press **Run sweep**.", icon=":material/insights:")
        return
    stored_config, result = stored
    if stored_config != config:
        st.caption("Showing the last sweep; press **Run sweep** for the current settings.")
    xlabel = f"{spec.param(result.param).label}" + (f" ({result.unit})" if result.unit else "")
    found = result.disagreements()
    marks = [(d.a_index, d.b_index, d.describe()) for d in found[:6]]
    raw_tab, norm_tab = st.tabs(["Raw values", "Normalized (shared axis)"])
    summary = describe.series_summary(xlabel, result.values, {_label(k): result.scores[k] for k in result.metrics
                                                              if k in result.scores})
    with raw_tab:
        a11y.chart(charts.sweep_raw(result.values, result.scores, _titles(result.metrics), xlabel=xlabel),
                   summary, visible=True, key="sweep.chart.raw", config=PLOT_CONFIG, theme=None)
    with norm_tab:
        a11y.chart(charts.sweep_normalized(result.values, result.normalized(), _titles(result.metrics),
                                           xlabel=xlabel, marks=marks),
                   summary + " Each metric has its own line style and marker; crosses on a dotted line mark "
                   "where two metrics disagree.", visible=True, key="sweep.chart.norm", config=PLOT_CONFIG,
                   theme=None)
    if found:
        st.markdown("**Where the metrics disagree** (which of two settings is worse):")
        for d in found[:6]:
            st.markdown(f"- {d.describe()}")
    else:
        st.caption("Within this sweep all metrics agree on the order; compare families in the equal-PSNR view.")
    st.download_button("Sweep (CSV)", _csv(result.to_rows()), file_name=f"sweep-{result.name}.csv",
                       mime="text/csv", key="sweep.csv", on_click="ignore", icon=":material/download:")
    st.caption("The camera icon on each chart saves it as PNG.")


def _label(key: str) -> str:
    from core import metrics

    return metrics.get(key).label


def equal_psnr_section(settings, engine, ref) -> None:
    st.subheader("Equal PSNR, different looks", anchor=False)
    st.caption("Each distortion is tuned until its PSNR is the same. If PSNR matched what people see, "
               "the images would look equally bad. Look at them — then at LPIPS.")
    names = list(distortions.REGISTRY)
    families = st.multiselect("Distortions", names, default=list(sweeps.DEFAULT_EQUAL_PSNR_FAMILIES),
                              key="equal.families", format_func=lambda n: distortions.REGISTRY[n].label,
                              max_selections=6)
    auto = st.toggle("Choose the PSNR automatically", value=True, key="equal.auto")
    target = None if auto else st.slider("Target PSNR (dB)", 15.0, 40.0, 26.0, 0.5, key="equal.target")
    if st.button("Show equal-PSNR comparison", key="equal.run", type="primary", icon=":material/compare:",
                 disabled=len(families) < 2):
        with st.spinner("Searching each distortion's strength…"):
            try:
                result = sweeps.equal_psnr_set(engine, from_numpy(ref.pixels), families, target, ssim_mode=settings.ssim_mode,
                                               ref_features=features_for(engine, settings, ref))
            except LpipsExplorerError as err:
                show_error(err, "The comparison could not run")
                return
        st.session_state["equal.result"] = result
    result = st.session_state.get("equal.result")
    if result is None:
        return
    st.markdown(f"All at **{result.target_psnr:.1f} dB** PSNR"
                + (" (chosen so every distortion can reach it)" if result.target_auto else ""))
    cols = st.columns(len(result.entries) + 1)
    cols[0].image(heatmaps.encode(ref.pixels), caption="Reference", width="stretch",
                  alt=describe.image_alt("Reference image"))
    for col, entry in zip(cols[1:], result.entries):
        scores = ", ".join(f"{_label(key)} {fmt_metric(key, value)}" for key, value in entry.scores.items())
        col.image(heatmaps.encode(to_uint8(entry.image)), width="stretch",
                  caption=f"{entry.label}: {entry.value:g} {entry.unit}".strip(),
                  alt=describe.image_alt(f"{entry.label} at {entry.value:g} {entry.unit}".strip(),
                                         f"the reference distorted to the common PSNR; {scores}"))
        col.markdown("  \n".join(f"{_label(key)} **{fmt_metric(key, value)}**" for key, value in entry.scores.items()))
        if not entry.reached:
            col.caption(entry.message)
    label = {e.name: e.label for e in result.entries}
    st.markdown("LPIPS ranks them, most similar first: " + " < ".join(label[n] for n in result.ranking))
    st.markdown("SSIM ranks them, most similar first: " + " > ".join(label[n] for n in result.ssim_ranking))
    st.download_button("Comparison (CSV)", _csv(result.to_rows()), file_name="equal-psnr.csv", mime="text/csv",
                       key="equal.csv", on_click="ignore", icon=":material/download:")


def render() -> None:
    st.title("Sweeps", anchor=False)
    st.caption("Why PSNR and SSIM fail where LPIPS does not. " + direction_summary())
    settings = sidebar_settings()
    if settings.net_problem:
        st.error(f"The {settings.net} network cannot be used here: {settings.net_problem}", icon=":material/error:")
        return
    engine = get_engine(settings)
    ref = pick_sample(settings)
    if engine is None or ref is None:
        return
    equal_tab, sweep_tab = st.tabs(["Equal PSNR", "Severity sweep"])
    with equal_tab:
        equal_psnr_section(settings, engine, ref)
    with sweep_tab:
        sweep_section(settings, engine, ref)


render()
