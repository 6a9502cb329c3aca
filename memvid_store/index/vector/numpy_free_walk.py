"""Graph search without numpy or usearch: walks of the file's usearch int8 graph.

While numpy is not loaded, a file with a usearch int8 graph is walked in place by
:mod:`.graph_walk` (numkong's int8 dot products as distances), its candidates rescored in
float32 with numkong and accepted like any other. The walk cannot serve (None: the next
path answers) without such a graph covering every committed version, without numkong,
while the WAL holds vectors (a writer's snapshot grows; the library path merges them), or
when ``k`` candidates were not accepted among the first ones even after one widening (4x
the candidates at the library's widened width: a filter admitting a fifth of the
versions is served; the library path widens further).

Walks serve until they have cost about what loading numpy and usearch costs
(:data:`WALK_BUDGET_S`), then the library takes over: never more than about twice the
better choice made in hindsight, whether the process answers one query or thousands.
The time spent is this object's state, one per snapshot searcher. Walks also serve,
numpy loaded or not, while a large graph opens for the library in the background
(:mod:`.paths`).
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...config import IndexConfig
from ...engine.snapshot import Snapshot
from ...errors import CorruptFileError
from . import kernels
from .hnsw_format import fetch_graph, graph_depth, graph_segment, round_width, search_width
from .kernels import best_first, round_f32

if TYPE_CHECKING:
    from ..acceptance import Acceptance, Ranked
    from ..requests import Request
    from .graph_walk import Prefetch

# Walks serve until they have cost about what loading numpy and usearch costs (60-90 ms
# here), then the library takes over.
WALK_BUDGET_S = 0.1
WALK_WIDENINGS = 1  # rounds of 4x the candidates a walk tries before leaving it to usearch


class NumpyFreeWalk:
    """Walks of one snapshot's graph, and the time they have cost."""

    def __init__(self, snap: Snapshot, config: IndexConfig) -> None:
        self.snap = snap
        self.config = config
        self.graph: Any = None  # graph_walk.UsearchGraph, or False when it cannot serve
        self.ef_search = 0  # the graph's search width, once opened
        self.seconds = 0.0  # spent walking, against WALK_BUDGET_S
        self._prefetch: Prefetch | None = None  # hints reads of the mapped graph

    def within_budget(self) -> bool:
        return self.seconds < WALK_BUDGET_S

    def walkable(self) -> bool:
        """Whether this snapshot's graph can be walked (a usearch int8 graph covering
        every committed version; numkong)."""
        if self.graph is None:
            self.graph = self._open() or False
        return bool(self.graph)

    def ranked(self, reqs: Sequence[Request], accepts: Sequence[Acceptance]
               ) -> list[Ranked] | None:
        """Accepted (ref, score) best-first per request, or None when the walk cannot
        serve one of them."""
        if not self.walkable():
            return None
        started = time.perf_counter()
        try:
            out = []
            for req, accept in zip(reqs, accepts, strict=True):
                ranked = self._ranked(req, accept)
                if ranked is None:
                    return None
                out.append(ranked)
            return out
        finally:
            self.seconds += time.perf_counter() - started

    def _open(self) -> Any:
        """The walkable graph, or None: no usearch int8 graph, committed versions it does
        not cover, no numkong."""
        from .graph_walk import Unsupported, UsearchGraph

        snap = self.snap
        ref = graph_segment(snap, self.config)
        if (ref is None or kernels.kernel() is None or ref.meta.get("backend") != "usearch"
                or ref.meta.get("dtype") != "i8" or self.config.distance != "cosine"
                or int(ref.meta["covered"]) < snap.toc.next_gid):
            return None
        self.ef_search = search_width(ref, self.config)
        view = snap.view
        if getattr(view, "mmapped", False) and view.prefetching:  # remote: fetched whole

            def prefetch(spans: list[tuple[int, int]]) -> None:
                for offset, size in spans:
                    view.prefetch(ref.offset + offset, size)

            self._prefetch = prefetch
        fetch_graph(snap, ref)
        try:
            return UsearchGraph(snap.view.read(ref.offset, ref.length, "segment:ann"),
                                snap.dim or 0)
        except Unsupported:
            return None

    def _ranked(self, req: Request, accept: Acceptance) -> Ranked | None:
        from .graph_walk import Unsupported

        if any(v.embedding for v in self.snap.delta):
            return None
        nk = kernels.kernel()
        first = depth = graph_depth(req.k, "i8")
        for _ in range(WALK_WIDENINGS + 1):
            try:
                keys = self.graph.search(nk.dot, req.vector, depth,
                                         round_width(self.ef_search, depth, first),
                                         self._prefetch)
            except Unsupported:
                self.graph = False
                return None
            scored = rescored(self.snap, nk, "cosine", req.vector, keys)
            ranked = accept.take([(g, s) for s, g in scored], req.k)
            if len(ranked) >= req.k or len(keys) >= self.graph.count:
                return ranked
            depth *= 4
        return None


def rescored(snap: Snapshot, nk: Any, metric: str, query: array, gids: list[int],
             region: str = "segment:ann") -> list[tuple[float, int]]:
    """(exact score, gid) of committed versions ``gids``, best first, from their stored
    float32 rows (fetched together first): the cosine of ``query`` (unit) or the inner
    product, float32-rounded as the numpy paths score. ``region``: the index that proposed
    them, named when one has no vector."""
    snap.fetch_vectors(gids)
    out = []
    for gid in gids:
        ref = snap.locate(gid)
        view = ref.run.vector_view(ref.row) if ref.run is not None else None
        if view is None:
            raise CorruptFileError("a vector index refers to a version without a vector",
                                   region)
        row = view.cast("f")
        score = nk.dot(query, row)
        if metric == "cosine":
            norm = math.sqrt(nk.dot(row, row))
            score = score / norm if norm > 0 else 0.0
        out.append((round_f32([score])[0], gid))
    return sorted(out, key=best_first)
