"""Runs one ingest: records -> text attributes -> batched idempotent upserts -> gone marking -> crawl run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sveta.catalog.records import ProductRecord, SourceRow
from sveta.catalog.store import BatchResult, CatalogStore, PreparedProduct
from sveta.errors import SvetaError
from sveta.progress import Advance


@dataclass
class CrawlState:
    """What a reader tells the pipeline while it reads: pages fetched and notes for the user."""

    pages: int = 0
    notes: list[str] = field(default_factory=list)
    complete: bool = True  # False when the reader knows it did not see every product (nothing may be marked gone)


@dataclass
class IngestReport:
    source: str
    run_id: int
    status: str = "running"
    pages: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    gone: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, batch: BatchResult) -> None:
        self.new += batch.new
        self.changed += batch.changed
        self.unchanged += batch.unchanged

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PlannerStatistics:
    """Refreshes the database's planner statistics as an ingest grows the catalog (``refresh_statistics``): once
    the catalog has doubled since the last refresh during the ingest (a large first ingest), and at its end when it
    grew by more than ``END_GROWTH``. Stale statistics made PostgreSQL scan the whole source per batch."""

    END_GROWTH = 0.1
    FIRST_REFRESH = 5000  # rows: below this every plan is cheap

    def __init__(self, catalog: CatalogStore, rows: int) -> None:
        self.catalog, self.rows, self.added = catalog, rows, 0

    def added_rows(self, new: int) -> None:
        self.added += new
        if self.added >= max(self.rows, self.FIRST_REFRESH):
            self.refresh()

    def finish(self) -> None:
        if self.added > self.END_GROWTH * self.rows:
            self.refresh()

    def refresh(self) -> None:
        self.catalog.refresh_statistics()
        self.rows, self.added = self.rows + self.added, 0


def ingest_fingerprint(record: ProductRecord) -> str:
    """What decides "changed": the record's own fingerprint and the vocabulary's version (a new vocabulary
    re-derives every product's text attributes)."""
    from sveta.vocab.attributes import vocabulary

    return f"{record.fingerprint()}|{vocabulary().version}"


def item_fingerprint(item: ProductRecord | SourceRow) -> str:
    """A row's digest when the reader gives one (nothing is built to compare it), else the record's fingerprint."""
    if not isinstance(item, SourceRow):
        return ingest_fingerprint(item)
    from sveta.vocab.attributes import vocabulary

    return f"{item.digest}|{vocabulary().version}"


def prepare(record: ProductRecord, fingerprint: str | None = None) -> PreparedProduct:
    """Attach text attributes; resolve gender / category / colour (seller's word first, then the text's)."""
    from sveta.ingest.text_attributes import extract_text_attributes
    from sveta.vocab.reading import canonical

    text = extract_text_attributes(record.title, record.product_type, record.tags, record.description)
    seller = {a.name: a.value for a in record.attributes}
    found: dict[str, str] = {}
    for attr in text:  # the extractor lists the best value of each attribute first
        found.setdefault(attr.name, attr.value)

    def resolve(name: str, *given: str | None) -> str | None:
        for value in given:
            if value:
                return canonical(name, value)
        return found.get(name)

    return PreparedProduct(
        record=record,
        fingerprint=fingerprint or ingest_fingerprint(record),
        text_attributes=text,
        gender=resolve("gender", record.gender, seller.get("gender")),
        category=resolve("category", seller.get("category")),
        colour=resolve("colour", seller.get("colour")),
    )


def run_ingest(
    catalog: CatalogStore,
    *,
    name: str,
    kind: str,
    location: str,
    records: Iterable[ProductRecord | SourceRow],
    state: CrawlState | None = None,
    complete: bool = True,
    batch_size: int = 500,
    on_progress: Advance | None = None,
) -> IngestReport:
    """Store every record of one source; with ``complete``, products the source no longer has are marked gone.
    A ``SourceRow`` is built into its record only when its digest is not the stored fingerprint.

    Each batch is its own transaction, so a killed ingest keeps what it wrote and a rerun finishes the job
    without duplicates. Gone-marking happens only after the source was read to the end.
    """
    state = state or CrawlState()
    started = time.perf_counter()
    source_id = catalog.ensure_source(name, kind, location)
    report = IngestReport(source=name, run_id=catalog.start_run(source_id))
    seen: set[str] = set()
    statistics = PlannerStatistics(catalog, catalog.count_products())
    try:
        _store_all(catalog, source_id, records, seen, report, batch_size, on_progress, statistics)
        statistics.finish()
        if complete and state.complete:
            report.gone = catalog.mark_gone(source_id, seen)
        elif complete:
            state.notes.append("the source was not read completely, so no product was marked gone")
        report.status = "ok"
    except SvetaError as exc:
        report.status = "failed"
        report.errors.append(str(exc))
        raise
    except BaseException as exc:  # Ctrl-C or a bug: the run must not stay "running" forever
        report.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        report.errors.append(f"{type(exc).__name__}: {exc}")
        catalog.engine.dispose()  # an interrupted connection may still hold SQLite's write lock
        raise
    finally:
        report.pages, report.notes = state.pages, list(state.notes)
        report.seconds = round(time.perf_counter() - started, 3)
        _finish(catalog, report)
    return report


def _store_all(
    catalog: CatalogStore,
    source_id: int,
    records: Iterable[ProductRecord | SourceRow],
    seen: set[str],
    report: IngestReport,
    batch_size: int,
    on_progress: Advance | None,
    statistics: PlannerStatistics,
) -> None:
    batch: list[ProductRecord | SourceRow] = []

    def flush() -> None:
        fingerprints = {i.external_id: item_fingerprint(i) for i in batch}
        stored = catalog.stored_fingerprints(source_id, list(fingerprints))
        prepared = [] if _unchanged(fingerprints, stored) else _derived(catalog, source_id, batch, fingerprints, stored)
        if any(p.derived for p in prepared):
            result = catalog.upsert_batch(source_id, prepared, derive=_deriver(batch))
        else:  # every product as stored (an unchanged re-sync): no write transaction, no second read
            result = BatchResult(unchanged=len(batch))
        report.add(result)
        statistics.added_rows(result.new)
        if on_progress:
            on_progress(len(batch))
        batch.clear()

    try:
        for record in records:
            if record.external_id in seen:
                report.duplicates += 1
                continue
            seen.add(record.external_id)
            batch.append(record)
            if len(batch) >= batch_size:
                flush()
    except SvetaError:
        if batch:  # what the reader gave before its error is valid: keep it (but not after Ctrl-C or a bug)
            flush()
        raise
    if batch:
        flush()


def _unchanged(fingerprints: dict[str, str], stored: dict[str, str]) -> bool:
    """Every item of the batch is stored as it is: nothing to build, not even stand-ins. (Objects a batch holds
    outlive Python's young collections, so each added to the full collections of an unchanged re-sync.)"""
    return all(stored.get(external_id) == held for external_id, held in fingerprints.items())


def _derived(
    catalog: CatalogStore,
    source_id: int,
    items: list[ProductRecord | SourceRow],
    fingerprints: dict[str, str],
    stored: dict[str, str],
) -> list[PreparedProduct]:
    """The batch ready to store: an unchanged product (its stored fingerprint is the item's) is neither built nor
    derived again, so an unchanged re-sync skips reading rows into records and text extraction; ``upsert_batch``
    derives it should it change meanwhile."""
    out, adopted = [], {}
    for item in items:
        fingerprint, held = fingerprints[item.external_id], stored.get(item.external_id)
        if held == fingerprint:
            out.append(PreparedProduct(_unbuilt(item), fingerprint, derived=False))
            continue
        if not isinstance(item, SourceRow):
            out.append(prepare(item, fingerprint))
            continue
        record = item.build()
        if held is not None and held == ingest_fingerprint(record):  # stored from records before rows had digests
            adopted[item.external_id] = fingerprint
            out.append(PreparedProduct(record, fingerprint, derived=False))
        else:
            out.append(prepare(record, fingerprint))
    if adopted:  # the same products: only their fingerprints change, so the next re-sync need not build them
        catalog.set_fingerprints(source_id, adopted)
    return out


def _unbuilt(item: ProductRecord | SourceRow) -> ProductRecord:
    """The record, or a stand-in holding only the id of a row not built (``_deriver`` builds it if need be)."""
    if isinstance(item, ProductRecord):
        return item
    return ProductRecord(external_id=item.external_id, title="", raw=_STAND_IN)


_STAND_IN: dict[str, Any] = {}  # the raw of every stand-in: told apart by identity, whatever a real record holds


def _deriver(items: list[ProductRecord | SourceRow]) -> Callable[[ProductRecord, str], PreparedProduct]:
    """``prepare`` for ``upsert_batch``, building first a row that was not built because it looked unchanged."""
    rows = {i.external_id: i for i in items if isinstance(i, SourceRow)}

    def derive(record: ProductRecord, fingerprint: str) -> PreparedProduct:
        row = rows.get(record.external_id)
        return prepare(row.build() if row is not None and record.raw is _STAND_IN else record, fingerprint)

    return derive


def _finish(catalog: CatalogStore, report: IngestReport) -> None:
    counts = {k: getattr(report, k) for k in ("pages", "new", "changed", "unchanged", "gone")}
    catalog.finish_run(report.run_id, report.status, errors=report.errors, notes=report.notes, **counts)
