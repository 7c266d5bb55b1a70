"""`sveta backup DIR` and `sveta restore DIR`: a consistent, checked copy of a serving data home, and its return."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from sveta.cli._common import console, print_json, settings

_JSON = typer.Option(False, "--json", help="End with one JSON line: the report.")
_PG_BIN = typer.Option(
    None, "--pg-bin", help="Folder of pg_dump / pg_restore for a PostgreSQL catalog (default: PATH)."
)


def backup(
    folder: Path = typer.Argument(..., help="A new (or empty) folder to write the backup to."),
    with_images: bool = typer.Option(
        False, "--with-images", help="Include the image cache (large; left out, photos are fetched again)."
    ),
    pg_bin: Path | None = _PG_BIN,
    as_json: bool = _JSON,
) -> None:
    """Back up the catalog, the live index version, the trained models and the settings, while sveta serves.

    SQLite catalogs are copied with SQLite's online backup API, PostgreSQL ones with pg_dump; a Milvus index's
    vectors are backed up with Milvus's own tool, milvus-backup (the backup records the collection). Secrets
    (API key, passwords) are never written. The folder appears complete, with a manifest of checksums, or not at all.
    """
    from sveta.ops.backup import backup as run_backup

    report = run_backup(settings(), folder, with_images=with_images, pg_bin=pg_bin)
    index = report.index
    where = f"index {index['version']} ({index['backend']})" if index.get("version") else "no index"
    console.print(
        f"backed up to {escape(report.path)}: {report.catalog.get('products', '?')} products "
        f"({report.catalog['engine']}), {where}, {len(report.models)} models, "
        f"{report.files} files, {report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s"
    )
    for note in (index.get("note") if index.get("backend") == "milvus" else None, report.images.get("note")):
        if note:
            console.print(f"[yellow]note:[/] {escape(note)}")
    if as_json:
        print_json(report.as_dict())


def restore(
    folder: Path = typer.Argument(..., help="A folder `sveta backup` made."),
    pg_bin: Path | None = _PG_BIN,
    as_json: bool = _JSON,
) -> None:
    """Check a backup whole (manifest, sizes, checksums), then restore it into an empty data home.

    The data home (SVETA_DATA_DIR or --data-dir) must be empty or absent, and so must the catalog database
    SVETA_DATABASE_URL names; nothing is ever overwritten or merged. Ends with `sveta doctor`'s checks.
    """
    from sveta.ops.restore import restore as run_restore

    report = run_restore(settings(), folder, pg_bin=pg_bin)
    console.print(
        f"restored {escape(report.source)} (taken {report.created} by sveta {report.sveta}) into "
        f"{escape(report.data_dir)}: {report.catalog['products']} products, {len(report.models)} models "
        f"in {report.seconds:.1f} s"
    )
    _say_index(report.index)
    if report.catalog.get("photos_to_fetch"):
        console.print(
            f"[yellow]note:[/] {report.catalog['photos_to_fetch']} photos were not in the backup: "
            "fetch them again with sveta images fetch"
        )
    for name, values in report.settings_differ.items():
        console.print(
            f"[yellow]setting:[/] {name} is {values['here']!r} here, {values['backup']!r} in the backup "
            f"(set {values['set']} to answer as before)"
        )
    _say_doctor(report.doctor)
    if as_json:
        print_json(report.as_dict())


def _say_index(index: dict[str, Any]) -> None:
    if index.get("ok"):
        console.print(f"index {index['version']}: {escape(index['detail'])}")
    elif index.get("ok") is None:
        console.print(f"[yellow]index:[/] {escape(index['detail'])}")
    else:
        fix = f" ({index['fix']})" if index.get("fix") else ""
        console.print(f"[bold red]index:[/] {escape(index['detail'] + fix)}")


def _say_doctor(doctor: dict[str, Any]) -> None:
    if doctor.get("ok"):
        console.print("[green]sveta doctor: all required checks pass[/]")
        return
    console.print("[bold red]sveta doctor: some required checks fail[/]")
    for problem in doctor.get("problems", []):
        console.print(f"  {escape(problem)}")
