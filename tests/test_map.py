"""The catalog map's t-SNE: a library Barnes-Hut t-SNE on real embeddings, made once per index version in the
background, kept beside the version, any limit a subset of it, and quick answers meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sveta.api import create_app
from sveta.catalog.store import CatalogStore, open_catalog
from sveta.index import projection
from sveta.index.catalog_index import open_catalog_index, sync_index
from sveta.index.versions import read_current
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.settings import Settings

N = 120  # products in the catalog
POINTS = 80  # SVETA_MAP_POINTS: the t-SNE map holds fewer than the catalog, so a large limit is clamped


@dataclass
class Home:
    settings: Settings
    catalog: CatalogStore


@pytest.fixture(scope="module")
def home(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """N real Myntra products indexed with the default embedder (effnet-lite0 + colour)."""
    root = tmp_path_factory.mktemp("map")
    lines = (myntra / "styles.csv").read_text(encoding="utf-8").splitlines()
    feed = root / "feed" / "styles.csv"
    feed.parent.mkdir()
    feed.write_text("\n".join(lines[: N + 1]) + "\n", encoding="utf-8")
    settings = Settings(data_dir=root / "data", map_points=POINTS, sync_every="0", onnx_threads=1)
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(feed, images_dir=myntra / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    assert sync_index(catalog, settings).count == N
    yield Home(settings, catalog)
    catalog.engine.dispose()


class Counted:
    """projection.tsne_2d counted, and held at a gate until the test opens it."""

    def __init__(self, real: Callable[..., np.ndarray]) -> None:
        self.real, self.calls, self.gate = real, 0, threading.Event()
        self.gate.set()

    def __call__(self, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        self.calls += 1
        assert self.gate.wait(60), "the test never opened the gate"
        return self.real(x, **kwargs)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counted:
    counter = Counted(projection.tsne_2d)
    monkeypatch.setattr(projection, "tsne_2d", counter)
    return counter


def _forget_maps(settings: Settings) -> None:
    """No map kept on disk for the live version: the next app makes it again."""
    for path in (settings.index_dir / str(read_current(settings.index_dir))).glob("map-*.json"):
        path.unlink()


def _map(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/map", params={"method": "tsne", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _ready(client: TestClient, timeout_s: float = 120.0, **params: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (body := _map(client, **params))["status"] == "computing":
        assert time.monotonic() < deadline, f"the t-SNE map was not ready in {timeout_s} s"
        time.sleep(0.05)
    return body


def test_tsne_keeps_the_neighbours_of_real_embeddings(home: Home) -> None:
    manifold = pytest.importorskip("sklearn.manifold")
    index = open_catalog_index(home.settings, create=False)
    vectors = index.vectors(np.asarray(index.ids(), dtype=np.int64)).astype(np.float32)
    embedded = projection.tsne_2d(vectors)
    assert embedded.shape == (N, 2) and np.isfinite(embedded).all()
    trust = manifold.trustworthiness(vectors, embedded, n_neighbors=5)
    assert trust > 0.8, f"t-SNE trustworthiness {trust:.3f}"
    assert trust > manifold.trustworthiness(vectors, projection.pca_2d(vectors)[0], n_neighbors=5)
    assert projection.tsne_2d(vectors[:3]).shape == (3, 2)  # too few for t-SNE: their PCA


def test_many_limits_answer_at_once_and_make_one_map(home: Home, counted: Counted) -> None:
    _forget_maps(home.settings)
    counted.gate.clear()  # the t-SNE is still running for every request below
    with TestClient(create_app(home.settings)) as client:
        for limit in (5, 40, POINTS, 500, None):
            started = time.perf_counter()
            response = client.get("/api/map", params={"method": "tsne"} | ({"limit": limit} if limit else {}))
            body = response.json()
            assert time.perf_counter() - started < 2.0, "a request waited for the t-SNE"
            assert body["status"] == "computing" and body["method"] == "pca", body["status"]
            assert response.headers["retry-after"] == "2"
            assert body["count"] == min(limit or POINTS, POINTS) and body["clamped"] == (limit == 500)
        counted.gate.set()
        whole = _ready(client)
        limits = [1, 7, 33, POINTS - 1, POINTS, 1000]
        answers = [_map(client, limit=limit) for limit in limits]
    assert counted.calls == 1, "every limit is a subset of one t-SNE map"
    assert whole["method"] == "tsne" and whole["count"] == POINTS and whole["total"] == N
    assert whole["max_points"] == POINTS and not whole["clamped"] and whole["explained"] == []
    for limit, body in zip(limits, answers, strict=True):
        assert body["status"] == "ready" and body["count"] == min(limit, POINTS) and body["clamped"] == (limit > POINTS)
        xy = np.array([[p["x"], p["y"]] for p in body["points"]])
        assert np.abs(xy).max() == pytest.approx(1.0, abs=1e-3) or limit == 1  # each subset fills the map
    ids = [[p["product_id"] for p in body["points"]] for body in answers]
    assert all(set(small) <= set(large) for small, large in pairwise(ids)), "nested samples"
    assert ids[-1] == sorted(ids[-1])


def test_the_map_is_kept_beside_the_version_and_survives_a_restart(home: Home, counted: Counted) -> None:
    with TestClient(create_app(home.settings)) as client:
        first = _ready(client)
    version = read_current(home.settings.index_dir)
    assert (home.settings.index_dir / str(version) / f"map-tsne-{POINTS}.json").is_file()
    calls = counted.calls
    with TestClient(create_app(home.settings)) as client:
        again = _map(client)  # the first request of a new app: ready, read from disk
    assert again["status"] == "ready" and again == first and counted.calls == calls


def test_a_new_index_version_makes_a_new_map(home: Home, counted: Counted) -> None:
    with TestClient(create_app(home.settings)) as client:
        old = _ready(client)
        sync_index(home.catalog, home.settings, rebuild=True, fetch=False)  # a new version, from cached vectors
        calls = counted.calls
        fresh = _ready(client)
    assert fresh["version"] != old["version"] and counted.calls == calls + 1
    assert not (home.settings.index_dir / str(old["version"])).exists(), "the old version and its map are pruned"
    assert fresh["count"] == POINTS and fresh["method"] == "tsne"


def test_pca_is_one_map_per_version_too(home: Home) -> None:
    with TestClient(create_app(home.settings)) as client:
        whole = client.get("/api/map").json()
        small = client.get("/api/map", params={"limit": 10}).json()
        state = client.app.state.sveta  # type: ignore[attr-defined]
    assert whole["status"] == "ready" and whole["count"] == N and whole["max_points"] == projection.PCA_POINTS
    assert small["count"] == 10 and {p["product_id"] for p in small["points"]} <= {
        p["product_id"] for p in whole["points"]
    }
    assert state.cache["maps"].computed == 0  # no t-SNE was asked for
