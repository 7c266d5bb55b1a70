"""Several writers on one catalog at once, then an account of every write: `sveta ingest` processes, API writes
from threads over HTTP, a sync pass in the API's process and a tagging process (test_concurrent_writers, and
benchmarks/bench_writers.py bigger)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text

from sveta.catalog.attributes import StoredAttribute, replace_image_attributes
from sveta.catalog.keyword_search import keyword_search
from sveta.catalog.models import Attribute, CrawlRun, Image, Product, Source
from sveta.catalog.store import open_catalog
from sveta.errors import SvetaError
from sveta.ops.sync import sync_once
from sveta.settings import Settings
from tests.writers_scenery import api_server, child, photo_server, scenario_settings, write_feeds

REFUSED = "another ingest of this source is running"  # the one-ingest-per-source rule: nothing written, user told
# What a lock or conflict looks like when it reaches a user (a message, a status line, a traceback).
LOCK_WORDS = ("locked", "busy", "deadlock", "serializ", "catalog database error", "refused a write", "traceback",
              "operationalerror", "integrityerror", "duplicate key", "unique constraint")  # fmt: skip
RETRIED = "catalog write retried"  # catalog/transactions.py's log line, turned on in the children
# The CLI's own entry point (what `python -m sveta` runs), with the catalog's retry log on stderr to count retries.
CLI = (
    "import logging; logging.basicConfig(format='%(name)s: %(message)s'); "
    "logging.getLogger('sveta.catalog').setLevel(logging.INFO); from sveta.cli import main; main()"
)
TAGGER = "from tests.writers_harness import tag_main; tag_main()"
TAG = "pattern"  # the attribute the tagging process writes (origin image), one value per round


@dataclass(frozen=True)
class Plan:
    """How many writers of each kind, and how big each one's work is."""

    cli: int = 1  # `sveta ingest csv` processes, one feed each
    api_threads: int = 2  # threads writing through the API over HTTP
    api_feeds: int = 1  # feeds each API thread registers and crawls (a crawl thread each, in the API's process)
    rows: int = 10  # products per feed
    races: int = 3  # source names every API thread registers at the same moment (a unique key race)
    taggers: int = 1  # tagging processes, each rewriting every product's photo attributes (the same products)
    tag_rounds: int = 2  # rounds of each tagging process
    timeout_s: float = 120.0


@dataclass
class Report:
    """The account: writes attempted, committed, refused by rule, and the ones users saw fail or that were lost."""

    database: str
    writers: dict[str, int]
    attempted: int = 0
    committed: int = 0
    refused: list[str] = field(default_factory=list)
    lock_errors: list[str] = field(default_factory=list)
    other_errors: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    retries: int = 0
    products: int = 0
    seconds: float = 0.0
    busiest_s: dict[str, float] = field(default_factory=dict)  # each kind of writer's longest run

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "writers": sum(self.writers.values()),
            "writers_by_kind": self.writers,
            "writes_attempted": self.attempted,
            "writes_committed": self.committed,
            "writes_refused_one_ingest_per_source": len(self.refused),
            "lock_errors_seen_by_users": len(self.lock_errors),
            "other_errors": len(self.other_errors),
            "lost_writes": len(self.lost),
            "retries_taken": self.retries,
            "products": self.products,
            "seconds": self.seconds,
            "seconds_by_writer": self.busiest_s,
            "details": {
                "lock_errors": self.lock_errors,
                "other_errors": self.other_errors,
                "lost": self.lost,
                "refused": self.refused,
            },
        }


