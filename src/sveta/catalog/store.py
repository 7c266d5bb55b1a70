"""The catalog's read/write API: upserts keyed by (source, external id), crawl runs, image state."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from sveta.catalog.models import Attribute, CrawlRun, Image, Product, Source, Variant, utcnow
from sveta.errors import CatalogError
from sveta.ingest.records import AttributeRecord, ImageRecord, ProductRecord, VariantRecord

T = TypeVar("T")

_MUTABLE_ORIGINS = ("seller", "text")  # image-origin attributes belong to the photo models, not to ingest


@dataclass(slots=True)
class PreparedProduct:
    """A record plus what the pipeline derived from it (text attributes and the resolved columns)."""

    record: ProductRecord
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
    """One catalog database; cheap to create, safe to share between threads (one session per call)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
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
        """Open a crawl run; runs left "running" by a killed process are marked interrupted first."""
        with self.session() as s:
            s.execute(
                update(CrawlRun)
                .where(CrawlRun.source_id == source_id, CrawlRun.status == "running")
                .values(status="interrupted", finished_at=utcnow())
            )
            run = CrawlRun(source_id=source_id)
            s.add(run)
            s.flush()
            return run.id

    def finish_run(self, run_id: int, status: str, **counts: object) -> None:
        with self.session() as s:
            s.execute(
                update(CrawlRun)
                .where(CrawlRun.id == run_id)
                .values(status=status, finished_at=utcnow(), **counts)
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
            changed_ids = []
            for prepared in batch:
                row = existing.get(prepared.record.external_id)
                if row is None:
                    s.add(_new_product(source_id, prepared))
                    result.new += 1
                elif row.fingerprint != prepared.record.fingerprint() or row.gone_at is not None:
                    changed_ids.append((row.id, prepared))
                else:
                    result.unchanged += 1
            for product in _load_full(s, [pid for pid, _ in changed_ids]):
                _apply(product, dict(changed_ids)[product.id])
                result.changed += 1
        return result

    def mark_gone(self, source_id: int, seen: set[str]) -> int:
        """Products of the source not seen in a complete run become unavailable (never deleted)."""
        with self.session() as s:
            rows = s.execute(
                select(Product.id, Product.external_id).where(
                    Product.source_id == source_id, Product.gone_at.is_(None)
                )
            ).all()
            gone = [pid for pid, ext in rows if ext not in seen]
            for chunk in _chunks(gone, 500):
                s.execute(
                    update(Product).where(Product.id.in_(chunk)).values(available=False, gone_at=utcnow())
                )
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
                Image.id, Image.product_id, Image.local_path, Image.sha256, Product.category, Product.gender,
                Product.colour, Product.brand, Source.name, Product.price_min, Product.available,
            )
            .join(Product, Image.product_id == Product.id)
            .join(Source, Product.source_id == Source.id)
            .where(Image.status == "cached")
            .order_by(Image.id)
        )
        with self.session() as s:
            return [IndexableImage(*row) for row in s.execute(query)]

    # -- images -----------------------------------------------------------------------------------

    def images_to_fetch(
        self, *, retry_broken: bool = False, limit: int | None = None
    ) -> list[tuple[int, str]]:
        """(image id, url) of images not yet in the cache, in catalog order."""
        states = ["pending", "broken"] if retry_broken else ["pending"]
        with self.session() as s:
            query = select(Image.id, Image.url).where(Image.status.in_(states)).order_by(Image.id)
            return [(i, u) for i, u in s.execute(query.limit(limit))]

    def mark_image_cached(
        self, image_id: int, *, sha256: str, local_path: str, width: int, height: int
    ) -> None:
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
                update(Image)
                .where(Image.id == image_id)
                .values(status="broken", error=reason, fetched_at=utcnow())
            )


