"""Ranking the rows of a few cluster lists by their int8 codes: what a query and the
calibration of its number of lists (:mod:`.lists_build`) both do, so that the recall
recorded is the recall a query gets.

The query is quantized to int8 as the rows are (its largest component to 127, rounded
half to even, as :mod:`.numpy_free_lists` does) and each list's codes are scored by
numkong's int8 dot product: about 12 ns a row of 128 codes, half the cost of converting
the codes to float32 first (the numpy fallback, when numkong is missing, which gives the
same integer products). The best are taken as every path takes them
(:func:`.top_scores.best_arrays`), not by a sort of every row scored; of rows tied at the
last place, the lower gids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import kernels
from .top_scores import best_arrays

Columns = tuple[np.ndarray, np.ndarray, np.ndarray]  # gids, scales, codes (rows x dim)


def quantized(query: np.ndarray) -> tuple[np.ndarray, float]:
    """(the query as int8 codes (1, dim), the value of one code step)."""
    peak = float(np.abs(query).max()) or 1.0
    codes = np.clip(np.rint(query * (127.0 / peak)), -127, 127).astype(np.int8)
    return codes.reshape(1, -1), peak / 127.0


def nearest_lists(scores: np.ndarray, probe: int) -> np.ndarray:
    """Per row of centroid ``scores`` (queries x lists), its ``probe`` best lists (in no
    particular order)."""
    if probe >= scores.shape[1]:
        return np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    return np.argpartition(-scores, probe - 1, axis=1)[:, :probe]


def top_rows(query: np.ndarray, lists: Sequence[Columns], depth: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """(gids, approximate scores) of the ``depth`` best rows of ``lists`` for ``query``
    (float32, dim), best first (ties: lower gid first)."""
    lists = [c for c in lists if len(c[0])]
    if not lists:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    gids = np.concatenate([g for g, _, _ in lists]) if len(lists) > 1 else lists[0][0]
    gids, approx = best_arrays(_scores(query, lists), gids, depth)
    return gids[:depth], approx[:depth]


def merged_rows(held: tuple[np.ndarray, np.ndarray], more: tuple[np.ndarray, np.ndarray],
                depth: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``depth`` best of two rankings of :func:`top_rows` over different lists, in its
    order."""
    gids, approx = np.concatenate([held[0], more[0]]), np.concatenate([held[1], more[1]])
    order = np.lexsort((gids, -approx))[:depth]
    return gids[order], approx[order]


def _scores(query: np.ndarray, lists: Sequence[Columns]) -> np.ndarray:
    """Approximate scores of every row of ``lists``, in their order."""
    codes, step = quantized(query)
    nk = kernels.kernel()
    if nk is None:
        floats = codes[0].astype(np.float32)
        dots = [c.astype(np.float32) @ floats for _, _, c in lists]
    else:
        dots = [np.asarray(nk.cdist(codes, c, metric="dot"), np.float32)[0]
                for _, _, c in lists]
    parts = [s * d for (_, s, _), d in zip(lists, dots, strict=True)]
    return (np.concatenate(parts) if len(parts) > 1 else parts[0]) * np.float32(step)


__all__ = ["Columns", "merged_rows", "nearest_lists", "quantized", "top_rows"]
