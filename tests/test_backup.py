"""Backup and restore: a real data home backed up while it serves, restored into an empty one, answering the same."""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from sveta.catalog.store import open_catalog
from sveta.cli import _common, app
from sveta.errors import ConfigError, InputError
from sveta.index.catalog_index import sync_index
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest
from sveta.ops.backup import MANIFEST, BackupWriteError, backup
from sveta.ops.restore import read_backup, restore
from sveta.settings import Settings
from tests.conftest import reset_postgres
from tests.image_server import Reply, image_server
from tests.pg_server import find_bin_dir

SECRET = "sekrit-api-key-4711"
TEXT_QUERY = "blue shirt for men"
MODEL_BYTES = b"an ONNX graph stands in here: the models folder comes back byte for byte\n"


def _feed(myntra: Path, folder: Path, n: int, *, remote: str = "", skip: int = 0) -> Path:
    """The first ``n`` Myntra rows with a photo (after ``skip``), as a styles.csv; ``remote``: photo URLs there."""
    with (myntra / "styles.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if (myntra / "images" / f"{r['id']}.jpg").is_file()][skip : skip + n]
    folder.mkdir(parents=True, exist_ok=True)
    fields = [*rows[0], "image"] if remote else list(rows[0])
    with (folder / "styles.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows([r | ({"image": f"{remote}/{r['id']}.jpg"} if remote else {}) for r in rows])
    return folder / "styles.csv"


def _ingest(settings: Settings, feed: Path, name: str, images: Path | None = None) -> None:
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(feed, images_dir=images)
    run_ingest(catalog, name=name, kind="csv", location=str(feed), records=reader.records(), state=reader.state)
    sync_index(catalog, settings)
    catalog.engine.dispose()


def _home(myntra: Path, root: Path, server: Any, **extra: Any) -> Settings:
    """24 products with local photos, 6 whose photos are downloaded into the image cache, a colour index."""
    settings = Settings(
        data_dir=root / "home", embedder="colour", allowed_private_hosts=["127.0.0.1"], api_key=SECRET, **extra
    )
    _ingest(settings, _feed(myntra, root / "local", 24), "shop", myntra / "images")
    remote = _feed(myntra, root / "remote", 6, remote=server.base, skip=24)
    with remote.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            server.add(f"/{row['id']}.jpg", Reply((myntra / "images" / f"{row['id']}.jpg").read_bytes()))
    _ingest(settings, remote, "remote")
    (settings.models_dir / "extra").mkdir(parents=True)
    (settings.models_dir / "extra" / "graph.onnx").write_bytes(MODEL_BYTES)
    return settings


@pytest.fixture(scope="module")
def served_photos() -> Iterator[Any]:
    with image_server() as server:
        yield server


@pytest.fixture(scope="module")
def home(myntra: Path, tmp_path_factory: pytest.TempPathFactory, served_photos: Any) -> Settings:
    return _home(myntra, tmp_path_factory.mktemp("backup"), served_photos)


@pytest.fixture(scope="module")
def taken(home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of ``home``, photos included, through the command line."""
    out = tmp_path_factory.mktemp("taken") / "backup"
    report = _cli(home, ["backup", str(out), "--with-images", "--json"])
    assert report["images"]["files"] == 6 and report["catalog"]["products"] == 30
    return out


def _cli(settings: Settings, args: list[str], code: int = 0) -> dict[str, Any]:
    """One sveta command on ``settings``' data home; its last JSON line."""
    _common.set_settings(settings)
    try:
        result = CliRunner().invoke(app, args)
    finally:
        store = _common._state.pop("catalog", None)
        if store is not None:
            store.engine.dispose()
        _common._state.clear()
    assert result.exit_code == code, result.output
    lines = result.stdout.strip().splitlines()
    return json.loads(lines[-1]) if code == 0 and lines and lines[-1].startswith("{") else {"output": result.output}


def _answers(settings: Settings, product: str = "") -> dict[str, Any]:
    """What the home answers: catalog stats, a product's similar products, a text search (home paths masked)."""
    product = product or _first_product(settings)
    answers = {
        "stats": _cli(settings, ["catalog", "stats", "--json"]),
        "similar": _cli(settings, ["similar", product, "--json"]),
        "text": _cli(settings, ["search", "--text", TEXT_QUERY, "--json"]),
    }
    return json.loads(json.dumps(answers).replace(str(settings.data_dir.absolute()), "HOME"))


def _first_product(settings: Settings) -> str:
    store = open_catalog(settings.catalog_url)
    try:
        return str(store.indexable_images()[0].product_id)
    finally:
        store.engine.dispose()


def _tree(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (SQLite's -wal/-shm left out: a reader may make them)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def test_restore_answers_as_the_original_did(home: Settings, taken: Path, tmp_path: Path) -> None:
    before = _answers(home)
    assert before["similar"]["matches"] and before["text"]["matches"]
    other = home.model_copy(update={"data_dir": tmp_path / "restored"})
    report = _cli(other, ["restore", str(taken), "--json"])
    assert report["doctor"] == {"ok": True, "problems": []}, report["doctor"]
    assert report["index"]["ok"] and report["index"]["count"] == 30
    assert report["catalog"] | {"url": ""} == {
        "engine": "sqlite",
        "url": "",
        "products": 30,
        "photos_relocated": 6,  # the downloaded photos now live in this home's image cache
        "photos_to_fetch": 0,
    }
    assert _answers(other) == before
    assert (other.models_dir / "extra" / "graph.onnx").read_bytes() == MODEL_BYTES
    assert len(list(other.image_cache_dir.rglob("*.jpg"))) == 6
    every_byte = b"".join(p.read_bytes() for p in taken.rglob("*") if p.is_file())
    assert SECRET.encode() not in every_byte  # the API key never leaves the settings


def test_without_photos_they_are_fetched_again(home: Settings, tmp_path: Path) -> None:
    report = backup(home, tmp_path / "lean")
    assert report.images["included"] is False and not any(k.startswith("images/") for k in _manifest(report.path))
    other = home.model_copy(update={"data_dir": tmp_path / "restored"})
    restored = restore(other, tmp_path / "lean")
    assert restored.catalog["photos_to_fetch"] == 6 and restored.doctor["ok"]
    store = open_catalog(other.catalog_url)
    try:
        pending = store.images_to_fetch()
    finally:
        store.engine.dispose()
    assert len(pending) == 6 and all(url.startswith("http://127.0.0.1") for _, url in pending)
    _cli(other, ["images", "fetch"])
    assert _answers(other)["stats"] == _answers(home)["stats"]  # the same photos, cached again


def _manifest(folder: str | Path) -> dict[str, Any]:
    files: dict[str, Any] = json.loads((Path(folder) / MANIFEST).read_text())["files"]
    return files


def test_a_restore_never_overwrites_and_refuses_a_damaged_backup(home: Settings, taken: Path, tmp_path: Path) -> None:
    filled = home.model_copy(update={"data_dir": tmp_path / "filled"})
    (tmp_path / "filled").mkdir()
    (tmp_path / "filled" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"is not empty \(notes.txt\)"):
        restore(filled, taken)
    with pytest.raises(ConfigError, match="is not empty"):
        restore(home, taken)  # the live home itself
    assert (tmp_path / "filled" / "notes.txt").read_text() == "mine"

    def broken(name: str, change: Any) -> Path:
        copy = tmp_path / name
        shutil.copytree(taken, copy)
        change(copy)
        return copy

    cases = {
        "half": (lambda c: (c / MANIFEST).unlink(), r"has no manifest\.json"),
        "flipped": (lambda c: _flip(c / "catalog.db"), r"catalog\.db does not match its checksum"),
        "short": (lambda c: _cut(c / "models" / "extra" / "graph.onnx"), r"graph\.onnx has \d+ bytes, not"),
        "gone": (lambda c: shutil.rmtree(c / "index"), r"incomplete: index/.* is missing"),
        "escape": (lambda c: _edit(c, files={"../../etc/passwd": {"sha256": "0", "bytes": 1}}), "unexpected file"),
        "newer": (lambda c: _edit(c, format_version=99), "format 99"),
    }
    for name, (change, message) in cases.items():
        empty = home.model_copy(update={"data_dir": tmp_path / f"into-{name}"})
        with pytest.raises((InputError, ConfigError), match=message):
            restore(empty, broken(name, change))
        assert not (tmp_path / f"into-{name}").exists() or not list((tmp_path / f"into-{name}").iterdir()), name


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-3])


def _edit(folder: Path, **changes: Any) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    for key, value in changes.items():
        manifest[key] = manifest[key] | value if isinstance(value, dict) else value
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_a_backup_never_overwrites(home: Settings, taken: Path) -> None:
    before = _tree(taken)
    with pytest.raises(ConfigError, match="exists and is not an empty folder"):
        backup(home, taken)
    assert _tree(taken) == before


@pytest.mark.parametrize(("limit", "reason"), [(8 << 10, "File too large"), (160 << 10, "disk I/O error")])
def test_a_full_disk_is_a_clear_error_and_leaves_nothing(
    home: Settings, tmp_path: Path, limit: int, reason: str
) -> None:
    """RLIMIT_FSIZE makes writes past ``limit`` fail (EFBIG), as a full disk fails them (ENOSPC): in a file sveta
    copies (the index, 23 KB) or in the catalog SQLite's backup API writes (200 KB)."""
    live = _tree(home.data_dir)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        with pytest.raises(BackupWriteError, match=rf"cannot write the backup to .*/full: {reason}") as caught:
            backup(home, tmp_path / "full")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert "nothing was left there and the data home is untouched" in (caught.value.hint or "")
    assert list(tmp_path.iterdir()) == []  # no backup, no hidden half of one
    assert _tree(home.data_dir) == live


def test_a_full_disk_during_a_restore_leaves_the_home_empty(home: Settings, taken: Path, tmp_path: Path) -> None:
    other = home.model_copy(update={"data_dir": tmp_path / "restored"})
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, hard))
    try:
        with pytest.raises(ConfigError, match=r"cannot write the data home .*: File too large") as caught:
            restore(other, taken)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert "the home is empty" in (caught.value.hint or "")
    assert list((tmp_path / "restored").iterdir()) == []
    assert restore(other, taken).doctor["ok"]  # and a restore with room succeeds


def _namespace_script(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a private mount namespace (its mounts vanish with it); skip where that is not allowed."""
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode or not shutil.which("mount"):
        pytest.skip("needs a private mount namespace (root, unshare -m) for a real read-only / full filesystem")
    return subprocess.run(["unshare", "-m", "sh", "-ec", script], capture_output=True, text=True, check=False)


_IN_NAMESPACE = """
import json, sys
from pathlib import Path
from sveta.errors import SvetaError
from sveta.ops.backup import backup
from sveta.settings import Settings

settings, answers = Settings(data_dir=Path(sys.argv[1]), embedder="colour"), {}
for name, dest, images in zip(("ro", "full", "home"), sys.argv[2:5], (False, True, False)):
    try:
        answers[name] = {"products": backup(settings, Path(dest), with_images=images).catalog["products"]}
    except SvetaError as exc:
        answers[name] = {"error": exc.message, "hint": exc.hint, "type": type(exc).__name__}
print(json.dumps(answers))
"""


def test_read_only_and_full_filesystems(home: Settings, tmp_path: Path) -> None:
    """Real filesystems: a read-only one and a 200 KiB one (the photos fit, the catalog does not) as the
    destination, and a read-only data home (backed up all the same)."""
    live = _tree(home.data_dir)
    ro, small, out = tmp_path / "ro", tmp_path / "small", tmp_path / "out"
    for folder in (ro, small, out):
        folder.mkdir()
    script = f"""
        mount -t tmpfs -o ro,size=1m tmpfs {ro}
        mount -t tmpfs -o size=200k tmpfs {small}
        mount --bind {home.data_dir} {home.data_dir} && mount -o remount,bind,ro {home.data_dir}
        {sys.executable} -c '{_IN_NAMESPACE}' {home.data_dir} {ro}/b {small}/b {out}/from-ro-home
        ls -A {small}
    """
    done = _namespace_script(script)
    assert done.returncode == 0, done.stderr
    answers, left = done.stdout.strip().split("\n", 1)[0], done.stdout.strip().split("\n")[1:]
    found = json.loads(answers)
    assert found["ro"]["type"] == "BackupWriteError" and "Read-only file system" in found["ro"]["error"], found
    assert found["full"]["type"] == "BackupWriteError", found
    assert found["full"]["error"].endswith("/small/b: database or disk is full"), found  # SQLite's word for ENOSPC
    assert "free space on that disk" in found["full"]["hint"]
    assert left == []  # the half-written hidden folder on the full disk was removed
    assert found["home"] == {"products": 30}  # a read-only data home is read, never written
    assert read_backup(out / "from-ro-home")["catalog"]["products"] == 30
    assert _tree(home.data_dir) == live


def _slow_backup(settings: Settings, dest: Path) -> None:
    backup(settings, dest)


def test_a_killed_backup_leaves_nothing_a_restore_accepts(home: Settings, tmp_path: Path) -> None:
    """SIGKILL at several moments of a backup (a 40 MB model makes it last): DIR is complete, or it is not there
    and the hidden half is refused."""
    big = home.models_dir / "extra" / "big.bin"
    big.write_bytes(os.urandom(40 << 20))
    fork, refused = multiprocessing.get_context("fork"), 0
    try:
        for n, delay in enumerate((0.05, 0.2, 0.4)):
            dest = tmp_path / f"b{n}"
            child = fork.Process(target=_slow_backup, args=(home, dest))
            child.start()
            time.sleep(delay)
            os.kill(child.pid or 0, signal.SIGKILL)
            child.join()
            halves = list(tmp_path.glob(f".b{n}.tmp-*"))
            if dest.exists():
                read_backup(dest)  # whole: every file present with its size
            for half in halves:
                if not (half / MANIFEST).exists():
                    with pytest.raises(InputError, match="has no manifest"):
                        restore(home.model_copy(update={"data_dir": tmp_path / f"into{n}"}), half)
                    refused += 1
            assert dest.exists() or halves, f"kill {n} left neither a backup nor its hidden half"
    finally:
        big.unlink()
    assert refused, "no kill landed in the middle of a backup"
    again = backup(home, tmp_path / "b0-again")
    assert again.catalog["products"] == 30


# -- PostgreSQL -------------------------------------------------------------------------------------------


def _fresh_database(url: str, name: str) -> str:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def test_postgres_round_trip(postgres_url: str, myntra: Path, tmp_path: Path, served_photos: Any) -> None:
    reset_postgres(postgres_url)
    pg_bin = find_bin_dir()
    settings = _home(myntra, tmp_path, served_photos, database_url=postgres_url)
    before = _answers(settings)
    with pytest.raises(ConfigError, match="pg_dump is not in") as caught:
        backup(settings, tmp_path / "b", pg_bin=tmp_path)
    assert "pg_dump --format=custom" in (caught.value.hint or "") and "pg_restore" in (caught.value.hint or "")
    report = backup(settings, tmp_path / "b", pg_bin=pg_bin, with_images=True)
    assert report.catalog["engine"] == "postgresql" and report.catalog["products"] == 30
    with pytest.raises(ConfigError, match="is not empty"):
        restore(settings.model_copy(update={"data_dir": tmp_path / "other"}), tmp_path / "b", pg_bin=pg_bin)
    assert not (tmp_path / "other").exists() or not list((tmp_path / "other").iterdir())
    restored_url = _fresh_database(postgres_url, "sveta_restored")
    other = settings.model_copy(update={"data_dir": tmp_path / "other", "database_url": restored_url})
    result = restore(other, tmp_path / "b", pg_bin=pg_bin)
    assert result.doctor["ok"], result.doctor
    assert _answers(other) == before
    store = open_catalog(restored_url)
    try:  # the sequences came back too: a new row gets the next id, not one of a restored row
        assert store.ensure_source("later", "csv", "later.csv") == 3
    finally:
        store.engine.dispose()


@pytest.mark.slow
def test_a_sqlite_backup_restores_into_postgres(home: Settings, taken: Path, postgres_url: str, tmp_path: Path) -> None:
    url = _fresh_database(postgres_url, "sveta_from_sqlite")
    other = home.model_copy(update={"data_dir": tmp_path / "other", "database_url": url})
    report = restore(other, taken)
    assert report.catalog["products"] == 30 and report.doctor["ok"], report.doctor
    restored, original = _answers(other), _answers(home)
    assert restored["stats"] == original["stats"] and restored["similar"] == original["similar"]
    ids = lambda answer: sorted(m["product_id"] for m in answer["text"]["matches"])  # noqa: E731
    assert ids(restored) == ids(original), (restored["text"], original["text"])


# -- slow: a trained model, a served home under load, Milvus ------------------------------------------------


@pytest.fixture(scope="module")
def trained(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A real catalog of three article types, trained (text map included) and indexed with the tuned embedding."""
    from sveta.learn.catalog import train_catalog
    from tests import test_learn

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_learn, "TYPES", {"Tshirts": 25, "Casual Shoes": 20, "Handbags": 20})
        folder = test_learn._subset(myntra, tmp_path_factory.mktemp("trained") / "subset")
    settings = Settings(data_dir=tmp_path_factory.mktemp("trained-home") / "data", train_thumbnail_share=0.0)
    catalog = open_catalog(settings.catalog_url)
    reader = FeedReader(folder / "styles.csv", images_dir=folder / "images")
    run_ingest(catalog, name="subset", kind="csv", location=str(folder), records=reader.records(), state=reader.state)
    train_catalog(catalog, settings)
    sync_index(catalog, settings)
    catalog.engine.dispose()
    return settings


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first test of the module's trained home trains it (a minute or more of CPU)
def test_a_trained_model_and_its_index_come_back(trained: Settings, tmp_path: Path, shared: Path) -> None:
    backed_up = _cli(trained, ["backup", str(tmp_path / "b"), "--json"])
    assert backed_up["index"]["config"]["embedder"] == "tuned:catalog" and "tuned/catalog" in backed_up["models"]
    other = trained.model_copy(update={"data_dir": tmp_path / "restored"})
    report = _cli(other, ["restore", str(tmp_path / "b"), "--json"])
    assert report["doctor"] == {"ok": True, "problems": []} and report["index"]["ok"], report
    assert _answers(other) == _answers(trained)
    photo = str(shared / "fixtures" / "photos" / "product-handbag.jpg")
    assert _cli(other, ["tag", photo, "--json"]) == _cli(trained, ["tag", photo, "--json"])
    assert _tree(other.models_dir) == _tree(trained.models_dir)


_WRITER = """
import sys, time
from pathlib import Path
from sveta.catalog.store import open_catalog
from sveta.ingest.feeds import FeedReader
from sveta.ingest.pipeline import run_ingest

catalog = open_catalog(f"sqlite:///{sys.argv[1]}/catalog.db")
for n, feed in enumerate(sys.argv[3:]):
    reader = FeedReader(Path(feed), images_dir=Path(sys.argv[2]))
    run_ingest(catalog, name=f"live{n}", kind="csv", location=feed, records=reader.records(), state=reader.state)
    print(n, flush=True)
    time.sleep(0.2)
"""


def _load(port: int, product: str, statuses: list[int], stop: Any) -> None:
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        while not stop.is_set():
            for path in (f"/api/products/{product}/similar?k=5", f"/api/search/text?q={TEXT_QUERY}&k=5"):
                statuses.append(client.get(path).status_code)


def _serve(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    import httpx

    env = os.environ | {"SVETA_DATA_DIR": str(settings.data_dir), "SVETA_SYNC_EVERY": "0"}
    server = subprocess.Popen([sys.executable, "-m", "sveta", "serve", "--port", str(port)], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError("sveta serve did not become ready")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_backup_under_load_is_one_consistent_moment(trained: Settings, myntra: Path, tmp_path: Path) -> None:
    """`sveta serve` answers searches and a writer ingests a feed after feed (20 products each, one transaction)
    while `sveta backup` runs. The restored catalog holds whole feeds only, and answers exactly as a home rebuilt
    from a quiet backup plus the same feeds does."""
    import threading

    quiet = backup(trained, tmp_path / "quiet")
    feeds = [str(_feed(myntra, tmp_path / f"live{n}", 20, skip=400 + 20 * n)) for n in range(30)]
    port, product = _free_port(), _first_product(trained)
    big = trained.models_dir / "big.bin"  # 64 MB more to copy: the backup lasts while the server answers
    big.write_bytes(os.urandom(64 << 20))
    server = _serve(trained, port)
    statuses: list[int] = []
    stop = threading.Event()
    readers = [threading.Thread(target=_load, args=(port, product, statuses, stop)) for _ in range(2)]
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(trained.data_dir), str(myntra / "images"), *feeds],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for reader in readers:
            reader.start()
        assert writer.stdout is not None and writer.stdout.readline().strip() == "0"  # the writer is under way
        env = os.environ | {"SVETA_DATA_DIR": str(trained.data_dir)}
        answered = len(statuses)
        done = subprocess.run(
            [sys.executable, "-m", "sveta", "backup", str(tmp_path / "loaded"), "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        answered = len(statuses) - answered
    finally:
        big.unlink()
        stop.set()
        for reader in readers:
            reader.join()
        writer.kill()
        writer.wait()
        server.terminate()
        server.wait(timeout=30)
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    seconds = json.loads(done.stdout.splitlines()[-1])["seconds"]
    print(f"backup under load: {seconds} s, {answered} answers meanwhile, {len(statuses)} in all, every one 200")
    assert answered > 0
    restored = trained.model_copy(update={"data_dir": tmp_path / "restored"})
    report = restore(restored, tmp_path / "loaded")
    assert report.doctor["ok"] and report.index["ok"], report
    whole, started_next = _whole_feeds(restored)
    assert 1 <= whole < len(feeds), f"the backup did not land while the writer wrote ({whole} feeds)"
    print(f"the backup holds {whole} of the writer's {len(feeds)} feeds, each whole")
    rebuilt = trained.model_copy(update={"data_dir": tmp_path / "rebuilt"})
    restore(rebuilt, quiet.path)
    _replay(rebuilt, feeds[:whole], myntra, empty_source=started_next)
    assert _comparable(_answers(restored, product)) == _comparable(_answers(rebuilt, product))
    assert _comparable(_answers(restored, product))["text"]["matches"]


def _whole_feeds(settings: Settings) -> tuple[int, bool]:
    """How many writer feeds the catalog holds, each all 20 products or none (a torn feed fails the test), and
    whether the next one's source is there without its products."""
    from sveta.catalog.stats import catalog_stats

    store = open_catalog(settings.catalog_url)
    try:
        sources = catalog_stats(store)["sources"]
    finally:
        store.engine.dispose()
    counts = [sources[f"live{n}"]["products"] for n in range(len(sources)) if f"live{n}" in sources]
    assert all(c in (0, 20) for c in counts) and counts == sorted(counts, reverse=True), counts
    whole = sum(1 for c in counts if c == 20)
    return whole, len(counts) > whole


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _replay(settings: Settings, feeds: list[str], myntra: Path, *, empty_source: bool) -> None:
    store = open_catalog(settings.catalog_url)
    try:
        for n, feed in enumerate(feeds):
            reader = FeedReader(Path(feed), images_dir=myntra / "images")
            run_ingest(store, name=f"live{n}", kind="csv", location=feed, records=reader.records(), state=reader.state)
        if empty_source:  # the backup caught the next feed's source before its products: its id is taken
            store.ensure_source(f"live{len(feeds)}", "csv", "")
    finally:
        store.engine.dispose()


def _comparable(answers: dict[str, Any]) -> dict[str, Any]:
    """The answers without what records when, not what: crawl runs and the sources' locations."""
    for source in answers["stats"]["sources"].values():
        source.pop("last_run", None)
        source.pop("location", None)
    return answers


@pytest.mark.slow
def test_milvus_collection_recorded_and_checked(myntra: Path, tmp_path: Path, served_photos: Any) -> None:
    """A Milvus Lite index: the backup names its collection and index; a restore opens and checks it, and says
    what differs when the configured Milvus holds none, or another index."""
    url = f"milvus-lite:{tmp_path / 'milvus'}"
    settings = _home(myntra, tmp_path, served_photos, index_url=url, index_kind="hnsw")
    report = backup(settings, tmp_path / "b", with_images=True)
    assert report.index["backend"] == "milvus" and "milvus-backup" in report.index["note"]
    collection = report.index["collection"]
    assert collection and report.index["config"]["params"]["index_type"] == "HNSW"
    same = settings.model_copy(update={"data_dir": tmp_path / "same"})
    checked = restore(same, tmp_path / "b")
    assert checked.index["ok"] and checked.index["count"] == 30, checked.index["detail"]
    assert _answers(same) == _answers(settings)

    elsewhere = settings.model_copy(update={"data_dir": tmp_path / "elsewhere", "index_url": "milvus-lite:other"})
    missing = restore(elsewhere, tmp_path / "b").index
    assert missing["ok"] is False and f"collection {collection!r}" in missing["detail"], missing
    faiss = settings.model_copy(update={"data_dir": tmp_path / "faiss", "index_url": ""})
    unset = restore(faiss, tmp_path / "b").index
    assert unset["ok"] is False and "milvus-backup" in unset["fix"], unset

    flat = tmp_path / "flat"  # a backup of a FLAT index, restored where the collection has HNSW
    shutil.copytree(tmp_path / "b", flat)
    manifest = json.loads((flat / MANIFEST).read_text())
    manifest["index"]["config"]["params"]["index_type"] = "FLAT"
    (flat / MANIFEST).write_text(json.dumps(manifest))
    changed = restore(settings.model_copy(update={"data_dir": tmp_path / "changed"}), flat).index
    assert changed["ok"] is False, changed
    assert "the collection's index_type is HNSW, the backup's was FLAT" in changed["detail"], changed
