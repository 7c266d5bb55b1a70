"""`sveta backup`: a consistent, checked copy of a serving data home: catalog, live index version, models, settings.

The copy is written into a hidden folder beside DIR, every file fsynced, ``manifest.json`` (the sha256 of every file)
last, and only then renamed to DIR: a backup killed at any moment leaves no DIR, and `sveta restore` refuses a
folder without a manifest. Nothing in the data home is written: the catalog is read through SQLite's online backup
API (a read-only connection; the server and writers go on) or ``pg_dump`` (one snapshot transaction).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sveta._version import __version__
from sveta.errors import CatalogError, ConfigError, SvetaError
from sveta.index.versions import CONFIG, CURRENT, fsync, read_current
from sveta.settings import Settings

FORMAT, FORMAT_VERSION, MANIFEST = "sveta-backup", 1, "manifest.json"
SQLITE_FILE, PG_FILE, SETTINGS_FILE = "catalog.db", "catalog.pgdump", "settings.json"
STALE_TMP_S = 3600  # a hidden .DIR.tmp-* folder this old is a killed backup, not one in progress
SKIPPED_MODELS = ("hub",)  # the Hugging Face download cache: public weights, fetched again on first use
# The settings that change what a restored home answers; never a key or a password (an allowlist, so a secret
# added to Settings later is not written by default).
KEPT_SETTINGS = (
    *("embedder", "embed_weights", "image_size", "index_kind", "index_metric", "index_hnsw_threshold", "hnsw_m"),
    *("hnsw_ef_construction", "hnsw_ef_search", "tag_min_confidence", "audit_min_confidence"),
    *("train_thumbnail_share", "weak_label_photos", "map_points", "sync_every"),
)
MILVUS_NOTE = (
    "the vectors live in Milvus, not in this backup: back the collection up with Milvus's own tool, milvus-backup "
    "(github.com/zilliztech/milvus-backup), and restore it there before serving"
)
WRITE_HINT = "free space on that disk or give a writable folder; nothing was left there and the data home is untouched"


@dataclass
class BackupReport:
    """What `sveta backup --json` prints: where, what of the data home, and how big."""

    path: str
    created: str
    sveta: str = __version__
    catalog: dict[str, Any] = field(default_factory=dict)
    index: dict[str, Any] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    images: dict[str, Any] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BackupWriteError(ConfigError):
    """The backup's own folder cannot be written (full disk, read-only, no permission)."""


def write_error(exc: OSError | sqlite3.Error, dest: Path) -> BackupWriteError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return BackupWriteError(f"cannot write the backup to {dest}: {reason}", WRITE_HINT)


class Writer:
    """The files of one backup, written under ``root`` with their sha256 and size recorded for the manifest."""

    def __init__(self, root: Path, dest: Path) -> None:
        self.root, self.dest = root, dest
        self.files: dict[str, dict[str, Any]] = {}

    @contextmanager
    def writing(self) -> Iterator[None]:
        """OSError inside is the backup folder's (full, read-only): one clear error."""
        try:
            yield
        except OSError as exc:
            raise write_error(exc, self.dest) from exc

    def copy(self, src: Path, rel: str) -> None:
        """Copy ``src`` (FileNotFoundError when it went meanwhile) to ``rel``, hashed on the way, fsynced."""
        with src.open("rb") as fin:
            target = self.root / rel
            digest, size = hashlib.sha256(), 0
            with self.writing():
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as fout:
                    while block := fin.read(1 << 20):
                        digest.update(block)
                        fout.write(block)
                        size += len(block)
                    fout.flush()
                    os.fsync(fout.fileno())
        self.files[rel] = {"sha256": digest.hexdigest(), "bytes": size}

    def add(self, rel: str) -> None:
        """Record (and fsync) a file something else wrote to ``rel``."""
        with self.writing():
            fsync(self.root / rel)
        self.files[rel] = {"sha256": sha256_of(self.root / rel), "bytes": (self.root / rel).stat().st_size}

    def write_json(self, rel: str, payload: dict[str, Any]) -> None:
        with self.writing():
            (self.root / rel).write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
        self.add(rel)

    def drop(self, top: str) -> None:
        """Forget a folder written by an attempt that saw the data home change."""
        shutil.rmtree(self.root / top, ignore_errors=True)
        self.files = {k: v for k, v in self.files.items() if not k.startswith(top + "/")}

    def finish(self, manifest: dict[str, Any]) -> None:
        """fsync every folder, then write the manifest: its presence says every file it names is whole."""
        with self.writing():
            for folder, _dirs, _files in os.walk(self.root, topdown=False):
                fsync(Path(folder))
            tmp = self.root / f".{MANIFEST}.tmp"
            tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
            fsync(tmp)
            os.replace(tmp, self.root / MANIFEST)
            fsync(self.root)


