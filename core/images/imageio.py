"""Reading, writing and resizing images: files and uploads in, N×3×H×W float tensors out.

Everything Pillow can decode loads into a 1×3×H×W float32 tensor in [0, 1]:

* **EXIF orientation** is applied (phone photos come out upright).
* **Modes** are converted to RGB: grayscale (``L``, ``1``) is repeated into R, G and B;
  palette (``P``), ``CMYK`` and other modes go through Pillow's conversion (CMYK, and RGB with a
  non-sRGB profile, through its embedded ICC profile when there is one); 16-bit
  (``I;16``/``I;16B``/``I``) is scaled by 1/65535 at full precision (so 257·k maps exactly
  to k/255, never clipped at 255); 32-bit float (``F``) is taken as is when already in [0, 1].
* **Transparency** (RGBA, LA, PA, palette or colour-key transparency) is composited on
  :data:`ALPHA_BACKGROUND`, white — what a transparent image looks like on a page.
* **Animations and multi-page files**: only the first frame is loaded.
* **Size**: the header's width × height is checked against ``max_pixels`` *before* anything is
  decoded (``Image.open`` is lazy), so a decompression bomb (a tiny file that claims billions
  of pixels) costs nothing. Pillow's own ``DecompressionBombWarning``/``Error`` are turned into
  :class:`ImageTooLargeError` as well.

Whatever happened along the way is listed in :attr:`LoadedImage.notes` for the app to show.
Every failure raises :class:`~core.errors.ImageLoadError` (or its subclass
:class:`~core.errors.ImageTooLargeError`) with a sentence saying what went wrong and what to do.
Files are always closed before returning or raising.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from ..errors import ImageLoadError, ImageSizeMismatchError, ImageTooLargeError, InputShapeError, InvalidArgumentError
from .tensors import as_batch, check_unit_batch, from_numpy, to_uint8

__all__ = [
    "ALPHA_BACKGROUND",
    "DEFAULT_MAX_PIXELS",
    "ImageSource",
    "LoadedImage",
    "downscale_to_fit",
    "load_image",
    "load_image_info",
    "match_size",
    "save_image",
    "to_png_bytes",
]

#: Largest image (width × height) :func:`load_image` decodes by default: 50 megapixels, e.g.
#: 8660×5773 or a 10000×5000 panorama. That covers any camera photo, while a decoded RGB float
#: tensor of this size already takes 600 MB. Pass ``max_pixels=`` to change it per call.
DEFAULT_MAX_PIXELS = 50_000_000

#: Colour (8-bit RGB) that transparent pixels are composited on: white, like a page background.
ALPHA_BACKGROUND: tuple[int, int, int] = (255, 255, 255)

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

# Errors Pillow raises (directly or from its decoders) on damaged or unexpected data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError, KeyError, zlib.error)

# Magic numbers of formats Pillow reads; a file that starts like one but fails is damaged.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)

_MODE_NAMES = {
    "1": "1-bit black and white",
    "L": "grayscale",
    "LA": "grayscale with alpha",
    "La": "grayscale with premultiplied alpha",
    "P": "palette colour",
    "PA": "palette colour with alpha",
    "RGBA": "RGB with alpha",
    "RGBa": "RGB with premultiplied alpha",
    "RGBX": "RGB with padding",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "LAB": "CIELAB",
    "HSV": "HSV",
}

_ORIENTATION_NOTES = {
    2: "mirrored left-right",
    3: "rotated 180°",
    4: "mirrored top-bottom",
    5: "transposed (mirrored and rotated 90° clockwise)",
    6: "rotated 90° clockwise",
    7: "transversed (mirrored and rotated 90° counter-clockwise)",
    8: "rotated 90° counter-clockwise",
}


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image plus what the loader did to it.

    ``tensor`` is 1×3×H×W float32 in [0, 1]; ``width``/``height`` are its size (after EXIF
    rotation); ``original_mode`` is Pillow's mode of the file ("RGB", "P", "I;16", ...);
    ``format`` is Pillow's format name ("PNG", "JPEG", ...; None if unknown); ``notes`` are
    short, user-facing sentences such as "converted from CMYK" or "rotated 90° clockwise per
    EXIF orientation 6".
    """

    tensor: torch.Tensor
    width: int
    height: int
    original_mode: str
    format: str | None
    notes: tuple[str, ...] = ()


