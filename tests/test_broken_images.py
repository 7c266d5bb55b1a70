"""Broken and odd photos, made in code, through every photo entry point (library, CLI, API uploads, image URLs): a
broken one is a clear error, never a traceback or a 500; a valid but odd one (CMYK, 16-bit, animated) just works."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner

from sveta.api import create_app
from sveta.catalog.store import CatalogStore
from sveta.cli import _common, app
from sveta.engines.complete import Completer, piece_of_photo
from sveta.engines.look import Looker
from sveta.engines.search import Searcher
from sveta.errors import InputError, SourceError
from sveta.images.cache import ImageCache
from sveta.images.prepare import load_image, standardise
from sveta.learn.tagging import tag_photos, tag_query
from sveta.settings import Settings
from tests.image_server import Reply, image_server
from tests.test_api import build_catalog

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}


def _encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(width: int, height: int) -> bytes:
    """A few bytes of PNG whose header claims width x height RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(bytes(16))) + _chunk(b"IEND", b"")


def _animated(frames: list[Image.Image], fmt: str) -> bytes:
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "a zip archive after the JPEG's end")
    return out.getvalue()


# Files no entry point may take, and what their error says.
BROKEN = {
    "empty.jpg": "empty",
    "truncated.jpg": "corrupt or truncated JPEG",
    "png-magic-on-jpeg.jpg": "corrupt or truncated PNG",
    "huge-dimensions.png": "10,000,000,000 pixels, over the limit",
    "zero-dimensions.png": "corrupt or truncated PNG",
    "bomb.png": "64,000,000 pixels, over the limit",
    "truncated.png": "corrupt or truncated PNG",
    "bad-crc.png": "corrupt or truncated PNG",
    "drawing.svg": "SVG drawing",
    "svg-named.jpg": "SVG drawing",
    "text-named.jpg": "not a JPEG, PNG, GIF, WEBP, BMP or TIFF",
    "page-named.jpg": "HTML page",
    "gif-script-polyglot.gif": "corrupt or truncated GIF",
}


def broken(photo: bytes) -> dict[str, bytes]:
    png = _encode(Image.open(io.BytesIO(photo)).convert("RGB").resize((96, 128)), "PNG")
    return {
        "empty.jpg": b"",
        "truncated.jpg": photo[: len(photo) // 2],
        "png-magic-on-jpeg.jpg": PNG_SIGNATURE + photo[8:],
        "huge-dimensions.png": _png_claiming(100_000, 100_000),
        "zero-dimensions.png": _png_claiming(0, 0),
        "bomb.png": _encode(Image.new("1", (8000, 8000)), "PNG"),  # 64 megapixels in a few KB
        "truncated.png": png[: len(png) // 2],
        "bad-crc.png": png[:30] + bytes([png[30] ^ 0xFF]) + png[31:],  # a flipped bit in IHDR's checksum
        "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="9" height="9"/></svg>',
        "svg-named.jpg": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
        "text-named.jpg": b"a shopping list, not a photo\n",
        "page-named.jpg": b"<!doctype html><html><body>sold out</body></html>",
        "gif-script-polyglot.gif": b"GIF89a/*" + bytes(8) + b"*/=1;alert(1)//",  # a GIF header, then a script
    }


def odd(photo: bytes) -> dict[str, bytes]:
    """Valid photos in unusual shapes: each must be converted and answered like any other."""
    rgb = Image.open(io.BytesIO(photo)).convert("RGB")
    rgb.thumbnail((192, 192))
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT), rgb.rotate(8, fillcolor=(255, 255, 255))]
    deep = Image.fromarray((np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).astype("<u2"))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    exif = rgb.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees
    text = PngImagePlugin.PngInfo()
    text.add_text("comment", "x" * 900_000)  # a metadata header 900 KB long
    files = {
        "cmyk.jpg": _encode(rgb.convert("CMYK"), "JPEG"),
        "sixteen-bit.png": _encode(deep, "PNG"),
        "animated.gif": _animated(frames, "GIF"),
        "animated.webp": _animated(frames, "WEBP"),
        "jpeg-zip-polyglot.jpg": _encode(rgb, "JPEG") + _zip(),
        "jpeg-html-polyglot.jpg": _encode(rgb, "JPEG", comment=b"<html><script>alert(1)</script></html>"),
        "exif-rotated.jpg": _encode(rgb, "JPEG", exif=exif),
        "palette-transparent.png": _encode(palette, "PNG", transparency=0),
        "grey-alpha.png": _encode(rgb.convert("LA"), "PNG"),
        "huge-text-header.png": _encode(rgb, "PNG", pnginfo=text),
        "one-pixel.png": _encode(Image.new("RGB", (1, 1), (180, 30, 40)), "PNG"),
    }
    assert list(files) == ODD
    return files


