"""Synthesis: optimize images to pit the metrics against each other (MAD competition, a metric as a loss).

The optimization runs in a background thread per session (views/synthesis_jobs.py); a fragment
polls it every second for the progress bar, the live images and the chart, and holds the Stop
button. Every number comes from core.synthesis, every chart from viz.synthesis.
"""

from __future__ import annotations

import csv
import io

import streamlit as st

from core.errors import LpipsExplorerError
from views.common import direction_summary, sample_catalogue, show_error, sidebar_settings, weights_status
from views.synthesis_jobs import ABANDON_AFTER_S, MAX_RUNNING, Job
from viz import describe, synthesis as charts
from views import a11y

PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": "lpips-synthesis", "scale": 2}}
#: What one run may cost on this page (the command line allows more): steps × pixels.
PAGE_MAX_STEPS = 300
PAGE_SIZES = (64, 128, 192, 256)
POLL_S = 1.0
LEVELS = {  # held metric → (min, max, default, step) of the level input
    "psnr": (10.0, 45.0, 24.0, 0.5),
    "ssim": (0.10, 0.98, 0.70, 0.01),
    "lpips_alex": (0.02, 1.0, 0.20, 0.01),
    "lpips_vgg": (0.02, 1.0, 0.20, 0.01),
}
LIMITS = (f"Limits: at most {PAGE_MAX_STEPS} steps on at most {max(PAGE_SIZES)}×{max(PAGE_SIZES)} pixels per run, "
          f"one run per session, {MAX_RUNNING} at once on this server (others wait their turn). Stop ends a run "
          f"after the current step; a run whose page is closed stops by itself within {ABANDON_AFTER_S:.0f} s.")


def _metric_choices() -> list[str]:
    from core.synthesis import METRICS

    status = weights_status()
    return [k for k in METRICS if not k.startswith("lpips_") or not status.get(k.split("_", 1)[1])]


def _label(key: str) -> str:
    from core.synthesis import METRICS

    return METRICS[key].label


def _title(key: str) -> str:
    from core.synthesis import METRICS

    meta = METRICS[key]
    return f"{meta.label}{', ' + meta.unit if meta.unit else ''} ({meta.direction})"


def _fmt(key: str, value) -> str:
    from core.synthesis import METRICS

    return "n/a" if value is None else METRICS[key].format(float(value))


@st.cache_data(show_spinner=False, max_entries=16)
def _reference(sample: str, size: int):
    """The sample's centre square at size², 8-bit, as a uint8 array."""
    from core.images.imageio import load_image
    from core.images.samples import list_samples
    from core.synthesis import square_reference
    from core.images.tensors import to_uint8

    path = next(s.path for s in list_samples() if s.key == sample)
    return to_uint8(square_reference(load_image(path), size))


def _tensor(pixels):
    from core.images.tensors import from_numpy

    return from_numpy(pixels)


def _png(image) -> bytes:
    from core.images.imageio import to_png_bytes

    return to_png_bytes(image)


def _csv(rows: list[dict]) -> bytes:
    if not rows:
        return b""
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def _uint8(image):
    from core.images.tensors import to_uint8

    return to_uint8(image)


def _status_line(view: dict) -> tuple[float, str]:
    total = max(1, view["total"])
    if view["state"] == "queued":
        return 0.0, "Queued: another run on this server finishes first…"
    if view["stopping"] and view["state"] == "running":
        return view["step"] / total, f"Stopping after step {view['step']}…"
    return view["step"] / total, f"Step {view['step']} of {view['total'] or '…'} · {view['seconds']:.0f} s"


def _job(key: str) -> Job | None:
    return st.session_state.get(key)


def _controls_locked(key: str) -> bool:
    job = _job(key)
    return job is not None and job.active


# ---------------------------------------------------------------------------------------------
# MAD competition
# ---------------------------------------------------------------------------------------------

MAD_JOB = "synthesis.mad.job"