def load_image(source: ImageSource, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Decode an image file, byte string or binary file object to a 1×3×H×W float tensor in [0, 1].

    A shortcut for ``load_image_info(source, max_pixels=max_pixels).tensor``; see
    :func:`load_image_info` for what is converted and what raises.

    >>> buf = io.BytesIO()
    >>> Image.new("L", (4, 2), 51).save(buf, "PNG")
    >>> image = load_image(buf.getvalue())
    >>> image.shape, round(image.max().item(), 3)
    (torch.Size([1, 3, 2, 4]), 0.2)
    """
    return load_image_info(source, max_pixels=max_pixels).tensor


def load_image_info(source: ImageSource, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode an image and report how it was converted (see the module docstring).

    ``source`` is a path (``str`` or ``os.PathLike``), the file's bytes, or a binary file object
    (read from its current position, e.g. an upload). ``max_pixels`` caps width × height,
    checked from the header before decoding; ``None`` leaves only Pillow's own limit
    (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 megapixels, which also caps larger values here).

    Raises :class:`ImageTooLargeError` for images over the limit and :class:`ImageLoadError`
    for missing, empty, truncated, corrupt or non-image input (SVG, PDF, HTML, text ...).

    >>> buf = io.BytesIO()
    >>> Image.new("RGBA", (3, 2), (255, 0, 0, 0)).save(buf, "PNG")
    >>> info = load_image_info(buf.getvalue())
    >>> info.width, info.height, info.original_mode, info.format
    (3, 2, 'RGBA', 'PNG')
    >>> info.notes
    ('transparent areas composited on white',)
    >>> info.tensor[0, :, 0, 0].tolist()
    [1.0, 1.0, 1.0]
    """
    if max_pixels is not None and (not isinstance(max_pixels, int) or max_pixels < 1):
        raise InvalidArgumentError(f"max_pixels must be a positive integer or None, got {max_pixels!r}.")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = f"'{path.name or path}'"
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            raise ImageLoadError(f"Could not load {label}: there is no such file ({path}). Check the path.") from None
        except IsADirectoryError:
            raise ImageLoadError(f"Could not load {label}: it is a folder, not an image file ({path}).") from None
        except PermissionError:
            raise ImageLoadError(f"Could not load {label}: permission denied ({path}). Check the file's permissions.") from None
        except OSError as exc:
            raise ImageLoadError(f"Could not load {label}: the file cannot be opened ({exc}).") from None
        with fh:
            if os.fstat(fh.fileno()).st_size == 0:
                raise ImageLoadError(f"Could not load {label}: the file is empty (0 bytes). Pick the image file again.")
            return _decode(fh, label, path.suffix.lower(), max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = "the image data"
        suffix = ""
    elif hasattr(source, "read"):
        name = getattr(source, "name", None)
        label = f"'{os.path.basename(name)}'" if isinstance(name, str) and name else "the uploaded file"
        suffix = os.path.splitext(name)[1].lower() if isinstance(name, str) else ""
        try:
            data = source.read()
        except (OSError, ValueError) as exc:
            raise ImageLoadError(f"Could not load {label}: reading it failed ({exc}).") from None
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ImageLoadError(
                f"Could not load {label}: the file object returned {type(data).__name__}, not bytes. "
                "Open files in binary mode ('rb')."
            )
        data = bytes(data)
    else:
        raise TypeError(
            f"load_image() takes a path, bytes or a binary file object, got {type(source).__name__}."
        )
    if not data:
        raise ImageLoadError(f"Could not load {label}: the file is empty (0 bytes). Pick the image file again.")
    with io.BytesIO(data) as buf:
        return _decode(buf, label, suffix, max_pixels)


def _decode(fh: BinaryIO, label: str, suffix: str, max_pixels: int | None) -> LoadedImage:
    """Open, size-check, decode and convert; ``fh`` stays owned (and closed) by the caller."""
    with warnings.catch_warnings():
        # Pillow warns above Image.MAX_IMAGE_PIXELS and raises above twice that; both mean "too big".
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(fh)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb_error(label, exc, max_pixels) from None
        except UnidentifiedImageError:
            fh.seek(0)
            raise ImageLoadError(f"Could not load {label}: {_diagnose(fh.read(2048), suffix)}") from None
        except _DECODE_ERRORS as exc:
            raise ImageLoadError(f"Could not load {label}: the file is truncated or corrupt (Pillow: {exc}). "
                                 "Download or export it again.") from None
        with img:
            _check_pixels(img.size, label, max_pixels)
            fmt = img.format
            notes: list[str] = []
            try:
                n_frames = getattr(img, "n_frames", 1) if getattr(img, "is_animated", False) else 1
                img.seek(0)
                img.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise _bomb_error(label, exc, max_pixels) from None
            except MemoryError:
                raise ImageLoadError(
                    f"Could not load {label}: not enough memory to decode a {img.width}×{img.height} image. "
                    "Downscale it first."
                ) from None
            except _DECODE_ERRORS as exc:
                raise ImageLoadError(f"Could not load {label}: the file is truncated or corrupt (Pillow: {exc}). "
                                     "Download or export it again.") from None
            _check_pixels(img.size, label, max_pixels)  # a few formats (ICO, ICNS) pick their size on load
            if n_frames > 1:
                notes.append(_frames_note(fmt, n_frames))
            original_mode = img.mode
            oriented = _apply_exif_orientation(img, notes)
            _refuse_non_finite(oriented, label)
            try:
                array = _to_rgb_array(oriented, notes)
            except _DECODE_ERRORS as exc:
                raise ImageLoadError(
                    f"Could not load {label}: its {original_mode} pixels could not be converted to RGB ({exc})."
                ) from None
    height, width = array.shape[:2]
    if width == 0 or height == 0:
        raise ImageLoadError(f"Could not load {label}: the image has no pixels ({width}×{height}).")
    return LoadedImage(from_numpy(array), width, height, original_mode, fmt, tuple(notes))


def _refuse_non_finite(img: Image.Image, label: str) -> None:
    """Float images with NaN/inf pixels are refused: any number put in their place would be made up."""
    if img.mode != "F":
        return
    values = np.asarray(img)
    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise ImageLoadError(
            f"Could not load {label}: {bad} of {values.size} pixels are NaN or infinite, so no metric could be "
            "trusted. Fill or mask those pixels in your image software, then save it again."
        )


def _check_pixels(size: tuple[int, int], label: str, max_pixels: int | None) -> None:
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"Could not load {label}: it is {width}×{height} pixels ({width * height / 1e6:.1f} megapixels), "
            f"over the limit of {max_pixels / 1e6:g} megapixels that guards against decompression bombs. "
            "Downscale it in an image editor first, or pass a larger max_pixels if you trust the file."
        )


def _bomb_error(label: str, exc: Exception, max_pixels: int | None) -> ImageTooLargeError:
    limit = f" (the limit here is {max_pixels / 1e6:g} megapixels)" if max_pixels is not None else ""
    return ImageTooLargeError(
        f"Could not load {label}: Pillow refused to decode it as a possible decompression bomb{limit}: {exc} "
        "Downscale it in an image editor first; if you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS "
        "and max_pixels."
    )


def _diagnose(head: bytes, suffix: str) -> str:
    """Explain why Pillow did not recognise the data, from its first bytes and the file name."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if suffix in (".svg", ".svgz") or stripped.startswith(b"<svg") or (
        stripped.startswith((b"<?xml", b"<!doctype svg")) and b"<svg" in stripped
    ):
        return "SVG is a vector format; export it to PNG first (e.g. from Inkscape or a browser)."
    if head.startswith(b"%PDF"):
        return "PDF is a document format, not an image; export the page as PNG first."
    if stripped.startswith((b"<!doctype html", b"<html")):
        return (
            "it is an HTML web page, not an image (a download may have saved the page instead of "
            "the picture). Save the image itself and try again."
        )
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace")
        if brand in ("heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"):
            return "HEIC/HEIF photos are not supported by this Pillow build; convert it to JPEG or PNG first."
        return f"it is an ISO media file (brand '{brand}'), possibly a video; export a frame as PNG first."
    for magic, fmt in _MAGIC:
        # A full magic number, or a file cut off inside it (at least 3 bytes, to avoid chance matches).
        if head.startswith(magic) or (3 <= len(head) < len(magic) and magic.startswith(head)):
            return (
                f"the file is truncated or corrupt (it starts like a {fmt}, but Pillow cannot read its "
                "header). Download or export it again."
            )
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return (
            "the file is truncated or corrupt (it starts like a WEBP, but Pillow cannot read its header). "
            "Download or export it again."
        )
    if _looks_like_text(head):
        preview = head[:40].decode("utf-8", "replace").strip().replace("\n", " ")
        return f"it is not an image but text (it starts with {preview!r}). Check that you picked the right file."
    return (
        f"it is not in an image format Pillow can read (first bytes: {head[:8].hex(' ')}). "
        "Convert it to PNG or JPEG first."
    )


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\t\r\n" for ch in text)
    return printable >= 0.95 * len(text)


def _frames_note(fmt: str | None, n_frames: int) -> str:
    if fmt == "MPO":
        return f"first of {n_frames} pictures in a multi-picture JPEG (the others are usually previews)"
    if fmt == "TIFF":
        return f"first page of a {n_frames}-page TIFF"
    return f"first frame of an animated {fmt or 'image'} ({n_frames} frames)"


def _apply_exif_orientation(img: Image.Image, notes: list[str]) -> Image.Image:
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    except _DECODE_ERRORS:  # malformed EXIF must not block an otherwise fine image
        return img
    if orientation not in _ORIENTATION_NOTES:
        return img
    try:
        rotated = ImageOps.exif_transpose(img)
    except _DECODE_ERRORS:
        notes.append(f"EXIF orientation {orientation} could not be applied; shown as stored")
        return img
    notes.append(f"{_ORIENTATION_NOTES[orientation]} per EXIF orientation {orientation}")
    return rotated if rotated is not None else img


def _to_rgb_array(img: Image.Image, notes: list[str]) -> np.ndarray:
    """Convert a loaded Pillow image to H×W×3 (uint8, or float32 in [0, 1]), noting what was done."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        return np.repeat(_high_bit_depth_gray(img, notes)[:, :, None], 3, axis=2)
    if img.mode == "1":
        img = img.convert("L")
        notes.append("converted from 1-bit black and white")
    elif img.mode not in ("RGB", "RGBA", "CMYK"):
        notes.append(f"converted from {_MODE_NAMES.get(img.mode, img.mode)}")
    img = _apply_icc_profile(img, notes)
    if img.mode == "CMYK":
        img = img.convert("RGB")
        notes.append("converted from CMYK without a colour profile (colours may be off)")
    has_alpha = img.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
        "transparency" in img.info and img.mode in ("P", "L", "RGB")
    )
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[:, :, 3:4]
        if alpha.size and float(alpha.min()) < 1.0:
            background = np.asarray(ALPHA_BACKGROUND, dtype=np.float32) / 255.0
            notes.append("transparent areas composited on white")
            return (rgba[:, :, :3] * alpha + background * (1.0 - alpha)).clip(0.0, 1.0)
        return np.ascontiguousarray(rgba[:, :, :3])
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.array(img)  # a writable copy: torch warns on read-only arrays


