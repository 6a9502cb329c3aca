"""The Memory facade: one .mv2 file, its lifecycle, and delegation to the engine.

A ``Memory`` opens the file (lock, header, TOC, WAL replay), hands writes to the engine's
``Writer`` (``engine/writer.py``: record times, WAL or commit, checkpoints), reads through
the read API it shares with its ``as_of`` views (``reads.py``), and runs the cold-start
machinery (warmup tiers, frame cache, metrics, access analyzer).

>>> import tempfile, os
>>> from datetime import datetime, timezone
>>> path = os.path.join(tempfile.mkdtemp(), "agent.mv2")
>>> with Memory.create(path) as mem:
...     fid = mem.put("the budget meeting moved to friday", tags=["calendar"])
...     mem.get(fid).text
'the budget meeting moved to friday'
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .autoembed import check_binding, file_binding
from .coldstart.cache import CacheStats
from .coldstart.handle import HandleColdStart
from .config import IndexConfig, StoreConfig
from .engine import lock
from .engine.records import live_by_collection
from .engine.snapshot import Snapshot
from .engine.store import (
    Opened,
    create_file,
    make_snapshot,
    open_fd,
    open_for_writing,
    read_state,
    same_file,
)
from .errors import AlreadyExistsError, ClosedError, ReadOnlyError
from .reads import MemoryView, ReadContext, Reads, index_config_of
from .types import to_us
from .validate import check_collection
from .writes import WriteAccess, Writes

if TYPE_CHECKING:
    from .coldstart.metrics import AlertThresholds, ColdStartMetrics
    from .collection import Collection
    from .engine.writer import Writer
    from .reports import Stats, VerifyReport


class Memory(Reads, Writes):
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
        self._embedder = embedder
        self._writer: Writer | None = None
        self._cold = HandleColdStart(config, self._current_search)
        self._snapshot.frame_cache = self._cold.frames
        self._ctx = ReadContext(path, self._snap, embedder, self._cold.recorder.record,
                                self._cache_root)
        self._writes = WriteAccess(self._writable, self._mutex, embedder)
        try:
            if embedder is not None:
                check_binding(embedder, self.embedder_info, self._snapshot.dim, path,
                              allow_mismatch=allow_embedder_mismatch)
            if not readonly:
                self._start_writer(state)
            self._cold.recorder.record("toc", time.perf_counter() - started)
            self._cold.start()
        except BaseException:
            # the map holds a duplicate of fd, and with it the writer lock
            self._snapshot.close(view=True)
            raise
        self._cold.recorder.record("open", time.perf_counter() - started)

    # -------------------------------------------------------------- lifecycle

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, dim: int | None = None,
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
        dim, binding = file_binding(dim, embedder)
        index_cfg = index if isinstance(index, IndexConfig) else IndexConfig(**(index or {}))
        file_options: dict[str, Any] = {"index": index_cfg.to_dict()}
        if binding is not None:
            file_options["embedder"] = binding
        try:
            fd = create_file(path, dim=dim, wal_size=cfg.wal_size, options=file_options,
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
    def open(cls, path: str | os.PathLike[str], *, readonly: bool = False,
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
        fd = open_fd(path, writable=False) if readonly else open_for_writing(
            path, cfg.lock_timeout)
        try:
            return cls(path, fd, cfg, readonly=readonly, embedder=embedder,
                       allow_embedder_mismatch=allow_embedder_mismatch)
        except BaseException:
            os.close(fd)
            raise

    def _start_writer(self, state: Opened) -> None:
        from .engine.writer import Writer
        from .index.maintain import IndexMaintainer  # adds the indexes to each commit

        hook = IndexMaintainer(index_config_of(self._snapshot), self._config.cache_root)
        self._writer = Writer(self._fd, state, self._snapshot, sync=self._config.sync,
                              use_mmap=self._config.mmap, hook=hook)

    def close(self) -> None:
        """Seal pending writes (writer) and release the file. Calling it twice is harmless."""
        with self._mutex:
            if self._closed:
                return
            self._ctx.observer = None
            self._cold.close()
            try:
                if self._writer is not None:
                    self._writer.seal(full=True)
            finally:
                self._closed = True
                self._current().close(view=True)
                if self._writer is not None:
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
        """The state this handle sees: +1 per write and per commit; ``as_of`` shows it."""
        return self._snap().public_generation

    @property
    def embedder(self) -> Any:
        """The embedder this handle embeds with (None: callers pass vectors)."""
        return self._embedder

    def _current(self) -> Snapshot:
        """The newest snapshot: the writer's (it moves with every commit) or the reader's."""
        return self._writer.snapshot if self._writer is not None else self._snapshot

    def _snap(self) -> Snapshot:
        if self._closed:
            raise ClosedError(f"{self._path} is closed")
        return self._current()

    def _cache_root(self) -> str:
        return self._config.cache_root

    def _current_search(self) -> tuple[Snapshot, Any]:
        from .index.searcher import searcher_for

        snap = self._snap()
        return snap, searcher_for(snap, index_config_of(snap), self._cache_root)

    def refresh(self) -> int:
        """Move a reader to the newest commit and WAL state; returns the generation.

        A writer always sees its own writes, so this is a no-op for it.
        """
        with self._mutex:
            snap = self._snap()
            if self._writer is not None:
                return snap.public_generation
            reuse: list | None = snap.runs
            if not same_file(self._fd, self._path):  # compacted: follow the new file
                fd = open_fd(self._path, writable=False)
                os.close(self._fd)
                self._fd = fd
                reuse = None
            self._install(read_state(self._fd), reuse)
            return self._snapshot.public_generation

    def _install(self, state: Opened, reuse: list | None) -> None:
        """Switch to ``state`` (a newer commit, or the compacted file) and warm it; a
        writer starts writing on it. ``reuse``: run readers of the same file to keep."""
        snap = make_snapshot(self._fd, state, self._config.mmap, reuse)
        self._cold.switch(snap, same_file=reuse is not None)
        self._snapshot, self._wal_end = snap, state.wal_end
        if self._writer is not None:
            self._start_writer(state)
        self._cold.start()

    def compact(self, retain_after: datetime | None = None) -> int:
        """Rewrite the file without dead space, dropping history older than ``retain_after``.

        Versions replaced at or before ``retain_after`` are forgotten; ``as_of`` earlier
        than it then raises HistoryUnavailableError. ``None`` keeps all history. The new
        file replaces the old one atomically; readers of the old one keep working and
        follow on ``refresh()``. Returns the generation of the compacted file.
        """
        with self._mutex:
            from .engine.compact import compact_into

            writer = self._writable()
            writer.seal(full=True)
            floor = None if retain_after is None else to_us(retain_after, "retain_after")
            old_fd, old_snap = self._fd, writer.snapshot
            self._fd = compact_into(self._path, old_snap, floor, self._config,
                                    old_snap.header.wal_size, writer.commit_time(), writer.hook)
            self._install(read_state(self._fd), None)
            old_snap.close(view=True)
            lock.release(old_fd)
            os.close(old_fd)
            return self.generation

    # ----------------------------------------------------------------- writes

    def _writable(self) -> Writer:
        self._snap()
        if self._writer is None:
            raise ReadOnlyError(f"{self._path} was opened read-only")
        return self._writer

    def seal(self) -> int:
        """Commit the WAL delta into segments and bring the indexes fully up to date.

        Returns the new generation (the current one when there was nothing to do).
        """
        with self._mutex:
            return self._writable().seal(full=True)

    # ------------------------------------------------------------- collections

    def collection(self, name: str) -> Collection:
        """The collection ``name`` of this memory: the same read/write API, restricted to
        its frames (ids are unique per collection). ``"default"`` is this handle's own."""
        from .collection import Collection

        self._snap()
        return Collection(check_collection(name), self._ctx, self._writes)

    def collections(self) -> dict[str, int]:
        """Every collection with frames now or in the past, with its live frame count."""
        return live_by_collection(self._snap().counters())

    # -------------------------------------------------------------- inspection

    def stats(self) -> Stats:
        """Counts, sizes and the generation as this handle sees them."""
        from .reports import file_stats

        return file_stats(self._snap(), path=self._path, file_bytes=os.fstat(self._fd).st_size,
                          wal_bytes=self._writer.wal_used if self._writer else self._wal_end,
                          readonly=self._readonly, tiers=self._cold.tiers)

    def verify(self) -> VerifyReport:
        """Check every checksum in the file; never raises for damage, reports it."""
        from .engine.verify import verify_file
        from .reports import VerifyReport

        self._snap()
        problems, checked = verify_file(self._fd)
        return VerifyReport(not problems, problems, checked)

    # ------------------------------------------------------------ warmup, caches

    def warmup(self, level: str | None = None, *, tiers: Iterable[str] | None = None,
               wait: bool = True) -> dict[str, str]:
        """Load index tiers ahead of queries; returns each tier's state.

        ``level`` picks the tiers like ``MEMVID_PRELOAD_LEVEL`` (``aggressive``, the
        default, and ``balanced`` load all of them; ``lazy`` and ``none`` nothing),
        ``tiers`` names them (``time_index``, ``lex_index``, ``vec_index``). With
        ``wait=False`` a background thread loads them and this returns at once.
        """
        self._snap()
        return self._cold.warmup(level, tiers, wait=wait)

    def cache_stats(self) -> list[CacheStats]:
        """Hits, misses and size of this handle's caches (decoded frames, query results)."""
        from .index.searcher import existing_searcher

        return self._cold.cache_stats(existing_searcher(self._snap()))

    def metrics(self, thresholds: AlertThresholds | None = None) -> ColdStartMetrics:
        """Cold-start figures of this process and handle, with the alerts they raise.

        Phases: process start, ``import memvid_store``, open, each index tier loaded, the
        first ``find``; resident memory against the limit (Lambda's, the cgroup's or the
        machine's) and the caches' hit rate. ``memvid_store.coldstart.metrics.emit_metrics(m)``
        prints them as one CloudWatch Embedded Metric Format line.
        """
        return self._cold.metrics(self.cache_stats(), thresholds)

    def prefetch(self, ids: Iterable[str]) -> int:
        """Decode these frames into the frame cache ahead of use; returns how many exist.

        Unknown or deleted ids are skipped. A no-op when the cache is disabled.
        """
        return self._cold.prefetch(self._snap(), ids)

    def attach_analyzer(self, analyzer: Any = None) -> Any:
        """Learn from this handle's reads and prefetch predicted frames in the background.

        ``analyzer`` is an ``AccessPatternAnalyzer`` (a default one if None); it is given
        the current frames as its catalog and returned. The prefetch window comes from
        ``StoreConfig.cache`` (``prefetch_window``, ``adaptive_prefetch``).
        """
        analyzer = self._cold.attach(self._snap(), analyzer, self.prefetch)
        self._ctx.observer = self._cold.observe
        return analyzer

    def detach_analyzer(self) -> None:
        """Stop learning from reads and prefetching (no-op without an analyzer)."""
        self._ctx.observer = None
        self._cold.detach()


__all__ = ["AlreadyExistsError", "Memory", "MemoryView"]
