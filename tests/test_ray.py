"""Batch embedding on a local Ray: the same vectors as in-process, through Parquet shards, and `index build --ray`."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sveta.cli import _common, app, ray_address_form
from sveta.embed.base import get_embedder
from sveta.embed.pipeline import embed_photos
from sveta.settings import Settings

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None, reason="ray is not installed: pip install 'sveta[ray]'"
    ),
    pytest.mark.timeout(600),  # ~35 s on 2 cores, most of it starting local Rays
]
SPEC = "effnet-lite0"


def _photos(myntra: Path, n: int) -> list[tuple[int, Path]]:
    return [(int(p.stem), p) for p in sorted((myntra / "images").glob("*.jpg"))[:n]]


@pytest.mark.slow  # the fast suite stays under 10 minutes; the whole suite runs it
def test_ray_vectors_equal_in_process_ones(myntra: Path, settings: Settings, tmp_path: Path) -> None:
    from sveta.ops.ray_batch import embed_with_ray

    items = _photos(myntra, 40)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    shards = tmp_path / "shards"
    ids, vectors, failures = embed_with_ray([*items, (1, broken)], SPEC, settings, None, 2, shards)
    assert [i for i, _ in failures] == [1]
    assert list(shards.glob("*.parquet"))
    batches = list(embed_photos(get_embedder(SPEC, settings), items, settings))
    local = dict(zip([i for b in batches for i in b.ids], np.vstack([b.vectors for b in batches]), strict=True))
    assert ids == sorted(local)
    assert np.abs(vectors - np.stack([local[i] for i in ids])).max() <= 1e-5


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    _common._state.clear()
    yield CliRunner()
    _common._state.clear()


def _build(cli: CliRunner, monkeypatch: pytest.MonkeyPatch, home: Path, feed: Path, images: Path, *extra: str) -> None:
    monkeypatch.setenv("SVETA_DATA_DIR", str(home))
    _common._state.clear()
    assert cli.invoke(app, ["ingest", "csv", str(feed), "--images", str(images)]).exit_code == 0
    result = cli.invoke(app, ["index", "build", "--embedder", SPEC, "--json", *extra])
    assert result.exit_code == 0, result.output


@pytest.mark.slow  # a Ray cluster start and a whole index build; the full suite (CI) runs it
def test_index_build_with_ray_equals_in_process(
    cli: CliRunner, myntra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sveta.index.catalog_index import open_catalog_index

    lines = (myntra / "styles.csv").read_text(encoding="utf-8").splitlines()[:31]
    feed = tmp_path / "styles.csv"
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    vectors = {}
    for name, extra in (("plain", ()), ("ray", ("--ray", "local", "--ray-workers", "2"))):
        home = tmp_path / name
        _build(cli, monkeypatch, home, feed, myntra / "images", *extra)
        index = open_catalog_index(Settings(data_dir=home), create=False)
        ids = np.sort(index.ids())
        vectors[name] = (ids, index.vectors(ids), index.meta(ids))
    assert len(vectors["ray"][0]) == 30 and (tmp_path / "ray" / "embeddings" / "ray-shards").is_dir()
    assert np.array_equal(vectors["plain"][0], vectors["ray"][0])
    assert np.abs(vectors["plain"][1] - vectors["ray"][1]).max() <= 1e-5
    assert vectors["plain"][2] == vectors["ray"][2]


def test_ray_takes_an_optional_address() -> None:
    build = ["index", "build"]
    assert ray_address_form([*build, "--ray"]) == [*build, "--ray"]
    assert ray_address_form([*build, "--ray", "--json"]) == [*build, "--ray", "--json"]
    joined = [*build, "--ray", "--ray-address", "ray://head:10001", "--json"]
    assert ray_address_form([*build, "--ray", "ray://head:10001", "--json"]) == joined
    assert ray_address_form([*build, "--ray=auto"]) == [*build, "--ray", "--ray-address", "auto"]
    assert ray_address_form(["search", "--ray", "x"]) == ["search", "--ray", "x"]
    rooted = ["--data-dir", "d", *build, "--ray", "auto"]
    assert ray_address_form(rooted) == ["--data-dir", "d", *build, "--ray", "--ray-address", "auto"]
