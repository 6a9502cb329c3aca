"""A consistent read state: one commit's runs plus the WAL delta replayed on top.

Visibility rule (record time ``T``; ``None`` means "now"): a version is visible when it
is a content version, ``valid_from <= T`` and ``T < valid_to``. ``valid_to`` of a version
is the ``valid_from`` of the version that replaced it: stored in its run when known at
write time, otherwise found in the supersession lists of newer runs or in the delta.
"""

from __future__ import annotations

import contextlib
import heapq
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from typing import Any, TypeVar

from ..errors import CorruptFileError, FrameNotFoundError
from ..lazy import loaded
from ..lazy import numpy as np
from .codec import Codec, unpack_payload
from .distinct import distinct
from .fileio import FileView
from .format import TIME_MAX, TOC_FOOTER_SIZE, Header, Toc, crc32, unpack_toc_footer
from .keys import DEFAULT, SEP, member_test, split_key
from .records import Version, apply_counters, id_hash
from .runs import (
    FLAG_TOMBSTONE,
    FLAG_VECTOR,
    RunReader,
    guessed_id_spans,
    id_spans,
    part_spans,
    read_rows_by_page,
)
from .terms import multi_term, term_hash, terms_of, walk
from .value_kinds import NUMBERS, ValueKind, value_span

_T = TypeVar("_T")
# what a search hit shows of a version: id, version, created_at µs, text, metadata, tags
Record = tuple[str, int, int, str, dict, Sequence[str]]

BULK_LOOKUP = 64  # ids looked up together (``may_hold``) from this many
BULK_LOOKUP_IMPORTING = 4096  # ... in a process that has not loaded numpy yet
PURE_COMPLEMENT_MAX = 200_000  # versions a complement is listed from in Python without numpy


@dataclass(slots=True)
class RowRef:
    """One version located in a run (``run``/``row``) or in the delta (``version``)."""

    gid: int
    run: RunReader | None = None
    row: int = -1
    version: Version | None = None

    def frame_id(self) -> str:
        """Key of the version (its collection and id), read without decoding its payload."""
        return self.version.id if self.version is not None else self.run.frame_id(self.row)


def announce_rows(view: Any, refs: list[RowRef], ids_of: list[RowRef] | None = None, *,
                  ahead: bool = False) -> None:
    """Download the row reads of ``refs`` from ``view`` (remote bytes, ``Snapshot.fetch_rows``)
    in one round (``ahead``: in the next round, whatever starts it); with the ids of
    ``ids_of`` where ids of one length would lie (``RunReader.guessed_id_span``: ties
    ordered by id then read no round of their own)."""
    rows: dict[int, tuple[RunReader, list[int]]] = {}
    for ref in refs:
        if ref.run is not None:
            rows.setdefault(id(ref.run), (ref.run, []))[1].append(ref.row)
    spans = [span for run, of_run in rows.values() for span in run.rows_spans(of_run)]
    spans += guessed_id_spans([ref for ref in ids_of or () if ref.run is not None])
    if spans and ahead:
        view.ahead(spans, "rows")
    elif spans:
        view.fetch(spans, "rows", ROW_GAP)


def all_current(counters: dict[str, int]) -> bool:
    """Whether a TOC's ``counters`` show every version current: none replaced or deleted
    (then every row's ``vto`` is ``TIME_MAX`` and no row is a tombstone)."""
    return ("versions" in counters and not counters.get("tombstones", 0)
            and counters.get("live") == counters["versions"])


