"""Which backend serves the catalog's index: a registry maps SVETA_INDEX_URL's prefix to the backend's factory."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol, cast

from sveta.errors import ConfigError
from sveta.index.base import VectorIndex

if TYPE_CHECKING:
    from sveta.index.targets import MilvusTarget
    from sveta.settings import Settings

FAISS_HOME = "the embedded FAISS index"


class IndexTarget(Protocol):
    """Where the index lives, parsed from SVETA_INDEX_URL; ``open`` opens (or creates) the index there."""

    @property
    def family(self) -> str: ...  # an index built on one family ("faiss", "milvus") is not opened by another

    @property
    def shown(self) -> str: ...  # the URL as config.json records it, without a password ("" for FAISS)

    def open(
        self, path: Path, *, embedder: str, dim: int, settings: Settings, create: bool, identity: str
    ) -> VectorIndex: ...


TargetFactory = Callable[[str, "Settings"], IndexTarget]


class Backend(NamedTuple):
    factory: str  # "module:function" taking (SVETA_INDEX_URL, settings) and returning an IndexTarget
    usage: str  # how the URL is written, for messages


# SVETA_INDEX_URL prefixes -> backends; "" is an empty URL (the default). A backend's module is imported only
# when its prefix is used, so this one imports none of them.
BUILTINS: dict[str, Backend] = {
    "": Backend("sveta.index.targets:faiss_target", "empty (the embedded FAISS index)"),
    "milvus-lite:": Backend("sveta.index.targets:milvus_lite_target", "milvus-lite:PATH"),
    "milvus://": Backend("sveta.index.targets:milvus_server_target", "milvus://HOST:PORT/COLLECTION"),
}


def index_target(settings: Settings) -> IndexTarget:
    """Where SVETA_INDEX_URL puts the index (ConfigError for a prefix no backend has)."""
    url = settings.index_url.strip()
    module, _, name = _backend(url).factory.partition(":")
    factory = cast(TargetFactory, getattr(importlib.import_module(module), name))
    return factory(url, settings)


def _backend(url: str) -> Backend:
    if not url:
        return BUILTINS[""]
    for prefix in sorted(BUILTINS, key=len, reverse=True):  # the longest prefix that matches wins
        if prefix and url.startswith(prefix):
            return BUILTINS[prefix]
    shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    valid = ", ".join(backend.usage for backend in BUILTINS.values())
    raise ConfigError(f"SVETA_INDEX_URL {shown!r} names no index backend sveta knows", f"use one of: {valid}")


def milvus_target(settings: Settings) -> MilvusTarget | None:
    """The Milvus index SVETA_INDEX_URL names, None for the FAISS default (ConfigError for an unknown scheme)."""
    from sveta.index.targets import MilvusTarget

    target = index_target(settings)
    return target if isinstance(target, MilvusTarget) else None


def open_index(settings: Settings, *, embedder: str, dim: int, create: bool = True, identity: str = "") -> VectorIndex:
    """The catalog's index on the backend settings select; config.json stays in ``settings.index_dir``."""
    target = index_target(settings)
    _check_backend(settings.index_dir, target.family, create)
    return target.open(
        settings.index_dir, embedder=embedder, dim=dim, settings=settings, create=create, identity=identity
    )


def moved_from(settings: Settings) -> str | None:
    """Where the live index lives when settings now select another backend or Milvus URL; None when they agree."""
    built = _built_on(settings.index_dir)
    if built is None or built == index_target(settings).shown:
        return None
    return built or FAISS_HOME


def _built_on(path: Path, *, discarded_counts: bool = False) -> str | None:
    """The Milvus URL the live index in ``path`` was built on, "" for FAISS, None when there is none."""
    from sveta.index.versions import DISCARDED, read_config

    config = read_config(path)
    if config is None or (not discarded_counts and (path / DISCARDED).exists()):
        return None
    return str(config.params.get("url", "?")) if config.params.get("backend") == "milvus" else ""


def _check_backend(path: Path, wanted: str, create: bool) -> None:
    """An index built on one backend is not opened by another (a rebuild may switch: it starts empty)."""
    built = _built_on(path, discarded_counts=not create)
    if built is None or ("milvus" if built else "faiss") == wanted:
        return
    where, back = (f"Milvus at {built}", f"SVETA_INDEX_URL={built}") if built else (FAISS_HOME, "unset SVETA_INDEX_URL")
    raise ConfigError(
        f"the index in {path} lives in {where}, but SVETA_INDEX_URL selects {wanted}",
        f"{back}, or build the index on the new backend: sveta index build",
    )
