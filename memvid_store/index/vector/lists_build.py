"""Building the ``lists`` segment (:mod:`.lists_format`), in bounded memory.

1. **Centroids**: spherical k-means (:data:`ITERATIONS` rounds) over a seeded sample of at
   most :data:`SAMPLE_PER_LIST` rows per list (``nlist`` about the square root of the
   rows: lists of about as many rows as there are lists).
2. **Assignment**: the vectors are streamed from their blocks in batches, each row's
   nearest centroid kept (4 bytes a row).
3. **Rows**: a second pass writes each row's gid, scale and int8 codes at its place in
   its list's columns, in a map of a scratch file; each list's CRC is then taken.
4. **Calibration**: a sample of the vectors is searched the way :mod:`.lists_search`
   searches (the ``depth`` best approximate scores of the nearest lists, then rescored
   exactly) with a growing number of lists, against the exact top 10 of every other
   vector; the fewest lists whose recall reaches the target (plus the graph calibration's
   margin) is recorded in the segment's TOC entry (``nprobe``), with the score of the
   nearest centroid that all but :data:`FLOOR_QUANTILE` of the sample reach
   (``centroid_floor``): a query below it is far from every list, and reads more
   (``lists_format.widenings``).

An extension of the index (``KeptLists``) while its rows stay under twice those its
centroids were made from (TOC meta ``trained``) skips steps 1 and 2 for the old rows:
their centroids are kept, their rows copied list by list (each one's CRC checked; a
damaged one makes the build start anew), and only the new rows are assigned and written
after them; step 4 runs as for a new build. Counting from the centroids' own rows (not
the previous extension's) bounds how stale they get: extended 10 % at a time, a 1M-row
index had kept the 245 centroids of its first 60k rows. New rows unlike the old (topics
the centroids never saw) are crammed into the nearest lists, and the calibration then
asks queries to read many more of them (16 -> 48 lists when 100k rows of 32 new topics
joined 1M): more than :data:`DRIFT` times the lists the kept ones read, and the build
starts anew.

What the build holds: the centroids and the sample, one batch of rows and its scores
against the centroids, the assignment (4 bytes a row), and the sample queries' scores of
one batch; the rows go to a map of a scratch file.
"""

from __future__ import annotations

import math
import mmap
import os
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .calibrate import MARGIN
from .graph_build import rows_at
from .lists_format import DEPTH, ENTRY, METRICS, MIN_ROWS, pack_header, row_bytes
from .lists_rank import top_rows

ITERATIONS = 8  # k-means rounds
SAMPLE_PER_LIST = 32  # k-means sample rows per list
MAX_SAMPLE = 65_536  # and at most this many (96 MiB at 384-d)
MIN_LISTS, MAX_LISTS = 16, 4096
BATCH = 8_192  # rows assigned and written at a time
QUERIES = 200  # calibration sample
K = 10
SEED = 4321
FLOOR_QUANTILE = 0.01  # sample rows whose nearest centroid may score below the floor
DRIFT = 2  # kept centroids whose lists a query must read this many times more: anew
CRC_STEP = 16 << 20  # bytes of rows checksummed between drops of their pages

Chunks = Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, slots=True)
class ListsBlob:
    """A serialized ``lists`` segment: pieces to write back to back, length, CRC, TOC meta."""

    parts: list[Any]
    length: int
    crc: int
    meta: dict[str, Any]


def list_count(rows: int) -> int:
    """Lists for ``rows`` vectors: about their square root."""
    return max(MIN_LISTS, min(MAX_LISTS, round(math.sqrt(rows))))


@dataclass(frozen=True, slots=True)
class KeptLists:
    """The lists of the graph being extended, kept with their centroids: ``head``
    (:class:`.lists_format.ListsHead`), ``columns(j)``, list ``j``'s (gids, scales,
    codes), its CRC checked (CorruptFileError otherwise), and ``release(j)`` once they
    are copied (their pages may go)."""

    head: Any
    columns: Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]]
    release: Callable[[int], None]


