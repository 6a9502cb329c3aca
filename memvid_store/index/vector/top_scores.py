"""The best few of a row of scores: what every vector path takes from its scores.

``best_arrays`` finds the cutoff's value by one partition and its ties by one comparison,
not by an ``argpartition`` of the row: 2.9k scores (a query's cluster lists at 100k rows)
took 38 us to partition by position, 13 us so. From ``POOL_MIN_ROWS`` scores a strided
sample's cutoff first narrows the row to a pool about ``POOL_STRIDE`` times the
candidates (1k scores: 10 us against 20).
"""

from __future__ import annotations

import numpy as np

POOL_STRIDE = 8  # a row's sample for the cutoff: every POOL_STRIDE-th score
POOL_MIN_ROWS = 512  # rows from which the sampled cutoff pays (1k rows: 10 us against 20)


def _pool(scores: np.ndarray, m: int) -> np.ndarray | None:
    """Positions of every score at or above the ``m``-th best of a strided sample of
    ``scores``: a superset of the ``m`` best (the sample's ``m``-th best is at most the
    row's), about ``POOL_STRIDE * m`` of them, found without partitioning the whole row.
    None when the sample's cutoff is not finite or the pool holds fewer than ``m``."""
    sample = scores[::POOL_STRIDE]
    if len(sample) <= m:
        return None
    cutoff = np.partition(sample, len(sample) - m)[len(sample) - m]
    if not np.isfinite(cutoff):
        return None
    pool = (scores >= cutoff).nonzero()[0]
    return pool if len(pool) >= m else None


def _top_positions(scores: np.ndarray, m: int) -> np.ndarray | None:
    """Positions of every score at or above the ``m``-th best (its ties included), when
    those are finite; None otherwise (a NaN or an infinity among them, or fewer than
    ``m`` finite scores): the caller then looks at the finite scores alone. One partition
    for the cutoff's value (NaN sorts last, so a NaN among the best leaves fewer than
    ``m`` at or above it), one comparison for its ties."""
    pool = _pool(scores, m) if len(scores) >= POOL_MIN_ROWS else None
    row = scores if pool is None else scores[pool]
    cutoff = np.partition(row, len(row) - m)[len(row) - m]
    if not np.isfinite(cutoff):
        return None
    idx = (row >= cutoff).nonzero()[0]
    if len(idx) < m or not np.isfinite(row[idx].max()):
        return None
    return idx if pool is None else pool[idx]


def best_arrays(scores: np.ndarray, gids: np.ndarray, m: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`best` as (gids, scores) arrays."""
    if m <= 0 or len(scores) == 0:
        return np.empty(0, "<i8"), np.empty(0, "<f4")
    idx = _top_positions(scores, m) if m < len(scores) else None
    if idx is None:
        idx = np.flatnonzero(np.isfinite(scores))
        if len(idx) > m:
            part = np.argpartition(-scores[idx], m - 1)[:m]
            cutoff = scores[idx[part]].min()
            idx = idx[scores[idx] >= cutoff]
    order = np.lexsort((gids[idx], -scores[idx]))
    idx = idx[order]
    return gids[idx], scores[idx]
