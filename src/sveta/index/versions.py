"""On-disk versions of an index folder: v<N> folders, the CURRENT pointer, atomic publish, prune, discard."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sveta.errors import ConfigError
from sveta.index.base import IndexConfig

HINT = "rebuild with `sveta index build`"
CURRENT, CONFIG = "CURRENT", "config.json"
DISCARDED = "DISCARDED"  # the next writer starts empty; readers keep the live version until it saves
STALE_TMP_S = 3600  # a tmp-* folder this old is a crashed save, not one in progress
_VERSION = re.compile(r"v\d{6,}")


def save_version(path: Path, write: Callable[[Path], None], files: Sequence[str]) -> str:
    """Write a complete new version with ``write(folder)``, then switch CURRENT to it in one rename.

    A crash at any point leaves the live version as it was; the half-written folder is pruned later.
    """
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f"tmp-{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        write(tmp)
        for name in files:
            fsync(tmp / name)
        fsync(tmp)
        version = _publish(path, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _switch_current(path, version)
    (path / DISCARDED).unlink(missing_ok=True)
    _prune(path, version)
    return version


def has_versions(path: Path) -> bool:
    return any(_VERSION.fullmatch(p.name) for p in _children(path))


def read_config(path: Path) -> IndexConfig | None:
    """The config.json of the live index at ``path``, None when there is none."""
    version = read_current(Path(path))
    return None if version is None else IndexConfig.load(Path(path) / version / CONFIG)


def discard(path: Path) -> None:
    """Start the next build at ``path`` from empty (sveta index build --rebuild).

    Nothing is deleted: readers serve the live version until the new one is saved, and a crash
    mid-rebuild leaves it in place; older versions go when the new one is switched in.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _write_atomically(path / DISCARDED, "the next build starts empty\n")


def _children(path: Path) -> list[Path]:
    return list(path.iterdir()) if path.is_dir() else []


def read_current(path: Path) -> str | None:
    try:
        text = (path / CURRENT).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path / CURRENT}: {exc}", HINT) from exc
    if not _VERSION.fullmatch(text.strip()):
        raise ConfigError(f"{path / CURRENT} is damaged (it holds {text[:40]!r})", HINT)
    return text.strip()


def fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if path.is_dir():
            return  # a platform that cannot open directories: the file fsyncs still hold
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _version_number(name: str) -> int:
    return int(name[1:]) if _VERSION.fullmatch(name) else 0


def _publish(path: Path, tmp: Path) -> str:
    """Rename the finished tmp folder to the next free v<N> (another writer may have taken one)."""
    number = max((_version_number(p.name) for p in _children(path)), default=0) + 1
    while True:
        name = f"v{number:06d}"
        try:
            os.rename(tmp, path / name)
            return name
        except OSError:
            if not (path / name).exists():
                raise
            number += 1


def _switch_current(path: Path, version: str) -> None:
    _write_atomically(path / CURRENT, version + "\n")


def _write_atomically(target: Path, text: str) -> None:
    tmp = target.with_name(f"{target.name}.tmp-{secrets.token_hex(6)}")
    tmp.write_text(text, encoding="utf-8")
    fsync(tmp)
    os.replace(tmp, target)
    fsync(target.parent)


def _prune(path: Path, live: str) -> None:
    """Drop versions older than the live one and leftovers of crashed saves (never a newer version)."""
    now = time.time()
    for child in _children(path):
        try:
            old_version = 0 < _version_number(child.name) < _version_number(live)
            crashed = ".tmp-" in child.name or child.name.startswith("tmp-")
            crashed = crashed and now - child.stat().st_mtime > STALE_TMP_S
            if old_version or crashed:
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        except OSError:
            continue  # another process pruned it first
