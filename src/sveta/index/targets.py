"""Where SVETA_INDEX_URL puts the index, parsed but not opened: the embedded FAISS folder, Milvus Lite or a server."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from sveta.errors import ConfigError

if TYPE_CHECKING:
    from sveta.index.base import VectorIndex
    from sveta.settings import Settings

LITE_COLLECTION = "sveta"
DEFAULT_PORT = 19530
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")


@dataclass(frozen=True)
class FaissTarget:
    """The embedded FAISS index: its files live in the index folder itself."""

    @property
    def family(self) -> str:
        return "faiss"

    @property
    def shown(self) -> str:
        return ""

    def open(
        self, path: Path, *, embedder: str, dim: int, settings: Settings, create: bool, identity: str
    ) -> VectorIndex:
        from sveta.index.faiss_index import open_faiss_index

        return open_faiss_index(path, embedder=embedder, dim=dim, settings=settings, create=create, identity=identity)


@dataclass(frozen=True)
class MilvusTarget:
    """Where a Milvus index lives: what pymilvus connects to, and the collection's (base) name."""

    uri: str  # http://HOST:PORT, or the Milvus Lite folder (ending in .db)
    collection: str
    shown: str  # the URL without its password, for messages and config.json
    token: str = ""  # USER:PASSWORD for a server with authentication

    @property
    def family(self) -> str:
        return "milvus"

    @property
    def lite(self) -> bool:
        return not self.uri.startswith("http")

    def open(
        self, path: Path, *, embedder: str, dim: int, settings: Settings, create: bool, identity: str
    ) -> VectorIndex:
        from sveta.index.milvus_index import open_milvus_index

        return open_milvus_index(
            path, self, embedder=embedder, dim=dim, settings=settings, create=create, identity=identity
        )


def faiss_target(url: str, settings: Settings) -> FaissTarget:
    """An empty SVETA_INDEX_URL: the default."""
    return FaissTarget()


def milvus_lite_target(url: str, settings: Settings) -> MilvusTarget:
    """``milvus-lite:PATH``: a Milvus Lite file, relative paths inside the data home."""
    raw = url.partition(":")[2]
    if not raw.strip():
        raise ConfigError("SVETA_INDEX_URL milvus-lite: names no path", "e.g. SVETA_INDEX_URL=milvus-lite:index.db")
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else settings.data_dir / path
    if path.suffix != ".db":  # pymilvus hands only *.db paths to Milvus Lite
        path = path.with_name(path.name + ".db")
    return MilvusTarget(str(path.resolve()), LITE_COLLECTION, f"milvus-lite:{path}")


def milvus_server_target(url: str, settings: Settings) -> MilvusTarget:
    """``milvus://[USER:PASSWORD@]HOST[:PORT]/COLLECTION``: a Milvus server."""
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
