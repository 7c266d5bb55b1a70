"""`sveta shopify push`: the export's metafields written to a store through metafieldsSet, batched and resumable."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from sveta.catalog.pushes import Pushed, pushed_values, record_pushed
from sveta.ops.export import DEFAULT_MIN_CONFIDENCE, chosen_products
from sveta.ops.export_formats import NAMESPACE, Exported, metafield_key
from sveta.ops.shopify_admin import AdminClient

if TYPE_CHECKING:
    import httpx

    from sveta.catalog.store import CatalogStore
    from sveta.settings import Settings

SET_BATCH = 25  # metafieldsSet takes at most 25 metafields a call (Shopify's published limit)
SET_COST = 10  # a mutation's requested cost in Shopify's cost model
READ_BATCH = 25  # products per read, fewer when the store's bucket is small
READ_FIRST = 25  # sveta metafields read per product (one per attribute: far fewer exist)
METAFIELD_TYPE = "single_line_text_field"  # what the export's notes tell the merchant to define

SHOP = "query SvetaShop { shop { name myshopifyDomain } }"
_PRODUCT = f'id handle metafields(namespace: "{NAMESPACE}", first: {READ_FIRST}) {{ nodes {{ namespace key value }} }}'
BY_ID = f"query SvetaProducts($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on Product {{ {_PRODUCT} }} }} }}"
SET = (
    "mutation SvetaMetafieldsSet($metafields: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $metafields) "
    "{ metafields { namespace key value owner { ... on Product { id } } } "
    "userErrors { field message code elementIndex } } }"
)


@dataclass
class Planned:
    """One product to push: its catalog id, its handle on the store, its owner id when known, its metafields."""

    product_id: int
    handle: str
    gid: str | None
    values: dict[str, str]  # namespace.key -> value, e.g. sveta.colour -> Navy Blue


@dataclass(frozen=True, slots=True)
class Change:
    product: Planned
    gid: str
    key: str  # namespace.key
    value: str


@dataclass
class PushReport:
    """What a push did (or, without --apply, would do); ``as_dict`` is the stable `--json` shape."""

    store: str
    apply: bool
    products: int = 0
    metafields: dict[str, int] = field(default_factory=lambda: {"create": 0, "update": 0, "unchanged": 0})
    written: int = 0
    from_journal: int = 0  # products not read from the store: the journal holds every value of theirs
    gone: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0
    throttled_waits: int = 0
    waited_s: float = 0.0
    cost: dict[str, int] = field(default_factory=lambda: {"requested": 0, "actual": 0})
    retries: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def push_attributes(
    catalog: CatalogStore,
    settings: Settings,
    url: str,
    token: SecretStr,
    *,
    apply: bool = False,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    source: str | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> PushReport:
    """Compare each product's exported metafields with the store's and, with ``apply``, write what differs.
    Each acknowledged metafield is journalled at once, so a rerun after a kill writes none of them again."""
    started = time.perf_counter()
    products = chosen_products(catalog, min_confidence=min_confidence, source=source)
    with AdminClient(url, token, settings, client=client, sleep=sleep, clock=clock) as admin:
        report = PushReport(store=admin.store, apply=apply)
        admin.query(SHOP)  # a wrong token or an address that is no store stops here, before any work
        plan = _plan(products, admin.store)
        report.products = len(plan)
        journal = pushed_values(catalog, admin.store)
        current = _from_journal(plan, journal, report)
        current |= _read_store(admin, [p for p in plan if p.product_id not in current], report)
        changes = _diff(plan, current, report)
        if apply:
            _journal_held(catalog, admin.store, plan, current, journal)
            _write(admin, catalog, changes, report)
        _finish(report, admin)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _plan(products: list[Exported], store: str) -> list[Planned]:
    """The products with a value to push. One ingested from this very store has its Shopify id as source id."""
    plan = []
    for p in products:
        values = {f"{NAMESPACE}.{metafield_key(n)}": " ".join(v.value.split()) for n, v in p.values.items()}
        values = {k: v for k, v in values.items() if v}
        if values:
            own = p.row.source.lower() == store.lower() and p.row.external_id.isdigit()
            plan.append(Planned(p.row.product_id, p.handle, _gid(p.row.external_id) if own else None, values))
    return plan


def _gid(shopify_id: str) -> str:
    return f"gid://shopify/Product/{shopify_id}"


def _from_journal(
    plan: list[Planned], journal: dict[tuple[int, str], Pushed], report: PushReport
) -> dict[int, tuple[str, dict[str, str]]]:
    """Products whose every value the journal says the store acknowledged: not read again (reading a product's
    metafields costs a point each, the bulk of a rerun's cost). A value the merchant edited in the shop since is
    left alone, as a seller's value is."""
    known = {}
    for p in plan:
        rows = [journal.get((p.product_id, key)) for key in p.values]
        if all(r is not None and r.value == p.values[key] for r, key in zip(rows, p.values, strict=True)):
            known[p.product_id] = (rows[0].owner_gid if rows[0] else "", dict(p.values))
    report.from_journal = len(known)
    return known


def _read_store(admin: AdminClient, plan: list[Planned], report: PushReport) -> dict[int, tuple[str, dict[str, str]]]:
    """Per planned product found on the store: its owner id and its current sveta metafields. Products the store
    does not have (deleted, or never there under that handle) go to ``report.gone``."""
    per_product = 1 + READ_FIRST + 2  # Shopify's cost rule: an object 1, a connection 2 + its size
    size = READ_BATCH
    if admin.bucket is not None:
        size = max(1, min(READ_BATCH, int(admin.bucket.maximum // per_product) - 1))
    found: dict[int, tuple[str, dict[str, str]]] = {}
    by_id = [p for p in plan if p.gid]
    by_handle = [p for p in plan if not p.gid]
    for start in range(0, len(by_id), size):
        batch = by_id[start : start + size]
        data = admin.query(BY_ID, {"ids": [p.gid for p in batch]}, cost=1 + per_product * len(batch))
        found |= _found(batch, data.get("nodes") or [])
    for start in range(0, len(by_handle), size):
        batch = by_handle[start : start + size]
        data = admin.query(_by_handle(len(batch)), {f"h{i}": p.handle for i, p in enumerate(batch)},
                           cost=per_product * len(batch))  # fmt: skip
        found |= _found(batch, [data.get(f"p{i}") for i in range(len(batch))])
    report.gone += [p.handle for p in plan if p.product_id not in found]
    return found


def _by_handle(n: int) -> str:
    """One query with an aliased productByIdentifier per handle (productByHandle is deprecated)."""
    params = ", ".join(f"$h{i}: String!" for i in range(n))
    fields = " ".join(f"p{i}: productByIdentifier(identifier: {{handle: $h{i}}}) {{ {_PRODUCT} }}" for i in range(n))
    return f"query SvetaProductsByHandle({params}) {{ {fields} }}"


def _found(batch: list[Planned], nodes: list[Any]) -> dict[int, tuple[str, dict[str, str]]]:
    out = {}
    for planned, node in zip(batch, nodes, strict=False):
        if isinstance(node, dict) and node.get("id"):
            fields = (node.get("metafields") or {}).get("nodes") or []
            values = {f"{m.get('namespace') or NAMESPACE}.{m.get('key')}": m.get("value") or "" for m in fields}
            out[planned.product_id] = (str(node["id"]), values)
    return out


def _diff(plan: list[Planned], current: dict[int, tuple[str, dict[str, str]]], report: PushReport) -> list[Change]:
    """What differs from the store: a value it lacks (create), or holds otherwise (update); the rest unchanged."""
    changes = []
    owners: dict[str, Planned] = {}  # two catalog products (two sources) may find the same store product
    for p in plan:
        if p.product_id not in current:
            continue
        gid, held = current[p.product_id]
        first = owners.setdefault(gid, p)
        if first is not p:
            message = f"the same store product as {first.handle!r} (catalog id {first.product_id}): only its values"
            report.errors.append({"handle": p.handle, "key": "", "code": "DUPLICATE", "message": message})
            continue
        for key, value in p.values.items():
            kind = "unchanged" if held.get(key) == value else "create" if key not in held else "update"
            report.metafields[kind] += 1
            if kind != "unchanged":
                changes.append(Change(p, gid, key, value))
    return changes


def _journal_held(
    catalog: CatalogStore,
    store: str,
    plan: list[Planned],
    current: dict[int, tuple[str, dict[str, str]]],
    journal: dict[tuple[int, str], Pushed],
) -> None:
    """Values the store already holds but the journal lacks (a run killed between the store's answer and the
    journal's commit) are journalled now, so the journal says what the store got from sveta."""
    held = []
    for p in plan:
        gid, values = current.get(p.product_id, ("", {}))
        for key, value in p.values.items():
            known = journal.get((p.product_id, key))
            if values.get(key) == value and (known is None or known.value != value):
                held.append(Pushed(p.product_id, gid, key, value))
    record_pushed(catalog, store, held)


def _write(admin: AdminClient, catalog: CatalogStore, changes: list[Change], report: PushReport) -> None:
    for start in range(0, len(changes), SET_BATCH):
        _write_batch(admin, catalog, changes[start : start + SET_BATCH], report)


def _write_batch(admin: AdminClient, catalog: CatalogStore, batch: list[Change], report: PushReport) -> None:
    """One metafieldsSet call. It is atomic: on userErrors nothing was set, so the faulty entries (a product
    deleted on the store, a value the store's definition refuses) are dropped and the rest sent again."""
    while batch:
        inputs = [
            {"ownerId": c.gid, "namespace": NAMESPACE, "key": c.key.split(".", 1)[1], "type": METAFIELD_TYPE,
             "value": c.value}
            for c in batch
        ]  # fmt: skip
        payload = admin.query(SET, {"metafields": inputs}, cost=SET_COST).get("metafieldsSet") or {}
        errors = payload.get("userErrors") or []
        if not errors:
            record_pushed(catalog, admin.store, [Pushed(c.product.product_id, c.gid, c.key, c.value) for c in batch])
            report.written += len(batch)
            return
        batch = _without_faulty(batch, errors, report)


def _without_faulty(batch: list[Change], errors: list[dict[str, Any]], report: PushReport) -> list[Change]:
    gone_owners: set[str] = set()
    faulty: set[int] = set()
    for error in errors:
        index = _element_index(error)
        if index is None or not 0 <= index < len(batch):  # an error that names no entry: the whole batch failed
            report.errors += [_error(c, error) for c in batch]
            return []
        change = batch[index]
        if "ownerId" in (error.get("field") or []) or error.get("code") == "INVALID_OWNER":
            gone_owners.add(change.gid)
        else:
            faulty.add(index)
            report.errors.append(_error(change, error))
    for change in batch:
        if change.gid in gone_owners and change.product.handle not in report.gone:
            report.gone.append(change.product.handle)
    return [c for i, c in enumerate(batch) if i not in faulty and c.gid not in gone_owners]


def _element_index(error: dict[str, Any]) -> int | None:
    """The entry an error is about: ``elementIndex``, else the number in its field path (metafields, 3, value)."""
    if isinstance(error.get("elementIndex"), int):
        return int(error["elementIndex"])
    path = error.get("field") or []
    return int(path[1]) if len(path) > 1 and str(path[1]).isdigit() else None


def _error(change: Change, error: dict[str, Any]) -> dict[str, str]:
    message = str(error.get("message") or "refused")[:300]
    return {
        "handle": change.product.handle,
        "key": change.key,
        "code": str(error.get("code") or ""),
        "message": message,
    }


def _finish(report: PushReport, admin: AdminClient) -> None:
    stats = admin.stats
    report.requests, report.throttled_waits = stats.requests, stats.throttled_waits
    report.waited_s = round(stats.waited_s, 3)
    report.cost = {"requested": stats.cost_requested, "actual": stats.cost_actual}
    report.retries = dict(stats.retries)
