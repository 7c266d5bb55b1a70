"""The API's JSON is a contract: every JSON route answers as the code before the response models did (recorded in
tests/data/api_golden.json from commit 8f3ce44), and /openapi.json gives every JSON response body a schema.

Re-record (only when a response is meant to change): ``python tests/test_api_contract.py record``."""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sveta.api import create_app
from sveta.settings import Settings
from tests.image_server import Reply, image_server
from tests.test_api import KEY, build_catalog

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"  # beside the checkout, as in conftest (this file also runs as a script)
PHOTOS = SHARED / "fixtures" / "photos"
GOLDEN = HERE / "data" / "api_golden.json"
WRITE = {"X-API-Key": KEY}

# Values a model decides (scores, predictions, 2-D maps) may differ in the last digits between machines: for these
# answers (whole, or the listed top-level keys) only the shape is compared: keys in order, JSON types, nulls.
LOOSE: dict[str, set[str] | None] = {
    "product": {"attributes", "mismatches"},
    **dict.fromkeys(("similar", "similar-category", "search-text", "search-text-filtered"), None),
    **dict.fromkeys(("search-photo", "search-photo-filtered", "search-url"), None),
    **dict.fromkeys(("complete-product", "complete-photo", "tag", "audit", "map-pca", "map-tsne", "look"), None),
}
NEEDS = {"look": "mediapipe"}  # answers that need an extra: skipped without it
TIMESTAMPS = {"created_at", "first_seen_at", "updated_at", "gone_at", "started_at", "finished_at"}
VOLATILE = {"ms", "seconds", "version"}  # timings and index version ids: only their type is kept
# Routes that answer no JSON body; every other route must declare a response schema in /openapi.json (the web page
# and its static files, / and /static/{name}, are not in it at all).
NOT_JSON = {
    ("GET", "/metrics"),  # Prometheus text
    ("GET", "/api/products/{ref}/image"),  # a photo file
    ("GET", "/api/images/{image_id}"),  # a photo file
}


