"""Merchandising rules: pin, boost, bury and hide in search, similar and complete, through the API, the CLI and the
store (SQLite and PostgreSQL), on a small real catalog indexed with the cheap colour embedder."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sveta.api import create_app
from sveta.catalog.queries import ProductCard
from sveta.catalog.rules import Rule, RuleSpec, active_rules, add_rule, list_rules, remove_rule
from sveta.catalog.store import CatalogStore, open_catalog
from sveta.cli import _common, app
from sveta.engines.complete import Completer
from sveta.engines.merch import Context, arrange
from sveta.engines.search import Searcher
from sveta.errors import InputError
from sveta.index.catalog_index import open_catalog_index, sync_index
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.settings import Settings
from tests import test_learn
from tests.test_learn import _subset

KEY = "rules-key-0123456789"
WRITE = {"X-API-Key": KEY}
# dresses to pin and hide among, and tops, bottoms, shoes and bags so that complete has slots to fill
TYPES = {"Dresses": 14, "Tshirts": 8, "Tops": 6, "Skirts": 6, "Casual Shoes": 6, "Handbags": 4}


@dataclass
class Shop:
    settings: Settings
    catalog: CatalogStore
    client: TestClient
    folder: Path

    def ids(self, article: str) -> list[str]:
        with (self.folder / "styles.csv").open(encoding="utf-8") as handle:
            return [r["id"] for r in csv.DictReader(handle) if r["articleType"] == article]

    def search(self, q: str, k: int = 5, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get("/api/search/text", params={"q": q, "k": k, **params})
        assert response.status_code == 200, response.text
        matches: list[dict[str, Any]] = response.json()["matches"]
        return matches

    def add(self, **body: Any) -> dict[str, Any]:
        response = self.client.post("/api/rules", json=body, headers=WRITE)
        assert response.status_code == 201, response.text
        rule: dict[str, Any] = response.json()
        return rule


@pytest.fixture(scope="module")
def shop(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    home = tmp_path_factory.mktemp("rules")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_learn, "TYPES", TYPES)
        folder = _subset(myntra, home / "subset")
    settings = Settings(data_dir=home / "data", api_key=KEY)
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(folder / "styles.csv", images_dir=folder / "images")
    feed = str(folder / "styles.csv")
    run_ingest(catalog, name="subset", kind="csv", location=feed, records=reader.records(), state=reader.state)
    sync_index(catalog, settings, embedder="colour")
    with TestClient(create_app(settings)) as client:
        yield Shop(settings, catalog, client, folder)
    catalog.engine.dispose()


@pytest.fixture(autouse=True)
def no_rules_after(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "shop" in request.fixturenames:
        catalog = request.getfixturevalue("shop").catalog
        for listed in list_rules(catalog, expired=True):
            remove_rule(catalog, listed.rule.id)


@pytest.fixture
def cli(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("SVETA_DATA_DIR", str(shop.settings.data_dir))
    _common._state.clear()
    yield CliRunner()
    _common._state.clear()


def _last_json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])


def _ids(matches: list[dict[str, Any]]) -> list[str]:
    return [m["source_id"] for m in matches]


# -- the red dress ---------------------------------------------------------------------------------


def test_a_pin_puts_a_product_first_for_red_dress_in_the_api_the_cli_and_the_widget(shop: Shop, cli: CliRunner) -> None:
    before = shop.search("red dress", k=3)
    assert all(m["rule"] is None for m in before)
    deeper = _ids(shop.search("red dress", k=20))
    third, outside = before[2]["source_id"], next(i for i in shop.ids("Handbags") if i not in deeper)
    other = shop.search("black dress", k=5)

    rule = shop.add(action="pin", target=third, scope_kind="query", scope="Red Dress")
    assert rule["scope"] == "red dress" and rule["position"] == 1 and rule["state"] == "active"
    first = shop.search("red dress", k=3)[0]
    assert first["source_id"] == third
    assert first["rule"] == {"id": rule["id"], "action": "pin", "says": f"pinned to 1 by rule {rule['id']} (red dress)"}
    assert shop.search("Red  Dress!", k=3)[0]["source_id"] == third  # case, spaces and punctuation do not count
    assert shop.search("black dress", k=5) == other  # another query is left alone

    # a product the search does not find at all, pinned to 2 from the command line
    added = cli.invoke(app, ["rules", "add", "pin", outside, "--query", "red dress", "--position", "2", "--json"])
    assert added.exit_code == 0, added.output
    second = _last_json(added.stdout)
    searched = cli.invoke(app, ["search", "--text", "red dress", "--k", "3", "--json"])
    assert searched.exit_code == 0, searched.output
    matches = _last_json(searched.stdout)["matches"]
    assert _ids(matches)[:2] == [third, outside] and len(matches) == 3
    assert matches[1]["rule"]["says"] == f"pinned to 2 by rule {second['id']} (red dress)"
    assert matches[1]["category"] == "Handbag" and matches[2]["rule"] is None

    # the storefront widget's own request (its search box): the same answer
    widget = shop.client.get(
        "/api/search/text?k=8&q=red%20dress",
        headers={"X-Sveta-Surface": "widget-photo", "X-Sveta-Page": "https://a.shop/"},
    )
    assert widget.status_code == 200 and _ids(widget.json()["matches"])[:2] == [third, outside]


def test_a_pin_obeys_the_shoppers_filters(shop: Shop) -> None:
    kid = next(i for i in shop.ids("Dresses") if shop.catalog.find_product(i).gender == "Girls")  # type: ignore[union-attr]
    shop.add(action="pin", target=kid, scope_kind="query", scope="dress", position=1)
    assert shop.search("dress", k=3)[0]["source_id"] == kid
    assert kid not in _ids(shop.search("dress", k=3, gender="Women"))  # asked for women's: not shown


# -- hide, bury, boost ---------------------------------------------------------------------------


def test_hiding_a_brand_everywhere_keeps_k_results(shop: Shop) -> None:
    assert any(m["brand"] == "United" for m in shop.search("dress", k=6))
    shop.add(action="hide", target="united", target_kind="brand")
    after = shop.search("dress", k=6)
    assert len(after) == 6 and all(m["brand"] != "United" for m in after)
    ref = next(i for i in shop.ids("Dresses") if shop.catalog.find_product(i).brand == "United")  # type: ignore[union-attr]
    similar = shop.client.get(f"/api/products/{ref}/similar", params={"k": 8}).json()["matches"]
    assert len(similar) == 8 and all(m["brand"] != "United" for m in similar)


def test_burying_and_boosting_move_results_by_places(shop: Shop) -> None:
    before = shop.search("black", k=10)
    dresses = [n for n, m in enumerate(before) if m["category"] == "Dress"]
    assert dresses and dresses[0] < 7, _ids(before)
    rule = shop.add(action="bury", target="Dresses", target_kind="category", weight=3)
    assert rule["target"] == "Dress" and rule["weight"] == 3
    after = shop.search("black", k=10)
    moved = {m["source_id"]: n for n, m in enumerate(after)}
    for n in dresses:  # below every result that was up to 3 places below it and did not move
        was, passed = (
            before[n]["source_id"],
            [m["source_id"] for m in before[n + 1 : n + 4] if m["category"] != "Dress"],
        )
        assert was not in moved or all(moved[was] > moved[p] for p in passed), (n, moved.get(was))
        if was in moved:
            assert after[moved[was]]["rule"]["says"] == f"buried 3 places by rule {rule['id']} (everywhere)"
    remove_rule(shop.catalog, rule["id"])

    n, shoe = next((n, m) for n, m in enumerate(before) if m["category"] == "Casual Shoes" and n >= 2)
    boost = shop.add(action="boost", target=shoe["source_id"], scope_kind="category", scope="Casual Shoes", weight=2)
    after = shop.search("black", k=10)
    assert after[n - 2]["source_id"] == shoe["source_id"] and after[n - 2]["score"] == shoe["score"]  # not rescored
    assert after[n - 2]["rule"]["says"] == f"boosted 2 places by rule {boost['id']} (in Casual Shoes)"
    assert [m["source_id"] for m in after if m["rule"] is None] == [m["source_id"] for m in before if m is not shoe]


def test_complete_pins_and_hides_per_slot(shop: Shop) -> None:
    completer = Completer(shop.catalog, open_catalog_index(shop.settings, create=False))
    top = next(i for i in shop.ids("Tops") if shop.catalog.find_product(i).gender == "Women")  # type: ignore[union-attr]
    items = completer.complete(completer.piece_of_product(top), k=2).items
    bags = [s for s in items if s.card.category == "Handbag"]
    assert bags and any(s.card.category == "Skirt" for s in items), [(s.slot, s.card.category) for s in items]
    last_bag = [s for s in completer.complete(completer.piece_of_product(top), k=9).items if s.slot == bags[0].slot][-1]
    pin = add_rule(shop.catalog, RuleSpec("pin", last_bag.card.source_id, scope_kind="category", scope="Tops"))
    hide = add_rule(shop.catalog, RuleSpec("hide", "Skirt", target_kind="category"))
    answer = shop.client.get(f"/api/complete/{top}", params={"k": 2}).json()["items"]
    slot = [s for s in answer if s["slot"] == bags[0].slot]
    assert slot[0]["source_id"] == last_bag.card.source_id and len(slot) == 2
    assert slot[0]["rule"]["says"] == f"pinned to 1 by rule {pin.id} (in Top)" and "pinned to 1" in slot[0]["reason"]
    assert all(s["category"] != "Skirt" for s in answer) and hide.id > pin.id


# -- dates, contradictions, removal ----------------------------------------------------------------


def test_a_rule_applies_between_its_dates(shop: Shop) -> None:
    dress = shop.search("dress", k=5)[-1]["source_id"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    later = shop.add(action="pin", target=dress, scope_kind="query", scope="dress", starts_at=tomorrow)
    assert later["state"] == "scheduled" and shop.search("dress", k=5)[0]["source_id"] != dress
    assert later["starts_at"].startswith(tomorrow + "T00:00:00")
    now = shop.add(action="pin", target=dress, scope_kind="query", scope="dress", ends_at=tomorrow)
    assert now["state"] == "active" and shop.search("dress", k=5)[0]["source_id"] == dress
    after = datetime.now(UTC) + timedelta(days=3)  # both started; the second ended with the day after today
    assert [r.id for r in active_rules(shop.catalog, after)] == [later["id"]]
    states = {r.rule.id: r.state for r in list_rules(shop.catalog, expired=True, now=after)}
    assert states == {later["id"]: "active", now["id"]: "expired"}
    assert [r.rule.id for r in list_rules(shop.catalog, now=after)] == [later["id"]]  # expired: with --all only


def test_contradicting_rules_the_later_wins_and_list_says_so(shop: Shop, cli: CliRunner) -> None:
    dress = shop.search("dress", k=5)[-1]["source_id"]
    pin = shop.add(action="pin", target=dress, scope_kind="query", scope="dress")
    hide = shop.add(action="hide", target=dress, scope_kind="query", scope="dress")
    assert hide["overrides"] == [pin["id"]] and f"overrides rule {pin['id']}" in hide["says"]
    assert dress not in _ids(shop.search("dress", k=10))
    listed = cli.invoke(app, ["rules", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rules = {r["id"]: r for r in _last_json(listed.stdout)["rules"]}
    assert rules[pin["id"]]["overridden_by"] == hide["id"] and rules[hide["id"]]["overridden_by"] is None
    assert f"overridden by rule {hide['id']}" in listed.output  # the table says it too
    api = shop.client.get("/api/rules").json()["rules"]  # reads need no key
    assert [r["overridden_by"] for r in api] == [hide["id"], None]

    removed = cli.invoke(app, ["rules", "remove", str(hide["id"]), "--json"])
    assert removed.exit_code == 0 and _last_json(removed.stdout)["id"] == hide["id"]
    assert shop.search("dress", k=5)[0]["source_id"] == dress  # the pin is back in force
    gone = shop.client.delete(f"/api/rules/{pin['id']}", headers=WRITE)
    assert gone.status_code == 200 and gone.json()["action"] == "pin"
    assert shop.search("dress", k=5)[0]["source_id"] != dress
    again = shop.client.delete(f"/api/rules/{pin['id']}", headers=WRITE)
    assert again.status_code == 404 and again.json()["error"]["message"] == f"no rule {pin['id']}"
    missing = cli.invoke(app, ["rules", "remove", str(pin["id"])])
    assert missing.exit_code == 3 and "no rule" in missing.output and "Traceback" not in missing.output


# -- keys and bad input ----------------------------------------------------------------------------


def test_writing_rules_needs_the_write_key(shop: Shop, tmp_path: Path) -> None:
    body = {"action": "hide", "target": "united", "target_kind": "brand"}
    for headers in ({}, {"X-API-Key": "wrong"}):
        assert shop.client.post("/api/rules", json=body, headers=headers).status_code == 401
        assert shop.client.delete("/api/rules/1", headers=headers).status_code == 401
    assert list_rules(shop.catalog) == []
    keyless = Settings(data_dir=shop.settings.data_dir, database_url=shop.settings.catalog_url)
    with TestClient(create_app(keyless)) as client:
        refused = client.post("/api/rules", json=body, headers=WRITE)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"action": "pin", "target": "no-such-product"}, 422, "no product 'no-such-product'"),
        ({"action": "pin", "target": "1", "starts_at": "2031-01-02", "ends_at": "2031-01-01"}, 422, "before it starts"),
        ({"action": "pin", "target": "1", "ends_at": "2020-01-01"}, 422, "has passed"),
        ({"action": "pin", "target": "1", "ends_at": "soon"}, 422, "is not a date"),
        ({"action": "promote", "target": "1"}, 422, "action"),
        ({"action": "pin", "target": "1", "position": 0}, 422, "position 0 is out of range"),
        ({"action": "boost", "target": "1", "weight": 0}, 422, "weight 0"),
        ({"action": "boost", "target": "1", "position": 2}, 422, "takes no position"),
        ({"action": "hide", "target": "Nkie", "target_kind": "brand"}, 422, "no brand 'Nkie'"),
        ({"action": "hide", "target": "1", "scope_kind": "category", "scope": "Dreses"}, 422, "no category 'Dreses'"),
        ({"action": "hide", "target": "1", "scope_kind": "query", "scope": "?!"}, 422, "no words"),
    ],
)
def test_bad_rules_are_clear_errors(shop: Shop, body: dict[str, Any], status: int, words: str) -> None:
    response = shop.client.post("/api/rules", json=body, headers=WRITE)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"] and error["hint"] and "Traceback" not in response.text
    assert list_rules(shop.catalog, expired=True) == []


def test_bad_rules_in_the_cli_exit_with_the_input_code(cli: CliRunner) -> None:
    for args, words in (
        (["promote", "1"], "unknown action 'promote'"),
        (["pin", "no-such-product"], "no product"),
        (["hide", "united", "--brand", "--category"], "more than one of what TARGET is"),
        (["pin", "1", "--query", "red dress", "--everywhere"], "more than one of where"),
        (["pin", "1", "--from", "2031-01-02", "--until", "2031-01-01"], "before it starts"),
    ):
        result = cli.invoke(app, ["rules", "add", *args])
        assert result.exit_code == 3 and words in result.output and "Traceback" not in result.output, result.output


# -- the rules as a pure function ------------------------------------------------------------------


def _card(pid: int, brand: str = "B", category: str = "Dress") -> ProductCard:
    return ProductCard(pid, str(pid), "s", f"item {pid}", brand, category, None, None, None, None, True, None, None)


@dataclass
class _Item:
    card: ProductCard


def _rule(id: int, action: str, target: str, kind: str = "product", **more: Any) -> Rule:
    values: dict[str, Any] = {"scope_kind": "everywhere", "scope": None, "position": None, "weight": None} | more
    if action == "pin":
        values["position"] = values["position"] or 1
    if action in ("boost", "bury"):
        values["weight"] = values["weight"] or 2.0
    return Rule(
        id, action, kind, target, **values, starts_at=None, ends_at=None, note=None, created_at=datetime.now(UTC)
    )


def _order(rules: list[Rule], n: int = 8, k: int = 8, context: Context | None = None, **extra: int) -> list[int]:
    items = [_Item(_card(i)) for i in range(1, n + 1)]
    more = {pid: _Item(_card(pid)) for pid in extra.values()}
    return [item.card.product_id for item, _ in arrange(items, rules, context or Context(), k, more)]


def test_moves_are_by_places_and_the_later_rule_wins() -> None:
    assert _order([]) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert _order([_rule(1, "boost", "5", weight=2)]) == [1, 2, 5, 3, 4, 6, 7, 8]
    assert _order([_rule(1, "bury", "2", weight=3)]) == [1, 3, 4, 5, 2, 6, 7, 8]
    assert _order([_rule(1, "bury", "1", weight=100)], k=4) == [2, 3, 4, 5]  # buried below the cut
    assert _order([_rule(1, "hide", "3")], k=4) == [1, 2, 4, 5]
    assert _order([_rule(1, "pin", "6"), _rule(2, "pin", "7")], k=4) == [7, 6, 1, 2]  # one place: the later takes it
    assert _order([_rule(1, "pin", "20", position=3)], k=4, pinned=20) == [1, 2, 20, 3]  # not found, pinned
    assert _order([_rule(1, "pin", "4"), _rule(2, "hide", "4")], k=4) == [1, 2, 3, 5]
    assert _order([_rule(1, "hide", "4"), _rule(2, "pin", "4")], k=4) == [4, 1, 2, 3]
    words = Context.of("Red  Dress!")
    assert _order([_rule(1, "pin", "8", scope_kind="query", scope="red dress")], k=3, context=words) == [8, 1, 2]
    assert _order([_rule(1, "pin", "8", scope_kind="query", scope="red dress")], k=3) == [1, 2, 3]


def test_brand_and_category_targets_and_scopes() -> None:
    items = [_Item(_card(1, "A", "Dress")), _Item(_card(2, "B", "Top")), _Item(_card(3, "B", "Skirt"))]
    pinned = arrange(items, [_rule(1, "pin", "b", "brand", position=1)], Context(), 3)
    assert [i.card.product_id for i, _ in pinned] == [2, 1, 3] and pinned[2][1] is None  # its best result only
    in_tops = _rule(1, "hide", "B", "brand", scope_kind="category", scope="Top")
    assert [i.card.product_id for i, _ in arrange(items, [in_tops], Context(), 3)] == [1, 3]  # the result's category
    assert [i.card.product_id for i, _ in arrange(items, [in_tops], Context.of(None, "Tops"), 3)] == [1]  # the asked


# -- the store on SQLite and PostgreSQL ------------------------------------------------------------


def test_the_store_on_both_databases(catalog: CatalogStore, myntra: Path, tmp_path: Path) -> None:
    lines = (myntra / "styles.csv").read_text(encoding="utf-8").splitlines()[:4]
    (tmp_path / "styles.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    reader = FeedReader(tmp_path / "styles.csv", images_dir=myntra / "images")
    run_ingest(catalog, name="few", kind="csv", location="few", records=reader.records(), state=reader.state)
    first = add_rule(catalog, RuleSpec("pin", "10000", scope_kind="query", scope="White  Skirts!", note="sale"))
    product = catalog.find_product("10000")
    assert product is not None and first.target == str(product.id) and first.scope == "white skirts"
    soon = datetime.now(UTC) + timedelta(hours=1)
    second = add_rule(catalog, RuleSpec("bury", "10000", scope_kind="query", scope="white skirts", starts_at=soon))
    brand = add_rule(catalog, RuleSpec("boost", "palm", target_kind="brand", weight=2.5, ends_at=soon + timedelta(1)))
    assert brand.target == "Palm" and brand.weight == 2.5 and brand.ends_at == soon + timedelta(1)
    assert [r.id for r in active_rules(catalog)] == [first.id, brand.id]
    listed = {r.rule.id: r for r in list_rules(catalog)}
    assert listed[second.id].state == "scheduled" and listed[first.id].overridden_by == second.id
    assert listed[first.id].target_title == "10000 " + product.title and listed[first.id].rule.note == "sale"
    assert remove_rule(catalog, second.id).id == second.id
    assert list_rules(catalog)[0].overridden_by is None
    with pytest.raises(InputError, match="no rule"):
        remove_rule(catalog, second.id)
    # Scopes that meet contradict too: a later hide everywhere beats the pin for "white skirts" there; a pin for
    # other words does not meet that pin
    other = add_rule(catalog, RuleSpec("pin", "10000", scope_kind="query", scope="skirts"))
    hide = add_rule(catalog, RuleSpec("hide", "10000"))
    listed = {r.rule.id: r for r in list_rules(catalog)}
    assert listed[first.id].overridden_by == hide.id and listed[other.id].overridden_by == hide.id
    assert listed[hide.id].overrides == [first.id, other.id] and listed[brand.id].overridden_by is None


def test_the_searcher_reads_rules_per_request(shop: Shop) -> None:
    searcher = Searcher(shop.settings, shop.catalog)
    last = searcher.search_text("dress", k=4).matches[-1].card
    rule = add_rule(shop.catalog, RuleSpec("pin", str(last.product_id), scope_kind="everywhere"))
    assert searcher.search_text("dress", k=4).matches[0].card == last  # the same searcher: no restart
    assert searcher.similar(str(last.product_id), k=3).matches[0].card != last  # never similar to itself
    remove_rule(shop.catalog, rule.id)
