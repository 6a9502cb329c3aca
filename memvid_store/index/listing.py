"""Listing and counting frames: ``select`` and ``count`` over one snapshot.

A listing is every frame of one collection that is visible at the request's record time,
lies in the ``time_range`` of event time and matches the filter (the language of
``find``), ordered by event time (``created_at``, ties by gid) or record time
(``valid_from``, which is gid order).

Two plans, chosen by estimated selectivity (``Snapshot.posted_count``, a few
microseconds):

* **postings**: when the filter's smallest term group (:mod:`.term_plan`), or the
  collection's own posting list, holds at most a ``SELECTIVE`` share of the versions,
  only the versions posted there are read: checked for visibility and window on their
  columns, and against the filter on their payload unless the plan is exact; then
  sorted. The cost follows the result, not the file.
* **scan**: otherwise the versions are read in order (the time index for ``created_at``)
  and checked one by one, stopping at ``offset + limit``: a broad filter finds its first
  page quickly.

``count`` of a whole collection at the current time reads the per-collection counters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial, reduce
from typing import Any

from ..engine.distinct import distinct
from ..engine.records import live_by_collection
from ..engine.snapshot import RowRef, Snapshot
from ..engine.substrings import substring_gids, tag_terms
from ..engine.terms import collection_term, exists_term, term_hash
from ..errors import DamagedIndexError, InvalidInputError
from ..lazy import loaded
from ..lazy import numpy as np
from .filters import TAGS_KEYS, FrameFilter, compile_filter
from .term_plan import Item, Range, Substring, TermPlan, plan_terms

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


BULK_COUNT = 2048  # postings from which a count is worth importing numpy for
BULK_COUNT_LOADED = 128  # ... and from which it is taken with numpy once numpy is loaded
BULK_ORDER = 1024  # candidates of a listing ordered from the columns in bulk (numpy loaded)
SELECTIVE = 1 / 8  # share of the versions below which a listing reads postings only
COUNT_SELECTIVE = 1 / 2  # a count reads every match anyway: postings win up to here


def select_refs(snap: Snapshot, req: Listing, *, offset: int = 0,
                limit: int | None = None) -> list[RowRef]:
    """The rows of the frames ``req`` lists, from ``offset``, at most ``limit``: a deep
    page (``offset`` past ``1 / DEEP_SHARE`` of the versions) from the columns in bulk
    when it can be (:func:`_deep_page`), else read in order up to it."""
    out: list[RowRef] = []
    if limit == 0:
        return out
    bulk = _bulk()
    if offset >= bulk and offset >= DEEP_SHARE * (snap.toc.next_gid + len(snap.delta)):
        page = _deep_page(snap, req, offset, limit)
        if page is not None:
            return page
    for i, ref in enumerate(matching(snap, req)):
        if i < offset:
            continue
        out.append(ref)
        if limit is not None and len(out) >= limit:
            break
    return out


DEEP_SHARE = 1 / 64  # of the versions: an offset past it is skipped in bulk


def _deep_page(snap: Snapshot, req: Listing, offset: int, limit: int | None
               ) -> list[RowRef] | None:
    """The page of a current listing by event time whose filter is none or one the
    postings answer exactly (:func:`_exact_gids`), without reading the versions before
    it one by one: the matches' current versions and their ``created`` from the columns
    in bulk, ordered (ties by gid), and the page sliced from them; None for any other
    listing, remote runs whose rows are read by the page, or a collection's listing in
    a file with runs written before postings."""
    if req.at is not None or req.order_by != "created_at" or any(
            run.rows_by_page for run in snap.runs):
        return None
    gids = None
    if req.filter is not None:
        gids = _exact_gids(snap, req.filter.spec)
        if gids is None:
            return None
    within = _member_term(snap, req)
    if within is not None and not all(run.has_postings for run in snap.runs):
        return None
    by_run, delta = snap.current_gids(gids, within)
    found = [rows.astype("<i8") + run.base for run, rows in by_run]
    created = [np.frombuffer(run.part("created"), "<i8")[rows] for run, rows in by_run]
    found.append(np.array([v.gid for v in delta], "<i8"))
    created.append(np.array([v.created_at for v in delta], "<i8"))
    found_gids, found_created = np.concatenate(found), np.concatenate(created)
    lo, hi = req.window if req.window is not None else (None, None)
    if lo is not None or hi is not None:
        keep = np.ones(len(found_gids), np.bool_)
        if lo is not None:
            keep &= found_created >= lo
        if hi is not None:
            keep &= found_created < hi
        found_gids, found_created = found_gids[keep], found_created[keep]
    order = np.lexsort((found_gids, found_created))
    if req.reverse:
        order = order[::-1]
    end = None if limit is None else offset + limit
    return [snap.locate(gid) for gid in found_gids[order[offset:end]].tolist()]


def count_refs(snap: Snapshot, req: Listing) -> int:
    """How many frames ``req`` lists."""
    if req.filter is None and req.window is None and req.at is None:
        return _current(snap, req)
    counted = _count_posted(snap, req)
    if counted is None:
        counted = _count_indexed(snap, req)
    if counted is not None:
        return counted
    negated = _negated(req)
    if negated is not None:  # the current versions less those the negated filter lists
        return _current(snap, req) - count_refs(snap, negated)
    return sum(1 for _ in matching(snap, req, share=COUNT_SELECTIVE))


def _count_indexed(snap: Snapshot, req: Listing) -> int | None:
    """The count of a current listing without a window whose filter the indexes answer
    (:func:`_exact_gids`: terms, windows on a key, their ``$or``), from the columns in
    bulk, once the collection holds ``BULK_COUNT`` versions (``BULK_COUNT_LOADED`` with
    numpy loaded); None otherwise."""
    bulk = _bulk()
    if req.at is not None or req.window is not None or _current(snap, req) < bulk:
        return None
    gids = _exact_gids(snap, req.filter.spec)
    if gids is None:
        return None
    within = _member_term(snap, req)
    return snap.count_current_gids(gids, within)


def _bulk() -> int:
    """Versions from which the columns are read in bulk: worth importing numpy for, or
    numpy's per-call cost once it is loaded."""
    return BULK_COUNT_LOADED if loaded("numpy") is not None else BULK_COUNT