def mad_section(device: str) -> None:
    st.caption("Two images with the **same value of one metric** (held), one as good and one as bad as "
               "possible by **another** (attacked) — the maximum differentiation competition of Wang & "
               "Simoncelli (2008). If the held metric saw what people see, the two would look alike.")
    catalogue = sample_catalogue()
    titles = {s["key"]: s["title"] for s in catalogue}
    choices = _metric_choices()
    locked = _controls_locked(MAD_JOB)
    c1, c2, c3 = st.columns([2, 2, 2])
    sample = c1.selectbox("Reference image", list(titles), format_func=titles.get, key="mad.sample", disabled=locked)
    hold = c2.selectbox("Hold this metric…", choices, format_func=_title, key="mad.hold", disabled=locked)
    low, high, default, step = LEVELS[hold]
    level = c3.number_input(f"…at this level ({_label(hold)}{', dB' if hold == 'psnr' else ''})", low, high, default,
                            step, key=f"mad.level.{hold}", disabled=locked)
    c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
    attack_options = [k for k in choices if k != hold]
    attack = c1.selectbox("Attack this metric", attack_options, format_func=_title, key=f"mad.attack.{hold}",
                          index=next((i for i, k in enumerate(attack_options) if k == "lpips_alex"), 0),
                          disabled=locked)
    steps = c2.slider("Steps", 10, PAGE_MAX_STEPS, 100, 10, key="mad.steps", disabled=locked)
    size = c3.selectbox("Size (px)", PAGE_SIZES, index=len(PAGE_SIZES) - 1, key="mad.size", disabled=locked)
    seed = c4.number_input("Seed", 0, 9999, 0, key="mad.seed", disabled=locked)
    st.caption(LIMITS)
    config = (sample, hold, float(level), attack, int(steps), int(size), int(seed), device)
    if st.button("Run MAD competition", type="primary", icon=":material/play_arrow:", key="mad.run", disabled=locked):
        ref = _tensor(_reference(sample, int(size)))

        def run(progress, should_stop, ref=ref):
            from core.synthesis import mad

            return mad(ref, hold, float(level), attack, steps=int(steps), seed=int(seed), device=device,
                       progress=progress, should_stop=should_stop)

        st.session_state[MAD_JOB] = Job("mad", config, run).start()
    job = _job(MAD_JOB)
    if job is None:
        st.info("Choose the metrics and press **Run MAD competition**. Try first: hold PSNR at 24 dB, attack LPIPS; "
                "then hold LPIPS at 0.2, attack PSNR.", icon=":material/science:")
        return
    polling = job.active
    st.fragment(run_every=POLL_S if polling else None)(_mad_live)(job, polling)


def _mad_live(job: Job, polling: bool) -> None:
    job.seen()
    view = job.view()
    hold, level, attack = job.config[1], job.config[2], job.config[3]
    ref_pixels = _reference(job.config[0], job.config[5])
    if view["state"] in ("queued", "running"):
        fraction, text = _status_line(view)
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        c1.progress(fraction, text=text)
        if c2.button("Stop", icon=":material/stop:", key="mad.stop", disabled=view["stopping"]):
            job.request_stop()
            st.rerun(scope="fragment")
    elif polling:  # it just finished: redraw the page once, without the timer
        st.rerun(scope="app")
    if view["state"] == "failed":
        show_error(view["error"], "The MAD competition could not run")
        return
    result = view["result"]
    rows = view["rows"]
    last = rows[-1] if rows else {}
    cols = st.columns(3)
    cols[0].image(ref_pixels, caption="Reference", width="stretch", alt=describe.image_alt("Reference image"))
    if result is not None:
        best, worst = _uint8(result.best), _uint8(result.worst)
        best_caption = f"Best for {_label(attack)}: {_fmt(attack, result.best_scores[attack])}"
        worst_caption = f"Worst for {_label(attack)}: {_fmt(attack, result.worst_scores[attack])}"
    elif view["snapshot"] is not None:
        best, worst = view["snapshot"][0], view["snapshot"][1]
        best_caption = f"Best so far (step {view['snapshot_step']})"
        worst_caption = f"Worst so far (step {view['snapshot_step']})"
    else:
        best = worst = None
    if best is not None:
        held = f"with {_label(hold)} held at its level"
        cols[1].image(best, caption=best_caption, width="stretch", alt=describe.image_alt(best_caption, held))
        cols[2].image(worst, caption=worst_caption, width="stretch", alt=describe.image_alt(worst_caption, held))
        if result is None and last:
            cols[1].caption(f"{_label(attack)} {_fmt(attack, last.get('best_' + attack))} · "
                            f"{_label(hold)} {_fmt(hold, last.get('best_' + hold))}")
            cols[2].caption(f"{_label(attack)} {_fmt(attack, last.get('worst_' + attack))} · "
                            f"{_label(hold)} {_fmt(hold, last.get('worst_' + hold))}")
    history = result.history_rows() if result is not None else rows
    if history:
        fig = charts.mad_history([r["step"] for r in history], [r[f"best_{attack}"] for r in history],
                                 [r[f"worst_{attack}"] for r in history], [r[f"best_{hold}"] for r in history],
                                 [r[f"worst_{hold}"] for r in history], attack_title=_short(attack),
                                 hold_title=_short(hold), level=level)
        a11y.chart(fig, describe.series_summary("the step", [r["step"] for r in history], {
            f"best {_short(attack)}": [r[f"best_{attack}"] for r in history],
            f"worst {_short(attack)}": [r[f"worst_{attack}"] for r in history],
            f"best {_short(hold)} (held)": [r[f"best_{hold}"] for r in history],
            f"worst {_short(hold)} (held)": [r[f"worst_{hold}"] for r in history]}),
                   key="mad.chart", config=PLOT_CONFIG, theme=None)
    if result is None:
        return
    if result.stopped:
        st.caption(f"Stopped after {result.steps_done} of {result.steps} steps; both images were still put on the level.")
    unit = " dB" if hold == "psnr" else ""
    st.markdown(f"**Both images: {_label(hold)} = {_fmt(hold, level)}** (held; each saved image within "
                f"{abs(result.hold_error):.2g}{unit} of it). Every metric of the saved 8-bit images:")
    _scores_table({"Best for " + _label(attack): result.best_scores, "Worst for " + _label(attack): result.worst_scores,
                   "Start (ref. + noise)": result.start_scores})
    st.markdown(_mad_reading(hold, attack))
    c1, c2, c3 = st.columns(3)
    c1.download_button("best.png", _png(result.best), file_name="best.png", mime="image/png", key="mad.dl.best",
                       on_click="ignore", icon=":material/download:")
    c2.download_button("worst.png", _png(result.worst), file_name="worst.png", mime="image/png", key="mad.dl.worst",
                       on_click="ignore", icon=":material/download:")
    c3.download_button("history.csv", _csv(result.history_rows()), file_name="history.csv", mime="text/csv",
                       key="mad.dl.csv", on_click="ignore", icon=":material/download:")


