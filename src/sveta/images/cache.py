"""The lazy image cache: photos are fetched on first need, checked, and stored under their sha256."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx
from PIL import Image

from sveta.errors import ConfigError, InputError, SourceError, SvetaError
from sveta.images.checks import FORMATS, PAGE_HINT, inspect_image, sniff, too_big
from sveta.net import make_client, retry_after_s
from sveta.progress import Progress
from sveta.settings import Settings

if TYPE_CHECKING:
    from sveta.catalog.image_state import PendingStates
    from sveta.catalog.store import CatalogStore

_SNIFFED_TYPES = {"", "application/octet-stream", "binary/octet-stream"}  # let the bytes decide
_CHUNK = 64 * 1024
_DEADLINE_TIMEOUTS = 4  # a whole download may take this many http timeouts: stops slow-drip servers
_MAX_BACKOFF_S = 10.0
_MEMO_SIZE = 50_000
_RETRY_HINT = "try again later with `sveta images fetch --retry-broken`"
FLUSH_S = 2.0  # fetch outcomes wait at most this long to be written (a slow store fills no batch of 500)


@dataclass(frozen=True, slots=True)
class CachedImage:
    """A checked image: its content hash, where its bytes are, its real size and type."""

    sha256: str
    path: Path
    width: int
    height: int
    content_type: str


@dataclass
class FetchReport:
    """What one `warm_cache` run did; ``skipped`` = images still not cached that this run did not try."""

    cached: int = 0
    broken: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (url, reason) of the broken ones

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Retry(Exception):
    """A failure worth another try (5xx, 429, network); carries the error to raise when tries run out."""

    def __init__(self, error: SourceError, wait_s: float | None = None) -> None:
        super().__init__(error.message)
        self.error, self.wait_s = error, wait_s


class ImageCache:
    """Fetches, checks and stores images under ``{cache_dir}/{sha[:2]}/{sha}.{ext}``.

    http(s) URLs are downloaded through the SSRF-guarded client (redirects included), with the byte limit
    enforced while streaming, retries on 5xx / 429 / network errors, and a content-type, magic-byte and
    full-decode check (pixel limit read from the header before anything is decoded).

    ``file://`` URLs and plain local paths are checked the same way and hashed, but NOT copied: the
    returned ``path`` is the original file, so a local catalog of 10k photos is not stored twice.
    """

    def __init__(self, settings: Settings, client: httpx.Client | None = None, *, backoff_s: float = 0.5) -> None:
        self.settings = settings
        self.cache_dir = settings.image_cache_dir.absolute()
        self.backoff_s = backoff_s
        self._own_client = client is None
        self.client = client or make_client(settings)
        self._memo: dict[str, CachedImage] = {}
        # Pillow's own bomb guard must not refuse what our (explicit, larger) limit allows; ours is the check.
        if Image.MAX_IMAGE_PIXELS is not None and settings.image_max_pixels > Image.MAX_IMAGE_PIXELS:
            Image.MAX_IMAGE_PIXELS = settings.image_max_pixels

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def __enter__(self) -> ImageCache:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- one image ------------------------------------------------------------------------------------

    def fetch(self, url: str) -> CachedImage:
        """The checked image at ``url``; raises InputError, SourceError or BlockedURLError with a remedy."""
        if url.startswith("//"):  # scheme-relative, as some feeds write CDN links
            url = "https:" + url
        local = _local_path(url)
        if local is not None:
            return self._fetch_local(url, local)
        known = self._memo.get(url)
        if known is not None and known.path.is_file():
            return known
        data = self._download(url)
        result = self._checked(url, data)
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        self._memo[url] = result
        return result

    def path_for(self, sha256: str, ext: str) -> Path:
        return self.cache_dir / sha256[:2] / f"{sha256}.{ext}"

    def _fetch_local(self, url: str, path: Path) -> CachedImage:
        path = path.absolute()
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise InputError(f"{url} is not a file", "give the path of an image file")
            if size > self.settings.image_max_bytes:
                raise too_big(url, self.settings.image_max_bytes)
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise InputError(f"image file not found: {path}", "check the path, or re-ingest") from exc
        except OSError as exc:
            raise InputError(f"cannot read image file {path}: {exc.strerror}", "check permissions") from exc
        return self._checked(url, data, local=path)

    def _checked(self, url: str, data: bytes, *, local: Path | None = None) -> CachedImage:
        fmt, width, height = inspect_image(data, url, self.settings.image_max_pixels)
        sha = hashlib.sha256(data).hexdigest()
        content_type, ext = FORMATS[fmt]
        return CachedImage(sha, local or self._store(sha, ext, data), width, height, content_type)

    def _store(self, sha: str, ext: str, data: bytes) -> Path:
        path = self.path_for(sha, ext)
        if path.is_file() and path.stat().st_size == len(data):
            return path  # content-addressed: same name, same bytes
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, data)
        except OSError as exc:
            raise ConfigError(
                f"cannot write to the image cache {self.cache_dir}: {exc.strerror}",
                "free some disk space, or point SVETA_DATA_DIR at a writable folder",
            ) from exc
        return path

    # -- download ---------------------------------------------------------------------------------

    def _download(self, url: str) -> bytes:
        attempts = self.settings.image_fetch_retries + 1
        for attempt in range(attempts):
            try:
                return self._get(url)
            except _Retry as retry:
                if attempt + 1 >= attempts:
                    raise retry.error from retry.__cause__
                time.sleep(min(retry.wait_s or self.backoff_s * 2**attempt, _MAX_BACKOFF_S))
        raise AssertionError("unreachable")

    def _get(self, url: str) -> bytes:
        timeout = self.settings.http_timeout_s
        try:
            with self.client.stream("GET", url, timeout=timeout) as response:
                _check_status(response, url)
                _check_content_type(response, url)
                _check_length(response, url, self.settings.image_max_bytes)
                return _read_body(response, url, self.settings.image_max_bytes, timeout * _DEADLINE_TIMEOUTS)
        except httpx.TooManyRedirects as exc:
            raise SourceError(f"{url} redirects too many times", "check the image URL in the source") from exc
        except httpx.TransportError as exc:
            raise _Retry(SourceError(f"cannot download {url}: {_describe(exc)}", _RETRY_HINT)) from exc
        except httpx.InvalidURL as exc:
            raise InputError(f"malformed image URL {url!r}: {exc}", "fix the URL in the source") from exc
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot download {url}: {_describe(exc)}", _RETRY_HINT) from exc

    # -- many images ------------------------------------------------------------------------------

    def iter_fetch(self, urls: Iterable[str]) -> Iterator[tuple[int, CachedImage | SvetaError]]:
        """(index, result) in completion order; at most ``image_fetch_concurrency`` downloads at once.

        Only a few URLs are queued ahead, so a 100k-image catalog does not create 100k futures. Results are
        yielded in the calling thread. Stopping the iteration cancels what has not started yet.
        """
        workers = self.settings.image_fetch_concurrency
        todo = enumerate(urls)
        running: dict[Future[CachedImage | SvetaError], int] = {}
        pool = ThreadPoolExecutor(workers, thread_name_prefix="sveta-image")
        try:
            while True:
                for index, url in itertools.islice(todo, 2 * workers - len(running)):
                    running[pool.submit(self._fetch_safely, url)] = index
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield running.pop(future), future.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def fetch_many(
        self, urls: Iterable[str], on_done: Callable[[str, CachedImage | SvetaError], None] | None = None
    ) -> list[CachedImage | SvetaError]:
        """Fetch concurrently; results in input order, errors returned (not raised); ``on_done`` runs here."""
        url_list = list(urls)
        results: list[CachedImage | SvetaError | None] = [None] * len(url_list)
        for index, result in self.iter_fetch(url_list):
            results[index] = result
            if on_done is not None:
                on_done(url_list[index], result)
        return [r for r in results if r is not None]

    def _fetch_safely(self, url: str) -> CachedImage | SvetaError:
        try:
            return self.fetch(url)
        except SvetaError as exc:
            return exc
        except Exception as exc:  # a bug on one image must not stop the others
            return SvetaError(
                f"unexpected error on {url}: {type(exc).__name__}: {exc}",
                "this is a bug in sveta; please report it with the URL",
            )


def warm_cache(
    catalog: CatalogStore,
    cache: ImageCache,
    *,
    retry_broken: bool = False,
    limit: int | None = None,
    on_progress: Progress | None = None,
) -> FetchReport:
    """Fetch the catalog's pending images (and broken ones with ``retry_broken``) and record each outcome.

    Outcomes are written in this thread, up to 500 per transaction and at least every FLUSH_S seconds, and
    whatever is pending when the run stops on an error or an interrupt, so a killed run keeps what it finished
    (all but its last few seconds at worst). A broken image is recorded with its reason and never stops the run;
    only an unusable cache folder (ConfigError, e.g. disk full) does. ``on_progress(done, total)`` counts images.
    """
    from sveta.catalog.image_state import PendingStates  # the catalog (SQLAlchemy) loads only when it is used
    from sveta.catalog.photos import uncached_count

    started = time.perf_counter()
    by_url: dict[str, list[int]] = {}
    for image_id, url in catalog.images_to_fetch(retry_broken=retry_broken, limit=limit):
        by_url.setdefault(url, []).append(image_id)  # one download for a photo several products share
    urls, total, done = list(by_url), sum(map(len, by_url.values())), 0
    report = FetchReport()
    if on_progress:
        on_progress(0, total)
    with PendingStates(catalog, max_age_s=FLUSH_S) as outcomes:
        for index, result in cache.iter_fetch(urls):
            ids = by_url[urls[index]]
            _record(outcomes, report, urls[index], ids, result)
            done += len(ids)
            if on_progress:
                on_progress(done, total)
    report.skipped = max(uncached_count(catalog) - report.broken, 0)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _record(
    outcomes: PendingStates, report: FetchReport, url: str, ids: list[int], result: CachedImage | SvetaError
) -> None:
    if isinstance(result, ConfigError):
        raise result
    for image_id in ids:
        if isinstance(result, CachedImage):
            outcomes.cached(image_id, result.sha256, str(result.path), result.width, result.height)
            report.cached += 1
        else:
            outcomes.broken(image_id, str(result))
            report.broken += 1
            report.failures.append((url, str(result)))


def _check_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        error = SourceError(f"{url} answered HTTP {status} after retries", _RETRY_HINT)
        raise _Retry(error, retry_after_s(response.headers.get("retry-after")))
    if status >= 400:
        hint = (
            "the image is gone from the store; re-ingest the source to refresh its images"
            if status in (404, 410)
            else "check the image URL and that the server allows downloads"
        )
        raise SourceError(f"{url} answered HTTP {status}", hint)


def _check_content_type(response: httpx.Response, url: str) -> None:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.startswith("image/") or content_type in _SNIFFED_TYPES:
        return
    if content_type in ("text/html", "application/xhtml+xml"):
        raise InputError(f"{url} is an HTML page, not an image", PAGE_HINT)
    raise InputError(f"{url} is {content_type}, not an image", "use the direct address of the image file")


def _check_length(response: httpx.Response, url: str, max_bytes: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:  # "²" passes isdigit() alone
        raise too_big(url, max_bytes)


def _read_body(response: httpx.Response, url: str, max_bytes: int, deadline_s: float) -> bytes:
    deadline = time.monotonic() + deadline_s
    body = bytearray()
    for chunk in response.iter_bytes(_CHUNK):
        body += chunk
        if len(body) > max_bytes:  # a missing or lying Content-Length changes nothing
            raise too_big(url, max_bytes)
        if time.monotonic() > deadline:
            raise SourceError(f"{url} took over {deadline_s:g} s to download", "the server is too slow; " + _RETRY_HINT)
    return bytes(body)


def _local_path(url: str) -> Path | None:
    """The file a ``file://`` URL or a plain path names; None for anything with another scheme."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed [IPv6 literal in the host
        raise InputError(f"malformed image URL {url[:80]!r}: {exc}", "fix the URL in the source") from None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InputError(f"{url} names a file on another machine", "copy the file here and use its path")
        return Path(url2pathname(parts.path))
    if parts.scheme == "" or (len(parts.scheme) == 1 and os.name == "nt"):  # C:\... is a path on Windows
        return Path(url)
    return None


def _atomic_write(path: Path, data: bytes) -> None:
    # A temp file beside the target then os.replace: a crash never leaves half a file under the final name.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:12]}-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


__all__ = ["CachedImage", "FetchReport", "ImageCache", "inspect_image", "sniff", "warm_cache"]


def warm_photos(catalog: CatalogStore, settings: Settings) -> dict[str, Any]:
    """Download (or copy in) every photo not cached yet; a broken one is recorded, never fatal."""
    with ImageCache(settings) as cache:
        report = warm_cache(catalog, cache)
    return {"cached": report.cached, "broken": report.broken}
