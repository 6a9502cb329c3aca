"""One version of a remote object, read by range: the engine's ``ByteSource``.

Bytes are held per sector (``SECTOR``, 512 bytes) in an anonymous map the size of the
object: in memory once this process has them, else copied from the chunk cache, else
downloaded. A read downloads the sectors it misses, no more (a 4 KiB page of a run part,
which starts anywhere, costs at most 4.5 KiB, not the two 4 KiB pages it straddles); the
spans a caller announces together (``fetch``) are downloaded together, neighbouring
ranges closer than ``gap`` bytes coalesced into one request, the requests of one call
made in parallel (one *round*).
Every request names the version (``If-Match`` its ETag), so the bytes of one snapshot
all come from one version. In a versioned bucket requests also name the version id the
store gave at open, so a snapshot keeps reading its version after the object is
replaced; elsewhere the next download raises ObjectChangedError. Either way
``refresh()`` moves to the new version.

Each download is recorded (``RemoteObject.log``: offset, length, the region that asked,
its round) and logged at DEBUG level on the ``memvid_store.remote`` logger.
"""

from __future__ import annotations

import collections
import logging
import mmap
import threading
import time
from dataclasses import dataclass

from ..engine.format import HEADER_SIZE
from ..engine.wal import FIRST_READ
from ..errors import (
    ClosedError,
    CorruptFileError,
    MemvidError,
    ObjectChangedError,
    RemoteNotFoundError,
)
from .cache import ChunkCache, Seen
from .client import Fetched, ObjectClient
from .workers import run_all

SECTOR = 512  # the unit of what a process holds and downloads
AHEAD_GAP = 16 << 10  # spans announced ahead this close share a request (``ahead``)
TAIL = 64 << 10  # bytes asked from the end of an object at a cold open: its TOC, usually
_LOG_LENGTH = 4096  # downloads ``RemoteObject.log`` remembers

log = logging.getLogger("memvid_store.remote")


@dataclass(frozen=True, slots=True)
class Request:
    """One download: bytes ``[offset, offset+length)``, the read that asked for them
    (its region: ``segment:run``, ``frame``, ``open``...) and its round (requests made
    together, in parallel, share one)."""

    offset: int
    length: int
    region: str
    round: int
    started: float = 0.0  # time.perf_counter() when it was sent
    seconds: float = 0.0  # until its body was in


