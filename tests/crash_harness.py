"""SIGKILL a sveta command at random moments, then check what a restart finds: rows, index, models, doctor, rerun."""

from __future__ import annotations

import csv
import functools
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Op:
    """One long-running write: the seed home it starts from, its command, and what its rerun must leave."""

    name: str
    seed: str
    args: list[str]
    prepare: Callable[[Path], None] | None = None  # given the feeds folder, before each run


@dataclass
class Tally:
    """What the kills of one operation found."""

    kills: int = 0
    finished_first: int = 0  # the command ended before its kill landed: not counted as a kill
    lost: int = 0
    duplicates: int = 0
    failed_restarts: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, problem: str) -> None:
        self.problems.append(problem)


def env_for(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SVETA_DATA_DIR": str(home),
        "SVETA_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "SVETA_CRAWL_DELAY_S": "0",
        "SVETA_WEAK_LABEL_PHOTOS": "0",
        "PYTHONUNBUFFERED": "1",
    }


def sveta(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sveta", *args]
    return subprocess.run(command, env=env_for(home), capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def checked(home: Path, *args: str) -> str:
    done = sveta(home, *args)
    assert done.returncode == 0, f"sveta {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


@contextmanager
def photo_server(folder: Path, delay_s: float = 0.01) -> Iterator[str]:
    """A real local HTTP server for a folder of photos, a little slow, as a shop's CDN over a network is."""

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay_s)
            super().do_GET()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def write_feed(myntra: Path, path: Path, base_url: str, n: int) -> Path:
    """The first n Myntra rows with a photo, each photo's URL on the local server."""
    with (myntra / "styles.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if (myntra / "images" / f"{r['id']}.jpg").is_file()][:n]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], "image_url"])
        writer.writeheader()
        writer.writerows({**r, "image_url": f"{base_url}/{r['id']}.jpg"} for r in rows)
    return path


def copy_home(seed: Path, target: Path) -> Path:
    if target.exists():  # a connection the test let go of may still be closing (and removing its -wal file)
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=False) if target.exists() else None
    shutil.copytree(seed, target, symlinks=True)
    return target


def kill_at(home: Path, args: list[str], delay_s: float) -> bool:
    """Start the command, SIGKILL it after ``delay_s``; False when it had already finished."""
    command = [sys.executable, "-m", "sveta", *args]
    process = subprocess.Popen(
        command, env=env_for(home), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        process.wait(timeout=delay_s)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True


def timed_run(home: Path, args: list[str]) -> float:
    started = time.monotonic()
    checked(home, *args)
    return time.monotonic() - started


def kill_moments(rng: random.Random, startup_s: float, run_s: float, n: int) -> list[float]:
    """n moments spread over the command's working time (after its imports), each jittered at random."""
    span = max(run_s - startup_s, 0.2)
    return [startup_s + span * (i + rng.random()) / n for i in range(n)]


def startup_seconds(home: Path) -> float:
    started = time.monotonic()
    checked(home, "--version")
    return time.monotonic() - started


# -- what a restart must find -----------------------------------------------------------------------------------


def product_keys(home: Path) -> list[tuple[int, str]]:
    db = home / "catalog.db"
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return [(r[0], r[1]) for r in conn.execute("SELECT source_id, external_id FROM products")]
        except sqlite3.OperationalError:  # killed before the schema was made
            return []


def integrity(home: Path) -> str:
    db = home / "catalog.db"
    if not db.exists():
        return "ok"
    with sqlite3.connect(db, timeout=30) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def cached_image_ids(home: Path) -> set[int]:
    with sqlite3.connect(home / "catalog.db", timeout=30) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM images WHERE status = 'cached'")}


def row_problems(before: list[tuple[int, str]], after: list[tuple[int, str]], tally: Tally, where: str) -> None:
    """Committed rows lost (in ``before``, gone ``after``) and duplicates, counted into ``tally``."""
    lost = set(before) - set(after)
    dupes = len(after) - len(set(after))
    tally.lost += len(lost)
    tally.duplicates += dupes
    if lost or dupes:
        tally.add(f"{where}: {len(lost)} rows lost, {dupes} duplicates")
