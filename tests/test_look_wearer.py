"""`sveta look` for the wearer: their gender guessed from the catalog neighbours of the person and their garments,
put first in every garment's matches (not required), said in the answer, and changed by the shopper."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from sveta.api import create_app
from sveta.cli import _common, app
from sveta.engines.look import Garment, Looker
from sveta.engines.search import Searcher
from sveta.engines.wearer import wearer_of
from sveta.index.base import Filter
from sveta.settings import Settings
from tests.test_look import PERSON, build_look_home

pytest.importorskip("mediapipe", reason="sveta look needs the people extra: pip install 'sveta[people]'")

pytestmark = pytest.mark.slow
WOMEN = {"Women", "Unisex"}  # the woman in the photo: her gender, and items for anyone


@pytest.fixture(scope="module")
def home(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """test_look's catalog of tops and bottoms for men and women, trained and indexed."""
    return build_look_home(myntra, tmp_path_factory)


@pytest.fixture(scope="module")
def looker(home: Settings) -> Looker:
    return Looker(Searcher(home, _common.catalog()))


def _genders(garment: Garment) -> list[str | None]:
    return [m.card.gender for m in garment.matches]


def _led_by(genders: list[str | None], preferred: set[str]) -> bool:
    """The preferred genders first, the others only after them."""
    firsts = [g in preferred for g in genders]
    return bool(firsts) and firsts[0] and firsts == sorted(firsts, reverse=True)


def test_the_woman_is_assumed_and_her_gender_leads_every_garments_matches(looker: Looker) -> None:
    result = looker.look(PERSON, k=5)
    assumed = result.as_dict()["assumed"]
    assert assumed is not None and assumed["confidence"] >= 0.6
    assert {k: v for k, v in assumed.items() if k != "confidence"} == {
        "gender": "Women",
        "age_group": "Adult",
        "from": "garment neighbours",
    }
    regions = {g.region: g for g in result.garments}
    assert {"upper", "lower"} <= set(regions)
    for garment in result.garments:
        assert set(_genders(garment)) <= WOMEN, (garment.region, _genders(garment))
        assert garment.wearer is not None and garment.wearer.gender == "Women"
    # the catalog has more men's jeans than women's: without the guess, men's come in among the top five
    plain = looker.look(PERSON, k=5, assume=False)
    assert plain.assumed is None and all(g.wearer is None for g in plain.garments)
    assert any(set(_genders(g)) - WOMEN for g in plain.garments), [_genders(g) for g in plain.garments]
    for garment in plain.garments:
        scores = [m.score for m in garment.matches]
        assert scores == sorted(scores, reverse=True)  # by likeness alone


def test_other_genders_only_fill_up_after_the_preferred_ones(looker: Looker) -> None:
    """A preference, not a filter: asked for more matches than there are women's items, the rest are men's."""
    lower = next(g for g in looker.look(PERSON, k=50).garments if g.region == "lower")
    plain = next(g for g in looker.look(PERSON, k=50, assume=False).garments if g.region == "lower")
    genders = _genders(lower)
    assert _led_by(genders, WOMEN) and set(genders) - WOMEN, genders  # filled up with the others
    assert sorted(m.card.product_id for m in lower.matches) == sorted(m.card.product_id for m in plain.matches)
    assert genders != _genders(plain)  # the same items, the woman's first
    for part in (WOMEN, set(genders) - WOMEN):  # each part in its order of likeness
        scores = [m.score for m in lower.matches if m.card.gender in part]
        assert scores == sorted(scores, reverse=True)


def test_a_gender_given_wins_and_nothing_is_assumed(looker: Looker) -> None:
    men = looker.look(PERSON, k=5, filters=Filter(gender=["Men"]))
    assert men.assumed is None and men.as_dict()["assumed"] is None
    assert men.as_dict()["filters"] == {"gender": ["Men"]}
    genders = [_genders(g) for g in men.garments]  # a garment's categories may have no men's items at all
    assert any(genders) and all(set(g) <= {"Men"} for g in genders), genders


def test_cli_says_what_it_assumed_and_takes_gender_and_no_assume(looker: Looker) -> None:
    out = CliRunner().invoke(app, ["look", str(PERSON), "--k", "3", "--json"])
    assert out.exit_code == 0, out.output
    assert "; --gender to change" in out.output and "assumed: Women (0." in out.output
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    assert payload["assumed"]["gender"] == "Women" and payload["assumed"]["age_group"] == "Adult"
    matches = [m for g in payload["garments"] for m in g["matches"]]
    assert matches and {m["gender"] for m in matches} <= WOMEN
    for flag, filters in (("--no-assume", None), ("--gender=Men", {"gender": ["Men"]})):
        other = CliRunner().invoke(app, ["look", str(PERSON), "--k", "3", "--json", flag])
        assert other.exit_code == 0, other.output
        assert "assumed:" not in other.output
        payload = json.loads(other.stdout.strip().splitlines()[-1])
        assert payload["assumed"] is None and payload.get("filters") == filters


