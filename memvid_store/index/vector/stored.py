"""A snapshot's vectors as numpy blocks, with what visibility checks need per row.

Blocks are zero-copy views of the vector blocks in the mapped file (one per commit that
added vectors) plus one block for the WAL delta. Visibility per row is vectorized:
``valid_from <= T < valid_to`` with ``valid_to`` taken from the run, the supersession
lists of newer runs and the delta.

A full scan of a file without a graph scores :meth:`VectorTable.joined`: the run blocks as
one contiguous block, so a query is one matrix product. When the blocks lie end to end in
a mapped file it is a view of the map; otherwise the rows are copied once into one array
held with the table (``rows x dim x 4`` bytes: 154 MB for 100k x 384) and the run blocks
become views of it.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from ...engine.format import NO_ROW, TIME_MAX
from ...engine.records import Version
from ...engine.runs import RunReader
from ...engine.snapshot import Snapshot
from ...errors import ChecksumError, CorruptFileError
from . import graph_walk

NO_VECTOR, OUTSIDE = -1, -2  # a gid's vector position: it has none; its row is damaged
# a gather of many mapped rows reads PROBE_ROWS first; slower than SLOW_READ_S a row (the
# walk's rule: from disk), the rest are hinted to the kernel before they are read
PROBE_ROWS = 16
# rows of a mapped file checked one by one, after which a thread checks the blocks whole
# (the handle is serving many queries: each would otherwise check its new rows itself)
ROWS_BEFORE_SWEEP = 8192


@dataclass(slots=True)
class Block:
    matrix: np.ndarray  # (n, dim) float32
    gids: np.ndarray  # (n,) int64
    valid_from: np.ndarray  # (n,) int64
    valid_to: np.ndarray  # (n,) int64, supersessions applied
    created: np.ndarray  # (n,) int64
    norms: np.ndarray | None = None
    scales: np.ndarray | None = None  # cosine: inverse_norms(norms), kept for every scan
    max_gid: int = -1
    region: tuple[int, int] | None = None  # (offset, length) in the file, for read-ahead
    span: tuple[int, int] | None = None  # (offset, length) in the file (kept after read-ahead)
    current: Any = None  # (changes, mask(None, None)) once computed; see changed()
    changes: int = 0  # updates of valid_to in place so far

    def __post_init__(self) -> None:
        self.max_gid = int(self.gids.max()) if len(self.gids) else -1

    def prepare(self, metric: str, view: Any = None) -> None:
        """Ready the block for a full scan: bulk read-ahead once, row norms for cosine."""
        if self.region is not None and view is not None:
            view.prefetch(*self.region)
            self.region = None
        if metric == "cosine" and self.scales is None:
            from .scoring import inverse_norms, row_norms

            if self.norms is None:
                self.norms = row_norms(self.matrix)
            self.scales = inverse_norms(self.norms)

    def mask(self, at: int | None, time_range: tuple[int | None, int | None] | None,
             min_gid: int = 0) -> np.ndarray | None:
        """Rows visible at ``at`` within ``time_range``; None when every row qualifies."""
        if at is None and time_range is None and not min_gid:  # most queries: kept
            kept, seen = self.current, self.changes  # read before the columns it reflects
            if kept is None or kept[0] != seen:
                kept = self.current = (seen, self._mask(None, None, 0))
            return kept[1]
        return self._mask(at, time_range, min_gid)

    def changed(self) -> None:
        """``valid_to`` was updated in place (call after the update): a mask computed
        before is stale, even one a concurrent query stores after this call."""
        self.changes += 1

    def _mask(self, at: int | None, time_range: tuple[int | None, int | None] | None,
              min_gid: int) -> np.ndarray | None:
        if at is None:
            keep = self.valid_to == TIME_MAX
        else:
            keep = (self.valid_from <= at) & (self.valid_to > at)
        if time_range is not None:
            lo, hi = time_range
            if lo is not None:
                keep &= self.created >= lo
            if hi is not None:
                keep &= self.created < hi
        if min_gid:
            keep &= self.gids >= min_gid
        return None if keep.all() else keep


class VectorTable:
    """Every stored vector of a snapshot (all versions), in blocks."""

    def __init__(self, snap: Snapshot, *, resident: bool = True) -> None:
        """``resident=False``: each block's mapped pages are released once its checksum
        is checked (a one-off pass over every vector, such as a graph build, then reads
        them again a block at a time instead of holding them all)."""
        self.snap = snap
        self._resident = resident
        self.dim = snap.dim or 0
        self._run_blocks: list[Block] = []
        self._versions_seen = -1  # len(snap.delta) the run blocks' valid_to reflect
        self._delta_block: list[Block] = []
        self._joined: Block | None = None
        self.copied_bytes = 0  # vector bytes the joined block holds outside the file's map
        self.refresh()

    def refresh(self) -> None:
        """Follow the writer's growing WAL delta (run blocks keep their cached norms)."""
        snap = self.snap
        if len(snap.delta) == self._versions_seen:
            return
        self.dim = self.dim or snap.dim or 0
        if not self._run_blocks:
            overrides = dict(snap.run_overrides)
            overrides.update(snap.delta_replaced)
            snap.fetch_vector_blocks(("vrow", *_MASK_PARTS))
            self._run_blocks = [b for run in snap.runs
                                for b in _run_blocks(snap, run, overrides, self.dim,
                                                     self._resident)]
        elif snap.delta_replaced:  # committed versions the delta replaced since
            replaced = snap.delta_replaced
            keys = np.fromiter(replaced, "<i8", len(replaced))
            for block in self._run_blocks:
                for j in np.nonzero(np.isin(block.gids, keys))[0]:
                    block.valid_to[j] = min(block.valid_to[j], replaced[int(block.gids[j])])
                block.changed()
            if self._joined is not None:  # its valid_to is the run blocks' (views of it)
                self._joined.changed()
        delta = [v for v in snap.delta if v.embedding]
        self._delta_block = [Block(
            *embedding_rows(delta, self.dim),
            np.array([v.valid_from for v in delta], "<i8"),
            np.array([v.valid_to for v in delta], "<i8"),
            np.array([v.created_at for v in delta], "<i8"),
        )] if delta else []
        self._versions_seen = len(snap.delta)

    @property
    def blocks(self) -> list[Block]:
        return self._run_blocks + self._delta_block

    def joined(self, metric: str) -> list[Block]:
        """The run blocks joined into one block (built on first call), then the delta's."""
        if self._joined is None and self._run_blocks:
            self._joined, copied = _join(self.snap, self._run_blocks, self.dim)
            self.copied_bytes = self._joined.matrix.nbytes if copied else 0
        if self._joined is not None:
            self._joined.prepare(metric, self.snap.view)
        return ([self._joined] if self._joined is not None else []) + self._delta_block

    @property
    def count(self) -> int:
        return sum(len(b.gids) for b in self.blocks)


