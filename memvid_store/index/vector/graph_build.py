"""Building a commit's vector graph with bounded memory.

The new vectors come straight from the mapped vector blocks, in batches of at most
:data:`BATCH_ROWS` (a copy of one batch at a time, never of them all). A usearch graph
(the default backend) is built in memory batch by batch, measured while it is there
(``measure``: the recall calibration), saved to a temporary file in the writer's cache
directory and written into the commit from a map of that file, unlinked at once: the
largest thing the build holds is the graph itself. Other backends are given one matrix.
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

from .hnsw import AnnIndex, AnnParams

T = TypeVar("T")
BATCH_ROWS = 32_768  # vectors added to a graph at a time

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
                measure: Callable[[AnnIndex], T]) -> tuple[GraphBlob, T]:
    """The graph ``old`` (None: a new one) with ``chunks`` added, and what ``measure``
    found searching it."""
    if hasattr(backend, "add_streamed"):
        return _streamed(backend, old, chunks, metric=metric, dim=dim, params=params,
                         scratch_dir=scratch_dir, measure=measure)
    matrix = np.concatenate([vectors for vectors, _ in chunks])
    labels = np.concatenate([gids for _, gids in chunks])
    if old is None:
        data = backend.build(matrix, labels, metric=metric, params=params)
    else:
        data = backend.extend(old, matrix, labels, metric=metric, params=params)
    del matrix
    index = backend.open(data, dim=dim, metric=metric, params=params,
                         scratch_dir=scratch_dir)
    try:
        measured = measure(index)
    finally:
        index.close()
    return GraphBlob([data], len(data), zlib.crc32(data)), measured


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


def _streamed(backend: Any, old: Any | None, chunks: Chunks, *, metric: str, dim: int,
              params: AnnParams, scratch_dir: str,
              measure: Callable[[AnnIndex], T]) -> tuple[GraphBlob, T]:
    graph = backend.add_streamed(old, batches(chunks), metric=metric, dim=dim, params=params)
    measured = measure(graph.view)
    try:
        fd, path = tempfile.mkstemp(prefix="graph-", suffix=".tmp", dir=scratch_dir)
    except OSError:  # no writable scratch space: the payload is held in memory instead
        header, payload = graph.save()
        return _blob(header, payload), measured
    try:
        os.close(fd)
        header, length = graph.save(path)
        with open(path, "rb") as fh:
            mapped = mmap.mmap(fh.fileno(), int(length), access=mmap.ACCESS_READ)
    finally:
        os.unlink(path)  # the map keeps the bytes until the commit has written them
    return _blob(header, memoryview(mapped)), measured


def _blob(header: bytes, payload: memoryview) -> GraphBlob:
    crc = zlib.crc32(payload, zlib.crc32(header))
    return GraphBlob([header, payload], len(header) + len(payload), crc)
