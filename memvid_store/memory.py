"""The Memory facade: one .mv2 file, its writer, its readers and its past.

>>> import tempfile, os
>>> from datetime import datetime, timezone
>>> path = os.path.join(tempfile.mkdtemp(), "agent.mv2")
>>> with Memory.create(path) as mem:
...     fid = mem.put("the budget meeting moved to friday", tags=["calendar"])
...     mem.get(fid).text
'the budget meeting moved to friday'
"""

from __future__ import annotations

import functools
import os
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .autoembed import check_binding, fill_embeddings, fill_query_vectors, identity
from .cache import ByteLRU, CacheStats
from .config import IndexConfig, StoreConfig, WarmupConfig
from .engine import lock
from .engine.format import TIME_MAX
from .engine.records import Version, encode_ops
from .engine.snapshot import RowRef, Snapshot
from .engine.store import (
    Committer,
    Opened,
    apply_counters,
    create_file,
    make_snapshot,
    now_us,
    open_fd,
    prepare_for_writing,
    read_state,
    remove_stale_temp_files,
)
from .engine.wal import WalWriter
from .errors import (
    AlreadyExistsError,
    ClosedError,
    CorruptFileError,
    DimensionMismatchError,
    FrameNotFoundError,
    HistoryUnavailableError,
    InvalidInputError,
    InvalidTypeError,
    ReadOnlyError,
)
from .phases import MetricsRecorder
from .types import Frame, Hit, from_us, to_us
from .validate import check_embedding, check_id, check_metadata, check_tags, check_text
from .warmup import Warmer

if TYPE_CHECKING:
    from .metrics import AlertThresholds, ColdStartMetrics
    from .reports import Change, Stats, VerifyReport

_MISSING: Any = object()
_RECORD_KEYS = frozenset({"text", "embedding", "metadata", "tags", "created_at", "id"})
DIRECT_COMMIT_FRACTION = 4  # batches larger than wal_size / 4 are committed directly


def _serialized(method: Callable) -> Callable:
    """Run a state-changing method under the handle's lock (threads share a Memory)."""

    @functools.wraps(method)
    def wrapper(self: Memory, *args: Any, **kwargs: Any) -> Any:
        with self._mutex:
            return method(self, *args, **kwargs)

    return wrapper


