"""One settings object for the CLI, the API and the library (environment prefix ``SVETA_``)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from sveta._version import __version__
from sveta.errors import ConfigError

TUNED_MODEL = "catalog"  # the trained model `sveta train` makes, and the default embedder once it exists


def _default_shared_dir() -> Path | None:
    """``../shared`` beside the working directory or beside the checkout, when it exists."""
    here = Path(__file__).resolve()
    candidates = [
        Path.cwd().parent / "shared",
        Path.cwd() / "shared",
        *(p / "shared" for p in here.parents[2:4]),
    ]
    return next((c.resolve() for c in candidates if (c / "README.md").is_file()), None)


def _openmp_threads() -> int:
    """OpenMP's own OMP_NUM_THREADS, which FAISS users expect it to follow (0 when unset or not a number)."""
    raw = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else 0  # "²".isdigit() is True, int("²") fails


class Settings(BaseSettings):
    """Every knob of sveta; each can be set by ``SVETA_<NAME>`` in the environment or a ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="SVETA_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("sveta-data"), description="Data home: database, image cache, indexes, models.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the catalog; default: a SQLite file catalog.db in the data home."
    )
    shared_dir: Path | None = Field(
        default_factory=_default_shared_dir,
        description="Where the shared demo data lives (default ../shared when it exists).",
    )
    contact: str = Field(
        "https://github.com/sveta-project/sveta",
        description="Contact (URL or e-mail) put in the crawler's User-Agent so shop owners can reach you.",
    )
    crawl_delay_s: float = Field(1.0, ge=0, description="Seconds to wait between two requests to one store.")
    crawl_page_limit: int = Field(250, ge=1, le=250, description="Products per products.json page (max 250).")
    crawl_max_retries: int = Field(5, ge=0, description="Retries of one request on 429 / 5xx / network errors.")
    crawl_backoff_s: float = Field(1.0, ge=0, description="First backoff delay; doubles on each retry.")
    crawl_max_backoff_s: float = Field(120.0, ge=0, description="Longest single wait, Retry-After included.")
    respect_robots: bool = Field(True, description="Obey the store's robots.txt (disable only for your own shop).")
    http_timeout_s: float = Field(20.0, gt=0, description="Timeout of one HTTP request, in seconds.")
    allowed_private_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts allowed although they resolve to private, loopback or link-local addresses "
        "(comma-separated in SVETA_ALLOWED_PRIVATE_HOSTS), e.g. 127.0.0.1,localhost for tests.",
    )
    image_max_bytes: int = Field(20_000_000, gt=0, description="Largest image download accepted, in bytes.")
    image_max_pixels: int = Field(
        40_000_000, gt=0, description="Largest image accepted, in pixels (decompression-bomb guard)."
    )
    image_fetch_concurrency: int = Field(8, ge=1, description="Parallel image downloads.")
    image_fetch_retries: int = Field(2, ge=0, description="Retries of one image download on network errors/5xx.")

    embedder: str = Field(
        "effnet-lite0+colour",
        description="Image embedder spec for new indexes: effnet-lite0, effnet-lite2, colour, "
        "open_clip:ARCH/TAG, hf-hub:ORG/NAME, local-dir:DIR, tuned:NAME; combine with '+' (e.g. effnet-lite0+colour).",
    )
    embed_weights: dict[str, float] = Field(
        default_factory=lambda: {"colour": 0.6},
        description="Weight of each part of a '+' embedder (parts not listed weigh 1.0), as JSON in the "
        "environment, e.g. SVETA_EMBED_WEIGHTS='{\"colour\": 0.6}'.",
    )
    embed_batch_size: int = Field(64, ge=1, description="Images per model call.")
    embed_workers: int = Field(2, ge=1, description="Threads decoding and preparing images during embedding.")
    onnx_threads: int = Field(0, ge=0, description="onnxruntime intra-op threads (0: one per core).")
    embed_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="Where onnxruntime runs the photo models (index build, features for training): auto (the GPU "
        "through the CUDA provider when onnxruntime-gpu sees one, else the CPU), cpu, or cuda (an error without it).",
    )
    index_threads: int = Field(
        default_factory=_openmp_threads,
        ge=0,
        description="OpenMP threads the FAISS index uses for batched searches and rebuilds (a single query always "
        "uses one); default OMP_NUM_THREADS when set, 0: one per core.",
    )
    image_size: int = Field(224, ge=32, description="Side of the square photos are padded and resized to.")
    ray_address: str = Field(
        "",
        description="The Ray cluster `sveta index build --ray` embeds on (e.g. ray://host:10001, or auto); "
        "empty: a local Ray started for the build. Needs pip install 'sveta[ray]'.",
    )
    index_url: str = Field(
        "",
        description="Where the vector index lives. Empty: the embedded FAISS index in the data home. "
        "milvus-lite:PATH: embedded Milvus Lite in the folder PATH ('.db' is appended when missing; relative to "
        "the data home unless absolute; one process at a time). milvus://[USER:PASSWORD@]HOST:PORT/COLLECTION: "
        "a Milvus standalone or distributed server (2.3 or later). Milvus needs pip install 'sveta[milvus]'; "
        "either way config.json stays in the data home's index folder.",
    )
    index_kind: str = Field(
        "auto", pattern="^(auto|flat|hnsw)$", description="flat (exact), hnsw, or auto (hnsw when large)."
    )
    index_hnsw_threshold: int = Field(50_000, ge=1, description="Vectors above which auto picks HNSW.")
    index_metric: str = Field("cosine", pattern="^(cosine|l1)$", description="cosine (default) or l1.")
    hnsw_m: int = Field(32, ge=4, description="HNSW graph degree.")
    hnsw_ef_construction: int = Field(200, ge=8, description="HNSW build-time candidate list.")
    hnsw_ef_search: int = Field(128, ge=8, description="HNSW query-time candidate list.")
    train_int8: bool = Field(
        False,
        description="Train on features of the CNN quantised to INT8 (calibrated on training photos; about 1.9x the "
        "FP32 rate, P@10 and weighted F1 within 0.01 on catalog photos): the model keeps that network and embeds "
        "with it. Needs a CPU with VNNI (elsewhere INT8 saturates: training stays FP32 and says so). Off by "
        "default: garments cut from photos of people (sveta look) are not yet measured on such a CPU.",
    )
    train_thumbnail_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of training photos also seen as a degraded thumbnail-like copy by sveta train "
        "(robustness on small thumbnails; each copy costs one more CNN pass).",
    )
    weak_label_photos: int = Field(
        1000,
        ge=0,
        description="Photos of sleeved garments sveta train reads with MediaPipe for weak sleeve-length labels "
        "(cached per photo; 0: none). More photos, more labels, ~70 ms each the first time.",
    )
    tag_min_confidence: float = Field(
        0.5, ge=0, le=1, description="Below this calibrated probability a photo-predicted attribute is 'unknown'."
    )
    audit_min_confidence: float = Field(
        0.9, ge=0, le=1, description="sveta audit reports a mismatch only when the photo model is at least this sure."
    )
    max_upload_bytes: int = Field(
        20_000_000, gt=0, description="Largest photo the API accepts in one upload, in bytes (larger: HTTP 413)."
    )
    api_key: SecretStr | None = Field(
        None,
        description="Key the API's write endpoints (sources, crawls) require in the X-API-Key header; "
        "without one, writes are refused unless SVETA_API_OPEN_WRITES is set.",
    )
    api_open_writes: bool = Field(
        False, description="Let the API accept writes without a key when no SVETA_API_KEY is set (trusted networks)."
    )
    api_read_key_required: bool = Field(
        False, description="Require the X-API-Key header on the API's read endpoints too (they are open by default)."
    )
    api_read_key: SecretStr | None = Field(
        None,
        description="A key for reads only (search, products, the storefront widget): when set, read endpoints need "
        "it (or SVETA_API_KEY) in X-API-Key. It is public in a storefront page, so never make it the write key.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port], comma-separated) whose pages may call the API and embed the "
        "storefront widget (/widget.js); any other origin is refused by the browser. Empty: same origin only.",
    )
    insights_days: int = Field(
        90,
        ge=0,
        le=3650,
        description="Days the search and click records behind `sveta report searches` and the Insights page are "
        "kept (no address or user id is ever recorded); 0 records nothing.",
    )
    shopify_api_version: str = Field(
        "2025-07",
        pattern=r"^\d{4}-\d{2}$",
        description="The Shopify Admin GraphQL API version `sveta shopify push` speaks (YYYY-MM).",
    )
    api_heavy_workers: int = Field(
        4,
        ge=1,
        le=256,
        description="Heavy API requests (photo search, look, tag, complete by photo, map) run at once; "
        "the rest wait in a short queue (SVETA_API_HEAVY_QUEUE).",
    )
    api_heavy_queue: int = Field(
        8,
        ge=0,
        le=10_000,
        description="Heavy requests that may wait for a free worker; beyond that the API answers 503 with "
        "Retry-After at once instead of queueing without bound.",
    )
    api_heavy_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Longest a heavy request waits for a worker before it gets 503 with Retry-After, in seconds.",
    )
    api_rate_limit: int = Field(
        0,
        ge=0,
        description="Requests per minute one client (by address) may make to /api; beyond it 429 with Retry-After "
        "(0: no limit, the default). Health checks and metrics are never limited.",
    )
    trusted_proxies: str = Field(
        "127.0.0.1",
        description="Peers whose X-Forwarded-For names the client (comma-separated addresses, or * behind a proxy "
        "that alone reaches sveta); the rate limit counts per client.",
    )
    db_busy_timeout_s: float = Field(
        30.0,
        gt=0,
        description="How long a SQLite write waits for another writer's lock before sveta retries it, in seconds.",
    )
    map_points: int = Field(
        2000,
        ge=10,
        le=20_000,
        description="Products in the API's t-SNE map of the catalog (GET /api/map?method=tsne): made once per index "
        "version in the background (about 10 s of one core for 2,000) and kept beside it; a larger limit is clamped.",
    )
    sync_every: str = Field(
        "6h",
        description="How often `sveta serve` re-crawls the registered sources, tags and re-indexes (30m, 6h, 1d; "
        "empty or 0: never). The first pass starts one period after the server does.",
    )

    @field_validator("api_key", mode="before")
    @classmethod
    def _no_empty_key(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_read_key", mode="before")
    @classmethod
    def _no_empty_read_key(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        origins = (
            [o.strip().rstrip("/").lower() for o in value.split(",") if o.strip()] if isinstance(value, str) else value
        )
        for origin in origins if isinstance(origins, list) else []:
            if not re.fullmatch(r"https?://[^/?#\s]+", str(origin)):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], e.g. https://shop.example.com"
                )
        return origins

    @field_validator("allowed_private_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @property
    def catalog_url(self) -> str:
        """The database URL in force (the SQLite default lives in the data home)."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'catalog.db').resolve()}"

    @property
    def image_cache_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    def tuned_model_dir(self, name: str = TUNED_MODEL) -> Path:
        """The folder of the trained model ``name`` (``sveta train``): model.npz and its model card."""
        return self.models_dir / "tuned" / name

    def has_tuned_model(self, name: str = TUNED_MODEL) -> bool:
        return (self.tuned_model_dir(name) / "model.npz").is_file()

    @property
    def user_agent(self) -> str:
        return f"sveta/{__version__} (+{self.contact})"


