"""`sveta restore`: a backup checked whole (manifest, sizes, sha256), then put into an empty data home and catalog.

Nothing is overwritten or merged: the data home must be empty (or absent) and so must the catalog database. The
files are copied into a hidden folder of the new home and verified before anything is put in place; a marker file
names a restore that began to fill the home and did not finish, so that one is never taken for a good home.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sveta.errors import ConfigError, InputError, SvetaError
from sveta.index.versions import fsync
from sveta.ops.backup import (
    FORMAT,
    FORMAT_VERSION,
    KEPT_SETTINGS,
    MANIFEST,
    PG_FILE,
    SETTINGS_FILE,
    SQLITE_FILE,
    settings_snapshot,
    shown_index_url,
    sqlite_path,
)
from sveta.ops.doctor.catalog import RESTORE_MARKER
from sveta.settings import Settings

MARKER, STAGING = RESTORE_MARKER, ".sveta-restore-staging"
IGNORED = frozenset({"lost+found"})  # what a fresh filesystem holds: an empty home all the same
_TOPS = frozenset({"index", "models", "images", SQLITE_FILE, PG_FILE, SETTINGS_FILE})
_SAFE = re.compile(r"[A-Za-z0-9_.+=@-]+")
_TAKE = "take a new backup (sveta backup DIR), or copy this one again from where it was made"


@dataclass
class RestoreReport:
    """What `sveta restore --json` prints: what came back, what differs from the backup, and the doctor's word."""

    source: str
    data_dir: str
    created: str  # when the backup was taken
    sveta: str  # the version that took it
    catalog: dict[str, Any] = field(default_factory=dict)
    index: dict[str, Any] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    images: dict[str, Any] = field(default_factory=dict)
    settings_differ: dict[str, dict[str, Any]] = field(default_factory=dict)
    doctor: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_backup(src: Path) -> dict[str, Any]:
    """The manifest of the backup in ``src``, checked: format, every file named present with its size."""
    src = Path(src)
    if not src.is_dir():
        raise InputError(f"{src} is not a folder", "give the folder `sveta backup DIR` made")
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except FileNotFoundError:
        raise InputError(
            f"{src} is not a complete sveta backup: it has no {MANIFEST} (written last, so a backup that was "
            "interrupted has none)",
            _TAKE,
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{src / MANIFEST} cannot be read: {exc}", _TAKE) from exc
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        raise InputError(f"{src} is not a sveta backup (its {MANIFEST} is another format)", _TAKE)
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConfigError(
            f"{src} is a backup of format {version}, made by sveta {manifest.get('sveta')}; this sveta reads "
            f"format {FORMAT_VERSION}",
            "upgrade sveta (pip install -U sveta) and restore again",
        )
    for rel, entry in manifest["files"].items():
        _check_entry(src, rel, entry)
    return manifest


def _check_entry(src: Path, rel: str, entry: Any) -> None:
    parts = rel.split("/")
    if parts[0] not in _TOPS or not all(_SAFE.fullmatch(p) and p not in (".", "..") for p in parts):
        raise InputError(f"{src} names an unexpected file {rel[:80]!r}", _TAKE)
    if not isinstance(entry, dict) or not isinstance(entry.get("bytes"), int) or "sha256" not in entry:
        raise InputError(f"{src}'s {MANIFEST} is damaged at {rel}", _TAKE)
    path = src / rel
    if not path.is_file():
        raise InputError(f"{src} is incomplete: {rel} is missing", _TAKE)
    if path.stat().st_size != entry["bytes"]:
        raise InputError(f"{src} is damaged: {rel} has {path.stat().st_size} bytes, not {entry['bytes']}", _TAKE)


def restore(settings: Settings, src: Path, *, pg_bin: Path | None = None) -> RestoreReport:
    """Put the backup in ``src`` into the empty data home (and catalog database) of ``settings``."""
    started, src = time.monotonic(), Path(src).absolute()
    manifest = read_backup(src)
    home = settings.data_dir.absolute()
    _check_home(home)
    _check_catalog_target(settings, manifest)
    try:
        home.mkdir(parents=True, exist_ok=True)
        _write_marker(home)
    except OSError as exc:
        raise ConfigError(f"cannot write the data home {home}: {exc.strerror}", "give a writable folder") from exc
    staging = home / STAGING
    try:  # nothing is in place yet: a failure leaves the home (and the database) as empty as it was
        _stage(src, manifest, staging)
        _restore_database(settings, manifest, src, staging, pg_bin)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        (home / MARKER).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # the new home's disk: full, read-only
            hint = "free space there or give another data home; nothing was restored, the home is empty"
            raise ConfigError(f"cannot write the data home {home}: {exc.strerror or exc}", hint) from exc
        raise
    try:
        _put_in_place(settings, staging, home)
        photos = _relocate_photos(settings, manifest)
        shutil.rmtree(staging, ignore_errors=True)
        (home / MARKER).unlink()
        fsync(home)
    except (OSError, SvetaError) as exc:
        reason = exc.message if isinstance(exc, SvetaError) else exc.strerror or str(exc)
        raise ConfigError(
            f"the restore stopped after it began to fill {home}: {reason}",
            "empty the data home (and the catalog database) and restore again",
        ) from exc
    report = RestoreReport(str(src), str(home), manifest.get("created", ""), manifest.get("sveta", ""))
    report.catalog = {**_catalog_counts(settings, manifest), **photos}
    report.index = check_index(settings, manifest)
    images = manifest.get("images", {})
    report.models, report.images = manifest.get("models", []), {k: images.get(k) for k in ("included", "files")}
    report.settings_differ = _settings_differ(settings, src)
    report.doctor = _doctor(settings)
    report.seconds = round(time.monotonic() - started, 2)
    return report


def _check_home(home: Path) -> None:
    if (home / MARKER).exists():
        raise ConfigError(
            f"an earlier restore into {home} did not finish", f"empty it (rm -r {home}) and restore again"
        )
    if home.exists() and not home.is_dir():
        raise ConfigError(f"the data home {home} is not a folder", "give a new folder with --data-dir")
    entries = sorted(p.name for p in home.iterdir() if p.name not in IGNORED) if home.is_dir() else []
    if entries:
        raise ConfigError(
            f"the data home {home} is not empty ({', '.join(entries[:5])}): a restore never overwrites or merges",
            "restore into a new data home: sveta --data-dir NEW restore DIR (or SVETA_DATA_DIR=NEW)",
        )


def _check_catalog_target(settings: Settings, manifest: dict[str, Any]) -> None:
    from sveta.ops.pg_tools import require_empty

    url, engine = settings.catalog_url, manifest.get("catalog", {}).get("engine")
    target = sqlite_path(url)
    if target is not None and engine == "postgresql":
        raise ConfigError(
            "this backup's catalog is a PostgreSQL dump; the settings select a SQLite catalog",
            "set SVETA_DATABASE_URL to an empty PostgreSQL database and restore again (`sveta catalog copy` can "
            "then move it to SQLite)",
        )
    if target is not None and any(Path(f"{target}{s}").exists() for s in ("", "-wal", "-journal")):
        raise ConfigError(f"the catalog {target} exists: a restore never overwrites", "restore into a new data home")
    if target is None:
        require_empty(url)


def _write_marker(home: Path) -> None:
    marker = home / MARKER
    marker.write_text("a restore into this data home began and has not finished\n")
    fsync(marker)
    fsync(home)


def _stage(src: Path, manifest: dict[str, Any], staging: Path) -> None:
    """Copy every file into ``staging`` and check its sha256 (the PostgreSQL dump is only checked: read in place)."""
    for rel, entry in manifest["files"].items():
        target = None if rel == PG_FILE else staging / rel
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
        if _copy_hashed(src / rel, target) != entry["sha256"]:
            raise InputError(f"{src} is damaged: {rel} does not match its checksum", _TAKE)
    for folder, _dirs, _files in os.walk(staging, topdown=False):
        fsync(Path(folder))


def _copy_hashed(src: Path, target: Path | None) -> str:
    digest = hashlib.sha256()
    with src.open("rb") as fin:
        fout = target.open("wb") if target is not None else None
        try:
            while block := fin.read(1 << 20):
                digest.update(block)
                if fout is not None:
                    fout.write(block)
            if fout is not None:
                fout.flush()
                os.fsync(fout.fileno())
        finally:
            if fout is not None:
                fout.close()
    return digest.hexdigest()


def _restore_database(
    settings: Settings, manifest: dict[str, Any], src: Path, staging: Path, pg_bin: Path | None
) -> None:
    """PostgreSQL targets are filled now, in one transaction each; a SQLite file is moved in with the rest."""
    url = settings.catalog_url
    if sqlite_path(url) is not None:
        return
    if manifest["catalog"]["engine"] == "postgresql":
        from sveta.ops.pg_tools import pg_restore

        pg_restore(url, src / PG_FILE, pg_bin, int(manifest["catalog"].get("pg_dump", 0)))
        return
    from sveta.catalog.copy import copy_catalog
    from sveta.catalog.store import open_catalog

    source = open_catalog(f"sqlite:///{staging / SQLITE_FILE}")  # brings an older backup's schema up to date
    try:
        copy_catalog(source, url)
    finally:
        source.engine.dispose()


def _put_in_place(settings: Settings, staging: Path, home: Path) -> None:
    for top in ("models", "index", "images"):
        if (staging / top).is_dir():
            os.rename(staging / top, home / top)
    target = sqlite_path(settings.catalog_url)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / SQLITE_FILE, target)  # same filesystem unless SVETA_DATABASE_URL points elsewhere
        fsync(target.parent)