class _Reads:
    """Read API shared by Memory and its as_of views."""

    _path: str

    def _snap(self) -> Snapshot:
        raise NotImplementedError

    def _at(self) -> int | None:
        raise NotImplementedError

    def get(self, id: str) -> Frame:
        """Return the current version of a frame.

        Raises:
            FrameNotFoundError: no frame has this id, or it was deleted.
        """
        snap = self._snap()
        frame = self._frame(snap, snap.get(check_id(id), self._at()))
        handle = self._handle()
        if handle._prefetcher is not None:
            handle._observe([([frame.id], [to_us(frame.created_at)], None)])
        return frame

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
        refs = [r for r in snap.versions_of(check_id(id))
                if at is None or snap.valid_from(r) <= at]
        if not refs:
            raise FrameNotFoundError(f"no frame with id {id!r}", id)
        frames = []
        for i, ref in enumerate(refs):
            if snap.is_tombstone(ref):
                continue
            to = snap.valid_from(refs[i + 1]) if i + 1 < len(refs) else snap.valid_to(ref)
            frames.append(self._frame(snap, ref, valid_to=to))
        return frames

    def timeline(self, since: datetime | None = None, until: datetime | None = None,
                 limit: int | None = None, reverse: bool = False) -> list[Frame]:
        """Current frames with ``since <= created_at < until``, ordered by created_at."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidInputError(f"limit must be a non-negative int, got {limit!r}")
        return list(self.iter_timeline(since, until, limit=limit, reverse=reverse))

    def iter_timeline(self, since: datetime | None = None, until: datetime | None = None, *,
                      limit: int | None = None, reverse: bool = False) -> Iterator[Frame]:
        """Like ``timeline`` but lazy: frames are read as the iterator advances."""
        snap = self._snap()
        lo = None if since is None else to_us(since, "since")
        hi = None if until is None else to_us(until, "until")
        for count, ref in enumerate(snap.timeline(lo, hi, self._at(), reverse)):
            if limit is not None and count >= limit:
                return
            yield self._frame(snap, ref)

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
        for ref in snap.iter_all():
            try:
                t = snap.valid_from(ref)
                if at is not None and t > at:
                    break
                if lo is not None and t < lo:
                    continue
                if snap.is_tombstone(ref):
                    change = Change("delete", snap.load(ref).id, from_us(t))
                else:
                    frame = self._frame(snap, ref)
                    change = Change("put", frame.id, frame.valid_from, frame)
            except CorruptFileError as exc:
                if on_damaged is None:
                    raise
                on_damaged(f"a version of frame {self._frame_id(snap, ref)!r}: {exc}")
                continue
            yield change

    @staticmethod
    def _frame_id(snap: Snapshot, ref: RowRef) -> str:
        try:
            return ref.version.id if ref.version is not None else ref.run.frame_id(ref.row)
        except CorruptFileError:
            return f"<gid {ref.gid}>"

    def __iter__(self) -> Iterator[Frame]:
        return self.iter_timeline()

    def __len__(self) -> int:
        return self.stats().frames

    def ids(self) -> list[str]:
        """Ids of the current frames, in created_at order."""
        return [f.id for f in self.iter_timeline()]

    def _frame(self, snap: Snapshot, ref: RowRef, valid_to: int | None = None) -> Frame:
        v = snap.load(ref)
        at = self._at()
        to = snap.valid_to(ref) if valid_to is None else valid_to
        if to == TIME_MAX or (at is not None and to > at):
            end = None
        else:
            end = from_us(to)

        def embedding() -> list[float] | None:
            raw = snap.embedding(ref)
            return None if raw is None else array("f", raw).tolist()

        return Frame(v.id, v.text, dict(v.metadata or {}), list(v.tags or []),
                     from_us(v.created_at), v.version, from_us(v.valid_from), end, embedding)

    @property
    def _index_config(self) -> IndexConfig:
        snap = self._snap()
        config = snap.extras.get("index_config")
        if config is None:
            config = snap.extras["index_config"] = IndexConfig.from_dict(
                snap.toc.options.get("index"))
        return config

    @property
    def index_config(self) -> IndexConfig:
        """The file's index settings (fixed at create time)."""
        return self._index_config

    def find(self, text: str | None = None, vector: Sequence[float] | None = None, k: int = 10,
             mode: str = "hybrid", filter: Mapping[str, Any] | None = None,
             as_of: datetime | int | None = None,
             time_range: tuple[datetime | None, datetime | None] | None = None, *,
             syntax: str = "plain", weights: Mapping[str, float] | None = None) -> list[Hit]:
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
            weights: hybrid weights per mode, e.g. ``{"lexical": 1.0, "vector": 2.0}``.

        Raises:
            ValueError: bad arguments (k < 1, unknown mode, missing query, NaN vector).
            DimensionMismatchError: the vector does not have the file's dimension.
            FilterError: a malformed filter.
        """
        return self.find_batch([{
            "text": text, "vector": vector, "k": k, "mode": mode, "filter": filter,
            "as_of": as_of, "time_range": time_range, "syntax": syntax, "weights": weights,
        }])[0]

    def find_batch(self, requests: Iterable[Mapping[str, Any]]) -> list[list[Hit]]:
        """Run several ``find`` requests (dicts of its arguments) sharing work.

        Identical requests run once; exact vector scoring is one matrix product for the
        batch; results are cached per snapshot.
        """
        from .index.requests import build_request
        from .index.searcher import searcher_for

        started = time.perf_counter()
        snap = self._snap()
        searcher = searcher_for(snap, self._index_config, self._cache_root)
        handle = self._handle()
        raw = [dict(r) for r in requests]
        if handle._embedder is not None:
            raw = fill_query_vectors(handle._embedder, raw)
        reqs = []
        for r in raw:
            at = self._at() if r.get("as_of") is None else self.as_of(r["as_of"])._at()
            reqs.append(build_request(r, snap=snap, config=self._index_config, at=at))
        hits = searcher.find_batch(reqs)
        handle._recorder.record("first_query", time.perf_counter() - started)
        if handle._prefetcher is not None:
            handle._observe([([h.id for h in found], [to_us(h.created_at) for h in found],
                            r.vector) for r, found in zip(reqs, hits, strict=True)])
        return hits

    def _cache_root(self) -> str:
        raise NotImplementedError

    def _handle(self) -> Memory:
        """The open Memory behind these reads (its embedder, metrics and prefetcher)."""
        raise NotImplementedError

    def commits(self) -> list[tuple[int, datetime]]:
        """(generation, commit record time) of every commit this file remembers, oldest first.

        ``as_of(generation)`` is ``as_of(that time)``: the state right after that commit.
        """
        from .engine.history import commit_log

        snap = self._snap()
        at = self._at()
        return [(g, from_us(t)) for g, t in commit_log(snap) if at is None or t <= at]

    def as_of(self, t: datetime | int) -> MemoryView:
        """A read-only view of what the memory contained at record time ``t``.

        Args:
            t: an aware datetime, or a commit generation (int) as listed by ``stats()``.

        Raises:
            HistoryUnavailableError: ``t`` is older than the history kept by compaction.
        """
        snap = self._snap()
        if isinstance(t, bool) or not isinstance(t, int | datetime):
            raise InvalidTypeError(
                f"as_of takes a datetime or a generation int, not {type(t).__name__}")
        at = _generation_time(self._path, snap, t) if isinstance(t, int) else to_us(t, "as_of")
        floor = snap.toc.history_floor_us
        if floor is not None and at < floor:
            raise HistoryUnavailableError(
                f"history before {from_us(floor).isoformat()} was compacted away; "
                f"{from_us(at).isoformat()} cannot be reconstructed")
        current = self._at()
        if current is not None:
            at = min(at, current)
        return MemoryView(self, snap, at)


class MemoryView(_Reads):
    """Read-only view of a memory at a past record time (from ``Memory.as_of``)."""

    def __init__(self, owner: _Reads, snap: Snapshot, at: int) -> None:
        self._owner = owner
        self._path = owner._path
        self._snapshot = snap
        self._time = at

    @property
    def time(self) -> datetime:
        return from_us(self._time)

    def _snap(self) -> Snapshot:
        self._owner._snap()  # raises ClosedError once the owner is closed
        return self._snapshot

    def _at(self) -> int | None:
        return self._time

    def _cache_root(self) -> str:
        return self._owner._cache_root()

    def _handle(self) -> Memory:
        return self._owner._handle()

    def stats(self) -> Stats:
        """The owner's stats, with ``frames`` counted as of this view (reads the timeline)."""
        from dataclasses import replace

        count = sum(1 for _ in self._snapshot.timeline(None, None, self._time, False))
        return replace(self._owner.stats(), frames=count)

    def __len__(self) -> int:
        return sum(1 for _ in self._snapshot.timeline(None, None, self._time, False))

    def _readonly(self, *_: Any, **__: Any) -> Any:
        raise ReadOnlyError("an as_of view is read-only")

    put = put_many = update = delete = seal = compact = _readonly

    def __repr__(self) -> str:
        return f"<MemoryView {self._path!r} as of {self.time.isoformat()}>"


