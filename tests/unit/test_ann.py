"""HNSW backends: recall and scores against exact search, serialization, mmap views, extend."""

from __future__ import annotations

import mmap
import os
import sys
import threading
import types

import numpy as np
import pytest

from memvid_store.errors import (
    ClosedError,
    CorruptFileError,
    DimensionMismatchError,
    MissingDependencyError,
)
from memvid_store.index.vector import hnsw as ann
from memvid_store.index.vector.hnsw import AnnBackend, AnnIndex, AnnParams, get_backend
from memvid_store.index.vector.scoring import METRICS, prepare_queries, score_block, top_k

N, DIM, NQ = 5000, 32, 100
CONFIGS = [("hnswlib", "f32"), ("usearch", "f32"), ("usearch", "f16")]


def clustered(n: int, dim: int, seed: int = 0, clusters: int = 30) -> np.ndarray:
    """Overlapping Gaussian clusters; every call with one seed draws from the same clusters."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim))
    which = rng.integers(0, clusters, n)
    return (centers[which] + 0.8 * rng.standard_normal((n, dim))).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    points = clustered(N + NQ, DIM)
    gids = np.random.default_rng(7).permutation(10 * N)[:N].astype(np.int64) * 3 + 5
    return points[:N], gids, points[N:]  # held-out queries from the same clusters


@pytest.fixture(scope="module")
def blobs(data) -> dict[tuple[str, str, str], bytes]:
    """Lazily built graphs, shared by the tests of this module."""
    vectors, gids, _ = data

    class Lazy(dict):
        def __missing__(self, key: tuple[str, str, str]) -> bytes:
            backend, dtype, metric = key
            blob = get_backend(backend).build(vectors, gids, metric=metric,
                                              params=AnnParams(dtype=dtype))
            self[key] = blob
            return blob

    return Lazy()


def exact(vectors: np.ndarray, gids: np.ndarray, queries: np.ndarray, metric: str,
          k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = score_block(vectors, queries, metric)
    idx, _ = top_k(scores, k, gids)
    return gids[idx], scores


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / k
                          for f, t in zip(found, truth, strict=True)]))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(("backend", "dtype"), CONFIGS)
def test_recall_and_scores_match_exact(data, blobs, backend, dtype, metric):
    vectors, gids, raw_queries = data
    blob = blobs[backend, dtype, metric]
    assert isinstance(blob, bytes)
    index = get_backend(backend).open(blob, dim=DIM, metric=metric,
                                      params=AnnParams(dtype=dtype), scratch_dir="")
    assert isinstance(index, AnnIndex)
    assert (index.backend, index.count, index.dim, index.metric) == (backend, N, DIM, metric)
    queries = prepare_queries(raw_queries, DIM, metric)
    labels, scores = index.search(queries, 10)
    assert labels.shape == scores.shape == (NQ, 10)
    assert labels.dtype == np.int64 and scores.dtype == np.float32
    truth, all_scores = exact(vectors, gids, queries, metric, 10)
    assert recall(labels, truth) >= 0.95
    # scores are the exact scores of the returned labels, best first, ties by label
    column = {int(g): j for j, g in enumerate(gids)}
    want = np.array([[all_scores[i, column[int(g)]] for g in row] for i, row in enumerate(labels)])
    tol = 1e-3 if dtype == "f32" else 2e-2
    assert np.all(np.abs(scores - want) <= tol * np.maximum(1.0, np.abs(want)))
    assert np.all(np.diff(scores, axis=1) <= 0)
    # one query given as a vector, and a wider search width
    one_labels, one_scores = index.search(queries[0], 10, ef=400)
    assert one_labels.shape == one_scores.shape == (1, 10)
    assert recall(one_labels, truth[:1]) >= 0.9
    index.close()
    index.close()  # idempotent
    with pytest.raises(ClosedError):
        index.search(queries, 1)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(("backend", "dtype"), CONFIGS)
def test_k_larger_than_count(backend, dtype, metric):
    vectors = clustered(60, 16, seed=3)
    gids = np.arange(60, dtype=np.int64) * 11 + 1
    impl = get_backend(backend)
    params = AnnParams(dtype=dtype)
    index = impl.open(impl.build(vectors, gids, metric=metric, params=params), dim=16,
                      metric=metric, params=params, scratch_dir="")
    queries = prepare_queries(vectors[:4], 16, metric)
    labels, scores = index.search(queries, 100)
    assert labels.shape == scores.shape == (4, 100)
    for row, row_scores in zip(labels, scores, strict=True):
        assert sorted(row[:60].tolist()) == gids.tolist()
        assert (row[60:] == -1).all() and np.isneginf(row_scores[60:]).all()
        assert np.all(np.diff(row_scores[:60]) <= 0)
    labels, scores = index.search(queries, 0)
    assert labels.shape == scores.shape == (4, 0)
    index.close()


@pytest.mark.parametrize("backend", ["hnswlib", "usearch"])
def test_empty_graph(backend):
    impl = get_backend(backend)
    blob = impl.build(np.zeros((0, 8), np.float32), [], metric="l2")
    index = impl.open(blob, dim=8, metric="l2", scratch_dir="")
    assert index.count == 0
    labels, scores = index.search(np.ones(8, np.float32), 3)
    assert labels.tolist() == [[-1, -1, -1]] and np.isneginf(scores).all()
    grown = impl.extend(blob, np.ones((2, 8)), [5, 6], metric="l2")
    labels, _ = impl.open(grown, dim=8, metric="l2", scratch_dir="").search(np.ones(8), 3)
    assert labels.tolist() == [[5, 6, -1]]


@pytest.mark.parametrize("backend", ["hnswlib", "usearch"])
def test_ties_are_ordered_by_label(backend):
    vectors = clustered(200, 16, seed=4)
    vectors[[10, 20, 30, 40, 50]] = vectors[10]
    gids = np.arange(200, dtype=np.int64) * 2 + 100
    gids[[10, 20, 30, 40, 50]] = [9, 3, 7, 1, 5]
    impl = get_backend(backend)
    index = impl.open(impl.build(vectors, gids, metric="l2"), dim=16, metric="l2",
                      scratch_dir="")
    labels, scores = index.search(vectors[10], 5)
    assert labels.tolist() == [[1, 3, 5, 7, 9]]
    assert np.allclose(scores, 0.0, atol=1e-4)
    # unordered: the same results in the library's order, for a caller that sorts them
    loose, loose_scores = index.search(vectors[10], 5, ordered=False)
    assert sorted(loose[0].tolist()) == [1, 3, 5, 7, 9]
    assert np.allclose(loose_scores, 0.0, atol=1e-4)


@pytest.mark.parametrize(("backend", "dtype", "metric"),
                         [("hnswlib", "f32", "l2"), ("hnswlib", "f32", "cosine"),
                          ("usearch", "f32", "ip"), ("usearch", "f16", "l2")])
def test_extend_adds_vectors_without_rebuilding(data, blobs, backend, dtype, metric):
    vectors, gids, raw_queries = data
    impl = get_backend(backend)
    params = AnnParams(dtype=dtype)
    fresh = clustered(N + 600, DIM)[N + NQ:]  # 500 new vectors from the same clusters
    new_gids = np.arange(500, dtype=np.int64) + 10 ** 9
    grown = impl.extend(blobs[backend, dtype, metric], fresh, new_gids, metric=metric,
                        params=params)
    index = impl.open(grown, dim=DIM, metric=metric, params=params, scratch_dir="")
    assert index.count == N + 500
    all_vectors = np.concatenate([vectors, fresh])
    all_gids = np.concatenate([gids, new_gids])
    queries = prepare_queries(raw_queries, DIM, metric)
    labels, _ = index.search(queries, 10)
    truth, _ = exact(all_vectors, all_gids, queries, metric, 10)
    assert recall(labels, truth) >= 0.95
    assert np.isin(labels, new_gids).any()
    if metric != "ip":  # each new vector is its own nearest neighbour
        own, _ = index.search(prepare_queries(fresh, DIM, metric), 1)
        assert np.mean(own[:, 0] == new_gids) >= 0.98
    with pytest.raises(ValueError, match="already"):
        impl.extend(grown, fresh[:2], new_gids[:2], metric=metric, params=params)
    with pytest.raises(DimensionMismatchError):
        impl.extend(grown, np.ones((1, DIM + 1)), [1], metric=metric, params=params)
    index.close()


@pytest.mark.parametrize("backend", ["hnswlib", "usearch"])
def test_builds_are_deterministic(backend):
    vectors = clustered(1500, 24, seed=5)
    gids = np.arange(1500, dtype=np.int64)[::-1] * 7
    impl = get_backend(backend)
    first = impl.build(vectors, gids, metric="cosine", params=AnnParams())
    assert impl.build(vectors, gids, metric="cosine", params=AnnParams()) == first
    more = clustered(100, 24, seed=6)
    assert (impl.extend(first, more, np.arange(100) + 20000, metric="cosine")
            == impl.extend(first, more, np.arange(100) + 20000, metric="cosine"))


def write_with_junk(path: str, blob: bytes, junk: int) -> None:
    with open(path, "wb") as f:
        f.write(os.urandom(junk))
        f.write(blob)
        f.write(b"trailing bytes of the next segment")


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_usearch_views_an_mmap_slice_without_copying(tmp_path, data, blobs, dtype):
    vectors, gids, _ = data
    blob = blobs["usearch", dtype, "l2"]
    path = str(tmp_path / "graph.bin")
    junk = 1237  # odd offset: no alignment
    write_with_junk(path, blob, junk)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mm)[junk:junk + len(blob)]
    index = get_backend("usearch").open(view, dim=DIM, metric="l2",
                                        params=AnnParams(dtype=dtype), scratch_dir="")
    del view
    target = 7
    labels, scores = index.search(vectors[target], 1)
    assert labels[0, 0] == gids[target]
    # overwrite that vector inside the file: the open index sees the change through the mmap
    typ = np.float32 if dtype == "f32" else np.float16
    stored = vectors[target].astype(typ).tobytes()
    at = blob.find(stored)
    assert at > 0 and blob.find(stored, at + 1) == -1
    moved = (vectors[target] + np.float32(0.25)).astype(typ)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, moved.tobytes(), junk + at)
    finally:
        os.close(fd)
    labels, scores = index.search(vectors[target], 1)
    assert labels[0, 0] == gids[target]
    assert scores[0, 0] == pytest.approx(-0.25 ** 2 * DIM, rel=2e-2)
    # the index keeps the buffer exported: the mmap cannot be closed under it
    with pytest.raises(BufferError):
        mm.close()
    index.close()
    mm.close()


def test_hnswlib_opens_an_mmap_slice(tmp_path, data, blobs):
    vectors, gids, _ = data
    blob = blobs["hnswlib", "f32", "cosine"]
    path = str(tmp_path / "graph.bin")
    write_with_junk(path, blob, 999)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    index = get_backend("hnswlib").open(memoryview(mm)[999:999 + len(blob)], dim=DIM,
                                        metric="cosine", scratch_dir=str(tmp_path))
    mm.close()  # hnswlib holds its own copy
    assert os.listdir(tmp_path) == ["graph.bin"]  # no scratch file
    labels, scores = index.search(prepare_queries(vectors[:5], DIM, "cosine"), 3)
    assert labels[:, 0].tolist() == gids[:5].tolist()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    index.close()


def test_concurrent_searches_agree(data, blobs):
    _, _, raw_queries = data
    queries = prepare_queries(raw_queries[:20], DIM, "l2")
    for backend, dtype in CONFIGS[:2]:
        index = get_backend(backend).open(blobs[backend, dtype, "l2"], dim=DIM, metric="l2",
                                          scratch_dir="")
        expected = {ef: index.search(queries, 10, ef=ef)[0] for ef in (20, 200)}
        errors: list[BaseException] = []

        def worker(ef: int, index=index, expected=expected, errors=errors) -> None:
            try:
                for _ in range(10):
                    assert np.array_equal(index.search(queries, 10, ef=ef)[0], expected[ef])
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(ef,)) for ef in (20, 200, 20, 200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        index.close()


def test_hnswlib_partial_results_are_padded():
    class Partial:  # reaches only 3 vectors, like a graph with unreachable nodes
        def set_ef(self, ef: int) -> None:
            pass

        def knn_query(self, q: np.ndarray, k: int, num_threads: int):
            if k > 3:
                raise RuntimeError("Cannot return the results in a contiguous 2D array")
            labels = np.array([[30, 10, 20][:k]] * q.shape[0], dtype=np.uint64)
            return labels, np.full(labels.shape, 0.5, np.float32)

    header = ann.GraphHeader("hnswlib", "l2", "f32", 4, 10, 16, 200, 0, memoryview(b""))
    index = ann._HnswlibIndex(header, AnnParams(), Partial())
    labels, scores = index.search(np.ones((2, 4), np.float32), 6)
    assert labels.tolist() == [[10, 20, 30, -1, -1, -1]] * 2
    assert np.allclose(scores[:, :3], -0.5) and np.isneginf(scores[:, 3:]).all()


def test_open_rejects_mismatches_and_damage(blobs):
    blob = blobs["hnswlib", "f32", "l2"]
    hnsw, usearch = get_backend("hnswlib"), get_backend("usearch")
    with pytest.raises(CorruptFileError, match="metric"):
        hnsw.open(blob, dim=DIM, metric="cosine", scratch_dir="")
    with pytest.raises(CorruptFileError, match="dimensions"):
        hnsw.open(blob, dim=DIM + 1, metric="l2", scratch_dir="")
    with pytest.raises(CorruptFileError, match="built by 'hnswlib'"):
        usearch.open(blob, dim=DIM, metric="l2", scratch_dir="")
    with pytest.raises(CorruptFileError, match="magic"):
        hnsw.open(b"X" + blob[1:], dim=DIM, metric="l2", scratch_dir="")
    for cut in (10, len(blob) - 1):
        with pytest.raises(CorruptFileError):
            hnsw.open(blob[:cut], dim=DIM, metric="l2", scratch_dir="")
    damaged = bytearray(blobs["usearch", "f32", "l2"])
    damaged[64:72] = b"\xff" * 8  # usearch's own header
    with pytest.raises(CorruptFileError):
        usearch.open(bytes(damaged), dim=DIM, metric="l2", scratch_dir="")


def test_int8_graph_finds_candidates_that_rescore_to_the_exact_top(data):
    """An i8 graph's own order is coarse; its 40 best candidates, rescored, are the top 10."""
    vectors, gids, raw_queries = data
    usearch = get_backend("usearch")
    params = AnnParams(dtype="i8")
    scaled = vectors * np.float32(1000.0)  # cosine ignores scale: i8 stores unit rows
    index = usearch.open(usearch.build(scaled, gids, metric="cosine", params=params),
                         dim=DIM, metric="cosine", params=params, scratch_dir="")
    assert index.dtype == "i8" and index.count == N
    queries = prepare_queries(raw_queries, DIM, "cosine")
    labels, _ = index.search(queries, 40)
    column = {int(g): j for j, g in enumerate(gids)}
    all_scores = score_block(vectors, queries, "cosine")
    rescored = np.array([[all_scores[i, column[int(g)]] for g in row]
                         for i, row in enumerate(labels)])
    top = np.take_along_axis(labels, np.argsort(-rescored, axis=1)[:, :10], axis=1)
    truth, _ = exact(vectors, gids, queries, "cosine", 10)
    assert recall(top, truth) >= 0.95
    fresh = clustered(N + 600, DIM)[N + NQ:]
    grown = usearch.extend(usearch.build(scaled, gids, metric="cosine", params=params), fresh,
                           np.arange(500) + 10 ** 9, metric="cosine", params=params)
    bigger = usearch.open(grown, dim=DIM, metric="cosine", params=params, scratch_dir="")
    own, _ = bigger.search(prepare_queries(fresh, DIM, "cosine"), 1)
    assert np.mean(own[:, 0] == np.arange(500) + 10 ** 9) >= 0.9


