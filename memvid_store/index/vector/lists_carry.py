"""Compaction's cluster lists: the old file's lists carried over with renumbered gids.

Compaction keeps every kept version's vector unchanged and renumbers gids (a kept
version's new gid is its position among the kept ones), so the centroids and each kept
row's codes still hold: the rows of dropped versions are left out, the others copied list
by list with their new gids, in their lists' order. The calibrated number of lists a
query reads, and the score that marks a query far from the lists, are kept. Lists that
fail their checksum, or do not belong to the graph, are not carried (the compacted file
has none until its graph is next built).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...engine.format import crc32
from ...errors import CorruptFileError
from .lists_build import ListsBlob, list_arrays, lists_blob, put_column, scratch_map
from .lists_format import lists_segment, read_head, row_bytes

if TYPE_CHECKING:
    from ...config import IndexConfig
    from ...engine.snapshot import Snapshot


CARRIED = ("nprobe", "recall", "recall_sample", "trained", "centroid_floor")  # TOC meta kept


def carry_lists(snap: Snapshot, config: IndexConfig, kept: np.ndarray, covered: int,
                scratch_dir: str) -> ListsBlob | None:
    """The lists of ``snap`` for the kept versions (``kept``: their old gids, ascending),
    covering new gids below ``covered`` as the carried graph does; None when there are
    none to carry."""
    ref = lists_segment(snap, config)
    if ref is None:
        return None
    data = snap.view.read(ref.offset, ref.length, "segment:lists")
    try:
        if crc32(data) != ref.crc:
            return None
        head = read_head(snap.view, ref, config.distance, snap.dim)
    except CorruptFileError:
        return None
    finally:
        snap.view.release(ref.offset, ref.length)
    dim, width = head.header.dim, row_bytes(head.header.dim)

    def columns(j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        offset, size = head.span(j)  # checked whole above
        return list_arrays(data[offset - ref.offset : offset - ref.offset + size],
                           head.directory[j][1], dim)

    new_sizes, kept_rows = np.zeros(head.header.nlist, np.int64), []
    for j in range(head.header.nlist):  # which rows of each list stay, and their new gids
        gids = columns(j)[0]
        pos = np.minimum(np.searchsorted(kept, gids), max(len(kept) - 1, 0))
        found = (kept[pos] == gids) if len(kept) else np.zeros(len(gids), bool)
        kept_rows.append((found, pos[found]))
        new_sizes[j] = int(found.sum())
    new_starts = np.concatenate([[0], np.cumsum(new_sizes)[:-1]]).astype(np.int64)
    rows = scratch_map(int(new_sizes.sum()) * width, scratch_dir)
    out = np.frombuffer(rows, np.uint8)
    for j, (found, renumbered) in enumerate(kept_rows):
        _, scales, codes = columns(j)
        at = int(new_starts[j]) * width
        for column in (renumbered.astype("<i8"), scales[found], codes[found]):
            at = put_column(out, at, column)
        snap.view.release(*head.span(j))
    meta = {key: ref.meta[key] for key in CARRIED if key in ref.meta}
    centroids = np.frombuffer(head.centroids, "<f4").reshape(head.header.nlist, dim).copy()
    return lists_blob(rows, new_starts, new_sizes, centroids, metric=head.header.metric,
                      dim=dim, covered=covered, meta=meta)


__all__ = ["carry_lists"]