class RemoteObject:
    """``ByteSource`` over one version (``identity``: its ETag) of the object behind
    ``client``. ``requests``, ``fetched`` and ``rounds`` count its downloads; ``log``
    holds the last ones.

    A read of sectors already there is a view into the map, without a copy, as for a
    mapped local file."""

    def __init__(self, client: ObjectClient, cache: ChunkCache, object_dir: str, seen: Seen,
                 chunk: int, max_request: int, parallel: int = 8,
                 gap: int = 128 << 10) -> None:
        self.client, self.cache = client, cache
        self.parallel = parallel
        self.seen = seen
        etag, size = seen.etag, seen.size
        self.identity, self.size = etag, size
        # every download names the version id too, when the store gave one
        self._pinned = {} if seen.version is None else {"version": seen.version}
        self.chunk = chunk  # the unit of the disk cache
        self.max_sectors = max(1, max_request // SECTOR)
        self.gap_sectors = gap // SECTOR
        self.version_dir = cache.version_dir(object_dir, etag)
        self._map = memoryview(mmap.mmap(-1, max(size, 1)))
        self._readonly = self._map.toreadonly()  # what reads hand out
        self._have = bytearray(-(-size // SECTOR))  # 1: sector i is in the map
        self._tried = bytearray(-(-size // chunk))  # 1: chunk i was looked for on disk
        self._pieces: list[tuple[int, int]] | None = None  # piece files on disk, listed once
        self._lock = threading.Lock()  # the bookkeeping (what is here, flying, ahead)
        self._flying: list[tuple[int, int, threading.Event]] = []  # rounds under way
        self._count = threading.Lock()  # parallel downloads update the counters
        self._ahead: list[tuple[int, int]] = []  # joins the next round (``ahead``)
        self._ahead_region = ""
        self.requests = self.fetched = self.rounds = 0
        self.log: collections.deque[Request] = collections.deque(maxlen=_LOG_LENGTH)

    def pread(self, size: int, offset: int) -> bytes:
        end = min(offset + size, self.size)
        return bytes(self.read(offset, end - offset, "file")) if end > offset else b""

    def read(self, offset: int, size: int, region: str = "segment") -> memoryview:
        """Bytes ``[offset, offset+size)``, which must lie inside the object."""
        if size > 0 and self._missing(offset, size):
            self._ensure([(offset, size)], region)
        return self._readonly[offset : offset + size]

    def fetch(self, spans: list[tuple[int, int]], region: str = "fetch",
              gap: int | None = None) -> None:
        """Make these ``(offset, size)`` spans readable, the missing ones downloaded in
        one round of parallel requests (``gap``: bytes apart at most that one request
        joins, instead of the object's ``gap_bytes``: scattered rows of a column are
        fetched as their own pages, not as the column between them)."""
        wanted = [(o, n) for o, n in spans if n > 0 and self._missing(o, n)]
        if wanted:
            self._ensure(wanted, region, None if gap is None else gap // SECTOR)

    def mapped(self, offset: int, size: int) -> memoryview:
        """Bytes ``[offset, offset+size)`` as far as they are here, nothing downloaded:
        sectors not read yet hold zeros until a ``read`` or ``fetch`` of them fills them in
        place (a column read by the page reads each page before checking it)."""
        return self._readonly[offset : offset + size]

    def ahead(self, spans: list[tuple[int, int]], region: str) -> None:
        """Spans known to be needed soon but not yet: they join the next round of
        downloads, whatever read starts it, instead of taking a round of their own
        (joined with each other only ``AHEAD_GAP`` apart), with any announced before."""
        with self._lock:
            self._ahead += [(o, n) for o, n in spans if n > 0]
            self._ahead_region = region

    def keep(self, offset: int, data: bytes | memoryview) -> None:
        """Put downloaded bytes (``offset`` on a sector) in the map and the disk cache:
        the chunks they cover whole as chunk files, the rest as a piece file."""
        data = memoryview(data)
        end = offset + len(data)
        self._map[offset:end] = data
        self._mark(offset, end)
        chunk = self.chunk
        first, last = -(-offset // chunk), end // chunk  # chunks wholly inside
        if end == self.size and end % chunk:
            last += 1  # the object's last, shorter chunk
        if first >= last:
            self.cache.store_piece(self.version_dir, offset, data)
            return
        lo, hi = first * chunk, min(last * chunk, self.size)
        if lo > offset:
            self.cache.store_piece(self.version_dir, offset, data[: lo - offset])
        for index in range(first, last):
            at = index * chunk - offset
            self.cache.store(self.version_dir, index, data[at : at + self._length(index)])
        if hi < end:
            self.cache.store_piece(self.version_dir, hi, data[hi - offset :])

    def _mark(self, offset: int, end: int) -> None:
        """Bytes ``[offset, end)`` (``offset`` on a sector) are in the map."""
        first, last = offset // SECTOR, -(-end // SECTOR)
        self._have[first:last] = b"\x01" * (last - first)

    def _missing(self, offset: int, size: int) -> bool:
        return self._have.find(0, offset // SECTOR, (offset + size - 1) // SECTOR + 1) >= 0

    def _ensure(self, spans: list[tuple[int, int]], region: str,
                gap_sectors: int | None = None) -> None:
        """Make ``spans`` readable: from the disk cache, else downloaded in one round.

        Rounds of different threads run at once (a hybrid query fetches the BM25 files
        in one thread while its vector half fetches the graph): the lock covers the
        bookkeeping, not the transfers, and sectors another round is downloading are
        waited for, not asked for twice."""
        asked = _sectors(spans)
        while True:
            with self._lock:
                ranges, todo, waits = self._plan(asked, region, gap_sectors)
                mine = threading.Event()
                self._flying += [(lo, hi, mine) for lo, hi in ranges]
            try:
                self._download_all(todo)
            finally:
                with self._lock:
                    self._flying = [f for f in self._flying if f[2] is not mine]
                mine.set()
            for event in waits:
                event.wait()
            if not waits or not any(_holes(self._have, lo, hi) for lo, hi in asked):
                return  # else a round this one waited for failed: ask for its sectors

    def _plan(self, asked: list[tuple[int, int]], region: str, gap_sectors: int | None
              ) -> tuple[list[tuple[int, int]], list[tuple[int, int, str, int]],
                         list[threading.Event]]:
        """(sector ranges to download, their requests, the other rounds to wait for) of
        the sectors ``asked`` and the spans announced ahead; the disk cache is read first.
        Called with the lock held."""
        wanted = _merge(sorted(asked + _sectors(self._ahead)))
        self._ahead = []
        holes = [h for lo, hi in wanted for h in _holes(self._have, lo, hi)]
        if holes:
            self._load_cached(holes)
            holes = [h for lo, hi in holes for h in _holes(self._have, lo, hi)]
        waits = [event for lo, hi, event in self._flying if _overlaps(holes, lo, hi)]
        holes = _without(holes, [(lo, hi) for lo, hi, _ in self._flying])
        # the spans announced ahead (every run's small parts) are not joined across
        # the parts between them, which this query does not read
        near = self.gap_sectors if gap_sectors is None else gap_sectors
        ranges = _coalesce([(lo, hi, near if _overlaps(asked, lo, hi)
                             else AHEAD_GAP // SECTOR) for lo, hi in holes],
                           self.max_sectors)
        if ranges:
            self.rounds += 1
        todo = [(lo * SECTOR, min(hi * SECTOR, self.size),
                 region if _overlaps(asked, lo, hi) else self._ahead_region, self.rounds)
                for lo, hi in ranges]
        return ranges, todo, waits

    def _download_all(self, todo: list[tuple[int, int, str, int]]) -> None:
        """Make the requests of one round, in parallel."""
        if len(todo) == 1:
            self._fill(*todo[0])
        elif todo:
            run_all(self.parallel, [(self._fill, request) for request in todo])

    def _fill(self, start: int, end: int, region: str, number: int) -> None:
        """Download ``[start, end)`` and put it in the map at once: the copy of one
        request's bytes overlaps the transfer of the round's others (a 508 MiB graph is
        not copied after the last byte arrives). Requests of a round never overlap, so
        their copies do not either."""
        self.keep(start, self._download(start, end, region, number))

    def _load_cached(self, holes: list[tuple[int, int]]) -> None:
        """Fill what the disk cache holds of these sector ranges: chunk files (each looked
        for once), then piece files."""
        if self.cache.limit <= 0:
            return
        per = self.chunk // SECTOR
        for lo, hi in holes:
            for index in range(lo // per, (hi - 1) // per + 1):
                if self._tried[index]:
                    continue
                self._tried[index] = 1
                at, length = index * self.chunk, self._length(index)
                if self.cache.load(self.version_dir, index, self._map[at : at + length]):
                    self._mark(at, at + length)
        if self._pieces is None:
            self._pieces = self.cache.pieces(self.version_dir)
        for offset, length in self._pieces:
            end = offset + length
            if end > self.size or offset % SECTOR:
                continue
            if any(lo * SECTOR < end and offset < hi * SECTOR for lo, hi in holes) \
                    and self._have.find(0, offset // SECTOR, -(-end // SECTOR)) >= 0 \
                    and self.cache.load_piece(self.version_dir, offset,
                                              self._map[offset:end]):
                self._mark(offset, end)

    def _length(self, index: int) -> int:
        return min(self.chunk, self.size - index * self.chunk)

    def _download(self, start: int, end: int, region: str, number: int
                  ) -> bytes | memoryview:
        """Bytes ``[start, end)`` of this version, in one request of round ``number``."""
        started = time.perf_counter()
        try:
            got = self.client.get(start, end, if_match=self.identity, **self._pinned)
        except RemoteNotFoundError:
            if not self._pinned:
                raise
            # the version this snapshot reads is gone (GCS names every one: a replaced
            # object's old generation is deleted unless the bucket keeps versions)
            raise ObjectChangedError(f"{self.client.url} was replaced while it was read (the "
                                     "version this snapshot reads is gone)",
                                     self.client.url, 404) from None
        if got is None:  # a client that ignored If-Match and answered If-None-Match
            raise AssertionError("a range GET with If-Match answered 304")
        self._record(start, len(got.data), region, started, number)
        return got.data

    def _record(self, offset: int, length: int, region: str, started: float = 0.0,
                number: int = 1) -> None:
        took = time.perf_counter() - started if started else 0.0
        with self._count:
            self.requests += 1
            self.fetched += length
            self.log.append(Request(offset, length, region, number, started, took))
        log.debug("GET %s [%d, %d) %d bytes for %s, round %d", self.client.url, offset,
                  offset + length, length, region, number)

    def view(self, length: int) -> RemoteView:
        return RemoteView(self, length)


class RemoteView:
    """``FileView``'s read API over ``[0, length)`` of a ``RemoteObject``."""

    mmapped = False
    prefetching = False
    batches = True

    def __init__(self, source: RemoteObject, length: int) -> None:
        self.source: RemoteObject | None = source
        self.length = length

    def read(self, offset: int, size: int, region: str = "segment") -> memoryview:
        """Bytes ``[offset, offset+size)``; CorruptFileError if they lie outside the view."""
        if offset < 0 or size < 0 or offset + size > self.length:
            raise CorruptFileError(
                f"{region} reference [{offset}, {offset + size}) lies outside the committed "
                f"file ({self.length} bytes)", region, offset)
        if self.source is None:
            raise ClosedError("the memory this frame came from is closed: read its embedding "
                              "(or any lazily loaded field) before close()")
        return self.source.read(offset, size, region)

    def prefetch(self, offset: int, size: int) -> None:
        """Download ``[offset, offset+size)`` now, in as few requests as possible."""
        if self.source is not None and size > 0:
            self.source.read(offset, min(size, self.length - offset), "prefetch")

    def fetch(self, spans: list[tuple[int, int]], region: str = "fetch",
              gap: int | None = None) -> None:
        """Download these spans together (one round of parallel requests)."""
        if self.source is not None:
            self.source.fetch([(o, min(n, self.length - o)) for o, n in spans
                               if 0 <= o < self.length], region, gap)

    def ahead(self, spans: list[tuple[int, int]], region: str) -> None:
        """``RemoteObject.ahead`` (spans inside the view)."""
        if self.source is not None:
            self.source.ahead([(o, min(n, self.length - o)) for o, n in spans
                               if 0 <= o < self.length], region)

    def mapped(self, offset: int, size: int) -> memoryview:
        """``RemoteObject.mapped`` (inside the view; nothing downloaded)."""
        if offset < 0 or size < 0 or offset + size > self.length:
            raise CorruptFileError(
                f"reference [{offset}, {offset + size}) lies outside the committed file "
                f"({self.length} bytes)", "segment:run", offset)
        if self.source is None:
            raise ClosedError("the memory this frame came from is closed")
        return self.source.mapped(offset, size)

    def release(self, offset: int, size: int) -> None:
        """Nothing to hand back: the pages stay for later reads."""

    def close(self) -> None:
        self.source = None


def _sectors(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The sector ranges ``[lo, hi)`` of ``(offset, size)`` spans."""
    return [(o // SECTOR, (o + n - 1) // SECTOR + 1) for o, n in spans if n > 0]


def _overlaps(ranges: list[tuple[int, int]], lo: int, hi: int) -> bool:
    return any(a < hi and lo < b for a, b in ranges)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted half-open ranges with the overlapping and touching ones joined."""
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _holes(have: bytearray, lo: int, hi: int) -> list[tuple[int, int]]:
    """The runs of sectors in ``[lo, hi)`` not in ``have``."""
    out = []
    at = have.find(0, lo, hi)
    while at >= 0:
        end = have.find(1, at, hi)
        end = hi if end < 0 else end
        out.append((at, end))
        at = have.find(0, end, hi)
    return out


def _without(ranges: list[tuple[int, int]], cut: list[tuple[int, int]]
             ) -> list[tuple[int, int]]:
    """``ranges`` less the sectors of ``cut`` (both half-open sector ranges)."""
    out = ranges
    for c_lo, c_hi in cut:
        out = [piece for lo, hi in out
               for piece in ((lo, min(hi, c_lo)), (max(lo, c_hi), hi)) if piece[0] < piece[1]]
    return out


def _coalesce(holes: list[tuple[int, int, int]], most: int) -> list[tuple[int, int]]:
    """Sorted sector ranges ``(lo, hi, gap)`` as requests: neighbours at most the smaller
    of their ``gap``s apart joined (the sectors between are downloaded too), each request
    at most ``most`` sectors."""
    out: list[tuple[int, int]] = []
    before = 0
    for lo, hi, gap in holes:
        joins = out and lo - out[-1][1] <= min(gap, before) and hi - out[-1][0] <= most
        before = gap
        if joins:
            out[-1] = (out[-1][0], hi)
            continue
        while hi - lo > most:
            out.append((lo, lo + most))
            lo += most
        out.append((lo, hi))
    return out


def open_object(client: ObjectClient, cache: ChunkCache, object_dir: str, chunk: int,
                max_request: int, parallel: int, gap: int = 128 << 10,
                current: RemoteObject | None = None) -> RemoteObject:
    """The newest version of the object, in one round: its first pages (the header and
    the WAL's first read) and, in parallel, its last ``TAIL`` bytes (the TOC of a sealed
    file); unless the version last seen (``current``, else the one the cache remembers)
    is still the newest, which the store confirms without sending it (``If-None-Match``)."""
    known = current.seen if current is not None else cache.remembered(object_dir)
    head = -(-(HEADER_SIZE + FIRST_READ) // SECTOR) * SECTOR
    started = time.perf_counter()
    if known:
        got = client.get(0, head, if_none_match=known.etag)
        tail = None
    else:
        got, tail = _head_and_tail(client, head, parallel)
    if got is None or (current is not None and got.etag == current.identity
                       and got.version == current.seen.version):
        if current is not None:  # unchanged (a store that ignored If-None-Match said so too)
            return current
        obj = RemoteObject(client, cache, object_dir, known,  # type: ignore[arg-type]
                           chunk, max_request, parallel, gap)
        obj.rounds = 1
        obj._record(0, 0, "open", started)  # the store's 304
        return obj
    seen = Seen(got.etag, got.size, got.version)
    obj = RemoteObject(client, cache, object_dir, seen, chunk, max_request, parallel, gap)
    obj.rounds = 1
    obj._record(0, len(got.data), "open", started)
    obj.keep(0, got.data)
    if tail is not None:
        start = tail.size - len(tail.data)
        obj._record(start, len(tail.data), "open", started)
        keep = max(-(-start // SECTOR) * SECTOR, len(got.data))  # whole sectors, not held yet
        if tail.etag == got.etag and tail.size == got.size and keep < tail.size:
            obj.keep(keep, tail.data[keep - start :])
    cache.remember(object_dir, seen)
    return obj


def _head_and_tail(client: ObjectClient, head: int,
                   parallel: int) -> tuple[Fetched | None, Fetched | None]:
    """The first ``head`` bytes and, in parallel, the last ``TAIL`` (None when the
    client cannot ask for a suffix or that request fails: the TOC is then read after)."""
    tail_of = getattr(client, "tail", None)
    if tail_of is None or parallel < 2:
        return client.get(0, head), None

    def tail_or_none() -> Fetched | None:
        try:
            return tail_of(TAIL)
        except MemvidError:
            return None

    got, tail = run_all(parallel, [(client.get, (0, head)), (tail_or_none, ())],
                        start_pool=True)
    return got, tail


__all__ = ["SECTOR", "RemoteObject", "RemoteView", "Request", "open_object"]
