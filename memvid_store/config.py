"""Configuration: frozen dataclasses; environment variables only through ``from_env()``."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from .engine.format import DEFAULT_WAL_SIZE, MAX_WAL_SIZE, MIN_WAL_SIZE
from .errors import ConfigError, InvalidInputError, InvalidTypeError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """How a file is opened and written.

    Attributes:
        wal_size: bytes of the embedded WAL ring, fixed at create time (1..64 MiB).
        sync: fsync every WAL append and commit. With ``False`` writes survive a crash of
            the process (kill -9) but not of the machine (power loss, kernel panic):
            much faster bulk ingest, at that explicit risk.
        lock_timeout: seconds a writer waits for another writer to close the file.
        mmap: map the file (``MEMVID_MMAP_ENABLED``); with ``False`` reads use ``pread``.
        cache_dir: where unpacked index files are kept and reused across processes
            (``MEMVID_CACHE_DIR``; default ``<system temp>/memvid-cache``).
    """

    wal_size: int = DEFAULT_WAL_SIZE
    sync: bool = True
    lock_timeout: float = 5.0
    mmap: bool = True
    cache_dir: str | None = None

    @property
    def cache_root(self) -> str:
        if self.cache_dir:
            return self.cache_dir
        import tempfile

        return os.path.join(tempfile.gettempdir(), "memvid-cache")

    def __post_init__(self) -> None:
        if not isinstance(self.wal_size, int) or not MIN_WAL_SIZE <= self.wal_size <= MAX_WAL_SIZE:
            raise InvalidInputError(
                f"wal_size must be between {MIN_WAL_SIZE} and {MAX_WAL_SIZE} bytes, "
                f"got {self.wal_size!r}")
        if self.lock_timeout < 0:
            raise InvalidInputError(f"lock_timeout must be >= 0, got {self.lock_timeout!r}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> StoreConfig:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        raw = env.get("MEMVID_MMAP_ENABLED")
        if raw is not None:
            if raw.strip().lower() not in _TRUE | _FALSE:
                raise ConfigError(f"MEMVID_MMAP_ENABLED must be true or false, got {raw!r}")
            values["mmap"] = raw.strip().lower() in _TRUE
        if env.get("MEMVID_CACHE_DIR"):
            values["cache_dir"] = env["MEMVID_CACHE_DIR"]
        values.update(overrides)
        return cls(**values)

    def with_options(self, options: dict[str, Any]) -> StoreConfig:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidTypeError(f"unknown option(s) {', '.join(unknown)}; "
                            f"valid options: {', '.join(sorted(known))}")
        return replace(self, **options) if options else self


@dataclass(frozen=True, slots=True)
class IndexConfig:
    """How a file's search indexes are built; fixed when the file is created.

    Attributes:
        distance: vector similarity: ``cosine`` (default), ``ip`` (inner product) or ``l2``.
        ann_backend: HNSW library for approximate vector search: ``usearch`` (opens the
            graph inside the mapped file with zero copy), ``hnswlib``, or ``none`` (exact
            search only).
        ann_threshold: number of vectors from which an HNSW graph is built; below it the
            exact float32 scan is the index.
        ann_m, ann_ef_construction, ann_ef_search: HNSW graph degree and beam widths.
        lexical: maintain the BM25 full-text index.
        rrf_k: reciprocal rank fusion constant for hybrid search.
    """

    distance: str = "cosine"
    ann_backend: str = "usearch"
    ann_threshold: int = 20_000
    ann_m: int = 16
    ann_ef_construction: int = 200
    ann_ef_search: int = 96
    lexical: bool = True
    rrf_k: int = 60

    def __post_init__(self) -> None:
        if self.distance not in ("cosine", "ip", "l2"):
            raise InvalidInputError(f"distance must be cosine, ip or l2, got {self.distance!r}")
        if self.ann_backend not in ("usearch", "hnswlib", "none"):
            raise InvalidInputError(
                f"ann_backend must be usearch, hnswlib or none, got {self.ann_backend!r}")
        for name in ("ann_threshold", "ann_m", "ann_ef_construction", "ann_ef_search", "rrf_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive int, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> IndexConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})