@dataclass
class Recorder:
    """Sends the requests and keeps each answer, normalised: temp folders and URLs named, volatile values masked."""

    client: TestClient
    roots: dict[str, str]
    answers: dict[str, Any] = field(default_factory=dict)

    def call(self, name: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        body = response.json()
        self.answers[name] = {"status": response.status_code, "body": normalised(body, self.roots)}
        return body


def normalised(value: Any, roots: dict[str, str], key: str | None = None) -> Any:
    """``value`` with the machine's folders and URLs named by ``roots`` and the values of the run masked."""
    if isinstance(value, dict):
        return {k: normalised(v, roots, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalised(v, roots) for v in value]
    if key in VOLATILE and value is not None:
        return f"<{type(value).__name__}>"
    if key in TIMESTAMPS and isinstance(value, str):
        return re.sub(r"\d", "9", re.sub(r"\.\d+", "", value))  # the format stays, the instant goes
    if isinstance(value, str):
        for name, root in roots.items():
            value = value.replace(root, name)
    return value


def first_id(folder: Path, article: str) -> str:
    with (folder / "styles.csv").open(encoding="utf-8") as handle:
        return next(r["id"] for r in csv.DictReader(handle) if r["articleType"] == article)


def upload(path: Path, name: str) -> dict[str, Any]:
    return {"file": (name, path.read_bytes(), "image/jpeg")}


def conversation(rec: Recorder, folder: Path, work: Path, url: str) -> None:
    """Every JSON route, with and without filters, in an order that leaves the catalog as each step expects."""
    shirt, jeans, bag = (first_id(folder, t) for t in ("Shirts", "Jeans", "Handbags"))
    jeans_photo = folder / "images" / f"{jeans}.jpg"
    _reads(rec, shirt)
    _searches(rec, bag, jeans_photo, url)
    rec.call("complete-product", "GET", f"/api/complete/{shirt}", params={"k": 2})
    rec.call("complete-photo", "POST", "/api/complete", params={"k": 2}, files=upload(jeans_photo, "my-jeans.jpg"))
    rec.call("tag", "POST", "/api/tag", files=upload(PHOTOS / "product-handbag.jpg", "bag.jpg"))
    rec.call("audit", "GET", "/api/audit", params={"limit": 2, "offset": 1})
    rec.call("map-pca", "GET", "/api/map", params={"limit": 12})
    rec.call("map-tsne", "GET", "/api/map", params={"method": "tsne", "limit": 12})
    rec.call("look", "POST", "/api/look", params={"k": 2}, files=upload(PHOTOS / "person-tank-top-jeans.jpg", "p.jpg"))
    _sources(rec, folder, work)


def _reads(rec: Recorder, shirt: str) -> None:
    rec.call("healthz", "GET", "/healthz")
    rec.call("readyz", "GET", "/readyz")
    rec.call("products", "GET", "/api/products", params={"limit": 4})
    filtered = {"category": ["Jeans", "Tops"], "gender": "Men", "limit": 3, "offset": 1, "in_stock": True}
    rec.call("products-filtered", "GET", "/api/products", params=filtered)
    rec.call("product", "GET", f"/api/products/{shirt}")
    rec.call("product-missing", "GET", "/api/products/999999999")
    rec.call("stats", "GET", "/api/stats", params={"top_words": 5})
    rec.call("stats-no-words", "GET", "/api/stats", params={"top_words": 0})


def _searches(rec: Recorder, bag: str, photo: Path, url: str) -> None:
    rec.call("similar", "GET", f"/api/products/{bag}/similar", params={"k": 3})
    similar = {"k": 3, "category": "Handbags", "in_stock": True}
    rec.call("similar-category", "GET", f"/api/products/{bag}/similar", params=similar)
    rec.call("search-text", "GET", "/api/search/text", params={"q": "blue denim jeans for men", "k": 3})
    text = {"q": "navy formal shirt", "k": 3, "gender": "Men", "colour": ["Blue", "Navy Blue"], "source": "subset"}
    rec.call("search-text-filtered", "GET", "/api/search/text", params=text)
    rec.call("search-photo", "POST", "/api/search/photo", params={"k": 3}, files=upload(photo, "jeans.jpg"))
    women = {"k": 3, "category": "any", "gender": "Women", "max_price": 5000}
    rec.call("search-photo-filtered", "POST", "/api/search/photo", params=women, files=upload(photo, "j.jpg"))
    rec.call("search-url", "POST", "/api/search/url", params={"k": 3}, json={"url": url})


def _sources(rec: Recorder, folder: Path, work: Path) -> None:
    rec.call("sources", "GET", "/api/sources")
    again = {"kind": "csv", "location": str(folder / "styles.csv"), "name": "subset"}
    rec.call("source-again", "POST", "/api/sources", json=again, headers=WRITE)
    shop = work / "shop"
    (shop / "Shirts").mkdir(parents=True)
    shutil.copy(PHOTOS / "product-handbag.jpg", shop / "Shirts" / "one.jpg")
    new = {"kind": "folder", "location": str(shop), "name": "shop"}
    rec.call("source-new-without-key", "POST", "/api/sources", json=new)
    source = rec.call("source-new", "POST", "/api/sources", json=new, headers=WRITE)
    run = rec.call("crawl", "POST", f"/api/sources/{source['id']}/crawl", headers=WRITE)
    _wait(rec.client, run["href"])
    rec.call("crawl-run", "GET", run["href"])
    rec.call("crawl-runs", "GET", "/api/crawl-runs", params={"limit": 5})
    rec.call("crawl-runs-of-source", "GET", "/api/crawl-runs", params={"source": "subset"})
    rec.call("crawl-run-missing", "GET", "/api/crawl-runs/999")
    rec.call("sources-after", "GET", "/api/sources")


def _wait(client: TestClient, href: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get(href).json()["status"] == "running":
        assert time.monotonic() < deadline, f"the crawl at {href} did not finish in {timeout_s} s"
        time.sleep(0.05)


def record(home: Path) -> dict[str, Any]:
    """Every answer of the API over the small real catalog of test_api, built under ``home``."""
    settings, catalog, folder = build_catalog(SHARED / "datasets" / "myntra-small", home)
    settings = settings.model_copy(update={"allowed_private_hosts": ["127.0.0.1"]})
    shoe = (folder / "images" / f"{first_id(folder, 'Casual Shoes')}.jpg").read_bytes()
    try:
        with image_server() as server, TestClient(create_app(settings)) as client:
            url = server.add("/shoe.jpg", Reply(shoe))
            rec = Recorder(client, {"<url>": url, "<home>": str(home.resolve()), "<shared>": str(SHARED.resolve())})
            conversation(rec, folder, home / "more", url)
        with TestClient(create_app(Settings(data_dir=home / "empty"))) as empty:
            rec.client = empty  # a server with no catalog yet: not ready, no index
            for name in ("readyz", "api/stats", "api/sources"):
                rec.call(f"{name.removeprefix('api/')}-empty", "GET", f"/{name}")
        return rec.answers
    finally:
        catalog.engine.dispose()


def same(old: Any, new: Any, where: str, loose: bool) -> None:
    """``new`` is ``old``: the same keys in the same order, the same JSON types, and (unless loose) the same values."""
    if isinstance(old, dict):
        assert isinstance(new, dict) and list(new) == list(old), f"{where}: keys {list(old)} became {new}"
        for key in old:
            same(old[key], new[key], f"{where}.{key}", loose)
    elif isinstance(old, list):
        assert isinstance(new, list) and (loose or len(new) == len(old)), f"{where}: {old} became {new}"
        for n, (a, b) in enumerate(zip(old, new, strict=False)):
            same(a, b, f"{where}[{n}]", loose)
    elif loose:
        assert old is None or new is None or type(new) is type(old), f"{where}: {old!r} became {new!r}"
    else:
        assert type(new) is type(old) and new == old, f"{where}: {old!r} became {new!r}"


def golden() -> dict[str, Any]:
    """The recorded answers; none when the file is missing (then the first test below says so)."""
    if not GOLDEN.is_file():
        return {}
    answers: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return answers


@pytest.fixture(scope="module")
def answers(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return record(tmp_path_factory.mktemp("contract"))


def test_the_same_requests_are_recorded(answers: dict[str, Any]) -> None:
    assert GOLDEN.is_file(), f"{GOLDEN} is missing: record it (see this module's docstring)"
    assert list(answers) == list(golden())


@pytest.mark.parametrize("name", golden())
def test_each_answer_is_as_before(answers: dict[str, Any], name: str) -> None:
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    old, new = golden()[name], answers[name]
    assert new["status"] == old["status"], new
    loose = LOOSE.get(name, set())
    if loose is None or not isinstance(old["body"], dict):
        same(old["body"], new["body"], name, loose is None)
        return
    assert list(new["body"]) == list(old["body"]), f"{name}: keys {list(old['body'])} became {list(new['body'])}"
    for key, value in old["body"].items():
        same(value, new["body"][key], f"{name}.{key}", key in loose)


# -- /openapi.json ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi"))).openapi()
    return document


def untyped(document: dict[str, Any]) -> set[str]:
    """ "METHOD path" of each JSON route whose success response has no schema with properties."""
    found = set()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if (method.upper(), path) in NOT_JSON:
                continue
            code = next(c for c in operation["responses"] if c.startswith("2"))
            schema = operation["responses"][code].get("content", {}).get("application/json", {}).get("schema", {})
            if not _has_properties(schema, document):
                found.add(f"{method.upper()} {path}")
    return found


def _has_properties(schema: dict[str, Any], document: dict[str, Any]) -> bool:
    if schema.get("type") == "array":
        return _has_properties(schema.get("items", {}), document)
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return bool(schema.get("properties"))


def test_every_json_route_documents_its_response_body(openapi: dict[str, Any]) -> None:
    routes = {(m.upper(), p) for p, methods in openapi["paths"].items() for m in methods}
    assert routes >= NOT_JSON  # the exemptions name real routes
    assert len(routes - NOT_JSON) >= 20
    assert untyped(openapi) == set()


def test_an_audit_finding_keeps_its_keys_and_values() -> None:
    """The small catalog has no finding to record, so one is made here."""
    from sveta.api.schemas import Finding
    from sveta.engines import audit

    found = audit.Finding(
        1, "Puma Men Navy Shirt", "a.jpg", "colour", "Navy Blue", "seller", "baseColour", 0.01, "Black", 0.93
    )
    answer = Finding.model_validate(found.as_dict()).model_dump(mode="json")
    assert list(answer.items()) == list(found.as_dict().items())


if __name__ == "__main__" and sys.argv[1:] == ["record"]:
    with tempfile.TemporaryDirectory(prefix="sveta-contract-") as tmp:
        recorded = record(Path(tmp))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(recorded)} answers -> {GOLDEN} ({GOLDEN.stat().st_size:,} bytes)")