def _member_term(snap: Snapshot, req: Listing) -> str | None:
    """The posting term of the listing's collection; None when every version belongs."""
    return collection_term(req.collection) if snap.member_test(req.collection) else None


def _current(snap: Snapshot, req: Listing) -> int:
    """How many current frames the collection of ``req`` holds (from the counters)."""
    return live_by_collection(snap.counters()).get(req.collection, 0)


def _negated(req: Listing) -> Listing | None:
    """For a current listing whose filter is one ``$not`` or ``$nor`` (at the top level,
    or a key's ``$not``: ``{"n": {"$not": {"$gt": 3}}}`` is the complement of ``{"n":
    {"$gt": 3}}``), the listing of what it negates (its matches are the current versions
    that one does not list, whose count its postings may give); else None."""
    spec = req.filter.spec if req.filter is not None else None
    if req.at is not None or req.window is not None or not spec or len(spec) != 1:
        return None
    ((key, arg),) = spec.items()
    if key == "$not":
        inner = arg
    elif key == "$nor":
        inner = {"$or": list(arg)}
    elif isinstance(arg, Mapping) and arg.keys() == {"$not"}:
        inner = {key: arg["$not"]}
    else:
        return None
    return dataclasses.replace(req, filter=compile_filter(inner))


def _count_posted(snap: Snapshot, req: Listing) -> int | None:
    """The count of a current listing from the columns in bulk, once it is large enough
    to pay numpy's import (``BULK_COUNT``), or numpy's per-call cost once it is loaded
    (``BULK_COUNT_LOADED``): a filter that one posting term answers exactly (``{"k":
    v}``, ``{"tags": t}``), or excluded terms do (``{"k": {"$ne": v}}``: every current
    version but those posted under them), an ``$or`` or a conjunction of entries the
    postings answer exactly (``_count_or``, ``_count_and``), a window or one side of one
    on one key, or an event-time window alone; None otherwise."""
    if req.at is not None:
        return None
    bulk = _bulk()
    within = _member_term(snap, req)
    if req.window is not None:
        if req.filter is not None:
            return None
        runs, delta_gids = _window_spans(snap, req.window)
        if sum(len(span) for _, span in runs) < bulk:
            return None
        first = snap.toc.next_gid
        delta = [snap.delta[g - first] for g in delta_gids]
        return snap.count_current_in_time(runs, delta, within)
    if req.filter is None:
        return None
    plan = plan_terms(req.filter.spec)
    if plan.only_excluded and not plan.groups:  # every version but those posted there
        total = _current(snap, req)
        if total < bulk:
            return None
        posted = snap.count_current_any(list(plan.excluded), within)
        return None if posted is None else total - posted
    if "$or" in req.filter.spec and len(req.filter.spec) == 1:
        total = _current(snap, req)
        counted = None if total < bulk else _count_or(snap, req.filter.spec["$or"], total,
                                                      within)
        if counted is not None:
            return counted
    elif (len(req.filter.spec) > 1 and plan.excluded and plan.groups
          and _current(snap, req) >= bulk):
        counted = _count_and(snap, req.filter.spec, within)
        if counted is not None:
            return counted
    if len(plan.groups) != 1 or len(plan.groups[0]) != 1:
        return None
    (item,) = plan.groups[0]
    if isinstance(item, Range):
        return _count_window(snap, req, item, within, bulk)
    if isinstance(item, Substring):
        return _count_tag_substring(snap, req, item, within, bulk)
    if not plan.exact or snap.posted_count(item) < bulk:
        return None
    return snap.count_current(item, within)


