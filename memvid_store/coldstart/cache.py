"""Byte-budgeted caches: an LRU of decoded frames (or any values whose size is known).

``ByteLRU`` keeps at most ``capacity_bytes`` of values, evicting the least recently used
first, and counts hits, misses and evictions so that hit rates can be reported.
``CacheConfig`` sizes it and the prefetching around it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import DEFAULT_CACHE_SIZE, parse_size
from ..errors import ConfigError, InvalidInputError

__all__ = ["ByteLRU", "CacheConfig", "CacheStats"]


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """Sizes of the frame cache and of prefetching.

    Attributes:
        lru_size: bytes of decoded frames kept in memory, an int or a size such as
            ``"512MB"`` (``MEMVID_CACHE_SIZE``; default 100 MiB; 0 disables the cache).
        prefetch_window: the most frames one prediction may prefetch.
        adaptive_prefetch: let the prefetcher shrink the window while its predictions are
            not being used (and grow it back when they are).
        monitoring_interval: seconds between two cache-statistics reports.
    """

    lru_size: int = DEFAULT_CACHE_SIZE
    prefetch_window: int = 1000
    adaptive_prefetch: bool = True
    monitoring_interval: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.lru_size, str):
            object.__setattr__(self, "lru_size", parse_size(self.lru_size, "lru_size"))
        if not _is_int(self.lru_size) or self.lru_size < 0:
            raise ConfigError(f"lru_size must be a number of bytes >= 0 (e.g. 104857600 or "
                              f"'100MiB'), got {self.lru_size!r}")
        if not _is_int(self.prefetch_window) or self.prefetch_window < 0:
            raise ConfigError(f"prefetch_window must be a number of frames >= 0 (e.g. 1000), "
                              f"got {self.prefetch_window!r}")
        if not isinstance(self.adaptive_prefetch, bool):
            raise ConfigError(f"adaptive_prefetch must be True or False, got "
                              f"{self.adaptive_prefetch!r}")
        interval = self.monitoring_interval
        if isinstance(interval, bool) or not isinstance(interval, int | float) \
                or not interval > 0:
            raise ConfigError(f"monitoring_interval must be a number of seconds > 0 (e.g. "
                              f"60.0), got {interval!r}")

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
class CacheStats:
    """Counters of one cache. ``hit_rate`` is None until the first lookup."""

    name: str
    hits: int
    misses: int
    evictions: int
    items: int
    bytes: int
    capacity: int

    @property
    def hit_rate(self) -> float | None:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None


class ByteLRU:
    """A thread-safe least-recently-used cache bounded by the total size of its values.

    Every operation is O(1) (amortized over evictions). ``get`` counts a hit or a miss and
    marks the entry as recently used; ``peek``, ``touch`` and ``in`` count nothing. A value
    larger than the whole capacity is not stored.
    """

    __slots__ = ("_bytes", "_capacity", "_entries", "_evictions", "_hits", "_lock", "_misses",
                 "name")

    def __init__(self, capacity_bytes: int, name: str = "cache") -> None:
        if not _is_int(capacity_bytes) or capacity_bytes < 0:
            raise InvalidInputError(f"capacity_bytes must be an int >= 0, got {capacity_bytes!r}")
        self.name = name
        self._capacity = capacity_bytes
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = self._evictions = 0
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def nbytes(self) -> int:
        """Total size of the values held."""
        return self._bytes

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value for ``key`` (now most recently used), or ``default``; counts hit/miss."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._misses += 1
                return default
            self._entries.move_to_end(key)
            self._hits += 1
            return entry[0]

    def peek(self, key: Hashable, default: Any = None) -> Any:
        """The value for ``key`` or ``default``, without counting or reordering."""
        with self._lock:
            entry = self._entries.get(key)
            return default if entry is None else entry[0]

    def touch(self, key: Hashable) -> bool:
        """Mark ``key`` most recently used without counting a lookup; False if absent.

        A prefetcher touches the predicted entries that are already cached so that loading
        the others does not evict them.
        """
        with self._lock:
            if key not in self._entries:
                return False
            self._entries.move_to_end(key)
            return True

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def put(self, key: Hashable, value: Any, size: int) -> bool:
        """Store ``value`` (``size`` bytes) as most recently used; evict to fit.

        Returns False when the value is larger than the capacity: it is not stored, and
        an older value under the same key is dropped.
        """
        if not _is_int(size) or size < 0:
            raise InvalidInputError(f"size must be an int >= 0 (bytes), got {size!r}")
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self._capacity:
                return False
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self._capacity:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
                self._evictions += 1
            return True

    def discard(self, key: Hashable) -> bool:
        """Remove ``key`` if present; returns whether it was."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                return False
            self._bytes -= entry[1]
            return True

    def clear(self) -> None:
        """Remove every entry (the counters are kept)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self.name, self._hits, self._misses, self._evictions,
                              len(self._entries), self._bytes, self._capacity)

    def __repr__(self) -> str:
        return (f"<ByteLRU {self.name!r} {len(self._entries)} items, "
                f"{self._bytes}/{self._capacity} bytes>")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