def embedding_rows(versions: list[Version], dim: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings of ``versions`` (at least one, each with an embedding of ``dim``
    floats) as one float32 matrix, and their gids."""
    return (np.frombuffer(b"".join(v.embedding for v in versions), "<f4")
            .reshape(len(versions), dim), np.array([v.gid for v in versions], "<i8"))


_MASK_PARTS = ("vfrom", "created", "vto")  # what a block's rows are masked by


def _run_blocks(snap: Snapshot, run: RunReader, overrides: dict[int, int],
                dim: int, resident: bool = True) -> list[Block]:
    if not run.header["vblocks"]:
        return []
    vfrom, created = (np.frombuffer(run.part(name), "<i8") for name in _MASK_PARTS[:2])
    # every version current (remote bytes, ``RunReader.deferred``): no row's vto to read
    vto = (np.full(run.n, TIME_MAX, "<i8") if "vto" in run.deferred
           else np.array(run.part("vto"), dtype="<i8"))
    for gid, to in overrides.items():
        if run.base <= gid < run.end:
            vto[gid - run.base] = min(vto[gid - run.base], to)
    return [Block(matrix, (sel + run.base).astype("<i8"), vfrom[sel], vto[sel], created[sel],
                  region=span, span=span)
            for matrix, sel, span in _checked_blocks(snap, run, dim, resident)]


def _checked_blocks(snap: Snapshot, run: RunReader, dim: int, resident: bool
                    ) -> Iterator[tuple[np.ndarray, np.ndarray, tuple[int, int]]]:
    """Each vector block of ``run`` checked against its CRC: ``(matrix, the run rows of
    its vectors, its span in the file)``; ``resident=False`` releases its mapped pages
    once checked."""
    vblocks = run.header["vblocks"]
    if not vblocks:
        return
    vrow = np.frombuffer(run.part("vrow"), "<u4")
    rows = np.nonzero(vrow != NO_ROW)[0]
    rows = rows[np.argsort(vrow[rows], kind="stable")]
    total = sum(count for _, count, _ in vblocks)
    # each vector row is one version's: a row named twice, or past the blocks, would
    # shift every later vector onto another version's gid
    if len(rows) != total or not np.array_equal(vrow[rows], np.arange(total)):
        raise CorruptFileError(f"the vector rows of the run at offset {run.ref.offset} do "
                               f"not match its vector blocks", "segment:run", run.ref.offset)
    start = 0
    for index, (offset, count, _) in enumerate(vblocks):
        span = (offset, count * dim * 4)
        raw = snap.view.read(*span, "segment:vectors")
        run.check_vector_block(index, raw)  # scanned whole: checked whole, once
        if not resident:
            snap.view.release(*span)
        yield np.frombuffer(raw, "<f4").reshape(count, dim), rows[start : start + count], span
        start += count


def graph_blocks(snap: Snapshot) -> list[tuple[np.ndarray, np.ndarray, tuple[int, int] | None]]:
    """Every stored vector of ``snap`` for a graph build, as ``(matrix, gids, span in the
    file or None)``: the run blocks checked and released (a build reads them again a
    block at a time), then the WAL delta's; without the visibility columns a search
    needs (32 bytes a vector)."""
    dim = snap.dim or 0
    snap.fetch_vector_blocks()
    out: list[tuple[np.ndarray, np.ndarray, tuple[int, int] | None]] = [
        (matrix, (sel + run.base).astype("<i8"), span) for run in snap.runs
        for matrix, sel, span in _checked_blocks(snap, run, dim, resident=False)]
    delta = [v for v in snap.delta if v.embedding]
    if delta:
        out.append((*embedding_rows(delta, dim), None))
    return out


def _join(snap: Snapshot, blocks: list[Block], dim: int) -> tuple[Block, bool]:
    """``blocks`` (checked already) as one block, and whether their rows were copied to
    make it; the blocks become views of its arrays, so ``valid_to`` updates reach both."""
    rows = sum(len(b.gids) for b in blocks)
    region = None
    if len(blocks) == 1:
        matrix, copied, region = blocks[0].matrix, False, blocks[0].region
    elif snap.view.mmapped and _end_to_end([b.span for b in blocks]):
        region = (blocks[0].span[0], rows * dim * 4)  # type: ignore[index]
        matrix = np.frombuffer(snap.view.read(*region, "segment:vectors"),
                               "<f4").reshape(rows, dim)
        copied = False
    else:
        for b in blocks:
            b.prepare("ip", snap.view)  # read-ahead of each block before copying it
        matrix, copied = np.concatenate([b.matrix for b in blocks]), True
    joined = Block(matrix, *(np.concatenate([getattr(b, name) for b in blocks])
                             for name in ("gids", "valid_from", "valid_to", "created")),
                   region=region)
    start = 0
    for b in blocks:
        end = start + len(b.gids)
        b.matrix, b.gids = matrix[start:end], joined.gids[start:end]
        b.valid_from, b.valid_to = joined.valid_from[start:end], joined.valid_to[start:end]
        b.created = joined.created[start:end]
        start = end
    return joined, copied


def _end_to_end(spans: list[tuple[int, int] | None]) -> bool:
    """Each (offset, length) span starts where the previous one ends."""
    return None not in spans and all(
        a[0] + a[1] == b[0] for a, b in pairwise(spans))  # type: ignore[index]


class StoredVectors:
    """Committed vectors by gid, gathered from the vector blocks without building the
    whole :class:`VectorTable` (a graph's few candidates, rescored exactly).

    On first use the runs' ``vrow`` columns are resolved into each gid's vector row offset
    in the file and its block (12 bytes per version), bounds checked once, so a gather is
    a few numpy calls.
    A mapped file is viewed as overlapping float32 rows, so reading the rows is one fancy
    index; without mmap each row is read on its own (never whole blocks).
    """

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.dim = snap.dim or 0
        self._rows: np.ndarray | None = None
        view = snap.view
        if view.mmapped and self.dim:
            flat = np.frombuffer(view.read(0, view.length - view.length % 4), "<f4")
            if len(flat) >= self.dim:
                self._rows = np.lib.stride_tricks.as_strided(
                    flat, shape=(len(flat) - self.dim + 1, self.dim), strides=(4, 4),
                    writeable=False)
        self._first_gid = snap.runs[0].base if snap.runs else 0
        vrows, starts, counts, offsets, row_base = [], [], [], [], 0
        self._owners: list[tuple[RunReader, int, int]] = []  # per block: run, index, 1st row
        block_run: list[int] = []  # per block: its run's place in snap.runs
        next_gid = self._first_gid
        for place, run in enumerate(snap.runs):
            if run.base > next_gid:  # gids no run holds
                vrows.append(np.full(run.base - next_gid, -1, "<i8"))
            next_gid = run.end
            vrow = np.frombuffer(run.part("vrow"), "<u4").astype("<i8")
            vrows.append(np.where(vrow == NO_ROW, -1, vrow + row_base))
            first = row_base
            for index, (offset, rows, _) in enumerate(run.header["vblocks"]):
                block_run.append(place)
                starts.append(row_base)
                counts.append(rows)
                offsets.append(offset)
                self._owners.append((run, index, first))
                row_base += rows
        self._starts = np.array(starts, "<i8")
        self._offsets = np.array(offsets, "<i8")
        self._block_run = np.array(block_run, "<i4")
        self._block_done = np.zeros(len(starts), bool)  # blocks checked whole
        self._all_done = not starts  # every block checked whole: gathers check nothing
        self._place(np.concatenate(vrows) if vrows else np.empty(0, "<i8"),
                    np.array(counts, "<i8"))
        self._row_done = np.zeros(len(self._pos), bool)  # per gid: its row matched its CRC
        self._rows_checked = 0  # rows checked one by one so far
        self._sweep_pid = 0  # the process whose thread checks the blocks whole (0: none)
        self._closed = threading.Event()

    def _place(self, vrow: np.ndarray, counts: np.ndarray) -> None:
        """Per gid, once: the file offset of its vector row (``NO_VECTOR`` without one,
        ``OUTSIDE`` when the run's row lies past its blocks or the file) and its block."""
        width, rows = 4 * self.dim, int(counts.sum())
        block_of_row = np.repeat(np.arange(len(counts), dtype="<i4"), counts)
        offset_of_row = (np.repeat(self._offsets - self._starts * width, counts)
                         + np.arange(rows, dtype="<i8") * width)
        has = vrow >= 0
        inside = has & (vrow < rows)
        at = np.where(inside, vrow, 0)
        pos = np.where(inside, offset_of_row[at] if rows else 0, OUTSIDE)
        pos[inside & ((pos + width > self.snap.view.length) | (pos % 4 != 0))] = OUTSIDE
        self._pos = np.where(has, pos, NO_VECTOR)
        self._block = np.where(inside, block_of_row[at] if rows else 0, -1).astype("<i4")

    def with_vectors(self, gids: np.ndarray) -> np.ndarray:
        """The committed ``gids`` that have a vector (unknown gids dropped too)."""
        index = np.asarray(gids, "<i8") - self._first_gid
        known = (index >= 0) & (index < len(self._pos))
        index, gids = index[known], np.asarray(gids, "<i8")[known]
        return gids[self._pos[index] != NO_VECTOR]

    def gather(self, gids: np.ndarray) -> np.ndarray:
        """Float32 rows (len(gids), dim) of committed versions, in ``gids`` order."""
        index = np.asarray(gids, "<i8") - self._first_gid
        if len(index) == 0:
            return np.empty((0, self.dim), "<f4")
        if int(index.min()) < 0 or int(index.max()) >= len(self._pos):
            raise CorruptFileError("an index refers to an unknown version", "segment:ann")
        found = self._pos[index]
        if int(found.min()) < 0:
            if (found == NO_VECTOR).any():
                raise CorruptFileError("the ANN graph refers to a version without a vector",
                                       "segment:ann")
            raise CorruptFileError("a vector row lies outside its blocks", "segment:vectors")
        if self._rows is not None:
            matrix = self._mapped_rows(found)
        else:
            width = 4 * self.dim
            offsets = found.tolist()
            if self.snap.view.batches:
                self.snap.view.fetch([(off, width) for off in offsets], "segment:vectors")
            rows = [self.snap.view.read(off, width, "segment:vectors") for off in offsets]
            matrix = np.frombuffer(b"".join(rows), "<f4").reshape(len(rows), self.dim)
        if not self._all_done:
            self._check(index, self._block[index], found, matrix)
        return matrix

    def _mapped_rows(self, found: np.ndarray) -> np.ndarray:
        """The mapped rows at file offsets ``found``, their pages hinted to the kernel
        first when they come from disk (never read, or reclaimed by the system), so it
        reads them together instead of one fault after another. The first row of a few
        (a query's candidates to rescore), or the first ``PROBE_ROWS`` of many (767 cold
        rows at 1M: see docs/architecture.md), are read first: slower than
        ``SLOW_READ_S`` a row, they came from disk."""
        rows = self._rows
        assert rows is not None
        probe = 1 if len(found) <= 2 * PROBE_ROWS else PROBE_ROWS
        if len(found) > probe:
            started = time.perf_counter()
            _ = rows[found[:probe] >> 2]
            if (time.perf_counter() - started) / probe > graph_walk.SLOW_READ_S:
                view, width = self.snap.view, 4 * self.dim
                for offset in found[probe:].tolist():
                    view.prefetch(offset, width)
        return rows[found >> 2]

    def _check(self, index: np.ndarray, block: np.ndarray, found: np.ndarray,
               matrix: np.ndarray) -> None:
        """Check each gathered row against its checksum, once (``index``: the rows' gids
        less the first; a run written without per-row checksums checks the row's whole
        block). Rows checked before are found by one mask, so a warm query checks only
        the rows it reads for the first time, about 1 us each."""
        fresh = np.flatnonzero(~(self._row_done[index] | self._block_done[block]))
        if not len(fresh):
            return
        blocks = block[fresh]
        vrows = self._starts[blocks] + (found[fresh] - self._offsets[blocks]) // (4 * self.dim)
        owners = self._block_run[blocks]
        for r in np.unique(owners).tolist():
            mine = owners == r
            run, _, first = self._owners[int(blocks[mine][0])]
            if not run.has_vector_checks:
                for b in np.unique(blocks[mine]).tolist():
                    run.check_vector_block(self._owners[b][1])
                    self._block_done[b] = True
                self._all_done = bool(self._block_done.all())
                continue
            item = run.item
            expected = np.fromiter((item("vcrc", v) for v in (vrows[mine] - first).tolist()),
                                   np.int64, int(mine.sum()))
            got = np.fromiter(map(zlib.crc32, matrix[fresh[mine]]), np.int64, len(expected))
            bad = np.flatnonzero(got != expected)
            if len(bad):
                offset = int(found[fresh[mine][bad[0]]])
                raise ChecksumError(f"vector row at offset {offset} fails its checksum",
                                    "segment:vectors", offset)
        self._row_done[index[fresh]] = True
        self._rows_checked += len(fresh)
        if (self._rows_checked >= ROWS_BEFORE_SWEEP and self._rows is not None
                and self._sweep_pid != os.getpid()):
            self._sweep_pid = os.getpid()
            threading.Thread(target=self._sweep, name="memvid-vector-checks",
                             daemon=True).start()

    def _sweep(self) -> None:
        """Check every block not checked yet whole (one CRC per block, about 0.4 us a
        row of 128 dims against 0.6 us for a row alone, with the GIL released), releasing
        its pages after; rows of a block with a damaged row stay checked one by one."""
        width = 4 * self.dim
        for b, (run, index, _) in enumerate(self._owners):
            if self._closed.is_set():
                return
            if self._block_done[b]:
                continue
            offset, rows, _ = run.header["vblocks"][index]
            try:
                run.check_vector_block(index)
            except ChecksumError:
                continue
            except Exception:  # e.g. the handle closed meanwhile: stop
                return
            finally:
                run.view.release(offset, rows * width)  # the map the check read through
            self._block_done[b] = True
        self._all_done = bool(self._block_done.all())

    def close(self) -> None:
        """Stop the thread checking blocks, if any (after the block it is checking)."""
        self._closed.set()
