"""The catalog's read/write API: upserts keyed by (source, external id), crawl runs, image state."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import TypeVar

from sqlalchemy import Engine, bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from sveta.catalog.engine import URL_HINT, catalog_engine, redacted_url
from sveta.catalog.image_rows import indexable_query
from sveta.catalog.keyword_index import refresh_keywords
from sveta.catalog.models import CrawlRun, Image, Product, Source, utcnow
from sveta.catalog.records import AttributeRecord, ProductRecord
from sveta.catalog.sync_reads import fingerprints_query, live_query
from sveta.catalog.transactions import WRITE, Retries, catalog_error, locked, retryable
from sveta.catalog.writes import apply_record, fingerprint, insert_new
from sveta.errors import CatalogError

T = TypeVar("T")
_GROWN_TABLES = ("products", "variants", "images", "attributes", "product_keywords")  # what an ingest adds rows to
BUSY_TIMEOUT_S = 30.0  # SQLite's busy timeout when the caller names none: Settings.db_busy_timeout_s's default
__all__ = ["BatchResult", "CatalogStore", "IndexableImage", "IngestRunning", "PreparedProduct", "open_catalog"]
__all__ += ["redacted_url"]  # re-exported from catalog/engine.py: cli/catalog.py and copy.py import it from here


class IngestRunning(CatalogError):
    """Another live process is ingesting the source: one ingest per source at a time (nothing was written)."""


@dataclass(slots=True)
class PreparedProduct:
    """A record plus what the pipeline derived from it (text attributes and the resolved columns)."""

    record: ProductRecord
    fingerprint: str = ""  # what decides "changed" (default: the record's own fingerprint)
    text_attributes: list[AttributeRecord] = field(default_factory=list)
    gender: str | None = None
    category: str | None = None
    colour: str | None = None
    derived: bool = True  # False: only the fingerprint is set (the ingest found it unchanged), see upsert_batch


@dataclass(slots=True)
class IndexableImage:
    image_id: int
    product_id: int
    local_path: str
    sha256: str
    category: str | None
    gender: str | None
    colour: str | None
    brand: str | None
    source: str
    price: float | None
    available: bool


@dataclass(slots=True)
class BatchResult:
    new: int = 0
    changed: int = 0
    unchanged: int = 0


class CatalogStore:
    """One catalog database; cheap to create, safe to share between threads and processes (one session per call).

    Reads go through ``session()``; writes through ``write()``, each a short transaction that is retried while
    other writers are in the way (``catalog/transactions.py``). ``keyword_index=False`` leaves the keyword index
    (``catalog/keyword_index.py``) out of product writes; it exists to measure what keeping it costs, and leaves
    the index stale until ``rebuild_keywords``.
    """

    def __init__(self, engine: Engine, *, keyword_index: bool = True, retries: Retries | None = None) -> None:
        self.engine = engine
        self.keyword_index = keyword_index
        self.retries = retries or Retries()
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writes = sessionmaker(engine.execution_options(**WRITE), expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction to read in (tests also write in it where they are the only writer)."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except (OperationalError, IntegrityError) as exc:
                session.rollback()
                raise catalog_error(exc, self.retries) from exc
            except BaseException:
                session.rollback()
                raise

    def write(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in one write transaction, committed; run again (from the start, so ``work`` must
        read what it decides on) while the database says another writer was in the way."""

        def once() -> T:
            with self._writes() as session:  # closing it rolls back whatever did not commit
                result = work(session)
                session.commit()
                return result

        try:
            return self.retries.run(once)
        except (OperationalError, IntegrityError) as exc:
            raise catalog_error(exc, self.retries, self.retries.attempts if retryable(exc) else 1) from exc

    # -- sources and crawl runs -------------------------------------------------------------------

    def ensure_source(self, name: str, kind: str, location: str) -> int:
        """The source's id, registered now if it is new."""
        return self.register_source(name, kind, location)[0]

    def register_source(self, name: str, kind: str, location: str) -> tuple[int, bool]:
        """The source's id and whether this call registered it; a known one gets ``location``. Two registering one
        name at once: PostgreSQL refuses the second insert, and its retry finds the first's row."""

        def work(s: Session) -> tuple[int, bool]:
            source = s.scalar(select(Source).where(Source.name == name))
            if source is not None:
                if source.location != location:
                    source.location = location
                return source.id, False
            source = Source(name=name, kind=kind, location=location)
            s.add(source)
            s.flush()
            return source.id, True

        return self.write(work)

    def start_run(self, source_id: int) -> int:
        """Open a crawl run; refuses while another live process ingests the source, marks dead runs interrupted."""

        def work(s: Session) -> int:
            # PostgreSQL: the source's row lock makes check-then-insert one step (SQLite's BEGIN IMMEDIATE already is).
            s.execute(select(Source.id).where(Source.id == source_id).with_for_update())
            running = s.scalars(select(CrawlRun).where(CrawlRun.source_id == source_id, CrawlRun.status == "running"))
            for run in running:
                if _alive(run):
                    raise IngestRunning(
                        f"another ingest of this source is running (run {run.id}, pid {run.pid} on {run.host}, "
                        f"started {run.started_at:%Y-%m-%d %H:%M})",
                        "wait for it to finish; one ingest per source at a time",
                    )
                run.status, run.finished_at = "interrupted", utcnow()
            new_run = CrawlRun(source_id=source_id, host=socket.gethostname(), pid=os.getpid())
            s.add(new_run)
            s.flush()
            return new_run.id

        return self.write(work)

    def finish_run(self, run_id: int, status: str, **counts: object) -> None:
        done = update(CrawlRun).where(CrawlRun.id == run_id).values(status=status, finished_at=utcnow(), **counts)
        self.write(lambda s: s.execute(done))

    def runs(self, source_name: str | None = None, limit: int = 20) -> list[CrawlRun]:
        with self.session() as s:
            query = select(CrawlRun).options(selectinload(CrawlRun.source)).order_by(CrawlRun.id.desc())
            if source_name:
                query = query.join(Source).where(Source.name == source_name)
            return list(s.scalars(query.limit(limit)))

    # -- products ---------------------------------------------------------------------------------

    def stored_fingerprints(self, source_id: int, external_ids: list[str]) -> dict[str, str]:
        """The fingerprints of those products of the source that are stored and not gone."""
        query = fingerprints_query(source_id, external_ids, self.engine.dialect.name)
        with self.session() as s:
            return {ext: held for ext, held in s.connection().execute(query) if held}

    def set_fingerprints(self, source_id: int, fingerprints: dict[str, str]) -> None:
        """Store new fingerprints of unchanged products (a reader that now digests its rows): nothing else moves."""

        def work(s: Session) -> None:
            statement = (
                update(Product)
                .where(Product.source_id == source_id, Product.external_id == bindparam("ext"))
                .values(fingerprint=bindparam("fp"))
            )
            s.connection().execute(statement, [{"ext": e, "fp": f} for e, f in fingerprints.items()])

        self.write(work)

    def upsert_batch(
        self,
        source_id: int,
        batch: Sequence[PreparedProduct],
        derive: Callable[[ProductRecord, str], PreparedProduct] | None = None,
    ) -> BatchResult:
        """Insert new products, rewrite changed ones, leave unchanged ones untouched (no write at all). A product
        given underived (``derived=False``) that turns out new or changed is derived with ``derive`` first."""
        ids = [p.record.external_id for p in batch]

        def full(prepared: PreparedProduct) -> PreparedProduct:
            if prepared.derived:
                return prepared
            if derive is None:
                raise ValueError(f"product {prepared.record.external_id!r} changed but was not derived")
            return derive(prepared.record, prepared.fingerprint)

        def work(s: Session) -> BatchResult:
            result = BatchResult()
            existing = {
                row.external_id: row
                for row in s.execute(
                    select(Product.id, Product.external_id, Product.fingerprint, Product.gone_at).where(
                        Product.source_id == source_id, Product.external_id.in_(ids)
                    )
                )
            }
            changed_ids, new = [], []
            for prepared in batch:
                row = existing.get(prepared.record.external_id)
                if row is None:
                    new.append(full(prepared))
                elif row.fingerprint != fingerprint(prepared) or row.gone_at is not None:
                    changed_ids.append((row.id, full(prepared)))
                else:
                    result.unchanged += 1
            new_ids = insert_new(s, source_id, new)
            result.new = len(new)
            for product in _load_full(s, [pid for pid, _ in changed_ids]):
                apply_record(product, dict(changed_ids)[product.id])
                result.changed += 1
            if self.keyword_index:
                s.flush()
                refresh_keywords(s.connection(), [*new_ids, *(pid for pid, _ in changed_ids)])
            return result

        return self.write(work)

    def mark_gone(self, source_id: int, seen: set[str]) -> int:
        """Products of the source not seen in a complete run become unavailable (never deleted)."""

        def work(s: Session) -> int:
            gone = [pid for pid, ext in s.execute(live_query(source_id, self.engine.dialect.name)) if ext not in seen]
            for chunk in _chunks(gone, 500):
                s.execute(update(Product).where(Product.id.in_(chunk)).values(available=False, gone_at=utcnow()))
            return len(gone)

        return self.write(work)

    def refresh_statistics(self) -> None:
        """Bring the query planner's statistics up to date after an ingest grew the catalog.

        PostgreSQL without statistics guessed the per-batch look-up of ``upsert_batch`` matched most of the source
        and scanned it (O(catalog) per batch); SQLite without ``sqlite_stat1`` guesses too. SQLite's ANALYZE reads
        every index whole (8.5 s at a million products), one table per write transaction, so that other writers
        wait for one table at most; PostgreSQL's samples 30,000 rows a table.
        """
        if self.engine.dialect.name == "postgresql":
            self.write(lambda s: s.execute(text(f"ANALYZE {', '.join(_GROWN_TABLES)}")))
            return
        for table in _GROWN_TABLES[:-1]:  # the keyword table is FTS5, which keeps its own
            self.write(functools.partial(_analyse_whole, table=table))

    def get_product(self, product_id: int) -> Product | None:
        with self.session() as s:
            return _load_full(s, [product_id])[0] if s.get(Product, product_id) else None

    def find_product(self, external_id: str, source_name: str | None = None) -> Product | None:
        """A product by its source's own id (the first match when several sources use the id)."""
        with self.session() as s:
            query = select(Product.id).where(Product.external_id == external_id)
            if source_name:
                query = query.join(Source).where(Source.name == source_name)
            pid = s.scalar(query.order_by(Product.id).limit(1))
        return self.get_product(pid) if pid is not None else None

    def count_products(self, source_name: str | None = None) -> int:
        with self.session() as s:
            query = select(func.count(Product.id))
            if source_name:
                query = query.join(Source).where(Source.name == source_name)
            return int(s.scalar(query) or 0)

    def indexable_images(self) -> list[IndexableImage]:
        """Every cached image with what the index filters on, in catalog order."""
        with self.session() as s:
            return [IndexableImage(*row) for row in s.connection().execute(indexable_query())]

    # -- images -----------------------------------------------------------------------------------

    def images_to_fetch(self, *, retry_broken: bool = False, limit: int | None = None) -> list[tuple[int, str]]:
        """(image id, url) of images not yet in the cache, in catalog order."""
        states = ["pending", "broken"] if retry_broken else ["pending"]
        with self.session() as s:
            query = select(Image.id, Image.url).where(Image.status.in_(states)).order_by(Image.id)
            return [(i, u) for i, u in s.execute(query.limit(limit))]

    def mark_image_cached(self, image_id: int, *, sha256: str, local_path: str, width: int, height: int) -> None:
        values = {"sha256": sha256, "local_path": local_path, "width": width, "height": height, "error": None}
        cached = update(Image).where(Image.id == image_id).values(status="cached", fetched_at=utcnow(), **values)
        self.write(lambda s: s.execute(cached))

    def mark_image_broken(self, image_id: int, reason: str) -> None:
        broken = update(Image).where(Image.id == image_id).values(status="broken", error=reason, fetched_at=utcnow())
        self.write(lambda s: s.execute(broken))


