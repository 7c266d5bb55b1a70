"""pg_dump and pg_restore for a PostgreSQL catalog: found, version-checked, no password on their command line."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sveta.catalog.health import open_checked, redact_url, url_password
from sveta.errors import CatalogError, ConfigError
from sveta.settings import library_environment

if TYPE_CHECKING:
    from sveta.ops.backup import Writer

CONNECT_TIMEOUT_S = 10
RESTORE = "pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname=URL DIR/catalog.pgdump"
_WRITE_FAILURES = ("No space left", "Read-only file system", "could not open output file", "could not write")


def libpq_url(url: str, *, hide_password: bool = True) -> str:
    """The SQLAlchemy URL as libpq reads it (``postgresql://``), with a connect timeout; no password by default."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    if hide_password:
        parsed = parsed.set(password=None)
    if "connect_timeout" not in parsed.query:
        parsed = parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_S)})
    return parsed.render_as_string(hide_password=False)


@contextmanager
def password_for(url: str) -> Iterator[None]:
    """The URL's password as PGPASSWORD while a pg tool runs (a command line is readable by every local user)."""
    password = url_password(url)
    with library_environment("PGPASSWORD", password) if password else nullcontext():
        yield


def server_major(url: str) -> int:
    """The major version of the PostgreSQL server at ``url`` (a CatalogError when it does not answer)."""
    try:
        store = open_checked(url, CONNECT_TIMEOUT_S)
    except Exception as exc:  # any driver or network error, said once
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300].replace(url, redact_url(url))
        raise CatalogError(f"cannot reach the catalog database {redact_url(url)}: {reason}", "sveta doctor") from exc
    try:
        with store.engine.connect() as conn:
            return int((conn.dialect.server_version_info or (0,))[0])
    finally:
        store.engine.dispose()


def tool(name: str, pg_bin: Path | None) -> tuple[Path | None, int]:
    """(the pg tool, its major version): in ``pg_bin`` when given, else on PATH; (None, 0) when missing."""
    found = (Path(pg_bin) / name) if pg_bin else Path(shutil.which(name) or "")
    if not found.name or not found.is_file():
        return None, 0
    done = subprocess.run([str(found), "--version"], capture_output=True, text=True, check=False, timeout=30)
    match = re.search(r"\)\s*(\d+)", done.stdout) or re.search(r"(\d+)", done.stdout)
    return found, int(match.group(1)) if match else 0


def checked_tool(name: str, pg_bin: Path | None, needed: int, hint: str) -> tuple[Path, int]:
    """The pg tool of at least major version ``needed`` (the server's, or the dump's), else a ConfigError."""
    found, major = tool(name, pg_bin)
    where = f"in {pg_bin}" if pg_bin else "on PATH"
    if found is None:
        raise ConfigError(f"{name} is not {where}: it is needed for a PostgreSQL {needed} catalog", hint)
    if major < needed:
        raise ConfigError(f"{found} is version {major}; this catalog needs {name} {needed} or newer", hint)
    return found, major


def dump_hint(url: str, server: int) -> str:
    return (
        f"install the PostgreSQL {server} client tools (e.g. apt-get install postgresql-client-{server}) and give "
        f"their folder with --pg-bin DIR, or dump it yourself: pg_dump --format=custom --file=DIR/catalog.pgdump "
        f"'{libpq_url(url)}' (the password in PGPASSWORD); that file restores with: {RESTORE}"
    )


def pg_dump(url: str, writer: Writer, pg_bin: Path | None) -> dict[str, Any]:
    """The catalog as a pg_dump custom-format archive (one snapshot transaction: writers go on)."""
    from sveta.ops.backup import PG_FILE, WRITE_HINT, BackupWriteError

    server = server_major(url)
    found, major = checked_tool("pg_dump", pg_bin, server, dump_hint(url, server))
    counts = _counts(url)
    target = writer.root / PG_FILE
    command = [str(found), "--format=custom", "--no-owner", "--no-privileges", f"--file={target}"]
    with password_for(url):
        done = subprocess.run([*command, f"--dbname={libpq_url(url)}"], capture_output=True, text=True, check=False)
    if done.returncode:
        error = _scrub(done.stderr, url)
        if any(s in error for s in _WRITE_FAILURES):
            raise BackupWriteError(f"cannot write the backup to {writer.dest}: {error}", WRITE_HINT)
        raise CatalogError(f"pg_dump of {redact_url(url)} failed: {error}", dump_hint(url, server))
    writer.add(PG_FILE)
    return {"engine": "postgresql", "file": PG_FILE, "server": server, "pg_dump": major, **counts}


def _counts(url: str) -> dict[str, Any]:
    from sveta.catalog.migrate import current

    store = open_checked(url, CONNECT_TIMEOUT_S)
    try:
        return {"products": store.count_products(), "schema": current(store.engine)}
    finally:
        store.engine.dispose()


def require_empty(url: str) -> None:
    """A ConfigError unless the database at ``url`` has no tables: a restore never merges into data."""
    from sqlalchemy import inspect

    server_major(url)  # a clear error when it does not answer
    store = open_checked(url, CONNECT_TIMEOUT_S)
    try:
        tables = inspect(store.engine).get_table_names()
    finally:
        store.engine.dispose()
    if tables:
        raise ConfigError(
            f"the catalog database {redact_url(url)} is not empty (tables: {', '.join(sorted(tables)[:5])})",
            "restore into a new, empty database (createdb NAME, then SVETA_DATABASE_URL=.../NAME); nothing is merged",
        )


def pg_restore(url: str, dump: Path, pg_bin: Path | None, dumped_with: int) -> None:
    """Load a pg_dump archive into the empty database at ``url`` in one transaction: all of it, or nothing."""
    server = server_major(url)
    hint = f"install the PostgreSQL {max(server, dumped_with)} client tools and give their folder with --pg-bin DIR"
    found, _major = checked_tool("pg_restore", pg_bin, max(server, dumped_with), hint)
    command = [str(found), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    with password_for(url):
        done = subprocess.run(
            [*command, f"--dbname={libpq_url(url)}", str(dump)], capture_output=True, text=True, check=False
        )
    if done.returncode:
        error = _scrub(done.stderr, url)
        raise CatalogError(f"pg_restore into {redact_url(url)} failed (nothing was loaded): {error}", "sveta doctor")


def _scrub(text: str, url: str) -> str:
    password = url_password(url)
    text = " ".join(text.split())[-600:]
    return text.replace(password, "***") if password else text
