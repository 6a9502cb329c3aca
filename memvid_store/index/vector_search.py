"""Vector search for a batch of requests: HNSW when the snapshot has a graph, else exact.

Exact: one matrix product per vector block for the whole batch, visibility and the
event-time window applied as a mask, candidates taken best-first (argpartition, growing)
until enough pass the metadata filter.

HNSW: the graph covers gids below ``covered``; newer vectors (later commits, the WAL
delta) are scored exactly and merged. Candidates of a quantized graph (f16, i8) are
rescored with their stored float32 vectors, so every score equals the exact path's.
Candidates failing visibility or the filter are skipped; when the graph cannot supply
enough, the search widens x4, and falls back to the exact path once it would visit the
whole graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import vec
from .ann_format import QUANTIZED, graph_depth

if TYPE_CHECKING:
    from ..engine.snapshot import RowRef
    from .searcher import Request, Searcher

QUERY_CHUNK = 64


class VectorSearch:
    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher
        self.metric = searcher.config.distance

    def run(self, reqs: list[Request]) -> list[list[tuple[RowRef, float]]]:
        ann, covered = self.searcher.ann()
        if ann is None:
            return self._exact(reqs, min_gid=0)
        # first round for the whole batch in one graph search; widen per request if needed
        kk = graph_depth(max(r.k for r in reqs), ann.dtype)
        first = None
        if kk < ann.count:
            queries = np.stack([r.vector for r in reqs]).astype("<f4", copy=False)
            first = ann.search(queries, kk, ef=max(self.searcher.config.ann_ef_search, kk))
        return [self._approximate(req, ann, covered, None if first is None else
                                  (first[0][i : i + 1], first[1][i : i + 1], kk))
                for i, req in enumerate(reqs)]

    # ------------------------------------------------------------------- exact

    def _scores(self, reqs: list[Request], min_gid: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores (nq, N) with -inf for rows a request may not see, gids (N,))."""
        table = self.searcher.table()
        queries = np.stack([r.vector for r in reqs]).astype("<f4", copy=False)
        parts, gids = [], []
        for block in table.blocks:
            if min_gid and block.max_gid < min_gid:
                continue  # entirely covered by the graph
            block.prepare(self.metric, self.searcher.snap.view)
            scores = vec.score_block(block.matrix, queries, self.metric, block.norms)
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

    def _exact(self, reqs: list[Request], min_gid: int) -> list[list[tuple[RowRef, float]]]:
        out: list[list[tuple[RowRef, float]]] = []
        for start in range(0, len(reqs), QUERY_CHUNK):
            chunk = reqs[start : start + QUERY_CHUNK]
            scores, gids = self._scores(chunk, min_gid)
            for i, req in enumerate(chunk):
                out.append(self._take_exact(req, scores[i], gids))
        return out

    def _take_exact(self, req: Request, scores: np.ndarray,
                    gids: np.ndarray) -> list[tuple[RowRef, float]]:
        accept = self.searcher._acceptor(req, visible_checked=True)
        finite = int(np.isfinite(scores).sum())
        m = min(max(2 * req.k, 32), finite)
        while True:
            cands = best(scores, gids, m)
            ranked = self.searcher._take(cands, req.k, accept)
            if len(ranked) >= req.k or m >= finite:
                return ranked
            m = min(4 * m, finite)

    # ------------------------------------------------------------- approximate

    def _tail_scores(self, req: Request, covered: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of the vectors the graph does not cover (none: no table built)."""
        snap = self.searcher.snap
        if covered >= snap.toc.next_gid and not any(v.embedding for v in snap.delta):
            return np.empty((1, 0), "<f4"), np.empty(0, "<i8")
        return self._scores([req], covered)

    def _approximate(self, req: Request, ann, covered: int,
                     first: tuple[np.ndarray, np.ndarray, int] | None
                     ) -> list[tuple[RowRef, float]]:
        accept = self.searcher._acceptor(req)
        query = np.frombuffer(req.vector, "<f4")
        tail_scores, tail_gids = self._tail_scores(req, covered)
        kk = first[2] if first is not None else graph_depth(req.k, ann.dtype)
        while kk < ann.count:
            if first is not None:
                labels, scores, _ = first
                first = None
            else:
                labels, scores = ann.search(query[None, :], kk,
                                            ef=max(self.searcher.config.ann_ef_search, kk))
            found = self._graph_hits(ann, labels[0], scores[0], query)
            found += best(tail_scores[0], tail_gids, kk)
            found.sort(key=lambda gs: (-gs[1], gs[0]))
            ranked = self.searcher._take(found, req.k, accept)
            if len(ranked) >= req.k:
                return ranked
            kk *= 4
        return self._exact([req], min_gid=0)[0]

    def _graph_hits(self, ann, labels: np.ndarray, scores: np.ndarray,
                    query: np.ndarray) -> list[tuple[int, float]]:
        """(gid, score) of one query's graph results; exact scores for a quantized graph."""
        valid = labels >= 0
        labels = labels[valid]
        if ann.dtype in QUANTIZED and len(labels):
            vectors = self.searcher.stored_vectors().gather(labels)
            scores = vec.score_block(vectors, query[None, :], self.metric)[0]
        else:
            scores = scores[valid]
        return list(zip(labels.tolist(), scores.astype(float).tolist(), strict=True))


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
