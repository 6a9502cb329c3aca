"""Exact vector search without numpy, for the first queries of a fresh process.

Importing numpy costs 60-200 ms, more than scanning a small file's vectors. So while
numpy is not loaded, a file without an HNSW graph is searched here: numkong's SIMD
kernels score the mapped vector blocks (buffers, no copy) and the best candidates are
picked in Python, then accepted like any other (visibility, event time, filter). Once
numpy is loaded (by the application or by a graph search), :mod:`.exact` takes over; both
paths give the same hits, their scores agree to float32 rounding.

The WAL's vectors are one more block, joined again only when the delta has grown (a
writer's snapshot grows in place; versions are never removed from it).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...config import IndexConfig
from ...engine.format import NO_ROW
from ...engine.snapshot import Snapshot
from . import kernels
from .kernels import best_first, round_f32

if TYPE_CHECKING:
    from ..acceptance import Acceptance, Ranked
    from ..requests import Request


@dataclass(slots=True)
class _Block:
    matrix: memoryview  # (n, dim) float32
    gids: list[int]
    norms: list[float] | None = None


class NumpyFreeScan:
    """A snapshot's vector blocks as buffers, with their gids and norms, scored with
    numkong (read from the file on the first query)."""

    def __init__(self, snap: Snapshot, config: IndexConfig) -> None:
        self.snap = snap
        self.metric = config.distance
        self.dim = snap.dim or 0
        self._blocks: list[_Block] | None = None
        self._delta: list[_Block] = []
        self._delta_seen = 0

    def ranked(self, reqs: Sequence[Request], accepts: Sequence[Acceptance]
               ) -> list[Ranked] | None:
        """Accepted (ref, score) best-first per request: ``req.k`` of them when that many
        exist; None without numkong."""
        nk = kernels.kernel()
        if nk is None:
            return None
        return [self._ranked(nk, req, accept) for req, accept in zip(reqs, accepts,
                                                                     strict=True)]

    def _ranked(self, nk: Any, req: Request, accept: Acceptance) -> Ranked:
        query = as_matrix(memoryview(req.vector).cast("B"), 1, self.dim)
        scored: list[tuple[float, int]] = []
        for block in self._committed() + self._delta_blocks():
            scored.extend(zip(self._scores(nk, query, block), block.gids, strict=True))
        scored = [(s, g) for s, g in scored if s > -math.inf]
        m = min(max(2 * req.k, 32), len(scored))
        while True:
            best = heapq.nsmallest(m, scored, key=best_first)
            if len(best) < len(scored):  # every candidate tied with the m-th competes on
                cutoff = best[-1][0]  # frame id, as in exact.best
                best = sorted((sg for sg in scored if sg[0] >= cutoff), key=best_first)
            ranked = accept.take([(g, s) for s, g in best], req.k)
            if len(ranked) >= req.k or m >= len(scored):
                return ranked
            m = min(4 * m, len(scored))

    def _committed(self) -> list[_Block]:
        """The runs' vector blocks, viewed in the mapped file once."""
        if self._blocks is None:
            snap, dim, blocks = self.snap, self.dim, []
            snap.fetch_vector_blocks()
            for run in snap.runs:
                vblocks = run.header["vblocks"]
                if not vblocks:
                    continue
                vrow = run.part("vrow")
                order = sorted((v, row) for row, v in enumerate(vrow) if v != NO_ROW)
                start = 0
                for index, (offset, count, _) in enumerate(vblocks):
                    raw = snap.view.read(offset, count * dim * 4, "segment:vectors")
                    run.check_vector_block(index, raw)  # scanned whole: checked whole, once
                    snap.view.prefetch(offset, count * dim * 4)
                    gids = [run.base + row for _, row in order[start : start + count]]
                    blocks.append(_Block(as_matrix(raw, count, dim), gids))
                    start += count
            self._blocks = blocks
        return self._blocks

    def _delta_blocks(self) -> list[_Block]:
        """The WAL's vectors as one block, joined again only when the delta has grown."""
        seen = len(self.snap.delta)
        if self._delta_seen != seen:
            delta = [v for v in self.snap.delta if v.embedding]
            raw = memoryview(b"".join(v.embedding for v in delta))
            self._delta = [_Block(as_matrix(raw, len(delta), self.dim),
                                  [v.gid for v in delta])] if delta else []
            self._delta_seen = seen
        return self._delta

    def _scores(self, nk: Any, query: memoryview, block: _Block) -> list[float]:
        """Scores of one block, float32-rounded; higher is better (see :mod:`.scoring`)."""
        if block.norms is None and self.metric == "cosine":
            block.norms = row_norms(nk, block.matrix)
        return score_rows(nk, self.metric, query, block.matrix, block.norms)


def row_norms(nk: Any, matrix: memoryview) -> list[float]:
    """The float32-rounded norms of ``matrix``'s rows."""
    return round_f32(memoryview(nk.norm(matrix, axis=1)).tolist())


def score_rows(nk: Any, metric: str, query: memoryview, matrix: memoryview,
               norms: list[float] | None) -> list[float]:
    """Scores of the rows of ``matrix`` (n, dim) for a (1, dim) ``query``, float32-rounded;
    higher is better (see :mod:`.scoring`). ``norms`` (cosine): :func:`row_norms`."""
    if metric == "l2":
        dist = nk.cdist(query, matrix, metric="sqeuclidean")
        return round_f32([-d for d in memoryview(dist).tolist()[0]])
    dots = memoryview(nk.cdist(query, matrix, metric="dot")).tolist()[0]
    if metric == "ip":
        return round_f32(dots)
    assert norms is not None
    return round_f32([d / n if n > 0 else 0.0 for d, n in zip(dots, norms, strict=True)])


def as_matrix(raw: memoryview, rows: int, dim: int) -> memoryview:
    return raw.cast("B").cast("f", (rows, dim))