@dataclass
class Scene:
    """What the writers share: the plan, the settings, the feeds, the API's URL, and the ledger of outcomes."""

    plan: Plan
    url: str
    settings: Settings
    report: Report
    feeds: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)  # source name -> products in its feed
    base: str = ""
    registered: threading.Event = field(default_factory=threading.Event)  # the sync pass starts then
    ingested: set[str] = field(default_factory=set)  # sources a committed ingest read whole
    answered: dict[str, set[int]] = field(default_factory=dict)  # source name -> the ids the API answered
    tagged: dict[int, dict[str, Any]] = field(default_factory=dict)  # each tagging process's last round
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, who: str, ok: bool, message: str = "", *, ingested: str | None = None) -> None:
        with self.lock:
            self.report.attempted += 1
            if ok:
                self.report.committed += 1
                self.ingested |= {ingested} if ingested else set()
            elif REFUSED in message:
                self.report.refused.append(f"{who}: {message}")
            elif any(word in message.lower() for word in LOCK_WORDS):
                self.report.lock_errors.append(f"{who}: {message}")
            else:
                self.report.other_errors.append(f"{who}: {message}")

    def add_retries(self, n: int) -> None:
        with self.lock:
            self.report.retries += n

    def timed(self, kind: str, job: Callable[..., None], *args: Any) -> threading.Thread:
        def timed_job() -> None:
            started = time.perf_counter()
            try:
                job(self, *args)
            except Exception as exc:  # a writer that broke down is an error the checks must see, not a thread's log
                self.record(f"{kind} {args}", False, f"{type(exc).__name__}: {exc}")
            finally:
                with self.lock:
                    took = round(time.perf_counter() - started, 2)
                    self.report.busiest_s[kind] = max(self.report.busiest_s.get(kind, 0.0), took)

        return threading.Thread(target=timed_job, name=f"writer-{kind}")


def run(plan: Plan, url: str, home: Path) -> Report:
    """All writers at once on the catalog at ``url`` (migrated here first), then the checks; ``home`` is scratch."""
    writers = {"cli_processes": plan.cli, "api_threads": plan.api_threads}
    writers |= {"api_crawl_threads": plan.api_threads * plan.api_feeds, "sync": 1, "tagging_processes": plan.taggers}
    report = Report("postgresql" if url.startswith("postgresql") else "sqlite", writers)
    scene, started = Scene(plan, url, scenario_settings(home, url), report), time.perf_counter()
    scene.rows = {f"cli-{i}": plan.rows for i in range(plan.cli)} | {"shared": plan.rows}
    scene.rows |= {f"api-{j}-{k}": plan.rows for j in range(plan.api_threads) for k in range(plan.api_feeds)}
    scene.rows |= {f"race-{r}": 1 for r in range(plan.races)}  # these exist for their registration
    open_catalog(url).engine.dispose()  # the server would have made it (test_concurrent_writers races migrations)
    with photo_server() as photos, api_server(scene.settings) as (scene.base, app_catalog):
        scene.feeds = write_feeds(home / "feeds", scene.rows, photos)
        together = threading.Barrier(plan.api_threads)
        jobs = [scene.timed("cli", _cli, f"cli-{i}") for i in range(plan.cli)]
        jobs += [scene.timed("api", _api, j, together) for j in range(plan.api_threads)]
        jobs += [scene.timed("tagger", _tagger, t) for t in range(plan.taggers)]
        jobs.append(scene.timed("sync", _sync, app_catalog))
        for job in jobs:
            job.start()
        for job in jobs:
            job.join(plan.timeout_s)
        scene.add_retries(retries_taken(app_catalog))
    _check(scene)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


# -- the writers ---------------------------------------------------------------------------------------------------


def _cli(scene: Scene, name: str) -> None:
    args = ["ingest", "csv", str(scene.feeds[name]), "--source", name, "--json"]
    done = child(CLI, args, scene.settings, scene.plan.timeout_s)
    scene.add_retries(done.stderr.count(RETRIED))
    shown = "\n".join(line for line in done.stderr.splitlines() if RETRIED not in line)
    ok = done.returncode == 0 and not any(word in shown.lower() for word in LOCK_WORDS)
    scene.record(f"cli {name}", ok, "" if ok else f"exit {done.returncode}: {shown.strip()[-600:]}", ingested=name)