class Memory(_Reads):
    """An open .mv2 memory file. Create with ``Memory.create``, open with ``Memory.open``.

    One writer per file at a time (across processes); any number of readers
    (``readonly=True``), each on the snapshot it opened until ``refresh()``.
    """

    def __init__(self, path: str, fd: int, config: StoreConfig, *, readonly: bool,
                 embedder: Any = None, allow_embedder_mismatch: bool = False) -> None:
        started = time.perf_counter()
        self._path = path
        self._fd = fd
        self._config = config
        self._readonly = readonly
        self._closed = False
        self._mutex = threading.RLock()
        state = read_state(fd)
        self._wal_end = state.wal_end
        self._snapshot = make_snapshot(fd, state, config.mmap)
        self._frames = ByteLRU(config.cache.lru_size, "frames") if config.cache.lru_size else None
        self._snapshot.frame_cache = self._frames
        self._prefetcher: Any = None
        self._embedder = embedder
        self._committer: Committer | None = None
        self._wal: WalWriter | None = None
        try:
            if embedder is not None:
                check_binding(embedder, self.embedder_info, self._snapshot.dim, path,
                              allow_mismatch=allow_embedder_mismatch)
            if not readonly:
                self._start_writer(state)
            self._recorder = MetricsRecorder()
            self._recorder.record("toc", time.perf_counter() - started)
            self._warmer = Warmer(self._current_search, config.warmup, self._recorder.record)
            self._warmer.start()
        except BaseException:
            # the map holds a duplicate of fd, and with it the writer lock
            self._snapshot.close()
            self._snapshot.view.close()
            raise
        self._recorder.record("open", time.perf_counter() - started)

    # -------------------------------------------------------------- lifecycle

    @classmethod
    def create(cls, path: str | os.PathLike[str], dim: int | None = None, *,
               config: StoreConfig | None = None,
               index: IndexConfig | Mapping[str, Any] | None = None,
               embedder: Any = None, created_at: datetime | None = None,
               **options: Any) -> Memory:
        """Create a new memory file and open it for writing.

        Args:
            path: where to create the file; it must not exist.
            dim: embedding dimension; ``None`` learns it from the first embedding.
            config: a StoreConfig; keyword ``options`` override its fields
                (``wal_size``, ``sync``, ``lock_timeout``, ``mmap``, ``cache_dir``).
            index: an IndexConfig (or a dict of its fields): distance, HNSW backend and
                parameters, lexical index; fixed for the file's life.
            embedder: embeds texts put without an embedding and queries given as text
                (see ``memvid_store.embeddings``); the file records its name and dim, and
                a later ``open`` with a different embedder is refused. A ``{"name", "dim"}``
                record (``embedder_info`` of another file) binds the file without a model.
            created_at: the file's creation time (default now). An import passes the
                source file's, so that its history can be replayed with ``recorded_at``.

        Raises:
            AlreadyExistsError: a file already exists at ``path``.
        """
        path = os.fspath(path)
        cfg = (config or StoreConfig.from_env()).with_options(options)
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0):
            raise InvalidInputError(f"dim must be a positive int or None, got {dim!r}")
        index_cfg = index if isinstance(index, IndexConfig) else IndexConfig(**(index or {}))
        file_options: dict[str, Any] = {"index": index_cfg.to_dict()}
        if embedder is not None:
            file_options["embedder"] = ident = identity(embedder)
            if dim is not None and dim != ident["dim"]:
                raise DimensionMismatchError(
                    f"dim={dim} but the embedder {ident['name']!r} makes {ident['dim']}-d "
                    "vectors", dim, ident["dim"])
            dim = ident["dim"]
        try:
            fd = create_file(path, dim=dim, wal_size=cfg.wal_size,
                             options=file_options,
                             created_at_us=None if created_at is None
                             else to_us(created_at, "created_at"))
        except FileExistsError:
            raise AlreadyExistsError(f"{path} already exists") from None
        try:
            # a bare {"name", "dim"} record binds the file without giving this handle a model
            return cls(path, fd, cfg, readonly=False,
                       embedder=None if isinstance(embedder, Mapping) else embedder)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str], readonly: bool = False, *,
             config: StoreConfig | None = None, embedder: Any = None,
             allow_embedder_mismatch: bool = False, **options: Any) -> Memory:
        """Open an existing memory file (writable unless ``readonly=True``).

        ``embedder`` embeds texts put without an embedding and text queries; it must be
        the one the file was created with (``embedder_info``) unless
        ``allow_embedder_mismatch`` (its dimension must match in any case).

        Raises:
            MemoryNotFoundError: there is no file at ``path``.
            NotAMemoryFileError, VersionMismatchError, CorruptFileError: unusable file.
            MemoryLockedError: another process holds the writer lock.
            EmbedderMismatchError, DimensionMismatchError: the embedder does not fit.
        """
        path = os.fspath(path)
        cfg = (config or StoreConfig.from_env()).with_options(options)
        while True:
            fd = open_fd(path, writable=not readonly)
            try:
                if not readonly:
                    lock.acquire(fd, path, cfg.lock_timeout)
                    if not _same_file(fd, path):  # replaced by compact() while we waited
                        os.close(fd)
                        continue
                    remove_stale_temp_files(path)
                return cls(path, fd, cfg, readonly=readonly, embedder=embedder,
                           allow_embedder_mismatch=allow_embedder_mismatch)
            except BaseException:
                os.close(fd)
                raise

    def _start_writer(self, state: Opened) -> None:
        header = state.header
        prepare_for_writing(self._fd, state)
        from .index.maintain import IndexMaintainer

        self._committer = Committer(
            self._fd, self._snapshot, sync=self._config.sync, use_mmap=self._config.mmap,
            maintainer=IndexMaintainer(self._index_config, self._config.cache_root))
        self._wal = WalWriter(self._fd, header.wal_offset, header.wal_size, state.wal_end,
                              state.wal_last_seq + 1, state.wal_last_crc,
                              sync=self._config.sync)
        self._counters = apply_counters(state.toc.counters, state.delta)
        last = [state.toc.commit_time_us] + [v.valid_from for v in state.delta[-1:]]
        self._last_time = max(last)
        self._replayed = False

    @_serialized
    def close(self) -> None:
        """Seal pending writes (writer) and release the file. Calling it twice is harmless."""
        if self._closed:
            return
        self._warmer.close()
        self.detach_analyzer()
        try:
            if self._committer is not None:
                self._seal(full=True)
        finally:
            self._closed = True
            self._snapshot.close()
            self._snapshot.view.close()
            if self._committer is not None:
                lock.release(self._fd)
            os.close(self._fd)

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("readonly" if self._readonly else "writable")
        return f"<Memory {self._path!r} {state}>"

    @property
    def path(self) -> str:
        return self._path

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def generation(self) -> int:
        return self._snap().generation

    @property
    def dim(self) -> int | None:
        return self._snap().dim

    @property
    def embedder(self) -> Any:
        """The embedder this handle embeds with (None: callers pass vectors)."""
        return self._embedder

    @property
    def embedder_info(self) -> dict[str, Any] | None:
        """``{"name", "dim"}`` of the embedder the file was created with, if any."""
        info = self._snapshot.toc.options.get("embedder")
        return dict(info) if info else None

    def _snap(self) -> Snapshot:
        if self._closed:
            raise ClosedError(f"{self._path} is closed")
        return self._snapshot

    def _at(self) -> int | None:
        return None

    def _cache_root(self) -> str:
        return self._config.cache_root

    def _handle(self) -> Memory:
        return self

    def _current_search(self) -> tuple[Snapshot, Any]:
        from .index.searcher import searcher_for

        snap = self._snap()
        return snap, searcher_for(snap, self._index_config, self._cache_root)

    def _observe(self, reads: list[tuple[list[str], list[int], Any]]) -> None:
        """Tell the attached AccessPatternAnalyzer what these reads returned."""
        prefetcher = self._prefetcher
        if prefetcher is not None:
            from .prefetch import Access

            for ids, times, vector in reads:
                prefetcher.observe(Access(tuple(ids), tuple(times), vector))

    def attach_analyzer(self, analyzer: Any = None) -> Any:
        """Learn from this handle's reads and prefetch predicted frames in the background.

        ``analyzer`` is an ``AccessPatternAnalyzer`` (a default one if None); it is given
        the current frames as its catalog and returned. The prefetch window comes from
        ``StoreConfig.cache`` (``prefetch_window``, ``adaptive_prefetch``).
        """
        from .prefetch import AccessPatternAnalyzer
        from .prefetcher import Prefetcher

        snap = self._snap()
        self.detach_analyzer()
        analyzer = analyzer or AccessPatternAnalyzer()
        ids, times = [], []
        for ref in snap.timeline(None, None, None, False):  # ids and times, no payloads
            if ref.version is not None:
                ids.append(ref.version.id)
                times.append(ref.version.created_at)
            else:
                ids.append(ref.run.frame_id(ref.row))
                times.append(ref.run.part("created")[ref.row])
        analyzer.set_catalog(ids, times)
        cache = self._config.cache
        self._prefetcher = Prefetcher(analyzer, self.prefetch, window=cache.prefetch_window,
                                      adaptive=cache.adaptive_prefetch)
        return analyzer

    def detach_analyzer(self) -> None:
        """Stop learning from reads and prefetching (no-op without an analyzer)."""
        prefetcher, self._prefetcher = self._prefetcher, None
        if prefetcher is not None:
            prefetcher.close()

    # ------------------------------------------------------------ warmup, caches

    def cache_stats(self) -> list[CacheStats]:
        """Hits, misses and size of this handle's caches (decoded frames, query results)."""
        from .index.searcher import existing_searcher

        self._snap()
        out = [] if self._frames is None else [self._frames.stats()]
        searcher = existing_searcher(self._snapshot)
        if searcher is not None:
            out.append(searcher.result_stats())
        return out

    def metrics(self, thresholds: AlertThresholds | None = None) -> ColdStartMetrics:
        """Cold-start figures of this process and handle, with the alerts they raise.

        Phases: process start, ``import memvid_store``, open, each index tier loaded, the
        first ``find``; resident memory against the limit (Lambda's, the cgroup's or the
        machine's) and the caches' hit rate. ``memvid_store.metrics.emit_metrics(m)``
        prints them as one CloudWatch Embedded Metric Format line.
        """
        self._snap()
        return self._recorder.snapshot(self.cache_stats(), thresholds=thresholds)

    def prefetch(self, ids: Iterable[str]) -> int:
        """Decode these frames into the frame cache ahead of use; returns how many exist.

        Unknown or deleted ids are skipped. A no-op when the cache is disabled.
        """
        snap = self._snap()
        refs = []
        for fid in ids:
            ref = snap.latest(check_id(fid), None)
            if ref is not None and not snap.is_tombstone(ref):
                refs.append(ref)
        snap.prefetch(refs)
        return len(refs)


    def warmup(self, level: str | None = None, *, tiers: Iterable[str] | None = None,
               wait: bool = True) -> dict[str, str]:
        """Load index tiers ahead of queries; returns each tier's state.

        ``level`` picks the tiers like ``MEMVID_PRELOAD_LEVEL`` (``aggressive``, the
        default, and ``balanced`` load all of them; ``lazy`` and ``none`` nothing),
        ``tiers`` names them (``time_index``, ``lex_index``, ``vec_index``). With
        ``wait=False`` a background thread loads them and this returns at once.
        """
        from .warmup import LOADABLE

        self._snap()
        if tiers is None:
            preset = WarmupConfig.level(level or "aggressive")
            tiers = LOADABLE if not preset.lazy or preset.background else ()
        chosen = list(tiers)
        unknown = [t for t in chosen if t not in LOADABLE]
        if unknown:
            raise InvalidInputError(f"unknown warmup tier(s) {unknown}; tiers: {LOADABLE}")
        self._warmer.warm(chosen, wait=wait)
        return dict(self._warmer.state)

    def _writer(self) -> Committer:
        self._snap()
        if self._committer is None:
            raise ReadOnlyError(f"{self._path} was opened read-only")
        return self._committer

    @_serialized
    def refresh(self) -> int:
        """Move a reader to the newest commit and WAL state; returns the generation.

        A writer always sees its own writes, so this is a no-op for it.
        """
        snap = self._snap()
        if self._committer is not None:
            return snap.generation
        old = self._snapshot
        reuse: list | None = old.runs
        if not _same_file(self._fd, self._path):  # compacted: follow the new file
            fd = open_fd(self._path, writable=False)
            os.close(self._fd)
            self._fd = fd
            reuse = None
        state = read_state(self._fd)
        self._wal_end = state.wal_end
        self._install(make_snapshot(self._fd, state, self._config.mmap, reuse),
                      same_file=reuse is not None)
        return self._snapshot.generation

    def _install(self, snap: Snapshot, *, same_file: bool) -> None:
        """Switch to ``snap``: keep the frame cache if gids still mean the same, rewarm."""
        self._warmer.close()
        if not same_file and self._frames is not None:
            self._frames.clear()  # a compacted file numbers its versions anew
        snap.frame_cache = self._frames
        self._snapshot = snap
        self._warmer = Warmer(self._current_search, self._config.warmup, self._recorder.record)
        self._warmer.start()

    # ----------------------------------------------------------------- writes

    def put(self, text: str, *, embedding: Sequence[float] | None = None,
            metadata: Mapping[str, Any] | None = None, tags: Iterable[str] | None = None,
            created_at: datetime | None = None, id: str | None = None) -> str:
        """Store a frame durably (WAL + fsync) and return its id.

        Putting an existing id stores a new version of it (the old one stays in history).
        """
        return self.put_many([{"text": text, "embedding": embedding, "metadata": metadata,
                               "tags": tags, "created_at": created_at, "id": id}])[0]

    def put_many(self, records: Iterable[Mapping[str, Any]], *,
                 recorded_at: datetime | None = None) -> list[str]:
        """Store many frames atomically in one durable write; returns their ids.

        Each record is a dict with ``put``'s keys (``text`` required). Either every record
        is stored or, if any is invalid, none is.

        ``recorded_at`` replays history (e.g. an import): the write is recorded at that
        time instead of now, so ``as_of`` answers as in the file it came from. Record
        times only move forward: it must be later than every earlier write.

        With an embedder, records without an embedding are embedded (one batch).
        """
        self._writer()
        if self._embedder is not None:
            records = fill_embeddings(self._embedder, list(records))
        return self._put_many(records, recorded_at)

    @_serialized
    def _put_many(self, records: Iterable[Mapping[str, Any]],
                  recorded_at: datetime | None) -> list[str]:
        self._writer()
        now = self._tick(recorded_at)
        pending: dict[str, Version] = {}
        versions: list[Version] = []
        for i, rec in enumerate(records):
            if not isinstance(rec, Mapping):
                raise InvalidTypeError(f"record {i} must be a dict, not {type(rec).__name__}")
            unknown = set(rec) - _RECORD_KEYS
            if unknown:
                raise InvalidTypeError(f"record {i} has unknown key(s) {sorted(unknown)}; "
                                f"valid keys: {sorted(_RECORD_KEYS)}")
            if "text" not in rec:
                raise InvalidTypeError(f"record {i} has no 'text'")
            fid = rec.get("id")
            generated = fid is None
            fid = os.urandom(16).hex() if generated else check_id(fid)
            v = Version(
                gid=-1, id=fid, version=1,
                created_at=now if rec.get("created_at") is None else to_us(rec["created_at"],
                                                                           "created_at"),
                valid_from=now, tombstone=False, prev_gid=-1, prev_live=False,
                text=check_text(rec["text"]), metadata=check_metadata(rec.get("metadata")),
                tags=check_tags(rec.get("tags")),
                embedding=self._check_embedding(rec.get("embedding"), versions),
            )
            if not generated:
                self._link(v, pending)
            pending[fid] = v
            versions.append(v)
        if versions:
            self._append(versions, now)
        return [v.id for v in versions]

    def update(self, id: str, *, text: str = _MISSING, metadata: Mapping[str, Any] = _MISSING,
               embedding: Sequence[float] | None = _MISSING, tags: Iterable[str] = _MISSING,
               created_at: datetime = _MISSING) -> int:
        """Store a new version of a frame, keeping fields not given; returns its version.

        With an embedder, a new ``text`` without a new ``embedding`` is re-embedded.

        Raises:
            FrameNotFoundError: no current frame has this id.
        """
        self._writer()
        if self._embedder is not None and embedding is _MISSING and isinstance(text, str):
            embedding = self._embedder.embed_documents([text])[0]
        return self._update(id, text, metadata, embedding, tags, created_at)

    @_serialized
    def _update(self, id: str, text: Any, metadata: Any, embedding: Any, tags: Any,
                created_at: Any) -> int:
        self._writer()
        snap = self._snapshot
        ref = snap.get(check_id(id), None)
        old = snap.load(ref)
        now = self._tick()
        v = Version(
            gid=-1, id=id, version=old.version + 1,
            created_at=old.created_at if created_at is _MISSING else to_us(created_at,
                                                                           "created_at"),
            valid_from=now, tombstone=False, prev_gid=ref.gid, prev_live=True,
            text=old.text if text is _MISSING else check_text(text),
            metadata=old.metadata if metadata is _MISSING else check_metadata(metadata),
            tags=old.tags if tags is _MISSING else check_tags(tags),
            embedding=(snap.embedding(ref) if embedding is _MISSING
                       else self._check_embedding(embedding, [])),
        )
        self._append([v], now)
        return v.version

    @_serialized
    def delete(self, id: str) -> None:
        """Delete a frame (a tombstone version); its history stays readable via as_of.

        Raises:
            FrameNotFoundError: no current frame has this id.
        """
        self.delete_many([id])

    @_serialized
    def delete_many(self, ids: Iterable[str], *, missing_ok: bool = False,
                    recorded_at: datetime | None = None) -> int:
        """Delete several frames atomically, in one durable write; returns how many.

        ``recorded_at`` replays history, as in ``put_many``.

        Raises:
            FrameNotFoundError: an id has no current frame (nothing is deleted), unless
                ``missing_ok``, which skips such ids.
        """
        self._writer()
        snap = self._snapshot
        now = self._tick(recorded_at)
        tombstones: dict[str, Version] = {}
        for fid in ids:
            fid = check_id(fid)
            if fid in tombstones:
                continue
            try:
                ref = snap.get(fid, None)
            except FrameNotFoundError:
                if missing_ok:
                    continue
                raise
            tombstones[fid] = Version(-1, fid, snap.load(ref).version + 1, now, now, True,
                                      ref.gid, True)
        if tombstones:
            self._append(list(tombstones.values()), now)
        return len(tombstones)

    @_serialized
    def seal(self) -> int:
        """Commit the WAL delta into segments and bring the indexes fully up to date.

        Returns the new generation (the current one when there was nothing to do).
        """
        return self._seal(full=True)

    def _seal(self, *, full: bool) -> int:
        committer = self._writer()
        snap = self._snapshot
        if not snap.delta and not (full and self._committer.maintainer.behind(snap)):
            return snap.generation
        self._commit(committer, [], self._wal.next_seq - 1, full=full)
        return self._snapshot.generation

    def _link(self, v: Version, pending: dict[str, Version]) -> None:
        """Make ``v`` the next version of its id (within the batch or the file)."""
        prev = pending.get(v.id)
        if prev is not None:
            # linked to ``prev`` in _append, once gids are assigned
            v.version, v.prev_live, v.prev_gid = prev.version + 1, not prev.tombstone, -2
            return
        ref = self._snapshot.latest(v.id, None)
        if ref is not None:
            old_version = ref.version.version if ref.version else \
                ref.run.part("version")[ref.row]
            v.version = old_version + 1
            v.prev_gid = ref.gid
            v.prev_live = not self._snapshot.is_tombstone(ref)

    def _append(self, versions: list[Version], now: int) -> None:
        snap = self._snapshot
        gid = snap.toc.next_gid + len(snap.delta)
        last_by_id: dict[str, int] = {}
        for v in versions:
            v.gid = gid
            if v.prev_gid == -2:
                v.prev_gid = last_by_id[v.id]
            last_by_id[v.id] = gid
            gid += 1
        wal = self._wal
        limit = wal.size // DIRECT_COMMIT_FRACTION
        # a lower bound of the record size avoids encoding batches that skip the WAL
        if sum(len(v.text) + len(v.embedding or b"") for v in versions) > limit:
            self._commit(self._committer, versions, wal.next_seq - 1)
            return
        payload = encode_ops(now, versions)
        if len(payload) > limit:
            self._commit(self._committer, versions, wal.next_seq - 1)
            return
        if not wal.fits(len(payload)):
            if self._replayed:
                # a replayed write keeps its time: commit the delta at its last record time
                self._commit(self._committer, [], wal.next_seq - 1,
                             commit_time=snap.delta[-1].valid_from)
                return self._append(versions, now)
            self._seal(full=False)
            # restamp after the commit: as_of(that generation) must not include this write;
            # event times that defaulted to the record time follow it
            stamp = self._tick()
            for v in versions:
                if v.created_at == now:
                    v.created_at = stamp
                v.valid_from = stamp
            return self._append(versions, stamp)
        wal.append(payload)
        snap.add_delta(versions)
        self._counters = apply_counters(self._counters, versions)

    def _commit(self, committer: Committer, extra: list[Version], checkpoint_seq: int, *,
                full: bool = False, commit_time: int | None = None) -> None:
        snap = self._snapshot
        versions = snap.delta + extra
        counters = apply_counters(snap.toc.counters, versions)
        counters["text_bytes"] += sum(len(v.text.encode()) for v in versions)
        committer.snapshot = snap
        if commit_time is None:
            # a replayed batch commits at its own record time, others now
            commit_time = extra[-1].valid_from if self._replayed and extra else self._tick()
        self._snapshot = committer.commit(versions, checkpoint_seq=checkpoint_seq,
                                          dim=snap.dim or _dim_of(extra), counters=counters,
                                          commit_time=commit_time, full_index=full)
        self._wal.restart(checkpoint_seq)
        self._counters = counters

    def _tick(self, recorded_at: datetime | None = None) -> int:
        """A record time strictly after every earlier one (monotonic across restarts).

        With ``recorded_at`` that time is used (a replay of history) if it is later than
        every earlier record time.
        """
        self._replayed = recorded_at is not None
        if recorded_at is None:
            self._last_time = max(now_us(), self._last_time + 1)
            return self._last_time
        t = to_us(recorded_at, "recorded_at")
        if t <= self._last_time:
            raise InvalidInputError(
                f"recorded_at {recorded_at.isoformat()} is not after the file's latest record "
                f"time {from_us(self._last_time).isoformat()}: replay history in time order")
        self._last_time = t
        return t

    def _check_embedding(self, emb: Any, batch: list[Version]) -> bytes | None:
        return check_embedding(emb, self._snapshot.dim or _dim_of(batch))

    # -------------------------------------------------------------- inspection

    def stats(self) -> Stats:
        """Counts, sizes and the commit generation as this handle sees them."""
        from .reports import Stats

        snap = self._snap()
        counters = apply_counters(snap.toc.counters, snap.delta)
        header = snap.header
        wal_used = self._wal.used if self._wal else self._wal_end
        return Stats(
            path=self._path, frames=counters["live"], versions=counters["versions"],
            deleted=counters["tombstones"], generation=snap.generation, dim=snap.dim,
            file_bytes=os.fstat(self._fd).st_size, text_bytes=counters["text_bytes"],
            payload_bytes=counters["payload_bytes"],
            stored_bytes=counters["stored_bytes"], wal_bytes=wal_used,
            wal_size=header.wal_size, wal_records=len(snap.delta), runs=len(snap.runs),
            created_at=from_us(header.created_at_us),
            history_floor=(None if snap.toc.history_floor_us is None
                           else from_us(snap.toc.history_floor_us)),
            readonly=self._readonly, mmap=snap.view.mmapped, uuid=header.uuid.hex(),
            tiers=dict(self._warmer.state),
        )

    def verify(self) -> VerifyReport:
        """Check every checksum in the file; never raises for damage, reports it."""
        from .engine.verify import verify_file
        from .reports import VerifyReport

        self._snap()
        problems, checked = verify_file(self._fd)
        return VerifyReport(not problems, problems, checked)

    @_serialized
    def compact(self, retain_after: datetime | None = None) -> int:
        """Rewrite the file without dead space, dropping history older than ``retain_after``.

        Versions replaced at or before ``retain_after`` are forgotten; ``as_of`` earlier
        than it then raises HistoryUnavailableError. ``None`` keeps all history. The new
        file replaces the old one atomically; readers of the old one keep working and
        follow on ``refresh()``. Returns the generation of the compacted file.
        """
        from .engine.compact import compact_into

        self._writer()
        self.seal()
        floor = None if retain_after is None else to_us(retain_after, "retain_after")
        from .index.maintain import IndexMaintainer

        fd = compact_into(self._path, self._snapshot, floor, self._config,
                          self._wal.size, self._tick(),
                          IndexMaintainer(self._index_config, self._config.cache_root))
        old_fd, old_snap = self._fd, self._snapshot
        self._fd = fd
        state = read_state(fd)
        self._install(make_snapshot(fd, state, self._config.mmap), same_file=False)
        self._start_writer(state)
        old_snap.close()
        old_snap.view.close()
        lock.release(old_fd)
        os.close(old_fd)
        return self._snapshot.generation


def _same_file(fd: int, path: str) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _dim_of(versions: list[Version]) -> int | None:
    for v in versions:
        if v.embedding:
            return len(v.embedding) // 4
    return None


def _generation_time(path: str, snap: Snapshot, generation: int) -> int:
    from .engine.history import commit_time_of

    return commit_time_of(snap, generation)


__all__ = ["AlreadyExistsError", "Memory", "MemoryView"]
