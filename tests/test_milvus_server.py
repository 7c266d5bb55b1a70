"""sveta on a real Milvus 2.3 standalone server: `sveta index build`, and Milvus's failures as sveta's one-line errors.

The server is PyPI's `milvus` 2.3.5 (`milvus-server`, in the dev extra), started once per session by conftest's
``milvus_address``. The exact searches against it are in test_index_congruence.py, the backend switch in
test_switch_backends.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sveta.api import create_app
from sveta.catalog.store import open_catalog
from sveta.cli import _common, app
from sveta.errors import ConfigError
from sveta.index.backends import open_index
from sveta.index.base import ItemMeta
from sveta.index.catalog_index import sync_index
from sveta.index.milvus_schema import REBUILD
from sveta.index.versions import CONFIG, read_current
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.settings import Settings
from tests.milvus_server import SERVER, free_port, on_server, unique

pytest.importorskip("pymilvus", reason="the Milvus backend needs pip install 'sveta[milvus]'")


def _catalog(myntra: Path, home: Path, url: str, products: int = 40) -> Settings:
    """A catalog of the first ``products`` Myntra rows in ``home``, its index on ``url`` (not built yet)."""
    settings = Settings(data_dir=home / "data", index_url=url, onnx_threads=1)
    feed = home / "styles.csv"
    lines = (myntra / "styles.csv").read_text(encoding="utf-8").splitlines()
    feed.write_text("\n".join(lines[: products + 1]) + "\n")
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(feed, images_dir=myntra / "images")
    run_ingest(catalog, name="myntra", kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    catalog.engine.dispose()
    return settings


def _env(settings: Settings) -> dict[str, str]:
    return {"SVETA_DATA_DIR": str(settings.data_dir), "SVETA_INDEX_URL": settings.index_url, "SVETA_ONNX_THREADS": "1"}


def sveta(settings: Settings, args: list[str]) -> Any:
    """One command in process, with these settings in the environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _env(settings).items():
            patch.setenv(name, value)
        _common._state.clear()
        try:
            return CliRunner().invoke(app, args)
        finally:
            store = _common._state.get("catalog")
            if store is not None:
                store.engine.dispose()
            _common._state.clear()


def one_line_error(result: Any, *words: str) -> None:
    """sveta's own error: exit 2, an error line and a hint line naming ``words``, no exception."""
    assert result.exit_code == ConfigError.exit_code and isinstance(result.exception, SystemExit), result.output
    lines = result.output.strip().splitlines()  # after the progress bar; rich wraps them at the console's width
    error = next(i for i, line in enumerate(lines) if line.startswith("error:"))
    assert [line for line in lines[error:] if line.startswith("hint:")], result.output
    assert all(word in " ".join(lines[error:]) for word in words), result.output


@pytest.fixture
def server_url(milvus_address: str) -> str:
    return f"milvus://{milvus_address}/{unique('cli')}"


def url_of(request: pytest.FixtureRequest, where: str) -> str:
    """SVETA_INDEX_URL of Milvus Lite in the data home, or of a new collection on the session's server."""
    if where == "lite":
        pytest.importorskip("milvus_lite", reason="Milvus Lite needs pip install 'sveta[milvus]'")
        return "milvus-lite:milvus"
    return f"milvus://{request.getfixturevalue('milvus_address')}/{unique('test')}"


@on_server
def test_index_build_on_the_server_through_the_cli(myntra: Path, tmp_path: Path, server_url: str) -> None:
    """The issue's failure: `sveta index build` on Milvus 2.3 (a missing price was a null, which 2.3 refuses)."""
    settings = _catalog(myntra, tmp_path, server_url, products=20)
    built = sveta(settings, ["index", "build", "--json"])
    assert built.exit_code == 0, built.output
    report = json.loads(built.stdout.strip().splitlines()[-1])
    assert report["count"] == report["embedded"] == 20 and report["failed"] == 0
    info = json.loads(sveta(settings, ["index", "info", "--json"]).stdout.strip().splitlines()[-1])
    assert info["params"]["backend"] == "milvus" and info["params"]["schema"] == 2 and info["count"] == 20
    found = sveta(settings, ["similar", "10000", "--k", "3", "--json"])
    assert found.exit_code == 0 and json.loads(found.stdout.strip().splitlines()[-1])["matches"], found.output