def _api(scene: Scene, j: int, together: threading.Barrier) -> None:
    with httpx.Client(base_url=scene.base, timeout=scene.plan.timeout_s) as http:
        for i in range(scene.plan.cli):  # racing the CLI processes' own registration of their sources
            _register(scene, http, f"cli-{i}")
        _register(scene, http, "shared")
        for r in range(scene.plan.races):  # every thread the same name at the same moment: one row, one id
            together.wait(30)
            _register(scene, http, f"race-{r}")
        scene.registered.set()
        crawls = [(f"api-{j}-{k}", _register(scene, http, f"api-{j}-{k}")) for k in range(scene.plan.api_feeds)]
        runs = [(name, _crawl(scene, http, source_id, name)) for name, source_id in crawls if source_id is not None]
        for name, href in runs:
            if href is not None:
                _finished(scene, http, name, href)


def _register(scene: Scene, http: httpx.Client, name: str) -> int | None:
    answer = http.post("/api/sources", json={"kind": "csv", "location": str(scene.feeds[name]), "name": name})
    ok = answer.status_code in (200, 201)
    scene.record(f"api POST /api/sources {name}", ok, "" if ok else _api_error(answer))
    if not ok:
        return None
    with scene.lock:
        scene.answered.setdefault(name, set()).add(answer.json()["id"])
    return int(answer.json()["id"])


def _crawl(scene: Scene, http: httpx.Client, source_id: int, name: str) -> str | None:
    answer = http.post(f"/api/sources/{source_id}/crawl")
    ok = answer.status_code == 202
    scene.record(f"api POST /api/sources/{source_id}/crawl ({name})", ok, "" if ok else _api_error(answer))
    return str(answer.json()["href"]) if ok else None


