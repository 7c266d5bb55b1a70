"""Which backend serves the catalog's index: the embedded FAISS index, or Milvus (server or Lite) by SVETA_INDEX_URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from sveta.errors import ConfigError
from sveta.index.base import VectorIndex

if TYPE_CHECKING:
    from sveta.settings import Settings

VALID = "empty (the embedded FAISS index), milvus-lite:PATH, milvus://HOST:PORT/COLLECTION"
LITE_COLLECTION = "sveta"
DEFAULT_PORT = 19530
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")


@dataclass(frozen=True)
class MilvusTarget:
    """Where a Milvus index lives: what pymilvus connects to, and the collection's (base) name."""

    uri: str  # http://HOST:PORT, or the Milvus Lite folder (ending in .db)
    collection: str
    shown: str  # the URL without its password, for messages and config.json
    token: str = ""  # USER:PASSWORD for a server with authentication

    @property
    def lite(self) -> bool:
        return not self.uri.startswith("http")


def milvus_target(settings: Settings) -> MilvusTarget | None:
    """The Milvus index SVETA_INDEX_URL names, None for the FAISS default (ConfigError for an unknown scheme)."""
    url = settings.index_url.strip()
    if not url:
        return None
    if url.startswith("milvus-lite:"):
        return _lite(url.partition(":")[2], settings)
    if url.startswith("milvus://"):
        return _server(url)
    shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    raise ConfigError(f"SVETA_INDEX_URL {shown!r} names no index backend sveta knows", f"use one of: {VALID}")


def _lite(raw: str, settings: Settings) -> MilvusTarget:
    if not raw.strip():
        raise ConfigError("SVETA_INDEX_URL milvus-lite: names no path", "e.g. SVETA_INDEX_URL=milvus-lite:index.db")
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else settings.data_dir / path
    if path.suffix != ".db":  # pymilvus hands only *.db paths to Milvus Lite
        path = path.with_name(path.name + ".db")
    return MilvusTarget(str(path.resolve()), LITE_COLLECTION, f"milvus-lite:{path}")


FAISS_HOME = "the embedded FAISS index"


def _server(url: str) -> MilvusTarget:
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port or DEFAULT_PORT
    except ValueError as exc:  # a port that is not a number
        raise ConfigError(f"SVETA_INDEX_URL: {exc}", "e.g. milvus://localhost:19530/sveta") from None
    collection = parts.path.strip("/")
    if not host or not _NAME.fullmatch(collection):
        raise ConfigError(
            f"SVETA_INDEX_URL needs a host and a collection name (letters, digits, _), not {parts.netloc!r}, "
            f"{collection!r}",
            "e.g. milvus://localhost:19530/sveta",
        )
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    token = f"{user}:{password}" if password else user  # USER:PASSWORD, or an API key alone
    auth = f"{parts.username}:***@" if parts.username else ""
    return MilvusTarget(f"http://{host}:{port}", collection, f"milvus://{auth}{host}:{port}/{collection}", token)


def open_index(settings: Settings, *, embedder: str, dim: int, create: bool = True, identity: str = "") -> VectorIndex:
    """The catalog's index on the backend settings select; config.json stays in ``settings.index_dir``."""
    target = milvus_target(settings)
    _check_backend(settings.index_dir, "faiss" if target is None else "milvus", create)
    if target is None:
        from sveta.index.faiss_index import open_faiss_index

        return open_faiss_index(
            settings.index_dir, embedder=embedder, dim=dim, settings=settings, create=create, identity=identity
        )
    from sveta.index.milvus_index import open_milvus_index

    return open_milvus_index(
        settings.index_dir, target, embedder=embedder, dim=dim, settings=settings, create=create, identity=identity
    )


def moved_from(settings: Settings) -> str | None:
    """Where the live index lives when settings now select another backend or Milvus URL; None when they agree."""
    built = _built_on(settings.index_dir)
    target = milvus_target(settings)
    if built is None or built == ("" if target is None else target.shown):
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
