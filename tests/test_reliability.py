"""Reliability: hostile and unusual input, session isolation, a shared model under threads,
weights that break (and get repaired) while the app runs, and upload names used as attacks.

Every input is generated here (no binary fixtures). Core-level behaviour of each loader branch
is pinned in detail by ``tests/test_imageio.py``; this file checks the *outcome* of the whole
path a file takes — decode, downscale, LPIPS engine, and the Explore page — for a corpus of
bad and odd files, and that the app always answers with a message or numbers, never a traceback.

Refusing malicious weight pickles is covered by
``tests/test_weights.py::test_malicious_pickle_is_refused_and_runs_nothing`` (not repeated here).
"""

from __future__ import annotations

import builtins
import html
import io
import os
import re
import shutil
import struct
import threading
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image

from conftest import png_claiming_size
from core.lpips import weights
from core.errors import (ImageLoadError, ImageSizeMismatchError, ImageTooLargeError, ImageTooSmallError,
                         InputRangeError, LpipsExplorerError)
from core.images.imageio import downscale_to_fit, load_image, load_image_info, match_size
from core.lpips.engine import Engine, clear_network_cache, get_network
from core.images.tensors import from_numpy, to_uint8

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

APP = Path(__file__).resolve().parents[1] / "views" / "app.py"
TIMEOUT = 120  # seconds per script run (2-core, shared CPU)
MAX_SIDE = 256  # settings.max_side preset in every app test: the wiring matters here, not the numbers
APP_MAX_PIXELS = 40_000_000  # views.common.UPLOAD_MAX_PIXELS (LPIPS_EXPLORER_MAX_PIXELS unset)
TRACEBACK = re.compile(r"Traceback|File \"|line \d+, in ")
# "What to do": every user-facing error should name an action (errors.py: "Each message says what
# happened and what to do about it").
ADVICE = re.compile(r"\b(re-?save|save|re-?download|download|export|convert|pick|choose|use|check|downscale|"
                    r"try|open|run|crop|resize|upscale|fill|mask|replace|remove|raise)\b", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# The corpus: small generators, each made once per test session.
# ---------------------------------------------------------------------------------------------

def encode(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def smooth(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photo-like H×W×3 uint8 image: gradients plus mild noise (PSNR/SSIM behave normally)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / max(width - 1, 1), y / max(height - 1, 1),
                     0.5 + 0.5 * np.sin((x + 2 * y) / 7.0 + seed)], axis=2) * 200 + 20
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def truncated_png() -> bytes:
    data = encode(noise(64, 64))
    return data[: len(data) // 2]


def truncated_jpeg() -> bytes:
    data = encode(noise(64, 64), "JPEG", quality=90)
    return data[: len(data) // 2]


def large_png() -> bytes:
    """6000×4000 (24 MP): a 64×64 noise tile repeated, so it encodes in ~2 s and stays ~1.4 MB."""
    tile = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    pixels = np.tile(tile, (4000 // 64 + 1, 6000 // 64 + 1, 1))[:4000, :6000]
    return encode(Image.fromarray(pixels), compress_level=1)


def sixteen_bit_png() -> bytes:
    values = (smooth(48, 48)[:, :, 0].astype(np.uint16) * 257)
    values[0, :4] = [0, 257, 1000, 65535]
    img = Image.fromarray(values)
    assert img.mode.startswith("I;16")
    return encode(img)


def palette_png_with_transparency() -> bytes:
    img = Image.fromarray(smooth(48, 48)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(img, transparency=0)


def animated_gif() -> bytes:
    frames = [Image.fromarray(smooth(48, 48, seed)) for seed in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buf.getvalue()


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored 64 wide × 40 tall, shown 40 wide × 64 tall
    return encode(Image.fromarray(smooth(64, 40)), "JPEG", quality=90, exif=exif.tobytes())


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def rgb16_png() -> bytes:
    """48-bit colour (16 bits per channel), which Pillow itself cannot write: built chunk by chunk."""
    values = smooth(48, 48).astype(np.uint16) * 257
    values[0, 0] = (0, 1000, 65535)
    values = values.astype(">u2")  # PNG stores samples big-endian
    raw = b"".join(b"\0" + row.tobytes() for row in values)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 48, 48, 16, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def png_text_chunk_bomb() -> bytes:
    """A 48×48 PNG with a zTXt comment that inflates to 16 MB (a metadata, not pixel, bomb)."""
    png = encode(Image.fromarray(smooth(48, 48)))
    assert png[12:16] == b"IHDR"
    bomb = _chunk(b"zTXt", b"Comment\0\0" + zlib.compress(bytes(16 << 20), 9))
    return png[:33] + bomb + png[33:]


def float_tiff_with_nan() -> bytes:
    values = smooth(48, 48)[:, :, 1].astype(np.float32) / 255
    values[3, 4] = np.nan
    values[10:12, 20:30] = np.nan
    return encode(Image.fromarray(values, mode="F"), "TIFF")


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect/></svg>\n'


@dataclass(frozen=True)
class Case:
    """One corpus file and what must happen to it.

    ``error``/``message``: the loader raises this class with this fragment (with the app's upload
    pixel limit). Otherwise the file loads as an RGB [0, 1] tensor of ``size`` (width, height)
    with a note containing ``note``; then the engine (on the app's downscaled pixels) either
    computes a finite LPIPS or raises ``engine_error`` with ``message``. ``caption`` must appear
    among the page's captions when the file is the uploaded reference.
    """

    name: str
    filename: str
    mime: str
    make: Callable[[], bytes]
    error: type[Exception] | None = None
    message: str = ""
    size: tuple[int, int] | None = None
    note: str | None = None
    engine_error: type[Exception] | None = None
    caption: str | None = None


CASES = [
    Case("zero_bytes", "empty.png", "image/png", lambda: b"", ImageLoadError, "the file is empty (0 bytes)"),
    Case("truncated_png", "cut.png", "image/png", truncated_png, ImageLoadError, "truncated or corrupt"),
    Case("truncated_jpeg", "cut.jpg", "image/jpeg", truncated_jpeg, ImageLoadError, "truncated or corrupt"),
    Case("text_named_png", "notes.png", "image/png", lambda: b"shopping list: milk, eggs\n", ImageLoadError,
         "it is not an image but text"),
    Case("svg_named_png", "drawing.png", "image/png", lambda: SVG, ImageLoadError, "SVG is a vector format"),
    Case("bomb_100000x100000", "bomb.png", "image/png", lambda: png_claiming_size(100_000, 100_000),
         ImageTooLargeError, "decompression bomb"),
    Case("bomb_80mp_header", "pano.png", "image/png", lambda: png_claiming_size(10_000, 8_000),
         ImageTooLargeError, "10000×8000 pixels (80.0 megapixels), over the limit of 40 megapixels"),
    Case("png_text_chunk_bomb", "meta.png", "image/png", png_text_chunk_bomb, ImageLoadError,
         "MAX_TEXT_CHUNK"),
    Case("large_6000x4000", "large.png", "image/png", large_png, size=(6000, 4000),
         caption="downscaled from 6000×4000 to 256×171"),
    Case("one_pixel", "dot.png", "image/png", lambda: encode(noise(1, 1)), size=(1, 1),
         engine_error=ImageTooSmallError, message="at least 31×31 pixels, got 1×1"),
    Case("20x20", "icon.png", "image/png", lambda: encode(noise(20, 20)), size=(20, 20),
         engine_error=ImageTooSmallError, message="at least 31×31 pixels, got 20×20"),
    Case("16bit_png", "deep.png", "image/png", sixteen_bit_png, size=(48, 48), note="16-bit"),
    Case("16bit_rgb_png", "deep-colour.png", "image/png", rgb16_png, size=(48, 48)),
    Case("cmyk_jpeg", "print.jpg", "image/jpeg",
         lambda: encode(Image.fromarray(smooth(48, 48)).convert("CMYK"), "JPEG", quality=90),
         size=(48, 48), note="CMYK"),
    Case("palette_transparent_png", "logo.png", "image/png", palette_png_with_transparency, size=(48, 48),
         note="transparent areas composited on white"),
    Case("animated_gif", "anim.gif", "image/gif", animated_gif, size=(48, 48),
         note="first frame of an animated GIF (3 frames)"),
    Case("exif_rotated_jpeg", "phone.jpg", "image/jpeg", exif_rotated_jpeg, size=(40, 64),
         note="rotated 90° clockwise per EXIF orientation 6"),
    Case("grayscale_png", "gray.png", "image/png", lambda: encode(Image.fromarray(smooth(48, 48)).convert("L")),
         size=(48, 48), note="converted from grayscale"),
    # NaN: the loader either refuses it (ImageLoadError/InputRangeError naming NaN) or replaces it and
    # says so in a note; see test_nan_float_tiff_* below. Never a silent number.
    Case("float_tiff_nan", "depth.tif", "image/tiff", float_tiff_with_nan, size=(48, 48), note="NaN"),
]
CASE_IDS = [c.name for c in CASES]
ERROR_CASES = [c for c in CASES if c.error is not None]


@lru_cache(maxsize=None)
def corpus_bytes(name: str) -> bytes:
    return next(c for c in CASES if c.name == name).make()


def app_pixels(tensor: torch.Tensor, max_side: int = MAX_SIDE) -> torch.Tensor:
    """What the app computes on: downscaled to the compute limit, then 8-bit."""
    small, _ = downscale_to_fit(tensor, max_side)
    return from_numpy(to_uint8(small))


# ---------------------------------------------------------------------------------------------
# 1a. Corpus at core level: load, downscale, engine.
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def alex() -> Engine:
    return Engine("alex")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_corpus_core_outcome(case: Case, alex: Engine) -> None:
    data = corpus_bytes(case.name)
    if case.error is not None:
        with pytest.raises(case.error) as caught:
            load_image_info(data, max_pixels=APP_MAX_PIXELS)
        assert isinstance(caught.value, LpipsExplorerError)
        assert case.message in str(caught.value)
        return
    try:
        info = load_image_info(data, max_pixels=APP_MAX_PIXELS)
    except (ImageLoadError, InputRangeError) as err:  # only the NaN case may be refused here
        assert case.name == "float_tiff_nan", err
        assert "NaN" in str(err) and ADVICE.search(str(err)), err
        return
    x = info.tensor
    assert x.dtype == torch.float32 and tuple(x.shape) == (1, 3, case.size[1], case.size[0])
    assert (info.width, info.height) == case.size
    assert bool(torch.isfinite(x).all()), "non-finite pixels left in a loaded image"
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    if case.note is not None:
        assert any(case.note in n for n in info.notes), info.notes
    if case.name == "grayscale_png" or case.name == "16bit_png":
        assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    pixels = app_pixels(x)
    assert max(pixels.shape[-2:]) <= MAX_SIDE
    dist = pixels.flip(-1)
    if case.engine_error is not None:
        with pytest.raises(case.engine_error, match=re.escape(case.message)):
            alex.compare(pixels, dist)
        return
    value = alex.distance(pixels, dist)
    assert value.shape == (1,) and bool(torch.isfinite(value).all()) and float(value[0]) >= 0.0


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c.name for c in ERROR_CASES])
def test_load_errors_say_what_to_do(case: Case) -> None:
    with pytest.raises(LpipsExplorerError) as caught:
        load_image_info(corpus_bytes(case.name), max_pixels=APP_MAX_PIXELS)
    assert ADVICE.search(str(caught.value)), str(caught.value)


def test_16bit_colour_png_is_within_one_8bit_level() -> None:
    """Pillow reads 16-bit-per-channel colour as 8-bit (by truncation; no note says so): harmless for the
    app, which computes on 8-bit pixels anyway, but never off by more than one 8-bit level."""
    info = load_image_info(corpus_bytes("16bit_rgb_png"))
    truth = torch.from_numpy((smooth(48, 48).astype(np.float64) * 257) / 65535).permute(2, 0, 1)[None].float()
    truth[0, :, 0, 0] = torch.tensor([0, 1000, 65535]) / 65535
    assert float((info.tensor - truth).abs().max()) <= 1 / 255 + 1e-6


def test_different_sizes_need_an_explicit_fit(alex: Engine) -> None:
    ref = from_numpy(smooth(64, 48))
    other = from_numpy(smooth(80, 60, seed=1))
    with pytest.raises(ImageSizeMismatchError, match="Crop or resize one of them first"):
        alex.compare(ref, other)
    for how in ("resize", "crop"):
        fitted = match_size(ref, other, how)
        assert fitted.shape == ref.shape
        assert bool(torch.isfinite(alex.distance(ref, fitted)).all())


def test_nan_float_tiff_is_never_a_silent_number(alex: Engine) -> None:
    """The documented path: refused with a clear error, or zeroed *with a note saying so*."""
    # A NaN tensor that reaches the engine directly is refused, never turned into a number.
    clean = from_numpy(smooth(48, 48))
    poisoned = clean.clone()
    poisoned[0, :, 3, 4] = float("nan")
    with pytest.raises(InputRangeError, match="NaN"):
        alex.compare(clean, poisoned)
    with pytest.raises(InputRangeError, match="NaN"):
        alex.reference(poisoned)
    try:
        info = load_image_info(corpus_bytes("float_tiff_nan"))
    except (ImageLoadError, InputRangeError) as err:
        assert "NaN" in str(err)
        return
    assert any("NaN" in n for n in info.notes), info.notes
    assert bool(torch.isfinite(info.tensor).all())


def test_nan_float_tiff_is_refused_by_load_image() -> None:
    try:
        load_image(corpus_bytes("float_tiff_nan"))
    except (ImageLoadError, InputRangeError) as err:
        assert "NaN" in str(err)
        return
    raise AssertionError("load_image() returned a tensor for a TIFF with NaN pixels")


# ---------------------------------------------------------------------------------------------
# Driving the app.
# ---------------------------------------------------------------------------------------------

def start(**state) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["settings.max_side"] = MAX_SIDE
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def start_upload() -> AppTest:
    """A session on the Explore page with the Upload source picked (nothing computed yet)."""
    at = start(**{"source.kind": "Upload"})
    assert at.segmented_control(key="source.kind").value == "Upload"
    assert not at.metric and not at.warning, [w.value for w in at.warning]
    return at


def upload(at: AppTest, data: bytes, name: str = "photo.png", mime: str = "image/png",
           key: str = "source.upload") -> AppTest:
    at.file_uploader(key=key).set_value((name, data, mime)).run()
    return at


def all_text(at: AppTest) -> list[str]:
    """Every string field of every rendered element (markdown, captions, alerts, labels, ...)."""
    from google.protobuf import text_format

    out: list[str] = []
    for node in at._tree:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(text_format.MessageToString(proto, as_utf8=True))
    return out


def assert_no_traceback(at: AppTest) -> None:
    for e in list(at.error) + list(at.warning) + list(at.info):
        assert not TRACEBACK.search(e.value), e.value


def assert_cards(at: AppTest) -> dict[str, str]:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    from core import metrics

    labels = [m.label for m in at.metric]
    assert len(at.metric) == len(metrics.defaults()), labels  # one card per metric shown by default
    values = {m.label: m.value for m in at.metric}
    lpips = next(v for k, v in values.items() if k.startswith("LPIPS ("))
    assert re.fullmatch(r"\d+\.\d{4}", lpips), lpips
    return values


def reference_url(at: AppTest) -> str:
    if not at.toggle(key="view.reference").value:  # the first screen shows the distorted image
        at.toggle(key="view.reference").set_value(True).run()
    urls = [url for img in at.image for url, cap in zip(img.value, img.captions) if cap == "Reference"]
    assert len(urls) == 1, [img.captions for img in at.image]
    return urls[0]


GOOD = encode(Image.fromarray(smooth(64, 64, seed=7)))


# ---------------------------------------------------------------------------------------------
# 1b. Corpus at app level: a message or cards, never a traceback; the session stays usable.
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_corpus_upload_as_reference(case: Case) -> None:
    at = start_upload()
    upload(at, corpus_bytes(case.name), case.filename, case.mime)
    assert not at.exception, [e.value for e in at.exception]
    assert_no_traceback(at)
    errors = [e.value for e in at.error]
    if case.error is not None or case.engine_error is not None:
        assert len(errors) == 1, errors
        heading = "This image cannot be used" if case.error is not None else "The metrics could not be computed"
        assert heading in errors[0] and case.message in errors[0], errors
        assert ADVICE.search(errors[0]), errors  # says what to do
        assert not at.metric
    elif errors:  # only NaN may be refused instead of loaded
        assert case.name == "float_tiff_nan" and "NaN" in errors[0], errors
        assert not at.metric
    else:
        assert_cards(at)
        captions = [c.value for c in at.caption]
        if case.note is not None:
            assert any(c.startswith("Reference: ") and case.note in c for c in captions), captions
        if case.caption is not None:
            assert any(case.caption in c for c in captions), captions

    # Recovery in the same session: a good upload gives numbers.
    upload(at, GOOD, "good.png")
    cards = assert_cards(at)
    assert not any(c.value.startswith("Reference: ") for c in at.caption), "stale notes from the bad file"
    # ...and picking a sample again works too.
    at.segmented_control(key="source.kind").set_value("Sample").run()
    assert assert_cards(at) != cards


SECOND_ERROR_CASES = [c for c in ERROR_CASES
                      if c.name in ("zero_bytes", "truncated_png", "svg_named_png", "bomb_100000x100000")]


@pytest.mark.parametrize("case", SECOND_ERROR_CASES, ids=[c.name for c in SECOND_ERROR_CASES])
def test_corpus_upload_as_second_image(case: Case) -> None:
    at = start(**{"compare.mode": "A second image"})
    upload(at, corpus_bytes(case.name), case.filename, case.mime, key="compare.upload")
    assert not at.exception, [e.value for e in at.exception]
    assert_no_traceback(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "The second image cannot be used" in errors[0] and case.message in errors[0], errors
    assert not at.metric
    upload(at, default_sample_png(), "same.png", key="compare.upload")  # same size: no fit needed
    assert_cards(at)


@lru_cache(maxsize=None)
def default_sample_png() -> bytes:
    """The default sample at the app's compute size, as a PNG: a second image that needs no fit."""
    from core.images.samples import list_samples

    sample = list_samples()[0]
    return encode(Image.fromarray(to_uint8(app_pixels(load_image(sample.path)))))


def test_wide_banner_is_not_downscaled_below_the_networks_minimum() -> None:
    at = start_upload()
    upload(at, encode(Image.fromarray(smooth(1200, 100))), "banner.png")
    assert not at.exception, [e.value for e in at.exception]
    assert_cards(at)


def test_second_image_of_different_size_needs_an_explicit_choice() -> None:
    at = start_upload()
    upload(at, GOOD, "ref.png")
    assert_cards(at)
    at.segmented_control(key="compare.mode").set_value("A second image").run()
    other = encode(Image.fromarray(smooth(96, 80, seed=2)))
    upload(at, other, "other.png", key="compare.upload")
    assert not at.exception and not at.error, [e.value for e in at.error]
    fit = at.radio(key="compare.fit")
    assert fit.value is None, "a size fit was chosen without asking"
    assert "96×80" in fit.label and "64×64" in fit.label, fit.label
    assert not at.metric
    assert any("Choose how to match the sizes" in i.value for i in at.info)
    shown = {}
    for how in ("resize", "crop"):
        at.radio(key="compare.fit").set_value(how).run()
        shown[how] = assert_cards(at)
        assert any(f"{how}d to 64×64 px" in c.value for c in at.caption), [c.value for c in at.caption]
    assert shown["resize"] != shown["crop"]


# ---------------------------------------------------------------------------------------------
# 2. Session isolation.
# ---------------------------------------------------------------------------------------------

def test_sessions_do_not_see_each_others_uploads() -> None:
    first = start()
    default_cards, default_url = assert_cards(first), reference_url(first)
    first.segmented_control(key="source.kind").set_value("Upload").run()
    upload(first, GOOD, "mine.png")
    mine_cards, mine_url = assert_cards(first), reference_url(first)
    assert mine_url != default_url and mine_cards != default_cards

    second = start()
    assert second.segmented_control(key="source.kind").value == "Sample"
    assert reference_url(second) == default_url  # the media URL is a hash of the image bytes
    assert assert_cards(second) == default_cards
    assert all(not m.delta for m in second.metric), "a delta carried over from another session"
    assert "source.upload" not in second.session_state or second.session_state["source.upload"] is None

    first.run()  # and the first session still has its own upload
    assert reference_url(first) == mine_url and assert_cards(first) == mine_cards


# ---------------------------------------------------------------------------------------------
# 3. One shared model, many threads.
# ---------------------------------------------------------------------------------------------

N_THREADS = 8


def test_shared_network_is_built_once_and_thread_safe() -> None:
    clear_network_cache()
    barrier = threading.Barrier(N_THREADS)
    networks: list[object] = [None] * N_THREADS
    errors: list[BaseException] = []

    def fetch(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            networks[i] = get_network("alex")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert all(n is networks[0] for n in networks), "two threads built two copies of the model"

    refs = [from_numpy(smooth(64, 48, seed=i)) for i in range(N_THREADS)]
    dists = [from_numpy(smooth(64, 48, seed=100 + i)) for i in range(N_THREADS)]
    sequential = [Engine("alex").compare(r, d) for r, d in zip(refs, dists)]
    shared_ref = Engine("alex").reference(refs[0])  # one cached reference read by every thread
    shared_seq = [Engine("alex").compare(shared_ref, d) for d in dists]
    results: dict[tuple[int, int], tuple] = {}

    def work(i: int) -> None:
        try:
            engine = Engine("alex")
            assert engine.network is networks[0]
            barrier.wait(timeout=60)
            for rep in range(3):
                results[i, rep] = (engine.compare(refs[i], dists[i]), engine.compare(shared_ref, dists[i]))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert len(results) == 3 * N_THREADS

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        return torch.equal(a, b) or float((a - b).abs().max()) <= 1e-6

    for (i, _), (own, shared) in results.items():
        for got, want in ((own, sequential[i]), (shared, shared_seq[i])):
            assert same(got.value, want.value), (i, got.value, want.value)
            assert same(got.layer_values, want.layer_values), i
            assert same(got.map, want.map), i
    # Different images really gave different numbers (the threads did not share one result).
    assert len({round(float(r.value[0]), 6) for r in sequential}) == N_THREADS


# ---------------------------------------------------------------------------------------------
# 4. Weights break while the app runs, and are repaired without a restart.
# ---------------------------------------------------------------------------------------------

def _clear_app_caches() -> None:
    from views import common

    clear_network_cache()
    common.engine_for.clear()
    common.weights_status.clear()
    common.prepared_reference.clear()


@pytest.fixture
def copied_cache(tmp_path, monkeypatch):
    real = weights.cache_dir()
    names = ("alex.safetensors", "vgg.safetensors", weights.MANIFEST_NAME)
    if not all((real / n).is_file() for n in names):
        pytest.skip(f"alex and vgg weights are not provisioned in {real}")
    cache = tmp_path / "cache"
    cache.mkdir()
    for n in names:
        shutil.copyfile(real / n, cache / n)
    monkeypatch.setenv(weights.CACHE_ENV, str(cache))
    _clear_app_caches()
    try:
        yield cache
    finally:
        # Nothing loads between here and monkeypatch restoring the variable: with every cache
        # empty, the next test loads from the real cache again.
        _clear_app_caches()


def test_corrupt_weights_while_running_then_repaired(copied_cache: Path) -> None:
    assert weights.cache_dir() == copied_cache
    at = start()
    alex_cards = assert_cards(at)
    assert any(k == "LPIPS (alex v0.1)" for k in alex_cards)

    vgg_file = copied_cache / "vgg.safetensors"
    good = vgg_file.read_bytes()
    broken = bytearray(good)
    for pos in (len(broken) // 3, len(broken) // 2, len(broken) - 100):
        broken[pos] ^= 0xFF
    vgg_file.write_bytes(bytes(broken))

    at.radio(key="settings.net").set_value("vgg").run()
    assert not at.exception, [e.value for e in at.exception]
    assert_no_traceback(at)
    messages = [e.value for e in at.error] + [w.value for w in at.warning]
    assert any(weights.FIX_COMMAND in m and "corrupt" in m for m in messages), messages
    assert not at.metric
    at.run()  # the next run knows from the status check, before trying to load
    assert not at.exception and not at.metric
    assert at.radio(key="settings.net").value == "vgg", "the choice was reset when its label changed"
    assert any(weights.FIX_COMMAND in e.value for e in at.error), [e.value for e in at.error]
    net_radio = at.radio(key="settings.net")
    assert any("unavailable" in o for o in net_radio.options), net_radio.options
    assert any("weights missing" in c for c in net_radio.proto.captions), net_radio.proto.captions

    # The session stays usable with the other network meanwhile.
    at.radio(key="settings.net").set_value("alex").run()
    assert assert_cards(at) == alex_cards

    # Repair; the 30 s status TTL passing is simulated by clearing it.
    vgg_file.write_bytes(good)
    from views import common

    common.weights_status.clear()
    at.radio(key="settings.net").set_value("vgg").run()
    vgg_cards = assert_cards(at)
    assert not at.warning, [w.value for w in at.warning]
    assert "LPIPS (vgg v0.1)" in vgg_cards
    psnr = lambda cards: next(v for k, v in cards.items() if k == "PSNR")  # noqa: E731
    assert psnr(vgg_cards) == psnr(alex_cards)  # same pixels, another network
    assert vgg_cards["LPIPS (vgg v0.1)"] != alex_cards["LPIPS (alex v0.1)"]


# ---------------------------------------------------------------------------------------------
# 5. Upload names are never paths, never HTML.
# ---------------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../../escape-{m}.png",
    "/tmp/abs-{m}/evil.png",
    "..\\..\\win-{m}.png",
    "<img src=x onerror=alert(1)>{m}.png",
    "[click](javascript:alert(1)){m}.png",
]


@pytest.fixture
def open_spy(monkeypatch):
    """Records every path passed to open()/os.open() while the app runs."""
    seen: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, *args, **kwargs):
        seen.append(os.fsdecode(file) if isinstance(file, (str, bytes, os.PathLike)) else repr(file))
        return real_open(file, *args, **kwargs)

    def spy_os_open(path, *args, **kwargs):
        seen.append(os.fsdecode(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return seen


# views.a11y's visually hidden wrappers: fixed markup around escaped text (no raw '<' or '>' inside).
APP_SR_ONLY_HTML = re.compile(r'<div class="lpx-sr-only"( role="status" aria-live="polite" aria-atomic="true")?>'
                              r"[^<>]*</div>")


def test_the_sr_only_pattern_refuses_unescaped_text() -> None:
    hostile = '<img src=x onerror="alert(1)">'
    assert not APP_SR_ONLY_HTML.fullmatch(f'<div class="lpx-sr-only">{hostile}</div>')
    assert APP_SR_ONLY_HTML.fullmatch(f'<div class="lpx-sr-only">{html.escape(hostile)}</div>')


def test_upload_names_are_not_paths_or_html(tmp_path, monkeypatch, open_spy) -> None:
    marker = f"m{os.getpid()}x{id(tmp_path) % 100000}"
    names = [n.format(m=marker) for n in HOSTILE_NAMES]
    at = start_upload()
    deep = tmp_path / "a" / "b" / "c"  # a relative "../../x" written from here lands in tmp_path
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    for name in names:
        upload(at, GOOD, name)
        assert_cards(at)
    at.segmented_control(key="compare.mode").set_value("A second image").run()
    for name in names:
        upload(at, GOOD, name, key="compare.upload")
        assert_cards(at)

    assert not [p for p in open_spy if marker in p], "an upload's name was used as a path"
    assert not list(tmp_path.rglob(f"*{marker}*")) and not Path(f"/tmp/abs-{marker}").exists()
    text = "\n".join(all_text(at))
    assert "LPIPS Explorer" in text and any(c.value in text for c in at.caption)  # the walker sees text
    assert marker not in text, "an upload's name was echoed into the page"
    assert "<img" not in text
    for md in list(at.markdown) + list(at.caption):
        # The only HTML the page may hold is views.a11y's screen-reader wrapper, whose text is escaped.
        assert not md.proto.allow_html or APP_SR_ONLY_HTML.fullmatch(md.value), md.value

    # Positive control: the spy does see a path the way the app would write one.
    probe = deep / f"probe-{marker}.png"
    probe.write_bytes(GOOD)
    assert any(marker in p for p in open_spy)


@pytest.fixture
def project_config(monkeypatch):
    """Streamlit's options as deployed, from the project's views/.streamlit/config.toml (which another
    test's working directory may have kept Streamlit from reading)."""
    from streamlit import config

    if config.get_option("client.showErrorDetails") != "none":
        monkeypatch.chdir(APP.parent)
        config.get_config_options(force_reparse=True)
    assert config.get_option("client.showErrorDetails") == "none"


@pytest.mark.parametrize("name", ["evil\x00.png", "drawing.svg"], ids=["nul_byte", "svg_extension"])
def test_names_streamlit_refuses_leave_the_session_usable(name: str, project_config, open_spy) -> None:
    """Streamlit itself refuses a NUL in a file name, and an extension outside ``type=`` (browsers
    filter both before uploading; only a forged request gets here). The run fails with Streamlit's
    generic, redacted error — no traceback, no file name — and the next run is normal."""
    at = start_upload()
    upload(at, SVG if name.endswith(".svg") else GOOD, name, "image/svg+xml" if name.endswith(".svg") else "image/png")
    for e in at.exception:  # raised by Streamlit before the script runs; details are redacted
        assert "redacted" in e.value and name not in e.value and not e.proto.stack_trace, e.value
    assert not any(name in p for p in open_spy)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    upload(at, GOOD, "good.png")
    assert_cards(at)
