"""Compaction's cluster lists: the old file's lists carried over with renumbered gids.

Compaction keeps every kept version's vector unchanged and renumbers gids (a kept
version's new gid is its position among the kept ones), so the centroids and each kept
row's codes still hold: the rows of dropped versions are left out, the others copied a
block at a time with their new gids, in their lists' order. The calibrated number of lists
a query reads is kept. Lists that fail their checksum, or do not belong to the graph, are
not carried (the compacted file has none until its graph is next built).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...engine.format import crc32
from ...errors import CorruptFileError
from .lists_build import ListsBlob, lists_blob, row_type, scratch_map
from .lists_format import HEADER, lists_segment, row_bytes, unpack_header

if TYPE_CHECKING:
    from ...config import IndexConfig
    from ...engine.snapshot import Snapshot

COPY_ROWS = 1 << 16  # rows copied at a time


def carry_lists(snap: Snapshot, config: IndexConfig, kept: np.ndarray, covered: int,
                scratch_dir: str) -> ListsBlob | None:
    """The lists of ``snap`` for the kept versions (``kept``: their old gids, ascending),
    covering new gids below ``covered`` as the carried graph does; None when there are
    none to carry."""
    ref = lists_segment(snap, config)
    if ref is None or not config.ann_lists:
        return None
    data = snap.view.read(ref.offset, ref.length, "segment:lists")
    try:
        if crc32(data) != ref.crc:
            return None
        header = unpack_header(data, ref.length)
    except CorruptFileError:
        return None
    finally:
        snap.view.release(ref.offset, ref.length)
    entries = np.frombuffer(data, np.dtype([("start", "<u8"), ("rows", "<u4"),
                                            ("crc", "<u4")]), header.nlist, HEADER.size)
    sizes = entries["rows"].astype(np.int64)
    centroids = np.frombuffer(data, "<f4", header.nlist * header.dim,
                              header.centroids_at).reshape(header.nlist, header.dim)
    table = np.frombuffer(data, row_type(header.dim), header.count, header.rows_at)
    gids = table["gid"].astype(np.int64)
    pos = np.minimum(np.searchsorted(kept, gids), max(len(kept) - 1, 0))
    found = (kept[pos] == gids) if len(kept) else np.zeros(len(gids), bool)
    owner = np.repeat(np.arange(header.nlist), sizes)  # the list of each row
    new_sizes = np.bincount(owner[found], minlength=header.nlist).astype(np.int64)
    new_starts = np.concatenate([[0], np.cumsum(new_sizes)[:-1]]).astype(np.int64)
    width = row_bytes(header.dim)
    rows = scratch_map(int(new_sizes.sum()) * width, scratch_dir)
    out = np.frombuffer(rows, row_type(header.dim))
    at = 0
    for start in range(0, header.count, COPY_ROWS):
        keep = found[start : start + COPY_ROWS]
        block = table[start : start + COPY_ROWS][keep]
        block["gid"] = pos[start : start + COPY_ROWS][keep]
        out[at : at + len(block)] = block
        at += len(block)
        snap.view.release(ref.offset + header.rows_at + start * width, COPY_ROWS * width)
    meta = {key: ref.meta[key] for key in ("nprobe", "recall", "recall_sample")
            if key in ref.meta}
    return lists_blob(rows, new_starts, new_sizes, centroids.copy(), metric=header.metric,
                      dim=header.dim, covered=covered, meta=meta)


__all__ = ["carry_lists"]
