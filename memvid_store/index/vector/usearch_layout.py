"""Where things lie in a serialized usearch 2.x dense graph (numpy-free).

Read by the numpy-free walk (:mod:`.graph_walk`) and by compaction's carried graph
(:mod:`.graph_carry`). Layout (little-endian)::

    u32 rows | u32 bytes per row | rows x row bytes
    64-byte head: b"usearch", version major/minor/patch u16, metric, scalar, key and
                  slot kinds u8, count_present u64, count_deleted u64, dimensions u64,
                  multi u8
    graph header: size, connectivity, connectivity_base, max_level, entry_slot (u64)
    size x i16 node levels
    nodes: key u64 | level i16 | u32 count + connectivity_base u32 slots (level 0)
           | per upper level: u32 count + connectivity u32 slots

A removed node keeps its place and links, with :data:`FREE_KEY` as its key: searches pass
through it and never return it, and usearch counts it in ``count_deleted``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"usearch"
MAJOR = 2
U64, U32 = 14, 15  # usearch scalar kinds of keys and slots
FREE_KEY = (1 << 64) - 1  # usearch's key of a removed node
NODE_HEAD = 10  # key u64 + level i16
HEAD_BYTES = 64
COUNTS = struct.Struct("<QQ")  # count_present, count_deleted
COUNTS_AT = 17  # their offset in the head
_GRAPH_HEADER = struct.Struct("<5Q")


class Unsupported(Exception):
    """Bytes that are not a usearch graph this module can read (the library decides)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Offsets into one serialized graph (the library's bytes, after our envelope)."""

    rows: int
    row_bytes: int
    head: int  # offset of the 64-byte head
    scalar: int  # usearch scalar kind of the rows
    present: int  # nodes with a key
    deleted: int  # removed nodes (FREE_KEY)
    size: int  # nodes
    connectivity: int
    connectivity_base: int
    max_level: int
    entry: int
    levels: int  # offset of the size x i16 node levels
    nodes: int  # offset of the first node

    @property
    def base_bytes(self) -> int:
        """Bytes of a node's level-0 neighbour list."""
        return 4 + 4 * self.connectivity_base

    @property
    def level_bytes(self) -> int:
        """Bytes of each upper level's neighbour list."""
        return 4 + 4 * self.connectivity


def layout(blob: memoryview) -> Layout:
    """The layout of ``blob``; :class:`Unsupported` for anything but a single-key-per-node
    usearch 2.x graph with u64 keys and u32 slots, or offsets outside ``blob``."""
    rows, row_bytes = read("<II", blob, 0)
    head = 8 + rows * row_bytes
    if len(blob) < head + HEAD_BYTES or bytes(blob[head:head + 7]) != MAGIC:
        raise Unsupported("no usearch head")
    major = read("<H", blob, head + 7)[0]
    scalar, key_kind, slot_kind = blob[head + 14], blob[head + 15], blob[head + 16]
    present, deleted = read(COUNTS.format, blob, head + COUNTS_AT)
    multi = blob[head + 41]
    if major != MAJOR or (key_kind, slot_kind) != (U64, U32) or multi:
        raise Unsupported(f"usearch {major}.x layout with kinds {scalar, key_kind, slot_kind}")
    graph = head + HEAD_BYTES
    size, conn, conn_base, max_level, entry = read(_GRAPH_HEADER.format, blob, graph)
    if (size != rows or present + deleted != size or not 0 < conn <= conn_base <= 4096
            or entry >= max(size, 1) or max_level > 64):
        raise Unsupported("graph header out of range")
    levels = graph + _GRAPH_HEADER.size
    nodes = levels + 2 * size
    if nodes > len(blob):
        raise Unsupported("node levels exceed the graph")
    return Layout(rows, row_bytes, head, scalar, present, deleted, size, conn, conn_base,
                  max_level, entry, levels, nodes)


def read(fmt: str, blob: memoryview, offset: int) -> tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, blob, offset)
    except struct.error as exc:
        raise Unsupported(f"graph bytes end early ({exc})") from None