_ENVIRONMENT_LOCK = threading.RLock()


@contextmanager
def library_environment(name: str, value: str) -> Iterator[None]:
    """``name=value`` in the environment while the block runs, unless the user set it; then as it was.

    For a third-party library that reads a knob from the environment only (no argument for it): the one place
    outside the Settings constructor where sveta touches the environment, for no longer than the call needs.
    """
    with _ENVIRONMENT_LOCK:  # one block at a time: two callers must not see or remove each other's value
        if name in os.environ:  # the user's own setting wins, as the library documents
            yield
            return
        os.environ[name] = value
        try:
            yield
        finally:
            os.environ.pop(name, None)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and ``overrides``); a bad value is a ConfigError naming its variable."""
    fix = "fix or unset that environment variable"
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"SVETA_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"bad setting: {problems}", fix) from None
    except SettingsError as exc:  # a list or dict setting that is not JSON: pydantic-settings fails before validating
        found = re.search(r'field "(\w+)"', str(exc))
        name = f"SVETA_{found.group(1).upper()}" if found else "a setting"
        raise ConfigError(f"bad setting: {name} is not valid JSON", fix) from None


def environment_secret(name: str) -> SecretStr:
    """The secret in the environment variable ``name`` (a token a command is told where to find, e.g.
    ``--token-env SHOPIFY_TOKEN``): read here, beside the settings, and never echoed."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(f"{name[:80]!r} is not an environment variable name", "give a name such as SHOPIFY_TOKEN")
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"the environment variable {name} is not set or empty", f"export {name}=<the token>")
    return SecretStr(value)
