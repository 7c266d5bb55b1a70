"""Portable models: one file holding a trained model's weights, card, label sets, the ONNX graph it needs, checksums.

The file is a zip whose ``manifest.json`` names the format, the features the model was trained on, and the SHA-256
of every other member. Import checks all of it before anything is written, so a damaged file, a model of another
backbone or one made by a newer sveta is a clear error, never a model that loads and answers wrongly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sveta._version import __version__
from sveta.errors import ConfigError, InputError
from sveta.settings import Settings

if TYPE_CHECKING:
    from sveta.learn.features import Backbone
    from sveta.learn.heads import AttributeModel

FORMAT = "sveta-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_FILES = ("model.npz", "card.json", "card.md")
GRAPH = re.compile(r"effnet-[a-z0-9]+-[a-z0-9-]+\.onnx")  # the backbone graph, as ensure_onnx names it
FINE = re.compile(r"backbone-[0-9a-f]{16}\.onnx")  # a fine-tuned network, as the model folder names it
MAX_BYTES = 2 * 1024**3  # unpacked: far above a model (tens of MB), far below a disk
_MADE_BY = "give a file made by `sveta model export NAME FILE`"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def export_model(settings: Settings, name: str, out: Path) -> dict[str, Any]:
    """Write model ``name`` and the backbone graph it needs to the single file ``out``; returns the manifest."""
    from sveta.embed.effnet import ensure_onnx
    from sveta.learn.features import BASE
    from sveta.learn.store import has_model, model_dir

    if not has_model(settings, name):
        raise ConfigError(f"no trained model named {name!r}", "train one first: sveta train")
    folder = model_dir(settings, name)
    card = json.loads((folder / "card.json").read_text())
    graph = ensure_onnx(BASE, settings.models_dir)
    members = {f: folder / f for f in MODEL_FILES} | {graph.name: graph}
    if fine := card.get("backbone", {}).get("file"):
        members[fine] = folder / fine
    manifest = _manifest(name, card, members)
    _write_zip(out, manifest, members)
    return manifest


def _manifest(name: str, card: dict[str, Any], members: dict[str, Path]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sveta": __version__,
        "name": name,
        "model_id": card.get("model_id"),
        "created": card.get("created"),
        "features": card.get("features"),
        "labels": card.get("labels", {}),
        "files": {member: _sha256(path) for member, path in members.items()},
    }


def _write_zip(out: Path, manifest: dict[str, Any], members: dict[str, Path]) -> None:
    """All or nothing: the file appears complete under its name, or not at all."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            for member, path in members.items():
                z.write(path, member)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)


def import_model(settings: Settings, file: Path, name: str | None = None, *, force: bool = False) -> dict[str, Any]:
    """Check ``file`` whole, then install its model (as ``name``, default the exported name) and backbone graph."""
    from sveta.learn.store import model_dir

    with _open(file) as z:
        manifest = read_manifest(z, file)
        _check_compatible(manifest, file)
        _check_members(z, manifest, file)
        target_name = name or str(manifest["name"])
        if not NAME.fullmatch(target_name):
            raise InputError(f"bad model name {target_name!r}", "use letters, digits, '.', '_' or '-' (--name)")
        target = model_dir(settings, target_name)
        if target.exists() and not force:
            raise InputError(f"a model named {target_name!r} exists", "import under --name OTHER, or replace: --force")
        _install_model(z, manifest, target, target_name)
        _install_graph(z, manifest, settings.models_dir)
    return manifest | {"installed_as": target_name}


def load_portable(settings: Settings, file: Path) -> AttributeModel:
    """The model in ``file``, checked as an import is, loaded without installing it (``sveta train --from``)."""
    from sveta.learn.heads import AttributeModel

    with _open(file) as z:
        manifest = read_manifest(z, file)
        _check_compatible(manifest, file)
        _check_members(z, manifest, file)
        with tempfile.TemporaryDirectory(prefix="sveta-model-") as tmp:
            for member in _model_members(manifest):
                (Path(tmp) / member).write_bytes(z.read(member))
            model = AttributeModel.load(Path(tmp), settings)
            if model.backbone is not None:  # the network outlives the unpacked copy: keep it with the graphs
                model.backbone = _keep(model.backbone, settings.models_dir)
    model.card["started_from"] = {"file": Path(file).name, "name": manifest["name"], "model_id": manifest["model_id"]}
    return model