def _count_tag_substring(snap: Snapshot, req: Listing, item: Substring, within: str | None,
                         bulk: int) -> int | None:
    """The count of a filter that is one substring of the tags (``{"tags": {"$contains":
    "proj"}}``): the current versions posted under the tags that contain it, as an
    ``$in`` of them counts (``substrings.tag_terms``); None for any other filter, below
    ``bulk`` postings, or when a run has no tag list."""
    if not item.tags or len(req.filter.spec) != 1:
        return None
    ((_, cond),) = req.filter.spec.items()
    if not isinstance(cond, Mapping) or len(cond) != 1:
        return None
    terms = tag_terms(snap, item.text, item.fold)
    if terms == []:  # no tag contains it
        return 0
    if terms is None or sum(snap.posted_count(term) for term in terms) < bulk:
        return None
    return snap.count_current_any(terms, within)


def _count_or(snap: Snapshot, branches: list[Any], total: int, within: str | None
              ) -> int | None:
    """The count of ``{"$or": branches}`` when the postings answer each branch exactly
    (``_exact_parts``); None otherwise. A match is posted under a term of a positive
    branch or misses one negated branch's terms, so the current versions of ``total``
    all match but those posted under some term of every negated branch and under no
    positive term."""
    parts = _exact_parts(snap, branches)
    if parts is None:
        return None
    positive, negated = parts
    if not negated:
        return snap.count_current_any([t for terms in positive for t in terms], within)
    failing = _every(snap, negated)
    if positive:
        failing = np.setdiff1d(failing, _posted(snap, [t for ts in positive for t in ts]),
                               assume_unique=True)
    if 2 * len(failing) > snap.toc.next_gid + len(snap.delta):  # count the smaller side
        return snap.count_current_gids(snap.gids_except([failing]), within)
    return total - snap.count_current_gids(failing, within)


def _count_and(snap: Snapshot, spec: Mapping[str, Any], within: str | None) -> int | None:
    """The count of a conjunction of entries the postings each answer exactly
    (``{"lang": {"$in": ["en", "fr"]}, "topic": {"$ne": 3}}``): the current versions
    posted under a term of every positive entry and under none of a negated one's."""
    gids = _exact_gids(snap, spec)
    return None if gids is None else snap.count_current_gids(gids, within)


def _exact_gids(snap: Snapshot, spec: Mapping[str, Any]) -> Any | None:
    """Gids (numpy, ascending, distinct) of the versions of any visibility that match a
    conjunction of entries, at least one of them positive, each answered from the
    indexes: terms the postings answer exactly (posted under one of them, or under none
    for a negated entry), a window on a top-level key (:func:`_window_gids`), and ``$or``
    / ``$and`` of such filters; None for any other filter, or when a run has no
    postings."""
    if not all(run.has_postings for run in snap.runs):
        return None
    positive, negated = [], []
    for key, cond in spec.items():
        if key in ("$or", "$and") and isinstance(cond, list) and cond:
            found = [_exact_gids(snap, branch) for branch in cond]
            if any(gids is None for gids in found):
                return None
            positive.append(distinct(np.concatenate(found)) if key == "$or"
                            else reduce(_both, found))
            continue
        plan = plan_terms({key: cond})
        items = plan.groups[0] if len(plan.groups) == 1 else ()
        if plan.exact and items and all(isinstance(t, str) for t in items):
            positive.append(_posted(snap, list(items)))  # type: ignore[arg-type]
        elif plan.only_excluded and not plan.groups:
            negated.append(_posted(snap, list(plan.excluded)))
        elif len(items) == 1 and isinstance(items[0], Range) and (
                found := _window_gids(snap, key, cond, items[0])) is not None:
            positive.append(found)
        else:
            return None
    if not positive:
        return None
    matching = reduce(_both, positive)
    for gids in negated:
        matching = matching[~_within(matching, gids)]
    return matching