def test_argument_errors():
    vectors = clustered(20, 8, seed=8)
    hnsw, usearch = get_backend("hnswlib"), get_backend("usearch")
    with pytest.raises(ValueError, match="float32"):
        hnsw.build(vectors, np.arange(20), metric="l2", params=AnnParams(dtype="f16"))
    for labels in (np.zeros(20, np.int64), np.arange(20) - 1, np.arange(19)):
        with pytest.raises(ValueError):
            usearch.build(vectors, labels, metric="l2")
    with pytest.raises(TypeError):
        usearch.build(vectors, np.arange(20) * 0.5, metric="l2")
    with pytest.raises(ValueError, match="NaN"):
        usearch.build(np.full((2, 8), np.nan), [1, 2], metric="l2")
    with pytest.raises(ValueError, match="metric"):
        hnsw.build(vectors, np.arange(20), metric="dot")
    index = usearch.open(usearch.build(vectors, np.arange(20), metric="ip"), dim=8, metric="ip",
                         scratch_dir="")
    with pytest.raises(DimensionMismatchError):
        index.search(np.ones((1, 9), np.float32), 3)
    with pytest.raises(ValueError):
        index.search(np.ones((1, 8), np.float32), -1)
    with pytest.raises(ValueError):
        index.search(np.ones((1, 8), np.float32), 1, ef=0)
    with pytest.raises(ValueError, match="cosine"):
        usearch.build(vectors, np.arange(20), metric="ip", params=AnnParams(dtype="i8"))
    for bad in ({"M": 1}, {"ef_search": 0}, {"dtype": "u8"}, {"build_threads": -1}):
        with pytest.raises(ValueError):
            AnnParams(**bad)


