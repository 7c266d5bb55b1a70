"""A built catalog moved from the defaults (SQLite + FAISS) to PostgreSQL + Milvus (Lite, and a real Milvus 2.3
server): `sveta catalog copy`, two settings, `sveta index build`; then every CLI command and every API endpoint
answers as it did before."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sveta.api import create_app
from sveta.catalog.copy import table_counts
from sveta.catalog.store import CatalogStore, open_catalog
from sveta.cli import _common, app
from sveta.errors import CatalogError
from sveta.settings import Settings
from tests.conftest import reset_postgres
from tests.milvus_server import SERVER, unique
from tests.shopify_server import ShopifyStore, make_products, serve
from tests.test_api import KEY, PHOTOS, WRITE, build_catalog
from tests.test_api import _finished as wait_for_run

# Keys whose values are timings or the backend's own description: the only ones allowed to differ.
VOLATILE = {"ms", "seconds", "elapsed_s", "took_ms", "started_at", "finished_at", "params", "version", "last_run"}


@dataclass
class Switch:
    before: Settings  # SQLite + FAISS, as built
    after: Settings  # the same data home on PostgreSQL + Milvus Lite
    folder: Path  # styles.csv + images/ of the catalog's items
    copied: dict[str, Any]
    built: dict[str, Any]

    def env(self, which: str) -> dict[str, str | None]:
        s = self.before if which == "before" else self.after
        return {
            "SVETA_DATA_DIR": str(s.data_dir),
            "SVETA_DATABASE_URL": s.database_url,
            "SVETA_INDEX_URL": s.index_url or None,
            "SVETA_ONNX_THREADS": "1",
            "SVETA_API_KEY": KEY,
        }

    def source_id(self, article: str) -> str:
        lines = (self.folder / "styles.csv").read_text(encoding="utf-8").splitlines()
        header = lines[0].split(",")
        at = header.index("articleType")
        return next(line.split(",")[0] for line in lines[1:] if line.split(",")[at] == article)


def cli(env: dict[str, str | None], args: list[str]) -> dict[str, Any]:
    """Run one command with these settings in the environment; its --json object."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        _common._state.clear()
        try:
            result = CliRunner().invoke(app, args)
        finally:
            store = _common._state.get("catalog")
            if store is not None:
                store.engine.dispose()  # no connection left open on the Postgres server
            _common._state.clear()
    assert result.exit_code == 0, f"sveta {' '.join(args)}: {result.output}"
    return json.loads(result.stdout.strip().splitlines()[-1]) if "--json" in args else {}


def unordered(answer: Any) -> Any:
    """A search by words with its matches as a set: keyword ranks come from SQLite's BM25 on one side and
    PostgreSQL's ts_rank on the other, two formulas, so the fused order and scores may differ; what was understood,
    the filters and which products answer may not."""
    if not isinstance(answer, dict) or "understood" not in answer:
        return answer
    matches = sorted(({k: v for k, v in m.items() if k != "score"} for m in answer["matches"]), key=str)
    return answer | {"matches": matches}


