"""Real disk faults for tests: a read-only bind mount and a small tmpfs that fills up (root with mount rights)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def can_mount(scratch: Path) -> str | None:
    """None when this process may mount here; else why not (the tests then skip: they need CAP_SYS_ADMIN)."""
    probe = scratch / "mount-probe"
    probe.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True)
    if done.returncode != 0:
        return done.stderr.decode(errors="replace").strip() or "mount failed"
    subprocess.run(["umount", str(probe)], check=True)
    return None


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` as a read-only file system (a bind mount over itself) for the duration."""
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextmanager
def full_disk(folder: Path, seed: Path, free_bytes: int) -> Iterator[Path]:
    """A tmpfs at ``folder`` holding a copy of ``seed`` and a filler file, so about ``free_bytes`` stay free."""
    used = sum(p.stat().st_size for p in seed.rglob("*") if p.is_file())
    size = used + 32 * 1024 * 1024  # room for the copy; the filler takes all but free_bytes of the rest
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        shutil.copytree(seed, folder / "data", symlinks=True)
        left = shutil.disk_usage(folder).free - free_bytes
        with (folder / "filler").open("wb") as handle:
            handle.truncate(0)
            chunk = b"\0" * (1 << 20)
            while left > 0:
                left -= handle.write(chunk[: min(len(chunk), left)])
        yield folder / "data"
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fingerprint(home: Path) -> dict[str, str]:
    """sha256 of the live index, the models and the catalog's rows (not its file: SQLite may checkpoint it)."""
    out = {}
    for path in sorted((home / "index").rglob("*")) + sorted((home / "models").rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            out[str(path.relative_to(home))] = hashlib.sha256(path.read_bytes()).hexdigest()
    out["catalog rows"] = catalog_rows(home)
    return out


def catalog_rows(home: Path) -> str:
    import sqlite3

    db = home / "catalog.db"
    if not db.exists():
        return ""
    uri = f"file:{db}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        rows = [
            conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
            for t in ("products", "variants", "images", "attributes")
        ]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def free_space(folder: Path) -> int:
    return shutil.disk_usage(folder).free if folder.exists() else 0
