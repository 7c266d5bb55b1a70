"""The FAISS index's files: one version folder (index.faiss, meta.npz, config.json) written, read back and checked."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sveta._optional import require
from sveta.atomic import npz_into
from sveta.errors import ConfigError
from sveta.index.base import IndexConfig
from sveta.index.meta import LAYOUT, Columns
from sveta.index.versions import CONFIG, CURRENT, HINT, read_current

FORMAT = 1
INDEX, META = "index.faiss", "meta.npz"
FILES = (INDEX, META, CONFIG)


@dataclass
class Live:
    """What a search reads; swapped whole by reload_if_changed so a search never sees half of two."""

    index: Any
    cols: Columns
    version: str | None = None
    sorted_rows: int = 0  # rows [0, sorted_rows) are in layout order


def write_live(live: Live, config: IndexConfig, folder: Path, same_vectors: Path | None = None) -> None:
    """The index, its metadata columns and ``config`` (count and file sizes updated) into ``folder``.

    ``same_vectors``: a version folder whose index file holds exactly these vectors; it is linked, not rewritten.
    """
    if same_vectors is None or not _linked(same_vectors / INDEX, folder / INDEX):
        require("faiss", None).write_index(live.index, str(folder / INDEX))
    with open(folder / META, "wb") as fh:
        npz_into(fh, live.cols.to_arrays())
    config.count = live.cols.live
    config.params = _params(live, config, folder)
    config.save(folder / CONFIG)


def _linked(source: Path, target: Path) -> bool:
    """A hard link of a version's (never rewritten) vector file into a new version; False where it cannot be."""
    try:
        os.link(source, target)
    except OSError:  # pruned meanwhile, or a file system without hard links: the caller writes it whole
        return False
    return True


def _params(live: Live, config: IndexConfig, folder: Path) -> dict[str, Any]:
    params: dict[str, Any] = {"format": FORMAT, "layout": LAYOUT, "rows": len(live.cols)}
    params["sorted_rows"] = live.sorted_rows
    if config.kind == "hnsw":
        params |= {"m": live.index.hnsw.nb_neighbors(1), "ef_construction": live.index.hnsw.efConstruction}
    params["files"] = {name: (folder / name).stat().st_size for name in (INDEX, META)}
    return params


def read_live(path: Path, expect: tuple[str, int, str]) -> tuple[IndexConfig, Live]:
    """The version CURRENT names, checked against ``expect`` = (embedder, dim, identity) before its vectors load."""
    for attempt in range(3):
        version = read_current(path)
        if version is None:
            raise ConfigError(f"there is no index at {path}", "build one with `sveta index build`")
        try:
            return _read_version(path, version, expect)
        except (ConfigError, FileNotFoundError) as exc:
            if attempt < 2 and read_current(path) != version:
                continue  # a writer switched CURRENT and pruned this version meanwhile: read the new one
            if isinstance(exc, ConfigError):
                raise
            missing = f"the index version {path / version} named by {CURRENT} is missing or incomplete"
            raise ConfigError(missing, HINT) from None
    raise ConfigError(f"the index at {path} kept changing while being read", "try again")


def _read_version(path: Path, version: str, expect: tuple[str, int, str]) -> tuple[IndexConfig, Live]:
    folder = path / version
    if not (folder / CONFIG).is_file():
        raise FileNotFoundError(folder / CONFIG)
    config = IndexConfig.load(folder / CONFIG)
    config.check(*expect)  # before reading gigabytes of vectors made by another model
    faiss = require("faiss", None)
    try:
        for name, size in config.params["files"].items():
            if (folder / name).stat().st_size != size:
                raise ValueError(f"{name} is {(folder / name).stat().st_size} bytes, not {size}: truncated")
        index = faiss.read_index(str(folder / INDEX))
        with np.load(folder / META, allow_pickle=False) as arrays:
            cols = Columns.from_arrays(arrays)
        _check_consistent(faiss, config, index, cols)
    except FileNotFoundError:
        raise
    except Exception as exc:  # whatever a damaged file makes faiss, zipfile or numpy raise
        raise ConfigError(f"the index at {folder} is damaged: {exc}", HINT) from exc
    # rows laid out in an older order count as unsorted: the next save lays them out again
    sorted_rows = int(config.params.get("sorted_rows", 0)) if laid_out(config) else 0
    return config, Live(index, cols, version, sorted_rows)


def laid_out(config: IndexConfig) -> bool:
    """Whether the saved rows are in the current layout order (an index without the key predates layout 2)."""
    return bool(config.params.get("layout", 1) == LAYOUT)


def _check_consistent(faiss: Any, config: IndexConfig, index: Any, cols: Columns) -> None:
    is_hnsw = isinstance(index, faiss.IndexHNSW)
    ip = index.metric_type == faiss.METRIC_INNER_PRODUCT
    problems = [
        index.d != config.dim and f"{index.d}-d vectors",
        index.ntotal != len(cols) and f"{index.ntotal} vectors for {len(cols)} metadata rows",
        cols.live != config.count and f"{cols.live} live items, config says {config.count}",
        is_hnsw != (config.kind == "hnsw") and f"a {'hnsw' if is_hnsw else 'flat'} index, config says {config.kind}",
        ip != (config.metric == "cosine") and f"metric {index.metric_type}, config says {config.metric}",
    ]
    if any(problems):
        raise ValueError("; ".join(p for p in problems if p))
