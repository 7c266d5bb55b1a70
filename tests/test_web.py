"""The web page in a real headless Chromium (photo, boxes, filters, product page), /api/stats, /api/map, projections."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from sveta.api import create_app
from sveta.catalog.browse import attribute_mismatches
from sveta.index.projection import pca_2d, tsne_2d
from tests.test_api import PHOTOS, TYPES, build_catalog

PHOTO = PHOTOS / "person-tank-top-jeans.jpg"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Served:
    url: str
    client: httpx.Client

    def product(self, product_id: int | str) -> dict[str, Any]:
        response = self.client.get(f"/api/products/{product_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture(scope="module")
def served(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app over the small real catalog of test_api, served by uvicorn on a free local port in a thread."""
    import uvicorn

    settings, catalog, _ = build_catalog(myntra, tmp_path_factory.mktemp("web"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="web-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=120) as client:
        yield Served(url, client)
    server.should_exit = True
    thread.join(timeout=10)
    catalog.engine.dispose()


# -- the page and its files -----------------------------------------------------------------------


def test_the_page_and_its_static_files_are_served(served: Served) -> None:
    page = served.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js"></script>' in page.text
    for name, kind in [("app.js", "text/javascript"), ("look.js", "text/javascript"), ("style.css", "text/css")]:
        response = served.client.get(f"/static/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind), name
    assert 'capture: capture ? "environment"' in served.client.get("/static/look.js").text
    for bad in ["/static/nothing.js", "/static/..%2F__init__.py", "/static/../__init__.py"]:
        assert served.client.get(bad).status_code == 404, bad
    paths = set(served.client.get("/openapi.json").json()["paths"])
    assert {"/api/stats", "/api/map", "/api/products/{ref}/image"} <= paths and "/" not in paths


def test_without_an_index_the_page_and_stats_answer_and_the_map_says_what_is_missing(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from sveta.settings import Settings

    with TestClient(create_app(Settings(data_dir=tmp_path / "empty"))) as client:
        assert client.get("/").status_code == 200
        stats = client.get("/api/stats").json()
        assert stats["products"] == 0 and stats["index"] is None
        error = client.get("/api/map").json()["error"]
    assert error["code"] == "not_configured" and "sveta index build" in error["hint"]


def test_the_static_files_are_package_data() -> None:
    import importlib.resources

    static = importlib.resources.files("sveta.web") / "static"
    assert {"index.html", "app.js", "style.css"} <= {p.name for p in static.iterdir()}


# -- /api/stats, /api/map, the product photo, mismatches ------------------------------------------


def test_stats_count_the_catalog(served: Served) -> None:
    stats = served.client.get("/api/stats").json()
    total = sum(TYPES.values())
    assert stats["products"] == total and sum(stats["by_category"].values()) == total
    assert stats["by_category"]["Jeans"] == TYPES["Jeans"] and stats["images"] == {"cached": total}
    assert sum(stats["by_gender"].values()) == total and stats["top_title_words"]
    assert stats["index"]["vectors"] == total and stats["index"]["embedder"] == "tuned:catalog"
    assert served.client.get("/api/stats?top_words=0").json()["top_title_words"] == {}


def test_the_map_projects_every_product_and_keeps_categories_apart(served: Served) -> None:
    started = time.perf_counter()
    result = served.client.get("/api/map").json()
    total = sum(TYPES.values())
    assert result["method"] == "pca" and result["count"] == result["total"] == total
    assert len(result["explained"]) == 2 and 0 < result["explained"][1] <= result["explained"][0] < 1
    points = result["points"]
    assert len({p["product_id"] for p in points}) == total
    assert result["categories"] == sorted({p["category"] for p in points})
    xy = np.array([[p["x"], p["y"]] for p in points])
    assert np.abs(xy).max() == pytest.approx(1.0, abs=1e-3) and np.abs(xy).max() <= 1.0
    assert _separation(points) > 1.3, "the categories' points should sit nearer each other than others"
    photo = served.client.get(points[0]["href"])
    assert photo.status_code == 200 and photo.headers["content-type"].startswith("image/")
    card = served.product(points[0]["product_id"])
    assert card["title"] == points[0]["title"] and card["category"] == points[0]["category"]
    first = time.perf_counter() - started
    started = time.perf_counter()
    assert served.client.get("/api/map").json() == result  # cached for the index version
    assert time.perf_counter() - started < max(first, 0.5)
    small = served.client.get("/api/map?limit=10").json()
    assert small["count"] == 10 and small["total"] == total


def test_the_tsne_map_is_a_smaller_sample_scaled_the_same(served: Served) -> None:
    deadline = time.monotonic() + 120  # made in the background: the PCA map answers meanwhile
    while (result := served.client.get("/api/map?method=tsne&limit=60").json())["status"] == "computing":
        assert result["method"] == "pca" and result["count"] == 60 and time.monotonic() < deadline
        time.sleep(0.05)
    assert result["method"] == "tsne" and result["count"] == 60 and result["explained"] == []
    xy = np.array([[p["x"], p["y"]] for p in result["points"]])
    assert np.isfinite(xy).all() and np.abs(xy).max() == pytest.approx(1.0, abs=1e-3)
    error = served.client.get("/api/map?method=umap").json()["error"]
    assert error["code"] == "validation_error"


def _separation(points: list[dict[str, Any]]) -> float:
    """Mean distance to other categories' points over mean distance to the own category's points."""
    xy = np.array([[p["x"], p["y"]] for p in points])
    labels = np.array([p["category"] for p in points])
    d = np.linalg.norm(xy[:, None] - xy[None, :], axis=-1)
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    return float(d[~same & ~np.eye(len(xy), dtype=bool)].mean() / d[same].mean())


def test_a_product_photo_for_cards_and_a_404_without_one(served: Served) -> None:
    photo = served.client.get("/api/products/1/image")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content[:2] == b"\xff\xd8" and "max-age" in photo.headers["cache-control"]
    assert served.client.get("/api/products/no-such/image").json()["error"]["code"] == "not_found"


def test_mismatches_compare_the_origins_normalised() -> None:
    same = [("category", "Tshirts", "seller"), ("category", "T-Shirt", "text"), ("category", "Tshirts", "image")]
    assert attribute_mismatches(same) == []
    differ = [("gender", "Men", "seller"), ("gender", "Boys", "text"), ("colour", "Navy Blue", "seller")]
    assert attribute_mismatches(differ) == [{"name": "gender", "values": {"seller": ["Men"], "text": ["Boys"]}}]


def test_a_product_lists_its_mismatches(served: Served) -> None:
    product = served.product(1)
    assert isinstance(product["mismatches"], list)
    by_origin: dict[str, dict[str, str]] = {}
    for a in product["attributes"]:
        by_origin.setdefault(a["name"], {})[a["origin"]] = a["value"]
    assert {m["name"] for m in product["mismatches"]} <= set(by_origin)


# -- the look with filters ------------------------------------------------------------------------


def test_the_look_takes_filters_and_a_category(served: Served) -> None:
    pytest.importorskip("mediapipe", reason="sveta look needs the people extra")
    files = {"file": ("person.jpg", PHOTO.read_bytes(), "image/jpeg")}
    plain = served.client.post("/api/look?k=4", files=files).json()
    assert "filters" not in plain
    same = served.client.post("/api/look?k=4&in_stock=true", files=files).json()  # every product is in stock
    assert same["filters"] == {"available": True}
    assert [g["matches"] for g in same["garments"]] == [g["matches"] for g in plain["garments"]]
    men = served.client.post("/api/look?k=4&gender=Men", files=files).json()
    assert men["filters"] == {"gender": ["Men"]} and len(men["garments"]) == len(plain["garments"])
    genders = [served.product(m["product_id"])["gender"] for g in men["garments"] for m in g["matches"]]
    assert genders and set(genders) == {"Men"}  # a garment's categories may have no men's items at all
    jeans = served.client.post("/api/look?k=3&category=Jeans&colour=Blue", files=files).json()
    assert jeans["filters"] == {"category": ["Jeans"], "colour": ["Blue"]}
    matches = [m for g in jeans["garments"] for m in g["matches"]]
    assert matches and {(m["category"], m["colour"]) for m in matches} == {("Jeans", "Blue")}


def test_projections_pca_and_tsne() -> None:
    rng = np.random.default_rng(1)
    blobs = np.vstack([rng.normal(0, 0.05, (30, 8)) + c for c in (np.eye(8)[0], np.eye(8)[1] * 3)]).astype(np.float32)
    xy, explained = pca_2d(blobs)
    assert xy.shape == (60, 2) and explained[0] > 0.9
    assert np.sign(xy[:30, 0]).tolist().count(np.sign(xy[0, 0])) == 30
    embedded = tsne_2d(blobs, perplexity=10)
    a, b = embedded[:30], embedded[30:]
    spread = max(np.linalg.norm(a - a.mean(0), axis=1).mean(), np.linalg.norm(b - b.mean(0), axis=1).mean())
    assert np.linalg.norm(a.mean(0) - b.mean(0)) > 3 * spread
    assert pca_2d(blobs[:1])[0].shape == (1, 2) and tsne_2d(blobs[:3]).shape == (3, 2)


# -- the page in a browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the dev extra)")
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("the browser test needs Debian's chromium: apt-get install chromium")
    return path


def test_the_page_finds_garments_filters_them_and_opens_a_product(
    served: Served, chromium: str, tmp_path: Path
) -> None:
    pytest.importorskip("mediapipe", reason="sveta look needs the people extra")
    from playwright.sync_api import sync_playwright

    shots = _shot_folders(tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.set_default_timeout(90_000)
            page.goto(served.url + "/")
            camera = page.locator("input[data-testid=camera]")
            assert camera.get_attribute("capture") == "environment" and camera.get_attribute("accept") == "image/*"

            page.set_input_files("input[data-testid=file]", str(PHOTO))
            page.wait_for_selector(".garment .card")
            assert page.locator(".box").count() >= 2
            labels = page.locator(".box-label").all_inner_texts()
            assert any("Jeans" in t or "Trousers" in t for t in labels), labels
            assert _inside_photo(page), "the boxes should lie on the photo"
            _shoot(page, shots, "look.png")

            for index in range(page.locator(".garment").count()):
                garment = page.locator(".garment").nth(index)
                before = _cards(garment)
                change = _changing_filter(served, garment, before)
                if change is not None:
                    break
            assert change is not None, "no filter would change the cards"
            field, value = change
            garment.locator(f"select[name={field}]").select_option(value)
            page.wait_for_function(
                "([i, v]) => document.querySelectorAll('.garment')[i].querySelector('.garment-note').textContent"
                ".includes('Filtered: ' + v)",
                arg=[index, value],
            )
            after = _cards(garment)
            assert after and after != before
            assert {served.product(p)[field] for p in after} == {value}
            _shoot(page, shots, "look-filtered.png")

            garment.locator(".card").first.click()
            page.wait_for_selector("[data-row=complete] .card")
            assert page.locator("[data-row=complete] .card .reason").count() > 0
            assert page.locator(".attributes tbody tr").count() > 0 and page.locator(".main-photo").count() == 1
            page.wait_for_selector("[data-row=similar] .card")
            _shoot(page, shots, "product.png")

            page.goto(served.url + "/#/stats")
            page.wait_for_selector(".chart .bar")
            _shoot(page, shots, "stats.png")
            page.goto(served.url + "/#/map")
            page.wait_for_selector(".map[data-loaded]")
            assert page.locator(".legend-item").count() == len(TYPES)
            _shoot(page, shots, "map.png")
            page.goto(served.url + "/#/map?method=tsne")  # the PCA map, then the t-SNE one once it is made
            page.wait_for_function("document.querySelector('.map .muted').textContent.includes('t-SNE of the')")
            assert not errors, errors
        finally:
            browser.close()
    assert {p.name for p in shots[0].iterdir()} == {
        "look.png",
        "look-filtered.png",
        "product.png",
        "stats.png",
        "map.png",
    }


def _cards(garment: Any) -> list[str]:
    return [str(c.get_attribute("data-product")) for c in garment.locator(".card").all()]


def _changing_filter(served: Served, garment: Any, shown: list[str]) -> tuple[str, str] | None:
    """A gender, else a colour, that the garment's categories offer and fewest of the shown cards have."""
    found = garment.locator("select[name=category] option").first.inner_text()  # "As found (Top, T-Shirt)"
    categories = found.partition("(")[2].rstrip(")").split(", ")
    offered = served.client.get("/api/products", params={"category": categories, "limit": 500}).json()["items"]
    shown_cards = [served.product(p) for p in shown]
    for field in ("gender", "colour"):
        counts = Counter(c[field] for c in shown_cards)
        choices = Counter(c[field] for c in offered if c[field] and counts[c[field]] < len(shown))
        if choices:
            return field, min(choices, key=lambda v: (counts[v], -choices[v]))
    return None


def _inside_photo(page: Any) -> bool:
    photo = page.locator(".photo-box img").bounding_box()
    for box in page.locator(".box").all():
        b = box.bounding_box()
        if b["x"] < photo["x"] - 2 or b["y"] < photo["y"] - 2:
            return False
        if (
            b["x"] + b["width"] > photo["x"] + photo["width"] + 2
            or b["y"] + b["height"] > photo["y"] + photo["height"] + 2
        ):
            return False
    return True


def _shot_folders(tmp_path: Path) -> list[Path]:
    folders = [tmp_path / "screenshots"]
    if os.environ.get("SVETA_SCREENSHOTS"):
        folders.append(Path(os.environ["SVETA_SCREENSHOTS"]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def _shoot(page: Any, folders: list[Path], name: str) -> None:
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # lazy photos load
    page.wait_for_timeout(300)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(folders[0] / name), full_page=True)
    for folder in folders[1:]:
        shutil.copy(folders[0] / name, folder / name)
