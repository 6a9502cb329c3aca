"""Exact vector search with numpy: the path that always serves.

One matrix product per vector block for a chunk of up to ``QUERY_CHUNK`` requests,
visibility and the event-time window applied as a mask, candidates taken best-first
(argpartition, growing x4) until enough pass the metadata filter. The blocks are
:class:`~.stored.VectorTable`'s, built once per snapshot and following a writer's WAL.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ...config import IndexConfig
from ...engine.snapshot import Snapshot
from . import scoring
from .stored import VectorTable

if TYPE_CHECKING:
    from ..acceptance import Acceptance, Ranked
    from ..requests import Request

QUERY_CHUNK = 64


class ExactScan:
    """Every stored vector of one snapshot, scored exactly."""

    def __init__(self, snap: Snapshot, config: IndexConfig) -> None:
        self.snap = snap
        self.metric = config.distance
        self._table: VectorTable | None = None
        self._table_lock = threading.Lock()

    def table(self) -> VectorTable:
        """The snapshot's vector blocks, refreshed to a writer's current WAL delta."""
        with self._table_lock:
            if self._table is None:
                self._table = VectorTable(self.snap)
            self._table.refresh()
            return self._table

    def load(self) -> bool:
        """Ready every block for a full scan; False when there are none."""
        table = self.table()
        for block in table.blocks:
            block.prepare(self.metric, self.snap.view)
        return bool(table.blocks)

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
        table = self.table()
        queries = np.stack([r.vector for r in reqs]).astype("<f4", copy=False)
        parts, gids = [], []
        for block in table.blocks:
            if min_gid and block.max_gid < min_gid:
                continue  # entirely covered by the graph
            block.prepare(self.metric, self.snap.view)
            scores = scoring.score_block(block.matrix, queries, self.metric, block.norms)
            scores = np.array(scores, dtype="<f4", copy=True)
            for i, req in enumerate(reqs):
                keep = block.mask(req.at, req.time_range, min_gid)
                if keep is not None:
                    scores[i, ~keep] = -np.inf
            parts.append(scores)
            gids.append(block.gids)
        if not parts:
            return np.empty((len(reqs), 0), "<f4"), np.empty(0, "<i8")
        return np.concatenate(parts, axis=1), np.concatenate(gids)

    def _take(self, req: Request, accept: Acceptance, scores: np.ndarray,
              gids: np.ndarray) -> Ranked:
        finite = int(np.isfinite(scores).sum())
        m = min(max(2 * req.k, 32), finite)
        while True:
            cands = best(scores, gids, m)
            ranked = accept.take(cands, req.k, visible_checked=True)
            if len(ranked) >= req.k or m >= finite:
                return ranked
            m = min(4 * m, finite)


def best(scores: np.ndarray, gids: np.ndarray, m: int) -> list[tuple[int, float]]:
    """The ``m`` best finite (gid, score) pairs, score descending then gid ascending."""
    finite = np.isfinite(scores)
    if not finite.any() or m <= 0:
        return []
    idx = np.nonzero(finite)[0]
    if len(idx) > m:
        part = np.argpartition(-scores[idx], m - 1)[:m]
        # include every candidate tied with the m-th so the cut never splits a tie
        cutoff = scores[idx[part]].min()
        idx = idx[scores[idx] >= cutoff]
    order = np.lexsort((gids[idx], -scores[idx]))
    idx = idx[order]
    return list(zip(gids[idx].tolist(), scores[idx].astype(float).tolist(), strict=True))