def backup(settings: Settings, dest: Path, *, with_images: bool = False, pg_bin: Path | None = None) -> BackupReport:
    """Back the data home of ``settings`` up into the new folder ``dest`` while it serves; see the module doc."""
    started, dest = time.monotonic(), Path(dest).absolute()
    _check_dest(settings, dest)
    tmp = dest.parent / f".{dest.name}.tmp-{secrets.token_hex(6)}"
    try:
        tmp.mkdir()
    except OSError as exc:
        raise write_error(exc, dest) from exc
    try:
        report = _write(settings, Writer(tmp, dest), with_images, pg_bin)
        try:
            os.rename(tmp, dest)  # onto nothing or an empty folder: DIR appears complete, or not at all
            fsync(dest.parent)
        except OSError as exc:
            raise write_error(exc, dest) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.path, report.seconds = str(dest), round(time.monotonic() - started, 2)
    return report


def _check_dest(settings: Settings, dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError(f"{dest} exists and is not an empty folder", "give a new folder: a backup never overwrites")
    home = settings.data_dir.absolute()
    inside = [d for d in (home / "index", home / "models", home / "images") if dest.is_relative_to(d)]
    if inside:
        raise ConfigError(f"{dest} is inside the data home's {inside[0].name} folder", "give a folder outside it")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, dest) from exc
    _prune_stale(dest)


def _prune_stale(dest: Path) -> None:
    """Hidden folders of killed backups to ``dest`` (older than an hour: never one still being written)."""
    now = time.time()
    for old in dest.parent.glob(f".{glob_escape(dest.name)}.tmp-*"):
        try:
            if old.is_dir() and now - old.stat().st_mtime > STALE_TMP_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _write(settings: Settings, writer: Writer, with_images: bool, pg_bin: Path | None) -> BackupReport:
    report = BackupReport(path="", created=datetime.now(UTC).isoformat(timespec="seconds"))
    # index and models first, the catalog last: the catalog then knows every photo the index holds
    report.index, report.models = _live_index_and_models(settings, writer)
    report.images = _copy_images(settings, writer) if with_images else _images_left_out(settings)
    report.catalog = _backup_catalog(settings, writer, pg_bin)
    writer.write_json(SETTINGS_FILE, settings_snapshot(settings))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sveta": __version__,
        "created": report.created,
        "data_dir": str(settings.data_dir.absolute()),
        "catalog": report.catalog,
        "index": report.index,
        "models": report.models,
        "images": report.images,
        "files": dict(sorted(writer.files.items())),
    }
    writer.finish(manifest)
    report.files, report.bytes = len(writer.files), sum(int(f["bytes"]) for f in writer.files.values())
    return report


# -- the live index version and the models ------------------------------------------------------------


def _live_index_and_models(settings: Settings, writer: Writer) -> tuple[dict[str, Any], list[str]]:
    """The models and the live index version as they stood together: again when a training or a build changed
    either while they were copied (a version pruned under us, a model replaced)."""
    for _attempt in range(3):
        before = _live_state(settings)
        writer.drop("index")
        writer.drop("models")
        try:
            models = _copy_models(settings, writer)
            index = _copy_index(settings, writer)
        except FileNotFoundError:
            continue
        if _live_state(settings) == before:
            return index, models
    raise ConfigError(
        "the index or the trained models kept changing while they were copied",
        "a training or an index build is running: back up again when it has finished",
    )


def _live_state(settings: Settings) -> tuple[str | None, list[tuple[str, int, int]]]:
    return read_current(settings.index_dir), [(rel, st.st_size, st.st_mtime_ns) for rel, st in _model_files(settings)]


def _model_files(settings: Settings) -> list[tuple[str, os.stat_result]]:
    return [(rel, path.stat()) for rel, path in _walk(settings.models_dir, skip=SKIPPED_MODELS)]


def _walk(root: Path, *, skip: tuple[str, ...] = ()) -> list[tuple[str, Path]]:
    """(path relative to ``root``, path) of every finished file: temporary files of writers in progress left out."""
    found = []
    for folder, dirs, files in os.walk(root):
        rel_dir = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not transient(d) and not (rel_dir == Path(".") and d in skip))
        for name in sorted(files):
            path = Path(folder) / name
            if not transient(name) and not path.is_symlink():
                found.append(((rel_dir / name).as_posix(), path))
    return found


def transient(name: str) -> bool:
    """A writer's temporary file or folder (``.x.tmp``, ``tmp-*``, ``*.part``, ``.old``): never part of a backup."""
    return name.startswith((".", "tmp-")) or ".tmp" in name or name.endswith(".part")


def _copy_models(settings: Settings, writer: Writer) -> list[str]:
    names = []
    for rel, path in _walk(settings.models_dir, skip=SKIPPED_MODELS):
        writer.copy(path, f"models/{rel}")
        if rel.endswith(("/model.npz", "/card.json")) and rel.count("/") == 2:  # tuned/NAME/..., outfits/NAME/...
            names.append(rel.rsplit("/", 1)[0])
        elif rel.endswith(".onnx") and "/" not in rel:
            names.append(rel)
    return sorted(set(names))