def open_catalog(url: str, *, migrate: bool = True) -> CatalogStore:
    """Connect to the catalog at ``url`` and bring its schema to the newest migration."""
    engine = _engine(url)
    if migrate:
        from sveta.catalog.migrate import upgrade

        upgrade(engine)
    return CatalogStore(engine)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except Exception as exc:  # bad URL or missing driver
        raise CatalogError(
            f"cannot use database URL {url!r}: {exc}",
            "check SVETA_DATABASE_URL; for Postgres run: pip install 'sveta[postgres]'",
        ) from exc


def _ensure_sqlite_dir(url: str) -> None:
    from pathlib import Path

    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


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


def _new_product(source_id: int, prepared: PreparedProduct) -> Product:
    product = Product(source_id=source_id, external_id=prepared.record.external_id)
    _apply(product, prepared)
    return product


def _apply(product: Product, prepared: PreparedProduct) -> None:
    """Copy a prepared record onto a product row, keeping cached images and photo attributes."""
    rec = prepared.record
    product_fields = {
        "handle": rec.handle,
        "title": rec.title,
        "description": rec.description,
        "brand": rec.brand,
        "product_type": rec.product_type,
        "tags": list(rec.tags),
        "currency": rec.currency,
        "url": rec.url,
        "available": rec.available,
        "source_created_at": rec.created_at,
        "source_updated_at": rec.updated_at,
        "fingerprint": rec.fingerprint(),
        "raw": rec.raw,
        "gender": prepared.gender,
        "category": prepared.category,
        "colour": prepared.colour,
        "gone_at": None,
    }
    for name, value in product_fields.items():
        setattr(product, name, value)
    product.price_min, product.price_max = rec.price_range()
    now = utcnow()
    product.last_seen_at = product.updated_at = now
    _sync_variants(product, rec.variants)
    _sync_images(product, rec.images)
    _sync_attributes(product, [*rec.attributes, *prepared.text_attributes])


def _sync_variants(product: Product, records: Iterable[VariantRecord]) -> None:
    by_id = {v.external_id: v for v in product.variants}
    kept = []
    for rec in _unique(records, key=lambda r: r.external_id):
        variant = by_id.get(rec.external_id) or Variant(external_id=rec.external_id)
        for name in (
            "title",
            "options",
            "size",
            "colour",
            "sku",
            "price",
            "compare_at_price",
            "available",
            "position",
        ):
            setattr(variant, name, getattr(rec, name))
        kept.append(variant)
    product.variants = kept


def _sync_images(product: Product, records: Iterable[ImageRecord]) -> None:
    by_url = {i.url: i for i in product.images}
    kept = []
    for rec in _unique(records, key=lambda r: r.url):
        image = by_url.get(rec.url) or Image(url=rec.url)
        image.position, image.alt, image.variant_ids = rec.position, rec.alt, list(rec.variant_ids)
        if image.status != "cached":  # the cache knows the real size; the feed's claim is a hint
            image.width, image.height = rec.width, rec.height
        kept.append(image)
    product.images = kept


def _sync_attributes(product: Product, records: Iterable[AttributeRecord]) -> None:
    # Reuse rows with the same key: deleting and re-inserting one key in a flush breaks the unique constraint.
    current = {(a.name, a.origin, a.value): a for a in product.attributes}
    kept = [a for a in product.attributes if a.origin not in _MUTABLE_ORIGINS]
    for rec in _unique(records, key=lambda r: (r.name, r.origin, r.value)):
        attr = current.get((rec.name, rec.origin, rec.value)) or Attribute(
            name=rec.name, value=rec.value, origin=rec.origin, created_at=utcnow()
        )
        attr.confidence, attr.evidence, attr.model_version = rec.confidence, rec.evidence, rec.model_version
        kept.append(attr)
    product.attributes = kept


def _unique(items: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
    seen: dict[Hashable, T] = {}
    for item in items:
        seen.setdefault(key(item), item)
    return list(seen.values())


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = ["BatchResult", "CatalogStore", "IndexableImage", "PreparedProduct", "open_catalog"]
