"""Is it really an image? Magic bytes, pixel count before decoding, a full decode; clear errors otherwise."""

from __future__ import annotations

import io
import re

from PIL import Image

from sveta.errors import InputError, SvetaError

# Pillow format -> (content type, file extension); also the formats Pillow may try to open.
FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
    "BMP": ("image/bmp", "bmp"),
    "TIFF": ("image/tiff", "tif"),
}
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
)
_OBJECT_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")
PAGE_HINT = "use the direct address of the image file (right-click the picture, 'Copy image address')"


def sniff(data: bytes) -> str | None:
    """The Pillow format name the magic bytes announce, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _MAGIC if data.startswith(magic)), None)


def inspect_image(data: bytes, url: str, max_pixels: int) -> tuple[str, int, int]:
    """(format, width, height) of a fully decodable image; InputError naming the problem otherwise."""
    fmt = sniff(data)
    if fmt is None:
        raise not_an_image(data, url)
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            width, height = img.size
            if width * height > max_pixels:  # from the header, before a single pixel is decoded
                raise too_many_pixels(url, width * height, max_pixels, f"{width}x{height}")
            _decode(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise too_many_pixels(url, int(found.group(1)) if found else None, max_pixels) from exc
    except SvetaError:
        raise
    except Exception as exc:  # Pillow raises many types on bad data (OSError, SyntaxError, struct.error...)
        raise InputError(
            f"{url} is a corrupt or truncated {fmt} image ({pillow_reason(exc)})",
            "replace the image at the source (or its URL), then run `sveta images fetch --retry-broken`",
        ) from exc
    return fmt, width, height


def pillow_reason(exc: BaseException) -> str:
    """Pillow's reason without the object it names ("cannot identify image file <_io.BytesIO object at 0x7f..>")."""
    reason = _OBJECT_REPR.sub("", str(exc)).strip()
    return reason or type(exc).__name__


def _decode(img: Image.Image) -> None:
    # Decoding every pixel is the only way to catch truncation; for JPEG a 1/8-scale decode still reads
    # all the data, at a fraction of the time and memory.
    if img.format == "JPEG":
        img.draft(img.mode, (max(img.width // 8, 1), max(img.height // 8, 1)))
    img.load()


def not_an_image(data: bytes, url: str) -> InputError:
    """The error for bytes no image format announces: an HTML page, an SVG, JSON, nothing at all, or else."""
    head = data[:1024].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head or b"<body" in head:
        return InputError(f"{url} is an HTML page, not an image", PAGE_HINT)
    if b"<svg" in head:
        return InputError(f"{url} is an SVG drawing, not a photo", "give a JPEG, PNG or WEBP photo")
    if head.startswith((b"{", b"[")):
        return InputError(f"{url} is JSON, not an image", "use the direct address of the image file")
    kind = "empty" if not data else "not a JPEG, PNG, GIF, WEBP, BMP or TIFF image"
    return InputError(f"{url} is {kind}", "replace the image with a JPEG, PNG or WEBP file")


def too_big(url: str, max_bytes: int) -> InputError:
    return InputError(
        f"{url} is larger than {max_bytes:,} bytes", "if the image is genuine, raise SVETA_IMAGE_MAX_BYTES"
    )


def too_many_pixels(url: str, pixels: int | None, max_pixels: int, size: str = "") -> InputError:
    """The decompression-bomb guard's error: ``size`` ("8000x8000") when the header said it."""
    what = f"{pixels:,} pixels" if pixels else "too many pixels"
    what = f"{size} = {what}" if size else what
    return InputError(
        f"{url} is {what}, over the limit of {max_pixels:,} pixels (decompression-bomb guard)",
        "if the image is genuine, raise SVETA_IMAGE_MAX_PIXELS",
    )
