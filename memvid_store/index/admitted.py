"""The versions a selective filter admits, and when to score just those.

A filter or event-time window can name a superset of the versions it admits from the
postings and the time index (:func:`~.listing.candidate_gids`). A lexical search then
either scores just those versions in memory (each one analysed: about ``SUBSET_COST``
times the work of one index candidate), or widens the index's own candidates, keeping
those in the set, until enough pass (about ``need x total / admitted`` candidates when the
filter is independent of the text). :func:`score_admitted` picks the cheaper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine.snapshot import Snapshot
    from .requests import Request

SUBSET_COST = 64  # one version analysed and scored in memory, in index candidates


def admitted_gids(snap: Snapshot, req: Request) -> list[int] | None:
    """A superset (ascending) of the versions ``req``'s filter, collection and window
    admit; None when it has neither filter nor window, or admits too many to list."""
    if req.filter is None and req.time_range is None:
        return None
    from .listing import candidate_gids
    from .vector.numpy_free_subset import SUBSET_MAX

    return candidate_gids(snap, req.collection, req.filter, req.time_range, SUBSET_MAX)


def score_admitted(admitted: int, need: int, total: int) -> bool:
    """Whether scoring ``admitted`` versions in memory beats widening an index of
    ``total`` documents until ``need`` admitted ones are found."""
    return admitted * admitted * SUBSET_COST <= need * max(total, 1)
