"""What every command shares: settings, the catalog, stderr console, JSON output and progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from sveta.catalog.store import CatalogStore, open_catalog
from sveta.settings import Settings, load_settings

# Human output goes to stderr so that stdout stays clean for --json.
console = Console(stderr=True, highlight=False)
_state: dict[str, Any] = {}


def settings() -> Settings:
    if "settings" not in _state:
        _state["settings"] = load_settings()
    return _state["settings"]


def set_settings(value: Settings) -> None:
    _state.clear()
    _state["settings"] = value


def catalog() -> CatalogStore:
    if "catalog" not in _state:
        _state["catalog"] = open_catalog(settings().catalog_url, busy_timeout_s=settings().db_busy_timeout_s)
    return _state["catalog"]


def print_json(payload: dict[str, Any]) -> None:
    """One JSON object on the last line of stdout: the interface scripts rely on."""
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


class Tracker:
    """What `progress` yields: call it to advance, or `update` to set done / total at once."""

    def __init__(self, bar: Progress, task: TaskID) -> None:
        self._bar, self._task = bar, task

    def __call__(self, n: int = 1) -> None:
        self._bar.advance(self._task, n)

    def update(self, completed: int, total: int | None) -> None:
        self._bar.update(self._task, completed=completed, total=total)


@contextmanager
def progress(description: str, total: int | None = None, *, quiet: bool = False) -> Iterator[Tracker]:
    """A rich progress bar on stderr."""
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False, disable=quiet) as bar:
        yield Tracker(bar, bar.add_task(description, total=total))


# The product filter options, shared by the commands that search (search, similar, look).
GENDER = typer.Option(None, "--gender", help="Only this gender (Men, Women, Boys, Girls, Unisex); repeatable.")
COLOUR = typer.Option(None, "--colour", help="Only this colour (e.g. 'Navy Blue'); repeatable.")
BRAND = typer.Option(None, "--brand", help="Only this brand; repeatable.")
SOURCE = typer.Option(None, "--source", help="Only products of this source; repeatable.")
PRICE_MIN = typer.Option(None, "--price-min", help="Lowest price.")
PRICE_MAX = typer.Option(None, "--price-max", help="Highest price.")
IN_STOCK = typer.Option(False, "--in-stock", help="Only available products.")
