"""Compaction's graph: the old file's usearch graph carried over with renumbered keys.

Compaction renumbers gids (a kept version's new gid is its position among the kept ones)
and keeps every kept version's vector unchanged, so the old graph's links still hold: only
its node keys change. The graph is streamed from the old file into the new one a block
of nodes at a time, each key rewritten, and a node whose version was dropped keeps its
place and links with usearch's removed-node key (searches pass through it and never
return it; a later extension reuses its slot). So compaction neither holds the graph in
memory nor spends minutes rebuilding it (a 1M x 128 graph: about 440 MB and 260-330 s on
2 cores, against a few seconds of copying).

The old graph is carried only when it is whole (its CRC holds), its layout is one
:mod:`.usearch_layout` reads, its build settings are the configured ones and at most
:data:`MAX_REMOVED` of its nodes would be removed; otherwise compaction rebuilds it from
the kept vectors, as it always did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from ...engine.distinct import distinct
from ...engine.format import crc32
from ...engine.hooks import Pieces
from ...errors import CorruptFileError
from ..coverage import covered_gid
from .graph_build import GraphBlob
from .graph_update import PreparedGraph, calibrated_meta
from .hnsw_format import GraphHeader, graph_header, unpack_graph
from .usearch_layout import COUNTS, COUNTS_AT, FREE_KEY, Layout, Unsupported, layout
from .usearch_nodes import KEY_BYTES, keys_at, node_offsets

if TYPE_CHECKING:
    from ...config import IndexConfig
    from ...engine.format import SegmentRef
    from ...engine.snapshot import Snapshot

MAX_REMOVED = 0.25  # share of removed nodes above which the graph is rebuilt instead
COPY_BYTES = 16 << 20  # bytes read from the old file at a time
NODE_BLOCK = 1 << 16  # nodes whose keys are rewritten at a time


def carry_graph(snap: Snapshot, config: IndexConfig, kept: np.ndarray
                ) -> PreparedGraph | None:
    """The graph of ``snap`` renumbered for the kept versions (``kept``: their old gids,
    ascending), ready for a commit of the compacted file; None when it must be rebuilt."""
    ref = snap.toc.find("ann")
    if ref is None or not _same_settings(ref, config):
        return None
    data = snap.view.read(ref.offset, ref.length, "segment:ann")

    def release() -> None:  # a pass reads every page of the old graph: not kept resident
        snap.view.release(ref.offset, ref.length)

    if _crc(data, release) != ref.crc:
        return None  # a damaged graph is rebuilt from the vectors
    try:
        header = unpack_graph(data, "usearch")
        at = layout(header.payload)
        if at.present != header.count or header.meta_len:
            return None
        offsets, end = node_offsets(header.payload, at)
        keys = _renumbered(header.payload, offsets, kept, covered_gid(ref), release)
    except (Unsupported, CorruptFileError):
        return None
    removed = int(np.count_nonzero(keys == np.uint64(FREE_KEY)))
    if removed > MAX_REMOVED * max(at.size, 1):
        return None
    present = at.size - removed
    parts = _Rewrite(header, at, offsets, end, keys, present, release)
    pieces = Pieces(len(data), parts.pieces)  # the same envelope and payload sizes
    crc = pieces.crc32()
    meta = {"backend": "usearch", "count": present,
            "covered": int(np.searchsorted(kept, covered_gid(ref))), "M": header.M,
            "ef_construction": header.ef_construction, "dtype": header.dtype,
            **calibrated_meta(None, ref)}
    return PreparedGraph(None, GraphBlob([pieces], pieces.length, crc), meta)


def _same_settings(ref: SegmentRef, config: IndexConfig) -> bool:
    """Whether the graph was built as the configuration would build it now."""
    meta = ref.meta
    return (config.ann_backend == meta.get("backend") == "usearch"
            and meta.get("M") == config.ann_m
            and meta.get("ef_construction") == config.ann_ef_construction
            and meta.get("dtype", "f32") == config.graph_dtype)


def _crc(data: memoryview, release: Callable[[], None]) -> int:
    """CRC-32 of ``data``, read ``COPY_BYTES`` at a time, releasing the pages read."""
    crc = 0
    for start in range(0, len(data), COPY_BYTES):
        crc = crc32(data[start : start + COPY_BYTES], crc)
        release()
    return crc


def _renumbered(payload: memoryview, offsets: np.ndarray, kept: np.ndarray,
                covered: int, release: Callable[[], None]) -> np.ndarray:
    """The nodes' new keys: a kept version's position in ``kept``, else the removed key.
    Unsupported when a key is not a version the graph covers, or appears twice."""
    if not len(kept):
        raise Unsupported("no version is kept")
    raw = np.frombuffer(payload, np.uint8)
    keys = np.empty(len(offsets), np.uint64)
    free = np.uint64(FREE_KEY)
    for start in range(0, len(offsets), NODE_BLOCK):
        old = keys_at(raw, offsets[start : start + NODE_BLOCK])
        live = old != free
        if live.any() and int(old[live].max()) >= covered:
            raise Unsupported("a node's key lies beyond the versions the graph covers")
        gids = np.where(live, old, 0).astype(np.int64)
        pos = np.minimum(np.searchsorted(kept, gids), len(kept) - 1)
        found = live & (kept[pos] == gids)
        keys[start : start + len(old)] = np.where(found, pos.astype(np.uint64), free)
        release()
    present = keys[keys != free]
    if len(distinct(present)) != len(present):
        raise Unsupported("two nodes have one key")
    return keys


class _Rewrite:
    """The carried graph's bytes, streamed: our envelope with the new count, the rows as
    they are, the head with the new counts, the nodes with their new keys."""

    def __init__(self, header: GraphHeader, at: Layout, offsets: np.ndarray, end: int,
                 keys: np.ndarray, present: int, release: Callable[[], None]) -> None:
        self.header, self.at, self.offsets, self.end = header, at, offsets, end
        self.keys, self.present, self.release = keys, present, release

    def pieces(self) -> Iterator[bytes | memoryview]:
        h, at, payload = self.header, self.at, self.header.payload
        yield graph_header("usearch", h.metric, h.dtype, h.dim, self.present, h, 0,
                           len(payload))
        yield from self._copied(0, at.head)
        head = bytearray(payload[at.head : at.nodes])
        COUNTS.pack_into(head, COUNTS_AT, self.present, at.size - self.present)
        yield bytes(head)
        offsets = self.offsets
        for start in range(0, len(offsets), NODE_BLOCK):
            block = offsets[start : start + NODE_BLOCK]
            first = int(block[0])
            last = int(offsets[start + len(block)]) if start + len(block) < len(offsets) \
                else self.end
            out = bytearray(payload[first:last])
            np.frombuffer(out, np.uint8)[(block - first)[:, None] + KEY_BYTES] = (
                self.keys[start : start + len(block)].astype("<u8").view(np.uint8)
                .reshape(-1, 8))
            yield out
            self.release()
        yield from self._copied(self.end, len(payload))

    def _copied(self, start: int, end: int) -> Iterator[memoryview]:
        payload = self.header.payload
        for at in range(start, end, COPY_BYTES):
            yield payload[at : min(end, at + COPY_BYTES)]
            self.release()