def test_get_backend(monkeypatch):
    for name in ("hnswlib", "usearch"):
        backend = get_backend(name)
        assert isinstance(backend, AnnBackend) and backend.name == name
    assert set(ann.BACKENDS) == {"hnswlib", "usearch"}
    with pytest.raises(ValueError, match="'hnswlib', 'usearch'"):
        get_backend("faiss")
    monkeypatch.setitem(sys.modules, "hnswlib", None)
    with pytest.raises(MissingDependencyError, match="pip install hnswlib"):
        get_backend("hnswlib")
    with pytest.raises(MissingDependencyError, match="pip install hnswlib"):
        ann.BACKENDS["hnswlib"].build(np.ones((1, 4)), [1], metric="l2")
    monkeypatch.setitem(sys.modules, "usearch.index", None)
    with pytest.raises(MissingDependencyError, match="pip install usearch"):
        get_backend("usearch")


def test_usearch_short_result_rows_are_padded():
    class Short:  # usearch fills missing slots with key 0 and reports per-row counts
        expansion_search = 96

        def search(self, q: np.ndarray, k: int, threads: int):
            keys = np.zeros((q.shape[0], k), np.uint64)
            keys[:, :2] = [40, 30]
            dist = np.full((q.shape[0], k), np.nan, np.float32)
            dist[:, :2] = [0.25, 0.5]
            return types.SimpleNamespace(keys=keys, distances=dist,
                                         counts=np.full(q.shape[0], 2))

    header = ann.GraphHeader("usearch", "cosine", "f32", 4, 10, 16, 200, 0, memoryview(b""))
    index = ann._UsearchIndex(header, AnnParams(), Short(), memoryview(b""))
    labels, scores = index.search(np.ones((3, 4), np.float32), 4)
    assert labels.tolist() == [[40, 30, -1, -1]] * 3
    assert np.allclose(scores[:, :2], [0.75, 0.5]) and np.isneginf(scores[:, 2:]).all()
