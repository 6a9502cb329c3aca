"""Searching a usearch int8 graph without numpy or usearch: a fresh process's first queries.

Importing numpy and usearch's extension costs 60-90 ms here, while one HNSW search at 100k
nodes is a few thousand distance computations. So while numpy is not loaded, the graph is
walked here, in place in the mapped file: the usual HNSW search (greedy descent through the
upper levels, then a beam of ``ef`` candidates on level 0), with numkong's int8 dot products
as distances. The caller rescores the candidates in float32 and accepts them like any
other. Once the walks have cost about what loading numpy and usearch costs, the caller
switches to the library (see :mod:`.numpy_free_walk`), as a long-lived process should.

The graph's layout is read by :mod:`.usearch_layout`; removed nodes (compaction's
carried graphs) are walked through and never returned, as usearch does.

Anything else (another layout, scalar or key type) raises :class:`Unsupported` and the
library serves; the walk never decides that a file is damaged.

Out of the page cache every row and node a walk reads is a disk read of its own (11k
rows and 800 nodes for one search at 1M, about 0.9 s here). While reads are slow, the
walk tells the caller's ``prefetch`` the rows of a node's neighbours, and the nodes it
will expand, before reading them, so the kernel reads them together (0.3 s); once reads
are fast (the pages are cached) it stops asking, as each hint is a system call.
"""

from __future__ import annotations

import heapq
import math
import re
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from .hnsw_format import unpack_graph
from .usearch_layout import FREE_KEY, NODE_HEAD, Unsupported, layout, read

_I8 = 23  # usearch's scalar kind of int8 rows
# Rows read slower than SLOW_READ_S on average came from disk (cached rows take about 3
# µs); rows prefetched faster than CACHED_READ_S (with the hints' system calls) were cached
SLOW_READ_S = 15e-6
CACHED_READ_S = 8e-6

Prefetch = Callable[[list[tuple[int, int]]], None]
"""Told ``(offset, size)`` spans of the graph's bytes (offsets within the ``data`` given
to :class:`UsearchGraph`) about to be read."""