def _within(gids: Any, others: Any) -> Any:
    """Which of ``gids`` are in ``others`` (both ascending, distinct), by a binary search
    each (numpy 2's ``isin`` and set operations sort both, or hash them)."""
    if not len(others):
        return np.zeros(len(gids), np.bool_)
    at = np.minimum(np.searchsorted(others, gids), len(others) - 1)
    return others[at] == gids


def _both(gids: Any, others: Any) -> Any:
    """The gids in both ascending distinct arrays."""
    return gids[_within(gids, others)]


def _window_gids(snap: Snapshot, key: str, cond: Any, window: Range) -> Any | None:
    """Gids (numpy, ascending, distinct) of the versions of any visibility that match
    ``{key: cond}``, one window on a top-level key (:func:`_plain_window`): those with a
    value stored strictly inside, from the value columns, and those that may match (a
    value at a bound, several values, the delta's) checked on their record; None for
    another entry, or when a run lacks the value columns."""
    if not _plain_window(key, cond, window):
        return None
    split = snap.window_split(window.path, window.lo, window.hi, kind=window.kind)
    if split is None:
        return None
    sure, check = split
    entry = compile_filter({key: cond})
    parts = [rows.astype("<i8") + run.base for run, rows in sure]
    parts.append(np.array([ref.gid for ref in check if entry(*snap.record(ref)[4:])], "<i8"))
    return np.sort(np.concatenate(parts))  # distinct: the checked are not among the sure


def _plain_window(key: str, cond: Any, window: Range) -> bool:
    """Whether ``{key: cond}`` is one window on a top-level key the value columns answer
    (``{"at": {"$gte": a, "$lt": b}}``, or one side of it: ``{"n": {"$gt": 3}}``)."""
    return not (key.startswith("$") or key in TAGS_KEYS or "." in window.path
                or not isinstance(cond, dict) or not cond
                or not cond.keys() <= WINDOW_OPS[0] | WINDOW_OPS[1]
                or any(len(ops & cond.keys()) > 1 for ops in WINDOW_OPS)
                or (window.lo is None) != (not WINDOW_OPS[0] & cond.keys())
                or (window.hi is None) != (not WINDOW_OPS[1] & cond.keys()))


def _exact_parts(snap: Snapshot, specs: list[Any]
                 ) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]] | None:
    """The terms of filters ``specs`` that the postings each answer exactly: (positive:
    a version matches when posted under one of its terms, negated: when posted under
    none, such as ``{"lang": {"$ne": "en"}}``); None when one is neither, or a run has
    no postings."""
    positive: list[tuple[str, ...]] = []
    negated: list[tuple[str, ...]] = []
    for spec in specs:
        plan = plan_terms(spec)
        if plan.exact and all(isinstance(t, str) for t in plan.groups[0]):
            positive.append(plan.groups[0])  # type: ignore[arg-type]
        elif plan.only_excluded and not plan.groups:
            negated.append(plan.excluded)
        else:
            return None
    if not all(run.has_postings for run in snap.runs):
        return None
    return positive, negated


def _posted(snap: Snapshot, terms: list[str]) -> Any:
    """Gids (numpy, ascending, distinct) of the versions posted under any of ``terms``
    (one term's list is ascending and distinct already)."""
    parts = [snap.posted_gids(t) for t in dict.fromkeys(terms)]
    if not parts:  # no term: nothing
        return np.empty(0, "<i8")
    return parts[0] if len(parts) == 1 else distinct(np.concatenate(parts))


def _every(snap: Snapshot, groups: list[tuple[str, ...]]) -> Any:
    """Gids of the versions posted under a term of every group."""
    found = None
    for terms in groups:
        gids = _posted(snap, list(terms))
        found = gids if found is None else np.intersect1d(found, gids, assume_unique=True)
    return found