def _relocate_photos(settings: Settings, manifest: dict[str, Any]) -> dict[str, int]:
    """Cached photos of the old home's image cache, pointed at this home's; those not restored fetched again."""
    from sveta.catalog.photos import relocate_cached
    from sveta.catalog.store import open_catalog

    old, new = str(manifest.get("images", {}).get("cache_dir") or ""), settings.image_cache_dir.absolute()
    if not old:
        return {"photos_relocated": 0, "photos_to_fetch": 0}
    store = open_catalog(settings.catalog_url)  # migrates a backup of an older sveta
    try:
        moved, missing = relocate_cached(store, old, new)
    finally:
        store.engine.dispose()
    return {"photos_relocated": moved, "photos_to_fetch": missing}


def _catalog_counts(settings: Settings, manifest: dict[str, Any]) -> dict[str, Any]:
    from sveta.catalog.health import redact_url
    from sveta.catalog.store import open_catalog

    store = open_catalog(settings.catalog_url)
    try:
        products = store.count_products()
    finally:
        store.engine.dispose()
    backed_up = manifest.get("catalog", {})
    return {"engine": backed_up.get("engine"), "url": redact_url(settings.catalog_url), "products": products}


def check_index(settings: Settings, manifest: dict[str, Any]) -> dict[str, Any]:
    """Does the restored index open, with the vectors and (Milvus) the collection and index the backup recorded?"""
    info = manifest.get("index", {})
    out = {"backend": info.get("backend"), "version": info.get("version")}
    if not info.get("version"):
        return out | {"ok": None, "detail": "the backup holds no index: build one with `sveta index build`"}
    config = info.get("config", {})
    if info.get("backend") == "milvus" and not settings.index_url.strip():
        detail = f"the index lives in Milvus at {info.get('url')} (collection {info.get('collection')})"
        return out | {"ok": False, "detail": detail, "fix": f"set SVETA_INDEX_URL to it; {info.get('note', '')}"}
    from sveta.index.catalog_index import open_catalog_index

    try:
        index = open_catalog_index(settings, create=False)
    except SvetaError as exc:
        return out | {"ok": False, "detail": exc.message, "fix": exc.hint or ""}
    try:
        count, differ = len(index), _milvus_differences(settings, index, info)
    finally:
        close = getattr(index, "close", None)
        if close is not None:
            close()
    if count != config.get("count"):
        differ.append(f"it holds {count} vectors, the backup's index held {config.get('count')}")
    detail = "; ".join(differ) or f"opens: {count} vectors, {config.get('kind')}, {config.get('embedder')}"
    return out | {"ok": not differ, "count": count, "detail": detail}


