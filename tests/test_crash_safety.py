"""SIGKILL at random moments in every long-running write; after each restart nothing is lost, doubled or broken."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from sveta.learn.heads import AttributeModel
from sveta.ops.doctor import run_checks
from sveta.settings import Settings
from tests import crash_harness as h

KILLS = {"train": 5}  # per operation, else 8: 7 x 8 + 5 = 61 kills in all
FEED, MORE, BIG = 300, 360, 3000
RESULTS: dict[str, h.Tally] = {}


@pytest.fixture(scope="module")
def seeds(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Data homes at each stage, made once: empty, ingested, photos fetched, indexed and trained."""
    root = tmp_path_factory.mktemp("crash")
    with h.photo_server(myntra / "images") as base:
        feeds = root / "feeds"
        h.write_feed(myntra, feeds / "big.csv", base, BIG)
        h.write_feed(myntra, feeds / "more.csv", base, MORE)
        feed = h.write_feed(myntra, feeds / "styles.csv", base, FEED)
        (feeds / "base.csv").write_bytes(feed.read_bytes())
        homes = {"empty": root / "empty", "ingested": root / "ingested"}
        homes["empty"].mkdir()
        h.checked(homes["ingested"], "ingest", "csv", str(feed), "--source", "shop")
        homes["fetched"] = h.copy_home(homes["ingested"], root / "fetched")
        h.checked(homes["fetched"], "images", "fetch")
        homes["trained"] = h.copy_home(homes["fetched"], root / "trained")
        h.checked(homes["trained"], "index", "build")
        h.checked(homes["trained"], "train")
        homes["grown"] = h.copy_home(homes["trained"], root / "grown")  # the feed gained products since
        h.checked(homes["grown"], "ingest", "csv", str(feeds / "more.csv"), "--source", "shop")
        homes["feeds"] = feeds
        yield homes
    _write_results()


def _grow_registered_feed(feeds: Path) -> None:
    """The registered source's file now holds MORE rows: sync finds, fetches, tags and indexes the new ones."""
    (feeds / "styles.csv").write_bytes((feeds / "more.csv").read_bytes())


def _ops(feeds: Path) -> list[h.Op]:
    return [
        h.Op("ingest", "empty", ["ingest", "csv", str(feeds / "big.csv"), "--source", "shop"]),
        h.Op("image fetch", "ingested", ["images", "fetch"]),
        h.Op("index build", "fetched", ["index", "build"]),
        h.Op("index update", "grown", ["index", "update"]),
        h.Op("train", "trained", ["train"]),
        h.Op("sync", "trained", ["sync"], prepare=_grow_registered_feed),
        h.Op("catalog copy", "trained", ["catalog", "copy", "sqlite:///{home}/copy.db"]),
        h.Op("backup", "trained", ["backup", "{home}-backup"]),
    ]


OPS = ["ingest", "image fetch", "index build", "index update", "train", "sync", "catalog copy", "backup"]


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", OPS)
def test_killed_at_random_moments_nothing_is_lost_and_the_rerun_finishes(
    name: str, seeds: dict[str, Path], tmp_path: Path
) -> None:
    op = next(o for o in _ops(seeds["feeds"]) if o.name == name)
    tally = RESULTS.setdefault(name, h.Tally())
    rng = random.Random(f"crash:{name}")
    home = tmp_path / "home"
    try:
        run_s = _full_run(op, seeds, home)
        startup = h.startup_seconds(home)
        for delay in h.kill_moments(rng, startup, run_s, KILLS.get(name, 8)):
            _one_kill(op, seeds, home, delay, tally)
    finally:
        _restore_feed(seeds)
    assert tally.kills >= KILLS.get(name, 8) - 2, f"{tally.finished_first} runs ended before their kill"
    assert not tally.problems, tally.problems


def _args(op: h.Op, home: Path) -> list[str]:
    return [a.replace("{home}", str(home)) for a in op.args]


def _fresh(op: h.Op, seeds: dict[str, Path], home: Path) -> None:
    _restore_feed(seeds)
    h.copy_home(seeds[op.seed], home)
    for old in home.parent.glob(f"*{home.name}-backup*"):  # the last kill's backup, whole or a hidden half
        h.shutil.rmtree(old)
    if op.prepare is not None:
        op.prepare(seeds["feeds"])


def _full_run(op: h.Op, seeds: dict[str, Path], home: Path) -> float:
    """One run without a kill: how long the command works, so the kills land inside it."""
    _fresh(op, seeds, home)
    return h.timed_run(home, _args(op, home))


def _restore_feed(seeds: dict[str, Path]) -> None:
    (seeds["feeds"] / "styles.csv").write_bytes((seeds["feeds"] / "base.csv").read_bytes())


def _one_kill(op: h.Op, seeds: dict[str, Path], home: Path, delay: float, tally: h.Tally) -> None:
    for _attempt in range(4):  # a run faster than the measured one ended first: start again, kill it sooner
        _fresh(op, seeds, home)
        before = h.product_keys(home)
        if h.kill_at(home, _args(op, home), delay):
            break
        tally.finished_first += 1
        delay *= 0.7
    else:
        return
    tally.kills += 1
    where = f"{op.name} killed at {delay:.2f} s"
    _check_after_kill(home, before, tally, where)
    rerun = h.sveta(home, *_args(op, home))
    if rerun.returncode != 0 and not _already_done(op, home, rerun.stderr):
        tally.failed_restarts += 1
        tally.add(f"{where}: the rerun failed: {rerun.stderr.strip()[-400:]}")
        return
    _check_after_rerun(op, home, before, tally, where)