def _high_bit_depth_gray(img: Image.Image, notes: list[str]) -> np.ndarray:
    """Scale a 16-bit, 32-bit integer or float single-channel image to float32 in [0, 1]."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16"):
        notes.append("16-bit grayscale scaled to [0, 1] at full precision")
        return arr.astype(np.float32) / 65535.0
    values = arr.astype(np.float64)  # finite: _refuse_non_finite ran before the conversion
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if img.mode == "I" and lo >= 0 and hi <= 65535:
        notes.append("32-bit integer grayscale read as 16-bit and scaled to [0, 1]")
        scaled = values / 65535.0
    elif img.mode == "F" and lo >= 0 and hi <= 1:
        notes.append("32-bit float grayscale used as is")
        scaled = values
    elif img.mode == "F" and lo >= 0 and hi <= 255:
        notes.append("32-bit float grayscale in [0, 255] scaled to [0, 1]")
        scaled = values / 255.0
    else:
        notes.append(f"{img.mode}-mode values in [{lo:g}, {hi:g}] stretched to [0, 1]")
        scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    return scaled.astype(np.float32)


def _apply_icc_profile(img: Image.Image, notes: list[str]) -> Image.Image:
    """Convert RGB(A)/CMYK pixels with a non-sRGB embedded ICC profile to sRGB."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK"):
        return img
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(profile).strip() or "unnamed"
        if img.mode != "CMYK" and "srgb" in description.lower():
            return img
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(img, profile, srgb, outputMode=out_mode)
    except (ImageCms.PyCMSError, *_DECODE_ERRORS) as exc:
        notes.append(f"embedded colour profile ignored (it could not be applied: {exc})")
        return img
    if converted is None:  # only with inPlace=True, which is not used here
        return img
    source = "CMYK" if img.mode == "CMYK" else "RGB"
    notes.append(f"converted from {source} with its embedded colour profile ({description}) to sRGB")
    return converted


