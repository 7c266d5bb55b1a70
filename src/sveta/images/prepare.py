"""Image preparation: safe loading, conversion to RGB, padding to a square and cropping."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, ImageOps

from sveta.errors import InputError
from sveta.images.checks import not_an_image, pillow_reason, sniff, too_many_pixels

Box = tuple[float, float, float, float]
RGB = tuple[int, int, int]

WHITE: RGB = (255, 255, 255)
_REPLACE_HINT = "replace the photo with a complete JPEG, PNG or WEBP file"
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SRGB = ImageCms.createProfile("sRGB")


def load_image(source: Path | bytes | BinaryIO, *, max_pixels: int, at_least: int | None = None) -> Image.Image:
    """Decode all of a photo's pixels (at full size, or a JPEG at a DCT scale); InputError saying what it is
    instead when it is no image, over ``max_pixels``, corrupt or truncated (the magic bytes decide the format, as for
    uploads and downloads).

    ``at_least``: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (in the DCT, as Pillow's thumbnail does) while
    both sides stay at least this long; what is made of it is smaller still. The two real uploads of the shared data
    (about 1100x1400) to a 224 px square: 51.1 -> 15.5 ms (benchmarks/bench_decode.py)."""
    name, data = _read(source)
    fmt = sniff(data)
    if fmt is None:  # empty, text, HTML, SVG: said so, not as Pillow's "cannot identify image file <...>"
        what = not_an_image(data, "it")
        raise InputError(f"{name} is not a readable image: {what.message}", what.hint)
    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
        width, height = img.size
        if width * height > max_pixels:  # the header is read, no pixel decoded yet
            raise too_many_pixels(name, width * height, max_pixels, f"{width}x{height}")
        if at_least is not None and fmt == "JPEG":
            img.draft(img.mode, (at_least, at_least))
        img.load()
    except InputError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard fires inside Image.open
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise too_many_pixels(name, int(found.group(1)) if found else None, max_pixels) from exc
    except Exception as exc:  # Pillow raises many types on bad data (OSError, SyntaxError, struct.error...)
        raise InputError(
            f"{name} is not a readable image: a corrupt or truncated {fmt} ({pillow_reason(exc)})", _REPLACE_HINT
        ) from exc
    return img


def standardise(img: Image.Image, size: int, *, background: RGB | None = None) -> Image.Image:
    """An upright RGB ``size`` x ``size`` image: the photo padded (never squashed) with its background."""
    rgb = to_rgb(ImageOps.exif_transpose(_first_frame(img)))
    colour = background if background is not None else border_colour(rgb)
    scale = size / max(rgb.size)
    width, height = (max(1, round(side * scale)) for side in rgb.size)
    # reducing_gap shrinks big photos by an integer factor first: much faster, visually identical
    resized = rgb.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    canvas = Image.new("RGB", (size, size), colour)
    canvas.paste(resized, ((size - width) // 2, (size - height) // 2))
    return canvas


def crop_box(img: Image.Image, box: Box, *, margin: float = 0.0) -> Image.Image:
    """The part of ``img`` inside ``box`` (x0, y0, x1, y1), grown by ``margin`` x its size, clamped."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    left, top = max(0, int(np.floor(x0 - dx))), max(0, int(np.floor(y0 - dy)))
    right, bottom = min(img.width, int(np.ceil(x1 + dx))), min(img.height, int(np.ceil(y1 + dy)))
    if right <= left or bottom <= top:
        raise InputError(
            f"the box {box} is empty inside the {img.width}x{img.height} image",
            "give a box (x0, y0, x1, y1) with x0 < x1 and y0 < y1 that overlaps the image",
        )
    return img.crop((left, top, right, bottom))


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB: 16/32-bit scaled down, transparency composited on white, CMYK through its ICC profile."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _deep_to_rgb(img)
    if img.mode == "CMYK":
        return _cmyk_to_rgb(img)
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*WHITE, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def border_colour(img: Image.Image) -> RGB:
    """The median colour of the outermost pixels: the background of a product photo."""
    pixels = np.asarray(img.convert("RGB"))
    ring = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    r, g, b = (int(v) for v in np.median(ring, axis=0))
    return r, g, b


def _read(source: Path | bytes | BinaryIO) -> tuple[str, bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        return "the uploaded image", bytes(source)
    if isinstance(source, Path | str):
        try:
            return str(source), Path(source).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {source} ({exc.strerror or exc})", "check the path") from exc
    return str(getattr(source, "name", "the uploaded image")), source.read()


def _first_frame(img: Image.Image) -> Image.Image:
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
        # copy() detaches frame 0 so later seeks on the original cannot change it
        return img.copy()
    return img


def _deep_to_rgb(img: Image.Image) -> Image.Image:
    values = np.asarray(img, dtype=np.float64)
    if img.mode == "F":
        top = 1.0 if values.max(initial=0.0) <= 1.0 else 255.0  # float images are 0..1 or 0..255
    else:
        top = 65535.0 if values.max(initial=0) > 255 or img.mode.startswith("I;16") else 255.0
    grey = np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    profile = img.info.get("icc_profile")
    if profile:
        try:  # the embedded profile knows the inks; the naive formula gives dull, shifted colours
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            converted = ImageCms.profileToProfile(img, source, _SRGB, outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError):
            pass
    return img.convert("RGB")