def build_lists(chunks: Chunks, *, metric: str, dim: int, covered: int, target: float,
                scratch_dir: str, done: Callable[[Any], None] | None = None,
                kept: KeptLists | None = None) -> ListsBlob | None:
    """The lists of every row of ``chunks`` ((vectors, gids) pieces in gid order, the rows
    a graph covering gids below ``covered`` holds); None for a metric without lists or
    too few rows. ``done(matrix)`` after each pass over a chunk (its mapped pages may go).

    ``kept``: the lists of the index these rows extend: until the rows are twice those
    their centroids were made from (``trained_rows``), the centroids and rows are kept
    and only the new rows assigned (no k-means, no pass over the old rows); the number of
    lists a query reads is calibrated again either way."""
    count = sum(len(gids) for _, gids in chunks)
    if metric not in METRICS or count < MIN_ROWS or not dim:
        return None
    rng = np.random.default_rng(SEED)
    trained = count if kept is None else trained_rows(kept.head)
    if kept is not None and 2 * trained <= count:
        kept, trained = None, count  # twice the rows the centroids were made from: anew
    nlist = list_count(count) if kept is None else kept.head.header.nlist
    picks = np.sort(rng.choice(count, min(count, nlist * SAMPLE_PER_LIST, MAX_SAMPLE),
                               replace=False))
    sample, sample_gids = rows_at(chunks, picks, done)
    sample = _unit(sample)
    held = None
    if kept is not None:
        centroids = np.frombuffer(kept.head.centroids, "<f4").reshape(nlist, dim)
        held = np.array([rows for _, rows, _ in kept.head.directory], np.int64)
        chunks_added = _past(chunks, kept.head.header.covered)
    else:
        centroids = _kmeans(sample, nlist, rng)
        chunks_added = chunks
    assigned = _assign(chunks_added, centroids, done)
    sizes = np.bincount(assigned, minlength=nlist).astype(np.int64)
    if held is not None:
        sizes += held
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    buffer = scratch_map(int(sizes.sum()) * row_bytes(dim), scratch_dir)
    if held is not None:
        _copy_kept(buffer, kept, starts, sizes, dim)  # type: ignore[arg-type]
    rows = _rows_file(buffer, chunks_added, assigned, starts, sizes, metric, dim, done,
                      filled=held)
    asked = rng.choice(len(sample), min(QUERIES, len(sample)), replace=False)
    queries = sample[asked]
    nprobe, recall = _calibrate(chunks, queries, sample_gids[asked], centroids, rows,
                                starts, sizes, dim, metric, target + MARGIN, done)
    floor = float(np.quantile((queries @ centroids.T).max(axis=1), FLOOR_QUANTILE))
    if kept is not None and nprobe > DRIFT * kept.head.nprobe:
        # the new rows do not fit the kept centroids: queries would read too many lists
        return build_lists(chunks, metric=metric, dim=dim, covered=covered, target=target,
                           scratch_dir=scratch_dir, done=done)
    return lists_blob(rows, starts, sizes, centroids, metric=metric, dim=dim,
                      covered=covered, meta={"nprobe": nprobe, "recall": round(recall, 4),
                                             "recall_sample": len(asked), "trained": trained,
                                             "centroid_floor": round(floor, 4)})


def trained_rows(head: Any) -> int:
    """The rows the centroids of the lists ``head`` were made from (TOC meta ``trained``;
    lists written before it record none: their row count)."""
    trained = head.ref.meta.get("trained")
    valid = isinstance(trained, int) and not isinstance(trained, bool) and trained > 0
    return trained if valid else head.header.count