def _scores_table(rows: dict[str, dict]) -> None:
    from core.synthesis import SCORE_KEYS

    # Short headers keep the table within a phone's width; the directions follow below it.
    header = "| image | " + " | ".join(_short(k) for k in SCORE_KEYS) + " |"
    lines = [header, "|---" * (len(SCORE_KEYS) + 1) + "|"]
    for name, scores in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(k, scores.get(k)) for k in SCORE_KEYS) + " |")
    st.markdown("\n".join(lines))
    st.caption("Higher PSNR and SSIM = more similar; higher LPIPS = more different.")


def _short(key: str) -> str:
    from core.synthesis import METRICS

    meta = METRICS[key]
    return meta.label + (f" ({meta.unit})" if meta.unit else "")


def _mad_reading(hold: str, attack: str) -> str:
    if hold == "psnr" and attack.startswith("lpips"):
        return ("**What to look for:** the same PSNR, so the same amount of pixel error — yet the best image "
                "looks close to the reference (the error went where the network does not look: smooth shifts "
                "of brightness and colour), while the worst is covered in structured texture. PSNR cannot tell "
                "them apart; people can, and so can LPIPS. Look also at the other network's column: an image "
                "tuned against one network is not always judged the same way by another.")
    if hold.startswith("lpips") and attack == "psnr":
        return ("**What to look for:** the same LPIPS, yet one image is almost untouched (often within a grey "
                "level or two of the reference: a tiny, carefully shaped perturbation that the network reads as "
                "a large change) and the other has a large change of brightness or colour. That is LPIPS's blind "
                "spot: a deep network can be fooled by perturbations people do not see.")
    return ("**What to look for:** both images have the same held value. If they look equally good to you, the "
            "held metric agrees with your eyes here; if one looks clearly worse, you have found a failure of "
            "the held metric — the attacked metric pointed to it.")


# ---------------------------------------------------------------------------------------------
# A metric as a loss
# ---------------------------------------------------------------------------------------------

LOSS_JOB = "synthesis.loss.job"
DEGRADATION_STRENGTH = {  # registry distortion → (label, min, max, default, step, unit)
    "gaussian_noise": ("Noise", 5.0, 50.0, 30.0, 5.0, "σ, 8-bit levels"),
    "gaussian_blur": ("Blur", 0.5, 6.0, 2.5, 0.5, "σ, px"),
    "jpeg": ("JPEG", 5.0, 60.0, 10.0, 5.0, "quality"),
}
SCALE_LABELS = {1: "Every pixel free", 2: "½ resolution, upscaled", 4: "¼ resolution, upscaled"}


def _loss_label(text: str) -> str:
    from core.synthesis import parse_loss

    return parse_loss(text).label


