"""Which candidates a query accepts, and the deterministic order of its results.

Indexes cover every stored version; a candidate (a gid) is *accepted* when it is visible
at the query's record time, lies in the ``time_range`` of event time and matches the
metadata filter. Every search path hands its candidates, best-first, to
:meth:`Acceptance.take`, asking its index for more (x4 each round) until it has ``need``
accepted ones or the index is exhausted, so a filter never silently returns fewer hits
than exist.

Ordering is deterministic: score descending, ties by frame id (:func:`order`).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby, pairwise
from operator import itemgetter
from typing import TYPE_CHECKING

from ..engine.keys import DEFAULT
from ..engine.runs import guessed_id_spans, id_spans
from ..engine.snapshot import ROW_GAP, RowRef, Snapshot, announce_rows
from ..engine.terms import term_hash
from ..errors import DamagedIndexError
from .term_plan import plan_terms

if TYPE_CHECKING:
    from .filters import FrameFilter
    from .requests import Request

Ranked = list[tuple[RowRef, float]]
"""Accepted candidates with their scores, best-first."""


class Acceptance:
    """What one request accepts: its collection, visibility at ``at``, the event-time
    ``window``, the metadata ``filter`` (payloads decoded through the snapshot's frame
    cache, after the posting lists: a version posted under none of a condition's terms
    is refused without decoding its payload)."""

    __slots__ = ("_checked", "_every", "_ids", "_posted", "_records", "_snap", "_unchecked")

    def __init__(self, snap: Snapshot, at: int | None,
                 window: tuple[int | None, int | None] | None,
                 flt: FrameFilter | None, collection: str = DEFAULT) -> None:
        self._snap = snap
        belongs = snap.member_test(collection)
        # every version is accepted: now, no window, filter or collection to test, and
        # none replaced or deleted (an append-only memory). Rows are then not read (from
        # object storage, a page per row column of every candidate otherwise)
        self._every = (at is None and window is None and flt is None and belongs is None
                       and snap.all_live())
        if self._every:
            self._unchecked = self._checked = snap.locate
            return
        posted = None if flt is None else posted_test(flt)
        # what a chunk of candidates reads (announced together from remote bytes): ids
        # for the collection test, records for the filter (unless its postings refuse)
        self._ids, self._records, self._posted = belongs is not None, flt is not None, posted
        self._unchecked = _acceptor(snap, at, window, flt, belongs, posted,
                                    visible_checked=False)
        self._checked = _acceptor(snap, at, window, flt, belongs, posted,
                                  visible_checked=True)

    @classmethod
    def of(cls, snap: Snapshot, req: Request) -> Acceptance:
        return cls(snap, req.at, req.time_range, req.filter, req.collection)

    @property
    def every(self) -> bool:
        """Whether every version is accepted (nothing to test, nothing to read)."""
        return self._every

    def accept(self, gid: int, *, visible_checked: bool = False) -> RowRef | None:
        """The row of ``gid`` if the request accepts it (``visible_checked``: visibility and
        the window were already applied, e.g. as a mask), else None."""
        return (self._checked if visible_checked else self._unchecked)(gid)

    def take(self, candidates: list[tuple[int, float]], need: int, *,
             visible_checked: bool = False) -> Ranked:
        """Accepted candidates best-first: ``need`` of them plus any tied with the last."""
        if self._every:  # the first ``need``, and those tied with the last of them
            end = min(need, len(candidates))
            while end and end < len(candidates) and candidates[end][1] >= candidates[end - 1][1]:
                end += 1
            locate = self._snap.locate
            return order([(locate(gid), score) for gid, score in candidates[:end]])
        accept = self._checked if visible_checked else self._unchecked
        # remote bytes: what each chunk reads in a round or two, not a round a candidate;
        # each chunk twice the last (many refused, or many tied with the last accepted)
        announce = self._snap.view.batches
        chunk, announced = need + need // 2 + 1, 0
        out: Ranked = []
        for i, (gid, score) in enumerate(candidates):
            if len(out) >= need and score < out[-1][1]:
                break
            if announce and i == announced:
                announced = i + chunk
                chunk *= 2
                self._announce([gid for gid, _ in candidates[i:announced]],
                               [gid for gid, _ in candidates[announced : announced + chunk]])
            ref = accept(gid)
            if ref is not None:
                out.append((ref, score))
        return order(out)

    def _announce(self, gids: list[int], following: list[int]) -> None:
        """Download what accepting ``gids`` reads: their rows; with a collection to test,
        their ids (where ids of one length would lie, in the rows' round; the ids missed
        next); with a filter, the records its postings do not refuse, in a round the
        rows of the ``following`` candidates join (their chunk then takes one round)."""
        snap = self._snap
        refs = [snap.locate(gid) for gid in gids]
        snap.fetch_rows(refs, ids=self._ids)
        if self._records:
            posted = self._posted
            snap.fetch_rows([snap.locate(gid) for gid in following], ids=self._ids,
                            ahead=True)
            snap.fetch_frames([ref for ref in refs if ref.run is not None and (
                posted is None or posted(ref))])


def posted_test(flt: FrameFilter) -> Callable[[RowRef], bool] | None:
    """A test a version must pass to match ``flt``: posted under one term of each of the
    filter's term groups and under none of its excluded terms (``term_plan``); None when
    the filter has neither. Passing it proves nothing (the payload decides); failing it
    refuses the version. Versions of the WAL, of runs without posting lists, or of runs
    whose postings are damaged pass."""
    plan = plan_terms(flt.spec)
    groups = [tuple(term_hash(term) for term in group) for group in plan.groups
              if all(isinstance(term, str) for term in group)]
    excluded = [term_hash(term) for term in plan.excluded]
    if not groups and not excluded:
        return None

    def posted(ref: RowRef) -> bool:
        run = ref.run
        if run is None or not run.has_postings:
            return True
        try:
            return run.posted_under(ref.row, groups, excluded)
        except DamagedIndexError:
            return True

    return posted


def _acceptor(snap: Snapshot, at: int | None, window: tuple[int | None, int | None] | None,
              flt: FrameFilter | None, belongs: Callable[[str], bool] | None,
              posted: Callable[[RowRef], bool] | None, *,
              visible_checked: bool) -> Callable[[int], RowRef | None]:
    def accept(gid: int) -> RowRef | None:
        ref = snap.locate(gid)
        if belongs is not None and not belongs(ref.frame_id()):
            return None
        if not visible_checked:
            if not snap.visible(ref, at):
                return None
            if window is not None:
                created = snap.created_at(ref)
                lo, hi = window
                if (lo is not None and created < lo) or (hi is not None and created >= hi):
                    return None
        if flt is not None:
            if posted is not None and not posted(ref):
                return None
            _, _, _, _, meta, tags = snap.record(ref)
            if not flt(meta, tags):
                return None
        return ref

    return accept


def order(ranked: Ranked) -> Ranked:
    """Score descending, ties by frame id (looked up only for the tied: BM25 scores tie
    often, a list of 50 rarely more than a few at once)."""
    ranked = sorted(ranked, key=lambda rs: -rs[1])
    tied = _tied(ranked)
    if not tied:
        return ranked
    _fetch_ids(tied)
    out: Ranked = []
    for _, group in groupby(ranked, key=itemgetter(1)):
        tied = list(group)
        out.extend(sorted(tied, key=lambda rs: rs[0].frame_id()) if len(tied) > 1 else tied)
    return out


def _fetch_ids(refs: list[RowRef]) -> None:
    """Announce the id reads of tied ``refs`` to a view that batches: their id offsets
    and where ids of one length would lie in one round, then any id that guess missed."""
    runs = [ref for ref in refs if getattr(ref, "run", None) is not None]
    if runs and runs[0].run.view.batches:
        view = runs[0].run.view
        view.fetch([span for ref in runs if (span := ref.run.item_span("idoff", ref.row))]
                   + guessed_id_spans(runs), "rows", ROW_GAP)
        view.fetch(id_spans(runs), "rows", ROW_GAP)


def order_head(ranked: Ranked, k: int) -> Ranked:
    """``order(ranked)[:k]``, looking frame ids up only for ties among the candidates that
    can reach the first ``k`` (a hybrid query fuses about 100 for 10)."""
    if len(ranked) > k >= 1:
        cutoff = sorted((score for _, score in ranked), reverse=True)[k - 1]
        ranked = [rs for rs in ranked if rs[1] >= cutoff]
    runs = [ref for ref, _ in ranked if getattr(ref, "run", None) is not None]
    if runs and runs[0].run.view.batches:  # the rows the hits read and the ties' ids, at once
        announce_rows(runs[0].run.view, runs, _tied(sorted(ranked, key=lambda rs: -rs[1])))
    return order(ranked)[:k]


def _tied(ranked: Ranked) -> list[RowRef]:
    """The candidates of ``ranked`` (sorted by score) sharing their score with another:
    those ordered by frame id (one twice when tied on both sides)."""
    return [rs[0] for a, b in pairwise(ranked) if a[1] == b[1] for rs in (a, b)]
