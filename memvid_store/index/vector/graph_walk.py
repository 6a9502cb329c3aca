"""Searching a usearch int8 graph without numpy or usearch: a fresh process's first queries.

Importing numpy and usearch's extension costs 60-90 ms here, while one HNSW search at 100k
nodes is a few thousand distance computations. So while numpy is not loaded, the graph is
walked here, in place in the mapped file: the usual HNSW search (greedy descent through the
upper levels, then a beam of ``ef`` candidates on level 0), with numkong's int8 dot products
as distances. The caller rescores the candidates in float32 and accepts them like any
other. Once the walks have cost about what loading numpy and usearch costs, the caller
switches to the library (see :mod:`.numpy_free_walk`), as a long-lived process should.

usearch 2.x dense index, as serialized (little-endian)::

    u32 rows | u32 bytes per row | rows x int8
    64-byte head: b"usearch", version major/minor/patch u16, metric, scalar, key and
                  slot kinds u8, counts and dimensions u64, multi u8
    graph header: size, connectivity, connectivity_base, max_level, entry_slot (u64)
    size x i16 node levels
    nodes: key u64 | level i16 | u32 count + connectivity_base u32 slots (level 0)
           | per upper level: u32 count + connectivity u32 slots

Anything else (another layout, scalar or key type) raises :class:`Unsupported` and the
library serves; the walk never decides that a file is damaged.
"""

from __future__ import annotations

import heapq
import math
import re
import struct
from array import array
from bisect import bisect_left
from itertools import accumulate
from typing import Any

from .hnsw_format import unpack_graph

_MAGIC = b"usearch"
_MAJOR = 2
_I8, _U64, _U32 = 23, 14, 15  # usearch scalar kinds
_NODE_HEAD = 10  # key u64 + level i16
_GRAPH_HEADER = struct.Struct("<5Q")


class Unsupported(Exception):
    """The graph is not one this module can walk (the library must serve it)."""


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
        self._i8 = blob.cast("b")
        self.dim = dim
        self.count = header.count
        rows, width = _read("<II", blob, 0)
        if rows != header.count or width != dim:
            raise Unsupported("vector matrix does not match the graph header")
        self._vectors = 8
        head = 8 + rows * width
        if len(blob) < head + 64 or bytes(blob[head:head + 7]) != _MAGIC:
            raise Unsupported("no usearch head")
        major = _read("<H", blob, head + 7)[0]
        scalar, key_kind, slot_kind = blob[head + 14], blob[head + 15], blob[head + 16]
        multi = blob[head + 41]
        if major != _MAJOR or (scalar, key_kind, slot_kind) != (_I8, _U64, _U32) or multi:
            raise Unsupported(f"usearch {major}.x layout with kinds {scalar, key_kind, slot_kind}")
        graph = head + 64
        size, conn, conn_base, max_level, entry = _read(_GRAPH_HEADER.format, blob, graph)
        if size != rows or not 0 < conn <= conn_base <= 4096 or entry >= max(size, 1):
            raise Unsupported("graph header out of range")
        self.size, self.max_level, self.entry = size, max_level, entry
        self._conn = (conn_base, conn)
        self._base_bytes = 4 + 4 * conn_base
        self._level_bytes = 4 + 4 * conn
        levels = bytes(blob[graph + 40 : graph + 40 + 2 * size])
        if len(levels) != 2 * size or levels[1::2].count(0) != size:
            raise Unsupported("node levels out of range")
        low = levels[0::2]
        # nodes above level 0 are a few percent: their slots and the levels before them
        # place every node without a pass over all of them
        self._upper = [m.start() for m in re.finditer(rb"[^\x00]", low)]
        self._above = list(accumulate(low[s] for s in self._upper))
        self._nodes = graph + 40 + 2 * size
        end = self._offset(size) if size else self._nodes
        if end > len(blob) or max(low, default=0) > max_level:
            raise Unsupported("nodes exceed the graph")

    def _offset(self, slot: int) -> int:
        i = bisect_left(self._upper, slot)
        above = self._above[i - 1] if i else 0
        return (self._nodes + slot * (_NODE_HEAD + self._base_bytes)
                + above * self._level_bytes)

    def key(self, slot: int) -> int:
        return _read("<Q", self._blob, self._offset(slot))[0]

    def neighbors(self, slot: int, level: int) -> tuple[int, ...]:
        off = self._offset(slot) + _NODE_HEAD
        if level:
            off += self._base_bytes + (level - 1) * self._level_bytes
        count = _read("<I", self._blob, off)[0]
        if count > self._conn[level > 0]:
            raise Unsupported(f"node {slot} lists {count} neighbours")
        found = _read(f"<{count}I", self._blob, off + 4)
        if found and max(found) >= self.size:
            raise Unsupported(f"node {slot} links to a missing node")
        return found

    def search(self, dot: Any, query: array, k: int, ef: int) -> list[int]:
        """Keys of the ``k`` nodes nearest ``query`` (unit float32) by int8 inner product,
        nearest first; ``dot`` is numkong's dot product."""
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
        visited = {closest}
        frontier = [(best, closest)]
        top = [(-best, closest)]
        while frontier:
            d, slot = heapq.heappop(frontier)
            if len(top) >= ef and d > -top[0][0]:
                break
            for n in self.neighbors(slot, 0):
                if n in visited:
                    continue
                visited.add(n)
                dn = distance(n)
                if len(top) < ef or dn < -top[0][0]:
                    heapq.heappush(frontier, (dn, n))
                    heapq.heappush(top, (-dn, n))
                    if len(top) > ef:
                        heapq.heappop(top)
        nearest = sorted((-negd, slot) for negd, slot in top)[:k]
        return [self.key(slot) for _, slot in nearest]


def _read(fmt: str, blob: memoryview, offset: int) -> tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, blob, offset)
    except struct.error as exc:
        raise Unsupported(f"graph bytes end early ({exc})") from None


def _to_int8(query: array) -> memoryview:
    """The query as usearch casts float rows into an int8 graph: scaled to unit length,
    times 127, clamped, truncated towards zero."""
    magnitude = math.sqrt(sum(x * x for x in query)) or 1.0
    scale = 127.0 / magnitude
    return memoryview(array("b", (int(max(-127.0, min(127.0, x * scale))) for x in query)))