def _past(chunks: Chunks, covered: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The rows of ``chunks`` of gid ``covered`` or more."""
    out = []
    for matrix, gids in chunks:
        keep = np.asarray(gids) >= covered
        if keep.all():
            out.append((matrix, gids))
        elif keep.any():
            out.append((matrix[keep], gids[keep]))
    return out


def _copy_kept(buffer: Any, kept: KeptLists, starts: np.ndarray, sizes: np.ndarray,
               dim: int) -> None:
    """Each kept list's rows at the head of its new list's columns."""
    flat = np.frombuffer(buffer, np.uint8)
    width = row_bytes(dim)
    for j in range(len(starts)):
        gids, scales, codes = kept.columns(j)
        base, n = int(starts[j]) * width, int(sizes[j])
        for at, column in ((base, gids), (base + 8 * n, scales), (base + 12 * n, codes)):
            put_column(flat, at, column)
        kept.release(j)
        drop_pages(buffer, base, base + n * width)


def put_column(flat: np.ndarray, at: int, column: np.ndarray) -> int:
    """Write the bytes of ``column`` at ``at`` in ``flat``; the offset after them."""
    raw = np.ascontiguousarray(column).view(np.uint8).ravel()
    flat[at : at + len(raw)] = raw
    return at + len(raw)


def _unit(matrix: np.ndarray) -> np.ndarray:
    """Float32 copies of the rows scaled to unit length (all-zero rows stay zero)."""
    rows = np.asarray(matrix, "<f4")
    norms = np.linalg.norm(rows, axis=1)
    return rows / np.where(norms > 0, norms, 1.0)[:, None].astype("<f4")


def _kmeans(sample: np.ndarray, nlist: int, rng: np.random.Generator) -> np.ndarray:
    """Unit centroids of ``sample`` (unit rows), a list emptied by a round reseeded from
    a random sample row."""
    centroids = sample[rng.choice(len(sample), nlist, replace=len(sample) < nlist)].copy()
    for _ in range(ITERATIONS):
        nearest = np.concatenate([np.argmax(sample[at : at + BATCH] @ centroids.T, axis=1)
                                  for at in range(0, len(sample), BATCH)])
        order = np.argsort(nearest, kind="stable")
        held = np.unique(nearest)
        sums = np.zeros_like(centroids)
        sums[held] = np.add.reduceat(sample[order], np.searchsorted(nearest[order], held))
        norms = np.linalg.norm(sums, axis=1)
        empty = norms == 0
        centroids = sums / np.where(empty, 1.0, norms)[:, None].astype("<f4")
        if empty.any():
            centroids[empty] = sample[rng.choice(len(sample), int(empty.sum()))]
    return centroids


def _batches(chunks: Chunks, done: Callable[[Any], None] | None):
    """(vectors, gids, position of the first) of ``chunks`` in pieces of <= BATCH rows."""
    start = 0
    for matrix, gids in chunks:
        for at in range(0, len(gids), BATCH):
            yield matrix[at : at + BATCH], gids[at : at + BATCH], start + at
        if done is not None:
            done(matrix)
        start += len(gids)


def _assign(chunks: Chunks, centroids: np.ndarray, done: Callable[[Any], None] | None
            ) -> np.ndarray:
    """The nearest centroid of every row (by direction), in row order."""
    out = []
    for vectors, _, _ in _batches(chunks, done):
        out.append(np.argmax(_unit(vectors) @ centroids.T, axis=1).astype(np.int32))
    return np.concatenate(out)


def _codes(vectors: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(scales, int8 codes) of rows: ``scale * codes`` approximates the row (its unit
    vector for cosine)."""
    rows = _unit(vectors) if metric == "cosine" else np.asarray(vectors, "<f4")
    peak = np.abs(rows).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype("<f4")
    codes = np.clip(np.rint(rows / scales[:, None]), -127, 127).astype(np.int8)
    return scales, codes


def list_arrays(data: Any, rows: int, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gids, scales, codes ``rows x dim``) of one list's bytes (its columns, one after
    the other: :mod:`.lists_format`)."""
    return (np.frombuffer(data, "<i8", rows, 0), np.frombuffer(data, "<f4", rows, 8 * rows),
            np.frombuffer(data, np.int8, rows * dim, 12 * rows).reshape(rows, dim))


def _rows_file(buffer: Any, chunks: Chunks, assigned: np.ndarray, starts: np.ndarray,
               sizes: np.ndarray, metric: str, dim: int,
               done: Callable[[Any], None] | None, filled: np.ndarray | None = None
               ) -> memoryview:
    """Every row of ``chunks`` written at its place in its list's columns in ``buffer``,
    after the ``filled`` rows each list holds already."""
    width = row_bytes(dim)
    flat = np.frombuffer(buffer, np.uint8)
    cursor = starts.copy() if filled is None else starts + filled
    for vectors, gids, first in _batches(chunks, done):
        lists = assigned[first : first + len(gids)]
        order = np.argsort(lists, kind="stable")
        ordered = lists[order]
        group_start = np.searchsorted(ordered, ordered)  # first of each row's list here
        at = cursor[ordered] - starts[ordered] + np.arange(len(order)) - group_start
        cursor += np.bincount(ordered, minlength=len(cursor))
        base, count = starts[ordered] * width, sizes[ordered]
        scales, codes = _codes(np.asarray(vectors)[order], metric)
        _put(flat, base + 8 * at, np.asarray(gids, "<i8")[order])
        _put(flat, base + 8 * count + 4 * at, scales)
        _put(flat, base + 12 * count + dim * at, codes)
        drop_pages(buffer)  # written pages stay in the page cache, not in this process
    return memoryview(buffer)


def _put(flat: np.ndarray, offsets: np.ndarray, values: np.ndarray) -> None:
    """Write each row of ``values`` (its bytes) at its offset in ``flat``."""
    raw = np.ascontiguousarray(values).view(np.uint8).reshape(len(offsets), -1)
    flat[offsets[:, None] + np.arange(raw.shape[1])] = raw


def _crc(rows: memoryview, start: int, end: int, value: int = 0) -> int:
    """CRC-32 of ``rows[start:end]`` (continuing ``value``), the pages read then dropped."""
    crc = zlib.crc32(rows[start:end], value)
    drop_pages(rows.obj, start, end)
    return crc


def drop_pages(buffer: Any, start: int = 0, end: int | None = None) -> None:
    """Unmap the pages of ``[start, end)`` of a map of a scratch file from this process
    (they stay in the page cache and fault back unchanged): a pass over hundreds of MB of
    rows does not hold them all resident. Nothing for a buffer in memory."""
    if not isinstance(buffer, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED"):
        return
    end = len(buffer) if end is None else min(end, len(buffer))
    start -= start % mmap.PAGESIZE
    if end > start:
        buffer.madvise(mmap.MADV_DONTNEED, start, end - start)


def scratch_map(length: int, scratch_dir: str) -> Any:
    """``length`` writable zero bytes: a map of a scratch file unlinked at once (its pages
    go to the disk, not the heap), in memory without scratch space."""
    try:
        fd, path = tempfile.mkstemp(prefix="lists-", suffix=".tmp", dir=scratch_dir)
    except OSError:
        return bytearray(length)
    try:
        if length:
            os.ftruncate(fd, length)
            return mmap.mmap(fd, length)
        return bytearray(0)
    finally:
        os.close(fd)
        os.unlink(path)


def lists_blob(rows: Any, starts: np.ndarray, sizes: np.ndarray, centroids: np.ndarray,
               *, metric: str, dim: int, covered: int, meta: dict[str, Any]) -> ListsBlob:
    """The segment of ``rows`` (list after list: list ``j`` is ``sizes[j]`` rows from row
    ``starts[j]``) with ``centroids``; ``meta``: the TOC fields besides ``covered``,
    ``count`` and ``nlist``."""
    width = row_bytes(dim)
    rows = memoryview(rows)
    crcs = [_crc(rows, s * width, (s + n) * width) for s, n in zip(
        starts.tolist(), sizes.tolist(), strict=True)]
    directory = b"".join(ENTRY.pack(s, n, c) for s, n, c in zip(
        starts.tolist(), sizes.tolist(), crcs, strict=True))
    cents = np.ascontiguousarray(centroids, "<f4").tobytes()
    count = int(sizes.sum())
    head = pack_header(metric, dim, len(centroids), count, covered,
                       zlib.crc32(cents, zlib.crc32(directory)))
    parts = [head + directory + cents, rows]
    crc = zlib.crc32(parts[0])
    for at in range(0, len(rows), CRC_STEP):
        crc = _crc(rows, at, at + CRC_STEP, crc)
    return ListsBlob(parts, len(parts[0]) + len(rows), crc,
                     {"covered": covered, "count": count, "nlist": len(centroids), **meta})


def _calibrate(chunks: Chunks, queries: np.ndarray, own: np.ndarray, centroids: np.ndarray,
               rows: Any, starts: np.ndarray, sizes: np.ndarray, dim: int, metric: str, goal: float,
               done: Callable[[Any], None] | None) -> tuple[int, float]:
    """(lists to probe, recall@K measured there): the fewest whose recall of the sample
    queries' exact top K (each query, a sample row of gid ``own``, left out) reaches
    ``goal``, ranked as queries rank (:func:`.lists_rank.top_rows`): doubling from 1,
    then bisecting the last doubling to within an eighth."""
    truth = _exact_top(chunks, queries, own, metric, done)
    mine = own.tolist()
    width = row_bytes(dim)
    columns = [list_arrays(rows[s * width : (s + n) * width], n, dim)
               for s, n in zip(starts.tolist(), sizes.tolist(), strict=True)]
    order = np.argsort(-(queries @ centroids.T), axis=1)
    nlist = len(centroids)

    def recall_at(nprobe: int) -> float:
        found = 0
        for i, query in enumerate(queries):
            picked = [columns[j] for j in order[i, :nprobe].tolist()]
            keep, _ = top_rows(query, picked, DEPTH + 1)
            found += len(set(keep.tolist()) - {mine[i]} & truth[i])
            drop_pages(rows.obj)  # the lists read stay in the page cache only
        return found / (K * len(queries))

    # doubling from 1 to the first that reaches the goal, then halving the gap down
    failed, nprobe = 0, 1
    recall = recall_at(nprobe)
    while recall < goal and nprobe < nlist:
        failed, nprobe = nprobe, min(nlist, nprobe * 2)
        recall = recall_at(nprobe)
    while recall >= goal and nprobe - failed > max(1, nprobe // 8):
        middle = (failed + nprobe) // 2
        got = recall_at(middle)
        if got >= goal:
            nprobe, recall = middle, got
        else:
            failed = middle
    return nprobe, recall


def _exact_top(chunks: Chunks, queries: np.ndarray, own: np.ndarray, metric: str,
               done: Callable[[Any], None] | None) -> list[set[int]]:
    """Per query (a unit sample row of gid ``own[i]``): the gids of its exact top K among
    the other rows."""
    n = len(queries)
    best = np.full((n, K + 1), -np.inf, "<f4")
    best_gids = np.full((n, K + 1), -1, np.int64)
    for vectors, gids, _ in _batches(chunks, done):
        rows = _unit(vectors) if metric == "cosine" else np.asarray(vectors, "<f4")
        scores = np.concatenate([best, queries @ rows.T], axis=1)
        labels = np.concatenate([best_gids, np.broadcast_to(np.asarray(gids), (n, len(gids)))],
                                axis=1)
        top = np.argpartition(-scores, K, axis=1)[:, : K + 1]
        best = np.take_along_axis(scores, top, axis=1)
        best_gids = np.take_along_axis(labels, top, axis=1)
    order = np.argsort(-best, axis=1)
    ranked = np.take_along_axis(best_gids, order, axis=1)
    return [set([g for g in r if g != me][:K]) for r, me in zip(ranked.tolist(), own.tolist(),
                                                                strict=True)]


__all__ = ["KeptLists", "ListsBlob", "build_lists", "drop_pages", "list_arrays", "list_count",
           "lists_blob", "put_column", "scratch_map"]
