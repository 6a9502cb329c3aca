"""Exact vector search over the few versions a filter or window admits, without numpy.

The numpy-free twin of :mod:`.subset_scan`, for the first queries of a fresh process: a
selective filter (one user's namespace, a session, a tag) puts at most ``SUBSET_MAX``
versions in reach through the posting lists (:func:`..listing.candidate_gids`); their
stored rows are read one by one (a few KiB each, in the mapped file) and scored with
numkong as :mod:`.numpy_free_scan` scores blocks, then accepted best-first. Without it
such a query would walk the graph through thousands of rejected candidates, decoding each
one's metadata to test the filter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...config import IndexConfig
from ...engine.snapshot import Snapshot
from ..listing import candidate_gids
from . import kernels
from .kernels import best_first
from .numpy_free_scan import as_matrix, row_norms, score_rows

if TYPE_CHECKING:
    from ..acceptance import Acceptance, Ranked
    from ..requests import Request

SUBSET_MAX = 4096  # admitted versions up to which an exact scan beats the graph


class NumpyFreeSubset:
    """Scores the versions a request's filter or window admits, when they are few."""

    def __init__(self, snap: Snapshot, config: IndexConfig) -> None:
        self.snap = snap
        self.metric = config.distance
        self.dim = snap.dim or 0

    def ranked(self, req: Request, accept: Acceptance) -> Ranked | None:
        """Accepted (ref, score) best-first, ``req.k`` of them when that many exist; None
        when the request admits too many versions (or all), or without numkong."""
        if req.filter is None and req.time_range is None:
            return None
        nk = kernels.kernel()
        if nk is None:
            return None
        gids = candidate_gids(self.snap, req.collection, req.filter, req.time_range,
                              SUBSET_MAX)
        if gids is None:
            return None
        rows, labels = self._rows(gids)
        if not labels:
            return []
        matrix = as_matrix(memoryview(b"".join(rows)), len(labels), self.dim)
        query = as_matrix(memoryview(req.vector).cast("B"), 1, self.dim)
        norms = row_norms(nk, matrix) if self.metric == "cosine" else None
        scores = score_rows(nk, self.metric, query, matrix, norms)
        ranked = sorted(zip(scores, labels, strict=True), key=best_first)
        return accept.take([(g, s) for s, g in ranked if s > float("-inf")], req.k)

    def _rows(self, gids: list[int]) -> tuple[list[bytes | memoryview], list[int]]:
        """The float32 rows of the ``gids`` that have a vector, and those gids."""
        snap = self.snap
        first_delta = snap.toc.next_gid
        rows: list[bytes | memoryview] = []
        labels: list[int] = []
        for gid in gids:
            if gid >= first_delta:
                row = snap.delta[gid - first_delta].embedding
            else:
                ref = snap.locate(gid)
                row = ref.run.vector_view(ref.row) if ref.run is not None else None
            if row:
                rows.append(row)
                labels.append(gid)
        return rows, labels