ODD = ["cmyk.jpg", "sixteen-bit.png", "animated.gif", "animated.webp", "jpeg-zip-polyglot.jpg"]
ODD += ["jpeg-html-polyglot.jpg", "exif-rotated.jpg", "palette-transparent.png", "grey-alpha.png"]
ODD += ["huge-text-header.png", "one-pixel.png"]


@pytest.fixture(scope="module")
def photo(myntra: Path) -> bytes:
    return (myntra / "images" / "10000.jpg").read_bytes()


@pytest.fixture(scope="module")
def corpus(photo: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every file of the corpus, written once."""
    folder = tmp_path_factory.mktemp("corpus")
    files = broken(photo) | odd(photo)
    assert set(files) == set(BROKEN) | set(ODD)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_the_odd_photos_are_what_their_names_say(corpus: Path) -> None:
    files = {name: Image.open(corpus / name) for name in ODD}
    assert files["cmyk.jpg"].mode == "CMYK" and files["sixteen-bit.png"].mode == "I;16"
    assert files["animated.gif"].n_frames == 3 and files["animated.webp"].n_frames == 3
    assert files["exif-rotated.jpg"].getexif()[0x0112] == 6 and files["grey-alpha.png"].mode == "LA"
    assert zipfile.ZipFile(corpus / "jpeg-zip-polyglot.jpg").namelist() == ["readme.txt"]


# -- fast: the preparation every library path shares, uploads, image URLs ---------------------------


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_photo_is_a_clear_input_error_when_loaded(name: str, corpus: Path) -> None:
    for source in (corpus / name, (corpus / name).read_bytes()):
        with pytest.raises(InputError) as info:
            load_image(source, max_pixels=40_000_000)
        assert BROKEN[name] in info.value.message and info.value.hint
        assert " at 0x" not in info.value.message  # no Python object's address


@pytest.mark.parametrize("name", ODD)
def test_an_odd_photo_loads_as_a_square_rgb_image(name: str, corpus: Path) -> None:
    image = standardise(load_image(corpus / name, max_pixels=40_000_000), 64)
    assert image.mode == "RGB" and image.size == (64, 64)
    if name == "sixteen-bit.png":  # scaled down from 16 bits (not clipped to white): as bright as the photo was
        deep = np.asarray(Image.open(corpus / name), dtype=np.float64).mean() / 257
        assert abs(float(np.asarray(image).mean()) - deep) < 4


@pytest.fixture(scope="module")
def empty_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("broken-api") / "data", sync_every="0")
    with TestClient(create_app(settings)) as client:
        yield client


UPLOADS = ["/api/search/photo", "/api/tag", "/api/look", "/api/complete"]


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_upload_is_refused_with_a_json_error(name: str, corpus: Path, empty_api: TestClient) -> None:
    """Checked before any engine runs: an empty catalog answers the same as a full one."""
    for endpoint in UPLOADS:
        _refused(empty_api.post(endpoint, files=_upload(corpus, name)), name)


def _upload(corpus: Path, name: str) -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, (corpus / name).read_bytes(), CONTENT_TYPES.get(name.rsplit(".")[-1], "image/svg+xml"))}


def _refused(response: Any, name: str) -> None:
    assert response.status_code in (415, 422), (name, response.status_code, response.text[:300])
    error = response.json()["error"]
    assert error["hint"] and "Traceback" not in response.text and " at 0x" not in error["message"]
    expected = "the uploaded file is empty" if name == "empty.jpg" else BROKEN[name]
    assert expected in error["message"], error


@pytest.fixture(scope="module")
def served(corpus: Path) -> Iterator[tuple[str, Settings]]:
    """The corpus on a real local HTTP server, each file with the type its name claims."""
    with image_server() as server:
        for path in corpus.iterdir():
            kind = CONTENT_TYPES.get(path.suffix[1:], "image/svg+xml")
            server.add(f"/{path.name}", Reply(path.read_bytes(), kind))
        server.add("/busy.jpg", Reply(b"try later", "text/plain", 503, headers={"Retry-After": "²"}))
        yield server.base, Settings(data_dir=corpus.parent / "url-home", allowed_private_hosts=["127.0.0.1"])


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_photo_at_a_url_is_a_clear_input_error(name: str, served: tuple[str, Settings]) -> None:
    base, settings = served
    with ImageCache(settings, backoff_s=0.0) as cache, pytest.raises(InputError) as info:
        cache.fetch(f"{base}/{name}")
    expected = "is empty" if name == "empty.jpg" else BROKEN[name]
    assert expected in info.value.message and " at 0x" not in info.value.message


def test_odd_photos_at_urls_are_cached(served: tuple[str, Settings]) -> None:
    base, settings = served
    with ImageCache(settings, backoff_s=0.0) as cache:
        found = {name: cache.fetch(f"{base}/{name}") for name in ODD}
    assert all(image.path.is_file() and image.width >= 1 for image in found.values())


def test_a_retry_after_of_a_superscript_two_is_no_crash(served: tuple[str, Settings]) -> None:
    """ "²".isdigit() is True and float("²") raises: the header is ignored, the usual backoff applies."""
    base, settings = served
    once = settings.model_copy(update={"image_fetch_retries": 1})
    with ImageCache(once, backoff_s=0.0) as cache, pytest.raises(SourceError, match="answered HTTP 503 after retries"):
        cache.fetch(f"{base}/busy.jpg")


# -- slow: every entry point over a real catalog with an index and a trained model ------------------


@dataclass
class Engines:
    settings: Settings
    catalog: CatalogStore
    searcher: Searcher
    looker: Looker
    completer: Completer
    api: TestClient


@pytest.fixture(scope="module")
def engines(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    settings, catalog, _ = build_catalog(myntra, tmp_path_factory.mktemp("broken-home"))
    searcher = Searcher(settings, catalog)
    completer = Completer(catalog, searcher.index, settings)
    with TestClient(create_app(settings.model_copy(update={"sync_every": "0"}))) as api:
        yield Engines(settings, catalog, searcher, Looker(searcher), completer, api)
    catalog.engine.dispose()


def _library(e: Engines) -> dict[str, Callable[[Path], object]]:
    """The public library's photo entry points (sveta.__all__: Searcher, Looker, Completer, tag_photos)."""
    return {
        "Searcher.search_photo(path)": lambda p: e.searcher.search_photo(p, 3),
        "Searcher.search_photo(bytes)": lambda p: e.searcher.search_photo(p.read_bytes(), 3),
        "tag_photos": lambda p: tag_photos([p], e.settings),
        "tag_query": lambda p: tag_query(str(p), e.settings, lambda: e.catalog),
        "Looker.look": lambda p: e.looker.look(p, 2),
        "Completer + piece_of_photo": lambda p: e.completer.complete(piece_of_photo(e.completer, e.searcher, p), 2),
    }


CLI = [["search", "--k", "2"], ["tag"], ["look", "--k", "1"], ["complete", "--k", "1"]]


@pytest.mark.slow
@pytest.mark.parametrize("name", BROKEN)
def test_every_entry_point_refuses_a_broken_photo(name: str, corpus: Path, engines: Engines) -> None:
    path, expected = corpus / name, BROKEN[name]
    for entry, call in _library(engines).items():
        with pytest.raises(InputError) as info:
            call(path)
        assert expected in info.value.message, (entry, info.value.message)
    for command in CLI:
        result = _cli(engines, [command[0], str(path), *command[1:]])
        assert result.exit_code == InputError.exit_code, (command, result.output)
        assert result.output.count("error:") == 1 and expected in " ".join(result.output.split()), result.output
        assert "Traceback" not in result.output
    for endpoint in UPLOADS:
        _refused(engines.api.post(endpoint, files=_upload(corpus, name), params={"k": 1}), name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ODD)
def test_every_entry_point_answers_an_odd_photo(name: str, corpus: Path, engines: Engines) -> None:
    path = corpus / name
    for call in _library(engines).values():
        assert call(path) is not None
    for command in CLI:
        result = _cli(engines, [command[0], str(path), *command[1:]])
        assert result.exit_code == 0, (command, result.output)
    for endpoint in UPLOADS:
        response = engines.api.post(endpoint, files=_upload(corpus, name), params={"k": 1})
        assert response.status_code == 200, (endpoint, response.text[:300])


def _cli(e: Engines, args: list[str]) -> Any:
    _common.set_settings(e.settings)
    try:
        return CliRunner().invoke(app, args)
    finally:
        _common._state.clear()