def test_sex_and_age_are_decided_apart_and_an_unsure_guess_assumes_nothing() -> None:
    """The person photo's own votes (demo catalog): the top's neighbours are mostly men's T-shirts and the jeans' two
    boys' jeans, the whole person's all women's tops: she is a woman, and the boys' jeans do not make her a kid."""
    top, jeans = {"Men": 0.64, "Women": 0.32, "Unisex": 0.04}, {"Boys": 0.57, "Men": 0.18, "Women": 0.25}
    woman = wearer_of({"Women": 1.0}, [top, jeans])
    assert woman is not None and (woman.gender, woman.age_group) == ("Women", "Adult") and woman.confidence > 0.65
    assert woman.as_dict() == {
        "gender": "Women",
        "age_group": "Adult",
        "confidence": round(woman.confidence, 2),
        "from": "garment neighbours",
    }
    assert wearer_of({}, [top, jeans]) is None  # the garments alone lean male, not surely: nothing assumed
    girl = wearer_of({"Girls": 0.8, "Women": 0.2}, [{"Girls": 1.0}])
    assert girl is not None and (girl.gender, girl.age_group) == ("Girls", "Kids")
    assert wearer_of({"Men": 0.5, "Women": 0.5}, []) is None  # a coin toss: nothing assumed
    assert wearer_of({"Unisex": 1.0}, [{"Unisex": 1.0}]) is None


@pytest.fixture(scope="module")
def served(home: Settings) -> Iterator[str]:
    """The API and the web page over the catalog, on a free local port in a thread."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(home), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="wearer-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _api_look(url: str, **params: Any) -> dict[str, Any]:
    files = {"file": ("person.jpg", PERSON.read_bytes(), "image/jpeg")}
    response = httpx.post(f"{url}/api/look", params={"k": 3, **params}, files=files, timeout=120)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_api_says_what_it_assumed_and_takes_gender_and_assume_false(served: str) -> None:
    plain = _api_look(served)
    assert plain["assumed"]["gender"] == "Women" and plain["assumed"]["from"] == "garment neighbours"
    assert {m["gender"] for g in plain["garments"] for m in g["matches"]} <= WOMEN
    off = _api_look(served, assume="false")
    assert off["assumed"] is None and "filters" not in off
    men = _api_look(served, gender="Men")
    assert men["assumed"] is None and {m["gender"] for g in men["garments"] for m in g["matches"]} == {"Men"}


def test_the_page_shows_whom_the_matches_are_for_and_lets_the_shopper_change_it(served: str) -> None:
    pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the dev extra)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("the browser test needs Debian's chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    from tests.test_web import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.set_default_timeout(90_000)
            page.goto(served + "/")
            page.set_input_files("input[data-testid=file]", str(PERSON))
            page.wait_for_selector(".garment .card")
            wearer = page.locator(".wearer")
            assert "Shown for:" in wearer.inner_text() and "sure" in wearer.inner_text()
            assert wearer.locator("select").input_value() == "Women"
            assert {_gender(served, p) for p in _shown(page)} <= WOMEN
            wearer.locator("select").select_option("Men")
            # the look runs again: the picker it draws then is enabled (the old one waits disabled)
            page.wait_for_function("(s => s.value === 'Men' && !s.disabled)(document.querySelector('.wearer select'))")
            page.wait_for_selector(".garment .card")
            assert "sure" not in page.locator(".wearer").inner_text()  # chosen, not guessed
            assert {_gender(served, p) for p in _shown(page)} == {"Men"}
            page.locator(".wearer select").select_option("anyone")
            page.wait_for_function(
                "(s => s.value === 'anyone' && !s.disabled)(document.querySelector('.wearer select'))"
            )
            page.wait_for_selector(".garment .card")
            assert len({_gender(served, p) for p in _shown(page)}) > 1  # by likeness alone: men's and women's
            assert not errors, errors
        finally:
            browser.close()


def _shown(page: Any) -> list[str]:
    return [str(c.get_attribute("data-product")) for c in page.locator(".garment .card").all()]


def _gender(url: str, product_id: str) -> str | None:
    gender: str | None = httpx.get(f"{url}/api/products/{product_id}", timeout=30).json()["gender"]
    return gender
