"""The image cache against a real local HTTP server: real photos, crafted bad ones, SSRF, a real catalog."""

from __future__ import annotations

import hashlib
import io
import json
import resource
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from sveta.catalog.models import Image as ImageRow
from sveta.catalog.records import ImageRecord, ProductRecord
from sveta.catalog.store import CatalogStore, PreparedProduct, open_catalog
from sveta.errors import BlockedURLError, InputError, SourceError, SvetaError
from sveta.images.cache import CachedImage, ImageCache, warm_cache
from sveta.settings import Settings
from tests.image_server import ImageServer, Reply, image_server


@pytest.fixture
def server() -> Iterator[ImageServer]:
    with image_server() as srv:
        yield srv


@pytest.fixture
def photos(myntra: Path) -> Path:
    return myntra / "images"


@pytest.fixture
def jpeg(photos: Path) -> bytes:
    return (photos / "10000.jpg").read_bytes()


def _cache(settings: Settings, **changes: object) -> ImageCache:
    return ImageCache(settings.model_copy(update=changes), backoff_s=0.0)


@pytest.fixture
def cache(settings: Settings) -> Iterator[ImageCache]:
    with _cache(settings) as c:
        yield c


def _encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height RGB pixels (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- good images ----------------------------------------------------------------------------------------


def test_real_jpeg_is_cached_under_its_sha256_and_reused(server: ImageServer, cache: ImageCache, jpeg: bytes) -> None:
    url = server.add("/a.jpg", Reply(jpeg))
    got = cache.fetch(url)
    sha = hashlib.sha256(jpeg).hexdigest()
    assert (got.sha256, got.width, got.height, got.content_type) == (sha, 224, 224, "image/jpeg")
    assert got.path == cache.cache_dir / sha[:2] / f"{sha}.jpg"
    assert got.path.read_bytes() == jpeg
    assert _files(cache.cache_dir) == [got.path]  # no temp file left behind
    stat = got.path.stat()

    assert cache.fetch(url) == got and server.hits == ["/a.jpg"]  # same process: not downloaded again
    with ImageCache(cache.settings) as fresh:  # a new process downloads, but never rewrites a cached sha
        assert fresh.fetch(url) == got
    after = got.path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)


@pytest.mark.parametrize(
    ("name", "fmt", "mode", "content_type", "options"),
    [
        ("cmyk.jpg", "JPEG", "CMYK", "image/jpeg", {}),
        ("palette.png", "PNG", "P", "image/png", {}),
        ("anim.gif", "GIF", "P", "image/gif", {"save_all": True}),
        ("photo.webp", "WEBP", "RGB", "image/webp", {}),
        ("photo.bmp", "BMP", "RGB", "image/bmp", {}),
        ("photo.tif", "TIFF", "RGB", "image/tiff", {}),
    ],
)
def test_other_real_formats_are_accepted(
    server: ImageServer,
    cache: ImageCache,
    photos: Path,
    name: str,
    fmt: str,
    mode: str,
    content_type: str,
    options: dict[str, object],
) -> None:
    base = Image.open(photos / "10001.jpg").convert(mode)
    if options.get("save_all"):
        frames = [Image.open(photos / f"1000{i}.jpg").convert(mode) for i in (2, 3)]
        options = {**options, "append_images": frames, "duration": 100, "loop": 0}
    body = _encode(base, fmt, **options)
    # octet-stream: the magic bytes decide
    got = cache.fetch(server.add(f"/{name}", Reply(body, "application/octet-stream")))
    assert (got.width, got.height, got.content_type) == (224, 224, content_type)
    assert got.path.suffix == Path(name).suffix and got.path.read_bytes() == body
    if fmt == "GIF":
        assert getattr(Image.open(io.BytesIO(body)), "n_frames", 1) == 3


def test_local_files_are_checked_and_hashed_but_not_copied(cache: ImageCache, photos: Path) -> None:
    original = photos / "10002.jpg"
    for ref in (original.resolve().as_uri(), str(original)):
        got = cache.fetch(ref)
        assert got.path.resolve() == original.resolve()
        assert got.sha256 == hashlib.sha256(original.read_bytes()).hexdigest()
    assert _files(cache.cache_dir) == []
    with pytest.raises(InputError, match="not found"):
        cache.fetch((photos / "no-such-photo.jpg").as_uri())


