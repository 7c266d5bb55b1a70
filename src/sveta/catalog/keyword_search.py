"""Keyword search over the catalog's keyword index: plain words in, ranked product ids out, never FTS syntax.

The shopper's text never reaches the FTS5 ``MATCH`` or the ``tsquery`` parser: it is cut into terms of letters and
digits only (lower-cased, at most ``MAX_TERMS`` of at most ``MAX_TERM_CHARS`` each), and each term goes in as a
quoted FTS5 string or a bound ``plainto_tsquery`` argument. Terms are joined by OR and ranked by BM25 (SQLite) or
``ts_rank`` (PostgreSQL), so a product matching more of the words, or matching them in its title rather than its
description, ranks higher, and a query with one unknown word still finds the others. Whole words by default (both
engines stem, so "dresses" finds "dress"); ``prefix_last`` makes the last term a prefix, for text still being typed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from sveta.catalog.keyword_index import PG_CONFIG, TABLE, WORD
from sveta.catalog.store import CatalogStore

MAX_TERMS = 32
MAX_TERM_CHARS = 64
# Ranking reads every matching row's document, so one common word ("men": half of a million products) would cost
# seconds. Only this many matches are ranked: with more, the best are chosen among the newest (SQLite) or the first
# found (PostgreSQL, in table order) this many, and the cost stops growing with the catalog.
RANKED_AT_MOST = 3_000
BM25_WEIGHTS = (8.0, 4.0, 2.0, 1.0)  # heading, kind, traits, about: the same ratios as ts_rank's A, B, C, D
_TS_RANK_WEIGHTS = "{" + ", ".join(str(w / BM25_WEIGHTS[0]) for w in reversed(BM25_WEIGHTS)) + "}"  # D first
# FTS5's bm25() counts every document holding each of its words before it ranks one row (0.07 us a document: 30 ms for
# "women" in 42% of a million products). From this many products on, a word in more than RANKED_DOCS_AT_MOST of them
# (or in over half, whose IDF bm25 clamps to 1e-6 anyway) selects the matches but is left out of the ranking, so the
# count stops growing with the catalog.
UNRANKED_COMMON_FROM = 100_000
RANKED_DOCS_AT_MOST = 50_000
SHARE_SAMPLE = 2_000  # the newest documents (at least) a word's share of the catalog is estimated from
_BM25 = f"bm25({TABLE}, {', '.join(str(w) for w in BM25_WEIGHTS)})"


@dataclass(frozen=True, slots=True)
class KeywordHit:
    """A product the words matched; ``score`` is higher for better matches (compare within one result list)."""

    product_id: int
    score: float


def query_terms(query_words: Sequence[str] | str) -> list[str]:
    """The distinct search terms of ``query_words``, in order: lower-cased runs of letters and digits."""
    words = [query_words] if isinstance(query_words, str) else query_words
    terms: list[str] = []
    for word in words:
        for term in WORD.findall(str(word).lower()):
            if term[:MAX_TERM_CHARS] not in terms:
                terms.append(term[:MAX_TERM_CHARS])
    return terms[:MAX_TERMS]


def keyword_search(
    catalog: CatalogStore,
    query_words: Sequence[str] | str,
    *,
    limit: int,
    product_ids: Sequence[int] | None = None,
    available_only: bool = False,
    prefix_last: bool = False,
) -> list[KeywordHit]:
    """The best ``limit`` products for the words, best first; only among ``product_ids`` when given.

    Any text is accepted: words with no letter or digit, or an empty ``product_ids``, give an empty list.
    """
    terms = query_terms(query_words)
    if not terms or limit <= 0 or (product_ids is not None and not product_ids):
        return []
    with catalog.session() as s:
        conn = s.connection()
        search = _postgres if conn.dialect.name == "postgresql" else _sqlite
        return search(conn, terms, limit, product_ids, available_only, prefix_last)


def _sqlite(
    conn: Connection, terms: list[str], limit: int, ids: Sequence[int] | None, available: bool, prefix: bool
) -> list[KeywordHit]:
    """The products with every word are ranked first; only when they are fewer than ``limit`` does the OR fill the
    rest (ranked below them). Each is ranked among its ``RANKED_AT_MOST`` newest matches (FTS5 reads rowids
    newest first and stops there)."""
    quoted = [f'"{term}"' for term in terms]  # a term has no quote, so it is one FTS5 string, never an operator
    if prefix:
        quoted[-1] += "*"
    ranked = _ranked_terms(conn, quoted)
    hits = _sqlite_match(conn, quoted, ranked, " AND ", limit, ids, available)
    if len(hits) < limit and len(quoted) > 1:
        seen = {h.product_id for h in hits}
        more = _sqlite_match(conn, quoted, ranked, " OR ", limit + len(hits), ids, available)
        hits += [h for h in more if h.product_id not in seen][: limit - len(hits)]
    return hits


def _ranked_terms(conn: Connection, quoted: list[str]) -> list[str]:
    """The terms bm25 ranks by: all of them, except, in a large catalog, those its newest documents show too common."""
    newest = conn.execute(text(f"SELECT rowid FROM {TABLE} ORDER BY rowid DESC LIMIT 1")).scalar()
    if newest is None or newest <= UNRANKED_COMMON_FROM:  # products are numbered as they come: about their count
        return quoted
    whole = [q for q in quoted if not q.endswith("*")]  # a prefix is ranked: counting it merges every word it starts
    if not whole:
        return quoted
    # enough documents that a word at the budget's share is ~50 of them, however large the catalog grows
    sample = max(SHARE_SAMPLE, 50 * newest // RANKED_DOCS_AT_MOST)
    params: dict[str, Any] = {"floor": newest - sample} | {f"q{i}": q for i, q in enumerate(whole)}
    counts = [f"(SELECT count(*) FROM {TABLE} WHERE {TABLE} MATCH :q{i} AND rowid > :floor)" for i in range(len(whole))]
    row = conn.execute(text(f"SELECT (SELECT count(*) FROM {TABLE} WHERE rowid > :floor), {', '.join(counts)}"), params)
    sampled, *holding = row.one()
    if 2 * sampled < min(sample, newest):  # ids with gaps: too few newest documents to tell a common word
        return quoted
    most = sampled * min(0.5, RANKED_DOCS_AT_MOST / newest)  # at most this many of the sample: cheap to count
    common = {q for q, n in zip(whole, holding, strict=True) if n > most}
    return [q for q in quoted if q not in common]


def _sqlite_match(
    conn: Connection,
    quoted: list[str],
    ranked: list[str],
    op: str,
    limit: int,
    ids: Sequence[int] | None,
    available: bool,
) -> list[KeywordHit]:
    """The best ``limit`` of the newest ``RANKED_AT_MOST`` matches of ``op``-joined terms, by bm25 of ``ranked``."""
    where = [f"{TABLE} MATCH :match"]
    params: dict[str, Any] = {"match": op.join(quoted), "limit": limit, "ranked": RANKED_AT_MOST}
    if ids is not None:
        # "+rowid": a bare rowid IN reaches FTS5 as one rowid look-up per id, each counting bm25's IDF anew
        # (5.4 s for 3,000 ids at 100k products); this way it filters the matches as they are read
        where.append("+rowid IN (SELECT value FROM json_each(:ids))")
        params["ids"] = json.dumps([int(i) for i in ids])
    if available:
        where.append(f"EXISTS (SELECT 1 FROM products WHERE products.id = {TABLE}.rowid AND products.available)")
    if ranked != quoted:
        found = f"SELECT rowid FROM {TABLE} WHERE {' AND '.join(where)} ORDER BY rowid DESC LIMIT :ranked"
        return _ranked_among(conn, [int(pid) for pid in conn.scalars(text(found), params)], ranked, op, limit)
    matches = f"SELECT rowid, -{_BM25} AS score FROM {TABLE} WHERE {' AND '.join(where)} ORDER BY rowid DESC"
    sql = f"SELECT rowid, score FROM ({matches} LIMIT :ranked) ORDER BY score DESC, rowid LIMIT :limit"
    return [KeywordHit(int(pid), float(score)) for pid, score in conn.execute(text(sql), params)]


def _ranked_among(conn: Connection, found: list[int], ranked: list[str], op: str, limit: int) -> list[KeywordHit]:
    """The best ``limit`` of ``found`` (newest first) by bm25 of the ``ranked`` terms only; a product with none: 0."""
    scores: dict[int, float] = {}
    if found and ranked:
        # the rowid range bounds the read to the found products' stretch of the index, whatever the catalog's size
        sql = (
            f"SELECT rowid, -{_BM25} FROM {TABLE} WHERE {TABLE} MATCH :match AND rowid BETWEEN :low AND :high"
            " AND +rowid IN (SELECT value FROM json_each(:found))"
        )
        params = {"match": op.join(ranked), "low": found[-1], "high": found[0], "found": json.dumps(found)}
        scores = {int(pid): float(score) for pid, score in conn.execute(text(sql), params)}
    best = sorted(found, key=lambda pid: (-scores.get(pid, 0.0), pid))[:limit]
    return [KeywordHit(pid, scores.get(pid, 0.0)) for pid in best]


def _postgres(
    conn: Connection, terms: list[str], limit: int, ids: Sequence[int] | None, available: bool, prefix: bool
) -> list[KeywordHit]:
    """As on SQLite: the products with every word are ranked first, and the OR fills the rest only when they are too
    few; each among the first ``RANKED_AT_MOST`` matches the scan finds (``ts_rank`` reads each one's document)."""
    _planned_per_query(conn)
    params: dict[str, Any] = {f"t{i}": term for i, term in enumerate(terms)}
    parts = [f"plainto_tsquery('{PG_CONFIG}', :t{i})" for i in range(len(terms))]
    if prefix:  # the term is letters and digits only, so it is one tsquery operand
        parts[-1] = f"to_tsquery('{PG_CONFIG}', :t{len(terms) - 1} || ':*')"
    hits = _postgres_match(conn, " && ".join(parts), params, limit, ids, available)
    if len(hits) < limit and len(parts) > 1:
        seen = {h.product_id for h in hits}
        more = _postgres_match(conn, " || ".join(parts), params, limit + len(hits), ids, available)
        hits += [h for h in more if h.product_id not in seen][: limit - len(hits)]
    return hits


def _planned_per_query(conn: Connection) -> None:
    """For this transaction only: a plan made for the words at hand, and table scans from the table's start."""
    # psycopg prepares a statement run five times, and PostgreSQL may then keep one generic plan for every word list:
    # it computes the tsquery anew for each row it filters (100-140 ms instead of 11 ms for "men casual shirts" at a
    # million products). And a scan of a large table joins one already running, so "the first 3,000 matches" were
    # other products on every call (six calls of one query, six different top tens). Here, not on every connection:
    # custom plans for all statements made the product page slower at 1M (p50 44 -> 57 ms, measured alternated).
    conn.execute(
        text(
            "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
            " set_config('synchronize_seqscans', 'off', true)"
        )
    )


def _postgres_match(
    conn: Connection, query: str, params: dict[str, Any], limit: int, ids: Sequence[int] | None, available: bool
) -> list[KeywordHit]:
    params = params | {"limit": limit, "ranked": RANKED_AT_MOST}
    where = ["k.document @@ q.query"]
    if ids is not None:
        where.append("k.product_id = ANY(:ids)")
        params["ids"] = [int(i) for i in ids]
    if available:
        where.append("EXISTS (SELECT 1 FROM products AS p WHERE p.id = k.product_id AND p.available)")
    rank = f"ts_rank('{_TS_RANK_WEIGHTS}', k.document, q.query)"
    matches = (
        f"SELECT k.product_id, {rank} AS score FROM (SELECT {query} AS query) AS q CROSS JOIN {TABLE} AS k"
        f" WHERE {' AND '.join(where)} LIMIT :ranked"
    )
    sql = f"SELECT product_id, score FROM ({matches}) AS m ORDER BY score DESC, product_id LIMIT :limit"
    return [KeywordHit(int(pid), float(score)) for pid, score in conn.execute(text(sql), params)]


__all__ = ["MAX_TERMS", "RANKED_AT_MOST", "KeywordHit", "keyword_search", "query_terms"]
