"""The read API of a memory, shared by ``Memory`` and its ``as_of`` views.

Every read runs on one snapshot at one record time: the handle's current snapshot and
"now" for ``Memory``, the snapshot pinned when the view was made and the view's time for
a ``MemoryView``. Reads never change the file. What reads need from the handle that owns
them (its path, embedder, metrics and the attached access analyzer) comes through one
``ReadContext`` shared by the handle and its views.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from .autoembed import fill_query_vectors
from .config import IndexConfig
from .engine.format import TIME_MAX
from .engine.keys import DEFAULT, key_of, split_key
from .engine.snapshot import not_found
from .errors import (
    CorruptFileError,
    FrameNotFoundError,
    HistoryUnavailableError,
    InvalidInputError,
    InvalidTypeError,
    ReadOnlyError,
)
from .types import Frame, Hit, from_us, to_us
from .validate import check_id, check_page, check_records

if TYPE_CHECKING:
    from .coldstart.handle import Observed
    from .engine.records import Version
    from .engine.snapshot import RowRef, Snapshot
    from .reports import Change, Stats

Scope = tuple["Snapshot", Any, list[Any]]
"""A search's scope in one memory: its snapshot, searcher and Requests."""

LISTING_PAGE = 64  # frames of a lazy listing whose records are read together, at first
LISTING_PAGES = 4096  # and at most (each page twice the last)


class ReadContext:
    """What reads need from the open handle behind them (one per handle, shared by its views).

    Attributes:
        path: the file's path.
        current: the handle's current snapshot; raises ClosedError once it is closed.
        embedder: embeds text queries (None: callers pass vectors).
        record: records a cold-start phase (name, seconds).
        cache_root: the directory for unpacked index files (resolved on first need).
        observer: told what each read returned while an access analyzer is attached.
    """

    __slots__ = ("cache_root", "current", "embedder", "observer", "path", "record")

    def __init__(self, path: str, current: Callable[[], Snapshot], embedder: Any,
                 record: Callable[[str, float], None], cache_root: Callable[[], str]) -> None:
        self.path = path
        self.current = current
        self.embedder = embedder
        self.record = record
        self.cache_root = cache_root
        self.observer: Callable[[list[Observed]], None] | None = None


def index_config_of(snap: Snapshot) -> IndexConfig:
    """The file's index settings (fixed at create time), parsed once per snapshot."""
    config = snap.extras.get("index_config")
    if config is None:
        config = snap.extras["index_config"] = IndexConfig.from_dict(
            snap.toc.options.get("index"))
    return config  # type: ignore[return-value]