def _copy_index(settings: Settings, writer: Writer) -> dict[str, Any]:
    version = read_current(settings.index_dir)
    if version is None:
        return {"backend": None, "version": None, "note": "no index yet"}
    folder = settings.index_dir / version
    config = json.loads((folder / CONFIG).read_text())  # FileNotFoundError: pruned meanwhile, copied again
    for rel, path in _walk(folder):
        writer.copy(path, f"index/{version}/{rel}")
    with writer.writing():
        (writer.root / "index" / CURRENT).write_text(version + "\n")
    writer.add(f"index/{CURRENT}")
    params = config.get("params", {})
    index = {"backend": params.get("backend", "faiss"), "version": version, "config": config}
    if index["backend"] == "milvus":
        index |= {"url": params.get("url"), "collection": params.get("collection"), "note": MILVUS_NOTE}
    return index


# -- photos ------------------------------------------------------------------------------------------------


def _copy_images(settings: Settings, writer: Writer) -> dict[str, Any]:
    copied = size = 0
    for rel, path in _walk(settings.image_cache_dir):
        try:
            writer.copy(path, f"images/{rel}")
        except FileNotFoundError:
            continue  # content-addressed files are never replaced; one that went is simply not in the backup
        copied, size = copied + 1, size + writer.files[f"images/{rel}"]["bytes"]
    return {"included": True, "files": copied, "bytes": size, "cache_dir": str(settings.image_cache_dir.absolute())}


def _images_left_out(settings: Settings) -> dict[str, Any]:
    note = "not included (re-fetched from their URLs by `sveta images fetch`); add --with-images to include them"
    return {"included": False, "cache_dir": str(settings.image_cache_dir.absolute()), "note": note}


# -- the catalog -----------------------------------------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite catalog URL, None for another database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


def _backup_catalog(settings: Settings, writer: Writer, pg_bin: Path | None) -> dict[str, Any]:
    url = settings.catalog_url
    path = sqlite_path(url)
    if path is not None:
        return _backup_sqlite(path, writer)
    if url.startswith("postgres"):
        from sveta.ops.pg_tools import pg_dump

        return pg_dump(url, writer, pg_bin)
    raise ConfigError(f"sveta backs up SQLite and PostgreSQL catalogs, not {url.split(':', 1)[0]}", "")


def _backup_sqlite(path: Path, writer: Writer) -> dict[str, Any]:
    """SQLite's online backup API in one step: a read snapshot that writers (WAL) never wait for."""
    if not path.is_file():
        raise CatalogError(f"there is no catalog at {path}: nothing to back up", "check SVETA_DATA_DIR")
    try:  # read-only: the backup never writes to the live catalog
        source = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30)
        source.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise CatalogError(f"cannot read the catalog {path}: {exc}", "check the data home's permissions") from exc
    try:
        target = sqlite3.connect(writer.root / SQLITE_FILE)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            counts = _sqlite_counts(target)
        finally:
            target.close()
    except sqlite3.Error as exc:
        raise _sqlite_error(exc, path, writer.dest) from exc
    finally:
        source.close()
    writer.add(SQLITE_FILE)
    return {"engine": "sqlite", "file": SQLITE_FILE, **counts}


def _sqlite_error(exc: sqlite3.Error, path: Path, dest: Path) -> SvetaError:
    """The source was read once already: an I/O error now is the backup's disk (full, read-only)."""
    if isinstance(exc, sqlite3.OperationalError) and not str(exc).startswith("no such table"):
        return write_error(exc, dest)
    return CatalogError(f"cannot back up the catalog {path}: {exc}", "check the catalog with sveta doctor")


def _sqlite_counts(db: sqlite3.Connection) -> dict[str, Any]:
    check = db.execute("PRAGMA quick_check").fetchone()[0]
    if check != "ok":
        raise CatalogError(f"the catalog's copy fails SQLite's check: {check}", "check the live catalog: sveta doctor")
    products = db.execute("SELECT count(*) FROM products").fetchone()[0]
    revision = db.execute("SELECT version_num FROM alembic_version").fetchone()
    return {"products": int(products), "schema": revision[0] if revision else None}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# -- settings ------------------------------------------------------------------------------------------------


def settings_snapshot(settings: Settings) -> dict[str, Any]:
    """The settings that shape answers, and where the catalog and index were: never a key or a password."""
    from sveta.catalog.health import redact_url

    kept = {name: getattr(settings, name) for name in KEPT_SETTINGS}
    url = settings.catalog_url
    kept["database"] = {"engine": "sqlite" if sqlite_path(url) else url.split(":", 1)[0], "url": redact_url(url)}
    kept["index_url"] = shown_index_url(settings)
    return kept


def shown_index_url(settings: Settings) -> str:
    """SVETA_INDEX_URL without its password, as the index's config.json records it ("" for FAISS)."""
    from sveta.index.backends import index_target

    return str(index_target(settings).shown) if settings.index_url.strip() else ""
