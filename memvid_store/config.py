"""Configuration: frozen dataclasses; environment variables only through ``from_env()``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .engine.fileio import MmapConfig
from .engine.format import DEFAULT_WAL_SIZE, MAX_WAL_SIZE, MIN_WAL_SIZE
from .errors import ConfigError, InvalidInputError, InvalidTypeError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

TIERS = ("header", "toc", "time_index", "lex_index", "vec_index")
PRELOAD_LEVELS = ("none", "lazy", "balanced", "aggressive")
DEFAULT_CACHE_SIZE = 100 << 20
DEFAULT_COMPACT_MEMORY = 256 << 20
MIN_COMPACT_MEMORY = 128 << 20  # below it the process's own libraries are most of it
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


def default_cache_root() -> str:
    """``<system temp>/memvid-cache-<uid>`` (the user name where there are no uids): one
    private directory per user (see ``index/lexical/cache_dir.py``)."""
    import tempfile

    if hasattr(os, "getuid"):
        owner = str(os.getuid())
    else:
        import getpass

        try:
            owner = "".join(c for c in getpass.getuser() if c.isalnum()) or "user"
        except (ImportError, KeyError, OSError):
            owner = "user"
    return os.path.join(tempfile.gettempdir(), f"memvid-cache-{owner}")


def parse_size(text: str, name: str = "size") -> int:
    """Bytes from ``"512MB"``, ``"1.5GiB"``, ``"100k"`` or a plain number of bytes.

    Units are powers of 1024 (``MB`` = ``MiB``), as in Lambda's memory sizes.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise ConfigError(f"{name} must be a size such as 512MB, 1GiB or 1048576, got {text!r}")
    return int(float(m.group(1)) * _UNITS[unit])