class Reads:
    """Read API over one collection (``_scope``) of a snapshot at a record time (``_snap``
    and ``_at`` say which)."""

    _ctx: ReadContext
    _scope: str = DEFAULT

    def _snap(self) -> Snapshot:
        raise NotImplementedError

    def _at(self) -> int | None:
        """The record time reads see (None: the current state)."""
        return None

    @property
    def dim(self) -> int | None:
        """Dimension of the stored embeddings (None until the first one)."""
        return self._snap().dim

    @property
    def embedder_info(self) -> dict[str, Any] | None:
        """``{"name", "dim"}`` of the embedder the file was created with, if any."""
        info = self._snap().toc.options.get("embedder")
        return dict(info) if info else None

    # ----------------------------------------------------------------- frames

    def get(self, id: str) -> Frame:
        """Return the current version of a frame.

        Raises:
            FrameNotFoundError: no frame has this id, or it was deleted.
        """
        snap = self._snap()
        frame = self._frame(snap, snap.get(key_of(self._scope, check_id(id)), self._at()))
        observer = self._ctx.observer
        if observer is not None:
            observer([([frame.id], [to_us(frame.created_at)], None)])
        return frame

    def get_many(self, ids: Iterable[str]) -> list[Frame | None]:
        """The current version of each frame, in the given order: None for an id with
        none (never stored, or deleted). A large batch looks its ids up together: ids
        the memory never held cost no lookup each."""
        snap, at = self._snap(), self._at()
        keys = [key_of(self._scope, check_id(fid)) for fid in check_records(ids, "ids")]
        held = snap.may_hold(keys)
        snap.announce_ids([key for key, maybe in zip(keys, held, strict=True) if maybe], at)
        refs = [snap.latest(key, at) if maybe else None
                for key, maybe in zip(keys, held, strict=True)]
        live = [ref is not None and not snap.is_tombstone(ref) for ref in refs]
        loaded = iter(self._frames(snap, [ref for ref, ok in zip(refs, live, strict=True)
                                          if ok]))
        frames: list[Frame | None] = [next(loaded) if ok else None for ok in live]
        observer = self._ctx.observer
        found = [f for f in frames if f is not None]
        if observer is not None and found:
            observer([([f.id for f in found], [to_us(f.created_at) for f in found], None)])
        return frames

    def __contains__(self, id: object) -> bool:
        if not isinstance(id, str):
            return False
        try:
            self.get(id)
        except FrameNotFoundError:
            return False
        return True

    def history(self, id: str) -> list[Frame]:
        """Every content version of a frame, oldest first, with record-time validity.

        A deleted frame's last version has ``valid_to`` set to the deletion time.

        Raises:
            FrameNotFoundError: the id never existed (as of this view).
        """
        snap, at = self._snap(), self._at()
        key = key_of(self._scope, check_id(id))
        refs = [r for r in snap.versions_of(key) if at is None or snap.valid_from(r) <= at]
        if not refs:
            raise not_found(key)
        content = [i for i, ref in enumerate(refs) if not snap.is_tombstone(ref)]
        return self._frames(snap, [refs[i] for i in content], [
            snap.valid_from(refs[i + 1]) if i + 1 < len(refs) else snap.valid_to(refs[i])
            for i in content])

    def timeline(self, since: datetime | None = None, until: datetime | None = None,
                 limit: int | None = None, reverse: bool = False) -> list[Frame]:
        """Current frames with ``since <= created_at < until``, ordered by created_at."""
        snap, refs = self._timeline(since, until, limit, reverse)
        return self._frames(snap, list(refs))

    def iter_timeline(self, since: datetime | None = None, until: datetime | None = None, *,
                      limit: int | None = None, reverse: bool = False) -> Iterator[Frame]:
        """Like ``timeline`` but lazy: frames are read as the iterator advances, a page at
        a time (``LISTING_PAGE`` frames, each page twice the last up to ``LISTING_PAGES``)."""
        snap, refs = self._timeline(since, until, limit, reverse)
        size = LISTING_PAGE
        while page := list(islice(refs, size)):  # read together, yielded lazily
            yield from self._frames(snap, page)
            size = min(2 * size, LISTING_PAGES)

    def _timeline(self, since: datetime | None, until: datetime | None, limit: int | None,
                  reverse: bool) -> tuple[Snapshot, Iterator[RowRef]]:
        """The snapshot a timeline reads and its rows, read as the iterator advances."""
        from .index.listing import listing, matching

        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidInputError(f"limit must be a non-negative int, got {limit!r}")
        snap = self._snap()
        lo = None if since is None else to_us(since, "since")
        hi = None if until is None else to_us(until, "until")
        req = listing(self._scope, None, at=self._at(), window=(lo, hi), reverse=reverse)
        refs = matching(snap, req)
        return snap, refs if limit is None else islice(refs, limit)

    def changes(self, since: datetime | None = None, *,
                on_damaged: Callable[[str], None] | None = None) -> Iterator[Change]:
        """Every write in record-time order: each version stored and each delete.

        This is the file's full change log (an export replays it into another file with
        ``put_many``/``delete_many(recorded_at=...)``); on an ``as_of`` view it ends at
        the view's time. ``since`` skips writes recorded before it. ``on_damaged`` makes
        a version whose payload fails its checksum a report (its message) instead of a
        CorruptFileError, and the log goes on (salvage).
        """
        from .reports import Change

        snap, at = self._snap(), self._at()
        lo = None if since is None else to_us(since, "since")
        for ref in _announced(snap, snap.iter_all()):
            try:
                t = snap.valid_from(ref)
                if at is not None and t > at:
                    break
                if lo is not None and t < lo:
                    continue
                if snap.is_tombstone(ref):
                    collection, frame_id = split_key(ref.frame_id())
                    change = Change("delete", frame_id, from_us(t), None, collection)
                else:
                    frame = self._frame(snap, ref)
                    change = Change("put", frame.id, frame.valid_from, frame, frame.collection)
            except CorruptFileError as exc:
                if on_damaged is None:
                    raise
                on_damaged(f"a version of frame {_frame_id_or_gid(ref)!r}: {exc}")
                continue
            yield change

    def __iter__(self) -> Iterator[Frame]:
        return self.iter_timeline()

    def __len__(self) -> int:
        if self._at() is not None:
            return self.count()
        from .engine.records import live_by_collection

        return live_by_collection(self._snap().counters()).get(self._scope, 0)

    def ids(self) -> list[str]:
        """Ids of the current frames, in created_at order (no payload is decoded)."""
        return self.select_ids()

    def select_ids(self, filter: Mapping[str, Any] | None = None, *,
                   as_of: datetime | int | None = None,
                   time_range: tuple[datetime | None, datetime | None] | None = None
                   ) -> list[str]:
        """The ids of ``select(filter, ...)``, in its order, without reading the frames:
        what a caller that needs only ids (to delete every match) should ask for. The
        filter is answered from the postings and value columns however many frames it
        matches, so no payload is decoded unless a condition needs one (a range checks
        the records it admits)."""
        from .index.listing import matching

        snap = self._snap()
        req = self._listing(snap, filter, as_of, time_range)
        share = None if filter is None else 1.0  # no filter: the time index, in order
        return [split_key(ref.frame_id())[1] for ref in matching(snap, req, share=share)]

    def _frames(self, snap: Snapshot, refs: list[RowRef],
                valid_tos: list[int] | None = None) -> list[Frame]:
        """The frames of ``refs``, their records read together (``Snapshot.loads``)."""
        versions = snap.loads(refs)
        tos = valid_tos or [None] * len(refs)
        return [self._frame(snap, ref, to, v)
                for ref, to, v in zip(refs, tos, versions, strict=True)]

    def _frame(self, snap: Snapshot, ref: RowRef, valid_to: int | None = None,
               v: Version | None = None) -> Frame:
        v = snap.load(ref) if v is None else v
        at = self._at()
        to = snap.valid_to(ref) if valid_to is None else valid_to
        end = None if to == TIME_MAX or (at is not None and to > at) else from_us(to)

        def embedding() -> list[float] | None:
            raw = snap.embedding(ref)
            return None if raw is None else array("f", raw).tolist()

        collection, frame_id = split_key(v.id)
        return Frame(frame_id, v.text, dict(v.metadata or {}), list(v.tags or []),
                     from_us(v.created_at), v.version, from_us(v.valid_from), end, embedding,
                     collection)

    # ---------------------------------------------------------------- listing

    def select(self, filter: Mapping[str, Any] | None = None, *, order_by: str = "created_at",
               reverse: bool = False, limit: int | None = None, offset: int = 0,
               as_of: datetime | int | None = None,
               time_range: tuple[datetime | None, datetime | None] | None = None
               ) -> list[Frame]:
        """Current frames of this collection that match ``filter``, in order.

        Args:
            filter: the filter language of ``find`` (None: every frame).
            order_by: ``created_at`` (event time, ties by record order) or ``valid_from``
                (record time).
            reverse: newest first.
            limit, offset: the page (``offset`` frames skipped, at most ``limit`` given).
            as_of: list what the memory contained at this record time or generation.
            time_range: ``(since, until)`` on event time, either end None.

        Raises:
            FilterError: a malformed filter.
        """
        from .index.listing import select_refs

        check_page(limit, offset)
        snap = self._snap()
        req = self._listing(snap, filter, as_of, time_range, order_by, reverse)
        return self._frames(snap, select_refs(snap, req, offset=offset, limit=limit))

    def count(self, filter: Mapping[str, Any] | None = None, *,
              as_of: datetime | int | None = None,
              time_range: tuple[datetime | None, datetime | None] | None = None) -> int:
        """How many current frames of this collection match ``filter`` (see ``select``)."""
        from .index.listing import count_refs

        snap = self._snap()
        return count_refs(snap, self._listing(snap, filter, as_of, time_range))

    def _listing(self, snap: Snapshot, spec: Mapping[str, Any] | None,
                 as_of: datetime | int | None, time_range: Any,
                 order_by: str = "created_at", reverse: bool = False) -> Any:
        from .index.listing import listing
        from .index.requests import event_window

        return listing(self._scope, spec, at=self._record_time(snap, as_of),
                       window=event_window(time_range), order_by=order_by, reverse=reverse)

    # ----------------------------------------------------------------- search

    @property
    def index_config(self) -> IndexConfig:
        """The file's index settings (fixed at create time)."""
        return index_config_of(self._snap())

    def find(self, text: str | None = None, *, vector: Sequence[float] | None = None,
             k: int = 10, mode: str = "hybrid", filter: Mapping[str, Any] | None = None,
             as_of: datetime | int | None = None,
             time_range: tuple[datetime | None, datetime | None] | None = None,
             syntax: str = "plain", weights: Mapping[str, float] | None = None,
             group_by: str | None = None, tie_break: Sequence[str] = ()) -> list[Hit]:
        """Search the memory; returns up to ``k`` hits, best first (ties by frame id).

        Args:
            text: query text for BM25 (plain text: quotes make phrases, nothing raises;
                ``syntax="query"`` enables tantivy's query language).
            vector: query embedding (the file's dimension).
            k: number of hits wanted (>= 1).
            mode: ``hybrid`` (reciprocal rank fusion of both; with only one of text/vector
                given it is that mode), ``vector`` or ``lexical``.
            filter: metadata/tags filter (``{"key": value}``, ``$eq $ne $gt $gte $lt $lte
                $in $nin $exists $and $or $not``, ``tags``); applied exactly.
            as_of: search what the memory contained at this record time or generation.
            time_range: ``(since, until)`` on event time (``created_at``), either end None.
            syntax: ``plain`` (default) or ``query`` (tantivy's query language).
            weights: hybrid weights per mode, e.g. ``{"lexical": 1.0, "vector": 2.0}``.
            group_by: a metadata key: return the best hit of each of the ``k`` best groups
                of frames sharing its value (a frame without it is a group of its own,
                named by its id: chunks holding their parent's id join the parent). In
                vector mode with cosine distance a group's score is its best cosine
                recomputed in float64 from the stored vectors, and the ranking is exact.
            tie_break: fields ordering tied hits (or groups) before the frame id:
                ``created_at``, ``id`` or metadata keys, e.g. ``("rank", "created_at")``.

        Raises:
            ValueError: bad arguments (k < 1, unknown mode, missing query, NaN vector).
            DimensionMismatchError: the vector does not have the file's dimension.
            FilterError: a malformed filter.

        >>> import os, tempfile
        >>> from memvid_store import Memory
        >>> with Memory.create(os.path.join(tempfile.mkdtemp(), "m.mv2")) as mem:
        ...     _ = mem.put("the budget meeting moved to friday")
        ...     [hit.text for hit in mem.find("budget", k=1)]
        ['the budget meeting moved to friday']
        """
        from .index.grouping import with_grouping

        return self.find_batch([with_grouping({
            "text": text, "vector": vector, "k": k, "mode": mode, "filter": filter,
            "as_of": as_of, "time_range": time_range, "syntax": syntax, "weights": weights,
        }, group_by, tie_break)])[0]

    def find_batch(self, requests: Iterable[Mapping[str, Any]]) -> list[list[Hit]]:
        """Run several ``find`` requests (dicts of its arguments) sharing work.

        Identical requests run once; exact vector scoring is one matrix product for the
        batch; results are cached per snapshot. Grouped requests (``group_by`` or
        ``tie_break``) run one by one.
        """
        from .index.grouping import answer_requests

        raw = [dict(r) for r in find_requests(requests)]
        if self._ctx.embedder is not None:
            raw = fill_query_vectors(self._ctx.embedder, raw)
        return answer_requests(raw, self._find_ranked, self._find_grouped)

    def _find_grouped(self, request: dict[str, Any]) -> list[Hit]:
        """One ``find`` with ``group_by`` / ``tie_break`` (:mod:`.index.grouping`), every
        round on the same snapshot."""
        from .index.grouping import grouped_find

        pinned = pinned_reads(self)
        snap, as_of = pinned._snap(), request.get("as_of")
        return grouped_find(request, lambda r: pinned._find_ranked([r])[0],
                            lambda hits: pinned.stored_vectors(hits, as_of),
                            snap.dim, index_config_of(snap).distance)

    def stored_vectors(self, hits: list[Hit], as_of: datetime | int | None = None
                       ) -> list[array | None]:
        """The embeddings of hits' versions (float32, as stored), as ``find(...,
        as_of=as_of)`` returned them; FrameNotFoundError for a hit not held here."""
        snap = self._snap()
        at = self._record_time(snap, as_of)
        out = []
        for hit in hits:
            raw = snap.embedding(snap.get(key_of(self._scope, hit.id), at))
            out.append(None if raw is None else array("f", raw))
        return out

    def _find_ranked(self, raw: list[dict[str, Any]]) -> list[list[Hit]]:
        """``find_batch`` of plain requests (their query vectors filled in)."""
        started = time.perf_counter()
        _, searcher, reqs = search_scope(self, raw)
        hits = searcher.find_batch(reqs)
        self._ctx.record("first_query", time.perf_counter() - started)
        observer = self._ctx.observer
        if observer is not None:
            observer([([h.id for h in found], [to_us(h.created_at) for h in found], r.vector)
                      for r, found in zip(reqs, hits, strict=True)])
        return hits

    # ------------------------------------------------------------ time travel

    def commits(self) -> list[tuple[int, datetime]]:
        """(generation, commit record time) of every commit this file remembers, oldest first.

        Commits only: each write is a generation too (``Memory.generation`` after it), and
        the generations between two listed ones are the writes committed by the later one.
        ``as_of(generation)`` of a commit is ``as_of(its time)``: the state right after it.
        """
        from .engine.history import commit_log

        snap, at = self._snap(), self._at()
        return [(g, from_us(t)) for g, t in commit_log(snap) if at is None or t <= at]

    def as_of(self, t: datetime | int) -> MemoryView:
        """A read-only view of what the memory contained at record time ``t``.

        Args:
            t: an aware datetime, or a generation (int): ``Memory.generation`` read after a
                write or commit names exactly the state it made, WAL-only writes included.

        Raises:
            HistoryUnavailableError: ``t`` is older than the history kept by compaction.
            InvalidInputError: no such generation (yet).
        """
        snap = self._snap()
        if t is None:
            raise InvalidTypeError("as_of takes a datetime or a generation int, not None")
        return MemoryView(self, snap, self._record_time(snap, t))  # type: ignore[arg-type]

    def _record_time(self, snap: Snapshot, t: datetime | int | None) -> int | None:
        """The record time a read as of ``t`` sees from this view (never past the view's;
        None: the view's own)."""
        if t is None:
            return self._at()
        if isinstance(t, bool) or not isinstance(t, int | datetime):
            raise InvalidTypeError(
                f"as_of takes a datetime or a generation int, not {type(t).__name__}")
        if isinstance(t, int):
            from .engine.history import state_time

            at = state_time(snap, t)
        else:
            at = to_us(t, "as_of")
        floor = snap.toc.history_floor_us
        if floor is not None and at < floor:
            raise HistoryUnavailableError(
                f"history before {from_us(floor).isoformat()} was compacted away; "
                f"{from_us(at).isoformat()} cannot be reconstructed")
        current = self._at()
        return at if current is None else min(at, current)