def scrub(value: Any) -> Any:
    """The answer without timings, scores rounded (float32 sums in another order differ in the 7th digit)."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        items = [scrub(v) for v in value]
        if items and all(isinstance(v, dict) and "score" in v for v in items):
            # equal scores (the same photo listed twice) may come in either order from either engine
            items.sort(key=lambda v: (-v["score"], json.dumps(v, sort_keys=True)))
            # and where a tie straddles the k-th place, which of them makes the cut is the engine's choice
            last = items[-1]["score"]
            items = [v if v["score"] != last else {"score": last, "tied at the cut": True} for v in items]
        return items
    if isinstance(value, float):
        return round(value, 4)
    return value


@pytest.fixture(scope="module")
def original(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    """The catalog as built on the defaults, once for both Milvus targets; each switches a copy of it."""
    before, catalog, folder = build_catalog(myntra, tmp_path_factory.mktemp("original"))
    catalog.engine.dispose()
    return before, folder


@pytest.fixture(scope="module", params=["milvus-lite", pytest.param("milvus-server", marks=SERVER)])
def switch(
    request: pytest.FixtureRequest,
    original: tuple[Settings, Path],
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
) -> Iterator[Switch]:
    if request.param == "milvus-lite":
        pytest.importorskip("milvus_lite", reason="Milvus Lite needs pip install 'sveta[milvus]'")
        index_url = "milvus-lite:milvus"
    else:
        pytest.importorskip("pymilvus", reason="Milvus needs pip install 'sveta[milvus]'")
        index_url = f"milvus://{request.getfixturevalue('milvus_address')}/{unique('switch')}"
    reset_postgres(postgres_url)
    (before, folder), home = original, tmp_path_factory.mktemp("switch")
    # A copy of the data home is the one that switches; the original stays on the defaults, to compare with.
    shutil.copytree(before.data_dir, home / "switched")
    moved = before.model_copy(update={"data_dir": home / "switched"})
    after = moved.model_copy(update={"database_url": postgres_url, "index_url": index_url})
    staged = Switch(moved, after, folder, {}, {})
    copied = cli(staged.env("before"), ["catalog", "copy", postgres_url, "--json"])
    built = cli(staged.env("after"), ["index", "build", "--json"])  # the one command after the settings change
    yield Switch(before, after, folder, copied, built)


def test_the_copy_keeps_every_row_and_the_build_every_vector(switch: Switch) -> None:
    stores = [open_catalog(s.catalog_url) for s in (switch.before, switch.after)]
    try:
        original, copy = (table_counts(s) for s in stores)
        assert copy == original == switch.copied["tables"] and original["products"] == 104
        assert switch.built["count"] == original["images"] and switch.built["embedder"] == "tuned:catalog"
        assert switch.built["embedded"] == original["images"] and switch.built["failed"] == 0
        assert "sveta@" in switch.copied["target"] and "postgresql" in switch.copied["target"]
    finally:
        for store in stores:
            store.engine.dispose()
    info = cli(switch.env("after"), ["index", "info", "--json"])
    assert info["params"]["backend"] == "milvus" and info["count"] == original["images"]


def test_copying_into_a_catalog_that_holds_rows_is_refused(switch: Switch) -> None:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in switch.env("before").items():
            patch.setenv(name, value) if value is not None else patch.delenv(name, raising=False)
        _common._state.clear()
        result = CliRunner().invoke(app, ["catalog", "copy", switch.after.catalog_url])
        _common._state["catalog"].engine.dispose()
        _common._state.clear()
    assert result.exit_code == CatalogError.exit_code and "already holds rows" in result.output
    assert "Traceback" not in result.output


def commands(switch: Switch, wardrobe: Path) -> list[list[str]]:
    shirt, jeans, bag = (switch.source_id(a) for a in ("Shirts", "Jeans", "Handbags"))
    photos = switch.folder / "images"
    listed = [
        ["catalog", "stats", "--json"],
        ["similar", shirt, "--k", "6", "--json"],
        ["similar", bag, "--k", "4", "--category", "Handbags", "--json"],
        ["search", str(photos / f"{jeans}.jpg"), "--k", "5", "--json"],
        ["search", str(photos / f"{jeans}.jpg"), "--category", "any", "--gender", "Women", "--k", "5", "--json"],
        ["search", "--text", "blue denim jeans for men", "--k", "5", "--json"],
        ["tag", shirt, "--json"],
        ["complete", shirt, "--k", "2", "--json"],
        ["audit", "--json"],
        ["wardrobe", str(wardrobe), "--json"],
        ["index", "update", "--json"],
    ]
    try:
        import mediapipe  # noqa: F401

        listed.append(["look", str(PHOTOS / "person-tank-top-jeans.jpg"), "--k", "2", "--json"])
    except ImportError:
        pass
    return listed


def test_every_cli_command_answers_as_before(switch: Switch, tmp_path: Path) -> None:
    wardrobe = tmp_path / "wardrobe"
    wardrobe.mkdir()
    for article in ("Shirts", "Jeans", "Casual Shoes"):
        sid = switch.source_id(article)
        shutil.copy(switch.folder / "images" / f"{sid}.jpg", wardrobe / f"{sid}.jpg")
    for args in commands(switch, wardrobe):
        before, after = (unordered(scrub(cli(switch.env(w), args))) for w in ("before", "after"))
        assert after == before, f"sveta {' '.join(args)} differs after the switch"
    cli(switch.env("after"), ["images", "fetch"])
    doctor = cli(switch.env("after"), ["doctor", "--json"])
    assert doctor["ok"] is True, [c for c in doctor["checks"] if c["status"] == "fail"]
    synced = cli(switch.env("after"), ["sync", "--json"])
    assert not synced["failed"], synced


def requests(switch: Switch) -> list[tuple[str, str, dict[str, Any]]]:
    shirt, jeans = switch.source_id("Shirts"), switch.source_id("Jeans")
    photo = (switch.folder / "images" / f"{jeans}.jpg").read_bytes()
    upload = {"files": {"file": ("jeans.jpg", photo, "image/jpeg")}}
    person = {"files": {"file": ("person.jpg", (PHOTOS / "person-tank-top-jeans.jpg").read_bytes(), "image/jpeg")}}
    return [
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("GET", "/api/products", {"params": {"category": "Shirt", "limit": 5}}),
        ("GET", "/api/products", {"params": {"gender": "Women", "in_stock": "true", "offset": 3, "limit": 4}}),
        ("GET", f"/api/products/{shirt}", {}),
        ("GET", "/api/images/1", {}),
        ("GET", f"/api/products/{shirt}/image", {}),
        ("GET", f"/api/products/{shirt}/similar", {"params": {"k": 5}}),
        ("POST", "/api/search/photo", {"params": {"k": 5}, **upload}),
        ("POST", "/api/search/photo", {"params": {"k": 5, "category": "any", "gender": "Men"}, **upload}),
        ("GET", "/api/search/text", {"params": {"q": "white top for women", "k": 5}}),
        ("GET", f"/api/complete/{shirt}", {"params": {"k": 2}}),
        ("POST", "/api/complete", {"params": {"k": 2}, **upload}),
        ("POST", "/api/tag", upload),
        ("POST", "/api/look", {"params": {"k": 2}, **person}),
        ("GET", "/api/audit", {"params": {"limit": 5}}),
        ("GET", "/api/stats", {}),
        ("GET", "/api/map", {"params": {"method": "pca", "limit": 50}}),
        ("GET", "/api/sources", {}),
    ]


def _answer(response: Any) -> Any:
    kind = response.headers.get("content-type", "")
    return unordered(scrub(response.json())) if kind.startswith("application/json") else response.content


def test_every_api_endpoint_answers_as_before(switch: Switch) -> None:
    with TestClient(create_app(switch.before)) as old, TestClient(create_app(switch.after)) as new:
        for method, path, options in requests(switch):
            if path == "/api/look":
                pytest.importorskip("mediapipe", reason="sveta look needs the people extra")
            answers = [c.request(method, path, **options) for c in (old, new)]
            assert [a.status_code for a in answers] == [200, 200], (path, answers[1].text[:300])
            assert _answer(answers[1]) == _answer(answers[0]), f"{method} {path} differs after the switch"
        assert "sveta_catalog_up 1" in new.get("/metrics").text
        assert new.get("/openapi.json").json()["paths"] == old.get("/openapi.json").json()["paths"]


def test_writes_land_in_postgres_through_the_api(switch: Switch) -> None:
    shop = ShopifyStore(make_products(5))
    settings = switch.after.model_copy(update={"allowed_private_hosts": ["127.0.0.1"], "crawl_delay_s": 0.0})
    with serve(shop) as base, TestClient(create_app(settings)) as client:
        created = client.post("/api/sources", headers=WRITE, json={"location": base})
        assert created.status_code == 201, created.text
        run = client.post(f"/api/sources/{created.json()['id']}/crawl", headers=WRITE)
        assert run.status_code == 202, run.text
        finished = wait_for_run(client, run.json()["href"])
    assert finished["status"] == "ok" and finished["new"] == 5, finished
    store: CatalogStore = open_catalog(settings.catalog_url)
    try:
        assert store.engine.dialect.name == "postgresql" and store.count_products(finished["source"]) == 5
    finally:
        store.engine.dispose()
