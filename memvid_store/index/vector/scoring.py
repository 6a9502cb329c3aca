"""Exact float32 vector scoring and top-k selection.

Conventions shared by every vector index of the package:

* Scores are float32 and **higher is better**: cosine similarity (``"cosine"``), inner
  product (``"ip"``) or negative squared Euclidean distance (``"l2"``).
* A stored vector of all zeros has cosine similarity 0 with every query (it is orthogonal
  to everything); it stays findable, ranked like any other vector scoring 0. The HNSW
  backends of :mod:`.hnsw` score such a vector 0 as well.
* Ranking is by score descending, then by a caller-given tie-break key ascending (the
  frame gid), so results are deterministic.
* A score of ``-inf`` marks a column the caller masked out; it is never returned.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import DimensionMismatchError, InvalidInputError
from .blas_threads import bounded

__all__ = ["METRICS", "check_metric", "prepare_queries", "row_norms", "score_block", "top_k"]

METRICS: tuple[str, ...] = ("cosine", "ip", "l2")

# Rows of ``top_k`` are selected with argpartition only when a full sort would be much larger.
_PARTITION_MIN_N = 256


def check_metric(metric: object) -> str:
    """Return ``metric`` if it names a supported metric, else raise ValueError."""
    if not isinstance(metric, str) or metric not in METRICS:
        valid = ", ".join(repr(m) for m in METRICS)
        raise InvalidInputError(f"unknown vector metric {metric!r}: use one of {valid}")
    return metric


def prepare_queries(queries: object, dim: int, metric: str) -> np.ndarray:
    """Validate query vectors and return them as a C-contiguous float32 (nq, dim) array.

    ``queries`` is one vector or a batch (list/tuple of vectors or a 2-D array). The
    result never shares memory with the input. Each row is prepared by
    :func:`~.prepare.prepare_vector` (cosine rows L2-normalised), so it
    raises the same errors: DimensionMismatchError (with ``.expected``/``.got``) for a
    wrong dimension, ValueError for an empty query, NaN/inf values or an all-zero cosine
    query.
    """
    from .prepare import prepare_vector

    check_metric(metric)
    try:
        arr = np.array(queries, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            "a query vector must be a sequence of numbers or a batch of equal-length "
            f"vectors ({exc})"
        ) from None
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    elif arr.ndim != 2:
        raise InvalidInputError(
            f"queries must be one vector or a 2-D batch of vectors, got {arr.ndim} dimensions"
        )
    if arr.size == 0:
        raise InvalidInputError("the query is empty: pass at least one non-empty vector")
    rows = b"".join(prepare_vector(row, dim, metric).tobytes() for row in arr)
    return np.frombuffer(rows, "<f4").reshape(arr.shape[0], dim).copy()


_TINY = np.finfo(np.float32).tiny


def query_matrix(vectors: Sequence[object]) -> np.ndarray:
    """Prepared query vectors (``array('f')``, :mod:`.prepare`) as a (nq, dim) float32
    matrix; one query is a view of its vector, not a copy."""
    if len(vectors) == 1:
        return np.frombuffer(vectors[0], "<f4")[None, :]  # type: ignore[call-overload]
    return np.stack([np.frombuffer(v, "<f4") for v in vectors])  # type: ignore[call-overload]


def row_norms(matrix: np.ndarray) -> np.ndarray:
    """Float32 L2 norms of the rows of ``matrix`` (an all-zero row has norm 0).

    Rows whose squared norm over- or underflows float32 are recomputed with scaling,
    so very large or very small (but non-zero) vectors get correct norms.
    """
    m = _as_matrix(matrix)
    sq = np.einsum("ij,ij->i", m, m)
    norms = np.sqrt(sq, dtype=np.float32)
    if len(sq) and sq.min() >= _TINY and sq.max() < np.inf:  # NaN fails both: no row to fix
        return norms
    bad = np.flatnonzero(~np.isfinite(sq) | (sq < _TINY))
    if bad.size:
        rows = m[bad].astype(np.float64)
        scale = np.abs(rows).max(axis=1)
        safe = np.where(scale > 0, scale, 1.0)
        norms[bad] = (scale * np.linalg.norm(rows / safe[:, None], axis=1)).astype(np.float32)
    return norms


def score_block(
    matrix: np.ndarray,
    queries: np.ndarray,
    metric: str,
    norms: np.ndarray | None = None,
    scales: np.ndarray | None = None,
) -> np.ndarray:
    """Scores (nq, n) of ``queries`` (from prepare_queries) against the rows of ``matrix``.

    Higher is better: cosine similarity (rows divided by their norms; all-zero rows score
    0), inner product, or negative squared L2 distance (clamped to <= 0). ``norms`` are
    the rows' L2 norms (row_norms) for cosine and l2; computed when not given. ``scales``:
    :func:`inverse_norms` of them, kept by a caller that scores the same rows again (the
    same scores, without dividing every row's norm per query). One product per call:
    :func:`_products`.
    """
    check_metric(metric)
    m = _as_matrix(matrix)
    q = _as_matrix(queries)
    if q.shape[1] != m.shape[1]:
        raise DimensionMismatchError(
            f"query vectors have {q.shape[1]} dimensions but the matrix has {m.shape[1]}",
            int(m.shape[1]), int(q.shape[1]),
        )
    scores = _products(m, q)
    if metric == "ip" or m.shape[0] == 0:
        return np.ascontiguousarray(scores, dtype=np.float32)
    if metric == "cosine" and scales is not None:
        scores *= scales
        return scores
    if norms is None:
        norms = row_norms(m)
    else:
        norms = np.asarray(norms, dtype=np.float32)
        if norms.shape != (m.shape[0],):
            raise InvalidInputError(f"norms must have shape ({m.shape[0]},), got {norms.shape}")
    if metric == "cosine":
        scores *= inverse_norms(norms)
        return scores
    # l2: -(|q|^2 - 2 q.x + |x|^2); a distance overflowing float32 scores -inf (never returned)
    with np.errstate(over="ignore", invalid="ignore"):
        q_sq = np.einsum("ij,ij->i", q, q)
        scores *= np.float32(2.0)
        scores -= q_sq[:, None]
        scores -= (norms * norms)[None, :]
        np.minimum(scores, np.float32(0.0), out=scores)
    return scores


def inverse_norms(norms: np.ndarray) -> np.ndarray:
    """What a cosine score multiplies a row's inner product by: float32 1 / its norm, 0
    for an all-zero row (which then scores 0)."""
    norms = np.asarray(norms, dtype=np.float32)
    if len(norms) and norms.min() > 0:  # no all-zero row
        return np.float32(1.0) / norms
    with np.errstate(divide="ignore"):
        inv = np.where(norms > 0, np.float32(1.0) / norms, np.float32(0.0))
    return inv.astype(np.float32, copy=False)


def top_k(
    scores: np.ndarray,
    k: int,
    tiebreak: np.ndarray | Sequence[int] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row of ``scores`` (nq, n).

    Returns ``(idx, best)``: int64 column indices and their float32 scores, both of shape
    (nq, min(k, n)), ordered by score descending then ``tiebreak[idx]`` ascending
    (``tiebreak``: one integer per column, e.g. the gid; None means the column index).
    Columns scoring ``-inf`` (masked) or NaN are never returned: a row with fewer
    selectable columns is padded at its end with idx ``-1`` and score ``-inf``.
    A 1-D ``scores`` is treated as one row.
    """
    s = np.asarray(scores, dtype=np.float32)
    if s.ndim == 1:
        s = s.reshape(1, -1)
    if s.ndim != 2:
        raise InvalidInputError(f"scores must be a 1-D or 2-D array, got {s.ndim} dimensions")
    k = int(k)
    if k < 0:
        raise InvalidInputError(f"k must be >= 0, got {k}")
    nq, n = s.shape
    if tiebreak is None:
        tb = np.arange(n, dtype=np.int64)
    else:
        tb = np.asarray(tiebreak)
        if tb.shape != (n,):
            raise InvalidInputError(
                f"tiebreak must have one value per column ({n}), got {tb.shape}")
    kk = min(k, n)
    idx = np.full((nq, kk), -1, dtype=np.int64)
    best = np.full((nq, kk), -np.inf, dtype=np.float32)
    if kk == 0:
        return idx, best
    nan = np.isnan(s)
    if nan.any():
        s = np.where(nan, np.float32(-np.inf), s)
    use_partition = n >= _PARTITION_MIN_N and kk * 4 < n
    for i in range(nq):
        row = s[i]
        if use_partition:
            part = np.argpartition(row, n - kk)
            threshold = row[part[n - kk]]
            # every column tied with the k-th best competes on the tie-break key
            cand = np.flatnonzero(row >= threshold) if threshold > -np.inf else np.arange(n)
        else:
            cand = np.arange(n)
        cand = cand[row[cand] > -np.inf]
        if cand.size == 0:
            continue
        order = np.lexsort((tb[cand], -row[cand]))[:kk]
        chosen = cand[order]
        idx[i, : chosen.size] = chosen
        best[i, : chosen.size] = row[chosen]
    return idx, best


def _products(m: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Inner products (nq, n) of the queries ``q`` (nq, dim) with the rows of ``m``.

    One query is scored by numpy's row-by-row SIMD dot products (``vecdot``), on the
    calling thread, whatever the number of rows: a row's score is then the same bit for
    bit in the exact scan of a whole table, of a block, of a filter's few versions and
    in the rescoring of an index's candidates (one kernel; OpenBLAS's differs in the
    last bits, and faster kernels for some sizes would break that). It runs at faiss's
    speed on one thread, with no BLAS thread to wait for a time slice on a loaded machine
    (docs/architecture.md, *Search*). A batch is one matrix product (BLAS, its threads
    bounded for a small one by :mod:`.blas_threads`), which reuses every row it loads
    for all the queries."""
    if q.shape[0] == 1 and _vecdot is not None:
        return _vecdot(m, q[0])[None, :]
    with bounded(q.shape[0] * m.shape[0] * m.shape[1]):
        return q @ m.T


_vecdot = getattr(np, "vecdot", None)  # numpy >= 2.0


def _as_matrix(a: np.ndarray) -> np.ndarray:
    """``a`` as a 2-D float32 array (no copy when it already is one)."""
    m = np.asarray(a, dtype=np.float32)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    if m.ndim != 2:
        raise InvalidInputError(f"expected a 2-D array of vectors, got {m.ndim} dimensions")
    return m