def _milvus_differences(settings: Settings, index: Any, info: dict[str, Any]) -> list[str]:
    """The configured Milvus collection's vector index against the one the backup recorded."""
    if info.get("backend") != "milvus":
        return []
    differ, params = [], info.get("config", {}).get("params", {})
    if shown_index_url(settings) != info.get("url"):
        differ.append(f"SVETA_INDEX_URL is {shown_index_url(settings)}, the backup's was {info.get('url')}")
    described = index.client.describe_index(index.collection, "vector") or {}
    wanted = {
        "index_type": params.get("index_type"),
        "M": params.get("m"),
        "efConstruction": params.get("ef_construction"),
    }
    for key, value in wanted.items():  # what the server reports (Milvus Lite leaves HNSW's parameters out)
        if value is not None and key in described and str(described[key]) != str(value):
            differ.append(f"the collection's {key} is {described.get(key)}, the backup's was {value}")
    return differ


def _settings_differ(settings: Settings, src: Path) -> dict[str, dict[str, Any]]:
    """The settings that shape answers whose value here is not the backup's (SVETA_<NAME> brings it back)."""
    saved = json.loads((src / SETTINGS_FILE).read_text())
    here = json.loads(json.dumps(settings_snapshot(settings), default=str))
    return {
        name: {"backup": saved[name], "here": here[name], "set": f"SVETA_{name.upper()}"}
        for name in KEPT_SETTINGS
        if name in saved and saved[name] != here[name]
    }


def _doctor(settings: Settings) -> dict[str, Any]:
    from sveta.ops.doctor import all_ok, run_checks

    checks = run_checks(settings)
    problems = [f"{c.name}: {c.detail}" + (f" ({c.fix})" if c.fix else "") for c in checks if c.ok is False]
    return {"ok": all_ok(checks), "problems": problems}
