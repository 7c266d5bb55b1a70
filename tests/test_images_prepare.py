"""Image preparation and the colour descriptor, on real shared photos and generated edge cases."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sveta.errors import InputError
from sveta.images.colour import HIST_DIM, colour_histogram, describe
from sveta.images.prepare import crop_box, load_image, standardise
from sveta.settings import Settings
from tests.conftest import SHARED

MAX = 40_000_000


def _bytes(img: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), (200, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40x20 landscape, shown 20x40 portrait
    out = np.asarray(standardise(load_image(_bytes(img, "JPEG", exif=exif), max_pixels=MAX), 64, background=(255,) * 3))
    assert out[2, 32, 0] > 150 and out[2, 32, 1] < 80  # portrait: red reaches the top edge
    assert out[32, 2].min() > 240  # and white padding sits left and right


def test_transparency_becomes_white_and_modes_become_rgb() -> None:
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    out = standardise(load_image(_bytes(rgba, "PNG"), max_pixels=MAX), 32)
    assert out.mode == "RGB" and out.getpixel((16, 16)) == (255, 255, 255)
    for img, fmt in [
        (Image.new("CMYK", (30, 30), (0, 255, 255, 0)), "JPEG"),
        (Image.new("P", (30, 30), 3), "PNG"),
        (Image.new("L", (30, 30), 128), "PNG"),
        (Image.new("1", (30, 30), 1), "PNG"),
    ]:
        assert standardise(load_image(_bytes(img, fmt), max_pixels=MAX), 32).mode == "RGB"


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    deep = Image.fromarray(np.full((20, 20), 32768, dtype=np.uint16))
    out = standardise(load_image(_bytes(deep, "PNG"), max_pixels=MAX), 20)
    value = out.getpixel((10, 10))[0]
    assert 100 < value < 160  # half of the 16-bit range is mid grey, not white


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in ("blue", "red", "green")]
    data = io.BytesIO()
    frames[0].save(data, "GIF", save_all=True, append_images=frames[1:])
    out = standardise(load_image(data.getvalue(), max_pixels=MAX), 20)
    r, _, b = out.getpixel((10, 10))
    assert b > 200 and r < 50


def test_wide_image_is_padded_not_squashed() -> None:
    wide = Image.new("RGB", (200, 50), "white")
    wide.paste((0, 0, 0), (0, 0, 200, 50))
    out = standardise(wide, 100, background=(255, 255, 255))
    pixels = np.asarray(out)
    dark_rows = np.flatnonzero(pixels.mean(axis=(1, 2)) < 128)
    assert out.size == (100, 100) and 20 <= len(dark_rows) <= 30  # the 4:1 content keeps its aspect


def test_truncated_and_huge_images_are_clear_errors(tmp_path: Path) -> None:
    jpeg = _bytes(Image.new("RGB", (300, 300), "navy"), "JPEG")
    with pytest.raises(InputError):
        load_image(jpeg[: len(jpeg) // 2], max_pixels=MAX)
    with pytest.raises(InputError):
        load_image(b"not an image at all", max_pixels=MAX)
    with pytest.raises(InputError, match="pixels"):
        load_image(_png_header(50_000, 50_000), max_pixels=MAX)


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")
    )


def test_crop_box_clamps_and_refuses_empty_boxes() -> None:
    img = Image.new("RGB", (100, 80))
    assert crop_box(img, (-10, -10, 50, 40)).size == (50, 40)
    assert crop_box(img, (90, 70, 200, 200)).size == (10, 10)
    with pytest.raises(InputError):
        crop_box(img, (50, 50, 50, 60))


def test_colour_of_a_red_square_on_white() -> None:
    img = Image.new("RGB", (120, 120), "white")
    img.paste((200, 30, 40), (30, 30, 90, 90))
    info = describe(img)
    assert info.name == "Red" and info.share > 0.9
    assert info.histogram.shape == (HIST_DIM,) and info.histogram.dtype == np.float32
    assert abs(float(np.linalg.norm(info.histogram)) - 1.0) < 1e-5


def test_histograms_tell_colours_apart_on_real_photos(myntra: Path) -> None:
    """Same-colour items are closer in colour space than items of other colours (real catalog photos)."""
    rows = [line.split(",") for line in (myntra / "styles.csv").read_text(encoding="utf-8").splitlines()[1:3000]]
    by_colour: dict[str, list[str]] = {}
    for row in rows:
        if row[4] in ("Tshirts", "Shirts") and row[5] in ("Black", "White", "Red", "Blue"):
            by_colour.setdefault(row[5], []).append(row[0])
    vectors = {
        colour: [colour_histogram(Image.open(myntra / "images" / f"{i}.jpg")) for i in ids[:12]]
        for colour, ids in by_colour.items()
    }
    same, other = [], []
    for colour, vs in vectors.items():
        for n, v in enumerate(vs):
            same += [float(v @ w) for w in vs[n + 1 :]]
            other += [float(v @ w) for c, ws in vectors.items() if c != colour for w in ws]
    assert np.mean(same) > np.mean(other) + 0.1


def test_a_large_jpeg_is_decoded_at_a_dct_scale_that_keeps_both_sides_at_least_as_asked() -> None:
    upload = (SHARED / "fixtures" / "photos" / "product-handbag.jpg").read_bytes()  # 1086x1448
    assert load_image(upload, max_pixels=10**8).size == (1086, 1448)
    assert load_image(upload, max_pixels=10**8, at_least=448).size == (543, 724)  # 1/2: 1/4 would be under 448
    assert load_image(upload, max_pixels=10**8, at_least=200).size == (272, 362)  # 1/4
    with pytest.raises(InputError, match="pixels"):  # the limit is the photo's own size, read before decoding
        load_image(upload, max_pixels=1_000_000, at_least=200)
    png = _bytes(Image.new("RGB", (1200, 1600), (200, 10, 10)), "PNG")
    assert load_image(png, max_pixels=10**8, at_least=200).size == (1200, 1600)  # only JPEG scales in decoding


def test_a_photo_to_embed_is_decoded_at_twice_the_square_and_embeds_as_from_full_size(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sveta.embed.base import get_embedder
    from sveta.embed.pipeline import prepare_photo

    path = SHARED / "fixtures" / "photos" / "person-tank-top-jeans.jpg"
    embedder = get_embedder("effnet-lite0", settings)
    opened: list[tuple[int, int]] = []
    real_standardise = standardise

    def seen(img: Image.Image, size: int) -> Image.Image:
        opened.append(img.size)
        return real_standardise(img, size)

    monkeypatch.setattr("sveta.images.prepare.standardise", seen)  # prepare_photo imports it when called
    drafted = embedder.embed_prepared([prepare_photo(embedder, path, settings)])[0]
    assert opened == [(561, 701)]  # 1122x1402 at 1/2: both sides over 2 x 224
    full = standardise(load_image(path, max_pixels=10**8), settings.image_size)
    assert float(drafted @ embedder.embed_prepared([embedder.prepare(full)])[0]) > 0.999
