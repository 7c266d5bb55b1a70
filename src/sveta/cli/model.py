"""`sveta model export` and `sveta model import`: a trained model as one portable, checked file."""

from __future__ import annotations

from pathlib import Path

import typer

from sveta.cli._common import console, print_json, settings

app = typer.Typer(help="Move trained models between machines: one file with weights, card and checksums.")
_JSON = typer.Option(False, "--json", help="End with one JSON line: the file's manifest.")


@app.command("export")
def export(
    name: str = typer.Argument("catalog", help="The trained model's name (sveta train's default: catalog)."),
    file: Path = typer.Argument(..., help="The file to write (e.g. catalog.sveta-model)."),
    as_json: bool = _JSON,
) -> None:
    """Write a trained model, its card and label sets, and the backbone graph it needs to one file."""
    from sveta.learn.portable import export_model

    manifest = export_model(settings(), name, file)
    size = file.stat().st_size / 1e6
    console.print(
        f"wrote {file} ({size:.1f} MB): model {name} ({manifest['model_id']}), {len(manifest['files'])} files"
    )
    if as_json:
        print_json(manifest)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="A file made by `sveta model export`."),
    name: str | None = typer.Option(None, "--name", help="Install under this name (default: the exported one)."),
    force: bool = typer.Option(False, "--force", help="Replace a model of the same name."),
    as_json: bool = _JSON,
) -> None:
    """Check a model file whole (format, backbone, checksums), then install it: `sveta tag` and search can use it."""
    from sveta.learn.portable import import_model

    manifest = import_model(settings(), file, name, force=force)
    console.print(
        f"installed model {manifest['installed_as']} ({manifest['model_id']}, made {manifest['created']}); "
        f"index with it: sveta index build --embedder tuned:{manifest['installed_as']}"
    )
    if as_json:
        print_json(manifest)