def loss_section(device: str) -> None:
    st.caption("Start from a damaged copy of the reference and let each loss repair it: L2 (what PSNR measures), "
               "SSIM, LPIPS, or a mix. Each result is then judged by every metric.")
    catalogue = sample_catalogue()
    titles = {s["key"]: s["title"] for s in catalogue}
    choices = _metric_choices()
    locked = _controls_locked(LOSS_JOB)
    c1, c2, c3 = st.columns([2, 2, 2])
    sample = c1.selectbox("Reference image", list(titles), format_func=titles.get, key="loss.sample", disabled=locked)
    degradation = c2.selectbox("Start from", list(DEGRADATION_STRENGTH), key="loss.degradation", disabled=locked,
                               format_func=lambda n: DEGRADATION_STRENGTH[n][0])
    label, low, high, default, step, unit = DEGRADATION_STRENGTH[degradation]
    strength = c3.slider(f"{label} strength ({unit})", low, high, default, step, key=f"loss.strength.{degradation}",
                         disabled=locked)
    terms = ["l2", "ssim"] + [k for k in ("lpips_alex", "lpips_vgg") if k in choices]
    c1, c2 = st.columns([3, 2])
    losses = c1.multiselect("Losses (one run each)", terms + ["mix"], default=["l2", "ssim", "lpips_alex", "mix"]
                            if "lpips_alex" in terms else ["l2", "ssim"], key="loss.losses", disabled=locked,
                            format_func=lambda t: "Mix: L2 + LPIPS" if t == "mix" else _loss_label(t), max_selections=5)
    weight = c2.slider("Mix: weight of LPIPS (the rest is L2)", 0.05, 0.95, 0.5, 0.05, key="loss.mix_weight",
                       disabled=locked or "mix" not in losses or "lpips_alex" not in terms)
    c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
    scale = c1.radio("What the optimizer may change", list(SCALE_LABELS), format_func=SCALE_LABELS.get,
                     key="loss.scale", disabled=locked, horizontal=True)
    steps = c2.slider("Steps per loss", 10, PAGE_MAX_STEPS, 100, 10, key="loss.steps", disabled=locked)
    size = c3.selectbox("Size (px)", PAGE_SIZES, index=2, key="loss.size", disabled=locked)
    seed = c4.number_input("Seed", 0, 9999, 0, key="loss.seed", disabled=locked)
    st.caption(LIMITS.replace("steps on", "steps per loss, at most 5 losses, on"))
    specs = [f"{1 - weight:g}*l2+{weight:g}*lpips_alex" if t == "mix" else t for t in losses]
    config = (sample, degradation, float(strength), tuple(specs), int(scale), int(steps), int(size), int(seed), device)
    if st.button("Run the losses", type="primary", icon=":material/play_arrow:", key="loss.run",
                 disabled=locked or not specs):
        ref = _tensor(_reference(sample, int(size)))

        def run(progress, should_stop, ref=ref):
            from core.synthesis import restore

            return restore(ref, specs, degradation=degradation, strength=float(strength), steps=int(steps),
                           scale=int(scale), seed=int(seed), device=device, progress=progress, should_stop=should_stop)

        st.session_state[LOSS_JOB] = Job("loss", config, run).start()
    job = _job(LOSS_JOB)
    if job is None:
        st.info("Pick the losses and press **Run the losses**.", icon=":material/science:")
        return
    polling = job.active
    st.fragment(run_every=POLL_S if polling else None)(_loss_live)(job, polling)


@st.cache_data(show_spinner=False, max_entries=8)
def _degraded(sample: str, size: int, degradation: str, strength: float, seed: int):
    """The start image of a loss run, as the run makes it (core.synthesis.degrade)."""
    from core.synthesis import degrade

    return _uint8(degrade(_tensor(_reference(sample, size)), degradation, strength, seed))


def _loss_curves(rows: list[dict], specs: tuple[str, ...], steps: int) -> dict:
    curves: dict[str, tuple[list[int], list[float]]] = {}
    for row in rows:
        index = int(row.get("run", 0))
        label = _loss_label(specs[index])
        xs, ys = curves.setdefault(label, ([], []))
        xs.append(int(row["step"]) - index * steps)
        ys.append(row["loss"])
    return curves