WINDOW_OPS = ({"$gt", "$gte"}, {"$lt", "$lte"})


def _count_window(snap: Snapshot, req: Listing, window: Range, within: str | None,
                  bulk: int) -> int | None:
    """The count of a filter that is one window on one top-level key (``{"at": {"$gte":
    a, "$lt": b}}``, or one side of it: ``{"n": {"$gt": 3}}``): the versions with a value
    stored strictly inside counted from the columns in bulk, the others that may match
    checked one by one (``window_split``); None for any other filter or below ``bulk``
    values."""
    if len(req.filter.spec) != 1:
        return None
    ((key, cond),) = req.filter.spec.items()
    if not _plain_window(key, cond, window):
        return None
    if snap.windowed_count(window.path, window.lo, window.hi, kind=window.kind) < bulk:
        return None
    split = snap.window_split(window.path, window.lo, window.hi, kind=window.kind)
    if split is None:
        return None
    sure, check = split
    belongs = snap.member_test(req.collection)
    count = snap.count_current_rows(sure, within)
    for ref in check:
        if not snap.visible(ref, None):
            continue
        if belongs is not None and not belongs(ref.frame_id()):
            continue
        _, _, _, _, meta, tags = snap.record(ref)
        count += bool(req.filter(meta, tags))
    return count


def matching(snap: Snapshot, req: Listing, *, share: float | None = None
             ) -> Iterator[RowRef]:
    """The rows of the frames ``req`` lists, in its order, read as the iterator advances;
    from postings when they hold at most ``share`` of the versions (``SELECTIVE``)."""
    posted = candidates(snap, req, SELECTIVE if share is None else share)
    if posted is not None:
        return posted
    return _scanned(snap, req)


def candidates(snap: Snapshot, req: Listing, share: float) -> Iterator[RowRef] | None:
    """The listing read from postings, in order; None when they are not selective. The
    candidates are ordered from their columns, and their payloads are read (to check the
    filter) as the iterator advances: a page of a common condition reads a page's worth."""
    plan = plan_terms(req.filter.spec if req.filter is not None else None)
    groups = _groups(snap, plan, req.collection)
    best, size = _smallest(_group_sizes(snap, groups))
    limit = share * (snap.toc.next_gid + len(snap.delta))
    refs: dict[int, RowRef] = {}
    if best is not None and size <= limit:
        for item in groups[best]:
            for ref in _members(snap, item):
                refs.setdefault(ref.gid, ref)
        trusted = plan.exact and best == 0  # the group answers the filter
    else:
        gids = _complement(snap, plan, req.filter, int(limit))
        if gids is None:
            return None
        refs = {gid: snap.locate(gid) for gid in gids}
        trusted = _complement_is_exact(plan, req.filter)
    belongs = snap.member_test(req.collection)
    lo, hi = req.window if req.window is not None else (None, None)

    def admitted(ref: RowRef, created: int) -> bool:
        return ((lo is None or created >= lo) and (hi is None or created < hi)
                and (belongs is None or belongs(ref.frame_id()))
                and snap.visible(ref, req.at))

    if len(refs) >= BULK_ORDER and loaded("numpy") is not None and not any(
            run.rows_by_page for run in snap.runs):
        ordered: Iterator[RowRef] = (ref for created, ref in _in_order(snap, refs, req)
                                     if admitted(ref, created))
    else:
        kept = [(created, ref.gid, ref) for ref in refs.values()
                if admitted(ref, created := snap.created_at(ref))]
        if req.order_by == "created_at":
            kept.sort(key=lambda c: (c[0], c[1]), reverse=req.reverse)
        else:
            kept.sort(key=lambda c: c[1], reverse=req.reverse)
        ordered = (ref for _, _, ref in kept)
    if req.filter is None or trusted:
        return ordered

    def matches(ref: RowRef) -> bool:
        _, _, _, _, meta, tags = snap.record(ref)
        return req.filter(meta, tags)

    return filter(matches, ordered)


