"""The `sveta` command line: a thin layer over the library; user errors become one line and an exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from sveta._version import __version__
from sveta.cli import _common
from sveta.errors import SvetaError, database_storage_error, storage_error


def ray_address_form(args: list[str]) -> list[str]:
    """`index build --ray ADDRESS` or `--ray=ADDRESS` read as `--ray --ray-address ADDRESS` (typer has no optional
    option values); a bare `--ray` stays the flag."""
    if not any(args[i : i + 2] == ["index", "build"] for i in range(len(args))):  # after root options too
        return args
    out: list[str] = []
    for arg in args:
        if arg.startswith("--ray="):
            out += ["--ray", "--ray-address", arg.removeprefix("--ray=")]
        elif out and out[-1] == "--ray" and not arg.startswith("-"):
            out += ["--ray-address", arg]
        else:
            out.append(arg)
    return out


class _SvetaGroup(TyperGroup):
    """Maps every SvetaError once, for all commands, to a clean message and its exit code."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return list(super().parse_args(ctx, ray_address_form(args)))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SvetaError as exc:
            _fail(exc.message, exc.hint, exc.exit_code)
        except OSError as exc:  # a path that cannot be read or written, or a full or read-only disk
            if (storage := storage_error(exc)) is not None:
                _fail(storage.message, storage.hint, storage.exit_code)
            where = f": {exc.filename}" if exc.filename else ""
            _fail(f"{exc.strerror or exc}{where}", "check the path and its permissions", 1)
        except Exception as exc:
            # SQLite says "database or disk is full" / "readonly database" through SQLAlchemy's OperationalError
            if (storage := database_storage_error(exc)) is None:
                raise
            _fail(storage.message, storage.hint, storage.exit_code)
        except KeyboardInterrupt:
            _common.console.print("[yellow]interrupted[/]: what was finished is saved; run the command again")
            raise typer.Exit(130) from None


def _fail(message: str, hint: str | None, code: int) -> None:
    # User text (paths, titles, server answers) may hold [brackets]: never read it as rich markup.
    _common.console.print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        _common.console.print(f"[dim]hint:[/] {escape(hint)}")
    raise typer.Exit(code) from None


app = typer.Typer(
    cls=_SvetaGroup,
    help="sveta: a self-hosted fashion catalog engine. Ingest a catalog, understand it, search it.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sveta {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data home (default: SVETA_DATA_DIR or ./sveta-data)."
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    if data_dir is not None:
        _common.set_settings(_common.load_settings(data_dir=data_dir))


def _register() -> None:
    from sveta.cli import (
        audit,
        backup,
        catalog,
        complete,
        demo,
        doctor,
        eval,
        export,
        images,
        index,
        ingest,
        learn,
        look,
        model,
        outfits,
        report,
        rules,
        search,
        serve,
        shopify,
        sync,
        wardrobe,
    )

    app.add_typer(ingest.app, name="ingest")
    app.add_typer(images.app, name="images")
    app.add_typer(catalog.app, name="catalog")
    app.add_typer(eval.app, name="eval")
    app.add_typer(index.app, name="index")
    app.add_typer(outfits.app, name="outfits")
    app.add_typer(model.app, name="model")
    app.add_typer(export.app, name="export")
    app.add_typer(shopify.app, name="shopify")
    app.add_typer(report.app, name="report")
    app.add_typer(rules.app, name="rules")
    app.command("search")(search.search)
    app.command("similar")(search.similar)
    app.command("demo")(demo.demo)
    app.command("train")(learn.train)
    app.command("tag")(learn.tag)
    app.command("audit")(audit.audit)
    app.command("wardrobe")(wardrobe.wardrobe)
    app.command("look")(look.look)
    app.command("complete")(complete.complete)
    app.command("sync")(sync.sync)
    app.command("serve")(serve.serve)
    app.command("doctor")(doctor.doctor)
    app.command("backup")(backup.backup)
    app.command("restore")(backup.restore)


_register()


def main() -> None:
    app()