def _loss_live(job: Job, polling: bool) -> None:
    job.seen()
    view = job.view()
    sample, degradation, strength, specs, scale, steps, size = job.config[:7]
    ref_pixels = _reference(sample, size)
    if view["state"] in ("queued", "running"):
        fraction, text = _status_line(view)
        rows = view["rows"]
        if rows:
            text += f" · now: {_loss_label(specs[int(rows[-1].get('run', 0))])}"
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        c1.progress(fraction, text=text)
        if c2.button("Stop", icon=":material/stop:", key="loss.stop", disabled=view["stopping"]):
            job.request_stop()
            st.rerun(scope="fragment")
    elif polling:
        st.rerun(scope="app")
    if view["state"] == "failed":
        show_error(view["error"], "The optimization could not run")
        return
    result = view["result"]
    if result is None:
        cols = st.columns(3)
        start = f"Start ({DEGRADATION_STRENGTH[degradation][0].lower()})"
        cols[0].image(ref_pixels, caption="Reference", width="stretch", alt=describe.image_alt("Reference image"))
        cols[1].image(_degraded(sample, size, degradation, strength, job.config[7]), caption=start, width="stretch",
                      alt=describe.image_alt(start, "the damaged copy each loss starts from"))
        if view["snapshot"] is not None and view["rows"]:
            index = int(view["rows"][-1].get("run", 0))
            current = _loss_label(specs[index])
            now = f"{current}, step {view['snapshot_step'] - index * steps}"
            cols[2].image(view["snapshot"][0], caption=now, width="stretch",
                          alt=describe.image_alt(now, "the image as this loss is repairing it"))
        curves = _loss_curves(view["rows"], specs, steps)
    else:
        curves = {run.loss.label: ([h["step"] for h in run.history], [h["loss"] for h in run.history])
                  for run in result.runs}
        _loss_results(result)
    if curves:
        a11y.chart(charts.loss_history(curves), "; ".join(
            describe.series_summary("the step", list(xs), {name: list(ys)})[:-1] for name, (xs, ys) in curves.items()
            if len(xs)) + ".", key="loss.chart", config=PLOT_CONFIG, theme=None)
    if result is not None:
        st.markdown(LOSS_READING)
        c1, c2 = st.columns(2)
        c1.download_button("history.csv", _csv(result.history_rows()), file_name="loss-history.csv", mime="text/csv",
                           key="loss.dl.csv", on_click="ignore", icon=":material/download:")


def _loss_results(result) -> None:
    from core.synthesis import SCORE_KEYS

    if result.stopped:
        st.caption("Stopped early: the losses below ran until then.")
    panels = [("Reference", result.ref, None), (f"Start ({DEGRADATION_STRENGTH[result.degradation][0].lower()})",
                                                 result.start, result.start_scores)]
    panels += [(run.loss.label, run.image, run.scores) for run in result.runs]
    per_row = 3
    for first in range(0, len(panels), per_row):
        cols = st.columns(per_row)
        for col, (name, image, scores) in zip(cols, panels[first:first + per_row]):
            col.image(_uint8(image), caption=name, width="stretch",
                      alt=describe.image_alt(name, "; ".join(f"{_label(k)} {_fmt(k, scores.get(k))}" for k in SCORE_KEYS)
                                             if scores else ""))
            if scores:
                col.markdown("  \n".join(f"{_label(k)} **{_fmt(k, scores.get(k))}**" for k in SCORE_KEYS))
            if scores is not None:
                col.download_button("PNG", _png(image), file_name=f"{name.replace(' ', '_')}.png", mime="image/png",
                                    key=f"loss.dl.{first}.{name}", on_click="ignore", icon=":material/download:")
    st.caption("Higher PSNR and SSIM = more similar; higher LPIPS = more different. Each loss wins on its own "
               "metric — compare them on the others, and with your eyes.")


LOSS_READING = """**What to look for**

- **L2** treats every pixel error alike. Where the reference is reachable it gets there; with the
  coarser grid (½ or ¼ resolution) its best compromise is the *blurry average*: edges and texture go soft.
- **SSIM** (on luma, as the standard code computes it) cannot see colour: from noise it repairs the
  brightness pattern but may leave coloured noise that its score ignores.
- **LPIPS alone** reaches a low LPIPS while leaving or adding fine, high-frequency artefacts
  (noise it does not penalize, grid-like patterns): a low LPIPS is not a clean image.
- **A mix** (L2 keeps the pixels honest, LPIPS keeps the detail) usually scores well on every metric
  at once: the recipe of perceptual losses in image restoration.
"""


def render() -> None:
    st.title("Synthesis", anchor=False)
    st.caption("Let the computer search for each metric's blind spots by optimizing images. " + direction_summary())
    settings = sidebar_settings()
    if settings.net_problem and "lpips_alex" not in _metric_choices():
        st.warning("LPIPS is unavailable (its weights are missing); PSNR and SSIM still work.", icon=":material/warning:")
    mad_tab, loss_tab = st.tabs(["MAD competition", "A metric as a loss"])
    try:
        with mad_tab:
            mad_section(settings.device)
        with loss_tab:
            loss_section(settings.device)
    except LpipsExplorerError as err:
        show_error(err, "Synthesis could not start")


render()
