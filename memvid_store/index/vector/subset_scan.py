"""Exact vector search over the few versions a filter or an event-time window admits.

A selective filter (a tag, a metadata value, a small collection) or a narrow
``time_range`` admits few versions; walking the graph for them means visiting about
``k / selectivity`` candidates, and at 1 % the library search widens until it scans.
When the posting lists (or the time index) put at most ``SUBSET_MAX`` versions in
reach (:func:`..listing.candidate_gids`), their stored vectors are gathered and scored
exactly instead: one small matrix product, then the usual acceptance (visibility,
window, collection, filter), best-first. The hits are the exact top ``k`` among the
admitted versions, as the exact path gives them.

It serves once numpy is loaded (by the application, a graph search or a warmup); before,
:mod:`.numpy_free_subset` does the same without numpy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ...config import IndexConfig
from ...engine.snapshot import Snapshot
from ..listing import candidate_gids
from .exact import take_best
from .numpy_free_subset import SUBSET_MAX
from .scoring import score_block
from .stored import StoredVectors, embedding_rows

if TYPE_CHECKING:
    from ..acceptance import Acceptance, Ranked
    from ..requests import Request


class SubsetScan:
    """Scores the versions a request's filter or window admits, when they are few."""

    def __init__(self, snap: Snapshot, config: IndexConfig,
                 stored: Callable[[], StoredVectors]) -> None:
        self.snap = snap
        self.metric = config.distance
        self._stored = stored  # made on first need: a query without a filter has none

    def ranked(self, req: Request, accept: Acceptance, limit: int | None = None
               ) -> Ranked | None:
        """Accepted (ref, score) best-first, ``req.k`` of them when that many exist; None
        when the request admits more than ``limit`` (``SUBSET_MAX``) versions, or all."""
        if req.filter is None and req.time_range is None:
            return None
        gids = candidate_gids(self.snap, req.collection, req.filter, req.time_range,
                              SUBSET_MAX if limit is None else limit)
        if gids is None:
            return None
        if not gids:  # nothing admitted: no vector table to build
            return []
        snap = self.snap
        first_delta = snap.toc.next_gid
        stored = self._stored()
        committed = stored.with_vectors(np.array([g for g in gids if g < first_delta],
                                                      "<i8"))
        delta = [snap.delta[g - first_delta] for g in gids if g >= first_delta]
        delta = [v for v in delta if v.embedding]
        parts = [stored.gather(committed)]
        delta_gids = np.zeros(0, "<i8")
        if delta:
            delta_rows, delta_gids = embedding_rows(delta)
            parts.append(delta_rows)
        matrix = np.concatenate(parts) if len(parts) > 1 else parts[0]
        labels = np.concatenate([committed, delta_gids])
        if not len(labels):
            return []
        query = np.frombuffer(req.vector, "<f4")[None, :]
        scores = score_block(matrix, query, self.metric)[0]
        return take_best(scores, labels, accept, req.k, visible_checked=False)
