"""Exact vector kernels: scores against naive references, top-k order, query validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memvid_store.errors import DimensionMismatchError
from memvid_store.index.vector.scoring import (
    METRICS,
    check_metric,
    prepare_queries,
    row_norms,
    score_block,
    top_k,
)


def naive_score(x: list[float], q: list[float], metric: str) -> float:
    dot = sum(a * b for a, b in zip(x, q, strict=True))
    if metric == "ip":
        return dot
    if metric == "l2":
        return -sum((a - b) ** 2 for a, b in zip(x, q, strict=True))
    nx = math.sqrt(sum(a * a for a in x))
    nq = math.sqrt(sum(b * b for b in q))
    return 0.0 if nx == 0 else dot / (nx * nq)


def naive_top_k(row: np.ndarray, k: int, tiebreak: np.ndarray) -> list[int]:
    cols = [j for j in range(row.size) if row[j] > -np.inf]
    cols.sort(key=lambda j: (-float(row[j]), int(tiebreak[j])))
    return cols[:k]


@pytest.fixture(scope="module")
def matrix() -> np.ndarray:
    rng = np.random.default_rng(1)
    m = rng.standard_normal((60, 7)).astype(np.float32)
    m[5] = 0.0  # a zero row
    m[9] *= 40.0
    return m


def test_check_metric():
    for metric in METRICS:
        assert check_metric(metric) == metric
    for bad in ("dot", "COSINE", None, 3):
        with pytest.raises(ValueError, match="'cosine', 'ip', 'l2'"):
            check_metric(bad)


@pytest.mark.parametrize("metric", METRICS)
def test_score_block_matches_naive_reference(matrix, metric):
    rng = np.random.default_rng(2)
    raw = rng.standard_normal((4, 7))
    q = prepare_queries(raw, 7, metric)
    got = score_block(matrix, q, metric, row_norms(matrix))
    assert got.dtype == np.float32 and got.shape == (4, 60)
    want = np.array([[naive_score(row.tolist(), query.tolist(), metric) for row in matrix]
                     for query in raw])
    scale = np.maximum(1.0, np.abs(want))
    assert np.all(np.abs(got - want) <= 1e-4 * scale)
    # norms are computed when not given
    assert np.allclose(score_block(matrix, q, metric), got, rtol=1e-6, atol=1e-6)


def test_cosine_zero_row_scores_zero(matrix):
    q = prepare_queries(np.ones(7), 7, "cosine")
    assert score_block(matrix, q, "cosine")[0, 5] == 0.0


def test_l2_self_distance_is_zero_not_positive(matrix):
    q = prepare_queries(matrix[:10], 7, "l2")
    s = score_block(matrix, q, "l2")
    assert (s <= 0).all()
    assert np.allclose(np.diag(s[:, :10]), 0.0, atol=1e-3)


def test_score_block_dimension_and_empty_matrix(matrix):
    q = prepare_queries(np.ones(7), 7, "ip")
    with pytest.raises(DimensionMismatchError):
        score_block(matrix[:, :5], q, "ip")
    for metric in METRICS:
        assert score_block(np.zeros((0, 7), np.float32), q, metric).shape == (1, 0)


def test_row_norms():
    m = np.random.default_rng(3).standard_normal((20, 16)).astype(np.float32)
    m[0] = 0.0
    m[1] *= np.float32(1e-25)  # squared norm underflows float32
    m[2] *= np.float32(1e25)   # squared norm overflows float32
    got = row_norms(m)
    want = np.linalg.norm(m.astype(np.float64), axis=1)
    assert got.dtype == np.float32 and got[0] == 0.0
    assert np.allclose(got, want, rtol=1e-5, atol=0)


def test_top_k_orders_by_score_then_tiebreak():
    rng = np.random.default_rng(4)
    # few distinct values: many ties, also across the k-th position
    scores = rng.integers(0, 6, size=(5, 3000)).astype(np.float32)
    tiebreak = rng.permutation(3000).astype(np.int64) * 7
    for k in (1, 10, 100, 2999, 3000, 5000):
        idx, best = top_k(scores, k, tiebreak)
        assert idx.shape == best.shape == (5, min(k, 3000))
        assert idx.dtype == np.int64 and best.dtype == np.float32
        for i in range(5):
            assert idx[i].tolist() == naive_top_k(scores[i], k, tiebreak)
            assert np.array_equal(best[i], scores[i, idx[i]])


def test_top_k_small_rows_and_default_tiebreak():
    scores = np.array([[0.5, 0.9, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0]], np.float32)
    idx, best = top_k(scores, 3, None)
    assert idx.tolist() == [[1, 0, 2], [0, 1, 2]]
    assert best.tolist() == [[pytest.approx(0.9), 0.5, 0.5], [1.0, 1.0, 1.0]]
    idx, best = top_k(scores, 2, np.array([9, 8, 7, 6]))
    assert idx.tolist() == [[1, 2], [3, 2]]
    idx, _ = top_k(scores[0], 1, None)  # one row given as 1-D
    assert idx.tolist() == [[1]]
    idx, best = top_k(scores, 0, None)
    assert idx.shape == best.shape == (2, 0)
    with pytest.raises(ValueError):
        top_k(scores, -1, None)
    with pytest.raises(ValueError):
        top_k(scores, 1, np.arange(3))


@pytest.mark.parametrize("n", [40, 5000])
def test_top_k_never_returns_masked_columns(n):
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((3, n)).astype(np.float32)
    tiebreak = np.arange(n, dtype=np.int64)
    keep = [7, 11, 13]  # row 0: only three columns selectable
    scores[0, np.setdiff1d(np.arange(n), keep)] = -np.inf
    scores[1, :] = -np.inf  # row 1: nothing selectable
    scores[2, ::2] = -np.inf  # row 2: half masked
    scores[2, 1] = np.nan  # NaN counts as masked
    idx, best = top_k(scores, 10, tiebreak)
    assert idx.shape == (3, 10)
    assert sorted(idx[0, :3].tolist()) == keep
    assert idx[0, 3:].tolist() == [-1] * 7 and np.isneginf(best[0, 3:]).all()
    assert idx[1].tolist() == [-1] * 10 and np.isneginf(best[1]).all()
    assert (idx[2] % 2 == 1).all() and 1 not in idx[2].tolist()
    assert np.isfinite(best[2]).all()
    assert idx[2].tolist() == naive_top_k(np.where(np.isnan(scores[2]), -np.inf, scores[2]),
                                          10, tiebreak)


def test_top_k_all_selectable_when_k_exceeds_finite_count():
    scores = np.array([[3.0, -np.inf, 1.0, 2.0]], np.float32)
    idx, best = top_k(scores, 10, np.array([4, 3, 2, 1]))
    assert idx.tolist() == [[0, 3, 2, -1]]
    assert best[0, :3].tolist() == [3.0, 2.0, 1.0] and best[0, 3] == -np.inf


def test_prepare_queries_shapes_and_copy():
    v = np.arange(1, 5, dtype=np.float32)
    one = prepare_queries(v, 4, "ip")
    assert one.shape == (1, 4) and one.dtype == np.float32 and one.flags.c_contiguous
    assert not np.shares_memory(one, v)
    batch = prepare_queries([[1, 2, 3, 4], (0, 0, 0, 1)], 4, "l2")
    assert batch.shape == (2, 4)
    fortran = np.asfortranarray(np.ones((3, 4), np.float64))
    assert prepare_queries(fortran, 4, "ip").flags.c_contiguous
    zero_ok = prepare_queries([0, 0, 0, 0], 4, "ip")
    assert not zero_ok.any()


def test_prepare_queries_normalises_cosine():
    q = prepare_queries([[3, 4], [1e-30, 0], [1e300, 1e300]], 2, "cosine")
    assert np.allclose(q, [[0.6, 0.8], [1, 0], [2 ** -0.5, 2 ** -0.5]])
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0)


def test_prepare_queries_errors():
    with pytest.raises(DimensionMismatchError) as info:
        prepare_queries([1.0, 2.0, 3.0], 4, "cosine")
    assert info.value.expected == 4 and info.value.got == 3
    assert isinstance(info.value, ValueError)
    with pytest.raises(DimensionMismatchError):
        prepare_queries(np.ones((2, 5)), 4, "ip")
    for bad in ([1.0, float("nan"), 0, 0], [float("inf"), 0, 0, 0]):
        with pytest.raises(ValueError, match="NaN or infinity"):
            prepare_queries(bad, 4, "l2")
    with pytest.raises(ValueError, match="overflow"):
        prepare_queries([1e39, 0, 0, 0], 4, "ip")
    with pytest.raises(ValueError, match="all zeros"):
        prepare_queries([[1, 0, 0, 0], [0, 0, 0, 0]], 4, "cosine")
    for empty in ([], np.zeros((0, 4))):
        with pytest.raises(ValueError, match="empty"):
            prepare_queries(empty, 4, "ip")
    with pytest.raises(ValueError):
        prepare_queries([[1, 2], [1, 2, 3]], 2, "ip")  # ragged
    with pytest.raises(ValueError):
        prepare_queries(np.ones((2, 2, 4)), 4, "ip")
    with pytest.raises(ValueError):
        prepare_queries(["a", "b"], 2, "ip")
    with pytest.raises(ValueError):
        prepare_queries([1, 2], 2, "dot")
