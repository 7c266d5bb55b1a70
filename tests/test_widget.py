"""The storefront widget: /widget.js and CORS in process, and its components in a real headless Chromium on a shop
page of another local origin (similar, complete the look, photo and text search, clicks, refusals, the read key,
rules)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from sveta.api import create_app
from sveta.api.cors import ALLOW_HEADERS
from sveta.catalog.store import CatalogStore
from sveta.settings import Settings
from sveta.web import STATIC
from tests.image_server import ImageServer, Reply, image_server
from tests.test_api import KEY, PHOTOS, build_catalog
from tests.test_web import CHROMIUM_ARGS, chromium  # noqa: F401  (a fixture)

SHOP = "http://shop.test"
READ_KEY = "widget-read-key-0123"
PHOTO = PHOTOS / "person-tank-top-jeans.jpg"
WIDGET_MOST = 30_000  # bytes: the "under 30 KB"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The app over an empty data home (CORS needs no catalog), with one allowed origin and a read key."""
    settings = Settings(data_dir=tmp_path / "data", cors_origins=[SHOP], api_read_key=READ_KEY)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


# -- /widget.js and CORS, in process ------------------------------------------------------------------


def test_the_widget_is_a_small_module_any_page_may_load_and_revalidate(client: TestClient) -> None:
    assert (STATIC / "widget.js").stat().st_size < WIDGET_MOST
    for origin in [SHOP, "http://elsewhere.test", None]:
        response = client.get("/widget.js", headers={"Origin": origin} if origin else {})
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/javascript")
        assert response.headers["access-control-allow-origin"] == "*", origin  # refused later, with a message
        assert "max-age=300" in response.headers["cache-control"] and len(response.content) < WIDGET_MOST
    assert "customElements.define" in response.text and "import.meta.url" in response.text
    etag = response.headers["etag"]
    again = client.get("/widget.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get("/widget.js", headers={"If-None-Match": '"other"'}).status_code == 200
    assert "/widget.js" not in client.get("/openapi.json").json()["paths"]


def test_an_allowed_origin_gets_its_preflight_and_can_read_answers_and_errors(client: TestClient) -> None:
    asked = ",".join(h.lower() for h in ALLOW_HEADERS)
    preflight = client.options(
        "/api/search/photo",
        headers={"Origin": SHOP, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": asked},
    )
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == SHOP
    assert {"GET", "POST"} <= set(preflight.headers["access-control-allow-methods"].split(", "))
    allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
    assert {h.lower() for h in ALLOW_HEADERS} <= allowed
    put = client.options("/api/sources", headers={"Origin": SHOP, "Access-Control-Request-Method": "DELETE"})
    assert put.status_code == 400  # only GET and POST cross origins
    answer = client.get("/api/products", headers={"Origin": SHOP, "X-API-Key": READ_KEY})
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == SHOP
    assert "Origin" in answer.headers["vary"]
    no_key = client.get("/api/products", headers={"Origin": SHOP})  # the page can read why: the widget logs it
    assert no_key.status_code == 401 and no_key.headers["access-control-allow-origin"] == SHOP
    assert "read key" in no_key.json()["error"]["message"]


def test_a_page_of_another_origin_is_refused_with_a_message_it_can_read(client: TestClient) -> None:
    other = "http://elsewhere.test:8080"
    for method, path in [("GET", "/api/products"), ("GET", "/healthz"), ("POST", "/api/search/photo")]:
        files = {"file": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")} if method == "POST" else None
        response = client.request(method, path, headers={"Origin": other, "X-API-Key": READ_KEY}, files=files)
        assert response.status_code == 403 and response.headers["access-control-allow-origin"] == other, path
        error = response.json()["error"]
        assert error["code"] == "origin_not_allowed" and error["message"] == (
            f"this page's origin {other} is not allowed to use this sveta server"
        )
        assert f"add {other} to SVETA_CORS_ORIGINS" in error["hint"]
    # its preflight passes, so that the browser sends the request and the widget can read the refusal
    preflight = client.options("/api/products", headers={"Origin": other, "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == other
    assert "X-Sveta-Surface" in preflight.headers["access-control-allow-headers"]


def test_same_origin_and_originless_requests_pass_untouched(client: TestClient) -> None:
    key = {"X-API-Key": READ_KEY}
    plain = client.get("/api/products", headers=key)
    own = client.get("/api/products", headers=key | {"Origin": "http://testserver"})  # TestClient's own host
    proxied = client.get(
        "/api/products", headers=key | {"Origin": "https://sveta.example", "Sec-Fetch-Site": "same-origin"}
    )
    for response in [plain, own, proxied]:
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_with_no_origins_configured_every_other_origin_is_refused(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path / "data"))) as test_client:
        response = test_client.get("/api/products", headers={"Origin": SHOP})
        assert response.status_code == 403 and SHOP in response.json()["error"]["message"]
        assert test_client.get("/api/products").status_code == 200


# -- the components in Chromium ------------------------------------------------------------------


@dataclass
class Storefront:
    api: str  # the sveta server
    shop: ImageServer  # an allowed origin's pages
    other: ImageServer  # an origin SVETA_CORS_ORIGINS does not name
    demo: dict[str, Any]  # a product with a handle
    below: str  # the source id of another product, for the lazy row
    catalog: CatalogStore


@pytest.fixture(scope="module")
def storefront(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    """sveta on one local port (the small real catalog of test_api, a read key), shop pages on two others."""
    import uvicorn

    built, catalog, _ = build_catalog(myntra, tmp_path_factory.mktemp("widget"))
    with catalog.engine.begin() as connection:  # a Shopify-like handle: the widget names products by it
        connection.execute(text("UPDATE products SET handle = 'demo-tee' WHERE id = 1"))
    with ExitStack() as stack:
        shop, other = stack.enter_context(image_server()), stack.enter_context(image_server())
        settings = built.model_copy(update={"cors_origins": [shop.base], "api_read_key": SecretStr(READ_KEY)})
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, name="widget-test-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        api = f"http://127.0.0.1:{port}"
        items = httpx.get(f"{api}/api/products?limit=50", headers={"X-API-Key": READ_KEY}).json()["items"]
        demo, below = items[0], next(p for p in items if p["category"] != items[0]["category"])
        try:
            yield Storefront(api, shop, other, demo, below["source_id"], catalog)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            catalog.engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _page(server: ImageServer, path: str, api: str, body: str, key: str | None = READ_KEY) -> str:
    config = f'<sveta-config key="{key}"></sveta-config>' if key else ""
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>shop</title>
<script type="module" src="{api}/widget.js"></script></head><body>{config}{body}</body></html>"""
    return server.add(path, Reply(html.encode(), "text/html; charset=utf-8"))


@dataclass
class Browser:
    page: Any
    console: list[tuple[str, str]]
    requests: list[Any]

    def messages(self, kind: str) -> list[str]:
        return [text for type_, text in self.console if type_ == kind]


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:  # noqa: F811
    pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the dev extra)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = launched.new_page(viewport={"width": 1200, "height": 800})
            page.set_default_timeout(90_000)
            seen = Browser(page, [], [])
            page.on("console", lambda m: seen.console.append((m.type, m.text)))
            page.on("pageerror", lambda error: seen.console.append(("pageerror", str(error))))
            page.on("request", lambda request: seen.requests.append(request))
            yield seen
            assert not seen.messages("pageerror"), seen.console
        finally:
            launched.close()


def _cards(page: Any, element: str) -> list[dict[str, str]]:
    cards = page.locator(f"{element} li[part=card] a")
    return [
        {"title": a.locator("img").get_attribute("alt"), "href": a.get_attribute("href"), "text": a.inner_text()}
        for a in cards.all()
    ]


@pytest.mark.slow
def test_similar_and_complete_rows_appear_lazily_and_clicks_are_recorded(
    storefront: Storefront, browser: Browser
) -> None:
    demo, page = storefront.demo, browser.page
    url = _page(
        storefront.shop,
        "/products/demo-tee?utm_source=mail",
        storefront.api,
        f"""<sveta-similar product="demo-tee" limit="6"></sveta-similar>
<sveta-complete-look product="{demo["source_id"]}"></sveta-complete-look>
<sveta-similar product="no-such-handle"></sveta-similar>
<div style="height:4000px"></div><sveta-similar id="below" product="{storefront.below}"></sveta-similar>""",
    )
    page.goto(url)
    page.wait_for_selector("sveta-similar[product=demo-tee] li[part=card] img[src]")
    page.wait_for_selector("sveta-complete-look li[part=card]")
    similar = _cards(page, "sveta-similar[product=demo-tee]")
    assert len(similar) == 6 and all(c["title"] and c["href"].startswith(storefront.shop.base) for c in similar)
    assert page.locator("sveta-similar[product=demo-tee] [role=status]").inner_text() == "6 similar items"
    assert page.locator("sveta-similar[product=demo-tee] h2").inner_text() == "Similar items"
    complete = _cards(page, "sveta-complete-look")
    assert complete and all(c["href"].startswith(storefront.shop.base + "/products/") for c in complete)
    assert page.locator("sveta-complete-look [part=slot]").count() == len(complete)
    fetched = [r.url for r in browser.requests if re.search(r"/api/products/[^/?]+$", r.url)]
    assert not fetched, fetched  # its items carry their url and handle: no product fetched per item

    # the unknown handle: nothing shown, the API's reason in a warning
    _wait_for(browser, "warning", "no-such-handle")
    unknown = page.locator("sveta-similar[product=no-such-handle]")
    assert unknown.locator("li").count() == 0 and unknown.bounding_box()["height"] <= 1
    assert any("sveta:" in m and "no-such-handle" in m and "no product" in m for m in browser.messages("warning"))

    # lazy: the row below the fold asks nothing until it is scrolled into view
    asked = [r.url for r in browser.requests if storefront.api in r.url and "/similar" in r.url]
    assert not any(f"/{storefront.below}/" in u for u in asked) and len(asked) == 2
    page.locator("#below").scroll_into_view_if_needed()
    page.wait_for_selector("#below li[part=card]")

    sent = [r for r in browser.requests if r.url.startswith(storefront.api + "/api/") and r.method != "OPTIONS"]
    for request in sent:
        headers = request.all_headers()
        assert headers.get("x-api-key") == READ_KEY, request.url  # the read key, images included
        assert headers.get("x-sveta-page") == storefront.shop.base + "/products/demo-tee"  # no query string
        assert headers.get("x-sveta-surface") in {"widget-similar", "widget-complete"}, request.url

    with page.expect_request(lambda r: r.url.endswith("/api/events/click") and r.method == "POST") as clicked:
        page.locator("sveta-similar[product=demo-tee] li[part=card] a").nth(1).click()
    beacon = json.loads(clicked.value.post_data)
    assert beacon["position"] == 2 and beacon["surface"] == "widget-similar"
    assert beacon["page"] == storefront.shop.base + "/products/demo-tee" and "search_id" in beacon
    assert isinstance(beacon["product_id"], int) and beacon["product_id"] != demo["product_id"]
    again = httpx.post(f"{storefront.api}/api/events/click", json=beacon, headers={"X-API-Key": READ_KEY})
    assert again.status_code in (200, 404), again.text  # a body the insights' endpoint takes (404: not there yet)
    assert not _reported(browser), browser.console


@pytest.mark.slow
def test_photo_and_text_search_in_an_accessible_dialog(storefront: Storefront, browser: Browser) -> None:
    page = browser.page
    url = _page(storefront.shop, "/search.html", storefront.api, "<sveta-photo-search></sveta-photo-search>")
    page.goto(url)
    page.wait_for_selector("sveta-photo-search button[part=button]")
    page.keyboard.press("Tab")  # the first stop on the page is the widget's real button
    focused = "() => document.activeElement?.shadowRoot?.activeElement?.getAttribute('part')"
    assert page.evaluate(focused) == "button"
    assert page.locator("sveta-photo-search button[part=button]").inner_text() == "Search by photo"
    page.keyboard.press("Enter")
    dialog = page.locator("sveta-photo-search dialog")
    assert dialog.get_attribute("open") is not None
    assert page.evaluate("() => !!document.activeElement.shadowRoot.activeElement.closest('dialog')")
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => ({focused})() === 'button'")
    assert dialog.get_attribute("open") is None

    page.locator("sveta-photo-search button[part=button]").click()
    camera = page.locator("sveta-photo-search input[name=camera]")
    assert camera.get_attribute("capture") == "environment" and camera.get_attribute("accept") == "image/*"
    page.locator("sveta-photo-search input[name=photo]").set_input_files(str(PHOTO))
    page.wait_for_selector("sveta-photo-search dialog li[part=card]")
    status = page.locator("sveta-photo-search [role=status]").inner_text()
    assert status == f"{len(_cards(page, 'sveta-photo-search'))} results for photos like {PHOTO.name}"

    page.locator("sveta-photo-search input[name=q]").fill("blue jeans")
    page.locator("sveta-photo-search input[name=q]").press("Enter")
    page.wait_for_function(
        "() => document.querySelector('sveta-photo-search').shadowRoot.querySelector('[role=status]')"
        ".textContent.includes('blue jeans')"
    )
    titles = [c["title"] for c in _cards(page, "sveta-photo-search")]
    assert titles and sum("Jeans" in t for t in titles) >= len(titles) // 2, titles
    searches = [r for r in browser.requests if "/api/search/" in r.url and r.method != "OPTIONS"]
    assert [r.method for r in searches] == ["POST", "GET"]
    assert all(r.all_headers()["x-sveta-surface"] == "widget-photo" for r in searches)
    assert not _reported(browser), browser.console


@pytest.mark.slow
def test_a_refused_origin_a_missing_key_and_a_rule_are_told(storefront: Storefront, browser: Browser) -> None:
    page, demo = browser.page, storefront.demo
    row = f'<sveta-similar product="{demo["source_id"]}"></sveta-similar>'
    page.goto(_page(storefront.other, "/refused.html", storefront.api, row))
    page.wait_for_function("() => customElements.get('sveta-similar')")
    _wait_for(browser, "error", "is not allowed to use this sveta server")
    refused = next(m for m in browser.messages("error") if "not allowed" in m)
    assert refused.startswith("sveta: <sveta-similar") and storefront.other.base in refused
    assert f"add {storefront.other.base} to SVETA_CORS_ORIGINS" in refused
    assert page.locator("sveta-similar li").count() == 0

    page.goto(_page(storefront.shop, "/nokey.html", storefront.api, row, key=None))
    _wait_for(browser, "error", "X-API-Key header")  # the API's 401, as the widget logs it
    assert page.locator("sveta-similar li").count() == 0

    def pin_the_second(route: Any) -> None:  # the rules feature's field, as the API will send it
        answer = route.fetch().json()
        answer["matches"][1]["rule"] = {"id": 3, "action": "pin", "says": "pinned to 2 by rule 3"}
        route.fulfill(json=answer, headers={"Access-Control-Allow-Origin": storefront.shop.base})

    page.route("**/similar?*", pin_the_second)
    page.goto(_page(storefront.shop, "/pinned.html", storefront.api, row))
    page.wait_for_selector("sveta-similar li[part=card]")
    badges = page.locator("sveta-similar [part=badge]")
    assert badges.count() == 1 and badges.inner_text().lower() == "pinned"
    assert badges.get_attribute("title") == "pinned to 2 by rule 3"
    assert page.locator("sveta-similar li[part=card]").nth(1).locator("[part=badge]").count() == 1


# The small test catalog (test_api's TYPES) has no dresses: its blue jeans stand in for the "red dress".
PIN_WORDS = "blue jeans"
_HANDLE = text("UPDATE products SET handle = :handle WHERE id = :id")


@pytest.mark.slow
def test_a_pin_rule_for_red_dress_puts_its_product_first_in_the_widget_and_a_hide_rule_empties_its_place(
    storefront: Storefront, browser: Browser
) -> None:
    page, api, read = browser.page, storefront.api, {"X-API-Key": READ_KEY}
    found = httpx.get(f"{api}/api/search/text", params={"q": PIN_WORDS, "k": 12}, headers=read).json()["matches"]
    pinned = found[3]  # found without the rule, but not first; a feed's product: no handle
    assert pinned["handle"] is None and found[0]["product_id"] != pinned["product_id"]
    assert all(m["rule"] is None for m in found)
    row = httpx.get(f"{api}/api/products/demo-tee/similar", params={"k": 6}, headers=read).json()["matches"]
    hidden = row[1]
    rules: list[int] = []
    try:
        rules.append(_add_rule(api, action="pin", target=pinned["source_id"], scope_kind="query", scope=PIN_WORDS))
        rules.append(_add_rule(api, action="hide", target=str(hidden["product_id"])))
        with storefront.catalog.engine.begin() as connection:  # the card's handle names the link, no extra fetch
            connection.execute(_HANDLE, {"handle": "pinned-jeans", "id": pinned["product_id"]})
        body = '<sveta-photo-search></sveta-photo-search><sveta-similar product="demo-tee" limit="6"></sveta-similar>'
        page.goto(_page(storefront.shop, "/steered.html", api, body))
        page.wait_for_selector("sveta-similar li[part=card]")
        similar = _cards(page, "sveta-similar")
        links = [c["href"] for c in similar]
        assert len(links) == 6 and f"{storefront.shop.base}/products/{hidden['source_id']}" not in links
        assert links[0] == f"{storefront.shop.base}/products/{row[0]['source_id']}"  # the others keep their places

        page.locator("sveta-photo-search button[part=button]").click()
        page.locator("sveta-photo-search input[name=q]").fill(PIN_WORDS)
        page.locator("sveta-photo-search input[name=q]").press("Enter")
        page.wait_for_selector("sveta-photo-search dialog li[part=card]")
        first = page.locator("sveta-photo-search li[part=card]").first
        assert first.locator("img").get_attribute("alt") == pinned["title"]
        assert first.locator("a").get_attribute("href") == f"{storefront.shop.base}/products/pinned-jeans"
        badges = page.locator("sveta-photo-search [part=badge]")
        assert badges.count() == 1 and first.locator("[part=badge]").inner_text().lower() == "pinned"
        says = f"pinned to 1 by rule {rules[0]} ({PIN_WORDS})"
        assert first.locator("[part=badge]").get_attribute("title") == says
    finally:
        for rule in rules:
            assert httpx.delete(f"{api}/api/rules/{rule}", headers={"X-API-Key": KEY}).status_code == 200
        with storefront.catalog.engine.begin() as connection:
            connection.execute(_HANDLE, {"handle": None, "id": pinned["product_id"]})
    assert not _reported(browser), browser.console


def _add_rule(api: str, **body: str) -> int:
    """A rule added through the API with the write key: its id."""
    response = httpx.post(f"{api}/api/rules", json=body, headers={"X-API-Key": KEY})
    assert response.status_code == 201, response.text
    rule_id: int = response.json()["id"]
    return rule_id


def _reported(browser: Browser) -> list[str]:
    """What the widget logged as an error (the browser's own lines, a 404 favicon, are not its)."""
    return [m for m in browser.messages("error") if m.startswith("sveta:")]


def _wait_for(browser: Browser, kind: str, words: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(words in m for m in browser.messages(kind)):
        assert time.monotonic() < deadline, browser.console
        browser.page.wait_for_timeout(50)
