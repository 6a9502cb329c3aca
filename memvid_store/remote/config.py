"""How memories in object storage are read and cached."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import ConfigError

MiB = 1 << 20
_ENV = {  # environment variable -> field
    "MEMVID_S3_CACHE_BYTES": "cache_bytes",
    "MEMVID_S3_CHUNK_BYTES": "chunk_bytes",
    "MEMVID_S3_GAP_BYTES": "gap_bytes",
    "MEMVID_S3_PARALLEL_REQUESTS": "parallel_requests",
    "MEMVID_S3_RETRIES": "retries",
    "MEMVID_S3_TIMEOUT": "timeout",
}


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    """Options of ``Memory.open("s3://...", readonly=True, remote=RemoteConfig(...))``.

    Attributes:
        cache_bytes: bound of the local chunk cache, shared by every object and process
            using the same directory; least recently used chunks go first
            (``MEMVID_S3_CACHE_BYTES``, default 512 MiB).
        chunk_bytes: the unit of the chunk cache on disk: downloaded bytes covering
            aligned chunks of this size are kept as chunk files, smaller pieces on their
            own (``MEMVID_S3_CHUNK_BYTES``, default 1 MiB).
        max_request_bytes: the most one request asks for: a longer read (the HNSW graph)
            is split into requests of this size made in parallel (default 8 MiB).
        gap_bytes: missing ranges read together that are at most this far apart are
            fetched in one request, the bytes between included (``MEMVID_S3_GAP_BYTES``,
            default 128 KiB: about what one request's latency would download).
        parallel_requests: how many requests run at once when a read announces several
            spans (a query's hits, the candidates' vectors; ``MEMVID_S3_PARALLEL_REQUESTS``).
        retries: attempts after the first for throttling, 5xx, timeouts and truncated
            bodies (``MEMVID_S3_RETRIES``, default 4).
        backoff: the first retry's delay in seconds, doubled at each retry up to
            ``max_backoff``, with jitter.
        timeout: seconds for one request (``MEMVID_S3_TIMEOUT``, default 30).
        cache_dir: the chunk cache (default ``<StoreConfig.cache_root>/s3``).
        wrap_client: called with the object client, returns the client to use
            (instrumentation: count or log requests, inject faults in tests).
    """

    cache_bytes: int = 512 * MiB
    chunk_bytes: int = MiB
    max_request_bytes: int = 8 * MiB
    gap_bytes: int = 128 << 10
    parallel_requests: int = 64
    retries: int = 4
    backoff: float = 0.05
    max_backoff: float = 2.0
    timeout: float = 30.0
    cache_dir: str | None = None
    wrap_client: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.chunk_bytes, int) or self.chunk_bytes < 64 << 10 \
                or self.chunk_bytes % 4096:
            raise ConfigError("RemoteConfig.chunk_bytes must be a multiple of 4096 of at "
                              f"least 64 KiB, got {self.chunk_bytes!r}")
        if not isinstance(self.cache_bytes, int) or self.cache_bytes < 0:
            raise ConfigError(f"RemoteConfig.cache_bytes must be >= 0, got {self.cache_bytes!r}")
        if self.max_request_bytes < self.chunk_bytes:
            raise ConfigError("RemoteConfig.max_request_bytes must be at least chunk_bytes")
        if not isinstance(self.gap_bytes, int) or self.gap_bytes < 0:
            raise ConfigError(f"RemoteConfig.gap_bytes must be >= 0, got {self.gap_bytes!r}")
        if not isinstance(self.parallel_requests, int) or self.parallel_requests < 1:
            raise ConfigError("RemoteConfig.parallel_requests must be >= 1, got "
                              f"{self.parallel_requests!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"RemoteConfig.retries must be >= 0, got {self.retries!r}")
        if self.timeout <= 0 or self.backoff < 0 or self.max_backoff < self.backoff:
            raise ConfigError("RemoteConfig needs timeout > 0 and 0 <= backoff <= max_backoff")

    @classmethod
    def of(cls, value: RemoteConfig | Mapping[str, Any] | None,
           environ: Mapping[str, str] | None = None) -> RemoteConfig:
        """``value`` itself, or the environment's settings overridden by a dict of fields."""
        if isinstance(value, RemoteConfig):
            return value
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var, name in _ENV.items():
            if env.get(var):
                kind = float if name == "timeout" else int
                try:
                    values[name] = kind(env[var])
                except ValueError:
                    raise ConfigError(f"{var} must be a number, got {env[var]!r}") from None
        unknown = set(value or ()) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown RemoteConfig option(s): {', '.join(sorted(unknown))}")
        return replace(cls(), **{**values, **(value or {})})


__all__ = ["RemoteConfig"]
