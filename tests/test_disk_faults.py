"""A full disk or a read-only data home mid-write: a clear error; the live index, models and catalog are kept."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import crash_harness as h
from tests import disk_faults as d

BASE, GROWN, MORE = 120, 200, 260


@pytest.fixture(scope="module")
def homes(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A trained, indexed home whose feed then grew (photos not fetched), and one whose new photos are fetched."""
    root = tmp_path_factory.mktemp("disk")
    if why := d.can_mount(root):
        pytest.skip(f"these tests mount a tmpfs and a read-only bind mount, which this process may not: {why}")
    with h.photo_server(myntra / "images") as base:
        feeds = root / "feeds"
        first = h.write_feed(myntra, feeds / "base.csv", base, BASE)
        grown = h.write_feed(myntra, feeds / "grown.csv", base, GROWN)
        h.write_feed(myntra, feeds / "more.csv", base, MORE)
        home = root / "grown"
        h.checked(home, "ingest", "csv", str(first), "--source", "shop")
        h.checked(home, "index", "build")
        h.checked(home, "train", "--no-text")
        h.checked(home, "ingest", "csv", str(grown), "--source", "shop")
        fetched = h.copy_home(home, root / "fetched")
        h.checked(fetched, "images", "fetch")
        yield {"grown": home, "fetched": fetched, "feeds": feeds}


def _ops(feeds: Path) -> dict[str, tuple[str, list[str]]]:
    return {
        "ingest": ("grown", ["ingest", "csv", str(feeds / "more.csv"), "--source", "shop"]),
        "image fetch": ("grown", ["images", "fetch"]),
        "index save": ("fetched", ["index", "update"]),
        "train": ("fetched", ["train", "--no-text", "--no-index"]),
    }


OPS = ["ingest", "image fetch", "index save", "train"]


def _products(home: Path) -> list[tuple[int, str]]:
    return h.product_keys(home)


def _clear_error(done: h.subprocess.CompletedProcess[str], words: tuple[str, ...], op: str) -> None:
    said = done.stdout + done.stderr
    assert done.returncode != 0, f"{op} should fail: {said[-500:]}"
    assert "Traceback" not in said and "error:" in said, f"{op}: {said[-1500:]}"
    assert "hint:" in said, f"{op}: an error without a remedy: {said[-800:]}"
    assert any(w in said.lower() for w in words), f"{op}: the error does not say what is wrong: {said[-800:]}"


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("op", OPS)
def test_a_read_only_data_home_is_a_clear_error_and_nothing_changes(
    op: str, homes: dict[str, Path], tmp_path: Path
) -> None:
    seed, args = _ops(homes["feeds"])[op]
    home = h.copy_home(homes[seed], tmp_path / "home")
    before = d.fingerprint(home)
    with d.read_only(home):
        done = h.sveta(home, *args)
    _clear_error(done, ("read-only", "read only", "readonly"), op)
    assert d.fingerprint(home) == before


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("op", OPS)
def test_a_full_disk_is_a_clear_error_and_the_live_data_stays(op: str, homes: dict[str, Path], tmp_path: Path) -> None:
    seed, args = _ops(homes["feeds"])[op]
    with d.full_disk(tmp_path / "disk", homes[seed], free_bytes=96 * 1024) as home:
        before, products = d.fingerprint(home), _products(home)
        done = h.sveta(home, *args)
        _clear_error(done, ("full", "no space", "no room"), op)
        after = d.fingerprint(home)
        # what an ingest or a fetch committed before the disk filled is kept; the index and models are untouched
        assert {k: v for k, v in after.items() if k != "catalog rows"} == {
            k: v for k, v in before.items() if k != "catalog rows"
        }
        if op not in ("ingest", "image fetch"):
            assert after["catalog rows"] == before["catalog rows"]
        now = _products(home)
        assert set(products) <= set(now) and len(now) == len(set(now))
        with sqlite3.connect(home / "catalog.db") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