def pinned_reads(owner: Reads) -> Reads:
    """The reads of ``owner`` held on its current snapshot (the rounds of one query)."""
    return _Pinned(owner, owner._snap())


class _Pinned(Reads):
    """The reads of ``owner`` held on one snapshot."""

    def __init__(self, owner: Reads, snap: Snapshot) -> None:
        self._owner = owner
        self._ctx = owner._ctx
        self._scope = owner._scope
        self._snapshot = snap

    def _snap(self) -> Snapshot:
        return self._snapshot

    def _at(self) -> int | None:
        return self._owner._at()


class MemoryView(Reads):
    """Read-only view of a memory at a past record time (from ``Memory.as_of``)."""

    def __init__(self, owner: Reads, snap: Snapshot, at: int) -> None:
        self._owner = owner
        self._ctx = owner._ctx
        self._scope = owner._scope
        self._snapshot = snap
        self._time = at

    @property
    def time(self) -> datetime:
        return from_us(self._time)

    def _snap(self) -> Snapshot:
        self._ctx.current()  # raises ClosedError once the owner is closed
        return self._snapshot

    def _at(self) -> int | None:
        return self._time

    def stats(self) -> Stats:
        """The owner's stats, with ``frames`` counted as of this view (reads the timeline)."""
        from dataclasses import replace

        return replace(self._owner.stats(), frames=len(self))  # type: ignore[attr-defined]

    def _readonly(self, *_: Any, **__: Any) -> Any:
        raise ReadOnlyError("an as_of view is read-only")

    put = put_many = update = delete = delete_many = clear = seal = compact = _readonly

    def __repr__(self) -> str:
        return f"<MemoryView {self._ctx.path!r} as of {self.time.isoformat()}>"