def downscale_to_fit(image: torch.Tensor, max_side: int, min_side: int = 1) -> tuple[torch.Tensor, bool]:
    """Shrink ``image`` so its longer side is at most ``max_side``, keeping the aspect ratio.

    ``min_side`` protects the shorter side: a long, thin banner is shrunk only until its short
    side reaches ``min_side`` (its long side then stays above ``max_side``), so the result is
    never too small for a network that the original fits.

    Uses antialiased (triangle-filter) resampling, so it averages pixels like an area resize
    and never overshoots [0, 1]. Returns ``(image, False)`` unchanged when it already fits and
    ``(smaller, True)`` otherwise. Works on batches (N×3×H×W) and single images (3×H×W).

    >>> small, changed = downscale_to_fit(torch.rand(1, 3, 100, 200), 50)
    >>> tuple(small.shape), changed
    ((1, 3, 25, 50), True)
    >>> downscale_to_fit(torch.rand(1, 3, 10, 20), 50)[1]
    False
    >>> tuple(downscale_to_fit(torch.rand(1, 3, 100, 1200), 256, min_side=31)[0].shape)
    (1, 3, 31, 372)
    """
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1:
        raise InvalidArgumentError(f"max_side must be a positive integer (pixels), got {max_side!r}.")
    batch = as_batch(image)
    height, width = batch.shape[-2:]
    short, long = sorted((height, width))
    # The long side's target, raised if needed so the short side keeps min_side pixels.
    target = max_side if short * max_side >= min_side * long else min(long, math.ceil(min_side * long / short))
    if long <= target:
        return image, False
    scale = target / long
    if width >= height:
        size = (max(1, round(height * scale)), target)
    else:
        size = (target, max(1, round(width * scale)))
    out = F.interpolate(batch, size=size, mode="bilinear", antialias=True, align_corners=False)
    out = out.clamp_(0.0, 1.0)
    return (out[0] if image.ndim == 3 else out), True


