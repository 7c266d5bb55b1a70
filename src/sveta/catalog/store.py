"""The catalog's read/write API: upserts keyed by (source, external id), crawl runs, image state."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from sveta.catalog.keyword_index import refresh_keywords
from sveta.catalog.models import CrawlRun, Image, Product, Source, utcnow
from sveta.catalog.records import AttributeRecord, ProductRecord
from sveta.catalog.writes import apply_record, fingerprint, insert_new
from sveta.errors import CatalogError


@dataclass(slots=True)
class PreparedProduct:
    """A record plus what the pipeline derived from it (text attributes and the resolved columns)."""

    record: ProductRecord
    fingerprint: str = ""  # what decides "changed" (default: the record's own fingerprint)
    text_attributes: list[AttributeRecord] = field(default_factory=list)
    gender: str | None = None
    category: str | None = None
    colour: str | None = None


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
    """One catalog database; cheap to create, safe to share between threads (one session per call).

    ``keyword_index=False`` leaves the keyword index (``catalog/keyword_index.py``) out of product writes; it exists
    to measure what keeping it costs, and leaves the index stale until ``rebuild_keywords``.
    """

    def __init__(self, engine: Engine, *, keyword_index: bool = True) -> None:
        self.engine = engine
        self.keyword_index = keyword_index
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except OperationalError as exc:
                session.rollback()
                raise CatalogError(f"catalog database error: {exc.orig}", "check SVETA_DATABASE_URL") from exc
            except IntegrityError as exc:
                session.rollback()
                raise CatalogError(
                    f"the catalog refused a write: {exc.orig}",
                    "another process may be writing the same products; run one ingest per source at a time",
                ) from exc
            except BaseException:
                session.rollback()
                raise

    # -- sources and crawl runs -------------------------------------------------------------------

    def ensure_source(self, name: str, kind: str, location: str) -> int:
        with self.session() as s:
            source = s.scalar(select(Source).where(Source.name == name))
            if source is None:
                source = Source(name=name, kind=kind, location=location)
                s.add(source)
                s.flush()
            elif source.location != location:
                source.location = location
            return source.id

    def start_run(self, source_id: int) -> int:
        """Open a crawl run; refuses while another live process ingests the source, marks dead runs interrupted."""
        with self.session() as s:
            running = s.scalars(select(CrawlRun).where(CrawlRun.source_id == source_id, CrawlRun.status == "running"))
            for run in running:
                if _alive(run):
                    raise CatalogError(
                        f"another ingest of this source is running (run {run.id}, pid {run.pid} on {run.host}, "
                        f"started {run.started_at:%Y-%m-%d %H:%M})",
                        "wait for it to finish; one ingest per source at a time",
                    )
                run.status, run.finished_at = "interrupted", utcnow()
            new_run = CrawlRun(source_id=source_id, host=socket.gethostname(), pid=os.getpid())
            s.add(new_run)
            s.flush()
            return new_run.id

    def finish_run(self, run_id: int, status: str, **counts: object) -> None:
        with self.session() as s:
            s.execute(
                update(CrawlRun).where(CrawlRun.id == run_id).values(status=status, finished_at=utcnow(), **counts)
            )

    def runs(self, source_name: str | None = None, limit: int = 20) -> list[CrawlRun]:
        with self.session() as s:
            query = select(CrawlRun).options(selectinload(CrawlRun.source)).order_by(CrawlRun.id.desc())
            if source_name:
                query = query.join(Source).where(Source.name == source_name)
            return list(s.scalars(query.limit(limit)))

    # -- products ---------------------------------------------------------------------------------

    def upsert_batch(self, source_id: int, batch: Sequence[PreparedProduct]) -> BatchResult:
        """Insert new products, rewrite changed ones, leave unchanged ones untouched (no write at all)."""
        result = BatchResult()
        ids = [p.record.external_id for p in batch]
        with self.session() as s:
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
                    new.append(prepared)
                elif row.fingerprint != fingerprint(prepared) or row.gone_at is not None:
                    changed_ids.append((row.id, prepared))
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

    def mark_gone(self, source_id: int, seen: set[str]) -> int:
        """Products of the source not seen in a complete run become unavailable (never deleted)."""
        with self.session() as s:
            rows = s.execute(
                select(Product.id, Product.external_id).where(Product.source_id == source_id, Product.gone_at.is_(None))
            ).all()
            gone = [pid for pid, ext in rows if ext not in seen]
            for chunk in _chunks(gone, 500):
                s.execute(update(Product).where(Product.id.in_(chunk)).values(available=False, gone_at=utcnow()))
            return len(gone)

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
        query = (
            select(
                Image.id,
                Image.product_id,
                Image.local_path,
                Image.sha256,
                Product.category,
                Product.gender,
                Product.colour,
                Product.brand,
                Source.name,
                Product.price_min,
                Product.available,
            )
            .join(Product, Image.product_id == Product.id)
            .join(Source, Product.source_id == Source.id)
            .where(Image.status == "cached")
            .order_by(Image.id)
        )
        with self.session() as s:
            return [IndexableImage(*row) for row in s.execute(query)]  # type: ignore[arg-type]

    # -- images -----------------------------------------------------------------------------------

    def images_to_fetch(self, *, retry_broken: bool = False, limit: int | None = None) -> list[tuple[int, str]]:
        """(image id, url) of images not yet in the cache, in catalog order."""
        states = ["pending", "broken"] if retry_broken else ["pending"]
        with self.session() as s:
            query = select(Image.id, Image.url).where(Image.status.in_(states)).order_by(Image.id)
            return [(i, u) for i, u in s.execute(query.limit(limit))]

    def mark_image_cached(self, image_id: int, *, sha256: str, local_path: str, width: int, height: int) -> None:
        with self.session() as s:
            s.execute(
                update(Image)
                .where(Image.id == image_id)
                .values(
                    status="cached",
                    sha256=sha256,
                    local_path=local_path,
                    width=width,
                    height=height,
                    error=None,
                    fetched_at=utcnow(),
                )
            )

    def mark_image_broken(self, image_id: int, reason: str) -> None:
        with self.session() as s:
            s.execute(
                update(Image).where(Image.id == image_id).values(status="broken", error=reason, fetched_at=utcnow())
            )


_URL_HINT = "check SVETA_DATABASE_URL (or SVETA_DATA_DIR for the default SQLite file) and that the server is up"


def open_catalog(url: str, *, migrate: bool = True, keyword_index: bool = True) -> CatalogStore:
    """Connect to the catalog at ``url`` and bring its schema to the newest migration (see CatalogStore)."""
    engine = _engine(url)
    if migrate:
        from sveta.catalog.migrate import upgrade

        try:
            upgrade(engine)
        except (OperationalError, InterfaceError) as exc:
            safe = engine.url.render_as_string(hide_password=True)
            raise CatalogError(f"cannot open the catalog database {safe}: {exc.orig}", _URL_HINT) from exc
    return CatalogStore(engine, keyword_index=keyword_index)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except Exception as exc:  # bad URL or missing driver
        shown = redacted_url(url)
        raise CatalogError(
            f"cannot use database URL {shown!r}: {str(exc).replace(url, shown)}",
            "check SVETA_DATABASE_URL; for Postgres run: pip install 'sveta[postgres]'",
        ) from exc


def _ensure_sqlite_dir(url: str) -> None:
    from pathlib import Path

    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(
                f"cannot create the catalog folder {Path(path).parent}: {exc.strerror}", _URL_HINT
            ) from exc


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    # WAL lets readers (the API) go on while an ingest writes; foreign keys make cascades real.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


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


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = ["BatchResult", "CatalogStore", "IndexableImage", "PreparedProduct", "open_catalog", "redacted_url"]


def redacted_url(url: str) -> str:
    """The URL with its password masked: error messages end up in logs and terminals."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even parseable: show only the scheme
        return url.split("://", 1)[0] + "://..."