def search_scope(reads: Reads, raw: list[dict[str, Any]], like: Scope | None = None
                 ) -> Scope:
    """The snapshot ``reads`` sees, its searcher, and ``find``'s argument dicts ``raw``
    validated into Requests (query texts already embedded where needed). A search over
    several memories runs each one's part through these; ``like``: another memory's scope
    of the same ``raw``, whose Requests are reused when the dimension and metric agree."""
    from .index.requests import build_request, rebind
    from .index.searcher import searcher_for

    snap = reads._snap()
    config = index_config_of(snap)
    searcher = searcher_for(snap, config, reads._ctx.cache_root)
    if like is not None and like[0].dim == snap.dim and (
            index_config_of(like[0]).distance == config.distance) and all(
            req.collection == reads._scope for req in like[2]):
        reqs = [rebind(req, snap, reads._record_time(snap, r.get("as_of")))
                for req, r in zip(like[2], raw, strict=True)]
    else:
        reqs = [build_request(r, snap=snap, config=config, collection=reads._scope,
                              at=reads._record_time(snap, r.get("as_of"))) for r in raw]
    return snap, searcher, reqs


def _announced(snap: Snapshot, refs: Iterator[RowRef]) -> Iterator[RowRef]:
    """``refs``, from remote bytes ``LISTING_PAGES`` of them at a time with the payload
    reads of each page announced first (one round a page, not one a chunk)."""
    return snap.announced(refs, lambda page: snap.fetch_frames(
        [ref for ref in page if not snap.is_tombstone(ref)]), LISTING_PAGES)


def _frame_id_or_gid(ref: RowRef) -> str:
    try:
        return ref.frame_id()
    except CorruptFileError:
        return f"<gid {ref.gid}>"


def find_requests(requests: Any) -> list[Mapping[str, Any]]:
    """``find_batch``'s requests: an iterable of dicts of ``find``'s arguments."""
    out = list(check_records(requests, "requests"))
    for i, r in enumerate(out):
        if not isinstance(r, Mapping):
            raise InvalidTypeError(f"request {i} must be a dict of find's arguments, "
                                   f"not {type(r).__name__}")
    return out
