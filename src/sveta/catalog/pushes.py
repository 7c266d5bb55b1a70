"""The journal of `sveta shopify push --apply`: each metafield a store acknowledged, so a rerun writes it no more."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from sveta.catalog.models import ShopifyPush, utcnow
from sveta.catalog.store import CatalogStore

_CHUNK = 500  # ids per IN (...): well under SQLite's bound-parameter limit


@dataclass(frozen=True, slots=True)
class Pushed:
    """One metafield value a store acknowledged: ``key`` is namespace.key, e.g. sveta.colour."""

    product_id: int
    owner_gid: str
    key: str
    value: str


def pushed_values(catalog: CatalogStore, store: str) -> dict[tuple[int, str], Pushed]:
    """What was written to ``store`` so far, by (product id, namespace.key)."""
    statement = select(ShopifyPush.product_id, ShopifyPush.owner_gid, ShopifyPush.key, ShopifyPush.value).where(
        ShopifyPush.store == store
    )
    with catalog.session() as s:
        return {(pid, key): Pushed(pid, gid, key, value) for pid, gid, key, value in s.execute(statement)}


def record_pushed(catalog: CatalogStore, store: str, rows: Iterable[Pushed]) -> int:
    """Record ``rows`` as acknowledged by ``store`` in one transaction, replacing an older value of the same key;
    returns how many were recorded."""
    items = list({(r.product_id, r.key): r for r in rows}.values())
    if not items:
        return 0

    def work(s: Session) -> int:
        _forget(s, store, [(r.product_id, r.key) for r in items])
        now = utcnow()
        values = [
            {"store": store, "product_id": r.product_id, "owner_gid": r.owner_gid, "key": r.key, "value": r.value,
             "pushed_at": now}
            for r in items
        ]  # fmt: skip
        s.execute(insert(ShopifyPush), values)
        return len(values)

    return catalog.write(work)


def _forget(s: Session, store: str, pairs: list[tuple[int, str]]) -> None:
    """Delete the journal's rows of these (product, key) pairs: found by product, matched here, deleted by id
    (one OR of (product, key) pairs per row compiles slowly)."""
    wanted = set(pairs)
    products = sorted({pid for pid, _ in pairs})
    ids = []
    for start in range(0, len(products), _CHUNK):
        chunk = products[start : start + _CHUNK]
        rows = s.execute(
            select(ShopifyPush.id, ShopifyPush.product_id, ShopifyPush.key).where(
                ShopifyPush.store == store, ShopifyPush.product_id.in_(chunk)
            )
        )
        ids += [row_id for row_id, pid, key in rows if (pid, key) in wanted]
    for start in range(0, len(ids), _CHUNK):
        s.execute(delete(ShopifyPush).where(ShopifyPush.id.in_(ids[start : start + _CHUNK])))
