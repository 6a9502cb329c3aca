"""Vector search with the HNSW library over the file's graph, opened once per snapshot.

The graph covers gids below ``covered``; newer vectors (later commits, the WAL delta) are
scored exactly and merged. Candidates of a quantized graph (f16, i8) are rescored with
their stored float32 vectors, so every score equals the exact path's. Candidates failing
visibility or the filter are skipped; when the graph cannot supply enough, the search
widens x4, and falls back to the exact path once it would visit the whole graph.

A graph whose bytes fail their checksum is never handed to the library (it could crash the
process): the exact path answers instead, with a warning naming ``mv2 doctor --repair``.

The first round runs for the whole batch in one graph search. The graph opens once,
thread-safely; while a background warmup is loading it (``deferred()``) or another thread is
opening it, a query does not wait: this path cannot serve (None) and the exact path
answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ...config import IndexConfig
from ...engine.format import crc32
from ...engine.snapshot import Snapshot
from ..damage import warn_damaged
from . import scoring
from .exact import ExactScan, pairs
from .hnsw_format import (
    QUANTIZED,
    fetch_graph,
    graph_depth,
    graph_segment,
    holds_graph,
    round_width,
    search_width,
)
from .top_scores import best_arrays

if TYPE_CHECKING:
    from ..acceptance import Acceptance, Ranked
    from ..requests import Request
    from .stored import StoredVectors

WIDEN_TO_SUBSET = 512  # graph candidates after which a filter's admitted versions are scored
WIDE_SUBSET_MAX = 65_536  # admitted versions scored then (about 100 MB of 384-d rows at most)


class HnswSearch:
    """The snapshot's HNSW graph, opened on demand, and searches of it."""

    def __init__(self, snap: Snapshot, config: IndexConfig, cache_root: Callable[[], str],
                 exact: ExactScan, deferred: Callable[[], bool],
                 wide_subset: Callable[[Request, Acceptance], Ranked | None] | None = None
                 ) -> None:
        self.snap = snap
        self.config = config
        self.metric = config.distance
        self.exact = exact
        self._deferred = deferred  # True while a background warmup will open the graph
        self._cache_root = cache_root
        self._graph: tuple[Any, int] | None = None
        self._opened = False
        self._lock = threading.Lock()
        self._stored: StoredVectors | None = None
        self._stored_lock = threading.Lock()
        self.ef_search = 0  # the graph's search width (hnsw_format.search_width), once open
        # the exact top k of the versions a filter admits, when at most WIDE_SUBSET_MAX
        # (None: more): what a filtered query falls back to once the graph has widened
        # past WIDEN_TO_SUBSET candidates and found fewer than a quarter of k that pass
        self.wide_subset = wide_subset

    # ------------------------------------------------------------------- graph

    @property
    def opened(self) -> bool:
        """Whether the graph was opened (or found damaged, or absent)."""
        return self._opened

    def graph(self) -> tuple[Any, int]:
        """The opened graph and the first gid it does not cover; (None, 0) if none.

        While a background warmup is loading the graph this does not wait: (None, 0).
        """
        if self._opened:
            return self._graph or (None, 0)
        if self._deferred() or not self._lock.acquire(blocking=False):
            return None, 0
        self._lock.release()
        return self.open()

    def open(self) -> tuple[Any, int]:
        """Open the graph (once, waiting for another thread opening it)."""
        with self._lock:
            if not self._opened:
                ref = graph_segment(self.snap, self.config)
                if ref is not None and holds_graph(ref):  # else the cluster lists alone
                    from .hnsw import AnnParams, get_backend

                    meta = ref.meta
                    backend = get_backend(meta["backend"])
                    self.ef_search = search_width(ref, self.config)
                    params = AnnParams(M=meta["M"], ef_construction=meta["ef_construction"],
                                       ef_search=self.ef_search,
                                       dtype=meta.get("dtype", "f32"))
                    fetch_graph(self.snap, ref)  # remote: with the columns it places
                    self.snap.view.prefetch(ref.offset, ref.length)  # read ahead, not by page
                    data = self.snap.view.read(ref.offset, ref.length, "segment:ann")
                    if crc32(data) == ref.crc:  # the native library never sees bad bytes
                        index = backend.open(data, dim=self.snap.dim, metric=self.metric,
                                             params=params, scratch_dir=self._cache_root())
                        self._graph = (index, int(meta["covered"]))
                    else:
                        warn_damaged("segment:ann", "the exact scan")
                    # loading walked every node (usearch) or copied the graph (hnswlib):
                    # searches fault back only the pages they visit
                    self.snap.view.release(ref.offset, ref.length)
                self._opened = True  # after _graph: readers never see a half-open graph
        return self._graph or (None, 0)

    def stored(self) -> StoredVectors:
        """Committed vectors gathered by gid (graph candidates to rescore)."""
        if self._stored is None:
            from .stored import StoredVectors

            with self._stored_lock:
                if self._stored is None:
                    self._stored = StoredVectors(self.snap)
        return self._stored

    def close(self) -> None:
        if self._graph is not None:
            self._graph[0].close()
        if self._stored is not None:
            self._stored.close()

    # ------------------------------------------------------------------ search

    def ranked(self, reqs: Sequence[Request], accepts: Sequence[Acceptance]
               ) -> list[Ranked] | None:
        """Accepted (ref, score) best-first per request; None without an opened graph."""
        ann, covered = self.graph()
        if ann is None:
            return None
        kk = graph_depth(max(r.k for r in reqs), ann.dtype)
        first = None
        if kk < ann.count:
            queries = scoring.query_matrix([r.vector for r in reqs])
            first = ann.search(queries, kk, ef=max(self.ef_search, kk), ordered=False)
        return [self._approximate(req, accept, ann, covered, None if first is None else
                                  (first[0][i : i + 1], first[1][i : i + 1], kk))
                for i, (req, accept) in enumerate(zip(reqs, accepts, strict=True))]

    def _tail_scores(self, req: Request, covered: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of the vectors the graph does not cover (none: no table built)."""
        snap = self.snap
        if covered >= snap.toc.next_gid and not any(v.embedding for v in snap.delta):
            return np.empty((1, 0), "<f4"), np.empty(0, "<i8")
        return self.exact.scores([req], covered)

    def _approximate(self, req: Request, accept: Acceptance, ann: Any, covered: int,
                     first: tuple[np.ndarray, np.ndarray, int] | None) -> Ranked:
        query = np.frombuffer(req.vector, "<f4")
        tail_scores, tail_gids = self._tail_scores(req, covered)
        first_depth = kk = first[2] if first is not None else graph_depth(req.k, ann.dtype)
        while kk < ann.count:
            if first is not None:
                labels, scores, _ = first
                first = None
            else:
                labels, scores = ann.search(query[None, :], kk, ordered=False,
                                            ef=round_width(self.ef_search, kk, first_depth))
            gids, scores = self._graph_hits(ann, labels[0], scores[0], query)
            if len(tail_gids):
                more_gids, more_scores = best_arrays(tail_scores[0], tail_gids, kk)
                gids = np.concatenate([gids, more_gids])
                scores = np.concatenate([scores, more_scores])
            order = np.lexsort((gids, -scores))  # score descending, ties by gid
            ranked = accept.take(pairs(gids[order], scores[order]), req.k)
            if len(ranked) >= req.k:
                return ranked
            if (kk <= WIDEN_TO_SUBSET < 4 * kk and 4 * len(ranked) < req.k
                    and self.wide_subset is not None):
                found = self.wide_subset(req, accept)  # a filter the graph finds rarely
                if found is not None:
                    return found
            kk *= 4
        return self.exact.ranked([req], [accept])[0]

    def first_round(self, vector: Any, k: int) -> tuple[np.ndarray, np.ndarray | None,
                                                       np.ndarray] | None:
        """The first graph round of a query for ``k`` results, unscored, when the graph
        answers alone (opened, covering every committed version, no vector in the WAL
        delta, more vectors than the round asks for): (gids, their float32 rows to rescore
        or None for a float32 graph, whose scores are exact; the graph's scores). None
        otherwise. A fan-out scores every shard's rounds together (sharded/search.py)."""
        ann, covered = self.graph()
        snap = self.snap
        if ann is None or covered < snap.toc.next_gid or any(v.embedding for v in snap.delta):
            return None
        kk = graph_depth(k, ann.dtype)
        if kk >= ann.count:
            return None
        labels, scores = ann.search(np.frombuffer(vector, "<f4")[None, :], kk,
                                    ef=max(self.ef_search, kk), ordered=False)
        return self._candidates(ann, labels[0], scores[0])

    def _candidates(self, ann: Any, labels: np.ndarray, scores: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """One query's graph results without the padding: (gids, their rows to rescore
        for a quantized graph, else None; the graph's scores)."""
        if len(labels) and labels.min() < 0:  # rows short of k are padded with -1
            valid = labels >= 0
            labels, scores = labels[valid], scores[valid]
        rows = self.stored().gather(labels) if ann.dtype in QUANTIZED and len(labels) else None
        return labels, rows, scores

    def _graph_hits(self, ann: Any, labels: np.ndarray, scores: np.ndarray,
                    query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(gids, float32 scores) of one query's graph results, in the graph's order;
        exact scores for a quantized graph."""
        labels, rows, scores = self._candidates(ann, labels, scores)
        if rows is not None:
            scores = scoring.score_block(rows, query[None, :], self.metric)[0]
        return labels, scores.astype("<f4", copy=False)