def open_catalog(
    url: str, *, migrate: bool = True, keyword_index: bool = True, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> CatalogStore:
    """Connect to the catalog at ``url`` and bring its schema to the newest migration (see CatalogStore).

    ``busy_timeout_s`` (SVETA_DB_BUSY_TIMEOUT_S): how long a SQLite write waits for another writer's lock before
    it is retried.
    """
    engine, retries = catalog_engine(url, busy_timeout_s), Retries(busy_timeout_s=busy_timeout_s)
    if migrate:
        from sveta.catalog.migrate import upgrade

        try:
            retries.run(lambda: upgrade(engine))
        except (OperationalError, InterfaceError) as exc:
            if locked(exc):
                raise catalog_error(exc, retries, retries.attempts) from exc
            safe = engine.url.render_as_string(hide_password=True)
            raise CatalogError(f"cannot open the catalog database {safe}: {exc.orig}", URL_HINT) from exc
    return CatalogStore(engine, keyword_index=keyword_index, retries=retries)


def _load_full(s: Session, ids: Sequence[int]) -> list[Product]:
    if not ids:
        return []
    query = (
        select(Product)
        .where(Product.id.in_(ids))
        .options(
            selectinload(Product.variants),
            selectinload(Product.images),
            selectinload(Product.attributes),
            selectinload(Product.source),
        )
    )
    return list(s.scalars(query))


def _alive(run: CrawlRun) -> bool:
    """Is the process of a "running" run still there? Runs of other hosts count as alive for six hours."""
    if run.host != socket.gethostname():
        started = run.started_at if run.started_at.tzinfo else run.started_at.replace(tzinfo=UTC)
        return utcnow() - started < timedelta(hours=6)
    if not run.pid:
        return False
    try:
        os.kill(run.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _analyse_whole(s: Session, table: str) -> None:
    # Not PRAGMA optimize: before SQLite 3.46 it never analyses a table that has no statistics yet. Not
    # analysis_limit: it samples the first rows of each index, so a key of two values (``available``) or a dozen (an
    # attribute's name) looked like ~1,000 rows a value, and SQLite walked half a million products for one page.
    s.execute(text("PRAGMA analysis_limit = 0"))
    s.execute(text(f"ANALYZE {table}"))


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
