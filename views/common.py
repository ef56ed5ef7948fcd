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
    heads_file: str = ""  # a checked heads file's path when "from a file…" is chosen and loaded, else ''
    heads_digest: str = ""  # its sha256 (cache keys: the same name may hold other weights later)

    @property
    def label(self) -> str:
        if self.calibrated and self.heads_file:
            return f"LPIPS {self.net} heads {os.path.basename(self.heads_file)} {self.heads_digest[:12]}"
        kind = "LPIPS" if self.calibrated else "baseline"
        return f"{kind} {self.net} v{self.version}"

    @property
    def heads_key(self) -> str:
        """What names the heads in cache keys: the version, or the heads file's digest."""
        return f"file:{self.heads_digest}" if self.calibrated and self.heads_file else self.version

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
        version = st.radio("Linear-head version", [*VERSIONS, FILE_HEADS], key="settings.version",
                           horizontal=True, persist_state="session",
                           format_func=lambda v: "from a file…" if v == FILE_HEADS else v,
                           help="0.1 is the current release; 0.0 is the paper's first (arXiv v1) version; "
                                "from a file: heads fitted to people's judgments (a class quiz's, or "
                                "`lpips-explorer bapps fit`), as a .safetensors file, its .zip with the manifest, "
                                "or an official .pth.")
        calibrated = st.toggle("Calibrated (learned weights)", value=True, key="settings.calibrated",
                               persist_state="session",
                               help="Off gives the paper's uncalibrated baseline: every channel weighted equally.")
        heads = heads_file_choice(net) if version == FILE_HEADS and calibrated else None
        if version == FILE_HEADS:
            version = "0.1"  # the trunk's weights, and the heads until a file is loaded
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
    return Settings(net, version, bool(calibrated), ssim_mode, device, int(max_side), status[net], shown,
                    heads_file=heads["path"] if heads else "", heads_digest=heads["digest"] if heads else "")


# ---------------------------------------------------------------------------------------------
# Linear heads from a file.
# ---------------------------------------------------------------------------------------------

FILE_HEADS = "file"
#: The browser session's loaded heads file: {"name", "path", "digest", "net"} (see load_heads_file).
HEADS_STATE = "settings.heads"
#: Heads files kept on this server (content-addressed folders); the oldest go beyond this many.
MAX_HEADS_FOLDERS = 64


def heads_root():
    import tempfile
    from pathlib import Path

    return Path(os.environ.get("LPIPS_EXPLORER_HEADS_DIR") or Path(tempfile.gettempdir()) / "lpips-explorer-heads")


def _prune_heads_folders(root) -> None:
    """Keep the newest :data:`MAX_HEADS_FOLDERS` folders (an upload is at most 1 MiB: bounded disk)."""
    import shutil

    try:
        folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    except OSError:
        return
    for old in folders[:max(0, len(folders) - MAX_HEADS_FOLDERS)]:
        shutil.rmtree(old, ignore_errors=True)


def load_heads_file(data: bytes, name: str, net: str) -> dict[str, str]:
    """Check uploaded heads (``.safetensors``, ``.pth``, or the ``.zip`` of a file and its manifest)
    for ``net`` and keep them on this server; returns the session's record of them. Raises
    :class:`~core.lpips.heads.HeadsError` (a message naming what is wrong) and keeps nothing then."""
    import shutil

    from core.lpips.heads import HeadsError, load_heads, unpack_heads

    digest = hashlib.sha256(data).hexdigest()
    root = heads_root()
    folder = root / digest[:32]
    try:
        path = unpack_heads(data, name, folder)
        load_heads(path, net)
    except HeadsError as err:
        shutil.rmtree(folder, ignore_errors=True)
        other = _other_net(folder, data, name, net) if "holds heads for" in str(err) else None
        if other is not None:
            raise HeadsError(f"it holds heads for {NET_LABELS[other]}, not {NET_LABELS[net]}: choose "
                             f"{NET_LABELS[other]} as the backbone network above, then load the file again.") from None
        # The message names this server's folder; the person knows the file by its name.
        text = str(err).replace(str(folder) + os.sep, "").replace(str(folder), "")
        raise HeadsError(text) from None
    except OSError as err:
        shutil.rmtree(folder, ignore_errors=True)
        raise HeadsError(f"The heads could not be kept on this server ({err}).") from None
    _prune_heads_folders(root)
    file_digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"name": path.name, "path": str(path), "digest": file_digest, "net": net}