def _in_order(snap: Snapshot, refs: dict[int, RowRef], req: Listing
              ) -> Iterator[tuple[int, RowRef]]:
    """``(created_at, ref)`` of the candidates in the listing's order, sorted from the
    ``created`` columns in bulk: only those the listing reads are checked one by one."""
    gids = np.fromiter(refs, np.int64, len(refs))
    gids.sort()
    created = np.empty(len(gids), np.int64)
    for run in snap.runs:
        first, last = np.searchsorted(gids, (run.base, run.end))
        if first < last:
            column = np.frombuffer(run.part("created"), "<i8")
            created[first:last] = column[gids[first:last] - run.base]
    first = int(np.searchsorted(gids, snap.toc.next_gid))
    created[first:] = [refs[gid].version.created_at for gid in gids[first:].tolist()]
    order = (np.lexsort((gids, created)) if req.order_by == "created_at"
             else np.arange(len(gids)))
    if req.reverse:
        order = order[::-1]
    for created_at, gid in zip(created[order].tolist(), gids[order].tolist(), strict=True):
        yield created_at, refs[gid]


def candidate_gids(snap: Snapshot, collection: str, flt: FrameFilter | None,
                   window: tuple[int | None, int | None] | None, limit: int
                   ) -> list[int] | None:
    """Gids of a superset of the versions a search in ``collection`` with ``flt`` and the
    event-time ``window`` can accept, ascending, from the smallest of the filter's term
    groups, the collection's posting list and the window's span of the time index; None
    when the smallest holds more than ``limit`` versions. Visibility is not checked.

    Kept per snapshot for the last ``CANDIDATE_CACHE`` filters (a query's vector and
    lexical parts ask for the same set, and agents repeat their filters)."""
    key = (collection, None if flt is None else flt.canonical, window, limit, len(snap.delta))
    found = snap.memoized("candidate_gids", key, CANDIDATE_CACHE,
                          lambda: _candidate_gids(snap, collection, flt, window, limit))
    return None if found is None else list(found)


CANDIDATE_CACHE = 32  # filters whose candidate sets a snapshot keeps


def _candidate_gids(snap: Snapshot, collection: str, flt: FrameFilter | None,
                    window: tuple[int | None, int | None] | None, limit: int
                    ) -> list[int] | None:
    plan = plan_terms(flt.spec if flt is not None else None)
    groups = _groups(snap, plan, collection)
    sizes = _group_sizes(snap, groups)
    best, size = _smallest(sizes)
    spans = _window_spans(snap, window) if window is not None else None
    in_window = None if spans is None else sum(len(r) for _, r in spans[0]) + len(spans[1])
    if in_window is not None and (best is None or in_window < size):
        if in_window > limit:
            return None
        gids = list(spans[1])
        for run, positions in spans[0]:
            base = run.base
            rows = run.items("tperm", positions.start, positions.stop).tolist()
            if rows:
                run.checked_row(max(rows), "time index")
            gids += [base + row for row in rows]
        return sorted(gids)
    if best is None or size > limit:
        unexcluded = _complement(snap, plan, flt, limit)
        if unexcluded is not None or best is None:
            return unexcluded
        return _intersected(snap, groups, sizes, limit)
    return sorted(_group_gids(snap, groups[best]))


def _complement(snap: Snapshot, plan: TermPlan, flt: FrameFilter | None, limit: int
                ) -> list[int] | None:
    """Gids of a superset of the matches read as every version but those that cannot
    match (:func:`_unexcluded`, :func:`_or_unfailing`), when at most ``limit``."""
    found = _unexcluded(snap, plan, limit)
    if found is None and flt is not None:
        found = _or_unfailing(snap, flt.spec, limit)
    return found


def _complement_is_exact(plan: TermPlan, flt: FrameFilter | None) -> bool:
    """Whether :func:`_complement` lists exactly the filter's matches (its whole filter
    is negations of exact filters, or one ``$or`` of exact ones), not a superset."""
    if flt is None:
        return False
    if plan.only_excluded and not plan.groups:
        return True
    return flt.spec.keys() == {"$or"} and not plan.excluded


def _or_unfailing(snap: Snapshot, spec: Mapping[str, Any], limit: int) -> list[int] | None:
    """Gids of the versions the filter's ``$or`` of filters the postings answer exactly,
    one of them negated (``{"$or": [{"lang": {"$ne": "en"}}, {"topic": 3}]}``), matches
    (a superset of the filter's matches): every version but those posted under a term of
    every negated branch and under no positive term (as ``_count_or`` counts them), when
    at most ``limit``; None otherwise."""
    if "$or" not in spec:
        return None
    parts = _exact_parts(snap, spec["$or"])
    if parts is None or not parts[1]:
        return None
    positive, negated = parts
    total = snap.toc.next_gid + len(snap.delta)
    if total - min(sum(snap.posted_count(t) for t in terms) for terms in negated) > limit:
        return None  # more than ``limit`` miss a negated branch's terms
    failing = _every(snap, negated)
    if positive:
        failing = np.setdiff1d(failing, _posted(snap, [t for ts in positive for t in ts]),
                               assume_unique=True)
    gids = snap.gids_except([failing])
    return gids.tolist() if len(gids) <= limit else None