def _check_after_kill(home: Path, before: list[tuple[int, str]], tally: h.Tally, where: str) -> None:
    if (state := h.integrity(home)) != "ok":
        tally.add(f"{where}: the catalog is damaged: {state}")
    h.row_problems(before, h.product_keys(home), tally, where)
    info = h.sveta(home, "index", "info", "--json")
    if info.returncode != 0 and ("sveta index build" not in info.stdout + info.stderr or "Traceback" in info.stderr):
        tally.add(f"{where}: the index neither opens nor says how to rebuild: {info.stderr.strip()[-300:]}")
    _check_models(home, tally, where)
    _check_cached_photos(home, tally, where)


def _check_models(home: Path, tally: h.Tally, where: str) -> None:
    settings = Settings(_env_file=None, data_dir=home)
    for folder in sorted(p.parent for p in settings.models_dir.glob("*/model.npz")):
        try:
            AttributeModel.load(folder, settings)
        except Exception as exc:  # any failure to load is what this test looks for
            tally.add(f"{where}: the model in {folder.name} does not load: {exc}")


def _check_cached_photos(home: Path, tally: h.Tally, where: str) -> None:
    settings = Settings(_env_file=None, data_dir=home)
    if not settings.image_cache_dir.is_dir():
        return
    for path in settings.image_cache_dir.rglob("*"):
        if path.is_file() and not path.name.startswith(".") and ".tmp" not in path.name:  # temp files: not final
            try:
                with Image.open(path) as image:
                    image.load()  # a half-written photo under its final name would fail here
            except Exception as exc:  # any decoding failure is what this test looks for
                tally.add(f"{where}: a cached photo is damaged: {path.name}: {exc}")


def _already_done(op: h.Op, home: Path, stderr: str) -> bool:
    """The kill landed after the copy's commit or the backup's rename: the rerun rightly refuses to overwrite it."""
    if op.name == "backup":
        return "not an empty folder" in stderr  # restored below like any backup
    if op.name != "catalog copy" or "already holds rows" not in stderr:
        return False
    with sqlite3.connect(home / "copy.db") as target, sqlite3.connect(home / "catalog.db") as source:
        count = "SELECT COUNT(*) FROM products"
        return bool(target.execute(count).fetchone() == source.execute(count).fetchone())


def _check_after_rerun(op: h.Op, home: Path, before: list[tuple[int, str]], tally: h.Tally, where: str) -> None:
    after = h.product_keys(home)
    h.row_problems(before, after, tally, f"{where}, after the rerun")
    expected = {"ingest": BIG, "sync": MORE, "index update": MORE}.get(op.name, FEED)
    if len(set(after)) != expected:
        tally.lost += max(expected - len(set(after)), 0)
        tally.add(f"{where}: {len(set(after))} products after the rerun, {expected} expected")
    settings = Settings(_env_file=None, data_dir=home)
    if op.name != "ingest" and op.name != "image fetch":
        _check_index_agrees(settings, home, tally, where)
    if op.name == "catalog copy":
        _check_copy(home, tally, where)
    if op.name == "backup":
        _check_backup_restores(home, tally, where)
    failed = [c for c in run_checks(settings) if c.ok is False and _counts(c.name, op)]
    if failed:
        tally.failed_restarts += 1
        tally.add(f"{where}: sveta doctor fails after the rerun: {[(c.name, c.detail) for c in failed]}")
    _check_models(home, tally, f"{where}, after the rerun")


def _counts(check: str, op: h.Op) -> bool:
    """Doctor lines that must pass: no index is expected before a build, the rest always."""
    return not (check.startswith("index") and op.seed in ("empty", "ingested") and op.name != "index build")


def _check_index_agrees(settings: Settings, home: Path, tally: h.Tally, where: str) -> None:
    from sveta.index.catalog_index import open_catalog_index

    index = open_catalog_index(settings, create=False)
    indexed, cached = set(index.ids()), h.cached_image_ids(home)
    if indexed != cached:
        tally.add(f"{where}: the index holds {len(indexed)} photos, the catalog {len(cached)} cached ones")


def _check_copy(home: Path, tally: h.Tally, where: str) -> None:
    with sqlite3.connect(home / "copy.db") as target, sqlite3.connect(home / "catalog.db") as source:
        for table in ("products", "images", "attributes", "variants"):
            count = f"SELECT COUNT(*) FROM {table}"
            if target.execute(count).fetchone() != source.execute(count).fetchone():
                tally.add(f"{where}: the copy's {table} differ from the catalog's")


def _check_backup_restores(home: Path, tally: h.Tally, where: str) -> None:
    restored = home.parent / "restored"
    h.shutil.rmtree(restored, ignore_errors=True)
    done = h.sveta(restored, "restore", f"{home}-backup")
    if done.returncode != 0:
        tally.add(f"{where}: the backup does not restore: {done.stderr.strip()[-300:]}")
    elif sorted(h.product_keys(restored)) != sorted(h.product_keys(home)):
        tally.add(f"{where}: the restored catalog differs from the one backed up")


def _write_results() -> None:
    if not RESULTS:
        return
    out = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "crash.json"
    rows = {name: {k: v for k, v in vars(t).items() if k != "problems"} for name, t in RESULTS.items()}
    total = {k: sum(r[k] for r in rows.values()) for k in ("kills", "lost", "duplicates", "failed_restarts")}
    command = "./scripts/test tests/test_crash_safety.py"
    out.write_text(json.dumps({"command": command, "by_operation": rows, "total": total}, indent=2) + "\n")
