"""Tests for core.images.imageio: every input is generated here (no binary fixtures)."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image, ImageCms

from conftest import png_claiming_size
from core.errors import ImageLoadError, ImageSizeMismatchError, ImageTooLargeError, InputRangeError, InputShapeError
from core.images.imageio import (
    ALPHA_BACKGROUND,
    DEFAULT_MAX_PIXELS,
    downscale_to_fit,
    load_image,
    load_image_info,
    match_size,
    save_image,
    to_png_bytes,
)
from core.images.tensors import from_numpy, to_uint8


def encode(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def rgb_at(image: torch.Tensor, y: int, x: int) -> list[float]:
    return image[0, :, y, x].tolist()


def noise_image(width: int = 64, height: int = 64, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


# --- sources ----------------------------------------------------------------------------------


def test_rgb_png_is_exact_from_path_bytes_and_stream(tmp_path: Path) -> None:
    array = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    data = encode(Image.fromarray(array))
    path = tmp_path / "x.png"
    path.write_bytes(data)
    for source in (path, str(path), data, bytearray(data), memoryview(data), io.BytesIO(data)):
        info = load_image_info(source)
        assert info.tensor.shape == (1, 3, 7, 5)
        assert info.tensor.dtype == torch.float32
        assert (info.width, info.height, info.original_mode, info.format) == (5, 7, "RGB", "PNG")
        assert info.notes == ()
        np.testing.assert_array_equal(to_uint8(info.tensor), array)
    assert torch.equal(load_image(data), load_image_info(data).tensor)


def test_unsupported_source_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="path, bytes or a binary file object"):
        load_image(123)  # type: ignore[arg-type]


def test_text_mode_stream_is_reported() -> None:
    with pytest.raises(ImageLoadError, match="binary mode"):
        load_image(io.StringIO("not bytes"))


@pytest.mark.parametrize("bad", [0, -5, 1.5])
def test_max_pixels_must_be_positive_int(bad: object) -> None:
    with pytest.raises(ValueError, match="max_pixels"):
        load_image(encode(Image.new("RGB", (2, 2))), max_pixels=bad)  # type: ignore[arg-type]


# --- modes ------------------------------------------------------------------------------------


def test_grayscale_l_is_repeated_into_rgb() -> None:
    info = load_image_info(encode(Image.new("L", (3, 2), 51)))
    assert info.original_mode == "L"
    assert rgb_at(info.tensor, 1, 2) == pytest.approx([0.2, 0.2, 0.2])
    assert any("grayscale" in n for n in info.notes)


def test_one_bit_image() -> None:
    img = Image.new("1", (2, 1), 0)
    img.putpixel((1, 0), 1)
    info = load_image_info(encode(img))
    assert info.original_mode == "1"
    assert rgb_at(info.tensor, 0, 0) == [0.0, 0.0, 0.0]
    assert rgb_at(info.tensor, 0, 1) == [1.0, 1.0, 1.0]
    assert any("1-bit" in n for n in info.notes)


def test_la_is_composited_on_white() -> None:
    info = load_image_info(encode(Image.new("LA", (2, 2), (100, 128))))
    alpha = 128 / 255
    expected = 100 / 255 * alpha + 1.0 * (1 - alpha)
    assert rgb_at(info.tensor, 0, 0) == pytest.approx([expected] * 3, abs=1e-6)
    assert "transparent areas composited on white" in info.notes
    assert ALPHA_BACKGROUND == (255, 255, 255)


def palette_image() -> Image.Image:
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255])
    img.putdata([0, 1])
    return img


def test_palette_without_transparency_is_exact() -> None:
    info = load_image_info(encode(palette_image()))
    assert info.original_mode == "P"
    assert rgb_at(info.tensor, 0, 0) == [1.0, 0.0, 0.0]
    assert rgb_at(info.tensor, 0, 1) == [0.0, 0.0, 1.0]
    assert not any("transparent" in n for n in info.notes)


def test_palette_png_with_alpha_table_composited_on_white() -> None:
    data = encode(palette_image(), transparency=bytes([255, 128]))  # red opaque, blue half-transparent
    info = load_image_info(data)
    alpha = 128 / 255
    assert rgb_at(info.tensor, 0, 0) == [1.0, 0.0, 0.0]
    assert rgb_at(info.tensor, 0, 1) == pytest.approx([1 - alpha, 1 - alpha, 1.0], abs=1e-6)
    assert "transparent areas composited on white" in info.notes


def test_gif_transparent_index_becomes_white() -> None:
    info = load_image_info(encode(palette_image(), "GIF", transparency=0))
    assert info.format == "GIF"
    assert rgb_at(info.tensor, 0, 0) == [1.0, 1.0, 1.0]
    assert rgb_at(info.tensor, 0, 1) == [0.0, 0.0, 1.0]


def test_rgb_colour_key_transparency() -> None:
    img = Image.new("RGB", (2, 1), (10, 20, 30))
    img.putpixel((1, 0), (0, 255, 0))
    info = load_image_info(encode(img, transparency=(10, 20, 30)))
    assert rgb_at(info.tensor, 0, 0) == [1.0, 1.0, 1.0]
    assert rgb_at(info.tensor, 0, 1) == [0.0, 1.0, 0.0]


def test_rgba_half_transparent_and_opaque() -> None:
    img = Image.new("RGBA", (2, 1), (0, 0, 0, 255))
    img.putpixel((1, 0), (0, 0, 0, 51))
    info = load_image_info(encode(img))
    assert rgb_at(info.tensor, 0, 0) == [0.0, 0.0, 0.0]
    assert rgb_at(info.tensor, 0, 1) == pytest.approx([0.8] * 3, abs=1e-6)
    opaque = load_image_info(encode(Image.new("RGBA", (2, 2), (1, 2, 3, 255))))
    assert opaque.notes == ()
    np.testing.assert_array_equal(to_uint8(opaque.tensor)[0, 0], [1, 2, 3])


def test_cmyk_jpeg_roughly_matches_rgb() -> None:
    colour = (200, 100, 50)
    data = encode(Image.new("RGB", (16, 16), colour).convert("CMYK"), "JPEG", quality=95)
    info = load_image_info(data)
    assert (info.original_mode, info.format) == ("CMYK", "JPEG")
    assert rgb_at(info.tensor, 8, 8) == pytest.approx([c / 255 for c in colour], abs=6 / 255)
    assert any("CMYK" in n for n in info.notes)


def sixteen_bit_values() -> np.ndarray:
    return np.array([[0, 257, 257 * 128, 65535, 1000]], dtype=np.uint16)


def test_sixteen_bit_png_scales_by_257_without_clipping() -> None:
    values = sixteen_bit_values()
    info = load_image_info(encode(Image.fromarray(values)))
    assert info.original_mode.startswith("I;16")
    gray = info.tensor[0, 0, 0]
    # 257·k is exactly the 8-bit level k; nothing above 255 is clipped to white.
    assert torch.equal(gray[:4], torch.tensor([0.0, 1.0, 128.0, 255.0]) / 255)
    assert to_uint8(info.tensor)[0, :4, 0].tolist() == [0, 1, 128, 255]
    assert gray[4].item() == pytest.approx(1000 / 65535)  # 16-bit precision is kept
    assert torch.equal(info.tensor[0, 0], info.tensor[0, 2])
    assert any("16-bit" in n for n in info.notes)


def test_big_endian_sixteen_bit_tiff() -> None:
    values = sixteen_bit_values().astype(">u2")
    img = Image.frombytes("I;16B", (values.shape[1], 1), values.tobytes())
    info = load_image_info(encode(img, "TIFF"))
    assert info.original_mode == "I;16B"
    assert to_uint8(info.tensor)[0, :4, 1].tolist() == [0, 1, 128, 255]


def test_sixteen_bit_pgm_opens_as_mode_i() -> None:
    values = sixteen_bit_values()
    data = b"P5\n5 1\n65535\n" + values.astype(">u2").tobytes()
    info = load_image_info(data)
    assert info.original_mode == "I"
    assert to_uint8(info.tensor)[0, :4, 0].tolist() == [0, 1, 128, 255]


def test_float_image_in_unit_range_is_kept_and_others_stretched() -> None:
    values = np.array([[0.0, 0.25, 1.0]], dtype=np.float32)
    info = load_image_info(encode(Image.fromarray(values, mode="F"), "TIFF"))
    assert info.original_mode == "F"
    assert info.tensor[0, 1, 0].tolist() == [0.0, 0.25, 1.0]
    wide = np.array([[-2.0, 0.0, 2.0]], dtype=np.float32)
    stretched = load_image_info(encode(Image.fromarray(wide, mode="F"), "TIFF"))
    assert stretched.tensor[0, 0, 0].tolist() == [0.0, 0.5, 1.0]
    assert any("stretched" in n for n in stretched.notes)


def test_non_srgb_icc_profile_is_converted_and_bogus_one_ignored() -> None:
    skdata = pytest.importorskip("skimage.data")
    with Image.open(Path(skdata.__file__).parent / "rocket.jpg") as rocket:
        adobe_rgb = rocket.info["icc_profile"]
    orange = Image.new("RGB", (4, 4), (200, 120, 60))
    as_stored = pytest.approx([200 / 255, 120 / 255, 60 / 255])
    info = load_image_info(encode(orange, icc_profile=adobe_rgb))
    assert any("Adobe RGB" in n for n in info.notes)
    red, _, _ = to_uint8(info.tensor)[0, 0]
    assert red > 215  # Adobe RGB's wider gamut: the same numbers mean a more saturated orange
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    unchanged = load_image_info(encode(orange, icc_profile=srgb))
    assert unchanged.notes == () and rgb_at(unchanged.tensor, 0, 0) == as_stored
    bogus = load_image_info(encode(orange, icc_profile=b"not a profile"))
    assert rgb_at(bogus.tensor, 0, 0) == as_stored
    assert any("colour profile ignored" in n for n in bogus.notes)


# --- orientation and frames --------------------------------------------------------------------


def test_exif_orientation_6_rotates_clockwise() -> None:
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 10, 10))  # red block in the stored top-left corner
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    info = load_image_info(encode(img, "JPEG", quality=95, exif=exif.tobytes()))
    assert (info.width, info.height) == (20, 40)
    assert info.tensor.shape == (1, 3, 40, 20)
    pixels = to_uint8(info.tensor)
    assert pixels[4, 15, 0] > 200 and pixels[4, 15, 2] < 60  # now top-right
    assert pixels[4, 4, 2] > 200  # top-left is blue
    assert "rotated 90° clockwise per EXIF orientation 6" in info.notes


def test_exif_orientation_1_changes_nothing() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 1
    info = load_image_info(encode(Image.new("RGB", (4, 2)), "JPEG", exif=exif.tobytes()))
    assert (info.width, info.height, info.notes) == (4, 2, ())


def test_animated_gif_loads_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    info = load_image_info(buf.getvalue())
    assert rgb_at(info.tensor, 4, 4) == [1.0, 0.0, 0.0]
    assert "first frame of an animated GIF (3 frames)" in info.notes


def test_multipage_tiff_loads_first_page() -> None:
    pages = [Image.new("L", (4, 4), v) for v in (10, 200)]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    info = load_image_info(buf.getvalue())
    assert to_uint8(info.tensor)[0, 0].tolist() == [10, 10, 10]
    assert "first page of a 2-page TIFF" in info.notes


# --- broken and non-image input ---------------------------------------------------------------


def test_zero_byte_file_and_bytes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for source in (empty, b"", io.BytesIO()):
        with pytest.raises(ImageLoadError, match="the file is empty"):
            load_image(source)


def test_truncated_png() -> None:
    data = encode(noise_image())
    with pytest.raises(ImageLoadError, match=r"the file is truncated or corrupt \(.*Pillow: "):
        load_image(data[: len(data) // 2])
    for cut in (4, 8, 20, 40, 100):
        with pytest.raises(ImageLoadError, match="the file is truncated or corrupt"):
            load_image(data[:cut])
    with pytest.raises(ImageLoadError, match="truncated or corrupt .it starts like a PNG, but Pillow cannot read"):
        load_image(data[:12])


def test_truncated_jpeg() -> None:
    data = encode(noise_image(), "JPEG", quality=90)
    with pytest.raises(ImageLoadError, match=r"the file is truncated or corrupt \(Pillow: "):
        load_image(data[: len(data) // 2])
    for cut in (3, 10):
        with pytest.raises(ImageLoadError, match="the file is truncated or corrupt"):
            load_image(data[:cut])


def test_text_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello, this is not a picture\n")
    with pytest.raises(ImageLoadError, match=r"'notes.png': it is not an image but text \(it starts with 'hello"):
        load_image(path)


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect/></svg>\n'


def test_svg_is_rejected_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "drawing.svg"
    path.write_bytes(SVG)
    for source in (path, SVG, b"<svg></svg>"):
        with pytest.raises(ImageLoadError, match="SVG is a vector format; export it to PNG first"):
            load_image(source)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF is a document format"),
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML web page"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC/HEIF"),
        (bytes(range(256)) * 2, "not in an image format Pillow can read"),
    ],
)
def test_other_non_images(data: bytes, message: str) -> None:
    with pytest.raises(ImageLoadError, match=message):
        load_image(data)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_stream_name_appears_in_message() -> None:
    upload = io.BytesIO(b"")
    upload.name = "holiday.jpg"
    with pytest.raises(ImageLoadError, match="'holiday.jpg': the file is empty"):
        load_image(upload)


def test_no_file_is_left_open(tmp_path: Path) -> None:
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc to count open files")
    good = tmp_path / "good.png"
    good.write_bytes(encode(noise_image(8, 8)))
    bad = tmp_path / "bad.png"
    bad.write_bytes(encode(noise_image())[:300])
    big = tmp_path / "big.png"
    big.write_bytes(png_claiming_size(100_000, 100_000))
    before = len(os.listdir(fd_dir))
    for _ in range(5):
        load_image(good)
        for path in (bad, big, tmp_path / "missing.png"):
            with pytest.raises(ImageLoadError):
                load_image(path)
    assert len(os.listdir(fd_dir)) == before


# --- pixel limit / decompression bombs ---------------------------------------------------------


def test_decompression_bomb_is_refused_fast() -> None:
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="decompression bomb"):
        load_image(png_claiming_size(100_000, 100_000))
    assert time.perf_counter() - start < 1.0


def test_header_over_limit_names_size_and_limit() -> None:
    # 80 MP: under Pillow's own limits, so this is our header check, before any decoding.
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match=r"10000×8000 pixels \(80.0 megapixels\), over the limit of 50 megapixels"):
        load_image(png_claiming_size(10_000, 8_000))
    assert time.perf_counter() - start < 1.0
    assert DEFAULT_MAX_PIXELS == 50_000_000


def test_pillow_bomb_warning_becomes_error() -> None:
    # 144 MP: Pillow only warns (between MAX_IMAGE_PIXELS and twice that); we refuse.
    with pytest.raises(ImageTooLargeError, match="12000×12000|decompression bomb"):
        load_image(png_claiming_size(12_000, 12_000), max_pixels=None)


def test_custom_pixel_limit() -> None:
    data = encode(Image.new("RGB", (20, 20)))
    with pytest.raises(ImageTooLargeError, match="20×20"):
        load_image(data, max_pixels=399)
    assert load_image(data, max_pixels=400).shape == (1, 3, 20, 20)
    assert load_image(data, max_pixels=None).shape == (1, 3, 20, 20)


def test_too_large_is_an_image_load_error() -> None:
    assert issubclass(ImageTooLargeError, ImageLoadError)


# --- resizing ----------------------------------------------------------------------------------


def test_downscale_to_fit_keeps_aspect() -> None:
    landscape, changed = downscale_to_fit(torch.rand(2, 3, 300, 600), 200)
    assert changed and landscape.shape == (2, 3, 100, 200)
    portrait, _ = downscale_to_fit(torch.rand(3, 601, 301), 100)
    assert portrait.shape == (3, 100, 50)
    assert 0.0 <= float(landscape.min()) and float(landscape.max()) <= 1.0


def test_downscale_to_fit_leaves_small_images_alone() -> None:
    image = torch.rand(1, 3, 64, 32)
    out, changed = downscale_to_fit(image, 64)
    assert out is image and not changed


def test_downscale_averages_like_an_area_filter() -> None:
    checker = torch.zeros(1, 3, 64, 64)
    checker[..., ::2, ::2] = 1.0
    checker[..., 1::2, 1::2] = 1.0
    small, _ = downscale_to_fit(checker, 16)
    assert small.mean().item() == pytest.approx(0.5, abs=1e-3)
    assert (small - 0.5).abs().max().item() < 0.05  # no aliasing


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_downscale_to_fit_rejects_bad_size(bad: object) -> None:
    with pytest.raises(ValueError, match="max_side"):
        downscale_to_fit(torch.rand(1, 3, 8, 8), bad)  # type: ignore[arg-type]


def test_match_size_resize() -> None:
    ref = torch.zeros(1, 3, 30, 40)
    dist = torch.rand(1, 3, 61, 83)
    out = match_size(ref, dist, "resize")
    assert out.shape == (1, 3, 30, 40)
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    sharp = torch.zeros(1, 3, 8, 8)
    sharp[..., 4:] = 1.0
    up = match_size(torch.zeros(1, 3, 32, 32), sharp, "resize")
    assert 0.0 <= float(up.min()) and float(up.max()) <= 1.0  # bicubic overshoot clamped
    assert match_size(ref, dist).shape == out.shape  # resize is the default


def test_match_size_center_crop() -> None:
    dist = torch.arange(6 * 8, dtype=torch.float32).reshape(1, 1, 6, 8).expand(1, 3, 6, 8) / 100
    out = match_size(torch.zeros(1, 3, 2, 4), dist, "crop")
    assert out.shape == (1, 3, 2, 4)
    assert torch.equal(out, dist[..., 2:4, 2:6])
    single = match_size(torch.zeros(3, 2, 4), dist[0], "crop")
    assert single.shape == (3, 2, 4)


def test_match_size_crop_needs_larger_dist() -> None:
    with pytest.raises(ImageSizeMismatchError, match="how='resize'"):
        match_size(torch.zeros(1, 3, 10, 10), torch.zeros(1, 3, 12, 8), "crop")


def test_match_size_same_size_and_bad_mode() -> None:
    ref, dist = torch.zeros(1, 3, 5, 5), torch.rand(1, 3, 5, 5)
    assert match_size(ref, dist, "crop") is dist
    with pytest.raises(ValueError, match="'resize' or 'crop'"):
        match_size(ref, torch.rand(1, 3, 6, 6), "stretch")  # type: ignore[arg-type]
    with pytest.raises(InputRangeError):
        match_size(ref, torch.full((1, 3, 6, 6), 255.0), "resize")


# --- writing -----------------------------------------------------------------------------------


def test_png_bytes_round_trip_is_exact() -> None:
    array = np.random.default_rng(2).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    image = from_numpy(array)
    data = to_png_bytes(image)
    assert data.startswith(b"\x89PNG")
    assert torch.equal(load_image(data), image)
    assert torch.equal(load_image(to_png_bytes(image[0])), image)


def test_png_bytes_rejects_batches_and_bad_range() -> None:
    with pytest.raises(InputShapeError, match="batch of 2"):
        to_png_bytes(torch.zeros(2, 3, 4, 4))
    with pytest.raises(InputRangeError):
        to_png_bytes(torch.full((1, 3, 4, 4), 255.0))


def test_save_image(tmp_path: Path) -> None:
    array = np.random.default_rng(3).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    image = from_numpy(array)
    png = save_image(image, tmp_path / "out.png")
    assert torch.equal(load_image(png), image)
    flat = from_numpy(np.full((16, 16, 3), 90, np.uint8))
    jpg = save_image(flat, tmp_path / "out.JPG")
    assert load_image_info(jpg).format == "JPEG"
    assert (load_image(jpg) - flat).abs().max().item() < 3 / 255
    with pytest.raises(ValueError, match="extension"):
        save_image(image, tmp_path / "out.unknown")