def _unexcluded(snap: Snapshot, plan: TermPlan, limit: int) -> list[int] | None:
    """Gids of the versions posted under none of the plan's excluded terms (a filter
    excluding what nearly every version holds), when at most ``limit``; None otherwise
    (decided from the posting counts alone when they leave more than ``limit``)."""
    if not plan.excluded:
        return None
    total = snap.toc.next_gid + len(snap.delta)
    if total - sum(snap.posted_count(t) for t in plan.excluded) > limit:
        return None
    gids = snap.excluded_gid_list(list(plan.excluded))
    return gids if len(gids) <= limit else None


INTERSECT_MAX = 256  # times ``limit``: the largest posting group read to intersect


def _intersected(snap: Snapshot, groups: list[tuple[Item, ...]], sizes: list[int],
                 limit: int) -> list[int] | None:
    """The gids in every group (of ``sizes`` postings), when no group alone is within
    ``limit`` but their intersection is (``{"user": u, "kind": k}`` with both common):
    groups are read smallest first, none above ``INTERSECT_MAX * limit`` postings; None
    otherwise."""
    if len(groups) == 1 and loaded("numpy") is None:
        return None  # one group, larger than the limit by its count: not worth numpy's import
    found = None
    for size, i in sorted(zip(sizes, range(len(groups)), strict=True)):
        if size > INTERSECT_MAX * limit:
            return None
        gids = _group_array(snap, groups[i])
        found = gids if found is None else np.intersect1d(found, gids, assume_unique=True)
        if len(found) <= limit:
            return found.tolist()
    return None


def _group_gids(snap: Snapshot, group: tuple[Item, ...]) -> set[int]:
    return {ref.gid for item in group for ref in _members(snap, item)}


def _group_array(snap: Snapshot, group: tuple[Item, ...]) -> Any:
    """The gids of a group's versions (numpy, ascending, once each): read from the
    posting columns for terms, without a ``RowRef`` each (a group of 300k versions)."""
    parts = [snap.posted_gids(item) if isinstance(item, str) else
             np.fromiter((ref.gid for ref in _members(snap, item)), "<i8")
             for item in group]
    return distinct(np.concatenate(parts)) if parts else np.zeros(0, "<i8")


def _groups(snap: Snapshot, plan: Any, collection: str) -> list[tuple[Item, ...]]:
    """The plan's term groups, and the collection's list unless every version is in it."""
    groups = list(plan.groups)
    if snap.member_test(collection) is not None:
        groups.append((collection_term(collection),))
    return groups


def _group_sizes(snap: Snapshot, groups: list[tuple[Item, ...]]) -> list[int]:
    """The estimated postings of each group."""
    return [sum(_size(snap, item) for item in group) for group in groups]


def _smallest(sizes: list[int]) -> tuple[int | None, int]:
    """(index, estimated postings) of the group with the fewest postings."""
    if not sizes:
        return None, 0
    best = min(range(len(sizes)), key=sizes.__getitem__)
    return best, sizes[best]


def _size(snap: Snapshot, item: Item) -> int:
    """Postings of a term, values of a range (upper bounds, without reading rows), or the
    versions a substring may be in."""
    if isinstance(item, str):
        return snap.posted_count(item)
    if isinstance(item, Substring):
        gids = _substring_gids(snap, item)
        return snap.posted_count(exists_term(item.path)) if gids is None else len(gids)
    if item.lo is not None and item.hi is not None:
        return snap.windowed_count(item.path, item.lo, item.hi, kind=item.kind,
                                   lo_inclusive=item.lo_inclusive,
                                   hi_inclusive=item.hi_inclusive)
    return snap.ranged_count(item.path, item.lo, item.hi, lo_inclusive=item.lo_inclusive,
                             hi_inclusive=item.hi_inclusive, kind=item.kind)