# -- bad content ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (Reply(b"<!DOCTYPE html><html><body>Sorry</body></html>", "text/html; charset=utf-8"), "HTML page"),
        (Reply(b"  <!doctype html>\n<html>login</html>", "image/jpeg"), "HTML page"),  # lying content type
        (Reply(b'{"error": "gone"}', "application/json"), "application/json, not an image"),
        (Reply(b"\x00\x01garbage bytes" * 50, "application/octet-stream"), "not a JPEG, PNG"),
        (Reply(b"", "image/png"), "is empty"),
    ],
)
def test_what_is_not_an_image_gets_a_clear_input_error(
    server: ImageServer, cache: ImageCache, reply: Reply, problem: str
) -> None:
    url = server.add("/thing", reply)
    with pytest.raises(InputError, match=problem) as info:
        cache.fetch(url)
    assert url in info.value.message and info.value.hint
    assert _files(cache.cache_dir) == []


def test_truncated_jpeg_is_refused(server: ImageServer, cache: ImageCache, shared: Path) -> None:
    data = (shared / "fixtures" / "photos" / "product-handbag.jpg").read_bytes()
    with pytest.raises(InputError, match="corrupt or truncated JPEG") as info:
        cache.fetch(server.add("/cut.jpg", Reply(data[: len(data) * 2 // 3])))
    assert "--retry-broken" in (info.value.hint or "")


def test_pixel_bomb_is_refused_from_its_header(server: ImageServer, cache: ImageCache) -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InputError, match="pixels, over the limit") as info:
        cache.fetch(server.add("/bomb.png", Reply(_png_claiming(50_000, 50_000), "image/png")))
    assert "SVETA_IMAGE_MAX_PIXELS" in (info.value.hint or "")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 200_000  # KiB: nothing allocated


def test_pixel_limit_comes_from_settings_not_pillow(server: ImageServer, settings: Settings) -> None:
    body = _encode(Image.new("L", (2000, 1000)), "PNG")  # 2 Mpx: fine for Pillow, over our 1 Mpx
    with _cache(settings, image_max_pixels=1_000_000) as cache, pytest.raises(InputError, match="2000x1000"):
        cache.fetch(server.add("/big.png", Reply(body, "image/png")))


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "no-content-length"])
def test_bytes_over_the_limit_are_refused(server: ImageServer, settings: Settings, shared: Path, length: bool) -> None:
    data = (shared / "fixtures" / "photos" / "product-handbag.jpg").read_bytes()  # 256 kB, a real photo
    with _cache(settings, image_max_bytes=100_000) as cache:
        with pytest.raises(InputError, match="larger than 100,000 bytes"):
            cache.fetch(server.add("/huge.jpg", Reply(data, length=length)))
        with pytest.raises(InputError, match="larger than"):
            cache.fetch(str(shared / "fixtures" / "photos" / "product-handbag.jpg"))
        assert _files(cache.cache_dir) == []


# -- HTTP failures --------------------------------------------------------------------------------------


def test_server_errors_are_retried(server: ImageServer, cache: ImageCache, jpeg: bytes) -> None:
    once_429 = Reply(b"", None, 429, {"Retry-After": "0"})
    url = server.add("/flaky.jpg", Reply(b"oops", "text/plain", 500), once_429, Reply(jpeg))
    assert cache.fetch(url).sha256 == hashlib.sha256(jpeg).hexdigest()
    assert server.hits == ["/flaky.jpg"] * 3


def test_errors_after_retries_and_4xx_are_source_errors(server: ImageServer, cache: ImageCache) -> None:
    with pytest.raises(SourceError, match="HTTP 503 after retries"):
        cache.fetch(server.add("/down.jpg", Reply(b"", "text/plain", 503)))
    assert server.hits.count("/down.jpg") == cache.settings.image_fetch_retries + 1
    with pytest.raises(SourceError, match="HTTP 404") as info:
        cache.fetch(server.url("/missing.jpg"))
    assert server.hits.count("/missing.jpg") == 1 and "re-ingest" in (info.value.hint or "")


def test_a_slow_server_times_out(server: ImageServer, settings: Settings, jpeg: bytes) -> None:
    with (
        _cache(settings, http_timeout_s=0.2, image_fetch_retries=0) as cache,
        pytest.raises(SourceError, match=r"cannot download.*Timeout"),
    ):
        cache.fetch(server.add("/slow.jpg", Reply(jpeg, delay_s=1.0)))


# -- SSRF -----------------------------------------------------------------------------------------------


def test_private_addresses_are_refused_unless_allowed(server: ImageServer, settings: Settings, jpeg: bytes) -> None:
    url = server.add("/a.jpg", Reply(jpeg))
    with _cache(settings, allowed_private_hosts=[]) as strict:
        with pytest.raises(BlockedURLError, match=r"127\.0\.0\.1"):
            strict.fetch(url)
        with pytest.raises(BlockedURLError, match=r"169\.254\.169\.254"):
            strict.fetch("http://169.254.169.254/latest/meta-data")
    assert server.hits == []


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data", "http://10.0.0.1/x.jpg"])
def test_a_redirect_to_a_private_address_is_refused(server: ImageServer, cache: ImageCache, target: str) -> None:
    url = server.add("/hop.jpg", Reply(b"", None, 302, {"Location": target}))
    with pytest.raises(BlockedURLError, match="private"):
        cache.fetch(url)
    assert server.hits == ["/hop.jpg"]


# -- many images ----------------------------------------------------------------------------------------


def test_fetch_many_keeps_order_returns_errors_and_bounds_concurrency(
    server: ImageServer, settings: Settings, photos: Path
) -> None:
    urls = [server.add(f"/{i}.jpg", Reply((photos / f"{10000 + i}.jpg").read_bytes(), delay_s=0.15)) for i in range(9)]
    urls.insert(4, server.add("/page", Reply(b"<html></html>", "text/html")))
    seen: list[str] = []
    with _cache(settings, image_fetch_concurrency=3) as cache:
        results = cache.fetch_many(urls, on_done=lambda url, _result: seen.append(url))
    assert isinstance(results[4], InputError) and sorted(seen) == sorted(urls)
    good = [r for r in results if isinstance(r, CachedImage)]
    assert [r.sha256 for r in good] == [
        hashlib.sha256((photos / f"{10000 + i}.jpg").read_bytes()).hexdigest() for i in range(9)
    ]
    assert 2 <= server.max_in_flight <= 3


def _catalog_with(path: Path, products: dict[str, list[str]]) -> CatalogStore:
    catalog = open_catalog(f"sqlite:///{path}")
    source_id = catalog.ensure_source("test", "jsonl", "test")
    records = [
        ProductRecord(
            external_id=pid, title=f"Product {pid}", images=[ImageRecord(url=u, position=i) for i, u in enumerate(urls)]
        )
        for pid, urls in products.items()
    ]
    catalog.upsert_batch(source_id, [PreparedProduct(record=r) for r in records])
    return catalog


def _rows(catalog: CatalogStore) -> dict[str, list[ImageRow]]:
    with catalog.session() as s:
        rows = list(s.scalars(select(ImageRow).order_by(ImageRow.id)))
    by_url: dict[str, list[ImageRow]] = {}
    for row in rows:
        by_url.setdefault(row.url, []).append(row)
    return by_url


def test_warm_cache_records_good_and_broken_images_and_finishes(
    server: ImageServer, cache: ImageCache, photos: Path, tmp_path: Path
) -> None:
    good1 = server.add("/1.jpg", Reply((photos / "10000.jpg").read_bytes()))
    shared_url = server.add("/2.jpg", Reply((photos / "10001.jpg").read_bytes()))
    local = (photos / "10002.jpg").resolve().as_uri()
    page = server.add("/page.jpg", Reply(b"<html>moved</html>", "text/html"))
    missing = server.url("/missing.jpg")
    cut = server.add("/cut.jpg", Reply((photos / "10003.jpg").read_bytes()[:1500]))
    catalog = _catalog_with(
        tmp_path / "c.db", {"p1": [good1, page], "p2": [shared_url, missing], "p3": [shared_url, local], "p4": [cut]}
    )
    progress: list[tuple[int, int]] = []

    report = warm_cache(catalog, cache, on_progress=lambda done, total: progress.append((done, total)))

    assert (report.cached, report.broken, report.skipped) == (4, 3, 0)
    assert progress[0] == (0, 7) and progress[-1] == (7, 7)
    assert server.hits.count("/2.jpg") == 1  # one download for a photo two products share
    rows = _rows(catalog)
    for url in (good1, shared_url, local):
        for row in rows[url]:
            assert row.status == "cached" and row.width == row.height == 224 and len(row.sha256 or "") == 64
            assert Path(row.local_path or "").is_file()
    assert rows[local][0].local_path == str(photos.resolve() / "10002.jpg")  # not copied
    for url, problem in ((page, "HTML page"), (missing, "HTTP 404"), (cut, "truncated")):
        assert rows[url][0].status == "broken" and problem in (rows[url][0].error or "")
    assert {u for u, _ in report.failures} == {page, missing, cut}

    again = warm_cache(catalog, cache)  # broken ones are left alone unless asked
    assert (again.cached, again.broken, again.skipped) == (0, 0, 3)
    server.add("/page.jpg", Reply((photos / "10004.jpg").read_bytes()))
    retried = warm_cache(catalog, cache, retry_broken=True)
    assert (retried.cached, retried.broken, retried.skipped) == (1, 2, 0)
    assert _rows(catalog)[page][0].status == "cached" and _rows(catalog)[page][0].error is None


def test_an_unexpected_error_on_one_image_is_recorded_not_raised(
    server: ImageServer, cache: ImageCache, jpeg: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = server.add("/ok.jpg", Reply(jpeg)), server.url("/bug.jpg")
    catalog = _catalog_with(tmp_path / "c.db", {"p1": [good, bad]})
    real_fetch = cache.fetch

    def buggy(url: str) -> CachedImage:
        if url == bad:
            raise RuntimeError("boom")
        return real_fetch(url)

    monkeypatch.setattr(cache, "fetch", buggy)
    report = warm_cache(catalog, cache)
    assert (report.cached, report.broken) == (1, 1)
    assert "RuntimeError: boom" in (_rows(catalog)[bad][0].error or "")


def test_outcomes_are_written_in_batches_and_an_interrupted_run_keeps_what_it_finished(
    server: ImageServer, cache: ImageCache, jpeg: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sveta.catalog import image_state

    urls = [server.add(f"/{i}.jpg", Reply(jpeg)) for i in range(7)] + [server.url("/gone.jpg")]
    catalog = _catalog_with(tmp_path / "c.db", {f"p{i}": [url] for i, url in enumerate(urls)})
    writes: list[int] = []
    real_write = catalog.write
    monkeypatch.setattr(catalog, "write", lambda work: (writes.append(1), real_write(work))[1])
    monkeypatch.setattr(image_state, "BATCH", 3)
    report = warm_cache(catalog, cache)
    assert (report.cached, report.broken) == (7, 1)
    assert len(writes) == 3  # 8 outcomes, 3 to a transaction: not one commit per photo
    rows = _rows(catalog)
    assert rows[urls[-1]][0].status == "broken" and "HTTP 404" in (rows[urls[-1]][0].error or "")
    assert all(rows[u][0].status == "cached" and rows[u][0].width == 224 for u in urls[:-1])

    more = [server.add(f"/more{i}.jpg", Reply(jpeg)) for i in range(4)]
    again = _catalog_with(tmp_path / "d.db", {f"q{i}": [url] for i, url in enumerate(more)})
    seen: list[str] = []

    def stop_at_fourth(done: int, _total: int) -> None:
        seen.append("x")
        if done == 3:  # three photos fetched, none of them written yet (a batch is 3 + the age limit)
            raise KeyboardInterrupt

    monkeypatch.setattr(image_state, "BATCH", 500)
    with pytest.raises(KeyboardInterrupt):
        warm_cache(again, cache, on_progress=stop_at_fourth)
    statuses = [r.status for rows_of_url in _rows(again).values() for r in rows_of_url]
    assert statuses.count("cached") == 3 and statuses.count("pending") == 1  # the finished three were kept


def test_cli_images_fetch_json(
    server: ImageServer, jpeg: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from sveta.cli import _common, app

    monkeypatch.setenv("SVETA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SVETA_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
    catalog = _catalog_with(
        tmp_path / "data" / "catalog.db", {"p1": [server.add("/ok.jpg", Reply(jpeg)), server.url("/gone.jpg")]}
    )
    catalog.engine.dispose()
    monkeypatch.setattr(_common, "_state", {})
    result = CliRunner().invoke(app, ["images", "fetch", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["cached"], summary["broken"], summary["skipped"]) == (1, 1, 0)
    assert isinstance(summary["seconds"], float)


def test_errors_are_sveta_errors_with_hints(server: ImageServer, cache: ImageCache) -> None:
    urls = [server.url("/nothing.jpg"), "ftp://example.com/a.jpg", "http://10.1.2.3/a.jpg", "//10.0.0.5/a"]
    assert isinstance(cache.fetch_many(urls[-1:])[0], BlockedURLError)  # scheme-relative means https
    results = cache.fetch_many(urls)
    assert all(isinstance(r, SvetaError) and r.hint for r in results)
