"""The doctor's checks of the data home, the catalog database and its schema, and the image cache."""

from __future__ import annotations

import os
from pathlib import Path

from sveta.catalog.health import open_checked, redact_url, schema_state, url_password
from sveta.catalog.photos import photo_counts
from sveta.catalog.store import CatalogStore
from sveta.errors import SvetaError
from sveta.ops.doctor.check import Check
from sveta.settings import Settings

PG_FIX = (
    "check that the server is up and that SVETA_DATABASE_URL reads "
    "postgresql+psycopg://USER:PASSWORD@HOST:5432/DBNAME; the driver: pip install 'sveta[postgres]'"
)
SQLITE_FIX = "check SVETA_DATA_DIR (the SQLite catalog is catalog.db in it) or SVETA_DATABASE_URL"
URL_FIX = "check SVETA_DATABASE_URL, that its driver is installed and that the server is up"
CONNECT_TIMEOUT_S = 5


RESTORE_MARKER = ".sveta-restore-unfinished"  # written by ops/restore.py while it fills a home


def check_data_home(settings: Settings) -> Check:
    home = settings.data_dir.resolve()
    if not home.exists():
        fix = "any sveta command creates it (sveta demo, sveta ingest ...); or point SVETA_DATA_DIR at yours"
        return Check("data home", False, f"{home} does not exist", fix)
    if not home.is_dir() or not os.access(home, os.W_OK | os.X_OK):
        return Check("data home", False, f"{home} is not a writable folder", f"check its permissions: ls -ld {home}")
    if (home / RESTORE_MARKER).exists():  # a restore that was killed half-way: the home is neither old nor new
        fix = f"empty {home} and run sveta restore again"
        return Check("data home", False, f"a restore into {home} did not finish", fix)
    return Check("data home", True, f"{home} (writable)")


def scrub(text: str, url: str) -> str:
    """An error text with the URL's password (as given and URL-quoted) taken out."""
    from urllib.parse import quote

    password = url_password(url)
    text = text.replace(url, redact_url(url))
    for secret in {password, quote(password, safe="")} - {""}:
        text = text.replace(secret, "***")
    return text


def check_catalog(settings: Settings) -> tuple[CatalogStore | None, list[Check]]:
    """(the store when its schema is at head, else None; [reachable, schema]): connects, never migrates."""
    url = settings.catalog_url
    shown, fix = redact_url(url), _catalog_fix(url)
    if _missing_sqlite_file(url):
        ingest = "ingest a source (sveta ingest csv FILE, sveta demo), or " + SQLITE_FIX
        return None, [Check("catalog", False, f"{shown}: no catalog database yet", ingest), _skip("catalog schema")]
    try:
        store = open_checked(url, CONNECT_TIMEOUT_S)
    except Exception as exc:  # any driver / network error is reported, never raised
        return None, [Check("catalog", False, f"{shown}: {scrub(_reason(exc), url)}", fix), _skip("catalog schema")]
    schema = _schema_check(store)
    if not schema.ok:
        store.engine.dispose()
        return None, [Check("catalog", True, f"{shown} (answers)"), schema]
    return store, [Check("catalog", True, f"{shown}: {_catalog_counts(store)}"), schema]


def _catalog_fix(url: str) -> str:
    if url.startswith("sqlite"):
        return SQLITE_FIX
    return PG_FIX if url.startswith("postgres") else URL_FIX


def _missing_sqlite_file(url: str) -> bool:
    if not url.startswith("sqlite"):
        return False
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    return bool(path) and path != ":memory:" and not Path(path).is_file()


def _reason(exc: Exception) -> str:
    if isinstance(exc, SvetaError):
        return exc.message
    orig = getattr(exc, "orig", None)
    return " ".join(str(orig or exc).split())[:300]


def _catalog_counts(store: CatalogStore) -> str:
    photos = ", ".join(f"{n} {status}" for status, n in sorted(photo_counts(store).items())) or "none"
    return f"{store.count_products()} products; photos: {photos}"


def _schema_check(store: CatalogStore) -> Check:
    """The Alembic revision of the database against this sveta's head."""
    try:
        state = schema_state(store)
    except Exception as exc:
        return Check("catalog schema", False, f"cannot read the schema version: {_reason(exc)}", SQLITE_FIX)
    now, head = state.current, state.head
    if now == head:
        return Check("catalog schema", True, f"at head ({head})")
    if now is None:
        return Check("catalog schema", False, "empty database (no sveta tables)", "sveta catalog stats creates them")
    if now not in state.known:
        return Check("catalog schema", False, f"version {now} is newer than this sveta", "upgrade sveta")
    migrate = "any command migrates it on open, e.g. sveta catalog stats"
    return Check("catalog schema", False, f"version {now}, head is {head}", migrate)


def check_image_cache(settings: Settings) -> Check:
    folder = settings.image_cache_dir.resolve()
    if not folder.exists():
        return Check("image cache", True, f"{folder} (made on the first download; local photos are not copied)")
    if not os.access(folder, os.W_OK | os.X_OK):
        return Check("image cache", False, f"{folder} is not writable", f"check its permissions: ls -ld {folder}")
    return Check("image cache", True, f"{folder} (writable)")


def _skip(name: str, detail: str = "skipped: the catalog did not answer") -> Check:
    return Check(name, None, detail)


# -- embedder -------------------------------------------------------------------------------------
