"""Byte-budgeted caches: an LRU of decoded frames (or any values whose size is known).

``ByteLRU`` keeps at most ``capacity_bytes`` of values, evicting the least recently used
first, and counts hits, misses and evictions so that hit rates can be reported.
``config.CacheConfig`` sizes it and the prefetching around it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError

__all__ = ["ByteLRU", "CacheStats"]


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