def _other_net(folder, data: bytes, name: str, net: str) -> str | None:
    """The network a refused file's heads are for, when it is another one (for the message)."""
    import shutil

    from core.lpips.heads import HeadsError, load_heads, unpack_heads

    try:
        path = unpack_heads(data, name, folder)
        for other in NETS:
            if other != net:
                try:
                    load_heads(path, other)
                    return other
                except HeadsError:
                    continue
    except (HeadsError, OSError):
        pass
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return None


def heads_file_choice(net: str) -> dict[str, str] | None:
    """The "from a file…" uploader and the session's loaded heads for ``net`` (or ``None``, with a
    note that v0.1's heads are used meanwhile). A refused file leaves the loaded heads as they were."""
    from core.lpips.heads import MAX_HEADS_BYTES

    upload = st.file_uploader("Heads file", type=["safetensors", "pth", "zip"], key="settings.heads_upload",
                              max_upload_size=1,  # MB: heads are a few kB (MAX_HEADS_BYTES)
                              help="Fitted heads: the .zip the quiz dashboard offers (heads + manifest), a "
                                   ".safetensors file from `lpips-explorer bapps fit`, or an official .pth.")
    if upload is not None and st.session_state.get("settings.heads_seen") != upload.file_id:
        st.session_state["settings.heads_seen"] = upload.file_id  # checked once per upload, not per rerun
        try:
            if upload.size > MAX_HEADS_BYTES:
                raise LpipsExplorerError(f"{plain(upload.name[:120])} has {upload.size:,} bytes; a heads file is a "
                                         f"few kB (at most {MAX_HEADS_BYTES:,} bytes).")
            st.session_state[HEADS_STATE] = load_heads_file(upload.getvalue(), upload.name, net)
        except LpipsExplorerError as err:
            st.session_state["settings.heads_error"] = f"{plain(upload.name[:120])} was not loaded: {err}"
    problem = st.session_state.pop("settings.heads_error", None)
    if problem:
        kept = st.session_state.get(HEADS_STATE)
        st.error(f"{problem}" + (f" The heads loaded before ({plain(kept['name'])}) stay in use." if kept else ""),
                 icon=":material/error:")
    heads = st.session_state.get(HEADS_STATE)
    if not isinstance(heads, dict) or not os.path.isfile(str(heads.get("path", ""))):
        st.info("No heads file loaded: LPIPS uses the v0.1 heads until one is.", icon=":material/upload_file:")
        return None
    if heads.get("net") != net:
        st.warning(f"The loaded heads ({plain(heads['name'])}) are for {NET_LABELS.get(heads.get('net'), '?')}; choose "
                   f"that backbone, or load heads for {NET_LABELS[net]}. LPIPS uses the v0.1 heads meanwhile.",
                   icon=":material/warning:")
        return None
    st.caption(f"Heads in use: **{plain(heads['name'])}** ({NET_LABELS[net]}).")
    return heads


def use_heads_in_explore(data: bytes, name: str, net: str) -> None:
    """Make ``data`` (a heads bundle or file) this browser session's heads in Explore and choose
    them there (backbone, "from a file…", calibrated). Raises what :func:`load_heads_file` raises."""
    st.session_state[HEADS_STATE] = load_heads_file(data, name, net)
    st.session_state["settings.net"] = net
    st.session_state["settings.version"] = FILE_HEADS
    st.session_state["settings.calibrated"] = True


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


@st.cache_resource(show_spinner="Loading the heads…", max_entries=8)
def engine_for_file(path: str, digest: str, net: str, device: str) -> Engine:
    """One shared engine per heads file (by content) and device, with the v0.1 trunk."""
    from core.judgments.heads import engine_from_file
    from core.lpips.engine import resolve_device

    return engine_from_file(path, net, "0.1", resolve_device(device))


def get_engine(settings: Settings) -> Engine | None:
    try:
        if settings.calibrated and settings.heads_file:
            engine = engine_for_file(settings.heads_file, settings.heads_digest, settings.net, settings.device)
        else:
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
    return prepared_reference(image.digest, settings.net, settings.heads_key, settings.calibrated, settings.device,
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