def match_size(ref: torch.Tensor, dist: torch.Tensor, how: Literal["resize", "crop"] = "resize") -> torch.Tensor:
    """Return ``dist`` made the same height × width as ``ref``.

    ``how="resize"`` rescales ``dist`` (bicubic with antialiasing, clamped to [0, 1]; the aspect
    ratio follows ``ref``). ``how="crop"`` cuts the centre of ``dist``; it needs ``dist`` at
    least as large as ``ref`` in both dimensions. ``dist`` is returned unchanged when the sizes
    already agree.

    >>> ref, dist = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 64, 64)
    >>> tuple(match_size(ref, dist, "resize").shape), tuple(match_size(ref, dist, "crop").shape)
    ((1, 3, 32, 48), (1, 3, 32, 48))
    """
    if how not in ("resize", "crop"):
        raise InvalidArgumentError(f"how must be 'resize' or 'crop', got {how!r}.")
    ref_b = as_batch(ref, "ref")
    dist_b = check_unit_batch(dist, "dist")
    height, width = ref_b.shape[-2:]
    dist_h, dist_w = dist_b.shape[-2:]
    if (dist_h, dist_w) == (height, width):
        return dist
    if how == "crop":
        if dist_h < height or dist_w < width:
            raise ImageSizeMismatchError(
                f"Cannot crop `dist` ({dist_w}×{dist_h}) to the size of `ref` ({width}×{height}): it is "
                "smaller in at least one dimension. Use how='resize' instead, or crop `ref`."
            )
        top, left = (dist_h - height) // 2, (dist_w - width) // 2
        out = dist_b[..., top : top + height, left : left + width].contiguous()
    else:
        out = F.interpolate(dist_b, size=(height, width), mode="bicubic", antialias=True, align_corners=False)
        out = out.clamp_(0.0, 1.0)
    return out[0] if dist.ndim == 3 else out