def _finished(scene: Scene, http: httpx.Client, name: str, href: str) -> None:
    """A crawl the API accepted ends ok, or its run says why (users read it at GET /api/crawl-runs/ID)."""
    deadline, run = time.monotonic() + scene.plan.timeout_s, {"status": "running"}
    while run["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        run = http.get(href).json()
    ok = run["status"] == "ok"
    scene.record(
        f"api crawl run {href} ({name})", ok, "" if ok else f"{run['status']}: {run.get('errors')}", ingested=name
    )


def _sync(scene: Scene, catalog: Any) -> None:
    """One pass of `sveta serve`'s background sync on the app's own catalog, once sources are registered."""
    scene.registered.wait(30)
    try:
        run = sync_once(catalog, scene.settings, log=lambda _m: None)
    except SvetaError as exc:
        scene.record("sync", False, f"{exc.message} ({exc.hint})")
        return
    for source in run.sources:
        ok = source["status"] == "ok"
        scene.record(f"sync {source['source']}", ok, "" if ok else str(source["errors"]), ingested=source["source"])
    for failed in run.failed:
        scene.record(f"sync {failed['source']}", False, failed["error"])
    scene.record("sync photos and index", True)


def _tagger(scene: Scene, t: int) -> None:
    done = child(TAGGER, [scene.url, str(scene.plan.tag_rounds), str(t)], None, scene.plan.timeout_s)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        scene.record(f"tagging process {t}", False, f"exit {done.returncode}: {done.stderr.strip()[-600:]}")
        return
    scene.tagged[t] = json.loads(lines[-1])
    scene.add_retries(scene.tagged[t]["retries"])
    for _ in range(scene.tagged[t]["rounds"]):
        scene.record(f"tagging process {t}", True)


def tag_main() -> None:
    """A tagging process: every product's photo attributes rewritten, round after round (as `sveta tag` writes)."""
    url, rounds, t = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    catalog, ids = open_catalog(url), []
    try:
        for r in range(rounds):
            with catalog.session() as s:
                ids = list(s.scalars(select(Product.id)))
            tags = [StoredAttribute(pid, TAG, f"writers{t}tag{r}", "image", None, 0.9, f"w{t}@{r}") for pid in ids]
            replace_image_attributes(catalog, ids, tags)
            time.sleep(0.1)
    except SvetaError as exc:
        sys.exit(f"error: {exc.message}\nhint: {exc.hint}")
    last = {"rounds": rounds, "ids": ids, "value": f"writers{t}tag{rounds - 1}"}
    print(json.dumps(last | {"retries": retries_taken(catalog)}))


def retries_taken(catalog: Any) -> int:
    """The retries a catalog's writes took (0 for a sveta from before retries, run to compare)."""
    retries = getattr(catalog, "retries", None)
    return int(retries.taken) if retries is not None else 0


def _api_error(answer: httpx.Response) -> str:
    try:
        error = answer.json()["error"]
        return f"HTTP {answer.status_code} {error['code']}: {error['message']} ({error.get('hint')})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {answer.status_code}: {answer.text[:300]}"


# -- the checks ----------------------------------------------------------------------------------------------------


def _check(scene: Scene) -> None:
    """Every committed write is in the database exactly once; nothing is left half done."""
    catalog, lost = open_catalog(scene.url), scene.report.lost
    per_source = select(Source.name, func.count(Product.id), func.count(func.distinct(Product.external_id)))
    tagged = (Attribute.name == TAG) & (Attribute.origin == "image")
    with catalog.session() as s:
        names = list(s.scalars(select(Source.name)))
        ids = {name: sid for name, sid in s.execute(select(Source.name, Source.id))}
        counts = {name: (n, unique) for name, n, unique in s.execute(per_source.join(Product).group_by(Source.name))}
        running = s.scalar(select(func.count(CrawlRun.id)).where(CrawlRun.status == "running"))
        products = int(s.scalar(select(func.count(Product.id))) or 0)
        documents = int(s.scalar(text("SELECT count(*) FROM product_keywords")) or 0)
        images = int(s.scalar(select(func.count(Image.id))) or 0)
        tags = s.execute(select(Attribute.product_id, Attribute.value).where(tagged)).all()
    scene.report.products = products
    lost += [f"source {n} registered {names.count(n)} times" for n in set(names) if names.count(n) != 1]
    for name, answered in scene.answered.items():
        if answered != {ids.get(name)}:
            lost.append(f"source {name}: the API answered ids {sorted(answered)}, the catalog has {ids.get(name)}")
    for name in scene.ingested:
        if counts.get(name) != (scene.rows[name], scene.rows[name]):
            lost.append(f"source {name}: (products, ids) {counts.get(name)}, not {scene.rows[name]} of each")
    if running:
        lost.append(f"{running} crawl runs left 'running'")
    if documents != products or images != products:
        lost.append(f"{products} products, {documents} keyword documents, {images} images (one each expected)")
    if scene.tagged:
        _check_tags(scene, catalog, tags)
    catalog.engine.dispose()


def _check_tags(scene: Scene, catalog: Any, tags: list[Any]) -> None:
    """One photo attribute per product the taggers' last rounds saw, from one of those last rounds (whichever
    wrote last), and the keyword index's document of each product says the same."""
    last = {t["value"] for t in scene.tagged.values()}
    seen = set().union(*(t["ids"] for t in scene.tagged.values()))
    have = dict(tags)
    if len(tags) != len(have) or set(have) != seen or not set(have.values()) <= last:
        scene.report.lost.append(f"photo attributes: {len(tags)} rows of {len(have)} products, {len(seen)} expected")
    for value in last:
        found = {hit.product_id for hit in keyword_search(catalog, value, limit=len(seen) + 10)}
        if found != {pid for pid, v in have.items() if v == value}:
            scene.report.lost.append(f"keyword index: {len(found)} documents say {value}, the attributes differ")