class UsearchGraph:
    """A usearch int8 graph read in place from ``data`` (our ``ann`` segment)."""

    def __init__(self, data: memoryview, dim: int) -> None:
        try:
            header = unpack_graph(data, "usearch")
        except Exception as exc:  # the library path reports damage with its own checks
            raise Unsupported(str(exc)) from None
        if header.dtype != "i8" or header.dim != dim:
            raise Unsupported(f"a {header.dtype} graph of {header.dim} dimensions")
        blob = header.payload
        self._blob = blob
        self._blob_at = len(data) - len(blob)  # where the usearch blob starts in ``data``
        self._i8 = blob.cast("b")
        self.dim = dim
        self.count = header.count
        at = layout(blob)
        if at.rows != at.size or at.row_bytes != dim or at.scalar != _I8:
            raise Unsupported("vector matrix does not match the graph header")
        if at.present != header.count:
            raise Unsupported("node count does not match the graph header")
        self._vectors = 8
        self.size, self.max_level, self.entry = at.size, at.max_level, at.entry
        self._removed = at.deleted > 0
        self._conn = (at.connectivity_base, at.connectivity)
        self._base_bytes, self._level_bytes = at.base_bytes, at.level_bytes
        size = at.size
        levels = bytes(blob[at.levels : at.levels + 2 * size])
        if len(levels) != 2 * size or levels[1::2].count(0) != size:
            raise Unsupported("node levels out of range")
        low = levels[0::2]
        # nodes above level 0 are a few percent: their slots and the levels before them
        # place every node without a pass over all of them
        self._upper = [m.start() for m in re.finditer(rb"[^\x00]", low)]
        self._above = list(accumulate(low[s] for s in self._upper))
        self._nodes = at.nodes
        end = self._offset(size) if size else self._nodes
        if end > len(blob) or max(low, default=0) > at.max_level:
            raise Unsupported("nodes exceed the graph")

    def _offset(self, slot: int) -> int:
        i = bisect_left(self._upper, slot)
        above = self._above[i - 1] if i else 0
        return (self._nodes + slot * (NODE_HEAD + self._base_bytes)
                + above * self._level_bytes)

    def key(self, slot: int) -> int:
        return read("<Q", self._blob, self._offset(slot))[0]

    def neighbors(self, slot: int, level: int) -> tuple[int, ...]:
        off = self._offset(slot) + NODE_HEAD
        if level:
            off += self._base_bytes + (level - 1) * self._level_bytes
        count = read("<I", self._blob, off)[0]
        if count > self._conn[level > 0]:
            raise Unsupported(f"node {slot} lists {count} neighbours")
        found = read(f"<{count}I", self._blob, off + 4)
        if found and max(found) >= self.size:
            raise Unsupported(f"node {slot} links to a missing node")
        return found

    def search(self, dot: Any, query: array, k: int, ef: int,
               prefetch: Prefetch | None = None) -> list[int]:
        """Keys of the ``k`` nodes nearest ``query`` (unit float32) by int8 inner product,
        nearest first; ``dot`` is numkong's dot product, ``prefetch`` told what is read
        next while reads are slow."""
        if not self.size:
            return []
        q = _to_int8(query)
        rows, dim, base = self._i8, self.dim, self._vectors

        def distance(slot: int) -> float:
            start = base + slot * dim
            return -dot(q, rows[start : start + dim])

        closest, best = self.entry, distance(self.entry)
        for level in range(self.max_level, 0, -1):  # greedy descent
            moved = True
            while moved:
                moved = False
                for n in self.neighbors(closest, level):
                    d = distance(n)
                    if d < best:
                        closest, best, moved = n, d, True
        ef = max(ef, k)
        allowed = self._kept if self._removed else None
        visited = {closest}
        frontier = [(best, closest)]
        top = [(-best, closest)] if allowed is None or allowed(closest) else []
        radius = best  # the worst distance in ``top`` once it is full
        ahead = prefetch is not None  # hint reads while they are slow
        at, row_bytes, node_bytes = self._blob_at, dim, NODE_HEAD + self._base_bytes
        while frontier:
            d, slot = heapq.heappop(frontier)
            if len(top) >= ef and d > radius:
                break
            fresh = [n for n in self.neighbors(slot, 0) if n not in visited]
            started = time.perf_counter() if prefetch is not None else 0.0
            if ahead and fresh:
                prefetch([(at + base + n * dim, row_bytes) for n in fresh])
            pushed = []
            for n in fresh:
                if n in visited:  # listed twice
                    continue
                visited.add(n)
                dn = distance(n)
                if len(top) < ef or dn < radius:
                    heapq.heappush(frontier, (dn, n))
                    pushed.append(n)
                    if allowed is None or allowed(n):  # removed nodes lead on, never count
                        heapq.heappush(top, (-dn, n))
                        if len(top) > ef:
                            heapq.heappop(top)
                        radius = -top[0][0]
            if prefetch is not None and fresh:
                per_row = (time.perf_counter() - started) / len(fresh)
                ahead = per_row > (CACHED_READ_S if ahead else SLOW_READ_S)
                if ahead and pushed:  # the nodes it may expand next
                    prefetch([(at + self._offset(n), node_bytes) for n in pushed])
        nearest = sorted((-negd, slot) for negd, slot in top)[:k]
        return [self.key(slot) for _, slot in nearest]

    def _kept(self, slot: int) -> bool:
        return self.key(slot) != FREE_KEY


def _to_int8(query: array) -> memoryview:
    """The query as usearch casts float rows into an int8 graph: scaled to unit length,
    times 127, clamped, truncated towards zero."""
    magnitude = math.sqrt(sum(x * x for x in query)) or 1.0
    scale = 127.0 / magnitude
    return memoryview(array("b", (int(max(-127.0, min(127.0, x * scale))) for x in query)))
