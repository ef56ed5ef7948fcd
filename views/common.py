"""What every page shares: the sidebar settings, cached models and images, error display.

Streamlit wiring only: every number comes from ``core``, every picture from ``viz``.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from core.errors import LpipsExplorerError, WeightsError
from core.lpips.names import NET_LABELS, NETS, VERSIONS
from core.images.samples import list_samples

if TYPE_CHECKING:
    from core.lpips.engine import Engine, ReferenceFeatures

# torch-based modules (core.lpips.engine, core.images.imageio, core.lpips.weights…) are imported inside the
# functions that need them: the page's first controls appear before torch has loaded.
# Largest side the app computes on; bigger uploads are downscaled with a notice.
MAX_SIDE_CHOICES = (256, 384, 512, 768, 1024, 1536)
DEFAULT_MAX_SIDE = int(os.environ.get("LPIPS_EXPLORER_MAX_SIDE", "512"))
# Decoding limit for uploads (decompression-bomb guard), in pixels.
UPLOAD_MAX_PIXELS = int(os.environ.get("LPIPS_EXPLORER_MAX_PIXELS", str(40_000_000)))
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
# Per-widget upload limit in MB (the server-wide one is in .streamlit/config.toml).
UPLOAD_MAX_MB = int(os.environ.get("LPIPS_EXPLORER_MAX_UPLOAD_MB", "25"))


@dataclass(frozen=True)
class Settings:
    net: str
    version: str
    calibrated: bool
    ssim_mode: str
    device: str
    max_side: int
    net_problem: str  # non-empty when the chosen net's weights are missing
    metrics: tuple[str, ...] = ()  # the metrics on the cards (LPIPS always); () = the default ones

    @property
    def label(self) -> str:
        kind = "LPIPS" if self.calibrated else "baseline"
        return f"{kind} {self.net} v{self.version}"

    @property
    def shown_metrics(self) -> tuple[str, ...]:
        """The metrics to compute: those chosen, or the default ones (every metric fast enough
        for a slider move on a CPU) when none were chosen."""
        from core import metrics

        return self.metrics or metrics.defaults()


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to compute on: 8-bit pixels, a content digest, and what was done to it."""

    pixels: np.ndarray  # H×W×3 uint8
    digest: str
    name: str
    notes: tuple[str, ...]

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]