def _members(snap: Snapshot, item: Item) -> list[RowRef]:
    if isinstance(item, str):
        return snap.posted(item)
    if isinstance(item, Substring):
        gids = _substring_gids(snap, item)
        if gids is None:  # too many distinct strings to test: every version with the path
            return snap.posted(exists_term(item.path))
        return [snap.locate(gid) for gid in gids]
    if item.lo is not None and item.hi is not None:
        return snap.windowed(item.path, item.lo, item.hi, kind=item.kind,
                             lo_inclusive=item.lo_inclusive, hi_inclusive=item.hi_inclusive)
    return snap.ranged(item.path, item.lo, item.hi, lo_inclusive=item.lo_inclusive,
                       hi_inclusive=item.hi_inclusive, kind=item.kind)


def _substring_gids(snap: Snapshot, item: Substring) -> list[int] | None:
    """The versions a substring may be in (never None for the tags)."""
    return substring_gids(snap, item.path, item.text, item.fold, tags=item.tags)


def _window_spans(snap: Snapshot, window: tuple[int | None, int | None]
                  ) -> tuple[list[tuple[Any, range]], list[int]]:
    """The time index's positions per run inside ``window``, and the delta's gids there."""
    lo, hi = window
    runs = [(run, run.time_rows(lo, hi)) for run in snap.runs]
    delta = [v.gid for v in snap.delta
             if (lo is None or v.created_at >= lo) and (hi is None or v.created_at < hi)]
    return runs, delta


def _scanned(snap: Snapshot, req: Listing) -> Iterator[RowRef]:
    """The listing read in order, each version checked against the filter on its record;
    past ``SCAN_DECODES`` records (a deep page: ``offset``), a committed version is
    checked against its run's postings instead when they answer the filter exactly
    (:func:`_posted_test`)."""
    belongs = snap.member_test(req.collection)
    flt = req.filter
    lo, hi = req.window if req.window is not None else (None, None)
    if req.order_by == "created_at":  # no filter: most listings keep the first versions
        refs = snap.timeline(lo, hi, req.at, req.reverse, few=flt is None)
    else:
        refs = _by_record_time(snap, req, lo, hi)
    if flt is not None or belongs is not None:  # remote bytes: a page's reads at once
        refs = snap.announced(refs, partial(_scan_reads, snap, belongs, flt is not None),
                              SCAN_PAGE, partial(snap.fetch_rows, ids=belongs is not None,
                                                 ahead=True))
    posted, decoded = None, 0
    for ref in refs:
        if belongs is not None and not belongs(ref.frame_id()):
            continue
        if flt is None:
            yield ref
            continue
        if posted is not None and ref.run is not None:
            try:
                if posted(ref):
                    yield ref
                continue
            except DamagedIndexError:  # damaged postings: the records decide, as before
                posted = None
        _, _, _, _, meta, tags = snap.record(ref)
        decoded += 1
        if decoded == SCAN_DECODES:
            posted = _posted_test(snap, flt)
        if flt(meta, tags):
            yield ref


def _scan_reads(snap: Snapshot, belongs: Callable[[str], bool] | None, records: bool,
                page: list[RowRef]) -> None:
    """Download what a scan reads of ``page``: with a collection to test, the versions'
    ids; with a filter, the records of those in the collection."""
    if belongs is not None:
        snap.fetch_rows(page, ids=True)
        if records:
            snap.fetch_frames([ref for ref in page if belongs(ref.frame_id())])
    elif records:
        snap.fetch_frames(page)


SCAN_DECODES = 256  # records a scan checks before it asks the postings instead
SCAN_PAGE = 64  # versions of a scan's first page read together from remote bytes


def _posted_test(snap: Snapshot, flt: FrameFilter) -> Callable[[RowRef], bool] | None:
    """Whether a committed version matches a filter that is a conjunction of entries the
    postings answer exactly (``{"ns": "a", "kind": {"$ne": "b"}}``), from its run's
    postings (a binary search a term) instead of its record; None for another filter, or
    when a run has no postings."""
    parts = _exact_parts(snap, [{key: cond} for key, cond in flt.spec.items()])
    if parts is None:
        return None
    groups = [[term_hash(term) for term in terms] for terms in parts[0]]
    excluded = [term_hash(term) for terms in parts[1] for term in terms]
    return lambda ref: ref.run.posted_under(ref.row, groups, excluded)


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
