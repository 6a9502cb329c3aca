"""Building a commit's vector graph with bounded memory.

The new vectors come straight from the mapped vector blocks, in batches of at most
:data:`BATCH_ROWS` (a copy of one batch at a time, never of them all). A sample of them is
held out (``calibrate.holdout``) until the rest are in, so that ``measure`` (the recall
calibration) can search the graph with queries it has never seen; then they are added
too. A usearch graph (the default backend) is built in memory batch by batch, saved to a
temporary file in the writer's cache directory, its unreachable nodes linked back in
(:mod:`.graph_relink`), and written into the commit from a map of that file, unlinked at
once: the largest thing the build holds is the graph itself. Other backends are given one
matrix.
"""

from __future__ import annotations

import mmap
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ...heap import release_free_heap
from .calibrate import holdout
from .graph_relink import relink
from .hnsw import AnnIndex, AnnParams

T = TypeVar("T")
BATCH_ROWS = 8_192  # vectors added to a graph at a time (a batch and its unit copy: 8 MiB at 128-d)

Chunks = Sequence[tuple[np.ndarray, np.ndarray]]
"""(vectors, labels) pieces in label order: views of vector blocks where possible."""


@dataclass(frozen=True, slots=True)
class GraphBlob:
    """A serialized graph as pieces to write back to back, its length and CRC-32."""

    parts: list[Any]
    length: int
    crc: int


def build_graph(backend: Any, old: Any | None, chunks: Chunks, *, metric: str, dim: int,
                params: AnnParams, scratch_dir: str,
                measure: Callable[[AnnIndex, np.ndarray, np.ndarray], T],
                done: Callable[[np.ndarray], None] | None = None,
                loaded: Callable[[], None] | None = None) -> tuple[GraphBlob, T]:
    """The graph ``old`` (None: a new one) with ``chunks`` added, and what ``measure``
    found searching it with the held-out vectors and their labels before they were added.
    ``done(matrix)`` is called once the stream has moved past a chunk's matrix (its mapped
    pages may go: read again, they come back unchanged), ``loaded()`` once ``old`` has
    been copied into the library, before the first vector is added."""
    picks = holdout(sum(len(gids) for _, gids in chunks))
    held = rows_at(chunks, picks)
    release_free_heap()  # the graph is the largest thing held: not on top of freed memory
    if hasattr(backend, "add_streamed"):
        stream = _after(loaded, batches(_without(chunks, picks, done)))
        graph = backend.add_streamed(old, stream, metric=metric, dim=dim, params=params)
        measured = measure(graph.view, *held)
        graph.add([held])
        return _saved(graph, scratch_dir), measured
    rest = list(_without(chunks, picks))
    matrix = np.concatenate([vectors for vectors, _ in rest])
    labels = np.concatenate([gids for _, gids in rest])
    del rest
    if old is None:
        data = backend.build(matrix, labels, metric=metric, params=params)
    else:
        data = backend.extend(old, matrix, labels, metric=metric, params=params)
    del matrix
    index = backend.open(data, dim=dim, metric=metric, params=params,
                         scratch_dir=scratch_dir)
    try:
        measured = measure(index, *held)
    finally:
        index.close()
    if len(held[1]):
        data = backend.extend(data, *held, metric=metric, params=params)
    return GraphBlob([data], len(data), zlib.crc32(data)), measured


def _after(first: Callable[[], None] | None, items: Iterator[T]) -> Iterator[T]:
    """``items``, calling ``first()`` when the first one is asked for."""
    if first is not None:
        first()
    yield from items


def rows_at(chunks: Chunks, picks: np.ndarray, done: Callable[[np.ndarray], None] | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Copies of the vectors and labels at positions ``picks`` (ascending) of ``chunks``
    laid end to end; ``done(matrix)`` after copying from a chunk (its pages may go)."""
    dim = chunks[0][0].shape[1]
    vectors, labels, start = [np.zeros((0, dim), "<f4")], [np.zeros(0, "<i8")], 0
    for matrix, gids in chunks:
        inside = picks[(picks >= start) & (picks < start + len(gids))] - start
        if len(inside):
            vectors.append(np.asarray(matrix[inside], "<f4"))
            labels.append(np.asarray(gids[inside], "<i8"))
            if done is not None:
                done(matrix)
        start += len(gids)
    return np.concatenate(vectors), np.concatenate(labels)


def _without(chunks: Chunks, picks: np.ndarray,
             done: Callable[[np.ndarray], None] | None = None
             ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``chunks`` without the rows at positions ``picks``, one at a time (a chunk that
    loses rows is copied when its turn comes); ``done(matrix)`` once resumed past one."""
    start = 0
    for matrix, gids in chunks:
        inside = picks[(picks >= start) & (picks < start + len(gids))] - start
        if len(inside):
            keep = np.ones(len(gids), bool)
            keep[inside] = False
            if keep.any():
                yield matrix[keep], gids[keep]
        else:
            yield matrix, gids
        if done is not None:
            done(matrix)
        start += len(gids)


def batches(chunks: Chunks, rows: int = BATCH_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``chunks`` regrouped into batches of about ``rows`` vectors (small pieces joined,
    large ones passed through as they are)."""
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    size = 0
    for vectors, labels in chunks:
        pending.append((vectors, labels))
        size += len(labels)
        if size >= rows:
            yield _joined(pending)
            pending, size = [], 0
    if pending:
        yield _joined(pending)


def _joined(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if len(pieces) == 1:
        return pieces[0]
    return (np.concatenate([v for v, _ in pieces]), np.concatenate([g for _, g in pieces]))


def _saved(graph: Any, scratch_dir: str) -> GraphBlob:
    """The streamed graph's bytes, its unreachable nodes linked back in
    (:mod:`.graph_relink`)."""
    header, payload = _written(graph, scratch_dir)
    release_free_heap()  # the graph's memory, freed by the save
    relink(payload, graph.header.metric)
    return _blob(header, payload)


def _written(graph: Any, scratch_dir: str) -> tuple[bytes, memoryview]:
    """The graph saved (writable): through a mapped temporary file, else in memory."""
    try:
        fd, path = tempfile.mkstemp(prefix="graph-", suffix=".tmp", dir=scratch_dir)
    except OSError:  # no writable scratch space: the payload is held in memory instead
        header, payload = graph.save()
        if payload.readonly:  # usearch saves into a bytearray: relinked in place
            payload = memoryview(bytearray(payload))
        return header, payload
    try:
        os.close(fd)
        header, length = graph.save(path)
        with open(path, "r+b") as fh:
            mapped = mmap.mmap(fh.fileno(), int(length))
    finally:
        os.unlink(path)  # the map keeps the bytes until the commit has written them
    return header, memoryview(mapped)


def _blob(header: bytes, payload: memoryview) -> GraphBlob:
    crc = zlib.crc32(payload, zlib.crc32(header))
    return GraphBlob([header, payload], len(header) + len(payload), crc)