def note_computation(kind: str) -> None:
    """Count a computation that really ran (a cache miss) in the file named by
    ``LPIPS_EXPLORER_COUNT_FILE``, if set: the class-load benchmark compares it with the slider
    values it sent, to show that stale values are skipped. Off (a no-op) otherwise."""
    path = os.environ.get("LPIPS_EXPLORER_COUNT_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as fh:  # one short line: an atomic append
            fh.write(kind + "\n")


def show_error(err: Exception, what: str) -> None:
    """A message a person can act on; never a traceback."""
    if isinstance(err, LpipsExplorerError):
        st.error(f"**{what}:** {err}", icon=":material/error:")
    else:  # an unexpected bug: say so plainly, keep the session alive
        st.error(f"**{what}:** an unexpected error occurred ({type(err).__name__}: {err}). "
                 "Try another image or setting; if it persists, please report it.", icon=":material/bug_report:")


# ---------------------------------------------------------------------------------------------
# Sidebar settings.
# ---------------------------------------------------------------------------------------------

@st.cache_data(ttl=30, show_spinner=False, max_entries=1)
def weights_status() -> dict[str, str]:
    """``{net: problem}`` ('' when usable); re-checked every 30 s so a repair shows up."""
    from core.lpips import weights

    return {net: ("" if ok else reason) for net, (ok, reason) in
            ((n, weights.backbone_available(n)) for n in NETS)}


def device_choices() -> list[str]:
    import torch

    choices = ["auto", "cpu"]
    if torch.cuda.is_available():
        choices.append("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        choices.append("mps")
    return choices


def sidebar_settings() -> Settings:
    status = weights_status()
    with st.sidebar:
        st.subheader("Metric settings")
        net = st.radio(
            "Backbone network", list(NETS), key="settings.net", persist_state="session",
            format_func=lambda n: NET_LABELS[n] + ("" if not status[n] else " — unavailable"),
            captions=[("5 layers, fast" if n == "alex" else "5 layers, slower, finer" if n == "vgg" else "7 layers, small")
                      if not status[n] else "weights missing: see below" for n in NETS],
            help="LPIPS compares this network's features of the two images.",
        )
        if status[net]:
            st.warning(status[net], icon=":material/warning:")
        version = st.radio("Linear-head version", list(VERSIONS), key="settings.version",
                           horizontal=True, persist_state="session",
                           help="0.1 is the current release; 0.0 is the paper's first (arXiv v1) version.")
        calibrated = st.toggle("Calibrated (learned weights)", value=True, key="settings.calibrated",
                               persist_state="session",
                               help="Off gives the paper's uncalibrated baseline: every channel weighted equally.")
        ssim_mode = st.radio("SSIM mode", ["reference", "rgb"], key="settings.ssim_mode", horizontal=True,
                             persist_state="session",
                             captions=["luma, as Wang et al.'s code", "mean over R, G, B"])
        device = st.selectbox("Device", device_choices(), key="settings.device", persist_state="session",
                              help="auto uses a CUDA GPU, then Apple MPS, then the CPU.")
        max_side = st.select_slider("Compute size limit (longest side, px)", MAX_SIDE_CHOICES,
                                    value=DEFAULT_MAX_SIDE if DEFAULT_MAX_SIDE in MAX_SIDE_CHOICES else 512,
                                    key="settings.max_side",
                                    help="Larger images are downscaled to this before computing (with a notice).")
        shown = metrics_choice()
        st.caption(direction_caption())
    return Settings(net, version, bool(calibrated), ssim_mode, device, int(max_side), status[net], shown)


def metrics_choice() -> tuple[str, ...]:
    """Which metrics the cards show: the default ones at first; the slow ones (DISTS, FSIM,
    VIF, VIFp: tens of ms to seconds per move on a CPU, see the README) are there to add. A metric
    that is not shown is not computed; LPIPS always is: the maps and layers are its own."""
    from core import metrics

    names = list(metrics.names())
    optional = [k for k in names if k != "lpips"]  # LPIPS is the page's subject: always on
    default = [k for k in metrics.defaults() if k != "lpips"]
    slow = ", ".join(metrics.get(k).label for k in optional if k not in default)
    chosen = st.multiselect("Metrics beside LPIPS", optional, default=default, key="settings.metrics",
                            format_func=lambda k: metrics.get(k).label,
                            help="A metric you remove is not computed, and its card and map disappear. "
                                 + (f"More metrics to add: {slow} (slower: each adds from tens of ms to "
                                    "seconds per move on a CPU)." if slow else ""))
    return tuple(k for k in names if k in chosen or k == "lpips")


# ---------------------------------------------------------------------------------------------
# Cached resources.
# ---------------------------------------------------------------------------------------------

@st.cache_resource(show_spinner=False)
def freeze_imported_objects() -> int:
    """Once per server: move everything imported so far (PyTorch, Streamlit, … about 400,000
    objects) out of the garbage collector's sight (``gc.freeze``). Streamlit runs a full
    ``gc.collect()`` after every script run (``runner.postScriptGC``); walking those objects cost
    about 175 ms of CPU per rerun, most of a quiz click and more than a slider move's metrics.
    Called once the first engine is loaded, so PyTorch is among them. Imported modules live as
    long as the server, so nothing that could be freed is kept. Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@st.cache_resource(show_spinner="Loading the network…", max_entries=6)
def engine_for(net: str, version: str, calibrated: bool, device: str) -> Engine:
    """One shared, read-only engine per configuration for the whole server."""
    from core.lpips.engine import Engine, resolve_device

    threads = os.environ.get("LPIPS_EXPLORER_TORCH_THREADS")
    if threads:  # serving a class: 1 thread per request shares the cores better than 2 per request
        import torch

        torch.set_num_threads(max(1, int(threads)))
    return Engine(net, version, calibrated, resolve_device(device))


def get_engine(settings: Settings) -> Engine | None:
    try:
        engine = engine_for(settings.net, settings.version, settings.calibrated, settings.device)
        freeze_imported_objects()  # after the first engine: PyTorch and the model are imported by now
        return engine
    except WeightsError as err:
        from core.lpips.engine import clear_network_cache

        clear_network_cache()  # so the app recovers as soon as the weights are repaired
        weights_status.clear()
        show_error(err, "The network could not be loaded")
    except (ValueError, RuntimeError) as err:
        show_error(err, "The network could not be loaded")
    return None


@st.cache_resource(show_spinner=False, max_entries=16, ttl=3600)
def prepared_reference(digest: str, net: str, version: str, calibrated: bool, device: str, ssim_mode: str,
                       metrics: tuple[str, ...], _engine: Engine, _pixels: np.ndarray):
    """Everything every metric needs of the reference (LPIPS features, SSIM's moments at each
    scale...), computed once per (image, settings) and shared read-only by all sessions."""
    from core.comparison import prepare_reference
    from core.images.tensors import from_numpy

    # float64 SSIM, the reference path: with the reference's moments filtered once here, a move
    # costs about what float32 did (25.7 vs 21.9 ms for SSIM + MS-SSIM at 512², 2 cores).
    return prepare_reference(_engine, from_numpy(_pixels), metrics=metrics, ssim_mode=ssim_mode, precise=True)


def prepared_for(engine: Engine, settings: Settings, image: PreparedImage):
    """The shared prepared reference for these settings (Explore and Sweeps use the same one)."""
    return prepared_reference(image.digest, settings.net, settings.version, settings.calibrated, settings.device,
                              settings.ssim_mode, settings.shown_metrics, engine, image.pixels)


def features_for(engine: Engine, settings: Settings, image: PreparedImage) -> ReferenceFeatures:
    """LPIPS's features of the reference, taken from the shared prepared reference."""
    return prepared_for(engine, settings, image).parts["lpips"]


@st.cache_data(show_spinner=False, max_entries=32)
def _decode_upload(data: bytes, max_pixels: int, max_side: int) -> tuple[np.ndarray, tuple[str, ...]]:
    from core.images.imageio import downscale_to_fit, load_image_info
    from core.images.tensors import to_uint8

    from core.lpips.nets import MIN_SIDE

    info = load_image_info(data, max_pixels=max_pixels)
    # Never shrink below what every network accepts: a banner keeps a usable short side.
    tensor, shrunk = downscale_to_fit(info.tensor, max_side, min_side=max(MIN_SIDE.values()))
    notes = list(info.notes)
    if shrunk:
        notes.append(f"downscaled from {info.width}×{info.height} to {tensor.shape[-1]}×{tensor.shape[-2]} "
                     f"for computing (limit {max_side} px; change it in the sidebar)")
    return to_uint8(tensor), tuple(notes)


def prepare_upload(data: bytes, name: str, max_side: int) -> PreparedImage:
    """Decode uploaded bytes (never touching the file name as a path)."""
    pixels, notes = _decode_upload(data, UPLOAD_MAX_PIXELS, max_side)
    return PreparedImage(pixels, digest_of(pixels), name, notes)


@st.cache_data(show_spinner=False, max_entries=16)
def _decode_sample(key: str, max_side: int) -> tuple[np.ndarray, tuple[str, ...]]:
    sample = next(s for s in list_samples() if s.key == key)
    return _decode_upload(sample.path.read_bytes(), UPLOAD_MAX_PIXELS, max_side)


def prepare_sample(key: str, max_side: int) -> PreparedImage:
    pixels, notes = _decode_sample(key, max_side)
    return PreparedImage(pixels, digest_of(pixels), key, notes)


def digest_of(pixels: np.ndarray) -> str:
    return hashlib.blake2b(pixels.tobytes() + str(pixels.shape).encode(), digest_size=16).hexdigest()


@st.cache_data(show_spinner=False, max_entries=1)
def sample_catalogue() -> list[dict]:
    return [{"key": s.key, "title": s.title, "description": s.description, "credit": s.credit}
            for s in list_samples()]


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: str) -> str:
    """Escape user text for st.markdown: shown literally, never as links, images or HTML."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def fmt_metric(name: str, value: float) -> str:
    """A metric's value as its registry spec formats it (``n/a``, ``∞ dB (identical)``, ``0.1234``)."""
    from core import metrics

    spec = metrics.get(name)
    text = spec.format(value)
    if value == spec.identical and value in (float("inf"), float("-inf")):
        text += " (identical)"  # a bare ∞ reads like an error
    return text


def metric_context(engine: Engine | None, settings: Settings):
    """The settings the metrics see (for their titles: "LPIPS (alex v0.1)", "SSIM (rgb)")."""
    from core.metrics import MetricContext

    return MetricContext(engine=engine, ssim_mode=settings.ssim_mode)


def direction_summary() -> str:
    """One sentence for every registered metric: "Higher LPIPS = more different; higher PSNR,
    SSIM, MS-SSIM = more similar." """
    from core import metrics

    lower = [s.label for s in metrics.specs() if not s.higher_is_better]
    higher = [s.label for s in metrics.specs() if s.higher_is_better]
    parts = [f"higher {', '.join(lower)} = more different"] if lower else []
    parts += [f"higher {', '.join(higher)} = more similar"] if higher else []
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def direction_caption() -> str:
    """How to read every registered metric, one line each (the sidebar's legend)."""
    from core import metrics

    return "  \n".join(f"**{spec.label}**: {spec.meaning}." for spec in metrics.specs())


__all__ = ["Settings", "PreparedImage", "sidebar_settings", "get_engine", "features_for", "prepared_for",
           "prepare_upload",
           "prepare_sample", "sample_catalogue", "show_error", "fmt_metric", "metric_context", "direction_caption", "direction_summary", "plain",
           "UPLOAD_TYPES", "UPLOAD_MAX_MB"]
