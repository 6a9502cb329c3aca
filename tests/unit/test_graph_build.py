"""Graphs built chunk by chunk: valid, complete (held-out queries included once measured),
extendable, saved through a temporary file that never outlives the build, and without a
writable scratch directory too."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest

from memvid_store.errors import InvalidInputError
from memvid_store.index.vector.graph_build import batches, build_graph
from memvid_store.index.vector.hnsw import AnnParams, get_backend
from memvid_store.index.vector.hnsw_format import unpack_graph

DIM = 16


Chunks = list[tuple[np.ndarray, np.ndarray]]


def chunks(n: int, seed: int, start: int = 0, size: int = 700) -> Chunks:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype("<f4")
    gids = np.arange(start, start + n, dtype="<i8")
    return [(x[i : i + size], gids[i : i + size]) for i in range(0, n, size)]


def joined(blob) -> bytes:
    data = b"".join(bytes(p) for p in blob.parts)
    assert len(data) == blob.length and zlib.crc32(data) == blob.crc
    return data


@pytest.mark.parametrize("backend,dtype", [("usearch", "i8"), ("usearch", "f32"),
                                           ("hnswlib", "f32")])
def test_chunks_make_one_complete_graph(tmp_path, backend: str, dtype: str) -> None:
    params = AnnParams(dtype=dtype, build_threads=1)
    first = chunks(3000, 1)
    blob, seen = build_graph(get_backend(backend), None, first, metric="cosine", dim=DIM,
                             params=params, scratch_dir=str(tmp_path),
                             measure=lambda index, queries, labels: (index.count, len(labels)))
    # measured without the held-out sample, which is added after
    assert seen == (3000 - 256, 256) and os.listdir(tmp_path) == []  # no temporary file left
    data = joined(blob)
    assert unpack_graph(data, backend).count == 3000
    more = chunks(1000, 2, start=3000)
    blob2, seen2 = build_graph(get_backend(backend), memoryview(data), more, metric="cosine",
                               dim=DIM, params=params, scratch_dir=str(tmp_path),
                               measure=lambda index, queries, labels: (index.count, len(labels)))
    assert seen2 == (4000 - 250, 250)
    index = get_backend(backend).open(joined(blob2), dim=DIM, metric="cosine", params=params,
                                      scratch_dir=str(tmp_path))
    try:
        vectors = np.concatenate([x for x, _ in first + more])
        labels, _ = index.search(vectors[::97], 40)
        want = np.arange(0, 4000, 97)
        assert (labels == want[:, None]).any(axis=1).mean() > 0.98
    finally:
        index.close()


def test_labels_already_in_the_graph_are_refused(tmp_path) -> None:
    params = AnnParams(build_threads=1)
    blob, _ = build_graph(get_backend("usearch"), None, chunks(500, 3), metric="cosine",
                          dim=DIM, params=params, scratch_dir=str(tmp_path),
                          measure=lambda index, queries, labels: None)
    with pytest.raises(InvalidInputError, match="already in the ANN graph"):
        build_graph(get_backend("usearch"), memoryview(joined(blob)), chunks(10, 4),
                    metric="cosine", dim=DIM, params=params, scratch_dir=str(tmp_path),
                    measure=lambda index, queries, labels: None)


def test_without_scratch_space_the_graph_is_saved_in_memory(tmp_path) -> None:
    blob, _ = build_graph(get_backend("usearch"), None, chunks(500, 5), metric="cosine",
                          dim=DIM, params=AnnParams(build_threads=1),
                          scratch_dir=str(tmp_path / "missing"),
                          measure=lambda index, queries, labels: None)
    assert unpack_graph(joined(blob), "usearch").count == 500


def test_held_out_rows_are_measured_unseen_then_added(tmp_path) -> None:
    pieces = chunks(1000, 8, size=100)
    seen = {}

    def measure(index, queries, labels):
        seen["labels"] = labels
        found, _ = index.search(queries, 1)
        seen["self_found"] = int((found[:, 0] == labels).sum())
        vectors = np.concatenate([x for x, _ in pieces])
        assert np.array_equal(queries, vectors[labels])

    blob, _ = build_graph(get_backend("usearch"), None, pieces, metric="cosine", dim=DIM,
                          params=AnnParams(dtype="f32", build_threads=1),
                          scratch_dir=str(tmp_path), measure=measure)
    assert len(seen["labels"]) == 250 and seen["self_found"] == 0  # not in the graph yet
    assert unpack_graph(joined(blob), "usearch").count == 1000


def test_batches_keep_order_and_join_small_pieces() -> None:
    pieces = chunks(23, 6, size=3)
    got = list(batches(pieces, rows=7))
    assert [len(g) for _, g in got] == [9, 9, 5]
    assert np.concatenate([g for _, g in got]).tolist() == list(range(23))
    big = chunks(50, 7, size=50)
    assert next(batches(big, rows=7))[0] is big[0][0]  # large pieces pass through