@dataclass(frozen=True, slots=True)
class WarmupConfig:
    """What an open loads, and when: at open, on first use, or in a background thread.

    ``header`` and ``toc`` are always read at open. Other tiers (``time_index``: the frame
    tables; ``lex_index``: BM25; ``vec_index``: the HNSW graph or the exact-scan vectors)
    no larger than ``preload_threshold`` bytes load at open (``vec_index`` excepted: its
    cost is importing numpy, whatever its size); with ``lazy=False`` all of them do. With
    ``background=True`` a thread loads the rest in ``priority_order``; until the graph is
    loaded, vector queries scan exactly instead of waiting for it.

    Levels (``MEMVID_PRELOAD_LEVEL``): ``none`` (nothing ahead of use), ``lazy`` (small
    tiers at open, the rest on first use; ``StoreConfig``'s default), ``balanced`` (small
    tiers at open, the rest in the background; these dataclass defaults) and
    ``aggressive`` (everything at open).
    """

    priority_order: tuple[str, ...] = TIERS
    preload_threshold: int = 1 << 20
    lazy: bool = True
    background: bool = True

    def __post_init__(self) -> None:
        order = tuple(self.priority_order)
        unknown = [t for t in order if t not in TIERS]
        if unknown or len(set(order)) != len(order):
            raise ConfigError(f"priority_order must list distinct tiers among {TIERS}, "
                              f"got {order!r}")
        object.__setattr__(self, "priority_order", order)
        if isinstance(self.preload_threshold, bool) or not isinstance(
                self.preload_threshold, int) or self.preload_threshold < 0:
            raise ConfigError(f"preload_threshold must be an int >= 0 (bytes), "
                              f"got {self.preload_threshold!r}")

    @classmethod
    def level(cls, name: str) -> WarmupConfig:
        """The preset called ``name`` (none, lazy, balanced, aggressive)."""
        presets = {
            "none": cls(preload_threshold=0, background=False),
            "lazy": cls(background=False),
            "balanced": cls(),
            "aggressive": cls(lazy=False, background=False),
        }
        key = str(name).strip().lower()
        if key not in presets:
            raise ConfigError(f"preload level must be one of {', '.join(PRELOAD_LEVELS)}, "
                              f"got {name!r}")
        return presets[key]


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """Sizes of the frame cache and of prefetching.

    Attributes:
        lru_size: bytes of decoded frames kept in memory, an int or a size such as
            ``"512MB"`` (``MEMVID_CACHE_SIZE``; default 100 MiB; 0 disables the cache).
        prefetch_window: the most frames one prediction may prefetch.
        adaptive_prefetch: let the prefetcher shrink the window while its predictions are
            not being used (and grow it back when they are).
    """

    lru_size: int = DEFAULT_CACHE_SIZE
    prefetch_window: int = 1000
    adaptive_prefetch: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.lru_size, str):
            object.__setattr__(self, "lru_size", parse_size(self.lru_size, "lru_size"))
        if isinstance(self.lru_size, bool) or not isinstance(self.lru_size, int) \
                or self.lru_size < 0:
            raise ConfigError(f"lru_size must be a number of bytes >= 0 (e.g. 104857600 or "
                              f"'100MiB'), got {self.lru_size!r}")
        if isinstance(self.prefetch_window, bool) or not isinstance(self.prefetch_window, int) \
                or self.prefetch_window < 0:
            raise ConfigError(f"prefetch_window must be a number of frames >= 0 (e.g. 1000), "
                              f"got {self.prefetch_window!r}")
        if not isinstance(self.adaptive_prefetch, bool):
            raise ConfigError(f"adaptive_prefetch must be True or False, got "
                              f"{self.adaptive_prefetch!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> CacheConfig:
        """Defaults, then ``MEMVID_CACHE_SIZE`` (e.g. ``512MB``, ``1.5GiB``), then ``overrides``.

        Raises:
            ConfigError: ``MEMVID_CACHE_SIZE`` is not a size; the message names it.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        raw = env.get("MEMVID_CACHE_SIZE")
        if raw is not None and raw.strip():
            values["lru_size"] = parse_size(raw, "MEMVID_CACHE_SIZE")
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """How a file is opened and written.

    Attributes:
        wal_size: bytes of the embedded WAL ring, fixed at create time (1..64 MiB).
        sync: fsync every WAL append and commit. With ``False`` writes survive a crash of
            the process (kill -9) but not of the machine (power loss, kernel panic):
            much faster bulk ingest, at that explicit risk.
        lock_timeout: seconds a writer waits for another writer to close the file.
        mmap: map the file (``MEMVID_MMAP_ENABLED``), a bool or an ``MmapConfig`` (read-ahead
            advice, prefetch); with ``False`` reads use ``pread`` with identical results.
        cache_dir: where unpacked index files are kept and reused across processes
            (``MEMVID_CACHE_DIR``; default ``<system temp>/memvid-cache-<uid>``, private
            to the user and pruned to ``MEMVID_CACHE_DIR_LIMIT``, default 2 GiB).
        cache: a ``CacheConfig`` (frame LRU size, prefetch window), or just the LRU size
            in bytes, an int or ``"512MB"`` (``MEMVID_CACHE_SIZE``; default 100 MiB; 0
            disables the cache).
        warmup: a ``WarmupConfig`` or a level name (``MEMVID_PRELOAD_LEVEL``); default
            ``lazy``: a process that queries right after open answers sooner without a
            background thread competing for the GIL (measured, docs/architecture.md);
            ``balanced`` suits processes with other start-up work, ``aggressive`` a
            serverless init phase.
        graph_sync_limit: the most vectors ``seal()`` or ``close()`` adds to the HNSW
            graph itself (about 2-5 s of building on 2 cores); a longer tail is left to
            the background builder or ``build_index()``, and searched exactly meanwhile.
        graph_background: while a writer is open, build a due graph extension too long
            for ``close()`` in a child process, and commit it when ready.
        compact_memory: the peak resident memory ``compact()`` keeps to, in bytes, an int
            or ``"256MB"`` (``MEMVID_COMPACT_MEMORY``; default 256 MiB, at least 128 MiB):
            it streams chunks of 1/32 of it and closes the runs it writes to merging at
            1/8 of it; a vector graph it cannot carry over from the old file is built
            only when its estimated size fits, else ``build_index()`` or the background
            builder builds it and the vectors are scanned exactly meanwhile.
    """

    wal_size: int = DEFAULT_WAL_SIZE
    sync: bool = True
    lock_timeout: float = 5.0
    mmap: bool | MmapConfig = True
    cache_dir: str | None = None
    cache: CacheConfig | int | str | None = None
    warmup: WarmupConfig | str = field(default_factory=lambda: WarmupConfig.level("lazy"))
    graph_sync_limit: int = 20_000
    graph_background: bool = True
    compact_memory: int | str = DEFAULT_COMPACT_MEMORY

    @property
    def cache_root(self) -> str:
        if self.cache_dir:
            return self.cache_dir
        return default_cache_root()

    def __post_init__(self) -> None:
        if not isinstance(self.wal_size, int) or not MIN_WAL_SIZE <= self.wal_size <= MAX_WAL_SIZE:
            raise InvalidInputError(
                f"wal_size must be between {MIN_WAL_SIZE} and {MAX_WAL_SIZE} bytes, "
                f"got {self.wal_size!r}")
        if self.lock_timeout < 0:
            raise InvalidInputError(f"lock_timeout must be >= 0, got {self.lock_timeout!r}")
        limit = self.graph_sync_limit
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInputError(f"graph_sync_limit must be an int >= 0, got {limit!r}")
        if not isinstance(self.graph_background, bool):
            raise InvalidTypeError(f"graph_background must be a bool, got "
                                   f"{self.graph_background!r}")
        if isinstance(self.compact_memory, str):
            object.__setattr__(self, "compact_memory",
                               parse_size(self.compact_memory, "compact_memory"))
        if (isinstance(self.compact_memory, bool) or not isinstance(self.compact_memory, int)
                or self.compact_memory < MIN_COMPACT_MEMORY):
            raise InvalidInputError(f"compact_memory must be at least 128 MiB (an int of "
                                    f"bytes or a size like '256MB'), got "
                                    f"{self.compact_memory!r}")
        if isinstance(self.mmap, bool):
            object.__setattr__(self, "mmap", MmapConfig(enabled=self.mmap))
        elif not isinstance(self.mmap, MmapConfig):
            raise InvalidTypeError(f"mmap must be a bool or an MmapConfig, got {self.mmap!r}")
        if self.cache is None:
            object.__setattr__(self, "cache", CacheConfig())
        elif isinstance(self.cache, int | str) and not isinstance(self.cache, bool):
            object.__setattr__(self, "cache", CacheConfig(lru_size=self.cache))
        elif not isinstance(self.cache, CacheConfig):
            raise InvalidTypeError(f"cache must be a CacheConfig or a size in bytes, got "
                                   f"{self.cache!r}")
        if isinstance(self.warmup, str):
            object.__setattr__(self, "warmup", WarmupConfig.level(self.warmup))
        elif not isinstance(self.warmup, WarmupConfig):
            raise InvalidTypeError(f"warmup must be a WarmupConfig or a level name, got "
                                   f"{self.warmup!r}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> StoreConfig:
        """Defaults, then ``MEMVID_*`` environment variables, then ``overrides``.

        ``MEMVID_PRELOAD_LEVEL`` (none|lazy|balanced|aggressive), ``MEMVID_CACHE_SIZE``
        (e.g. ``512MB``), ``MEMVID_MMAP_ENABLED`` (true|false), ``MEMVID_CACHE_DIR``,
        ``MEMVID_COMPACT_MEMORY`` (e.g. ``256MB``).
        An invalid value raises ConfigError naming the variable.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        raw = env.get("MEMVID_MMAP_ENABLED")
        if raw is not None:
            if raw.strip().lower() not in _TRUE | _FALSE:
                raise ConfigError(f"MEMVID_MMAP_ENABLED must be true or false, got {raw!r}")
            values["mmap"] = raw.strip().lower() in _TRUE
        if env.get("MEMVID_CACHE_DIR"):
            values["cache_dir"] = env["MEMVID_CACHE_DIR"]
        if env.get("MEMVID_CACHE_SIZE"):
            values["cache"] = parse_size(env["MEMVID_CACHE_SIZE"], "MEMVID_CACHE_SIZE")
        if env.get("MEMVID_COMPACT_MEMORY"):
            values["compact_memory"] = parse_size(env["MEMVID_COMPACT_MEMORY"],
                                                  "MEMVID_COMPACT_MEMORY")
        if env.get("MEMVID_PRELOAD_LEVEL"):
            try:
                values["warmup"] = WarmupConfig.level(env["MEMVID_PRELOAD_LEVEL"])
            except ConfigError:
                raise ConfigError(
                    f"MEMVID_PRELOAD_LEVEL must be one of {', '.join(PRELOAD_LEVELS)}, "
                    f"got {env['MEMVID_PRELOAD_LEVEL']!r}") from None
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
        ann_backend: HNSW library for approximate vector search where a graph is built
            (``l2``, ``ann_lists=False``, fewer than 1,000 vectors): ``usearch`` (opens
            the graph inside the mapped file with zero copy), ``hnswlib``, or ``none``
            (exact search only: no graph, no lists).
        ann_threshold: number of vectors from which an index (cluster lists or an HNSW
            graph) is built; below it the exact float32 scan is the index.
        ann_m, ann_ef_construction: HNSW graph degree and build beam width (100: half
            the build of 200 at the same calibrated recall and latency, docs/scale.md).
        ann_ef_search: HNSW search beam width; None (default): the width calibrated for
            ``recall_target`` when each graph is built, recorded in the file.
        recall_target: the recall@10 a graph's calibrated width, or the calibrated number
            of cluster lists a query reads, reaches on a sample of the index's own
            vectors against the exact answer (default 0.95); raise it for recall, lower
            it for speed.
        ann_dtype: how the graph stores its copy of the vectors: ``auto`` (``i8`` for
            usearch with cosine, else ``f32``), ``f32``, ``f16`` or ``i8`` (usearch only;
            ``i8`` needs cosine). Candidates from an ``f16``/``i8`` graph are rescored
            with the exact float32 vectors, so scores equal the exact search's.
        ann_lists: index ``cosine`` and ``ip`` vectors by cluster lists instead of an
            HNSW graph: the vectors grouped by nearest centroid as int8 codes (the
            ``lists`` segment, about ``12 + dim`` bytes a vector); a query scores the
            few lists nearest it, and from object storage downloads just those. Faster
            than the graph at a higher recall, built in seconds instead of minutes
            (docs/architecture.md). A file whose graph was built before keeps it, lists
            beside. False: an HNSW graph, no lists.
        lexical: maintain the BM25 full-text index.
        rrf_k: reciprocal rank fusion constant for hybrid search.
    """

    distance: str = "cosine"
    ann_backend: str = "usearch"
    ann_threshold: int = 20_000
    ann_m: int = 16
    ann_ef_construction: int = 100
    ann_ef_search: int | None = None
    recall_target: float = 0.95
    ann_dtype: str = "auto"
    ann_lists: bool = True
    lexical: bool = True
    rrf_k: int = 60

    def __post_init__(self) -> None:
        if self.distance not in ("cosine", "ip", "l2"):
            raise InvalidInputError(f"distance must be cosine, ip or l2, got {self.distance!r}")
        if self.ann_backend not in ("usearch", "hnswlib", "none"):
            raise InvalidInputError(
                f"ann_backend must be usearch, hnswlib or none, got {self.ann_backend!r}")
        if self.ann_dtype not in ("auto", "f32", "f16", "i8"):
            raise InvalidInputError(
                f"ann_dtype must be auto, f32, f16 or i8, got {self.ann_dtype!r}")
        if self.ann_dtype in ("f16", "i8") and self.ann_backend == "hnswlib":
            raise InvalidInputError(
                f"hnswlib stores float32 vectors only: use ann_dtype='f32' or the usearch "
                f"backend, not ann_dtype={self.ann_dtype!r}")
        if self.ann_dtype == "i8" and self.distance != "cosine":
            raise InvalidInputError(
                "ann_dtype='i8' needs distance='cosine': use 'f32' or 'f16' for "
                f"{self.distance!r}")
        if not isinstance(self.ann_lists, bool):
            raise InvalidInputError(f"ann_lists must be True or False, got {self.ann_lists!r}")
        if (isinstance(self.recall_target, bool)
                or not isinstance(self.recall_target, int | float)
                or not 0 < self.recall_target <= 1):
            raise InvalidInputError(f"recall_target must be a number in (0, 1], got "
                                    f"{self.recall_target!r}")
        for name in ("ann_threshold", "ann_m", "ann_ef_construction", "ann_ef_search", "rrf_k"):
            value = getattr(self, name)
            if name == "ann_ef_search" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive int, got {value!r}")

    @property
    def graph_dtype(self) -> str:
        """The scalar type an HNSW graph built with this config stores."""
        if self.ann_dtype != "auto":
            return self.ann_dtype
        return "i8" if self.ann_backend == "usearch" and self.distance == "cosine" else "f32"

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> IndexConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})
