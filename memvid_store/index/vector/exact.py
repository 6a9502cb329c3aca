"""Exact vector search with numpy: the path that always serves.

In a file without a graph, where this scan is the index, a chunk of up to
``QUERY_CHUNK`` requests is one matrix product over all the committed vectors
(:meth:`~.stored.VectorTable.joined`: one contiguous array per snapshot) and one over a
writer's WAL delta. In a file with a graph it only stands in (the graph's tail beyond
``min_gid``, a warmup still opening the graph, a damaged graph, a filter the graph cannot
serve): its vector blocks are scored one by one, as they lie in the map, so the array of
all vectors is not built for a few queries. Visibility and the event-time window are
applied as a mask, candidates taken best-first (argpartition, growing x4) until enough
pass the metadata filter. Small products run on one BLAS thread (:mod:`.blas_threads`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ...config import IndexConfig
from ...engine.snapshot import Snapshot
from . import scoring
from .hnsw_format import graph_segment
from .stored import Block, VectorTable
from .top_scores import best_arrays

if TYPE_CHECKING:
    from ..acceptance import Acceptance, Ranked
    from ..requests import Request

QUERY_CHUNK = 64


class ExactScan:
    """Every stored vector of one snapshot, scored exactly."""

    def __init__(self, snap: Snapshot, config: IndexConfig) -> None:
        self.snap = snap
        self.metric = config.distance
        self.joins = graph_segment(snap, config) is None  # this scan is the index
        self._table: VectorTable | None = None
        self._table_lock = threading.Lock()

    def table(self) -> VectorTable:
        """The snapshot's vector blocks, refreshed to a writer's current WAL delta."""
        with self._table_lock:
            return self._refreshed()

    def _refreshed(self) -> VectorTable:
        if self._table is None:
            self._table = VectorTable(self.snap)
        self._table.refresh()
        return self._table

    def load(self) -> bool:
        """Ready every block for a full scan; False when there are none."""
        with self._table_lock:
            blocks = self._blocks(self._refreshed(), 0)
        for block in blocks:
            block.prepare(self.metric, self.snap.view)
        return bool(blocks)

    def _blocks(self, table: VectorTable, min_gid: int) -> list[Block]:
        if min_gid:  # the graph covers the rest: the blocks of its tail only
            return [b for b in table.blocks if b.max_gid >= min_gid]
        return table.joined(self.metric) if self.joins else table.blocks

    def ranked(self, reqs: Sequence[Request], accepts: Sequence[Acceptance]) -> list[Ranked]:
        """Accepted (ref, score) best-first per request: ``req.k`` of them when that many
        exist."""
        out: list[Ranked] = []
        for start in range(0, len(reqs), QUERY_CHUNK):
            chunk = reqs[start : start + QUERY_CHUNK]
            scores, gids = self.scores(chunk, 0)
            for i, req in enumerate(chunk):
                out.append(self._take(req, accepts[start + i], scores[i], gids))
        return out

    def scores(self, reqs: Sequence[Request], min_gid: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores (nq, N) with -inf for rows a request may not see or below ``min_gid``,
        gids (N,))."""
        queries = scoring.query_matrix([r.vector for r in reqs])
        with self._table_lock:
            blocks = self._blocks(self._refreshed(), min_gid)
        parts, gids = [], []
        for block in blocks:
            block.prepare(self.metric, self.snap.view)
            scores = scoring.score_block(block.matrix, queries, self.metric, block.norms,
                                         block.scales)
            for i, req in enumerate(reqs):
                keep = block.mask(req.at, req.time_range, min_gid)
                if keep is not None:
                    scores[i, ~keep] = -np.inf
            parts.append(scores)
            gids.append(block.gids)
        if not parts:
            return np.empty((len(reqs), 0), "<f4"), np.empty(0, "<i8")
        if len(parts) == 1:
            return parts[0], gids[0]
        return np.concatenate(parts, axis=1), np.concatenate(gids)

    def _take(self, req: Request, accept: Acceptance, scores: np.ndarray,
              gids: np.ndarray) -> Ranked:
        return take_best(scores, gids, accept, req.k, visible_checked=True)


def take_best(scores: np.ndarray, gids: np.ndarray, accept: Acceptance, k: int, *,
              visible_checked: bool) -> Ranked:
    """The accepted best of scored ``gids``: ``k`` of them when that many pass, looking at
    the best ``max(2k, 32)`` first (``k`` when every version passes) and at four times
    as many each time too few pass (``visible_checked``: the scores of invisible versions
    are already -inf)."""
    m = min(k if accept.every else max(2 * k, 32), len(scores))
    finite = None
    while True:
        ranked = accept.take(best(scores, gids, m), k, visible_checked=visible_checked)
        if len(ranked) >= k:
            return ranked
        if finite is None:
            finite = int(np.isfinite(scores).sum())
        if m >= finite:
            return ranked
        m = min(4 * m, finite)


def best(scores: np.ndarray, gids: np.ndarray, m: int) -> list[tuple[int, float]]:
    """The ``m`` best finite (gid, score) pairs, score descending then gid ascending, with
    every pair tied with the m-th (fewer when fewer are finite)."""
    return pairs(*best_arrays(scores, gids, m))


def pairs(gids: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    """(gid, score) pairs of parallel arrays, as Python ints and floats."""
    return list(zip(gids.tolist(), scores.astype(float).tolist(), strict=True))