class Snapshot:
    """Read API over one commit plus a delta. Shared by Memory and its as_of views."""

    def __init__(self, view: FileView, header: Header, toc: Toc, delta: list[Version],
                 runs: list[RunReader] | None = None) -> None:
        self.view = view
        self.header = header
        self.toc = toc
        self.delta = delta
        self.delta_by_id: dict[str, list[Version]] = {}
        self.delta_replaced: dict[int, int] = {}  # run gid -> valid_to, replaced by the delta
        # record time of each write in the delta (one per WAL record), oldest first
        self.delta_times: list[int] = []
        self._delta_dim: int | None = None  # dimension of the delta's first embedding
        self._delta_inserts_only = True  # no delta version replaces or deletes another
        # whether any version belongs to a collection other than the default one: reads of
        # the default collection skip the key test while none does
        self.named_collections = bool(toc.counters.get("collections"))
        self._committed_current = all_current(toc.counters)  # see all_live
        # postings of the delta (term hash -> content versions), made on first use and
        # brought up to date with the delta's new versions on each use after
        self._delta_posted: dict[int, list[Version]] = {}
        self._delta_posted_upto = 0
        self._posting_lock = threading.Lock()
        for v in delta:
            self._index_delta(v)
        self.runs = runs if runs is not None else [RunReader(view, r) for r in toc.runs()]
        if view.batches:  # remote bytes: a part of every run in one round (runs.fetch_parts)
            for run in self.runs:
                run.siblings = self.runs
            read_rows_by_page(self.runs, self._committed_current)
        self.extras: dict[str, object] = {}  # per-snapshot caches of higher layers (search)
        self._memo_lock = threading.Lock()
        # decoded records (Snapshot.record) by gid, shared by the snapshots of one file (a
        # committed version never changes): any object with get(key) and put(key, value, size)
        self.frame_cache: Any = None

    def memoized(self, name: str, key: Any, keep: int, compute: Callable[[], Any]) -> Any:
        """``compute()``, kept in the snapshot's cache ``name`` (in ``extras``) under
        ``key`` for the last ``keep`` keys asked (a query's parts and repeated filters ask
        again). Two threads may compute one key at once; both get an equal answer."""
        with self._memo_lock:
            cache: dict[Any, Any] = self.extras.setdefault(name, {})  # type: ignore[assignment]
            found = cache.get(key, _MISSING)
        if found is _MISSING:
            found = compute()
            with self._memo_lock:
                cache[key] = found
                while len(cache) > keep:
                    del cache[next(iter(cache))]
        return found

    def _index_delta(self, v: Version) -> None:
        if SEP in v.id:
            self.named_collections = True
        if v.embedding and self._delta_dim is None:
            self._delta_dim = len(v.embedding) // 4
        if not self.delta_times or self.delta_times[-1] != v.valid_from:
            self.delta_times.append(v.valid_from)  # a WAL record's versions share its time
        if v.tombstone or v.prev_gid >= 0:
            self._delta_inserts_only = False
        chain = self.delta_by_id.setdefault(v.id, [])
        if chain and chain[-1].gid == v.prev_gid:
            chain[-1].valid_to = v.valid_from
        elif v.prev_gid >= 0:
            self.delta_replaced[v.prev_gid] = v.valid_from
        chain.append(v)

    def add_delta(self, versions: list[Version]) -> None:
        """Writer only: versions appended to the WAL become readable at once."""
        for v in versions:
            self.delta.append(v)
            self._index_delta(v)

    @property
    def generation(self) -> int:
        """The commit counter of the TOC (header slot ``generation % 2``)."""
        return self.toc.generation

    @property
    def public_generation(self) -> int:
        """The generation readers see: the commit's, plus one per write in the delta."""
        return self.toc.public_generation + len(self.delta_times)

    @property
    def dim(self) -> int | None:
        return self.toc.dim if self.toc.dim is not None else self._delta_dim

    @cached_property
    def codec(self) -> Codec:
        ref = self.toc.find("dict")
        if ref is None:
            return Codec(None)
        data = bytes(self.view.read(ref.offset, ref.length, "segment:dict"))
        if crc32(data) != ref.crc:
            raise CorruptFileError(f"dictionary segment at offset {ref.offset} checksum "
                                   "mismatch", "segment:dict", ref.offset)
        return Codec(data)

    @cached_property
    def run_overrides(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for run in self.runs:
            out.update(run.superseded())
        return out

    def valid_to(self, ref: RowRef) -> int:
        if ref.version is not None:
            return ref.version.valid_to
        if self.all_live():  # every version current: every row's vto is TIME_MAX
            return TIME_MAX
        to = ref.run.item("vto", ref.row)
        if to != TIME_MAX:
            return to
        to = self.run_overrides.get(ref.gid, TIME_MAX)
        if to != TIME_MAX:
            return to
        return self.delta_replaced.get(ref.gid, TIME_MAX)

    def valid_from(self, ref: RowRef) -> int:
        return ref.version.valid_from if ref.version else ref.run.item("vfrom", ref.row)

    def all_live(self) -> bool:
        """Whether every version this snapshot holds is current (no version was replaced
        or deleted: an append-only memory), so every one is visible now."""
        return self._delta_inserts_only and self._committed_current

    def counters(self) -> dict[str, int]:
        """The TOC's counters (frames, versions, bytes...) with the WAL delta counted in."""
        return apply_counters(self.toc.counters, self.delta)

    def created_at(self, ref: RowRef) -> int:
        """Event time of a version, read without decoding its payload."""
        return ref.version.created_at if ref.version else ref.run.item("created", ref.row)

    def version_number(self, ref: RowRef) -> int:
        return ref.version.version if ref.version else ref.run.item("version", ref.row)


    def is_tombstone(self, ref: RowRef) -> bool:
        if ref.version is not None:
            return ref.version.tombstone
        if self.all_live():  # nothing deleted: no tombstone
            return False
        return bool(ref.run.item("flags", ref.row) & FLAG_TOMBSTONE)

    def visible(self, ref: RowRef, at: int | None) -> bool:
        if self.is_tombstone(ref):
            return False
        to = self.valid_to(ref)
        if at is None:
            return to == TIME_MAX
        return self.valid_from(ref) <= at < to

    def member_test(self, collection: str) -> Callable[[str], bool] | None:
        """A test of whether a key belongs to ``collection``; None when every version
        does (the default collection of a file without named collections)."""
        if collection == DEFAULT and not self.named_collections:
            return None
        return member_test(collection)

    # ---------------------------------------------------------------- lookups

    def announce_ids(self, frame_ids: list[str], at: int | None = None) -> None:
        """From remote bytes, download together what looking ``frame_ids`` up reads: the
        rows their hashes point at, with those rows' ids (``fetch_rows``) and, for a
        past ``at``, when each became current; not a round or three an id."""
        if not self.view.batches:
            return
        hashes = [id_hash(frame_id) for frame_id in frame_ids]
        refs = [RowRef(run.base + row, run, row) for run in self.runs for h in hashes
                for row in run.rows_for_hash(h)]
        if refs and at is not None:
            self.view.fetch(part_spans(self.runs, "vfrom"), "rows")
        self.fetch_rows(refs, ids=True)

    def versions_of(self, frame_id: str) -> list[RowRef]:
        """Every stored version of an id (content and tombstones), oldest first."""
        self.announce_ids([frame_id])
        h = id_hash(frame_id)
        refs: list[RowRef] = []
        for run in self.runs:
            for row in run.rows_for_hash(h):
                if run.frame_id(row) == frame_id:
                    refs.append(RowRef(run.base + row, run, row))
        refs.extend(RowRef(v.gid, version=v) for v in self.delta_by_id.get(frame_id, ()))
        return refs

    def locate(self, gid: int) -> RowRef:
        """The version with global id ``gid`` (a search hit)."""
        delta_start = self.toc.next_gid
        if delta_start <= gid < delta_start + len(self.delta):
            return RowRef(gid, version=self.delta[gid - delta_start])
        i = bisect_right(self._run_bases, gid) - 1
        if i < 0 or gid >= self.runs[i].end:
            raise CorruptFileError(f"an index refers to unknown version {gid}", "segment", -1)
        run = self.runs[i]
        return RowRef(gid, run, gid - run.base)

    @cached_property
    def _run_bases(self) -> list[int]:
        return [run.base for run in self.runs]

    def latest(self, frame_id: str, at: int | None) -> RowRef | None:
        """The version of an id current at ``at`` (tombstones included)."""
        for v in reversed(self.delta_by_id.get(frame_id, ())):
            if at is None or v.valid_from <= at:
                return RowRef(v.gid, version=v)
        h = id_hash(frame_id)
        for run in reversed(self.runs):
            best = None
            for row in run.rows_for_hash(h):
                if run.frame_id(row) == frame_id and (at is None or run.item("vfrom", row) <= at):
                    best = row
            if best is not None:
                return RowRef(run.base + best, run, best)
        return None

    def may_hold(self, frame_ids: list[str]) -> list[bool]:
        """Whether each id may have a version (False: it has none), the runs' sorted id
        hashes searched once for all of them: a batch of new ids costs no lookup each.
        A batch too small to gain from it (or one that would import numpy for less than
        it costs) is all True."""
        if not self.runs or len(frame_ids) < (
                BULK_LOOKUP if loaded("numpy") is not None else BULK_LOOKUP_IMPORTING):
            return [True] * len(frame_ids)
        hashes = np.array([id_hash(fid) for fid in frame_ids], "<u8")
        held = np.zeros(len(frame_ids), bool)
        for run in self.runs:
            held |= run.holds_hashes(hashes)
        delta = self.delta_by_id
        return [h or fid in delta for h, fid in zip(held.tolist(), frame_ids, strict=True)]

    def get(self, frame_id: str, at: int | None) -> RowRef:
        self.announce_ids([frame_id], at)
        ref = self.latest(frame_id, at)
        if ref is None or self.is_tombstone(ref):
            raise not_found(frame_id)
        return ref

    # ----------------------------------------------------------------- postings

    def posted(self, term: str) -> list[RowRef]:
        """Every content version posted under ``term`` (engine/terms.py), in gid order.

        Versions of any visibility: callers check it (and recheck the condition the term
        stands for on the payload, since term hashes may collide).
        """
        h = term_hash(term)
        refs: list[RowRef] = []
        for run in self.runs:
            rows = self.run_posted_rows(run, h)
            base = run.base
            refs.extend(RowRef(base + row, run, row) for row in rows)
        refs.extend(RowRef(v.gid, version=v) for v in self._delta_postings().get(h, ()))
        return refs

    def posted_gids(self, term: str) -> Any:
        """Gids (numpy int64, ascending) of every version posted under ``term``, as
        :meth:`posted` lists them, without a ``RowRef`` each."""
        h = term_hash(term)
        parts = [(run.posted_array(h) if run.has_postings else np.asarray(
            self.run_posted_rows(run, h), "<u4")).astype("<i8") + run.base for run in self.runs]
        parts.append(np.array([v.gid for v in self._delta_postings().get(h, ())], "<i8"))
        return np.concatenate(parts)

    def excluded_gids(self, terms: list[str]) -> Any:
        """Gids (numpy, ascending) of every version posted under none of ``terms``, of
        any visibility. A version is left out when a term's hash is among its postings:
        as exact as the plans that trust postings without the payload (64-bit hashes)."""
        return self.gids_except([self.posted_gids(term) for term in terms])

    def excluded_gid_list(self, terms: list[str]) -> list[int]:
        """``excluded_gids`` as a list; in a process without numpy, a file of at most
        ``PURE_COMPLEMENT_MAX`` versions is walked in Python (cheaper than importing
        numpy for a first answer)."""
        top = self.toc.next_gid + len(self.delta)
        if loaded("numpy") is not None or top > PURE_COMPLEMENT_MAX:
            return self.excluded_gids(terms).tolist()
        hashes = [term_hash(term) for term in terms]
        out: list[int] = []
        for run in self.runs:
            left = {row for h in hashes for row in self.run_posted_rows(run, h)}
            out += [run.base + row for row in range(run.n) if row not in left]
        posted = self._delta_postings()
        left = {v.gid for h in hashes for v in posted.get(h, ())}
        return out + [gid for gid in range(self.toc.next_gid, top) if gid not in left]

    def gids_except(self, left_out: list[Any]) -> Any:
        """Gids (numpy, ascending) of every stored version but those of ``left_out``
        (numpy arrays of gids), of any visibility."""
        top = self.toc.next_gid + len(self.delta)
        keep = np.zeros(top, bool)
        for run in self.runs:
            keep[run.base : run.end] = True
        keep[self.toc.next_gid :] = True
        for gids in left_out:
            keep[gids] = False
        return np.flatnonzero(keep)

    def count_current(self, term: str, within: str | None) -> int | None:
        """How many current content versions are posted under ``term`` and, with
        ``within`` (a collection's term), under it too: counted from the posting and
        ``vto`` columns in bulk (numpy), never from payloads; None when a run was written
        without posting lists."""
        return self.count_current_any([term], within)

    def count_current_any(self, terms: list[str], within: str | None) -> int | None:
        """``count_current`` of the versions posted under any of ``terms``."""
        if not all(run.has_postings for run in self.runs):
            return None
        hashes = [term_hash(term) for term in terms]
        posted = self._delta_postings()
        delta = list({v.gid: v for h in hashes for v in posted.get(h, ())}.values())
        if loaded("numpy") is None and sum(
                run.posted_count(h) for run in self.runs for h in hashes) <= ROW_COUNT_MAX:
            return self._count_rows(hashes, delta, within)
        rows = [(run, run.posted_array(hashes[0]) if len(hashes) == 1 else
                 distinct(np.concatenate([run.posted_array(h) for h in hashes])))
                for run in self.runs]
        return self._count_live(rows, delta, within)

    def _count_rows(self, hashes: list[int], delta: list[Version], within: str | None
                    ) -> int:
        """``count_current_any`` of term hashes ``hashes`` row by row, without numpy (up
        to ``ROW_COUNT_MAX`` rows cost less than importing it)."""
        w = None if within is None else term_hash(within)
        total = 0
        for run in self.runs:
            for row in set().union(*(run.posted_rows(h) for h in hashes)):
                if (self.visible(RowRef(run.base + row, run, row), None)
                        and (w is None or run.is_posted(w, row))):
                    total += 1
        return total + self._count_delta(delta, within)

    def count_current_gids(self, gids: Any, within: str | None) -> int:
        """How many of the versions ``gids`` (numpy, ascending, distinct) are current
        content versions, under ``within`` too when given."""
        return self._count_live(*self._split(gids), within)

    def current_gids(self, gids: Any | None, within: str | None
                     ) -> tuple[list[tuple[RunReader, Any]], list[Version]]:
        """Those of the versions ``gids`` (numpy, ascending, distinct; None: every
        version) that are current content versions, under ``within`` too when given:
        (run, rows) per run (numpy, ascending) and the delta's versions."""
        if gids is None:
            by_run = [(run, np.arange(run.n, dtype="<u4")) for run in self.runs]
            delta: list[Version] = list(self.delta)
        else:
            by_run, delta = self._split(gids)
        return list(self._live_rows(by_run, within)), self._live_delta(delta, within)

    def _split(self, gids: Any) -> tuple[list[tuple[RunReader, Any]], list[Version]]:
        """``gids`` (numpy, ascending) as rows per run and the delta's versions."""
        first = self.toc.next_gid
        rows = [(run, (gids[(gids >= run.base) & (gids < run.end)] - run.base)
                 .astype("<u4")) for run in self.runs]
        return rows, [self.delta[g - first] for g in gids[gids >= first].tolist()]

    def count_current_in_time(self, spans: list[tuple[RunReader, range]],
                              delta: list[Version], within: str | None) -> int | None:
        """``count_current`` over the versions at ``spans`` of each run's time index
        (``tperm`` positions) and the ``delta`` versions; None as there."""
        if within is not None and not all(run.has_postings for run in self.runs):
            return None
        rows = []
        for run, span in spans:
            found = np.sort(np.frombuffer(run.part("tperm"), "<u4")[span.start:span.stop])
            if len(found):
                run.checked_row(int(found[-1]), "time index")
            rows.append((run, found))
        return self._count_live(rows, delta, within)

    def _count_live(self, rows_by_run: list[tuple[RunReader, Any]], delta: Any,
                    within: str | None) -> int:
        """How many of the rows (ascending, per run) and delta versions are current
        content versions, under ``within`` too when given."""
        return (sum(len(rows) for _, rows in self._live_rows(rows_by_run, within))
                + self._count_delta(delta, within))

    def _live_rows(self, rows_by_run: list[tuple[RunReader, Any]], within: str | None
                   ) -> Iterator[tuple[RunReader, Any]]:
        """Per run, those of its rows (numpy, ascending) that are current content
        versions, under ``within`` too when given."""
        w = None if within is None else term_hash(within)
        replaced = self.run_overrides.keys() | self.delta_replaced.keys()
        gone = np.fromiter(replaced, "<i8", len(replaced))
        for run, rows in rows_by_run:
            if w is not None and len(rows):
                inside = run.posted_array(w)
                at = np.minimum(np.searchsorted(inside, rows), max(len(inside) - 1, 0))
                rows = rows[inside[at] == rows] if len(inside) else rows[:0]
            if not len(rows):
                continue
            if self.all_live():  # every row current content: no vto or flags to read
                yield run, rows
                continue
            live = np.frombuffer(run.part("vto"), "<i8")[rows] == TIME_MAX
            live &= (np.frombuffer(run.part("flags"), "<u4")[rows] & FLAG_TOMBSTONE) == 0
            if len(gone):
                live &= ~np.isin(rows.astype("<i8") + run.base, gone)
            yield run, rows[live]

    def _count_delta(self, delta: list[Version], within: str | None) -> int:
        """How many of the ``delta`` versions are current, under ``within`` when given."""
        return len(self._live_delta(delta, within))

    def _live_delta(self, delta: list[Version], within: str | None) -> list[Version]:
        """The ``delta`` versions that are current, under ``within`` when given."""
        members = None if within is None else {
            v.gid for v in self._delta_postings().get(term_hash(within), ())}
        return [v for v in delta if (members is None or v.gid in members)
                and self.visible(RowRef(v.gid, version=v), None)]

    def posted_count(self, term: str) -> int:
        """How many versions are posted under ``term``: an upper bound of
        ``len(posted(term))`` read from the posting offsets only (a run written without
        posting lists counts all its rows)."""
        h = term_hash(term)
        total = sum(run.posted_count(h) if run.has_postings else run.n for run in self.runs)
        return total + len(self._delta_postings().get(h, ()))

    def computed_postings(self, run: RunReader) -> dict[int, list[int]]:
        """Postings of a run written without posting lists, from its payloads (term hash
        -> rows, ascending); computed once per run reader."""
        computed = run.computed_postings
        if computed is None:
            computed = {}
            flags = run.part("flags")
            for row in range(run.n):
                if flags[row] & FLAG_TOMBSTONE:
                    continue
                _, meta, tags = self._decode(run, row, flags[row])
                for term in terms_of(run.frame_id(row), meta, tags):
                    computed.setdefault(term_hash(term), []).append(row)
            run.computed_postings = computed
        return computed

    # ------------------------------------------------------------------- ranges

    def ranged(self, path: str, lo: Any, hi: Any, *, lo_inclusive: bool,
               hi_inclusive: bool, kind: ValueKind = NUMBERS) -> list[RowRef]:
        """Every content version with a value of ``kind`` (a number, or a string: see
        ``engine/value_kinds.py``) at ``path`` between ``lo`` and ``hi`` (None:
        unbounded; each bound inclusive or not), in gid order.

        One value must lie within both bounds: a filter comparing a list field twice
        may be met by different elements (see ``windowed``). Versions of any visibility;
        values are stored approximately (rounded numbers, cut strings) and path hashes
        may collide, so callers recheck the condition on the payload.
        """
        h = term_hash(kind.term(path))
        refs: list[RowRef] = []
        for run in self.runs:
            rows = self._value_rows(run, kind, h, lo, hi, lo_inclusive, hi_inclusive)
            base = run.base
            refs.extend(RowRef(base + row, run, row) for row in rows)
        refs.extend(RowRef(v.gid, version=v) for v in self._delta_ranged(
            kind, path, lo, hi, lo_inclusive, hi_inclusive))
        return refs

    def windowed(self, path: str, lo: Any, hi: Any, *, kind: ValueKind,
                 lo_inclusive: bool = True, hi_inclusive: bool = True) -> list[RowRef]:
        """Every content version that may have values of ``kind`` at ``path`` meeting
        ``x >= lo`` and ``x <= hi`` (``>`` / ``<`` when not inclusive), in gid order: those
        with one value in the window and those holding several values there
        (``terms.multi_term``), whose elements may meet the bounds apart. A run written
        without ``m`` terms gives its versions with a value above ``lo``. A superset, as
        ``ranged``."""
        h, m = term_hash(kind.term(path)), term_hash(multi_term(path))
        refs: list[RowRef] = []
        for run in self.runs:
            if self._posts_multi(run):
                rows = sorted({*self._value_rows(run, kind, h, lo, hi, lo_inclusive,
                                                 hi_inclusive),
                               *self.run_posted_rows(run, m)})
            else:
                rows = self._value_rows(run, kind, h, lo, None, lo_inclusive, True)
            base = run.base
            refs.extend(RowRef(base + row, run, row) for row in rows)
        refs.extend(self._delta_window(kind, path, lo, hi, m, lo_inclusive, hi_inclusive))
        return refs

    def windowed_count(self, path: str, lo: Any, hi: Any, *, kind: ValueKind,
                       lo_inclusive: bool = True, hi_inclusive: bool = True) -> int:
        """An upper bound of ``len(windowed(...))``, from offsets only."""
        h = term_hash(kind.term(path))
        total = sum(run.ranged_count(kind, h, lo, hi if self._posts_multi(run) else None,
                                     lo_inclusive=lo_inclusive, hi_inclusive=hi_inclusive)
                    if run.has_values(kind) else run.n for run in self.runs)
        return (total + len(self._delta_ranged(kind, path, lo, hi, lo_inclusive,
                                               hi_inclusive))
                + self.posted_count(multi_term(path)))

    def window_split(self, path: str, lo: Any, hi: Any, *, kind: ValueKind
                     ) -> tuple[list[tuple[RunReader, Any]], list[RowRef]] | None:
        """The versions that may meet ``lo <= x <= hi`` (or strict bounds; None: no such
        bound) at ``path``, in two parts: per run, the rows (ascending uint32 arrays) with
        a stored value strictly inside, which meet any such filter (stored values keep
        order, so a value stored strictly between the stored bounds lies strictly between
        the bounds); and the versions to check on their payload: values stored at a bound,
        versions holding several values (``m`` terms) and the delta's. None when a run
        lacks the kind's columns or ``m`` terms."""
        if not all(run.has_values(kind) and run.posts_multi and run.has_postings
                   for run in self.runs):
            return None
        h, m = term_hash(kind.term(path)), term_hash(multi_term(path))
        lo_at = None if lo is None else kind.stored_bound(lo, True)[0]
        hi_at = None if hi is None else kind.stored_bound(hi, True)[0]
        sure: list[tuple[RunReader, Any]] = []
        check: list[RowRef] = []
        for run in self.runs:
            values, start, end = run.values_at(kind, h)
            first = start if lo_at is None else bisect_left(values, lo_at, start, end)
            inside = first if lo_at is None else bisect_right(values, lo_at, first, end)
            beyond = end if hi_at is None else max(inside, bisect_left(values, hi_at,
                                                                       inside, end))
            last = end if hi_at is None else max(beyond, bisect_right(values, hi_at,
                                                                      beyond, end))
            rows = run.value_rows(kind, inside, beyond)
            sure.append((run, np.array(rows, "<u4")))
            edge = {*run.value_rows(kind, first, inside), *run.value_rows(kind, beyond, last),
                    *run.posted_rows(m)}.difference(rows)
            check.extend(RowRef(run.base + row, run, row) for row in sorted(edge))
        check.extend(self._delta_window(kind, path, lo, hi, m, True, True))
        return sure, check

    def _delta_window(self, kind: ValueKind, path: str, lo: Any, hi: Any, m: int,
                      lo_inclusive: bool, hi_inclusive: bool) -> list[RowRef]:
        """The delta's versions with a value of ``kind`` within the bounds at ``path`` or
        posted under the ``m`` term hash ``m``, in gid order."""
        delta = {v.gid: v for v in self._delta_ranged(kind, path, lo, hi, lo_inclusive,
                                                      hi_inclusive)}
        delta.update((v.gid, v) for v in self._delta_postings().get(m, ()))
        return [RowRef(gid, version=delta[gid]) for gid in sorted(delta)]

    def count_current_rows(self, rows_by_run: list[tuple[RunReader, Any]],
                           within: str | None) -> int:
        """How many of the rows (ascending arrays, per run) are current content versions,
        under the collection term ``within`` too when given (bulk, from the columns)."""
        return self._count_live(rows_by_run, (), within)

    def _posts_multi(self, run: RunReader) -> bool:
        """Whether the run's postings, as read, hold ``m`` terms (computed ones do)."""
        return run.posts_multi or not run.has_postings

    def run_posted_rows(self, run: RunReader, h: int) -> list[int]:
        """Rows of ``run`` posted under term hash ``h``, ascending (computed from its
        payloads for a run written without posting lists)."""
        return (run.posted_rows(h) if run.has_postings
                else self.computed_postings(run).get(h, []))

    def _value_rows(self, run: RunReader, kind: ValueKind, h: int, lo: Any, hi: Any,
                    lo_inclusive: bool, hi_inclusive: bool) -> list[int]:
        """Rows of ``run`` with a value of ``kind`` within the bounds at path hash ``h``."""
        if run.has_values(kind):
            return run.ranged_rows(kind, h, lo, hi, lo_inclusive=lo_inclusive,
                                   hi_inclusive=hi_inclusive)
        values, posted = self.computed_values(run, kind).get(h, ((), ()))
        first, last = value_span(kind, values, 0, len(values), lo, hi, lo_inclusive,
                                 hi_inclusive)
        return sorted(set(posted[first:last]))

    def ranged_count(self, path: str, lo: Any, hi: Any, *, lo_inclusive: bool,
                     hi_inclusive: bool, kind: ValueKind = NUMBERS) -> int:
        """An upper bound of ``len(ranged(...))``: the values in range in each run (read
        from its value columns; a run written without them counts all its rows) plus the
        matching versions of the delta."""
        h = term_hash(kind.term(path))
        total = sum(run.ranged_count(kind, h, lo, hi, lo_inclusive=lo_inclusive,
                                     hi_inclusive=hi_inclusive)
                    if run.has_values(kind) else run.n for run in self.runs)
        return total + len(self._delta_ranged(kind, path, lo, hi, lo_inclusive,
                                              hi_inclusive))

    def computed_values(self, run: RunReader, kind: ValueKind
                        ) -> dict[int, tuple[list[Any], list[int]]]:
        """Value columns of ``kind`` of a run written without them, from its payloads
        (path hash -> (stored values ascending, their rows)); computed once per run
        reader."""
        computed = run.computed_values.get(kind.name)
        if computed is None:
            pairs: dict[int, list[tuple[Any, int]]] = {}
            flags = run.part("flags")
            for row in range(run.n):
                if flags[row] & FLAG_TOMBSTONE:
                    continue
                _, meta, _ = self._decode(run, row, flags[row])
                for path, value in kind.stored_values(walk(meta)):
                    pairs.setdefault(term_hash(kind.term(path)), []).append((value, row))
            computed = {}
            for h, found in pairs.items():
                found.sort()
                computed[h] = ([value for value, _ in found], [row for _, row in found])
            run.computed_values[kind.name] = computed
        return computed

    def computed_tags(self, run: RunReader) -> list[str]:
        """The distinct tags of a run written without its tag list, from its payloads."""
        flags = run.part("flags")
        tags: set[str] = set()
        for row in range(run.n):
            if not flags[row] & FLAG_TOMBSTONE:
                tags.update(self._decode(run, row, flags[row])[2])
        return sorted(tags)

    def _delta_ranged(self, kind: ValueKind, path: str, lo: Any, hi: Any,
                      lo_inclusive: bool, hi_inclusive: bool) -> list[Version]:
        """Content versions of the delta with a value of ``kind`` at ``path`` within the
        bounds."""
        out = []
        for v in list(self.delta):
            if v.tombstone:
                continue
            values = sorted(value for at, value in kind.stored_values(walk(v.metadata))
                            if at == path)
            first, last = value_span(kind, values, 0, len(values), lo, hi, lo_inclusive,
                                     hi_inclusive)
            if first < last:
                out.append(v)
        return out

    def _delta_postings(self) -> dict[int, list[Version]]:
        """The delta's postings, extended by the versions added since the last use."""
        if self._delta_posted_upto == len(self.delta):
            return self._delta_posted
        with self._posting_lock:
            posted = self._delta_posted
            for v in self.delta[self._delta_posted_upto :]:
                if not v.tombstone:
                    for h in {term_hash(t) for t in terms_of(v.id, v.metadata, v.tags)}:
                        posted.setdefault(h, []).append(v)
                self._delta_posted_upto += 1
        return self._delta_posted

    # ------------------------------------------------------------------ loading

    def load(self, ref: RowRef, *, cached: bool = True) -> Version:
        """Materialize a version with its text, metadata and tags (embedding lazily);
        ``cached=False`` bypasses the frame cache (a pass over every version)."""
        if ref.version is not None:
            return ref.version
        frame_id, version, created, text, meta, tags = self.record(ref, cached=cached)
        return Version(
            gid=ref.gid, id=frame_id, version=version, created_at=created,
            valid_from=ref.run.item("vfrom", ref.row), tombstone=self.is_tombstone(ref),
            prev_gid=-1, prev_live=False, text=text, metadata=meta, tags=tags, embedding=None,
            valid_to=self.valid_to(ref),
        )

    def record(self, ref: RowRef, *, cached: bool = True
               ) -> Record:
        """What a search hit shows of a version: (id, version, created_at µs, text,
        metadata, tags), without the history fields :meth:`load` also reads. A committed
        version's record is kept whole in the frame cache (by gid: it never changes)."""
        v = ref.version
        if v is not None:
            return v.id, v.version, v.created_at, v.text, v.metadata or {}, v.tags or []
        cache = self.frame_cache if cached else None
        if cache is not None:
            got = cache.get(ref.gid)
            if got is not None:
                return got
        got = self._record(ref.run, ref.row)
        if cache is not None:
            cache.put(ref.gid, got, _decoded_size(got))
        return got

    def records(self, refs: list[RowRef]) -> list[Record]:
        """:meth:`record` of each of ``refs`` (a query's hits). From a mapped file, once
        one takes as long as a read from disk (its pages were never read, or the system
        reclaimed them), the kernel is told every page the others read before they are
        decoded: their row items, then their payloads and ids, so the reads run together
        instead of one fault after another (:meth:`read_ahead`)."""
        return self._decoded(refs, self.record)

    def announced(self, refs: Iterable[RowRef], reads: Callable[[list[RowRef]], None],
                  first: int, ahead: Callable[[list[RowRef]], None] | None = None
                  ) -> Iterator[RowRef]:
        """``refs``, from remote bytes a page of them at a time, each page's ``reads``
        (``fetch_rows``, ``fetch_frames``) announced before it is yielded: a round a page,
        not one a version. Pages grow from ``first``, each twice the last, up to
        ``ANNOUNCED_MOST``; with ``ahead``, the next page's first reads are announced to
        join this page's (its rows: a page then takes one round less). Damage found
        announcing is left to the reads that meet it."""
        if not self.view.batches:
            yield from refs
            return
        remaining, size = iter(refs), first
        page = list(islice(remaining, size))
        while page:
            size = min(2 * size, ANNOUNCED_MOST)
            following = list(islice(remaining, size)) if ahead is not None else None
            with contextlib.suppress(CorruptFileError):
                if ahead is not None and following:
                    ahead(following)
                reads(page)
            yield from page
            page = following if following is not None else list(islice(remaining, size))

    def loads(self, refs: list[RowRef]) -> list[Version]:
        """:meth:`load` of each of ``refs`` (a listing), their reads asked for together,
        ``LOAD_WINDOW`` at a time: in one round from remote bytes (:meth:`fetch_frames`),
        read ahead from a mapped file whose pages come from disk (as :meth:`records`)."""
        out: list[Version] = []
        if self.view.batches:  # the valid_from of their runs (a column read whole),
            # with their first rows
            runs = {id(ref.run): ref.run for ref in refs if ref.run is not None}
            self.view.ahead(part_spans(list(runs.values()), "vfrom"), "segment:run")
        for start in range(0, len(refs), LOAD_WINDOW):
            window = refs[start : start + LOAD_WINDOW]
            self.fetch_frames(window)
            out += self._decoded(window, self.load)
        return out

    def _decoded(self, refs: list[RowRef], decode: Callable[[RowRef], _T]) -> list[_T]:
        out = []
        ahead = not self.view.mmapped
        for i, ref in enumerate(refs):
            began = time.perf_counter()
            out.append(decode(ref))
            if not ahead and time.perf_counter() - began > SLOW_RECORD_S:
                ahead = True
                self.read_ahead(refs[i + 1 :])
        return out

    def read_ahead(self, refs: list[RowRef]) -> None:
        """Tell a mapped file's kernel the pages the records of ``refs`` read: their row
        items first; then, those read, their payloads and ids. The dense rows of one run
        (a timeline's page) are left to the kernel, which reads nearly sequential faults
        ahead itself: hinting them cost more in Python than it saved."""
        committed = [ref for ref in refs if ref.run is not None and (
            self.frame_cache is None or ref.gid not in self.frame_cache)]
        if _dense(committed):
            return
        _hint(self.view, [span for ref in committed
                          for span in ref.run.item_spans((*_RECORD_PARTS, "idoff"), ref.row)])
        _hint(self.view, [span for ref in committed for span in (
            (ref.run.item("poff", ref.row), ref.run.item("plen", ref.row)),
            ref.run.id_span(ref.row))])

    def _record(self, run: RunReader, row: int) -> Record:
        flags, version, created, off, length, crc = run.row_items(_RECORD_PARTS, row)
        text, meta, tags = ("", {}, ()) if flags & FLAG_TOMBSTONE else self._payload(
            off, length, crc, flags)
        return run.frame_id(row), version, created, text, meta, tags

    def prefetch(self, refs: list[RowRef]) -> None:
        """Decode ``refs`` (best first) into the frame cache without counting lookups.

        Frames already cached are promoted; loading in reverse leaves the best prediction
        most recently used, so the weakest are evicted first.
        """
        cache = self.frame_cache
        if cache is None:
            return
        for ref in reversed(refs):
            if ref.run is None or self.is_tombstone(ref) or cache.touch(ref.gid):
                continue
            got = self._record(ref.run, ref.row)
            cache.put(ref.gid, got, _decoded_size(got))

    def fetch_rows(self, refs: list[RowRef], *, ids: bool = False,
                   ahead: bool = False) -> None:
        """Announce to a view that batches (remote bytes) the row reads of ``refs``, a
        query's candidates: their items of the row columns read by the page, fetched as
        their own pages in one round (``ROW_GAP``) instead of a request per page; with
        ``ids``, their ids too (guessed in that round, those missed in the next).
        ``ahead``: the rows (and guessed ids) join the next round instead (the
        candidates after those being read)."""
        if self.view.batches:
            announce_rows(self.view, refs, refs if ids else None, ahead=ahead)
            if ids and not ahead:
                self.view.fetch(id_spans([ref for ref in refs if ref.run is not None]),
                                "rows", ROW_GAP)

    def fetch_frames(self, refs: list[RowRef]) -> None:
        """Announce the payload reads of ``refs`` to a view that batches (remote bytes:
        fetched together instead of one request per frame), with their ids."""
        if self.view.batches:
            self.fetch_rows(refs)
            runs = [ref for ref in refs if ref.run is not None]
            self.view.fetch([(ref.run.item("poff", ref.row), ref.run.item("plen", ref.row))
                             for ref in runs] + id_spans(runs), "frame", ROW_GAP)

    def fetch_vectors(self, gids: list[int]) -> None:
        """Announce the vector reads of committed versions ``gids`` (see fetch_frames)."""
        if self.view.batches:
            refs = [self.locate(gid) for gid in gids]
            spans = [ref.run.vector_span(ref.row) for ref in refs if ref.run is not None]
            self.view.fetch([span for span in spans if span is not None], "segment:vectors")

    def fetch_vector_blocks(self, parts: tuple[str, ...] = ("vrow",)) -> None:
        """Announce the reads of every run's vector blocks (a scan reads them all), with
        the run ``parts`` the scan reads of every row: the vector references (``vrow``:
        which version each vector row is), and what else it masks them by."""
        if self.view.batches and self.dim:
            width = self.dim * 4
            self.view.ahead([span for part in parts for span in part_spans(
                [run for run in self.runs if part not in run.deferred], part)], "segment:run")
            self.view.fetch([(off, rows * width) for run in self.runs
                             for off, rows, _ in run.header["vblocks"]], "segment:vectors")

    def _decode(self, run: RunReader, row: int, flags: int) -> tuple[str, dict, Sequence[str]]:
        return self._payload(*run.row_items(_PAYLOAD_PARTS, row), flags)

    def _payload(self, off: int, length: int, crc: int, flags: int
                 ) -> tuple[str, dict, Sequence[str]]:
        """Text, metadata and tags of the payload stored at ``off``, checked against
        ``crc``; ``flags``: its row's (the codec)."""
        stored = self.view.read(off, length, "frame")
        if crc32(stored) != crc:
            raise CorruptFileError(f"frame payload at offset {off} checksum mismatch",
                                   "frame", off)
        try:
            return unpack_payload(self.codec.decompress((flags >> 8) & 0xFF, stored))
        except CorruptFileError:
            raise
        except Exception as exc:  # zstd, utf-8 or json errors all mean damage
            raise CorruptFileError(f"frame payload at offset {off} cannot be decoded: {exc}",
                                   "frame", off) from None

    def embedding(self, ref: RowRef) -> bytes | None:
        if ref.version is not None:
            return ref.version.embedding
        if not ref.run.item("flags", ref.row) & FLAG_VECTOR:
            return None
        return ref.run.vector(ref.row)

    # ----------------------------------------------------------------- timeline

    def timeline(self, since: int | None, until: int | None, at: int | None,
                 reverse: bool, *, few: bool = False) -> Iterator[RowRef]:
        """Visible versions ordered by (created_at, gid). ``few``: the caller keeps the
        first ones, none refused (a plain listing): from remote bytes read by the page,
        their times are read by the page too (``RunReader.times_in_order``)."""
        few = few and self.view.batches
        positions = [run.time_rows(since, until) for run in self.runs]
        if few:
            self._announce_time_heads(positions, reverse)
        streams = [self._run_stream(run, at_run, reverse, few)
                   for run, at_run in zip(self.runs, positions, strict=True)]
        delta = sorted(
            (v.created_at, v.gid, v) for v in self.delta
            if (since is None or v.created_at >= since) and (until is None or v.created_at < until)
        )
        if reverse:
            delta.reverse()
        streams.append(((c, g, RowRef(g, version=v)) for c, g, v in delta))
        for _, _, ref in heapq.merge(*streams, key=lambda t: (t[0], t[1]), reverse=reverse):
            if self.visible(ref, at):
                yield ref

    def _announce_time_heads(self, positions: list[range], reverse: bool) -> None:
        """From remote bytes, download in one round the event time of each run's first
        version in time order (each run's ``positions`` of its time index; its page, for
        runs read by the page): the merge of the runs' streams reads them one run after
        another."""
        spans = []
        for run, at_run in zip(self.runs, positions, strict=True):
            if at_run:
                row = run.time_row(at_run[-1] if reverse else at_run[0])
                spans.append(run.item_span("created", row))
        self.view.fetch([span for span in spans if span is not None], "rows", ROW_GAP)

    @staticmethod
    def _run_stream(run: RunReader, positions: range, reverse: bool, few: bool
                    ) -> Iterator[tuple[int, int, RowRef]]:
        for created, row in run.times_in_order(reversed(positions) if reverse else positions,
                                               few):
            yield created, run.base + row, RowRef(run.base + row, run, row)

    def iter_all(self) -> Iterator[RowRef]:
        """Every stored version in gid order (compaction and export)."""
        for run in self.runs:
            for row in range(run.n):
                yield RowRef(run.base + row, run, row)
        for v in self.delta:
            yield RowRef(v.gid, version=v)

    def release_pages(self) -> None:
        """Drop the pages read through this snapshot's maps (its own and its runs', which
        may be older maps of the file) from the process's resident memory, after a pass
        over many of them (compaction). They fault back in from the page cache."""
        views = {id(run.view): run.view for run in self.runs}
        views[id(self.view)] = self.view
        for mapped in views.values():
            mapped.release(0, mapped.length)

    def close(self, *, view: bool = False) -> None:
        """Release what this snapshot loaded (and with ``view``, its map of the file)."""
        searcher = self.extras.pop("searcher", None)
        if searcher is not None:
            searcher.close()
        for run in self.runs:
            run.release()
        if view:
            self.view.close()


def not_found(key: str) -> FrameNotFoundError:
    """The error for a key with no current frame, naming its id and collection."""
    collection, frame_id = split_key(key)
    where = "" if collection == DEFAULT else f" in collection {collection!r}"
    return FrameNotFoundError(f"no frame with id {frame_id!r}{where}", frame_id)


_MISSING = object()
ROW_GAP = 16 << 10  # rows of a column this close share a request (fetch_rows)
# postings a count reads row by row while numpy is not loaded (about 1.5 us a row: 16k
# rows cost less than importing numpy, 60-90 ms)
ROW_COUNT_MAX = 16_384
_PAYLOAD_PARTS = ("poff", "plen", "pcrc")
# a hit's record decoded slower than this came from disk (from the page cache: 5-60 us, a
# few page faults of 4-7 us each on this machine; from its disk 3-6 ms)
SLOW_RECORD_S = 150e-6
_RECORD_PARTS = ("flags", "version", "created", *_PAYLOAD_PARTS)
HINT_GAP = 4096  # spans read ahead this close are hinted together
DENSE_ROWS = 2  # records covering at least 1/DENSE_ROWS of their rows' range: the kernel
# reads their nearly sequential faults ahead itself
LOAD_WINDOW = 4096  # records of a listing asked for together (a round, or the hints' spans)
ANNOUNCED_MOST = 4096  # versions of a page whose reads are announced together (announced)


def _dense(refs: list[RowRef]) -> bool:
    """Whether ``refs`` are rows of one run that cover at least half of the rows between
    their first and last (a timeline's page, nearly in row order)."""
    if len(refs) < 2:
        return False
    run = refs[0].run
    if any(ref.run is not run for ref in refs):
        return False
    rows = [ref.row for ref in refs]
    return max(rows) - min(rows) < DENSE_ROWS * len(refs)


def _hint(view: FileView, spans: list[tuple[int, int]]) -> None:
    """``view.prefetch`` of ``spans``, those less than a page apart hinted as one (the
    items of neighbouring rows, the payloads of consecutive frames: one call, not one a
    span)."""
    start = end = -1
    for offset, size in sorted(spans):
        if offset > end + HINT_GAP:
            if end > start:
                view.prefetch(start, end - start)
            start = offset
        end = max(end, offset + size)
    if end > start:
        view.prefetch(start, end - start)


def _decoded_size(record: Record) -> int:
    """Approximate bytes a decoded record holds in memory (for the cache's budget)."""
    frame_id, _, _, text, meta, tags = record
    return 2 * (len(text) + len(frame_id)) + 100 * (2 + len(meta) + len(tags))


def read_toc(pread: Callable[[int, int], bytes], header: Header, file_size: int) -> Toc:
    """Read and check the TOC a header points to, and the footer written after it;
    ``pread(size, offset)`` reads the file."""
    offset, length = header.toc_offset, header.toc_len
    if header.committed_end > file_size:
        raise CorruptFileError(f"TOC at offset {offset} lies past the end of the file "
                               f"({file_size} bytes)", "toc", offset)
    raw = pread(length + TOC_FOOTER_SIZE, offset)
    if len(raw) != length + TOC_FOOTER_SIZE or crc32(raw[:length]) != header.toc_crc:
        raise CorruptFileError(f"TOC at offset {offset} checksum mismatch", "toc", offset)
    footer = unpack_toc_footer(raw[length:])
    if footer != (header.generation, offset, length, header.toc_crc):
        raise CorruptFileError(f"TOC footer at offset {offset + length} is damaged", "toc",
                               offset + length)
    return Toc.decode(raw[:length], offset)