def _open(file: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(file)
    except FileNotFoundError as exc:
        raise InputError(f"no such file: {file}", "give the path of a file made by `sveta model export`") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{file} is not a sveta model file ({exc})", _MADE_BY) from exc


def read_manifest(z: zipfile.ZipFile, file: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(z.read(MANIFEST))
    except (KeyError, ValueError) as exc:
        raise InputError(f"{file} has no readable {MANIFEST}", _MADE_BY) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{file} is not a sveta model file", _MADE_BY)
    return manifest


def _check_compatible(manifest: dict[str, Any], file: Path) -> None:
    from sveta.learn.features import BASE, VERSION

    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConfigError(
            f"{file} is a model file of format {version}, made by sveta {manifest.get('sveta')}; this sveta reads "
            f"format {FORMAT_VERSION}",
            "upgrade sveta (pip install -U sveta), or export the model again with this version",
        )
    if manifest.get("features") != f"{VERSION}:{BASE}":
        raise ConfigError(
            f"{file} holds a model trained on features {manifest.get('features')!r}; this sveta computes "
            f"{VERSION}:{BASE}",
            "train on this catalog instead (sveta train), or use the sveta version that made the model",
        )


def _check_members(z: zipfile.ZipFile, manifest: dict[str, Any], file: Path) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict) or set(MODEL_FILES) - set(files):
        raise InputError(f"{file} lacks part of the model", "export it again: sveta model export NAME FILE")
    unexpected = [m for m in files if m not in MODEL_FILES and not GRAPH.fullmatch(m) and not FINE.fullmatch(m)]
    if unexpected:
        raise InputError(f"{file} holds unexpected files: {unexpected[:3]}", "export it again with sveta")
    if sum(z.getinfo(m).file_size for m in files if m in z.namelist()) > MAX_BYTES:
        raise InputError(f"{file} unpacks to more than {MAX_BYTES:,} bytes", "this is not a sveta model file")
    for member, digest in files.items():
        try:
            ok = hashlib.sha256(z.read(member)).hexdigest() == digest
        except (KeyError, zipfile.BadZipFile, OSError):
            ok = False
        if not ok:
            raise InputError(f"{file} is damaged: {member} does not match its checksum", "copy or export it again")


def _model_members(manifest: dict[str, Any]) -> list[str]:
    """The files that go in the model's folder: weights and card, and its fine-tuned network if it has one."""
    return [*MODEL_FILES, *(m for m in manifest["files"] if FINE.fullmatch(m))]


def _keep(backbone: Backbone, models_dir: Path) -> Backbone:
    from sveta.learn.features import Backbone

    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / backbone.path.name
    if not path.is_file():
        shutil.copyfile(backbone.path, path)
    return Backbone(path, backbone.sha256, backbone.int8)


def _install_model(z: zipfile.ZipFile, manifest: dict[str, Any], target: Path, name: str) -> None:
    """Unpack beside the target, then swap it in: a failed import leaves any model there as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}."))
    try:
        for member in _model_members(manifest):
            (staging / member).write_bytes(z.read(member))
        card = json.loads((staging / "card.json").read_text())
        if card.get("name") != name:  # imported under another name: the card says what it is called here
            card["name"], card["embedder"] = name, f"tuned:{name}"
            (staging / "card.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
        old = target.with_name(f".{name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install_graph(z: zipfile.ZipFile, manifest: dict[str, Any], models_dir: Path) -> None:
    """The backbone graph, unless a verified copy is already there (a machine without torch can then run it)."""
    from sveta.embed.effnet import checksum_path, is_valid

    for member, digest in manifest["files"].items():
        path = models_dir / member
        if GRAPH.fullmatch(member) and not is_valid(path):
            models_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=models_dir, prefix=f".{member}.", suffix=".tmp")
            os.close(fd)
            Path(tmp).write_bytes(z.read(member))
            os.replace(tmp, path)
            checksum_path(path).write_text(f"{digest}  {member}\n")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


__all__ = ["FORMAT", "FORMAT_VERSION", "export_model", "import_model", "load_portable", "read_manifest"]