def to_png_bytes(image: torch.Tensor) -> bytes:
    """Encode one [0, 1] image (1×3×H×W or 3×H×W) as 8-bit RGB PNG bytes.

    Values are rounded to the nearest of 256 levels, so 8-bit data round-trips exactly
    through :func:`load_image`.

    >>> image = torch.zeros(1, 3, 2, 2)
    >>> bool(torch.equal(load_image(to_png_bytes(image)), image))
    True
    """
    buf = io.BytesIO()
    _to_pil(image).save(buf, "PNG")
    return buf.getvalue()


def save_image(image: torch.Tensor, path: str | os.PathLike, *, quality: int = 95) -> Path:
    """Write one [0, 1] image to ``path``; the format follows the extension (.png, .jpg, .webp, ...).

    ``quality`` applies to lossy formats (JPEG, WebP). Returns the path written.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     written = save_image(torch.ones(3, 4, 4), Path(folder) / "white.png")
    ...     load_image(written).shape
    torch.Size([1, 3, 4, 4])
    """
    target = Path(path)
    extensions = Image.registered_extensions()
    fmt = extensions.get(target.suffix.lower())
    if fmt is None:
        raise InvalidArgumentError(
            f"Cannot tell the image format from '{target.name}': use an extension such as "
            ".png (lossless), .jpg or .webp."
        )
    options: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    pil = _to_pil(image)
    try:
        pil.save(target, fmt, **options)
    except KeyError:
        raise InvalidArgumentError(f"Pillow cannot write {fmt} files; save '{target.name}' as .png instead.") from None
    return target


def _to_pil(image: torch.Tensor) -> Image.Image:
    batch = check_unit_batch(image)
    if batch.shape[0] != 1:
        raise InputShapeError(
            f"Expected one image, got a batch of {batch.shape[0]} (shape {tuple(batch.shape)}); "
            "pick one, e.g. image[i]."
        )
    return Image.fromarray(to_uint8(batch), mode="RGB")