# the server's case is slow: the Lite one checks the same code in the fast suite; this adds a rebuild on the server
@pytest.mark.parametrize("where", ["lite", pytest.param("server", marks=SERVER)])
def test_an_index_of_the_old_schema_asks_for_a_rebuild(
    request: pytest.FixtureRequest, myntra: Path, tmp_path: Path, where: str
) -> None:
    settings = _catalog(myntra, tmp_path, url_of(request, where), products=10)
    assert sveta(settings, ["index", "build"]).exit_code == 0
    config = settings.index_dir / str(read_current(settings.index_dir)) / CONFIG
    saved = json.loads(config.read_text())
    saved["params"].pop("schema")  # as sveta wrote it before the schema had a version (nullable fields)
    config.write_text(json.dumps(saved))
    one_line_error(sveta(settings, ["index", "build"]), "schema 1", "sveta index build --rebuild")
    assert sveta(settings, ["index", "build", "--rebuild"]).exit_code == 0
    assert sveta(settings, ["index", "build"]).exit_code == 0


@on_server
def test_a_collection_without_sveta_fields_is_refused(tmp_path: Path, server_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", index_url=server_url, index_kind="flat")
    index: Any = small_index(settings)
    index.client.drop_collection(index.collection)
    index.client.create_collection(index.collection, dimension=4)  # Milvus's quick set-up: an id and a vector
    with pytest.raises(ConfigError, match="does not have sveta's fields") as caught:
        open_index(settings, embedder="e", dim=4)
    assert caught.value.hint == REBUILD
    index.client.drop_collection(index.collection)
    index.close()


def test_a_refused_connection_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    """What a user sees in the terminal: two lines, error and hint, nothing from pymilvus or gRPC."""
    env = os.environ | {"SVETA_DATA_DIR": str(tmp_path / "data")}
    env |= {"SVETA_INDEX_URL": f"milvus://127.0.0.1:{free_port()}/sveta", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "sveta", "index", "build"], env=env, capture_output=True, text=True)
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == ConfigError.exit_code, lines
    error = next(i for i, line in enumerate(lines) if line.startswith("error:"))
    assert all("embedding photos" in line for line in lines[:error]), lines  # the progress bar, nothing else
    assert lines[error].startswith("error: cannot open the Milvus index at milvus://127.0.0.1:"), lines
    assert len(lines) == error + 2 and lines[-1].startswith("hint: is the Milvus server running"), lines


@pytest.mark.parametrize("where", ["lite", pytest.param("server", marks=SERVER)])
def test_a_milvus_failure_inside_a_call_is_a_config_error(
    request: pytest.FixtureRequest, tmp_path: Path, where: str
) -> None:
    settings = Settings(data_dir=tmp_path / "data", index_url=url_of(request, where), index_kind="flat")
    index: Any = small_index(settings)
    index.client.drop_collection(index.collection)  # behind its back
    with pytest.raises(ConfigError, match=r"^Milvus at .* failed: ") as caught:
        index.search(np.eye(1, 4, dtype=np.float32), 2)
    assert caught.value.hint and "Traceback" not in str(caught.value)
    index.close()


@on_server
def test_milvus_failures_reach_the_api_as_json(myntra: Path, tmp_path: Path, server_url: str) -> None:
    settings = _catalog(myntra, tmp_path, server_url, products=10)
    catalog = open_catalog(settings.catalog_url)
    sync_index(catalog, settings)
    catalog.engine.dispose()
    raw = _raw_client(settings)
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/products/10000/similar", params={"k": 3}).status_code == 200
        raw.release_collection(_live_collection(settings))  # the server stops serving it
        answer = client.get("/api/products/10000/similar", params={"k": 3})
    raw.close()
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["code"] == "not_configured" and error["message"].startswith("Milvus at milvus://"), error
    assert error["hint"], error


def small_index(settings: Settings) -> Any:
    """A saved index of three 4-d vectors (no catalog, no embedder)."""
    index = open_index(settings, embedder="e", dim=4)
    metas = [ItemMeta(product_id=i) for i in range(3)]
    index.upsert(np.arange(3, dtype=np.int64), np.eye(3, 4, dtype=np.float32), metas)
    index.save()
    return index


def _live_collection(settings: Settings) -> str:
    config = json.loads((settings.index_dir / str(read_current(settings.index_dir)) / CONFIG).read_text())
    return str(config["params"]["collection"])


def _raw_client(settings: Settings) -> Any:
    from pymilvus import MilvusClient

    return MilvusClient(uri="http://" + settings.index_url.removeprefix("milvus://").rsplit("/", 1)[0])
