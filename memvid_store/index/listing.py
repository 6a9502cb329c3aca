"""Listing and counting frames: ``select`` and ``count`` over one snapshot.

A listing is every frame of one collection that is visible at the request's record time,
lies in the ``time_range`` of event time and matches the filter (the language of
``find``), ordered by event time (``created_at``, ties by gid) or record time
(``valid_from``, which is gid order). Frames are read in that order and checked one by
one, so a listing stops as soon as it has ``offset + limit`` frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..engine.snapshot import RowRef, Snapshot
from ..errors import InvalidInputError
from .filters import FrameFilter, compile_filter

ORDERS = ("created_at", "valid_from")


@dataclass(frozen=True, slots=True)
class Listing:
    """A validated ``select``/``count`` request."""

    collection: str
    filter: FrameFilter | None
    at: int | None
    window: tuple[int | None, int | None] | None
    order_by: str = "created_at"
    reverse: bool = False


def listing(collection: str, spec: Mapping[str, Any] | None, *, at: int | None,
            window: tuple[int | None, int | None] | None, order_by: str = "created_at",
            reverse: bool = False) -> Listing:
    """Validate a listing's arguments (FilterError for a malformed filter)."""
    if order_by not in ORDERS:
        raise InvalidInputError(f"order_by must be one of {', '.join(ORDERS)}, got {order_by!r}")
    if not isinstance(reverse, bool):
        raise InvalidInputError(f"reverse must be a bool, got {reverse!r}")
    return Listing(collection, compile_filter(spec), at, window, order_by, reverse)


def select_refs(snap: Snapshot, req: Listing, *, offset: int = 0,
                limit: int | None = None) -> list[RowRef]:
    """The rows of the frames ``req`` lists, from ``offset``, at most ``limit``."""
    out: list[RowRef] = []
    if limit == 0:
        return out
    for i, ref in enumerate(matching(snap, req)):
        if i < offset:
            continue
        out.append(ref)
        if limit is not None and len(out) >= limit:
            break
    return out


def count_refs(snap: Snapshot, req: Listing) -> int:
    """How many frames ``req`` lists."""
    return sum(1 for _ in matching(snap, req))


def matching(snap: Snapshot, req: Listing) -> Iterator[RowRef]:
    """The rows of the frames ``req`` lists, in its order, read as the iterator advances."""
    belongs = snap.member_test(req.collection)
    flt = req.filter
    lo, hi = req.window if req.window is not None else (None, None)
    if req.order_by == "created_at":
        refs = snap.timeline(lo, hi, req.at, req.reverse)
    else:
        refs = _by_record_time(snap, req, lo, hi)
    for ref in refs:
        if belongs is not None and not belongs(ref.frame_id()):
            continue
        if flt is not None:
            _, _, _, _, meta, tags = snap.record(ref)
            if not flt(meta, tags):
                continue
        yield ref


def _by_record_time(snap: Snapshot, req: Listing, lo: int | None,
                    hi: int | None) -> Iterator[RowRef]:
    refs = snap.iter_all()
    if req.reverse:
        refs = reversed(list(refs))
    for ref in refs:
        if not snap.visible(ref, req.at):
            continue
        created = snap.created_at(ref)
        if (lo is not None and created < lo) or (hi is not None and created >= hi):
            continue
        yield ref
